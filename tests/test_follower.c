/* test_follower.c — `serve --follow` in one process: a primary (store, API,
 * HTTP server on a free port) and a follower (its own registry and data
 * directory) talking real HTTP.  The follower bootstraps, catches up with
 * writes made after it started (lag back to 0, every point bit-exact),
 * notices the primary going away and coming back, resumes after its own
 * restart from its last lsn, and refuses a primary whose log does not
 * continue its own (a primary restored from an older backup): it stops
 * applying and reports unhealthy, keeping what it has.  URL parsing refuses
 * what it cannot follow; the head of the primary's answers is parsed
 * strictly.  Runs under ThreadSanitizer in CI (.ci/run). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "encoder.h"
#include "es_test.h"
#include "es_test_store.h"
#include "follower.h"
#include "http.h"
#include "store.h"

static char pdir[256], fdir[256];
static es_encoder *enc;

static void setup(void)
{
	snprintf(pdir, sizeof pdir, "/tmp/es_folp_XXXXXX");
	snprintf(fdir, sizeof fdir, "/tmp/es_folf_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pdir));
	ck_assert_ptr_nonnull(mkdtemp(fdir));
	char path[512];
	es_error err;
	ck_assert_int_eq(es_encoder_open(es_test_path(path, sizeof path, "tests/data/lee-10d.vec"),
					 NULL, &enc, &err), 0);
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", pdir, fdir);
	ck_assert_int_eq(system(cmd), 0);
	es_encoder_free(enc);
}

/* A server: registry, API, optional store, HTTP. */
typedef struct node {
	es_registry *reg;
	api_ctx *api;
	es_store *store;
	es_http *http;
	follower *fol;
} node;

static void node_api(node *n, int read_only, const char *primary)
{
	ck_assert_int_eq(es_registry_new(api_payload_hooks(), &n->reg, NULL), 0);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	api_limits_default(&cfg.limits);
	cfg.models = &enc;
	cfg.nmodels = 1;
	cfg.registry = n->reg;
	cfg.threads = 2;
	cfg.read_only = read_only;
	cfg.primary = primary;
	es_error err;
	ck_assert_int_eq(api_ctx_new(&cfg, &n->api, &err), 0);
}

static void node_http(node *n, uint16_t port)
{
	es_http_config hc = {"127.0.0.1", port, 2, 1};
	es_error err;
	int rc = -1;
	for (int i = 0; i < 50 && rc; i++) { /* the port may linger a moment */
		rc = es_http_start(&hc, n->api, &n->http, &err);
		if (rc)
			usleep(100000);
	}
	ck_assert_msg(rc == 0, "http: %s", err.msg);
}

static void primary_start(node *n, const char *dir, uint16_t port)
{
	memset(n, 0, sizeof *n);
	node_api(n, 0, NULL);
	es_store_options so;
	es_store_options_default(&so);
	so.retain_bytes = 1 << 30;
	es_error err;
	ck_assert_int_eq(es_store_open(dir, &so, n->reg, NULL, &n->store, &err), 0);
	api_ctx_set_store(n->api, n->store);
	api_ctx_set_ready(n->api, 1);
	node_http(n, port);
}

static void primary_stop(node *n)
{
	es_store_ship_stop(n->store); /* as serve does: long polls answer now */
	es_http_stop(n->http, 5.0);
	ck_assert_int_eq(es_store_close(n->store, 0, NULL), 0);
	api_ctx_free(n->api);
	es_registry_free(n->reg);
}

static void follower_up(node *f, uint16_t port)
{
	memset(f, 0, sizeof *f);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
	node_api(f, 1, url);
	follower_opts fo = {url, NULL, fdir, WAL_FSYNC_ALWAYS, 0, 0, 5};
	es_error err;
	int rc = follower_start(&fo, f->reg, f->api, &f->fol, &err);
	ck_assert_msg(rc == 0, "follower: %s", err.msg);
	api_ctx_set_follower(f->api, follower_status, f->fol);
}

static void follower_down(node *f)
{
	follower_stop(f->fol);
	api_ctx_free(f->api);
	es_registry_free(f->reg);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Wait until the follower has applied lsn `want` (and says lag 0). */
static void wait_applied(node *f, uint64_t want)
{
	double t0 = now_s();
	api_repl_status st;
	for (;;) {
		follower_status(f->fol, &st);
		if (st.applied_lsn == want && st.primary_lsn == want && st.lag_seconds == 0.0)
			return;
		ck_assert_msg(now_s() - t0 < 20.0, "follower stuck at %llu (primary %llu, want %llu): "
			      "%s %s", (unsigned long long)st.applied_lsn,
			      (unsigned long long)st.primary_lsn, (unsigned long long)want, st.state,
			      st.error);
		usleep(5000);
	}
}

static void wait_state(node *f, const char *state, int healthy)
{
	double t0 = now_s();
	api_repl_status st;
	for (;;) {
		follower_status(f->fol, &st);
		if (strcmp(st.state, state) == 0 && st.healthy == healthy)
			return;
		ck_assert_msg(now_s() - t0 < 20.0, "follower state %s/%d, want %s/%d (%s)", st.state,
			      st.healthy, state, healthy, st.error);
		usleep(5000);
	}
}

static void same(node *a, node *b)
{
	char *x = dump_collection(a->reg, "a"), *y = dump_collection(b->reg, "a");
	ck_assert_str_eq(x, y);
	free(x);
	free(y);
}

static void create(node *n)
{
	es_collection_params p;
	memset(&p, 0, sizeof p);
	p.dim = DIM;
	p.metric = ES_METRIC_COSINE;
	ck_assert_int_eq(es_registry_create(n->reg, "a", &p, NULL, NULL), 0);
}

START_TEST(follows_a_primary_over_http)
{
	es_error err;
	node p, f;
	primary_start(&p, pdir, 0);
	uint16_t port = es_http_port(p.http);
	create(&p);
	ck_assert_int_eq(put_range(p.reg, "a", 0, 200, 1, &err), 0);

	follower_up(&f, port);
	wait_applied(&f, es_store_last_lsn(p.store));
	same(&p, &f);
	/* writes after the bootstrap arrive by the log */
	for (uint32_t g = 2; g < 6; g++) {
		ck_assert_int_eq(put_range(p.reg, "a", g * 30, g * 30 + 60, g, &err), 0);
		ck_assert_int_eq(del_range(p.reg, "a", g, g + 2, &err), 0);
	}
	wait_applied(&f, es_store_last_lsn(p.store));
	same(&p, &f);

	/* the primary goes away and comes back (same directory, same port) */
	primary_stop(&p);
	wait_state(&f, "reconnecting", 1);
	primary_start(&p, pdir, port);
	ck_assert_int_eq(put_range(p.reg, "a", 400, 420, 8, &err), 0);
	wait_applied(&f, es_store_last_lsn(p.store));
	same(&p, &f);

	/* the follower restarts from its own directory and resumes */
	uint64_t at = es_store_last_lsn(p.store);
	follower_down(&f);
	ck_assert_int_eq(put_range(p.reg, "a", 420, 440, 9, &err), 0);
	follower_up(&f, port);
	api_repl_status st;
	follower_status(f.fol, &st);
	ck_assert_uint_ge(st.applied_lsn, at); /* opened its data at once */
	wait_applied(&f, es_store_last_lsn(p.store));
	same(&p, &f);
	follower_down(&f);
	primary_stop(&p);
}
END_TEST

START_TEST(refuses_a_log_that_does_not_continue)
{
	es_error err;
	node p, f;
	primary_start(&p, pdir, 0);
	uint16_t port = es_http_port(p.http);
	create(&p);
	ck_assert_int_eq(put_range(p.reg, "a", 0, 50, 1, &err), 0);
	/* the "backup": a copy of the primary's directory now */
	char backup[300], cmd[1400];
	snprintf(backup, sizeof backup, "%s.bak", pdir);
	ck_assert_int_eq(es_store_checkpoint(p.store, NULL, &err), 0);
	snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && rm -f '%s/LOCK'", pdir, backup, backup);
	ck_assert_int_eq(system(cmd), 0);
	follower_up(&f, port);
	ck_assert_int_eq(put_range(p.reg, "a", 50, 60, 2, &err), 0);
	ck_assert_int_eq(put_range(p.reg, "a", 60, 70, 2, &err), 0);
	uint64_t had = es_store_last_lsn(p.store);
	wait_applied(&f, had);
	char *before = dump_collection(f.reg, "a");
	primary_stop(&p);
	api_repl_status st;

	/* restored from the backup, nothing written since: its log ends before
	 * the follower's lsn */
	primary_start(&p, backup, port);
	wait_state(&f, "diverged", 0);
	follower_status(f.fol, &st);
	ck_assert_ptr_nonnull(strstr(st.error, "ends before"));
	primary_stop(&p);

	/* restored from the backup, then other writes reach past the follower's
	 * lsn: the same lsns, different records */
	primary_start(&p, backup, port);
	for (uint32_t g = 0; g < 4; g++)
		ck_assert_int_eq(put_range(p.reg, "a", 1000 + g, 1001 + g, 7, &err), 0);
	ck_assert_uint_gt(es_store_last_lsn(p.store), had);
	wait_state(&f, "diverged", 0);
	double t0 = now_s();
	do { /* the earlier error may still be shown for a moment */
		follower_status(f.fol, &st);
		usleep(5000);
	} while (!strstr(st.error, "does not continue") && now_s() - t0 < 20.0);
	ck_assert_msg(strstr(st.error, "does not continue") != NULL, "%s", st.error);
	ck_assert_uint_eq(st.applied_lsn, had);
	char *after = dump_collection(f.reg, "a");
	ck_assert_str_eq(before, after); /* nothing of the other log applied */
	free(after);
	free(before);
	primary_stop(&p);

	/* the real primary back: its log does continue the follower's */
	primary_start(&p, pdir, port);
	ck_assert_int_eq(put_range(p.reg, "a", 70, 80, 3, &err), 0);
	wait_applied(&f, es_store_last_lsn(p.store));
	same(&p, &f);
	follower_down(&f);
	primary_stop(&p);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", backup);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(url_parsing)
{
	char h[64], p[16];
	es_error err;
	ck_assert_int_eq(follower_parse_url("http://10.0.0.2:8080", h, sizeof h, p, sizeof p, &err), 0);
	ck_assert_str_eq(h, "10.0.0.2");
	ck_assert_str_eq(p, "8080");
	ck_assert_int_eq(follower_parse_url("http://primary/", h, sizeof h, p, sizeof p, &err), 0);
	ck_assert_str_eq(h, "primary");
	ck_assert_str_eq(p, "80");
	ck_assert_int_eq(follower_parse_url("http://[::1]:9", h, sizeof h, p, sizeof p, &err), 0);
	ck_assert_str_eq(h, "::1");
	ck_assert_str_eq(p, "9");
	const char *bad[] = {"https://x:1", "x:1", "http://", "http://:80", "http://h:0",
			     "http://h:70000", "http://h:8080/prefix", "http://[::1", "http://u@h",
			     "http://h:12a", NULL};
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(follower_parse_url(bad[i], h, sizeof h, p, sizeof p, &err) == ES_EINVAL,
			      "%s accepted", bad[i]);
	ck_assert_int_eq(follower_parse_url(NULL, h, sizeof h, p, sizeof p, &err), ES_EINVAL);
}
END_TEST

/* The primary's answer head: what the follower acts on, what it refuses. */
START_TEST(response_head_parsing)
{
	follower_http_head h;
	es_error err;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nx-embedsrv-last-lsn:  42 \r\n"
			 "X-Embedsrv-Prev-Crc: 0A1b2c3D\r\nX-Embedsrv-Lsn: 7\r\n"
			 "X-Embedsrv-Wait-Ms: 10000\r\n\r\nbody...";
	ck_assert_int_eq(follower_parse_head(ok, strlen(ok), &h, &err), 0);
	ck_assert_int_eq(h.status, 200);
	ck_assert_int_eq(h.content_length, 12);
	ck_assert_uint_eq(h.head_len, strlen(ok) - 7);
	ck_assert(h.has_last_lsn && h.has_prev_crc && h.has_lsn);
	ck_assert_uint_eq(h.last_lsn, 42);
	ck_assert_uint_eq(h.prev_crc, 0x0a1b2c3du);
	ck_assert_uint_eq(h.lsn, 7);
	ck_assert(h.has_wait_ms);
	ck_assert_uint_eq(h.wait_ms, 10000);
	/* every prefix short of the blank line asks for more */
	for (size_t k = 0; k < h.head_len; k++)
		ck_assert_int_eq(follower_parse_head(ok, k, &h, &err), 1);
	const char *bare = "HTTP/1.0 503\r\n\r\n";
	ck_assert_int_eq(follower_parse_head(bare, strlen(bare), &h, &err), 0);
	ck_assert_int_eq(h.status, 503);
	ck_assert_int_eq(h.content_length, -1);
	ck_assert(!h.has_last_lsn && !h.has_prev_crc && !h.has_lsn && !h.has_wait_ms);
	const char *te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	ck_assert_int_eq(follower_parse_head(te, strlen(te), &h, &err), ES_EUNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(err.msg, "chunked"));
	const char *bad[] = {
		"HTTP/2 200 OK\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n", "HTTP/1.1 2000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Embedsrv-Last-Lsn: 18446744073709551616\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Embedsrv-Last-Lsn: 0x10\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Embedsrv-Prev-Crc: 123456789\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Embedsrv-Prev-Crc: xyz\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Embedsrv-Wait-Ms: soon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", " folded: line\r\n\r\n", NULL};
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(follower_parse_head(bad[i], strlen(bad[i]), &h, &err) == ES_ECORRUPT,
			      "accepted: %s", bad[i]);
	const char nul[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
	ck_assert_int_eq(follower_parse_head(nul, sizeof nul - 1, &h, &err), ES_ECORRUPT);

	char msg[64];
	const char *js = "{\"error\":{\"message\":\"lsn 9 is past the end\",\"code\":\"lsn_ahead\"}}";
	follower_error_message(409, js, strlen(js), msg, sizeof msg);
	ck_assert_str_eq(msg, "HTTP 409: lsn 9 is past the end");
	follower_error_message(502, "<html>bad gateway</html>", 24, msg, sizeof msg);
	ck_assert_str_eq(msg, "HTTP 502");
	follower_error_message(500, NULL, 0, msg, sizeof msg);
	ck_assert_str_eq(msg, "HTTP 500");
	follower_error_message(409, js, strlen(js), msg, 10);
	ck_assert_str_eq(msg, "HTTP 409:");
}
END_TEST

Suite *follower_suite(void)
{
	Suite *s = suite_create("follower");
	TCase *t = tcase_create("core");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, url_parsing);
	tcase_add_test(t, response_head_parsing);
	tcase_add_test(t, follows_a_primary_over_http);
	tcase_add_test(t, refuses_a_log_that_does_not_continue);
	suite_add_tcase(s, t);
	return s;
}
