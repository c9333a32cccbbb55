/* test_fileio.c — core/fileio: es_file_replace puts the new contents in
 * place and leaves no temporary file; a failing writer or fsync leaves the
 * old file untouched and no temporary file; publish keeps the fd usable. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/es_fileio_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int write_text(void *ctx, FILE *f, es_error *err)
{
	(void)err;
	fputs(ctx, f);
	return 0;
}

static int write_fails(void *ctx, FILE *f, es_error *err)
{
	fputs(ctx, f);
	return es_err(err, ES_EINVAL, "writer refused");
}

static char *slurp(const char *p)
{
	static char b[256];
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	size_t n = fread(b, 1, sizeof b - 1, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

static int fail_fsync(void *ctx, int fd)
{
	(void)ctx;
	(void)fd;
	errno = EIO;
	return -1;
}

START_TEST(test_replace)
{
	char path[128], tmp[140];
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	es_error err;
	ck_assert_int_eq(es_file_replace(path, write_text, "one", &err), 0);
	ck_assert_str_eq(slurp(path), "one");
	ck_assert_int_eq(es_file_replace(path, write_text, "two", &err), 0);
	ck_assert_str_eq(slurp(path), "two");
	ck_assert_int_ne(access(tmp, F_OK), 0);
	/* a refusing writer: old contents stay, no temporary file */
	ck_assert_int_eq(es_file_replace(path, write_fails, "three", &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "writer refused"));
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	ck_assert_str_eq(slurp(path), "two");
	ck_assert_int_ne(access(tmp, F_OK), 0);
	/* a failing fsync */
	es_tmpfile t;
	ck_assert_int_eq(es_tmpfile_create(&t, path, &err), 0);
	ck_assert_int_eq(write(t.fd, "four", 4), 4);
	t.fsync = fail_fsync;
	ck_assert_int_eq(es_tmpfile_commit(&t, &err), ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "fsync"));
	ck_assert_str_eq(slurp(path), "two");
	ck_assert_int_ne(access(tmp, F_OK), 0);
	/* publish: the fd writes to the renamed file */
	int fd;
	ck_assert_int_eq(es_tmpfile_create(&t, path, &err), 0);
	ck_assert_int_eq(write(t.fd, "fi", 2), 2);
	ck_assert_int_eq(es_tmpfile_publish(&t, &fd, &err), 0);
	ck_assert_int_eq(write(fd, "ve", 2), 2);
	close(fd);
	ck_assert_str_eq(slurp(path), "five");
	es_tmpfile_abort(&t); /* after publish: nothing to do */
	/* a directory that does not exist */
	ck_assert_int_eq(es_file_replace("/nonexistent/dir/f", write_text, "x", &err),
			 ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/dir/f"));
	ck_assert_int_eq(es_errno_code(ENOSPC), ES_ENOSPC);
	ck_assert_int_eq(es_errno_code(EACCES), ES_EIO);
}
END_TEST

Suite *fileio_suite(void)
{
	Suite *s = suite_create("fileio");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_replace);
	suite_add_tcase(s, tc);
	return s;
}
