/*
 * fuzz_store.c — recovery of a data directory (index/store.c es_store_open),
 * which is where the server reads its write-ahead log and its snapshots.
 * Two binaries:
 *
 *   fuzz_wal       (-DFUZZ_STORE_WAL)  the input is one log segment
 *                  (index/wal.h format); it is placed as
 *                  wal/<its header's base lsn>.log in an empty data
 *                  directory, so CREATE/UPSERT/DELETE/DROP records are
 *                  replayed into real collections.
 *   fuzz_snapshot  the input is a whole data directory: a sequence of files,
 *                  each [u8 name length][name][u32le size][bytes], with names
 *                  "MANIFEST", "snap/<name>@<lsn>.snap" or "wal/<hex>.log"
 *                  (others are skipped).  The MANIFEST and collection
 *                  snapshots (index/snapshot.h container, collection format,
 *                  embedded HNSW graph) are read before the log is replayed.
 *
 *   fuzz_repl_bundle  (-DFUZZ_STORE_BUNDLE)  the input is a replication
 *                  bundle as GET /v1/replication/snapshot sends it (store.h:
 *                  "ESREPL01", lsn, entries of path, size, bytes, CRC32C):
 *                  a follower installs it into its empty data directory
 *                  (es_store_install_bundle) and opens that as a follower.
 *   fuzz_repl_wal  (-DFUZZ_STORE_SHIPPED)  the input is what GET
 *                  /v1/replication/wal answers: log records without a
 *                  segment header, applied by a follower with an empty data
 *                  directory (es_store_follow_apply).
 *
 * Each input runs twice: as it is, and with every file's checksums
 * recomputed (fz_fix_any) and recover mode on, so mutations get past the
 * CRCs into the parsers.
 *
 * Invariants after a successful open: the recovered collections can be
 * searched and written to; a final checkpoint succeeds; and the directory it
 * leaves opens again with the same collections and counts.  Log shipping
 * adds: a refused bundle leaves the directory still to bootstrap; a follower
 * restarted from its own directory holds exactly what it held before (after
 * shipped records, and again after its checkpoint); the directory a bundle
 * or the shipped records left opens as a primary too (a promoted follower)
 * with the invariants above.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "collection.h"
#include "crc32c.h"
#include "fuzz_common.h"
#include "le.h"
#include "store.h"

#define MAX_COLS 64

static char dir[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof dir, "%s/data", fz_scratch_dir());
	return 0;
}

typedef struct seen {
	size_t n;
	char name[MAX_COLS][ES_COLLECTION_NAME_MAX + 1];
	size_t count[MAX_COLS];
} seen;

static void snapshot_counts(es_registry *reg, seen *s)
{
	es_collection **cols;
	size_t n;
	es_error err;
	s->n = 0;
	if (es_registry_list(reg, &cols, &n, &err) != 0)
		fz_fail("registry list: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		if (s->n < MAX_COLS) {
			snprintf(s->name[s->n], sizeof s->name[0], "%s", es_collection_name(cols[i]));
			s->count[s->n++] = es_collection_count(cols[i]);
		}
		es_collection_release(cols[i]);
	}
	free(cols);
}

/* Search, read, write and delete on a recovered collection. */
static void exercise(es_collection *c)
{
	const es_collection_params *p = es_collection_get_params(c);
	float *q = malloc((size_t)p->dim * sizeof *q);
	if (!q)
		return;
	for (uint32_t i = 0; i < p->dim; i++)
		q[i] = (float)(i % 5) - 1.5f;
	es_search_req req;
	memset(&req, 0, sizeof req);
	req.query = q;
	req.k = 8;
	req.with_payload = 1;
	req.with_vector = 1;
	es_point_out *hits = NULL;
	size_t nh = 0;
	es_error err;
	if (es_collection_search(c, &req, &hits, &nh, &err) != 0)
		fz_fail("search of recovered collection '%s' failed: %s",
			es_collection_name(c), err.msg);
	/* a point without text has a vector (one with text may not) */
	if (es_collection_count(c) > es_collection_lexical_count(c) && !nh)
		fz_fail("search of '%s' (%zu points) found nothing",
			es_collection_name(c), es_collection_count(c));
	for (size_t i = 0; i < nh; i++) {
		es_point_out o;
		if (es_collection_get(c, &hits[i].id, 1, 1, &o, &err) != 0)
			fz_fail("hit %zu of '%s' cannot be fetched: %s", i,
				es_collection_name(c), err.msg);
		es_point_out_free(&o);
	}
	es_hits_free(hits, nh);
	req.mode = ES_SEARCH_LEXICAL; /* the recovered lexical index answers */
	req.text = "library quercus";
	req.text_len = strlen(req.text);
	if (es_collection_search(c, &req, &hits, &nh, &err) != 0)
		fz_fail("lexical search of recovered collection '%s' failed: %s",
			es_collection_name(c), err.msg);
	es_hits_free(hits, nh);
	es_point_in in;
	memset(&in, 0, sizeof in);
	in.id.is_str = 1;
	in.id.str = "fuzz-point";
	in.id.len = 10;
	in.vector = q;
	in.payload = "{\"f\":1}";
	in.payload_len = 7;
	if (es_collection_upsert(c, &in, 1, &err) != 0)
		fz_fail("upsert into recovered '%s' failed: %s", es_collection_name(c), err.msg);
	in.id.str = "fuzz-gone";
	in.id.len = 9;
	es_collection_upsert(c, &in, 1, &err);
	es_collection_delete(c, &in.id, 1, NULL, &err);
	free(q);
}

static void recover_once(int recover)
{
	es_registry *reg;
	es_store *s;
	es_store_options o;
	es_store_stats st;
	es_error err;
	es_store_options_default(&o);
	o.policy = WAL_FSYNC_NEVER;
	o.recover = recover;
	o.checkpoint_bytes = UINT64_MAX;
	if (es_registry_new(api_payload_hooks(), &reg, &err) != 0)
		fz_fail("registry: %s", err.msg);
	int rc = es_store_open(dir, &o, reg, &st, &s, &err);
	if (getenv("FUZZ_VERBOSE")) /* see what the seeds reach */
		fprintf(stderr, "%s open: %s; %zu collections, %zu snapshots, %" PRIu64
			" records replayed\n", recover ? "fixed" : "raw", rc ? err.msg : "ok",
			st.collections, st.snapshots_loaded, st.records_replayed);
	if (rc) {
		es_registry_free(reg);
		return;
	}
	es_collection **cols;
	size_t n;
	if (es_registry_list(reg, &cols, &n, &err) != 0)
		fz_fail("registry list: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		exercise(cols[i]);
		es_collection_release(cols[i]);
	}
	free(cols);
	seen before, after;
	snapshot_counts(reg, &before);
	if (es_store_close(s, 1, &err) != 0)
		fz_fail("final checkpoint of a recovered directory failed: %s", err.msg);
	es_registry_free(reg);

	o.recover = 0;
	if (es_registry_new(api_payload_hooks(), &reg, &err) != 0)
		fz_fail("registry: %s", err.msg);
	if (es_store_open(dir, &o, reg, &st, &s, &err) != 0)
		fz_fail("the directory a checkpoint left does not open: %s", err.msg);
	snapshot_counts(reg, &after);
	if (after.n != before.n)
		fz_fail("%zu collections after reopening, %zu before", after.n, before.n);
	for (size_t i = 0; i < after.n; i++)
		if (strcmp(after.name[i], before.name[i]) != 0 ||
		    after.count[i] != before.count[i])
			fz_fail("collection %s has %zu points after reopening; %s had %zu",
				after.name[i], after.count[i], before.name[i], before.count[i]);
	es_store_close(s, 0, NULL);
	es_registry_free(reg);
}

#if defined(FUZZ_STORE_BUNDLE) || defined(FUZZ_STORE_SHIPPED)

static void same_counts(const seen *a, const seen *b, const char *when)
{
	if (a->n != b->n)
		fz_fail("%s: %zu collections, %zu before", when, b->n, a->n);
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->name[i], b->name[i]) != 0 || a->count[i] != b->count[i])
			fz_fail("%s: collection %s has %zu points; %s had %zu before", when,
				b->name[i], b->count[i], a->name[i], a->count[i]);
}

/* Open dir as a follower does (cli/follower.c open_store). */
static int open_follower(es_registry **reg, es_store **s, es_error *err)
{
	es_store_options o;
	es_store_stats st;
	es_store_options_default(&o);
	o.policy = WAL_FSYNC_NEVER;
	o.follower = 1;
	o.checkpoint_bytes = UINT64_MAX;
	if (es_registry_new(api_payload_hooks(), reg, err) != 0)
		fz_fail("registry: %s", err->msg);
	int rc = es_store_open(dir, &o, *reg, &st, s, err);
	if (rc) {
		es_registry_free(*reg);
		*reg = NULL;
	}
	return rc;
}

/* A follower holding `expect` restarts from its own directory with the
 * same collections and counts; then checkpoints and restarts again. */
static void follower_restarts(const seen *expect)
{
	es_registry *reg;
	es_store *s;
	es_error err;
	seen now;
	if (open_follower(&reg, &s, &err) != 0)
		fz_fail("the follower's directory does not open again: %s", err.msg);
	snapshot_counts(reg, &now);
	same_counts(expect, &now, "follower restarted");
	if (es_store_close(s, 1, &err) != 0)
		fz_fail("the follower's checkpoint failed: %s", err.msg);
	es_registry_free(reg);
	if (open_follower(&reg, &s, &err) != 0)
		fz_fail("the follower's directory does not open after its checkpoint: %s",
			err.msg);
	snapshot_counts(reg, &now);
	same_counts(expect, &now, "follower restarted after its checkpoint");
	es_store_close(s, 0, NULL);
	es_registry_free(reg);
}

#endif

#if !defined(FUZZ_STORE_BUNDLE) && !defined(FUZZ_STORE_SHIPPED)
/* Write a file of the directory, with its checksums recomputed if fixed. */
static void write_maybe_fixed(const char *path, const uint8_t *data, size_t len,
			      int fixed)
{
	if (!fixed) {
		fz_write_file(path, data, len);
		return;
	}
	unsigned char *copy = malloc(len ? len : 1);
	if (!copy)
		return;
	memcpy(copy, data, len);
	fz_fix_any(copy, len);
	fz_write_file(path, copy, len);
	free(copy);
}
#endif

#if defined(FUZZ_STORE_BUNDLE)

/* Recompute every entry's CRC32C (after fz_fix_any on its bytes, so that
 * MANIFEST, snapshots and log segments get past their own checks). */
static void fix_bundle(unsigned char *p, size_t len)
{
	size_t off = 16;
	while (len - off >= 2 && off <= len) {
		size_t plen = get_u16(p + off);
		if (!plen || plen > len - off - 2 || len - off - 2 - plen < 8)
			return;
		off += 2 + plen;
		uint64_t sz = get_u64(p + off);
		off += 8;
		if (sz > len - off || len - off - sz < 4)
			return;
		fz_fix_any(p + off, (size_t)sz);
		put_u32(p + off + sz, crc32c(0, p + off, (size_t)sz));
		off += (size_t)sz + 4;
	}
}

static void run(const uint8_t *data, size_t size, int fixed)
{
	fz_clear_dir(fz_scratch_dir());
	unsigned char *copy = malloc(size + 1);
	if (!copy)
		return;
	memcpy(copy, data, size);
	if (fixed && size >= 16)
		fix_bundle(copy, size);
	FILE *in = tmpfile();
	if (!in || fwrite(copy, 1, size, in) != size || fflush(in) != 0)
		fz_fail("tmpfile: cannot hold the input");
	rewind(in);
	free(copy);
	uint64_t lsn = 0;
	es_error err;
	mkdir(dir, 0755);
	int rc = es_store_install_bundle(dir, in, &lsn, &err);
	fclose(in);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%s install: %s (lsn %" PRIu64 ")\n", fixed ? "fixed" : "raw",
			rc ? err.msg : "ok", lsn);
	if (rc) {
		if (!es_store_needs_bootstrap(dir))
			fz_fail("a refused bundle (%s) left a data directory behind", err.msg);
		return;
	}
	if (es_store_needs_bootstrap(dir))
		fz_fail("an installed bundle still needs a bootstrap");
	es_registry *reg;
	es_store *s;
	if (open_follower(&reg, &s, &err) != 0)
		return; /* a bundle whose files do not recover: the follower says so */
	seen held;
	snapshot_counts(reg, &held);
	es_store_close(s, 0, NULL);
	es_registry_free(reg);
	follower_restarts(&held);
	recover_once(0); /* promoted: opened as a primary */
}

#elif defined(FUZZ_STORE_SHIPPED)

static void run(const uint8_t *data, size_t size, int fixed)
{
	fz_clear_dir(fz_scratch_dir());
	mkdir(dir, 0755);
	es_registry *reg;
	es_store *s;
	es_error err;
	if (open_follower(&reg, &s, &err) != 0)
		fz_fail("an empty follower directory does not open: %s", err.msg);
	uint64_t last = es_store_last_lsn(s);
	unsigned char *copy = malloc(size + 1);
	if (!copy)
		fz_fail("out of memory");
	memcpy(copy, data, size);
	if (fixed) /* the lsns this follower expects next, and the CRCs */
		fz_fix_records(copy, size, last + 1);
	uint64_t applied = 0;
	int rc = es_store_follow_apply(s, copy, size, &applied, &err);
	free(copy);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%s apply: %s (applied %" PRIu64 ", log at %" PRIu64 ")\n",
			fixed ? "fixed" : "raw", rc ? err.msg : "ok", applied,
			es_store_last_lsn(s));
	if (applied > es_store_last_lsn(s))
		fz_fail("applied lsn %" PRIu64 " past the log's last %" PRIu64, applied,
			es_store_last_lsn(s));
	if (!rc && size && applied <= last)
		fz_fail("%zu bytes of records accepted and nothing applied", size);
	seen held;
	snapshot_counts(reg, &held);
	es_store_close(s, 0, NULL);
	es_registry_free(reg);
	if (rc) {
		/* what reached the log was applied; a restart may refuse a
		 * record the apply refused, but must not crash or differ */
		if (open_follower(&reg, &s, &err) == 0) {
			seen now;
			snapshot_counts(reg, &now);
			es_store_close(s, 0, NULL);
			es_registry_free(reg);
			(void)now;
		}
		return;
	}
	follower_restarts(&held);
	recover_once(0); /* promoted: opened as a primary */
}

#elif defined(FUZZ_STORE_WAL)

static void place(const uint8_t *data, size_t size, int fixed)
{
	uint64_t base = size >= 24 ? get_u64(data + 16) : 0;
	char path[4400];
	snprintf(path, sizeof path, "%s/wal/%016" PRIx64 ".log", dir, base);
	write_maybe_fixed(path, data, size, fixed);
}

#else

/* "MANIFEST", "snap/X.snap", "wal/X.log" with X of [A-Za-z0-9_.@-],
 * not starting with '.'. */
static int name_ok(const char *n)
{
	if (strcmp(n, "MANIFEST") == 0)
		return 1;
	const char *rest;
	size_t l = strlen(n);
	if (strncmp(n, "snap/", 5) == 0 && l > 10 && strcmp(n + l - 5, ".snap") == 0)
		rest = n + 5;
	else if (strncmp(n, "wal/", 4) == 0 && l > 8 && strcmp(n + l - 4, ".log") == 0)
		rest = n + 4;
	else
		return 0;
	if (*rest == '.')
		return 0;
	for (const char *c = rest; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '@' ||
		      *c == '-'))
			return 0;
	return 1;
}

static void place(const uint8_t *data, size_t size, int fixed)
{
	size_t off = 0;
	for (int files = 0; files < 16 && off < size; files++) {
		size_t nl = data[off++];
		if (nl == 0 || nl > size - off)
			return;
		char name[256];
		memcpy(name, data + off, nl);
		name[nl] = '\0';
		off += nl;
		if (size - off < 4)
			return;
		uint32_t len = get_u32(data + off);
		off += 4;
		if (len > size - off)
			len = (uint32_t)(size - off);
		if (name_ok(name) && !memchr(name, '\0', nl)) {
			char path[4400];
			snprintf(path, sizeof path, "%s/%s", dir, name);
			write_maybe_fixed(path, data + off, len, fixed);
		}
		off += len;
	}
}

#endif

#if !defined(FUZZ_STORE_BUNDLE) && !defined(FUZZ_STORE_SHIPPED)
/* The data directory is rebuilt from the input before each run. */
static void run(const uint8_t *data, size_t size, int fixed)
{
	fz_clear_dir(fz_scratch_dir());
	place(data, size, fixed);
	recover_once(fixed);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		LLVMFuzzerInitialize(NULL, NULL);
	run(data, size, 0);
	run(data, size, 1);
	return 0;
}
