/*
 * model.h — the static embedding model: a vocabulary with counts, one
 * vector per word, and optional fastText-style hashed character n-gram
 * buckets so that any word, even one never seen, gets a vector.
 *
 * Word vectors are stored FINAL: for a fastText .bin, a vocabulary word's
 * vector is already the mean of its own row and its n-gram rows (what
 * `fasttext print-word-vectors` prints), so lookups never recompute it.  An
 * out-of-vocabulary word's vector is the mean of the bucket rows of the
 * character n-grams (minn..maxn characters) of "<word>", hashed with
 * fastText's FNV-1a variant modulo `bucket` — bit for bit fastText's rule.
 *
 * Sentence pooling parameters live here too: SIF `a` (default 1e-3), whether
 * the counts are real (else a Zipf estimate from rank is used), and the
 * stored common component (unit vector removed from every sentence vector).
 *
 * Building a model (readers, the trainer): es_model_new(), then
 * es_model_add_word() per word (or es_model_from_arrays() in one call),
 * es_model_set_ngrams(), es_model_compute_common() (core/encode.h) or
 * es_model_set_common(), es_model_set_meta(), then es_model_save_esm()
 * (core/model_io.h).
 *
 * Threading: building calls need exclusive access; once built (or loaded)
 * a model is read-only and every lookup is reentrant (the lazily built
 * unit-vector table is guarded by a once-flag).
 * Ownership: es_model_free() frees everything, including an mmap'ed file.
 * Pointers returned by accessors live as long as the model.
 */
#ifndef ES_MODEL_H
#define ES_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "vocab.h"

typedef struct es_model es_model;

#define ES_SIF_A_DEFAULT 1e-3f
#define ES_MODEL_MAX_DIM 65536u
/* Largest magnitude of a vector component a model may hold.  Real
 * embeddings stay far below it (|x| < 100); near FLT_MAX, sums of n-gram rows
 * and the squares in a norm overflow to inf and a sentence vector becomes
 * NaN, so readers refuse such values as they refuse NaN (found by tests/fuzz,
 * fuzz_model_ftbin). */
#define ES_MODEL_MAX_ABS 1e9f
#define ES_NGRAM_MAX_CHARS 32u

typedef struct es_model_params {
	uint32_t dim;    /* vector length, 1..ES_MODEL_MAX_DIM */
	uint32_t minn;   /* shortest character n-gram (fastText minn) */
	uint32_t maxn;   /* longest; 0 = no subwords */
	uint64_t bucket; /* n-gram rows; 0 = no subwords */
	float sif_a;     /* SIF a; 0 picks ES_SIF_A_DEFAULT */
	int has_counts;  /* word counts are real corpus counts */
} es_model_params;

/* Non-zero when x is a component a model may hold: finite and
 * |x| <= ES_MODEL_MAX_ABS. */
int es_model_value_ok(float x);

/* Empty model with these parameters. */
int es_model_new(const es_model_params *p, es_model **out, es_error *err);

/* Free; NULL is a no-op. */
void es_model_free(es_model *m);

/* Append a word with its count and vector (dim floats, copied).  A word
 * that is already there is ignored (*added = 0; gensim keeps the first of
 * duplicate words too).  Components must pass es_model_value_ok (ES_EINVAL
 * names the word). */
int es_model_add_word(es_model *m, const char *word, size_t len,
		      uint64_t count, const float *vec, int *added,
		      es_error *err);

/* One call for the trainer: n words (NUL-terminated), counts (may be NULL:
 * has_counts is then 0), vectors n x dim, ngrams p->bucket x dim (may be NULL
 * when bucket is 0).  Everything is copied. */
int es_model_from_arrays(const es_model_params *p, size_t n,
			 const char *const *words, const uint64_t *counts,
			 const float *vectors, const float *ngrams,
			 es_model **out, es_error *err);

/* Copy the bucket x dim n-gram matrix in (bucket from the params). */
int es_model_set_ngrams(es_model *m, const float *rows, es_error *err);

/* Store (copy, normalised to unit length) the common component, or clear it
 * with NULL.  A zero vector is ES_EINVAL. */
int es_model_set_common(es_model *m, const float *u, es_error *err);

/* Metadata: key/value strings written into the .esm (training parameters,
 * source file, ...).  Setting an existing key replaces its value. */
int es_model_set_meta(es_model *m, const char *key, const char *value,
		      es_error *err);
const char *es_model_meta(const es_model *m, const char *key);
size_t es_model_meta_count(const es_model *m);
void es_model_meta_at(const es_model *m, size_t i, const char **key,
		      const char **value);

/* Accessors. */
uint32_t es_model_dim(const es_model *m);
size_t es_model_size(const es_model *m); /* vocabulary words */
const es_vocab *es_model_vocab(const es_model *m);
const float *es_model_vectors(const es_model *m); /* size x dim */
const float *es_model_vector(const es_model *m, uint32_t id);
const float *es_model_ngrams(const es_model *m);  /* bucket x dim or NULL */
int es_model_has_subwords(const es_model *m);
int es_model_has_counts(const es_model *m);
void es_model_get_params(const es_model *m, es_model_params *p);
void es_model_set_sif_a(es_model *m, float a);
const float *es_model_common(const es_model *m); /* unit, or NULL */

/* fastText's string hash (FNV-1a over signed chars). */
uint32_t es_fasttext_hash(const char *s, size_t len);

/* Bucket indices (0..bucket-1) of the character n-grams of "<word>",
 * exactly fastText's computeSubwords; at most cap are written, the total is
 * returned (0 when the model has no subwords). */
size_t es_model_subword_ids(const es_model *m, const char *word, size_t len,
			    uint32_t *ids, size_t cap);

/* Mean of the n-gram rows of word (out[dim]); ES_ENOTFOUND when the model
 * has no subwords or the word has no n-grams. */
int es_model_subword_vector(const es_model *m, const char *word, size_t len,
			    float *out);

/* Word vector (not normalised): vocabulary (*flags = ES_TOK_KNOWN), else
 * subwords (ES_TOK_SUBWORD), else ES_ENOTFOUND.  *id (may be NULL) gets the
 * vocabulary id or -1. */
int es_model_word_vector(const es_model *m, const char *word, size_t len,
			 float *out, unsigned *flags, int64_t *id);

/* Unit-normalised copy of the vectors (size x dim; zero rows stay zero),
 * built on first call and cached.  NULL on allocation failure. */
const float *es_model_unit_vectors(const es_model *m, es_error *err);

/* Probability of word id for SIF: count/total with real counts, else the
 * Zipf estimate 1 / ((id + 1) * H(size)). */
double es_model_word_prob(const es_model *m, uint32_t id);

#endif
