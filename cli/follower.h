/*
 * follower.h — `embedsrv serve --follow URL`: a read-only replica that
 * follows a primary by log shipping (index/store.h, server/api_replication.c).
 *
 * The follower's --data-dir is a copy of the primary's: when it holds no
 * data yet, the follower downloads GET URL/v1/replication/snapshot and
 * installs it as it arrives (each file written once, renamed into place,
 * then fsynced while the store loads it); then it polls GET URL/v1/replication/wal?from=<its last lsn>
 * and appends the records, byte for byte, to its own log and applies them
 * through the recovery path (es_store_follow_apply).  Before applying it
 * checks that the primary's log continues its own: the primary sends the
 * payload CRC of the record at the follower's last lsn, which must equal
 * the follower's own; a primary whose log ends before that lsn (409) or
 * differs there was restored from an older backup (or lost a log tail),
 * and the follower stops applying, says why in its log, /readyz (503) and
 * /v1/info, and keeps serving what it has.  A primary that no longer keeps
 * the records the follower needs (410) makes it bootstrap again.  While the
 * primary is unreachable the follower retries with a backoff (0.1 s up to
 * 1 s), one log line when the link goes down and one when it is back.
 *
 * Lag: records the primary had at the last poll that are not applied
 * here, and seconds since the follower last was caught up (0 when it is).
 *
 * Threading: one follower thread does all of this; follower_status and
 * follower_snapshot may be called from any thread (HTTP workers).
 */
#ifndef ES_FOLLOWER_H
#define ES_FOLLOWER_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "collection.h"
#include "error.h"
#include "wal.h"

typedef struct follower_opts {
	const char *url;         /* http://HOST[:PORT] of the primary */
	const char *api_key;     /* the primary's API key, or NULL */
	const char *data_dir;    /* required */
	wal_fsync_policy fsync;
	uint64_t snapshot_bytes; /* 0: default */
	int recover;
	unsigned poll_ms;        /* pause between polls when caught up; 0: 20 */
} follower_opts;

typedef struct follower follower;

/* Check the URL, open the data directory when it holds data (then the
 * server is ready at once, serving what it has), and start the thread,
 * which marks api ready once bootstrapped.  reg must be empty. */
int follower_start(const follower_opts *o, es_registry *reg, api_ctx *api,
		   follower **out, es_error *err);

/* Stop the thread, snapshot, close.  NULL: no-op. */
void follower_stop(follower *f);

/* api_ctx_set_follower's fn (f is a follower). */
void follower_status(void *f, api_repl_status *st);

/* api_ctx_set_snapshot's fn: snapshot the follower's own data directory. */
int follower_snapshot(void *f, const char *name, es_error *err);

/* Split "http://host[:port][/]" into host (brackets of an IPv6 literal
 * removed) and port (default 80).  0 or ES_EINVAL with a message. */
int follower_parse_url(const char *url, char *host, size_t hostlen, char *port,
		       size_t portlen, es_error *err);

/* The status line and headers of the primary's HTTP/1.x answer, parsed
 * from buf[0..len) (the bytes read so far; hostile: every length checked,
 * no terminating NUL needed).  Returns 1 when the blank line that ends the
 * head has not arrived yet (read more), 0 when parsed (h filled; the body
 * starts at buf + h->head_len), ES_ECORRUPT for anything malformed (not
 * HTTP/1.x, a bad status, a header line without a name and colon, a NUL,
 * a Content-Length, X-Embedsrv-Lsn, X-Embedsrv-Last-Lsn or
 * X-Embedsrv-Prev-Crc or X-Embedsrv-Wait-Ms that is not a number, two Content-Lengths that
 * differ) and ES_EUNSUPPORTED for a Transfer-Encoding other than identity
 * (a proxy that re-encodes).  tests/fuzz/fuzz_follower_http.c. */
typedef struct follower_http_head {
	int status;
	int64_t content_length;  /* -1: none (the body ends with the connection) */
	size_t head_len;         /* bytes up to and including the blank line */
	int has_lsn, has_last_lsn, has_prev_crc, has_wait_ms;
	uint64_t lsn;            /* X-Embedsrv-Lsn (the bundle's) */
	uint64_t last_lsn;       /* X-Embedsrv-Last-Lsn */
	uint32_t prev_crc;       /* X-Embedsrv-Prev-Crc */
	uint64_t wait_ms;        /* X-Embedsrv-Wait-Ms (the primary long-polled) */
} follower_http_head;

int follower_parse_head(const char *buf, size_t len, follower_http_head *h, es_error *err);

/* "HTTP STATUS: MESSAGE" from a JSON error body (body[0..len), hostile),
 * or "HTTP STATUS" when it has no error.message; into dst (n bytes). */
void follower_error_message(int status, const char *body, size_t len, char *dst, size_t n);

#endif
