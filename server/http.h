/*
 * http.h — the libmicrohttpd transport: listen, collect request bodies
 * under the size limit, call api_dispatch, send, log.
 *
 * Threading: `threads` single-threaded libmicrohttpd daemons (epoll) and
 * one acceptor thread that owns the listening socket and deals new
 * connections to the daemons in turn, so every worker serves an equal share
 * of the clients; each request runs start to finish on its connection's
 * worker.  The in-flight counter is atomic.  es_http_stop is called from one thread
 * (the main thread, on SIGTERM/SIGINT).
 *
 * Ownership: the server borrows the api_ctx; es_http_stop frees the
 * server (not the ctx).
 */
#ifndef ES_HTTP_H
#define ES_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "error.h"

typedef struct es_http es_http;

typedef struct es_http_config {
	const char *host;          /* numeric address or name; "0.0.0.0", "::" */
	uint16_t port;             /* 0: any free port (see es_http_port) */
	unsigned threads;          /* >= 1 */
	int quiet;                 /* no access log */
} es_http_config;

/* Start serving (limits come from the ctx).  ES_EIO with a message when
 * the address cannot be bound. */
int es_http_start(const es_http_config *cfg, api_ctx *ctx, es_http **out,
		  es_error *err);

/* The port actually bound. */
uint16_t es_http_port(const es_http *h);

/* Requests started and not yet finished. */
unsigned es_http_inflight(const es_http *h);

/* Stop accepting, wait up to drain_s seconds for in-flight requests to
 * finish, close everything and free.  NULL is a no-op. */
void es_http_stop(es_http *h, double drain_s);

#endif
