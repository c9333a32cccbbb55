/*
 * api_points.c — PUT /v1/collections/{name}/points (upsert a batch, all or
 * nothing), GET .../points/{id}, POST .../points/delete.
 *
 * Every point of a batch is checked (id, exactly one of text/vector,
 * dimension, finite values, payload an object) and every text encoded
 * before the collection is touched; es_collection_upsert then applies the
 * whole batch or none of it.  A text point keeps its text for the lexical
 * index; one whose text has no word the model knows is stored without a
 * vector (found by id, filter and lexical search), and the response lists
 * it under "without_vector".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "api_qdrant.h"
#include "points.h"

/* points[i] = p of an upsert into pt: its id; its vector into vec or, for
 * a text point, the text in *text (the texts are encoded afterwards, in one
 * batch); its payload as compact JSON in *payload (malloc, freed by the
 * caller; pt->payload borrows it).  0, or -1 with the error in out. */
static int parse_point(const json_t *p, size_t i, uint32_t dim, es_point_in *pt,
		       float *vec, char **payload, const char **text, size_t *tlen,
		       api_response *out)
{
	static const char *const pkeys[] = {"id", "text", "vector", "payload", NULL};
	ju_err e;
	char param[64];
	if (api_array_object(p, "points", i, pkeys, param, sizeof param, out))
		return -1;
	char pp[80];
	snprintf(pp, sizeof pp, "%s.id", param);
	json_t *idv = json_object_get(p, "id");
	if (!idv) {
		api_error(out, 400, pp, "missing_field", "'%s' is required", pp);
		return -1;
	}
	if (api_point_id(idv, &pt->id, pp, &e)) {
		api_error_ju(out, &e);
		return -1;
	}
	json_t *tv = json_object_get(p, "text"), *vv = json_object_get(p, "vector");
	if (tv && json_is_null(tv))
		tv = NULL;
	if (vv && json_is_null(vv))
		vv = NULL;
	if ((tv != NULL) == (vv != NULL)) {
		api_error(out, 400, param, "invalid_request",
			  "'%s' needs exactly one of 'text' or 'vector'", param);
		return -1;
	}
	pt->vector = vec;
	if (vv) {
		snprintf(pp, sizeof pp, "%s.vector", param);
		if (ju_vector(vv, dim, vec, pp, &e)) {
			api_error_ju(out, &e);
			return -1;
		}
	} else {
		if (!json_is_string(tv)) {
			snprintf(pp, sizeof pp, "%s.text", param);
			api_error(out, 400, pp, "invalid_type", "'%s' must be a string", pp);
			return -1;
		}
		*text = json_string_value(tv);
		*tlen = json_string_length(tv);
	}
	json_t *pl = json_object_get(p, "payload");
	if (pl && !json_is_null(pl)) {
		if (!json_is_object(pl)) {
			snprintf(pp, sizeof pp, "%s.payload", param);
			api_error(out, 400, pp, "invalid_type", "'%s' must be a JSON object", pp);
			return -1;
		}
		if (ju_has_u64(pl)) {
			snprintf(pp, sizeof pp, "%s.payload", param);
			api_error(out, 422, pp, "invalid_value",
				  "'%s' holds an integer above 2^63-1: only point ids may", pp);
			return -1;
		}
		*payload = ju_dump(pl, &pt->payload_len);
		if (!*payload) {
			api_error(out, 503, NULL, "out_of_memory", "out of memory");
			return -1;
		}
		pt->payload = *payload;
	}
	return 0;
}

/* The body's 'points' array, its only key; NULL with the error in out.
 * `what` says what the array holds, for the message. */
static json_t *points_array(const api_call *c, const char *what, api_response *out)
{
	static const char *const keys[] = {"points", NULL};
	ju_err e;
	if (ju_check_keys(c->json, keys, NULL, &e)) {
		api_error_ju(out, &e);
		return NULL;
	}
	json_t *arr = json_object_get(c->json, "points");
	if (!arr || !json_is_array(arr)) {
		api_error(out, 400, "points", arr ? "invalid_type" : "missing_field",
			  "'points' must be an array of %s", what);
		return NULL;
	}
	return arr;
}

void api_h_points_upsert(api_call *c, api_response *out)
{
	json_t *arr = points_array(c, "{id, text|vector, payload}", out);
	if (!arr)
		return;
	size_t n = json_array_size(arr);
	if (n == 0 || n > c->ctx->limits.max_points) {
		api_error(out, 422, "points", n ? "too_many_points" : "empty_batch",
			  "'points' must hold 1..%u points (got %zu)", c->ctx->limits.max_points, n);
		return;
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return;
	uint32_t dim = es_collection_get_params(col)->dim;
	es_point_in *pts = calloc(n, sizeof *pts);
	float *vecs = malloc(n * dim * sizeof *vecs);
	char **payloads = calloc(n, sizeof *payloads);
	const char **texts = malloc(n * sizeof *texts);
	size_t *tlens = malloc(n * sizeof *tlens);
	size_t *tidx = malloc(n * sizeof *tidx);
	unsigned char *empty = malloc(n ? n : 1);
	float *tvecs = NULL;
	size_t nt = 0;
	if (!pts || !vecs || !payloads || !texts || !tlens || !tidx || !empty) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *text = NULL;
		if (parse_point(json_array_get(arr, i), i, dim, &pts[i], vecs + i * dim,
				&payloads[i], &text, &tlens[nt], out))
			goto out;
		if (text) {
			pts[i].text = text;
			pts[i].text_len = tlens[nt];
			texts[nt] = text;
			tidx[nt++] = i;
		}
	}
	if (nt) {
		const es_encoder *enc = api_collection_model(c->ctx, col, out);
		if (!enc)
			goto out;
		tvecs = malloc(nt * dim * sizeof *tvecs);
		if (!tvecs) {
			api_error(out, 503, NULL, "out_of_memory", "out of memory");
			goto out;
		}
		if (api_encode_texts_empty(c->ctx, enc, texts, tlens, nt, "points.text", tvecs,
					   empty, out))
			goto out;
		for (size_t k = 0; k < nt; k++) {
			memcpy(vecs + tidx[k] * dim, tvecs + k * dim, dim * sizeof *vecs);
			if (empty[k] && tlens[k])
				pts[tidx[k]].vector = NULL; /* stored without a vector */
		}
	}
	es_error err;
	es_error_clear(&err);
	int rc = es_collection_upsert(col, pts, n, &err);
	if (rc) {
		api_error_es(out, rc, &err, "points");
		goto out;
	}
	json_t *res = json_pack("{s:I}", "upserted", (json_int_t)n);
	json_t *novec = NULL;
	for (size_t i = 0; i < n; i++) {
		if (pts[i].vector)
			continue;
		if (!novec)
			novec = json_array();
		json_array_append_new(novec, api_point_id_json(&pts[i].id));
	}
	if (novec)
		json_object_set_new(res, "without_vector", novec);
	api_ok(out, 200, json_pack("{s:o}", "result", res));
out:
	if (payloads)
		for (size_t i = 0; i < n; i++)
			free(payloads[i]);
	free(payloads);
	free(pts);
	free(vecs);
	free(texts);
	free(tlens);
	free(tidx);
	free(empty);
	free(tvecs);
	es_collection_release(col);
}

json_t *api_point_json(const es_point_out *p, uint32_t dim, int score)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", api_point_id_json(&p->id));
	if (score)
		json_object_set_new(o, "score", json_real(p->score));
	if (p->payload) {
		json_t *pl = json_loadb(p->payload, p->payload_len, 0, NULL);
		json_object_set_new(o, "payload", pl ? pl : json_null());
	}
	if (p->vector)
		json_object_set_new(o, "vector", ju_float_array(p->vector, dim));
	return o;
}

void api_h_points_get(api_call *c, api_response *out)
{
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return;
	es_point_id id;
	api_point_id_from_path(c->id, &c->id_len, &id);
	es_point_out p;
	es_error err;
	es_error_clear(&err);
	int rc = es_collection_get(col, &id, 1, 1, &p, &err);
	if (rc) {
		api_error_es(out, rc, &err, "id");
	} else {
		json_t *o = api_point_json(&p, es_collection_get_params(col)->dim, 0);
		if (!json_object_get(o, "payload"))
			json_object_set_new(o, "payload", json_null());
		api_ok(out, 200, json_pack("{s:o}", "result", o));
		es_point_out_free(&p);
	}
	es_collection_release(col);
}

void api_h_points_delete(api_call *c, api_response *out)
{
	static const char *const keys[] = {"points", "filter", NULL};
	ju_err e;
	api_selector sel;
	memset(&sel, 0, sizeof sel);
	if (ju_check_keys(c->json, keys, NULL, &e) ||
	    api_selector_parse(c->json, c->ctx->limits.max_points, &sel, &e)) {
		api_error_ju(out, &e);
		return;
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		goto out;
	size_t deleted = 0;
	es_error err;
	es_error_clear(&err);
	int rc = api_points_delete_sel(col, &sel, &deleted, &err);
	es_collection_release(col);
	if (rc)
		api_error_es(out, rc, &err, "points");
	else
		api_ok(out, 200, json_pack("{s:{s:I}}", "result", "deleted", (json_int_t)deleted));
out:
	api_selector_free(&sel);
}

/* The four payload updates, in both dialects: one body parser and one
 * engine call (points.c).  The Qdrant dialect ignores unknown body keys
 * and answers Qdrant's update result instead of the count. */
void api_payload_route(api_call *c, api_payload_kind kind, int qdrant, api_response *out)
{
	ju_err e;
	api_payload_req r;
	if (api_payload_req_parse(c->json, kind, !qdrant, c->ctx->limits.max_points, &r, &e)) {
		api_error_ju(out, &e);
		return;
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		goto out;
	size_t updated = 0;
	es_error err;
	es_error_clear(&err);
	/* Qdrant answers 404 "No point with id X found" for a listed id that is
	 * missing, and changes nothing (checked first: a point deleted between
	 * the check and the update is skipped, as /v1 skips it) */
	for (size_t i = 0; qdrant && i < r.sel.n; i++) {
		es_point_out po;
		if (es_collection_get(col, &r.sel.ids[i], 0, 0, &po, NULL) != 0) {
			es_collection_release(col);
			if (r.sel.ids[i].is_str)
				api_error(out, 404, "points", "not_found", "No point with id %.*s found",
					  (int)r.sel.ids[i].len, r.sel.ids[i].str);
			else
				api_error(out, 404, "points", "not_found", "No point with id %llu found",
					  (unsigned long long)r.sel.ids[i].num);
			goto out;
		}
		es_point_out_free(&po);
	}
	int rc = api_payload_update(col, &r, &updated, &err);
	es_collection_release(col);
	if (rc)
		api_error_es(out, rc, &err, "points");
	else if (qdrant)
		qd_ok_update(out);
	else
		api_ok(out, 200, json_pack("{s:{s:I}}", "result", "updated", (json_int_t)updated));
out:
	api_payload_req_free(&r);
}

void api_h_payload_set(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_SET, 0, out);
}

void api_h_payload_overwrite(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_OVERWRITE, 0, out);
}

void api_h_payload_delete(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_DELETE, 0, out);
}

void api_h_payload_clear(api_call *c, api_response *out)
{
	api_payload_route(c, API_PAYLOAD_CLEAR, 0, out);
}
