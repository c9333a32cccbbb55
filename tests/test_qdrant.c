/*
 * test_qdrant.c — Qdrant's REST dialect (server/api_qdrant*.c) through
 * api_dispatch, without a socket, on the small real model (lee-10d, dim
 * 10): the envelope and error shape, ids (UUID spellings), collections,
 * points, search, the api-key header, read-only refusals.  The real
 * clients (npm) run against the binary in tests/compat.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "es_test_api.h"

typedef es_test_api fixture;

static void setup(fixture *f, const char *key, int read_only)
{
	es_test_api_setup(f, (es_test_api_opts){.key = key, .read_only = read_only});
}

#define teardown es_test_api_teardown

/* One request; the parsed answer in *out (NULL: dropped); every Qdrant
 * answer is JSON. */
static int call(fixture *f, const char *m, const char *p, const char *body, json_t **out)
{
	json_t *j;
	int st = es_test_api_call(f, m, p, body, &j);
	ck_assert_msg(j != NULL, "%s %s: no JSON body", m, p);
	if (out)
		*out = j;
	else
		json_decref(j);
	return st;
}

/* The envelope of every answer: a success has result, "ok" and a time; an
 * error has status.error (a message) and a time, and nothing else. */
static void check_envelope(const json_t *j, int st)
{
	char *d = json_dumps(j, 0);
	ck_assert_msg(json_is_real(json_object_get(j, "time")), "%d %s", st, d);
	free(d);
	ck_assert(json_is_real(json_object_get(j, "time")));
	if (st < 400) {
		ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
		ck_assert_ptr_nonnull(json_object_get(j, "result"));
	} else {
		ck_assert(json_is_string(json_object_get(json_object_get(j, "status"), "error")));
		ck_assert_uint_eq(json_object_size(j), 2);
	}
}

static int qcall(fixture *f, const char *m, const char *p, const char *body, json_t **out)
{
	json_t *j;
	int st = call(f, m, p, body, &j);
	check_envelope(j, st);
	if (out)
		*out = j;
	else
		json_decref(j);
	return st;
}

static const char *errmsg(const json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "status"), "error"));
}

#define RESULT(j) json_object_get((j), "result")

START_TEST(test_root_and_collections)
{
	fixture f;
	setup(&f, NULL, 0);
	json_t *j;
	/* GET /: no envelope, a version the clients accept, ours beside it */
	ck_assert_int_eq(call(&f, "GET", "/", NULL, &j), 200);
	ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "1.18.0");
	ck_assert(json_is_string(json_object_get(j, "embedsrv_version")));
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "GET", "/collections", NULL, &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(RESULT(j), "collections")), 0);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "GET", "/collections/docs/exists", NULL, &j), 200);
	ck_assert(json_is_false(json_object_get(RESULT(j), "exists")));
	json_decref(j);
	/* create; unknown fields are ignored as Qdrant ignores them */
	const char *create = "{\"vectors\":{\"size\":10,\"distance\":\"Dot\"},"
			     "\"hnsw_config\":{\"m\":8,\"ef_construct\":50},"
			     "\"on_disk_payload\":true,\"not_a_field\":[1]}";
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/docs", create, &j), 200);
	ck_assert(json_is_true(RESULT(j)));
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/docs", create, &j), 409);
	ck_assert_ptr_nonnull(strstr(errmsg(j), "already exists"));
	json_decref(j);
	/* one named vector, the name "" included */
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/named",
			       "{\"vectors\":{\"\":{\"size\":4,\"distance\":\"Euclid\"}}}", NULL), 200);
	ck_assert_int_eq(qcall(&f, "GET", "/collections/docs", NULL, &j), 200);
	json_t *cfg = json_object_get(RESULT(j), "config");
	json_t *vec = json_object_get(json_object_get(cfg, "params"), "vectors");
	ck_assert_int_eq(json_integer_value(json_object_get(vec, "size")), 10);
	ck_assert_str_eq(json_string_value(json_object_get(vec, "distance")), "Dot");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(cfg, "hnsw_config"), "m")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(RESULT(j), "points_count")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(RESULT(j), "status")), "green");
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "GET", "/collections/named", NULL, &j), 200);
	vec = json_object_get(json_object_get(json_object_get(RESULT(j), "config"), "params"), "vectors");
	ck_assert_str_eq(json_string_value(json_object_get(vec, "distance")), "Euclid");
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "GET", "/collections", NULL, &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(RESULT(j), "collections")), 2);
	json_decref(j);
	/* wrong types and unsupported values: 400 with Qdrant's shape */
	static const char *const bad[] = {
		"{}", "{\"vectors\":3}", "{\"vectors\":{\"size\":\"10\",\"distance\":\"Cosine\"}}",
		"{\"vectors\":{\"size\":10,\"distance\":\"Manhattan\"}}",
		"{\"vectors\":{\"size\":10,\"distance\":\"cosine\"}}",
		"{\"vectors\":{\"a\":{\"size\":3,\"distance\":\"Dot\"},\"b\":{\"size\":3,\"distance\":\"Dot\"}}}",
		"{\"vectors\":{\"size\":10,\"distance\":\"Dot\"},\"quantization_config\":{\"binary\":{}}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(qcall(&f, "PUT", "/collections/bad", bad[i], &j), 400);
		json_decref(j);
	}
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/bad", "{not json", NULL), 400);
	ck_assert_int_eq(qcall(&f, "GET", "/collections/bad", NULL, NULL), 404);
	/* payload index: accepted on a collection that exists */
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/docs/index",
			       "{\"field_name\":\"metadata.source\",\"field_schema\":\"keyword\"}", NULL), 200);
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/nope/index", "{\"field_name\":\"a\"}", NULL), 404);
	ck_assert_int_eq(qcall(&f, "DELETE", "/collections/docs/index/metadata.source", NULL, NULL), 200);
	/* delete: true, then false for a collection that is gone */
	ck_assert_int_eq(qcall(&f, "DELETE", "/collections/named", NULL, &j), 200);
	ck_assert(json_is_true(RESULT(j)));
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "DELETE", "/collections/named", NULL, &j), 200);
	ck_assert(json_is_false(RESULT(j)));
	json_decref(j);
	teardown(&f);
}
END_TEST

static const char *const UUID_DASHED = "5c56c793-69f3-4fbf-87e6-c4bf54c28c4a";

/* Long on purpose (~200 lines): one collection driven through Qdrant's
 * point routes in the order a client uses them (upsert forms, id
 * spellings, retrieve, search, query, scroll, count, delete), each answer
 * checked against the points the earlier calls left. */
START_TEST(test_points_and_search)
{
	fixture f;
	setup(&f, NULL, 0);
	json_t *j;
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/c",
			       "{\"vectors\":{\"size\":10,\"distance\":\"Cosine\"}}", NULL), 200);
	/* a UUID in capitals without dashes, a named vector, a document, our
	 * "text" extension, and an unknown field */
	const char *up =
		"{\"points\":["
		"{\"id\":1,\"vector\":[1,0,0,0,0,0,0,0,0,0],\"payload\":{\"k\":\"a\",\"n\":1}},"
		"{\"id\":\"5C56C79369F34FBF87E6C4BF54C28C4A\",\"vector\":{\"\":[0,1,0,0,0,0,0,0,0,0]},"
		"\"payload\":{\"k\":\"b\",\"n\":2}},"
		"{\"id\":3,\"vector\":{\"text\":\"the government said\"},\"payload\":{\"k\":\"c\"}},"
		"{\"id\":4,\"text\":\"the minister said\",\"payload\":{\"metadata\":{\"source\":\"w\"}},"
		"\"shard_key\":null}]}";
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/c/points", up, &j), 200);
	ck_assert_str_eq(json_string_value(json_object_get(RESULT(j), "status")), "completed");
	json_decref(j);
	/* the batch form */
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/c/points",
			       "{\"batch\":{\"ids\":[5],\"vectors\":[[0,0,1,0,0,0,0,0,0,0]],"
			       "\"payloads\":[{\"k\":\"e\"}]}}", NULL), 200);
	/* every UUID spelling finds the point; answers spell it dashed */
	static const char *const spellings[] = {
		"5c56c793-69f3-4fbf-87e6-c4bf54c28c4a", "5C56C79369F34FBF87E6C4BF54C28C4A",
		"%7B5c56c793-69f3-4fbf-87e6-c4bf54c28c4a%7D",
		"urn:uuid:5c56c793-69f3-4fbf-87e6-c4bf54c28c4a",
	};
	for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
		char path[128];
		snprintf(path, sizeof path, "/collections/c/points/%s", spellings[i]);
		ck_assert_int_eq(qcall(&f, "GET", path, NULL, &j), 200);
		ck_assert_str_eq(json_string_value(json_object_get(RESULT(j), "id")), UUID_DASHED);
		ck_assert_str_eq(json_string_value(json_object_get(
			json_object_get(RESULT(j), "payload"), "k")), "b");
		json_decref(j);
	}
	ck_assert_int_eq(qcall(&f, "GET", "/collections/c/points/not-a-uuid", NULL, NULL), 400);
	ck_assert_int_eq(qcall(&f, "GET", "/collections/c/points/77", NULL, NULL), 404);
	/* retrieve: missing ids left out, payload keys selected, vectors on ask */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points",
			       "{\"ids\":[\"5c56c79369f34fbf87e6c4bf54c28c4a\",77,1],"
			       "\"with_payload\":[\"n\"],\"with_vector\":true}", &j), 200);
	ck_assert_uint_eq(json_array_size(RESULT(j)), 2);
	json_t *p0 = json_array_get(RESULT(j), 0);
	ck_assert_str_eq(json_string_value(json_object_get(p0, "id")), UUID_DASHED);
	ck_assert_uint_eq(json_object_size(json_object_get(p0, "payload")), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(p0, "vector")), 10);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points", "{\"ids\":[1]}", &j), 200);
	ck_assert_ptr_null(json_object_get(json_array_get(RESULT(j), 0), "vector"));
	json_decref(j);
	/* query by vector: {"points": [ScoredPoint]} with version; no payload
	 * unless asked (Qdrant's default) */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":[1,0.1,0,0,0,0,0,0,0,0],\"limit\":2}", &j), 200);
	json_t *pts = json_object_get(RESULT(j), "points");
	ck_assert_uint_eq(json_array_size(pts), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(pts, 0), "id")), 1);
	ck_assert(json_is_integer(json_object_get(json_array_get(pts, 0), "version")));
	ck_assert_ptr_null(json_object_get(json_array_get(pts, 0), "payload"));
	json_decref(j);
	/* offset skips, nearest and a point id as the query */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":{\"nearest\":[1,0.1,0,0,0,0,0,0,0,0]},\"limit\":1,"
			       "\"offset\":1,\"with_payload\":true}", &j), 200);
	pts = json_object_get(RESULT(j), "points");
	ck_assert_uint_eq(json_array_size(pts), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(pts, 0), "id")), UUID_DASHED);
	ck_assert_ptr_nonnull(json_object_get(json_array_get(pts, 0), "payload"));
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":1,\"limit\":10}", &j), 200);
	pts = json_object_get(RESULT(j), "points");
	for (size_t i = 0; i < json_array_size(pts); i++) /* the point itself is not a hit */
		ck_assert_int_ne(json_integer_value(json_object_get(json_array_get(pts, i), "id")), 1);
	json_decref(j);
	/* our extension: a text query, embedded by the server */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":{\"text\":\"the minister said\"},\"limit\":1}", &j), 200);
	pts = json_object_get(RESULT(j), "points");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(pts, 0), "id")), 4);
	json_decref(j);
	/* filter on a dotted key; score_threshold; hnsw_ef */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":[1,0,0,0,0,0,0,0,0,0],\"filter\":{\"must\":[{\"key\":"
			       "\"metadata.source\",\"match\":{\"value\":\"w\"}}]},"
			       "\"params\":{\"hnsw_ef\":32,\"exact\":false}}", &j), 200);
	pts = json_object_get(RESULT(j), "points");
	ck_assert_uint_eq(json_array_size(pts), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(pts, 0), "id")), 4);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":[1,0,0,0,0,0,0,0,0,0],\"score_threshold\":0.99}", &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(RESULT(j), "points")), 1);
	json_decref(j);
	/* the answer is re-shaped as text (shape_hits_text): payloads holding
	 * objects, braces and escaped quotes in strings come through intact,
	 * and "version" goes into each hit only */
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/c/points",
			       "{\"points\":[{\"id\":6,\"vector\":[0,0,0,0,0,0,0,0,0,1],"
			       "\"payload\":{\"x\":{\"id\":1,\"s\":\"a\\\"{[b}\\\\\"},\"y\":[{},{\"z\":[]}]}}]}",
			       NULL), 200);
	for (int legacy = 0; legacy < 2; legacy++) {
		ck_assert_int_eq(qcall(&f, "POST", legacy ? "/collections/c/points/search"
							   : "/collections/c/points/query",
				       legacy ? "{\"vector\":[0,0,0,0,0,0,0,0,0,1],\"limit\":2,\"with_payload\":true}"
					      : "{\"query\":[0,0,0,0,0,0,0,0,0,1],\"limit\":2,\"with_payload\":true}",
				       &j), 200);
		pts = legacy ? RESULT(j) : json_object_get(RESULT(j), "points");
		ck_assert_uint_eq(json_array_size(pts), 2);
		json_t *h = json_array_get(pts, 0);
		ck_assert_int_eq(json_integer_value(json_object_get(h, "id")), 6);
		ck_assert_int_eq(json_integer_value(json_object_get(h, "version")), 0);
		json_t *x = json_object_get(json_object_get(h, "payload"), "x");
		ck_assert_uint_eq(json_object_size(x), 2);
		ck_assert_str_eq(json_string_value(json_object_get(x, "s")), "a\"{[b}\\");
		json_t *y = json_object_get(json_object_get(h, "payload"), "y");
		ck_assert_uint_eq(json_object_size(json_array_get(y, 0)), 0);
		ck_assert_uint_eq(json_object_size(json_array_get(y, 1)), 1);
		ck_assert_ptr_nonnull(json_object_get(json_array_get(pts, 1), "version"));
		json_decref(j);
	}
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query",
			       "{\"query\":[1,0,0,0,0,0,0,0,0,0],\"filter\":{\"must\":[{\"key\":\"k\","
			       "\"match\":{\"value\":\"none\"}}]}}", &j), 200);
	ck_assert(json_is_array(json_object_get(RESULT(j), "points")));
	ck_assert_uint_eq(json_array_size(json_object_get(RESULT(j), "points")), 0);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/delete", "{\"points\":[6]}", NULL), 200);
	/* the legacy search: a bare list, and {"name", "vector"} */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/search",
			       "{\"vector\":{\"name\":\"\",\"vector\":[0,1,0,0,0,0,0,0,0,0]},"
			       "\"limit\":1,\"with_payload\":true}", &j), 200);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(RESULT(j), 0), "id")),
			 UUID_DASHED);
	json_decref(j);
	/* batches */
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query/batch",
			       "{\"searches\":[{\"query\":[1,0,0,0,0,0,0,0,0,0],\"limit\":1},"
			       "{\"query\":[0,0,1,0,0,0,0,0,0,0],\"limit\":2}]}", &j), 200);
	ck_assert_uint_eq(json_array_size(RESULT(j)), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(RESULT(j), 1), "points")), 2);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/search/batch",
			       "{\"searches\":[{\"vector\":[1,0,0,0,0,0,0,0,0,0],\"limit\":1}]}", &j), 200);
	ck_assert_uint_eq(json_array_size(json_array_get(RESULT(j), 0)), 1);
	json_decref(j);
	/* bad searches: 400 (Qdrant's "Wrong input") or 404 */
	static const char *const bad[] = {
		"{}", "{\"query\":[1,2]}", "{\"query\":\"zzz\"}", "{\"query\":{\"recommend\":{}}}",
		"{\"query\":[1,0,0,0,0,0,0,0,0,0],\"limit\":\"3\"}",
		"{\"query\":[1,0,0,0,0,0,0,0,0,0],\"with_payload\":3}",
		"{\"query\":[1,0,0,0,0,0,0,0,0,0],\"prefetch\":[{\"query\":[1]}]}",
		"{\"query\":[1,0,0,0,0,0,0,0,0,0],\"filter\":{\"must\":3}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = qcall(&f, "POST", "/collections/c/points/query", bad[i], NULL);
		ck_assert_msg(st == 400, "%s -> %d", bad[i], st);
	}
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/query", "{\"query\":77}", NULL), 404);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/zz/points/query",
			       "{\"query\":[1,0,0,0,0,0,0,0,0,0]}", NULL), 404);
	/* scroll every page, count, delete */
	size_t seen = 0;
	json_t *off = json_null();
	for (int page = 0; page < 10; page++) {
		char body[96];
		if (json_is_integer(off))
			snprintf(body, sizeof body, "{\"limit\":2,\"offset\":%lld}",
				 (long long)json_integer_value(off));
		else
			snprintf(body, sizeof body, "{\"limit\":2}");
		ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/scroll", body, &j), 200);
		seen += json_array_size(json_object_get(RESULT(j), "points"));
		json_decref(off);
		off = json_incref(json_object_get(RESULT(j), "next_page_offset"));
		ck_assert_ptr_nonnull(off);
		json_decref(j);
		if (json_is_null(off))
			break;
	}
	json_decref(off);
	ck_assert_uint_eq(seen, 5);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/count", "{\"exact\":true}", &j), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(RESULT(j), "count")), 5);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/delete",
			       "{\"points\":[\"5c56c793-69f3-4fbf-87e6-c4bf54c28c4a\",1]}", NULL), 200);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/count", NULL, &j), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(RESULT(j), "count")), 3);
	json_decref(j);
	ck_assert_int_eq(qcall(&f, "POST", "/collections/c/points/delete", "{\"points\":[\"x\"]}", NULL), 400);
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/c/points", "{\"points\":[{\"id\":-1,"
			       "\"vector\":[1,0,0,0,0,0,0,0,0,0]}]}", NULL), 400);
	ck_assert_int_eq(qcall(&f, "PUT", "/collections/c/points", "{\"points\":[{\"id\":9,"
			       "\"vector\":[1,0]}]}", NULL), 400);
	teardown(&f);
}
END_TEST

/* The api-key header and the bearer token both authenticate; without a key
 * a Qdrant route answers 401 in Qdrant's shape.  GET / is open (as
 * Qdrant's), so clients can read the version before they authenticate. */
START_TEST(test_auth_and_read_only)
{
	fixture f;
	setup(&f, "sekrit", 0);
	api_request req;
	api_response r;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/collections";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 401);
	check_envelope(r.body, 401);
	api_response_free(&r);
	req.api_key = "wrong";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 401);
	api_response_free(&r);
	req.api_key = "sekrit";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	req.path = "/v1/info"; /* the header works on our own routes too */
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	req.api_key = NULL;
	req.authorization = "Bearer sekrit";
	req.path = "/collections";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	req.authorization = NULL;
	req.path = "/";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	teardown(&f);

	/* a read-only server refuses every Qdrant write, in Qdrant's shape */
	setup(&f, NULL, 1);
	static const char *const writes[][3] = {
		{"PUT", "/collections/c", "{\"vectors\":{\"size\":10,\"distance\":\"Dot\"}}"},
		{"DELETE", "/collections/c", ""},
		{"PUT", "/collections/c/points", "{\"points\":[]}"},
		{"POST", "/collections/c/points/delete", "{\"points\":[1]}"},
		{"PUT", "/collections/c/index", "{\"field_name\":\"a\"}"},
		{"DELETE", "/collections/c/index/a", ""},
	};
	for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
		json_t *j;
		ck_assert_int_eq(call(&f, writes[i][0], writes[i][1], writes[i][2], &j), 403);
		check_envelope(j, 403);
		ck_assert_ptr_nonnull(strstr(errmsg(j), "read-only"));
		json_decref(j);
	}
	teardown(&f);
}
END_TEST

Suite *qdrant_suite(void)
{
	Suite *s = suite_create("qdrant");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_root_and_collections);
	tcase_add_test(tc, test_points_and_search);
	tcase_add_test(tc, test_auth_and_read_only);
	suite_add_tcase(s, tc);
	return s;
}
