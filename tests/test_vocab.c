/*
 * test_vocab.c — word <-> id table: add, find, counts, growth, views.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "vocab.h"

START_TEST(test_add_find)
{
	es_vocab *v = es_vocab_new();
	ck_assert_ptr_nonnull(v);
	uint32_t id;
	int added;
	ck_assert_int_eq(es_vocab_add(v, "hello", 5, 3, &id, &added, NULL), 0);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(added, 1);
	ck_assert_int_eq(es_vocab_add(v, "world", 5, 2, &id, &added, NULL), 0);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(es_vocab_add(v, "hello", 5, 4, &id, &added, NULL), 0);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(added, 0);
	ck_assert_uint_eq(es_vocab_count(v, 0), 7);
	ck_assert_uint_eq(es_vocab_total(v), 9);
	ck_assert_int_eq(es_vocab_find(v, "hello", 5), 0);
	ck_assert_int_eq(es_vocab_find(v, "hell", 4), -1);
	ck_assert_int_eq(es_vocab_find(v, "helloo", 6), -1);
	ck_assert_str_eq(es_vocab_word(v, 1), "world");
	ck_assert_uint_eq(es_vocab_word_len(v, 1), 5);
	es_vocab_set_count(v, 1, 10);
	ck_assert_uint_eq(es_vocab_total(v), 17);
	es_error err = {0};
	ck_assert_int_eq(es_vocab_add(v, "", 0, 1, NULL, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(es_vocab_add(v, "a\0b", 3, 1, NULL, NULL, &err), ES_EINVAL);
	es_vocab_free(v);
	es_vocab_free(NULL);
}
END_TEST

START_TEST(test_growth)
{
	es_vocab *v = es_vocab_new();
	char w[32];
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(w, sizeof w, "w%d", i);
		uint32_t id;
		ck_assert_int_eq(es_vocab_add(v, w, (size_t)n, (uint64_t)i, &id, NULL, NULL), 0);
		ck_assert_uint_eq(id, (uint32_t)i);
	}
	ck_assert_uint_eq(es_vocab_size(v), 100000);
	for (int i = 0; i < 100000; i += 7) {
		int n = snprintf(w, sizeof w, "w%d", i);
		ck_assert_int_eq(es_vocab_find(v, w, (size_t)n), i);
		ck_assert_str_eq(es_vocab_word(v, (uint32_t)i), w);
	}
	ck_assert_int_eq(es_vocab_find(v, "w100000", 7), -1);
	es_vocab_free(v);
}
END_TEST

START_TEST(test_view)
{
	es_vocab *v = es_vocab_new();
	es_vocab_add(v, "a", 1, 5, NULL, NULL, NULL);
	es_vocab_add(v, "bc", 2, 6, NULL, NULL, NULL);
	const uint64_t *offs, *counts;
	const char *blob;
	const uint32_t *slots;
	uint64_t cap;
	es_vocab_arrays(v, &offs, &blob, &counts, &slots, &cap);
	es_vocab *w;
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, slots, cap, &w, NULL), 0);
	ck_assert_int_eq(es_vocab_find(w, "bc", 2), 1);
	ck_assert_uint_eq(es_vocab_total(w), 11);
	ck_assert_int_eq(es_vocab_add(w, "x", 1, 1, NULL, NULL, NULL), ES_EINVAL);
	es_vocab_set_count(w, 0, 99); /* no-op on a view */
	ck_assert_uint_eq(es_vocab_count(w, 0), 5);
	es_vocab_free(w);
	/* hostile slots: ids out of range, table with no empty slot, bad size */
	uint32_t bad[4] = {77, 3, 9, 1000};
	es_error err;
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, bad, 4, &w, &err), ES_ECORRUPT);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, bad, 3, &w, NULL), ES_ECORRUPT);
	/* found by tests/fuzz: tables that do not index their words were
	 * accepted, and then no word could be looked up */
	uint32_t t[8];
	ck_assert_uint_eq(cap, 64);
	memset(t, 0, sizeof t);
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, t, 8, &w, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "indexes 0 of 2"));
	uint64_t ha = es_vocab_hash("a", 1) & 7, hb = es_vocab_hash("bc", 2) & 7;
	t[ha] = 1;
	t[hb == ha ? (hb + 1) & 7 : hb] = 2;
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, t, 8, &w, &err), 0);
	ck_assert_int_eq(es_vocab_find(w, "a", 1), 0);
	ck_assert_int_eq(es_vocab_find(w, "bc", 2), 1);
	es_vocab_free(w);
	memset(t, 0, sizeof t);
	t[(ha + 2) & 7] = 1; /* an empty slot between "a"'s home and "a" */
	t[hb == ((ha + 2) & 7) ? (hb + 1) & 7 : hb] = 2;
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, t, 8, &w, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "cannot reach"));
	memset(t, 0, sizeof t);
	t[ha] = 1;
	t[(ha + 1) & 7] = 1; /* the same word twice, the other missing */
	ck_assert_int_eq(es_vocab_view(2, offs, blob, counts, t, 8, &w, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "in another slot too"));
	es_vocab_free(v);
}
END_TEST

Suite *vocab_suite(void)
{
	Suite *s = suite_create("vocab");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_add_find);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_view);
	suite_add_tcase(s, tc);
	return s;
}
