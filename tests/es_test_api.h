/*
 * es_test_api.h — the HTTP API without a socket, for the suites that drive
 * api_handle (test_routes.c, test_qdrant.c): a ready api_ctx on the small
 * real model (tests/data/lee-10d.vec, named "small") over an empty
 * registry, and one request at a time with its JSON answer.
 */
#ifndef ES_TEST_API_H
#define ES_TEST_API_H

#include <check.h>
#include <string.h>

#include "api.h"
#include "es_test.h"

typedef struct es_test_api {
	es_encoder *enc;
	es_registry *reg;
	api_ctx *ctx;
} es_test_api;

/* What a suite sets beyond the defaults (zero: the defaults). */
typedef struct es_test_api_opts {
	const char *key;     /* the API key, NULL: none */
	int read_only, no_ui;
	uint32_t max_points; /* 0: api_limits_default's */
} es_test_api_opts;

static inline void es_test_api_setup(es_test_api *f, es_test_api_opts o)
{
	char path[1024];
	es_error err;
	es_test_path(path, sizeof path, "tests/data/lee-10d.vec");
	ck_assert_msg(es_encoder_open(path, "small", &f->enc, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(es_registry_new(api_payload_hooks(), &f->reg, &err), 0);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	api_limits_default(&cfg.limits);
	if (o.max_points)
		cfg.limits.max_points = o.max_points;
	cfg.api_key = o.key;
	cfg.models = &f->enc;
	cfg.nmodels = 1;
	cfg.registry = f->reg;
	cfg.read_only = o.read_only;
	cfg.no_ui = o.no_ui;
	ck_assert_int_eq(api_ctx_new(&cfg, &f->ctx, &err), 0);
	api_ctx_set_ready(f->ctx, 1);
}

static inline void es_test_api_teardown(es_test_api *f)
{
	api_ctx_free(f->ctx);
	es_registry_free(f->reg);
	es_encoder_free(f->enc);
}

/* One request through api_handle: its status, and in *out (when out is
 * not NULL) the answer's JSON, NULL when the body is not JSON. */
static inline int es_test_api_call(es_test_api *f, const char *m, const char *p,
				   const char *body, json_t **out)
{
	api_response r;
	int st = api_handle(f->ctx, m, p, body, body ? strlen(body) : 0, &r);
	ck_assert_int_eq(st, r.status);
	if (out) {
		*out = r.body ? json_incref(r.body) : NULL;
		if (!r.body && r.text && strncmp(r.content_type, "application/json", 16) == 0)
			*out = json_loadb(r.text, r.text_len, 0, NULL); /* hand-written JSON */
	}
	api_response_free(&r);
	return st;
}

#endif
