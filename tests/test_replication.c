/* test_replication.c — log shipping at the store level (index/store.h):
 * a follower's data directory bootstrapped from a primary's bundle and fed
 * with the primary's log records gives back exactly what the primary holds
 * (every point bit-exact, the same search answers), across the primary's
 * checkpoints (segment switches and deletions), creates and drops, and the
 * follower's own restart (it resumes at its last lsn with the same
 * checksum); the primary refuses an lsn past its log (a follower ahead:
 * diverged) and one older than its kept log (gone); damaged or hostile
 * bundles and records are refused and change nothing; the bundle streams
 * from the primary's open files, unchanged by what the primary does while
 * it is read. */
#include <check.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "es_test_store.h"
#include "store.h"

static char pdir[256], fdir[256];

static void setup(void)
{
	snprintf(pdir, sizeof pdir, "/tmp/es_replp_XXXXXX");
	snprintf(fdir, sizeof fdir, "/tmp/es_replf_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pdir));
	ck_assert_ptr_nonnull(mkdtemp(fdir));
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", pdir, fdir);
	ck_assert_int_eq(system(cmd), 0);
}

static es_store *open_at(const char *d, es_registry *r, int follower, uint64_t retain)
{
	es_store_options o;
	es_store_options_default(&o);
	o.follower = follower;
	o.retain_bytes = retain;
	es_store *s;
	es_error err;
	int rc = es_store_open(d, &o, r, NULL, &s, &err);
	ck_assert_msg(rc == 0, "open %s: %s", d, err.msg);
	return s;
}

static void create(es_registry *r, const char *name)
{
	es_collection_params p;
	memset(&p, 0, sizeof p);
	p.dim = DIM;
	p.metric = ES_METRIC_COSINE;
	es_error err;
	ck_assert_int_eq(es_registry_create(r, name, &p, NULL, &err), 0);
}

/* The bundle of the primary, as a FILE to read from. */
static FILE *bundle_of(es_store *p)
{
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	es_error err;
	uint64_t lsn;
	int rc = es_store_bundle(p, fileno(f), &lsn, &err);
	ck_assert_msg(rc == 0, "bundle: %s", err.msg);
	ck_assert_uint_eq(lsn, es_store_last_lsn(p));
	rewind(f);
	return f;
}

/* Ship everything the follower lacks, in reads of max bytes; checks the
 * primary's CRC of the follower's last record against the follower's own. */
static void catch_up(es_store *p, es_store *f, size_t max)
{
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t from = es_store_last_lsn(f);
		wal_buf b;
		wal_buf_init(&b);
		es_store_ship info;
		es_error err;
		int rc = es_store_ship_log(p, from, max, &b, &info, &err);
		ck_assert_msg(rc == 0, "ship from %llu: %s", (unsigned long long)from, err.msg);
		if (es_store_last_crc(f) && info.prev_crc)
			ck_assert_uint_eq(info.prev_crc, es_store_last_crc(f));
		if (b.len == 0) {
			wal_buf_free(&b);
			if (from == info.last_lsn)
				return;
			continue; /* a segment ended exactly at `from`: the next one */
		}
		uint64_t applied;
		rc = es_store_follow_apply(f, b.data, b.len, &applied, &err);
		ck_assert_msg(rc == 0, "apply: %s", err.msg);
		ck_assert_uint_eq(applied, from + info.records);
		wal_buf_free(&b);
	}
	ck_abort_msg("did not catch up");
}

static void same(es_registry *a, es_registry *b, const char *name)
{
	char *x = dump_collection(a, name), *y = dump_collection(b, name);
	ck_assert_str_eq(x, y);
	free(x);
	free(y);
}

START_TEST(follows_across_checkpoints_and_restarts)
{
	es_error err;
	es_registry *pr = new_reg(), *fr = new_reg();
	es_store *p = open_at(pdir, pr, 0, 1 << 30);
	create(pr, "a");
	ck_assert_int_eq(put_range(pr, "a", 0, 300, 1, &err), 0);
	ck_assert_int_eq(del_range(pr, "a", 10, 20, &err), 0);

	FILE *bf = bundle_of(p);
	uint64_t lsn;
	ck_assert_int_eq(es_store_needs_bootstrap(fdir), 1);
	ck_assert_int_eq(es_store_install_bundle(fdir, bf, &lsn, &err), 0);
	fclose(bf);
	ck_assert_int_eq(es_store_needs_bootstrap(fdir), 0);
	es_store *f = open_at(fdir, fr, 1, 0);
	ck_assert_uint_eq(es_store_last_lsn(f), lsn);
	same(pr, fr, "a");

	/* more writes, a create and a drop, a checkpoint that switches and
	 * deletes segments in the middle; shipped in small reads */
	for (uint32_t round = 0; round < 4; round++) {
		ck_assert_int_eq(put_range(pr, "a", round * 50, round * 50 + 120, round + 2, &err), 0);
		ck_assert_int_eq(del_range(pr, "a", round * 7, round * 7 + 3, &err), 0);
		if (round == 1) {
			create(pr, "b");
			ck_assert_int_eq(put_range(pr, "b", 0, 40, 9, &err), 0);
		}
		if (round == 2)
			ck_assert_int_eq(es_registry_drop(pr, "b", &err), 0);
		if (round % 2 == 0)
			ck_assert_int_eq(es_store_checkpoint(p, NULL, &err), 0);
		catch_up(p, f, round == 3 ? 1 : 4096);
		ck_assert_uint_eq(es_store_last_lsn(f), es_store_last_lsn(p));
		same(pr, fr, "a");
		if (round == 1)
			same(pr, fr, "b");
	}
	es_collection *gone;
	ck_assert_int_eq(es_registry_get(fr, "b", &gone, &err), ES_ENOTFOUND);

	/* the follower checkpoints and restarts like any server */
	ck_assert_int_eq(es_store_checkpoint(f, NULL, &err), 0);
	ck_assert_int_eq(put_range(pr, "a", 500, 520, 7, &err), 0);
	catch_up(p, f, 1 << 20);
	uint64_t at = es_store_last_lsn(f);
	uint32_t crc = es_store_last_crc(f);
	ck_assert_uint_ne(crc, 0);
	ck_assert_int_eq(es_store_close(f, 0, &err), 0);
	es_registry_free(fr);
	fr = new_reg();
	f = open_at(fdir, fr, 1, 0);
	ck_assert_uint_eq(es_store_last_lsn(f), at);
	ck_assert_uint_eq(es_store_last_crc(f), crc);
	same(pr, fr, "a");

	/* a follower never logs a change of its own */
	create(fr, "local");
	ck_assert_uint_eq(es_store_last_lsn(f), at);

	ck_assert_int_eq(es_store_close(f, 1, &err), 0);
	ck_assert_int_eq(es_store_close(p, 1, &err), 0);
	es_registry_free(fr);
	es_registry_free(pr);
}
END_TEST

START_TEST(primary_refuses_ahead_and_gone)
{
	es_error err;
	es_registry *pr = new_reg();
	es_store *p = open_at(pdir, pr, 0, 0);
	create(pr, "a");
	ck_assert_int_eq(put_range(pr, "a", 0, 30, 1, &err), 0);
	uint64_t last = es_store_last_lsn(p);
	wal_buf b;
	wal_buf_init(&b);
	es_store_ship info;
	ck_assert_int_eq(es_store_ship_log(p, last + 1, 1 << 20, &b, &info, &err), ES_ERANGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "older backup"));
	ck_assert_uint_eq(info.last_lsn, last);
	ck_assert_int_eq(es_store_ship_log(p, last, 1 << 20, &b, &info, &err), 0);
	ck_assert_uint_eq(b.len, 0);
	/* after a checkpoint the old segment is gone: lsn 0 can no longer be served */
	ck_assert_int_eq(put_range(pr, "a", 30, 40, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(p, NULL, &err), 0);
	ck_assert_int_eq(es_store_ship_log(p, 0, 1 << 20, &b, &info, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "bootstrap again"));
	/* from the new segment's base: the CRC comes from its header */
	ck_assert_int_eq(es_store_ship_log(p, info.first_lsn, 1 << 20, &b, &info, &err), 0);
	ck_assert_uint_eq(info.prev_crc, es_store_last_crc(p));
	ck_assert_uint_ne(info.prev_crc, 0);
	wal_buf_free(&b);
	ck_assert_int_eq(es_store_close(p, 0, &err), 0);
	es_registry_free(pr);
}
END_TEST

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct later_put {
	es_registry *r;
	useconds_t delay;
};

static void *put_later(void *arg)
{
	struct later_put *l = arg;
	usleep(l->delay);
	es_error err;
	ck_assert_int_eq(put_range(l->r, "a", 100, 101, 1, &err), 0);
	return NULL;
}

/* The long poll's wait: woken by an append long before it would expire,
 * at once when something (or an error) is already there, 0 at expiry, and
 * -1 at once after es_store_ship_stop (for good). */
START_TEST(ship_wait_wakes_on_append)
{
	es_error err;
	es_registry *pr = new_reg();
	es_store *p = open_at(pdir, pr, 0, 0);
	create(pr, "a");
	ck_assert_int_eq(put_range(pr, "a", 0, 5, 1, &err), 0);
	uint64_t last = es_store_last_lsn(p);
	double t = mono_s();
	ck_assert_int_eq(es_store_ship_wait(p, last - 1, 10000), 1); /* a record is there */
	ck_assert_int_eq(es_store_ship_wait(p, last + 5, 10000), 1); /* ahead: the error */
	ck_assert_double_lt(mono_s() - t, 1.0);
	t = mono_s();
	ck_assert_int_eq(es_store_ship_wait(p, last, 200), 0);
	double took = mono_s() - t;
	ck_assert_double_ge(took, 0.19);
	ck_assert_double_lt(took, 5.0);
	struct later_put l = {pr, 200000};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, put_later, &l), 0);
	t = mono_s();
	ck_assert_int_eq(es_store_ship_wait(p, last, 20000), 1);
	took = mono_s() - t;
	ck_assert_double_lt(took, 10.0); /* woken by the append, not the 20 s expiry */
	pthread_join(th, NULL);
	ck_assert_uint_gt(es_store_last_lsn(p), last);
	last = es_store_last_lsn(p);
	es_store_ship_stop(p);
	t = mono_s();
	ck_assert_int_eq(es_store_ship_wait(p, last, 20000), -1);
	ck_assert_double_lt(mono_s() - t, 1.0);
	ck_assert_int_eq(es_store_close(p, 0, &err), 0);
	es_registry_free(pr);
}
END_TEST

/* A bundle with one byte changed at `off` (from the end when negative). */
static FILE *damaged(es_store *p, long off, unsigned char x)
{
	FILE *f = bundle_of(p);
	fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
	long at = ftell(f);
	int c = fgetc(f);
	fseek(f, at, SEEK_SET);
	fputc(c ^ x, f);
	rewind(f);
	return f;
}

static FILE *bytes_file(const void *p, size_t n)
{
	FILE *f = tmpfile();
	fwrite(p, 1, n, f);
	rewind(f);
	return f;
}

START_TEST(bad_bundles_change_nothing)
{
	es_error err;
	es_registry *pr = new_reg();
	es_store *p = open_at(pdir, pr, 0, 0);
	create(pr, "a");
	ck_assert_int_eq(put_range(pr, "a", 0, 50, 1, &err), 0);
	/* a follower directory with data of its own */
	FILE *good = bundle_of(p);
	uint64_t lsn;
	ck_assert_int_eq(es_store_install_bundle(fdir, good, &lsn, &err), 0);
	fclose(good);
	char before[300];
	snprintf(before, sizeof before, "%s/MANIFEST", fdir);
	struct stat sb0;
	ck_assert_int_eq(stat(before, &sb0), 0);

	FILE *bad[5];
	bad[0] = damaged(p, 0, 0x20);   /* magic */
	bad[1] = damaged(p, -3, 0x01);  /* a file's checksum (the last one) */
	bad[2] = damaged(p, -10, 0x40); /* a log byte */
	static const unsigned char trav[] = "ESREPL01\0\0\0\0\0\0\0\0\x0b\0../../etc/x"
					    "\x01\0\0\0\0\0\0\0Z\0\0\0\0\0\0";
	bad[3] = bytes_file(trav, sizeof trav - 1);
	static const unsigned char cut[] = "ESREPL01\0\0\0\0\0\0\0\0\x08\0MANIFEST\xff\xff";
	bad[4] = bytes_file(cut, sizeof cut - 1);
	for (int i = 0; i < 5; i++) {
		int rc = es_store_install_bundle(fdir, bad[i], &lsn, &err);
		ck_assert_msg(rc == ES_ECORRUPT, "bundle %d: %d %s", i, rc, err.msg);
		fclose(bad[i]);
		ck_assert_int_eq(es_store_needs_bootstrap(fdir), 0);
	}
	struct stat sb1;
	ck_assert_int_eq(stat(before, &sb1), 0);
	ck_assert_int_eq(sb0.st_ino, sb1.st_ino);
	es_registry *fr = new_reg();
	es_store *f = open_at(fdir, fr, 1, 0);
	same(pr, fr, "a");

	/* a damaged record: the ones before it are applied, it is refused */
	ck_assert_int_eq(put_range(pr, "a", 100, 103, 1, &err), 0);
	ck_assert_int_eq(put_range(pr, "a", 103, 106, 1, &err), 0);
	wal_buf b;
	wal_buf_init(&b);
	es_store_ship info;
	uint64_t from = es_store_last_lsn(f);
	ck_assert_int_eq(es_store_ship_log(p, from, 1 << 20, &b, &info, &err), 0);
	ck_assert_uint_eq(info.records, 2);
	b.data[b.len - 1] ^= 1;
	uint64_t applied;
	ck_assert_int_eq(es_store_follow_apply(f, b.data, b.len, &applied, &err), ES_ECORRUPT);
	ck_assert_uint_eq(applied, from + 1);
	ck_assert_uint_eq(es_store_last_lsn(f), from + 1);
	/* records that do not continue the log (lsn from+1 again) are refused */
	b.data[b.len - 1] ^= 1;
	ck_assert_int_eq(es_store_follow_apply(f, b.data, b.len, &applied, &err), ES_ECORRUPT);
	ck_assert_uint_eq(es_store_last_lsn(f), from + 1);
	wal_buf_free(&b);
	catch_up(p, f, 1 << 20);
	same(pr, fr, "a");
	/* a primary's store is not fed this way */
	ck_assert_int_eq(es_store_follow_apply(p, "", 0, &applied, &err), ES_EINVAL);

	ck_assert_int_eq(es_store_close(f, 0, &err), 0);
	ck_assert_int_eq(es_store_close(p, 0, &err), 0);
	es_registry_free(fr);
	es_registry_free(pr);
}
END_TEST

/* The bundle read out in pieces of awkward sizes is byte for byte the
 * bundle written in one go, its size is known before the first byte, and
 * what the primary does while a follower is still reading (more writes, a
 * checkpoint that replaces the snapshot and removes old log segments, a
 * dropped collection) changes nothing in it: it installs to the state at
 * its lsn. */
START_TEST(bundle_streams_from_open_files)
{
	es_error err;
	es_registry *pr = new_reg(), *fr = new_reg();
	es_store *p = open_at(pdir, pr, 0, 0);
	create(pr, "a");
	create(pr, "b");
	ck_assert_int_eq(put_range(pr, "a", 0, 400, 1, &err), 0);
	ck_assert_int_eq(put_range(pr, "b", 0, 50, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(p, NULL, &err), 0);
	ck_assert_int_eq(put_range(pr, "a", 400, 450, 1, &err), 0);
	char *want_a = dump_collection(pr, "a"), *want_b = dump_collection(pr, "b");

	FILE *whole = bundle_of(p);
	ck_assert_int_eq(fseek(whole, 0, SEEK_END), 0);
	long wlen = ftell(whole);
	unsigned char *w = malloc((size_t)wlen);
	ck_assert_ptr_nonnull(w);
	rewind(whole);
	ck_assert_int_eq(fread(w, 1, (size_t)wlen, whole), (size_t)wlen);
	fclose(whole);

	es_bundle *b;
	ck_assert_int_eq(es_bundle_open(p, &b, &err), 0);
	ck_assert_uint_eq(es_bundle_size(b), (uint64_t)wlen);
	ck_assert_uint_eq(es_bundle_lsn(b), es_store_last_lsn(p));
	uint64_t lsn0 = es_bundle_lsn(b);
	/* the primary goes on while the bundle is being read */
	ck_assert_int_eq(put_range(pr, "a", 450, 600, 1, &err), 0);
	ck_assert_int_eq(es_store_checkpoint(p, NULL, &err), 0);
	ck_assert_int_eq(es_registry_drop(pr, "b", &err), 0);
	ck_assert_int_eq(es_store_checkpoint(p, NULL, &err), 0);

	FILE *got = tmpfile();
	ck_assert_ptr_nonnull(got);
	static const size_t sizes[] = {1, 7, 23, 4093, 1, 65536, 3};
	unsigned char buf[65536];
	uint64_t total = 0;
	for (size_t i = 0;; i++) {
		ssize_t k = es_bundle_read(b, buf, sizes[i % 7], &err);
		ck_assert_msg(k >= 0, "read: %s", err.msg);
		if (k == 0)
			break;
		ck_assert_uint_le((size_t)k, sizes[i % 7]);
		ck_assert_int_eq(memcmp(buf, w + total, (size_t)k), 0);
		ck_assert_int_eq(fwrite(buf, 1, (size_t)k, got), (size_t)k);
		total += (uint64_t)k;
	}
	ck_assert_uint_eq(total, (uint64_t)wlen);
	ck_assert_int_eq(es_bundle_read(b, buf, sizeof buf, &err), 0);
	es_bundle_free(b);
	es_bundle_free(NULL);
	free(w);

	/* installed without fsyncs: usable at once, but a start before the
	 * sync finished would bootstrap again; the sync may run with the
	 * directory open */
	rewind(got);
	uint64_t lsn;
	ck_assert_int_eq(es_store_install_bundle_unsynced(fdir, got, &lsn, &err), 0);
	fclose(got);
	ck_assert_uint_eq(lsn, lsn0);
	ck_assert_int_eq(es_store_needs_bootstrap(fdir), 1);
	es_store *f = open_at(fdir, fr, 1, 0);
	ck_assert_int_eq(es_store_install_sync(fdir, &err), 0);
	ck_assert_int_eq(es_store_needs_bootstrap(fdir), 0);
	char *x = dump_collection(fr, "a"), *y = dump_collection(fr, "b");
	ck_assert_str_eq(x, want_a);
	ck_assert_str_eq(y, want_b);
	free(x);
	free(y);
	free(want_a);
	free(want_b);
	ck_assert_int_eq(es_store_close(f, 0, &err), 0);
	ck_assert_int_eq(es_store_close(p, 0, &err), 0);
	es_registry_free(fr);
	es_registry_free(pr);
}
END_TEST

START_TEST(record_parse_checks_like_replay)
{
	es_error err;
	unsigned char rec[64];
	memset(rec, 0, sizeof rec);
	uint32_t type;
	const void *pl;
	size_t plen, rl;
	/* too short, then a zeroed header (its checksum does not match) */
	ck_assert_int_eq(wal_record_parse(rec, 10, 1, &type, &pl, &plen, &rl, &err), ES_ECORRUPT);
	ck_assert_int_eq(wal_record_parse(rec, sizeof rec, 1, &type, &pl, &plen, &rl, &err),
			 ES_ECORRUPT);
}
END_TEST

Suite *replication_suite(void)
{
	Suite *s = suite_create("replication");
	TCase *t = tcase_create("core");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, follows_across_checkpoints_and_restarts);
	tcase_add_test(t, primary_refuses_ahead_and_gone);
	tcase_add_test(t, ship_wait_wakes_on_append);
	tcase_add_test(t, bad_bundles_change_nothing);
	tcase_add_test(t, bundle_streams_from_open_files);
	tcase_add_test(t, record_parse_checks_like_replay);
	suite_add_tcase(s, t);
	return s;
}
