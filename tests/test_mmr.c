/* test_mmr.c — maximal marginal relevance (server/mmr.c): diverse results
 * are chosen over near-duplicates, diversity 0 is relevance order, every
 * metric, vectors missing, and what is not picked is freed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mmr.h"

/* A hit with a malloc'd copy of v (the way search results own theirs). */
static es_point_out hit(uint64_t id, float score, const float *v, uint32_t dim)
{
	es_point_out h;
	memset(&h, 0, sizeof h);
	h.id.num = id;
	h.score = score;
	if (v) {
		h.vector = malloc(dim * sizeof *h.vector);
		memcpy(h.vector, v, dim * sizeof *h.vector);
	}
	return h;
}

/* Candidates, best first: 1 and its near-duplicate 2, then 3 (another
 * direction, less relevant), then 4 (a duplicate of 3). */
static size_t make(es_point_out *h, int l2)
{
	static const float v[4][3] = {{1, 0, 0}, {0.999f, 0.045f, 0}, {0.6f, 0, 0.8f}, {0.6f, 0.01f, 0.8f}};
	static const float cos[4] = {1.0f, 0.99f, 0.8f, 0.79f};
	static const float dist[4] = {0.0f, 0.05f, 0.63f, 0.64f};
	for (int i = 0; i < 4; i++)
		h[i] = hit((uint64_t)i + 1, l2 ? dist[i] : cos[i], v[i], 3);
	return 4;
}

static void ids_are(const es_point_out *h, size_t n, const uint64_t *want)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(h[i].id.num == want[i], "pick %zu: id %llu, want %llu", i,
			      (unsigned long long)h[i].id.num, (unsigned long long)want[i]);
}

START_TEST(test_diverse_over_duplicates)
{
	es_point_out h[4];
	size_t n = make(h, 0);
	ck_assert_uint_eq(api_mmr(h, n, 2, 0.5f, ES_METRIC_COSINE, 3), 2);
	ids_are(h, 2, (uint64_t[]){1, 3}); /* not the near-duplicate 2 */
	ck_assert_float_eq(h[1].score, 0.8f); /* scores stay relevance */
	es_point_out_free(&h[0]);
	es_point_out_free(&h[1]);
	/* all four: both directions come before their duplicates */
	n = make(h, 0);
	ck_assert_uint_eq(api_mmr(h, n, 4, 0.5f, ES_METRIC_COSINE, 3), 4);
	ck_assert(h[0].id.num == 1 && h[1].id.num == 3);
	for (int i = 0; i < 4; i++)
		es_point_out_free(&h[i]);
}
END_TEST

START_TEST(test_zero_diversity_is_relevance)
{
	es_point_out h[4];
	size_t n = make(h, 0);
	ck_assert_uint_eq(api_mmr(h, n, 3, 0.0f, ES_METRIC_COSINE, 3), 3);
	ids_are(h, 3, (uint64_t[]){1, 2, 3});
	for (int i = 0; i < 3; i++)
		es_point_out_free(&h[i]);
}
END_TEST

START_TEST(test_metrics)
{
	es_point_out h[4];
	size_t n = make(h, 1); /* l2: scores are distances, lower is better */
	ck_assert_uint_eq(api_mmr(h, n, 2, 0.5f, ES_METRIC_L2, 3), 2);
	ids_are(h, 2, (uint64_t[]){1, 3});
	es_point_out_free(&h[0]);
	es_point_out_free(&h[1]);
	n = make(h, 0);
	ck_assert_uint_eq(api_mmr(h, n, 2, 0.5f, ES_METRIC_DOT, 3), 2);
	ids_are(h, 2, (uint64_t[]){1, 3});
	es_point_out_free(&h[0]);
	es_point_out_free(&h[1]);
}
END_TEST

START_TEST(test_edges)
{
	es_point_out h[4];
	/* k past n, and k == 0 */
	size_t n = make(h, 0);
	ck_assert_uint_eq(api_mmr(h, n, 10, 0.5f, ES_METRIC_COSINE, 3), 4);
	for (int i = 0; i < 4; i++)
		es_point_out_free(&h[i]);
	n = make(h, 0);
	ck_assert_uint_eq(api_mmr(h, n, 0, 0.5f, ES_METRIC_COSINE, 3), 0);
	ck_assert_uint_eq(api_mmr(h, 0, 3, 0.5f, ES_METRIC_COSINE, 3), 0);
	/* a candidate without a vector is unlike everything: full diversity
	 * picks it second */
	float v[3] = {1, 0, 0};
	h[0] = hit(1, 1.0f, v, 3);
	h[1] = hit(2, 0.99f, v, 3);
	h[2] = hit(3, 0.1f, NULL, 3);
	ck_assert_uint_eq(api_mmr(h, 3, 2, 1.0f, ES_METRIC_COSINE, 3), 2);
	ids_are(h, 2, (uint64_t[]){1, 3});
	es_point_out_free(&h[0]);
	es_point_out_free(&h[1]);
}
END_TEST

Suite *mmr_suite(void)
{
	Suite *s = suite_create("mmr");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_diverse_over_duplicates);
	tcase_add_test(tc, test_zero_diversity_is_relevance);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_edges);
	suite_add_tcase(s, tc);
	return s;
}
