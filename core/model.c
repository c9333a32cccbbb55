/*
 * model.c — see model.h.  Building, lookups, fastText subword hashing.
 */
#include "alloc.h"
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode_types.h"
#include "simd.h"

static int check_params(const es_model_params *p, es_error *err)
{
	if (p->dim == 0 || p->dim > ES_MODEL_MAX_DIM)
		return es_err(err, ES_EINVAL, "dimension %u out of range 1..%u",
			      p->dim, ES_MODEL_MAX_DIM);
	if (p->maxn > ES_NGRAM_MAX_CHARS || p->minn > p->maxn)
		return es_err(err, ES_EINVAL,
			      "n-gram lengths minn=%u maxn=%u invalid (need minn <= maxn <= %u)",
			      p->minn, p->maxn, ES_NGRAM_MAX_CHARS);
	if (p->bucket > (uint64_t)INT32_MAX)
		return es_err(err, ES_EINVAL, "bucket count %llu too large",
			      (unsigned long long)p->bucket);
	if (!(p->sif_a >= 0) || !isfinite(p->sif_a))
		return es_err(err, ES_EINVAL, "SIF a must be >= 0");
	return 0;
}

int es_model_new(const es_model_params *p, es_model **out, es_error *err)
{
	*out = NULL;
	int rc = check_params(p, err);
	if (rc)
		return rc;
	es_model *m = es_calloc(1, sizeof *m);
	if (!m)
		return es_err(err, ES_ENOMEM, "out of memory");
	m->p = *p;
	if (m->p.sif_a == 0)
		m->p.sif_a = ES_SIF_A_DEFAULT;
	if (m->p.maxn == 0 || m->p.bucket == 0) {
		m->p.maxn = m->p.minn = 0;
		m->p.bucket = 0;
	}
	pthread_mutex_init(&m->unit_lock, NULL);
	m->vocab = es_vocab_new();
	m->vectors_owned = m->ngrams_owned = 1;
	if (!m->vocab) {
		es_model_free(m);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	*out = m;
	return 0;
}

void es_model_free(es_model *m)
{
	if (!m)
		return;
	es_vocab_free(m->vocab);
	if (m->vectors_owned)
		es_free(m->vectors);
	if (m->ngrams_owned)
		es_free(m->ngrams);
	es_free(m->common_vec);
	for (size_t i = 0; i < m->nmeta; i++) {
		es_free(m->meta_keys[i]);
		es_free(m->meta_vals[i]);
	}
	es_free(m->meta_keys);
	es_free(m->meta_vals);
	es_free(m->unit);
	if (m->map)
		es_model_io_unmap(m->map, m->map_len);
	pthread_mutex_destroy(&m->unit_lock);
	es_free(m);
}

int es_model_value_ok(float x)
{
	return isfinite(x) && fabsf(x) <= ES_MODEL_MAX_ABS;
}

int es_model_add_word(es_model *m, const char *word, size_t len,
		      uint64_t count, const float *vec, int *added,
		      es_error *err)
{
	uint32_t dim = m->p.dim;
	if (!m->vectors_owned)
		return es_err(err, ES_EINVAL, "model is read-only (mmap'ed)");
	for (uint32_t j = 0; j < dim; j++)
		if (!es_model_value_ok(vec[j]))
			return es_err(err, ES_EINVAL,
				      "word '%.*s': component %u is %s",
				      (int)(len > 64 ? 64 : len), word, j,
				      isfinite(vec[j]) ? "over 1e9 in magnitude" : "not finite");
	size_t n = es_vocab_size(m->vocab);
	if (n + 1 > m->vec_cap) {
		size_t nc = m->vec_cap ? m->vec_cap * 2 : 256;
		if (nc > SIZE_MAX / sizeof(float) / dim)
			return es_err(err, ES_ENOMEM, "model too large");
		float *nv = es_realloc(m->vectors, nc * dim * sizeof(float));
		if (!nv)
			return es_err(err, ES_ENOMEM,
				      "out of memory for %zu vectors", nc);
		m->vectors = nv;
		m->vec_cap = nc;
	}
	int add = 0;
	int rc = es_vocab_add(m->vocab, word, len, count, NULL, &add, err);
	if (rc)
		return rc;
	if (added)
		*added = add;
	if (!add) {
		/* duplicate: keep the first vector and count */
		int64_t id = es_vocab_find(m->vocab, word, len);
		es_vocab_set_count(m->vocab, (uint32_t)id,
				   es_vocab_count(m->vocab, (uint32_t)id) - count);
		return 0;
	}
	memcpy(m->vectors + n * dim, vec, dim * sizeof(float));
	return 0;
}

int es_model_set_ngrams(es_model *m, const float *rows, es_error *err)
{
	if (m->p.bucket == 0)
		return rows ? es_err(err, ES_EINVAL, "model has no n-gram buckets")
			    : 0;
	size_t nf = (size_t)m->p.bucket * m->p.dim;
	float *c = es_malloc(nf * sizeof(float));
	if (!c)
		return es_err(err, ES_ENOMEM, "out of memory for n-gram rows");
	for (size_t i = 0; i < nf; i++) {
		if (!es_model_value_ok(rows[i])) {
			es_free(c);
			return es_err(err, ES_EINVAL,
				      "n-gram row %zu is not finite or over 1e9 in magnitude",
				      i / m->p.dim);
		}
		c[i] = rows[i];
	}
	if (m->ngrams_owned)
		es_free(m->ngrams);
	m->ngrams = c;
	m->ngrams_owned = 1;
	return 0;
}

int es_model_from_arrays(const es_model_params *p, size_t n,
			 const char *const *words, const uint64_t *counts,
			 const float *vectors, const float *ngrams,
			 es_model **out, es_error *err)
{
	es_model_params q = *p;
	q.has_counts = counts != NULL && p->has_counts;
	es_model *m;
	int rc = es_model_new(&q, &m, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		int added;
		rc = es_model_add_word(m, words[i], strlen(words[i]),
				       counts ? counts[i] : 0,
				       vectors + i * (size_t)p->dim, &added, err);
		if (rc)
			goto fail;
		if (!added) {
			rc = es_err(err, ES_EINVAL, "duplicate word '%s'",
				    words[i]);
			goto fail;
		}
	}
	if (m->p.bucket) {
		if (!ngrams) {
			rc = es_err(err, ES_EINVAL,
				    "bucket = %llu but no n-gram rows given",
				    (unsigned long long)m->p.bucket);
			goto fail;
		}
		rc = es_model_set_ngrams(m, ngrams, err);
		if (rc)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	es_model_free(m);
	return rc;
}

int es_model_set_common(es_model *m, const float *u, es_error *err)
{
	if (!u) {
		es_free(m->common_vec);
		m->common_vec = NULL;
		return 0;
	}
	double ss = 0;
	for (uint32_t j = 0; j < m->p.dim; j++) {
		if (!isfinite(u[j]))
			return es_err(err, ES_EINVAL,
				      "common component is not finite");
		ss += (double)u[j] * u[j];
	}
	if (ss <= 0)
		return es_err(err, ES_EINVAL, "common component is zero");
	float *c = m->common_vec ? m->common_vec
				 : es_malloc(m->p.dim * sizeof(float));
	if (!c)
		return es_err(err, ES_ENOMEM, "out of memory");
	double inv = 1.0 / sqrt(ss);
	for (uint32_t j = 0; j < m->p.dim; j++)
		c[j] = (float)(u[j] * inv);
	m->common_vec = c;
	return 0;
}

int es_model_set_meta(es_model *m, const char *key, const char *value,
		      es_error *err)
{
	if (!key || !*key || !value)
		return es_err(err, ES_EINVAL, "metadata key must be non-empty");
	for (size_t i = 0; i < m->nmeta; i++) {
		if (strcmp(m->meta_keys[i], key) == 0) {
			char *v = es_strdup(value);
			if (!v)
				return es_err(err, ES_ENOMEM, "out of memory");
			es_free(m->meta_vals[i]);
			m->meta_vals[i] = v;
			return 0;
		}
	}
	char **nk = es_realloc(m->meta_keys, (m->nmeta + 1) * sizeof *nk);
	if (!nk)
		return es_err(err, ES_ENOMEM, "out of memory");
	m->meta_keys = nk;
	char **nv = es_realloc(m->meta_vals, (m->nmeta + 1) * sizeof *nv);
	if (!nv)
		return es_err(err, ES_ENOMEM, "out of memory");
	m->meta_vals = nv;
	char *k = es_strdup(key), *v = es_strdup(value);
	if (!k || !v) {
		es_free(k);
		es_free(v);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	m->meta_keys[m->nmeta] = k;
	m->meta_vals[m->nmeta] = v;
	m->nmeta++;
	return 0;
}

const char *es_model_meta(const es_model *m, const char *key)
{
	for (size_t i = 0; i < m->nmeta; i++)
		if (strcmp(m->meta_keys[i], key) == 0)
			return m->meta_vals[i];
	return NULL;
}

size_t es_model_meta_count(const es_model *m)
{
	return m->nmeta;
}

void es_model_meta_at(const es_model *m, size_t i, const char **key,
		      const char **value)
{
	*key = m->meta_keys[i];
	*value = m->meta_vals[i];
}

uint32_t es_model_dim(const es_model *m) { return m->p.dim; }
size_t es_model_size(const es_model *m) { return es_vocab_size(m->vocab); }
const es_vocab *es_model_vocab(const es_model *m) { return m->vocab; }
const float *es_model_vectors(const es_model *m) { return m->vectors; }
const float *es_model_ngrams(const es_model *m) { return m->ngrams; }
int es_model_has_counts(const es_model *m) { return m->p.has_counts; }
const float *es_model_common(const es_model *m) { return m->common_vec; }
void es_model_get_params(const es_model *m, es_model_params *p) { *p = m->p; }

const float *es_model_vector(const es_model *m, uint32_t id)
{
	return m->vectors + (size_t)id * m->p.dim;
}

int es_model_has_subwords(const es_model *m)
{
	return m->p.bucket > 0 && m->p.maxn > 0 && m->ngrams != NULL;
}

void es_model_set_sif_a(es_model *m, float a)
{
	m->p.sif_a = a > 0 ? a : ES_SIF_A_DEFAULT;
}

uint32_t es_fasttext_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h = h ^ (uint32_t)(int8_t)s[i]; /* fastText sign-extends */
		h = h * 16777619u;
	}
	return h;
}

size_t es_model_subword_ids(const es_model *m, const char *word, size_t len,
			    uint32_t *ids, size_t cap)
{
	if (!es_model_has_subwords(m))
		return 0;
	/* "<" word ">" — fastText's BOW/EOW */
	char stack[512];
	char *w = len + 2 <= sizeof stack ? stack : es_malloc(len + 2);
	if (!w)
		return 0;
	w[0] = '<';
	memcpy(w + 1, word, len);
	w[len + 1] = '>';
	size_t wl = len + 2, total = 0;
	uint32_t minn = m->p.minn, maxn = m->p.maxn;
	for (size_t i = 0; i < wl; i++) {
		if ((w[i] & 0xC0) == 0x80)
			continue;
		size_t j = i;
		for (uint32_t n = 1; j < wl && n <= maxn; n++) {
			j++;
			while (j < wl && (w[j] & 0xC0) == 0x80)
				j++;
			if (n >= minn && !(n == 1 && (i == 0 || j == wl))) {
				uint32_t h = es_fasttext_hash(w + i, j - i) %
					     (uint32_t)m->p.bucket;
				if (total < cap)
					ids[total] = h;
				total++;
			}
		}
	}
	if (w != stack)
		es_free(w);
	return total;
}

int es_model_subword_vector(const es_model *m, const char *word, size_t len,
			    float *out)
{
	uint32_t dim = m->p.dim;
	memset(out, 0, dim * sizeof(float));
	if (!es_model_has_subwords(m))
		return ES_ENOTFOUND;
	uint32_t stack_ids[512];
	size_t n = es_model_subword_ids(m, word, len, stack_ids, 512);
	if (n == 0)
		return ES_ENOTFOUND;
	uint32_t *ids = stack_ids;
	if (n > 512) {
		ids = es_malloc(n * sizeof *ids);
		if (!ids)
			return ES_ENOMEM;
		es_model_subword_ids(m, word, len, ids, n);
	}
	const simd_kernels *k = simd_get();
	for (size_t i = 0; i < n; i++)
		k->axpy(1.0f, m->ngrams + (size_t)ids[i] * dim, out, dim);
	k->scale(out, 1.0f / (float)n, dim);
	if (ids != stack_ids)
		es_free(ids);
	return 0;
}

int es_model_word_vector(const es_model *m, const char *word, size_t len,
			 float *out, unsigned *flags, int64_t *id)
{
	int64_t i = es_vocab_find(m->vocab, word, len);
	if (id)
		*id = i;
	if (i >= 0) {
		memcpy(out, es_model_vector(m, (uint32_t)i),
		       m->p.dim * sizeof(float));
		if (flags)
			*flags = ES_TOK_KNOWN;
		return 0;
	}
	int rc = es_model_subword_vector(m, word, len, out);
	if (flags)
		*flags = rc == 0 ? ES_TOK_SUBWORD : ES_TOK_UNKNOWN;
	return rc;
}

const float *es_model_unit_vectors(const es_model *m, es_error *err)
{
	es_model *mm = (es_model *)m; /* cache: guarded by unit_lock */
	pthread_mutex_lock(&mm->unit_lock);
	if (!mm->unit) {
		size_t n = es_vocab_size(m->vocab);
		uint32_t dim = m->p.dim;
		float *u = es_malloc((n ? n : 1) * dim * sizeof(float));
		if (u) {
			for (size_t i = 0; i < n; i++) {
				float *o = u + i * dim;
				memcpy(o, m->vectors + i * dim, dim * sizeof(float));
				simd_normalize(o, dim);
			}
			mm->unit = u;
		}
	}
	const float *r = mm->unit;
	pthread_mutex_unlock(&mm->unit_lock);
	if (!r)
		es_err(err, ES_ENOMEM, "out of memory for unit vectors");
	return r;
}

double es_model_word_prob(const es_model *m, uint32_t id)
{
	uint64_t total = es_vocab_total(m->vocab);
	if (m->p.has_counts && total > 0)
		return (double)es_vocab_count(m->vocab, id) / (double)total;
	/* Zipf: p(r) = 1 / (r * H(N)), H(N) ~ ln N + gamma + 1/(2N) */
	double nn = (double)(es_vocab_size(m->vocab) ? es_vocab_size(m->vocab) : 1);
	double h = log(nn) + 0.5772156649015329 + 1.0 / (2.0 * nn);
	return 1.0 / ((double)(id + 1) * h);
}
