/*
 * arith.h — word-vector arithmetic over any es_encoder's vocabulary:
 * neighbours of a word / text / vector, similarity, analogies with gensim's
 * KeyedVectors semantics (most_similar = 3CosAdd, most_similar_cosmul =
 * 3CosMul), and doesnt_match.
 *
 * Semantics (gensim 4.x):
 *  - every query word is turned into its unit vector (vocabulary, else
 *    subwords); the words that are in the vocabulary are excluded from the
 *    answers;
 *  - 3CosAdd: mean = sum(w_i * unit_i) / sum(|w_i|), normalised; score =
 *    cosine(vocab word, mean).  Positive words default to weight +1 and
 *    negative words to -1.  DEPARTURE: an explicit weight on a negative word
 *    is a magnitude here (applied as -|w|); gensim uses a (word, w) tuple in
 *    `negative` with its sign as given, which silently turns it positive;
 *  - 3CosMul (Levy & Goldberg): score = prod_pos (1 + cos)/2 /
 *    (prod_neg (1 + cos)/2 + 1e-6); weights must be 1;
 *  - restrict_vocab (0 = all) limits the candidates to the first N words
 *    (most frequent first);
 *  - ties are broken by the lower (more frequent) id.
 * The search is exact: blocked sgemm over the unit-vector table (OpenBLAS).
 *
 * Threading: reentrant; uses the encoder's cached unit-vector table.
 */
#ifndef ES_ARITH_H
#define ES_ARITH_H

#include <stddef.h>
#include <stdint.h>

#include "encoder.h"

typedef struct es_word_score {
	uint32_t id;  /* index into es_encoder_vocab()'s words */
	float score;
} es_word_score;

typedef enum es_analogy_method {
	ES_ANALOGY_3COSADD = 0,
	ES_ANALOGY_3COSMUL = 1,
} es_analogy_method;

/* "3cosadd" / "3cosmul" (also "add" / "mul"); -1 if unknown. */
int es_analogy_method_parse(const char *name);

/* One query term: a word, or (word NULL) a vector of dim floats. */
typedef struct es_arith_term {
	const char *word;
	size_t len;
	const float *vec;
	float weight; /* 0 means the default 1 */
} es_arith_term;

/* Top k of rows unit[0..n) (n x dim, unit rows) by dot with q, best first,
 * skipping the nexcl ids in excl.  Returns how many were written (<= k). */
size_t es_arith_topk(const float *unit, size_t n, uint32_t dim,
		     const float *q, size_t k, const uint32_t *excl,
		     size_t nexcl, es_word_score *out);

/* The same for nq queries q[nq x dim] at once (one sgemm per row block):
 * out[i * k ..] gets query i's best k (count in nout[i]); excl[i] / nexcl[i]
 * per query (may be NULL). */
int es_arith_topk_batch(const float *unit, size_t n, uint32_t dim,
			const float *q, size_t nq, size_t k,
			const uint32_t *const *excl, const size_t *nexcl,
			es_word_score *out, size_t *nout, es_error *err);

/* gensim most_similar / most_similar_cosmul.  out holds k entries; *nout
 * gets how many were found.  Unknown words are ES_ENOTFOUND naming them;
 * no positive term is ES_EINVAL. */
int es_arith_most_similar(const es_encoder *enc, const es_arith_term *pos,
			  size_t npos, const es_arith_term *neg, size_t nneg,
			  es_analogy_method method, size_t restrict_vocab,
			  size_t k, es_word_score *out, size_t *nout,
			  es_error *err);

/* The vector form of most_similar used by evaluation: npos + nneg unit
 * vectors in vecs (positives first, weight 1 each) against candidates
 * unit[0..n), excluding excl. */
int es_arith_most_similar_vectors(const float *unit, size_t n, uint32_t dim,
				  const float *vecs, size_t npos, size_t nneg,
				  es_analogy_method method,
				  const uint32_t *excl, size_t nexcl, size_t k,
				  es_word_score *out, size_t *nout,
				  es_error *err);

/* Neighbours of one word by meaning rather than spelling (issue 18 item
 * 3).  In a subword model two words that share character n-grams share
 * those n-gram rows, so their cosine is high by construction ("bank" ->
 * banks, banknote, banker).  Here the ES_ARITH_POOL (or k, if more)
 * nearest vocabulary words by cosine are re-scored by the cosine of the
 * two words' vectors with the n-grams they have in common taken out of
 * both: the word's own row (recovered exactly from the stored mean, as
 * core/retrofit does) plus the rows of the n-grams only it has; an unseen
 * query word has no own row.  out[i].score is that cosine, best first,
 * ties by the lower id; the query word itself is excluded.  Models without
 * subwords (and BERT folders) have nothing shared: there it is plain
 * cosine, as es_arith_most_similar with the one word.  Unknown word with
 * no subword vector: ES_ENOTFOUND. */
#define ES_ARITH_POOL 100
int es_arith_word_neighbors(const es_encoder *enc, const char *word,
			    size_t len, size_t restrict_vocab, size_t k,
			    es_word_score *out, size_t *nout, es_error *err);

/* Neighbours of a text (encoded with the encoder; nothing excluded). */
int es_arith_neighbors_text(const es_encoder *enc, const char *text,
			    size_t len, size_t restrict_vocab, size_t k,
			    es_word_score *out, size_t *nout, es_error *err);

/* Cosine similarity of two words (unit vectors; subwords allowed) / texts. */
int es_arith_similarity(const es_encoder *enc, const char *a, size_t alen,
			const char *b, size_t blen, float *sim, es_error *err);
int es_arith_text_similarity(const es_encoder *enc, const char *a,
			     size_t alen, const char *b, size_t blen,
			     float *sim, es_error *err);

/* gensim doesnt_match: among the words that have a vector, the one least
 * similar to their normalised mean.  *index gets its position in words[].
 * Words without a vector are ignored; none left is ES_EINVAL. */
int es_arith_doesnt_match(const es_encoder *enc, const char *const *words,
			  size_t n, size_t *index, es_error *err);

/* Vocabulary id of a word (exact, else its tokenizer-normalised form), or
 * -1. */
int64_t es_arith_word_id(const es_encoder *enc, const char *word, size_t len);

#endif
