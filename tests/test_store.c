/* test_store.c — the data directory: restart from log only, from snapshot +
 * log, after a clean shutdown; every point, vector (bit-exact), payload and
 * search answer comes back; drop/recreate; disk errors fail the request and
 * change nothing while reads go on; damaged files stop the start with the
 * file named, --recover gets past a damaged log; automatic checkpoints
 * delete covered log segments; one process per directory; writers of one
 * collection share fsyncs (group commit) while snapshots race them, and the
 * restart gives back exactly what they were told. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "api.h"
#include "lerw.h"
#include "snapshot.h"
#include "store.h"

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/es_store_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

#include "es_test_store.h"


static es_store *open_store(es_registry *r, const es_store_options *o, es_store_stats *st)
{
	es_store *s;
	es_error err;
	int rc = es_store_open(dir, o, r, st, &s, &err);
	ck_assert_msg(rc == 0, "open: %s", err.msg);
	return s;
}

static void make_coll(es_registry *r, const char *name, uint32_t dim)
{
	es_collection_params p;
	memset(&p, 0, sizeof p);
	p.dim = dim;
	p.metric = ES_METRIC_COSINE;
	es_error err;
	ck_assert_int_eq(es_registry_create(r, name, &p, NULL, &err), 0);
}

static size_t count_files(const char *sub, const char *suffix)
{
	char p[400];
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);
		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static es_registry *new_reg_hooks(void)
{
	es_registry *r;
	es_error err;
	ck_assert_int_eq(es_registry_new(api_payload_hooks(), &r, &err), 0);
	return r;
}

static void payload_of(es_registry *r, uint64_t id, const char *want)
{
	es_collection *c;
	es_error err;
	ck_assert_int_eq(es_registry_get(r, "pl", &c, &err), 0);
	es_point_id pid = {0, id, NULL, 0};
	es_point_out o;
	ck_assert_int_eq(es_collection_get(c, &pid, 0, 1, &o, &err), 0);
	if (want)
		ck_assert_str_eq(o.payload, want);
	else
		ck_assert_ptr_null(o.payload);
	es_point_out_free(&o);
	es_collection_release(c);
}

static void update(es_registry *r, const char *op, uint64_t id)
{
	es_collection *c;
	es_error err;
	ck_assert_int_eq(es_registry_get(r, "pl", &c, &err), 0);
	es_point_id pid = {0, id, NULL, 0};
	size_t up;
	ck_assert_int_eq(es_collection_update_payload(c, op, strlen(op), &pid, 1, &up, &err), 0);
	ck_assert_uint_eq(up, 1);
	es_collection_release(c);
}

/* Payload updates are logged (WAL_REC_PAYLOAD), replayed after a crash on
 * top of the log or of a snapshot, and covered by snapshots. */
START_TEST(test_payload_update_durable)
{
	es_error err;
	es_registry *r = new_reg_hooks();
	es_store_stats st;
	es_store *s = open_store(r, NULL, &st);
	make_coll(r, "pl", 2);
	es_collection *c;
	ck_assert_int_eq(es_registry_get(r, "pl", &c, &err), 0);
	float v[2][2] = {{1, 0}, {0, 1}};
	es_point_in in[2] = {{{0, 1, NULL, 0}, v[0], "{\"a\":1}", 7, NULL, 0},
			     {{0, 2, NULL, 0}, v[1], NULL, 0, NULL, 0}};
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), 0);
	es_collection_release(c);
	update(r, "{\"op\":\"set\",\"payload\":{\"b\":2}}", 1);
	update(r, "{\"op\":\"set\",\"payload\":{\"x\":true},\"key\":\"m.n\"}", 2);
	payload_of(r, 1, "{\"a\":1,\"b\":2}");
	/* crash: everything from the log */
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg_hooks();
	s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.records_replayed, 3);
	payload_of(r, 1, "{\"a\":1,\"b\":2}");
	payload_of(r, 2, "{\"m\":{\"n\":{\"x\":true}}}");
	/* snapshot, then more updates, crash: snapshot + log */
	ck_assert_int_eq(es_store_checkpoint(s, "pl", &err), 0);
	update(r, "{\"op\":\"delete\",\"keys\":[\"a\"]}", 1);
	update(r, "{\"op\":\"clear\"}", 2);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg_hooks();
	s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.snapshots_loaded, 1);
	ck_assert_uint_eq(st.records_replayed, 2);
	payload_of(r, 1, "{\"b\":2}");
	payload_of(r, 2, NULL);
	/* clean shutdown: the snapshot holds them */
	ck_assert_int_eq(es_store_close(s, 1, &err), 0);
	es_registry_free(r);
	r = new_reg_hooks();
	s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.records_replayed, 0);
	payload_of(r, 1, "{\"b\":2}");
	payload_of(r, 2, NULL);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	/* a registry without payload hooks cannot replay them: named, not silent */
	r = new_reg_hooks();
	s = open_store(r, NULL, &st);
	update(r, "{\"op\":\"overwrite\",\"payload\":{\"z\":1}}", 1);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	es_store *s2;
	ck_assert_int_eq(es_store_open(dir, NULL, r, NULL, &s2, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "pl"));
	es_registry_free(r);
}
END_TEST

START_TEST(test_restart_log_snapshot_clean)
{
	es_error err;
	es_registry *r = new_reg();
	es_store_stats st;
	es_store *s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.collections, 0);
	make_coll(r, "docs", DIM);
	make_coll(r, "other", 4);
	ck_assert_int_eq(put_range(r, "docs", 0, 300, 1, &err), 0);
	ck_assert_int_eq(put_range(r, "docs", 100, 150, 2, &err), 0); /* updates */
	ck_assert_int_eq(del_range(r, "docs", 200, 230, &err), 0);
	char *before = dump_collection(r, "docs");
	/* 1. "crash": close without a checkpoint, everything from the log */
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.collections, 2);
	ck_assert_uint_eq(st.snapshots_loaded, 0);
	ck_assert_uint_eq(st.records_replayed, 3); /* creates are in the manifest */
	char *after = dump_collection(r, "docs");
	ck_assert_str_eq(before, after);
	free(after);
	/* 2. snapshot, more writes, crash: snapshot + log */
	ck_assert_int_eq(es_store_checkpoint(s, "docs", &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, "nope", &err), ES_ENOTFOUND);
	ck_assert_int_eq(put_range(r, "docs", 280, 400, 3, &err), 0);
	ck_assert_int_eq(del_range(r, "docs", 0, 10, &err), 0);
	free(before);
	before = dump_collection(r, "docs");
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.snapshots_loaded, 1);
	ck_assert_uint_eq(st.points_loaded, 270);
	ck_assert_uint_eq(st.records_replayed, 2);
	after = dump_collection(r, "docs");
	ck_assert_str_eq(before, after);
	free(after);
	/* 3. clean shutdown: final checkpoint, log segments gone, no replay */
	ck_assert_int_eq(es_store_close(s, 1, &err), 0);
	es_registry_free(r);
	ck_assert_uint_eq(count_files("wal", ".log"), 1);
	ck_assert_uint_eq(count_files("snap", ".snap"), 2);
	r = new_reg();
	s = open_store(r, NULL, &st);
	ck_assert_uint_eq(st.snapshots_loaded, 2);
	ck_assert_uint_eq(st.records_replayed, 0);
	after = dump_collection(r, "docs");
	ck_assert_str_eq(before, after);
	free(after);
	free(before);
	es_store *s2;
	ck_assert_int_eq(es_store_open(dir, NULL, r, NULL, &s2, &err), ES_EBUSY);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

START_TEST(test_drop_and_recreate)
{
	es_error err;
	es_registry *r = new_reg();
	es_store *s = open_store(r, NULL, NULL);
	make_coll(r, "a", DIM);
	ck_assert_int_eq(put_range(r, "a", 0, 50, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0);
	ck_assert_int_eq(es_registry_drop(r, "a", &err), 0);
	make_coll(r, "a", 4);
	make_coll(r, "b", DIM);
	ck_assert_int_eq(put_range(r, "b", 0, 20, 1, &err), 0);
	ck_assert_int_eq(es_registry_drop(r, "b", &err), 0);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	es_collection *c;
	ck_assert_int_eq(es_registry_get(r, "a", &c, &err), 0);
	ck_assert_uint_eq(es_collection_get_params(c)->dim, 4);
	ck_assert_uint_eq(es_collection_count(c), 0);
	es_collection_release(c);
	ck_assert_int_eq(es_registry_get(r, "b", &c, &err), ES_ENOTFOUND);
	ck_assert_int_eq(es_store_close(s, 1, &err), 0);
	es_registry_free(r);
	ck_assert_uint_eq(count_files("snap", ".snap"), 1);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	ck_assert_int_eq(es_registry_get(r, "a", &c, &err), 0);
	ck_assert_uint_eq(es_collection_get_params(c)->dim, 4);
	es_collection_release(c);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

struct inj {
	int enospc;
	int eio_sync;
};

static ssize_t inj_pwritev(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
	struct inj *j = ctx;
	if (j->enospc) {
		/* part of the record lands, then the disk is full */
		if (pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, off) < 0)
			return -1;
		errno = ENOSPC;
		return -1;
	}
	return pwritev(fd, iov, n, off);
}

static int inj_fdatasync(void *ctx, int fd)
{
	struct inj *j = ctx;
	if (j->eio_sync) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

START_TEST(test_disk_errors_change_nothing)
{
	es_error err;
	struct inj j = {0, 0};
	wal_io_hooks hooks = {&j, inj_pwritev, inj_fdatasync};
	es_store_options o;
	es_store_options_default(&o);
	o.hooks = &hooks;
	es_registry *r = new_reg();
	es_store *s = open_store(r, &o, NULL);
	make_coll(r, "docs", DIM);
	ck_assert_int_eq(put_range(r, "docs", 0, 100, 1, &err), 0);
	char *before = dump_collection(r, "docs");
	j.enospc = 1;
	ck_assert_int_eq(put_range(r, "docs", 50, 150, 2, &err), ES_ENOSPC);
	ck_assert_int_eq(del_range(r, "docs", 0, 10, &err), ES_ENOSPC);
	es_collection_params p = {0};
	p.dim = 3;
	ck_assert_int_eq(es_registry_create(r, "new", &p, NULL, &err), ES_ENOSPC);
	char *now = dump_collection(r, "docs"); /* reads still work */
	ck_assert_str_eq(before, now);
	free(now);
	j.enospc = 0;
	j.eio_sync = 1;
	ck_assert_int_eq(put_range(r, "docs", 50, 150, 2, &err), ES_EIO);
	j.eio_sync = 0;
	ck_assert_int_eq(put_range(r, "docs", 50, 150, 2, &err), ES_EIO); /* log failed */
	now = dump_collection(r, "docs");
	ck_assert_str_eq(before, now);
	free(now);
	/* after a failed fsync the log past it is unknown: no snapshot may
	 * start a new segment after it; read-only until the restart */
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), ES_EIO);
	ck_assert_msg(strstr(err.msg, "restart") != NULL, "%s", err.msg);
	ck_assert_int_eq(del_range(r, "docs", 0, 10, &err), ES_EIO);
	ck_assert_msg(strstr(err.msg, "restart") != NULL, "%s", err.msg);
	ck_assert_int_eq(es_store_close(s, 1, &err), ES_EIO); /* final snapshot too */
	es_registry_free(r);
	/* the restart replays the log as the disk has it: exactly what was
	 * acknowledged, and writes work again */
	r = new_reg();
	s = open_store(r, NULL, NULL);
	now = dump_collection(r, "docs");
	ck_assert_str_eq(before, now);
	free(now);
	ck_assert_int_eq(es_registry_get(r, "new", &(es_collection *){0}, &err), ES_ENOTFOUND);
	ck_assert_int_eq(put_range(r, "docs", 100, 120, 3, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0);
	free(before);
	before = dump_collection(r, "docs");
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	now = dump_collection(r, "docs");
	ck_assert_str_eq(before, now);
	free(now);
	free(before);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

static void flip(const char *path, long off_from_end)
{
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	off_t size = lseek(fd, 0, SEEK_END);
	unsigned char b;
	off_t off = off_from_end >= 0 ? size - off_from_end : -off_from_end;
	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void first_file(const char *sub, const char *suffix, char *out, size_t n)
{
	char p[400];
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	DIR *d = opendir(p);
	struct dirent *e;
	out[0] = 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);
		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0) {
			snprintf(out, n, "%s/%s", p, e->d_name);
			break;
		}
	}
	closedir(d);
}

START_TEST(test_damaged_files)
{
	es_error err;
	es_registry *r = new_reg();
	es_store *s = open_store(r, NULL, NULL);
	make_coll(r, "docs", DIM);
	ck_assert_int_eq(put_range(r, "docs", 0, 100, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0);
	for (int b = 0; b < 4; b++)
		ck_assert_int_eq(put_range(r, "docs", 100 + 10 * (uint64_t)b,
					   110 + 10 * (uint64_t)b, 2, &err), 0);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	char snap[600], seg[600], cmd[2000];
	first_file("snap", ".snap", snap, sizeof snap);
	first_file("wal", ".log", seg, sizeof seg);
	snprintf(cmd, sizeof cmd, "cp -r '%s' '%s.bak'", dir, dir);
	ck_assert_int_eq(system(cmd), 0);

	/* torn tail of the log: the last batch is dropped, the rest is there */
	struct stat sb;
	ck_assert_int_eq(stat(seg, &sb), 0);
	ck_assert_int_eq(truncate(seg, sb.st_size - 7), 0);
	r = new_reg();
	es_store_stats st;
	s = open_store(r, NULL, &st);
	ck_assert_uint_gt(st.torn_bytes, 0);
	es_collection *c;
	ck_assert_int_eq(es_registry_get(r, "docs", &c, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 130);
	es_collection_release(c);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);

	/* a flipped byte in the middle of the log stops the start ... */
	snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s.bak' '%s'", dir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	flip(seg, -(32 + 30)); /* inside the first record */
	r = new_reg();
	ck_assert_int_eq(es_store_open(dir, NULL, r, NULL, &s, &err), ES_ECORRUPT);
	ck_assert_msg(strstr(err.msg, seg) && strstr(err.msg, "offset 32"), "%s", err.msg);
	es_registry_free(r);
	/* ... and --recover truncates there: the snapshot's points remain */
	es_store_options o;
	es_store_options_default(&o);
	o.recover = 1;
	r = new_reg();
	s = open_store(r, &o, &st);
	ck_assert_uint_gt(st.truncated_bytes, 0);
	ck_assert_int_eq(es_registry_get(r, "docs", &c, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 100);
	es_collection_release(c);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);

	/* a flipped byte in the snapshot stops the start, naming the file */
	snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s.bak' '%s'", dir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	flip(snap, 100);
	r = new_reg();
	ck_assert_int_eq(es_store_open(dir, NULL, r, NULL, &s, &err), ES_ECORRUPT);
	ck_assert_msg(strstr(err.msg, snap) && strstr(err.msg, "offset"), "%s", err.msg);
	es_registry_free(r);
	/* a missing snapshot that the manifest lists */
	ck_assert_int_eq(unlink(snap), 0);
	r = new_reg();
	ck_assert_int_eq(es_store_open(dir, NULL, r, NULL, &s, &err), ES_ECORRUPT);
	ck_assert_msg(strstr(err.msg, "missing"), "%s", err.msg);
	es_registry_free(r);
	snprintf(cmd, sizeof cmd, "rm -rf '%s.bak'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_auto_checkpoint)
{
	es_error err;
	es_store_options o;
	es_store_options_default(&o);
	o.checkpoint_bytes = 16 * 1024;
	o.policy = WAL_FSYNC_NEVER;
	es_registry *r = new_reg();
	es_store *s = open_store(r, &o, NULL);
	make_coll(r, "docs", DIM);
	for (uint64_t b = 0; b < 40; b++)
		ck_assert_int_eq(put_range(r, "docs", b * 50, b * 50 + 50, 1, &err), 0);
	/* the background thread snapshots and drops covered segments */
	for (int i = 0; i < 200 && count_files("snap", ".snap") == 0; i++)
		usleep(10000);
	ck_assert_uint_eq(count_files("snap", ".snap"), 1);
	for (int i = 0; i < 200 && es_store_log_bytes(s) > o.checkpoint_bytes; i++)
		usleep(10000);
	char *before = dump_collection(r, "docs");
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	ck_assert_uint_le(count_files("wal", ".log"), 3);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	char *after = dump_collection(r, "docs");
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

START_TEST(test_bulk_insert_then_snapshot)
{
	es_error err;
	es_registry *r = new_reg();
	es_store *s = open_store(r, NULL, NULL);
	make_coll(r, "bulk", DIM);
	enum { N = 600 };
	uint64_t *ids = malloc(N * sizeof *ids);
	float *v = malloc(N * DIM * sizeof *v);
	for (uint64_t i = 0; i < N; i++) {
		ids[i] = 2 * i; /* even: numeric ids, as put_range uses */
		vec_for(2 * i, 1, v + i * DIM);
	}
	es_pool *pool = es_pool_new(2);
	es_collection *c;
	ck_assert_int_eq(es_registry_get(r, "bulk", &c, &err), 0);
	ck_assert_int_eq(es_collection_bulk_insert(c, ids, v, N, pool, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), N);
	/* existing ids are refused and nothing is added */
	ck_assert_int_eq(es_collection_bulk_insert(c, ids + 5, v, 3, pool, &err), ES_EEXIST);
	ck_assert_uint_eq(es_collection_count(c), N);
	float got[DIM];
	es_point_id id = {0, 42, NULL, 0};
	ck_assert_int_eq(es_collection_get_vector(c, &id, got, &err), 0);
	es_collection_release(c);
	/* normal writes on top, then the snapshot makes the bulk part durable */
	ck_assert_int_eq(put_range(r, "bulk", 1, 40, 2, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, "bulk", &err), 0);
	ck_assert_int_eq(put_range(r, "bulk", 41, 60, 3, &err), 0);
	char *before = dump_collection(r, "bulk");
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	char *after = dump_collection(r, "bulk");
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	es_pool_free(pool);
	free(ids);
	free(v);
}
END_TEST

static ino_t snap_inode(const char *name)
{
	char p[600];
	snprintf(p, sizeof p, "%s/snap/%s", dir, name);
	struct stat sb;
	return stat(p, &sb) == 0 ? sb.st_ino : 0;
}

START_TEST(test_idle_collection_not_rewritten)
{
	es_error err;
	es_registry *r = new_reg();
	es_store *s = open_store(r, NULL, NULL);
	make_coll(r, "idle", DIM);  /* lsn 1 */
	make_coll(r, "busy", DIM);  /* lsn 2 */
	ck_assert_int_eq(put_range(r, "idle", 0, 100, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0);
	ino_t ino = snap_inode("idle@1.snap");
	ck_assert_uint_ne(ino, 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(put_range(r, "busy", (uint64_t)round * 10,
					   (uint64_t)round * 10 + 10, 1, &err), 0);
		ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0);
		/* the idle snapshot is kept as it is, yet the log is truncated */
		ck_assert_uint_eq(snap_inode("idle@1.snap"), ino);
		ck_assert_uint_eq(count_files("wal", ".log"), 1);
	}
	ck_assert_int_eq(put_range(r, "busy", 100, 110, 2, &err), 0);
	char *bi = dump_collection(r, "idle"), *bb = dump_collection(r, "busy");
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	char *ai = dump_collection(r, "idle"), *ab = dump_collection(r, "busy");
	ck_assert_str_eq(bi, ai);
	ck_assert_str_eq(bb, ab);
	/* a write makes it dirty again: the next checkpoint rewrites it */
	ck_assert_int_eq(put_range(r, "idle", 500, 501, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0);
	ck_assert_uint_ne(snap_inode("idle@1.snap"), ino);
	free(bi); free(bb); free(ai); free(ab);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

/* Found by tests/fuzz (fuzz_snapshot): when the log ends before the lsn the
 * snapshots hold (its tail lost in a power cut under --fsync batch, or cut
 * by --recover), new records reused lsns the snapshots claim, so the next
 * start skipped them: acknowledged writes vanished. */
START_TEST(test_log_behind_snapshots)
{
	es_error err;
	es_registry *r = new_reg();
	es_store *s = open_store(r, NULL, NULL);
	make_coll(r, "c", DIM);                                  /* lsn 1 */
	ck_assert_int_eq(put_range(r, "c", 0, 10, 1, &err), 0);  /* lsn 2 */
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0); /* segment 2 */
	ck_assert_int_eq(put_range(r, "c", 10, 20, 1, &err), 0); /* lsn 3 */
	ck_assert_int_eq(put_range(r, "c", 20, 30, 1, &err), 0); /* lsn 4 */
	ck_assert_int_eq(es_store_checkpoint(s, NULL, &err), 0); /* snapshot at 4 */
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	/* the log now ends at lsn 2: only an empty segment based there is left */
	char p[600];
	snprintf(p, sizeof p, "%s/wal/%016x.log", dir, 4);
	ck_assert_int_eq(unlink(p), 0);
	snprintf(p, sizeof p, "%s/wal/%016x.log", dir, 2);
	wal_options wo;
	wal_options_default(&wo);
	wo.base_lsn = 2;
	wal *w;
	ck_assert_int_eq(wal_open(p, &wo, NULL, NULL, NULL, &w, &err), 0);
	wal_close(w);

	for (int round = 0; round < 2; round++) {
		r = new_reg();
		s = open_store(r, NULL, NULL);
		es_collection *c;
		ck_assert_int_eq(es_registry_get(r, "c", &c, &err), 0);
		ck_assert_uint_eq(es_collection_count(c), 30 + (size_t)round);
		es_collection_release(c);
		if (round == 0)
			ck_assert_int_eq(put_range(r, "c", 30, 31, 1, &err), 0);
		ck_assert_uint_ge(es_store_last_lsn(s), 4);
		ck_assert_int_eq(es_store_close(s, 0, &err), 0);
		es_registry_free(r);
	}
	r = new_reg();
	s = open_store(r, NULL, NULL);
	ck_assert_int_eq(es_store_close(s, 1, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	es_collection *c;
	ck_assert_int_eq(es_registry_get(r, "c", &c, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 31);
	es_collection_release(c);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

/* --- group commit: many writers, one collection ---------------------- */

struct slow_disk {
	int syncs;
};

static int slow_fdatasync(void *ctx, int fd)
{
	struct slow_disk *d = ctx;
	__atomic_add_fetch(&d->syncs, 1, __ATOMIC_SEQ_CST);
	usleep(3000); /* a disk that takes 3 ms per flush */
	return fdatasync(fd);
}

enum { GC_T = 8, GC_N = 40 };

struct gc_arg {
	es_registry *r;
	int t;
};

static void *gc_writer(void *vp)
{
	struct gc_arg *a = vp;
	es_error err;
	for (int i = 0; i < GC_N; i++) {
		uint64_t id = (uint64_t)a->t * 1000 + (uint64_t)i;
		ck_assert_int_eq(put_range(a->r, "gc", id, id + 1, (uint32_t)i, &err), 0);
		if (i % 5 == 4) /* and now and then a delete of an earlier one */
			ck_assert_int_eq(del_range(a->r, "gc", id - 2, id - 1, &err), 0);
	}
	return NULL;
}

START_TEST(test_group_commit_one_collection)
{
	es_error err;
	struct slow_disk d = {0};
	wal_io_hooks hooks = {&d, NULL, slow_fdatasync};
	es_store_options o;
	es_store_options_default(&o);
	o.hooks = &hooks;
	es_registry *r = new_reg();
	es_store *s = open_store(r, &o, NULL);
	make_coll(r, "gc", DIM);
	int syncs0 = __atomic_load_n(&d.syncs, __ATOMIC_SEQ_CST);
	pthread_t th[GC_T];
	struct gc_arg args[GC_T];
	for (int t = 0; t < GC_T; t++) {
		args[t].r = r;
		args[t].t = t;
		ck_assert_int_eq(pthread_create(&th[t], NULL, gc_writer, &args[t]), 0);
	}
	/* snapshots race the writers: each must note the log position its
	 * contents really correspond to */
	for (int k = 0; k < 4; k++) {
		usleep(20000);
		ck_assert_int_eq(es_store_checkpoint(s, "gc", &err), 0);
	}
	for (int t = 0; t < GC_T; t++)
		pthread_join(th[t], NULL);
	int writes = GC_T * (GC_N + GC_N / 5);
	int syncs = __atomic_load_n(&d.syncs, __ATOMIC_SEQ_CST) - syncs0;
	ck_assert_msg(syncs < writes / 2, "%d fsyncs for %d writes to one collection",
		      syncs, writes);
	char *before = dump_collection(r, "gc");
	ck_assert_msg(strstr(before, "count=256\n") != NULL, "%.40s", before);
	/* no final snapshot: the restart reads the last snapshot plus the log */
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	char *now = dump_collection(r, "gc");
	ck_assert_str_eq(before, now);
	free(now);
	free(before);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
}
END_TEST

static size_t points_of(const char *name, es_registry *r)
{
	es_collection *c;
	es_error err;
	ck_assert_int_eq(es_registry_get(r, name, &c, &err), 0);
	size_t n = es_collection_count(c);
	es_collection_release(c);
	return n;
}

/* Upsert points [from, to) with a vector and a text: words shared by many
 * points and one of the point's own ("uniq" + letters), so every batch
 * grows the lexical index's dictionary and posting lists. */
static int put_text_range(es_registry *r, const char *name, uint64_t from, uint64_t to,
			  es_error *err)
{
	static const char *const common[] = {"library", "catalogue", "archive", "index",
					     "journal", "reader", "science", "books"};
	es_collection *c;
	int rc = es_registry_get(r, name, &c, err);
	if (rc)
		return rc;
	size_t n = to - from;
	es_point_in *pts = calloc(n, sizeof *pts);
	float *vecs = malloc(n * DIM * sizeof *vecs);
	char (*texts)[128] = malloc(n * sizeof *texts);
	for (size_t k = 0; k < n; k++) {
		uint64_t i = from + k;
		char own[16];
		size_t o = 0;
		for (uint64_t x = i + 1; x && o < sizeof own - 1; x /= 26)
			own[o++] = (char)('a' + x % 26);
		own[o] = '\0';
		vec_for(i, 3, vecs + k * DIM);
		pts[k].id.num = i;
		pts[k].vector = vecs + k * DIM;
		int l = snprintf(texts[k], sizeof texts[k], "%s %s %s uniq%s", common[i % 8],
				 common[(i / 8) % 8], common[i % 3], own);
		pts[k].text = texts[k];
		pts[k].text_len = (size_t)l;
	}
	rc = es_collection_upsert(c, pts, n, err);
	free(pts);
	free(vecs);
	free(texts);
	es_collection_release(c);
	return rc;
}

/* The answers of a few lexical searches: ids and scores. */
static char *lexical_answers(es_registry *r, const char *name)
{
	static const char *const q[] = {"library books", "archive", "journal science reader",
					"uniqb uniqc catalogue"};
	es_collection *c;
	es_error err;
	ck_assert_int_eq(es_registry_get(r, name, &c, &err), 0);
	size_t cap = 8192, o = 0;
	char *out = malloc(cap);
	o += (size_t)snprintf(out, cap, "texts=%zu\n", es_collection_lexical_count(c));
	for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
		es_search_req req = {0};
		req.mode = ES_SEARCH_LEXICAL;
		req.text = q[i];
		req.text_len = strlen(q[i]);
		req.k = 8;
		es_point_out *hits;
		size_t nh;
		ck_assert_int_eq(es_collection_search(c, &req, &hits, &nh, &err), 0);
		for (size_t h = 0; h < nh && o + 64 < cap; h++)
			o += (size_t)snprintf(out + o, cap - o, "%llu:%.6g ",
					      (unsigned long long)hits[h].id.num, (double)hits[h].score);
		o += (size_t)snprintf(out + o, cap - o, "\n");
		es_hits_free(hits, nh);
	}
	es_collection_release(c);
	return out;
}

/* Text points under the failing allocator: the lexical index's growth
 * (new words, posting room, documents) is reserved before the record is
 * logged, so every failure is before the log and changes nothing, in the
 * points or in lexical search; after a restart, what was acknowledged. */
static void text_out_of_memory(es_registry *r)
{
	es_error err;
	ck_assert_int_eq(put_text_range(r, "docs", 5000, 5300, &err), 0);
	char *before = dump_collection(r, "docs"), *lbefore = lexical_answers(r, "docs");
	long n, failures = 0;
	for (n = 0;; n++) {
		uint64_t from = 6000 + 50 * (uint64_t)n;
		es_alloc_fail_after(n);
		int rc = put_text_range(r, "docs", from, from + 50, &err);
		es_alloc_fail_disarm();
		if (rc == 0)
			break;
		ck_assert_msg(rc == ES_ENOMEM, "n=%ld: %d %s", n, rc, err.msg);
		ck_assert_msg(!strstr(err.msg, "applying"), "n=%ld: failed after logging: %s", n,
			      err.msg);
		failures++;
		char *now = dump_collection(r, "docs"), *lnow = lexical_answers(r, "docs");
		ck_assert_msg(strcmp(before, now) == 0, "n=%ld: upsert changed the data", n);
		ck_assert_msg(strcmp(lbefore, lnow) == 0, "n=%ld: lexical answers changed: %s", n,
			      lnow);
		free(now);
		free(lnow);
	}
	ck_assert_int_gt(failures, 8); /* the lexical reservations fail too */
	free(before);
	free(lbefore);
}

/* The failing allocator (core/alloc.h): an upsert (record encoding, log
 * append, apply) and a snapshot (es_store_checkpoint) whose Nth allocation
 * fails, for every N, return ES_ENOMEM and change nothing a reader sees; a
 * failed snapshot leaves no temporary file, and after a restart the data
 * is what was acknowledged (no failed batch comes back: every failure is
 * before the log write, for points with text too). */
START_TEST(test_out_of_memory)
{
	es_error err;
	es_registry *r = new_reg();
	es_store *s = open_store(r, NULL, NULL);
	make_coll(r, "docs", DIM);
	ck_assert_int_eq(put_range(r, "docs", 0, 60, 1, &err), 0);
	char *before = dump_collection(r, "docs");
	long n, failures = 0;
	for (n = 0;; n++) {
		es_alloc_fail_after(n);
		/* each attempt its own ids, so a failed one that reappeared
		 * after the restart would show */
		int rc = put_range(r, "docs", 1000 + 40 * (uint64_t)n, 1040 + 40 * (uint64_t)n, 2,
				   &err);
		es_alloc_fail_disarm();
		if (rc == 0)
			break;
		ck_assert_msg(rc == ES_ENOMEM, "n=%ld: %d %s", n, rc, err.msg);
		/* everything the apply needs is reserved before the log write */
		ck_assert_msg(!strstr(err.msg, "applying"), "n=%ld: failed after logging: %s", n,
			      err.msg);
		failures++;
		char *now = dump_collection(r, "docs");
		ck_assert_msg(strcmp(before, now) == 0, "n=%ld: upsert changed the data", n);
		free(now);
	}
	ck_assert_int_gt(failures, 3);
	text_out_of_memory(r);
	char *after = dump_collection(r, "docs"), *lafter = lexical_answers(r, "docs");
	ck_assert_str_ne(after, before);
	/* the log replays to what was acknowledged, and no failed batch
	 * comes back (each failed before its record was written) */
	size_t count_after = points_of("docs", r);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	ck_assert_uint_eq(points_of("docs", r), count_after);
	char *lreplayed = lexical_answers(r, "docs");
	ck_assert_str_eq(lafter, lreplayed);
	free(lafter);
	free(lreplayed);
	char *replayed = dump_collection(r, "docs");
	for (char *line = after; (line = strchr(line, '\n')) && line[1] != '\n'; line++) {
		char want[512];
		const char *e = strchr(line + 1, '\n');
		if (!e || !strchr(line + 1, '|') || strchr(line + 1, '|') > e)
			break; /* the search answers follow the points */
		snprintf(want, sizeof want, "\n%.*s\n", (int)(e - line - 1), line + 1);
		ck_assert_msg(strstr(replayed, want), "acknowledged point lost: %s", want);
	}
	free(after);
	after = replayed; /* what the snapshots below must keep */
	/* snapshots */
	for (n = 0;; n++) {
		es_alloc_fail_after(n);
		int rc = es_store_checkpoint(s, NULL, &err);
		es_alloc_fail_disarm();
		ck_assert_uint_eq(count_files("snap", ".tmp"), 0);
		if (rc == 0)
			break;
		ck_assert_msg(rc == ES_ENOMEM, "n=%ld: %d %s", n, rc, err.msg);
		char *now = dump_collection(r, "docs");
		ck_assert_str_eq(after, now);
		free(now);
	}
	ck_assert_int_gt(n, 3);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	r = new_reg();
	s = open_store(r, NULL, NULL);
	char *now = dump_collection(r, "docs");
	ck_assert_str_eq(after, now);
	free(now);
	ck_assert_int_eq(es_store_close(s, 0, &err), 0);
	es_registry_free(r);
	free(before);
	free(after);
}
END_TEST

/* A collection's name and parameters as written before the lexical index
 * (they end after the 128-byte model name). */
static void old_name_params(es_writer *w, const char *name)
{
	es_w_u8(w, (uint8_t)strlen(name));
	es_w_bytes(w, name, strlen(name));
	es_w_u32(w, DIM);
	es_w_u32(w, (uint32_t)ES_METRIC_COSINE);
	es_w_u32(w, 16);
	es_w_u32(w, 100);
	es_w_u32(w, 0);
	char model[128] = "old-model";
	es_w_bytes(w, model, sizeof model);
}

static void old_append(wal *w, uint32_t type, es_bytebuf *b)
{
	es_error err;
	uint64_t lsn;
	ck_assert_int_eq(wal_append(w, type, b->data, b->len, &lsn, &err), 0);
	es_bytebuf_free(b);
}

static void old_upsert(wal *w, const char *name, uint64_t id)
{
	wal_buf body;
	wal_buf_init(&body);
	float v[DIM];
	vec_for(id, 0, v);
	wal_id wid = {.num = id};
	ck_assert_int_eq(wal_upsert_begin(&body, DIM, 1), 0);
	ck_assert_int_eq(wal_upsert_add(&body, &wid, v, DIM, NULL, 0), 0);
	es_bytebuf b;
	es_writer ew;
	es_bytebuf_init(&b);
	es_writer_init_mem(&ew, &b, NULL);
	es_w_u8(&ew, (uint8_t)strlen(name));
	es_w_bytes(&ew, name, strlen(name));
	es_w_bytes(&ew, body.data, body.len);
	ck_assert_int_eq(es_writer_finish(&ew), 0);
	wal_buf_free(&body);
	old_append(w, WAL_REC_UPSERT, &b);
}

/* Files from before the lexical index still load: a version-1 manifest
 * and CREATE records without lexical parameters; the collections get the
 * default ones, and a restart after the checkpoint (which writes today's
 * formats) gives the same. */
START_TEST(test_old_manifest_and_records_load)
{
	char path[600];
	es_error err;
	snprintf(path, sizeof path, "%s/wal", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/wal/%016x.log", dir, 0u);
	wal_options wo;
	wal_options_default(&wo);
	wal *w;
	ck_assert_int_eq(wal_open(path, &wo, NULL, NULL, NULL, &w, &err), 0);
	es_bytebuf b;
	es_writer ew;
	es_bytebuf_init(&b);
	es_writer_init_mem(&ew, &b, NULL);
	old_name_params(&ew, "old1"); /* lsn 1, also in the manifest */
	ck_assert_int_eq(es_writer_finish(&ew), 0);
	old_append(w, WAL_REC_CREATE, &b);
	es_bytebuf_init(&b);
	es_writer_init_mem(&ew, &b, NULL);
	old_name_params(&ew, "old2"); /* lsn 2: only in the log */
	ck_assert_int_eq(es_writer_finish(&ew), 0);
	old_append(w, WAL_REC_CREATE, &b);
	old_upsert(w, "old1", 10);
	old_upsert(w, "old2", 20);
	wal_close(w);

	es_bytebuf_init(&b);
	es_writer_init_mem(&ew, &b, NULL);
	es_w_u32(&ew, 1); /* manifest version 1 */
	es_w_u32(&ew, 1);
	old_name_params(&ew, "old1");
	es_w_u64(&ew, 1); /* created at lsn 1 */
	es_w_u64(&ew, 0); /* no snapshot */
	ck_assert_int_eq(es_writer_finish(&ew), 0);
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	ck_assert_int_eq(snapshot_write_file(path, 1, 0x494e414du /* "MANI" */, b.data,
					     b.len, &err), 0);
	es_bytebuf_free(&b);

	es_lexical_params def;
	es_lexical_params_default(&def);
	for (int round = 0; round < 2; round++) {
		es_registry *r;
		ck_assert_int_eq(es_registry_new(api_payload_hooks(), &r, &err), 0);
		es_store *s = open_store(r, NULL, NULL);
		for (int k = 0; k < 2; k++) {
			es_collection *c;
			ck_assert_int_eq(es_registry_get(r, k ? "old2" : "old1", &c, &err), 0);
			ck_assert_uint_eq(es_collection_count(c), 1);
			const es_collection_params *p = es_collection_get_params(c);
			ck_assert_uint_eq(p->dim, DIM);
			ck_assert_uint_eq(p->M, 16);
			ck_assert_str_eq(p->model, "old-model");
			ck_assert(p->lexical.k1 == def.k1 && p->lexical.b == def.b);
			es_collection_release(c);
		}
		ck_assert_int_eq(es_store_close(s, 1, &err), 0);
		es_registry_free(r);
	}
}
END_TEST

Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_restart_log_snapshot_clean);
	tcase_add_test(tc, test_payload_update_durable);
	tcase_add_test(tc, test_drop_and_recreate);
	tcase_add_test(tc, test_disk_errors_change_nothing);
	tcase_add_test(tc, test_damaged_files);
	tcase_add_test(tc, test_auto_checkpoint);
	tcase_add_test(tc, test_bulk_insert_then_snapshot);
	tcase_add_test(tc, test_idle_collection_not_rewritten);
	tcase_add_test(tc, test_log_behind_snapshots);
	tcase_add_test(tc, test_out_of_memory);
	tcase_add_test(tc, test_old_manifest_and_records_load);
	suite_add_tcase(s, tc);

	/* writers under threads; CI also runs this case under ThreadSanitizer */
	TCase *cc = tcase_create("concurrency");
	tcase_add_checked_fixture(cc, setup, teardown);
	tcase_set_timeout(cc, 120);
	tcase_add_test(cc, test_group_commit_one_collection);
	suite_add_tcase(s, cc);
	return s;
}
