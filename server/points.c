/*
 * points.c — point operations shared by both dialects; see points.h.
 *
 * Reads walk the collection with es_collection_foreach_plan (shared lock
 * held for the walk; what is kept is copied; only the candidates of a
 * payload index when the filter's plan has one) and run the filter on each
 * point's parsed payload.  Writes by filter select the ids first, then go through
 * the collection's logged calls.  The payload op is JSON text of our own:
 *   {"op":"set","payload":{...},"key":"a.b"}  {"op":"overwrite","payload":{...}}
 *   {"op":"delete","keys":["a","b.c"]}       {"op":"clear"}
 * written to the log as it is and compiled again at replay.
 */
#include "points.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "api_internal.h"

/* ------------------------------------------------------------------ page */

typedef struct page_ctx {
	const api_filter *f;
	uint64_t from;
	size_t limit;
	int with_payload, with_vector;
	uint32_t dim;
	api_page *pg;
	int oom;
} page_ctx;

/* Copy the view into p (members malloc'd): 0 or -1 out of memory (what was
 * copied stays in p for es_point_out_free). */
static int copy_view(const es_point_view *v, int with_payload, int with_vector, uint32_t dim,
		     es_point_out *p)
{
	memset(p, 0, sizeof *p);
	p->id = v->id;
	if (v->id.is_str) {
		p->id.str = es_memdup0(v->id.str, v->id.len);
		if (!p->id.str) {
			p->id.is_str = 0;
			return -1;
		}
	}
	if (with_payload && v->payload) {
		if (!(p->payload = es_memdup0(v->payload, v->payload_len)))
			return -1;
		p->payload_len = v->payload_len;
	}
	if (with_vector && v->vector) {
		p->vector = malloc((size_t)dim * sizeof *p->vector);
		if (!p->vector)
			return -1;
		memcpy(p->vector, v->vector, (size_t)dim * sizeof *p->vector);
	}
	return 0;
}

static int page_fn(void *ctx, const es_point_view *v)
{
	page_ctx *s = ctx;
	if (v->label < s->from || !api_filter_match(s->f, v))
		return 0;
	api_page *pg = s->pg;
	if (pg->n == s->limit) { /* one more match: the next page starts here */
		pg->has_next = 1;
		pg->next = v->label;
		return 1;
	}
	int rc = copy_view(v, s->with_payload, s->with_vector, s->dim, &pg->pts[pg->n]);
	pg->n++; /* from here on es_hits_free frees what it holds */
	if (rc) {
		s->oom = 1;
		return 1;
	}
	return 0;
}

int api_points_page(es_collection *col, const api_filter *f, uint64_t from, size_t limit,
		    int with_payload, int with_vector, api_page *out, es_error *err)
{
	memset(out, 0, sizeof *out);
	page_ctx s = {f, from, limit, with_payload, with_vector,
		      es_collection_get_params(col)->dim, out, 0};
	out->pts = calloc(limit ? limit : 1, sizeof *out->pts);
	if (!out->pts)
		return es_err(err, ES_ENOMEM, "out of memory reading the points");
	int rc = es_collection_foreach_plan(col, api_filter_plan(f), from, with_vector, page_fn,
					    &s);
	if (rc < 0 || s.oom) {
		api_page_free(out);
		return es_err(err, ES_ENOMEM, "out of memory reading the points");
	}
	return 0;
}

void api_page_free(api_page *p)
{
	if (p->pts)
		es_hits_free(p->pts, p->n);
	free(p->values);
	memset(p, 0, sizeof *p);
}

/* -------------------------------------------------------------- order_by */

int api_order_parse(const json_t *v, api_order *o, ju_err *e)
{
	memset(o, 0, sizeof *o);
	if (json_is_string(v)) {
		o->key = json_string_value(v);
	} else if (json_is_object(v)) {
		/* unknown keys are ignored, as Qdrant ignores them */
		const json_t *k = json_object_get(v, "key"), *d = json_object_get(v, "direction");
		const json_t *s = json_object_get(v, "start_from");
		if (!json_is_string(k))
			return ju_fail(e, 400, "order_by.key", "invalid_type",
				       "'order_by.key' must be a string");
		o->key = json_string_value(k);
		if (d && !json_is_null(d)) {
			const char *ds = json_string_value(d);
			if (!ds || (strcmp(ds, "asc") != 0 && strcmp(ds, "desc") != 0))
				return ju_fail(e, 400, "order_by.direction", "invalid_type",
					       "'order_by.direction' must be \"asc\" or \"desc\"");
			o->desc = strcmp(ds, "desc") == 0;
		}
		if (s && !json_is_null(s)) {
			if (!json_is_number(s))
				return ju_fail(e, 400, "order_by.start_from", "invalid_type",
					       "'order_by.start_from' must be a number");
			o->has_start = 1;
			o->start = json_number_value(s);
		}
	} else {
		return ju_fail(e, 400, "order_by", "invalid_type",
			       "'order_by' must be a key or {\"key\", \"direction\", \"start_from\"}");
	}
	if (!*o->key)
		return ju_fail(e, 400, "order_by.key", "invalid_type",
			       "'order_by.key' must not be empty");
	return 0;
}

typedef struct order_ctx {
	page_ctx pc;
	const api_order *o;
} order_ctx;

static int order_fn(void *ctx, const es_point_view *v, int64_t value)
{
	order_ctx *s = ctx;
	const api_order *o = s->o;
	if (o->has_start && (o->desc ? (double)value > o->start : (double)value < o->start))
		return 0;
	if (!api_filter_match(s->pc.f, v))
		return 0;
	api_page *pg = s->pc.pg;
	if (pg->n == s->pc.limit)
		return 1;
	pg->values[pg->n] = value;
	int rc = copy_view(v, s->pc.with_payload, s->pc.with_vector, s->pc.dim, &pg->pts[pg->n]);
	pg->n++;
	if (rc) {
		s->pc.oom = 1;
		return 1;
	}
	return 0;
}

int api_points_ordered(es_collection *col, const api_filter *f, const api_order *o,
		       size_t limit, int with_payload, int with_vector, api_page *out,
		       es_error *err)
{
	memset(out, 0, sizeof *out);
	order_ctx s = {{f, 0, limit, with_payload, with_vector, es_collection_get_params(col)->dim,
			out, 0}, o};
	out->pts = calloc(limit ? limit : 1, sizeof *out->pts);
	out->values = calloc(limit ? limit : 1, sizeof *out->values);
	if (!out->pts || !out->values) {
		api_page_free(out);
		return es_err(err, ES_ENOMEM, "out of memory reading the points");
	}
	int rc = es_collection_foreach_ordered(col, o->key, o->desc, with_vector, order_fn, &s,
					       err);
	if (rc == ES_ENOTFOUND) {
		api_page_free(out);
		return es_err(err, ES_EINVAL, "no range index for order_by key '%s': create an "
			      "integer payload index on it (PUT .../index) to use order_by", o->key);
	}
	if (rc < 0 || s.pc.oom) {
		api_page_free(out);
		return es_err(err, ES_ENOMEM, "out of memory reading the points");
	}
	return 0;
}

/* ----------------------------------------------------------------- count */

typedef struct count_ctx {
	const api_filter *f;
	size_t n;
} count_ctx;

static int count_fn(void *ctx, const es_point_view *v)
{
	count_ctx *s = ctx;
	s->n += api_filter_match(s->f, v) != 0;
	return 0;
}

int api_points_count(es_collection *col, const api_filter *f, size_t *count, es_error *err)
{
	if (!f) {
		*count = es_collection_count(col);
		return 0;
	}
	count_ctx s = {f, 0};
	if (es_collection_foreach_plan(col, api_filter_plan(f), 0, 0, count_fn, &s) < 0)
		return es_err(err, ES_ENOMEM, "out of memory counting the points");
	*count = s.n;
	return 0;
}

/* -------------------------------------------------------------- get many */

int api_points_get_many(es_collection *col, const es_point_id *ids, size_t n, int with_payload,
			int with_vector, es_point_out **out, size_t *nout, es_error *err)
{
	*out = NULL;
	*nout = 0;
	es_point_out *pts = calloc(n ? n : 1, sizeof *pts);
	if (!pts)
		return es_err(err, ES_ENOMEM, "out of memory reading the points");
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = es_collection_get(col, &ids[i], with_vector, with_payload, &pts[k], err);
		if (rc == ES_ENOTFOUND)
			continue;
		if (rc) {
			es_hits_free(pts, k);
			return rc;
		}
		k++;
	}
	*out = pts;
	*nout = k;
	return 0;
}

/* ---------------------------------------------------------------- select */

typedef struct sel_ctx {
	const api_filter *f;
	es_point_id *ids;
	size_t n, cap;
	int oom;
} sel_ctx;

static int sel_fn(void *ctx, const es_point_view *v)
{
	sel_ctx *s = ctx;
	if (!api_filter_match(s->f, v))
		return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 64;
		es_point_id *ni = realloc(s->ids, nc * sizeof *ni);
		if (!ni)
			goto oom;
		s->ids = ni;
		s->cap = nc;
	}
	es_point_id *id = &s->ids[s->n];
	*id = v->id;
	if (v->id.is_str && !(id->str = es_memdup0(v->id.str, v->id.len)))
		goto oom;
	s->n++;
	return 0;
oom:
	s->oom = 1;
	return 1;
}

static void ids_free(es_point_id *ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		if (ids[i].is_str)
			free((char *)ids[i].str);
	free(ids);
}

/* The ids of the points matching f now (owned copies; ids_free). */
static int select_ids(es_collection *col, const api_filter *f, es_point_id **ids, size_t *n,
		      es_error *err)
{
	sel_ctx s = {f, NULL, 0, 0, 0};
	if (es_collection_foreach_plan(col, api_filter_plan(f), 0, 0, sel_fn, &s) < 0)
		s.oom = 1;
	if (s.oom) {
		ids_free(s.ids, s.n);
		*ids = NULL;
		*n = 0;
		return es_err(err, ES_ENOMEM, "out of memory selecting the points");
	}
	*ids = s.ids;
	*n = s.n;
	return 0;
}

/* -------------------------------------------------------------- selector */

int api_selector_parse(const json_t *obj, uint32_t max_ids, api_selector *sel, ju_err *e)
{
	memset(sel, 0, sizeof *sel);
	const json_t *pts = json_object_get(obj, "points"), *f = json_object_get(obj, "filter");
	if (pts && json_is_null(pts))
		pts = NULL;
	if (f && json_is_null(f))
		f = NULL;
	if ((pts != NULL) == (f != NULL))
		return ju_fail(e, 400, pts ? "filter" : "points", "invalid_request",
			       "give exactly one of 'points' (a list of ids) or 'filter'");
	if (f)
		return api_filter_parse(f, "filter", &sel->filter, e);
	if (!json_is_array(pts))
		return ju_fail(e, 400, "points", "invalid_type", "'points' must be an array of ids");
	size_t n = json_array_size(pts);
	if (n > max_ids)
		return ju_fail(e, 422, "points", "too_many_points",
			       "'points' holds %zu ids; the limit is %u", n, max_ids);
	sel->ids = calloc(n ? n : 1, sizeof *sel->ids);
	if (!sel->ids)
		return ju_fail(e, 503, NULL, "out_of_memory", "out of memory");
	for (size_t i = 0; i < n; i++) {
		char param[64];
		snprintf(param, sizeof param, "points[%zu]", i);
		if (api_point_id(json_array_get(pts, i), &sel->ids[i], param, e)) {
			api_selector_free(sel);
			return -1;
		}
	}
	sel->n = n;
	return 0;
}

void api_selector_free(api_selector *sel)
{
	free(sel->ids);
	api_filter_free(sel->filter);
	memset(sel, 0, sizeof *sel);
}

/* The ids a selector names: its list, or the filter's matches now. */
static int sel_ids(es_collection *col, const api_selector *sel, es_point_id **ids, size_t *n,
		   int *owned, es_error *err)
{
	*owned = sel->filter != NULL;
	if (!sel->filter) {
		*ids = sel->ids;
		*n = sel->n;
		return 0;
	}
	return select_ids(col, sel->filter, ids, n, err);
}

int api_points_delete_sel(es_collection *col, const api_selector *sel, size_t *deleted,
			  es_error *err)
{
	es_point_id *ids;
	size_t n;
	int owned;
	*deleted = 0;
	int rc = sel_ids(col, sel, &ids, &n, &owned, err);
	if (!rc && n)
		rc = es_collection_delete(col, ids, n, deleted, err);
	if (owned)
		ids_free(ids, n);
	return rc;
}

/* ------------------------------------------------------- payload updates */

static int check_key(const json_t *v, const char *param, ju_err *e)
{
	if (!json_is_string(v) || json_string_length(v) == 0)
		return ju_fail(e, 400, param, "invalid_type", "'%s' must be a non-empty string",
			       param);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return ju_fail(e, 422, param, "invalid_value", "'%s' must not hold NUL characters",
			       param);
	return 0;
}

int api_payload_req_parse(const json_t *body, api_payload_kind kind, int strict,
			  uint32_t max_ids, api_payload_req *r, ju_err *e)
{
	static const char *const set_keys[] = {"payload", "points", "filter", "key", NULL};
	static const char *const ow_keys[] = {"payload", "points", "filter", NULL};
	static const char *const del_keys[] = {"keys", "points", "filter", NULL};
	static const char *const clr_keys[] = {"points", "filter", NULL};
	const char *const *allowed = kind == API_PAYLOAD_SET ? set_keys
				     : kind == API_PAYLOAD_OVERWRITE ? ow_keys
				     : kind == API_PAYLOAD_DELETE ? del_keys : clr_keys;
	memset(r, 0, sizeof *r);
	r->kind = kind;
	if (!json_is_object(body))
		return ju_fail(e, 400, NULL, "invalid_type", "the body must be a JSON object");
	if (strict && ju_check_keys(body, allowed, NULL, e))
		return -1;
	if (kind == API_PAYLOAD_SET || kind == API_PAYLOAD_OVERWRITE) {
		r->payload = json_object_get(body, "payload");
		if (!json_is_object(r->payload))
			return ju_fail(e, 400, "payload", r->payload ? "invalid_type" : "missing_field",
				       "'payload' must be a JSON object");
		if (ju_has_u64(r->payload))
			return ju_fail(e, 422, "payload", "invalid_value",
				       "'payload' holds an integer above 2^63-1: only point ids may");
	}
	/* set: the payload goes under the object at `key` (made as needed).
	 * Qdrant's overwrite takes a `key` too and checks it as a path, but
	 * replaces the whole payload all the same (its do_overwrite_payload
	 * passes key None: "overwrite operation doesn't support payload
	 * selector"); the Qdrant dialect does the same, /v1 refuses the key. */
	if (kind == API_PAYLOAD_SET || (kind == API_PAYLOAD_OVERWRITE && !strict)) {
		const json_t *k = json_object_get(body, "key");
		if (k && !json_is_null(k)) {
			if (check_key(k, "key", e))
				return -1;
			if (kind == API_PAYLOAD_SET)
				r->key = json_string_value(k);
		}
	}
	if (kind == API_PAYLOAD_DELETE) {
		r->keys = json_object_get(body, "keys");
		if (!json_is_array(r->keys))
			return ju_fail(e, 400, "keys", r->keys ? "invalid_type" : "missing_field",
				       "'keys' must be an array of payload keys");
		for (size_t i = 0; i < json_array_size(r->keys); i++) {
			char param[48];
			snprintf(param, sizeof param, "keys[%zu]", i);
			if (check_key(json_array_get(r->keys, i), param, e))
				return -1;
		}
	}
	return api_selector_parse(body, max_ids, &r->sel, e);
}

void api_payload_req_free(api_payload_req *r)
{
	api_selector_free(&r->sel);
}

int api_payload_update(es_collection *col, const api_payload_req *r, size_t *updated,
		       es_error *err)
{
	static const char *const names[] = {"set", "overwrite", "delete", "clear"};
	*updated = 0;
	json_t *op = json_pack("{s:s}", "op", names[r->kind]);
	if (op && r->payload)
		json_object_set(op, "payload", (json_t *)r->payload);
	if (op && r->keys)
		json_object_set(op, "keys", (json_t *)r->keys);
	if (op && r->key)
		json_object_set_new(op, "key", json_string(r->key));
	size_t len = 0;
	char *text = op ? ju_dump(op, &len) : NULL;
	json_decref(op);
	if (!text)
		return es_err(err, ES_ENOMEM, "out of memory");
	es_point_id *ids;
	size_t n;
	int owned;
	int rc = sel_ids(col, &r->sel, &ids, &n, &owned, err);
	if (!rc && n)
		rc = es_collection_update_payload(col, text, len, ids, n, updated, err);
	if (owned)
		ids_free(ids, n);
	free(text);
	return rc;
}

/* The op as compiled: the parsed JSON of the op text. */
void *api_payload_op_compile(const char *op, size_t len)
{
	json_t *j = json_loadb(op, len, 0, NULL);
	const char *kind = json_string_value(json_object_get(j, "op"));
	if (!kind || (strcmp(kind, "clear") != 0 && strcmp(kind, "delete") != 0 &&
		      strcmp(kind, "set") != 0 && strcmp(kind, "overwrite") != 0)) {
		json_decref(j);
		return NULL;
	}
	if (strcmp(kind, "delete") == 0 ? !json_is_array(json_object_get(j, "keys"))
	    : strcmp(kind, "clear") != 0 ? !json_is_object(json_object_get(j, "payload")) : 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void api_payload_op_free(void *op)
{
	json_decref(op);
}

/* The object at dotted path `key` under root, made (replacing whatever is
 * not an object) when missing; NULL out of memory. */
static json_t *make_path(json_t *root, const char *key)
{
	json_t *cur = root;
	while (*key) {
		size_t n = strcspn(key, ".");
		char *part = es_memdup0(key, n);
		if (!part)
			return NULL;
		json_t *next = json_object_get(cur, part);
		if (!json_is_object(next)) {
			next = json_object();
			if (!next || json_object_set_new(cur, part, next)) {
				free(part);
				return NULL;
			}
		}
		free(part);
		cur = next;
		key += n;
		if (*key == '.')
			key++;
	}
	return cur;
}

/* Remove dotted path `key` from root (nothing when a step is missing or
 * not an object). */
static void delete_path(json_t *root, const char *key)
{
	json_t *cur = root;
	for (;;) {
		size_t n = strcspn(key, ".");
		char *part = es_memdup0(key, n);
		if (!part)
			return;
		if (!key[n]) {
			json_object_del(cur, part);
			free(part);
			return;
		}
		cur = json_object_get(cur, part);
		free(part);
		if (!json_is_object(cur))
			return;
		key += n + 1;
	}
}

int api_payload_op_apply(const void *opv, const char *old, size_t oldlen, char **out,
			 size_t *outlen)
{
	json_t *op = (json_t *)opv;
	const char *kind = json_string_value(json_object_get(op, "op"));
	*out = NULL;
	*outlen = 0;
	if (strcmp(kind, "clear") == 0)
		return 0;
	json_t *res = NULL;
	if (strcmp(kind, "overwrite") == 0) {
		res = json_incref(json_object_get(op, "payload"));
	} else {
		res = old ? json_loadb(old, oldlen, 0, NULL) : NULL;
		if (!json_is_object(res)) {
			json_decref(res);
			res = json_object();
		}
		if (!res)
			return ES_ENOMEM;
		if (strcmp(kind, "set") == 0) {
			const char *key = json_string_value(json_object_get(op, "key"));
			json_t *at = key ? make_path(res, key) : res;
			if (!at || json_object_update(at, json_object_get(op, "payload"))) {
				json_decref(res);
				return ES_ENOMEM;
			}
		} else { /* delete */
			const json_t *keys = json_object_get(op, "keys");
			for (size_t i = 0; i < json_array_size(keys); i++) {
				const char *k = json_string_value(json_array_get(keys, i));
				if (k)
					delete_path(res, k);
			}
		}
	}
	*out = ju_dump(res, outlen);
	json_decref(res);
	return *out ? 0 : ES_ENOMEM;
}
