/*
 * arith.c — see arith.h.
 */
#include "arith.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "simd.h"
#include "tokenize.h"
#include "vocab.h"

int es_analogy_method_parse(const char *name)
{
	if (!strcmp(name, "3cosadd") || !strcmp(name, "add") ||
	    !strcmp(name, "3CosAdd"))
		return ES_ANALOGY_3COSADD;
	if (!strcmp(name, "3cosmul") || !strcmp(name, "mul") ||
	    !strcmp(name, "3CosMul"))
		return ES_ANALOGY_3COSMUL;
	return -1;
}

/* ----------------------------------------------------------- top k heap */

/* a ranks before b: higher score, then lower id */
static int better(es_word_score a, es_word_score b)
{
	return a.score > b.score || (a.score == b.score && a.id < b.id);
}

/* min-heap on "worst at the root" */
static void heap_push(es_word_score *h, size_t *n, size_t k, es_word_score x)
{
	if (*n < k) {
		size_t i = (*n)++;
		h[i] = x;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (!better(h[p], h[i]))
				break;
			es_word_score t = h[p];
			h[p] = h[i];
			h[i] = t;
			i = p;
		}
		return;
	}
	if (!better(x, h[0]))
		return;
	h[0] = x;
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < *n && better(h[w], h[l]))
			w = l;
		if (r < *n && better(h[w], h[r]))
			w = r;
		if (w == i)
			break;
		es_word_score t = h[w];
		h[w] = h[i];
		h[i] = t;
		i = w;
	}
}

static int cmp_best(const void *a, const void *b)
{
	const es_word_score *x = a, *y = b;
	if (better(*x, *y))
		return -1;
	if (better(*y, *x))
		return 1;
	return 0;
}

static int excluded(uint32_t id, const uint32_t *excl, size_t nexcl)
{
	for (size_t i = 0; i < nexcl; i++)
		if (excl[i] == id)
			return 1;
	return 0;
}

size_t es_arith_topk(const float *unit, size_t n, uint32_t dim,
		     const float *q, size_t k, const uint32_t *excl,
		     size_t nexcl, es_word_score *out)
{
	size_t nout = 0;
	const uint32_t *ex[1] = {excl};
	size_t nex[1] = {nexcl};
	if (es_arith_topk_batch(unit, n, dim, q, 1, k, ex, nex, out, &nout,
				NULL))
		return 0;
	return nout;
}

#define ROW_BLOCK 8192

int es_arith_topk_batch(const float *unit, size_t n, uint32_t dim,
			const float *q, size_t nq, size_t k,
			const uint32_t *const *excl, const size_t *nexcl,
			es_word_score *out, size_t *nout, es_error *err)
{
	if (nq == 0)
		return 0;
	for (size_t i = 0; i < nq; i++)
		nout[i] = 0;
	if (k == 0 || n == 0)
		return 0;
	size_t block = n < ROW_BLOCK ? n : ROW_BLOCK;
	float *s = malloc(block * nq * sizeof(float));
	if (!s)
		return es_err(err, ES_ENOMEM, "out of memory for scores");
	for (size_t r0 = 0; r0 < n; r0 += block) {
		size_t rows = n - r0 < block ? n - r0 : block;
		if (nq == 1) {
			cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows,
				    (int)dim, 1.0f, unit + r0 * dim, (int)dim, q,
				    1, 0.0f, s, 1);
		} else {
			/* s[rows x nq] = U_block[rows x dim] * Q^T */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)rows, (int)nq, (int)dim, 1.0f,
				    unit + r0 * dim, (int)dim, q, (int)dim,
				    0.0f, s, (int)nq);
		}
		for (size_t j = 0; j < nq; j++) {
			es_word_score *h = out + j * k;
			const uint32_t *ex = excl ? excl[j] : NULL;
			size_t nex = nexcl ? nexcl[j] : 0;
			for (size_t r = 0; r < rows; r++) {
				es_word_score x = {(uint32_t)(r0 + r),
						   s[r * nq + j]};
				if (nout[j] == k && !better(x, h[0]))
					continue;
				if (x.score != x.score)
					continue; /* NaN never ranks */
				if (nex && excluded(x.id, ex, nex))
					continue;
				heap_push(h, &nout[j], k, x);
			}
		}
	}
	for (size_t j = 0; j < nq; j++)
		qsort(out + j * k, nout[j], sizeof *out, cmp_best);
	free(s);
	return 0;
}

/* -------------------------------------------------------------- words */

int64_t es_arith_word_id(const es_encoder *enc, const char *word, size_t len)
{
	const es_model *m = es_encoder_static_model(enc);
	char tok[ES_TOKEN_MAX + 1];
	es_tokenizer t;
	size_t tl;
	if (m) {
		const es_vocab *v = es_model_vocab(m);
		int64_t id = es_vocab_find(v, word, len);
		if (id >= 0)
			return id;
		es_tokenizer_init(&t, word, len);
		tl = es_tokenizer_next(&t, tok, NULL, NULL);
		return tl ? es_vocab_find(v, tok, tl) : -1;
	}
	const char *const *words;
	const float *unit;
	size_t n;
	if (es_encoder_vocab(enc, &words, &unit, &n, NULL))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == len && memcmp(words[i], word, len) == 0)
			return (int64_t)i;
	return -1;
}

/* Unit vector of a term into out; *id gets its vocabulary id or -1. */
static int term_vector(const es_encoder *enc, const es_arith_term *t,
		       float *out, int64_t *id, es_error *err)
{
	uint32_t dim = es_encoder_dim(enc);
	*id = -1;
	if (!t->word) {
		if (!t->vec)
			return es_err(err, ES_EINVAL, "term without word or vector");
		memcpy(out, t->vec, dim * sizeof(float));
		if (simd_normalize(out, dim) == 0)
			return es_err(err, ES_EINVAL,
				      "query vector is zero or not finite");
		return 0;
	}
	int rc = es_encoder_word_vector(enc, t->word, t->len, out, NULL, NULL);
	if (rc)
		return es_err(err, ES_ENOTFOUND,
			      "word '%.*s' is not in the vocabulary and has no subword vector",
			      (int)(t->len > 100 ? 100 : t->len), t->word);
	*id = es_arith_word_id(enc, t->word, t->len);
	return 0;
}

int es_arith_most_similar(const es_encoder *enc, const es_arith_term *pos,
			  size_t npos, const es_arith_term *neg, size_t nneg,
			  es_analogy_method method, size_t restrict_vocab,
			  size_t k, es_word_score *out, size_t *nout,
			  es_error *err)
{
	*nout = 0;
	if (npos == 0)
		return es_err(err, ES_EINVAL,
			      "need at least one positive word");
	const char *const *words;
	const float *unit;
	size_t n;
	int rc = es_encoder_vocab(enc, &words, &unit, &n, err);
	if (rc)
		return rc;
	if (restrict_vocab && restrict_vocab < n)
		n = restrict_vocab;
	uint32_t dim = es_encoder_dim(enc);
	size_t nt = npos + nneg;
	float *vecs = malloc(nt * dim * sizeof(float));
	float *mean = calloc(dim, sizeof(float));
	uint32_t *excl = malloc(nt * sizeof *excl);
	size_t nexcl = 0;
	if (!vecs || !mean || !excl) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	double total = 0;
	for (size_t i = 0; i < nt; i++) {
		const es_arith_term *t = i < npos ? &pos[i] : &neg[i - npos];
		int64_t id;
		rc = term_vector(enc, t, vecs + i * dim, &id, err);
		if (rc)
			goto out;
		if (id >= 0 && !excluded((uint32_t)id, excl, nexcl))
			excl[nexcl++] = (uint32_t)id;
		float w = t->weight != 0 ? fabsf(t->weight) : 1.0f;
		if (method == ES_ANALOGY_3COSMUL && w != 1.0f) {
			rc = es_err(err, ES_EINVAL,
				    "3CosMul does not take weights");
			goto out;
		}
		total += w;
		simd_get()->axpy(i < npos ? w : -w, vecs + i * dim, mean, dim);
	}
	if (method == ES_ANALOGY_3COSADD) {
		/* weighted mean as the single positive term */
		const simd_kernels *kk = simd_get();
		kk->scale(mean, (float)(1.0 / total), dim);
		simd_normalize(mean, dim);
		rc = es_arith_most_similar_vectors(unit, n, dim, mean, 1, 0,
						   method, excl, nexcl, k, out,
						   nout, err);
	} else {
		rc = es_arith_most_similar_vectors(unit, n, dim, vecs, npos,
						   nneg, method, excl, nexcl, k,
						   out, nout, err);
	}
out:
	free(vecs);
	free(mean);
	free(excl);
	return rc;
}

int es_arith_most_similar_vectors(const float *unit, size_t n, uint32_t dim,
				  const float *vecs, size_t npos, size_t nneg,
				  es_analogy_method method,
				  const uint32_t *excl, size_t nexcl, size_t k,
				  es_word_score *out, size_t *nout,
				  es_error *err)
{
	*nout = 0;
	if (method == ES_ANALOGY_3COSADD) {
		if (npos != 1 || nneg != 0)
			return es_err(err, ES_EINVAL,
				      "3CosAdd takes the combined query vector");
		*nout = es_arith_topk(unit, n, dim, vecs, k, excl, nexcl, out);
		return 0;
	}
	/* 3CosMul: cosines of every candidate with every term, in blocks */
	size_t nt = npos + nneg, hn = 0;
	size_t block = n < ROW_BLOCK ? n : ROW_BLOCK;
	float *scores = malloc((block ? block : 1) * nt * sizeof(float));
	if (!scores)
		return es_err(err, ES_ENOMEM, "out of memory for scores");
	for (size_t r0 = 0; r0 < n; r0 += block) {
		size_t rows = n - r0 < block ? n - r0 : block;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows,
			    (int)nt, (int)dim, 1.0f, unit + r0 * dim, (int)dim,
			    vecs, (int)dim, 0.0f, scores, (int)nt);
		for (size_t r = 0; r < rows; r++) {
			const float *c = scores + r * nt;
			float p = 1.0f, q = 1.0f;
			for (size_t i = 0; i < npos; i++)
				p *= (1.0f + c[i]) / 2.0f;
			for (size_t i = npos; i < nt; i++)
				q *= (1.0f + c[i]) / 2.0f;
			/* gensim: prod(pos) / (prod(neg) + 1e-6), where the
			 * product of an empty list is 1 */
			es_word_score x = {(uint32_t)(r0 + r),
					   p / (q + 0.000001f)};
			if (x.score != x.score || excluded(x.id, excl, nexcl))
				continue;
			heap_push(out, &hn, k, x);
		}
	}
	qsort(out, hn, sizeof *out, cmp_best);
	*nout = hn;
	free(scores);
	return 0;
}

/* ------------------------------------- word neighbours by meaning */

/* One word's parts: its n-gram bucket ids (sorted) and its own row. */
typedef struct word_parts {
	uint32_t *ids;
	size_t n;
	int known;
	float *own; /* dim; zero for an unseen word */
} word_parts;

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The parts of vocabulary word id (id >= 0) or of the unseen word w. */
static int parts_of(const es_model *m, int64_t id, const char *w, size_t len,
		    word_parts *wp, es_error *err)
{
	uint32_t dim = es_model_dim(m);
	const float *rows = es_model_ngrams(m);
	if (id >= 0) {
		w = es_vocab_word(es_model_vocab(m), (uint32_t)id);
		len = strlen(w);
	}
	size_t n = es_model_subword_ids(m, w, len, NULL, 0);
	wp->ids = malloc((n ? n : 1) * sizeof *wp->ids);
	wp->own = calloc(dim, sizeof *wp->own);
	double *sum = calloc(dim, sizeof *sum);
	if (!wp->ids || !wp->own || !sum) {
		free(sum);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	wp->n = es_model_subword_ids(m, w, len, wp->ids, n);
	wp->known = id >= 0;
	if (wp->known) {
		/* stored vector = (own + sum of n-gram rows) / (n + 1) */
		const float *v = es_model_vector(m, (uint32_t)id);
		for (size_t i = 0; i < wp->n; i++)
			for (uint32_t j = 0; j < dim; j++)
				sum[j] += rows[(size_t)wp->ids[i] * dim + j];
		for (uint32_t j = 0; j < dim; j++)
			wp->own[j] = (float)(((double)wp->n + 1) * v[j] - sum[j]);
	}
	free(sum);
	qsort(wp->ids, wp->n, sizeof *wp->ids, cmp_u32);
	return 0;
}

static int has_id(const word_parts *wp, uint32_t g)
{
	return bsearch(&g, wp->ids, wp->n, sizeof g, cmp_u32) != NULL;
}

/* a's own row plus the rows of the n-grams that b does not have. */
static void unshared(const es_model *m, const word_parts *a,
		     const word_parts *b, float *out)
{
	uint32_t dim = es_model_dim(m);
	const float *rows = es_model_ngrams(m);
	memcpy(out, a->own, dim * sizeof *out);
	for (size_t i = 0; i < a->n; i++)
		if (!has_id(b, a->ids[i]))
			simd_get()->axpy(1.0f, rows + (size_t)a->ids[i] * dim, out, dim);
}

static float cosine(const float *a, const float *b, uint32_t dim)
{
	const simd_kernels *kk = simd_get();
	float na = kk->dot(a, a, dim), nb = kk->dot(b, b, dim);
	return na > 0 && nb > 0 ? kk->dot(a, b, dim) / sqrtf(na * nb) : 0.0f;
}

int es_arith_word_neighbors(const es_encoder *enc, const char *word,
			    size_t len, size_t restrict_vocab, size_t k,
			    es_word_score *out, size_t *nout, es_error *err)
{
	*nout = 0;
	const es_model *m = es_encoder_static_model(enc);
	es_arith_term t = {.word = word, .len = len};
	if (!m || !es_model_has_subwords(m) || !es_model_ngrams(m))
		return es_arith_most_similar(enc, &t, 1, NULL, 0, ES_ANALOGY_3COSADD,
					     restrict_vocab, k, out, nout, err);
	size_t pool = k > ES_ARITH_POOL ? k : ES_ARITH_POOL, nc = 0;
	uint32_t dim = es_model_dim(m);
	es_word_score *cand = malloc(pool * sizeof *cand);
	float *qv = malloc(2 * dim * sizeof *qv);
	word_parts q = {0}, c = {0};
	int rc = 0;
	if (!cand || !qv) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	rc = es_arith_most_similar(enc, &t, 1, NULL, 0, ES_ANALOGY_3COSADD,
				   restrict_vocab, pool, cand, &nc, err);
	if (rc)
		goto out;
	rc = parts_of(m, es_arith_word_id(enc, word, len), word, len, &q, err);
	for (size_t i = 0; i < nc && !rc; i++) {
		rc = parts_of(m, cand[i].id, NULL, 0, &c, err);
		if (!rc) {
			unshared(m, &q, &c, qv);
			unshared(m, &c, &q, qv + dim);
			cand[i].score = cosine(qv, qv + dim, dim);
		}
		free(c.ids);
		free(c.own);
		c = (word_parts){0};
	}
	if (rc)
		goto out;
	qsort(cand, nc, sizeof *cand, cmp_best);
	*nout = nc < k ? nc : k;
	memcpy(out, cand, *nout * sizeof *out);
out:
	free(q.ids);
	free(q.own);
	free(cand);
	free(qv);
	return rc;
}

int es_arith_neighbors_text(const es_encoder *enc, const char *text,
			    size_t len, size_t restrict_vocab, size_t k,
			    es_word_score *out, size_t *nout, es_error *err)
{
	*nout = 0;
	uint32_t dim = es_encoder_dim(enc);
	float *v = malloc(dim * sizeof(float));
	if (!v)
		return es_err(err, ES_ENOMEM, "out of memory");
	es_encode_info info;
	int rc = es_encoder_encode(enc, text, len, 0, v, &info, err);
	if (rc == 0 && info.empty)
		rc = es_err(err, ES_ENOTFOUND,
			    "no word of the text has a vector");
	if (rc == 0) {
		es_arith_term t = {.vec = v};
		rc = es_arith_most_similar(enc, &t, 1, NULL, 0,
					   ES_ANALOGY_3COSADD, restrict_vocab,
					   k, out, nout, err);
	}
	free(v);
	return rc;
}

int es_arith_similarity(const es_encoder *enc, const char *a, size_t alen,
			const char *b, size_t blen, float *sim, es_error *err)
{
	uint32_t dim = es_encoder_dim(enc);
	float *va = malloc(2 * dim * sizeof(float));
	if (!va)
		return es_err(err, ES_ENOMEM, "out of memory");
	es_arith_term ta = {.word = a, .len = alen}, tb = {.word = b, .len = blen};
	int64_t id;
	int rc = term_vector(enc, &ta, va, &id, err);
	if (!rc)
		rc = term_vector(enc, &tb, va + dim, &id, err);
	if (!rc)
		*sim = simd_get()->dot(va, va + dim, dim);
	free(va);
	return rc;
}

int es_arith_text_similarity(const es_encoder *enc, const char *a,
			     size_t alen, const char *b, size_t blen,
			     float *sim, es_error *err)
{
	uint32_t dim = es_encoder_dim(enc);
	float *va = malloc(2 * dim * sizeof(float));
	if (!va)
		return es_err(err, ES_ENOMEM, "out of memory");
	int rc = es_encoder_encode(enc, a, alen, 0, va, NULL, err);
	if (!rc)
		rc = es_encoder_encode(enc, b, blen, 0, va + dim, NULL, err);
	if (!rc)
		*sim = simd_get()->dot(va, va + dim, dim); /* 0 if one is empty */
	free(va);
	return rc;
}

int es_arith_doesnt_match(const es_encoder *enc, const char *const *words,
			  size_t n, size_t *index, es_error *err)
{
	uint32_t dim = es_encoder_dim(enc);
	float *v = malloc((n + 1) * dim * sizeof(float));
	size_t *pos = malloc((n + 1) * sizeof *pos);
	int rc = 0;
	if (!v || !pos) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	size_t used = 0;
	for (size_t i = 0; i < n; i++)
		if (es_encoder_word_vector(enc, words[i], strlen(words[i]),
					   v + used * dim, NULL, NULL) == 0)
			pos[used++] = i;
	if (used == 0) {
		rc = es_err(err, ES_EINVAL,
			    "none of the words has a vector");
		goto out;
	}
	float *mean = v + n * dim;
	memset(mean, 0, dim * sizeof(float));
	const simd_kernels *k = simd_get();
	for (size_t i = 0; i < used; i++)
		k->axpy(1.0f, v + i * dim, mean, dim);
	simd_normalize(mean, dim);
	/* sorted(zip(dists, words))[0]: lowest score, ties by the word */
	size_t best = 0;
	float bs = k->dot(v, mean, dim);
	for (size_t i = 1; i < used; i++) {
		float s = k->dot(v + i * dim, mean, dim);
		if (s < bs || (s == bs && strcmp(words[pos[i]], words[pos[best]]) < 0)) {
			bs = s;
			best = i;
		}
	}
	*index = pos[best];
out:
	free(v);
	free(pos);
	return rc;
}
