/* test_cli_args.c — the shared option parsers of cli/: what each accepts
 * and refuses (signs, junk after the number, bounds, inf/nan), that a
 * refusal leaves the value alone and prints the one-line message naming
 * the command, the option and the text; the output-suffix check; the usage
 * error lines and their exit status 2. */
#include <check.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_args.h"

static char said[1024];

/* Run f with stderr sent to a temporary file; what it printed into said. */
#define CAPTURE(expr)                                                        \
	({                                                                   \
		fflush(stderr);                                              \
		FILE *tmp_ = tmpfile();                                      \
		int saved_ = dup(2);                                         \
		dup2(fileno(tmp_), 2);                                       \
		int rc_ = (expr);                                            \
		fflush(stderr);                                              \
		dup2(saved_, 2);                                             \
		close(saved_);                                               \
		rewind(tmp_);                                                \
		size_t n_ = fread(said, 1, sizeof said - 1, tmp_);           \
		said[n_] = '\0';                                             \
		fclose(tmp_);                                                \
		rc_;                                                         \
	})

START_TEST(test_u32)
{
	uint32_t v = 77;
	ck_assert_int_eq(CAPTURE(cli_u32("index build", "--M", "16", 2, 64, &v)), 0);
	ck_assert_uint_eq(v, 16);
	ck_assert_str_eq(said, "");
	ck_assert_int_eq(cli_u32("x", "--n", "4294967295", 0, UINT32_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT32_MAX);
	const char *bad[] = {"", "-1", "+3", "1x", "x", "65", "1", "4294967296",
			     "99999999999999999999999", " 3"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 77;
		ck_assert_int_eq(CAPTURE(cli_u32("index build", "--M", bad[i], 2, 64, &v)), -1);
		ck_assert_uint_eq(v, 77);
		char want[128];
		snprintf(want, sizeof want,
			 "embedsrv index build: --M wants an integer in 2..64, got '%s'\n", bad[i]);
		ck_assert_str_eq(said, want);
	}
	ck_assert_int_eq(CAPTURE(cli_u32("train", "--dim", "-3", 0, UINT32_MAX, &v)), -1);
	ck_assert_str_eq(said, "embedsrv train: --dim wants a non-negative integer, got '-3'\n");
}
END_TEST

/* The 64-bit parser (serve's byte sizes, import's --first-id) says the
 * same things; values past 2^32 and up to 2^64-1 fit. */
START_TEST(test_u64)
{
	uint64_t v = 77;
	ck_assert_int_eq(cli_u64("serve", "--snapshot-bytes", "8589934592", 4096, UINT64_MAX,
				 &v), 0);
	ck_assert_uint_eq(v, 8589934592ull);
	ck_assert_int_eq(cli_u64("import", "--first-id", "18446744073709551615", 0, UINT64_MAX,
				 &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 77;
	ck_assert_int_eq(CAPTURE(cli_u64("import", "--first-id", "18446744073709551616", 0,
					 UINT64_MAX, &v)), -1);
	ck_assert_uint_eq(v, 77);
	ck_assert_str_eq(said, "embedsrv import: --first-id wants a non-negative integer, "
			       "got '18446744073709551616'\n");
	ck_assert_int_eq(CAPTURE(cli_u64("serve", "--port", "65536", 0, 65535, &v)), -1);
	ck_assert_str_eq(said, "embedsrv serve: --port wants an integer in 0..65535, got '65536'\n");
	ck_assert_uint_eq(v, 77);
}
END_TEST

START_TEST(test_float)
{
	float f = 9;
	ck_assert_int_eq(cli_float("retrofit", "--alpha", "0.25", &f), 0);
	ck_assert(f == 0.25f);
	ck_assert_int_eq(cli_float("retrofit", "--alpha", "-1e-3", &f), 0);
	ck_assert(f == -1e-3f);
	const char *bad[] = {"", "x", "1.5y", "inf", "nan", "-inf", "1e999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		f = 9;
		ck_assert_int_eq(CAPTURE(cli_float("retrofit", "--alpha", bad[i], &f)), -1);
		ck_assert(f == 9);
		char want[128];
		snprintf(want, sizeof want, "embedsrv retrofit: --alpha wants a number, got '%s'\n",
			 bad[i]);
		ck_assert_str_eq(said, want);
	}
}
END_TEST

START_TEST(test_suffixes)
{
	ck_assert(cli_ends_with("a.fvecs", ".fvecs"));
	ck_assert(cli_ends_with("A.FVECS", ".fvecs"));
	ck_assert(!cli_ends_with("fvecs", ".fvecs"));
	ck_assert(cli_ends_with(".esm", ".esm"));
	ck_assert_int_eq(cli_model_output("train", "--output", "m.esm"), 0);
	ck_assert_int_eq(cli_model_output("train", "--output", "M.ESM"), 0);
	ck_assert_int_eq(cli_model_output("train", "--output", "dir/m.vec"), 1);
	ck_assert_int_eq(CAPTURE(cli_model_output("convert", "-o", "m.bin")), -1);
	ck_assert_str_eq(said, "embedsrv convert: -o must end in .esm or .vec, got 'm.bin'\n");
	ck_assert_int_eq(CAPTURE(cli_model_output("convert", "-o", "esm")), -1);
}
END_TEST

START_TEST(test_usage_errors)
{
	ck_assert_int_eq(CAPTURE(cli_usage_error("retrofit", "--model is required")), 2);
	ck_assert_str_eq(said, "embedsrv retrofit: --model is required "
			       "(try `embedsrv retrofit --help`)\n");
	ck_assert_int_eq(CAPTURE(cli_usage_error("train", "unexpected argument '%s'", "z")), 2);
	ck_assert_str_eq(said, "embedsrv train: unexpected argument 'z' (try `embedsrv train --help`)\n");

	static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
					     {NULL, 0, NULL, 0}};
	char *argv1[] = {"retrofit", "--bogus", NULL};
	optind = 1;
	opterr = 0;
	int c = getopt_long(2, argv1, ":m:", opts, NULL);
	ck_assert_int_eq(CAPTURE(cli_getopt_error("retrofit", c, argv1)), 2);
	ck_assert_str_eq(said, "embedsrv retrofit: unknown option '--bogus' "
			       "(try `embedsrv retrofit --help`)\n");
	char *argv2[] = {"retrofit", "--model", NULL};
	optind = 1;
	c = getopt_long(2, argv2, ":m:", opts, NULL);
	ck_assert_int_eq(c, ':');
	ck_assert_int_eq(CAPTURE(cli_getopt_error("retrofit", c, argv2)), 2);
	ck_assert_str_eq(said, "embedsrv retrofit: --model needs a value "
			       "(try `embedsrv retrofit --help`)\n");
}
END_TEST

Suite *cli_args_suite(void)
{
	Suite *s = suite_create("cli_args");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_u32);
	tcase_add_test(tc, test_u64);
	tcase_add_test(tc, test_float);
	tcase_add_test(tc, test_suffixes);
	tcase_add_test(tc, test_usage_errors);
	suite_add_tcase(s, tc);
	return s;
}
