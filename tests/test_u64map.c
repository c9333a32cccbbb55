/* test_u64map.c — core/u64map against a plain array model: random puts,
 * gets and removes (unique keys), repeated keys (multimap walk and exact
 * removal), clustered keys that exercise backward-shift deletion, and
 * reserve/put failing cleanly under the failing allocator. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "u64map.h"

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

START_TEST(test_against_model)
{
	enum { N = 4000 };
	static uint64_t val[N]; /* model: key i -> val[i], 0 = absent */
	memset(val, 0, sizeof val);
	es_u64map m;
	es_u64map_init(&m);
	uint64_t s = 88172645463325252ull, v;
	size_t live = 0;
	ck_assert_int_eq(es_u64map_get(&m, 5, &v), 0);
	ck_assert_int_eq(es_u64map_remove(&m, 5), 0);
	for (int step = 0; step < 60000; step++) {
		uint64_t k = rng(&s) % N;
		/* keys spaced by 2^20 collide in the low bits before mixing */
		uint64_t key = k << 20;
		if (rng(&s) % 3) {
			if (!val[k]) {
				val[k] = rng(&s) % 1000000 + 1;
				ck_assert_int_eq(es_u64map_put(&m, key, val[k]), 0);
				live++;
			}
		} else {
			ck_assert_int_eq(es_u64map_remove(&m, key), val[k] != 0);
			live -= val[k] != 0;
			val[k] = 0;
		}
		if (step % 2999 == 0)
			for (uint64_t i = 0; i < N; i++) {
				int has = es_u64map_get(&m, i << 20, &v);
				ck_assert_int_eq(has, val[i] != 0);
				if (has)
					ck_assert_uint_eq(v, val[i]);
			}
	}
	ck_assert_uint_eq(m.used, live);
	ck_assert_uint_le(m.used * 2, m.cap);
	ck_assert_uint_eq(es_u64map_bytes(&m), m.cap * sizeof(es_u64map_ent));
	es_u64map_destroy(&m);
	es_u64map_destroy(&m); /* twice is fine */
}
END_TEST

START_TEST(test_repeated_keys)
{
	es_u64map m;
	es_u64map_init(&m);
	for (uint64_t i = 0; i < 50; i++) {
		ck_assert_int_eq(es_u64map_put(&m, 7, i), 0);
		ck_assert_int_eq(es_u64map_put(&m, i + 100, i), 0);
	}
	int seen[50] = {0};
	size_t n = 0;
	for (size_t i = es_u64map_first(&m, 7); i != ES_U64MAP_END;
	     i = es_u64map_next(&m, 7, i)) {
		ck_assert_uint_lt(m.e[i].val, 50);
		seen[m.e[i].val]++;
		n++;
	}
	ck_assert_uint_eq(n, 50);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_int_eq(es_u64map_remove_entry(&m, 7, 33), 1);
	ck_assert_int_eq(es_u64map_remove_entry(&m, 7, 33), 0);
	ck_assert_int_eq(es_u64map_remove_entry(&m, 8, 1), 0);
	n = 0;
	for (size_t i = es_u64map_first(&m, 7); i != ES_U64MAP_END;
	     i = es_u64map_next(&m, 7, i)) {
		ck_assert_uint_ne(m.e[i].val, 33);
		n++;
	}
	ck_assert_uint_eq(n, 49);
	for (uint64_t i = 0; i < 50; i++) {
		uint64_t v;
		ck_assert_int_eq(es_u64map_get(&m, i + 100, &v), 1);
		ck_assert_uint_eq(v, i);
	}
	es_u64map_destroy(&m);
}
END_TEST

START_TEST(test_out_of_memory)
{
	es_u64map m;
	es_u64map_init(&m);
	for (uint64_t i = 0; i < 8; i++)
		ck_assert_int_eq(es_u64map_put(&m, i, i), 0);
	size_t cap = m.cap;
	es_alloc_fail_after(0);
	int rc = 0;
	uint64_t i = 8;
	for (; i < 1000 && rc == 0; i++)
		rc = es_u64map_put(&m, i, i);
	ck_assert_int_eq(es_alloc_fail_disarm(), 1);
	ck_assert_int_eq(rc, ES_ENOMEM);
	ck_assert_uint_eq(m.cap, cap);
	ck_assert_uint_eq(m.used, i - 1);
	for (uint64_t j = 0; j + 1 < i; j++) {
		uint64_t v;
		ck_assert_int_eq(es_u64map_get(&m, j, &v), 1);
	}
	ck_assert_int_eq(es_u64map_reserve(&m, (size_t)1 << 62), ES_ENOMEM);
	es_u64map_destroy(&m);
}
END_TEST

Suite *u64map_suite(void)
{
	Suite *s = suite_create("u64map");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_against_model);
	tcase_add_test(tc, test_repeated_keys);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	return s;
}
