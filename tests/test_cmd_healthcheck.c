/* test_cmd_healthcheck.c — the healthcheck probe against a tiny socket
 * server that answers whatever each test scripts: 200, 503, garbage, silence,
 * a closed connection; plus the command's exit codes and option checks. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmd_healthcheck.h"
#include "commands.h"

/* One-connection scripted server on 127.0.0.1:<ephemeral>. */
typedef struct fake_srv {
	int lfd;
	char port[8];
	const char *answer; /* sent after the request head; NULL = close at once */
	int silent_ms;      /* >0: accept, read, then say nothing for this long */
	char request[2048]; /* what the client sent */
	pthread_t th;
} fake_srv;

static void *fake_run(void *arg)
{
	fake_srv *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	size_t got = 0;
	while (got < sizeof s->request - 1) {
		ssize_t r = recv(fd, s->request + got, sizeof s->request - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		s->request[got] = '\0';
		if (strstr(s->request, "\r\n\r\n"))
			break;
	}
	if (s->silent_ms > 0) {
		struct timespec ts = {s->silent_ms / 1000, (s->silent_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	} else if (s->answer) {
		ssize_t w = send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL);
		(void)w;
	}
	close(fd);
	return NULL;
}

static void fake_start(fake_srv *s, const char *answer, int silent_ms)
{
	memset(s, 0, sizeof *s);
	s->answer = answer;
	s->silent_ms = silent_ms;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s->lfd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(s->lfd, 4), 0);
	socklen_t len = sizeof a;
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(s->port, sizeof s->port, "%u", ntohs(a.sin_port));
	ck_assert_int_eq(pthread_create(&s->th, NULL, fake_run, s), 0);
}

static void fake_stop(fake_srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* A port on which nothing listens: bind one, note it, close it. */
static void closed_port(char *port, size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t alen = sizeof a;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(port, len, "%u", ntohs(a.sin_port));
	close(fd);
}

START_TEST(test_probe_ok)
{
	fake_srv s;
	fake_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
	es_error err = {0};
	int status = 0;
	int rc = es_healthcheck_probe("127.0.0.1", s.port, "/healthz", NULL, 3000, &status, &err);
	fake_stop(&s);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_int_eq(status, 200);
	ck_assert_msg(strncmp(s.request, "GET /healthz HTTP/1.0\r\n", 23) == 0, "request: %s", s.request);
	ck_assert_ptr_nonnull(strstr(s.request, "\r\nHost: 127.0.0.1:"));
	ck_assert_ptr_null(strstr(s.request, "Authorization"));
}
END_TEST

START_TEST(test_probe_sends_api_key)
{
	fake_srv s;
	fake_start(&s, "HTTP/1.0 204 No Content\r\n\r\n", 0);
	int status = 0;
	int rc = es_healthcheck_probe("127.0.0.1", s.port, "/readyz", "s3cret", 3000, &status, NULL);
	fake_stop(&s);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(status, 204);
	ck_assert_ptr_nonnull(strstr(s.request, "GET /readyz HTTP/1.0\r\n"));
	ck_assert_ptr_nonnull(strstr(s.request, "\r\nAuthorization: Bearer s3cret\r\n"));
}
END_TEST

START_TEST(test_probe_reports_503)
{
	fake_srv s;
	fake_start(&s, "HTTP/1.1 503 Service Unavailable\r\n\r\n", 0);
	int status = 0;
	int rc = es_healthcheck_probe("127.0.0.1", s.port, "/healthz", NULL, 3000, &status, NULL);
	fake_stop(&s);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(status, 503);
}
END_TEST

START_TEST(test_probe_not_http)
{
	const char *bad[] = {"hello there\r\n", "HTTP/1.1 2x0 OK\r\n", "HTTP/1.1\r\n",
			     "HTTP/1.1 20\r\n", "HTTP/1.1 2000 OK\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fake_srv s;
		fake_start(&s, bad[i], 0);
		es_error err = {0};
		int status = -1;
		int rc = es_healthcheck_probe("127.0.0.1", s.port, "/healthz", NULL, 3000, &status, &err);
		fake_stop(&s);
		ck_assert_msg(rc == ES_ECORRUPT, "answer %zu: rc %d", i, rc);
		ck_assert_int_gt((int)strlen(err.msg), 0);
	}
}
END_TEST

START_TEST(test_probe_closed_without_answer)
{
	fake_srv s;
	fake_start(&s, NULL, 0);
	es_error err = {0};
	int status = 0;
	int rc = es_healthcheck_probe("127.0.0.1", s.port, "/healthz", NULL, 3000, &status, &err);
	fake_stop(&s);
	ck_assert_int_eq(rc, ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "without answering"));
}
END_TEST

START_TEST(test_probe_refused)
{
	char port[8];
	closed_port(port, sizeof port);
	es_error err = {0};
	int status = 0;
	int rc = es_healthcheck_probe("127.0.0.1", port, "/healthz", NULL, 3000, &status, &err);
	ck_assert_int_eq(rc, ES_EIO);
	ck_assert_msg(strstr(err.msg, port) != NULL, "message names the port: %s", err.msg);
}
END_TEST

START_TEST(test_probe_times_out)
{
	fake_srv s;
	fake_start(&s, NULL, 1500);
	es_error err = {0};
	int status = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = es_healthcheck_probe("127.0.0.1", s.port, "/healthz", NULL, 200, &status, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fake_stop(&s);
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_int_eq(rc, ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "timed out"));
	ck_assert_msg(dt < 1.2, "the 200 ms deadline held (took %.3f s)", dt);
}
END_TEST

START_TEST(test_probe_bad_arguments)
{
	int status;
	ck_assert_int_eq(es_healthcheck_probe("127.0.0.1", "8080", "healthz", NULL, 100, &status, NULL), ES_EINVAL);
	ck_assert_int_eq(es_healthcheck_probe("127.0.0.1", "8080", "/a b", NULL, 100, &status, NULL), ES_EINVAL);
	ck_assert_int_eq(es_healthcheck_probe("127.0.0.1", "8080", "/x\r\nEvil: 1", NULL, 100, &status, NULL), ES_EINVAL);
	ck_assert_int_eq(es_healthcheck_probe("127.0.0.1", "8080", "/healthz", "k\r\nX: y", 100, &status, NULL), ES_EINVAL);
	ck_assert_int_eq(es_healthcheck_probe("127.0.0.1", "8080", "/healthz", NULL, 0, &status, NULL), ES_EINVAL);
	ck_assert_int_eq(es_healthcheck_probe("", "8080", "/healthz", NULL, 100, &status, NULL), ES_EINVAL);
}
END_TEST

static int run_cmd(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *argv[6] = {"healthcheck", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
	int argc = 1;
	while (argc < 5 && argv[argc])
		argc++;
	return cmd_healthcheck(argc, argv);
}

START_TEST(test_cmd_exit_codes)
{
	fake_srv s;
	fake_start(&s, "HTTP/1.1 200 OK\r\n\r\n", 0);
	ck_assert_int_eq(run_cmd("--port", s.port, "--quiet", NULL), 0);
	fake_stop(&s);

	fake_start(&s, "HTTP/1.1 503 Service Unavailable\r\n\r\n", 0);
	ck_assert_int_eq(run_cmd("--port", s.port, "--quiet", NULL), 1);
	fake_stop(&s);

	/* The port comes from EMBEDSRV_PORT when --port is absent. */
	fake_start(&s, "HTTP/1.1 200 OK\r\n\r\n", 0);
	setenv("EMBEDSRV_PORT", s.port, 1);
	setenv("EMBEDSRV_HOST", "0.0.0.0", 1); /* wildcard bind: probe loopback */
	ck_assert_int_eq(run_cmd("--quiet", NULL, NULL, NULL), 0);
	fake_stop(&s);

	char port[8];
	closed_port(port, sizeof port);
	ck_assert_int_eq(run_cmd("--port", port, "--timeout", "1"), 1);
}
END_TEST

START_TEST(test_cmd_usage_errors)
{
	ck_assert_int_eq(run_cmd("--port", "0", NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("--port", "70000", NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("--port", "80a", NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("--timeout", "-1", NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("--timeout", "soon", NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("--path", "healthz", NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("--no-such-option", NULL, NULL, NULL), 2);
	ck_assert_int_eq(run_cmd("extra", NULL, NULL, NULL), 2);
	setenv("EMBEDSRV_PORT", "http", 1);
	ck_assert_int_eq(run_cmd(NULL, NULL, NULL, NULL), 2);
}
END_TEST

Suite *cmd_healthcheck_suite(void)
{
	Suite *s = suite_create("cmd_healthcheck");
	TCase *tc = tcase_create("probe");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_probe_ok);
	tcase_add_test(tc, test_probe_sends_api_key);
	tcase_add_test(tc, test_probe_reports_503);
	tcase_add_test(tc, test_probe_not_http);
	tcase_add_test(tc, test_probe_closed_without_answer);
	tcase_add_test(tc, test_probe_refused);
	tcase_add_test(tc, test_probe_times_out);
	tcase_add_test(tc, test_probe_bad_arguments);
	tcase_add_test(tc, test_cmd_exit_codes);
	tcase_add_test(tc, test_cmd_usage_errors);
	suite_add_tcase(s, tc);
	return s;
}
