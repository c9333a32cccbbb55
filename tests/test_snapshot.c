/* test_snapshot.c — snapshot container: round trip (whole, streamed and
 * FILE* sections across buffer flushes), atomic replace on success and on
 * injected write/fsync failure, every flipped byte and every truncation
 * detected with file and offset named, cursor bounds. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "snapshot.h"

#define GOLDEN_SIZE 3404832u
#define GOLDEN_CRC 0xd4300cecu

static char dir[256];
static char path[300];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/es_snap_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/snap", dir);
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static void tmp_path(char *buf, size_t n)
{
	snprintf(buf, n, "%s.tmp", path);
}

enum { BIG = 3 * 1024 * 1024 + 13 };

static unsigned char *big_data(void)
{
	unsigned char *d = malloc(BIG);
	uint32_t s = 7;
	for (size_t i = 0; i < BIG; i++) {
		s = s * 1103515245u + 12345u;
		d[i] = (unsigned char)(s >> 16);
	}
	return d;
}

START_TEST(test_roundtrip)
{
	unsigned char *big = big_data();
	snapshot_writer *w;
	es_error err;
	ck_assert_int_eq(snapshot_writer_new(path, 1234567890123ull, NULL, &w, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 1, "hello", 5, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 2, NULL, 0, &err), 0);
	/* a streamed section many times the writer's buffer, in odd pieces */
	ck_assert_int_eq(snapshot_section_begin(w, 3, &err), 0);
	for (size_t off = 0; off < BIG;) {
		size_t n = (off / 7 % 100003) + 1;
		if (n > BIG - off)
			n = BIG - off;
		ck_assert_int_eq(snapshot_section_append(w, big + off, n, &err), 0);
		off += n;
	}
	ck_assert_int_eq(snapshot_section_end(w, &err), 0);
	/* a FILE* section, as hnsw_write uses */
	ck_assert_int_eq(snapshot_section_begin(w, 4, &err), 0);
	FILE *f = snapshot_section_stream(w);
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "line %d\n", i);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(snapshot_section_end(w, &err), 0);
	ck_assert_int_eq(snapshot_writer_commit(w, &err), 0);
	char tmp[320];
	tmp_path(tmp, sizeof tmp);
	ck_assert(!exists(tmp));

	snapshot *s;
	ck_assert_int_eq(snapshot_open(path, &s, &err), 0);
	ck_assert_uint_eq(snapshot_lsn(s), 1234567890123ull);
	ck_assert_str_eq(snapshot_path(s), path);
	const void *d;
	size_t len;
	ck_assert_int_eq(snapshot_section(s, 1, &d, &len), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert(memcmp(d, "hello", 5) == 0);
	ck_assert_int_eq(snapshot_section(s, 2, &d, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(snapshot_section(s, 3, &d, &len), 0);
	ck_assert_uint_eq(len, BIG);
	ck_assert(memcmp(d, big, BIG) == 0);
	ck_assert_int_eq(snapshot_section(s, 99, &d, &len), ES_ENOTFOUND);
	f = snapshot_section_fopen(s, 4);
	ck_assert_ptr_nonnull(f);
	char line[64];
	for (int i = 0; i < 1000; i++) {
		ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
		char want[32];
		snprintf(want, sizeof want, "line %d\n", i);
		ck_assert_str_eq(line, want);
	}
	ck_assert_ptr_null(fgets(line, sizeof line, f));
	fclose(f);
	ck_assert_ptr_null(snapshot_section_fopen(s, 99));
	snapshot_close(s);
	free(big);

	/* replacing: the new file wins atomically */
	ck_assert_int_eq(snapshot_write_file(path, 5, 7, "new", 3, &err), 0);
	ck_assert_int_eq(snapshot_open(path, &s, &err), 0);
	ck_assert_uint_eq(snapshot_lsn(s), 5);
	ck_assert_int_eq(snapshot_section(s, 7, &d, &len), 0);
	ck_assert(len == 3 && memcmp(d, "new", 3) == 0);
	snapshot_close(s);
	ck_assert_int_eq(snapshot_open("/nonexistent/x", &s, &err), ES_ENOTFOUND);
}
END_TEST

struct fail_io {
	long budget; /* bytes writable before ENOSPC; -1 unlimited */
	int fail_fsync;
};

static ssize_t fail_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	struct fail_io *io = ctx;
	if (io->budget >= 0) {
		if (io->budget == 0) {
			errno = ENOSPC;
			return -1;
		}
		if ((long)n > io->budget)
			n = (size_t)io->budget;
		io->budget -= (long)n;
	}
	return pwrite(fd, buf, n, off);
}

static int fail_fsync(void *ctx, int fd)
{
	struct fail_io *io = ctx;
	if (io->fail_fsync) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

START_TEST(test_failures_keep_old_file)
{
	es_error err;
	ck_assert_int_eq(snapshot_write_file(path, 1, 1, "old", 3, &err), 0);
	unsigned char *big = big_data();
	char tmp[320];
	tmp_path(tmp, sizeof tmp);
	long budgets[] = {0, 10, 64, 100, 1 << 20, (1 << 20) + 5, 2 << 20};
	for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
		struct fail_io io = {budgets[b], 0};
		snapshot_io_hooks hooks = {&io, fail_pwrite, fail_fsync};
		snapshot_writer *w;
		ck_assert_int_eq(snapshot_writer_new(path, 2, &hooks, &w, &err), 0);
		int rc = snapshot_write_section(w, 1, big, BIG, &err);
		if (rc == 0)
			rc = snapshot_writer_commit(w, &err);
		else
			rc = snapshot_writer_commit(w, &err); /* commit reports the sticky error */
		ck_assert_int_eq(rc, ES_ENOSPC);
		ck_assert_msg(strstr(err.msg, tmp) != NULL, "%s", err.msg);
		ck_assert(!exists(tmp));
		snapshot *s;
		ck_assert_int_eq(snapshot_open(path, &s, &err), 0);
		ck_assert_uint_eq(snapshot_lsn(s), 1);
		snapshot_close(s);
	}
	struct fail_io io = {-1, 1};
	snapshot_io_hooks hooks = {&io, fail_pwrite, fail_fsync};
	snapshot_writer *w;
	ck_assert_int_eq(snapshot_writer_new(path, 3, &hooks, &w, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 1, "x", 1, &err), 0);
	ck_assert_int_eq(snapshot_writer_commit(w, &err), ES_EIO);
	ck_assert(!exists(tmp));
	ck_assert_int_eq(snapshot_writer_new(path, 4, NULL, &w, &err), 0);
	snapshot_writer_abort(w);
	ck_assert(!exists(tmp));
	snapshot *s;
	ck_assert_int_eq(snapshot_open(path, &s, &err), 0);
	ck_assert_uint_eq(snapshot_lsn(s), 1);
	snapshot_close(s);
	free(big);
}
END_TEST

START_TEST(test_every_flip_and_cut_detected)
{
	es_error err;
	snapshot_writer *w;
	ck_assert_int_eq(snapshot_writer_new(path, 9, NULL, &w, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 1, "abcdefghij", 10, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 2, "0123456789abcdef", 16, &err), 0);
	ck_assert_int_eq(snapshot_writer_commit(w, &err), 0);
	FILE *f = fopen(path, "rb");
	unsigned char orig[512];
	size_t n = fread(orig, 1, sizeof orig, f);
	fclose(f);
	ck_assert_uint_gt(n, 64);
	for (size_t i = 0; i < n; i++) {
		unsigned char copy[512];
		memcpy(copy, orig, n);
		copy[i] ^= 0x10;
		f = fopen(path, "wb");
		fwrite(copy, 1, n, f);
		fclose(f);
		snapshot *s = NULL;
		es_error_clear(&err);
		int rc = snapshot_open(path, &s, &err);
		ck_assert_msg(rc == ES_ECORRUPT, "byte %zu: rc %d", i, rc);
		ck_assert_ptr_null(s);
		ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "offset "),
			      "byte %zu: %s", i, err.msg);
	}
	for (size_t cut = 0; cut < n; cut++) {
		f = fopen(path, "wb");
		fwrite(orig, 1, cut, f);
		fclose(f);
		snapshot *s = NULL;
		ck_assert_int_eq(snapshot_open(path, &s, &err), ES_ECORRUPT);
	}
	f = fopen(path, "wb");
	fwrite(orig, 1, n, f);
	fwrite("junk", 1, 4, f);
	fclose(f);
	snapshot *s = NULL;
	ck_assert_int_eq(snapshot_open(path, &s, &err), ES_ECORRUPT);
}
END_TEST

START_TEST(test_padding_is_zero)
{
	/* sections are padded to 8 bytes (the reader insists the padding is zero) */
	es_error err;
	ck_assert_int_eq(snapshot_write_file(path, 0, 1, "abc", 3, &err), 0);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 64 + 24 + 8);
}
END_TEST

/* The exact bytes: a snapshot whose section headers are patched both while
 * still buffered and after their data was flushed (sections of 5 bytes,
 * 0, 70000 and 3 MiB, and a FILE* section) must come out byte for byte as
 * the writer before the merge into core/lerw wrote it (size and CRC-32C of
 * the whole file recorded from that writer), so the format did not move. */
START_TEST(test_bytes_unchanged)
{
	unsigned char *big = big_data();
	snapshot_writer *w;
	es_error err;
	ck_assert_int_eq(snapshot_writer_new(path, 42, NULL, &w, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 1, "hello", 5, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 2, NULL, 0, &err), 0);
	ck_assert_int_eq(snapshot_write_section(w, 3, big, 70000, &err), 0);
	ck_assert_int_eq(snapshot_section_begin(w, 4, &err), 0);
	for (size_t off = 0; off < BIG;) {
		size_t n = (off / 5 % 70001) + 1;
		if (n > BIG - off)
			n = BIG - off;
		ck_assert_int_eq(snapshot_section_append(w, big + off, n, &err), 0);
		off += n;
	}
	ck_assert_int_eq(snapshot_section_end(w, &err), 0);
	ck_assert_int_eq(snapshot_section_begin(w, 5, &err), 0);
	FILE *f = snapshot_section_stream(w);
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 20000; i++)
		fprintf(f, "row %d\n", i);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(snapshot_section_end(w, &err), 0);
	snapshot_writer_set_lsn(w, 43);
	ck_assert_int_eq(snapshot_writer_commit(w, &err), 0);
	free(big);

	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	unsigned char chunk[65536];
	uint32_t crc = 0;
	size_t size = 0, n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		crc = crc32c(crc, chunk, n);
		size += n;
	}
	fclose(f);
	ck_assert_uint_eq(size, GOLDEN_SIZE);
	ck_assert_uint_eq(crc, GOLDEN_CRC);
}
END_TEST

Suite *snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_failures_keep_old_file);
	tcase_add_test(tc, test_every_flip_and_cut_detected);
	tcase_add_test(tc, test_padding_is_zero);
	tcase_add_test(tc, test_bytes_unchanged);
	suite_add_tcase(s, tc);
	return s;
}
