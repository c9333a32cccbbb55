/*
 * api_scroll.c — reading many points of a collection:
 *   POST /v1/collections/{name}/points/scroll  page through them
 *   POST /v1/collections/{name}/points/count   how many (match a filter)
 *   POST /v1/collections/{name}/points/get     retrieve by a list of ids
 * (the engine is points.c, shared with the Qdrant dialect).
 *
 * Scroll body (every field optional): {"limit": 1..limits.max_points_per_request
 * (default 10), "offset": cursor (default 0: the start), "filter": Filter,
 * "with_payload": true, "with_vector": false, "order_by": key or {"key",
 * "direction", "start_from"}}.  order_by (Qdrant's) needs an integer
 * payload index on the key (else 400, as Qdrant), orders by its values
 * (a point with several values once per value), adds "order_value" to each
 * point, and has no next_offset (continue with start_from), as Qdrant.  Answer: {"result":
 * {"points": [{id, payload, vector?}], "next_offset": cursor or null}}: pass
 * next_offset back as offset for the next page; null means this was the
 * last page.
 *
 * The cursor is the collection's internal slot number (an opaque unsigned
 * integer to clients), so a page costs one walk up to the cursor and no
 * sort, and paging is stable under concurrent writes: a point that exists
 * for the whole scroll is returned exactly once; one upserted or deleted
 * meanwhile may or may not appear.  Each page is read under the
 * collection's shared lock (es_collection_foreach); copies are turned into
 * JSON after the lock is released.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "api_qdrant.h"
#include "points.h"

/* An array of points as JSON ("payload": null for one without, when
 * payloads were asked for). */
static json_t *points_json(const es_point_out *pts, size_t n, uint32_t dim, int with_payload)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = api_point_json(&pts[i], dim, 0);
		if (with_payload && !json_object_get(o, "payload"))
			json_object_set_new(o, "payload", json_null());
		json_array_append_new(arr, o);
	}
	return arr;
}

void api_h_points_scroll(api_call *c, api_response *out)
{
	static const char *const keys[] = {"limit", "offset", "filter", "with_payload",
					   "with_vector", "order_by", NULL};
	ju_err e;
	e.status = 0;
	uint32_t limit;
	int with_payload, with_vector;
	uint64_t from = 0;
	api_filter *f = NULL;
	json_t *empty = c->json ? NULL : json_object(); /* no body: the defaults */
	const json_t *body = c->json ? c->json : empty;
	if (!body) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	if (ju_check_keys(body, keys, NULL, &e) ||
	    ju_get_u32(body, "limit", 10, 1, c->ctx->limits.max_points, &limit, &e) ||
	    ju_get_bool(body, "with_payload", 1, &with_payload, &e) ||
	    ju_get_bool(body, "with_vector", 0, &with_vector, &e) ||
	    api_filter_parse(json_object_get(body, "filter"), "filter", &f, &e)) {
		api_error_ju(out, &e);
		goto done;
	}
	const json_t *off = json_object_get(body, "offset");
	if (off && !json_is_null(off)) {
		if (!json_is_integer(off) || json_integer_value(off) < 0) {
			api_error(out, 400, "offset", "invalid_type",
				  "'offset' must be a 'next_offset' from an earlier page (an unsigned integer) or null");
			goto done;
		}
		from = (uint64_t)json_integer_value(off);
	}
	const json_t *ob = json_object_get(body, "order_by");
	api_order order;
	int ordered = ob && !json_is_null(ob);
	if (ordered && api_order_parse(ob, &order, &e)) {
		api_error_ju(out, &e);
		goto done;
	}
	if (ordered && off && !json_is_null(off)) {
		api_error(out, 400, "offset", "invalid_request",
			  "'offset' cannot be used with 'order_by': continue with "
			  "order_by.start_from");
		goto done;
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		goto done;
	uint32_t dim = es_collection_get_params(col)->dim;
	api_page pg;
	es_error err;
	es_error_clear(&err);
	int rc = ordered ? api_points_ordered(col, f, &order, limit, with_payload, with_vector,
					      &pg, &err)
			 : api_points_page(col, f, from, limit, with_payload, with_vector, &pg, &err);
	es_collection_release(col);
	if (rc == ES_EINVAL && ordered) { /* no range index on the key: Qdrant's 400 */
		api_error(out, 400, "order_by", "invalid_request", "%s", err.msg);
		goto done;
	}
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		goto done;
	}
	json_t *arr = points_json(pg.pts, pg.n, dim, with_payload);
	for (size_t i = 0; pg.values && i < pg.n; i++)
		json_object_set_new(json_array_get(arr, i), "order_value",
				    json_integer((json_int_t)pg.values[i]));
	api_ok(out, 200, json_pack("{s:{s:o, s:o}}", "result", "points", arr, "next_offset",
				   pg.has_next ? json_integer((json_int_t)pg.next) : json_null()));
	api_page_free(&pg);
done:
	api_filter_free(f);
	json_decref(empty);
}

/* Count, in both dialects: one body parser and one engine call.  The
 * Qdrant dialect ignores unknown body keys (shard_key, ...); both check
 * "exact" is a bool (Qdrant's body schema) and always count exactly. */
void api_count_route(api_call *c, int qdrant, api_response *out)
{
	static const char *const keys[] = {"filter", "exact", NULL};
	ju_err e;
	api_filter *f = NULL;
	int exact;
	if (c->json && ((!qdrant && ju_check_keys(c->json, keys, NULL, &e)) ||
			ju_get_bool(c->json, "exact", 1, &exact, &e) ||
			api_filter_parse(json_object_get(c->json, "filter"), "filter", &f, &e))) {
		api_error_ju(out, &e);
		return;
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		goto done;
	size_t n = 0;
	es_error err;
	es_error_clear(&err);
	int rc = api_points_count(col, f, &n, &err); /* always exact */
	es_collection_release(col);
	if (rc)
		api_error_es(out, rc, &err, NULL);
	else
		api_ok(out, 200, json_pack("{s:{s:I}}", "result", "count", (json_int_t)n));
done:
	api_filter_free(f);
}

void api_h_points_count(api_call *c, api_response *out)
{
	api_count_route(c, 0, out);
}

void api_h_points_get_many(api_call *c, api_response *out)
{
	static const char *const keys[] = {"ids", "with_payload", "with_vector", NULL};
	ju_err e;
	int with_payload, with_vector;
	if (ju_check_keys(c->json, keys, NULL, &e) ||
	    ju_get_bool(c->json, "with_payload", 1, &with_payload, &e) ||
	    ju_get_bool(c->json, "with_vector", 0, &with_vector, &e)) {
		api_error_ju(out, &e);
		return;
	}
	const json_t *arr = json_object_get(c->json, "ids");
	if (!json_is_array(arr)) {
		api_error(out, 400, "ids", arr ? "invalid_type" : "missing_field",
			  "'ids' must be an array of point ids");
		return;
	}
	size_t n = json_array_size(arr);
	if (n > c->ctx->limits.max_points) {
		api_error(out, 422, "ids", "too_many_points", "'ids' holds %zu ids; the limit is %u",
			  n, c->ctx->limits.max_points);
		return;
	}
	es_point_id *ids = calloc(n ? n : 1, sizeof *ids);
	if (!ids) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char param[48];
		snprintf(param, sizeof param, "ids[%zu]", i);
		if (api_point_id(json_array_get(arr, i), &ids[i], param, &e)) {
			api_error_ju(out, &e);
			free(ids);
			return;
		}
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col) {
		free(ids);
		return;
	}
	uint32_t dim = es_collection_get_params(col)->dim;
	es_point_out *pts;
	size_t np;
	es_error err;
	es_error_clear(&err);
	int rc = api_points_get_many(col, ids, n, with_payload, with_vector, &pts, &np, &err);
	es_collection_release(col);
	free(ids);
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		return;
	}
	api_ok(out, 200, json_pack("{s:o}", "result", points_json(pts, np, dim, with_payload)));
	es_hits_free(pts, np);
}
