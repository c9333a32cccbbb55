/*
 * api_scroll.c — POST /v1/collections/{name}/points/scroll: page through
 * every point of a collection.
 *
 * Body (every field optional): {"limit": 1..limits.max_points_per_request
 * (default 10), "offset": cursor (default 0: the start), "with_payload":
 * true, "with_vector": false}.  Answer: {"result": {"points": [{id,
 * payload, vector?}], "next_offset": cursor or null}}: pass next_offset
 * back as offset for the next page; null means this was the last page.
 *
 * The cursor is the collection's internal slot number (an opaque unsigned
 * integer to clients), so a page costs one walk up to the cursor and no
 * sort, and paging is stable under concurrent writes: a point that exists
 * for the whole scroll is returned exactly once; one upserted or deleted
 * meanwhile may or may not appear.  Each page is read under the
 * collection's shared lock (es_collection_foreach); copies are turned into
 * JSON after the lock is released.
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

typedef struct scroll_ctx {
	uint64_t from;          /* first slot to return */
	size_t limit;
	int with_payload, with_vector;
	uint32_t dim;
	es_point_out *pts;      /* limit entries */
	size_t n;
	int has_next;
	uint64_t next;
	int oom;
} scroll_ctx;

static int scroll_fn(void *ctx, const es_point_view *v)
{
	scroll_ctx *s = ctx;
	if (v->label < s->from)
		return 0;
	if (s->n == s->limit) { /* one more live point: the next page starts here */
		s->has_next = 1;
		s->next = v->label;
		return 1;
	}
	es_point_out *p = &s->pts[s->n];
	memset(p, 0, sizeof *p);
	p->id = v->id;
	if (v->id.is_str) {
		char *str = malloc(v->id.len + 1);
		if (!str)
			goto oom;
		memcpy(str, v->id.str, v->id.len);
		str[v->id.len] = '\0';
		p->id.str = str;
	}
	s->n++; /* from here on es_hits_free frees what p holds */
	if (s->with_payload && v->payload) {
		p->payload = malloc(v->payload_len + 1);
		if (!p->payload)
			goto oom;
		memcpy(p->payload, v->payload, v->payload_len);
		p->payload[v->payload_len] = '\0';
		p->payload_len = v->payload_len;
	}
	if (s->with_vector) {
		p->vector = malloc((size_t)s->dim * sizeof *p->vector);
		if (!p->vector)
			goto oom;
		memcpy(p->vector, v->vector, (size_t)s->dim * sizeof *p->vector);
	}
	return 0;
oom:
	s->oom = 1;
	return 1;
}

void api_h_points_scroll(api_call *c, api_response *out)
{
	static const char *const keys[] = {"limit", "offset", "with_payload", "with_vector", NULL};
	scroll_ctx s;
	memset(&s, 0, sizeof s);
	ju_err e;
	e.status = 0;
	uint32_t limit;
	json_t *empty = c->json ? NULL : json_object(); /* no body: the defaults */
	const json_t *body = c->json ? c->json : empty;
	if (!body) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	if (ju_check_keys(body, keys, NULL, &e) ||
	    ju_get_u32(body, "limit", 10, 1, c->ctx->limits.max_points, &limit, &e) ||
	    ju_get_bool(body, "with_payload", 1, &s.with_payload, &e) ||
	    ju_get_bool(body, "with_vector", 0, &s.with_vector, &e)) {
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
		s.from = (uint64_t)json_integer_value(off);
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		goto done;
	s.limit = limit;
	s.dim = es_collection_get_params(col)->dim;
	s.pts = calloc(limit, sizeof *s.pts);
	int rc = s.pts ? es_collection_foreach(col, scroll_fn, &s) : ES_ENOMEM;
	es_collection_release(col);
	if (rc < 0 || s.oom) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory reading the points");
		goto free_pts;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < s.n; i++) {
		json_t *o = api_point_json(&s.pts[i], s.dim, 0);
		if (s.with_payload && !json_object_get(o, "payload"))
			json_object_set_new(o, "payload", json_null());
		json_array_append_new(arr, o);
	}
	api_ok(out, 200, json_pack("{s:{s:o, s:o}}", "result", "points", arr, "next_offset",
				   s.has_next ? json_integer((json_int_t)s.next) : json_null()));
free_pts:
	if (s.pts)
		es_hits_free(s.pts, s.n);
done:
	json_decref(empty);
}
