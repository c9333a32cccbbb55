/*
 * fuzz_api.c — the HTTP/JSON API without a socket: api_handle(), the entry
 * point server/http.c reaches through api_dispatch, for every route.
 *
 * Input: up to 8 requests separated by a line "---" ("\n---\n"); each is a
 * request line "METHOD /path" and, after its newline, the body.  Example:
 *
 *   PUT /v1/collections/x/points
 *   {"points":[{"id":1,"text":"the police"}]}
 *   ---
 *   POST /v1/collections/x/search
 *   {"text":"police","k":3}
 *
 * Fixture, the same at the start of every input so that runs are
 * reproducible (rebuilt after any input with a request that may have changed
 * it: PUT, DELETE, points/delete, unknown methods): the models
 * "small" (tests/data/lee-10d.vec, word2vec text, dim 10) and "ft"
 * (tests/data/fasttext-toy.bin, subwords, dim 5; loaded once per process)
 * and a new registry with collection "x" (cosine, text of "small", three
 * points with payloads), "q" (l2, int8, m 4, model "ft", two points) and
 * "e" (empty, dot, dim 3).
 *
 * Invariants: api_handle returns the status it put in the response; no
 * status is 500 (a bad request is 4xx, not a server error); a response
 * serialises.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz_common.h"

#define MAX_REQUESTS 8

static es_encoder *models[2];
static es_registry *fx_reg; /* the fixture; NULL: build it before the next input */
static api_ctx *fx_ctx;
static int verbose;

static void models_free(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	es_error err;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	char *small = fz_source_path("tests/data/lee-10d.vec");
	char *ft = fz_source_path("tests/data/fasttext-toy.bin");
	if (es_encoder_open(small, "small", &models[0], &err) ||
	    es_encoder_open(ft, "ft", &models[1], &err))
		fz_fail("cannot load the fixture models (set ES_SOURCE_ROOT): %s", err.msg);
	free(small);
	free(ft);
	atexit(models_free);
	return 0;
}

static int one(api_ctx *ctx, const char *method, const char *path,
	       const char *body, size_t len)
{
	api_response r;
	memset(&r, 0xA5, sizeof r); /* api_handle must fill every field it owns */
	int st = api_handle(ctx, method, path, body, len, &r);
	if (st != r.status)
		fz_fail("%s %s: returned %d, response says %d", method, path, st, r.status);
	if (st == 500 || st < 200 || st > 599)
		fz_fail("%s %s: status %d", method, path, st);
	char *out = NULL;
	size_t olen = 0;
	if (api_response_serialize(&r, &out, &olen) != 0 && st != 503)
		fz_fail("%s %s: response does not serialise", method, path);
	if (verbose && out) /* FUZZ_VERBOSE=1: see what seeds reach */
		fprintf(stderr, "%s %s -> %d %.*s\n", method, path, st,
			(int)(olen < 240 ? olen : 240), out);
	free(out);
	api_response_free(&r);
	return st;
}

static void setup(api_ctx *ctx)
{
	static const struct {
		const char *m, *p, *b;
		int want;
	} steps[] = {
		{"PUT", "/v1/collections/x", NULL, 201},
		{"PUT", "/v1/collections/x/points",
		 "{\"points\":[{\"id\":1,\"text\":\"the police\",\"payload\":{\"t\":\"a\",\"n\":3}},"
		 "{\"id\":\"b\",\"text\":\"government\",\"payload\":{\"t\":\"b\",\"n\":[1,2]}},"
		 "{\"id\":7,\"vector\":[1,0,0,0,0,0,0,0,0,1]}]}", 200},
		{"PUT", "/v1/collections/q",
		 "{\"metric\":\"l2\",\"quantization\":\"int8\",\"m\":4,\"ef_construction\":8,"
		 "\"model\":\"ft\"}", 201},
		{"PUT", "/v1/collections/q/points",
		 "{\"points\":[{\"id\":2,\"text\":\"crime\"},{\"id\":\"s\",\"text\":\"punishment\","
		 "\"payload\":{\"k\":true}}]}", 200},
		{"PUT", "/v1/collections/e", "{\"dim\":3,\"metric\":\"dot\"}", 201},
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		const char *b = steps[i].b;
		int st = one(ctx, steps[i].m, steps[i].p, b, b ? strlen(b) : 0);
		if (st != steps[i].want)
			fz_fail("fixture step %s %s answered %d", steps[i].m, steps[i].p, st);
	}
}

/* Split "METHOD /path\nbody" (not NUL-terminated) and run it.  Returns 1
 * when the request was one that may change the collections. */
static int request(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len);
	size_t line = nl ? (size_t)(nl - p) : len;
	const char *sp = memchr(p, ' ', line);
	if (!sp)
		return 0;
	char method[16], path[1024];
	size_t ml = (size_t)(sp - p), pl = line - ml - 1;
	if (ml == 0 || ml >= sizeof method || pl >= sizeof path)
		return 0;
	memcpy(method, p, ml);
	method[ml] = '\0';
	memcpy(path, sp + 1, pl);
	path[pl] = '\0';
	if (strlen(method) != ml || strlen(path) != pl)
		return 0; /* a NUL: the HTTP layer never hands over such a line
			   * (an encoded one, "%00", it does: a 400) */
	const char *body = nl ? nl + 1 : NULL;
	size_t blen = nl ? len - line - 1 : 0;
	/* an exact-size heap copy so reads past the body are caught */
	char *copy = blen ? malloc(blen) : NULL;
	if (blen && !copy)
		return 0;
	if (blen)
		memcpy(copy, body, blen);
	one(fx_ctx, method, path, copy, blen);
	free(copy);
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	       (strcmp(method, "POST") != 0 || strstr(path, "/points/delete"));
}

static void fixture_free(void)
{
	api_ctx_free(fx_ctx);
	es_registry_free(fx_reg);
	fx_ctx = NULL;
	fx_reg = NULL;
}

static void fixture_new(void)
{
	es_error err;
	if (es_registry_new(api_payload_hooks(), &fx_reg, &err) != 0)
		fz_fail("registry: %s", err.msg);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	api_limits_default(&cfg.limits);
	cfg.limits.max_inputs = 64;
	cfg.limits.max_points = 64;
	cfg.models = models;
	cfg.nmodels = 2;
	cfg.registry = fx_reg;
	cfg.threads = 1;
	if (api_ctx_new(&cfg, &fx_ctx, &err) != 0)
		fz_fail("api ctx: %s", err.msg);
	api_ctx_set_ready(fx_ctx, 1);
	setup(fx_ctx);
}

static void models_free(void)
{
	fixture_free();
	es_encoder_free(models[0]);
	es_encoder_free(models[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!models[0])
		LLVMFuzzerInitialize(NULL, NULL);
	if (!fx_ctx)
		fixture_new();
	int dirty = 0;
	const char *p = (const char *)data, *end = p + size;
	for (int n = 0; n < MAX_REQUESTS && p < end; n++) {
		const char *sep = memmem(p, (size_t)(end - p), "\n---\n", 5);
		const char *stop = sep ? sep : end;
		dirty |= request(p, (size_t)(stop - p));
		p = sep ? sep + 5 : end;
	}
	/* a request that may have changed the collections (whatever it
	 * answered) costs a fresh fixture, so every input starts the same */
	if (dirty)
		fixture_free();
	return 0;
}
