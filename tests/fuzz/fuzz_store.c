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
 * Each input runs twice: as it is, and with every file's checksums
 * recomputed (fz_fix_any) and recover mode on, so mutations get past the
 * CRCs into the parsers.
 *
 * Invariants after a successful open: the recovered collections can be
 * searched and written to; a final checkpoint succeeds; and the directory it
 * leaves opens again with the same collections and counts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "collection.h"
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

#ifdef FUZZ_STORE_WAL

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

/* The data directory is rebuilt from the input before each run. */
static void run(const uint8_t *data, size_t size, int fixed)
{
	fz_clear_dir(fz_scratch_dir());
	place(data, size, fixed);
	recover_once(fixed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		LLVMFuzzerInitialize(NULL, NULL);
	run(data, size, 0);
	run(data, size, 1);
	return 0;
}
