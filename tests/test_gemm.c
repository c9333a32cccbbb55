/*
 * test_gemm.c — packed products, epilogues and the row kernels of
 * core/gemm on every path this CPU runs (scalar = the cblas path, AVX2,
 * AVX-512), against double-precision references at awkward sizes: row
 * counts around the 12- and 6-row tiles, column counts around the 32-wide
 * panels and 16/8-wide vectors, padded strides, panel sub-ranges.
 *
 * Error bounds (stated): a product element within 2e-6 * (sum |a_i b_i| +
 * |bias| + 1); GELU within 5e-7 * |x| + 1e-7 of the erf form (4e-6 for the
 * tanh form, whose libm tanhf may differ by an ulp or two); softmax
 * elements within 2e-6 relative + 1e-12; LayerNorm within 2e-5 (the output
 * is O(1) and scaled by 1/sigma).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void fill(float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = scale * frand();
}

static double gelu_ref(double x)
{
	return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static double gelu_tanh_ref(double x)
{
	return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static const simd_path paths[] = {SIMD_SCALAR, SIMD_AVX2, SIMD_AVX512};
#define NPATHS (sizeof paths / sizeof paths[0])

/* The paths to run: scalar always, the others where this CPU has them
 * (es_gemm_run_path would quietly use the cblas path for the rest). */
static int runnable(simd_path p)
{
	return p == SIMD_SCALAR || simd_kernels_for(p) != NULL;
}

/* Tile -1 is the cblas path; every tile the CPU runs is checked, not only
 * the one this CPU picks. */
static int tile_runnable(int t)
{
	return t < 0 || simd_kernels_for(es_gemm_tile_path(t)) != NULL;
}

/* One product on `tile` with epilogue `act` (+ bias when use_bias, + res
 * when use_res) on columns of panels [p0, p1) against the double reference;
 * everything outside those columns must stay untouched. */
static void check_product(int tile, size_t m, size_t k, size_t n, int use_bias,
			  es_gemm_act act, int use_res, size_t p0, size_t p1,
			  int transposed)
{
	size_t lda = k + 3, ldc = n + 5;
	float *a = malloc(m * lda * sizeof(float));
	float *w = malloc(k * n * sizeof(float));
	float *bias = malloc(n * sizeof(float));
	float *res = malloc(m * ldc * sizeof(float));
	float *c = malloc(m * ldc * sizeof(float));
	fill(a, m * lda, 1.0f);
	fill(w, k * n, 1.0f);
	fill(bias, n, 0.5f);
	fill(res, m * ldc, 2.0f);
	for (size_t i = 0; i < m * ldc; i++)
		c[i] = 777.0f;
	/* w is [k x n] row-major, or (transposed) its transpose [n x k] */
	float *src = w;
	float *wt = NULL;
	if (transposed) {
		wt = malloc(k * n * sizeof(float));
		for (size_t i = 0; i < k; i++)
			for (size_t j = 0; j < n; j++)
				wt[j * k + i] = w[i * n + j];
		src = wt;
	}
	es_gemm_b *b;
	es_error err;
	ck_assert_int_eq(es_gemm_pack(src, k, n, transposed ? 1 : n, transposed ? k : 1,
				      &b, &err), 0);
	ck_assert_uint_eq(es_gemm_rows(b), k);
	ck_assert_uint_eq(es_gemm_cols(b), n);
	ck_assert_uint_eq(es_gemm_panels(b), (n + 31) / 32);
	es_gemm_epi e = {use_bias ? bias : NULL, act, use_res ? res : NULL, ldc};
	es_gemm_run_tile(tile, b, m, a, lda, c, ldc, p0, p1, &e);
	size_t c0 = p0 * 32, c1 = p1 * 32 < n ? p1 * 32 : n;
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < ldc; j++) {
			float got = c[i * ldc + j];
			if (j < c0 || j >= c1) {
				ck_assert_msg(got == 777.0f,
					      "%s m%zu k%zu n%zu: C[%zu][%zu] outside panels "
					      "[%zu, %zu) written", es_gemm_tile_name(tile), m, k,
					      n, i, j, p0, p1);
				continue;
			}
			double ref = 0, mag = 1;
			for (size_t q = 0; q < k; q++) {
				ref += (double)a[i * lda + q] * w[q * n + j];
				mag += fabs((double)a[i * lda + q] * w[q * n + j]);
			}
			if (use_bias) {
				ref += bias[j];
				mag += fabs(bias[j]);
			}
			double tol = 2e-6 * mag;
			if (act == ES_GEMM_ACT_GELU) {
				ref = gelu_ref(ref);
				tol += 5e-7 * fabs(ref) + 1e-7;
			} else if (act == ES_GEMM_ACT_GELU_TANH) {
				ref = gelu_tanh_ref(ref);
				tol += 4e-6 * fabs(ref) + 1e-7;
			}
			if (use_res) {
				ref += res[i * ldc + j];
				tol += 2e-7 * fabs(res[i * ldc + j]);
			}
			ck_assert_msg(fabs(got - ref) <= tol,
				      "%s m%zu k%zu n%zu act%d: C[%zu][%zu] = %.9g, ref %.9g",
				      es_gemm_tile_name(tile), m, k, n, (int)act, i, j, got, ref);
		}
	es_gemm_free(b);
	free(a);
	free(w);
	free(wt);
	free(bias);
	free(res);
	free(c);
}

START_TEST(test_products_all_paths)
{
	/* row counts around every tile height (4, 6, 8, 12, 14) and its
	 * multiples; columns around the 8/16/32-wide vectors and panels */
	static const size_t ms[] = {1, 3, 4, 5, 7, 8, 9, 12, 13, 14, 15, 29};
	static const size_t ns[] = {1, 8, 9, 16, 17, 31, 32, 33, 100};
	static const size_t ks[] = {1, 17, 64};
	for (int ti = -1; ti < es_gemm_tile_count(); ti++) {
		if (!tile_runnable(ti))
			continue;
		for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
			for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
				for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
					size_t np = (ns[ni] + 31) / 32;
					check_product(ti, ms[mi], ks[ki], ns[ni], 0,
						      ES_GEMM_ACT_NONE, 0, 0, np,
						      (mi + ni) % 2);
				}
	}
}
END_TEST

START_TEST(test_epilogues_all_paths)
{
	/* every epilogue combination, at a tile-straddling shape and at the
	 * encoder's own k */
	static const es_gemm_act acts[] = {ES_GEMM_ACT_NONE, ES_GEMM_ACT_GELU,
					   ES_GEMM_ACT_GELU_TANH};
	for (int ti = -1; ti < es_gemm_tile_count(); ti++) {
		if (!tile_runnable(ti))
			continue;
		for (int bias = 0; bias < 2; bias++)
			for (size_t ai = 0; ai < 3; ai++)
				for (int res = 0; res < 2; res++) {
					check_product(ti, 13, 384, 70, bias, acts[ai],
						      res, 0, 3, 0);
					check_product(ti, 30, 40, 17, bias, acts[ai],
						      res, 0, 1, 1);
				}
	}
}
END_TEST

START_TEST(test_panel_ranges)
{
	/* callers split the columns over threads by panel ranges */
	for (int ti = -1; ti < es_gemm_tile_count(); ti++) {
		if (!tile_runnable(ti))
			continue;
		check_product(ti, 9, 20, 100, 1, ES_GEMM_ACT_GELU, 1, 1, 3, 0);
		check_product(ti, 9, 20, 100, 1, ES_GEMM_ACT_NONE, 0, 3, 4, 0);
		check_product(ti, 9, 20, 100, 1, ES_GEMM_ACT_NONE, 0, 2, 2, 0);
		check_product(ti, 9, 20, 100, 1, ES_GEMM_ACT_NONE, 0, 0, 99, 0);
	}
}
END_TEST

START_TEST(test_residual_in_place)
{
	/* res may be C itself: C = A B + C */
	size_t m = 14, k = 33, n = 40;
	float a[14 * 33], w[33 * 40], c[14 * 40], c0[14 * 40];
	fill(a, sizeof a / sizeof *a, 1.0f);
	fill(w, sizeof w / sizeof *w, 1.0f);
	fill(c0, sizeof c0 / sizeof *c0, 1.0f);
	es_gemm_b *b;
	ck_assert_int_eq(es_gemm_pack(w, k, n, n, 1, &b, NULL), 0);
	for (int ti = -1; ti < es_gemm_tile_count(); ti++) {
		if (!tile_runnable(ti))
			continue;
		memcpy(c, c0, sizeof c);
		es_gemm_epi e = {NULL, ES_GEMM_ACT_NONE, c, n};
		es_gemm_run_tile(ti, b, m, a, k, c, n, 0, es_gemm_panels(b), &e);
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++) {
				double ref = c0[i * n + j];
				for (size_t q = 0; q < k; q++)
					ref += (double)a[i * k + q] * w[q * n + j];
				ck_assert_msg(fabs(c[i * n + j] - ref) < 1e-4, "%s [%zu][%zu]",
					      es_gemm_tile_name(ti), i, j);
			}
	}
	es_gemm_free(b);
}
END_TEST

START_TEST(test_tile_choice)
{
	/* names parse back; each x86 path runs a tile of its own kind */
	for (int t = 0; t < es_gemm_tile_count(); t++)
		ck_assert_int_eq(es_gemm_tile_parse(es_gemm_tile_name(t)), t);
	ck_assert_int_eq(es_gemm_tile_parse("avx512-99x32"), -1);
	ck_assert_str_eq(es_gemm_tile_name(-1), "cblas");
	ck_assert_int_eq(es_gemm_tile_for(SIMD_SCALAR), -1);
	for (size_t pi = 1; pi < NPATHS; pi++) {
		int t = es_gemm_tile_for(paths[pi]);
		if (!runnable(paths[pi]))
			ck_assert_int_eq(t, -1);
		else
			ck_assert_int_eq(es_gemm_tile_path(t), paths[pi]);
	}
}
END_TEST

/* EMBEDSRV_GEMM_TILE picks the tile (read once per process: Check runs
 * each test in its own child, so it is set before the first use here). */
START_TEST(test_tile_env_override)
{
	const char *fork = getenv("CK_FORK");
	if (fork && !strcmp(fork, "no"))
		return;
	if (!runnable(SIMD_AVX2))
		return;
	setenv("EMBEDSRV_GEMM_TILE", "avx2-4x16", 1);
	ck_assert_str_eq(es_gemm_tile_name(es_gemm_tile_for(SIMD_AVX2)), "avx2-4x16");
	if (runnable(SIMD_AVX512)) /* the other path keeps its default */
		ck_assert_int_eq(es_gemm_tile_path(es_gemm_tile_for(SIMD_AVX512)),
				 SIMD_AVX512);
	unsetenv("EMBEDSRV_GEMM_TILE");
}
END_TEST

START_TEST(test_pack_into_scale)
{
	/* caller-memory packing with a scale, as attention packs K^T / sqrt(d) */
	size_t k = 5, n = 37;
	float src[37 * 5];
	fill(src, sizeof src / sizeof *src, 1.0f);
	size_t need = es_gemm_packed_floats(k, n);
	ck_assert_uint_eq(need, 64 * k);
	float *buf;
	ck_assert_int_eq(posix_memalign((void **)&buf, 64, need * sizeof(float)), 0);
	es_gemm_b v;
	/* B = 0.5 * src^T: src is [n x k], B is [k x n] */
	es_gemm_pack_into(&v, buf, src, k, n, 1, k, 0.5f);
	ck_assert_uint_eq(v.panels, 2);
	float a[3 * 5], c[3 * 37];
	fill(a, 15, 1.0f);
	es_gemm_run(&v, 3, a, k, c, n, 0, v.panels, NULL);
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < n; j++) {
			double ref = 0;
			for (size_t q = 0; q < k; q++)
				ref += 0.5 * a[i * k + q] * src[j * k + q];
			ck_assert(fabs(c[i * n + j] - ref) < 1e-6);
		}
	es_gemm_free(&v); /* borrowed: a no-op */
	free(buf);
}
END_TEST

START_TEST(test_pack_rejects_empty)
{
	es_gemm_b *b = (es_gemm_b *)1;
	es_error err;
	float x = 1;
	ck_assert_int_eq(es_gemm_pack(&x, 0, 4, 4, 1, &b, &err), ES_EINVAL);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(es_gemm_pack(&x, 4, 0, 0, 1, &b, &err), ES_EINVAL);
	ck_assert_ptr_null(b);
	es_gemm_free(NULL);
}
END_TEST

START_TEST(test_gelu_accuracy)
{
	/* the scalar GELU over [-8, 8] against erf in double */
	size_t n = 16001;
	float *x = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		x[i] = -8.0f + 16.0f * (float)i / (float)(n - 1);
	float *y = malloc(n * sizeof(float));
	memcpy(y, x, n * sizeof(float));
	es_gemm_gelu(y, n);
	for (size_t i = 0; i < n; i++) {
		double ref = gelu_ref(x[i]);
		ck_assert_msg(fabs(y[i] - ref) <= 5e-7 * fabs(x[i]) + 1e-7,
			      "gelu(%.7g) = %.9g, ref %.9g", x[i], y[i], ref);
	}
	free(x);
	free(y);
}
END_TEST

START_TEST(test_softmax_all_paths)
{
	static const size_t ns[] = {1, 2, 7, 8, 9, 15, 16, 17, 33, 128, 200};
	float x[200], y[201];
	for (size_t pi = 0; pi < NPATHS; pi++) {
		if (!runnable(paths[pi]))
			continue;
		for (size_t si = 0; si < sizeof ns / sizeof *ns; si++)
			for (int spread = 0; spread < 3; spread++) {
				size_t n = ns[si];
				/* scores of magnitude 1, 30 and 120 (the last underflows
				 * most terms) */
				float sc = spread == 0 ? 1.0f : spread == 1 ? 30.0f : 120.0f;
				fill(x, n, sc);
				y[n] = 4242.0f;
				memcpy(y, x, n * sizeof(float));
				es_softmax_path(paths[pi], y, n);
				double m = x[0], sum = 0;
				for (size_t j = 1; j < n; j++)
					m = x[j] > m ? x[j] : m;
				for (size_t j = 0; j < n; j++)
					sum += exp((double)x[j] - m);
				for (size_t j = 0; j < n; j++) {
					double ref = exp((double)x[j] - m) / sum;
					ck_assert_msg(fabs(y[j] - ref) <= 2e-6 * ref + 1e-12,
						      "%s n%zu: p[%zu] = %.9g, ref %.9g",
						      simd_path_name(paths[pi]), n, j, y[j], ref);
				}
				ck_assert(y[n] == 4242.0f);
			}
	}
}
END_TEST

START_TEST(test_layernorm_all_paths)
{
	static const size_t ns[] = {1, 3, 8, 15, 16, 17, 100, 384, 385};
	float x[385], y[386], g[385], bb[385];
	for (size_t pi = 0; pi < NPATHS; pi++) {
		if (!runnable(paths[pi]))
			continue;
		for (size_t si = 0; si < sizeof ns / sizeof *ns; si++) {
			size_t n = ns[si];
			fill(x, n, 3.0f);
			for (size_t j = 0; j < n; j++)
				x[j] += 5.0f; /* a mean far from 0 */
			fill(g, n, 1.0f);
			fill(bb, n, 1.0f);
			y[n] = 4242.0f;
			es_layernorm_path(paths[pi], x, y, g, bb, n, 1e-12f);
			double mean = 0, var = 0;
			for (size_t j = 0; j < n; j++)
				mean += x[j];
			mean /= (double)n;
			for (size_t j = 0; j < n; j++)
				var += (x[j] - mean) * (x[j] - mean);
			var /= (double)n;
			for (size_t j = 0; j < n; j++) {
				double ref = (x[j] - mean) / sqrt(var + 1e-12) * g[j] + bb[j];
				ck_assert_msg(fabs(y[j] - ref) <= 2e-5,
					      "%s n%zu: y[%zu] = %.9g, ref %.9g",
					      simd_path_name(paths[pi]), n, j, y[j], ref);
			}
			ck_assert(y[n] == 4242.0f);
			/* in place gives the same */
			float z[385];
			memcpy(z, x, n * sizeof(float));
			es_layernorm_path(paths[pi], z, z, g, bb, n, 1e-12f);
			ck_assert(memcmp(z, y, n * sizeof(float)) == 0);
		}
	}
}
END_TEST

Suite *gemm_suite(void)
{
	Suite *s = suite_create("gemm");
	TCase *tc = tcase_create("kernels");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_products_all_paths);
	tcase_add_test(tc, test_epilogues_all_paths);
	tcase_add_test(tc, test_panel_ranges);
	tcase_add_test(tc, test_residual_in_place);
	tcase_add_test(tc, test_tile_choice);
	tcase_add_test(tc, test_tile_env_override);
	tcase_add_test(tc, test_pack_into_scale);
	tcase_add_test(tc, test_pack_rejects_empty);
	tcase_add_test(tc, test_gelu_accuracy);
	tcase_add_test(tc, test_softmax_all_paths);
	tcase_add_test(tc, test_layernorm_all_paths);
	suite_add_tcase(s, tc);
	return s;
}
