/*
 * api_replication.c — the primary's side of log shipping (index/store.h):
 *
 *   GET /v1/replication/snapshot        a bundle of the data directory's
 *       files (manifest, snapshots, log), consistent at the lsn in the
 *       X-Embedsrv-Lsn header; a follower starts from it.
 *   GET /v1/replication/wal?from=LSN[&max_bytes=N]   the log records after
 *       LSN exactly as the log file holds them (each with its header and
 *       payload checksums), up to max_bytes (default 4 MiB, at least one
 *       record).  Headers: X-Embedsrv-Last-Lsn (the last record that may
 *       be shipped), X-Embedsrv-First-Lsn (the oldest `from` served),
 *       X-Embedsrv-Prev-Crc (the payload CRC of record LSN, so the follower
 *       can check that this log continues its own; 0 unknown).
 *       410 lsn_gone: LSN is older than the kept log (bootstrap again);
 *       409 lsn_ahead: LSN is past this log's end (the follower holds
 *       records this server does not have: it was restored from an older
 *       backup, or lost a log tail).
 *
 *       &wait_ms=W (0..25000, default 0): a long poll.  When nothing
 *       follows LSN, the answer waits until a record is appended (woken
 *       by the append: es_store_ship_wait) or W ms passed, then is sent
 *       (empty at expiry) with X-Embedsrv-Wait-Ms: W, which tells the
 *       follower it may ask again at once.  The wait runs on a deferred
 *       thread with the connection suspended, never on the HTTP worker;
 *       es_store_ship_stop (serve's shutdown) ends every wait at once.
 *
 * Both need the API key like every route.  The
 * bundle's checkpoint runs off the worker (build_bundle, deferred): the
 * worker's other connections are answered meanwhile; its bytes are then
 * read from the data directory's open files as the socket takes them.
 *
 * Threading: handlers run on any HTTP worker; the store locks itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "store.h"

#define SHIP_DEFAULT_BYTES ((size_t)4 << 20)
#define SHIP_MAX_BYTES ((size_t)64 << 20)
/* the longest long poll: under the follower's 30 s idle timeout */
#define SHIP_MAX_WAIT_MS 25000u

static int no_store(const api_call *c, api_response *out)
{
	if (c->ctx->store)
		return 0;
	if (c->ctx->follower)
		api_error(out, 409, NULL, "replication_unavailable",
			  "this server is a follower: followers replicate from the primary "
			  "(%s), not from each other", c->ctx->primary ? c->ctx->primary : "?");
	else
		api_error(out, 409, NULL, "replication_unavailable",
			  "log shipping needs a data directory: start the primary with "
			  "--data-dir");
	return 1;
}

/* An unsigned decimal query parameter; 1 when absent (*v untouched), 0
 * when parsed, -1 (400 written) when malformed or out of [min, max]. */
static int query_u64(const api_call *c, const char *key, uint64_t min, uint64_t max,
		     uint64_t *v, api_response *out)
{
	const char *s = c->req->query ? c->req->query(c->req->qctx, key) : NULL;
	if (!s)
		return 1;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *s == '+' || *s == ' ' || *end || errno || x < min || x > max) {
		api_error(out, 400, key, "invalid_parameter",
			  "query parameter '%s' must be a whole number in %" PRIu64 "..%" PRIu64
			  " (got '%.40s')", key, min, max, s);
		return -1;
	}
	*v = x;
	return 0;
}

static ssize_t bundle_body_read(void *ctx, char *buf, size_t n)
{
	es_error err;
	es_error_clear(&err);
	ssize_t k = es_bundle_read(ctx, buf, n, &err);
	if (k <= 0) /* the follower sees the answer cut short and retries */
		fprintf(stderr, "embedsrv serve: GET /v1/replication/snapshot: %s\n",
			k < 0 ? err.msg : "the bundle ended early");
	return k;
}

static void bundle_body_close(void *ctx)
{
	es_bundle_free(ctx);
}

/* The bundle: a checkpoint of every collection (seconds of disk work when
 * much changed since the last one, so it runs on a thread of its own:
 * api_response.deferred; server/http.c suspends the connection meanwhile),
 * then the files are opened and streamed from there as the follower reads
 * them (es_bundle_read): no copy of the data directory is made. */
static void build_bundle(const api_ctx *ctx, void *arg, api_response *out)
{
	(void)arg;
	es_error err;
	es_error_clear(&err);
	es_bundle *b;
	int rc = es_bundle_open(ctx->store, &b, &err);
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		return;
	}
	char *h = malloc(64);
	if (!h) {
		es_bundle_free(b);
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	snprintf(h, 64, "X-Embedsrv-Lsn: %" PRIu64 "\n", es_bundle_lsn(b));
	out->status = 200;
	out->own_headers = h;
	out->body_ctx = b;
	out->body_read = bundle_body_read;
	out->body_close = bundle_body_close;
	out->body_len = es_bundle_size(b);
	out->content_type = "application/octet-stream";
}

void api_h_repl_snapshot(api_call *c, api_response *out)
{
	if (no_store(c, out))
		return;
	out->deferred = build_bundle;
}

/* The log records after `from` into out (200, possibly empty), or the
 * error; waited: add X-Embedsrv-Wait-Ms (the server honoured a long poll
 * of that many ms; 0 none). */
static void ship(es_store *store, uint64_t from, uint64_t max, uint64_t waited,
		 api_response *out)
{
	wal_buf b;
	wal_buf_init(&b);
	es_store_ship info;
	es_error err;
	es_error_clear(&err);
	int rc = es_store_ship_log(store, from, (size_t)max, &b, &info, &err);
	char *h = malloc(200);
	if (h) {
		int n = snprintf(h, 200, "X-Embedsrv-Last-Lsn: %" PRIu64 "\nX-Embedsrv-First-Lsn: %"
				 PRIu64 "\nX-Embedsrv-Prev-Crc: %08" PRIx32 "\n", info.last_lsn,
				 info.first_lsn, info.prev_crc);
		if (waited)
			snprintf(h + n, 200 - (size_t)n, "X-Embedsrv-Wait-Ms: %" PRIu64 "\n", waited);
	}
	if (rc == ES_ENOTFOUND)
		api_error(out, 410, "from", "lsn_gone", "%s", err.msg);
	else if (rc == ES_ERANGE)
		api_error(out, 409, "from", "lsn_ahead", "%s", err.msg);
	else if (rc)
		api_error_es(out, rc, &err, NULL);
	else if (!h || (!b.data && !(b.data = malloc(1))))
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
	else {
		out->status = 200;
		out->text = b.s;
		out->text_len = b.len;
		out->content_type = "application/octet-stream";
		b.data = NULL;
	}
	wal_buf_free(&b);
	out->own_headers = h;
}

typedef struct wal_wait {
	uint64_t from, max, wait_ms;
} wal_wait;

/* The long poll, on a deferred thread (server/http.c suspends the
 * connection meanwhile, so the worker serves its other connections): wait
 * for an append after `from` (es_store_ship_wait, woken by the append) or
 * the end of the wait, then answer as an immediate read would.  When the
 * server is stopping the answer comes at once and without
 * X-Embedsrv-Wait-Ms, so the follower does not ask again at once. */
static void wait_and_ship(const api_ctx *ctx, void *arg, api_response *out)
{
	wal_wait w = *(wal_wait *)arg;
	free(arg);
	int r = es_store_ship_wait(ctx->store, w.from, (uint32_t)w.wait_ms);
	ship(ctx->store, w.from, w.max, r < 0 ? 0 : w.wait_ms, out);
}

void api_h_repl_wal(api_call *c, api_response *out)
{
	if (no_store(c, out))
		return;
	uint64_t from = 0, max = SHIP_DEFAULT_BYTES, wait = 0;
	int q = query_u64(c, "from", 0, UINT64_MAX, &from, out);
	if (q < 0)
		return;
	if (q > 0) {
		api_error(out, 400, "from", "missing_parameter",
			  "query parameter 'from' (the last lsn the follower holds) is required");
		return;
	}
	if (query_u64(c, "max_bytes", 1, SHIP_MAX_BYTES, &max, out) < 0)
		return;
	if (query_u64(c, "wait_ms", 0, SHIP_MAX_WAIT_MS, &wait, out) < 0)
		return;
	ship(c->ctx->store, from, max, wait, out);
	if (!wait || out->status != 200 || out->text_len)
		return; /* records, an error, or no wait asked: answer now */
	wal_wait *w = malloc(sizeof *w);
	if (!w)
		return; /* the empty answer stands (the follower polls again) */
	int route = out->route;
	api_response_free(out);
	memset(out, 0, sizeof *out);
	out->route = route;
	*w = (wal_wait){from, max, wait};
	out->deferred = wait_and_ship;
	out->deferred_arg = w;
}
