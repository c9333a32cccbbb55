/*
 * encoder.c — see encoder.h / encoder_impl.h.  Dispatch through an ops
 * table, and the one batch loop (per-text errors named) for kinds without
 * their own.  The kinds live beside it: static_encoder.c, bert_encoder.c.
 */
#include "encoder_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


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
	const es_encoder_ops *ops;
	void *impl;
	int rc = S_ISDIR(st.st_mode) ? es_bert_encoder_open(path, &ops, &impl, err)
				     : es_static_encoder_open(path, &ops, &impl, err);
	if (rc)
		return rc;
	return es_encoder_wrap(ops, impl, name, path, out, err);
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
	/* one text per grain for small batches, the pool's own split else */
	es_pool_parallel_for(pool, n, n < 64 ? 1 : 0, gen_batch_fn, &g);
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
