/*
 * test_arith.c — exact top-k against brute force, gensim most_similar /
 * most_similar_cosmul by hand, exclusion, restrict_vocab, weights,
 * doesnt_match, similarity, text neighbours, word neighbours by meaning
 * (shared n-grams left out of the score).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "encoder.h"
#include "model.h"

START_TEST(test_topk_brute_force)
{
	uint32_t dim = 17;
	size_t n = 20000; /* crosses the row-block boundary */
	float *u = malloc(n * dim * sizeof(float));
	unsigned s = 12345;
	for (size_t i = 0; i < n * dim; i++) {
		s = s * 1103515245u + 12345u;
		u[i] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
	}
	float q[3 * 17];
	for (int i = 0; i < 3 * 17; i++)
		q[i] = (float)((i * 7) % 13) / 6.0f - 1.0f;
	uint32_t ex0[2] = {5, 19999};
	const uint32_t *ex[3] = {ex0, NULL, NULL};
	size_t nex[3] = {2, 0, 0}, nout[3];
	es_word_score out[3 * 10];
	ck_assert_int_eq(es_arith_topk_batch(u, n, dim, q, 3, 10, ex, nex, out, nout, NULL), 0);
	for (int j = 0; j < 3; j++) {
		ck_assert_uint_eq(nout[j], 10);
		float *sc = malloc(n * sizeof(float));
		for (size_t i = 0; i < n; i++) {
			double d = 0;
			for (uint32_t t = 0; t < dim; t++)
				d += (double)u[i * dim + t] * q[j * dim + t];
			sc[i] = (float)d;
		}
		if (j == 0)
			sc[5] = sc[19999] = -INFINITY;
		for (int r = 0; r < 10; r++) {
			size_t best = 0;
			for (size_t i = 1; i < n; i++)
				if (sc[i] > sc[best])
					best = i;
			ck_assert_uint_eq(out[j * 10 + r].id, best);
			ck_assert_float_eq_tol(out[j * 10 + r].score, sc[best], 1e-4);
			sc[best] = -INFINITY;
		}
		free(sc);
	}
	/* single-query path agrees, ties broken by lower id */
	float one[2] = {1, 0}, rows[8] = {1, 0, 0, 1, 1, 0, 0.5f, 0};
	es_word_score o[4];
	ck_assert_uint_eq(es_arith_topk(rows, 4, 2, one, 3, NULL, 0, o), 3);
	ck_assert_uint_eq(o[0].id, 0);
	ck_assert_uint_eq(o[1].id, 2);
	ck_assert_uint_eq(o[2].id, 3);
	free(u);
}
END_TEST

static es_encoder *toy(void)
{
	const char *words[] = {"man", "woman", "king", "queen", "apple", "pear", "banana"};
	float v[] = {0, -1, 1,   0, 1, 1,   1, -1, 1,   1, 1, 1,
		     -1, 0, 0.1f,   -1, 0.1f, 0,   -0.9f, 0, 0};
	es_model_params p = {.dim = 3};
	es_model *m;
	ck_assert_int_eq(es_model_from_arrays(&p, 7, words, NULL, v, NULL, &m, NULL), 0);
	es_encoder *e;
	ck_assert_int_eq(es_encoder_from_model(m, "toy", &e, NULL), 0);
	return e;
}

START_TEST(test_most_similar)
{
	es_encoder *e = toy();
	es_arith_term pos[2] = {{.word = "king", .len = 4}, {.word = "woman", .len = 5}};
	es_arith_term neg[1] = {{.word = "man", .len = 3}};
	es_word_score out[10];
	size_t n;
	ck_assert_int_eq(es_arith_most_similar(e, pos, 2, neg, 1, ES_ANALOGY_3COSADD, 0, 10, out, &n, NULL), 0);
	ck_assert_uint_eq(n, 4); /* 7 words minus the 3 query words */
	ck_assert_uint_eq(out[0].id, 3); /* queen */
	/* by hand: mean = (k + w - m)/3 normalised, cos with queen */
	double k[3] = {1 / sqrt(3), -1 / sqrt(3), 1 / sqrt(3)};
	double w[3] = {0, 1 / sqrt(2), 1 / sqrt(2)}, mm[3] = {0, -1 / sqrt(2), 1 / sqrt(2)};
	double mean[3], nn = 0;
	for (int j = 0; j < 3; j++) {
		mean[j] = k[j] + w[j] - mm[j];
		nn += mean[j] * mean[j];
	}
	double cq = (mean[0] + mean[1] + mean[2]) / sqrt(nn) / sqrt(3);
	ck_assert_double_eq_tol(out[0].score, cq, 1e-6);
	for (size_t i = 0; i < n; i++)
		ck_assert(out[i].id >= 3);

	/* 3CosMul by hand for queen */
	ck_assert_int_eq(es_arith_most_similar(e, pos, 2, neg, 1, ES_ANALOGY_3COSMUL, 0, 2, out, &n, NULL), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[0].id, 3);
	double q[3] = {1 / sqrt(3), 1 / sqrt(3), 1 / sqrt(3)};
	double ck = 0, cw = 0, cm = 0;
	for (int j = 0; j < 3; j++) {
		ck += q[j] * k[j];
		cw += q[j] * w[j];
		cm += q[j] * mm[j];
	}
	double want = ((1 + ck) / 2) * ((1 + cw) / 2) / ((1 + cm) / 2 + 1e-6);
	ck_assert_double_eq_tol(out[0].score, want, 1e-5);

	/* restrict_vocab = 4: only man..queen are candidates */
	ck_assert_int_eq(es_arith_most_similar(e, pos, 1, NULL, 0, ES_ANALOGY_3COSADD, 4, 10, out, &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_lt(out[i].id, 4);

	/* weights: a heavy "apple" pulls towards fruit */
	es_arith_term wpos[2] = {{.word = "king", .len = 4, .weight = 0.1f},
				 {.word = "apple", .len = 5, .weight = 5}};
	ck_assert_int_eq(es_arith_most_similar(e, wpos, 2, NULL, 0, ES_ANALOGY_3COSADD, 0, 1, out, &n, NULL), 0);
	ck_assert_uint_eq(out[0].id, 6); /* banana, closest to apple */
	ck_assert_int_eq(es_arith_most_similar(e, wpos, 2, NULL, 0, ES_ANALOGY_3COSMUL, 0, 1, out, &n, NULL), ES_EINVAL);

	es_error err = {0};
	es_arith_term bad = {.word = "unicorn", .len = 7};
	ck_assert_int_eq(es_arith_most_similar(e, &bad, 1, NULL, 0, ES_ANALOGY_3COSADD, 0, 1, out, &n, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "unicorn"));
	ck_assert_int_eq(es_arith_most_similar(e, NULL, 0, neg, 1, ES_ANALOGY_3COSADD, 0, 1, out, &n, &err), ES_EINVAL);
	/* a vector term excludes nothing */
	float vq[3] = {1, 1, 1};
	es_arith_term vt = {.vec = vq};
	ck_assert_int_eq(es_arith_most_similar(e, &vt, 1, NULL, 0, ES_ANALOGY_3COSADD, 0, 1, out, &n, NULL), 0);
	ck_assert_uint_eq(out[0].id, 3);
	ck_assert_float_eq_tol(out[0].score, 1, 1e-6);
	es_encoder_free(e);
}
END_TEST

START_TEST(test_similarity_and_odd_one)
{
	es_encoder *e = toy();
	float s;
	ck_assert_int_eq(es_arith_similarity(e, "man", 3, "woman", 5, &s, NULL), 0);
	ck_assert_float_eq_tol(s, 0, 1e-7);
	ck_assert_int_eq(es_arith_similarity(e, "king", 4, "KING", 4, &s, NULL), 0);
	ck_assert_float_eq_tol(s, 1, 1e-6);
	ck_assert_int_eq(es_arith_similarity(e, "king", 4, "zzz", 3, &s, NULL), ES_ENOTFOUND);
	ck_assert_int_eq(es_arith_text_similarity(e, "the king", 8, "king!", 5, &s, NULL), 0);
	ck_assert_float_eq_tol(s, 1, 1e-6);
	const char *words[] = {"apple", "pear", "king", "banana", "unicorn"};
	size_t idx;
	ck_assert_int_eq(es_arith_doesnt_match(e, words, 5, &idx, NULL), 0);
	ck_assert_uint_eq(idx, 2);
	const char *none[] = {"x", "y"};
	ck_assert_int_eq(es_arith_doesnt_match(e, none, 2, &idx, NULL), ES_EINVAL);
	es_word_score out[3];
	size_t n;
	ck_assert_int_eq(es_arith_neighbors_text(e, "apple pie", 9, 0, 3, out, &n, NULL), 0);
	ck_assert_uint_eq(out[0].id, 4); /* text neighbours keep the words */
	ck_assert_int_eq(es_arith_neighbors_text(e, "zzz", 3, 0, 3, out, &n, NULL), ES_ENOTFOUND);
	ck_assert_int_eq(es_analogy_method_parse("3cosmul"), ES_ANALOGY_3COSMUL);
	ck_assert_int_eq(es_analogy_method_parse("x"), -1);
	es_encoder_free(e);
}
END_TEST

/* A subword model where "bank" and "banks" share n-gram rows (spelling)
 * while "money" shares bank's own row (meaning): plain cosine puts banks
 * first, es_arith_word_neighbors puts money first, with the score computed
 * here by hand (own row + the rows of the n-grams the other word lacks). */
#define SW_DIM 4
static const char *sw_words[] = {"bank", "banks", "money", "tree"};
static const float sw_own[4][SW_DIM] = {{0, 1, 0, 0}, {0, 0, 1, 0}, {0, 1, 0, 0.2f},
					{0, 0, 0, 1}};

static es_encoder *subword_toy(float **rows_out, es_model_params *pp)
{
	es_model_params p = {.dim = SW_DIM, .minn = 3, .maxn = 3, .bucket = 4099};
	float *rows = calloc(p.bucket * SW_DIM, sizeof *rows), zero[SW_DIM] = {0};
	es_model *m0; /* the same hashing, to find each word's n-gram rows */
	ck_assert_int_eq(es_model_from_arrays(&p, 1, sw_words, NULL, zero, rows, &m0, NULL), 0);
	uint32_t ids[64];
	/* bank's n-grams all point along axis 0: what its spelling carries */
	size_t n = es_model_subword_ids(m0, "bank", 4, ids, 64);
	for (size_t i = 0; i < n; i++)
		rows[(size_t)ids[i] * SW_DIM] = 1.0f;
	float vec[4 * SW_DIM];
	for (int w = 0; w < 4; w++) {
		n = es_model_subword_ids(m0, sw_words[w], strlen(sw_words[w]), ids, 64);
		for (int j = 0; j < SW_DIM; j++) {
			float sum = sw_own[w][j];
			for (size_t i = 0; i < n; i++)
				sum += rows[(size_t)ids[i] * SW_DIM + j];
			vec[w * SW_DIM + j] = sum / (float)(n + 1);
		}
	}
	es_model_free(m0);
	es_model *m;
	ck_assert_int_eq(es_model_from_arrays(&p, 4, sw_words, NULL, vec, rows, &m, NULL), 0);
	es_encoder *e;
	ck_assert_int_eq(es_encoder_from_model(m, "sw", &e, NULL), 0);
	*rows_out = rows;
	*pp = p;
	return e;
}

/* own row of word a plus the rows of its n-grams that b does not have */
static void sw_unshared(const es_encoder *e, const float *rows, int a, int b, double *out)
{
	const es_model *m = es_encoder_static_model(e);
	uint32_t ia[64], ib[64];
	size_t na = es_model_subword_ids(m, sw_words[a], strlen(sw_words[a]), ia, 64);
	size_t nb = es_model_subword_ids(m, sw_words[b], strlen(sw_words[b]), ib, 64);
	for (int j = 0; j < SW_DIM; j++)
		out[j] = sw_own[a][j];
	for (size_t i = 0; i < na; i++) {
		int shared = 0;
		for (size_t t = 0; t < nb; t++)
			shared |= ia[i] == ib[t];
		for (int j = 0; !shared && j < SW_DIM; j++)
			out[j] += rows[(size_t)ia[i] * SW_DIM + j];
	}
}

START_TEST(test_word_neighbors_by_meaning)
{
	float *rows;
	es_model_params p;
	es_encoder *e = subword_toy(&rows, &p);
	es_word_score o[3];
	size_t n;
	es_arith_term t = {.word = "bank", .len = 4};
	/* plain cosine: spelling wins */
	ck_assert_int_eq(es_arith_most_similar(e, &t, 1, NULL, 0, ES_ANALOGY_3COSADD, 0, 3, o,
					       &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(o[0].id, 1); /* banks */
	/* by meaning: money, with the cosine of the unshared parts */
	ck_assert_int_eq(es_arith_word_neighbors(e, "bank", 4, 0, 3, o, &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(o[0].id, 2);
	for (size_t r = 0; r < n; r++) {
		ck_assert_uint_ne(o[r].id, 0); /* the query is excluded */
		double x[SW_DIM], y[SW_DIM], d = 0, nx = 0, ny = 0;
		sw_unshared(e, rows, 0, (int)o[r].id, x);
		sw_unshared(e, rows, (int)o[r].id, 0, y);
		for (int j = 0; j < SW_DIM; j++) {
			d += x[j] * y[j];
			nx += x[j] * x[j];
			ny += y[j] * y[j];
		}
		ck_assert_double_eq_tol(o[r].score, d / sqrt(nx * ny), 1e-4);
		if (r)
			ck_assert(o[r - 1].score >= o[r].score);
	}
	/* k caps the answer; an unknown word with subwords works (no own row) */
	ck_assert_int_eq(es_arith_word_neighbors(e, "Bank", 4, 0, 1, o, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(o[0].id, 2);
	ck_assert_int_eq(es_arith_word_neighbors(e, "bankx", 5, 0, 3, o, &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	/* restrict_vocab limits the candidates to the most frequent words */
	ck_assert_int_eq(es_arith_word_neighbors(e, "bank", 4, 2, 3, o, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(o[0].id, 1);
	es_error err = {0};
	ck_assert_int_eq(es_arith_word_neighbors(e, "zz", 2, 0, 3, o, &n, &err), ES_ENOTFOUND);
	es_encoder_free(e);
	free(rows);
	/* no subwords: plain cosine, as most_similar */
	e = toy();
	es_word_score a[3], b[3];
	size_t na, nb;
	es_arith_term k = {.word = "king", .len = 4};
	ck_assert_int_eq(es_arith_word_neighbors(e, "king", 4, 0, 3, a, &na, NULL), 0);
	ck_assert_int_eq(es_arith_most_similar(e, &k, 1, NULL, 0, ES_ANALOGY_3COSADD, 0, 3, b,
					       &nb, NULL), 0);
	ck_assert_uint_eq(na, nb);
	for (size_t i = 0; i < na; i++) {
		ck_assert_uint_eq(a[i].id, b[i].id);
		ck_assert_float_eq(a[i].score, b[i].score);
	}
	es_encoder_free(e);
}
END_TEST

Suite *arith_suite(void)
{
	Suite *s = suite_create("arith");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_topk_brute_force);
	tcase_add_test(tc, test_most_similar);
	tcase_add_test(tc, test_similarity_and_odd_one);
	tcase_add_test(tc, test_word_neighbors_by_meaning);
	suite_add_tcase(s, tc);
	return s;
}
