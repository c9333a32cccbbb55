/*
 * test_tokenize.c — the shared word tokenizer: UTF-8 validation, splitting,
 * lowercasing, joiners, long words, source offsets.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tokenize.h"

/* Tokenize s and join the tokens with '|' into out. */
static void toks(const char *s, char *out, size_t cap)
{
	es_tokenizer t;
	char buf[ES_TOKEN_MAX + 1];
	size_t n, used = 0;
	es_tokenizer_init(&t, s, strlen(s));
	out[0] = '\0';
	while ((n = es_tokenizer_next(&t, buf, NULL, NULL)) > 0) {
		ck_assert_uint_eq(strlen(buf), n);
		used += (size_t)snprintf(out + used, cap - used, "%s%s",
					 used ? "|" : "", buf);
		ck_assert_uint_lt(used, cap);
	}
}

#define CHECK_TOKS(in, want)                                                   \
	do {                                                                   \
		char got_[2048];                                               \
		toks(in, got_, sizeof got_);                                   \
		ck_assert_str_eq(got_, want);                                  \
	} while (0)

START_TEST(test_utf8_valid)
{
	size_t bad = 99;
	ck_assert_int_eq(es_utf8_valid("", 0, &bad), 1);
	ck_assert_int_eq(es_utf8_valid("héllo wörld €𝄞", strlen("héllo wörld €𝄞"), &bad), 1);
	ck_assert_int_eq(es_utf8_valid("ab\xff", 3, &bad), 0);
	ck_assert_uint_eq(bad, 2);
	ck_assert_int_eq(es_utf8_valid("a\xc3", 2, &bad), 0); /* truncated */
	ck_assert_uint_eq(bad, 1);
	ck_assert_int_eq(es_utf8_valid("\xc0\xaf", 2, &bad), 0); /* overlong */
	ck_assert_uint_eq(bad, 0);
	ck_assert_int_eq(es_utf8_valid("x\xed\xa0\x80", 4, &bad), 0); /* surrogate */
	ck_assert_uint_eq(bad, 1);
	ck_assert_int_eq(es_utf8_valid("\xf4\x90\x80\x80", 4, &bad), 0); /* > U+10FFFF */
	ck_assert_int_eq(es_utf8_valid("\x80", 1, NULL), 0);
	ck_assert_int_eq(es_utf8_valid("a\0b", 3, NULL), 1);
}
END_TEST

START_TEST(test_split_and_lower)
{
	CHECK_TOKS("Hello, World!", "hello|world");
	CHECK_TOKS("  multiple   spaces\tand\nnewlines  ", "multiple|spaces|and|newlines");
	CHECK_TOKS("", "");
	CHECK_TOKS("... !!! ---", "");
	CHECK_TOKS("x_y 3.14 a/b", "x|y|3|14|a|b");
	CHECK_TOKS("ÀÉÎÕÜ Þorn ÇA", "àéîõü|þorn|ça");
	/* U+00D7 is a separator, U+00DF (ß) and ÿ pass through */
	CHECK_TOKS("2×3 Straße ÿ", "2|3|straße|ÿ");
	/* non-Latin letters are word characters, not lowercased */
	CHECK_TOKS("Привет мир", "Привет|мир");
	CHECK_TOKS("日本語。テスト", "日本語|テスト");
	CHECK_TOKS("«quoted» “smart” — dash", "quoted|smart|dash");
	CHECK_TOKS("café😀bar", "café|bar");
}
END_TEST

START_TEST(test_joiners)
{
	CHECK_TOKS("Don't stop", "don't|stop");
	CHECK_TOKS("don\xe2\x80\x99t", "don't"); /* U+2019 normalised */
	CHECK_TOKS("well-known state\xe2\x80\x90of-the-art", "well-known|state-of-the-art");
	CHECK_TOKS("'quoted' rock'n'roll", "quoted|rock'n'roll");
	CHECK_TOKS("a--b a-'b -x y- z'", "a|b|a|b|x|y|z");
	CHECK_TOKS("end-", "end");
	CHECK_TOKS("it's-", "it's");
}
END_TEST

START_TEST(test_invalid_bytes_separate)
{
	CHECK_TOKS("ab\xff" "cd", "ab|cd");
	CHECK_TOKS("\xc3", "");
	CHECK_TOKS("\xe2\x82", "");
	CHECK_TOKS("x\xc3", "x");
}
END_TEST

START_TEST(test_offsets)
{
	const char *s = "  Héllo, don't";
	es_tokenizer t;
	char buf[ES_TOKEN_MAX + 1];
	size_t off, len;
	es_tokenizer_init(&t, s, strlen(s));
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, &off, &len), 6);
	ck_assert_str_eq(buf, "héllo");
	ck_assert_uint_eq(off, 2);
	ck_assert_uint_eq(len, 6);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, &off, &len), 5);
	ck_assert_uint_eq(off, 10);
	ck_assert_uint_eq(len, 5);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, &off, &len), 0);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 0);
}
END_TEST

START_TEST(test_not_nul_terminated)
{
	const char s[] = {'a', 'b', ' ', 'c', 'd'};
	es_tokenizer t;
	char buf[ES_TOKEN_MAX + 1];
	es_tokenizer_init(&t, s, 4);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 2);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 1);
	ck_assert_str_eq(buf, "c");
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 0);
}
END_TEST

START_TEST(test_long_word)
{
	/* 300 x "é" (2 bytes each) then " ok": cut at 256 bytes, rest skipped */
	char s[700];
	size_t n = 0;
	for (int i = 0; i < 300; i++) {
		s[n++] = (char)0xC3;
		s[n++] = (char)0x89; /* É -> é */
	}
	memcpy(s + n, " ok", 4);
	es_tokenizer t;
	char buf[ES_TOKEN_MAX + 1];
	size_t off, len;
	es_tokenizer_init(&t, s, strlen(s));
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, &off, &len), 256);
	ck_assert_int_eq(es_utf8_valid(buf, 256, NULL), 1);
	ck_assert_uint_eq((unsigned char)buf[0], 0xC3);
	ck_assert_uint_eq((unsigned char)buf[1], 0xA9);
	ck_assert_uint_eq(len, 600);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 2);
	ck_assert_str_eq(buf, "ok");

	/* odd cut: 255 ASCII then a 2-byte char: token is 255 bytes */
	memset(s, 'a', 255);
	s[255] = (char)0xC3;
	s[256] = (char)0xA9;
	s[257] = '\0';
	es_tokenizer_init(&t, s, strlen(s));
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 255);
	ck_assert_uint_eq(es_tokenizer_next(&t, buf, NULL, NULL), 0);
}
END_TEST

Suite *tokenize_suite(void)
{
	Suite *s = suite_create("tokenize");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_utf8_valid);
	tcase_add_test(tc, test_split_and_lower);
	tcase_add_test(tc, test_joiners);
	tcase_add_test(tc, test_invalid_bytes_separate);
	tcase_add_test(tc, test_offsets);
	tcase_add_test(tc, test_not_nul_terminated);
	tcase_add_test(tc, test_long_word);
	suite_add_tcase(s, tc);
	return s;
}
