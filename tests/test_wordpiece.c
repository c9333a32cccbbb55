/*
 * test_wordpiece.c — the BERT tokenizer against Hugging Face's ids for the
 * 20 awkward sentences of tests/data/bert-tiny/reference.json (accents, CJK,
 * emoji, URLs, tabs, a 128+-token text, empty strings), plus focused cases:
 * greedy longest match, [UNK] for long words, literal special tokens,
 * invalid UTF-8, and options read from tokenizer_config.json alone.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es_test.h"
#include "wordpiece.h"

static json_t *load_reference(void)
{
	char p[512];
	json_error_t jerr;
	es_test_path(p, sizeof p, "tests/data/bert-tiny/reference.json");
	json_t *r = json_load_file(p, 0, &jerr);
	ck_assert_msg(r != NULL, "%s: %s", p, jerr.text);
	return r;
}

static void check_folder(const char *rel)
{
	char dir[512];
	es_wordpiece *wp;
	es_error err;
	es_test_path(dir, sizeof dir, rel);
	ck_assert_msg(es_wordpiece_open(dir, &wp, &err) == 0, "%s", err.msg);
	json_t *ref = load_reference();
	json_t *sents = json_object_get(ref, "sentences");
	json_t *ids = json_object_get(ref, "input_ids");
	json_t *toks = json_object_get(ref, "tokens");
	uint32_t maxlen = (uint32_t)json_integer_value(json_object_get(ref, "max_seq_length"));
	ck_assert_uint_eq(json_array_size(sents), 20);
	for (size_t i = 0; i < json_array_size(sents); i++) {
		const char *s = json_string_value(json_array_get(sents, i));
		json_t *want = json_array_get(ids, i);
		int32_t *got;
		uint32_t n, total;
		ck_assert_int_eq(es_wordpiece_encode(wp, s, strlen(s), maxlen, &got, &n,
						     &total, &err), 0);
		ck_assert_msg(n == json_array_size(want),
			      "sentence %zu: %u ids, reference has %zu", i, n,
			      json_array_size(want));
		for (uint32_t k = 0; k < n; k++) {
			int32_t w = (int32_t)json_integer_value(json_array_get(want, k));
			const char *wt = json_string_value(json_array_get(json_array_get(toks, i), k));
			ck_assert_msg(got[k] == w, "sentence %zu token %u: id %d (%s), want %d (%s)",
				      i, k, got[k], es_wordpiece_token(wp, got[k]), w, wt);
			ck_assert_str_eq(es_wordpiece_token(wp, got[k]), wt);
		}
		ck_assert(total >= n);
		free(got);
	}
	json_decref(ref);
	es_wordpiece_free(wp);
}

START_TEST(test_reference_hf)
{
	check_folder("tests/data/bert-tiny/hf");
}
END_TEST

START_TEST(test_reference_st)
{
	check_folder("tests/data/bert-tiny/st-mean");
}
END_TEST

static es_wordpiece *small(int lowercase)
{
	const char *v[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
			   "##able", "unaff", "##a", "a", "b", "##b", ",", "hello",
			   "world", "!", "cafe", "##ble", "i", "\xcc\x87" /* U+0307 */};
	es_wordpiece_opts o;
	es_wordpiece_opts_default(&o);
	o.lowercase = lowercase;
	es_wordpiece *wp;
	es_error err;
	ck_assert_int_eq(es_wordpiece_new(v, sizeof v / sizeof v[0], &o, &wp, &err), 0);
	return wp;
}

/* Tokenize and compare with a space-separated list of expected tokens. */
static void expect(es_wordpiece *wp, const char *text, const char *want)
{
	int32_t *ids;
	size_t n;
	es_error err;
	ck_assert_int_eq(es_wordpiece_tokenize(wp, text, strlen(text), &ids, &n, &err), 0);
	char buf[1024] = "";
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(buf, " ");
		strcat(buf, es_wordpiece_token(wp, ids[i]));
	}
	ck_assert_msg(strcmp(buf, want) == 0, "'%s' -> '%s', want '%s'", text, buf, want);
	free(ids);
}

START_TEST(test_greedy_longest_match)
{
	es_wordpiece *wp = small(1);
	expect(wp, "unaffable", "unaff ##able");  /* longest first piece wins */
	expect(wp, "UnAffAble!", "unaff ##able !");
	expect(wp, "unaffablex", "[UNK]");        /* not fully covered: whole word */
	expect(wp, "Hello,world", "hello , world");
	expect(wp, "Café\tcafe\u00a0CAFÉ", "cafe cafe cafe");
	expect(wp, "", "");
	expect(wp, " \t\r\n ", "");
	expect(wp, "a\x01" "b", "a ##b");          /* control characters vanish */
	expect(wp, "\xc4\xb0", "i");               /* U+0130: NFD + drop mark */
	char longw[202];
	memset(longw, 'a', 201);
	longw[201] = 0;
	expect(wp, longw, "[UNK]");
	expect(wp, "a [MASK] b[SEP]", "a [MASK] b [SEP]"); /* literal specials */
	es_wordpiece_free(wp);
	/* without lowercasing, accents are kept and U+0130 lowercases nowhere */
	wp = small(0);
	expect(wp, "Hello", "[UNK]");
	expect(wp, "cafe café", "cafe [UNK]");
	es_wordpiece_free(wp);
}
END_TEST

START_TEST(test_invalid_utf8_and_truncation)
{
	es_wordpiece *wp = small(1);
	int32_t *ids;
	size_t n;
	uint32_t m, total;
	es_error err;
	ck_assert_int_eq(es_wordpiece_tokenize(wp, "a\xff" "b", 3, &ids, &n, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "invalid UTF-8 at byte 1"));
	ck_assert_int_eq(es_wordpiece_tokenize(wp, "\xe2\x82", 2, &ids, &n, &err), ES_EINVAL);
	ck_assert_int_eq(es_wordpiece_encode(wp, "a b a b a", 9, 4, &ids, &m, &total, &err), 0);
	ck_assert_uint_eq(m, 4);
	ck_assert_uint_eq(total, 7);
	ck_assert_int_eq(ids[0], es_wordpiece_cls_id(wp));
	ck_assert_str_eq(es_wordpiece_token(wp, ids[1]), "a");
	ck_assert_str_eq(es_wordpiece_token(wp, ids[2]), "b");
	ck_assert_int_eq(ids[3], es_wordpiece_sep_id(wp));
	free(ids);
	ck_assert_int_eq(es_wordpiece_encode(wp, "a", 1, 1, &ids, &m, &total, &err), ES_EINVAL);
	ck_assert(es_wordpiece_is_special(wp, es_wordpiece_cls_id(wp)));
	ck_assert(!es_wordpiece_is_special(wp, 5));
	ck_assert_int_eq(es_wordpiece_id(wp, "##able", 6), 7);
	ck_assert_int_eq(es_wordpiece_id(wp, "##abl", 5), -1);
	es_wordpiece_free(wp);
}
END_TEST

/* A folder with only vocab.txt + tokenizer_config.json (no tokenizer.json). */
START_TEST(test_config_only_folder)
{
	char dir[] = "/tmp/es_wp_XXXXXX", p[512], src[512], cmd[2048];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	es_test_path(src, sizeof src, "tests/data/bert-tiny/hf/vocab.txt");
	snprintf(cmd, sizeof cmd, "cp '%s' '%s/vocab.txt'", src, dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
	FILE *f = fopen(p, "w");
	fputs("{\"do_lower_case\": false, \"tokenize_chinese_chars\": true}", f);
	fclose(f);
	es_wordpiece *wp;
	es_error err;
	ck_assert_msg(es_wordpiece_open(dir, &wp, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(es_wordpiece_options(wp)->lowercase, 0);
	ck_assert_uint_eq(es_wordpiece_vocab_size(wp), 2628);
	expect(wp, "the The", "the [UNK]");
	es_wordpiece_free(wp);
	/* a broken tokenizer.json is reported with its name */
	snprintf(p, sizeof p, "%s/tokenizer.json", dir);
	f = fopen(p, "w");
	fputs("{\"model\": ", f);
	fclose(f);
	ck_assert_int_eq(es_wordpiece_open(dir, &wp, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "tokenizer.json"));
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(es_wordpiece_open("/nonexistent/dir", &wp, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "vocab.txt"));
}
END_TEST

Suite *wordpiece_suite(void)
{
	Suite *s = suite_create("wordpiece");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_reference_hf);
	tcase_add_test(tc, test_reference_st);
	tcase_add_test(tc, test_greedy_longest_match);
	tcase_add_test(tc, test_invalid_utf8_and_truncation);
	tcase_add_test(tc, test_config_only_folder);
	suite_add_tcase(s, tc);
	return s;
}
