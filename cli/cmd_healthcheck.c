/*
 * cmd_healthcheck.c — `embedsrv healthcheck`: GET /healthz over a plain
 * socket and turn the answer into an exit status (see cmd_healthcheck.h).
 *
 * Why not curl: the runtime image ships only the binary, its libraries and
 * the model, and Docker's HEALTHCHECK runs inside the container, so the
 * check must be something the binary can do itself.  Only the status line
 * matters, so HTTP/1.0 with `Connection: close` is enough: no chunking, no
 * keep-alive, no body parsing.
 *
 * One deadline covers name lookup's result, connect, send and the status
 * line: every blocking step is a non-blocking call plus poll() with the time
 * that is left, so a server that accepts and never answers cannot hang a
 * supervisor.  No threads, no state.
 */
#include "cmd_healthcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"

/* Enough for any sane status line; the rest of the answer is not read. */
#define HC_STATUS_LINE_MAX 256

static long long hc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, at least 0. */
static int hc_left(long long deadline)
{
	long long left = deadline - hc_now_ms();
	return left > 0 ? (int)left : 0;
}

/* Wait until fd is ready for `events` or the deadline passes.  Returns 0,
 * or ES_EIO with a message naming `what`. */
static int hc_wait(int fd, short events, long long deadline, const char *what,
		   es_error *err)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int left = hc_left(deadline);
		if (left == 0)
			return es_err(err, ES_EIO, "timed out %s", what);
		int n = poll(&p, 1, left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return es_err(err, ES_EIO, "poll while %s: %s", what, strerror(errno));
	}
}

/* Non-blocking connect to one address within the deadline.  Returns the
 * socket or a negative ES_E* code with *err filled. */
static int hc_connect_one(const struct addrinfo *ai, long long deadline, es_error *err)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return es_err(err, ES_EIO, "socket: %s", strerror(errno));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		int rc = es_err(err, ES_EIO, "connect: %s", strerror(errno));
		close(fd);
		return rc;
	}
	int rc = hc_wait(fd, POLLOUT, deadline, "connecting", err);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		close(fd);
		return es_err(err, ES_EIO, "connect: %s", strerror(soerr));
	}
	return fd;
}

/* True when s has no byte that could end a request line or header early. */
static int hc_clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == ' ')
			return 0;
	return 1;
}

/* Parse "HTTP/1.x NNN ..." from the first line of buf. */
static int hc_parse_status(const char *buf, int *status, es_error *err)
{
	if (strncmp(buf, "HTTP/", 5) != 0)
		return es_err(err, ES_ECORRUPT, "the answer is not HTTP (starts with \"%.16s\")", buf);
	const char *sp = strchr(buf, ' ');
	if (!sp || sp[1] < '1' || sp[1] > '5' || sp[2] < '0' || sp[2] > '9' ||
	    sp[3] < '0' || sp[3] > '9' || (sp[4] != ' ' && sp[4] != '\r' && sp[4] != '\n'))
		return es_err(err, ES_ECORRUPT, "malformed HTTP status line \"%.64s\"", buf);
	*status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
	return 0;
}

int es_healthcheck_probe(const char *host, const char *port, const char *path,
			 const char *api_key, int timeout_ms, int *status,
			 es_error *err)
{
	struct addrinfo *res = NULL;
	int fd = -1;
	int rc;

	if (!host || !*host || !port || !*port || !path || !status)
		return es_err(err, ES_EINVAL, "host, port and path are required");
	if (path[0] != '/' || !hc_clean(path))
		return es_err(err, ES_EINVAL,
			      "path must start with '/' and have no spaces or control characters");
	if (!hc_clean(host) || (api_key && !hc_clean(api_key)))
		return es_err(err, ES_EINVAL, "host and API key must not contain spaces or control characters");
	if (timeout_ms <= 0)
		return es_err(err, ES_EINVAL, "timeout must be positive");
	long long deadline = hc_now_ms() + timeout_ms;

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		rc = es_err(err, ES_EIO, "cannot resolve %s port %s: %s", host, port,
			    gai_strerror(gai));
		goto out;
	}
	rc = ES_EIO;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = hc_connect_one(ai, deadline, err);
		if (fd >= 0)
			break;
		rc = fd;
	}
	if (fd < 0) {
		es_err_prefix(err, rc, "%s port %s", host, port);
		goto out;
	}

	/* A literal IPv6 address goes in brackets in the Host header. */
	int v6 = strchr(host, ':') != NULL;
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.0\r\nHost: %s%s%s:%s\r\n"
			 "User-Agent: embedsrv-healthcheck\r\nConnection: close\r\n"
			 "%s%s%s\r\n",
			 path, v6 ? "[" : "", host, v6 ? "]" : "", port,
			 api_key && *api_key ? "Authorization: Bearer " : "",
			 api_key && *api_key ? api_key : "",
			 api_key && *api_key ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof req) {
		rc = es_err(err, ES_EINVAL, "request too long (path, host or API key)");
		goto out;
	}
	for (size_t sent = 0; sent < (size_t)n;) {
		ssize_t w = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
		if (w > 0) {
			sent += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = hc_wait(fd, POLLOUT, deadline, "sending the request", err);
			if (rc < 0)
				goto out;
			continue;
		}
		rc = es_err(err, ES_EIO, "sending the request: %s", strerror(errno));
		goto out;
	}

	char buf[HC_STATUS_LINE_MAX + 1];
	size_t got = 0;
	while (got < HC_STATUS_LINE_MAX && !memchr(buf, '\n', got)) {
		ssize_t r = recv(fd, buf + got, HC_STATUS_LINE_MAX - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EAGAIN || errno == EINTR) {
			rc = hc_wait(fd, POLLIN, deadline, "waiting for the answer", err);
			if (rc < 0)
				goto out;
			continue;
		}
		rc = es_err(err, ES_EIO, "reading the answer: %s", strerror(errno));
		goto out;
	}
	buf[got] = '\0';
	if (got == 0) {
		rc = es_err(err, ES_EIO, "the server closed the connection without answering");
		goto out;
	}
	rc = hc_parse_status(buf, status, err);
out:
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	return rc;
}

/* The address to probe when --host is not given: the server's own bind
 * address from EMBEDSRV_HOST unless that is a wildcard, else loopback. */
static const char *hc_default_host(void)
{
	const char *h = getenv("EMBEDSRV_HOST");
	if (!h || !*h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "*") == 0)
		return "127.0.0.1";
	if (strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0)
		return "::1";
	return h;
}

static void hc_usage(FILE *f)
{
	fprintf(f,
		"usage: embedsrv healthcheck [--host H] [--port P] [--path P] [--timeout S] [--quiet]\n"
		"\n"
		"Ask a running embedsrv whether it is healthy: GET the path (default\n"
		"/healthz) and exit 0 when the answer is 2xx, 1 otherwise.  Meant for\n"
		"Docker's HEALTHCHECK; needs no curl.\n"
		"\n"
		"  --host H     address to connect to (default: EMBEDSRV_HOST unless it is\n"
		"               a wildcard such as 0.0.0.0, else 127.0.0.1)\n"
		"  --port P     port (default: EMBEDSRV_PORT, else %s)\n"
		"  --path P     path to ask (default /healthz; /readyz asks for readiness)\n"
		"  --timeout S  seconds for the whole check (default %d)\n"
		"  --quiet      print nothing on success\n"
		"EMBEDSRV_API_KEY, when set, is sent as a Bearer token.\n",
		ES_HEALTHCHECK_DEFAULT_PORT, ES_HEALTHCHECK_DEFAULT_TIMEOUT_MS / 1000);
}

/* Parse a port 1..65535 given as decimal digits. */
static int hc_valid_port(const char *s)
{
	if (!s || !*s || strlen(s) > 5)
		return 0;
	long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 65535;
}

int cmd_healthcheck(int argc, char **argv)
{
	static const struct option opts[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"path", required_argument, NULL, 'P'},
		{"timeout", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *host = hc_default_host();
	const char *port = getenv("EMBEDSRV_PORT");
	const char *path = "/healthz";
	const char *key = getenv("EMBEDSRV_API_KEY");
	int timeout_ms = ES_HEALTHCHECK_DEFAULT_TIMEOUT_MS;
	int quiet = 0;
	int c;

	if (!port || !*port)
		port = ES_HEALTHCHECK_DEFAULT_PORT;
	optind = 0; /* GNU: start afresh, so the command can run more than once */
	while ((c = getopt_long(argc, argv, "H:p:P:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'H': host = optarg; break;
		case 'p': port = optarg; break;
		case 'P': path = optarg; break;
		case 't': {
			char *end = NULL;
			errno = 0;
			double s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(s > 0) || s > 3600) {
				fprintf(stderr, "embedsrv healthcheck: --timeout wants seconds in (0, 3600], got '%s'\n", optarg);
				return 2;
			}
			timeout_ms = (int)(s * 1000);
			if (timeout_ms < 1)
				timeout_ms = 1;
			break;
		}
		case 'q': quiet = 1; break;
		case 'h': hc_usage(stdout); return 0;
		default: hc_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "embedsrv healthcheck: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!hc_valid_port(port)) {
		fprintf(stderr, "embedsrv healthcheck: port must be a number 1..65535, got '%s'%s\n",
			port, port == getenv("EMBEDSRV_PORT") ? " (from EMBEDSRV_PORT)" : "");
		return 2;
	}
	if (path[0] != '/') {
		fprintf(stderr, "embedsrv healthcheck: --path must start with '/', got '%s'\n", path);
		return 2;
	}

	es_error err = {0};
	int status = 0;
	int rc = es_healthcheck_probe(host, port, path, key, timeout_ms, &status, &err);
	if (rc == ES_EINVAL) {
		fprintf(stderr, "embedsrv healthcheck: %s\n", err.msg);
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "embedsrv healthcheck: unhealthy: %s\n", err.msg);
		return 1;
	}
	if (status < 200 || status > 299) {
		fprintf(stderr, "embedsrv healthcheck: unhealthy: %s port %s %s answered %d\n",
			host, port, path, status);
		return 1;
	}
	if (!quiet)
		printf("healthy: %s port %s %s answered %d\n", host, port, path, status);
	return 0;
}
