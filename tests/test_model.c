/*
 * test_model.c — building models, fastText hashing and subwords, word
 * probabilities, metadata, unit vectors.
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "encoder.h"
#include "model.h"

START_TEST(test_fasttext_hash)
{
	/* FNV-1a 32 with sign-extended bytes: ASCII equals plain FNV-1a */
	ck_assert_uint_eq(es_fasttext_hash("", 0), 2166136261u);
	ck_assert_uint_eq(es_fasttext_hash("a", 1), 0xe40c292cu);
	/* a byte >= 0x80 is xored as 0xffffffXX, unlike plain FNV-1a */
	uint32_t h = 2166136261u;
	h ^= 0xffffffc3u;
	h *= 16777619u;
	ck_assert_uint_eq(es_fasttext_hash("\xc3", 1), h);
}
END_TEST

static es_model *small_model(uint64_t bucket)
{
	const char *words[] = {"the", "cat", "sat"};
	uint64_t counts[] = {50, 30, 20};
	float vecs[] = {1, 0, 0, 0, 1, 0, 0, 0, 2};
	float ngr[3 * 8];
	for (int i = 0; i < 24; i++)
		ngr[i] = (float)(i % 5) - 2;
	es_model_params p = {.dim = 3, .minn = 2, .maxn = 3, .bucket = bucket,
			     .has_counts = 1};
	es_model *m = NULL;
	es_error err = {0};
	int rc = es_model_from_arrays(&p, 3, words, counts, vecs,
				      bucket ? ngr : NULL, &m, &err);
	ck_assert_msg(rc == 0, "%s", err.msg);
	return m;
}

START_TEST(test_from_arrays)
{
	es_model *m = small_model(8);
	ck_assert_uint_eq(es_model_size(m), 3);
	ck_assert_uint_eq(es_model_dim(m), 3);
	ck_assert_int_eq(es_model_has_counts(m), 1);
	ck_assert_int_eq(es_model_has_subwords(m), 1);
	es_model_params p;
	es_model_get_params(m, &p);
	ck_assert_float_eq(p.sif_a, ES_SIF_A_DEFAULT);
	ck_assert_double_eq_tol(es_model_word_prob(m, 0), 0.5, 1e-12);
	float v[3];
	unsigned fl;
	int64_t id;
	ck_assert_int_eq(es_model_word_vector(m, "sat", 3, v, &fl, &id), 0);
	ck_assert_uint_eq(fl, ES_TOK_KNOWN);
	ck_assert_int_eq(id, 2);
	ck_assert_float_eq(v[2], 2);
	ck_assert_int_eq(es_model_word_vector(m, "dog", 3, v, &fl, &id), 0);
	ck_assert_uint_eq(fl, ES_TOK_SUBWORD);
	ck_assert_int_eq(id, -1);
	/* "<dog>" with minn 2, maxn 3: <d do og g> <do dog og> = 7 n-grams */
	uint32_t ids[16];
	ck_assert_uint_eq(es_model_subword_ids(m, "dog", 3, ids, 16), 7);
	float want[3] = {0, 0, 0};
	const float *rows = es_model_ngrams(m);
	for (int i = 0; i < 7; i++)
		for (int j = 0; j < 3; j++)
			want[j] += rows[ids[i] * 3 + j] / 7.0f;
	for (int j = 0; j < 3; j++)
		ck_assert_float_eq_tol(v[j], want[j], 1e-6);
	/* non-ASCII characters count as one character each */
	ck_assert_uint_eq(es_model_subword_ids(m, "é", 2, ids, 16), 3); /* <é é> <é> */
	es_model_free(m);

	m = small_model(0);
	ck_assert_int_eq(es_model_has_subwords(m), 0);
	ck_assert_int_eq(es_model_word_vector(m, "dog", 3, v, &fl, NULL), ES_ENOTFOUND);
	ck_assert_uint_eq(fl, ES_TOK_UNKNOWN);
	es_model_free(m);
}
END_TEST

START_TEST(test_build_errors)
{
	es_model_params p = {.dim = 0};
	es_model *m = NULL;
	es_error err = {0};
	ck_assert_int_eq(es_model_new(&p, &m, &err), ES_EINVAL);
	p.dim = 2;
	p.minn = 5;
	p.maxn = 3;
	p.bucket = 10;
	ck_assert_int_eq(es_model_new(&p, &m, &err), ES_EINVAL);
	p.minn = 0;
	p.maxn = 0;
	p.bucket = 0;
	ck_assert_int_eq(es_model_new(&p, &m, &err), 0);
	float nanv[2] = {NAN, 1};
	ck_assert_int_eq(es_model_add_word(m, "x", 1, 0, nanv, NULL, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'x'"));
	float ok[2] = {1, 2}, ok2[2] = {3, 4};
	int added;
	ck_assert_int_eq(es_model_add_word(m, "x", 1, 4, ok, &added, NULL), 0);
	ck_assert_int_eq(added, 1);
	ck_assert_int_eq(es_model_add_word(m, "x", 1, 9, ok2, &added, NULL), 0);
	ck_assert_int_eq(added, 0);
	ck_assert_float_eq(es_model_vector(m, 0)[0], 1);
	ck_assert_uint_eq(es_vocab_count(es_model_vocab(m), 0), 4);
	float zero[2] = {0, 0};
	ck_assert_int_eq(es_model_set_common(m, zero, &err), ES_EINVAL);
	ck_assert_int_eq(es_model_set_meta(m, "k", "v1", NULL), 0);
	ck_assert_int_eq(es_model_set_meta(m, "k", "v2", NULL), 0);
	ck_assert_uint_eq(es_model_meta_count(m), 1);
	ck_assert_str_eq(es_model_meta(m, "k"), "v2");
	ck_assert_ptr_null(es_model_meta(m, "nope"));
	es_model_free(m);

	const char *dup[] = {"a", "a"};
	float vv[4] = {1, 2, 3, 4};
	ck_assert_int_eq(es_model_from_arrays(&p, 2, dup, NULL, vv, NULL, &m, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "duplicate"));
}
END_TEST

START_TEST(test_zipf_and_unit)
{
	es_model *m = small_model(0);
	es_model_params p;
	es_model_get_params(m, &p);
	const float *u = es_model_unit_vectors(m, NULL);
	ck_assert_ptr_nonnull(u);
	ck_assert_float_eq(u[8], 1.0f);
	ck_assert_ptr_eq(es_model_unit_vectors(m, NULL), u);
	es_model_free(m);

	const char *words[] = {"a", "b", "c", "d"};
	float vecs[8] = {1, 0, 0, 1, 1, 1, 2, 2};
	p = (es_model_params){.dim = 2};
	ck_assert_int_eq(es_model_from_arrays(&p, 4, words, NULL, vecs, NULL, &m, NULL), 0);
	ck_assert_int_eq(es_model_has_counts(m), 0);
	double h = log(4.0) + 0.5772156649015329 + 1.0 / 8;
	ck_assert_double_eq_tol(es_model_word_prob(m, 0), 1 / h, 1e-12);
	ck_assert_double_eq_tol(es_model_word_prob(m, 3), 1 / (4 * h), 1e-12);
	es_model_free(m);
}
END_TEST

Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_fasttext_hash);
	tcase_add_test(tc, test_from_arrays);
	tcase_add_test(tc, test_build_errors);
	tcase_add_test(tc, test_zipf_and_unit);
	suite_add_tcase(s, tc);
	return s;
}
