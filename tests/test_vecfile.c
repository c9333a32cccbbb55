/* test_vecfile.c — the file-backed segment store of the int8 index's float
 * originals: segments keep their address and contents while the store
 * grows, sizes round to the page, the file has no name, bad directories
 * are clear errors. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vecfile.h"

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	ck_assert_ptr_nonnull(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

START_TEST(test_grow_keeps_segments)
{
	char dir[] = "/tmp/es_vecfile_XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	long page = sysconf(_SC_PAGESIZE);
	/* awkward segment sizes: one float row of 3, a page, a page + 1 */
	const size_t sizes[] = {12, (size_t)page, (size_t)page + 1, 1024 * 100 * 4};
	for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
		vecfile *f = NULL;
		es_error err;
		ck_assert_int_eq(vecfile_new(dir, sizes[t], &f, &err), 0);
		ck_assert_uint_eq(vecfile_segments(f), 0);
		ck_assert_uint_eq(vecfile_bytes(f), 0);
		/* no name in the directory, even while open */
		ck_assert_uint_eq(dir_entries(dir), 0);
		uint32_t *seg[40];
		size_t words = sizes[t] / 4;
		for (uint32_t i = 0; i < 40; i++) {
			void *m;
			ck_assert_int_eq(vecfile_grow(f, &m, &err), 0);
			seg[i] = m;
			/* zero-filled */
			size_t nonzero = 0;
			for (size_t w = 0; w < words; w++)
				nonzero += seg[i][w] != 0;
			ck_assert_uint_eq(nonzero, 0);
			for (size_t w = 0; w < words; w++)
				seg[i][w] = i * 1000003u + (uint32_t)w;
		}
		ck_assert_uint_eq(vecfile_segments(f), 40);
		size_t rounded = (sizes[t] + (size_t)page - 1) / (size_t)page * (size_t)page;
		ck_assert_uint_eq(vecfile_bytes(f), 40 * rounded);
		/* earlier segments kept their address and contents */
		size_t wrong = 0;
		for (uint32_t i = 0; i < 40; i++)
			for (size_t w = 0; w < words; w++)
				wrong += seg[i][w] != i * 1000003u + (uint32_t)w;
		ck_assert_uint_eq(wrong, 0);
		vecfile_free(f);
		ck_assert_uint_eq(dir_entries(dir), 0);
	}
	vecfile_free(NULL);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_bad_input)
{
	vecfile *f = (vecfile *)1;
	es_error err;
	ck_assert_int_eq(vecfile_new("/nonexistent/vecdir", 4096, &f, &err), ES_EIO);
	ck_assert_ptr_null(f);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/vecdir"));
	ck_assert_int_eq(vecfile_new("/tmp", 0, &f, &err), ES_EINVAL);
	ck_assert_ptr_null(f);
	/* a regular file is not a directory */
	char path[] = "/tmp/es_vecfile_fileXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(vecfile_new(path, 4096, &f, &err), ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	unlink(path);
	/* NULL and "" mean $TMPDIR, else /tmp */
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TMPDIR", "/nonexistent/tmp2", 1);
	ck_assert_int_eq(vecfile_new("", 4096, &f, &err), ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/tmp2"));
	unsetenv("TMPDIR");
	ck_assert_int_eq(vecfile_new(NULL, 4096, &f, &err), 0);
	void *m;
	ck_assert_int_eq(vecfile_grow(f, &m, &err), 0);
	ck_assert_ptr_nonnull(m);
	vecfile_free(f);
	if (saved)
		setenv("TMPDIR", saved, 1);
	free(saved);
}
END_TEST

Suite *vecfile_suite(void)
{
	Suite *s = suite_create("vecfile");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_grow_keeps_segments);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
