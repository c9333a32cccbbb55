/*
 * test_routes.c — the route table and api_dispatch without a socket:
 * pattern matching with {name}/{id}, 404/405 (Allow), 401 with a key,
 * 413/415, and handlers end to end through api_handle (the fuzzing entry
 * point) on a small real model.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "es_test_api.h"
#include "routes.h"
#include "ui_assets.h"

START_TEST(test_match)
{
	api_call c;
	char allow[64];
	memset(&c, 0, sizeof c);
	int r = routes_match("GET", "/v1/collections/docs/points/doc-8", &c, allow, sizeof allow);
	ck_assert_int_ge(r, 0);
	ck_assert_str_eq(api_route_pattern((size_t)r), "/v1/collections/{name}/points/{id}");
	ck_assert_str_eq(c.name, "docs");
	ck_assert_str_eq(c.id, "doc-8");
	ck_assert_uint_eq(c.id_len, 5);
	r = routes_match("POST", "/v1/collections/docs/points/delete", &c, allow, sizeof allow);
	ck_assert_str_eq(api_route_pattern((size_t)r), "/v1/collections/{name}/points/delete");
	r = routes_match("GET", "/v1/collections/", &c, allow, sizeof allow);
	ck_assert_str_eq(api_route_pattern((size_t)r), "/v1/collections");
	ck_assert_int_eq(routes_match("POST", "/v1/collections", &c, allow, sizeof allow), -1);
	ck_assert_str_eq(allow, "GET");
	ck_assert_int_eq(routes_match("PATCH", "/v1/collections/x", &c, allow, sizeof allow), -1);
	ck_assert_str_eq(allow, "PUT, GET, DELETE");
	ck_assert_int_eq(routes_match("GET", "/v1/nothing", &c, allow, sizeof allow), -2);
	ck_assert_int_eq(routes_match("GET", "/v1/collections//points", &c, allow, sizeof allow), -2);
	ck_assert_int_eq(routes_match("GET", "/healthzz", &c, allow, sizeof allow), -2);
	ck_assert_int_eq(routes_match("GET", "", &c, allow, sizeof allow), -2);
	/* HEAD is served by GET routes */
	ck_assert_int_ge(routes_match("HEAD", "/healthz", &c, allow, sizeof allow), 0);
	ck_assert_uint_ge(api_route_count(), 19);
}
END_TEST

typedef es_test_api fixture;

static void setup_ctx_ui(fixture *f, const char *key, int no_ui)
{
	es_test_api_setup(f, (es_test_api_opts){.key = key, .no_ui = no_ui, .max_points = 3});
}

static void setup_ctx(fixture *f, const char *key)
{
	setup_ctx_ui(f, key, 0);
}

#define teardown_ctx es_test_api_teardown
#define call es_test_api_call

static const char *err_code(json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

START_TEST(test_dispatch_errors)
{
	fixture f;
	setup_ctx(&f, "k1");
	api_request req;
	api_response r;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/v1/info";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 401);
	ck_assert_str_eq(err_code(r.body), "invalid_api_key");
	api_response_free(&r);
	req.authorization = "Bearer k2";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 401);
	api_response_free(&r);
	req.authorization = "Bearer k1";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	req.authorization = NULL;
	req.path = "/healthz";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	/* 405 carries Allow */
	req.authorization = "bearer k1";
	req.method = "DELETE";
	req.path = "/v1/embeddings";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 405);
	ck_assert_str_eq(r.allow, "POST");
	api_response_free(&r);
	/* 415, 413 */
	req.method = "POST";
	req.body = "{\"input\":\"x\"}";
	req.len = strlen(req.body);
	req.content_type = "text/plain";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 415);
	api_response_free(&r);
	req.content_type = "application/json; charset=utf-8";
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 200);
	api_response_free(&r);
	req.body_too_large = 1;
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 413);
	api_response_free(&r);
	/* metrics saw all of it */
	ck_assert_uint_ge(metrics_total_requests(api_ctx_metrics(f.ctx)), 8);
	teardown_ctx(&f);
}
END_TEST

/* --read-only: every ROUTE_WRITE route answers 403 read_only naming the
 * primary, before anything is parsed or changed; reads go on; /readyz and
 * /v1/info say the role.  A writable ctx on the same registry makes the
 * data the read-only one must refuse to change. */
START_TEST(test_read_only)
{
	fixture f;
	setup_ctx(&f, NULL);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	api_limits_default(&cfg.limits);
	cfg.models = &f.enc;
	cfg.nmodels = 1;
	cfg.registry = f.reg;
	cfg.read_only = 1;
	cfg.primary = "http://primary.example:8080";
	api_ctx *ro;
	es_error err;
	ck_assert_int_eq(api_ctx_new(&cfg, &ro, &err), 0);
	api_ctx_set_ready(ro, 1);
	api_response r;
	const char *pts = "{\"points\":[{\"id\":1,\"vector\":[1,0,0]}]}";
	ck_assert_int_eq(api_handle(f.ctx, "PUT", "/v1/collections/c", "{\"dim\":3}", 9, &r), 201);
	api_response_free(&r);
	ck_assert_int_eq(api_handle(f.ctx, "PUT", "/v1/collections/c/points", pts, strlen(pts), &r), 200);
	api_response_free(&r);
	static const char *const writes[][3] = {
		{"PUT", "/v1/collections/d", "{\"dim\":3}"},
		{"PUT", "/v1/collections/c", ""},
		{"DELETE", "/v1/collections/c", ""},
		{"PUT", "/v1/collections/c/points", "{\"points\":[{\"id\":2,\"vector\":[0,1,0]}]}"},
		{"POST", "/v1/collections/c/points/delete", "{\"points\":[1]}"},
		/* refused before the body is parsed: bad JSON is still a 403 */
		{"PUT", "/v1/collections/c/points", "{not json"},
	};
	for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
		ck_assert_int_eq(api_handle(ro, writes[i][0], writes[i][1], writes[i][2],
					    strlen(writes[i][2]), &r), 403);
		ck_assert_str_eq(err_code(r.body), "read_only");
		const char *msg = json_string_value(
			json_object_get(json_object_get(r.body, "error"), "message"));
		ck_assert_ptr_nonnull(strstr(msg, "http://primary.example:8080"));
		api_response_free(&r);
	}
	/* nothing changed; reads are served */
	ck_assert_int_eq(api_handle(ro, "GET", "/v1/collections/c", NULL, 0, &r), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r.body, "result"), "count")), 1);
	api_response_free(&r);
	ck_assert_int_eq(api_handle(ro, "GET", "/v1/collections/d", NULL, 0, &r), 404);
	api_response_free(&r);
	ck_assert_int_eq(api_handle(ro, "GET", "/v1/collections/c/points/1", NULL, 0, &r), 200);
	api_response_free(&r);
	const char *q = "{\"vector\":[1,0,0],\"k\":1}";
	ck_assert_int_eq(api_handle(ro, "POST", "/v1/collections/c/search", q, strlen(q), &r), 200);
	api_response_free(&r);
	/* every route that can change data is refused, whatever the table
	 * grows into: PUT and DELETE anywhere, POST .../points/delete; and no
	 * read is */
	for (size_t i = 0; i < api_route_count(); i++) {
		const char *m = api_route_method(i), *pat = api_route_pattern(i);
		char path[256];
		size_t o = 0;
		for (const char *t = pat; *t && o + 8 < sizeof path;) {
			if (strncmp(t, "{name}", 6) == 0) {
				o += (size_t)snprintf(path + o, sizeof path - o, "c");
				t += 6;
			} else if (*t == '{') { /* {id}, {file} */
				o += (size_t)snprintf(path + o, sizeof path - o, "1");
				t = strchr(t, '}') + 1;
			} else {
				path[o++] = *t++;
			}
		}
		path[o] = '\0';
		int write = strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0 ||
			    strstr(pat, "/points/delete") != NULL ||
			    strstr(pat, "/points/payload") != NULL;
		api_handle(ro, m, path, "{}", 2, &r);
		if (write)
			ck_assert_msg(r.status == 403, "%s %s answered %d on a read-only server", m, pat,
				      r.status);
		else
			ck_assert_msg(r.status != 403, "%s %s refused on a read-only server", m, pat);
		api_response_free(&r);
	}
	ck_assert_int_eq(api_handle(ro, "GET", "/v1/collections/c", NULL, 0, &r), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r.body, "result"), "count")), 1);
	api_response_free(&r);
	/* the role */
	ck_assert_int_eq(api_handle(ro, "GET", "/readyz", NULL, 0, &r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.body, "role")), "read-only");
	api_response_free(&r);
	ck_assert_int_eq(api_handle(ro, "GET", "/v1/info", NULL, 0, &r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.body, "role")), "read-only");
	ck_assert_str_eq(json_string_value(json_object_get(r.body, "primary")),
			 "http://primary.example:8080");
	api_response_free(&r);
	ck_assert_int_eq(api_handle(f.ctx, "GET", "/readyz", NULL, 0, &r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.body, "role")), "primary");
	api_response_free(&r);
	ck_assert_int_eq(api_handle(f.ctx, "GET", "/v1/info", NULL, 0, &r), 200);
	ck_assert(json_is_null(json_object_get(r.body, "primary")));
	api_response_free(&r);
	/* without --primary the message still says where writes go */
	api_ctx_free(ro);
	cfg.primary = NULL;
	ck_assert_int_eq(api_ctx_new(&cfg, &ro, &err), 0);
	api_ctx_set_ready(ro, 1);
	ck_assert_int_eq(api_handle(ro, "DELETE", "/v1/collections/c", NULL, 0, &r), 403);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
		json_object_get(r.body, "error"), "message")), "read-only"));
	api_response_free(&r);
	api_ctx_free(ro);
	teardown_ctx(&f);
}
END_TEST

START_TEST(test_handlers)
{
	fixture f;
	setup_ctx(&f, NULL);
	json_t *j;
	ck_assert_int_eq(call(&f, "POST", "/v1/embeddings", "{\"input\":[\"the police\",\"government\"]}", &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "data")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "small");
	json_decref(j);
	ck_assert_int_eq(call(&f, "POST", "/v1/embeddings", "{\"input\":\"x\",\"dimensions\":11}", &j), 422);
	ck_assert_str_eq(err_code(j), "dimension_mismatch");
	json_decref(j);
	ck_assert_int_eq(call(&f, "POST", "/v1/embeddings", "{\"input\":", &j), 400);
	json_decref(j);
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/c", NULL, NULL), 201);
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/c", "{}", NULL), 409);
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/c/points",
			      "{\"points\":[{\"id\":1,\"text\":\"the police\",\"payload\":{\"t\":\"a\"}},"
			      "{\"id\":\"b\",\"text\":\"government\",\"payload\":{\"t\":\"b\"}}]}", &j), 200);
	json_decref(j);
	/* over the per-request limit of 3 */
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/c/points",
			      "{\"points\":[{\"id\":5,\"text\":\"a\"},{\"id\":6,\"text\":\"a\"},"
			      "{\"id\":7,\"text\":\"a\"},{\"id\":8,\"text\":\"a\"}]}", &j), 422);
	json_decref(j);
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/c/search",
			      "{\"text\":\"police\",\"k\":5,\"filter\":{\"must\":[{\"key\":\"t\",\"match\":\"b\"}]}}", &j), 200);
	json_t *res = json_object_get(j, "result");
	ck_assert_uint_eq(json_array_size(res), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 0), "id")), "b");
	json_decref(j);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/c/points/1", NULL, &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(j, "result"), "vector")), 10);
	json_decref(j);
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/c/points/delete", "{\"points\":[1]}", NULL), 200);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/c/points/1", NULL, NULL), 404);
	ck_assert_int_eq(call(&f, "POST", "/v1/words/neighbors", "{\"word\":\"police\",\"k\":3}", &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "result")), 3);
	json_decref(j);
	ck_assert_int_eq(call(&f, "GET", "/metrics", NULL, NULL), 200);
	ck_assert_int_eq(call(&f, "DELETE", "/v1/collections/c", NULL, NULL), 200);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/c", NULL, NULL), 404);
	/* hostile inputs never crash */
	const char *junk[] = {"{}", "{\"input\":null}", "{\"points\":null}", "{\"a\":[[[[[]]]]]}",
			      "{\"input\":\"\\u0000\"}", "null", "\"str\"", "{\"k\":-1}"};
	const char *paths[] = {"/v1/embeddings", "/v1/similarity", "/v1/tokenize",
			       "/v1/words/analogy", "/v1/arithmetic", "/v1/words/neighbors"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
			int st = call(&f, "POST", paths[p], junk[i], NULL);
			ck_assert_msg(st >= 200 && st < 500, "%s %s -> %d", paths[p], junk[i], st);
		}
	teardown_ctx(&f);
}
END_TEST

/* "truncate": false on a BERT model with a short max_seq_length. */
/* Paths arrive percent-encoded.  "%00" must be a 400 in every route, never
 * a path cut at the NUL: "PUT /v1/collections/a%00b" used to create "a" and
 * "GET .../points/1%00junk" to read point 1. */
START_TEST(test_encoded_nul)
{
	char buf[64];
	ck_assert_uint_eq(api_url_decode("a%20b%2fc%zz%4", buf), 10);
	ck_assert_str_eq(buf, "a b/c%zz%4");
	ck_assert_uint_eq(api_url_decode("a%00b", buf), 3);
	ck_assert_int_eq(buf[1], 0);
	ck_assert_int_eq(api_url_has_nul("a%00b"), 1);
	ck_assert_int_eq(api_url_has_nul("%%00"), 1);
	ck_assert_int_eq(api_url_has_nul("%2500"), 0); /* a literal "%00" */
	ck_assert_int_eq(api_url_has_nul("%0"), 0);

	fixture f;
	setup_ctx(&f, NULL);
	json_t *j;
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/a%00b", "{}", &j), 400);
	ck_assert_str_eq(err_code(j), "invalid_path");
	json_decref(j);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/a", NULL, NULL), 404);
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/a", "{}", NULL), 201);
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/a/points",
			      "{\"points\":[{\"id\":1,\"text\":\"police\"}]}", NULL), 200);
	/* every route: before matching, so also one that would be a 404 */
	for (size_t i = 0; i < api_route_count(); i++) {
		char p[256];
		const char *pat = api_route_pattern(i);
		size_t o = 0;
		for (const char *s = pat; *s && o + 16 < sizeof p; s++) {
			if (*s == '{') {
				o += (size_t)snprintf(p + o, sizeof p - o, "%s",
						      strncmp(s, "{name}", 6) == 0 ? "a" : "1");
				s = strchr(s, '}');
			} else {
				p[o++] = *s;
			}
		}
		snprintf(p + o, sizeof p - o, "%%00junk");
		ck_assert_int_eq(call(&f, api_route_method(i), p, "{}", &j), 400);
		ck_assert_str_eq(err_code(j), "invalid_path");
		json_decref(j);
	}
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/a/points/1%00junk", NULL, NULL), 400);
	ck_assert_int_eq(call(&f, "GET", "/v1/nothing%00", NULL, NULL), 400);
	/* an encoded path that decodes cleanly still works */
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/%61/points/%31", NULL, NULL), 200);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/%2561", NULL, NULL), 404); /* "%61", not "a": decoded once */
	/* nothing was created or changed by the refused requests */
	ck_assert_int_eq(call(&f, "GET", "/v1/collections", NULL, &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "result")), 1);
	json_decref(j);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/a", NULL, &j), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "result"), "count")), 1);
	json_decref(j);

	/* a query parameter the transport found to decode to a NUL */
	api_request req;
	api_response r;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/v1/collections";
	req.query_has_nul = 1;
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 400);
	ck_assert_str_eq(err_code(r.body), "invalid_query");
	api_response_free(&r);
	teardown_ctx(&f);
}
END_TEST

/* A transport that sets defer_writes gets every ROUTE_WRITE handler back
 * deferred (nothing done yet: the collection does not exist until the
 * deferred answer runs), reads answered inline, and the deferred answer
 * equal to the inline one (Qdrant's envelope included). */
static int dispatch_deferred(fixture *f, const char *method, const char *path,
			     const char *body, api_response *r, int *deferred)
{
	api_request req;
	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = path;
	req.body = body;
	req.len = body ? strlen(body) : 0;
	req.content_type = "application/json";
	req.defer_writes = 1;
	int st = api_dispatch(f->ctx, &req, r);
	*deferred = r->deferred != NULL;
	return *deferred ? api_response_run_deferred(f->ctx, r) : st;
}

START_TEST(test_deferred_writes)
{
	fixture f;
	setup_ctx(&f, NULL);
	api_response r;
	api_request req;
	memset(&req, 0, sizeof req);
	req.method = "PUT";
	req.path = "/v1/collections/dw";
	req.defer_writes = 1;
	ck_assert_int_eq(api_dispatch(f.ctx, &req, &r), 0);
	ck_assert_ptr_nonnull(r.deferred);
	/* not run yet: the collection is not there */
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/dw", NULL, NULL), 404);
	ck_assert_int_eq(api_response_run_deferred(f.ctx, &r), 201);
	api_response_free(&r);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/dw", NULL, NULL), 200);
	int d;
	ck_assert_int_eq(dispatch_deferred(&f, "PUT", "/v1/collections/dw/points",
					   "{\"points\":[{\"id\":\"a\",\"text\":\"the cat sat\"}]}",
					   &r, &d), 200);
	ck_assert(d);
	api_response_free(&r);
	/* errors found by the handler come back through the deferred answer */
	ck_assert_int_eq(dispatch_deferred(&f, "PUT", "/v1/collections/dw/points",
					   "{\"points\":[{\"id\":\"b\"}]}", &r, &d), 400);
	ck_assert(d);
	api_response_free(&r);
	/* reads are answered inline */
	ck_assert_int_eq(dispatch_deferred(&f, "POST", "/v1/collections/dw/search",
					   "{\"text\":\"cat\",\"k\":1}", &r, &d), 200);
	ck_assert(!d);
	api_response_free(&r);
	ck_assert_int_eq(dispatch_deferred(&f, "GET", "/v1/collections/dw/points/a", NULL, &r, &d),
			 200);
	ck_assert(!d);
	api_response_free(&r);
	ck_assert_int_eq(call(&f, "GET", "/v1/collections/dw/points/b", NULL, NULL), 404);
	/* Qdrant's writes keep their envelope */
	ck_assert_int_eq(dispatch_deferred(&f, "PUT", "/collections/qdw",
					   "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}", &r, &d),
			 200);
	ck_assert(d);
	ck_assert_ptr_nonnull(json_object_get(r.body, "status"));
	ck_assert_ptr_nonnull(json_object_get(r.body, "time"));
	api_response_free(&r);
	teardown_ctx(&f);
}
END_TEST

START_TEST(test_truncate_flag)
{
	char dir[1024];
	const char *root = getenv("ES_SHARED");
	snprintf(dir, sizeof dir, "%s/fixtures/bert-tiny/st-mean", root ? root : "../shared");
	char probe[1100];
	snprintf(probe, sizeof probe, "%s/config.json", dir);
	FILE *pf = fopen(probe, "r");
	if (!pf)
		return; /* shared fixtures not present: nothing to test against */
	fclose(pf);
	fixture f;
	es_error err;
	if (es_encoder_open(dir, "tiny", &f.enc, &err) != 0)
		ck_abort_msg("open %s: %s", dir, err.msg);
	uint32_t maxt = es_encoder_max_tokens(f.enc);
	ck_assert_uint_gt(maxt, 0);
	ck_assert_int_eq(es_registry_new(api_payload_hooks(), &f.reg, &err), 0);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	api_limits_default(&cfg.limits);
	cfg.models = &f.enc;
	cfg.nmodels = 1;
	cfg.registry = f.reg;
	ck_assert_int_eq(api_ctx_new(&cfg, &f.ctx, &err), 0);
	api_ctx_set_ready(f.ctx, 1);
	size_t cap = (size_t)maxt * 8 + 64;
	char *body = malloc(cap + 64);
	size_t o = (size_t)snprintf(body, cap, "{\"input\":\"");
	for (uint32_t i = 0; i < maxt + 10 && o + 8 < cap; i++)
		o += (size_t)snprintf(body + o, cap - o, "word ");
	snprintf(body + o, cap + 64 - o, "\"%s}", "");
	json_t *j;
	ck_assert_int_eq(call(&f, "POST", "/v1/embeddings", body, &j), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), maxt);
	json_decref(j);
	snprintf(body + o, cap + 64 - o, "\"%s}", ",\"truncate\":false");
	ck_assert_int_eq(call(&f, "POST", "/v1/embeddings", body, &j), 422);
	ck_assert_str_eq(err_code(j), "input_too_long");
	json_decref(j);
	free(body);
	teardown_ctx(&f);
}
END_TEST

/* A GET of a /ui/ path with an optional If-None-Match; the response is
 * left in *r (free it). */
static int ui_get(fixture *f, const char *path, const char *inm, const char *key,
		  api_response *r)
{
	api_request req;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = path;
	req.if_none_match = inm;
	req.authorization = key;
	return api_dispatch(f->ctx, &req, r);
}

static const char *header_of(const api_response *r, const char *name)
{
	for (const char *const *h = r->headers; h && h[0]; h += 2)
		if (strcmp(h[0], name) == 0)
			return h[1];
	return NULL;
}

START_TEST(test_ui)
{
	fixture f;
	setup_ctx(&f, "k1"); /* the page loads without the key; it asks for it */
	api_response r;
	ck_assert_int_eq(ui_get(&f, "/ui/", NULL, NULL, &r), 200);
	ck_assert_str_eq(r.content_type, "text/html; charset=utf-8");
	ck_assert_ptr_nonnull(r.static_body);
	ck_assert_int_eq(strncmp(r.static_body, "<!doctype html>", 15), 0);
	const char *csp = header_of(&r, "Content-Security-Policy");
	ck_assert_ptr_nonnull(csp);
	ck_assert_ptr_nonnull(strstr(csp, "default-src 'none'"));
	ck_assert_ptr_null(strstr(csp, "unsafe")); /* no unsafe-inline / unsafe-eval */
	ck_assert_str_eq(header_of(&r, "X-Content-Type-Options"), "nosniff");
	ck_assert_ptr_nonnull(r.etag);
	char etag[64];
	snprintf(etag, sizeof etag, "%s", r.etag);
	/* the serialised body is the asset, byte for byte */
	char *data;
	size_t len;
	ck_assert_int_eq(api_response_serialize(&r, &data, &len), 0);
	ck_assert_uint_eq(len, r.static_len);
	free(data);
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui", NULL, NULL, &r), 200);
	ck_assert_str_eq(r.etag, etag);
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/index.html", etag, NULL, &r), 304);
	ck_assert_uint_eq(r.static_len, 0);
	api_response_free(&r);
	char list[160];
	snprintf(list, sizeof list, "\"0000\", W/%s", etag);
	ck_assert_int_eq(ui_get(&f, "/ui/", list, NULL, &r), 304);
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/", "*", NULL, &r), 304);
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/", "\"0000\"", NULL, &r), 200);
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/app.js", etag, NULL, &r), 200); /* another file's tag */
	ck_assert_str_eq(r.content_type, "text/javascript; charset=utf-8");
	ck_assert_str_ne(r.etag, etag);
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/style.css", NULL, NULL, &r), 200);
	ck_assert_str_eq(r.content_type, "text/css; charset=utf-8");
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/nope.js", NULL, NULL, &r), 404);
	ck_assert_str_eq(err_code(r.body), "not_found");
	ck_assert_ptr_nonnull(header_of(&r, "Content-Security-Policy"));
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/a/b", NULL, NULL, &r), 401);
	ck_assert_str_eq(err_code(r.body), "invalid_api_key"); /* no route: the key applies */
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/v1/info", NULL, NULL, &r), 401); /* the API keeps its key */
	api_response_free(&r);
	teardown_ctx(&f);

	setup_ctx_ui(&f, NULL, 1); /* serve --no-ui */
	ck_assert_int_eq(ui_get(&f, "/ui/", NULL, NULL, &r), 404);
	ck_assert_str_eq(err_code(r.body), "ui_disabled");
	api_response_free(&r);
	ck_assert_int_eq(ui_get(&f, "/ui/app.js", NULL, NULL, &r), 404);
	api_response_free(&r);
	teardown_ctx(&f);

	/* the whole explorer stays small */
	size_t total = 0;
	for (size_t i = 0; i < ui_nassets; i++)
		total += ui_assets[i].len;
	ck_assert_uint_ge(ui_nassets, 3);
	ck_assert_uint_lt(total, 150 * 1024);
}
END_TEST

START_TEST(test_scroll)
{
	fixture f;
	setup_ctx(&f, NULL);
	json_t *j = NULL;
	ck_assert_int_eq(call(&f, "PUT", "/v1/collections/sc", "{\"dim\": 2}", NULL), 201);
	/* empty collection: one empty last page */
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/sc/points/scroll", NULL, &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(j, "result"), "points")), 0);
	ck_assert(json_is_null(json_object_get(json_object_get(j, "result"), "next_offset")));
	json_decref(j);
	/* 7 points, 3 per batch (max_points is 3 in this fixture) */
	for (int b = 0; b < 3; b++) {
		char body[256];
		snprintf(body, sizeof body,
			 "{\"points\":[{\"id\":%d,\"vector\":[1,%d],\"payload\":{\"n\":%d}},"
			 "{\"id\":\"s%d\",\"vector\":[2,%d]},{\"id\":%d,\"vector\":[3,%d]}]}",
			 10 * b, b, b, b, b, 10 * b + 1, b);
		ck_assert_int_eq(call(&f, "PUT", "/v1/collections/sc/points", body, NULL), 200);
	}
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/sc/points/delete",
			      "{\"points\":[\"s1\", 21]}", NULL), 200);
	/* page through with limit 2: every live point exactly once */
	int seen_n = 0, pages = 0;
	char seen[16][16];
	json_t *off = json_null();
	for (;;) {
		char *o = json_dumps(off, JSON_ENCODE_ANY);
		char body[128];
		snprintf(body, sizeof body, "{\"limit\": 2, \"offset\": %s, \"with_vector\": true}", o);
		free(o);
		json_decref(off);
		ck_assert_int_eq(call(&f, "POST", "/v1/collections/sc/points/scroll", body, &j), 200);
		json_t *res = json_object_get(j, "result");
		json_t *pts = json_object_get(res, "points");
		ck_assert_uint_le(json_array_size(pts), 2);
		for (size_t i = 0; i < json_array_size(pts); i++) {
			json_t *p = json_array_get(pts, i);
			ck_assert_uint_eq(json_array_size(json_object_get(p, "vector")), 2);
			ck_assert_ptr_nonnull(json_object_get(p, "payload")); /* null when none */
			char *id = json_dumps(json_object_get(p, "id"), JSON_ENCODE_ANY);
			for (int s = 0; s < seen_n; s++)
				ck_assert_str_ne(seen[s], id);
			ck_assert_int_lt(seen_n, 16);
			snprintf(seen[seen_n++], sizeof seen[0], "%s", id);
			free(id);
		}
		pages++;
		off = json_incref(json_object_get(res, "next_offset"));
		json_decref(j);
		if (json_is_null(off))
			break;
		ck_assert_int_lt(pages, 10);
	}
	json_decref(off);
	ck_assert_int_eq(seen_n, 7);
	ck_assert_int_eq(pages, 4);
	/* defaults: payload on, vector off, limit 10 */
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/sc/points/scroll", "{}", &j), 200);
	json_t *p0 = json_array_get(json_object_get(json_object_get(j, "result"), "points"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(p0, "payload"), "n")), 0);
	ck_assert_ptr_null(json_object_get(p0, "vector"));
	json_decref(j);
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/sc/points/scroll",
			      "{\"with_payload\": false}", &j), 200);
	p0 = json_array_get(json_object_get(json_object_get(j, "result"), "points"), 0);
	ck_assert_ptr_null(json_object_get(p0, "payload"));
	json_decref(j);
	/* past the end: an empty last page */
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/sc/points/scroll", "{\"offset\": 1000}", &j), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(j, "result"), "points")), 0);
	json_decref(j);
	/* bad input: a clear 4xx */
	static const char *const bad[] = {
		"{\"limit\": 0}", "{\"limit\": 4}", "{\"limit\": \"2\"}", "{\"offset\": -1}",
		"{\"offset\": 1.5}", "{\"offset\": \"x\"}", "{\"filter\": []}", "[]",
		"{\"filter\": {\"must\": {\"key\": \"t\"}}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = call(&f, "POST", "/v1/collections/sc/points/scroll", bad[i], &j);
		ck_assert_msg(st == 400 || st == 422, "%s -> %d", bad[i], st);
		ck_assert_ptr_nonnull(err_code(j));
		json_decref(j);
	}
	ck_assert_int_eq(call(&f, "POST", "/v1/collections/nope/points/scroll", "{}", &j), 404);
	json_decref(j);
	teardown_ctx(&f);
}
END_TEST

/* OpenAI's /v1/embeddings the rest of the way (issue 20): dimensions below
 * the model's truncate and re-normalise; token ids are a 422 that says to
 * send text; --model-alias names resolve when several models are loaded. */
START_TEST(test_openai_extras)
{
	char path[1024];
	es_error err;
	es_encoder *encs[2];
	es_registry *reg;
	api_ctx *ctx;
	es_test_path(path, sizeof path, "tests/data/lee-10d.vec");
	ck_assert_int_eq(es_encoder_open(path, "small", &encs[0], &err), 0);
	ck_assert_int_eq(es_encoder_open(path, "other", &encs[1], &err), 0);
	ck_assert_int_eq(es_registry_new(api_payload_hooks(), &reg, &err), 0);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	api_limits_default(&cfg.limits);
	cfg.models = encs;
	cfg.nmodels = 2;
	cfg.registry = reg;
	const char *bad_aliases[][1] = {{"x=nosuch"}, {"=small"}, {"noequals"}, {"y="}};
	for (size_t i = 0; i < 4; i++) {
		cfg.model_aliases = bad_aliases[i];
		cfg.naliases = 1;
		ck_assert_int_eq(api_ctx_new(&cfg, &ctx, &err), ES_EINVAL);
	}
	const char *aliases[] = {"text-embedding-3-small=other", "text-embedding-ada-002=small"};
	cfg.model_aliases = aliases;
	cfg.naliases = 2;
	ck_assert_msg(api_ctx_new(&cfg, &ctx, &err) == 0, "%s", err.msg);
	api_ctx_set_ready(ctx, 1);
	api_response r;
	json_t *j;
	const char *full = "{\"input\":\"the government said\"}";
	ck_assert_int_eq(api_handle(ctx, "POST", "/v1/embeddings", full, strlen(full), &r), 200);
	j = json_loadb(r.text, r.text_len, 0, NULL);
	api_response_free(&r);
	json_t *v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
	float v10[10];
	for (size_t i = 0; i < 10; i++)
		v10[i] = (float)json_number_value(json_array_get(v, i));
	json_decref(j);
	const char *trunc = "{\"input\":\"the government said\",\"dimensions\":4,"
			    "\"model\":\"text-embedding-3-small\"}";
	ck_assert_int_eq(api_handle(ctx, "POST", "/v1/embeddings", trunc, strlen(trunc), &r), 200);
	j = json_loadb(r.text, r.text_len, 0, NULL);
	api_response_free(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "other");
	v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
	ck_assert_uint_eq(json_array_size(v), 4);
	double n4 = 0, ss = 0;
	for (size_t i = 0; i < 4; i++)
		n4 += (double)v10[i] * v10[i];
	n4 = sqrt(n4);
	for (size_t i = 0; i < 4; i++) {
		double x = json_number_value(json_array_get(v, i));
		ck_assert_double_eq_tol(x, v10[i] / n4, 1e-5);
		ss += x * x;
	}
	ck_assert_double_eq_tol(ss, 1.0, 1e-5);
	json_decref(j);
	/* aliases pick their model; an unknown name is still a 404 */
	const char *ada = "{\"input\":\"x\",\"model\":\"text-embedding-ada-002\"}";
	ck_assert_int_eq(api_handle(ctx, "POST", "/v1/embeddings", ada, strlen(ada), &r), 200);
	j = json_loadb(r.text, r.text_len, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "small");
	json_decref(j);
	api_response_free(&r);
	const char *unk = "{\"input\":\"x\",\"model\":\"text-embedding-3-large\"}";
	ck_assert_int_eq(api_handle(ctx, "POST", "/v1/embeddings", unk, strlen(unk), &r), 404);
	api_response_free(&r);
	/* /v1/models lists the aliases */
	ck_assert_int_eq(api_handle(ctx, "GET", "/v1/models", NULL, 0, &r), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.body, "data")), 4);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(json_object_get(r.body, "data"), 2), "alias_of")), "other");
	api_response_free(&r);
	/* token ids: 422 naming what to send instead */
	static const char *const toks[] = {"{\"input\":[1,2,3]}", "{\"input\":[[1,2],[3]]}",
					   "{\"input\":7}"};
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(api_handle(ctx, "POST", "/v1/embeddings", toks[i], strlen(toks[i]), &r), 422);
		ck_assert_str_eq(err_code(r.body), "token_input_unsupported");
		ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
			json_object_get(r.body, "error"), "message")), "send the text"));
		api_response_free(&r);
	}
	static const char *const dims[] = {"{\"input\":\"x\",\"dimensions\":0}",
					   "{\"input\":\"x\",\"dimensions\":11}"};
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(api_handle(ctx, "POST", "/v1/embeddings", dims[i], strlen(dims[i]), &r), 422);
		api_response_free(&r);
	}
	api_ctx_free(ctx);
	es_registry_free(reg);
	es_encoder_free(encs[0]);
	es_encoder_free(encs[1]);
}
END_TEST

Suite *routes_suite(void)
{
	Suite *s = suite_create("routes");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_match);
	tcase_add_test(tc, test_dispatch_errors);
	tcase_add_test(tc, test_deferred_writes);
	tcase_add_test(tc, test_handlers);
	tcase_add_test(tc, test_truncate_flag);
	tcase_add_test(tc, test_encoded_nul);
	tcase_add_test(tc, test_ui);
	tcase_add_test(tc, test_scroll);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_openai_extras);
	suite_add_tcase(s, tc);
	return s;
}
