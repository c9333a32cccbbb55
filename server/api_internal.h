/*
 * api_internal.h — what the api_*.c handler files share: the context
 * struct, the per-request call, response helpers.  Not used outside
 * server/.
 *
 * A handler gets an api_call (path parameters decoded, body parsed for
 * routes that take JSON) and fills an api_response; it never sees a socket.
 */
#ifndef ES_API_INTERNAL_H
#define ES_API_INTERNAL_H

#include <stdatomic.h>

#include "api.h"
#include "batcher.h"
#include "json_util.h"

struct api_ctx {
	api_limits limits;
	char *api_key;
	size_t api_key_len;
	es_encoder **models;
	es_batcher **batchers; /* per model: NULL where not batched */
	size_t nmodels;
	es_registry *reg;
	char *data_dir;
	unsigned threads;
	api_metrics *metrics;
	atomic_int ready;
	/* The hooks below are set by the main thread after the HTTP workers
	 * started (so that /healthz answers during recovery or a bootstrap):
	 * atomic, and each set after its ctx, so a worker that sees one
	 * non-NULL sees its ctx too. */
	int (*_Atomic snapshot)(void *fctx, const char *name, es_error *err);
	void *snapshot_ctx;
	double start_time;
	int no_ui;
	int read_only;  /* --read-only / --follow: ROUTE_WRITE routes answer 403 */
	char *primary;  /* --primary / --follow URL (informational), or NULL */
	char **alias_names;           /* --model-alias NAME=MODEL: NAME ... */
	const es_encoder **alias_models; /* ... and the model it names */
	size_t naliases;
	struct es_store *_Atomic store; /* a primary's data directory (log shipping) */
	void (*_Atomic follower)(void *fctx, api_repl_status *st); /* NULL: not a follower */
	void *follower_ctx;
};

typedef struct api_call {
	const api_ctx *ctx;
	const api_request *req;
	char name[ES_COLLECTION_NAME_MAX + 2]; /* {name}; over-long names fail the name check */
	char id[ES_POINT_ID_STR_MAX + 2];      /* {id} */
	size_t id_len;
	json_t *json;                           /* parsed body or NULL */
} api_call;

typedef void (*api_handler)(api_call *c, api_response *out);

/* Response helpers: set status and body (steals body). */
void api_ok(api_response *out, int status, json_t *body);
void api_error(api_response *out, int status, const char *param,
	       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void api_error_ju(api_response *out, const ju_err *e);
/* From an ES_E* code and its message. */
void api_error_es(api_response *out, int code, const es_error *err,
		  const char *param);

/* Element i of the request array `array` must be an object with no keys
 * but `keys` (NULL-terminated): 0 with its name "ARRAY[i]" in param (n
 * bytes), or -1 with the 400 written to out. */
int api_array_object(const json_t *v, const char *array, size_t i,
		     const char *const *keys, char *param, size_t n,
		     api_response *out);

/* The collection `name` (a reference: es_collection_release it), or NULL
 * with a 404 (or other error) naming `param` written to out. */
es_collection *api_get_collection(const api_call *c, const char *name,
				  const char *param, api_response *out);

/* Hand hand-written JSON text to the response as a 200 (steals b->s);
 * a buffer that ran out of memory becomes a 503 instead. */
void api_ok_text(api_response *out, ju_buf *b);

/* The model named `name` (NULL or "": the default), or by an alias
 * (--model-alias).  With one model loaded any name is accepted (OpenAI
 * clients send their own model names); with several an unknown name is a
 * 404 written to out, and NULL is returned. */
const es_encoder *api_pick_model(const api_ctx *ctx, const char *name,
				 api_response *out);
/* The model that encodes a collection's text, or an error in out. */
const es_encoder *api_collection_model(const api_ctx *ctx,
				       const es_collection *col,
				       api_response *out);

/* Encode n texts with checks on count/characters; records metrics.  On
 * failure writes the error into out and returns -1.  vecs: n x dim. */
int api_encode_texts(const api_ctx *ctx, const es_encoder *enc,
		     const char *const *texts, const size_t *lens, size_t n,
		     const char *param, float *vecs, uint64_t *tokens,
		     api_response *out);

/* The same with encoder flags (ES_ENC_NO_TRUNCATE: a text longer than the
 * model's max_seq_length is a 422 "input_too_long" instead of truncated). */
int api_encode_texts_flags(const api_ctx *ctx, const es_encoder *enc,
			   const char *const *texts, const size_t *lens, size_t n,
			   unsigned flags, const char *param, float *vecs,
			   uint64_t *tokens, api_response *out);

/* The same, noting in empty[i] (n bytes) which texts encoded to nothing
 * (no word the model knows: an all-zero vector). */
int api_encode_texts_empty(const api_ctx *ctx, const es_encoder *enc,
			   const char *const *texts, const size_t *lens, size_t n,
			   const char *param, float *vecs, unsigned char *empty,
			   api_response *out);

/* An id JSON value -> es_point_id (borrows v's string).  Integers 0 ..
 * 2^64-1 (above 2^63-1 as ju_parse_object's markers, json_util.h) and
 * strings; a string that is a UUID (32 hex digits, or dashed 8-4-4-4-12,
 * any case) is rewritten IN v to its canonical form (dashed, lower case), so
 * every spelling names one point.  Negative or fractional numbers: 422;
 * other types: 400. */
int api_point_id(const json_t *v, es_point_id *id, const char *param,
		 ju_err *e);
/* The same for a URL path segment ({id}): a UUID is canonicalised in place
 * (seg must have room for 37 bytes), then es_point_id_from_text. */
void api_point_id_from_path(char *seg, size_t *len, es_point_id *out);
/* 1 and out = the canonical UUID (36 chars + NUL) when s is a UUID. */
int api_uuid_canonical(const char *s, size_t len, char out[37]);
/* es_point_id -> new JSON value (a marker above 2^63-1, unmarked when the
 * response is serialised). */
json_t *api_point_id_json(const es_point_id *id);

/* A point or search hit as JSON ({id, score?, payload?, vector?}). */
json_t *api_point_json(const es_point_out *p, uint32_t dim, int score);

/* Handlers (one file per resource). */
void api_h_healthz(api_call *c, api_response *out);
void api_h_readyz(api_call *c, api_response *out);
void api_h_coll_snapshot(api_call *c, api_response *out);
void api_h_metrics(api_call *c, api_response *out);
void api_h_info(api_call *c, api_response *out);
void api_h_models(api_call *c, api_response *out);
void api_h_embeddings(api_call *c, api_response *out);
void api_h_similarity(api_call *c, api_response *out);
void api_h_tokenize(api_call *c, api_response *out);
void api_h_coll_list(api_call *c, api_response *out);
void api_h_coll_create(api_call *c, api_response *out);
void api_h_coll_get(api_call *c, api_response *out);
void api_h_coll_delete(api_call *c, api_response *out);
void api_h_points_upsert(api_call *c, api_response *out);
void api_h_points_get(api_call *c, api_response *out);
void api_h_points_delete(api_call *c, api_response *out);
void api_h_search(api_call *c, api_response *out);
void api_h_words_neighbors(api_call *c, api_response *out);
void api_h_words_analogy(api_call *c, api_response *out);
void api_h_arithmetic(api_call *c, api_response *out);
void api_h_points_scroll(api_call *c, api_response *out);  /* api_scroll.c */
void api_h_points_count(api_call *c, api_response *out);   /* api_scroll.c */
void api_h_points_get_many(api_call *c, api_response *out); /* api_scroll.c */
void api_h_payload_set(api_call *c, api_response *out);
void api_h_payload_overwrite(api_call *c, api_response *out);
void api_h_payload_delete(api_call *c, api_response *out);
void api_h_payload_clear(api_call *c, api_response *out);
void api_h_index_create(api_call *c, api_response *out);  /* api_index.c */
void api_h_index_drop(api_call *c, api_response *out);
/* Create (kind: es_pindex_kind) or drop (kind 0) the payload index of
 * field in collection c->name: 0, or -1 with the error in out. */
int api_index_apply(api_call *c, const char *field, int kind, api_response *out);
/* The collection's payload indexes: [{"field", "type", "points", "usable"}]. */
json_t *api_index_list_json(es_collection *col);
void api_h_ui(api_call *c, api_response *out);             /* api_ui.c */
void api_h_repl_snapshot(api_call *c, api_response *out);  /* api_replication.c */
void api_h_repl_wal(api_call *c, api_response *out);

/* Qdrant's dialect (api_qdrant.c, api_qdrant_points.c). */
void api_h_qd_root(api_call *c, api_response *out);
void api_h_qd_coll_list(api_call *c, api_response *out);
void api_h_qd_coll_exists(api_call *c, api_response *out);
void api_h_qd_coll_create(api_call *c, api_response *out);
void api_h_qd_coll_get(api_call *c, api_response *out);
void api_h_qd_coll_delete(api_call *c, api_response *out);
void api_h_qd_index(api_call *c, api_response *out);
void api_h_qd_points_upsert(api_call *c, api_response *out);
void api_h_qd_points_retrieve(api_call *c, api_response *out);
void api_h_qd_points_get(api_call *c, api_response *out);
void api_h_qd_points_delete(api_call *c, api_response *out);
void api_h_qd_points_scroll(api_call *c, api_response *out);
void api_h_qd_points_count(api_call *c, api_response *out);
void api_h_qd_query(api_call *c, api_response *out);
void api_h_qd_query_batch(api_call *c, api_response *out);
void api_h_qd_payload_set(api_call *c, api_response *out);
void api_h_qd_payload_overwrite(api_call *c, api_response *out);
void api_h_qd_payload_delete(api_call *c, api_response *out);
void api_h_qd_payload_clear(api_call *c, api_response *out);
void api_h_qd_search(api_call *c, api_response *out);
void api_h_qd_search_batch(api_call *c, api_response *out);
/* Wrap a finished answer in Qdrant's envelope: {"result", "status": "ok",
 * "time"} for a success, {"status": {"error"}, "time"} for an error (the
 * status code kept).  api_dispatch calls it for ROUTE_QDRANT routes. */
void api_qdrant_envelope(api_response *out, double seconds);

/* Monotonic seconds. */
double api_now(void);

#endif
