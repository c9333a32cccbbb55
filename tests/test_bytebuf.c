/* test_bytebuf.c — core/bytebuf: appends keep a NUL after the contents;
 * printf of short and long (> the stack buffer) output; growth across
 * many appends; allocation failure and an impossible length are sticky. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "bytebuf.h"

START_TEST(test_text)
{
	es_bytebuf b;
	es_bytebuf_init(&b);
	es_bytebuf_puts(&b, "a=");
	es_bytebuf_printf(&b, "%d,%s", 42, "x");
	ck_assert_str_eq(b.s, "a=42,x");
	ck_assert_uint_eq(b.len, 6);
	char big[1000];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	es_bytebuf_printf(&b, "[%s]", big);
	ck_assert_uint_eq(b.len, 6 + 1001);
	ck_assert_int_eq(b.s[6], '[');
	ck_assert_int_eq(b.s[b.len - 1], ']');
	ck_assert_int_eq(b.s[b.len], '\0');
	for (int i = 0; i < 10000; i++)
		es_bytebuf_put(&b, "0123456789", 10);
	ck_assert_uint_eq(b.len, 1007 + 100000);
	ck_assert_int_eq(b.s[b.len], '\0');
	ck_assert_int_eq(b.oom, 0);
	unsigned char *p = es_bytebuf_grow(&b, 3);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(b.data[b.len], 0);
	es_bytebuf_free(&b);
	ck_assert_ptr_null(b.data);
	es_bytebuf_free(&b); /* twice is fine */
}
END_TEST

START_TEST(test_sticky_failure)
{
	es_bytebuf b;
	es_bytebuf_init(&b);
	es_bytebuf_puts(&b, "ok");
	es_alloc_fail_after(0);
	char big[600];
	memset(big, 'z', sizeof big);
	es_bytebuf_put(&b, big, sizeof big); /* needs to grow: fails */
	ck_assert_int_eq(es_alloc_fail_disarm(), 1);
	ck_assert_int_eq(b.oom, 1);
	es_bytebuf_puts(&b, "more"); /* sticky, even with memory back */
	ck_assert_ptr_null(es_bytebuf_grow(&b, 1));
	ck_assert_str_eq(b.s, "ok");
	es_bytebuf_free(&b);
	ck_assert_ptr_null(es_bytebuf_grow(&b, SIZE_MAX - 10));
	ck_assert_int_eq(b.oom, 1);
	es_bytebuf_free(&b);
}
END_TEST

Suite *bytebuf_suite(void)
{
	Suite *s = suite_create("bytebuf");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_sticky_failure);
	suite_add_tcase(s, tc);
	return s;
}
