/*
 * encode.h — text -> sentence vector for the static model.
 *
 * Pipeline (one tokenizer, core/tokenize): for each token
 *   1. vocabulary lookup of the normalised (lowercased) token, then of the
 *      token as written (cased models such as word2vec GoogleNews);
 *   2. else the mean of its character n-gram rows (fastText subwords);
 *   3. else it is unknown and contributes nothing.
 * Each contributing word vector v_w is weighted by SIF's a / (a + p(w)),
 * a = the model's sif_a (1e-3 by default), p(w) = count / total when the
 * model has counts, else the Zipf estimate from rank 1 / (rank * H(N));
 * a subword-only word gets p = 1 / total (as if seen once).  The weighted
 * mean s is then stripped of its projection on the model's stored common
 * component u (s -= (u.s) u) and L2-normalised.
 *
 * Empty or all-unknown text (or a result of zero length) gives the all-zero
 * vector and info->empty = 1 — never NaN.  Callers decide whether that is an
 * error (the HTTP layer returns the zeros and says so).
 *
 * Threading: all calls are reentrant on a read-only model; batch calls
 * spread texts over an es_pool.
 */
#ifndef ES_ENCODE_H
#define ES_ENCODE_H

#include <stddef.h>

#include "encode_types.h"
#include "model.h"
#include "threadpool.h"

/* Sentence vector of text[0..len) into out[dim] (see above).  info may be
 * NULL.  Invalid UTF-8 is ES_EINVAL naming the byte offset. */
int es_model_encode(const es_model *m, const char *text, size_t len,
		    float *out, es_encode_info *info, es_error *err);



/* Power iteration for the top eigenvector of the symmetric dim x dim
 * matrix c (row-major): v holds a non-zero start; on return it holds C times
 * the last unit iterate, i.e. the top eigenvector's direction with its
 * eigenvalue as length (all zeros if C maps the iterate to zero).  At most
 * 500 steps, stopping once the unit iterate moves by less than 1e-7.  tmp is
 * dim doubles of scratch.  Shared by the common component below and by the
 * trainer's post-processing (core/train.c). */
void es_power_iteration(const double *c, uint32_t dim, double *v, double *tmp);

/* Compute the common component — the first principal direction (uncentred,
 * as in SIF) of the SIF means of a sample of texts — and store it in m.
 * Call it at train/convert time with a few thousand representative lines.
 * ES_EINVAL when no text of the sample has any known word. */
int es_model_compute_common(es_model *m, const char *const *texts,
			    const size_t *lens, size_t n, es_pool *pool,
			    es_error *err);

#endif
