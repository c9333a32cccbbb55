/*
 * follower.c — `serve --follow URL`; see follower.h.
 *
 * The HTTP client is the smallest that serves here: one GET per
 * connection (Connection: close), a Content-Length body or one that ends
 * with the connection, no TLS (put the primary and its followers on a
 * private network, or a TLS tunnel).  Every socket wait is cut into 0.5 s
 * slices so that a stop request is seen promptly.
 *
 * Locks: st_mu guards the status fields and the store pointer (the thread
 * is the only one that changes the pointer; readers hold st_mu while they
 * use it, so a re-bootstrap never closes a store under a snapshot).
 */
#include "follower.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "store.h"

#define SLICE_MS 500
#define IO_TIMEOUT_S 30.0
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define SHIP_BYTES (4u << 20)
/* the long poll asked of the primary (wait_ms): well under IO_TIMEOUT_S */
#define SHIP_WAIT_MS 10000u
#define MAX_WAL_BODY ((size_t)80 << 20)
#define HEAD_MAX 16384

struct follower {
	follower_opts o;
	char *url, *api_key, *data_dir;
	char host[256], port[16];
	es_registry *reg;
	api_ctx *api;

	pthread_t th;
	int th_on;
	atomic_int stop;
	pthread_mutex_t wake_mu;
	pthread_cond_t wake_cv;

	pthread_mutex_t st_mu;
	es_store *store;
	const char *state;
	int healthy, connected;
	uint64_t applied, primary_lsn;
	double caught_up_at;
	char error[512];
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "embedsrv serve: follower: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void set_state(follower *f, const char *state, int healthy, const char *error)
{
	pthread_mutex_lock(&f->st_mu);
	f->state = state;
	f->healthy = healthy;
	snprintf(f->error, sizeof f->error, "%s", error ? error : "");
	pthread_mutex_unlock(&f->st_mu);
}

/* Sleep ms, or less when asked to stop.  1 when stopping. */
static int nap(follower *f, unsigned ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->wake_mu);
	while (!atomic_load(&f->stop) &&
	       pthread_cond_timedwait(&f->wake_cv, &f->wake_mu, &t) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->wake_mu);
	return atomic_load(&f->stop);
}

/* ------------------------------------------------------------------- URL */

int follower_parse_url(const char *url, char *host, size_t hostlen, char *port,
		       size_t portlen, es_error *err)
{
	if (!url || strncmp(url, "http://", 7) != 0)
		return es_err(err, ES_EINVAL, "--follow needs an http:// URL (got '%s')",
			      url ? url : "");
	const char *h = url + 7, *end;
	size_t hl;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end)
			return es_err(err, ES_EINVAL, "--follow: unclosed '[' in '%s'", url);
		hl = (size_t)(end - h - 1);
		h++;
		end++;
	} else {
		end = h + strcspn(h, ":/");
		hl = (size_t)(end - h);
	}
	if (hl == 0 || hl >= hostlen)
		return es_err(err, ES_EINVAL, "--follow: no host (or a too long one) in '%s'", url);
	memcpy(host, h, hl);
	host[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == '@')
			return es_err(err, ES_EINVAL, "--follow: bad host in '%s'", url);
	snprintf(port, portlen, "80");
	if (*end == ':') {
		const char *p = end + 1;
		size_t pl = strspn(p, "0123456789");
		if (pl == 0 || pl > 5 || atoi(p) < 1 || atoi(p) > 65535)
			return es_err(err, ES_EINVAL, "--follow: bad port in '%s'", url);
		snprintf(port, portlen, "%.*s", (int)pl, p);
		end = p + pl;
	}
	if (*end && strcmp(end, "/") != 0)
		return es_err(err, ES_EINVAL, "--follow: the URL must be http://HOST[:PORT] "
			      "(no path; got '%s')", url);
	return 0;
}

/* ------------------------------------------------------------ HTTP client */

/* Hostile bytes: the primary's answer is parsed with every length checked
 * against what arrived (tests/fuzz/fuzz_follower_http.c). */

static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A decimal u64 of v[0..n): 0, or -1 when empty, not digits or too large. */
static int parse_dec_u64(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* One to eight hex digits. */
static int parse_hex_u32(const char *v, size_t n, uint32_t *out)
{
	uint32_t x = 0;
	if (n == 0 || n > 8)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = v[i] >= '0' && v[i] <= '9'   ? v[i] - '0'
			: v[i] >= 'a' && v[i] <= 'f' ? v[i] - 'a' + 10
			: v[i] >= 'A' && v[i] <= 'F' ? v[i] - 'A' + 10
						     : -1;
		if (d < 0)
			return -1;
		x = x << 4 | (uint32_t)d;
	}
	*out = x;
	return 0;
}

static int name_is(const char *name, size_t nl, const char *want)
{
	return strlen(want) == nl && strncasecmp(name, want, nl) == 0;
}

int follower_parse_head(const char *buf, size_t len, follower_http_head *h, es_error *err)
{
	memset(h, 0, sizeof *h);
	h->content_length = -1;
	const char *eoh = memmem(buf, len, "\r\n\r\n", 4);
	if (!eoh)
		return 1;
	size_t hl = (size_t)(eoh - buf) + 2; /* the head's lines, each ended by CRLF */
	h->head_len = hl + 2;
	if (memchr(buf, '\0', hl))
		return es_err(err, ES_ECORRUPT, "the primary's answer holds a NUL byte in its headers");
	/* status line: HTTP/1.x SP 3DIGIT [SP reason] */
	const char *end = memmem(buf, hl, "\r\n", 2);
	size_t sl = (size_t)(end - buf);
	if (sl < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
	    buf[8] != ' ' || (sl > 12 && buf[12] != ' '))
		return es_err(err, ES_ECORRUPT, "the answer is not HTTP/1.x (status line '%.*s')",
			      (int)(sl < 60 ? sl : 60), buf);
	h->status = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return es_err(err, ES_ECORRUPT, "bad HTTP status '%.3s'", buf + 9);
		h->status = h->status * 10 + (buf[i] - '0');
	}
	if (h->status < 100)
		return es_err(err, ES_ECORRUPT, "bad HTTP status %d", h->status);
	int have_clen = 0;
	for (const char *line = end + 2; line < buf + hl;) {
		const char *le = memmem(line, (size_t)(buf + hl - line), "\r\n", 2);
		size_t ll = (size_t)(le - line);
		const char *colon = memchr(line, ':', ll);
		if (!colon || colon == line)
			return es_err(err, ES_ECORRUPT, "the primary's answer has a malformed header "
				      "line '%.*s'", (int)(ll < 60 ? ll : 60), line);
		size_t nl = (size_t)(colon - line);
		for (size_t i = 0; i < nl; i++)
			if (!is_tchar((unsigned char)line[i]))
				return es_err(err, ES_ECORRUPT, "the primary's answer has a malformed "
					      "header name '%.*s'", (int)(nl < 60 ? nl : 60), line);
		const char *v = colon + 1, *ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t vl = (size_t)(ve - v);
		int bad = 0;
		if (name_is(line, nl, "Content-Length")) {
			uint64_t x;
			bad = parse_dec_u64(v, vl, &x) || x > (uint64_t)INT64_MAX ||
			      (have_clen && (uint64_t)h->content_length != x);
			h->content_length = bad ? -1 : (int64_t)x;
			have_clen = 1;
		} else if (name_is(line, nl, "Transfer-Encoding")) {
			if (!(vl == 8 && strncasecmp(v, "identity", 8) == 0))
				return es_err(err, ES_EUNSUPPORTED, "the primary answered with "
					      "Transfer-Encoding: %.*s; point --follow at the primary "
					      "itself, not a proxy that re-encodes", (int)(vl < 40 ? vl : 40), v);
		} else if (name_is(line, nl, "X-Embedsrv-Last-Lsn")) {
			bad = parse_dec_u64(v, vl, &h->last_lsn);
			h->has_last_lsn = !bad;
		} else if (name_is(line, nl, "X-Embedsrv-Lsn")) {
			bad = parse_dec_u64(v, vl, &h->lsn);
			h->has_lsn = !bad;
		} else if (name_is(line, nl, "X-Embedsrv-Prev-Crc")) {
			bad = parse_hex_u32(v, vl, &h->prev_crc);
			h->has_prev_crc = !bad;
		} else if (name_is(line, nl, "X-Embedsrv-Wait-Ms")) {
			bad = parse_dec_u64(v, vl, &h->wait_ms);
			h->has_wait_ms = !bad;
		}
		if (bad)
			return es_err(err, ES_ECORRUPT, "the primary's answer has a bad %.*s header "
				      "('%.*s')", (int)nl, line, (int)(vl < 40 ? vl : 40), v);
		line = le + 2;
	}
	return 0;
}

void follower_error_message(int status, const char *body, size_t len, char *dst, size_t n)
{
	json_error_t je;
	json_t *j = body && len ? json_loadb(body, len, 0, &je) : NULL;
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	if (m)
		snprintf(dst, n, "HTTP %d: %s", status, m);
	else
		snprintf(dst, n, "HTTP %d", status);
	json_decref(j);
}

static int connect_to(follower *f, es_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(f->host, f->port, &hints, &res);
	if (gai)
		return es_err(err, ES_EIO, "cannot resolve %s: %s", f->host, gai_strerror(gai));
	int fd = -1, e = 0;
	struct timeval tv = {SLICE_MS / 1000, (SLICE_MS % 1000) * 1000};
	struct timeval ctv = {3, 0};
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		/* Linux bounds connect() by the send timeout */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &ctv, sizeof ctv);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return es_err(err, ES_EIO, "cannot connect to %s:%s: %s", f->host, f->port,
			      strerror(e));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* recv with the stop flag and an idle deadline.  >0 bytes, 0 at EOF, <0 error. */
static ssize_t recv_some(follower *f, int fd, void *buf, size_t n, es_error *err)
{
	double idle_since = now_s();
	for (;;) {
		ssize_t r = recv(fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return es_err(err, ES_EIO, "reading from the primary: %s", strerror(errno));
		if (atomic_load(&f->stop))
			return es_err(err, ES_ECANCELED, "stopping");
		if (now_s() - idle_since > IO_TIMEOUT_S)
			return es_err(err, ES_EIO, "the primary sent nothing for %.0f s", IO_TIMEOUT_S);
	}
}

/* One GET on its own connection, its body read on demand (http_read). */
typedef struct http_conn {
	follower *f;
	int fd;
	follower_http_head h;
	char buf[HEAD_MAX];
	size_t pos, end; /* body bytes that came with the head: buf[pos..end) */
	uint64_t got;    /* body bytes handed out */
	es_error err;    /* http_read's failure, for the FILE* reader */
} http_conn;

static void http_close(http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Connect, send GET path, read and parse the head.  On failure nothing is
 * left open. */
static int http_open(follower *f, const char *path, http_conn *c, es_error *err)
{
	c->f = f;
	c->pos = c->end = 0;
	c->got = 0;
	es_error_clear(&c->err);
	c->fd = connect_to(f, err);
	if (c->fd < 0)
		return c->fd;
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: embedsrv-follower\r\n"
			 "Connection: close\r\n%s%s%s\r\n", path, f->host, f->port,
			 f->api_key ? "Authorization: Bearer " : "", f->api_key ? f->api_key : "",
			 f->api_key ? "\r\n" : "");
	int rc = 0;
	if (n < 0 || (size_t)n >= sizeof req || send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		rc = es_err(err, ES_EIO, "sending the request to %s: %s", f->url, strerror(errno));
		goto out;
	}
	for (;;) {
		rc = follower_parse_head(c->buf, c->end, &c->h, err);
		if (rc <= 0)
			break;
		if (c->end == sizeof c->buf) {
			rc = es_err(err, ES_ECORRUPT, "the primary's response headers are too long");
			break;
		}
		ssize_t k = recv_some(f, c->fd, c->buf + c->end, sizeof c->buf - c->end, err);
		if (k <= 0) {
			rc = k < 0 ? (int)k
				   : es_err(err, ES_EIO, "the primary closed the connection without "
					    "answering");
			break;
		}
		c->end += (size_t)k;
	}
	if (rc)
		es_err_prefix(err, rc, "GET %s%s", f->url, path);
	c->pos = c->h.head_len;
out:
	if (rc)
		http_close(c);
	return rc;
}

/* Up to n bytes of the body: the count, 0 at its end, <0 on failure
 * (also kept in c->err). */
static ssize_t http_read(http_conn *c, void *dst, size_t n, es_error *err)
{
	int64_t want = c->h.content_length;
	if (want >= 0 && c->got + n > (uint64_t)want)
		n = (size_t)((uint64_t)want - c->got);
	if (n == 0)
		return 0;
	ssize_t k;
	if (c->pos < c->end) {
		k = (ssize_t)(c->end - c->pos < n ? c->end - c->pos : n);
		memcpy(dst, c->buf + c->pos, (size_t)k);
		c->pos += (size_t)k;
	} else {
		k = recv_some(c->f, c->fd, dst, n, &c->err);
		if (k == 0 && want >= 0)
			k = es_err(&c->err, ES_EIO, "the primary's answer was cut short (%" PRIu64
				   " of %" PRId64 " bytes)", c->got, want);
		if (k < 0) {
			if (err)
				*err = c->err;
			return k;
		}
	}
	c->got += (uint64_t)k;
	return k;
}

/* The whole body into out (at most max bytes). */
static int http_read_all(http_conn *c, es_bytebuf *out, size_t max, es_error *err)
{
	if (c->h.content_length > (int64_t)max)
		return es_err(err, ES_ERANGE, "the primary's answer of %" PRId64 " bytes is too "
			      "large", c->h.content_length);
	char buf[1 << 14];
	for (;;) {
		ssize_t k = http_read(c, buf, sizeof buf, err);
		if (k < 0)
			return (int)k;
		if (k == 0)
			return 0;
		if (out->len + (size_t)k > max)
			return es_err(err, ES_ERANGE, "the primary's answer is too large");
		es_bytebuf_put(out, buf, (size_t)k);
		if (out->oom)
			return es_err(err, ES_ENOMEM, "out of memory storing the primary's answer");
	}
}

/* GET path, the whole body into *body (at most max bytes; the caller frees
 * it, also on a non-200 status). */
static int http_get(follower *f, const char *path, follower_http_head *h, es_bytebuf *body,
		    size_t max, es_error *err)
{
	es_bytebuf_init(body);
	memset(h, 0, sizeof *h);
	http_conn *c = malloc(sizeof *c);
	if (!c)
		return es_err(err, ES_ENOMEM, "out of memory");
	int rc = http_open(f, path, c, err);
	if (!rc) {
		*h = c->h;
		rc = http_read_all(c, body, max, err);
		http_close(c);
	}
	free(c);
	if (rc)
		es_bytebuf_free(body);
	return rc;
}

/* fopencookie's read: the body as a FILE* for es_store_install_bundle. */
static ssize_t cookie_read(void *cookie, char *buf, size_t n)
{
	ssize_t k = http_read(cookie, buf, n, NULL);
	if (k < 0) {
		errno = EIO;
		return -1;
	}
	return k;
}

/* ----------------------------------------------------------- store life */

/* Open the data directory; ready: mark the server ready then (a bootstrap
 * does that itself once its files are synced). */
static int open_store(follower *f, int ready, es_error *err)
{
	es_store_options so;
	es_store_options_default(&so);
	so.policy = f->o.fsync;
	so.recover = f->o.recover;
	so.follower = 1;
	if (f->o.snapshot_bytes)
		so.checkpoint_bytes = f->o.snapshot_bytes;
	es_store_stats st;
	es_store *s;
	int rc = es_store_open(f->data_dir, &so, f->reg, &st, &s, err);
	if (rc)
		return rc;
	say("data dir %s: %zu collection(s), %" PRIu64 " points from snapshots, %" PRIu64
	    " log record(s) replayed, at lsn %" PRIu64 " (%.3f s)", f->data_dir, st.collections,
	    st.points_loaded, st.records_replayed, st.last_lsn, st.seconds);
	pthread_mutex_lock(&f->st_mu);
	f->store = s;
	f->applied = st.last_lsn;
	pthread_mutex_unlock(&f->st_mu);
	if (ready)
		api_ctx_set_ready(f->api, 1);
	return 0;
}

/* Close the store and empty the registry (a new bootstrap follows). */
static void drop_store(follower *f)
{
	api_ctx_set_ready(f->api, 0);
	pthread_mutex_lock(&f->st_mu);
	es_store *s = f->store;
	f->store = NULL;
	pthread_mutex_unlock(&f->st_mu);
	es_store_close(s, 0, NULL);
	es_collection **cols = NULL;
	size_t n = 0;
	if (es_registry_list(f->reg, &cols, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++) {
			es_registry_drop(f->reg, es_collection_name(cols[i]), NULL);
			es_collection_release(cols[i]);
		}
		free(cols);
	}
}

typedef struct sync_job {
	const char *dir;
	int rc;
	es_error err;
} sync_job;

static void *sync_main(void *arg)
{
	sync_job *j = arg;
	j->rc = es_store_install_sync(j->dir, &j->err);
	return NULL;
}

/* Download the primary's bundle and install it.  The bytes go from the
 * socket straight into the data directory (each file written once under a
 * temporary name and renamed into place), with nothing staged in between.
 * The files are then fsynced on a thread of its own while the store loads
 * them (disk writes and CPU work overlap); the server is ready once both
 * are done.  Until the sync finished, the BOOTSTRAP marker makes a crash
 * mean a new bootstrap. */
static int bootstrap(follower *f, es_error *err)
{
	set_state(f, "bootstrapping", 1, NULL);
	if (mkdir(f->data_dir, 0755) != 0 && errno != EEXIST)
		return es_err(err, ES_EIO, "%s: %s", f->data_dir, strerror(errno));
	double t0 = now_s();
	http_conn *c = malloc(sizeof *c);
	if (!c)
		return es_err(err, ES_ENOMEM, "out of memory");
	int rc = http_open(f, "/v1/replication/snapshot", c, err);
	if (rc) {
		free(c);
		return rc;
	}
	uint64_t lsn = 0;
	if (c->h.status != 200) {
		es_bytebuf body;
		es_bytebuf_init(&body);
		char msg[400] = "";
		if (http_read_all(c, &body, 1 << 16, NULL) == 0)
			follower_error_message(c->h.status, body.s, body.len, msg, sizeof msg);
		else
			snprintf(msg, sizeof msg, "HTTP %d", c->h.status);
		es_bytebuf_free(&body);
		rc = es_err(err, ES_EIO, "GET %s/v1/replication/snapshot: %s", f->url, msg);
	} else {
		pthread_mutex_lock(&f->st_mu);
		f->connected = 1;
		pthread_mutex_unlock(&f->st_mu);
		cookie_io_functions_t io = {.read = cookie_read};
		FILE *in = fopencookie(c, "r", io);
		if (!in) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
		} else {
			setvbuf(in, NULL, _IOFBF, 1 << 16);
			rc = es_store_install_bundle_unsynced(f->data_dir, in, &lsn, err);
			fclose(in);
			if (rc && c->err.code) /* the link failed, not the bundle */
				*err = c->err, rc = c->err.code;
		}
	}
	uint64_t len = c->got;
	http_close(c);
	free(c);
	if (rc)
		return rc;
	say("bootstrapped from %s at lsn %" PRIu64 " (%.1f MiB in %.2f s; syncing it to disk "
	    "while it loads)", f->url, lsn, (double)len / (1 << 20), now_s() - t0);
	sync_job job = {f->data_dir, 0, {0, ""}};
	pthread_t th;
	int threaded = pthread_create(&th, NULL, sync_main, &job) == 0;
	if (!threaded)
		sync_main(&job);
	rc = open_store(f, 0, err);
	if (threaded)
		pthread_join(th, NULL);
	if (!rc && job.rc) {
		drop_store(f); /* the marker stays: bootstrap again */
		*err = job.err;
		rc = job.rc;
	}
	if (rc)
		return rc;
	api_ctx_set_ready(f->api, 1);
	return 0;
}

/* ------------------------------------------------------------ the thread */

static void fail_link(follower *f, const es_error *e, unsigned *backoff)
{
	pthread_mutex_lock(&f->st_mu);
	int was = f->connected;
	f->connected = 0;
	pthread_mutex_unlock(&f->st_mu);
	if (was || *backoff == 0)
		say("primary %s unreachable: %s; retrying with a backoff of up to %d s", f->url,
		    e->msg, BACKOFF_MAX_MS / 1000);
	*backoff = *backoff ? *backoff * 2 : BACKOFF_MIN_MS;
	if (*backoff > BACKOFF_MAX_MS)
		*backoff = BACKOFF_MAX_MS;
}

/* One poll (a long poll: wait_ms, so a caught-up follower's request waits
 * on the primary until a record is appended): 1 when records were applied
 * (poll again at once), 2 when caught up and the primary long-polled
 * (X-Embedsrv-Wait-Ms: ask again at once, the next request waits there),
 * 0 when caught up and it did not (an older primary answers at once: nap
 * poll_ms first), -1 on a failure (err; *kind: 'l' link, 'g' gone, 'd' diverged, 'a'
 * apply). */
static int poll_once(follower *f, int *kind, es_error *err)
{
	pthread_mutex_lock(&f->st_mu);
	es_store *s = f->store;
	pthread_mutex_unlock(&f->st_mu);
	uint64_t from = es_store_last_lsn(s);
	uint32_t mine = es_store_last_crc(s);
	char path[128];
	snprintf(path, sizeof path, "/v1/replication/wal?from=%" PRIu64 "&max_bytes=%u&wait_ms=%u",
		 from, SHIP_BYTES, SHIP_WAIT_MS);
	follower_http_head h;
	es_bytebuf body;
	*kind = 'l';
	int rc = http_get(f, path, &h, &body, MAX_WAL_BODY, err);
	if (rc)
		return -1;
	char msg[400];
	if (h.status != 200) {
		follower_error_message(h.status, body.s, body.len, msg, sizeof msg);
		es_bytebuf_free(&body);
		if (h.status == 410) {
			*kind = 'g';
			es_err(err, ES_ENOTFOUND, "the primary no longer keeps the log after lsn %"
			       PRIu64 " (%s)", from, msg);
		} else if (h.status == 409) {
			*kind = 'd';
			es_err(err, ES_ECORRUPT, "the primary's log ends before this follower's "
			       "(lsn %" PRIu64 "): %s", from, msg);
		} else {
			*kind = h.status == 401 || h.status == 403 ? 'd' : 'l';
			es_err(err, ES_EIO, "GET %s%s: %s", f->url, path, msg);
		}
		return -1;
	}
	if (!h.has_last_lsn) {
		es_bytebuf_free(&body);
		es_err(err, ES_EIO, "GET %s%s: the answer has no X-Embedsrv-Last-Lsn header (is "
		       "this an embedsrv primary?)", f->url, path);
		return -1;
	}
	pthread_mutex_lock(&f->st_mu);
	int was = f->connected;
	f->connected = 1;
	pthread_mutex_unlock(&f->st_mu);
	if (!was)
		say("connected to %s, following from lsn %" PRIu64, f->url, from);
	uint32_t theirs = h.has_prev_crc ? h.prev_crc : 0;
	if (mine && theirs && mine != theirs) {
		es_bytebuf_free(&body);
		*kind = 'd';
		es_err(err, ES_ECORRUPT, "the primary's log does not continue this follower's: "
		       "its record at lsn %" PRIu64 " has checksum %08" PRIx32 ", this follower's "
		       "%08" PRIx32 " (was the primary restored from an older backup?); refusing "
		       "to apply it", from, theirs, mine);
		return -1;
	}
	uint64_t applied = from;
	if (body.len) {
		rc = es_store_follow_apply(s, body.data, body.len, &applied, err);
		if (!applied)
			applied = es_store_last_lsn(s);
	}
	es_bytebuf_free(&body);
	uint64_t plsn = h.last_lsn;
	pthread_mutex_lock(&f->st_mu);
	f->applied = applied;
	f->primary_lsn = plsn;
	if (applied >= plsn)
		f->caught_up_at = now_s();
	pthread_mutex_unlock(&f->st_mu);
	if (rc) {
		*kind = 'a';
		return -1;
	}
	if (applied > from && applied < plsn)
		return 1;
	/* at the primary's end and it long-polled: the next request waits
	 * there.  Anything else (an empty read short of its end) naps first. */
	return h.has_wait_ms && applied >= plsn ? 2 : 0;
}

static void *follower_main(void *arg)
{
	follower *f = arg;
	unsigned backoff = 0;
	int diverged = 0;
	while (!atomic_load(&f->stop)) {
		es_error err;
		es_error_clear(&err);
		pthread_mutex_lock(&f->st_mu);
		int have = f->store != NULL;
		pthread_mutex_unlock(&f->st_mu);
		if (!have) {
			int rc = bootstrap(f, &err);
			if (rc == ES_ECANCELED)
				break;
			if (rc) {
				set_state(f, "bootstrapping", 0, err.msg);
				fail_link(f, &err, &backoff);
				nap(f, backoff);
				continue;
			}
			backoff = 0;
		}
		int kind;
		int r = poll_once(f, &kind, &err);
		if (r >= 0) {
			if (diverged || backoff)
				say("following %s again", f->url);
			diverged = 0;
			backoff = 0;
			set_state(f, "following", 1, NULL);
			if (r == 0)
				nap(f, f->o.poll_ms);
			continue;
		}
		if (err.code == ES_ECANCELED)
			break;
		switch (kind) {
		case 'g':
			say("%s; bootstrapping again", err.msg);
			drop_store(f);
			break;
		case 'd':
		case 'a':
			if (!diverged)
				say("%s", err.msg);
			diverged = 1;
			set_state(f, kind == 'd' ? "diverged" : "apply_failed", 0, err.msg);
			nap(f, BACKOFF_MAX_MS);
			break;
		default:
			set_state(f, "reconnecting", 1, err.msg);
			fail_link(f, &err, &backoff);
			nap(f, backoff);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ API */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int follower_start(const follower_opts *o, es_registry *reg, api_ctx *api,
		   follower **out, es_error *err)
{
	*out = NULL;
	if (!o->data_dir)
		return es_err(err, ES_EINVAL, "--follow needs --data-dir (the follower keeps a "
			      "copy of the primary's data directory)");
	follower *f = calloc(1, sizeof *f);
	if (!f)
		return es_err(err, ES_ENOMEM, "out of memory");
	f->o = *o;
	if (!f->o.poll_ms)
		f->o.poll_ms = 20;
	int rc = follower_parse_url(o->url, f->host, sizeof f->host, f->port, sizeof f->port, err);
	if (rc) {
		free(f);
		return rc;
	}
	f->url = strdup(o->url);
	f->api_key = dup_or_null(o->api_key);
	f->data_dir = strdup(o->data_dir);
	f->reg = reg;
	f->api = api;
	f->state = "starting";
	f->healthy = 1;
	f->caught_up_at = now_s();
	atomic_init(&f->stop, 0);
	pthread_mutex_init(&f->st_mu, NULL);
	pthread_mutex_init(&f->wake_mu, NULL);
	pthread_cond_init(&f->wake_cv, NULL);
	if (!f->url || !f->data_dir) {
		follower_stop(f);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	if (!es_store_needs_bootstrap(f->data_dir) && (rc = open_store(f, 1, err)) != 0) {
		follower_stop(f);
		return rc;
	}
	if (pthread_create(&f->th, NULL, follower_main, f) != 0) {
		follower_stop(f);
		return es_err(err, ES_ENOMEM, "cannot start the follower thread");
	}
	f->th_on = 1;
	*out = f;
	return 0;
}

void follower_stop(follower *f)
{
	if (!f)
		return;
	if (f->th_on) {
		pthread_mutex_lock(&f->wake_mu);
		atomic_store(&f->stop, 1);
		pthread_cond_broadcast(&f->wake_cv);
		pthread_mutex_unlock(&f->wake_mu);
		pthread_join(f->th, NULL);
	}
	if (f->store) {
		es_error err;
		es_error_clear(&err);
		if (es_store_close(f->store, 1, &err) != 0)
			say("final snapshot failed (the log still holds every record): %s", err.msg);
	}
	pthread_mutex_destroy(&f->st_mu);
	pthread_mutex_destroy(&f->wake_mu);
	pthread_cond_destroy(&f->wake_cv);
	free(f->url);
	free(f->api_key);
	free(f->data_dir);
	free(f);
}

void follower_status(void *fv, api_repl_status *st)
{
	follower *f = fv;
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&f->st_mu);
	st->state = f->state;
	st->healthy = f->healthy;
	st->connected = f->connected;
	st->applied_lsn = f->applied;
	st->primary_lsn = f->primary_lsn;
	st->lag_seconds = f->applied >= f->primary_lsn ? 0.0 : now_s() - f->caught_up_at;
	snprintf(st->error, sizeof st->error, "%s", f->error);
	pthread_mutex_unlock(&f->st_mu);
}

int follower_snapshot(void *fv, const char *name, es_error *err)
{
	follower *f = fv;
	pthread_mutex_lock(&f->st_mu);
	int rc = f->store ? es_store_checkpoint(f->store, name, err)
			  : es_err(err, ES_EBUSY, "the follower is bootstrapping; no data yet");
	pthread_mutex_unlock(&f->st_mu);
	return rc;
}
