/*
 * test_lexicon.c — the lexicon reader: kinds, words, comments and
 * separators; every kind of bad line is an error naming its line.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lexicon.h"
#include "tokenize.h"

static es_lexicon *parse_ok(const char *text)
{
	es_lexicon *lx = NULL;
	es_error err = {0};
	ck_assert_msg(es_lexicon_parse(text, strlen(text), "t", &lx, &err) == 0,
		      "%s", err.msg);
	return lx;
}

START_TEST(test_parse_good)
{
	es_lexicon *lx = parse_ok(
		"# comment\n"
		"\n"
		"syn car auto automobile\n"
		"   \t\n"
		"rel\tdog  canine\tanimal\r\n"
		"ant hot cold\n"
		"syn café caffè"); /* no final newline */
	ck_assert_uint_eq(es_lexicon_groups(lx), 4);
	const char *const *w;
	size_t n;
	ck_assert_int_eq(es_lexicon_group(lx, 0, &w, &n), ES_LEX_SYN);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(w[0], "car");
	ck_assert_str_eq(w[2], "automobile");
	ck_assert_int_eq(es_lexicon_group(lx, 1, &w, &n), ES_LEX_REL);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(w[0], "dog");
	ck_assert_str_eq(w[1], "canine");
	ck_assert_str_eq(w[2], "animal"); /* '\r' is a separator */
	ck_assert_int_eq(es_lexicon_group(lx, 2, &w, &n), ES_LEX_ANT);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(w[1], "cold");
	ck_assert_int_eq(es_lexicon_group(lx, 3, &w, &n), ES_LEX_SYN);
	ck_assert_str_eq(w[1], "caffè");
	es_lexicon_free(lx);

	lx = parse_ok("");
	ck_assert_uint_eq(es_lexicon_groups(lx), 0);
	es_lexicon_free(lx);
	es_lexicon_free(NULL);
	ck_assert_str_eq(es_lex_kind_name(ES_LEX_ANT), "ant");
}
END_TEST

START_TEST(test_parse_bad_lines)
{
	char longw[ES_TOKEN_MAX + 32];
	memset(longw, 'a', sizeof longw);
	memcpy(longw, "syn b ", 6);
	longw[sizeof longw - 1] = '\0';
	struct { const char *text, *want; } bad[] = {
		{"syn a b\nsyns a b\n", "t:2: unknown relation 'syns' (expected syn, rel or ant)"},
		{"# c\n\nsyn a\n", "t:3: 'syn' needs at least two words"},
		{"ant hot\n", "t:1: 'ant' needs at least two words"},
		{"rel\n", "t:1: 'rel' needs at least two words"},
		{"syn a b\nsyn a \xc3\x28\n", "t:2: invalid UTF-8 (byte 7 of the line)"},
		{"syn a b\x01\n", "t:1: control character 0x01 (byte 8 of the line)"},
		{"SYN a b\n", "t:1: unknown relation 'SYN'"},
		{longw, "t:1: word 2 is"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		es_lexicon *lx = (es_lexicon *)1;
		es_error err = {0};
		ck_assert_int_eq(es_lexicon_parse(bad[i].text, strlen(bad[i].text), "t", &lx, &err),
				 ES_EINVAL);
		ck_assert_ptr_null(lx);
		ck_assert_msg(strstr(err.msg, bad[i].want) != NULL, "case %zu: got '%s'", i, err.msg);
	}
	/* a NUL inside a line */
	es_lexicon *lx;
	es_error err = {0};
	ck_assert_int_eq(es_lexicon_parse("syn a\0b c\n", 10, "t", &lx, &err), ES_EINVAL);
	ck_assert_msg(strstr(err.msg, "t:1: control character 0x00") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_load_file)
{
	char path[] = "/tmp/es_lexicon_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char *t = "syn a b\nrel c d e\nant x\n";
	ck_assert_int_eq(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	es_lexicon *lx;
	es_error err = {0};
	ck_assert_int_eq(es_lexicon_load(path, &lx, &err), ES_EINVAL);
	char want[64];
	snprintf(want, sizeof want, "%s:3: 'ant' needs", path);
	ck_assert_msg(strstr(err.msg, want) != NULL, "%s", err.msg);
	unlink(path);
	ck_assert_int_eq(es_lexicon_load(path, &lx, &err), ES_ENOTFOUND);
	ck_assert_int_eq(es_lexicon_load("/tmp", &lx, &err), ES_EINVAL);
}
END_TEST

Suite *lexicon_suite(void)
{
	Suite *s = suite_create("lexicon");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_bad_lines);
	tcase_add_test(tc, test_load_file);
	suite_add_tcase(s, tc);
	return s;
}
