/*
 * test_retrofit.c — the retrofitting math on tiny models: related words move
 * together, words without edges do not move, antonyms move apart, lengths
 * are kept, n-gram rows and unseen words are untouched, and the n-gram
 * re-weighting recovers a word's own row exactly.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lexicon.h"
#include "model.h"
#include "retrofit.h"

static double cosine(const float *a, const float *b, uint32_t d)
{
	double ab = 0, aa = 0, bb = 0;
	for (uint32_t j = 0; j < d; j++) {
		ab += (double)a[j] * b[j];
		aa += (double)a[j] * a[j];
		bb += (double)b[j] * b[j];
	}
	return ab / sqrt(aa * bb);
}

static double norm(const float *a, uint32_t d)
{
	double s = 0;
	for (uint32_t j = 0; j < d; j++)
		s += (double)a[j] * a[j];
	return sqrt(s);
}

static const float *vec(const es_model *m, const char *w)
{
	int64_t id = es_vocab_find(es_model_vocab(m), w, strlen(w));
	ck_assert_msg(id >= 0, "%s missing", w);
	return es_model_vector(m, (uint32_t)id);
}

static es_lexicon *lex(const char *text)
{
	es_lexicon *lx;
	es_error err = {0};
	ck_assert_msg(es_lexicon_parse(text, strlen(text), "t", &lx, &err) == 0, "%s", err.msg);
	return lx;
}

/* words: happy glad (a synonym pair, far apart), hot cold (antonyms, close),
 * table (no relation), Big (matched through its normalised form "big") */
static es_model *tiny(void)
{
	const char *words[] = {"happy", "glad", "hot", "cold", "table", "big", "small"};
	float v[] = {
		1, 0, 0, 0.2f,
		0, 2, 0, 0.2f,
		0.5f, 0.5f, 1, 0,
		0.4f, 0.6f, 1, 0,
		0, 0, 0, 3,
		1, 1, 1, 1,
		1, -1, 1, -1,
	};
	es_model_params p = {.dim = 4};
	es_model *m;
	ck_assert_int_eq(es_model_from_arrays(&p, 7, words, NULL, v, NULL, &m, NULL), 0);
	return m;
}

START_TEST(test_attract_repel_keep)
{
	es_model *m = tiny(), *r;
	es_lexicon *lx = lex("syn happy glad unknownword\nant hot cold\nrel Big small\n");
	es_retrofit_params p;
	es_retrofit_params_default(&p);
	p.beta_syn = 1;
	p.beta_rel = 0.5f;
	p.gamma_ant = 0.2f;
	es_retrofit_stats st;
	es_error err = {0};
	ck_assert_msg(es_retrofit(m, lx, &p, &r, &st, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(st.edges[ES_LEX_SYN], 1);
	ck_assert_uint_eq(st.edges[ES_LEX_ANT], 1);
	ck_assert_uint_eq(st.edges[ES_LEX_REL], 1);
	ck_assert_uint_eq(st.unknown_words, 1);
	ck_assert_uint_eq(st.words_moved, 6);
	/* related words move together */
	double before = cosine(vec(m, "happy"), vec(m, "glad"), 4);
	double after = cosine(vec(r, "happy"), vec(r, "glad"), 4);
	ck_assert_msg(after > before + 0.3, "syn: %f -> %f", before, after);
	before = cosine(vec(m, "big"), vec(m, "small"), 4);
	after = cosine(vec(r, "big"), vec(r, "small"), 4);
	ck_assert_msg(after > before + 0.1, "rel: %f -> %f", before, after);
	/* antonyms move apart */
	before = cosine(vec(m, "hot"), vec(m, "cold"), 4);
	after = cosine(vec(r, "hot"), vec(r, "cold"), 4);
	ck_assert_msg(after < before - 0.01, "ant: %f -> %f", before, after);
	/* a word without relations does not move at all */
	ck_assert_mem_eq(vec(m, "table"), vec(r, "table"), 4 * sizeof(float));
	/* every word keeps its length (SIF pooling sums raw vectors) */
	const char *all[] = {"happy", "glad", "hot", "cold", "big", "small"};
	for (int i = 0; i < 6; i++)
		ck_assert_double_eq_tol(norm(vec(r, all[i]), 4), norm(vec(m, all[i]), 4), 1e-5);
	ck_assert_str_eq(es_model_meta(r, "retrofit.iterations"), "10");
	es_model_free(r);

	/* no iterations: nothing moves */
	p.iterations = 0;
	ck_assert_int_eq(es_retrofit(m, lx, &p, &r, NULL, &err), 0);
	for (size_t i = 0; i < es_model_size(m); i++)
		for (int j = 0; j < 4; j++)
			ck_assert_float_eq_tol(es_model_vector(r, (uint32_t)i)[j],
					       es_model_vector(m, (uint32_t)i)[j], 1e-6f);
	es_model_free(r);
	es_lexicon_free(lx);
	es_model_free(m);
}
END_TEST

START_TEST(test_synonym_pair_fixed_point)
{
	/* two synonyms, beta = 1: the objective's minimum is
	 * q1 = (2 u1 + u2) / 3 and q2 = (u1 + 2 u2) / 3 (u = unit vectors),
	 * which the Jacobi iterations reach (contraction rate 1/2) */
	es_model *m = tiny(), *r;
	es_lexicon *lx = lex("syn glad happy\n");
	es_retrofit_params p;
	es_retrofit_params_default(&p);
	p.beta_syn = 1;
	p.iterations = 60;
	ck_assert_int_eq(es_retrofit(m, lx, &p, &r, NULL, NULL), 0);
	const float *h = vec(m, "happy"), *g = vec(m, "glad");
	double nh = norm(h, 4), ngl = norm(g, 4);
	float want_h[4], want_g[4];
	for (int j = 0; j < 4; j++) {
		want_h[j] = (float)((2 * h[j] / nh + g[j] / ngl) / 3);
		want_g[j] = (float)((h[j] / nh + 2 * g[j] / ngl) / 3);
	}
	ck_assert_double_gt(cosine(vec(r, "happy"), want_h, 4), 1 - 1e-9);
	ck_assert_double_gt(cosine(vec(r, "glad"), want_g, 4), 1 - 1e-9);
	es_model_free(r);
	es_lexicon_free(lx);
	es_model_free(m);
}
END_TEST

START_TEST(test_params_check)
{
	es_model *m = tiny(), *r = NULL;
	es_lexicon *lx = lex("syn happy glad\n");
	es_retrofit_params p;
	es_error err = {0};
	es_retrofit_params_default(&p);
	p.gamma_ant = 0.5f; /* = alpha / 2: unbounded objective */
	ck_assert_int_eq(es_retrofit(m, lx, &p, &r, NULL, &err), ES_EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err.msg, "--gamma-ant"));
	es_retrofit_params_default(&p);
	p.alpha = 0;
	ck_assert_int_eq(es_retrofit_params_check(&p, &err), ES_EINVAL);
	es_retrofit_params_default(&p);
	p.ngram_weight = 1.5f;
	ck_assert_int_eq(es_retrofit_params_check(&p, &err), ES_EINVAL);
	es_retrofit_params_default(&p);
	p.beta_syn = NAN;
	ck_assert_int_eq(es_retrofit_params_check(&p, &err), ES_EINVAL);
	es_lexicon_free(lx);
	es_model_free(m);
}
END_TEST

START_TEST(test_ngram_weight)
{
	/* a subword model whose stored vectors are the mean of an own row
	 * and the word's n-gram rows, as the trainer writes them */
	const uint32_t d = 3;
	es_model_params mp = {.dim = d, .minn = 3, .maxn = 4, .bucket = 64};
	float *ng = malloc(64 * d * sizeof *ng);
	for (int i = 0; i < 64 * (int)d; i++)
		ng[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
	es_model *tmp;
	ck_assert_int_eq(es_model_new(&mp, &tmp, NULL), 0);
	ck_assert_int_eq(es_model_set_ngrams(tmp, ng, NULL), 0);
	const char *words[] = {"lexicon", "retrofit"};
	float own[2][3] = {{1, 2, 3}, {-2, 0.5f, 1}}, v[2][3];
	for (int w = 0; w < 2; w++) {
		uint32_t ids[64];
		size_t n = es_model_subword_ids(tmp, words[w], strlen(words[w]), ids, 64);
		ck_assert_uint_gt(n, 3);
		for (uint32_t j = 0; j < d; j++) {
			double s = own[w][j];
			for (size_t k = 0; k < n; k++)
				s += ng[ids[k] * d + j];
			v[w][j] = (float)(s / (double)(n + 1));
		}
	}
	es_model_free(tmp);
	es_model *m, *r;
	ck_assert_int_eq(es_model_from_arrays(&mp, 2, words, NULL, &v[0][0], ng, &m, NULL), 0);
	es_lexicon *lx = lex("syn lexicon nothing\n");
	es_retrofit_params p;
	es_retrofit_params_default(&p);
	p.ngram_weight = 0; /* the own row alone */
	ck_assert_int_eq(es_retrofit(m, lx, &p, &r, NULL, NULL), 0);
	for (int w = 0; w < 2; w++)
		for (uint32_t j = 0; j < d; j++)
			ck_assert_float_eq_tol(vec(r, words[w])[j], own[w][j], 1e-4f);
	/* n-gram rows and so unseen words are unchanged */
	ck_assert_mem_eq(es_model_ngrams(r), ng, 64 * d * sizeof(float));
	float a[3], b[3];
	ck_assert_int_eq(es_model_subword_vector(m, "unseen", 6, a), 0);
	ck_assert_int_eq(es_model_subword_vector(r, "unseen", 6, b), 0);
	ck_assert_mem_eq(a, b, sizeof a);
	es_model_free(r);
	/* weight 1 keeps the vectors */
	p.ngram_weight = 1;
	ck_assert_int_eq(es_retrofit(m, lx, &p, &r, NULL, NULL), 0);
	ck_assert_mem_eq(es_model_vectors(r), es_model_vectors(m), 2 * d * sizeof(float));
	es_model_free(r);
	es_lexicon_free(lx);
	es_model_free(m);
	free(ng);
}
END_TEST

Suite *retrofit_suite(void)
{
	Suite *s = suite_create("retrofit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_attract_repel_keep);
	tcase_add_test(tc, test_synonym_pair_fixed_point);
	tcase_add_test(tc, test_params_check);
	tcase_add_test(tc, test_ngram_weight);
	suite_add_tcase(s, tc);
	return s;
}
