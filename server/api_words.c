/*
 * api_words.c — word arithmetic: POST /v1/words/neighbors,
 * /v1/words/analogy, /v1/arithmetic, over core/arith (gensim KeyedVectors
 * semantics: most_similar = 3CosAdd, most_similar_cosmul = 3CosMul, exact
 * top-k over the encoder's unit-vector vocabulary, query words that are in
 * the vocabulary never returned).  This file only turns JSON into arith
 * calls and results into JSON.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "arith.h"
#include "simd.h"

#define MAX_TERMS 64

typedef struct term {
	const char *word;  /* NULL for text/vector terms */
	size_t len;
	float weight;
	float *vec;        /* unit vector (into a shared buffer) */
} term;

/* The encoder's vocabulary: its words and their unit vectors. */
typedef struct vocab_view {
	const char *const *words;
	const float *unit;
	size_t count;
} vocab_view;

/* Fills *v, or returns -1 with the error written to out. */
static int vocab_or_error(const es_encoder *enc, vocab_view *v, api_response *out)
{
	es_error err;
	es_error_clear(&err);
	int rc = es_encoder_vocab(enc, &v->words, &v->unit, &v->count, &err);
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		return -1;
	}
	return 0;
}

/* Results as [{word, score}] (or NULL with out filled). */
static json_t *scores_json(const es_encoder *enc, const es_word_score *ws, size_t n,
			   api_response *out)
{
	vocab_view v;
	if (vocab_or_error(enc, &v, out))
		return NULL;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		if (ws[i].id < v.count)
			json_array_append_new(arr, json_pack("{s:s, s:f}", "word", v.words[ws[i].id],
							     "score", (double)ws[i].score));
	return arr;
}

/* Top k vocabulary words by cosine to the vector q (normalised here),
 * excluding the vocabulary ids of the given words. */
static json_t *vector_neighbors(const es_encoder *enc, float *q, const term *terms,
				size_t nterms, uint32_t k, size_t restrict_vocab,
				api_response *out)
{
	vocab_view v;
	if (vocab_or_error(enc, &v, out))
		return NULL;
	if (restrict_vocab && restrict_vocab < v.count)
		v.count = restrict_vocab;
	uint32_t excl[MAX_TERMS];
	size_t nexcl = 0;
	for (size_t i = 0; i < nterms; i++) {
		int64_t id = terms[i].word ? es_arith_word_id(enc, terms[i].word, terms[i].len) : -1;
		if (id >= 0)
			excl[nexcl++] = (uint32_t)id;
	}
	es_word_score *ws = malloc(k * sizeof *ws);
	if (!ws) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return NULL;
	}
	uint32_t dim = es_encoder_dim(enc);
	simd_normalize(q, dim);
	size_t n = es_arith_topk(v.unit, v.count, dim, q, k, excl, nexcl, ws);
	json_t *res = scores_json(enc, ws, n, out);
	free(ws);
	return res;
}

/* Top k neighbours of one word by meaning (es_arith_word_neighbors). */
static json_t *word_neighbors(const es_encoder *enc, const char *w, size_t len, uint32_t k,
			      size_t restrict_vocab, api_response *out)
{
	es_word_score *ws = malloc(k * sizeof *ws);
	if (!ws) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return NULL;
	}
	es_error err;
	es_error_clear(&err);
	size_t n = 0;
	int rc = es_arith_word_neighbors(enc, w, len, restrict_vocab, k, ws, &n, &err);
	json_t *res = NULL;
	if (rc)
		api_error_es(out, rc, &err, "word");
	else
		res = scores_json(enc, ws, n, out);
	free(ws);
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
					   "model", "score", NULL};
	ju_err e;
	const es_encoder *enc;
	uint32_t k, rv;
	if (ju_check_keys(c->json, keys, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	if (common_opts(c, &enc, &k, &rv, out))
		return;
	/* a word's neighbours by meaning (shared n-grams left out of the
	 * score, core/arith.h) unless "score": "cosine" asks for the plain
	 * cosine; text and vector queries have no spelling: plain cosine */
	const char *score = "meaning";
	if (ju_get_str(c->json, "score", 0, &score, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	if (!score) /* absent or null */
		score = "meaning";
	if (strcmp(score, "meaning") && strcmp(score, "cosine")) {
		api_error(out, 422, "score", "invalid_value",
			  "'score' must be \"meaning\" or \"cosine\"");
		return;
	}
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
		if (!strcmp(score, "meaning")) {
			json_t *res = word_neighbors(enc, self.word, self.len, k, rv, out);
			if (res)
				api_ok(out, 200, json_pack("{s:o, s:s}", "result", res, "model",
							   es_encoder_name(enc)));
			goto out;
		}
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
		simd_normalize(q, dim);
	}
	json_t *res = vector_neighbors(enc, q, &self, nself, k, rv, out);
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
	es_analogy_method am = ES_ANALOGY_3COSADD;
	if (method) {
		int m = es_analogy_method_parse(method);
		if (m < 0) {
			api_error(out, 422, "method", "invalid_value",
				  "'method' must be '3cosadd' or '3cosmul' (got '%s')", method);
			return;
		}
		am = (es_analogy_method)m;
	}
	if (common_opts(c, &enc, &k, &rv, out))
		return;
	term terms[MAX_TERMS];
	size_t n = 0, npos;
	if (parse_words(json_object_get(c->json, "positive"), "positive", 1.0f, terms, &n, out))
		return;
	npos = n;
	if (parse_words(json_object_get(c->json, "negative"), "negative", -1.0f, terms, &n, out))
		return;
	if (npos == 0) {
		api_error(out, 422, "positive", "empty_input",
			  "send at least one word in 'positive'");
		return;
	}
	uint32_t dim = es_encoder_dim(enc);
	es_arith_term at[MAX_TERMS];
	float *scratch = malloc(dim * sizeof *scratch);
	es_word_score *ws = malloc(k * sizeof *ws);
	if (!scratch || !ws) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		/* a clear 422 naming the word before arith runs */
		if (word_vec(enc, terms[i].word, terms[i].len, scratch,
			     i < npos ? "positive" : "negative", out))
			goto out;
		at[i].word = terms[i].word;
		at[i].len = terms[i].len;
		at[i].vec = NULL;
		at[i].weight = fabsf(terms[i].weight);
		if (at[i].weight == 0) {
			api_error(out, 422, i < npos ? "positive" : "negative", "invalid_value",
				  "a weight of 0 is not allowed");
			goto out;
		}
	}
	size_t nout = 0;
	es_error err;
	es_error_clear(&err);
	int rc = es_arith_most_similar(enc, at, npos, at + npos, n - npos, am, rv, k, ws,
				       &nout, &err);
	if (rc) {
		api_error_es(out, rc, &err, rc == ES_EINVAL ? "method" : NULL);
		goto out;
	}
	json_t *res = scores_json(enc, ws, nout, out);
	if (res)
		api_ok(out, 200, json_pack("{s:o, s:s}", "result", res, "model",
					   es_encoder_name(enc)));
out:
	free(scratch);
	free(ws);
}

/* One term of /v1/arithmetic, terms[i] = t: its vector (a word's, a text's
 * encoding, or given) times its weight, added to sum (tmp: dim floats of
 * scratch).  A word term is also recorded in words[*nwords], so that the
 * vocabulary search leaves it out.  0, or -1 with the error in out. */
static int add_term(api_call *c, const es_encoder *enc, json_t *t, size_t i,
		    uint32_t dim, const char *coll, float *sum, float *tmp,
		    term *words, size_t *nwords, api_response *out)
{
	static const char *const tkeys[] = {"word", "text", "vector", "weight", NULL};
	ju_err e;
	char param[48];
	if (api_array_object(t, "terms", i, tkeys, param, sizeof param, out))
		return -1;
	float w = 1.0f;
	int has;
	if (ju_get_float(t, "weight", &has, &w, &e)) {
		api_error_ju(out, &e);
		return -1;
	}
	if (!has)
		w = 1.0f;
	json_t *wv = json_object_get(t, "word"), *tv = json_object_get(t, "text"),
	       *vv = json_object_get(t, "vector");
	if ((wv != NULL) + (tv != NULL) + (vv != NULL) != 1) {
		api_error(out, 400, param, "invalid_request",
			  "'%s' needs exactly one of 'word', 'text' or 'vector'", param);
		return -1;
	}
	if ((wv || tv) && es_encoder_dim(enc) != dim) {
		api_error(out, 422, param, "dimension_mismatch",
			  "collection '%s' has dimension %u but the model makes %u; use vectors",
			  coll, dim, es_encoder_dim(enc));
		return -1;
	}
	if (wv) {
		if (!json_is_string(wv)) {
			api_error(out, 400, param, "invalid_type", "'%s.word' must be a string", param);
			return -1;
		}
		if (word_vec(enc, json_string_value(wv), json_string_length(wv), tmp, param, out))
			return -1;
		if (*nwords < MAX_TERMS) {
			words[*nwords].word = json_string_value(wv);
			words[*nwords].len = json_string_length(wv);
			words[*nwords].weight = w;
			words[*nwords].vec = NULL;
			(*nwords)++;
		}
	} else if (tv) {
		if (!json_is_string(tv)) {
			api_error(out, 400, param, "invalid_type", "'%s.text' must be a string", param);
			return -1;
		}
		const char *s = json_string_value(tv);
		size_t len = json_string_length(tv);
		if (api_encode_texts(c->ctx, enc, &s, &len, 1, param, tmp, NULL, out))
			return -1;
	} else {
		char vp[64];
		snprintf(vp, sizeof vp, "%s.vector", param);
		if (ju_vector(vv, dim, tmp, vp, &e)) {
			api_error_ju(out, &e);
			return -1;
		}
	}
	simd_get()->axpy(w, tmp, sum, dim);
	return 0;
}

/* The k nearest neighbours of sum for /v1/arithmetic: the collection's
 * points when col is set, else the model's vocabulary without the query
 * words.  A new JSON array, or NULL with the error in out. */
static json_t *arith_neighbors(const es_encoder *enc, es_collection *col,
			       const float *sum, uint32_t dim, uint32_t k, uint32_t rv,
			       const term *words, size_t nwords, api_response *out)
{
	if (col) {
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
			api_error_es(out, rc, &err, NULL);
			return NULL;
		}
		json_t *nb = json_array();
		for (size_t i = 0; i < nh; i++)
			json_array_append_new(nb, api_point_json(&hits[i], dim, 1));
		es_hits_free(hits, nh);
		return nb;
	}
	float *q = malloc(dim * sizeof *q);
	if (!q) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return NULL;
	}
	memcpy(q, sum, dim * sizeof *q);
	simd_normalize(q, dim);
	json_t *nb = vector_neighbors(enc, q, words, nwords, k, rv, out);
	free(q);
	return nb;
}

/* POST /v1/arithmetic: 1. options, 2. the model and the collection, 3. the
 * weighted sum of the terms, 4. its neighbours. */
void api_h_arithmetic(api_call *c, api_response *out)
{
	static const char *const keys[] = {"terms", "normalize", "k", "restrict_vocab",
					   "collection", "with_vector", "model", NULL};
	/* 1. options */
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
	/* 2. the model, and the collection whose dimension the sum takes */
	const es_encoder *enc = api_pick_model(c->ctx, model_name, out);
	if (!enc)
		return;
	es_collection *col = NULL;
	uint32_t dim = es_encoder_dim(enc);
	if (coll) {
		col = api_get_collection(c, coll, "collection", out);
		if (!col)
			return;
		dim = es_collection_get_params(col)->dim;
	}
	/* 3. the weighted sum */
	json_t *arr = json_object_get(c->json, "terms");
	float *buf = NULL;
	term words[MAX_TERMS];
	size_t nwords = 0;
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
	for (size_t i = 0; i < json_array_size(arr); i++)
		if (add_term(c, enc, json_array_get(arr, i), i, dim, coll, sum, tmp, words,
			     &nwords, out))
			goto out;
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(sum[i])) {
			api_error(out, 422, "terms", "not_finite", "the weighted sum overflowed");
			goto out;
		}
	if (norm)
		simd_normalize(sum, dim);
	/* 4. the result, with the neighbours when k > 0 */
	json_t *result = json_object();
	if (with_vec)
		json_object_set_new(result, "vector", ju_float_array(sum, dim));
	if (k) {
		json_t *nb = arith_neighbors(enc, col, sum, dim, k, rv, words, nwords, out);
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
