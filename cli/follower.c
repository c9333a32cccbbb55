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

#include "store.h"

#define SLICE_MS 500
#define IO_TIMEOUT_S 30.0
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define SHIP_BYTES (4u << 20)
#define MAX_WAL_BODY ((size_t)80 << 20)

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

typedef struct resp {
	int status;
	char last_lsn[24], prev_crc[12], lsn[24];
	es_bytebuf body; /* when not written to a file */
} resp;

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

static void header_value(const char *line, const char *name, char *dst, size_t n)
{
	size_t l = strlen(name);
	if (strncasecmp(line, name, l) != 0 || line[l] != ':')
		return;
	const char *v = line + l + 1;
	while (*v == ' ')
		v++;
	snprintf(dst, n, "%.*s", (int)strcspn(v, "\r\n"), v);
}

/* GET path; the body goes to `file` when not NULL (then its length is in
 * *file_len), else into r->body (at most MAX_WAL_BODY). */
static int http_get(follower *f, const char *path, resp *r, FILE *file, uint64_t *file_len,
		    es_error *err)
{
	memset(r, 0, sizeof *r);
	int fd = connect_to(f, err);
	if (fd < 0)
		return fd;
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: embedsrv-follower\r\n"
			 "Connection: close\r\n%s%s%s\r\n", path, f->host, f->port,
			 f->api_key ? "Authorization: Bearer " : "", f->api_key ? f->api_key : "",
			 f->api_key ? "\r\n" : "");
	int rc = 0;
	if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		rc = es_err(err, ES_EIO, "sending the request to %s: %s", f->url, strerror(errno));
		goto out;
	}
	/* headers */
	char hbuf[16384];
	size_t got = 0;
	char *eoh = NULL;
	while (!eoh) {
		if (got == sizeof hbuf - 1) {
			rc = es_err(err, ES_ECORRUPT, "the primary's response headers are too long");
			goto out;
		}
		ssize_t k = recv_some(f, fd, hbuf + got, sizeof hbuf - 1 - got, err);
		if (k < 0) {
			rc = (int)k;
			goto out;
		}
		if (k == 0) {
			rc = es_err(err, ES_EIO, "the primary closed the connection without answering");
			goto out;
		}
		got += (size_t)k;
		hbuf[got] = '\0';
		eoh = strstr(hbuf, "\r\n\r\n");
	}
	if (strncmp(hbuf, "HTTP/1.", 7) != 0 || strlen(hbuf) < 12) {
		rc = es_err(err, ES_ECORRUPT, "the answer from %s is not HTTP", f->url);
		goto out;
	}
	r->status = atoi(hbuf + 9);
	char clen[24] = "", te[32] = "";
	for (char *line = strstr(hbuf, "\r\n") + 2; line < eoh; line = strstr(line, "\r\n") + 2) {
		header_value(line, "Content-Length", clen, sizeof clen);
		header_value(line, "Transfer-Encoding", te, sizeof te);
		header_value(line, "X-Embedsrv-Last-Lsn", r->last_lsn, sizeof r->last_lsn);
		header_value(line, "X-Embedsrv-Prev-Crc", r->prev_crc, sizeof r->prev_crc);
		header_value(line, "X-Embedsrv-Lsn", r->lsn, sizeof r->lsn);
	}
	if (te[0] && strcasecmp(te, "identity") != 0) {
		rc = es_err(err, ES_EUNSUPPORTED, "the primary answered with Transfer-Encoding: "
			    "%s; point --follow at the primary itself, not a proxy that re-encodes", te);
		goto out;
	}
	int64_t want = clen[0] ? (int64_t)strtoll(clen, NULL, 10) : -1;
	if (!file && want > (int64_t)MAX_WAL_BODY) {
		rc = es_err(err, ES_ERANGE, "the primary's answer of %" PRId64 " bytes is too large",
			    want);
		goto out;
	}
	/* body: what came with the headers, then the rest */
	uint64_t total = 0;
	char *p = eoh + 4;
	size_t have = got - (size_t)(p - hbuf);
	char *buf = malloc(1 << 16);
	if (!buf) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		if (have) {
			if (file ? fwrite(p, 1, have, file) != have
				 : (es_bytebuf_put(&r->body, p, have), r->body.oom)) {
				rc = es_err(err, file ? ES_EIO : ES_ENOMEM, "storing the primary's answer");
				break;
			}
			total += have;
		}
		if (want >= 0 && total >= (uint64_t)want)
			break;
		if (!file && total > MAX_WAL_BODY) {
			rc = es_err(err, ES_ERANGE, "the primary's answer is too large");
			break;
		}
		ssize_t k = recv_some(f, fd, buf, 1 << 16, err);
		if (k < 0) {
			rc = (int)k;
			break;
		}
		if (k == 0) {
			if (want >= 0)
				rc = es_err(err, ES_EIO, "the primary's answer was cut short (%" PRIu64
					    " of %" PRId64 " bytes)", total, want);
			break;
		}
		p = buf;
		have = (size_t)k;
	}
	free(buf);
	if (file_len)
		*file_len = total;
out:
	close(fd);
	if (rc)
		es_bytebuf_free(&r->body);
	return rc;
}

/* The "message" of a JSON error body, for the log (best effort). */
static void error_message(const resp *r, char *dst, size_t n)
{
	const char *b = r->body.s && r->body.len ? r->body.s : "";
	const char *m = strstr(b, "\"message\":\"");
	if (!m) {
		snprintf(dst, n, "HTTP %d", r->status);
		return;
	}
	m += 11;
	size_t l = 0;
	while (m[l] && m[l] != '"' && l + 1 < n)
		l += m[l] == '\\' && m[l + 1] ? 2 : 1;
	snprintf(dst, n, "HTTP %d: %.*s", r->status, (int)l, m);
}

/* ----------------------------------------------------------- store life */

static int open_store(follower *f, es_error *err)
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

static int bootstrap(follower *f, es_error *err)
{
	set_state(f, "bootstrapping", 1, NULL);
	char path[4096];
	snprintf(path, sizeof path, "%s/bundle.download", f->data_dir);
	int rc = 0;
	FILE *tmp = NULL;
	if (mkdir(f->data_dir, 0755) != 0 && errno != EEXIST)
		return es_err(err, ES_EIO, "%s: %s", f->data_dir, strerror(errno));
	if (!(tmp = fopen(path, "w+")))
		return es_err(err, ES_EIO, "%s: %s", path, strerror(errno));
	unlink(path); /* gone with the FILE */
	double t0 = now_s();
	resp r;
	uint64_t len = 0;
	rc = http_get(f, "/v1/replication/snapshot", &r, tmp, &len, err);
	if (!rc && r.status != 200) {
		char msg[400];
		/* an error body went to the file: read it back for the message */
		es_bytebuf_init(&r.body);
		rewind(tmp);
		char b[1024];
		size_t k = fread(b, 1, sizeof b - 1, tmp);
		es_bytebuf_put(&r.body, b, k);
		es_bytebuf_put(&r.body, "", 1);
		error_message(&r, msg, sizeof msg);
		es_bytebuf_free(&r.body);
		rc = es_err(err, ES_EIO, "GET %s/v1/replication/snapshot: %s", f->url, msg);
	}
	uint64_t lsn = 0;
	if (!rc) {
		pthread_mutex_lock(&f->st_mu);
		f->connected = 1;
		pthread_mutex_unlock(&f->st_mu);
		rewind(tmp);
		rc = es_store_install_bundle(f->data_dir, tmp, &lsn, err);
	}
	fclose(tmp);
	if (rc)
		return rc;
	say("bootstrapped from %s at lsn %" PRIu64 " (%.1f MiB in %.2f s)", f->url, lsn,
	    (double)len / (1 << 20), now_s() - t0);
	return open_store(f, err);
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

/* One poll: 1 when records were applied (poll again at once), 0 when caught
 * up, -1 on a failure (err; *kind: 'l' link, 'g' gone, 'd' diverged, 'a'
 * apply). */
static int poll_once(follower *f, int *kind, es_error *err)
{
	pthread_mutex_lock(&f->st_mu);
	es_store *s = f->store;
	pthread_mutex_unlock(&f->st_mu);
	uint64_t from = es_store_last_lsn(s);
	uint32_t mine = es_store_last_crc(s);
	char path[128];
	snprintf(path, sizeof path, "/v1/replication/wal?from=%" PRIu64 "&max_bytes=%u", from,
		 SHIP_BYTES);
	resp r;
	*kind = 'l';
	int rc = http_get(f, path, &r, NULL, NULL, err);
	if (rc)
		return -1;
	char msg[400];
	if (r.status != 200) {
		error_message(&r, msg, sizeof msg);
		es_bytebuf_free(&r.body);
		if (r.status == 410) {
			*kind = 'g';
			es_err(err, ES_ENOTFOUND, "the primary no longer keeps the log after lsn %"
			       PRIu64 " (%s)", from, msg);
		} else if (r.status == 409) {
			*kind = 'd';
			es_err(err, ES_ECORRUPT, "the primary's log ends before this follower's "
			       "(lsn %" PRIu64 "): %s", from, msg);
		} else {
			*kind = r.status == 401 || r.status == 403 ? 'd' : 'l';
			es_err(err, ES_EIO, "GET %s%s: %s", f->url, path, msg);
		}
		return -1;
	}
	pthread_mutex_lock(&f->st_mu);
	int was = f->connected;
	f->connected = 1;
	pthread_mutex_unlock(&f->st_mu);
	if (!was)
		say("connected to %s, following from lsn %" PRIu64, f->url, from);
	uint32_t theirs = (uint32_t)strtoul(r.prev_crc, NULL, 16);
	if (mine && theirs && mine != theirs) {
		es_bytebuf_free(&r.body);
		*kind = 'd';
		es_err(err, ES_ECORRUPT, "the primary's log does not continue this follower's: "
		       "its record at lsn %" PRIu64 " has checksum %08" PRIx32 ", this follower's "
		       "%08" PRIx32 " (was the primary restored from an older backup?); refusing "
		       "to apply it", from, theirs, mine);
		return -1;
	}
	uint64_t applied = from;
	if (r.body.len) {
		rc = es_store_follow_apply(s, r.body.data, r.body.len, &applied, err);
		if (!applied)
			applied = es_store_last_lsn(s);
	}
	es_bytebuf_free(&r.body);
	uint64_t plsn = strtoull(r.last_lsn, NULL, 10);
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
	return applied > from && applied < plsn ? 1 : 0;
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
	if (!es_store_needs_bootstrap(f->data_dir) && (rc = open_store(f, err)) != 0) {
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
