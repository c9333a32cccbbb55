/* metrics.c — see metrics.h.  Relaxed atomics only; no locks. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const int statuses[] = {200, 201, 400, 401, 404, 405, 409, 413,
			       415, 422, 500, 503, 507, 0 /* other */};
#define NSTATUS (sizeof statuses / sizeof statuses[0])
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				 0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
				 1,      2.5,     5,      10};
#define NBUCKET (sizeof buckets / sizeof buckets[0])

typedef struct route_stats {
	atomic_uint_fast64_t count[NSTATUS];
	atomic_uint_fast64_t hist[NBUCKET + 1]; /* last: > 10 s */
	atomic_uint_fast64_t sum_ns;
} route_stats;

struct api_metrics {
	size_t nroutes;
	char **labels;
	route_stats *r; /* nroutes + 1 */
	atomic_uint_fast64_t texts, tokens;
	atomic_int_fast64_t connections;
	atomic_int_fast64_t *worker_conns; /* nworkers, or NULL */
	unsigned nworkers;
	atomic_uint_fast64_t timeouts[2]; /* by metrics_timeout_phase */
	atomic_uint_fast64_t refused;
};

void es_strbuf_printf(es_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	es_bytebuf_vprintf(b, fmt, ap);
	va_end(ap);
}

api_metrics *metrics_new(size_t nroutes, const char *const *labels)
{
	api_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->nroutes = nroutes;
	m->labels = calloc(nroutes + 1, sizeof *m->labels);
	m->r = calloc(nroutes + 1, sizeof *m->r);
	if (!m->labels || !m->r)
		goto fail;
	for (size_t i = 0; i <= nroutes; i++) {
		m->labels[i] = strdup(i < nroutes ? labels[i] : "unmatched");
		if (!m->labels[i])
			goto fail;
	}
	return m;
fail:
	metrics_free(m);
	return NULL;
}

void metrics_free(api_metrics *m)
{
	if (!m)
		return;
	if (m->labels)
		for (size_t i = 0; i <= m->nroutes; i++)
			free(m->labels[i]);
	free(m->labels);
	free(m->r);
	free(m->worker_conns);
	free(m);
}

void metrics_observe(api_metrics *m, size_t route, int status, double seconds)
{
	if (!m)
		return;
	if (route > m->nroutes)
		route = m->nroutes;
	route_stats *r = &m->r[route];
	size_t si = NSTATUS - 1;
	for (size_t i = 0; i + 1 < NSTATUS; i++)
		if (statuses[i] == status) {
			si = i;
			break;
		}
	atomic_fetch_add_explicit(&r->count[si], 1, memory_order_relaxed);
	size_t b = 0;
	while (b < NBUCKET && seconds > buckets[b])
		b++;
	atomic_fetch_add_explicit(&r->hist[b], 1, memory_order_relaxed);
	if (seconds < 0)
		seconds = 0;
	atomic_fetch_add_explicit(&r->sum_ns, (uint64_t)(seconds * 1e9),
				  memory_order_relaxed);
}

void metrics_add_encoded(api_metrics *m, uint64_t texts, uint64_t tokens)
{
	if (!m)
		return;
	atomic_fetch_add_explicit(&m->texts, texts, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->tokens, tokens, memory_order_relaxed);
}

int metrics_set_workers(api_metrics *m, unsigned n)
{
	if (!m || m->worker_conns || n == 0)
		return 0;
	m->worker_conns = calloc(n, sizeof *m->worker_conns);
	if (!m->worker_conns)
		return ES_ENOMEM;
	for (unsigned i = 0; i < n; i++)
		atomic_init(&m->worker_conns[i], 0);
	m->nworkers = n;
	return 0;
}

void metrics_connection(api_metrics *m, unsigned worker, int delta)
{
	if (!m)
		return;
	atomic_fetch_add_explicit(&m->connections, delta, memory_order_relaxed);
	if (worker < m->nworkers)
		atomic_fetch_add_explicit(&m->worker_conns[worker], delta,
					  memory_order_relaxed);
}

void metrics_add_refused(api_metrics *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->refused, 1, memory_order_relaxed);
}

void metrics_add_timeout(api_metrics *m, metrics_timeout_phase phase)
{
	if (m && (unsigned)phase < 2)
		atomic_fetch_add_explicit(&m->timeouts[phase], 1, memory_order_relaxed);
}

uint64_t metrics_total_requests(const api_metrics *m)
{
	uint64_t t = 0;
	for (size_t i = 0; i <= m->nroutes; i++)
		for (size_t s = 0; s < NSTATUS; s++)
			t += atomic_load_explicit(&m->r[i].count[s], memory_order_relaxed);
	return t;
}

void metrics_render(const api_metrics *m, es_strbuf *b)
{
	es_strbuf_printf(b, "# HELP embedsrv_http_requests_total HTTP requests by route and status.\n"
			    "# TYPE embedsrv_http_requests_total counter\n");
	for (size_t i = 0; i <= m->nroutes; i++)
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t c = atomic_load_explicit(&m->r[i].count[s], memory_order_relaxed);
			if (!c)
				continue;
			char st[16];
			if (statuses[s])
				snprintf(st, sizeof st, "%d", statuses[s]);
			else
				snprintf(st, sizeof st, "other");
			es_strbuf_printf(b, "embedsrv_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
					 m->labels[i], st, (unsigned long long)c);
		}
	es_strbuf_printf(b, "# HELP embedsrv_http_request_duration_seconds Request latency by route.\n"
			    "# TYPE embedsrv_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i <= m->nroutes; i++) {
		uint64_t cum = 0, total = 0;
		for (size_t k = 0; k <= NBUCKET; k++)
			total += atomic_load_explicit(&m->r[i].hist[k], memory_order_relaxed);
		if (!total)
			continue;
		for (size_t k = 0; k < NBUCKET; k++) {
			cum += atomic_load_explicit(&m->r[i].hist[k], memory_order_relaxed);
			es_strbuf_printf(b, "embedsrv_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
					 m->labels[i], buckets[k], (unsigned long long)cum);
		}
		es_strbuf_printf(b, "embedsrv_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
				 m->labels[i], (unsigned long long)total);
		es_strbuf_printf(b, "embedsrv_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
				 m->labels[i],
				 (double)atomic_load_explicit(&m->r[i].sum_ns, memory_order_relaxed) / 1e9);
		es_strbuf_printf(b, "embedsrv_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
				 m->labels[i], (unsigned long long)total);
	}
	es_strbuf_printf(b, "# HELP embedsrv_encoded_texts_total Texts encoded into vectors.\n"
			    "# TYPE embedsrv_encoded_texts_total counter\n"
			    "embedsrv_encoded_texts_total %llu\n",
			 (unsigned long long)atomic_load_explicit(&m->texts, memory_order_relaxed));
	es_strbuf_printf(b, "# HELP embedsrv_encoded_tokens_total Tokens seen while encoding.\n"
			    "# TYPE embedsrv_encoded_tokens_total counter\n"
			    "embedsrv_encoded_tokens_total %llu\n",
			 (unsigned long long)atomic_load_explicit(&m->tokens, memory_order_relaxed));
	es_strbuf_printf(b, "# HELP embedsrv_http_connections Client connections open now.\n"
			    "# TYPE embedsrv_http_connections gauge\n"
			    "embedsrv_http_connections %lld\n",
			 (long long)atomic_load_explicit(&m->connections, memory_order_relaxed));
	if (m->nworkers)
		es_strbuf_printf(b, "# HELP embedsrv_http_worker_connections Client connections open now, "
				    "by HTTP worker thread.\n"
				    "# TYPE embedsrv_http_worker_connections gauge\n");
	for (unsigned i = 0; i < m->nworkers; i++)
		es_strbuf_printf(b, "embedsrv_http_worker_connections{worker=\"%u\"} %lld\n", i,
				 (long long)atomic_load_explicit(&m->worker_conns[i],
								 memory_order_relaxed));
	es_strbuf_printf(b, "# HELP embedsrv_http_refused_total Connections closed at once because "
			    "--max-connections were open.\n"
			    "# TYPE embedsrv_http_refused_total counter\n"
			    "embedsrv_http_refused_total %llu\n",
			 (unsigned long long)atomic_load_explicit(&m->refused, memory_order_relaxed));
	es_strbuf_printf(b, "# HELP embedsrv_http_timeouts_total Connections cut off because a request "
			    "did not arrive in full within --timeout, by what was still due.\n"
			    "# TYPE embedsrv_http_timeouts_total counter\n"
			    "embedsrv_http_timeouts_total{phase=\"headers\"} %llu\n"
			    "embedsrv_http_timeouts_total{phase=\"body\"} %llu\n",
			 (unsigned long long)atomic_load_explicit(&m->timeouts[0], memory_order_relaxed),
			 (unsigned long long)atomic_load_explicit(&m->timeouts[1], memory_order_relaxed));
}
