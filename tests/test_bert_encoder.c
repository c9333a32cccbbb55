/*
 * test_bert_encoder.c — a BERT folder behind the core/encoder interface:
 * es_encoder_open() on the bert-tiny sentence-transformers folder gives the
 * reference embeddings, WordPiece pieces with ES_TOK_* flags, word vectors
 * (the word encoded alone), the cached whole-word vocabulary, and unit
 * vectors even for a plain Hugging Face folder without a Normalize module.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "es_test.h"
#include "es_test_json.h"
#include "wordpiece.h"

static json_t *ref;

static void setup(void)
{
	ref = es_test_load_json("tests/data/bert-tiny/reference.json");
}

static void teardown(void)
{
	json_decref(ref);
}

static es_encoder *open_rel(const char *rel)
{
	char p[512];
	es_encoder *e;
	es_error err;
	ck_assert_msg(es_encoder_open(es_test_path(p, sizeof p, rel), NULL, &e, &err) == 0,
		      "%s", err.msg);
	return e;
}

static const char *sentence(size_t i)
{
	return json_string_value(json_array_get(json_object_get(ref, "sentences"), i));
}

START_TEST(test_open_and_encode)
{
	es_encoder *e = open_rel("tests/data/bert-tiny/st-mean");
	ck_assert_int_eq(es_encoder_kind_of(e), ES_ENCODER_BERT);
	ck_assert_str_eq(es_encoder_name(e), "st-mean");
	ck_assert_uint_eq(es_encoder_dim(e), 128);
	ck_assert_uint_eq(es_encoder_max_tokens(e), 128);
	ck_assert_uint_eq(es_encoder_vocab_size(e), 2628);
	json_t *want = json_object_get(ref, "embeddings_mean");
	float out[20 * 128];
	es_encode_info info;
	es_error err;
	for (size_t i = 0; i < 20; i += 5) {
		const char *s = sentence(i);
		ck_assert_int_eq(es_encoder_encode(e, s, strlen(s), 0, out, &info, &err), 0);
		for (size_t j = 0; j < 128; j++)
			ck_assert(fabs(out[j] - json_real_value(json_array_get(
							 json_array_get(want, i), j))) < 1e-5);
	}
	/* batch over a pool */
	const char *texts[20];
	size_t lens[20];
	for (size_t i = 0; i < 20; i++) {
		texts[i] = sentence(i);
		lens[i] = strlen(texts[i]);
	}
	es_pool *pool = es_pool_new(2);
	es_encode_info infos[20];
	ck_assert_int_eq(es_encoder_encode_batch(e, texts, lens, 20, 0, out, infos, pool, &err), 0);
	for (size_t i = 0; i < 20; i++)
		for (size_t j = 0; j < 128; j++)
			ck_assert(fabs(out[i * 128 + j] - json_real_value(json_array_get(
							json_array_get(want, i), j))) < 1e-5);
	ck_assert_int_eq(infos[15].truncated, 1);
	ck_assert_int_eq(es_encoder_encode_batch(e, texts, lens, 20, ES_ENC_NO_TRUNCATE, out,
						 infos, pool, &err), ES_ERANGE);
	es_pool_free(pool);
	es_encoder_free(e);
}
END_TEST

START_TEST(test_plain_folder_is_unit)
{
	es_encoder *e = open_rel("tests/data/bert-tiny/hf");
	float out[128];
	es_error err;
	ck_assert_int_eq(es_encoder_encode(e, "the river bank", 14, 0, out, NULL, &err), 0);
	double s = 0;
	for (int j = 0; j < 128; j++)
		s += (double)out[j] * out[j];
	ck_assert(fabs(s - 1.0) < 1e-5);
	es_encoder_free(e);
}
END_TEST

typedef struct tok_rec {
	char text[64][32];
	int32_t id[64];
	unsigned flags[64];
	size_t n;
} tok_rec;

static int record(void *ctx, const char *tok, size_t len, int32_t id, unsigned flags)
{
	tok_rec *r = ctx;
	ck_assert(r->n < 64 && len < 32);
	memcpy(r->text[r->n], tok, len);
	r->text[r->n][len] = 0;
	r->id[r->n] = id;
	r->flags[r->n++] = flags;
	return 0;
}

START_TEST(test_tokenize_flags)
{
	es_encoder *e = open_rel("tests/data/bert-tiny/st-mean");
	tok_rec r = {0};
	es_error err;
	const char *s = sentence(0); /* [CLS] i need ... de ##p ##o ##s ##i ##t a check . [SEP] */
	ck_assert_int_eq(es_encoder_tokenize(e, s, strlen(s), record, &r, &err), 0);
	json_t *toks = json_array_get(json_object_get(ref, "tokens"), 0);
	ck_assert_uint_eq(r.n, json_array_size(toks));
	for (size_t i = 0; i < r.n; i++)
		ck_assert_str_eq(r.text[i], json_string_value(json_array_get(toks, i)));
	ck_assert_uint_eq(r.flags[0], ES_TOK_SPECIAL);
	ck_assert_uint_eq(r.flags[r.n - 1], ES_TOK_SPECIAL);
	ck_assert_uint_eq(r.flags[1], ES_TOK_KNOWN);               /* i */
	ck_assert_uint_eq(r.flags[9], ES_TOK_KNOWN | ES_TOK_SUBWORD); /* de */
	ck_assert_uint_eq(r.flags[10], ES_TOK_KNOWN | ES_TOK_SUBWORD); /* ##p */
	r.n = 0;
	ck_assert_int_eq(es_encoder_tokenize(e, "東", 3, record, &r, &err), 0);
	ck_assert_uint_eq(r.n, 3);
	ck_assert_uint_eq(r.flags[1], ES_TOK_UNKNOWN);
	ck_assert_str_eq(r.text[1], "[UNK]");
	es_encoder_free(e);
}
END_TEST

/* "[CLS]", "[unused3]": specials; "[" alone is punctuation, a real word */
static int is_bracketed(const char *t)
{
	size_t l = strlen(t);
	return l >= 2 && t[0] == '[' && t[l - 1] == ']';
}

START_TEST(test_word_vectors_and_vocab)
{
	es_encoder *e = open_rel("tests/data/bert-tiny/st-mean");
	float w[128], t[128];
	unsigned flags = 0;
	es_error err;
	ck_assert_int_eq(es_encoder_word_vector(e, "bank", 4, w, &flags, &err), 0);
	ck_assert_uint_eq(flags, ES_TOK_KNOWN);
	ck_assert_int_eq(es_encoder_encode(e, "bank", 4, 0, t, NULL, &err), 0);
	ck_assert(memcmp(w, t, sizeof w) == 0);
	ck_assert_int_eq(es_encoder_word_vector(e, "deposit", 7, w, &flags, &err), 0);
	ck_assert_uint_eq(flags, ES_TOK_KNOWN | ES_TOK_SUBWORD);
	ck_assert_int_eq(es_encoder_word_vector(e, "東", 3, w, &flags, &err), ES_ENOTFOUND);

	const char *const *words;
	const float *unit;
	size_t count;
	ck_assert_int_eq(es_encoder_vocab(e, &words, &unit, &count, &err), 0);
	/* whole words only: no ## pieces, no [..] specials */
	size_t whole = 0;
	char p[512];
	es_wordpiece *wp;
	ck_assert_int_eq(es_wordpiece_open(es_test_path(p, sizeof p, "tests/data/bert-tiny/st-mean"),
					   &wp, &err), 0);
	for (size_t i = 0; i < es_wordpiece_vocab_size(wp); i++) {
		const char *tk = es_wordpiece_token(wp, (int32_t)i);
		if (strncmp(tk, "##", 2) != 0 && !is_bracketed(tk))
			whole++;
	}
	es_wordpiece_free(wp);
	ck_assert_uint_eq(count, whole);
	size_t bank = count;
	for (size_t i = 0; i < count; i++) {
		ck_assert(strncmp(words[i], "##", 2) != 0 && !is_bracketed(words[i]));
		if (strcmp(words[i], "bank") == 0)
			bank = i;
	}
	ck_assert_uint_lt(bank, count);
	ck_assert_int_eq(es_encoder_word_vector(e, "bank", 4, w, NULL, &err), 0);
	for (int j = 0; j < 128; j++)
		ck_assert(fabs(unit[bank * 128 + j] - w[j]) < 1e-6);
	/* cached: the second call returns the same arrays */
	const float *unit2;
	ck_assert_int_eq(es_encoder_vocab(e, &words, &unit2, &count, &err), 0);
	ck_assert_ptr_eq(unit, unit2);
	es_encoder_free(e);
}
END_TEST

Suite *bert_encoder_suite(void)
{
	Suite *s = suite_create("bert_encoder");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_and_encode);
	tcase_add_test(tc, test_plain_folder_is_unit);
	tcase_add_test(tc, test_tokenize_flags);
	tcase_add_test(tc, test_word_vectors_and_vocab);
	suite_add_tcase(s, tc);
	return s;
}
