/*
 * routes.c — the route table and api_dispatch: authentication, method and
 * path matching, Content-Type and body checks, metrics.  See routes.h.
 *
 * Every route here must be in openapi.yaml (tests/integration/
 * test_openapi.py parses this table and fails if they disagree), so keep
 * one entry per line in the form {"METHOD", "/path", handler, flags}.
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QD ROUTE_QDRANT

static const api_route route_table[] = {
	{"GET", "/healthz", api_h_healthz, ROUTE_OPEN},
	{"GET", "/readyz", api_h_readyz, ROUTE_OPEN},
	{"GET", "/metrics", api_h_metrics, 0},
	{"GET", "/v1/info", api_h_info, 0},
	{"GET", "/v1/models", api_h_models, 0},
	{"POST", "/v1/embeddings", api_h_embeddings, ROUTE_JSON},
	{"POST", "/v1/similarity", api_h_similarity, ROUTE_JSON},
	{"POST", "/v1/tokenize", api_h_tokenize, ROUTE_JSON},
	{"GET", "/v1/collections", api_h_coll_list, 0},
	{"PUT", "/v1/collections/{name}", api_h_coll_create, ROUTE_JSON_OPT | ROUTE_WRITE},
	{"GET", "/v1/collections/{name}", api_h_coll_get, 0},
	{"DELETE", "/v1/collections/{name}", api_h_coll_delete, ROUTE_WRITE},
	{"PUT", "/v1/collections/{name}/points", api_h_points_upsert, ROUTE_JSON | ROUTE_WRITE},
	{"GET", "/v1/collections/{name}/points/{id}", api_h_points_get, 0},
	{"POST", "/v1/collections/{name}/points/delete", api_h_points_delete, ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/v1/collections/{name}/points/scroll", api_h_points_scroll, ROUTE_JSON_OPT},
	{"POST", "/v1/collections/{name}/points/count", api_h_points_count, ROUTE_JSON_OPT},
	{"POST", "/v1/collections/{name}/points/get", api_h_points_get_many, ROUTE_JSON},
	{"POST", "/v1/collections/{name}/points/payload", api_h_payload_set, ROUTE_JSON | ROUTE_WRITE},
	{"PUT", "/v1/collections/{name}/points/payload", api_h_payload_overwrite, ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/v1/collections/{name}/points/payload/delete", api_h_payload_delete, ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/v1/collections/{name}/points/payload/clear", api_h_payload_clear, ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/v1/collections/{name}/search", api_h_search, ROUTE_JSON},
	{"PUT", "/v1/collections/{name}/index", api_h_index_create, ROUTE_JSON | ROUTE_WRITE},
	{"DELETE", "/v1/collections/{name}/index/{id}", api_h_index_drop, ROUTE_WRITE},
	{"POST", "/v1/collections/{name}/snapshot", api_h_coll_snapshot, ROUTE_JSON_OPT},
	{"POST", "/v1/words/neighbors", api_h_words_neighbors, ROUTE_JSON},
	{"POST", "/v1/words/analogy", api_h_words_analogy, ROUTE_JSON},
	{"POST", "/v1/arithmetic", api_h_arithmetic, ROUTE_JSON},
	{"GET", "/v1/replication/snapshot", api_h_repl_snapshot, 0},
	{"GET", "/v1/replication/wal", api_h_repl_wal, 0},
	/* Qdrant's REST dialect (api_qdrant*.c): Qdrant's paths and envelope */
	{"GET", "/", api_h_qd_root, ROUTE_OPEN},
	{"GET", "/collections", api_h_qd_coll_list, QD},
	{"GET", "/collections/{name}/exists", api_h_qd_coll_exists, QD},
	{"PUT", "/collections/{name}", api_h_qd_coll_create, QD | ROUTE_JSON | ROUTE_WRITE},
	{"GET", "/collections/{name}", api_h_qd_coll_get, QD},
	{"DELETE", "/collections/{name}", api_h_qd_coll_delete, QD | ROUTE_WRITE},
	{"PUT", "/collections/{name}/index", api_h_qd_index, QD | ROUTE_JSON | ROUTE_WRITE},
	{"DELETE", "/collections/{name}/index/{id}", api_h_qd_index, QD | ROUTE_WRITE},
	{"PUT", "/collections/{name}/points", api_h_qd_points_upsert, QD | ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/collections/{name}/points", api_h_qd_points_retrieve, QD | ROUTE_JSON},
	{"GET", "/collections/{name}/points/{id}", api_h_qd_points_get, QD},
	{"POST", "/collections/{name}/points/delete", api_h_qd_points_delete, QD | ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/collections/{name}/points/payload", api_h_qd_payload_set, QD | ROUTE_JSON | ROUTE_WRITE},
	{"PUT", "/collections/{name}/points/payload", api_h_qd_payload_overwrite, QD | ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/collections/{name}/points/payload/delete", api_h_qd_payload_delete, QD | ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/collections/{name}/points/payload/clear", api_h_qd_payload_clear, QD | ROUTE_JSON | ROUTE_WRITE},
	{"POST", "/collections/{name}/points/scroll", api_h_qd_points_scroll, QD | ROUTE_JSON_OPT},
	{"POST", "/collections/{name}/points/count", api_h_qd_points_count, QD | ROUTE_JSON_OPT},
	{"POST", "/collections/{name}/points/query", api_h_qd_query, QD | ROUTE_JSON},
	{"POST", "/collections/{name}/points/query/batch", api_h_qd_query_batch, QD | ROUTE_JSON},
	{"POST", "/collections/{name}/points/search", api_h_qd_search, QD | ROUTE_JSON},
	{"POST", "/collections/{name}/points/search/batch", api_h_qd_search_batch, QD | ROUTE_JSON},
	{"GET", "/ui", api_h_ui, ROUTE_OPEN},
	{"GET", "/ui/{file}", api_h_ui, ROUTE_OPEN},
	{NULL, NULL, NULL, ROUTE_OPEN}, /* everything else: 404 */
};

#define NROUTES (sizeof route_table / sizeof route_table[0] - 1)

size_t api_route_count(void)
{
	return NROUTES;
}

const char *api_route_method(size_t i)
{
	return i < NROUTES ? route_table[i].method : NULL;
}

const char *api_route_pattern(size_t i)
{
	return i < NROUTES ? route_table[i].pattern : NULL;
}

static const api_route *routes_get(size_t i)
{
	return &route_table[i < NROUTES ? i : NROUTES];
}

/* One unit of a percent-encoded string: its byte in *byte; returns how many
 * input bytes it took (3 for "%XX", else 1). */
static size_t url_unit(const char *s, unsigned char *byte)
{
	static const char hex[] = "0123456789abcdef0123456789ABCDEF";
	const char *hi, *lo;
	if (s[0] == '%' && s[1] && s[2] && (hi = strchr(hex, s[1])) && (lo = strchr(hex, s[2]))) {
		*byte = (unsigned char)(((hi - hex) % 16) * 16 + (lo - hex) % 16);
		return 3;
	}
	*byte = (unsigned char)s[0];
	return 1;
}

size_t api_url_decode(const char *in, char *out)
{
	size_t o = 0;
	while (*in) {
		unsigned char b;
		in += url_unit(in, &b);
		out[o++] = (char)b;
	}
	out[o] = '\0';
	return o;
}

int api_url_has_nul(const char *in)
{
	while (*in) {
		unsigned char b;
		in += url_unit(in, &b);
		if (b == 0)
			return 1;
	}
	return 0;
}

/* Match one pattern; copies {name}/{id} into c on success. */
static int pattern_match(const char *pat, const char *path, size_t plen,
			 api_call *c)
{
	size_t i = 0, j = 0;
	const size_t patlen = strlen(pat);
	while (i < patlen && j <= plen) {
		if (pat[i] == '{') {
			const char *close = strchr(pat + i, '}');
			size_t seg_end = j;
			while (seg_end < plen && path[seg_end] != '/')
				seg_end++;
			if (seg_end == j)
				return 0;
			size_t n = seg_end - j;
			if (strncmp(pat + i, "{name}", 6) == 0) {
				if (n >= sizeof c->name)
					n = sizeof c->name - 1; /* too long: name check fails */
				memcpy(c->name, path + j, n);
				c->name[n] = '\0';
			} else {
				if (n >= sizeof c->id)
					n = sizeof c->id - 1; /* too long: id check fails */
				memcpy(c->id, path + j, n);
				c->id[n] = '\0';
				c->id_len = n;
			}
			i = (size_t)(close - pat) + 1;
			j = seg_end;
			continue;
		}
		if (j >= plen || pat[i] != path[j])
			return 0;
		i++;
		j++;
	}
	return i == patlen && j == plen;
}

int routes_match(const char *method, const char *path, api_call *c,
		 char *allow_buf, size_t allow_len)
{
	size_t plen = strlen(path);
	if (plen > 1 && path[plen - 1] == '/')
		plen--; /* "/v1/collections/" == "/v1/collections" */
	size_t used = 0;
	if (allow_len)
		allow_buf[0] = '\0';
	int any = 0;
	for (size_t r = 0; r < NROUTES; r++) {
		if (!pattern_match(route_table[r].pattern, path, plen, c))
			continue;
		if (strcmp(route_table[r].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(route_table[r].method, "GET") == 0))
			return (int)r;
		any = 1;
		if (used < allow_len)
			used += (size_t)snprintf(allow_buf + used, allow_len - used, "%s%s",
						 used ? ", " : "", route_table[r].method);
	}
	return any ? -1 : -2;
}

/* Constant-time comparison of the key: "Authorization: Bearer KEY", or
 * Qdrant's "api-key: KEY" header. */
static int key_ok(const api_ctx *ctx, const char *tok);

static int auth_ok(const api_ctx *ctx, const api_request *req)
{
	if (!ctx->api_key || !ctx->api_key_len)
		return 1;
	if (req->api_key && key_ok(ctx, req->api_key))
		return 1;
	const char *hdr = req->authorization;
	if (!hdr || strncasecmp(hdr, "Bearer ", 7) != 0)
		return 0;
	return key_ok(ctx, hdr + 7);
}

static int key_ok(const api_ctx *ctx, const char *tok)
{
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		n--;
	unsigned char diff = (unsigned char)(n != ctx->api_key_len);
	for (size_t i = 0; i < ctx->api_key_len; i++)
		diff |= (unsigned char)(ctx->api_key[i] ^ (i < n ? tok[i] : 0));
	return diff == 0;
}

static int is_json_type(const char *ct)
{
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return 1;
	/* application/<something>+json */
	if (n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	    strncasecmp(ct + n - 5, "+json", 5) == 0)
		return 1;
	return 0;
}

/* A write handler run off the HTTP worker (api_request.defer_writes): the
 * call (its parsed body included) and the request are copied, since the
 * transport's request struct and our path buffer are gone by then; the
 * strings the request points to stay the transport's. */
typedef struct deferred_write {
	const api_route *rt;
	api_call c;
	api_request req;
	double t0; /* when dispatch began (Qdrant's envelope times from it) */
} deferred_write;

static void run_deferred_write(const api_ctx *ctx, void *arg, api_response *out)
{
	(void)ctx;
	deferred_write *w = arg;
	w->rt->handler(&w->c, out);
	if (!out->body && !out->text && !out->static_body && !out->body_read)
		api_error(out, 500, NULL, "internal_error", "handler produced no response");
	if (w->rt->flags & ROUTE_QDRANT)
		api_qdrant_envelope(out, api_now() - w->t0);
	json_decref(w->c.json);
	free(w);
}

/* 0: out is deferred and owns c's body; -1: out of memory, run it inline. */
static int defer_write(const api_route *rt, api_call *c, const api_request *req,
		       double t0, api_response *out)
{
	deferred_write *w = malloc(sizeof *w);
	if (!w)
		return -1;
	w->rt = rt;
	w->c = *c;
	w->req = *req;
	w->c.req = &w->req;
	w->t0 = t0;
	c->json = NULL;
	out->deferred = run_deferred_write;
	out->deferred_arg = w;
	return 0;
}

/* The checks between a matched route and its handler, in order:
 * authentication (also before 404/405, so that an unauthenticated client
 * learns nothing of the routes), 404 / 405, a write to a read-only server,
 * the body's size, type and JSON (into c->json), readiness.  1 with the
 * error in out when the request is refused, else 0. */
static int admit(const api_ctx *ctx, const api_request *req, const api_route *rt, int r,
		 const char *path, const char *allow, api_call *c, api_response *out)
{
	if (!(rt->flags & ROUTE_OPEN) || r < 0) {
		if (!auth_ok(ctx, req)) {
			api_error(out, 401, NULL, "invalid_api_key",
				  "missing or wrong API key: send 'Authorization: Bearer <key>' "
				  "or 'api-key: <key>'");
			return 1;
		}
	}
	if (r == -2) {
		api_error(out, 404, NULL, "route_not_found", "no route for %s %s",
			  req->method, path);
		return 1;
	}
	if (r == -1) {
		api_error(out, 405, NULL, "method_not_allowed",
			  "%s is not allowed on %s (allowed: %s)", req->method,
			  path, allow);
		snprintf(out->allow, sizeof out->allow, "%s", allow);
		return 1;
	}
	if ((rt->flags & ROUTE_WRITE) && ctx->read_only) {
		/* before the body is read: a replica never looks at a write */
		if (ctx->primary)
			api_error(out, 403, NULL, "read_only",
				  "this server is a read-only replica: send writes to the "
				  "primary at %s", ctx->primary);
		else
			api_error(out, 403, NULL, "read_only",
				  "this server is read-only (--read-only): send writes to the "
				  "primary");
		return 1;
	}
	if (req->body_too_large) {
		api_error(out, 413, NULL, "body_too_large",
			  "the request body is larger than the limit of %zu bytes",
			  ctx->limits.max_body_bytes);
		return 1;
	}
	int wants_body = (rt->flags & ROUTE_JSON) ||
			 ((rt->flags & ROUTE_JSON_OPT) && req->len > 0);
	if (wants_body) {
		if (req->content_type && !is_json_type(req->content_type)) {
			api_error(out, 415, NULL, "unsupported_media_type",
				  "Content-Type must be application/json (got '%s')",
				  req->content_type);
			return 1;
		}
		ju_err e;
		if (ju_parse_object(req->body, req->len, (int)ctx->limits.max_json_depth,
				    &c->json, &e) != 0) {
			api_error_ju(out, &e);
			return 1;
		}
	}
	/* Collections are being recovered until ready: a write now would not be
	 * logged and a read would see half the data.  (Routes that only encode
	 * text need nothing recovered.) */
	if ((strncmp(rt->pattern, "/v1/collections", 15) == 0 ||
	     strncmp(rt->pattern, "/collections", 12) == 0) && !atomic_load(&ctx->ready)) {
		api_error(out, 503, NULL, "not_ready",
			  "not ready yet: recovering collections from the data directory; "
			  "retry when GET /readyz answers 200");
		return 1;
	}
	return 0;
}

int api_dispatch(const api_ctx *ctx, const api_request *req, api_response *out)
{
	double t0 = api_now();
	memset(out, 0, sizeof *out);
	out->route = -1;
	api_call c;
	memset(&c, 0, sizeof c);
	c.ctx = ctx;
	c.req = req;
	/* The path arrives percent-encoded; decoded here, where its length is
	 * known, so that "%00" is refused instead of cutting the path short
	 * ("PUT /v1/collections/a%00b" must not create "a"). */
	char pbuf[512], *path = pbuf;
	unsigned rt_flags = 0;
	size_t rawlen = strlen(req->path);
	int r = -2;
	if (rawlen >= sizeof pbuf && !(path = malloc(rawlen + 1))) {
		path = pbuf;
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		goto done;
	}
	size_t plen = api_url_decode(req->path, path);
	if (memchr(path, '\0', plen)) {
		api_error(out, 400, NULL, "invalid_path",
			  "the path holds a percent-encoded NUL byte (%%00); no name or id may contain one");
		goto done;
	}
	if (req->query_has_nul) {
		api_error(out, 400, NULL, "invalid_query",
			  "a query parameter holds a percent-encoded NUL byte (%%00)");
		goto done;
	}
	char allow[64];
	r = routes_match(req->method, path, &c, allow, sizeof allow);
	const api_route *rt = routes_get(r >= 0 ? (size_t)r : NROUTES);
	rt_flags = r >= 0 ? rt->flags : 0;
	out->route = r >= 0 ? r : -1;
	if (admit(ctx, req, rt, r, path, allow, &c, out))
		goto done;
	if ((rt->flags & ROUTE_WRITE) && req->defer_writes && defer_write(rt, &c, req, t0, out) == 0) {
		if (path != pbuf)
			free(path);
		out->t0 = t0;
		return 0;
	}
	rt->handler(&c, out);
	if (out->deferred) { /* answered later: api_response_run_deferred */
		if (path != pbuf)
			free(path);
		json_decref(c.json);
		out->t0 = t0;
		return 0;
	}
	if (!out->body && !out->text && !out->static_body && !out->body_read)
		api_error(out, 500, NULL, "internal_error", "handler produced no response");
done:
	if (rt_flags & ROUTE_QDRANT)
		api_qdrant_envelope(out, api_now() - t0);
	if (path != pbuf)
		free(path);
	json_decref(c.json);
	if (!out->content_type)
		out->content_type = out->text ? "text/plain; charset=utf-8" : "application/json";
	metrics_observe(ctx->metrics, r >= 0 ? (size_t)r : NROUTES, out->status,
			api_now() - t0);
	return out->status;
}

int api_response_run_deferred(const api_ctx *ctx, api_response *out)
{
	void (*fn)(const api_ctx *, void *, api_response *) = out->deferred;
	void *arg = out->deferred_arg;
	int route = out->route;
	double t0 = out->t0;
	if (!fn)
		return out->status;
	memset(out, 0, sizeof *out);
	out->route = route;
	fn(ctx, arg, out);
	if (!out->body && !out->text && !out->static_body && !out->body_read)
		api_error(out, 500, NULL, "internal_error", "handler produced no response");
	if (!out->content_type)
		out->content_type = out->text ? "text/plain; charset=utf-8" : "application/json";
	metrics_observe(ctx->metrics, route >= 0 ? (size_t)route : NROUTES, out->status,
			api_now() - t0);
	return out->status;
}

int api_handle(const api_ctx *ctx, const char *method, const char *path,
	       const char *body, size_t len, api_response *out)
{
	api_request req;
	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = path;
	req.body = body;
	req.len = len;
	req.content_type = "application/json";
	api_dispatch(ctx, &req, out);
	return api_response_run_deferred(ctx, out);
}
