/*
 * api_qdrant.h — what the two Qdrant-dialect files (api_qdrant.c:
 * envelope, ids, collections; api_qdrant_points.c: points and search)
 * share.  Not used outside server/.
 *
 * The Qdrant dialect is a translation layer, not a second engine: each
 * handler rewrites the Qdrant request body into the body of the /v1
 * handler that does the work, runs that handler (qd_call), and rewrites
 * its answer into Qdrant's shape.  api_dispatch then wraps every answer of
 * a ROUTE_QDRANT route in Qdrant's envelope (api_qdrant_envelope).
 *
 * Threading: stateless.  Ownership: as noted per function.
 */
#ifndef ES_API_QDRANT_H
#define ES_API_QDRANT_H

#include "api_internal.h"
#include "points.h"

/* The Qdrant API version GET / reports: the newest the pinned clients
 * (tests/compat) accept without a warning. */
#define QD_API_VERSION "1.18.0"

/* Run the /v1 handler h as if it had been sent `v1` (stolen; may be NULL
 * for a handler without a body) with c's path parameters; its answer is in
 * out. */
void qd_call(api_call *c, api_handler h, json_t *v1, api_response *out);

/* The "result" of a successful /v1 answer in out (a new reference; the
 * answer is released), or NULL when out holds an error (left in out) or
 * on out of memory (out then holds a 503). */
json_t *qd_take_result(api_response *out);

/* A Qdrant point id (an unsigned integer, or a UUID in any spelling the
 * uuid crate accepts: 32 hex digits, dashed, braced, "urn:uuid:") as the
 * /v1 id: the integer, or the UUID lowercase and dashed, so every spelling
 * names the same point.  New reference, or NULL with e filled (400). */
json_t *qd_id(const json_t *v, const char *param, ju_err *e);

/* The same for an id in text (a URL path segment): *num / str[37]. */
int qd_id_text(const char *s, size_t len, char *out, size_t outlen, ju_err *e);

/* with_payload / with_vector as Qdrant sends them (bool, list of keys,
 * {"include"|"exclude": [...]}) -> whether anything is wanted. */
int qd_want(const json_t *v, int def, const char *param, int *want, ju_err *e);

/* Keep only the payload keys `sel` selects (a list, or {"include"} /
 * {"exclude"}) in every point of the array pts; bool sel: unchanged. */
void qd_select_payload(json_t *pts, const json_t *sel);

/* An UpdateResult: {"operation_id": 0, "status": "completed"}.  Every
 * write here is applied before the answer (Qdrant's wait=true), and there
 * are no operation ids to poll, so the id is always 0. */
void qd_ok_update(api_response *out);
/* The payload updates' one implementation; qdrant: Qdrant's body rules and
 * answer (api_points.c; the Qdrant routes below call it). */
void api_payload_route(api_call *c, api_payload_kind kind, int qdrant, api_response *out);
/* Count's one implementation (api_scroll.c); qdrant: Qdrant's body rules. */
void api_count_route(api_call *c, int qdrant, api_response *out);

#endif
