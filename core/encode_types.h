/*
 * encode_types.h — the types that every layer of text encoding shares: the
 * per-text result details, the encode flags and the token flags.  A leaf
 * header, so the kinds below core/encoder (core/encode, core/bert) use them
 * without including the interface that sits on top of them.
 */
#ifndef ES_ENCODE_TYPES_H
#define ES_ENCODE_TYPES_H

#include <stddef.h>
#include <stdint.h>

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

#endif
