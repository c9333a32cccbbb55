/*
 * test_batcher.c — server/batcher: concurrent requests are encoded together
 * (counted forwards), the results equal unbatched encodes of the bert-tiny
 * folder, errors stay with the request that caused them, max_batch and the
 * encode flags bound what one forward takes, max_wait_us is waited and no
 * longer, and bad configurations are refused.  The "concurrency" case is
 * also run under ThreadSanitizer by .ci/run.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batcher.h"
#include "encoder.h"
#include "es_test.h"

#define DIM 128

static es_encoder *enc;

static const char *const texts[] = {
	"the quick brown fox jumps over the lazy dog",
	"a man is playing a guitar",
	"embedding servers turn text into vectors",
	"hello",
	"search engines rank documents by similarity",
	"two people are walking on the beach at sunset",
	"the cat sat on the mat",
	"quantum computers are not needed here",
};
#define NTEXTS (sizeof texts / sizeof texts[0])

static void setup(void)
{
	char p[512];
	es_error err;
	ck_assert_msg(es_encoder_open(es_test_path(p, sizeof p, "tests/data/bert-tiny/st-mean"),
				      NULL, &enc, &err) == 0, "%s", err.msg);
}

static void teardown(void)
{
	es_encoder_free(enc);
}

/* time bounds stretch under sanitizers (ES_SANITIZED, as .ci/run sets) */
static double slow(void)
{
	return getenv("ES_SANITIZED") ? 10.0 : 1.0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Unbatched reference vectors of texts[i]. */
static void reference(size_t i, float *out)
{
	es_error err;
	size_t len = strlen(texts[i]);
	ck_assert_int_eq(es_encoder_encode_batch(enc, &texts[i], &len, 1, 0, out, NULL,
						 NULL, &err), 0);
}

static float max_diff(const float *a, const float *b, size_t n)
{
	float d = 0;
	for (size_t i = 0; i < n; i++)
		d = fmaxf(d, fabsf(a[i] - b[i]));
	return d;
}

/* One request of a client thread. */
typedef struct req {
	es_batcher *b;
	const char *const *texts;
	size_t lens[8];
	size_t n;
	unsigned flags;
	pthread_barrier_t *go;
	float out[8 * DIM];
	es_encode_info info[8];
	int rc;
	es_error err;
} req;

static void *client(void *arg)
{
	req *r = arg;
	if (r->go)
		pthread_barrier_wait(r->go);
	r->rc = es_batcher_encode(r->b, r->texts, r->lens, r->n, r->flags, r->out,
				  r->info, &r->err);
	return NULL;
}

static void set_req(req *r, es_batcher *b, const char *const *t, size_t n,
		    pthread_barrier_t *go)
{
	memset(r, 0, sizeof *r);
	r->b = b;
	r->texts = t;
	r->n = n;
	r->go = go;
	for (size_t i = 0; i < n; i++)
		r->lens[i] = strlen(t[i]);
}

/* n one-text requests submitted at once; returns after all finished. */
static void run_clients(req *rs, size_t n)
{
	pthread_t th[16];
	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, client, &rs[i]), 0);
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

START_TEST(test_concurrent_requests_share_a_forward)
{
	/* one worker that waits (up to 1 s) for 4 texts: four concurrent
	 * requests are one forward, and each gets its own vector */
	es_batcher_config cfg = {4, 1000000, 1, 1};
	es_batcher *b;
	es_error err;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	ck_assert_ptr_eq(es_batcher_encoder(b), enc);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 4);
	req rs[4];
	for (size_t i = 0; i < 4; i++)
		set_req(&rs[i], b, &texts[i], 1, &go);
	double t0 = now_s();
	run_clients(rs, 4);
	double dt = now_s() - t0;
	float want[DIM];
	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(rs[i].rc, 0);
		reference(i, want);
		ck_assert_float_le(max_diff(rs[i].out, want, DIM), 1e-6f);
		ck_assert_uint_gt(rs[i].info[0].tokens, 2);
	}
	es_batcher_stats st;
	es_batcher_get_stats(b, &st);
	ck_assert_uint_eq(st.forwards, 1);
	ck_assert_uint_eq(st.max_seen, 4);
	ck_assert_uint_eq(st.requests, 4);
	ck_assert_uint_eq(st.texts, 4);
	/* a full batch does not wait for the deadline */
	ck_assert_msg(dt < 0.9 * slow(), "took %.3f s", dt);
	es_batcher_free(b);
	pthread_barrier_destroy(&go);
}
END_TEST

START_TEST(test_errors_stay_per_request)
{
	/* three requests in one forward, the middle one invalid UTF-8: it
	 * fails alone, the other two get their vectors */
	es_batcher_config cfg = {3, 1000000, 1, 1};
	es_batcher *b;
	es_error err;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	static const char *const bad[] = {"ok then \xff\xfe broken"};
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 3);
	req rs[3];
	set_req(&rs[0], b, &texts[0], 1, &go);
	set_req(&rs[1], b, bad, 1, &go);
	set_req(&rs[2], b, &texts[1], 1, &go);
	run_clients(rs, 3);
	ck_assert_int_eq(rs[0].rc, 0);
	ck_assert_int_eq(rs[1].rc, ES_EINVAL);
	ck_assert_msg(rs[1].err.msg[0], "the failing request has a message");
	ck_assert_int_eq(rs[2].rc, 0);
	float want[DIM];
	reference(0, want);
	ck_assert_float_le(max_diff(rs[0].out, want, DIM), 1e-6f);
	reference(1, want);
	ck_assert_float_le(max_diff(rs[2].out, want, DIM), 1e-6f);
	es_batcher_stats st;
	es_batcher_get_stats(b, &st);
	ck_assert_uint_eq(st.forwards, 1);
	ck_assert_uint_eq(st.requests, 3);
	es_batcher_free(b);
	pthread_barrier_destroy(&go);
}
END_TEST

START_TEST(test_no_truncate_error_is_the_long_requests_own)
{
	/* a text over max_seq_length (128 tokens) with ES_ENC_NO_TRUNCATE is
	 * ES_ERANGE for its request; a request with the same flags batched
	 * with it still succeeds */
	char *longt = malloc(200 * 6 + 1);
	longt[0] = 0;
	for (int i = 0; i < 200; i++)
		strcat(longt, "hello ");
	const char *lt[] = {longt};
	es_batcher_config cfg = {2, 1000000, 1, 1};
	es_batcher *b;
	es_error err;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	req rs[2];
	set_req(&rs[0], b, lt, 1, &go);
	set_req(&rs[1], b, &texts[2], 1, &go);
	rs[0].flags = rs[1].flags = ES_ENC_NO_TRUNCATE;
	run_clients(rs, 2);
	ck_assert_int_eq(rs[0].rc, ES_ERANGE);
	ck_assert_int_eq(rs[1].rc, 0);
	float want[DIM];
	reference(2, want);
	ck_assert_float_le(max_diff(rs[1].out, want, DIM), 1e-6f);
	es_batcher_stats st;
	es_batcher_get_stats(b, &st);
	ck_assert_uint_eq(st.forwards, 1);
	/* the same long text without the flag is truncated, not an error */
	size_t len = strlen(longt);
	float v[DIM];
	es_encode_info info;
	ck_assert_int_eq(es_batcher_encode(b, lt, &len, 1, 0, v, &info, &err), 0);
	ck_assert(info.truncated);
	es_batcher_free(b);
	pthread_barrier_destroy(&go);
	free(longt);
}
END_TEST

START_TEST(test_max_batch_and_flags_bound_a_forward)
{
	/* max_batch 3: two requests of 2 texts never share a forward; a
	 * request of 5 texts runs alone (not split); different flags are not
	 * mixed */
	es_batcher_config cfg = {3, 200000, 1, 1};
	es_batcher *b;
	es_error err;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 4);
	req rs[4];
	set_req(&rs[0], b, &texts[0], 2, &go);
	set_req(&rs[1], b, &texts[2], 2, &go);
	set_req(&rs[2], b, &texts[3], 5, &go);
	set_req(&rs[3], b, &texts[7], 1, &go);
	rs[3].flags = ES_ENC_NO_TRUNCATE;
	run_clients(rs, 4);
	es_batcher_stats st;
	es_batcher_get_stats(b, &st);
	ck_assert_uint_eq(st.requests, 4);
	ck_assert_uint_eq(st.texts, 10);
	ck_assert_uint_eq(st.max_seen, 5);
	ck_assert_uint_eq(st.forwards, 4); /* 2+2 > 3, 5 alone, flags apart */
	float want[DIM];
	for (size_t r = 0; r < 4; r++) {
		ck_assert_int_eq(rs[r].rc, 0);
		for (size_t i = 0; i < rs[r].n; i++) {
			reference((size_t)(rs[r].texts - texts) + i, want);
			ck_assert_float_le(max_diff(rs[r].out + i * DIM, want, DIM), 1e-6f);
		}
	}
	es_batcher_free(b);
	pthread_barrier_destroy(&go);
}
END_TEST

START_TEST(test_max_wait_is_waited_and_bounded)
{
	/* alone, a request waits max_wait_us for company, then runs */
	es_batcher_config cfg = {32, 100000, 1, 1};
	es_batcher *b;
	es_error err;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	size_t len = strlen(texts[0]);
	float v[DIM], want[DIM];
	double t0 = now_s();
	ck_assert_int_eq(es_batcher_encode(b, &texts[0], &len, 1, 0, v, NULL, &err), 0);
	double dt = now_s() - t0;
	ck_assert_msg(dt >= 0.099, "returned after %.3f s, before max_wait", dt);
	ck_assert_msg(dt < 5.0 * slow(), "took %.3f s", dt);
	reference(0, want);
	ck_assert_float_le(max_diff(v, want, DIM), 1e-6f);
	/* the stats split its time: ~max_wait queued, then its forward */
	es_batcher_stats st;
	es_batcher_get_stats(b, &st);
	ck_assert_uint_eq(st.requests, 1);
	ck_assert_uint_ge(st.wait_us, 99000);
	ck_assert_uint_gt(st.forward_us, 0);
	ck_assert_uint_le(st.wait_us + st.forward_us, (uint64_t)(dt * 1e6) + 1000);
	/* with max_wait 0 nothing waits for a timer */
	es_batcher_free(b);
	cfg.max_wait_us = 0;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	t0 = now_s();
	ck_assert_int_eq(es_batcher_encode(b, &texts[0], &len, 1, 0, v, NULL, &err), 0);
	dt = now_s() - t0;
	ck_assert_msg(dt < 0.099 * slow(), "took %.3f s", dt);
	/* zero texts: nothing queued */
	ck_assert_int_eq(es_batcher_encode(b, NULL, NULL, 0, 0, v, NULL, &err), 0);
	es_batcher_free(b);
}
END_TEST

START_TEST(test_bad_config)
{
	es_batcher *b = (es_batcher *)1;
	es_error err;
	es_batcher_config cfg = {0, 0, 1, 1};
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), ES_EINVAL);
	ck_assert_ptr_null(b);
	ck_assert(strstr(err.msg, "batch size"));
	cfg = (es_batcher_config){8, 1000001, 1, 1};
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), ES_EINVAL);
	cfg = (es_batcher_config){8, 0, 0, 1};
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), ES_EINVAL);
	cfg = (es_batcher_config){8, 0, 1, 1025};
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), ES_EINVAL);
	ck_assert(strstr(err.msg, "threads per forward"));
	es_batcher_free(NULL);
}
END_TEST

/* many clients, several workers, random sizes: every result right */
typedef struct stress_arg {
	es_batcher *b;
	unsigned seed;
	int bad;
} stress_arg;

static void *stress_client(void *arg)
{
	stress_arg *a = arg;
	float out[8 * DIM], want[DIM];
	for (int it = 0; it < 12; it++) {
		size_t first = rand_r(&a->seed) % NTEXTS;
		size_t n = 1 + rand_r(&a->seed) % (NTEXTS - first);
		size_t lens[8];
		for (size_t i = 0; i < n; i++)
			lens[i] = strlen(texts[first + i]);
		es_error err;
		if (es_batcher_encode(a->b, &texts[first], lens, n, 0, out, NULL, &err)) {
			a->bad++;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			size_t len = lens[i];
			es_encoder_encode_batch(enc, &texts[first + i], &len, 1, 0, want, NULL,
						NULL, &err);
			if (max_diff(out + i * DIM, want, DIM) > 1e-6f)
				a->bad++;
		}
	}
	return NULL;
}

START_TEST(test_concurrency)
{
	es_batcher_config cfg = {6, 0, 2, 1};
	es_batcher *b;
	es_error err;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	pthread_t th[8];
	stress_arg a[8];
	for (unsigned i = 0; i < 8; i++) {
		a[i] = (stress_arg){b, 1234 + i, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, stress_client, &a[i]), 0);
	}
	int bad = 0;
	for (unsigned i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		bad += a[i].bad;
	}
	ck_assert_int_eq(bad, 0);
	es_batcher_stats st;
	es_batcher_get_stats(b, &st);
	ck_assert_uint_eq(st.requests, 8 * 12);
	ck_assert_uint_le(st.max_seen, NTEXTS);
	es_batcher_free(b);
	/* the same with a wait: workers waiting for a fuller batch */
	cfg.max_wait_us = 2000;
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	for (unsigned i = 0; i < 8; i++) {
		a[i] = (stress_arg){b, 99 + i, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, stress_client, &a[i]), 0);
	}
	for (unsigned i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		bad += a[i].bad;
	}
	ck_assert_int_eq(bad, 0);
	es_batcher_free(b);
	/* one worker whose forwards run on a pool of 2 threads (core/bert
	 * cuts a batch into runs of texts or splits products by columns) */
	cfg = (es_batcher_config){6, 0, 1, 2};
	ck_assert_int_eq(es_batcher_new(enc, &cfg, &b, &err), 0);
	for (unsigned i = 0; i < 8; i++) {
		a[i] = (stress_arg){b, 7 + i, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, stress_client, &a[i]), 0);
	}
	for (unsigned i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		bad += a[i].bad;
	}
	ck_assert_int_eq(bad, 0);
	es_batcher_stats st2;
	es_batcher_get_stats(b, &st2);
	ck_assert_uint_eq(st2.requests, 8 * 12);
	es_batcher_free(b);
}
END_TEST

Suite *batcher_suite(void)
{
	Suite *s = suite_create("batcher");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_concurrent_requests_share_a_forward);
	tcase_add_test(tc, test_errors_stay_per_request);
	tcase_add_test(tc, test_no_truncate_error_is_the_long_requests_own);
	tcase_add_test(tc, test_max_batch_and_flags_bound_a_forward);
	tcase_add_test(tc, test_max_wait_is_waited_and_bounded);
	tcase_add_test(tc, test_bad_config);
	suite_add_tcase(s, tc);
	TCase *cc = tcase_create("concurrency");
	tcase_add_checked_fixture(cc, setup, teardown);
	tcase_set_timeout(cc, 300);
	tcase_add_test(cc, test_concurrency);
	suite_add_tcase(s, cc);
	return s;
}
