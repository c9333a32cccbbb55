/*
 * metrics.h — Prometheus counters and histograms for the server.
 *
 * Requests are counted by route (the route table's pattern, so label sets
 * stay bounded) and status, with one latency histogram per route; encoded
 * texts and tokens are counters.  Collection sizes are gauges rendered by
 * the caller (api_admin) at scrape time.
 *
 * Threading: every update is a relaxed atomic add, so any thread may record
 * at any time; rendering reads the atomics without locks (a scrape may see
 * a request counted in one series and not yet in another, as Prometheus
 * allows).
 * Ownership: metrics_new copies the route names; metrics_free frees all.
 */
#ifndef ES_METRICS_H
#define ES_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"

typedef struct api_metrics api_metrics;

/* A growable text buffer for rendering. */
typedef es_bytebuf es_strbuf; /* core/bytebuf.h */

void es_strbuf_printf(es_strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* nroutes route labels, e.g. "POST /v1/embeddings".  NULL on failure. */
api_metrics *metrics_new(size_t nroutes, const char *const *labels);
void metrics_free(api_metrics *m);

/* One finished request: route index (< nroutes; nroutes itself counts
 * unmatched paths), HTTP status, and latency. */
void metrics_observe(api_metrics *m, size_t route, int status, double seconds);

/* Texts and tokens that went through an encoder. */
void metrics_add_encoded(api_metrics *m, uint64_t texts, uint64_t tokens);

/* The HTTP layer's worker threads, numbered 0..n-1: call once, before
 * serving, to have connections counted per worker as well.  0 or ES_ENOMEM. */
int metrics_set_workers(api_metrics *m, unsigned n);

/* Client connections: one opened (+1) or closed (-1) on worker `worker`.
 * Rendered as the gauges embedsrv_http_connections (all) and
 * embedsrv_http_worker_connections{worker="i"} (when workers were set and
 * worker < their count). */
void metrics_connection(api_metrics *m, unsigned worker, int delta);

/* A connection closed at once because --max-connections were open.
 * Rendered as the counter embedsrv_http_refused_total. */
void metrics_add_refused(api_metrics *m);

/* A connection cut off because its request did not arrive in full within
 * --timeout: while its headers were due, or its body. */
typedef enum metrics_timeout_phase {
	METRICS_TIMEOUT_HEADERS,
	METRICS_TIMEOUT_BODY,
} metrics_timeout_phase;
void metrics_add_timeout(api_metrics *m, metrics_timeout_phase phase);

/* Total requests recorded (for tests). */
uint64_t metrics_total_requests(const api_metrics *m);

/* Append the Prometheus text exposition of everything above to b. */
void metrics_render(const api_metrics *m, es_strbuf *b);

#endif
