/* test_metrics.c — counters, histogram buckets and the text format. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

START_TEST(test_render)
{
	const char *labels[] = {"GET /a", "POST /b"};
	api_metrics *m = metrics_new(2, labels);
	ck_assert_ptr_nonnull(m);
	metrics_observe(m, 0, 200, 0.00005);
	metrics_observe(m, 0, 200, 0.003);
	metrics_observe(m, 1, 422, 20.0);
	metrics_observe(m, 9, 404, 0.001); /* out of range -> unmatched */
	metrics_observe(m, 1, 418, 0.001); /* unknown status -> other */
	metrics_add_encoded(m, 3, 17);
	ck_assert_int_eq(metrics_set_workers(m, 2), 0);
	metrics_connection(m, 0, +1);
	metrics_connection(m, 1, +1);
	metrics_connection(m, 1, +1);
	metrics_connection(m, 0, -1);
	metrics_connection(m, 7, +1); /* no such worker: only the total */
	metrics_connection(m, 7, -1);
	metrics_add_refused(m);
	metrics_add_refused(NULL);
	metrics_add_timeout(m, METRICS_TIMEOUT_HEADERS);
	metrics_add_timeout(m, METRICS_TIMEOUT_HEADERS);
	metrics_add_timeout(m, METRICS_TIMEOUT_BODY);
	metrics_add_timeout(m, (metrics_timeout_phase)7); /* ignored */
	metrics_connection(NULL, 0, 1);
	metrics_add_timeout(NULL, METRICS_TIMEOUT_BODY);
	ck_assert_uint_eq(metrics_total_requests(m), 5);
	es_strbuf b = {0};
	metrics_render(m, &b);
	ck_assert(!b.oom);
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_requests_total{route=\"GET /a\",status=\"200\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_requests_total{route=\"POST /b\",status=\"422\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_requests_total{route=\"POST /b\",status=\"other\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_request_duration_seconds_bucket{route=\"GET /a\",le=\"0.0001\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_request_duration_seconds_bucket{route=\"GET /a\",le=\"0.0025\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_request_duration_seconds_bucket{route=\"GET /a\",le=\"0.005\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_request_duration_seconds_bucket{route=\"POST /b\",le=\"10\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_request_duration_seconds_bucket{route=\"POST /b\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_request_duration_seconds_count{route=\"GET /a\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_encoded_texts_total 3\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_encoded_tokens_total 17\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_connections 2\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_worker_connections{worker=\"0\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_worker_connections{worker=\"1\"} 2\n"));
	ck_assert_ptr_null(strstr(b.s, "worker=\"2\""));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_refused_total 1\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_timeouts_total{phase=\"headers\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "embedsrv_http_timeouts_total{phase=\"body\"} 1\n"));
	free(b.s);
	metrics_free(m);
	metrics_free(NULL);
}
END_TEST

START_TEST(test_strbuf_grows)
{
	es_strbuf b = {0};
	for (int i = 0; i < 5000; i++)
		es_strbuf_printf(&b, "line %d\n", i);
	ck_assert(!b.oom);
	ck_assert_ptr_nonnull(strstr(b.s, "line 4999\n"));
	ck_assert_uint_eq(strlen(b.s), b.len);
	free(b.s);
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_render);
	tcase_add_test(tc, test_strbuf_grows);
	suite_add_tcase(s, tc);
	return s;
}
