/*
 * api_qdrant_points.c — Qdrant's point routes: upsert, retrieve, delete,
 * scroll, count, and search (/points/query, the legacy /points/search,
 * and their /batch forms), each translated onto the /v1 handler that does
 * the work (see api_qdrant.h).
 *
 * Request shapes (Qdrant's OpenAPI spec): a point is {"id", "vector",
 * "payload"}; "vector" is a list of floats, a one-entry {"name": [...]}
 * map, or a Document {"text": "..."} which this server embeds with the
 * collection's model (our extension; a point may also carry "text" in
 * place of "vector").  A query is a vector, a point id, {"nearest": ...},
 * or {"text": "..."} (embedded, then searched densely).  Point ids are
 * unsigned integers or UUIDs, normalised by qd_id.
 *
 * Search answers are re-shaped as JSON (offset applied, payload keys
 * selected, Qdrant's "version" added to each hit); bench/http/run.sh
 * measures what that costs against /v1 search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_qdrant.h"
#include "filter.h"
#include "points.h"

/* A Qdrant "vector" value into the /v1 point or query object o: "vector"
 * or "text".  0 or -1 with e filled. */
static int put_vector(const json_t *v, json_t *o, const char *param, ju_err *e)
{
	if (json_is_object(v) && json_object_size(v) == 1 && !json_object_get(v, "text")) {
		/* a named vector: {"name": value}; this server keeps one */
		v = json_object_iter_value(json_object_iter((json_t *)v));
	}
	if (json_is_array(v)) {
		json_object_set(o, "vector", (json_t *)v);
		return 0;
	}
	if (json_is_object(v) && json_is_string(json_object_get(v, "text"))) {
		json_object_set(o, "text", json_object_get(v, "text"));
		return 0;
	}
	return ju_fail(e, 400, param, "invalid_type",
		       "'%s' must be a list of numbers, {\"name\": [numbers]} or a document "
		       "{\"text\": \"...\"} (sparse and multi vectors are not supported)", param);
}

/* One Qdrant point -> a /v1 point (new reference), or NULL with e filled. */
static json_t *v1_point(const json_t *id, const json_t *vec, const json_t *text,
			const json_t *payload, const char *param, ju_err *e)
{
	char pp[96];
	snprintf(pp, sizeof pp, "%s.id", param);
	if (!id)
		return ju_fail(e, 400, pp, "missing_field", "'%s' is required", pp), NULL;
	json_t *nid = qd_id(id, pp, e);
	if (!nid)
		return NULL;
	json_t *o = json_pack("{s:o}", "id", nid);
	if (vec && !json_is_null(vec)) {
		snprintf(pp, sizeof pp, "%s.vector", param);
		if (put_vector(vec, o, pp, e)) {
			json_decref(o);
			return NULL;
		}
	} else if (text && !json_is_null(text)) {
		json_object_set(o, "text", (json_t *)text);
	}
	if (payload && !json_is_null(payload))
		json_object_set(o, "payload", (json_t *)payload);
	return o;
}

/* The points of an upsert, in either of Qdrant's forms ({"points": [...]}
 * or {"batch": {"ids", "vectors", "payloads"}}), as a /v1 upsert body. */
static json_t *upsert_body(const json_t *j, ju_err *e)
{
	json_t *arr = json_array();
	const json_t *pts = json_object_get(j, "points"), *batch = json_object_get(j, "batch");
	char param[48];
	if (json_is_array(pts)) {
		size_t i;
		json_t *p;
		json_array_foreach(pts, i, p) {
			snprintf(param, sizeof param, "points[%zu]", i);
			if (!json_is_object(p)) {
				ju_fail(e, 400, param, "invalid_type", "'%s' must be an object", param);
				goto bad;
			}
			json_t *o = v1_point(json_object_get(p, "id"), json_object_get(p, "vector"),
					     json_object_get(p, "text"), json_object_get(p, "payload"),
					     param, e);
			if (!o)
				goto bad;
			json_array_append_new(arr, o);
		}
	} else if (json_is_object(batch)) {
		const json_t *ids = json_object_get(batch, "ids");
		const json_t *vecs = json_object_get(batch, "vectors");
		const json_t *pls = json_object_get(batch, "payloads");
		if (!json_is_array(ids) || !json_is_array(vecs) ||
		    json_array_size(vecs) != json_array_size(ids) ||
		    (json_is_array(pls) && json_array_size(pls) != json_array_size(ids))) {
			ju_fail(e, 400, "batch", "invalid_type",
				"'batch' must hold 'ids' and 'vectors' (and optionally 'payloads') "
				"as lists of the same length");
			goto bad;
		}
		for (size_t i = 0; i < json_array_size(ids); i++) {
			snprintf(param, sizeof param, "batch[%zu]", i);
			json_t *o = v1_point(json_array_get(ids, i), json_array_get(vecs, i), NULL,
					     json_array_get(pls, i), param, e);
			if (!o)
				goto bad;
			json_array_append_new(arr, o);
		}
	} else {
		ju_fail(e, 400, "points", "missing_field",
			"send 'points': [{\"id\", \"vector\", \"payload\"}] or 'batch': "
			"{\"ids\", \"vectors\", \"payloads\"}");
		goto bad;
	}
	return json_pack("{s:o}", "points", arr);
bad:
	json_decref(arr);
	return NULL;
}

void api_h_qd_points_upsert(api_call *c, api_response *out)
{
	ju_err e;
	json_t *b = upsert_body(c->json, &e);
	if (!b) {
		api_error_ju(out, &e);
		return;
	}
	qd_call(c, api_h_points_upsert, b, out);
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	json_decref(r);
	qd_ok_update(out);
}

/* One point by id text (already normalised) through GET /v1/.../points/{id};
 * the record (new reference), NULL with out holding the error (404 for a
 * missing point). */
static json_t *get_one(api_call *c, const char *id, api_response *out)
{
	api_call sub = *c;
	snprintf(sub.id, sizeof sub.id, "%s", id);
	sub.id_len = strlen(sub.id);
	sub.json = NULL;
	api_h_points_get(&sub, out);
	return qd_take_result(out);
}

void api_h_qd_points_get(api_call *c, api_response *out)
{
	ju_err e;
	char id[64];
	if (qd_id_text(c->id, c->id_len, id, sizeof id, &e)) {
		api_error_ju(out, &e);
		return;
	}
	json_t *rec = get_one(c, id, out);
	if (!rec)
		return;
	api_ok(out, 200, json_pack("{s:o}", "result", rec));
}

/* The ids of array `arr` (request member `name`) in /v1's spelling
 * (qd_id), as a new array; NULL with *e set (the first bad id, or out of
 * memory). */
static json_t *qd_ids(const json_t *arr, const char *name, ju_err *e)
{
	json_t *out = json_array();
	if (!out) {
		ju_fail(e, 503, NULL, "out_of_memory", "out of memory");
		return NULL;
	}
	size_t i;
	json_t *idv;
	json_array_foreach(arr, i, idv) {
		char param[48];
		snprintf(param, sizeof param, "%s[%zu]", name, i);
		json_t *nid = qd_id(idv, param, e);
		if (!nid) {
			json_decref(out);
			return NULL;
		}
		json_array_append_new(out, nid);
	}
	return out;
}

void api_h_qd_points_retrieve(api_call *c, api_response *out)
{
	ju_err e;
	const json_t *ids = json_object_get(c->json, "ids");
	int want_payload, want_vector;
	if (!json_is_array(ids)) {
		api_error(out, 400, "ids", ids ? "invalid_type" : "missing_field",
			  "'ids' must be a list of point ids");
		return;
	}
	if (json_array_size(ids) > c->ctx->limits.max_points) {
		api_error(out, 422, "ids", "too_many_points", "'ids' holds %zu ids; the limit is %u",
			  json_array_size(ids), c->ctx->limits.max_points);
		return;
	}
	const json_t *wp = json_object_get(c->json, "with_payload");
	if (qd_want(wp, 1, "with_payload", &want_payload, &e) ||
	    qd_want(json_object_get(c->json, "with_vector"), 0, "with_vector", &want_vector, &e)) {
		api_error_ju(out, &e);
		return;
	}
	/* one /v1 retrieve-many (api_points_get_many) with the ids normalised:
	 * missing ids are left out, as Qdrant leaves them out */
	json_t *nids = qd_ids(ids, "ids", &e);
	if (!nids) {
		api_error_ju(out, &e);
		return;
	}
	qd_call(c, api_h_points_get_many,
		json_pack("{s:o, s:b, s:b}", "ids", nids, "with_payload", want_payload,
			  "with_vector", want_vector), out);
	json_t *arr = qd_take_result(out);
	if (!arr)
		return;
	if (want_payload)
		qd_select_payload(arr, wp);
	api_ok(out, 200, json_pack("{s:o}", "result", arr));
}

void api_h_qd_points_delete(api_call *c, api_response *out)
{
	ju_err e;
	const json_t *pts = json_object_get(c->json, "points");
	const json_t *flt = json_object_get(c->json, "filter");
	json_t *b;
	if (json_is_array(pts)) {
		json_t *arr = qd_ids(pts, "points", &e);
		if (!arr) {
			api_error_ju(out, &e);
			return;
		}
		b = json_pack("{s:o}", "points", arr);
	} else if (json_is_object(flt)) {
		b = json_pack("{s:O}", "filter", flt);
	} else {
		api_error(out, 400, "points", "missing_field",
			  "send 'points': [ids] or 'filter': {...}");
		return;
	}
	qd_call(c, api_h_points_delete, b, out);
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	json_decref(r);
	qd_ok_update(out);
}

void api_h_qd_points_scroll(api_call *c, api_response *out)
{
	ju_err e;
	const json_t *j = c->json ? c->json : json_null();
	const json_t *wp = json_object_get(j, "with_payload");
	int want_payload, want_vector;
	if (qd_want(wp, 1, "with_payload", &want_payload, &e) ||
	    qd_want(json_object_get(j, "with_vector"), 0, "with_vector", &want_vector, &e)) {
		api_error_ju(out, &e);
		return;
	}
	json_t *b = json_pack("{s:b, s:b}", "with_payload", want_payload, "with_vector",
			      want_vector);
	const json_t *lim = json_object_get(j, "limit"), *off = json_object_get(j, "offset");
	const json_t *flt = json_object_get(j, "filter");
	if (lim && !json_is_null(lim))
		json_object_set(b, "limit", (json_t *)lim);
	if (off && !json_is_null(off)) {
		/* Qdrant's offset is the id to start from; ours is the opaque
		 * cursor of next_page_offset, which clients pass back as is */
		if (!json_is_integer(off)) {
			json_decref(b);
			api_error(out, 400, "offset", "invalid_type",
				  "'offset' must be the 'next_page_offset' of an earlier page");
			return;
		}
		json_object_set(b, "offset", (json_t *)off);
	}
	if (flt && !json_is_null(flt))
		json_object_set(b, "filter", (json_t *)flt);
	const json_t *ob = json_object_get(j, "order_by");
	if (ob && !json_is_null(ob)) /* as /v1: an integer index on the key, or 400 */
		json_object_set(b, "order_by", (json_t *)ob);
	qd_call(c, api_h_points_scroll, b, out);
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	json_t *pts = json_object_get(r, "points");
	if (want_payload)
		qd_select_payload(pts, wp);
	api_ok(out, 200, json_pack("{s:{s:O, s:O}}", "result", "points", pts, "next_page_offset",
				   json_object_get(r, "next_offset")));
	json_decref(r);
}

void api_h_qd_points_count(api_call *c, api_response *out)
{
	api_count_route(c, 1, out);
}

/* ---- payload: set / overwrite / delete keys / clear, by ids or filter --- */

void api_h_qd_payload_set(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_SET, 1, out);
}

void api_h_qd_payload_overwrite(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_OVERWRITE, 1, out);
}

void api_h_qd_payload_delete(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_DELETE, 1, out);
}

void api_h_qd_payload_clear(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_CLEAR, 1, out);
}

/* ---- search ----------------------------------------------------------- */

/* A query's ask for the translation back: offset, the payload selector. */
typedef struct qd_query {
	uint32_t offset;
	const json_t *with_payload; /* borrowed from the request */
} qd_query;

/* The "query" of /points/query (or the "vector" of /points/search when
 * legacy) into the /v1 search object o. */
static int put_query(const json_t *q, json_t *o, int legacy, ju_err *e)
{
	const char *p = legacy ? "vector" : "query";
	if (!q || json_is_null(q))
		return ju_fail(e, 400, p, "missing_field",
			       "'%s' is required (a vector, a point id, {\"nearest\": ...} or "
			       "{\"text\": \"...\"})", p);
	if (legacy) {
		/* a list, {"name", "vector"}, or {"name": [...]} */
		if (json_is_object(q) && json_is_array(json_object_get(q, "vector")))
			q = json_object_get(q, "vector");
		return put_vector(q, o, p, e);
	}
	if (json_is_object(q) && json_object_get(q, "nearest")) {
		/* {"nearest": v, "mmr": {"diversity", "candidates_limit"}}: the
		 * /v1 search's own MMR; Qdrant ignores other keys, so do we */
		const json_t *mmr = json_object_get(q, "mmr");
		if (mmr && !json_is_null(mmr)) {
			if (!json_is_object(mmr))
				return ju_fail(e, 400, "query.mmr", "invalid_type",
					       "'mmr' must be {\"diversity\": 0..1, "
					       "\"candidates_limit\": n}");
			json_t *m = json_object();
			const char *const mk[] = {"diversity", "candidates_limit"};
			for (size_t i = 0; i < 2; i++) {
				json_t *v = json_object_get(mmr, mk[i]);
				if (v && !json_is_null(v))
					json_object_set(m, mk[i], v);
			}
			json_object_set_new(o, "mmr", m);
		}
		q = json_object_get(q, "nearest");
	}
	if (json_is_integer(q) || json_is_string(q)) {
		json_t *id = qd_id(q, p, e);
		if (!id)
			return -1;
		json_object_set_new(o, "id", id);
		return 0;
	}
	if (json_is_object(q) && json_object_size(q) >= 1 && !json_object_get(q, "text")) {
		const char *k = json_object_iter_key(json_object_iter((json_t *)q));
		return ju_fail(e, 400, p, "unsupported",
			       "query '%s' is not supported here: send a vector, a point id, "
			       "{\"nearest\": ...} or {\"text\": \"...\"}", k);
	}
	if (put_vector(q, o, p, e))
		return -1;
	if (json_object_get(o, "text"))
		json_object_set_new(o, "mode", json_string("dense")); /* as Qdrant's inference */
	return 0;
}

/* One Qdrant search (query or legacy) -> the /v1 search object (new
 * reference) and what the answer needs (qq); NULL with e filled. */
static json_t *v1_search(const api_ctx *ctx, const json_t *s, int legacy, qd_query *qq,
			 ju_err *e)
{
	if (!json_is_object(s))
		return ju_fail(e, 400, NULL, "invalid_type", "a search must be an object"), NULL;
	if (!legacy) {
		const json_t *pf = json_object_get(s, "prefetch");
		if (pf && !json_is_null(pf) && !(json_is_array(pf) && json_array_size(pf) == 0))
			return ju_fail(e, 400, "prefetch", "unsupported",
				       "'prefetch' is not supported; for hybrid search send "
				       "{\"text\"} to /v1/collections/{c}/search"), NULL;
		const json_t *lf = json_object_get(s, "lookup_from");
		if (lf && !json_is_null(lf))
			return ju_fail(e, 400, "lookup_from", "unsupported",
				       "'lookup_from' is not supported"), NULL;
	}
	uint32_t limit;
	int want_payload, want_vector;
	if (ju_get_u32(s, "limit", 10, 1, ctx->limits.max_k, &limit, e) ||
	    ju_get_u32(s, "offset", 0, 0, ctx->limits.max_k, &qq->offset, e) ||
	    qd_want(json_object_get(s, "with_payload"), 0, "with_payload", &want_payload, e) ||
	    qd_want(json_object_get(s, "with_vector"), 0, "with_vector", &want_vector, e))
		return NULL;
	if (limit + qq->offset > ctx->limits.max_k)
		return ju_fail(e, 422, "offset", "invalid_value",
			       "'limit' + 'offset' must be at most %u", ctx->limits.max_k), NULL;
	qq->with_payload = json_object_get(s, "with_payload");
	json_t *o = json_pack("{s:i, s:b, s:b}", "k", (int)(limit + qq->offset), "with_payload",
			      want_payload, "with_vector", want_vector);
	if (put_query(json_object_get(s, legacy ? "vector" : "query"), o, legacy, e))
		goto bad;
	const json_t *th = json_object_get(s, "score_threshold");
	if (th && !json_is_null(th))
		json_object_set(o, "score_threshold", (json_t *)th);
	const json_t *flt = json_object_get(s, "filter");
	if (flt && !json_is_null(flt))
		json_object_set(o, "filter", (json_t *)flt);
	const json_t *params = json_object_get(s, "params");
	if (params && !json_is_null(params)) {
		if (!json_is_object(params)) {
			ju_fail(e, 400, "params", "invalid_type", "'params' must be an object");
			goto bad;
		}
		const json_t *ef = json_object_get(params, "hnsw_ef");
		if (ef && !json_is_null(ef))
			json_object_set(o, "ef", (json_t *)ef);
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

/* The /v1 hits of one search -> Qdrant's ScoredPoints (in place): offset
 * skipped, payload keys selected, "version" added (Qdrant's per-point
 * write counter; this server keeps none, so 0). */
static void shape_hits(json_t *hits, const qd_query *qq)
{
	for (uint32_t i = 0; i < qq->offset && json_array_size(hits); i++)
		json_array_remove(hits, 0);
	size_t i;
	json_t *h;
	json_array_foreach(hits, i, h) {
		json_object_set_new(h, "version", json_integer(0));
		json_object_del(h, "scores");
	}
	if (qq->with_payload)
		qd_select_payload(hits, qq->with_payload);
}

/* The fast path of shape_hits, on the /v1 answer's text when there is no
 * offset to skip and no payload key to select (the common case, and what
 * bench/http/run.sh measures): `"version":0,` goes in after the opening
 * brace of each hit — found by a scan that tracks nesting outside strings,
 * so payload text can never be mistaken for a hit — and, unless legacy, the
 * hits are wrapped as {"points": [...]}.  0, or -1 (out of memory) with the
 * answer left as it was. */
static int shape_hits_text(api_response *out, int legacy)
{
	static const char head[] = "{\"result\":[";
	static const char ver[] = "\"version\":0,";
	const char *s = out->text;
	size_t len = out->text_len;
	if (len < sizeof head || memcmp(s, head, sizeof head - 1) != 0 || s[len - 1] != '}')
		return -1;
	size_t nhits = 0;
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < len; i++) { /* count the hits first: one allocation */
		char ch = ju_scan_step(s, &i, &in_str);
		if (ch == '{' || ch == '[') {
			nhits += depth == 2 && ch == '{';
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	size_t cap = len + nhits * (sizeof ver - 1) + 16;
	char *t = malloc(cap), *o = t;
	if (!t)
		return -1;
	o += sprintf(o, legacy ? "{\"result\":[" : "{\"result\":{\"points\":[");
	depth = 2;
	in_str = 0;
	for (size_t i = sizeof head - 1; i < len - 1; i++) { /* up to the last '}' */
		char ch = s[i];
		*o++ = ch;
		if (in_str) {
			if (ch == '\\')
				*o++ = s[++i];
			else if (ch == '"')
				in_str = 0;
		} else if (ch == '"') {
			in_str = 1;
		} else if (ch == '{' || ch == '[') {
			if (depth == 2 && ch == '{') {
				memcpy(o, ver, sizeof ver - 1);
				o += sizeof ver - 1;
			}
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	if (!legacy)
		*o++ = '}';
	*o++ = '}';
	free(out->text);
	out->text = t;
	out->text_len = (size_t)(o - t);
	return 0;
}

/* Single search: /points/query (wrap: {"points": hits}) or /points/search. */
static void search_one(api_call *c, int legacy, api_response *out)
{
	ju_err e;
	qd_query qq;
	memset(&qq, 0, sizeof qq);
	json_t *b = v1_search(c->ctx, c->json, legacy, &qq, &e);
	if (!b) {
		api_error_ju(out, &e);
		return;
	}
	qd_call(c, api_h_search, b, out);
	if (out->status == 200 && out->text && qq.offset == 0 &&
	    (!qq.with_payload || json_is_boolean(qq.with_payload)) &&
	    shape_hits_text(out, legacy) == 0)
		return;
	json_t *hits = qd_take_result(out);
	if (!hits)
		return;
	shape_hits(hits, &qq);
	if (legacy)
		api_ok(out, 200, json_pack("{s:o}", "result", hits));
	else
		api_ok(out, 200, json_pack("{s:{s:o}}", "result", "points", hits));
}

static void search_batch(api_call *c, int legacy, api_response *out)
{
	ju_err e;
	const json_t *arr = json_object_get(c->json, "searches");
	if (!json_is_array(arr)) {
		api_error(out, 400, "searches", arr ? "invalid_type" : "missing_field",
			  "'searches' must be a list of searches");
		return;
	}
	size_t n = json_array_size(arr);
	if (n == 0 || n > c->ctx->limits.max_searches) {
		api_error(out, 422, "searches", "too_many_searches",
			  "'searches' must hold 1..%u searches (got %zu)", c->ctx->limits.max_searches,
			  n);
		return;
	}
	qd_query *qq = calloc(n, sizeof *qq);
	json_t *v1 = json_array();
	if (!qq) {
		json_decref(v1);
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *s = v1_search(c->ctx, json_array_get(arr, i), legacy, &qq[i], &e);
		if (!s) {
			api_error(out, e.status, e.param, e.code, "searches[%zu]: %s", i, e.msg);
			json_decref(v1);
			goto out;
		}
		json_array_append_new(v1, s);
	}
	qd_call(c, api_h_search, json_pack("{s:o}", "searches", v1), out);
	json_t *res = qd_take_result(out);
	if (!res)
		goto out;
	json_t *r = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *hits = json_array_get(res, i);
		shape_hits(hits, &qq[i]);
		json_array_append_new(r, legacy ? json_incref(hits) : json_pack("{s:O}", "points", hits));
	}
	json_decref(res);
	api_ok(out, 200, json_pack("{s:o}", "result", r));
out:
	free(qq);
}

void api_h_qd_query(api_call *c, api_response *out)
{
	search_one(c, 0, out);
}

void api_h_qd_search(api_call *c, api_response *out)
{
	search_one(c, 1, out);
}

void api_h_qd_query_batch(api_call *c, api_response *out)
{
	search_batch(c, 0, out);
}

void api_h_qd_search_batch(api_call *c, api_response *out)
{
	search_batch(c, 1, out);
}
