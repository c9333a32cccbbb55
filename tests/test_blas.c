/*
 * test_blas.c — the OpenBLAS threading policy (core/blas): after
 * es_blas_init() OpenBLAS uses one thread per call, and sgemm called from
 * several of our pool's workers at once gives correct results.
 */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "blas.h"
#include "threadpool.h"

START_TEST(test_single_threaded_after_init)
{
	es_blas_init();
	ck_assert_int_eq(es_blas_threads(), 1);
	es_blas_init(); /* idempotent */
	ck_assert_int_eq(es_blas_threads(), 1);
}
END_TEST

enum { M = 37, N = 53, K = 29, JOBS = 16 };

typedef struct gemm_ctx {
	const float *a, *b;
	float *c;      /* JOBS x M x N */
	int ok[JOBS];
} gemm_ctx;

static void gemm_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	gemm_ctx *g = ctx;
	for (size_t j = begin; j < end; j++) {
		float *c = g->c + j * M * N;
		/* job j scales A by (j + 1): each job has its own answer */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K,
			    (float)(j + 1), g->a, K, g->b, K, 0.0f, c, N);
		int ok = 1;
		for (int r = 0; r < M; r++)
			for (int s = 0; s < N; s++) {
				double ref = 0;
				for (int t = 0; t < K; t++)
					ref += (double)g->a[r * K + t] * g->b[s * K + t];
				ref *= (double)(j + 1);
				if (fabs(c[r * N + s] - ref) > 1e-4 * (fabs(ref) + 1))
					ok = 0;
			}
		g->ok[j] = ok;
	}
}

START_TEST(test_concurrent_sgemm)
{
	es_blas_init();
	float *a = malloc(M * K * sizeof *a), *b = malloc(N * K * sizeof *b);
	float *c = malloc((size_t)JOBS * M * N * sizeof *c);
	ck_assert(a && b && c);
	for (int i = 0; i < M * K; i++)
		a[i] = (float)((i * 7919) % 23) / 11.0f - 1.0f;
	for (int i = 0; i < N * K; i++)
		b[i] = (float)((i * 104729) % 31) / 15.0f - 1.0f;
	gemm_ctx g = {a, b, c, {0}};
	es_pool *pool = es_pool_new(3);
	ck_assert_ptr_nonnull(pool);
	es_pool_parallel_for(pool, JOBS, 1, gemm_range, &g);
	for (int j = 0; j < JOBS; j++)
		ck_assert_msg(g.ok[j], "sgemm job %d wrong", j);
	es_pool_free(pool);
	free(a);
	free(b);
	free(c);
}
END_TEST

Suite *blas_suite(void)
{
	Suite *s = suite_create("blas");
	TCase *tc = tcase_create("policy");
	tcase_add_test(tc, test_single_threaded_after_init);
	tcase_add_test(tc, test_concurrent_sgemm);
	suite_add_tcase(s, tc);
	return s;
}
