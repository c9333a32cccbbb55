/*
 * eval.h — intrinsic evaluation with gensim's semantics, so the numbers can
 * be compared with gensim's KeyedVectors on the same vectors.
 *
 * es_eval_analogy = evaluate_word_analogies(restrict_vocab=300000,
 * case_insensitive=True, dummy4unknown=False): sections start at lines
 * ": name"; a line that is not four words is skipped; a quadruplet with a
 * word outside the first restrict_vocab words (compared upper-cased, the
 * most frequent spelling winning) is counted as OOV and skipped; otherwise
 * the prediction is the first of most_similar(positive=[b, c],
 * negative=[a], topn=5) that is not a, b or c (upper-cased), and it is
 * correct when it equals the expected word upper-cased.
 *
 * es_eval_pairs = evaluate_word_pairs(delimiter='\t', restrict_vocab=300000,
 * case_insensitive=True): lines starting with '#' and lines that are not
 * "word<TAB>word<TAB>number" are skipped; pairs with an OOV word are counted
 * and skipped; Pearson r and Spearman rho (average ranks for ties) between
 * the human scores and the cosine similarities.
 *
 * Upper-casing covers ASCII and Latin-1 (as Python's str.upper does for
 * those letters, ß -> SS and ÿ -> Ÿ included); other scripts are compared
 * as written.
 *
 * Threading: reentrant.  Ownership: results own their section array; free
 * with es_analogy_result_free.
 */
#ifndef ES_EVAL_H
#define ES_EVAL_H

#include <stddef.h>

#include "arith.h"
#include "encoder.h"

#define ES_EVAL_RESTRICT_DEFAULT 300000

typedef struct es_eval_section {
	char name[128];
	size_t correct, incorrect;
} es_eval_section;

typedef struct es_analogy_result {
	es_eval_section *sections; /* in file order */
	size_t nsections;
	size_t correct, incorrect; /* totals */
	size_t quadruplets;        /* well-formed lines */
	size_t oov;                /* skipped for unknown words */
} es_analogy_result;

/* Accuracy of a section: correct / (correct + incorrect), 0 when empty. */
double es_eval_accuracy(size_t correct, size_t incorrect);

/* restrict_vocab 0 = ES_EVAL_RESTRICT_DEFAULT. */
int es_eval_analogy(const es_encoder *enc, const char *path,
		    size_t restrict_vocab, int case_insensitive,
		    es_analogy_method method, es_analogy_result *res,
		    es_error *err);
void es_analogy_result_free(es_analogy_result *res);

typedef struct es_pairs_result {
	double pearson, spearman;
	size_t pairs;     /* pairs evaluated */
	size_t oov;       /* pairs skipped for unknown words */
	double oov_ratio; /* percent: oov / (pairs + oov) * 100 */
} es_pairs_result;

int es_eval_pairs(const es_encoder *enc, const char *path,
		  size_t restrict_vocab, int case_insensitive,
		  es_pairs_result *res, es_error *err);

/* Statistics (scipy's definitions); NaN when undefined (n < 2 or a
 * constant input). */
double es_pearson(const double *x, const double *y, size_t n);
double es_spearman(const double *x, const double *y, size_t n);

/* Upper-case s[0..len) into out (capacity >= 2 * len + 1); returns length. */
size_t es_eval_upper(const char *s, size_t len, char *out);

/* STS Benchmark (Cer et al. 2017) sentence-similarity evaluation:
 * tab-separated lines "genre, file, year, id, score, sentence1, sentence2"
 * (extra fields ignored, empty lines skipped); each pair's cosine between
 * the encoder's sentence vectors against the gold score, Spearman and
 * Pearson (x100 is what papers and `embedsrv eval sts` print).  A pair
 * where a sentence has no known word gets cosine 0 and is counted in
 * `empty`; every pair stays in, so models are compared on the same pairs.
 * A line with fewer than 7 fields, a score that is not a number, or
 * invalid UTF-8 is ES_EINVAL "NAME:LINE: ...". */
typedef struct es_sts_pairs {
	char *text;          /* private copy the sentences point into */
	const char **sents;  /* 2n: sentence1, sentence2 of each pair */
	size_t *lens;        /* 2n */
	double *gold;        /* n */
	size_t n;
} es_sts_pairs;

typedef struct es_sts_result {
	double spearman, pearson;
	size_t pairs;
	size_t empty; /* pairs with a sentence of no known word */
} es_sts_result;

/* Parse an STS file's bytes (tests/test_eval checks its errors); on
 * failure *out holds nothing, on success free it with es_sts_pairs_free. */
int es_sts_parse(const char *buf, size_t len, const char *name,
		 es_sts_pairs *out, es_error *err);
void es_sts_pairs_free(es_sts_pairs *p);
/* Read path, parse, evaluate. */
int es_eval_sts(const es_encoder *enc, const char *path, es_pool *pool,
		es_sts_result *res, es_error *err);

#endif
