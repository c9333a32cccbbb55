/*
 * encoder.h — one interface over every kind of model that turns text into
 * vectors: the static word-vector model (core/model + core/encode) and the
 * BERT encoder (core/bert).  The index and the server only ever see this.
 *
 * CONTRACT (written before the implementations; implementers may extend it,
 * and must keep these calls and their meaning).
 *
 * Threading: an opened encoder is immutable except for lazily built caches
 * that are guarded internally; every call may run from many threads at once.
 * Ownership: es_encoder_free() releases the model (and its mmap).
 */
#ifndef ES_ENCODER_H
#define ES_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "threadpool.h"

typedef struct es_encoder es_encoder;

typedef enum es_encoder_kind {
	ES_ENCODER_STATIC = 0, /* word vectors + subwords + SIF pooling */
	ES_ENCODER_BERT = 1,   /* sentence-transformers BERT folder */
} es_encoder_kind;

/* Per-text result details. */
typedef struct es_encode_info {
	uint32_t tokens;    /* tokens counted for `usage` */
	uint32_t known;     /* tokens that contributed to the vector */
	int truncated;      /* text was cut to the model's max length */
	int empty;          /* nothing contributed: the vector is all zeros */
} es_encode_info;

/* Flags for encode calls. */
#define ES_ENC_NO_TRUNCATE 1u /* fail with ES_ERANGE instead of truncating */

/* Token flags reported by es_encoder_tokenize(). */
#define ES_TOK_KNOWN 1u    /* in the vocabulary */
#define ES_TOK_SUBWORD 2u  /* vector built from subword n-grams / a ## piece */
#define ES_TOK_UNKNOWN 4u  /* contributes nothing ([UNK] or no vector) */
#define ES_TOK_SPECIAL 8u  /* [CLS], [SEP] and the like */

typedef int (*es_token_fn)(void *ctx, const char *tok, size_t len,
			   int32_t id, unsigned flags);

/* Open a model: a directory is a sentence-transformers / Hugging Face BERT
 * folder; a file is read by core/model_io (format auto-detected).  `name` is
 * what /v1/info and the OpenAI `model` field call it (NULL: derived from the
 * path). */
int es_encoder_open(const char *path, const char *name, es_encoder **out,
		    es_error *err);
void es_encoder_free(es_encoder *enc);

es_encoder_kind es_encoder_kind_of(const es_encoder *enc);
const char *es_encoder_name(const es_encoder *enc);
uint32_t es_encoder_dim(const es_encoder *enc);
uint32_t es_encoder_max_tokens(const es_encoder *enc); /* 0: unlimited */
size_t es_encoder_vocab_size(const es_encoder *enc);

/* Text (UTF-8, len bytes, need not be NUL-terminated) -> out[dim], unit L2
 * norm, or all zeros when nothing in the text has a vector (info->empty).
 * Invalid UTF-8 is ES_EINVAL. */
int es_encoder_encode(const es_encoder *enc, const char *text, size_t len,
		      unsigned flags, float *out, es_encode_info *info,
		      es_error *err);

/* n texts -> out[n * dim], spread over pool (may be NULL).  infos may be
 * NULL.  On error nothing useful is in out. */
int es_encoder_encode_batch(const es_encoder *enc, const char *const *texts,
			    const size_t *lens, size_t n, unsigned flags,
			    float *out, es_encode_info *infos, es_pool *pool,
			    es_error *err);

/* Call fn for each token the model sees in text, in order. */
int es_encoder_tokenize(const es_encoder *enc, const char *text, size_t len,
			es_token_fn fn, void *ctx, es_error *err);

/* Word vector (unit norm) for word arithmetic: vocabulary, else subwords,
 * else ES_ENOTFOUND.  *flags gets ES_TOK_* (may be NULL). */
int es_encoder_word_vector(const es_encoder *enc, const char *word,
			   size_t len, float *out, unsigned *flags,
			   es_error *err);

/* The word-arithmetic vocabulary: `*words` (count entries, most frequent
 * first) and `*unit` (count x dim, unit rows).  Built on first call for BERT
 * (with progress on stderr) and cached; owned by the encoder. */
int es_encoder_vocab(const es_encoder *enc, const char *const **words,
		     const float **unit, size_t *count, es_error *err);

/* --- extensions (core/model helper) --- */

typedef struct es_model es_model;

/* Static encoder over an already built model (the trainer's, a test's).
 * Ownership of m passes to the encoder, also on failure. */
int es_encoder_from_model(es_model *m, const char *name, es_encoder **out,
			  es_error *err);

/* The static model behind enc (borrowed), or NULL for other kinds: word
 * arithmetic and evaluation use it for counts and subwords. */
const es_model *es_encoder_static_model(const es_encoder *enc);

#endif
