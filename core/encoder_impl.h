/*
 * encoder_impl.h — how a kind of model plugs into core/encoder (private to
 * core: encoder.c, the static model and core/bert).
 *
 * An es_encoder is an ops table plus an opaque implementation pointer.  A
 * kind provides the ops below; es_encoder_wrap() makes the public object.
 * Every op receives the implementation pointer, never the es_encoder.
 *
 * The two kinds open through the hooks at the end: es_encoder_open() calls
 * es_bert_encoder_open for a directory and es_static_encoder_open for a
 * file.
 */
#ifndef ES_ENCODER_IMPL_H
#define ES_ENCODER_IMPL_H

#include "encoder.h"

typedef struct es_encoder_ops {
	es_encoder_kind kind;
	/* release impl (and everything it owns) */
	void (*destroy)(void *impl);
	uint32_t (*dim)(const void *impl);
	uint32_t (*max_tokens)(const void *impl); /* 0: unlimited */
	size_t (*vocab_size)(const void *impl);
	/* one text -> out[dim]; same contract as es_encoder_encode */
	int (*encode)(const void *impl, const char *text, size_t len,
		      unsigned flags, float *out, es_encode_info *info,
		      es_error *err);
	/* may be NULL: encoder.c then runs `encode` per text on the pool */
	int (*encode_batch)(const void *impl, const char *const *texts,
			    const size_t *lens, size_t n, unsigned flags,
			    float *out, es_encode_info *infos, es_pool *pool,
			    es_error *err);
	int (*tokenize)(const void *impl, const char *text, size_t len,
			es_token_fn fn, void *ctx, es_error *err);
	/* unit vector of one word */
	int (*word_vector)(const void *impl, const char *word, size_t len,
			   float *out, unsigned *flags, es_error *err);
	int (*vocab)(const void *impl, const char *const **words,
		     const float **unit, size_t *count, es_error *err);
} es_encoder_ops;

struct es_encoder {
	const es_encoder_ops *ops;
	void *impl;
	char *name;
};

/* Wrap impl (ownership passes to the encoder, also on failure, where
 * ops->destroy(impl) is called).  name NULL: derived from path. */
int es_encoder_wrap(const es_encoder_ops *ops, void *impl, const char *name,
		    const char *path, es_encoder **out, es_error *err);

/* The kinds' open hooks: the ops table and a new implementation, which the
 * encoder then owns (ops->destroy frees it).  core/bert_encoder.c opens a
 * sentence-transformers folder; core/static_encoder.c a model file. */
int es_bert_encoder_open(const char *dir, const es_encoder_ops **ops,
			 void **impl, es_error *err);
int es_static_encoder_open(const char *path, const es_encoder_ops **ops,
			   void **impl, es_error *err);

/* The static kind's table (es_encoder_static_model compares with it). */
extern const es_encoder_ops es_static_encoder_ops;

#endif
