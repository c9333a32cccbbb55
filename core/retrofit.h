/*
 * retrofit.h — lexicon-informed post-processing of a static model: pull the
 * vectors of words a lexicon relates together, push antonyms apart.
 *
 * Method: retrofitting (Faruqui, Dodge, Jauhar, Dyer, Hovy & Smith,
 * "Retrofitting Word Vectors to Semantic Lexicons", NAACL 2015), which
 * minimises
 *
 *     sum_i alpha ||q_i - u_i||^2 + sum_(i,j) attract  b_ij ||q_i - q_j||^2
 *                                 - sum_(i,j) antonym  g_ij ||q_i - q_j||^2
 *
 * by Jacobi iterations of the closed-form update
 *
 *     q_i = (alpha u_i + sum_j b_ij q_j - sum_k g_ik q_k)
 *           / (alpha + sum_j b_ij - sum_k g_ik)
 *
 * where u_i is word i's unit vector before retrofitting.  As in the paper,
 * b_ij = beta_kind / deg(i) (deg = the word's attract edges, so a word's
 * neighbours together weigh beta, whatever their number) and the start is
 * q = u.  The defaults (beta 0.5 / 0.5, no antonym term) are what the dev
 * sets chose for the default model (README "Default model"): the paper's
 * beta = 1 moved words far enough to lose analogy accuracy, and WordNet's
 * antonyms include king/queen and man/woman, whose repulsion breaks the
 * gender analogies.  DEPARTURES from the paper, and why:
 *  - antonym edges (the repel term, after counter-fitting: Mrksic et al.,
 *    NAACL 2016) with total weight gamma per word; gamma < alpha / 2 keeps
 *    the objective bounded (the update stays a contraction around u);
 *  - `rel` edges (hypernyms, similar-to) get their own, smaller beta;
 *  - the result is scaled back to each word's original length, so SIF
 *    sentence pooling (which sums raw word vectors) weights words as before;
 *  - Jacobi (every word from the previous iterate), not in-place updates,
 *    so the result does not depend on the order of the vocabulary.
 *
 * Subword models.  A known word's stored vector is the mean of its own row
 * and its n-gram rows (core/model.h); the own row is recovered exactly as
 * own = (n + 1) v - sum(n-gram rows).  `ngram_weight` w rebuilds the word's
 * starting vector as (own + w sum(n-gram rows)) / (1 + w n): 1 keeps the
 * vector, 0 uses the word's own row alone, between down-weights the
 * spelling part (bench/model says which value the default model uses).
 * N-gram rows are NOT changed: retrofitting moves single words, not a
 * linear map that n-grams could share; an unseen word keeps exactly the
 * vector the n-gram composition gave it before, so OOV answers are stable,
 * while known words move (README "Default model" has the measurement).
 *
 * Threading: es_retrofit() reads `in` only (it may be shared), and uses
 * the calling thread.  Ownership: *out is a new model (es_model_free).
 */
#ifndef ES_RETROFIT_H
#define ES_RETROFIT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "lexicon.h"
#include "model.h"

typedef struct es_retrofit_params {
	uint32_t iterations; /* Jacobi iterations (10, as the paper) */
	float alpha;         /* weight of the word's own vector (1) */
	float beta_syn;      /* total weight of `syn` neighbours (0.5) */
	float beta_rel;      /* total weight of `rel` neighbours (0.5) */
	float gamma_ant;     /* total weight of antonyms (0), < alpha / 2 */
	float ngram_weight;  /* n-gram part of known words' start vector (1) */
} es_retrofit_params;

typedef struct es_retrofit_stats {
	size_t words_moved;        /* vocabulary words with at least one edge */
	size_t edges[ES_LEX_KINDS]; /* distinct word pairs used, per kind */
	size_t lexicon_words;      /* word mentions in the lexicon */
	size_t unknown_words;      /* mentions not in the model's vocabulary */
} es_retrofit_stats;

/* Fill *p with the defaults above. */
void es_retrofit_params_default(es_retrofit_params *p);

/* ES_EINVAL naming the bad field when p is out of range. */
int es_retrofit_params_check(const es_retrofit_params *p, es_error *err);

/* New model: in's vocabulary, counts, n-gram rows, parameters, common
 * component and metadata, with retrofitted word vectors (and "retrofit.*"
 * metadata).  stats may be NULL. */
int es_retrofit(const es_model *in, const es_lexicon *lx,
		const es_retrofit_params *p, es_model **out,
		es_retrofit_stats *stats, es_error *err);

#endif
