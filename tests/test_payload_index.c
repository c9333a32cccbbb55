/* test_payload_index.c — index/payload_index against a plain model (random
 * adds and removes of (label, value) pairs, every term's collect checked
 * against a scan of the model), ranges with the "other" set, order_by's
 * sorted pairs, out of memory marking the index unusable; and the
 * collection's use of it: maintained by upsert / delete / payload update,
 * the planned search scoring only the candidates (the filter callback sees
 * no other point) with the same hits as the unplanned one, definitions
 * kept by save/load and rebuilt from the payloads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "collection.h"
#include "payload_index.h"

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static es_pval str_val(const char *s)
{
	es_pval v = {ES_PVAL_STR, s, strlen(s), 0};
	return v;
}

static es_pval int_val(int64_t i)
{
	es_pval v = {ES_PVAL_INT, NULL, 0, i};
	return v;
}

START_TEST(test_keyword_model)
{
	enum { L = 300, V = 9 };
	static const char *const names[V] = {"a", "b", "c", "dd", "", "e", "ff", "g", "h"};
	static unsigned char has[L][V];
	memset(has, 0, sizeof has);
	es_pindex *x;
	ck_assert_int_eq(es_pindex_new("tag", ES_PINDEX_KEYWORD, &x), 0);
	uint64_t s = 12345;
	for (int step = 0; step < 20000; step++) {
		uint64_t l = rng(&s) % L, v = rng(&s) % V;
		es_pval pv = str_val(names[v]);
		if (rng(&s) % 3) {
			es_pindex_add(x, l, &pv);
			has[l][v] = 1;
		} else {
			es_pindex_remove(x, l, &pv);
			has[l][v] = 0;
		}
		es_pval num = int_val(5); /* ignored by a keyword index */
		es_pindex_add(x, l, &num);
	}
	ck_assert(es_pindex_usable(x));
	for (int a = 0; a < V; a++)
		for (int b = 0; b < V; b++) {
			const char *strs[2] = {names[a], names[b]};
			size_t lens[2] = {strlen(names[a]), strlen(names[b])};
			es_pterm t = {"tag", ES_PINDEX_KEYWORD, 2, strs, lens, NULL, 0, 0, 0};
			uint64_t *got;
			size_t n;
			ck_assert_int_eq(es_pindex_collect(x, &t, &got, &n), 0);
			size_t k = 0;
			for (uint64_t l = 0; l < L; l++)
				if (has[l][a] || has[l][b]) {
					ck_assert_uint_lt(k, n);
					ck_assert_uint_eq(got[k], l); /* sorted, each once */
					k++;
				}
			ck_assert_uint_eq(k, n);
			ck_assert_uint_ge(es_pindex_estimate(x, &t), n);
			free(got);
		}
	size_t pts = 0;
	for (int l = 0; l < L; l++) {
		int any = 0;
		for (int v = 0; v < V; v++)
			any |= has[l][v];
		pts += any;
	}
	ck_assert_uint_eq(es_pindex_points(x, L), pts);
	/* remove everything: every posting leaves */
	for (uint64_t l = 0; l < L; l++)
		for (int v = 0; v < V; v++) {
			es_pval pv = str_val(names[v]);
			es_pindex_remove(x, l, &pv);
		}
	ck_assert_uint_eq(es_pindex_points(x, L), 0);
	es_pindex_free(x);
}
END_TEST

START_TEST(test_integer_ranges)
{
	es_pindex *x;
	ck_assert_int_eq(es_pindex_new("n", ES_PINDEX_INTEGER, &x), 0);
	for (uint64_t l = 0; l < 100; l++) {
		es_pval v = int_val((int64_t)l % 10 - 5);
		es_pindex_add(x, l, &v);
	}
	es_pval other = {ES_PVAL_NUM, NULL, 0, 0};
	es_pindex_add(x, 200, &other);
	es_pval s = str_val("x"); /* ignored */
	es_pindex_add(x, 201, &s);
	es_pterm t = {"n", ES_PINDEX_INTEGER, 0, NULL, NULL, NULL, 1, -1, 1};
	uint64_t *got;
	size_t n;
	ck_assert(es_pindex_answers(x, &t));
	ck_assert_int_eq(es_pindex_collect(x, &t, &got, &n), 0);
	ck_assert_uint_eq(n, 31); /* 3 values x 10 labels + the "other" one */
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_lt(got[i - 1], got[i]);
	ck_assert_uint_eq(got[n - 1], 200);
	free(got);
	int64_t ints[2] = {-5, 4};
	es_pterm eq = {"n", ES_PINDEX_INTEGER, 2, NULL, NULL, ints, 0, 0, 0};
	ck_assert_int_eq(es_pindex_collect(x, &eq, &got, &n), 0);
	ck_assert_uint_eq(n, 20);
	free(got);
	es_pterm wrong = {"m", ES_PINDEX_INTEGER, 2, NULL, NULL, ints, 0, 0, 0};
	ck_assert(!es_pindex_answers(x, &wrong));
	/* order_by: sorted by value, then label; descending reverses it */
	int64_t *pairs;
	ck_assert_int_eq(es_pindex_sorted(x, 0, &pairs, &n), 0);
	ck_assert_uint_eq(n, 100);
	ck_assert_int_eq(pairs[0], -5);
	ck_assert_int_eq(pairs[1], 0);
	for (size_t i = 1; i < n; i++)
		ck_assert(pairs[2 * (i - 1)] < pairs[2 * i] ||
			  (pairs[2 * (i - 1)] == pairs[2 * i] && pairs[2 * i - 1] < pairs[2 * i + 1]));
	free(pairs);
	ck_assert_int_eq(es_pindex_sorted(x, 1, &pairs, &n), 0);
	ck_assert_int_eq(pairs[0], 4);
	ck_assert_int_eq(pairs[1], 99);
	free(pairs);
	ck_assert_uint_eq(es_pindex_points(x, 1000), 101);
	es_pindex_free(x);
}
END_TEST

START_TEST(test_oom_marks_unusable)
{
	es_pindex *x;
	ck_assert_int_eq(es_pindex_new("tag", ES_PINDEX_KEYWORD, &x), 0);
	es_pval v = str_val("a");
	es_alloc_countdown = 1; /* the next allocation fails */
	es_pindex_add(x, 1, &v);
	es_alloc_countdown = 0;
	ck_assert(!es_pindex_usable(x));
	es_pindex_free(x);
	es_error err;
	ck_assert_int_eq(es_pindex_check("", ES_PINDEX_KEYWORD, &err), ES_EINVAL);
	ck_assert_int_eq(es_pindex_check("a\nb", ES_PINDEX_KEYWORD, &err), ES_EINVAL);
	ck_assert_int_eq(es_pindex_check("a", 9, &err), ES_EINVAL);
	ck_assert_int_eq(es_pindex_check("a.b", ES_PINDEX_INTEGER, &err), 0);
	es_pindex_kind k;
	ck_assert_int_eq(es_pindex_kind_parse("integer", &k), 0);
	ck_assert_int_eq(k, ES_PINDEX_INTEGER);
	ck_assert_int_eq(es_pindex_kind_parse("geo", &k), -1);
}
END_TEST

/* --- the collection's use ------------------------------------------------ */

/* Payloads here are "word" bytes; the field "w" is that word. */
static void *p_parse(const char *p, size_t n)
{
	return es_strndup(p, n);
}

static void p_extract(const void *parsed, const char *path,
		      void (*emit)(void *ctx, const es_pval *v), void *ctx)
{
	if (strcmp(path, "w") != 0)
		return;
	es_pval v = str_val(parsed);
	emit(ctx, &v);
}

static void *op_compile(const char *op, size_t n)
{
	return es_strndup(op, n);
}

static int op_apply(const void *op, const char *old, size_t oldlen, char **out, size_t *outlen)
{
	(void)old;
	(void)oldlen;
	*out = strdup(op);
	*outlen = strlen(op);
	return 0;
}

typedef struct fcount {
	int calls;
	const char *want;
} fcount;

static int word_filter(void *ctx, const es_point_view *p)
{
	fcount *f = ctx;
	f->calls++;
	return p->parsed && strcmp(p->parsed, f->want) == 0;
}

/* planned: 0 no plan, 1 a plan, 2 an exact plan (no filter calls needed) */
static size_t search_w(es_collection *c, const char *w, int planned, int *calls,
		       uint64_t *ids, size_t k)
{
	static const float q[4] = {1, 0.5f, 0.25f, 0};
	const char *strs[1] = {w};
	size_t lens[1] = {strlen(w)};
	es_pterm t = {"w", ES_PINDEX_KEYWORD, 1, strs, lens, NULL, 0, 0, 0};
	es_pquery plan = {&t, 1, planned == 2};
	fcount f = {0, w};
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.mode = ES_SEARCH_DENSE;
	rq.query = q;
	rq.k = (uint32_t)k;
	rq.ef = 2000; /* the graph walk is exact too on this size */
	rq.filter = word_filter;
	rq.filter_ctx = &f;
	rq.plan = planned ? &plan : NULL;
	es_point_out *hits;
	size_t nh;
	es_error err;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	for (size_t i = 0; i < nh; i++)
		ids[i] = hits[i].id.num;
	es_hits_free(hits, nh);
	*calls = f.calls;
	return nh;
}

static void same_hits(es_collection *c, const char *w, int max_calls)
{
	uint64_t a[20], b[20];
	int ca, cb;
	size_t na = search_w(c, w, 1, &ca, a, 20), nb = search_w(c, w, 0, &cb, b, 20);
	ck_assert_uint_eq(na, nb);
	for (size_t i = 0; i < na; i++)
		ck_assert_uint_eq(a[i], b[i]);
	if (max_calls >= 0)
		ck_assert_int_le(ca, max_calls); /* only the candidates were looked at */
	/* an exact plan: the same hits without evaluating the filter, also
	 * when fewer hits than candidates are kept (the bounded heap) */
	for (size_t k = 1; k <= 20; k += 6) {
		na = search_w(c, w, 2, &ca, a, k);
		nb = search_w(c, w, 0, &cb, b, k);
		ck_assert_uint_eq(na, nb);
		for (size_t i = 0; i < na; i++)
			ck_assert_uint_eq(a[i], b[i]);
		if (max_calls >= 0)
			ck_assert_int_eq(ca, 0);
	}
}

START_TEST(test_collection_planned)
{
	es_error err;
	es_registry *r;
	es_payload_hooks hooks = {p_parse, free, op_compile, op_apply, free, p_extract};
	ck_assert_int_eq(es_registry_new(&hooks, &r, &err), 0);
	es_collection_params p;
	memset(&p, 0, sizeof p);
	p.dim = 4;
	p.metric = ES_METRIC_COSINE;
	es_collection *c;
	ck_assert_int_eq(es_registry_create(r, "pc", &p, &c, &err), 0);
	enum { N = 1000 };
	static es_point_in in[N];
	static float v[N][4];
	static char words[N][8];
	uint64_t s = 99;
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < 4; j++)
			v[i][j] = (float)(rng(&s) % 1000) / 500.0f - 0.9f;
		snprintf(words[i], sizeof words[i], "w%d", i % 50);
		in[i] = (es_point_in){{0, (uint64_t)i, NULL, 0}, v[i], words[i], strlen(words[i]),
				      NULL, 0};
	}
	ck_assert_int_eq(es_collection_upsert(c, in, N, &err), 0);
	ck_assert_int_eq(es_collection_create_index(c, "w", ES_PINDEX_KEYWORD, &err), 0);
	ck_assert_int_eq(es_collection_create_index(c, "w", ES_PINDEX_KEYWORD, &err), 0);
	es_index_info *info;
	size_t ni;
	ck_assert_int_eq(es_collection_list_indexes(c, &info, &ni), 0);
	ck_assert_uint_eq(ni, 1);
	ck_assert_str_eq(info[0].field, "w");
	ck_assert_uint_eq(info[0].points, N);
	es_index_info_free(info);
	same_hits(c, "w7", 20);
	same_hits(c, "none", 0);

	/* writes keep it exact: delete, update payloads, re-upsert */
	es_point_id del[5];
	for (int i = 0; i < 5; i++)
		del[i] = (es_point_id){0, (uint64_t)(7 + 50 * i), NULL, 0};
	ck_assert_int_eq(es_collection_delete(c, del, 5, NULL, &err), 0);
	es_point_id up[3] = {{0, 8, NULL, 0}, {0, 9, NULL, 0}, {0, 57, NULL, 0}};
	ck_assert_int_eq(es_collection_update_payload(c, "w7", 2, up, 3, NULL, &err), 0);
	ck_assert_int_eq(es_collection_upsert(c, in + 7, 1, &err), 0); /* back, new label */
	same_hits(c, "w7", 20);
	same_hits(c, "w8", 20);

	/* the definitions survive save/load; the contents are rebuilt */
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(es_collection_save(c, f, NULL, NULL, &err), 0);
	rewind(f);
	es_collection *c2;
	ck_assert_int_eq(es_collection_load(f, "pc2", &hooks, &c2, &err), 0);
	fclose(f);
	ck_assert_int_eq(es_collection_list_indexes(c2, &info, &ni), 0);
	ck_assert_uint_eq(ni, 1);
	ck_assert_uint_eq(info[0].points, es_collection_count(c));
	es_index_info_free(info);
	same_hits(c2, "w7", 20);
	ck_assert_int_eq(es_collection_drop_index(c2, "w", &err), 0);
	ck_assert_int_eq(es_collection_drop_index(c2, "w", &err), ES_ENOTFOUND);
	same_hits(c2, "w7", -1); /* no index: the plan is ignored */
	es_collection_release(c2);

	ck_assert_int_eq(es_collection_create_index(c, "bad\x01", ES_PINDEX_KEYWORD, &err),
			 ES_EINVAL);
	es_collection_release(c);
	es_registry_free(r);
	/* without extract hooks: refused */
	ck_assert_int_eq(es_registry_new(NULL, &r, &err), 0);
	ck_assert_int_eq(es_registry_create(r, "np", &p, &c, &err), 0);
	ck_assert_int_eq(es_collection_create_index(c, "w", ES_PINDEX_KEYWORD, &err),
			 ES_EUNSUPPORTED);
	es_collection_release(c);
	es_registry_free(r);
}
END_TEST

Suite *payload_index_suite(void)
{
	Suite *s = suite_create("payload_index");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_keyword_model);
	tcase_add_test(tc, test_integer_ranges);
	tcase_add_test(tc, test_oom_marks_unusable);
	tcase_add_test(tc, test_collection_planned);
	suite_add_tcase(s, tc);
	return s;
}
