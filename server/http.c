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
 *
 * Slow clients.  MHD's connection timeout only catches a connection that
 * sends nothing for --timeout seconds; a client trickling one byte a
 * second never trips it, and MHD never shows us a request whose headers
 * are not complete.  So every connection is on a watch list (its MHD
 * socket context, from NOTIFY_CONNECTION) with the time the request now
 * due began: when the connection opened, or when the previous response
 * finished.  A watchdog thread cuts, with shutdown(2), any connection
 * whose request (headers and body) has not fully arrived --timeout
 * seconds after that; MHD then sees the socket closed and cleans up as for
 * any client that went away.  A body still arriving after --timeout is
 * also refused on the spot by the request callback (408 in the log).
 * While a request is being answered the connection is not watched:
 * handlers may take long on big batches, and a client that stops reading
 * the answer is MHD's idle timeout's business.
 *
 * Connections are spread over the worker threads by us, not by the
 * kernel.  With MHD's own thread pool every worker polls the listening
 * socket and whichever wakes first accepts, so a burst of connections
 * lands unevenly (47 of 64 on one of two threads, measured): the threads
 * then serve unequal shares of the clients and the busier one's clients
 * wait longer for the same work.  So one acceptor thread owns the
 * listening socket and hands each new connection to the next of `threads`
 * single-threaded MHD daemons in turn (MHD_add_connection;
 * MHD_USE_NO_LISTEN_SOCKET), and the connection limit is checked there.
 *
 * Deferred answers.  A handler whose work takes long (the replication
 * bundle: seconds of disk work at a million points) sets
 * api_response.deferred instead of answering; its connection is then
 * suspended (MHD_suspend_connection), the work runs on a detached thread
 * of its own (defer_main), and that thread resumes the connection, whose
 * request callback then sends the answer.  The daemon's thread meanwhile
 * serves its other connections.  Every write (ROUTE_WRITE) is deferred
 * so (api_request.defer_writes): a batch of 500 texts waits for its fsync
 * and builds its graph nodes for up to a second, and with the write on the
 * daemon's thread every search of the connections that daemon serves
 * waited as long (search p99 18x its idle value during a REST ingestion,
 * issue 19).  es_http_stop waits for such threads
 * before stopping the daemons (MHD refuses to stop with a connection
 * suspended).
 *
 * Threading: each daemon's thread runs the callbacks of its connections;
 * the acceptor blocks in poll(2) on the listening socket and a stop pipe;
 * one watchdog thread scans the list four times a second.  The list is
 * under watch_lock; a connection's phase and start time are atomics its MHD thread writes and
 * the watchdog reads.  MHD calls NOTIFY_CONNECTION(CLOSED), which takes
 * the connection off the list under the lock, before it closes the
 * socket, so the watchdog never shuts down a descriptor that has been
 * closed and reused.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"

/* What a connection is doing, for the watchdog. */
enum {
	CONN_HEADERS, /* waiting for a request's headers (or idle between requests) */
	CONN_BODY,    /* headers in, body arriving */
	CONN_BUSY,    /* request complete, being answered: not watched */
};

/* One per TCP connection: MHD's socket context, on the watch list. */
typedef struct conn_watch {
	struct conn_watch *prev, *next;
	MHD_socket fd;
	atomic_int phase;       /* CONN_* */
	_Atomic double since;   /* api_now() when the request now due began */
	atomic_int cut;         /* the watchdog shut the socket down */
} conn_watch;

/* One MHD daemon (one thread): the context of its connection callbacks. */
typedef struct http_worker {
	struct es_http *h;
	unsigned idx;
} http_worker;

struct es_http {
	struct MHD_Daemon **d;  /* nd single-threaded daemons, no listen socket */
	http_worker *workers;   /* nd */
	unsigned nd;
	int lfd;                /* the listening socket, owned by the acceptor */
	int stop_pipe[2];       /* written once to stop the acceptor */
	int acceptor_running;
	pthread_t acceptor;
	atomic_uint live;       /* connections accepted and not yet closed */
	unsigned max_connections;
	api_ctx *ctx;
	api_metrics *metrics;
	int quiet;
	size_t max_body;
	unsigned timeout_s;
	atomic_uint inflight;
	uint16_t port;
	/* deferred answers being worked out (defer_main threads), under
	 * watch_lock; defer_done is signalled when one finishes */
	unsigned deferring;
	pthread_cond_t defer_done;
	/* the watch list and its watchdog */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_wake;
	conn_watch *watch_head;
	int watch_stop;         /* under watch_lock */
	int watchdog_running;
	pthread_t watchdog;
};

/* A deferred answer: worked out on its own thread, then sent. */
typedef struct defer_job {
	es_http *h;
	struct MHD_Connection *conn;
	api_response r;
	atomic_int done;        /* r is filled; the connection was resumed */
} defer_job;

typedef struct req_state {
	double t0;
	defer_job *job;         /* a deferred answer, or NULL */
	conn_watch *watch;      /* NULL if the connection is not watched (OOM) */
	char *body;
	size_t len, cap;
	int too_large;
	int status;
	size_t bytes;
	char method[16];
	char path[256];
} req_state;

static conn_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* The request on this connection is complete: stop watching it. */
static void watch_busy(req_state *rs)
{
	if (rs->watch)
		atomic_store(&rs->watch->phase, CONN_BUSY);
}

static void log_line(const es_http *h, const req_state *rs)
{
	if (h->quiet)
		return;
	double us = (api_now() - rs->t0) * 1e6;
	fprintf(stderr, "%s %s %d %zu %.0fus\n", rs->method, rs->path, rs->status,
		rs->bytes, us);
}

/* A streamed body (api_response.body_read) as MHD's content reader.  MHD
 * asks for the bytes in order, on the connection's daemon thread, as the
 * socket takes them: a slow client holds no more than one block. */
#define STREAM_BLOCK ((size_t)256 << 10)

typedef struct stream_body {
	void *ctx;
	ssize_t (*read)(void *ctx, char *buf, size_t n);
	void (*close)(void *ctx);
} stream_body;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	stream_body *sb = cls;
	ssize_t k = sb->read(sb->ctx, buf, max);
	return k > 0 ? k : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
	stream_body *sb = cls;
	if (sb->close)
		sb->close(sb->ctx);
	free(sb);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, req_state *rs,
				     api_response *r)
{
	char *data = NULL;
	size_t len = 0;
	struct MHD_Response *resp;
	if (r->body_read) { /* a streamed body (the replication bundle) */
		stream_body *sb = malloc(sizeof *sb);
		if (!sb)
			return MHD_NO;
		sb->ctx = r->body_ctx;
		sb->read = r->body_read;
		sb->close = r->body_close;
		len = (size_t)r->body_len;
		resp = MHD_create_response_from_callback(r->body_len, STREAM_BLOCK, stream_read,
							 sb, stream_free);
		if (!resp) {
			free(sb);
			return MHD_NO;
		}
		r->body_read = NULL; /* the response owns the source now */
		r->body_close = NULL;
		r->body_ctx = NULL;
		goto headers;
	}
	if (r->static_body) { /* a /ui/ asset: sent from the binary's own bytes */
		len = r->static_len;
		resp = MHD_create_response_from_buffer(len, (void *)r->static_body,
						       MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		goto headers;
	}
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
	resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
headers:
	if (r->etag)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
	for (const char *const *h = r->headers; h && h[0]; h += 2)
		MHD_add_response_header(resp, h[0], h[1]);
	for (char *line = r->own_headers, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
		char *colon = memchr(line, ':', (size_t)(nl - line));
		if (!colon)
			continue;
		*colon = '\0';
		*nl = '\0';
		MHD_add_response_header(resp, line, colon + 1 + (colon[1] == ' '));
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

/* MHD_OPTION_UNESCAPE_CALLBACK: MHD runs it on the path and on every query
 * key and value before the request callback.  Its own decoding turns "%00"
 * into a NUL byte and the callback then gets a C string cut there
 * ("/v1/collections/a%00b" arrived as "/v1/collections/a").  So everything
 * stays as sent: api_dispatch decodes the path itself, and query_has_nul
 * looks at the parameters. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return strlen(s);
}

static enum MHD_Result nul_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	(void)kind;
	int *found = cls;
	if ((key && api_url_has_nul(key)) || (value && api_url_has_nul(value))) {
		*found = 1;
		return MHD_NO; /* stop iterating */
	}
	return MHD_YES;
}

/* api_request.query: a query parameter as sent. */
static const char *query_arg(void *qctx, const char *key)
{
	return MHD_lookup_connection_value(qctx, MHD_GET_ARGUMENT_KIND, key);
}

/* Whether a query key or value of this request decodes to a NUL byte. */
static int query_has_nul(struct MHD_Connection *conn)
{
	int found = 0;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, nul_arg, &found);
	return found;
}

static void *defer_main(void *arg)
{
	defer_job *j = arg;
	es_http *h = j->h;
	api_response_run_deferred(h->ctx, &j->r);
	atomic_store(&j->done, 1);
	MHD_resume_connection(j->conn); /* its request callback sends j->r */
	pthread_mutex_lock(&h->watch_lock);
	h->deferring--;
	pthread_cond_broadcast(&h->defer_done);
	pthread_mutex_unlock(&h->watch_lock);
	return NULL;
}

/* Hand a deferred answer to a thread of its own and suspend the
 * connection.  0 done; -1 when no thread could start (the caller then
 * runs the work here). */
static int defer(es_http *h, struct MHD_Connection *conn, req_state *rs, api_response *r)
{
	defer_job *j = calloc(1, sizeof *j);
	if (!j)
		return -1;
	j->h = h;
	j->conn = conn;
	j->r = *r;
	atomic_init(&j->done, 0);
	pthread_attr_t a;
	pthread_t t;
	if (pthread_attr_init(&a) != 0) {
		free(j);
		return -1;
	}
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	rs->job = j;
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&h->watch_lock);
	h->deferring++;
	pthread_mutex_unlock(&h->watch_lock);
	int rc = pthread_create(&t, &a, defer_main, j);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		pthread_mutex_lock(&h->watch_lock);
		h->deferring--;
		pthread_mutex_unlock(&h->watch_lock);
		MHD_resume_connection(conn);
		rs->job = NULL;
		free(j);
		return -1;
	}
	return 0;
}

/* The request is complete (or refused early): stop watching the
 * connection, run the handler, queue the response (or defer it). */
static enum MHD_Result answer(es_http *h, struct MHD_Connection *conn, req_state *rs,
			      const api_request *req)
{
	api_response r;
	watch_busy(rs);
	api_dispatch(h->ctx, req, &r);
	if (r.deferred) {
		if (defer(h, conn, rs, &r) == 0)
			return MHD_YES;
		api_response_run_deferred(h->ctx, &r);
	}
	enum MHD_Result ret = send_response(conn, rs, &r);
	api_response_free(&r);
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
		rs->watch = watch_of(conn);
		if (rs->watch)
			atomic_store(&rs->watch->phase, CONN_BODY);
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
					api_request req = {
						.method = method, .path = url, .body_too_large = 1,
						.query_has_nul = query_has_nul(conn),
						.authorization = MHD_lookup_connection_value(
							conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
						.api_key = MHD_lookup_connection_value(
							conn, MHD_HEADER_KIND, "api-key")};
					return answer(h, conn, rs, &req);
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
			metrics_add_timeout(h->metrics, METRICS_TIMEOUT_BODY);
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
	if (rs->job) { /* resumed: the deferred answer is ready (or not yet: wait) */
		defer_job *j = rs->job;
		if (!atomic_load(&j->done))
			return MHD_YES;
		rs->job = NULL;
		enum MHD_Result ret = send_response(conn, rs, &j->r);
		api_response_free(&j->r);
		free(j);
		return ret;
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
	req.api_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "api-key");
	req.if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_IF_NONE_MATCH);
	req.body_too_large = rs->too_large;
	req.query_has_nul = query_has_nul(conn);
	req.query = query_arg;
	req.qctx = conn;
	req.defer_writes = 1;
	return answer(h, conn, rs, &req);
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
		rs->status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ||
				     (rs->watch && atomic_load(&rs->watch->cut))
			     ? 408 : 499;
	/* a keep-alive connection now owes its next request, from now */
	if (rs->watch) {
		atomic_store(&rs->watch->since, api_now());
		atomic_store(&rs->watch->phase, CONN_HEADERS);
	}
	log_line(h, rs);
	if (rs->job && atomic_load(&rs->job->done)) { /* resumed, then the client left */
		api_response_free(&rs->job->r);
		free(rs->job);
	}
	free(rs->body);
	free(rs);
	*req_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	http_worker *wk = cls;
	es_http *h = wk->h;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		conn_watch *w = ci ? calloc(1, sizeof *w) : NULL;
		if (!w) /* unwatched: MHD's idle timeout still applies */
			return;
		w->fd = ci->connect_fd;
		atomic_init(&w->phase, CONN_HEADERS);
		atomic_init(&w->since, api_now());
		atomic_init(&w->cut, 0);
		pthread_mutex_lock(&h->watch_lock);
		w->next = h->watch_head;
		if (w->next)
			w->next->prev = w;
		h->watch_head = w;
		pthread_mutex_unlock(&h->watch_lock);
		*socket_context = w;
		metrics_connection(h->metrics, wk->idx, +1);
		return;
	}
	/* counted by the acceptor; MHD reports CLOSED for every connection
	 * it reported STARTED, watched or not */
	atomic_fetch_sub(&h->live, 1);
	conn_watch *w = *socket_context;
	if (!w)
		return;
	pthread_mutex_lock(&h->watch_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		h->watch_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&h->watch_lock);
	free(w);
	*socket_context = NULL;
	metrics_connection(h->metrics, wk->idx, -1);
}

/* Cut every watched connection whose request is overdue. */
static void *watchdog_main(void *arg)
{
	es_http *h = arg;
	const double limit = (double)h->timeout_s;
	pthread_mutex_lock(&h->watch_lock);
	while (!h->watch_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&h->watch_wake, &h->watch_lock, &ts);
		if (h->watch_stop)
			break;
		double now = api_now();
		for (conn_watch *w = h->watch_head; w; w = w->next) {
			int phase = atomic_load(&w->phase);
			if (phase == CONN_BUSY || atomic_load(&w->cut) ||
			    now - atomic_load(&w->since) <= limit)
				continue;
			atomic_store(&w->cut, 1);
			shutdown(w->fd, SHUT_RDWR);
			metrics_add_timeout(h->metrics, phase == CONN_HEADERS
								? METRICS_TIMEOUT_HEADERS
								: METRICS_TIMEOUT_BODY);
		}
	}
	pthread_mutex_unlock(&h->watch_lock);
	return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	es_http *h = cls;
	if (h->quiet)
		return;
	fprintf(stderr, "embedsrv serve: libmicrohttpd: ");
	vfprintf(stderr, fmt, ap);
}

/* Free the server's own state (after MHD, the acceptor and the watchdog
 * stopped). */
static void http_free(es_http *h)
{
	while (h->watch_head) { /* MHD closed every connection: normally empty */
		conn_watch *w = h->watch_head;
		h->watch_head = w->next;
		free(w);
	}
	if (h->lfd >= 0)
		close(h->lfd);
	for (int i = 0; i < 2; i++)
		if (h->stop_pipe[i] >= 0)
			close(h->stop_pipe[i]);
	free(h->d);
	free(h->workers);
	pthread_cond_destroy(&h->watch_wake);
	pthread_cond_destroy(&h->defer_done);
	pthread_mutex_destroy(&h->watch_lock);
	free(h);
}

/* Accept connections and deal them out to the daemons in turn. */
static void *acceptor_main(void *arg)
{
	es_http *h = arg;
	unsigned next = 0;
	double last_warn = 0;
	for (;;) {
		struct pollfd pf[2] = {{h->lfd, POLLIN, 0}, {h->stop_pipe[0], POLLIN, 0}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		struct sockaddr_storage addr;
		socklen_t alen = sizeof addr;
		int fd = accept4(h->lfd, (struct sockaddr *)&addr, &alen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* out of descriptors or memory: the pending
				 * connection waits in the backlog; retry soon */
				double now = api_now();
				if (!h->quiet && now - last_warn > 10.0) {
					fprintf(stderr, "embedsrv serve: cannot accept a connection: %s\n",
						strerror(errno));
					last_warn = now;
				}
				struct timespec ts = {0, 20 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
			continue; /* EAGAIN, ECONNABORTED, EINTR, ... */
		}
		if (atomic_load(&h->live) >= h->max_connections) {
			close(fd); /* as MHD does at its connection limit */
			metrics_add_refused(h->metrics);
			continue;
		}
		atomic_fetch_add(&h->live, 1);
		int one = 1;
		if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		/* on failure MHD closes the socket itself and never reports it */
		if (MHD_add_connection(h->d[next], fd, (struct sockaddr *)&addr, alen) != MHD_YES)
			atomic_fetch_sub(&h->live, 1);
		next = next + 1 < h->nd ? next + 1 : 0;
	}
	return NULL;
}

/* Bind and listen on host:port: 0 and the socket in *out, or an error
 * (ES_EINVAL: the host does not resolve; ES_EIO: cannot bind or listen). */
static int listen_on(const es_http_config *cfg, int *out, es_error *err)
{
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%u", cfg->port);
	int gai = getaddrinfo(cfg->host, portstr, &hints, &ai);
	if (gai != 0 || !ai)
		return es_err(err, ES_EINVAL, "cannot resolve host '%s': %s", cfg->host,
			      gai_strerror(gai));
	int fd = -1, eno = 0;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd < 0) {
			eno = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
			eno = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return es_err(err, ES_EIO, "cannot listen on %s:%u: %s", cfg->host,
			      cfg->port, strerror(eno));
	*out = fd;
	return 0;
}

/* Stop the daemons started so far (the rest of h->d is NULL). */
static void stop_daemons(es_http *h)
{
	for (unsigned i = 0; i < h->nd; i++)
		if (h->d[i])
			MHD_stop_daemon(h->d[i]);
}

int es_http_start(const es_http_config *cfg, api_ctx *ctx, es_http **out,
		  es_error *err)
{
	es_http *h = calloc(1, sizeof *h);
	if (!h)
		return es_err(err, ES_ENOMEM, "out of memory");
	h->lfd = -1;
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	h->ctx = ctx;
	h->metrics = api_ctx_metrics(ctx);
	h->quiet = cfg->quiet;
	h->max_body = api_ctx_limits(ctx)->max_body_bytes;
	h->timeout_s = api_ctx_limits(ctx)->timeout_s;
	atomic_init(&h->inflight, 0);
	atomic_init(&h->live, 0);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int prc = pthread_cond_init(&h->watch_wake, &ca);
	pthread_condattr_destroy(&ca);
	if (!prc && pthread_cond_init(&h->defer_done, NULL) != 0) {
		pthread_cond_destroy(&h->watch_wake);
		prc = 1;
	}
	if (prc) {
		free(h);
		return es_err(err, ES_ENOMEM, "cannot create the connection watchdog");
	}
	pthread_mutex_init(&h->watch_lock, NULL);

	const api_limits *l = api_ctx_limits(ctx);
	h->max_connections = (unsigned)l->max_connections;
	h->nd = cfg->threads ? cfg->threads : 1;
	h->d = calloc(h->nd, sizeof *h->d);
	h->workers = calloc(h->nd, sizeof *h->workers);
	if (!h->d || !h->workers || pipe2(h->stop_pipe, O_CLOEXEC) != 0 ||
	    metrics_set_workers(h->metrics, h->nd) != 0) {
		http_free(h);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	int rc = listen_on(cfg, &h->lfd, err);
	if (rc) {
		http_free(h);
		return rc;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
			 MHD_USE_TURBO | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET |
			 MHD_ALLOW_SUSPEND_RESUME;
	for (unsigned i = 0; i < h->nd; i++) {
		h->workers[i].h = h;
		h->workers[i].idx = i;
		h->d[i] = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
					   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
					   MHD_OPTION_CONNECTION_LIMIT, (unsigned)l->max_connections,
					   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)l->timeout_s,
					   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, /* headers only: MHD clears it per request */
					   MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
					   MHD_OPTION_NOTIFY_CONNECTION, on_connection, &h->workers[i],
					   MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
					   MHD_OPTION_END);
		if (!h->d[i]) {
			stop_daemons(h);
			unsigned nd = h->nd;
			http_free(h);
			return es_err(err, ES_ENOMEM, "cannot start HTTP worker thread %u of %u",
				      i + 1, nd);
		}
	}
	if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
		stop_daemons(h);
		http_free(h);
		return es_err(err, ES_ENOMEM, "cannot start the connection watchdog");
	}
	h->watchdog_running = 1;
	struct sockaddr_storage sa;
	socklen_t salen = sizeof sa;
	h->port = cfg->port;
	if (getsockname(h->lfd, (struct sockaddr *)&sa, &salen) == 0) {
		if (sa.ss_family == AF_INET)
			h->port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
		else if (sa.ss_family == AF_INET6)
			h->port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
	}
	if (pthread_create(&h->acceptor, NULL, acceptor_main, h) != 0) {
		es_http_stop(h, 0);
		return es_err(err, ES_ENOMEM, "cannot start the acceptor thread");
	}
	h->acceptor_running = 1;
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
	/* stop accepting: the acceptor exits, then the listening socket closes */
	if (h->acceptor_running) {
		char b = 1;
		while (write(h->stop_pipe[1], &b, 1) < 0 && errno == EINTR)
			;
		pthread_join(h->acceptor, NULL);
		h->acceptor_running = 0;
	}
	if (h->lfd >= 0) {
		close(h->lfd);
		h->lfd = -1;
	}
	double end = api_now() + drain_s;
	while (atomic_load(&h->inflight) > 0 && api_now() < end) {
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	/* a deferred answer still being worked out holds its connection
	 * suspended, and MHD cannot stop with one suspended: wait for it */
	pthread_mutex_lock(&h->watch_lock);
	while (h->deferring)
		pthread_cond_wait(&h->defer_done, &h->watch_lock);
	pthread_mutex_unlock(&h->watch_lock);
	stop_daemons(h);
	if (h->watchdog_running) {
		pthread_mutex_lock(&h->watch_lock);
		h->watch_stop = 1;
		pthread_cond_signal(&h->watch_wake);
		pthread_mutex_unlock(&h->watch_lock);
		pthread_join(h->watchdog, NULL);
	}
	http_free(h);
}
