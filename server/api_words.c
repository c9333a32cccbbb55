/*
 * api_words.c — word arithmetic: POST /v1/words/neighbors,
 * /v1/words/analogy, /v1/arithmetic.
 *
 * Semantics follow gensim's KeyedVectors: inputs are unit word vectors;
 * 3CosAdd ranks the vocabulary by cosine to the normalised weighted sum
 * (most_similar), 3CosMul by prod((1+cos(w,p))/2) / (prod((1+cos(w,n))/2) +
 * 1e-6) (most_similar_cosmul); the input words are never answers.  The
 * vocabulary comes from es_encoder_vocab (unit rows, most frequent first),
 * scanned exactly with the SIMD dot_batch kernel: 100k x 300 floats is a
 * few milliseconds, and exact answers are what analogy benchmarks expect.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "simd.h"

#define MAX_TERMS 64

typedef struct term {
	const char *word;  /* NULL for text/vector terms */
	size_t len;
	float weight;
	float *vec;        /* unit vector (into a shared buffer) */
} term;

typedef struct topk {
	size_t k, n;
	size_t *idx;
	float *score;
} topk;

/* min-heap on score */
static void topk_push(topk *t, size_t i, float s)
{
	if (t->n < t->k) {
		size_t c = t->n++;
		while (c > 0) {
			size_t p = (c - 1) / 2;
			if (t->score[p] <= s)
				break;
			t->score[c] = t->score[p];
			t->idx[c] = t->idx[p];
			c = p;
		}
		t->score[c] = s;
		t->idx[c] = i;
		return;
	}
	if (s <= t->score[0])
		return;
	size_t c = 0;
	for (;;) {
		size_t l = 2 * c + 1, r = l + 1, m = c;
		float ms = s;
		if (l < t->n && t->score[l] < ms) {
			m = l;
			ms = t->score[l];
		}
		if (r < t->n && t->score[r] < ms)
			m = r;
		if (m == c)
			break;
		t->score[c] = t->score[m];
		t->idx[c] = t->idx[m];
		c = m;
	}
	t->score[c] = s;
	t->idx[c] = i;
}

typedef struct scored {
	size_t idx;
	float score;
} scored;

static int cmp_scored(const void *a, const void *b)
{
	const scored *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Sorted best first into a JSON array of {word, score}. */
static json_t *topk_json(topk *t, const char *const *words)
{
	scored *s = malloc((t->n ? t->n : 1) * sizeof *s);
	if (!s)
		return NULL;
	for (size_t j = 0; j < t->n; j++) {
		s[j].idx = t->idx[j];
		s[j].score = t->score[j];
	}
	qsort(s, t->n, sizeof *s, cmp_scored);
	json_t *arr = json_array();
	for (size_t j = 0; j < t->n; j++)
		json_array_append_new(arr, json_pack("{s:s, s:f}", "word", words[s[j].idx],
						     "score", (double)s[j].score));
	free(s);
	return arr;
}

static int excluded(const char *w, const term *terms, size_t nterms)
{
	for (size_t i = 0; i < nterms; i++)
		if (terms[i].word && strlen(w) == terms[i].len &&
		    strncasecmp(w, terms[i].word, terms[i].len) == 0)
			return 1;
	return 0;
}

/* Rank the vocabulary.  mode 0: cosine to q; mode 1: 3CosMul over terms. */
static json_t *rank_vocab(const api_ctx *ctx, const es_encoder *enc, const float *q,
			  const term *terms, size_t nterms, int cosmul, uint32_t k,
			  size_t restrict_vocab, api_response *out)
{
	const char *const *words;
	const float *unit;
	size_t count;
	es_error err;
	es_error_clear(&err);
	int rc = es_encoder_vocab(enc, &words, &unit, &count, &err);
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		return NULL;
	}
	(void)ctx;
	if (restrict_vocab && restrict_vocab < count)
		count = restrict_vocab;
	uint32_t dim = es_encoder_dim(enc);
	const simd_kernels *kern = simd_get();
	enum { CHUNK = 1024 };
	float *sc = malloc(CHUNK * sizeof *sc * (cosmul ? nterms + 1 : 1));
	topk t = {k, 0, malloc((k + nterms) * sizeof(size_t)), malloc((k + nterms) * sizeof(float))};
	if (!sc || !t.idx || !t.score) {
		free(sc);
		free(t.idx);
		free(t.score);
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return NULL;
	}
	for (size_t b = 0; b < count; b += CHUNK) {
		size_t m = count - b < CHUNK ? count - b : CHUNK;
		if (!cosmul) {
			kern->dot_batch(q, unit + b * dim, m, dim, dim, sc);
		} else {
			for (size_t i = 0; i < m; i++)
				sc[i] = 1.0f;
			float *tmp = sc + CHUNK;
			float *den = malloc(m * sizeof *den);
			if (!den)
				continue;
			for (size_t i = 0; i < m; i++)
				den[i] = 1.0f;
			for (size_t tt = 0; tt < nterms; tt++) {
				kern->dot_batch(terms[tt].vec, unit + b * dim, m, dim, dim, tmp);
				for (size_t i = 0; i < m; i++) {
					float d = (1.0f + tmp[i]) / 2.0f;
					if (terms[tt].weight >= 0)
						sc[i] *= powf(d, terms[tt].weight);
					else
						den[i] *= powf(d, -terms[tt].weight);
				}
			}
			for (size_t i = 0; i < m; i++)
				sc[i] /= den[i] + 1e-6f;
			free(den);
		}
		for (size_t i = 0; i < m; i++) {
			if (!isfinite(sc[i]))
				continue;
			if (nterms && excluded(words[b + i], terms, nterms))
				continue;
			topk_push(&t, b + i, sc[i]);
		}
	}
	json_t *res = topk_json(&t, words);
	if (!res)
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
	free(sc);
	free(t.idx);
	free(t.score);
	return res;
}

static int word_vec(const es_encoder *enc, const char *w, size_t len, float *v,
		    const char *param, api_response *out)
{
	es_error err;
	es_error_clear(&err);
	int rc = es_encoder_word_vector(enc, w, len, v, NULL, &err);
	if (rc == ES_ENOTFOUND) {
		api_error(out, 422, param, "word_not_found", "%s: no vector for the word '%.*s'",
			  param, (int)len, w);
		return -1;
	}
	if (rc) {
		api_error_es(out, rc, &err, param);
		return -1;
	}
	return 0;
}

static void normalize(float *v, uint32_t dim)
{
	const simd_kernels *k = simd_get();
	float n = k->dot(v, v, dim);
	if (n > 0)
		k->scale(v, 1.0f / sqrtf(n), dim);
}

static int common_opts(api_call *c, const es_encoder **enc, uint32_t *k,
		       uint32_t *restrict_vocab, api_response *out)
{
	ju_err e;
	const char *model_name = NULL;
	if (ju_get_str(c->json, "model", 0, &model_name, NULL, &e) ||
	    ju_get_u32(c->json, "k", 10, 1, c->ctx->limits.max_k, k, &e) ||
	    ju_get_u32(c->json, "restrict_vocab", 0, 0, UINT32_MAX, restrict_vocab, &e)) {
		api_error_ju(out, &e);
		return -1;
	}
	*enc = api_pick_model(c->ctx, model_name, out);
	return *enc ? 0 : -1;
}

void api_h_words_neighbors(api_call *c, api_response *out)
{
	static const char *const keys[] = {"word", "text", "vector", "k", "restrict_vocab",
					   "model", NULL};
	ju_err e;
	const es_encoder *enc;
	uint32_t k, rv;
	if (ju_check_keys(c->json, keys, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	if (common_opts(c, &enc, &k, &rv, out))
		return;
	uint32_t dim = es_encoder_dim(enc);
	float *q = malloc(dim * sizeof *q);
	if (!q) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	json_t *wv = json_object_get(c->json, "word"), *tv = json_object_get(c->json, "text"),
	       *vv = json_object_get(c->json, "vector");
	term self = {0};
	size_t nself = 0;
	if ((wv != NULL) + (tv != NULL) + (vv != NULL) != 1) {
		api_error(out, 400, NULL, "invalid_request",
			  "send exactly one of 'word', 'text' or 'vector'");
		goto out;
	}
	if (wv) {
		if (!json_is_string(wv)) {
			api_error(out, 400, "word", "invalid_type", "'word' must be a string");
			goto out;
		}
		self.word = json_string_value(wv);
		self.len = json_string_length(wv);
		nself = 1;
		if (word_vec(enc, self.word, self.len, q, "word", out))
			goto out;
	} else if (tv) {
		if (!json_is_string(tv)) {
			api_error(out, 400, "text", "invalid_type", "'text' must be a string");
			goto out;
		}
		const char *t = json_string_value(tv);
		size_t len = json_string_length(tv);
		if (api_encode_texts(c->ctx, enc, &t, &len, 1, "text", q, NULL, out))
			goto out;
	} else {
		if (ju_vector(vv, dim, q, "vector", &e)) {
			api_error_ju(out, &e);
			goto out;
		}
		normalize(q, dim);
	}
	json_t *res = rank_vocab(c->ctx, enc, q, &self, nself, 0, k, rv, out);
	if (res)
		api_ok(out, 200, json_pack("{s:o, s:s}", "result", res, "model",
					   es_encoder_name(enc)));
out:
	free(q);
}

/* positive/negative lists: strings or {"word": w, "weight": x}. */
static int parse_words(const json_t *arr, const char *name, float sign,
		       term *terms, size_t *n, api_response *out)
{
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		api_error(out, 400, name, "invalid_type", "'%s' must be an array of words", name);
		return -1;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);
		if (*n >= MAX_TERMS) {
			api_error(out, 422, name, "too_many_terms", "at most %d words in total",
				  MAX_TERMS);
			return -1;
		}
		term *t = &terms[*n];
		t->weight = sign;
		if (json_is_object(v)) {
			json_t *w = json_object_get(v, "word"), *wt = json_object_get(v, "weight");
			if (!json_is_string(w) || (wt && !json_is_number(wt))) {
				api_error(out, 400, name, "invalid_type",
					  "'%s[%zu]' must be a word or {\"word\": ..., \"weight\": number}",
					  name, i);
				return -1;
			}
			v = w;
			if (wt)
				t->weight = sign * (float)json_number_value(wt);
			if (!isfinite(t->weight)) {
				api_error(out, 422, name, "not_finite", "weight is not finite");
				return -1;
			}
		}
		if (!json_is_string(v)) {
			api_error(out, 400, name, "invalid_type", "'%s[%zu]' must be a string", name, i);
			return -1;
		}
		t->word = json_string_value(v);
		t->len = json_string_length(v);
		(*n)++;
	}
	return 0;
}

void api_h_words_analogy(api_call *c, api_response *out)
{
	static const char *const keys[] = {"positive", "negative", "k", "method",
					   "restrict_vocab", "model", NULL};
	ju_err e;
	const es_encoder *enc;
	uint32_t k, rv;
	const char *method = NULL;
	if (ju_check_keys(c->json, keys, NULL, &e) ||
	    ju_get_str(c->json, "method", 0, &method, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	int cosmul = 0;
	if (method && strcasecmp(method, "3cosmul") == 0)
		cosmul = 1;
	else if (method && strcasecmp(method, "3cosadd") != 0) {
		api_error(out, 422, "method", "invalid_value",
			  "'method' must be '3cosadd' or '3cosmul' (got '%s')", method);
		return;
	}
	if (common_opts(c, &enc, &k, &rv, out))
		return;
	term terms[MAX_TERMS];
	size_t n = 0;
	if (parse_words(json_object_get(c->json, "positive"), "positive", 1.0f, terms, &n, out) ||
	    parse_words(json_object_get(c->json, "negative"), "negative", -1.0f, terms, &n, out))
		return;
	if (n == 0) {
		api_error(out, 422, "positive", "empty_input",
			  "send at least one word in 'positive' or 'negative'");
		return;
	}
	uint32_t dim = es_encoder_dim(enc);
	float *buf = calloc((n + 1) * dim, sizeof *buf);
	if (!buf) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	float *q = buf + n * dim;
	for (size_t i = 0; i < n; i++) {
		terms[i].vec = buf + i * dim;
		const char *param = terms[i].weight >= 0 ? "positive" : "negative";
		if (word_vec(enc, terms[i].word, terms[i].len, terms[i].vec, param, out))
			goto out;
		normalize(terms[i].vec, dim);
		simd_get()->axpy(terms[i].weight, terms[i].vec, q, dim);
	}
	normalize(q, dim);
	json_t *res = rank_vocab(c->ctx, enc, q, terms, n, cosmul, k, rv, out);
	if (res)
		api_ok(out, 200, json_pack("{s:o, s:s}", "result", res, "model",
					   es_encoder_name(enc)));
out:
	free(buf);
}

void api_h_arithmetic(api_call *c, api_response *out)
{
	static const char *const keys[] = {"terms", "normalize", "k", "restrict_vocab",
					   "collection", "with_vector", "model", NULL};
	static const char *const tkeys[] = {"word", "text", "vector", "weight", NULL};
	ju_err e;
	const char *model_name = NULL, *coll = NULL;
	int norm = 1, with_vec = 1;
	uint32_t k = 0, rv = 0;
	if (ju_check_keys(c->json, keys, NULL, &e) ||
	    ju_get_str(c->json, "model", 0, &model_name, NULL, &e) ||
	    ju_get_str(c->json, "collection", 0, &coll, NULL, &e) ||
	    ju_get_bool(c->json, "normalize", 1, &norm, &e) ||
	    ju_get_bool(c->json, "with_vector", 1, &with_vec, &e) ||
	    ju_get_u32(c->json, "k", 0, 0, c->ctx->limits.max_k, &k, &e) ||
	    ju_get_u32(c->json, "restrict_vocab", 0, 0, UINT32_MAX, &rv, &e)) {
		api_error_ju(out, &e);
		return;
	}
	const es_encoder *enc = api_pick_model(c->ctx, model_name, out);
	if (!enc)
		return;
	es_collection *col = NULL;
	uint32_t dim = es_encoder_dim(enc);
	if (coll) {
		es_error err;
		es_error_clear(&err);
		int rc = es_registry_get(c->ctx->reg, coll, &col, &err);
		if (rc) {
			api_error_es(out, rc, &err, "collection");
			return;
		}
		dim = es_collection_get_params(col)->dim;
	}
	json_t *arr = json_object_get(c->json, "terms");
	float *buf = NULL;
	term terms[MAX_TERMS];
	size_t nterms = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		api_error(out, arr ? 422 : 400, "terms", arr ? "empty_input" : "missing_field",
			  "'terms' must be a non-empty array of {word|text|vector, weight}");
		goto out;
	}
	if (json_array_size(arr) > MAX_TERMS) {
		api_error(out, 422, "terms", "too_many_terms", "at most %d terms", MAX_TERMS);
		goto out;
	}
	buf = calloc(2 * dim, sizeof *buf);
	if (!buf) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		goto out;
	}
	float *sum = buf, *tmp = buf + dim;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *t = json_array_get(arr, i);
		char param[48];
		snprintf(param, sizeof param, "terms[%zu]", i);
		if (!json_is_object(t)) {
			api_error(out, 400, param, "invalid_type", "'%s' must be an object", param);
			goto out;
		}
		if (ju_check_keys(t, tkeys, param, &e)) {
			api_error_ju(out, &e);
			goto out;
		}
		float w = 1.0f;
		int has;
		if (ju_get_float(t, "weight", &has, &w, &e)) {
			api_error_ju(out, &e);
			goto out;
		}
		if (!has)
			w = 1.0f;
		json_t *wv = json_object_get(t, "word"), *tv = json_object_get(t, "text"),
		       *vv = json_object_get(t, "vector");
		if ((wv != NULL) + (tv != NULL) + (vv != NULL) != 1) {
			api_error(out, 400, param, "invalid_request",
				  "'%s' needs exactly one of 'word', 'text' or 'vector'", param);
			goto out;
		}
		if ((wv || tv) && es_encoder_dim(enc) != dim) {
			api_error(out, 422, param, "dimension_mismatch",
				  "collection '%s' has dimension %u but the model makes %u; use vectors",
				  coll, dim, es_encoder_dim(enc));
			goto out;
		}
		if (wv) {
			if (!json_is_string(wv)) {
				api_error(out, 400, param, "invalid_type", "'%s.word' must be a string", param);
				goto out;
			}
			if (word_vec(enc, json_string_value(wv), json_string_length(wv), tmp, param, out))
				goto out;
			if (nterms < MAX_TERMS) {
				terms[nterms].word = json_string_value(wv);
				terms[nterms].len = json_string_length(wv);
				terms[nterms].weight = w;
				terms[nterms].vec = NULL;
				nterms++;
			}
		} else if (tv) {
			if (!json_is_string(tv)) {
				api_error(out, 400, param, "invalid_type", "'%s.text' must be a string", param);
				goto out;
			}
			const char *s = json_string_value(tv);
			size_t len = json_string_length(tv);
			if (api_encode_texts(c->ctx, enc, &s, &len, 1, param, tmp, NULL, out))
				goto out;
		} else {
			char vp[64];
			snprintf(vp, sizeof vp, "%s.vector", param);
			if (ju_vector(vv, dim, tmp, vp, &e)) {
				api_error_ju(out, &e);
				goto out;
			}
		}
		simd_get()->axpy(w, tmp, sum, dim);
	}
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(sum[i])) {
			api_error(out, 422, "terms", "not_finite", "the weighted sum overflowed");
			goto out;
		}
	if (norm)
		normalize(sum, dim);
	json_t *result = json_object();
	if (with_vec)
		json_object_set_new(result, "vector", ju_float_array(sum, dim));
	if (k && col) {
		es_search_req rq;
		memset(&rq, 0, sizeof rq);
		rq.query = sum;
		rq.k = k;
		rq.with_payload = 1;
		es_point_out *hits;
		size_t nh;
		es_error err;
		es_error_clear(&err);
		int rc = es_collection_search(col, &rq, &hits, &nh, &err);
		if (rc) {
			json_decref(result);
			api_error_es(out, rc, &err, NULL);
			goto out;
		}
		json_t *nb = json_array();
		for (size_t i = 0; i < nh; i++)
			json_array_append_new(nb, api_point_json(&hits[i], dim, 1));
		es_hits_free(hits, nh);
		json_object_set_new(result, "neighbors", nb);
	} else if (k) {
		float *q = malloc(dim * sizeof *q);
		if (!q) {
			json_decref(result);
			api_error(out, 503, NULL, "out_of_memory", "out of memory");
			goto out;
		}
		memcpy(q, sum, dim * sizeof *q);
		normalize(q, dim);
		json_t *nb = rank_vocab(c->ctx, enc, q, terms, nterms, 0, k, rv, out);
		free(q);
		if (!nb) {
			json_decref(result);
			goto out;
		}
		json_object_set_new(result, "neighbors", nb);
	}
	api_ok(out, 200, json_pack("{s:o, s:s}", "result", result, "model", es_encoder_name(enc)));
out:
	free(buf);
	es_collection_release(col);
}
