/*
 * api_qdrant.c — Qdrant's REST dialect at Qdrant's paths (no /v1 prefix):
 * the envelope, point ids, GET /, and the collection routes.  Points and
 * search are in api_qdrant_points.c; see api_qdrant.h for how the
 * translation works.
 *
 * Shapes follow Qdrant's OpenAPI spec (docs/redoc/master/openapi.json in
 * qdrant/qdrant).  A success is {"result": ..., "status": "ok", "time":
 * seconds}; an error {"status": {"error": "..."}, "time": seconds} with the
 * status the /v1 handler chose (400 wrong type, 404 not found, 409 "already
 * exists"), except that our 422 (a well-typed but bad value) is Qdrant's 400
 * "Wrong input".  Unknown request fields are ignored, as Qdrant
 * ignores them: only the fields translated are read.
 *
 * What Qdrant has and this server does not (one unnamed dense vector per
 * collection, no sparse or multi vectors, no shards) answers 400 saying
 * so.  Qdrant settings with no counterpart here (optimizers, WAL sizes,
 * shards) are reported in GET /collections/{c} with Qdrant's defaults, so
 * clients that parse them strictly accept the answer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_qdrant.h"
#include "es_config.h"
#include "version.h"

void qd_call(api_call *c, api_handler h, json_t *v1, api_response *out)
{
	api_call sub = *c;
	sub.json = v1;
	h(&sub, out);
	json_decref(v1);
}

json_t *qd_take_result(api_response *out)
{
	if (out->status >= 300)
		return NULL;
	json_t *body = out->body;
	if (out->text) {
		body = json_loadb(out->text, out->text_len, 0, NULL);
		free(out->text);
		out->text = NULL;
	} else {
		out->body = NULL;
	}
	json_t *r = json_incref(json_object_get(body, "result"));
	json_decref(body);
	if (!r)
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
	return r;
}

void qd_ok_update(api_response *out)
{
	api_ok(out, 200, json_pack("{s:{s:i, s:s}}", "result", "operation_id", 0,
				   "status", "completed"));
}

/* ---- envelope --------------------------------------------------------- */

void api_qdrant_envelope(api_response *out, double seconds)
{
	if (out->status >= 400) {
		if (out->status == 422) /* Qdrant's "Wrong input" is a 400 */
			out->status = 400;
		const char *msg = json_string_value(
			json_object_get(json_object_get(out->body, "error"), "message"));
		json_t *b = json_pack("{s:{s:s}, s:f}", "status", "error",
				      msg ? msg : "error", "time", seconds);
		json_decref(out->body);
		out->body = b;
		if (!b) {
			out->status = 503;
			out->body = ju_error_body(503, NULL, "out_of_memory", "out of memory");
		}
		return;
	}
	if (out->body) {
		json_object_set_new(out->body, "status", json_string("ok"));
		json_object_set_new(out->body, "time", json_real(seconds));
		return;
	}
	if (out->text && out->text_len && out->text[out->text_len - 1] == '}') {
		/* hand-written JSON: replace its closing brace */
		char tail[64];
		int n = snprintf(tail, sizeof tail, ",\"status\":\"ok\",\"time\":%.6f}", seconds);
		char *t = realloc(out->text, out->text_len + (size_t)n + 1);
		if (!t) {
			api_error(out, 503, NULL, "out_of_memory", "out of memory");
			api_qdrant_envelope(out, seconds);
			return;
		}
		memcpy(t + out->text_len - 1, tail, (size_t)n + 1);
		out->text = t;
		out->text_len += (size_t)n - 1;
	}
}

/* ---- ids -------------------------------------------------------------- */

/* A UUID spelled as the uuid crate accepts it (also "urn:uuid:..." and
 * "{...}") -> lowercase dashed into out[37] (api_uuid_canonical); 0 or -1. */
static int uuid_norm(const char *s, size_t len, char out[37])
{
	if (len == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) {
		s += 9;
		len -= 9;
	}
	if (len == 38 && s[0] == '{' && s[37] == '}') {
		s++;
		len -= 2;
	}
	return api_uuid_canonical(s, len, out) ? 0 : -1;
}

json_t *qd_id(const json_t *v, const char *param, ju_err *e)
{
	uint64_t big;
	if (ju_u64_value(v, &big)) /* up to 2^64-1, as the /v1 parser reads it */
		return json_incref((json_t *)v);
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0) {
			ju_fail(e, 400, param, "invalid_id",
				"'%s': a point id is an unsigned integer or a UUID (got %lld)", param,
				(long long)json_integer_value(v));
			return NULL;
		}
		return json_incref((json_t *)v);
	}
	if (json_is_string(v)) {
		char u[37];
		if (uuid_norm(json_string_value(v), json_string_length(v), u)) {
			ju_fail(e, 400, param, "invalid_id",
				"'%s': unable to parse UUID '%.80s' (a point id is an unsigned integer "
				"or a UUID)", param, json_string_value(v));
			return NULL;
		}
		return json_string(u);
	}
	ju_fail(e, 400, param, "invalid_type",
		"'%s' must be an unsigned integer or a UUID string", param);
	return NULL;
}

int qd_id_text(const char *s, size_t len, char *out, size_t outlen, ju_err *e)
{
	size_t i = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (len && i == len && len < outlen) { /* an integer: es_point_id_from_text's */
		memcpy(out, s, len);
		out[len] = '\0';
		return 0;
	}
	char u[37];
	if (outlen < sizeof u || uuid_norm(s, len, u))
		return ju_fail(e, 400, "id", "invalid_id",
			       "unable to parse point id '%.80s' (an unsigned integer or a UUID)", s);
	memcpy(out, u, sizeof u);
	return 0;
}

/* ---- with_payload / with_vector --------------------------------------- */

int qd_want(const json_t *v, int def, const char *param, int *want, ju_err *e)
{
	if (!v || json_is_null(v)) {
		*want = def;
		return 0;
	}
	if (json_is_boolean(v)) {
		*want = json_is_true(v);
		return 0;
	}
	if (json_is_array(v)) {
		*want = json_array_size(v) > 0;
		return 0;
	}
	if (json_is_object(v) && (json_object_get(v, "include") || json_object_get(v, "exclude"))) {
		*want = 1;
		return 0;
	}
	return ju_fail(e, 400, param, "invalid_type",
		       "'%s' must be a boolean, a list of keys or {\"include\"|\"exclude\": [keys]}",
		       param);
}

static int in_list(const json_t *arr, const char *key)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), key) == 0)
			return 1;
	return 0;
}

void qd_select_payload(json_t *pts, const json_t *sel)
{
	const json_t *inc = json_is_array(sel) ? sel : json_object_get(sel, "include");
	const json_t *exc = json_object_get(sel, "exclude");
	if (!json_is_array(inc) && !json_is_array(exc))
		return;
	size_t i;
	json_t *p;
	json_array_foreach(pts, i, p) {
		json_t *pl = json_object_get(p, "payload");
		if (!json_is_object(pl))
			continue;
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(pl, tmp, k, v) {
			if ((json_is_array(inc) && !in_list(inc, k)) ||
			    (json_is_array(exc) && in_list(exc, k)))
				json_object_del(pl, k);
		}
	}
}

/* ---- GET / ------------------------------------------------------------ */

void api_h_qd_root(api_call *c, api_response *out)
{
	(void)c;
	/* Qdrant's root answer has no envelope: {"title", "version", "commit"} */
	api_ok(out, 200, json_pack("{s:s, s:s, s:s, s:s}", "title",
				   "embedsrv - Qdrant-compatible REST API", "version",
				   QD_API_VERSION, "commit", ES_GIT_COMMIT, "embedsrv_version",
				   ES_VERSION));
}

/* ---- collections ------------------------------------------------------ */

void api_h_qd_coll_list(api_call *c, api_response *out)
{
	qd_call(c, api_h_coll_list, NULL, out);
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	json_t *arr = json_array();
	size_t i;
	json_t *col;
	json_array_foreach(r, i, col)
		json_array_append_new(arr, json_pack("{s:O}", "name", json_object_get(col, "name")));
	json_decref(r);
	api_ok(out, 200, json_pack("{s:{s:o}}", "result", "collections", arr));
}

void api_h_qd_coll_exists(api_call *c, api_response *out)
{
	es_collection *col;
	es_error err;
	int rc = es_registry_get(c->ctx->reg, c->name, &col, &err);
	if (rc && rc != ES_ENOTFOUND) {
		api_error_es(out, rc, &err, "name");
		return;
	}
	if (!rc)
		es_collection_release(col);
	api_ok(out, 200, json_pack("{s:{s:b}}", "result", "exists", rc == 0));
}

static const struct {
	const char *qdrant, *ours;
} distances[] = {{"Cosine", "cosine"}, {"Dot", "dot"}, {"Euclid", "l2"}};

/* PUT /collections/{c} body -> the /v1 create body (new reference), or
 * NULL with e filled. */
static json_t *create_body(const json_t *j, ju_err *e)
{
	const json_t *vec = json_object_get(j, "vectors");
	if (!json_is_object(vec))
		return ju_fail(e, 400, "vectors", vec ? "invalid_type" : "missing_field",
			       "'vectors' must be {\"size\": N, \"distance\": \"Cosine\"|\"Dot\"|"
			       "\"Euclid\"} (one dense vector per collection)"), NULL;
	if (!json_object_get(vec, "size")) {
		/* named vectors: {"name": {size, distance}}; one only */
		if (json_object_size(vec) != 1)
			return ju_fail(e, 400, "vectors", "unsupported",
				       "this server keeps one vector per point: name one vector "
				       "in 'vectors' (got %zu)", json_object_size(vec)), NULL;
		vec = json_object_iter_value(json_object_iter((json_t *)vec));
		if (!json_is_object(vec))
			return ju_fail(e, 400, "vectors", "invalid_type",
				       "'vectors' must map the vector's name to {\"size\", \"distance\"}"),
			       NULL;
	}
	const json_t *sz = json_object_get(vec, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 1 || json_integer_value(sz) > 65536)
		return ju_fail(e, 400, "vectors.size", "invalid_type",
			       "'vectors.size' must be an integer in 1..65536"), NULL;
	const char *dist = json_string_value(json_object_get(vec, "distance"));
	const char *metric = NULL;
	for (size_t i = 0; dist && i < sizeof distances / sizeof distances[0]; i++)
		if (strcmp(dist, distances[i].qdrant) == 0)
			metric = distances[i].ours;
	if (!metric)
		return ju_fail(e, 400, "vectors.distance", "invalid_value",
			       "'vectors.distance' must be \"Cosine\", \"Dot\" or \"Euclid\"%s",
			       dist && strcmp(dist, "Manhattan") == 0
				       ? " (Manhattan is not supported here)" : ""), NULL;
	const json_t *sparse = json_object_get(j, "sparse_vectors");
	if (sparse && !json_is_null(sparse) && json_object_size(sparse))
		return ju_fail(e, 400, "sparse_vectors", "unsupported",
			       "sparse vectors are not supported; lexical search is built in "
			       "(/v1 search \"mode\": \"lexical\")"), NULL;
	json_t *b = json_pack("{s:O, s:s}", "dim", sz, "metric", metric);
	/* hnsw_config on the collection, or on the vector (Qdrant takes both) */
	const json_t *hc = json_object_get(vec, "hnsw_config");
	if (!json_is_object(hc))
		hc = json_object_get(j, "hnsw_config");
	if (json_is_object(hc)) {
		const json_t *m = json_object_get(hc, "m"), *efc = json_object_get(hc, "ef_construct");
		if (json_is_integer(m) && json_integer_value(m) > 0)
			json_object_set(b, "m", (json_t *)m);
		if (json_is_integer(efc))
			json_object_set(b, "ef_construction", (json_t *)efc);
	}
	const json_t *qc = json_object_get(vec, "quantization_config");
	if (!json_is_object(qc))
		qc = json_object_get(j, "quantization_config");
	if (json_is_object(qc)) {
		const json_t *sc = json_object_get(qc, "scalar");
		const char *t = json_string_value(json_object_get(sc, "type"));
		if (!t || strcmp(t, "int8") != 0) {
			json_decref(b);
			return ju_fail(e, 400, "quantization_config", "unsupported",
				       "only {\"scalar\": {\"type\": \"int8\"}} quantization is supported"),
			       NULL;
		}
		json_object_set_new(b, "quantization", json_string("int8"));
	}
	return b;
}

void api_h_qd_coll_create(api_call *c, api_response *out)
{
	ju_err e;
	json_t *b = create_body(c->json ? c->json : json_null(), &e);
	if (!b) {
		api_error_ju(out, &e);
		return;
	}
	qd_call(c, api_h_coll_create, b, out);
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	json_decref(r);
	api_ok(out, 200, json_pack("{s:b}", "result", 1));
}

static json_t *qd_payload_schema(const json_t *idx);

void api_h_qd_coll_get(api_call *c, api_response *out)
{
	qd_call(c, api_h_coll_get, NULL, out);
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	const char *metric = json_string_value(json_object_get(r, "metric"));
	const char *dist = "Cosine";
	for (size_t i = 0; metric && i < sizeof distances / sizeof distances[0]; i++)
		if (strcmp(metric, distances[i].ours) == 0)
			dist = distances[i].qdrant;
	json_t *count = json_object_get(r, "count");
	json_t *quant = json_is_string(json_object_get(r, "quantization"))
				? json_pack("{s:{s:s, s:b}}", "scalar", "type", "int8",
					    "always_ram", 1)
				: json_null();
	/* Qdrant's knobs this server does not have carry Qdrant's defaults
	 * (see the file comment); "embedsrv" holds our own description. */
	json_t *res = json_pack(
		"{s:s, s:s, s:O, s:O, s:i,"
		" s:{s:{s:{s:O, s:s}, s:i, s:i, s:i, s:b},"
		"    s:{s:O, s:O, s:i, s:i, s:b},"
		"    s:{s:f, s:i, s:i, s:n, s:n, s:i, s:i, s:n},"
		"    s:{s:i, s:i}, s:o},"
		" s:o, s:O}",
		"status", "green", "optimizer_status", "ok",
		"indexed_vectors_count", count, "points_count", count, "segments_count", 1,
		"config", "params", "vectors", "size", json_object_get(r, "dim"), "distance", dist,
		"shard_number", 1, "replication_factor", 1, "write_consistency_factor", 1,
		"on_disk_payload", 0,
		"hnsw_config", "m", json_object_get(r, "m"), "ef_construct",
		json_object_get(r, "ef_construction"), "full_scan_threshold", 10000,
		"max_indexing_threads", 0, "on_disk", 0,
		"optimizer_config", "deleted_threshold", 0.2, "vacuum_min_vector_number", 1000,
		"default_segment_number", 0, "max_segment_size", "memmap_threshold",
		"indexing_threshold", 10000, "flush_interval_sec", 5,
		"max_optimization_threads",
		"wal_config", "wal_capacity_mb", 32, "wal_segments_ahead", 0,
		"quantization_config", quant,
		"payload_schema", qd_payload_schema(json_object_get(r, "payload_indexes")),
		"embedsrv", r);
	json_decref(r);
	api_ok(out, 200, json_pack("{s:o}", "result", res));
}

void api_h_qd_coll_delete(api_call *c, api_response *out)
{
	qd_call(c, api_h_coll_delete, NULL, out);
	if (out->status == 404) { /* Qdrant: deleting a missing collection is false */
		api_ok(out, 200, json_pack("{s:b}", "result", 0));
		return;
	}
	json_t *r = qd_take_result(out);
	if (!r)
		return;
	json_decref(r);
	api_ok(out, 200, json_pack("{s:b}", "result", 1));
}

/* Qdrant's field schemas: the two this server indexes, and the others it
 * accepts without building anything (filters on such fields work as
 * without an index: evaluated on the parsed payloads). */
static const char *const qd_schemas_accepted[] = {"float", "geo", "text", "bool", "datetime",
						  "uuid", NULL};

/* PUT /collections/{c}/index {"field_name", "field_schema": "keyword" |
 * {"type": "keyword", ...}}: a real payload index for keyword and
 * integer (api_index.c); DELETE /collections/{c}/index/{field} drops it
 * (a field without an index: still "completed", as Qdrant answers). */
void api_h_qd_index(api_call *c, api_response *out)
{
	if (!c->json) { /* DELETE */
		es_collection *col = api_get_collection(c, c->name, "name", out);
		if (!col)
			return;
		es_error err;
		es_error_clear(&err);
		int rc = es_collection_drop_index(col, c->id, &err);
		es_collection_release(col);
		if (rc && rc != ES_ENOTFOUND)
			api_error_es(out, rc, &err, NULL);
		else
			qd_ok_update(out);
		return;
	}
	const json_t *f = json_object_get(c->json, "field_name");
	const json_t *s = json_object_get(c->json, "field_schema");
	if (!json_is_string(f)) {
		api_error(out, 400, "field_name", "invalid_type", "'field_name' must be a string");
		return;
	}
	if (json_is_object(s))
		s = json_object_get(s, "type");
	const char *type = json_string_value(s);
	es_pindex_kind kind = 0;
	int known = 0;
	for (size_t i = 0; type && qd_schemas_accepted[i]; i++)
		known |= strcmp(type, qd_schemas_accepted[i]) == 0;
	if (s && !json_is_null(s) && !known && (!type || es_pindex_kind_parse(type, &kind) != 0)) {
		api_error(out, 400, "field_schema", "invalid_type",
			  "'field_schema' must be one of keyword, integer, float, geo, text, bool, "
			  "datetime, uuid (or {\"type\": ...})");
		return;
	}
	if (kind) {
		if (api_index_apply(c, json_string_value(f), kind, out) == 0)
			qd_ok_update(out);
		return;
	}
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return;
	es_collection_release(col);
	qd_ok_update(out);
}

/* Qdrant's payload_schema from our "payload_indexes". */
static json_t *qd_payload_schema(const json_t *idx)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < json_array_size(idx); i++) {
		const json_t *x = json_array_get(idx, i);
		json_object_set_new(o, json_string_value(json_object_get(x, "field")),
				    json_pack("{s:O, s:O}", "data_type", json_object_get(x, "type"),
					      "points", json_object_get(x, "points")));
	}
	return o;
}
