/*
 * test_encode.c — SIF sentence vectors against hand-computed values, the
 * empty / unknown result, common-component removal and its computation,
 * batch encoding on the pool.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "encoder.h"
#include "model.h"

static es_model *model3(void)
{
	const char *words[] = {"the", "cat", "sat", "Paris"};
	uint64_t counts[] = {600, 300, 90, 10};
	float vecs[] = {1, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 1};
	es_model_params p = {.dim = 3, .has_counts = 1};
	es_model *m = NULL;
	ck_assert_int_eq(es_model_from_arrays(&p, 4, words, counts, vecs, NULL, &m, NULL), 0);
	return m;
}

START_TEST(test_sif_by_hand)
{
	es_model *m = model3();
	float out[3];
	es_encode_info info;
	ck_assert_int_eq(es_model_encode(m, "The cat, the SAT!", 17, out, &info, NULL), 0);
	/* weights a/(a+p): the 1e-3/(1e-3+0.6), cat 1e-3/(1e-3+0.3),
	 * sat 1e-3/(1e-3+0.09), mean over 4 tokens, then unit length */
	double wt = 1e-3 / (1e-3 + 0.6), wc = 1e-3 / (1e-3 + 0.3),
	       ws = 1e-3 / (1e-3 + 0.09);
	double v[3] = {2 * wt, wc, 2 * ws};
	double nn = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
	for (int j = 0; j < 3; j++)
		ck_assert_double_eq_tol(out[j], v[j] / nn, 1e-6);
	ck_assert_uint_eq(info.tokens, 4);
	ck_assert_uint_eq(info.known, 4);
	ck_assert_int_eq(info.empty, 0);
	/* cased word found through the text's own spelling */
	ck_assert_int_eq(es_model_encode(m, "Paris", 5, out, &info, NULL), 0);
	ck_assert_uint_eq(info.known, 1);
	ck_assert_double_eq_tol(out[0], 1 / sqrt(3), 1e-6);
	es_model_free(m);
}
END_TEST

START_TEST(test_empty_and_unknown)
{
	es_model *m = model3();
	float out[3] = {7, 7, 7};
	es_encode_info info;
	const char *texts[] = {"", "   ...!?", "dog bird", "\xe2\x80\x94"};
	for (int i = 0; i < 4; i++) {
		out[0] = out[1] = out[2] = 7;
		ck_assert_int_eq(es_model_encode(m, texts[i], strlen(texts[i]), out, &info, NULL), 0);
		ck_assert_int_eq(info.empty, 1);
		ck_assert_uint_eq(info.known, 0);
		for (int j = 0; j < 3; j++)
			ck_assert_float_eq(out[j], 0);
	}
	ck_assert_uint_eq(info.tokens, 0);
	es_model_encode(m, "dog bird", 8, out, &info, NULL);
	ck_assert_uint_eq(info.tokens, 2);
	es_error err = {0};
	ck_assert_int_eq(es_model_encode(m, "ok \xff", 4, out, &info, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "UTF-8"));
	es_model_free(m);
}
END_TEST

START_TEST(test_common_component)
{
	es_model *m = model3();
	float u[3] = {2, 0, 0};
	ck_assert_int_eq(es_model_set_common(m, u, NULL), 0);
	float out[3];
	es_encode_info info;
	/* "the" lies entirely along the component: documented zero result */
	ck_assert_int_eq(es_model_encode(m, "the", 3, out, &info, NULL), 0);
	ck_assert_int_eq(info.empty, 1);
	ck_assert_uint_eq(info.known, 1);
	ck_assert_float_eq(out[0], 0);
	ck_assert_int_eq(es_model_encode(m, "the cat", 7, out, &info, NULL), 0);
	ck_assert_float_eq_tol(out[0], 0, 1e-7);
	ck_assert_float_eq_tol(out[1], 1, 1e-6);
	es_model_free(m);
}
END_TEST

START_TEST(test_compute_common)
{
	/* every sentence mass lies mostly along (1, 1, 0)/sqrt 2 */
	const char *words[] = {"a", "b", "c"};
	float vecs[] = {1, 0.9f, 0.1f, 0.9f, 1, -0.1f, 1, 1, 0};
	es_model_params p = {.dim = 3};
	es_model *m;
	ck_assert_int_eq(es_model_from_arrays(&p, 3, words, NULL, vecs, NULL, &m, NULL), 0);
	const char *texts[] = {"a b", "b c", "a", "c c a", "b", "zzz"};
	size_t lens[6];
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(texts[i]);
	es_pool *pool = es_pool_new(2);
	ck_assert_int_eq(es_model_compute_common(m, texts, lens, 6, pool, NULL), 0);
	const float *c = es_model_common(m);
	ck_assert_ptr_nonnull(c);
	ck_assert_float_eq_tol(fabsf(c[0] + c[1]) / sqrtf(2), 1, 0.01);
	ck_assert_str_eq(es_model_meta(m, "common_component.sample"), "6");
	const char *none[] = {"zzz", ""};
	size_t nl[] = {3, 0};
	es_error err = {0};
	ck_assert_int_eq(es_model_compute_common(m, none, nl, 2, pool, &err), ES_EINVAL);
	es_pool_free(pool);
	es_model_free(m);
}
END_TEST

START_TEST(test_batch)
{
	es_model *m = model3();
	enum { N = 300 };
	const char *base[] = {"the cat", "sat", "", "Paris the", "unknown"};
	const char *texts[N];
	size_t lens[N];
	for (int i = 0; i < N; i++) {
		texts[i] = base[i % 5];
		lens[i] = strlen(texts[i]);
	}
	float *out = malloc(N * 3 * sizeof(float));
	es_encode_info infos[N];
	es_pool *pool = es_pool_new(3);
	/* the batch loop is encoder.c's, over the static kind */
	es_model *m2 = model3();
	es_encoder *enc;
	ck_assert_int_eq(es_encoder_from_model(m2, "m", &enc, NULL), 0);
	ck_assert_int_eq(es_encoder_encode_batch(enc, texts, lens, N, 0, out, infos, pool, NULL), 0);
	for (int i = 0; i < N; i++) {
		float one[3];
		es_encode_info inf;
		es_model_encode(m, texts[i], lens[i], one, &inf, NULL);
		ck_assert_int_eq(memcmp(one, out + i * 3, sizeof one), 0);
		ck_assert_int_eq(inf.empty, infos[i].empty);
	}
	texts[77] = "bad \xc3";
	lens[77] = 5;
	es_error err = {0};
	ck_assert_int_eq(es_encoder_encode_batch(enc, texts, lens, N, 0, out, NULL, pool, &err),
			 ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "input 77"));
	es_encoder_free(enc);
	es_pool_free(pool);
	free(out);
	es_model_free(m);
}
END_TEST

Suite *encode_suite(void)
{
	Suite *s = suite_create("encode");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_sif_by_hand);
	tcase_add_test(tc, test_empty_and_unknown);
	tcase_add_test(tc, test_common_component);
	tcase_add_test(tc, test_compute_common);
	tcase_add_test(tc, test_batch);
	suite_add_tcase(s, tc);
	return s;
}
