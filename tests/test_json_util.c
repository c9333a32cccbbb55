/* test_json_util.c — typed extraction, error bodies, status mapping,
 * depth scan, base64, UTF-8 counting. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json_util.h"

START_TEST(test_parse_and_depth)
{
	json_t *o;
	ju_err e;
	ck_assert_int_eq(ju_parse_object("{\"a\":1}", 7, 32, &o, &e), 0);
	json_decref(o);
	ck_assert_int_ne(ju_parse_object("{\"a\":", 5, 32, &o, &e), 0);
	ck_assert_int_eq(e.status, 400);
	ck_assert_str_eq(e.code, "invalid_json");
	ck_assert_ptr_nonnull(strstr(e.msg, "line 1"));
	ck_assert_int_ne(ju_parse_object("[1]", 3, 32, &o, &e), 0);
	ck_assert_int_ne(ju_parse_object("", 0, 32, &o, &e), 0);
	ck_assert_int_eq(ju_depth("{\"a\":[[1]]}", 11, 32), 3);
	ck_assert_int_eq(ju_depth("{\"a\":\"[[[[\\\"[[\"}", 16, 32), 1); /* brackets in strings */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	ck_assert_int_gt(ju_depth(deep, 200, 32), 32);
	ck_assert_int_ne(ju_parse_object(deep, 200, 32, &o, &e), 0);
	ck_assert_str_eq(e.code, "too_deep");
}
END_TEST

START_TEST(test_u64_ids)
{
	json_t *o;
	ju_err e;
	const char *body = "{\"a\":18446744073709551615,\"b\":[9223372036854775808, 7, -3],"
			   "\"s\":\"18446744073709551615 in a string\",\"f\":1e30,\"e\":\"\\\"x\"}";
	ck_assert_int_eq(ju_parse_object(body, strlen(body), 32, &o, &e), 0);
	uint64_t v = 0;
	ck_assert(ju_u64_value(json_object_get(o, "a"), &v));
	ck_assert(v == UINT64_MAX);
	json_t *b = json_object_get(o, "b");
	ck_assert(ju_u64_value(json_array_get(b, 0), &v));
	ck_assert(v == (uint64_t)1 << 63);
	ck_assert(ju_u64_value(json_array_get(b, 1), &v) && v == 7);
	ck_assert(!ju_u64_value(json_array_get(b, 2), &v)); /* negative */
	ck_assert_str_eq(json_string_value(json_object_get(o, "s")),
			 "18446744073709551615 in a string");
	ck_assert_str_eq(json_string_value(json_object_get(o, "e")), "\"x");
	ck_assert(json_is_real(json_object_get(o, "f")));
	ck_assert(ju_has_u64(o));
	ck_assert(!ju_has_u64(json_object_get(o, "s")));
	/* out again as bare numbers */
	json_t *r = json_pack("{s:o,s:o,s:s}", "x", ju_u64_new(UINT64_MAX), "y", ju_u64_new(5),
			      "z", "keep \"quotes\"");
	json_object_set_new(r, "\x1fu64:7", json_true()); /* a key stays a string */
	size_t len;
	char *txt = ju_dump(r, &len);
	ju_u64_unmark(txt, &len);
	txt[len] = '\0';
	ck_assert_str_eq(txt, "{\"x\":18446744073709551615,\"y\":5,\"z\":\"keep \\\"quotes\\\"\","
			      "\"\\u001Fu64:7\":true}");
	free(txt);
	json_decref(r);
	json_decref(o);
	/* past 2^64-1, and negatives past -2^63: still malformed */
	const char *big = "{\"a\":18446744073709551616}";
	ck_assert_int_ne(ju_parse_object(big, strlen(big), 32, &o, &e), 0);
	ck_assert_int_eq(e.status, 400);
	const char *neg = "{\"a\":-18446744073709551615}";
	ck_assert_int_ne(ju_parse_object(neg, strlen(neg), 32, &o, &e), 0);
	const char *broken = "{\"a\":18446744073709551615,}";
	ck_assert_int_ne(ju_parse_object(broken, strlen(broken), 32, &o, &e), 0);
}
END_TEST

START_TEST(test_getters)
{
	json_t *o = json_loads("{\"s\":\"hi\",\"n\":5,\"neg\":-1,\"b\":true,\"f\":0.5,"
			       "\"big\":1e300,\"v\":[1,2,3],\"vs\":[1,\"x\",3]}", 0, NULL);
	ck_assert_ptr_nonnull(o);
	ju_err e;
	const char *s;
	size_t len;
	ck_assert_int_eq(ju_get_str(o, "s", 1, &s, &len, &e), 0);
	ck_assert_str_eq(s, "hi");
	ck_assert_uint_eq(len, 2);
	ck_assert_int_ne(ju_get_str(o, "n", 1, &s, &len, &e), 0);
	ck_assert_int_eq(e.status, 400);
	ck_assert_str_eq(e.param, "n");
	ck_assert_int_ne(ju_get_str(o, "missing", 1, &s, &len, &e), 0);
	ck_assert_str_eq(e.code, "missing_field");
	ck_assert_int_eq(ju_get_str(o, "missing", 0, &s, &len, &e), 0);
	ck_assert_ptr_null(s);
	uint32_t u;
	ck_assert_int_eq(ju_get_u32(o, "n", 1, 1, 10, &u, &e), 0);
	ck_assert_uint_eq(u, 5);
	ck_assert_int_eq(ju_get_u32(o, "absent", 7, 1, 10, &u, &e), 0);
	ck_assert_uint_eq(u, 7);
	ck_assert_int_ne(ju_get_u32(o, "n", 1, 1, 4, &u, &e), 0);
	ck_assert_int_eq(e.status, 422);
	ck_assert_int_ne(ju_get_u32(o, "neg", 1, 0, 4, &u, &e), 0);
	ck_assert_int_eq(e.status, 422);
	ck_assert_int_ne(ju_get_u32(o, "f", 1, 0, 4, &u, &e), 0);
	ck_assert_int_eq(e.status, 400);
	int b;
	ck_assert_int_eq(ju_get_bool(o, "b", 0, &b, &e), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_ne(ju_get_bool(o, "n", 0, &b, &e), 0);
	int has;
	float f;
	ck_assert_int_eq(ju_get_float(o, "f", &has, &f, &e), 0);
	ck_assert(has && f == 0.5f);
	ck_assert_int_ne(ju_get_float(o, "big", &has, &f, &e), 0);
	ck_assert_int_eq(e.status, 422);
	float v[3];
	ck_assert_int_eq(ju_vector(json_object_get(o, "v"), 3, v, "v", &e), 0);
	ck_assert(v[2] == 3.0f);
	ck_assert_int_ne(ju_vector(json_object_get(o, "v"), 4, v, "v", &e), 0);
	ck_assert_str_eq(e.code, "dimension_mismatch");
	ck_assert_int_eq(e.status, 422);
	ck_assert_int_ne(ju_vector(json_object_get(o, "vs"), 3, v, "vs", &e), 0);
	ck_assert_int_eq(e.status, 400);
	static const char *const allowed[] = {"s", "n", NULL};
	ck_assert_int_ne(ju_check_keys(o, allowed, "q", &e), 0);
	ck_assert_str_eq(e.code, "unknown_field");
	json_decref(o);
}
END_TEST

START_TEST(test_errors_and_codes)
{
	ck_assert_int_eq(ju_status_of(ES_EINVAL), 422);
	ck_assert_int_eq(ju_status_of(ES_EDIM), 422);
	ck_assert_int_eq(ju_status_of(ES_ERANGE), 422);
	ck_assert_int_eq(ju_status_of(ES_ENOTFOUND), 404);
	ck_assert_int_eq(ju_status_of(ES_EEXIST), 409);
	ck_assert_int_eq(ju_status_of(ES_ENOSPC), 507);
	ck_assert_int_eq(ju_status_of(ES_ENOMEM), 503);
	ck_assert_int_eq(ju_status_of(ES_EIO), 503); /* disk error: writes refused, reads go on */
	ck_assert_str_eq(ju_code_of(ES_EDIM), "dimension_mismatch");
	json_t *b = ju_error_body(422, "input", "x_code", "bad thing");
	json_t *err = json_object_get(b, "error");
	ck_assert_str_eq(json_string_value(json_object_get(err, "message")), "bad thing");
	ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "invalid_request_error");
	ck_assert_str_eq(json_string_value(json_object_get(err, "param")), "input");
	ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "x_code");
	json_decref(b);
	b = ju_error_body(401, NULL, NULL, "no");
	err = json_object_get(b, "error");
	ck_assert(json_is_null(json_object_get(err, "param")));
	ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "authentication_error");
	json_decref(b);
}
END_TEST

START_TEST(test_base64_utf8_dump)
{
	const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
				  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n;
		char *s = ju_base64(cases[i][0], strlen(cases[i][0]), &n);
		ck_assert_str_eq(s, cases[i][1]);
		ck_assert_uint_eq(n, strlen(cases[i][1]));
		free(s);
	}
	ck_assert_uint_eq(ju_utf8_chars("h\xc3\xa9llo \xe2\x82\xac", 10), 7);
	float v[2] = {0.1f, -2.5f};
	json_t *a = ju_float_array(v, 2);
	size_t len;
	char *s = ju_dump(a, &len);
	ck_assert_str_eq(s, "[0.100000001,-2.5]");
	ck_assert_uint_eq(len, strlen(s));
	free(s);
	json_decref(a);
}
END_TEST

START_TEST(test_fmt_float_roundtrip)
{
	char buf[32];
	unsigned s = 99;
	for (int i = 0; i < 30000; i++) {
		s = s * 1664525u + 1013904223u;
		uint32_t bits = s;
		float f;
		memcpy(&f, &bits, 4);
		if (!isfinite(f))
			continue;
		if (i % 2) /* half in the usual unit-vector range */
			f = (float)((double)(s >> 8) / (1 << 24) * 2.0 - 1.0);
		size_t n = ju_fmt_float(f, buf);
		ck_assert_uint_eq(n, strlen(buf));
		ck_assert_uint_le(n, 16);
		float back = strtof(buf, NULL);
		ck_assert_msg(back == f, "%.9g printed as %s", (double)f, buf);
		json_t *j = json_loads(buf, JSON_DECODE_ANY, NULL);
		ck_assert_msg(j && json_is_number(j), "not JSON: %s", buf);
		json_decref(j);
	}
	/* around every power of ten a float can hold, where the decimal
	 * exponent guess is most likely off by one */
	for (int e = -45; e <= 38; e++) {
		float p10 = (float)pow(10.0, e);
		float around[3] = {nextafterf(p10, 0.0f), p10, nextafterf(p10, INFINITY)};
		for (int j = 0; j < 3; j++) {
			if (around[j] == 0.0f || !isfinite(around[j]))
				continue;
			ju_fmt_float(around[j], buf);
			ck_assert_msg(strtof(buf, NULL) == around[j], "%.9g printed as %s",
				      (double)around[j], buf);
		}
	}
	ju_fmt_float(0.5f, buf);
	ck_assert_str_eq(buf, "0.5");
	ju_fmt_float(-3.0f, buf);
	ck_assert_str_eq(buf, "-3");
	ju_fmt_float(0.0f, buf);
	ck_assert_str_eq(buf, "0");
	ju_fmt_float(1e-7f, buf);
	ck_assert_float_eq(strtof(buf, NULL), 1e-7f);
	ju_buf b = {0};
	float v[3] = {0.25f, -1.0f, 123456.0f};
	ju_buf_floats(&b, v, 3);
	ck_assert_str_eq(b.s, "[0.25,-1,123456]");
	ju_buf_json_string(&b, "a\"b");
	ck_assert_str_eq(b.s, "[0.25,-1,123456]\"a\\\"b\"");
	/* n bytes, not up to the first NUL */
	b.len = 0;
	ju_buf_json_stringn(&b, "x\0y\n", 4);
	ck_assert_str_eq(b.s, "\"x\\u0000y\\n\"");
	free(b.s);
}
END_TEST

Suite *json_util_suite(void)
{
	Suite *s = suite_create("json_util");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_parse_and_depth);
	tcase_add_test(tc, test_getters);
	tcase_add_test(tc, test_u64_ids);
	tcase_add_test(tc, test_errors_and_codes);
	tcase_add_test(tc, test_base64_utf8_dump);
	tcase_add_test(tc, test_fmt_float_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}
