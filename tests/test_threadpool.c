/* test_threadpool.c — parallel_for covers every item exactly once, nests,
 * and shuts down cleanly. */
#include <check.h>
#include <stdlib.h>

#include "threadpool.h"

struct count_ctx {
	int *hits;
	unsigned maxworker;
	unsigned nworkers;
};

static void count_fn(void *vctx, size_t b, size_t e, unsigned w)
{
	struct count_ctx *c = vctx;
	ck_assert_uint_lt(w, c->nworkers);
	for (size_t i = b; i < e; i++)
		__atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

START_TEST(test_covers_all_once)
{
	for (unsigned t = 1; t <= 4; t++) {
		es_pool *p = es_pool_new(t);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(es_pool_size(p), t);
		size_t ns[] = {1, 2, 7, 1000, 100003};
		size_t grains[] = {0, 1, 3, 64};
		for (size_t i = 0; i < 5; i++)
			for (size_t g = 0; g < 4; g++) {
				if (grains[g] == 1 && ns[i] > 10000)
					continue; /* too slow under sanitizers */
				int *hits = calloc(ns[i], sizeof *hits);
				struct count_ctx c = {hits, 0, t};
				es_pool_parallel_for(p, ns[i], grains[g], count_fn, &c);
				for (size_t k = 0; k < ns[i]; k++)
					ck_assert_int_eq(hits[k], 1);
				free(hits);
			}
		es_pool_free(p);
	}
}
END_TEST

struct nest_ctx {
	es_pool *pool;
	int *hits;
};

struct inner_ctx {
	int *hits;
	unsigned outer_worker;
};

static void inner_fn(void *vctx, size_t b, size_t e, unsigned w)
{
	struct inner_ctx *ic = vctx;
	/* a nested call runs inline and keeps the outer worker's id */
	ck_assert_uint_eq(w, ic->outer_worker);
	for (size_t i = b; i < e; i++)
		__atomic_add_fetch(&ic->hits[i], 1, __ATOMIC_RELAXED);
}

static void outer_fn(void *vctx, size_t b, size_t e, unsigned w)
{
	struct nest_ctx *c = vctx;
	for (size_t i = b; i < e; i++) {
		struct inner_ctx ic = {c->hits + i * 10, w};
		es_pool_parallel_for(c->pool, 10, 1, inner_fn, &ic);
	}
}

START_TEST(test_nested_runs_inline)
{
	es_pool *p = es_pool_new(3);
	int *hits = calloc(100 * 10, sizeof *hits);
	struct nest_ctx c = {p, hits};
	es_pool_parallel_for(p, 100, 1, outer_fn, &c);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(hits[i], 1);
	free(hits);
	es_pool_free(p);
}
END_TEST

START_TEST(test_null_pool_and_free)
{
	int hits[5] = {0};
	struct count_ctx c = {hits, 0, 1};
	es_pool_parallel_for(NULL, 5, 2, count_fn, &c);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(hits[i], 1);
	es_pool_free(NULL);
	ck_assert_uint_ge(es_cpu_count(), 1);
	es_pool *p = es_pool_new(0);
	ck_assert_uint_eq(es_pool_size(p), es_cpu_count());
	es_pool_free(p);
}
END_TEST

Suite *threadpool_suite(void)
{
	Suite *s = suite_create("threadpool");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_covers_all_once);
	tcase_add_test(tc, test_nested_runs_inline);
	tcase_add_test(tc, test_null_pool_and_free);
	suite_add_tcase(s, tc);
	return s;
}
