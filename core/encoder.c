/*
 * encoder.c — see encoder.h / encoder_impl.h.  Dispatch through an ops
 * table, and the static-model kind (core/model + core/encode).
 */
#include "encoder_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "encode.h"
#include "model.h"
#include "model_io.h"
#include "simd.h"
#include "tokenize.h"

#if defined(__has_include)
#if __has_include("bert.h")
#include "bert.h"
#define ES_HAVE_BERT 1
#endif
#endif

/* ------------------------------------------------------- static kind */

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
	free(s->words);
	pthread_mutex_destroy(&s->lock);
	free(s);
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

static int st_encode_batch(const void *impl, const char *const *texts,
			   const size_t *lens, size_t n, unsigned flags,
			   float *out, es_encode_info *infos, es_pool *pool,
			   es_error *err)
{
	(void)flags;
	return es_model_encode_batch(((const static_enc *)impl)->m, texts, lens,
				     n, out, infos, pool, err);
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
		const simd_kernels *k = simd_get();
		float nn = sqrtf(k->dot(out, out, dim));
		if (nn > 0) {
			k->scale(out, 1.0f / nn, dim);
			return 0;
		}
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
		const char **w = malloc((n ? n : 1) * sizeof *w);
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

static const es_encoder_ops static_ops = {
	.kind = ES_ENCODER_STATIC,
	.destroy = st_destroy,
	.dim = st_dim,
	.max_tokens = st_max_tokens,
	.vocab_size = st_vocab_size,
	.encode = st_encode,
	.encode_batch = st_encode_batch,
	.tokenize = st_tokenize,
	.word_vector = st_word_vector,
	.vocab = st_vocab,
};

/* ------------------------------------------------------- public */

int es_encoder_wrap(const es_encoder_ops *ops, void *impl, const char *name,
		    const char *path, es_encoder **out, es_error *err)
{
	*out = NULL;
	es_encoder *e = calloc(1, sizeof *e);
	const char *nm = name;
	if (!nm) {
		nm = path ? path : "model";
		size_t l = strlen(nm);
		while (l > 1 && nm[l - 1] == '/')
			l--;
		const char *b = nm + l;
		while (b > nm && b[-1] != '/')
			b--;
		if (e)
			e->name = strndup(b, (size_t)(nm + l - b));
	} else if (e) {
		e->name = strdup(nm);
	}
	if (!e || !e->name) {
		if (e)
			free(e);
		ops->destroy(impl);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	e->ops = ops;
	e->impl = impl;
	*out = e;
	return 0;
}

/* Static encoder over an already built model (takes ownership of m). */
int es_encoder_from_model(es_model *m, const char *name, es_encoder **out,
			  es_error *err)
{
	static_enc *s = calloc(1, sizeof *s);
	if (!s) {
		es_model_free(m);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	s->m = m;
	pthread_mutex_init(&s->lock, NULL);
	return es_encoder_wrap(&static_ops, s, name, "model", out, err);
}

int es_encoder_open(const char *path, const char *name, es_encoder **out,
		    es_error *err)
{
	*out = NULL;
	if (!path || !*path)
		return es_err(err, ES_EINVAL, "no model path given");
	struct stat st;
	if (stat(path, &st) != 0)
		return es_err(err, ES_ENOTFOUND, "%s: no such model file or folder",
			      path);
	if (S_ISDIR(st.st_mode)) {
#ifdef ES_HAVE_BERT
		const es_encoder_ops *ops;
		void *impl;
		int rc = es_bert_encoder_open(path, &ops, &impl, err);
		if (rc)
			return rc;
		return es_encoder_wrap(ops, impl, name, path, out, err);
#else
		return es_err(err, ES_EUNSUPPORTED,
			      "%s: is a folder (a BERT / sentence-transformers model?); "
			      "BERT models are not supported in this build",
			      path);
#endif
	}
	es_model *m;
	int rc = es_model_load(path, ES_FORMAT_AUTO, 0, &m, err);
	if (rc)
		return rc;
	static_enc *s = calloc(1, sizeof *s);
	if (!s) {
		es_model_free(m);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	s->m = m;
	pthread_mutex_init(&s->lock, NULL);
	return es_encoder_wrap(&static_ops, s, name, path, out, err);
}

void es_encoder_free(es_encoder *enc)
{
	if (!enc)
		return;
	enc->ops->destroy(enc->impl);
	free(enc->name);
	free(enc);
}

es_encoder_kind es_encoder_kind_of(const es_encoder *enc)
{
	return enc->ops->kind;
}

const char *es_encoder_name(const es_encoder *enc)
{
	return enc->name;
}

uint32_t es_encoder_dim(const es_encoder *enc)
{
	return enc->ops->dim(enc->impl);
}

uint32_t es_encoder_max_tokens(const es_encoder *enc)
{
	return enc->ops->max_tokens(enc->impl);
}

size_t es_encoder_vocab_size(const es_encoder *enc)
{
	return enc->ops->vocab_size(enc->impl);
}

const es_model *es_encoder_static_model(const es_encoder *enc)
{
	if (enc->ops != &static_ops)
		return NULL;
	return ((const static_enc *)enc->impl)->m;
}

int es_encoder_encode(const es_encoder *enc, const char *text, size_t len,
		      unsigned flags, float *out, es_encode_info *info,
		      es_error *err)
{
	if (!text && len)
		return es_err(err, ES_EINVAL, "no text");
	return enc->ops->encode(enc->impl, text ? text : "", len, flags, out,
				info, err);
}

typedef struct gen_batch {
	const es_encoder *enc;
	const char *const *texts;
	const size_t *lens;
	unsigned flags;
	float *out;
	es_encode_info *infos;
	int *rcs;
} gen_batch;

static void gen_batch_fn(void *vctx, size_t begin, size_t end, unsigned worker)
{
	(void)worker;
	gen_batch *g = vctx;
	uint32_t dim = es_encoder_dim(g->enc);
	for (size_t i = begin; i < end; i++)
		g->rcs[i] = g->enc->ops->encode(g->enc->impl, g->texts[i],
						g->lens[i], g->flags,
						g->out + i * dim,
						g->infos ? &g->infos[i] : NULL,
						NULL);
}

int es_encoder_encode_batch(const es_encoder *enc, const char *const *texts,
			    const size_t *lens, size_t n, unsigned flags,
			    float *out, es_encode_info *infos, es_pool *pool,
			    es_error *err)
{
	if (enc->ops->encode_batch)
		return enc->ops->encode_batch(enc->impl, texts, lens, n, flags,
					      out, infos, pool, err);
	if (n == 0)
		return 0;
	int *rcs = calloc(n, sizeof *rcs);
	if (!rcs)
		return es_err(err, ES_ENOMEM, "out of memory");
	gen_batch g = {enc, texts, lens, flags, out, infos, rcs};
	es_pool_parallel_for(pool, n, 1, gen_batch_fn, &g);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (rcs[i]) {
			/* rerun the failing text to get its message */
			float *tmp = malloc(es_encoder_dim(enc) * sizeof(float));
			if (tmp)
				enc->ops->encode(enc->impl, texts[i], lens[i],
						 flags, tmp, NULL, err);
			free(tmp);
			rc = es_err_prefix(err, rcs[i], "input %zu", i);
		}
	}
	free(rcs);
	return rc;
}

int es_encoder_tokenize(const es_encoder *enc, const char *text, size_t len,
			es_token_fn fn, void *ctx, es_error *err)
{
	return enc->ops->tokenize(enc->impl, text ? text : "", len, fn, ctx,
				  err);
}

int es_encoder_word_vector(const es_encoder *enc, const char *word,
			   size_t len, float *out, unsigned *flags,
			   es_error *err)
{
	return enc->ops->word_vector(enc->impl, word, len, out, flags, err);
}

int es_encoder_vocab(const es_encoder *enc, const char *const **words,
		     const float **unit, size_t *count, es_error *err)
{
	return enc->ops->vocab(enc->impl, words, unit, count, err);
}
