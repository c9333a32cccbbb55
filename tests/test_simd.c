/*
 * test_simd.c — every compiled and runnable SIMD path against a
 * double-precision scalar reference, at awkward sizes and unaligned pointers.
 *
 * Error bound (stated): for reductions, |got - ref| <= 1e-5 * sum|a_i*b_i|
 * (resp. sum (a_i-b_i)^2) + 1e-30; elementwise kernels (axpy, scale) must
 * match the double reference to 1 float ulp-ish: |got - ref| <= 2e-7*|ref|+1e-30.
 * The float x int8 kernels (dot_f_i8, l2_f_i8) use the same 1e-5 relative
 * bound against the double reference and are also compared with the scalar
 * kernels, at lengths 0..67, 100, 384, 1000 and the int8 extremes.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simd.h"

static const size_t sizes[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 64, 100,
			       384, 768, 1023, 1025};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAXN 1025

static unsigned long long rng_state = 88172645463325252ull;
static float frand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Buffers with one extra float so we can offset by one (unaligned). */
static float abuf[MAXN + 16], bbuf[MAXN + 16], ybuf[MAXN + 16];

static void fill(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = frand();
}

static void check_path(const simd_kernels *k)
{
	for (int off = 0; off < 2; off++) {
		for (size_t si = 0; si < NSIZES; si++) {
			size_t n = sizes[si];
			float *a = abuf + off, *b = bbuf + off + 1, *y = ybuf + off;
			fill(a, n);
			fill(b, n);
			/* sentinel right after the vector: kernels must not write it */
			y[n] = 12345.0f;

			double dref = 0, dabs = 0, lref = 0;
			for (size_t i = 0; i < n; i++) {
				dref += (double)a[i] * b[i];
				dabs += fabs((double)a[i] * b[i]);
				double d = (double)a[i] - b[i];
				lref += d * d;
			}
			double aa = 0, bb = 0;
			for (size_t i = 0; i < n; i++) {
				aa += (double)a[i] * a[i];
				bb += (double)b[i] * b[i];
			}
			double cref = dref / sqrt(aa * bb);
			float gc = k->cosine(a, b, n);
			ck_assert_msg(fabs(gc - cref) <= 1e-5 * dabs / sqrt(aa * bb) + 1e-6,
				      "%s cosine n=%zu off=%d: %.9g vs %.9g", k->name,
				      n, off, gc, cref);
			ck_assert_msg(fabs(k->cosine(a, a, n) - 1.0) <= 1e-5,
				      "%s cosine(a, a) n=%zu", k->name, n);
			float got = k->dot(a, b, n);
			ck_assert_msg(fabs(got - dref) <= 1e-5 * dabs + 1e-30,
				      "%s dot n=%zu off=%d: %.9g vs %.9g", k->name,
				      n, off, got, dref);
			got = k->l2sq(a, b, n);
			ck_assert_msg(fabs(got - lref) <= 1e-5 * lref + 1e-30,
				      "%s l2sq n=%zu: %.9g vs %.9g", k->name, n,
				      got, lref);

			memcpy(y, b, n * sizeof *y);
			k->axpy(0.37f, a, y, n);
			for (size_t i = 0; i < n; i++) {
				double r = (double)b[i] + 0.37 * (double)a[i];
				ck_assert_msg(fabs(y[i] - r) <= 2e-7 * (fabs(b[i]) + fabs(0.37 * a[i])) + 1e-30,
					      "%s axpy n=%zu i=%zu", k->name, n, i);
			}
			ck_assert_msg(y[n] == 12345.0f, "%s axpy wrote past n=%zu", k->name, n);

			memcpy(y, a, n * sizeof *y);
			k->scale(y, -1.75f, n);
			for (size_t i = 0; i < n; i++)
				ck_assert_msg(y[i] == a[i] * -1.75f,
					      "%s scale n=%zu i=%zu", k->name, n, i);
			ck_assert_msg(y[n] == 12345.0f, "%s scale wrote past n=%zu", k->name, n);

			int8_t ia[MAXN], ib[MAXN];
			int32_t iref = 0;
			for (size_t i = 0; i < n; i++) {
				ia[i] = (int8_t)(frand() * 127.0f);
				ib[i] = (int8_t)(frand() * 127.0f);
				iref += (int32_t)ia[i] * ib[i];
			}
			ck_assert_int_eq(k->dot_i8(ia, ib, n), iref);
		}
	}
}

/* dot_batch at every test size, with row counts around the 4-row blocking,
 * a padded stride and unaligned pointers; each row also alone (nrows = 1)
 * must give bitwise the same value (position-independent scores). */
static void check_batch(const simd_kernels *k)
{
	static const size_t nrows_list[] = {1, 3, 4, 5, 11};
	for (size_t si = 0; si < NSIZES; si++) {
		size_t n = sizes[si], stride = n + 3;
		for (size_t ni = 0; ni < sizeof nrows_list / sizeof nrows_list[0]; ni++) {
			size_t nrows = nrows_list[ni];
			float *rows = malloc((nrows * stride + 1) * sizeof *rows);
			float *q = malloc((n + 1) * sizeof *q);
			float out[12], one;
			ck_assert(rows && q);
			fill(rows, nrows * stride + 1);
			fill(q, n + 1);
			out[nrows] = 12345.0f;
			k->dot_batch(q + 1, rows + 1, nrows, stride, n, out);
			ck_assert_msg(out[nrows] == 12345.0f,
				      "%s dot_batch wrote past nrows=%zu", k->name, nrows);
			for (size_t r = 0; r < nrows; r++) {
				const float *row = rows + 1 + r * stride;
				double ref = 0, abs = 0;
				for (size_t i = 0; i < n; i++) {
					ref += (double)q[1 + i] * row[i];
					abs += fabs((double)q[1 + i] * row[i]);
				}
				ck_assert_msg(fabs(out[r] - ref) <= 1e-5 * abs + 1e-30,
					      "%s dot_batch n=%zu nrows=%zu row=%zu: %.9g vs %.9g",
					      k->name, n, nrows, r, out[r], ref);
				k->dot_batch(q + 1, row, 1, stride, n, &one);
				ck_assert_msg(one == out[r],
					      "%s dot_batch n=%zu row=%zu of %zu: %.9g alone, %.9g in batch",
					      k->name, n, r, nrows, one, out[r]);
			}
			free(rows);
			free(q);
		}
	}
}

/* ---- float query x int8 codes (dot_f_i8, l2_f_i8) ---- */

static unsigned long long f_i8_state;
static double f_i8_rand(void) /* uniform in [0, 1), own fixed-seed stream */
{
	f_i8_state ^= f_i8_state << 13;
	f_i8_state ^= f_i8_state >> 7;
	f_i8_state ^= f_i8_state << 17;
	return (double)(f_i8_state >> 11) * (1.0 / 9007199254740992.0);
}

/* One case: path k and the scalar kernels against a double reference, with
 * bounds relative to the magnitude of the terms (sum |q_i c_i|, resp.
 * sum (|q_i| + |s c_i|)^2): cancellation may leave the result itself near 0. */
static void check_f_i8_case(const simd_kernels *k, const simd_kernels *ref_k,
			    const float *q, const int8_t *c, float s, size_t n,
			    const char *what)
{
	double dref = 0, dmag = 0, lref = 0, lmag = 0;
	for (size_t i = 0; i < n; i++) {
		dref += (double)q[i] * c[i];
		dmag += fabs((double)q[i] * c[i]);
		double d = (double)q[i] - (double)s * c[i];
		double m = fabs((double)q[i]) + fabs((double)s * c[i]);
		lref += d * d;
		lmag += m * m;
	}
	double dtol = 1e-5 * dmag + 1e-30, ltol = 1e-5 * lmag + 1e-30;
	float got = k->dot_f_i8(q, c, n), sc = ref_k->dot_f_i8(q, c, n);
	ck_assert_msg(fabs(got - dref) <= dtol, "%s dot_f_i8 %s n=%zu: %.9g vs %.9g",
		      k->name, what, n, got, dref);
	ck_assert_msg(fabs(got - sc) <= 2 * dtol, "%s dot_f_i8 %s n=%zu: %.9g vs scalar %.9g",
		      k->name, what, n, got, sc);
	got = k->l2_f_i8(q, c, s, n);
	sc = ref_k->l2_f_i8(q, c, s, n);
	ck_assert_msg(fabs(got - lref) <= ltol, "%s l2_f_i8 %s n=%zu s=%g: %.9g vs %.9g",
		      k->name, what, n, s, got, lref);
	ck_assert_msg(fabs(got - sc) <= 2 * ltol, "%s l2_f_i8 %s n=%zu: %.9g vs scalar %.9g",
		      k->name, what, n, got, sc);
	if (n == 0)
		ck_assert_msg(got == 0.0f, "%s l2_f_i8 n=0: %g", k->name, got);
}

/* Lengths 0..67 (every tail of the 8-, 16- and 64-wide loops) and 100, 384,
 * 1000; exactly-sized heap buffers at odd offsets, so an over-read is an
 * ASan error and nothing relies on alignment. */
static void check_f_i8(const simd_kernels *k)
{
	const simd_kernels *ref_k = simd_kernels_for(SIMD_SCALAR);
	size_t lens[68 + 3];
	size_t nl = 0;
	for (size_t n = 0; n <= 67; n++)
		lens[nl++] = n;
	lens[nl++] = 100;
	lens[nl++] = 384;
	lens[nl++] = 1000;

	f_i8_state = 0x9e3779b97f4a7c15ull;
	for (size_t li = 0; li < nl; li++) {
		size_t n = lens[li];
		float *qb = malloc((n + 1) * sizeof *qb);
		int8_t *cb = malloc(n + 3);
		ck_assert(qb && cb);
		float *q = qb + 1;
		int8_t *c = cb + 3;

		/* random: q in [-1, 1), codes in [-127, 127], s ~ max|q|/127 */
		for (size_t i = 0; i < n; i++) {
			q[i] = (float)(2.0 * f_i8_rand() - 1.0);
			c[i] = (int8_t)((int)(f_i8_rand() * 255.0) - 127);
		}
		float s = (float)((0.5 + f_i8_rand()) / 127.0);
		check_f_i8_case(k, ref_k, q, c, s, n, "random");
		check_f_i8_case(k, ref_k, q, c, 0.0f, n, "random s=0");

		/* near-quantised: q close to s*c, as in an int8 index (l2 small
		 * against its terms) */
		for (size_t i = 0; i < n; i++)
			q[i] = s * c[i] + (float)((f_i8_rand() - 0.5) * s);
		check_f_i8_case(k, ref_k, q, c, s, n, "near");

		/* int8 extremes: all 127, all -127, alternating; large q */
		static const char *const ext_names[] = {"all 127", "all -127", "alternating"};
		for (int e = 0; e < 3; e++) {
			for (size_t i = 0; i < n; i++) {
				c[i] = (int8_t)(e == 0 ? 127 : e == 1 ? -127 : (i & 1) ? -127 : 127);
				q[i] = (float)(1000.0 * (2.0 * f_i8_rand() - 1.0));
			}
			check_f_i8_case(k, ref_k, q, c, 1000.0f / 127.0f, n, ext_names[e]);
		}
		/* exact: q = 1, codes 127 -> 127 n; q = s*c -> distance 0 */
		for (size_t i = 0; i < n; i++) {
			q[i] = 1.0f;
			c[i] = 127;
		}
		ck_assert_msg(k->dot_f_i8(q, c, n) == 127.0f * (float)n,
			      "%s dot_f_i8 exact n=%zu", k->name, n);
		for (size_t i = 0; i < n; i++) {
			c[i] = (int8_t)((i & 1) ? -127 : 127);
			q[i] = 0.5f * c[i];
		}
		ck_assert_msg(k->l2_f_i8(q, c, 0.5f, n) == 0.0f,
			      "%s l2_f_i8 exact n=%zu", k->name, n);
		free(qb);
		free(cb);
	}
}

START_TEST(test_all_paths)
{
	int ran = 0;
	for (int p = 0; p < SIMD_PATH_COUNT; p++) {
		const simd_kernels *k = simd_kernels_for((simd_path)p);
		if (!k)
			continue;
		ck_assert_int_eq(k->path, p);
		check_path(k);
		check_batch(k);
		ck_assert_ptr_nonnull(k->dot_f_i8);
		ck_assert_ptr_nonnull(k->l2_f_i8);
		check_f_i8(k);
		/* cosine: zero vectors give 0, never NaN; huge ones do not
		 * overflow */
		float z[33] = {0}, o[33], h[33];
		for (int i = 0; i < 33; i++) {
			o[i] = (float)(i % 5) - 2.0f;
			h[i] = 1e18f; /* |h|^2 fits a float, |h|^2 |h|^2 does not */
		}
		ck_assert(k->cosine(z, o, 33) == 0.0f && k->cosine(o, z, 33) == 0.0f);
		ck_assert(k->cosine(z, z, 0) == 0.0f);
		ck_assert_msg(fabs(k->cosine(h, h, 33) - 1.0) <= 1e-5, "%s cosine huge",
			      k->name);
		ran++;
	}
	ck_assert_int_ge(ran, 1);
}
END_TEST

START_TEST(test_scalar_always_available)
{
	ck_assert_ptr_nonnull(simd_kernels_for(SIMD_SCALAR));
	ck_assert_ptr_nonnull(simd_get());
}
END_TEST

START_TEST(test_x86_paths_detected)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		ck_assert_ptr_nonnull(simd_kernels_for(SIMD_AVX2));
	if (__builtin_cpu_supports("avx512f"))
		ck_assert_ptr_nonnull(simd_kernels_for(SIMD_AVX512));
#endif
}
END_TEST

START_TEST(test_norm_normalize)
{
	float x[17];
	for (int i = 0; i < 17; i++)
		x[i] = (float)(i + 1);
	double ref = 0;
	for (int i = 0; i < 17; i++)
		ref += (double)x[i] * x[i];
	ck_assert_float_eq_tol(simd_norm(x, 17), (float)sqrt(ref), 1e-4);
	float old = simd_normalize(x, 17);
	ck_assert_float_eq_tol(old, (float)sqrt(ref), 1e-4);
	ck_assert_float_eq_tol(simd_norm(x, 17), 1.0f, 1e-6);

	float z[5] = {0};
	ck_assert_float_eq(simd_normalize(z, 5), 0.0f);
	for (int i = 0; i < 5; i++)
		ck_assert_float_eq(z[i], 0.0f);
}
END_TEST

/* The double variant is numpy's rounding to the bit: the sum of squares in
 * double, x[i] * (float)(1 / sqrt(sum)) in float. */
START_TEST(test_normalize_f64_rounding)
{
	float x[37], want[37];
	double ss = 0;
	for (int i = 0; i < 37; i++) {
		x[i] = (float)sin(i * 0.7 + 0.1) / 3.0f;
		ss += (double)x[i] * x[i];
	}
	float inv = (float)(1.0 / sqrt(ss));
	for (int i = 0; i < 37; i++)
		want[i] = x[i] * inv;
	ck_assert_float_eq_tol(simd_normalize_f64(x, 37), (float)sqrt(ss), 1e-6);
	ck_assert(memcmp(x, want, sizeof x) == 0);
	float z[3] = {0};
	ck_assert_float_eq(simd_normalize_f64(z, 3), 0.0f);
	ck_assert(z[0] == 0 && z[1] == 0 && z[2] == 0);
}
END_TEST

/* EMBEDSRV_SIMD picks the path (checked in a child process, since the
 * choice is made once per process); an unknown or unavailable name falls
 * back to the automatic choice. */
static int selected_with_env(const char *value)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("EMBEDSRV_SIMD", value, 1);
		if (!freopen("/dev/null", "w", stderr))
			_exit(100);
		_exit((int)simd_get()->path);
	}
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_env_override)
{
	int autop = selected_with_env("auto");
	ck_assert_ptr_nonnull(simd_kernels_for((simd_path)autop));
	ck_assert_int_eq(selected_with_env("scalar"), SIMD_SCALAR);
	ck_assert_int_eq(selected_with_env("bogus"), autop);
	for (int p = 0; p < SIMD_PATH_COUNT; p++) {
		int want = simd_kernels_for((simd_path)p) ? p : autop;
		ck_assert_int_eq(selected_with_env(simd_path_name((simd_path)p)), want);
	}
}
END_TEST

START_TEST(test_path_names)
{
	ck_assert_int_eq(simd_path_parse("scalar"), SIMD_SCALAR);
	ck_assert_int_eq(simd_path_parse("avx2"), SIMD_AVX2);
	ck_assert_int_eq(simd_path_parse("avx512"), SIMD_AVX512);
	ck_assert_int_eq(simd_path_parse("bogus"), -1);
	ck_assert_str_eq(simd_path_name(SIMD_AVX512), "avx512");
	char buf[64];
	simd_compiled_paths(buf, sizeof buf);
	ck_assert_ptr_nonnull(strstr(buf, "scalar"));
}
END_TEST

Suite *simd_suite(void)
{
	Suite *s = suite_create("simd");
	TCase *tc = tcase_create("kernels");
	tcase_add_test(tc, test_all_paths);
	tcase_add_test(tc, test_scalar_always_available);
	tcase_add_test(tc, test_x86_paths_detected);
	tcase_add_test(tc, test_norm_normalize);
	tcase_add_test(tc, test_normalize_f64_rounding);
	tcase_add_test(tc, test_path_names);
	tcase_add_test(tc, test_env_override);
	suite_add_tcase(s, tc);
	return s;
}
