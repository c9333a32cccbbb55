/*
 * api.h — the HTTP/JSON API without the socket.
 *
 * api_dispatch() takes one parsed request (method, path, headers that
 * matter, body bytes) and produces one response (status + JSON body, or a
 * text body for /metrics).  server/http.c calls it from libmicrohttpd's
 * threads; tests and fuzzers call api_handle() directly.
 *
 * Threading: an api_ctx is shared by all server threads.  Everything in it
 * is either immutable after api_ctx_new, internally locked (the registry,
 * collections), or atomic (metrics, the ready flag).
 *
 * Ownership: api_ctx_new borrows the encoders and the registry (the caller
 * frees them after api_ctx_free); an api_response owns its body until
 * api_response_free.
 */
#ifndef ES_API_H
#define ES_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "collection.h"
#include "encoder.h"
#include "error.h"
#include "metrics.h"

/* Request limits, all reported by GET /v1/info. */
typedef struct api_limits {
	size_t max_body_bytes;      /* request body; larger -> 413 */
	uint32_t max_inputs;        /* texts per /v1/embeddings request */
	uint32_t max_input_chars;   /* Unicode characters per text */
	uint32_t max_k;             /* k of search / neighbours */
	uint32_t max_ef;            /* ef of search */
	uint32_t max_points;        /* points per upsert / delete */
	uint32_t max_searches;      /* queries in one batch search */
	uint32_t max_json_depth;    /* JSON nesting */
	uint32_t timeout_s;         /* a request must arrive in full within this */
	uint32_t max_connections;   /* open client connections */
} api_limits;

/* The defaults (documented in openapi.yaml and README). */
void api_limits_default(api_limits *l);

typedef struct api_config {
	api_limits limits;
	const char *api_key;        /* NULL or "": no authentication */
	es_encoder *const *models;  /* nmodels >= 1; models[0] is the default */
	size_t nmodels;
	es_registry *registry;      /* collections */
	const char *data_dir;       /* reported by /v1/info; may be NULL */
	unsigned threads;           /* reported by /v1/info */
	int no_ui;                  /* non-zero: /ui/ answers 404 (serve --no-ui) */
	int read_only;              /* non-zero: every route that changes
				     * collections answers 403 read_only */
	const char *primary;        /* the primary's URL, named in that 403 and
				     * in /v1/info; may be NULL */
	/* Dynamic batching (server/batcher.h) of BERT models' encodes:
	 * batch_max texts per forward (0: off), batch_wait_us, batch_threads
	 * per forward (0: 1) and batch_workers forwards at once (0: CPU count /
	 * batch_threads, at least 1). */
	uint32_t batch_max, batch_wait_us;
	unsigned batch_threads, batch_workers;
	const char *const *model_aliases; /* naliases "NAME=MODEL": requests may
				     * name MODEL (a loaded model) as NAME, e.g.
				     * text-embedding-3-small (serve --model-alias) */
	size_t naliases;
} api_config;

typedef struct api_ctx api_ctx;

int api_ctx_new(const api_config *cfg, api_ctx **out, es_error *err);
void api_ctx_free(api_ctx *ctx);

/* /readyz answers 200 only once this is set (model loaded, data recovered);
 * until then the /v1/collections routes answer 503 not_ready. */
void api_ctx_set_ready(api_ctx *ctx, int ready);

/* Where POST /v1/collections/{name}/snapshot goes (the durability layer);
 * fn NULL: the route answers that persistence is off.  Set before ready. */
void api_ctx_set_snapshot(api_ctx *ctx,
			  int (*fn)(void *fctx, const char *name, es_error *err),
			  void *fctx);

/* Log shipping (server/api_replication.c).  A primary's data directory,
 * served by GET /v1/replication/snapshot and /v1/replication/wal (without
 * one they answer 409).  Set before ready. */
struct es_store;
void api_ctx_set_store(api_ctx *ctx, struct es_store *store);

/* A follower's state, for /readyz, /v1/info and /metrics. */
typedef struct api_repl_status {
	const char *state;      /* "bootstrapping", "following", "diverged", ... */
	int healthy;            /* 0: /readyz answers 503 with `error` */
	int connected;          /* the last request to the primary succeeded */
	uint64_t applied_lsn;   /* last record applied here */
	uint64_t primary_lsn;   /* the primary's last record, as last seen */
	double lag_seconds;     /* 0 when caught up at the last poll, else the
				 * time since it last was */
	char error[512];        /* why not healthy / the last failure, or "" */
} api_repl_status;

/* On a follower: fn fills *st (any thread may call it). */
void api_ctx_set_follower(api_ctx *ctx, void (*fn)(void *fctx, api_repl_status *st),
			  void *fctx);

api_metrics *api_ctx_metrics(const api_ctx *ctx);
const api_limits *api_ctx_limits(const api_ctx *ctx);

/* Payload hooks the registry should be created with, so that filters see
 * parsed payloads (jansson objects). */
const es_payload_hooks *api_payload_hooks(void);

typedef struct api_request {
	const char *method;
	const char *path;           /* as sent (percent-encoded), without the
				     * query string; api_dispatch decodes it */
	const char *body;           /* may be NULL when len == 0 */
	size_t len;
	const char *content_type;   /* NULL if absent */
	const char *authorization;  /* NULL if absent */
	const char *api_key;        /* the api-key header (Qdrant's), NULL if absent */
	const char *if_none_match;  /* NULL if absent (only /ui/ looks at it) */
	int body_too_large;         /* set by the transport: answer 413 */
	int query_has_nul;          /* set by the transport: a query key or
				     * value decodes to a NUL byte (400) */
	/* a query parameter's value as sent (percent-encoded) or NULL;
	 * query may be NULL (no query parameters at all) */
	const char *(*query)(void *qctx, const char *key);
	void *qctx;
	/* set by a transport that runs deferred answers on threads of their
	 * own (server/http.c): the handler of a ROUTE_WRITE route is then
	 * deferred (api_response.deferred), so a write that waits for its
	 * fsync and builds its graph nodes never holds the HTTP worker, and
	 * the searches of the other connections that worker serves, for the
	 * batch's duration.  The strings above and the body must then stay
	 * valid until the deferred answer has run. */
	int defer_writes;
} api_request;

/* Percent-decoding of a request path or query parameter as sent, the way
 * libmicrohttpd's MHD_http_unescape does it: "%XX" with two hex digits is
 * the byte 0xXX, anything else (a lone '%' included) stands for itself.
 * api_url_decode writes the bytes `in` decodes to into out (room for
 * strlen(in) + 1; may be `in` itself) plus a terminating NUL, and returns
 * their count: "%00" decodes to a NUL byte inside, so the count, not
 * strlen(out), is the length.  api_url_has_nul: whether `in` decodes to a
 * NUL byte.  Paths and query parameters that do are refused (400): no
 * name or id may hold one, and a C string would end there. */
size_t api_url_decode(const char *in, char *out);
int api_url_has_nul(const char *in);

typedef struct api_response {
	int status;
	json_t *body;               /* JSON body (owned), or NULL */
	char *text;                 /* non-JSON body (owned, malloc), or NULL */
	size_t text_len;
	const void *static_body;    /* or a body in static storage (not freed), */
	size_t static_len;          /* e.g. a /ui/ asset; "" for a 304 */
	const char *etag;           /* ETag header (static string), or NULL */
	const char *const *headers; /* more headers: static NULL-terminated
				     * name, value, name, value, ... or NULL */
	char *own_headers;          /* more headers, owned (malloc): "Name:
				     * value" lines each ended by '\n', or NULL */
	/* A body read out as it is sent (the replication bundle): body_len
	 * bytes, asked for in order by body_read (the count, > 0; or < 0 when
	 * the source failed: the transport then drops the connection, and the
	 * client sees the answer cut short).  body_close(body_ctx) frees the
	 * source (called by the transport, or by api_response_free). */
	void *body_ctx;
	ssize_t (*body_read)(void *ctx, char *buf, size_t n);
	void (*body_close)(void *ctx);
	uint64_t body_len;
	const char *content_type;   /* static string */
	char allow[64];             /* for 405: the Allow header */
	int route;                  /* route table index (metrics), -1 none */
	/* Work that would hold an HTTP worker (and every other connection it
	 * serves) for long, such as building the replication bundle: the
	 * handler sets deferred and deferred_arg and fills nothing else.  The
	 * transport then calls api_response_run_deferred on a thread of its
	 * own while the connection waits (server/http.c suspends it), and
	 * sends what that fills. */
	void (*deferred)(const api_ctx *ctx, void *arg, struct api_response *out);
	void *deferred_arg;
	double t0;                  /* when dispatch began (metrics) */
} api_response;

/* Route, authenticate, check Content-Type, run the handler, record
 * metrics.  Always fills *out (errors become error bodies).  Returns the
 * HTTP status. */
int api_dispatch(const api_ctx *ctx, const api_request *req, api_response *out);

/* Run a deferred handler's work (out->deferred, see api_response) on the
 * calling thread: fills *out as api_dispatch does and records the metrics
 * then.  Returns the HTTP status.  api_handle runs it inline. */
int api_response_run_deferred(const api_ctx *ctx, api_response *out);

/* The fuzzing / test entry point: a request with Content-Type
 * application/json and no Authorization header.  Build the ctx with
 * api_ctx_new (registry from es_registry_new(api_payload_hooks(), ...)) and
 * call api_ctx_set_ready(ctx, 1) first, or every route but /healthz and
 * /readyz answers 503 not_ready.  See tests/test_routes.c. */
int api_handle(const api_ctx *ctx, const char *method, const char *path,
	       const char *body, size_t len, api_response *out);

/* Serialise the body (JSON compact, or the text).  Returns a malloc'd
 * buffer in *data (free()), 0 or ES_ENOMEM. */
int api_response_serialize(const api_response *r, char **data, size_t *len);

void api_response_free(api_response *r);

/* The route table, for listings (openapi test) and metrics labels. */
size_t api_route_count(void);
const char *api_route_method(size_t i);
const char *api_route_pattern(size_t i);

#endif
