/*
 * routes.h — the static route table: (method, pattern, handler), patterns
 * with {name} and {id} segments.  The last entry catches everything else
 * (404); a path that matches some entry with another method is a 405 with
 * an Allow header.  The table itself is in routes.c, and api_dispatch (in
 * routes.c) is the only caller of the handlers.
 *
 * Threading: the table is constant.
 */
#ifndef ES_ROUTES_H
#define ES_ROUTES_H

#include <stddef.h>

#include "api_internal.h"

#define ROUTE_OPEN 1u      /* no API key needed (health probes) */
#define ROUTE_JSON 2u      /* body must be a JSON object */
#define ROUTE_JSON_OPT 4u  /* body optional; if present, a JSON object */
#define ROUTE_WRITE 8u     /* changes collections: 403 on a read-only server */
#define ROUTE_QDRANT 16u   /* Qdrant dialect: answers (errors included) in
			    * Qdrant's envelope (api_qdrant_envelope) */

typedef struct api_route {
	const char *method;
	const char *pattern;
	api_handler handler;
	unsigned flags;
} api_route;

/* Match path (decoded) against the table.  Returns the index of the route for
 * method, or -1 with *allow set to "GET, PUT" etc. (static storage in
 * `allow_buf`) when only other methods match, or -2 when nothing matches.
 * Path parameters are copied into c. */
int routes_match(const char *method, const char *path, api_call *c,
		 char *allow_buf, size_t allow_len);


#endif
