/*
 * static_encoder.c — the static word-vector model (core/model + core/encode)
 * as one kind behind core/encoder (the ops table of encoder_impl.h), beside
 * bert_encoder.c: es_encoder_open() on a file lands here.
 *
 *   encode        SIF sentence vector (core/encode); batches go through
 *                 encoder.c's generic loop over the pool;
 *   tokenize      core/tokenize's tokens with their vocabulary ids;
 *   word_vector   the word's row (or its subword mean), unit length;
 *   vocab         every word in vocabulary order with the model's unit
 *                 vectors (the word list is built on first use).
 *
 * Threading: the model is immutable; the word list is built once under a
 * mutex.  Ownership: the impl owns the model; destroy frees both.
 */
#include "encoder_impl.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "encode.h"
#include "model.h"
#include "model_io.h"
#include "simd.h"
#include "tokenize.h"

typedef struct static_enc {
	es_model *m;
	pthread_mutex_t lock;
	const char **words; /* built on first es_encoder_vocab */
} static_enc;

static void st_destroy(void *impl)
{
	static_enc *s = impl;
	if (!s)
		return;
	es_model_free(s->m);
	es_free(s->words);
	pthread_mutex_destroy(&s->lock);
	es_free(s);
}

static uint32_t st_dim(const void *impl)
{
	return es_model_dim(((const static_enc *)impl)->m);
}

static uint32_t st_max_tokens(const void *impl)
{
	(void)impl;
	return 0;
}

static size_t st_vocab_size(const void *impl)
{
	return es_model_size(((const static_enc *)impl)->m);
}

static int st_encode(const void *impl, const char *text, size_t len,
		     unsigned flags, float *out, es_encode_info *info,
		     es_error *err)
{
	(void)flags; /* static models never truncate */
	return es_model_encode(((const static_enc *)impl)->m, text, len, out,
			       info, err);
}

static int st_tokenize(const void *impl, const char *text, size_t len,
		       es_token_fn fn, void *ctx, es_error *err)
{
	const es_model *m = ((const static_enc *)impl)->m;
	size_t bad;
	if (!es_utf8_valid(text, len, &bad))
		return es_err(err, ES_EINVAL,
			      "text is not valid UTF-8 (byte %zu)", bad);
	const es_vocab *v = es_model_vocab(m);
	es_tokenizer t;
	char tok[ES_TOKEN_MAX + 1];
	size_t tl, off, sl;
	es_tokenizer_init(&t, text, len);
	while ((tl = es_tokenizer_next(&t, tok, &off, &sl)) > 0) {
		int64_t id = es_vocab_find(v, tok, tl);
		if (id < 0 && (sl != tl || memcmp(text + off, tok, tl) != 0))
			id = es_vocab_find(v, text + off, sl);
		unsigned fl = ES_TOK_UNKNOWN;
		if (id >= 0)
			fl = ES_TOK_KNOWN;
		else if (es_model_has_subwords(m) &&
			 es_model_subword_ids(m, tok, tl, NULL, 0) > 0)
			fl = ES_TOK_SUBWORD;
		int rc = fn(ctx, tok, tl, (int32_t)id, fl);
		if (rc)
			return rc;
	}
	return 0;
}

static int st_word_vector(const void *impl, const char *word, size_t len,
			  float *out, unsigned *flags, es_error *err)
{
	const es_model *m = ((const static_enc *)impl)->m;
	uint32_t dim = es_model_dim(m);
	unsigned fl = ES_TOK_UNKNOWN;
	int rc = ES_ENOTFOUND;
	if (len > 0 && es_utf8_valid(word, len, NULL)) {
		int64_t id = es_vocab_find(es_model_vocab(m), word, len);
		if (id < 0) {
			/* the tokenizer's normal form ("Paris" -> "paris") */
			es_tokenizer t;
			char tok[ES_TOKEN_MAX + 1];
			es_tokenizer_init(&t, word, len);
			size_t tl = es_tokenizer_next(&t, tok, NULL, NULL);
			if (tl > 0)
				id = es_vocab_find(es_model_vocab(m), tok, tl);
		}
		if (id >= 0) {
			memcpy(out, es_model_vector(m, (uint32_t)id),
			       dim * sizeof(float));
			fl = ES_TOK_KNOWN;
			rc = 0;
		} else if (es_model_subword_vector(m, word, len, out) == 0) {
			fl = ES_TOK_SUBWORD;
			rc = 0;
		}
	}
	if (flags)
		*flags = fl;
	if (rc == 0) {
		if (simd_normalize(out, dim) > 0)
			return 0;
		if (flags)
			*flags = ES_TOK_UNKNOWN;
	}
	memset(out, 0, dim * sizeof(float));
	return es_err(err, ES_ENOTFOUND, "no vector for word '%.*s'",
		      (int)(len > 100 ? 100 : len), word);
}

static int st_vocab(const void *impl, const char *const **words,
		    const float **unit, size_t *count, es_error *err)
{
	static_enc *s = (static_enc *)impl; /* cache guarded by s->lock */
	const float *u = es_model_unit_vectors(s->m, err);
	if (!u)
		return ES_ENOMEM;
	size_t n = es_model_size(s->m);
	pthread_mutex_lock(&s->lock);
	if (!s->words) {
		const char **w = es_malloc((n ? n : 1) * sizeof *w);
		if (w) {
			const es_vocab *v = es_model_vocab(s->m);
			for (size_t i = 0; i < n; i++)
				w[i] = es_vocab_word(v, (uint32_t)i);
			s->words = w;
		}
	}
	const char **w = s->words;
	pthread_mutex_unlock(&s->lock);
	if (!w)
		return es_err(err, ES_ENOMEM, "out of memory");
	*words = w;
	*unit = u;
	*count = n;
	return 0;
}

const es_encoder_ops es_static_encoder_ops = {
	.kind = ES_ENCODER_STATIC,
	.destroy = st_destroy,
	.dim = st_dim,
	.max_tokens = st_max_tokens,
	.vocab_size = st_vocab_size,
	.encode = st_encode,
	.encode_batch = NULL, /* encoder.c runs encode per text on the pool */
	.tokenize = st_tokenize,
	.word_vector = st_word_vector,
	.vocab = st_vocab,
};


static int wrap_model(es_model *m, const es_encoder_ops **ops, void **impl,
		      es_error *err)
{
	static_enc *s = es_calloc(1, sizeof *s);
	if (!s) {
		es_model_free(m);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	s->m = m;
	pthread_mutex_init(&s->lock, NULL);
	*ops = &es_static_encoder_ops;
	*impl = s;
	return 0;
}

int es_static_encoder_open(const char *path, const es_encoder_ops **ops,
			   void **impl, es_error *err)
{
	es_model *m;
	int rc = es_model_load(path, ES_FORMAT_AUTO, 0, &m, err);
	if (rc)
		return rc;
	return wrap_model(m, ops, impl, err);
}

int es_encoder_from_model(es_model *m, const char *name, es_encoder **out,
			  es_error *err)
{
	const es_encoder_ops *ops = NULL;
	void *impl = NULL;
	*out = NULL;
	int rc = wrap_model(m, &ops, &impl, err);
	if (rc)
		return rc;
	return es_encoder_wrap(ops, impl, name, "model", out, err);
}

const es_model *es_encoder_static_model(const es_encoder *enc)
{
	if (enc->ops != &es_static_encoder_ops)
		return NULL;
	return ((const static_enc *)enc->impl)->m;
}
