/*
 * encoder.h — one interface over every kind of model that turns text into
 * vectors: the static word-vector model (core/model + core/encode) and the
 * BERT encoder (core/bert).  The index and the server only ever see this.
 *
 * Threading: an opened encoder is immutable except for lazily built caches
 * that are guarded internally; every call may run from many threads at once.
 * Ownership: es_encoder_free() releases the model (and its mmap).
 */
#ifndef ES_ENCODER_H
#define ES_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "encode_types.h"
#include "error.h"
#include "threadpool.h"

typedef struct es_encoder es_encoder;

typedef enum es_encoder_kind {
	ES_ENCODER_STATIC = 0, /* word vectors + subwords + SIF pooling */
	ES_ENCODER_BERT = 1,   /* sentence-transformers BERT folder */
} es_encoder_kind;

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

/* --- the static kind (core/static_encoder.c) --- */

typedef struct es_model es_model;

/* Static encoder over an already built model (the trainer's, a test's).
 * Ownership of m passes to the encoder, also on failure. */
int es_encoder_from_model(es_model *m, const char *name, es_encoder **out,
			  es_error *err);

/* The static model behind enc (borrowed), or NULL for other kinds: word
 * arithmetic and evaluation use it for counts and subwords. */
const es_model *es_encoder_static_model(const es_encoder *enc);

#endif
