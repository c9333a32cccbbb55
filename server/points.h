/*
 * points.h — the point operations of both API dialects, below their JSON
 * envelopes: scroll with a filter, count, retrieve many, select / delete by
 * filter, payload updates.  The /v1 handlers (api_points.c, api_scroll.c)
 * and the Qdrant translation layer (api_qdrant*.c) call these; neither has
 * an engine of its own.
 *
 * Request pieces both dialects spell the same way are parsed here too:
 *   selector:        {"points": [id, ...]} or {"filter": Filter}
 *   payload update:  set       {"payload": {...}, selector, "key": "a.b"?}
 *                    overwrite {"payload": {...}, selector}
 *                    delete    {"keys": ["a", "b.c"], selector}
 *                    clear     selector
 * strict = 1 refuses keys it does not know (/v1: a typo is a 400); strict =
 * 0 ignores them, as Qdrant does.  Ids are read by api_point_id (unsigned
 * 64-bit integers, strings, UUIDs normalised).
 *
 * Payload updates are one logged mutation each (es_collection_update_payload,
 * WAL record PAYLOAD): the op is compiled by the payload hooks
 * (api_payload_hooks, which carry the JSON merge) and applied in log order
 * under the collection's write lock, so a concurrent upsert of the same point
 * is never lost and replay recomputes the same bytes.  By filter: the ids
 * that match when the request runs are selected first (a point written
 * meanwhile may or may not be included), then updated or deleted as a list.
 *
 * set merges the payload's top-level keys into the point's payload (under
 * `key`, a dotted path whose missing or non-object steps become objects);
 * overwrite replaces it; delete removes keys (dotted paths); clear leaves
 * the point with no payload (null in /v1).  Vectors and lexical entries are
 * never touched.
 *
 * Errors: parse functions fill a ju_err (400 wrong type, 422 bad value);
 * the others return 0 or a negative ES_E* with err (api_error_es maps it).
 * Threading: every function may run on any request thread.  Ownership:
 * results are the caller's (the *_free functions); inputs are borrowed.
 */
#ifndef ES_POINTS_H
#define ES_POINTS_H

#include <jansson.h>

#include "collection.h"
#include "filter.h"
#include "json_util.h"

/* --- reading -------------------------------------------------------------- */

/* One page of a scroll: points in slot order from cursor `from` (0: the
 * start) that match f (NULL: all).  has_next / next: pass next back as
 * from for the following page. */
typedef struct api_page {
	es_point_out *pts;
	size_t n;
	int has_next;
	uint64_t next;
	int64_t *values;  /* api_points_ordered: each point's order value */
} api_page;

int api_points_page(es_collection *col, const api_filter *f, uint64_t from,
		    size_t limit, int with_payload, int with_vector,
		    api_page *out, es_error *err);
void api_page_free(api_page *p);

/* scroll's order_by {"key", "direction", "start_from"}. */
typedef struct api_order {
	const char *key;
	int desc;
	int has_start;
	double start;      /* asc: values >= start; desc: values <= start */
} api_order;

/* Parse order_by (a key string or {"key", "direction": "asc"|"desc",
 * "start_from": number}) into *o: 0, or -1 with e (400). */
int api_order_parse(const json_t *v, api_order *o, ju_err *e);

/* One page in the order of an integer payload index on o->key (Qdrant's
 * order_by: a point with several values comes once per value; there is no
 * next page cursor: continue with start_from).  ES_ENOTFOUND (the API's
 * 400) when the key has no usable integer index. */
int api_points_ordered(es_collection *col, const api_filter *f, const api_order *o,
		       size_t limit, int with_payload, int with_vector, api_page *out,
		       es_error *err);

/* Exact number of points matching f (NULL: all of them). */
int api_points_count(es_collection *col, const api_filter *f, size_t *count,
		     es_error *err);

/* The points with these ids that exist, in the order asked (an id asked
 * twice comes twice), into a fresh array (free with es_hits_free). */
int api_points_get_many(es_collection *col, const es_point_id *ids, size_t n,
			int with_payload, int with_vector, es_point_out **out,
			size_t *nout, es_error *err);

/* --- selector ------------------------------------------------------------ */

/* Which points a write applies to: a list of ids or a filter. */
typedef struct api_selector {
	es_point_id *ids;   /* borrowed strings (from the request JSON) */
	size_t n;
	api_filter *filter; /* owned; NULL for an id list */
} api_selector;

/* "points" and/or "filter" of obj: exactly one must be there (both or
 * neither: 400).  At most max_ids ids (422).  The JSON must outlive sel. */
int api_selector_parse(const json_t *obj, uint32_t max_ids, api_selector *sel,
		       ju_err *e);
void api_selector_free(api_selector *sel);

/* Delete the selected points; *deleted how many went. */
int api_points_delete_sel(es_collection *col, const api_selector *sel,
			  size_t *deleted, es_error *err);

/* --- payload updates --------------------------------------------------------- */

typedef enum api_payload_kind {
	API_PAYLOAD_SET,
	API_PAYLOAD_OVERWRITE,
	API_PAYLOAD_DELETE,
	API_PAYLOAD_CLEAR,
} api_payload_kind;

typedef struct api_payload_req {
	api_payload_kind kind;
	const json_t *payload; /* SET / OVERWRITE: an object (borrowed) */
	const json_t *keys;    /* DELETE: array of non-empty strings (borrowed) */
	const char *key;       /* SET: dotted path or NULL (borrowed) */
	api_selector sel;
} api_payload_req;

/* Parse a payload-update body of the given kind (shapes above). */
int api_payload_req_parse(const json_t *body, api_payload_kind kind, int strict,
			  uint32_t max_ids, api_payload_req *r, ju_err *e);
void api_payload_req_free(api_payload_req *r);

/* Run it: one logged, all-or-nothing update; *updated how many points
 * changed (ids that do not exist are skipped). */
int api_payload_update(es_collection *col, const api_payload_req *r,
		       size_t *updated, es_error *err);

/* The es_payload_hooks op functions (api_payload_hooks installs them). */
void *api_payload_op_compile(const char *op, size_t len);
int api_payload_op_apply(const void *op, const char *old, size_t oldlen,
			 char **out, size_t *outlen);
void api_payload_op_free(void *op);

#endif
