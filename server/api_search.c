/*
 * api_search.c — POST /v1/collections/{name}/search, single and batch
 * ({"searches": [...]}), and the payload filter.
 *
 * Filter: see filter.h (shared with the Qdrant dialect).  Filters run
 * inside the HNSW search (hnsw filter callback) on payloads parsed once at
 * upsert (api_payload_hooks), so a search never parses JSON per candidate.
 * The same filter runs inside the lexical (BM25) search.
 *
 * Modes: "dense" (HNSW over the vectors), "lexical" (BM25 over the texts),
 * "hybrid" (both lists fused, "fusion": {"method": "rrf" | "weighted",
 * "alpha", "rrf_k"}).  A text query defaults to ES_TEXT_MODE_DEFAULT with
 * ES_FUSION_DEFAULT at ES_FUSION_ALPHA_DEFAULT over
 * ES_HYBRID_CANDIDATES_DEFAULT candidates per list (index/collection.h),
 * chosen by measurement on CISI
 * (bench/RESULTS.md: the best nDCG@10 of dense, lexical, RRF and weighted
 * alphas); "feedback" (parse_feedback) is RM3 on the lexical list, on by
 * default in hybrid; vector and id queries are dense only.  Lexical and hybrid hits carry "scores": {"dense", "lexical"} with
 * each list's own score where the point was in that list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "filter.h"
#include "mmr.h"


/* One hit as JSON text.  Payloads are stored as compact JSON (written by
 * ju_dump at upsert), so they are copied through without re-parsing. */
static void put_hit(ju_buf *b, const es_point_out *h, uint32_t dim, int scores)
{
	char num[32];
	ju_buf_str(b, "{\"id\":");
	if (h->id.is_str) {
		ju_buf_json_stringn(b, h->id.str, h->id.len);
	} else {
		ju_buf_u64(b, h->id.num);
	}
	ju_buf_str(b, ",\"score\":");
	ju_buf_put(b, num, ju_fmt_float(h->score, num));
	if (scores) {
		ju_buf_str(b, ",\"scores\":{");
		if (h->has_dense) {
			ju_buf_str(b, "\"dense\":");
			ju_buf_put(b, num, ju_fmt_float(h->dense_score, num));
		}
		if (h->has_lexical) {
			ju_buf_str(b, h->has_dense ? ",\"lexical\":" : "\"lexical\":");
			ju_buf_put(b, num, ju_fmt_float(h->lexical_score, num));
		}
		ju_buf_put(b, "}", 1);
	}
	if (h->payload) {
		ju_buf_str(b, ",\"payload\":");
		ju_buf_put(b, h->payload, h->payload_len);
	}
	if (h->vector) {
		ju_buf_str(b, ",\"vector\":");
		ju_buf_floats(b, h->vector, dim);
	}
	ju_buf_put(b, "}", 1);
}

/* "mode" and "fusion" of a search into rq; 0 or -1 with e filled. */
static int parse_mode(const json_t *q, int is_text, es_search_req *rq, ju_err *e)
{
	const char *mode = NULL;
	if (ju_get_str(q, "mode", 0, &mode, NULL, e))
		return -1;
	rq->mode = is_text ? ES_TEXT_MODE_DEFAULT : ES_SEARCH_DENSE;
	if (mode && strcmp(mode, "dense") == 0)
		rq->mode = ES_SEARCH_DENSE;
	else if (mode && strcmp(mode, "lexical") == 0)
		rq->mode = ES_SEARCH_LEXICAL;
	else if (mode && strcmp(mode, "hybrid") == 0)
		rq->mode = ES_SEARCH_HYBRID;
	else if (mode)
		return ju_fail(e, 422, "mode", "invalid_value",
			       "'mode' must be \"dense\", \"lexical\" or \"hybrid\" (got '%s')",
			       mode);
	if (rq->mode != ES_SEARCH_DENSE && !is_text)
		return ju_fail(e, 422, "mode", "invalid_value",
			       "'mode' \"%s\" searches by words: it needs a 'text' query", mode);
	rq->fusion = ES_FUSION_DEFAULT;
	rq->alpha = ES_FUSION_ALPHA_DEFAULT;
	rq->rrf_k = ES_RRF_K_DEFAULT;
	rq->candidates = ES_HYBRID_CANDIDATES_DEFAULT;
	const json_t *f = json_object_get(q, "fusion");
	if (!f || json_is_null(f))
		return 0;
	static const char *const fkeys[] = {"method", "alpha", "rrf_k", "candidates", NULL};
	if (!json_is_object(f))
		return ju_fail(e, 400, "fusion", "invalid_type",
			       "'fusion' must be {\"method\", \"alpha\", \"rrf_k\", \"candidates\"}");
	const char *method = NULL;
	int has;
	float alpha;
	if (ju_check_keys(f, fkeys, "fusion", e) ||
	    ju_get_str(f, "method", 0, &method, NULL, e) ||
	    ju_get_float(f, "alpha", &has, &alpha, e) ||
	    ju_get_u32(f, "rrf_k", ES_RRF_K_DEFAULT, 1, 100000, &rq->rrf_k, e) ||
	    ju_get_u32(f, "candidates", ES_HYBRID_CANDIDATES_DEFAULT, 1,
		       ES_HYBRID_CANDIDATES_MAX, &rq->candidates, e))
		return -1;
	if (method && strcmp(method, "weighted") == 0)
		rq->fusion = ES_FUSION_WEIGHTED;
	else if (method && strcmp(method, "rrf") == 0)
		rq->fusion = ES_FUSION_RRF;
	else if (method)
		return ju_fail(e, 422, "fusion.method", "invalid_value",
			       "'fusion.method' must be \"rrf\" or \"weighted\" (got '%s')", method);
	if (has) {
		if (!(alpha >= 0 && alpha <= 1))
			return ju_fail(e, 422, "fusion.alpha", "invalid_value",
				       "'fusion.alpha' must be between 0 and 1");
		rq->alpha = alpha;
	}
	return 0;
}

/* "feedback": pseudo-relevance feedback on the lexical list (lexical.h,
 * RM3): true (the defaults), false (none) or {"docs", "terms",
 * "query_weight"} (each missing field its default; docs 0: none).  Absent:
 * on in hybrid mode, off in lexical (es_search_feedback_default). */
static int parse_feedback(const json_t *q, es_search_req *rq, ju_err *e)
{
	static const char *const keys[] = {"docs", "terms", "query_weight", NULL};
	es_search_feedback_default(rq->mode, &rq->feedback);
	const json_t *f = json_object_get(q, "feedback");
	if (!f || json_is_null(f))
		return 0;
	if (rq->mode == ES_SEARCH_DENSE)
		return ju_fail(e, 422, "feedback", "invalid_value",
			       "'feedback' applies to the lexical list: mode \"lexical\" or \"hybrid\"");
	es_lexical_feedback_default(&rq->feedback);
	if (json_is_boolean(f)) {
		if (!json_is_true(f))
			rq->feedback.docs = 0;
		return 0;
	}
	if (!json_is_object(f))
		return ju_fail(e, 400, "feedback", "invalid_type",
			       "'feedback' must be true, false or {\"docs\", \"terms\", \"query_weight\"}");
	int has;
	float w;
	if (ju_check_keys(f, keys, "feedback", e) ||
	    ju_get_u32(f, "docs", ES_LEXICAL_FEEDBACK_DOCS, 0, ES_LEXICAL_FEEDBACK_MAX,
		       &rq->feedback.docs, e) ||
	    ju_get_u32(f, "terms", ES_LEXICAL_FEEDBACK_TERMS, 1, ES_LEXICAL_FEEDBACK_MAX,
		       &rq->feedback.terms, e) ||
	    ju_get_float(f, "query_weight", &has, &w, e))
		return -1;
	if (has) {
		if (!(w >= 0 && w <= 1))
			return ju_fail(e, 422, "feedback.query_weight", "invalid_value",
				       "'feedback.query_weight' must be between 0 and 1");
		rq->feedback.query_weight = w;
	}
	return 0;
}

/* "mmr": {"diversity": 0..1, "candidates_limit": n}: the search fetches
 * max(k, candidates_limit) candidates with their vectors and api_mmr keeps k
 * of them (mmr.h).  Dense searches only. */
typedef struct mmr_req {
	int on;
	uint32_t k;         /* the k asked for */
	float diversity;
	int with_vector;    /* what the caller asked for */
} mmr_req;

static int parse_mmr(const json_t *q, es_search_req *rq, const api_limits *lim, mmr_req *m,
		     ju_err *e)
{
	static const char *const keys[] = {"diversity", "candidates_limit", NULL};
	const json_t *j = json_object_get(q, "mmr");
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_object(j))
		return ju_fail(e, 400, "mmr", "invalid_type",
			       "'mmr' must be {\"diversity\": 0..1, \"candidates_limit\": n}");
	int has;
	float div;
	uint32_t cand;
	if (ju_check_keys(j, keys, "mmr", e) || ju_get_float(j, "diversity", &has, &div, e) ||
	    ju_get_u32(j, "candidates_limit", rq->k, 1, lim->max_k, &cand, e))
		return -1;
	if (has && !(div >= 0 && div <= 1))
		return ju_fail(e, 422, "mmr.diversity", "invalid_value",
			       "'mmr.diversity' must be between 0 and 1");
	if (rq->mode != ES_SEARCH_DENSE)
		return ju_fail(e, 422, "mmr", "invalid_value",
			       "'mmr' reranks a dense search: use a vector or id query, or "
			       "\"mode\": \"dense\" with a text");
	m->on = 1;
	m->k = rq->k;
	m->diversity = has ? div : API_MMR_DIVERSITY_DEFAULT;
	m->with_vector = rq->with_vector;
	rq->k = cand > rq->k ? cand : rq->k;
	rq->with_vector = 1;
	return 0;
}

/* The query's own fields (k, ef, score_threshold, filter, with_*, mode,
 * fusion, feedback, mmr) into rq, *flt and *mmr; *is_text: a text query.
 * 0, or -1 with out filled. */
static int parse_query(api_call *c, const json_t *q, const char *prefix, es_search_req *rq,
		       api_filter **flt, mmr_req *mmr, int *is_text, api_response *out)
{
	static const char *const keys[] = {"text", "vector", "id", "k", "ef",
					   "score_threshold", "filter", "with_payload",
					   "with_vector", "mode", "fusion", "feedback", "mmr",
					   NULL};
	const api_limits *lim = &c->ctx->limits;
	ju_err e;
	e.status = 0;
	if (!json_is_object(q)) {
		api_error(out, 400, prefix, "invalid_type", "each search must be an object");
		return -1;
	}
	if (ju_check_keys(q, keys, prefix, &e) ||
	    ju_get_u32(q, "k", 10, 1, lim->max_k, &rq->k, &e) ||
	    ju_get_u32(q, "ef", 0, 1, lim->max_ef, &rq->ef, &e) ||
	    ju_get_float(q, "score_threshold", &rq->has_threshold, &rq->threshold, &e) ||
	    ju_get_bool(q, "with_payload", 1, &rq->with_payload, &e) ||
	    ju_get_bool(q, "with_vector", 0, &rq->with_vector, &e) ||
	    api_filter_parse(json_object_get(q, "filter"), "filter", flt, &e))
		goto bad;
	if (*flt) {
		rq->filter = api_filter_fn;
		rq->filter_ctx = *flt;
		rq->plan = api_filter_plan(*flt);
	}
	json_t *tv = json_object_get(q, "text"), *vv = json_object_get(q, "vector"),
	       *iv = json_object_get(q, "id");
	int nq = (tv && !json_is_null(tv)) + (vv && !json_is_null(vv)) + (iv && !json_is_null(iv));
	if (nq != 1) {
		api_error(out, 400, prefix, "invalid_request",
			  "a search needs exactly one of 'text', 'vector' or 'id'");
		return -1;
	}
	*is_text = tv && !json_is_null(tv);
	if (parse_mode(q, *is_text, rq, &e) || parse_feedback(q, rq, &e) ||
	    parse_mmr(q, rq, lim, mmr, &e))
		goto bad;
	return 0;
bad:
	api_error_ju(out, &e);
	return -1;
}

/* The query's text, vector or id into rq (qv: room for the vector, which
 * a text is encoded into unless the search is lexical).  0, or -1 with out
 * filled. */
static int query_input(api_call *c, es_collection *col, const json_t *q, int is_text,
		       es_search_req *rq, float *qv, api_response *out)
{
	uint32_t dim = es_collection_get_params(col)->dim;
	ju_err e;
	e.status = 0;
	if (is_text) {
		json_t *tv = json_object_get(q, "text");
		if (!json_is_string(tv)) {
			api_error(out, 400, "text", "invalid_type", "'text' must be a string");
			return -1;
		}
		const char *t = json_string_value(tv);
		size_t len = json_string_length(tv);
		rq->text = t;
		rq->text_len = len;
		if (rq->mode == ES_SEARCH_LEXICAL)
			return 0;
		const es_encoder *enc = api_collection_model(c->ctx, col, out);
		if (!enc)
			return -1;
		unsigned char empty = 0;
		if (api_encode_texts_empty(c->ctx, enc, &t, &len, 1, "text", qv, &empty, out))
			return -1;
		if (empty && rq->mode == ES_SEARCH_HYBRID)
			rq->query = NULL; /* no word the model knows: lexical alone */
		return 0;
	}
	json_t *vv = json_object_get(q, "vector");
	if (vv && !json_is_null(vv)) {
		if (!ju_vector(vv, dim, qv, "vector", &e))
			return 0;
		api_error_ju(out, &e);
		return -1;
	}
	if (api_point_id(json_object_get(q, "id"), &rq->self, "id", &e)) {
		api_error_ju(out, &e);
		return -1;
	}
	es_error err;
	es_error_clear(&err);
	int rc = es_collection_get_vector(col, &rq->self, qv, &err);
	if (rc) {
		api_error_es(out, rc, &err, "id");
		return -1;
	}
	rq->exclude_self = 1;
	return 0;
}

/* Search, MMR when asked, and the hits as a JSON array into b.  0, or -1
 * with out filled. */
static int search_hits(es_collection *col, const es_search_req *rq, const mmr_req *mmr,
		       ju_buf *b, api_response *out)
{
	const es_collection_params *cp = es_collection_get_params(col);
	es_point_out *hits = NULL;
	size_t nh = 0;
	es_error err;
	es_error_clear(&err);
	int rc = es_collection_search(col, rq, &hits, &nh, &err);
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		return -1;
	}
	if (mmr->on) {
		nh = api_mmr(hits, nh, mmr->k, mmr->diversity, cp->metric, cp->dim);
		for (size_t i = 0; !mmr->with_vector && i < nh; i++) {
			free(hits[i].vector);
			hits[i].vector = NULL;
		}
	}
	ju_buf_put(b, "[", 1);
	for (size_t i = 0; i < nh; i++) {
		if (i)
			ju_buf_put(b, ",", 1);
		put_hit(b, &hits[i], cp->dim, rq->mode != ES_SEARCH_DENSE);
	}
	ju_buf_put(b, "]", 1);
	es_hits_free(hits, nh);
	return 0;
}

/* One query: appends a JSON array of hits to b; -1 with out filled. */
static int run_query(api_call *c, es_collection *col, const json_t *q,
		     const char *prefix, ju_buf *b, api_response *out)
{
	uint32_t dim = es_collection_get_params(col)->dim;
	api_filter *flt = NULL;
	float *qv = malloc(dim * sizeof *qv);
	if (!qv) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return -1;
	}
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.query = qv;
	mmr_req mmr = {0, 0, 0, 0};
	int is_text = 0;
	int res = parse_query(c, q, prefix, &rq, &flt, &mmr, &is_text, out) ||
			  query_input(c, col, q, is_text, &rq, qv, out) ||
			  search_hits(col, &rq, &mmr, b, out)
		  ? -1
		  : 0;
	free(qv);
	api_filter_free(flt);
	return res;
}

void api_h_search(api_call *c, api_response *out)
{
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return;
	json_t *batch = json_object_get(c->json, "searches");
	if (batch) {
		if (json_object_size(c->json) != 1) {
			api_error(out, 400, "searches", "invalid_request",
				  "a batch search body holds only 'searches'");
			goto out;
		}
		if (!json_is_array(batch)) {
			api_error(out, 400, "searches", "invalid_type",
				  "'searches' must be an array of search objects");
			goto out;
		}
		size_t n = json_array_size(batch);
		if (n == 0 || n > c->ctx->limits.max_searches) {
			api_error(out, 422, "searches", "too_many_searches",
				  "'searches' must hold 1..%u searches (got %zu)",
				  c->ctx->limits.max_searches, n);
			goto out;
		}
		ju_buf b = {0};
		ju_buf_str(&b, "{\"result\":[");
		for (size_t i = 0; i < n; i++) {
			char prefix[48];
			snprintf(prefix, sizeof prefix, "searches[%zu]", i);
			if (i)
				ju_buf_put(&b, ",", 1);
			if (run_query(c, col, json_array_get(batch, i), prefix, &b, out)) {
				free(b.s);
				goto out;
			}
		}
		ju_buf_str(&b, "]}");
		api_ok_text(out, &b);
		goto out;
	}
	ju_buf b = {0};
	ju_buf_str(&b, "{\"result\":");
	if (run_query(c, col, c->json, NULL, &b, out)) {
		free(b.s);
		goto out;
	}
	ju_buf_put(&b, "}", 1);
	api_ok_text(out, &b);
out:
	es_collection_release(col);
}
