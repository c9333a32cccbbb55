/*
 * test_eval.c — gensim-semantics evaluation: statistics by hand, the
 * analogy and pairs rules on hand-made files, and every section's numbers
 * on the fixtures against tests/data/gensim_ref.txt (produced once by
 * tests/tools/gensim_ref.py, a numpy transliteration of gensim's code).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encoder.h"
#include "es_test.h"
#include "eval.h"
#include "model.h"

START_TEST(test_stats_by_hand)
{
	double x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 6, 8, 10}, z[] = {5, 4, 3, 2, 1};
	ck_assert_double_eq_tol(es_pearson(x, y, 5), 1, 1e-12);
	ck_assert_double_eq_tol(es_pearson(x, z, 5), -1, 1e-12);
	ck_assert_double_eq_tol(es_spearman(x, z, 5), -1, 1e-12);
	/* ties: x ranks 1, 2.5, 2.5, 4; y ranks 1, 2, 3, 4 */
	double a[] = {1, 2, 2, 3}, b[] = {10, 20, 30, 40};
	double ra[] = {1, 2.5, 2.5, 4}, rb[] = {1, 2, 3, 4};
	ck_assert_double_eq_tol(es_spearman(a, b, 4), es_pearson(ra, rb, 4), 1e-12);
	/* pearson by hand: x = 1,2,3 y = 1,3,2 -> r = 0.5 */
	double p[] = {1, 2, 3}, q[] = {1, 3, 2};
	ck_assert_double_eq_tol(es_pearson(p, q, 3), 0.5, 1e-12);
	ck_assert(isnan(es_pearson(p, q, 1)));
	double c[] = {2, 2, 2};
	ck_assert(isnan(es_pearson(c, q, 3)));
}
END_TEST

START_TEST(test_upper)
{
	char out[64];
	ck_assert_uint_eq(es_eval_upper("athens", 6, out), 6);
	ck_assert_str_eq(out, "ATHENS");
	es_eval_upper("café straße ÿ", strlen("café straße ÿ"), out);
	ck_assert_str_eq(out, "CAFÉ STRASSE Ÿ");
	es_eval_upper("мир÷", strlen("мир÷"), out);
	ck_assert_str_eq(out, "мир÷");
}
END_TEST

/* A tiny model where the analogy answers are known. */
static es_encoder *toy(void)
{
	/* dims: royalty, gender(female +), person */
	const char *words[] = {"man", "woman", "king", "queen", "prince", "Paris", "paris", "apple"};
	float v[] = {0, -1, 1,   0, 1, 1,   1, -1, 1,   1, 1, 1,
		     0.9f, -0.3f, 0.8f,   0, 0, -1,   0.1f, 0.1f, -1,   -1, 0, 0};
	es_model_params p = {.dim = 3};
	es_model *m;
	ck_assert_int_eq(es_model_from_arrays(&p, 8, words, NULL, v, NULL, &m, NULL), 0);
	es_encoder *e;
	ck_assert_int_eq(es_encoder_from_model(m, "toy", &e, NULL), 0);
	return e;
}

static const char *write_tmp(const char *content)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/es_eval_XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

START_TEST(test_analogy_rules)
{
	es_encoder *e = toy();
	const char *f = write_tmp(
		": royal\n"
		"man woman king queen\n"     /* correct */
		"MAN Woman KING Queen\n"     /* case-insensitive: correct */
		"man woman king prince\n"    /* wrong answer */
		"man woman king unicorn\n"   /* OOV: skipped */
		"too few words\n"            /* invalid: not counted */
		": empty\n"
		": other\n"
		"woman man queen king\n");   /* correct */
	es_analogy_result r;
	es_error err = {0};
	ck_assert_int_eq(es_eval_analogy(e, f, 0, 1, ES_ANALOGY_3COSADD, &r, &err), 0);
	ck_assert_uint_eq(r.nsections, 3);
	ck_assert_str_eq(r.sections[0].name, "royal");
	ck_assert_uint_eq(r.sections[0].correct, 2);
	ck_assert_uint_eq(r.sections[0].incorrect, 1);
	ck_assert_uint_eq(r.sections[1].correct + r.sections[1].incorrect, 0);
	ck_assert_uint_eq(r.sections[2].correct, 1);
	ck_assert_uint_eq(r.correct, 3);
	ck_assert_uint_eq(r.incorrect, 1);
	ck_assert_uint_eq(r.quadruplets, 5);
	ck_assert_uint_eq(r.oov, 1);
	ck_assert_double_eq_tol(es_eval_accuracy(r.correct, r.incorrect), 0.75, 1e-12);
	es_analogy_result_free(&r);
	/* restrict_vocab 3: queen (id 3) is outside, so that line is OOV */
	ck_assert_int_eq(es_eval_analogy(e, f, 3, 1, ES_ANALOGY_3COSADD, &r, &err), 0);
	ck_assert_uint_eq(r.correct + r.incorrect, 0);
	es_analogy_result_free(&r);
	unlink(f);
	f = write_tmp("man woman king queen\n");
	ck_assert_int_eq(es_eval_analogy(e, f, 0, 1, ES_ANALOGY_3COSADD, &r, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "section"));
	unlink(f);
	ck_assert_int_eq(es_eval_analogy(e, "/no/such/file", 0, 1, ES_ANALOGY_3COSADD, &r, &err), ES_ENOTFOUND);
	es_encoder_free(e);
}
END_TEST

START_TEST(test_pairs_rules)
{
	es_encoder *e = toy();
	const char *f = write_tmp(
		"# comment\n"
		"man\twoman\t1.0\n"
		"king\tqueen\t 3.5 \r\n"
		"KING\tPRINCE\t9\n"
		"man\tunicorn\t2\n"          /* OOV */
		"man woman 3\n"              /* not tab-separated: skipped */
		"a\tb\tc\td\n"               /* 4 fields: skipped */
		"man\tking\tx\n"             /* not a number: skipped */
		"\n");
	es_pairs_result r;
	es_error err = {0};
	ck_assert_int_eq(es_eval_pairs(e, f, 0, 1, &r, &err), 0);
	ck_assert_uint_eq(r.pairs, 3);
	ck_assert_uint_eq(r.oov, 1);
	ck_assert_double_eq_tol(r.oov_ratio, 25.0, 1e-9);
	/* model similarities: cos(man,woman)=0, cos(king,queen)=1/3,
	 * cos(king,prince) = (0.9+0.3+0.8)/(sqrt3*sqrt(1.54)) */
	double gold[] = {1, 3.5, 9};
	double model[] = {0, 1.0 / 3.0, 2.0 / (sqrt(3.0) * sqrt(0.81 + 0.09 + 0.64))};
	ck_assert_double_eq_tol(r.pearson, es_pearson(gold, model, 3), 1e-6);
	ck_assert_double_eq_tol(r.spearman, 1.0, 1e-12);
	unlink(f);
	f = write_tmp("x\ty\t1\n");
	ck_assert_int_eq(es_eval_pairs(e, f, 0, 1, &r, &err), ES_EINVAL);
	unlink(f);
	es_encoder_free(e);
}
END_TEST

/* Compare with the recorded gensim-semantics reference. */
START_TEST(test_fixtures_match_gensim_reference)
{
	char path[512], ref[512], q[512], ws[512];
	es_test_path(ref, sizeof ref, "tests/data/gensim_ref.txt");
	es_test_path(q, sizeof q, "tests/data/questions-words.txt");
	es_test_path(ws, sizeof ws, "tests/data/wordsim353.tsv");
	FILE *f = fopen(ref, "r");
	ck_assert_ptr_nonnull(f);
	char model[128] = "", method[16] = "", line[512];
	es_encoder *e = NULL;
	es_analogy_result r = {0};
	int checked = 0;
	while (fgets(line, sizeof line, f)) {
		char m[128], meth[16], kind[32], name[128];
		double a, b;
		long long c1, c2;
		ck_assert_int_ge(sscanf(line, "%127s %15s %31s", m, meth, kind), 3);
		if (strcmp(m, model) || strcmp(meth, method)) {
			es_analogy_result_free(&r);
			es_encoder_free(e);
			snprintf(model, sizeof model, "%s", m);
			snprintf(method, sizeof method, "%s", meth);
			char rel[256];
			snprintf(rel, sizeof rel, "tests/data/%s", m);
			es_error err = {0};
			ck_assert_int_eq(es_encoder_open(es_test_path(path, sizeof path, rel), NULL, &e, &err), 0);
			ck_assert_int_eq(es_eval_analogy(e, q, 0, 1,
							 (es_analogy_method)es_analogy_method_parse(meth),
							 &r, &err), 0);
		}
		if (!strcmp(kind, "analogy")) {
			ck_assert_int_eq(sscanf(line, "%*s %*s %*s %127s %lld %lld", name, &c1, &c2), 3);
			if (!strcmp(name, "Total_accuracy")) {
				ck_assert_uint_eq(r.correct, (size_t)c1);
				ck_assert_uint_eq(r.correct + r.incorrect, (size_t)c2);
			} else {
				size_t i;
				for (i = 0; i < r.nsections; i++)
					if (!strcmp(r.sections[i].name, name))
						break;
				ck_assert_msg(i < r.nsections, "section %s", name);
				ck_assert_msg(r.sections[i].correct == (size_t)c1 &&
					      r.sections[i].correct + r.sections[i].incorrect == (size_t)c2,
					      "%s %s %s: ours %zu/%zu gensim %lld/%lld", m, meth, name,
					      r.sections[i].correct,
					      r.sections[i].correct + r.sections[i].incorrect, c1, c2);
			}
		} else if (!strcmp(kind, "analogy_oov")) {
			ck_assert_int_eq(sscanf(line, "%*s %*s %*s %lld %lld", &c1, &c2), 2);
			ck_assert_uint_eq(r.oov, (size_t)c1);
			ck_assert_uint_eq(r.quadruplets, (size_t)c2);
		} else if (!strcmp(kind, "pairs")) {
			ck_assert_int_eq(sscanf(line, "%*s %*s %*s %lf %lf %lld %lld", &a, &b, &c1, &c2), 4);
			es_pairs_result p;
			ck_assert_int_eq(es_eval_pairs(e, ws, 0, 1, &p, NULL), 0);
			ck_assert_msg(fabs(p.pearson - a) < 5e-5 && fabs(p.spearman - b) < 5e-5,
				      "%s: pearson %.6f/%.6f spearman %.6f/%.6f", m, p.pearson, a,
				      p.spearman, b);
			ck_assert_uint_eq(p.pairs, (size_t)c1);
			ck_assert_uint_eq(p.oov, (size_t)c2);
		}
		checked++;
	}
	ck_assert_int_gt(checked, 50);
	es_analogy_result_free(&r);
	es_encoder_free(e);
	fclose(f);
}
END_TEST

/* STS: the toy model's sentence cosines, ranked against gold scores. */
START_TEST(test_sts_rules)
{
	es_encoder *e = toy();
	/* gold follows the cosines: king~queen > king~prince? computed below */
	const char *pairs[][2] = {{"king", "queen"}, {"king", "prince"},
				  {"man", "apple"}, {"queen", "woman"},
				  {"paris", "apple"}};
	double cos[5];
	float a[3], b[3];
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(es_encoder_encode(e, pairs[i][0], strlen(pairs[i][0]), 0, a, NULL, NULL), 0);
		ck_assert_int_eq(es_encoder_encode(e, pairs[i][1], strlen(pairs[i][1]), 0, b, NULL, NULL), 0);
		cos[i] = (double)a[0] * b[0] + (double)a[1] * b[1] + (double)a[2] * b[2];
	}
	/* gold scores: 4, 3, 1, 2.5, 0 plus an extra column (ignored) and a
	 * pair whose second sentence has no known word (cosine 0) */
	const char *f = write_tmp(
		"g\tf\t2012\t1\t4.0\tking\tqueen\n"
		"g\tf\t2012\t2\t3\tking\tprince\textra\tcolumns\n"
		"\n"
		"g\tf\t2012\t3\t1.0\tman\tapple\n"
		"g\tf\t2012\t4\t2.5\tqueen\twoman\r\n"
		"g\tf\t2012\t5\t0.0\tparis\tapple\n"
		"g\tf\t2012\t6\t0.5\tking\tzzzz qqqq\n");
	es_sts_result r;
	es_error err = {0};
	ck_assert_int_eq(es_eval_sts(e, f, NULL, &r, &err), 0);
	ck_assert_uint_eq(r.pairs, 6);
	ck_assert_uint_eq(r.empty, 1);
	double gold[] = {4, 3, 1, 2.5, 0, 0.5}, c6[6];
	memcpy(c6, cos, sizeof cos);
	c6[5] = 0;
	ck_assert_double_eq_tol(r.spearman, es_spearman(gold, c6, 6), 1e-12);
	ck_assert_double_eq_tol(r.pearson, es_pearson(gold, c6, 6), 1e-6);
	unlink(f);

	/* bad lines name the line */
	struct { const char *text, *want; } bad[] = {
		{"g\tf\t2012\t1\t4.0\tking\tqueen\ng\tf\t2012\t2\t3\tking\n", ":2: expected 7 tab-separated fields"},
		{"g\tf\t2012\t1\tfour\tking\tqueen\n", ":1: score 'four' is not a number"},
		{"g\tf\t2012\t1\t\tking\tqueen\n", ":1: score field is not a number"},
		{"\ng\tf\t2012\t1\t1\tki\xffng\tqueen\n", ":2: invalid UTF-8"},
		{"g\tf\t2012\t1\tnan\tking\tqueen\n", ":1: score 'nan' is not a number"},
		{"g\tf\t2012\t1\t1\tking\tqueen\n", "1 sentence pairs; need at least 2"},
		{"", "0 sentence pairs"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		es_sts_pairs sp;
		es_error e2 = {0};
		ck_assert_int_eq(es_sts_parse(bad[i].text, strlen(bad[i].text), "x.tsv", &sp, &e2), ES_EINVAL);
		ck_assert_msg(strstr(e2.msg, bad[i].want) && !strncmp(e2.msg, "x.tsv", 5),
			      "case %zu: %s", i, e2.msg);
		ck_assert_ptr_null(sp.sents);
	}
	ck_assert_int_eq(es_eval_sts(e, "/nonexistent/sts.tsv", NULL, &r, &err), ES_ENOTFOUND);
	es_encoder_free(e);
}
END_TEST

Suite *eval_suite(void)
{
	Suite *s = suite_create("eval");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stats_by_hand);
	tcase_add_test(tc, test_upper);
	tcase_add_test(tc, test_analogy_rules);
	tcase_add_test(tc, test_pairs_rules);
	tcase_add_test(tc, test_sts_rules);
	tcase_add_test(tc, test_fixtures_match_gensim_reference);
	suite_add_tcase(s, tc);
	return s;
}
