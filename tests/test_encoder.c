/*
 * test_encoder.c — the one encoder interface over a static model: open by
 * path (every format), encode, batch, tokenize, word vectors, vocabulary,
 * and the errors for folders and missing files.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "es_test.h"
#include "model.h"

static es_encoder *open_ok(const char *rel)
{
	char p[512];
	es_encoder *e = NULL;
	es_error err = {0};
	int rc = es_encoder_open(es_test_path(p, sizeof p, rel), NULL, &e, &err);
	ck_assert_msg(rc == 0, "%s", err.msg);
	return e;
}

START_TEST(test_open_every_format)
{
	const char *files[] = {"tests/data/fasttext-toy.bin", "tests/data/fasttext-toy.vec",
			       "tests/data/word2vec-binary-2747x10.bin",
			       "tests/data/word2vec-text-1750x10.txt"};
	for (int i = 0; i < 4; i++) {
		es_encoder *e = open_ok(files[i]);
		ck_assert_int_eq(es_encoder_kind_of(e), ES_ENCODER_STATIC);
		ck_assert_uint_gt(es_encoder_dim(e), 0);
		ck_assert_uint_eq(es_encoder_max_tokens(e), 0);
		ck_assert_uint_gt(es_encoder_vocab_size(e), 0);
		ck_assert_ptr_null(strchr(es_encoder_name(e), '/'));
		ck_assert_ptr_nonnull(es_encoder_static_model(e));
		float v[16];
		es_encode_info info;
		ck_assert_int_eq(es_encoder_encode(e, "the", 3, 0, v, &info, NULL), 0);
		ck_assert_int_eq(info.empty, 0);
		double nn = 0;
		for (uint32_t j = 0; j < es_encoder_dim(e); j++)
			nn += v[j] * v[j];
		ck_assert_double_eq_tol(nn, 1, 1e-5);
		es_encoder_free(e);
	}
}
END_TEST

static int count_tok(void *ctx, const char *tok, size_t len, int32_t id,
		     unsigned flags)
{
	unsigned *c = ctx;
	(void)tok;
	(void)len;
	if (flags & ES_TOK_KNOWN)
		ck_assert_int_ge(id, 0);
	c[flags]++;
	return 0;
}

START_TEST(test_words_and_tokens)
{
	es_encoder *e = open_ok("tests/data/fasttext-toy.bin");
	uint32_t dim = es_encoder_dim(e);
	float v[16];
	unsigned fl;
	ck_assert_int_eq(es_encoder_word_vector(e, "the", 3, v, &fl, NULL), 0);
	ck_assert_uint_eq(fl, ES_TOK_KNOWN);
	ck_assert_int_eq(es_encoder_word_vector(e, "The", 3, v, &fl, NULL), 0);
	ck_assert_uint_eq(fl, ES_TOK_KNOWN);
	ck_assert_int_eq(es_encoder_word_vector(e, "zebra", 5, v, &fl, NULL), 0);
	ck_assert_uint_eq(fl, ES_TOK_SUBWORD);
	double nn = 0;
	for (uint32_t j = 0; j < dim; j++)
		nn += v[j] * v[j];
	ck_assert_double_eq_tol(nn, 1, 1e-5);
	unsigned counts[16] = {0};
	ck_assert_int_eq(es_encoder_tokenize(e, "The zebra, of course.", 21, count_tok, counts, NULL), 0);
	ck_assert_uint_eq(counts[ES_TOK_KNOWN], 2);
	ck_assert_uint_eq(counts[ES_TOK_SUBWORD], 2);
	const char *const *words;
	const float *unit;
	size_t n;
	ck_assert_int_eq(es_encoder_vocab(e, &words, &unit, &n, NULL), 0);
	ck_assert_uint_eq(n, es_encoder_vocab_size(e));
	ck_assert_str_eq(words[0], "the");
	es_encoder_free(e);

	e = open_ok("tests/data/word2vec-text-1750x10.txt");
	es_error err = {0};
	ck_assert_int_eq(es_encoder_word_vector(e, "qqqzzz", 6, v, &fl, &err), ES_ENOTFOUND);
	ck_assert_uint_eq(fl, ES_TOK_UNKNOWN);
	es_encoder_free(e);
}
END_TEST

START_TEST(test_open_errors)
{
	es_encoder *e = NULL;
	es_error err = {0};
	char p[512];
	/* a folder is opened as a BERT model: one without config.json is refused
	 * with a message naming the missing file */
	ck_assert_int_eq(es_encoder_open(es_test_path(p, sizeof p, "tests"), NULL, &e, &err),
			 ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "BERT"));
	ck_assert_ptr_nonnull(strstr(err.msg, "config.json"));
	ck_assert_ptr_null(e);
	ck_assert_int_eq(es_encoder_open("/no/such/model.bin", NULL, &e, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "/no/such/model.bin"));
	ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_batch_and_from_model)
{
	const char *words[] = {"red", "green", "blue"};
	float vecs[] = {1, 0, 0, 1, 1, 1};
	es_model_params p = {.dim = 2};
	es_model *m;
	ck_assert_int_eq(es_model_from_arrays(&p, 3, words, NULL, vecs, NULL, &m, NULL), 0);
	es_encoder *e;
	ck_assert_int_eq(es_encoder_from_model(m, "colours", &e, NULL), 0);
	ck_assert_str_eq(es_encoder_name(e), "colours");
	const char *texts[] = {"red", "green blue", "", "purple"};
	size_t lens[] = {3, 10, 0, 6};
	float out[8];
	es_encode_info infos[4];
	es_pool *pool = es_pool_new(2);
	ck_assert_int_eq(es_encoder_encode_batch(e, texts, lens, 4, 0, out, infos, pool, NULL), 0);
	ck_assert_float_eq_tol(out[0], 1, 1e-6);
	ck_assert_int_eq(infos[2].empty, 1);
	ck_assert_int_eq(infos[3].empty, 1);
	ck_assert_float_eq(out[6], 0);
	ck_assert_int_eq(isnan(out[4]), 0);
	es_pool_free(pool);
	es_encoder_free(e);
}
END_TEST

Suite *encoder_suite(void)
{
	Suite *s = suite_create("encoder");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_open_every_format);
	tcase_add_test(tc, test_words_and_tokens);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_batch_and_from_model);
	suite_add_tcase(s, tc);
	return s;
}
