/*
 * http.c — libmicrohttpd glue; see http.h.
 *
 * Per request: the first callback allocates a req_state in *req_cls and
 * looks at Content-Length; later callbacks append body bytes (or, past
 * --max-body, count and drop them) until *upload_data_size == 0; the last
 * one calls api_dispatch and queues the response.  A body announced larger
 * than 64 x the limit is answered 413 at once and the connection closed,
 * rather than read and dropped.  The completion callback logs one line
 * (method, path, status, bytes, microseconds) and frees the state.
 * Idle or stalled clients are cut off by MHD's connection timeout, and a
 * body still arriving after --timeout seconds drops the connection (408 in
 * the log), so a client trickling bytes cannot hold a worker forever.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"

struct es_http {
	struct MHD_Daemon *d;
	api_ctx *ctx;
	int quiet;
	size_t max_body;
	unsigned timeout_s;
	atomic_uint inflight;
	uint16_t port;
};

typedef struct req_state {
	double t0;
	char *body;
	size_t len, cap;
	int too_large;
	int status;
	size_t bytes;
	char method[16];
	char path[256];
} req_state;

static void log_line(const es_http *h, const req_state *rs)
{
	if (h->quiet)
		return;
	double us = (api_now() - rs->t0) * 1e6;
	fprintf(stderr, "%s %s %d %zu %.0fus\n", rs->method, rs->path, rs->status,
		rs->bytes, us);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, req_state *rs,
				     api_response *r)
{
	char *data = NULL;
	size_t len = 0;
	if (r->text) { /* hand the text body over instead of copying it */
		data = r->text;
		len = r->text_len;
		r->text = NULL;
	} else if (api_response_serialize(r, &data, &len) != 0) {
		static const char oom[] = "{\"error\":{\"message\":\"out of memory\","
					  "\"type\":\"server_error\",\"param\":null,\"code\":\"out_of_memory\"}}";
		data = strdup(oom);
		len = data ? strlen(data) : 0;
		r->status = 503;
		r->content_type = "application/json";
		if (!data)
			return MHD_NO;
	}
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->content_type ? r->content_type : "application/json");
	if (r->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	rs->status = r->status;
	rs->bytes = len;
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)version;
	es_http *h = cls;
	req_state *rs = *req_cls;
	if (!rs) {
		rs = calloc(1, sizeof *rs);
		if (!rs)
			return MHD_NO;
		rs->t0 = api_now();
		snprintf(rs->method, sizeof rs->method, "%s", method);
		snprintf(rs->path, sizeof rs->path, "%s", url);
		*req_cls = rs;
		atomic_fetch_add(&h->inflight, 1);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			unsigned long long n = strtoull(cl, NULL, 10);
			if (n > h->max_body) {
				rs->too_large = 1;
				if (n / 64 > h->max_body) {
					/* far too large to read and drop: answer now */
					api_request req = {method, url, NULL, 0, NULL,
							   MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
										       MHD_HTTP_HEADER_AUTHORIZATION),
							   1};
					api_response r;
					api_dispatch(h->ctx, &req, &r);
					enum MHD_Result ret = send_response(conn, rs, &r);
					api_response_free(&r);
					return ret;
				}
			} else if (n > 0) {
				rs->body = malloc((size_t)n + 1);
				if (!rs->body)
					return MHD_NO;
				rs->cap = (size_t)n + 1;
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rs->status) /* already answered (huge body) */
			return MHD_YES;
		/* MHD's timeout only catches idle connections; a client that
		 * trickles its body gets the same time for the whole upload */
		if (api_now() - rs->t0 > (double)h->timeout_s) {
			rs->status = 408;
			return MHD_NO;
		}
		if (rs->too_large || rs->len + n > h->max_body) {
			rs->too_large = 1;
			free(rs->body);
			rs->body = NULL;
			rs->len = rs->cap = 0;
			return MHD_YES;
		}
		if (rs->len + n + 1 > rs->cap) {
			size_t ncap = rs->cap ? rs->cap : 4096;
			while (ncap < rs->len + n + 1)
				ncap *= 2;
			char *nb = realloc(rs->body, ncap);
			if (!nb)
				return MHD_NO;
			rs->body = nb;
			rs->cap = ncap;
		}
		memcpy(rs->body + rs->len, upload_data, n);
		rs->len += n;
		return MHD_YES;
	}
	if (rs->status)
		return MHD_YES;
	if (rs->body)
		rs->body[rs->len] = '\0';
	api_request req;
	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = url;
	req.body = rs->body;
	req.len = rs->len;
	req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);
	req.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_AUTHORIZATION);
	req.body_too_large = rs->too_large;
	api_response r;
	api_dispatch(h->ctx, &req, &r);
	enum MHD_Result ret = send_response(conn, rs, &r);
	api_response_free(&r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	es_http *h = cls;
	req_state *rs = *req_cls;
	if (!rs)
		return;
	if (!rs->status)
		rs->status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
	log_line(h, rs);
	free(rs->body);
	free(rs);
	*req_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	es_http *h = cls;
	if (h->quiet)
		return;
	fprintf(stderr, "embedsrv serve: libmicrohttpd: ");
	vfprintf(stderr, fmt, ap);
}

int es_http_start(const es_http_config *cfg, api_ctx *ctx, es_http **out,
		  es_error *err)
{
	es_http *h = calloc(1, sizeof *h);
	if (!h)
		return es_err(err, ES_ENOMEM, "out of memory");
	h->ctx = ctx;
	h->quiet = cfg->quiet;
	h->max_body = api_ctx_limits(ctx)->max_body_bytes;
	h->timeout_s = api_ctx_limits(ctx)->timeout_s;
	atomic_init(&h->inflight, 0);

	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%u", cfg->port);
	int gai = getaddrinfo(cfg->host, portstr, &hints, &ai);
	if (gai != 0 || !ai) {
		free(h);
		return es_err(err, ES_EINVAL, "cannot resolve host '%s': %s", cfg->host,
			      gai_strerror(gai));
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
			 MHD_USE_TURBO | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	const api_limits *l = api_ctx_limits(ctx);
	unsigned threads = cfg->threads ? cfg->threads : 1;
	h->d = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_THREAD_POOL_SIZE, threads,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)l->max_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)l->timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, /* headers only: MHD clears it per request */
				MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!h->d) {
		free(h);
		return es_err(err, ES_EIO,
			      "cannot listen on %s:%u (address in use, or not allowed?)",
			      cfg->host, cfg->port);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : cfg->port;
	*out = h;
	return 0;
}

uint16_t es_http_port(const es_http *h)
{
	return h->port;
}

unsigned es_http_inflight(const es_http *h)
{
	return atomic_load(&((es_http *)h)->inflight);
}

void es_http_stop(es_http *h, double drain_s)
{
	if (!h)
		return;
	MHD_socket fd = MHD_quiesce_daemon(h->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	double end = api_now() + drain_s;
	while (atomic_load(&h->inflight) > 0 && api_now() < end) {
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(h->d);
	free(h);
}
