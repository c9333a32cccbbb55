/* test_filter.c — the payload filter (server/filter.c): every condition,
 * every clause, dotted keys and arrays, and the parser's errors. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* Does the filter (JSON text) match the payload (JSON text, or NULL for
 * none) of a point with integer id `id`? */
static int m_id(const char *filter, const char *payload, uint64_t id)
{
	json_t *fj = json_loads(filter, 0, NULL);
	ck_assert_msg(fj != NULL, "bad test filter %s", filter);
	api_filter *f;
	ju_err e;
	memset(&e, 0, sizeof e);
	int rc = api_filter_parse(fj, "filter", &f, &e);
	ck_assert_msg(rc == 0, "filter %s: %s", filter, e.msg);
	json_decref(fj);
	json_t *pl = payload ? json_loads(payload, 0, NULL) : NULL;
	ck_assert(!payload || pl);
	es_point_view v;
	memset(&v, 0, sizeof v);
	v.id.num = id;
	v.parsed = pl;
	int r = api_filter_match(f, &v);
	json_decref(pl);
	api_filter_free(f);
	return r;
}

static int m(const char *filter, const char *payload)
{
	return m_id(filter, payload, 1);
}

/* Parse must fail with this status and a param containing `param`. */
static void bad(const char *filter, int status, const char *param)
{
	json_t *fj = json_loads(filter, 0, NULL);
	ck_assert_msg(fj != NULL, "bad test filter %s", filter);
	api_filter *f = (api_filter *)1;
	ju_err e;
	memset(&e, 0, sizeof e);
	ck_assert_msg(api_filter_parse(fj, "filter", &f, &e) != 0, "accepted %s", filter);
	ck_assert_ptr_null(f);
	ck_assert_msg(e.status == status, "%s: status %d (%s)", filter, e.status, e.msg);
	ck_assert_msg(strstr(e.param, param) != NULL, "%s: param '%s', want '%s'", filter,
		      e.param, param);
	json_decref(fj);
}

START_TEST(test_match_value)
{
	const char *pl = "{\"lang\":\"en\",\"n\":1,\"ok\":true,\"tags\":[\"a\",\"b\"]}";
	ck_assert(m("{\"must\":[{\"key\":\"lang\",\"match\":\"en\"}]}", pl));
	ck_assert(!m("{\"must\":[{\"key\":\"lang\",\"match\":\"fr\"}]}", pl));
	ck_assert(m("{\"must\":[{\"key\":\"lang\",\"match\":{\"value\":\"en\"}}]}", pl));
	ck_assert(m("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":1.0}}]}", pl));
	ck_assert(m("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":true}}]}", pl));
	ck_assert(!m("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":1}}]}", pl)); /* bool != 1 */
	ck_assert(m("{\"must\":[{\"key\":\"tags\",\"match\":\"b\"}]}", pl)); /* any element */
	ck_assert(!m("{\"must\":[{\"key\":\"missing\",\"match\":\"b\"}]}", pl));
	ck_assert(!m("{\"must\":[{\"key\":\"lang\",\"match\":\"en\"}]}", NULL));
}
END_TEST

START_TEST(test_match_any_except)
{
	const char *pl = "{\"c\":\"red\",\"tags\":[\"a\",\"b\"],\"e\":[],\"z\":null}";
	ck_assert(m("{\"must\":{\"key\":\"c\",\"match\":{\"any\":[\"blue\",\"red\"]}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"c\",\"match\":{\"any\":[\"blue\"]}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"c\",\"match\":{\"any\":[]}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"tags\",\"match\":{\"any\":[\"x\",\"b\"]}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"c\",\"match\":{\"except\":[\"blue\"]}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"c\",\"match\":{\"except\":[\"blue\",\"red\"]}}}", pl));
	/* an array matches except when some element is outside the list */
	ck_assert(m("{\"must\":{\"key\":\"tags\",\"match\":{\"except\":[\"a\"]}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"tags\",\"match\":{\"except\":[\"a\",\"b\"]}}}", pl));
	/* missing, [] and null hold none of the list */
	ck_assert(m("{\"must\":{\"key\":\"nope\",\"match\":{\"except\":[\"a\"]}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"e\",\"match\":{\"except\":[\"a\"]}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"z\",\"match\":{\"except\":[\"a\"]}}}", pl));
}
END_TEST

START_TEST(test_match_text)
{
	const char *pl = "{\"t\":\"the quick brown fox\",\"n\":5,\"a\":[\"xx\",\"hello world\"]}";
	ck_assert(m("{\"must\":{\"key\":\"t\",\"match\":{\"text\":\"quick\"}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"t\",\"match\":{\"text\":\"k bro\"}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"t\",\"match\":{\"text\":\"slow\"}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"n\",\"match\":{\"text\":\"5\"}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"a\",\"match\":{\"text\":\"world\"}}}", pl));
}
END_TEST

START_TEST(test_range)
{
	const char *pl = "{\"p\":10,\"f\":2.5,\"s\":\"10\",\"xs\":[1,20]}";
	ck_assert(m("{\"must\":{\"key\":\"p\",\"range\":{\"gte\":10,\"lt\":11}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"p\",\"range\":{\"gt\":10}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"p\",\"range\":{\"lte\":10}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"p\",\"range\":{\"lt\":10}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"f\",\"range\":{\"gt\":2,\"lt\":3,\"gte\":null}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"s\",\"range\":{\"gte\":0}}}", pl)); /* not a number */
	ck_assert(m("{\"must\":{\"key\":\"xs\",\"range\":{\"gt\":15}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"xs\",\"range\":{\"gt\":25}}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"p\",\"range\":{}}}", pl)); /* any number */
	ck_assert(!m("{\"must\":{\"key\":\"nope\",\"range\":{}}}", pl));
}
END_TEST

START_TEST(test_is_empty_is_null)
{
	const char *pl = "{\"e\":[],\"z\":null,\"v\":1,\"a\":[1],\"an\":[null],\"o\":{}}";
	ck_assert(m("{\"must\":{\"is_empty\":{\"key\":\"e\"}}}", pl));
	ck_assert(m("{\"must\":{\"is_empty\":{\"key\":\"z\"}}}", pl));
	ck_assert(m("{\"must\":{\"is_empty\":{\"key\":\"missing\"}}}", pl));
	ck_assert(m("{\"must\":{\"is_empty\":{\"key\":\"an\"}}}", pl));
	ck_assert(!m("{\"must\":{\"is_empty\":{\"key\":\"v\"}}}", pl));
	ck_assert(!m("{\"must\":{\"is_empty\":{\"key\":\"a\"}}}", pl));
	ck_assert(!m("{\"must\":{\"is_empty\":{\"key\":\"o\"}}}", pl));
	ck_assert(m("{\"must\":{\"is_empty\":{\"key\":\"x\"}}}", NULL));
	ck_assert(m("{\"must\":{\"is_null\":{\"key\":\"z\"}}}", pl));
	ck_assert(!m("{\"must\":{\"is_null\":{\"key\":\"e\"}}}", pl));
	ck_assert(!m("{\"must\":{\"is_null\":{\"key\":\"missing\"}}}", pl));
	ck_assert(!m("{\"must\":{\"is_null\":{\"key\":\"v\"}}}", pl));
}
END_TEST

START_TEST(test_has_id)
{
	ck_assert(m_id("{\"must\":{\"has_id\":[3,7]}}", "{}", 7));
	ck_assert(!m_id("{\"must\":{\"has_id\":[3,7]}}", "{}", 8));
	ck_assert(!m_id("{\"must\":{\"has_id\":[]}}", "{}", 8));
	ck_assert(m_id("{\"must_not\":{\"has_id\":[3]}}", NULL, 8));
	/* a string id */
	json_t *fj = json_loads("{\"should\":[{\"has_id\":[\"doc-1\", 5]}]}", 0, NULL);
	api_filter *f;
	ju_err e;
	ck_assert_int_eq(api_filter_parse(fj, "filter", &f, &e), 0);
	es_point_view v;
	memset(&v, 0, sizeof v);
	v.id.is_str = 1;
	v.id.str = "doc-1";
	v.id.len = 5;
	ck_assert(api_filter_match(f, &v));
	v.id.str = "doc-2";
	ck_assert(!api_filter_match(f, &v));
	v.id.is_str = 0;
	v.id.num = 5;
	ck_assert(api_filter_match(f, &v));
	api_filter_free(f);
	json_decref(fj);
}
END_TEST

START_TEST(test_dotted_keys)
{
	const char *pl = "{\"metadata\":{\"source\":\"web\",\"n\":{\"d\":3}},"
			 "\"items\":[{\"k\":\"a\",\"v\":1},{\"k\":\"b\",\"v\":2}]}";
	ck_assert(m("{\"must\":{\"key\":\"metadata.source\",\"match\":\"web\"}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"metadata.n.d\",\"range\":{\"gte\":3}}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"metadata.source.x\",\"match\":\"web\"}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"items.k\",\"match\":\"b\"}}", pl));
	ck_assert(m("{\"must\":{\"key\":\"items[].k\",\"match\":\"b\"}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"items[].k\",\"match\":\"c\"}}", pl));
	/* nested: both conditions on the same element */
	ck_assert(m("{\"must\":{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":["
		    "{\"key\":\"k\",\"match\":\"b\"},{\"key\":\"v\",\"match\":2}]}}}}", pl));
	ck_assert(!m("{\"must\":{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":["
		     "{\"key\":\"k\",\"match\":\"b\"},{\"key\":\"v\",\"match\":1}]}}}}", pl));
	/* ...whereas flat keys may match different elements */
	ck_assert(m("{\"must\":[{\"key\":\"items.k\",\"match\":\"b\"},"
		    "{\"key\":\"items.v\",\"match\":1}]}", pl));
}
END_TEST

START_TEST(test_clauses)
{
	const char *pl = "{\"a\":1,\"b\":2,\"c\":3}";
	ck_assert(m("{}", pl));
	ck_assert(m("{\"must\":[]}", pl));
	ck_assert(m("{\"should\":[]}", pl));
	ck_assert(m("{\"should\":[{\"key\":\"a\",\"match\":9},{\"key\":\"b\",\"match\":2}]}", pl));
	ck_assert(!m("{\"should\":[{\"key\":\"a\",\"match\":9},{\"key\":\"b\",\"match\":9}]}", pl));
	ck_assert(!m("{\"must_not\":[{\"key\":\"a\",\"match\":9},{\"key\":\"b\",\"match\":2}]}", pl));
	ck_assert(m("{\"must_not\":{\"key\":\"a\",\"match\":9}}", pl));
	ck_assert(!m("{\"must\":{\"key\":\"a\",\"match\":1},\"must_not\":{\"key\":\"c\",\"match\":3}}",
		     pl));
	/* min_should */
	const char *two = "{\"min_should\":{\"conditions\":[{\"key\":\"a\",\"match\":1},"
			  "{\"key\":\"b\",\"match\":9},{\"key\":\"c\",\"match\":3}],\"min_count\":2}}";
	const char *three = "{\"min_should\":{\"conditions\":[{\"key\":\"a\",\"match\":1},"
			    "{\"key\":\"b\",\"match\":9},{\"key\":\"c\",\"match\":3}],\"min_count\":3}}";
	ck_assert(m(two, pl));
	ck_assert(!m(three, pl));
	ck_assert(m("{\"min_should\":{\"conditions\":[],\"min_count\":0}}", pl));
	/* nested filters: a condition that is a filter */
	ck_assert(m("{\"must\":[{\"should\":[{\"key\":\"a\",\"match\":9},{\"key\":\"a\",\"match\":1}]},"
		    "{\"must_not\":{\"key\":\"b\",\"match\":9}}]}", pl));
	ck_assert(!m("{\"must\":[{\"should\":[{\"key\":\"a\",\"match\":9},{\"key\":\"a\",\"match\":8}]}]}",
		     pl));
	ck_assert(m("{\"must_not\":[{\"must\":[{\"key\":\"a\",\"match\":1},{\"key\":\"b\",\"match\":9}]}]}",
		    pl));	/* {} as a condition is the empty filter (every accepted filter is an
	 * accepted condition; found by fuzz_filter's must_not invariant) */
	ck_assert(m("{\"must\":[{}]}", pl));
	ck_assert(!m("{\"must_not\":[{}]}", pl));
	ck_assert(m("{\"should\":{}}", pl));
}
END_TEST

START_TEST(test_parse_errors)
{
	bad("[]", 400, "filter");
	bad("{\"shall\":[]}", 400, "filter");
	bad("{\"must\":3}", 400, "filter.must");
	bad("{\"must\":[{\"key\":\"lang\"}]}", 400, "filter.must[0]");
	bad("{\"must\":[{\"match\":\"x\"}]}", 400, "filter.must[0]");
	bad("{\"must\":[{\"key\":\"\",\"match\":\"x\"}]}", 400, "filter.must[0]");
	bad("{\"must\":[{\"key\":\"a\",\"match\":\"x\",\"range\":{}}]}", 400, "filter.must[0]");
	bad("{\"must\":[{\"key\":\"a\",\"match\":[1]}]}", 400, "filter.must[0].match");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":[1]}}]}", 400, "match.value");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"any\":\"x\"}}]}", 400, "match.any");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"any\":[{}]}}]}", 400, "match.any");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"except\":[[1]]}}]}", 400, "match.except");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"text\":1}}]}", 400, "match.text");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1,\"any\":[1]}}]}", 400, "match");
	bad("{\"must\":[{\"key\":\"a\",\"match\":{\"valu\":1}}]}", 400, "match");
	bad("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":\"1\"}}]}", 400, "range");
	bad("{\"must\":[{\"key\":\"a\",\"range\":{\"between\":1}}]}", 400, "range");
	bad("{\"must\":[{\"key\":\"a\",\"range\":5}]}", 400, "range");
	bad("{\"must\":{\"has_id\":5}}", 400, "has_id");
	bad("{\"must\":{\"has_id\":[-1]}}", 422, "has_id[0]");
	bad("{\"must\":{\"has_id\":[1.5]}}", 422, "has_id[0]");
	bad("{\"must\":{\"is_empty\":\"a\"}}", 400, "is_empty");
	bad("{\"must\":{\"is_null\":{\"key\":1}}}", 400, "is_null");
	bad("{\"must\":{\"is_null\":{\"key\":\"a\",\"x\":1}}}", 400, "is_null");
	bad("{\"must\":{\"nested\":{\"key\":\"a\"}}}", 400, "nested.filter");
	bad("{\"must\":{\"nested\":{\"key\":\"a\",\"filter\":[]}}}", 400, "nested.filter");
	bad("{\"min_should\":[1]}", 400, "min_should");
	bad("{\"min_should\":{\"conditions\":[]}}", 400, "min_should");
	bad("{\"min_should\":{\"conditions\":[],\"min_count\":-1}}", 400, "min_should");
	bad("{\"min_should\":{\"conditions\":{},\"min_count\":1}}", 400, "min_should.conditions");
	bad("{\"must\":[{\"must\":[{\"key\":\"a\",\"match\":{}}]}]}", 400, "filter.must[0].must[0]");
	/* too many conditions in all */
	size_t n = API_FILTER_MAX_CONDS + 1;
	char *big = malloc(n * 40 + 32);
	char *p = big + sprintf(big, "{\"should\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s{\"key\":\"a\",\"match\":%zu}", i ? "," : "", i);
	strcpy(p, "]}");
	bad(big, 422, "filter");
	free(big);
	/* null: no filter */
	api_filter *f = (api_filter *)1;
	ju_err e;
	ck_assert_int_eq(api_filter_parse(json_null(), "filter", &f, &e), 0);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(api_filter_parse(NULL, "filter", &f, &e), 0);
	ck_assert_ptr_null(f);
	es_point_view v;
	memset(&v, 0, sizeof v);
	ck_assert(api_filter_match(NULL, &v));
}
END_TEST

START_TEST(test_filter_outlives_json)
{
	/* the filter keeps its own reference to the JSON it borrows from */
	json_t *fj = json_loads("{\"must\":{\"key\":\"k\",\"match\":\"v\"}}", 0, NULL);
	api_filter *f;
	ju_err e;
	ck_assert_int_eq(api_filter_parse(fj, "filter", &f, &e), 0);
	json_decref(fj);
	json_t *pl = json_loads("{\"k\":\"v\"}", 0, NULL);
	es_point_view v;
	memset(&v, 0, sizeof v);
	v.parsed = pl;
	ck_assert(api_filter_fn(f, &v));
	json_decref(pl);
	api_filter_free(f);
}
END_TEST

/* The index plan of a filter: how many terms, and whether it is exact
 * (the filter is its one equality / any term: no evaluation needed). */
static void plan_is(const char *filter, size_t nterms, int exact)
{
	json_t *fj = json_loads(filter, 0, NULL);
	ck_assert_msg(fj != NULL, "bad test filter %s", filter);
	api_filter *f;
	ju_err e;
	ck_assert_int_eq(api_filter_parse(fj, "filter", &f, &e), 0);
	json_decref(fj);
	const es_pquery *q = api_filter_plan(f);
	ck_assert_msg((q ? q->n : 0) == nterms, "%s: %zu terms", filter, q ? q->n : 0);
	ck_assert_msg((q && q->exact) == exact, "%s: exact %d", filter, q && q->exact);
	api_filter_free(f);
}

START_TEST(test_plan_exact)
{
	plan_is("{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"v\"}}]}", 1, 1);
	plan_is("{\"must\":{\"key\":\"k\",\"match\":\"v\"}}", 1, 1);
	plan_is("{\"should\":[{\"key\":\"k\",\"match\":{\"any\":[\"a\",\"b\"]}}]}", 1, 1);
	plan_is("{\"must\":[{\"must\":[{\"key\":\"a.b\",\"match\":{\"value\":7}}]}]}", 1, 1);
	/* a range is a superset; other clauses decide too */
	plan_is("{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":1}}]}", 1, 0);
	plan_is("{\"must\":[{\"key\":\"k\",\"match\":\"v\"},"
		"{\"key\":\"j\",\"match\":\"w\"}]}", 2, 0);
	plan_is("{\"must\":[{\"key\":\"k\",\"match\":\"v\"}],"
		"\"must_not\":[{\"key\":\"j\",\"match\":\"w\"}]}", 1, 0);
	plan_is("{\"must\":[{\"key\":\"k\",\"match\":\"v\"},"
		"{\"key\":\"t\",\"match\":{\"text\":\"w\"}}]}", 1, 0);
	plan_is("{\"must\":[{\"key\":\"k\",\"match\":\"v\"}],"
		"\"min_should\":{\"conditions\":[],\"min_count\":1}}", 1, 0);
	plan_is("{\"should\":[{\"key\":\"k\",\"match\":\"v\"},"
		"{\"key\":\"j\",\"match\":\"w\"}]}", 0, 0);
	plan_is("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":true}}]}", 0, 0);
}
END_TEST

Suite *filter_suite(void)
{
	Suite *s = suite_create("filter");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_match_value);
	tcase_add_test(tc, test_match_any_except);
	tcase_add_test(tc, test_match_text);
	tcase_add_test(tc, test_range);
	tcase_add_test(tc, test_is_empty_is_null);
	tcase_add_test(tc, test_has_id);
	tcase_add_test(tc, test_dotted_keys);
	tcase_add_test(tc, test_clauses);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_filter_outlives_json);
	tcase_add_test(tc, test_plan_exact);
	suite_add_tcase(s, tc);
	return s;
}
