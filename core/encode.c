/*
 * encode.c — see encode.h.
 */
#include "encode.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "simd.h"
#include "tokenize.h"

/* SIF-weighted mean of the text's word vectors, without common-component
 * removal or normalisation (what the common component is computed from).
 * Returns the number of contributing tokens. */
static size_t es_model_sif_mean(const es_model *m, const char *text,
				size_t len, float *out, es_encode_info *info)
{
	uint32_t dim = m->p.dim;
	const simd_kernels *k = simd_get();
	memset(out, 0, dim * sizeof(float));
	es_tokenizer t;
	char tok[ES_TOKEN_MAX + 1];
	size_t tl, off, sl, known = 0, ntok = 0;
	float stackv[1024];
	float *sub = dim <= 1024 ? stackv : malloc(dim * sizeof(float));
	double a = m->p.sif_a;
	uint64_t total = es_vocab_total(m->vocab);
	double p_unseen = total > 0 && m->p.has_counts ? 1.0 / (double)total : 0;
	es_tokenizer_init(&t, text, len);
	while ((tl = es_tokenizer_next(&t, tok, &off, &sl)) > 0) {
		ntok++;
		int64_t id = es_vocab_find(m->vocab, tok, tl);
		if (id < 0 && (sl != tl || memcmp(text + off, tok, tl) != 0))
			id = es_vocab_find(m->vocab, text + off, sl);
		if (id >= 0) {
			double p = es_model_word_prob(m, (uint32_t)id);
			k->axpy((float)(a / (a + p)),
				es_model_vector(m, (uint32_t)id), out, dim);
			known++;
		} else if (sub && es_model_subword_vector(m, tok, tl, sub) == 0) {
			k->axpy((float)(a / (a + p_unseen)), sub, out, dim);
			known++;
		}
	}
	if (sub != stackv)
		free(sub);
	if (known > 1)
		k->scale(out, 1.0f / (float)known, dim);
	if (info) {
		info->tokens = ntok > UINT32_MAX ? UINT32_MAX : (uint32_t)ntok;
		info->known = known > UINT32_MAX ? UINT32_MAX : (uint32_t)known;
		info->truncated = 0;
		info->empty = known == 0;
	}
	return known;
}

int es_model_encode(const es_model *m, const char *text, size_t len,
		    float *out, es_encode_info *info, es_error *err)
{
	size_t bad;
	uint32_t dim = m->p.dim;
	if (!es_utf8_valid(text, len, &bad)) {
		memset(out, 0, dim * sizeof(float));
		return es_err(err, ES_EINVAL,
			      "text is not valid UTF-8 (byte %zu)", bad);
	}
	es_encode_info tmp;
	if (!info)
		info = &tmp;
	es_model_sif_mean(m, text, len, out, info);
	const simd_kernels *k = simd_get();
	if (m->common_vec) {
		float proj = k->dot(m->common_vec, out, dim);
		k->axpy(-proj, m->common_vec, out, dim);
	}
	float nn = simd_normalize(out, dim);
	if (!(nn > 1e-30f)) {
		/* nothing known, or a vector entirely along the common
		 * component: the documented zero result */
		memset(out, 0, dim * sizeof(float));
		info->empty = 1;
		return 0;
	}
	info->empty = 0;
	return 0;
}

typedef struct mean_ctx {
	const es_model *m;
	const char *const *texts;
	const size_t *lens;
	float *x;
} mean_ctx;

static void mean_fn(void *vctx, size_t begin, size_t end, unsigned worker)
{
	(void)worker;
	mean_ctx *c = vctx;
	for (size_t i = begin; i < end; i++) {
		size_t bad;
		float *row = c->x + i * c->m->p.dim;
		if (es_utf8_valid(c->texts[i], c->lens[i], &bad))
			es_model_sif_mean(c->m, c->texts[i], c->lens[i], row,
					  NULL);
		else
			memset(row, 0, c->m->p.dim * sizeof(float));
	}
}

void es_power_iteration(const double *c, uint32_t dim, double *v, double *tmp)
{
	double ss = 0;
	for (uint32_t j = 0; j < dim; j++)
		ss += v[j] * v[j];
	for (int it = 0; it < 500; it++) {
		double inv = 1.0 / sqrt(ss);
		for (uint32_t j = 0; j < dim; j++)
			v[j] *= inv;
		ss = 0;
		double delta = 0;
		for (uint32_t i = 0; i < dim; i++) {
			double s = 0;
			const double *row = c + (size_t)i * dim;
			for (uint32_t j = 0; j < dim; j++)
				s += row[j] * v[j];
			tmp[i] = s;
			ss += s * s;
		}
		if (ss == 0) { /* C v = 0: no direction to follow */
			memcpy(v, tmp, dim * sizeof(double));
			return;
		}
		double nw = sqrt(ss);
		for (uint32_t j = 0; j < dim; j++) {
			double d = tmp[j] / nw - v[j];
			delta += d * d;
		}
		memcpy(v, tmp, dim * sizeof(double));
		if (delta < 1e-14)
			return;
	}
}

int es_model_compute_common(es_model *m, const char *const *texts,
			    const size_t *lens, size_t n, es_pool *pool,
			    es_error *err)
{
	uint32_t dim = m->p.dim;
	if (n == 0)
		return es_err(err, ES_EINVAL,
			      "no sample text for the common component");
	int rc = 0;
	float *x = malloc(n * dim * sizeof(float));
	float *c = calloc((size_t)dim * dim, sizeof(float));
	double *cd = NULL;
	double *v = malloc(dim * sizeof(double)), *w = malloc(dim * sizeof(double));
	if (!x || !c || !v || !w) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	mean_ctx mc = {m, texts, lens, x};
	es_pool_parallel_for(pool, n, 0, mean_fn, &mc);
	/* C = X^T X (upper triangle), then power iteration in double */
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)n,
		    1.0f, x, (int)dim, 0.0f, c, (int)dim);
	for (uint32_t i = 0; i < dim; i++)
		for (uint32_t j = 0; j < i; j++)
			c[(size_t)i * dim + j] = c[(size_t)j * dim + i];
	double trace = 0;
	for (uint32_t i = 0; i < dim; i++)
		trace += c[(size_t)i * dim + i];
	if (!(trace > 0) || !isfinite(trace)) {
		rc = es_err(err, ES_EINVAL,
			    "no sample text has a known word: cannot compute the common component");
		goto out;
	}
	/* es_power_iteration takes doubles; floats convert exactly, so each
	 * step computes what it would on c itself */
	cd = malloc((size_t)dim * dim * sizeof(double));
	if (!cd) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < (size_t)dim * dim; i++)
		cd[i] = c[i];
	/* start from the mean direction (never orthogonal to the top PC of
	 * an uncentred, positive-mass cloud), fall back to a fixed vector */
	for (uint32_t j = 0; j < dim; j++) {
		double s = 0;
		for (size_t i = 0; i < n; i++)
			s += x[i * dim + j];
		v[j] = s + 1e-3 * (double)((j * 2654435761u) % 1000) / 1000.0;
	}
	es_power_iteration(cd, dim, v, w);
	for (uint32_t j = 0; j < dim; j++)
		x[j] = (float)v[j];
	rc = es_model_set_common(m, x, err);
	if (rc == 0) {
		char buf[32];
		snprintf(buf, sizeof buf, "%zu", n);
		rc = es_model_set_meta(m, "common_component.sample", buf, err);
	}
out:
	free(x);
	free(c);
	free(cd);
	free(v);
	free(w);
	return rc;
}
