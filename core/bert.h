/*
 * bert.h — BERT encoder forward pass (sentence-transformers compatible) on
 * packed-weight matrix products (core/gemm).
 *
 * A model folder is either a plain Hugging Face BertModel folder
 * (config.json, model.safetensors, vocab.txt / tokenizer.json) or a
 * sentence-transformers folder (the same plus modules.json,
 * sentence_bert_config.json, 1_Pooling/config.json and a Normalize module).
 * Without modules.json the pooling is mean and nothing is normalised, as
 * sentence-transformers does for a plain folder.
 *
 * The forward pass follows transformers' BertModel in float32: embeddings
 * (word + position + token type 0) and LayerNorm; per layer fused Q/K/V
 * projection, scaled dot-product attention per head, output projection,
 * residual + LayerNorm, feed-forward with exact erf GELU, residual +
 * LayerNorm.  Then pooling (mean over tokens, CLS, max; several are
 * concatenated in sentence-transformers' order cls, max, mean) and optional
 * L2 normalisation.
 *
 * Batches are packed, not padded: the tokens of all texts of a group are
 * rows of one matrix, so every linear layer is one product over exactly the
 * real tokens, and attention runs per (text, head) over that text's rows
 * only.  This equals masked attention over a padded batch (masked scores get
 * weight exactly 0 after softmax) without computing the padding at all.
 *
 * Threading: an opened model is immutable apart from a mutex-guarded list
 * of spare scratch arenas; every call may run concurrently from many
 * threads (each takes its own arena).  With a pool, each product is split
 * by output panels over the pool's workers and attention over (text, head)
 * pairs.  Where products fall back to OpenBLAS (CPUs without AVX2) it runs
 * one thread per call (core/blas policy) so it never oversubscribes the
 * cores that our pool or the server's request threads already use.
 *
 * Ownership: es_bert_free() releases weights, tokenizer and mappings.
 */
#ifndef ES_BERT_H
#define ES_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "encode_types.h"
#include "error.h"
#include "threadpool.h"
#include "wordpiece.h"

typedef struct es_bert es_bert;

typedef struct es_bert_config {
	uint32_t vocab_size;
	uint32_t hidden;
	uint32_t layers;
	uint32_t heads;
	uint32_t intermediate;
	uint32_t max_position;
	uint32_t type_vocab;
	float ln_eps;
	int gelu_tanh;          /* hidden_act gelu_new / gelu_pytorch_tanh */
} es_bert_config;

/* Pooling modes (bit set; several are concatenated). */
#define ES_BERT_POOL_CLS 1u
#define ES_BERT_POOL_MAX 2u
#define ES_BERT_POOL_MEAN 4u

/* Open a model folder.  Errors name the file and what is wrong with it. */
int es_bert_open(const char *dir, es_bert **out, es_error *err);
void es_bert_free(es_bert *b);

const es_bert_config *es_bert_config_of(const es_bert *b);
const es_wordpiece *es_bert_tokenizer(const es_bert *b);
uint32_t es_bert_dim(const es_bert *b);             /* sentence vector size */
uint32_t es_bert_max_seq_length(const es_bert *b);  /* specials included */
unsigned es_bert_pooling(const es_bert *b);         /* ES_BERT_POOL_* */
int es_bert_normalizes(const es_bert *b);           /* Normalize module */

/* Forward pass over n packed sequences: ids holds lens[0] + ... + lens[n-1]
 * token ids; hidden receives the last layer, one row of `hidden` floats per
 * token in the same order.  When layer_out is not NULL it holds layers + 1
 * buffers of the same size that receive the embedding output and each
 * layer's output (for tests).  Each lens[i] must be in [1, max_position];
 * ids must be < vocab_size. */
int es_bert_forward(const es_bert *b, const int32_t *ids, const uint32_t *lens,
		    size_t n, float *hidden, float *const *layer_out,
		    es_pool *pool, es_error *err);

/* Texts -> sentence vectors out[n * dim] (pooled, normalised when the folder
 * says so).  flags: ES_ENC_NO_TRUNCATE makes a text over max_seq_length an
 * ES_ERANGE error instead of being truncated.  infos (may be NULL) get
 * tokens (fed to the model, specials included), known (tokens other than
 * [UNK]), truncated. */
int es_bert_encode_batch(const es_bert *b, const char *const *texts,
			 const size_t *lens, size_t n, unsigned flags,
			 float *out, es_encode_info *infos, es_pool *pool,
			 es_error *err);

#endif
