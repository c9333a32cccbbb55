/*
 * test_eval_retrieval.c — the metrics of `embedsrv eval retrieval`
 * (cli/eval_retrieval.h) against values worked out by hand, and the same
 * definitions as bench/lexical/cisi.py.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>

#include "eval_retrieval.h"

START_TEST(metrics_by_hand)
{
	const char *docs[] = {"a", "b", "c"};
	const int rel[] = {1, 2, 0};
	es_judged j = {docs, rel, 3};
	/* b at rank 1, x at 2, a at 3 */
	const char *ranked[] = {"b", "x", "a"};
	double nd, ap, rec;
	ck_assert_int_eq(es_retrieval_metrics(ranked, 3, &j, &nd, &ap, &rec), 0);
	double dcg = 2 / log2(2) + 1 / log2(4), idcg = 2 / log2(2) + 1 / log2(3);
	ck_assert_double_eq_tol(nd, dcg / idcg, 1e-12);
	ck_assert_double_eq_tol(ap, (1.0 / 1 + 2.0 / 3) / 2, 1e-12);
	ck_assert_double_eq_tol(rec, 1.0, 1e-12);
	/* nothing found */
	const char *none[] = {"x", "y"};
	ck_assert_int_eq(es_retrieval_metrics(none, 2, &j, &nd, &ap, &rec), 0);
	ck_assert(nd == 0 && ap == 0 && rec == 0);
	/* only c (relevance 0): the query does not count */
	const int zero[] = {0, 0, 0};
	es_judged z = {docs, zero, 3};
	ck_assert_int_eq(es_retrieval_metrics(ranked, 3, &z, &nd, &ap, &rec), -1);
}
END_TEST

START_TEST(cutoffs)
{
	/* one relevant document at rank 11 and one at 101 */
	static char names[120][8];
	const char *ranked[120];
	for (int i = 0; i < 120; i++) {
		snprintf(names[i], sizeof names[i], "d%d", i);
		ranked[i] = names[i];
	}
	const char *docs[] = {"d10", "d100"};
	const int rel[] = {1, 1};
	es_judged j = {docs, rel, 2};
	double nd, ap, rec;
	ck_assert_int_eq(es_retrieval_metrics(ranked, 120, &j, &nd, &ap, &rec), 0);
	ck_assert(nd == 0);                        /* rank 11 is past 10 */
	ck_assert_double_eq_tol(ap, (1.0 / 11) / 2, 1e-12); /* rank 101 past 100 */
	ck_assert_double_eq_tol(rec, 0.5, 1e-12);
}
END_TEST

Suite *eval_retrieval_suite(void)
{
	Suite *s = suite_create("eval_retrieval");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, metrics_by_hand);
	tcase_add_test(tc, cutoffs);
	suite_add_tcase(s, tc);
	return s;
}
