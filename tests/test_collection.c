/*
 * test_collection.c — collections and the registry: ids, upsert all-or-
 * nothing, get/delete, search with filters and thresholds, the observer,
 * reference counting, foreach; the commit queue (a change is visible only
 * once its observer returned, changes apply in placement order, a change
 * whose log sync failed is never applied, snapshots see where the queue
 * stands), also under many threads.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "collection.h"

static es_collection_params params(uint32_t dim, es_metric m)
{
	es_collection_params p;
	memset(&p, 0, sizeof p);
	p.dim = dim;
	p.metric = m;
	return p;
}

static es_point_id num_id(uint64_t v)
{
	es_point_id id = {0, v, NULL, 0};
	return id;
}

static es_point_id str_id(const char *s)
{
	es_point_id id = {1, 0, s, strlen(s)};
	return id;
}

START_TEST(test_id_rules)
{
	es_error err;
	es_point_id a = str_id("doc-1");
	ck_assert_int_eq(es_point_id_check(&a, &err), 0);
	es_point_id b = str_id("123");
	ck_assert_int_eq(es_point_id_check(&b, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "integer 123"));
	es_point_id c = str_id("");
	ck_assert_int_eq(es_point_id_check(&c, &err), ES_EINVAL);
	es_point_id t;
	es_point_id_from_text("42", 2, &t);
	ck_assert(!t.is_str && t.num == 42);
	es_point_id_from_text("18446744073709551615", 20, &t);
	ck_assert(!t.is_str && t.num == UINT64_MAX);
	es_point_id_from_text("18446744073709551616", 20, &t);
	ck_assert(t.is_str);
	es_point_id_from_text("doc-8", 5, &t);
	ck_assert(t.is_str && t.len == 5);
	ck_assert_int_eq(es_collection_name_check("good_name-1.x", &err), 0);
	ck_assert_int_eq(es_collection_name_check("bad/name", &err), ES_EINVAL);
	ck_assert_int_eq(es_collection_name_check(".hidden", &err), ES_EINVAL);
	ck_assert_int_eq(es_collection_name_check("", &err), ES_EINVAL);
}
END_TEST

START_TEST(test_upsert_get_delete)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(3, ES_METRIC_COSINE);
	ck_assert_int_eq(es_collection_new("t", &p, NULL, &c, &err), 0);
	float v[3][3] = {{1, 0, 0}, {0, 2, 0}, {0, 0, 3}};
	es_point_in in[3] = {
		{num_id(7), v[0], "{\"a\":1}", 7, NULL, 0},
		{str_id("doc-8"), v[1], NULL, 0, NULL, 0},
		{num_id(9), v[2], "{}", 2, NULL, 0},
	};
	ck_assert_int_eq(es_collection_upsert(c, in, 3, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 3);
	ck_assert_uint_gt(es_collection_memory_bytes(c), 0);

	es_point_out o;
	es_point_id q = str_id("doc-8");
	ck_assert_int_eq(es_collection_get(c, &q, 1, 1, &o, &err), 0);
	ck_assert(o.id.is_str);
	ck_assert_str_eq(o.id.str, "doc-8");
	ck_assert_ptr_null(o.payload);
	ck_assert_float_eq_tol(o.vector[1], 1.0f, 1e-6); /* stored normalised */
	es_point_out_free(&o);
	q = num_id(7);
	ck_assert_int_eq(es_collection_get(c, &q, 0, 1, &o, &err), 0);
	ck_assert_str_eq(o.payload, "{\"a\":1}");
	ck_assert_ptr_null(o.vector);
	es_point_out_free(&o);

	/* replace: same id, new payload */
	es_point_in up = {num_id(7), v[1], "{\"a\":2}", 7, NULL, 0};
	ck_assert_int_eq(es_collection_upsert(c, &up, 1, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 3);
	ck_assert_int_eq(es_collection_get(c, &q, 1, 1, &o, &err), 0);
	ck_assert_str_eq(o.payload, "{\"a\":2}");
	ck_assert_float_eq_tol(o.vector[1], 1.0f, 1e-6);
	es_point_out_free(&o);

	es_point_id del[3] = {num_id(7), str_id("nope"), num_id(9)};
	size_t nd = 0;
	ck_assert_int_eq(es_collection_delete(c, del, 3, &nd, &err), 0);
	ck_assert_uint_eq(nd, 2);
	ck_assert_uint_eq(es_collection_count(c), 1);
	ck_assert_int_eq(es_collection_get(c, &q, 0, 0, &o, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "no point with id 7"));
	/* re-insert a deleted id */
	ck_assert_int_eq(es_collection_upsert(c, &in[0], 1, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 2);
	es_collection_release(c);
}
END_TEST

START_TEST(test_upsert_all_or_nothing)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(2, ES_METRIC_COSINE);
	ck_assert_int_eq(es_collection_new("t", &p, NULL, &c, &err), 0);
	float good[2] = {1, 1}, nan[2] = {1, NAN}, zero[2] = {0, 0};
	es_point_in in[2] = {{num_id(1), good, NULL, 0, NULL, 0}, {num_id(2), nan, NULL, 0, NULL, 0}};
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "points[1]"));
	ck_assert_uint_eq(es_collection_count(c), 0);
	in[1].vector = zero;
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), ES_EINVAL);
	ck_assert_uint_eq(es_collection_count(c), 0);
	in[1].vector = good;
	in[1].id = str_id("77");
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), ES_EINVAL);
	ck_assert_uint_eq(es_collection_count(c), 0);
	/* duplicates in one batch: last wins */
	in[1].id = num_id(1);
	in[1].payload = "{\"v\":2}";
	in[1].payload_len = 7;
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 1);
	es_point_out o;
	es_point_id q = num_id(1);
	ck_assert_int_eq(es_collection_get(c, &q, 0, 1, &o, &err), 0);
	ck_assert_str_eq(o.payload, "{\"v\":2}");
	es_point_out_free(&o);
	es_collection_release(c);
}
END_TEST

/* Found by tests/fuzz (fuzz_wal, fuzz_snapshot): a vector of 3e38s entered
 * an int8 L2 collection, its float norm was inf, and the snapshot holding it
 * could not be read back, so the server would not start again. */
START_TEST(test_huge_vectors_refused)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(3, ES_METRIC_L2);
	p.quantize_int8 = 1;
	ck_assert_int_eq(es_collection_new("h", &p, NULL, &c, &err), 0);
	float huge[3] = {3e38f, 3e38f, 3e38f};
	float big[3] = {9e18f, 0, 0}; /* squared norm 8.1e37 < FLT_MAX / 4 */
	es_point_in in[1] = {{num_id(1), huge, NULL, 0, NULL, 0}};
	ck_assert_int_eq(es_collection_upsert(c, in, 1, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
	ck_assert_uint_eq(es_collection_count(c), 0);
	in[0].vector = big;
	ck_assert_int_eq(es_collection_upsert(c, in, 1, &err), 0);
	es_search_req req;
	memset(&req, 0, sizeof req);
	req.query = huge;
	req.k = 1;
	es_point_out *hits;
	size_t nh;
	ck_assert_int_eq(es_collection_search(c, &req, &hits, &nh, &err), ES_EINVAL);
	float minus[3] = {-9e18f, 0, 0};
	req.query = minus; /* the largest distance there is stays finite */
	ck_assert_int_eq(es_collection_search(c, &req, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert(isfinite(hits[0].score));
	es_hits_free(hits, nh);
	/* what was accepted saves and loads back */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(es_collection_save(c, f, NULL, NULL, &err), 0);
	fclose(f);
	f = fmemopen(buf, len, "rb");
	es_collection *back;
	ck_assert_msg(es_collection_load(f, "h", NULL, &back, &err) == 0, "%s", err.msg);
	fclose(f);
	ck_assert_uint_eq(es_collection_count(back), 1);
	es_collection_release(back);
	free(buf);
	es_collection_release(c);
}
END_TEST

/* Found by tests/fuzz (fuzz_snapshot): a snapshot whose index disagrees
 * with its header was reported with fields read from the freed index. */
START_TEST(test_load_index_mismatch)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(3, ES_METRIC_DOT);
	ck_assert_int_eq(es_collection_new("m", &p, NULL, &c, &err), 0);
	float v[3] = {1, 2, 3};
	es_point_in in[1] = {{num_id(4), v, NULL, 0, NULL, 0}};
	ck_assert_int_eq(es_collection_upsert(c, in, 1, &err), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(es_collection_save(c, f, NULL, NULL, &err), 0);
	fclose(f);
	es_collection_release(c);
	/* the header (after "ESCOLL01" and the version) says dim 5, int8 1 */
	const unsigned char dim5[4] = {5, 0, 0, 0}, one[4] = {1, 0, 0, 0};
	for (int k = 0; k < 2; k++) {
		char *b = malloc(len);
		memcpy(b, buf, len);
		if (k == 0)
			memcpy(b + 12, dim5, 4);
		else
			memcpy(b + 28, one, 4);
		f = fmemopen(b, len, "rb");
		es_collection *back = NULL;
		ck_assert_int_eq(es_collection_load(f, "m", NULL, &back, &err), ES_ECORRUPT);
		ck_assert_ptr_nonnull(strstr(err.msg, k == 0 ? "dim 3/5" : "int8 0/1"));
		fclose(f);
		free(b);
	}
	free(buf);
}
END_TEST

static int only_even(void *ctx, const es_point_view *p)
{
	(void)ctx;
	return !p->id.is_str && p->id.num % 2 == 0;
}

START_TEST(test_search)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(4, ES_METRIC_COSINE);
	ck_assert_int_eq(es_collection_new("s", &p, NULL, &c, &err), 0);
	enum { N = 200 };
	float *v = malloc(N * 4 * sizeof *v);
	es_point_in *in = calloc(N, sizeof *in);
	unsigned s = 12345;
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < 4; j++) {
			s = s * 1103515245u + 12345u;
			v[i * 4 + j] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
		}
		v[i * 4] += 0.01f;
		in[i].id = num_id((uint64_t)i);
		in[i].vector = v + i * 4;
		in[i].payload = "{\"x\":1}";
		in[i].payload_len = 7;
	}
	ck_assert_int_eq(es_collection_upsert(c, in, N, &err), 0);

	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.query = v + 10 * 4;
	rq.k = 5;
	rq.with_payload = 1;
	es_point_out *hits;
	size_t nh;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 5);
	ck_assert_uint_eq(hits[0].id.num, 10);
	ck_assert_float_eq_tol(hits[0].score, 1.0f, 1e-5);
	ck_assert_str_eq(hits[0].payload, "{\"x\":1}");
	for (size_t i = 1; i < nh; i++)
		ck_assert(hits[i - 1].score >= hits[i].score);
	es_hits_free(hits, nh);

	/* exclude self, filter, threshold */
	rq.exclude_self = 1;
	rq.self = num_id(10);
	rq.filter = only_even;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 5);
	for (size_t i = 0; i < nh; i++) {
		ck_assert(hits[i].id.num != 10);
		ck_assert(hits[i].id.num % 2 == 0);
	}
	es_hits_free(hits, nh);
	rq.has_threshold = 1;
	rq.threshold = 2.0f; /* nothing can reach it */
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 0);
	es_hits_free(hits, nh);

	float bad[4] = {0, INFINITY, 0, 0};
	rq.query = bad;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), ES_EINVAL);
	rq.query = v;
	rq.k = 0;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), ES_EINVAL);
	free(v);
	free(in);
	es_collection_release(c);
}
END_TEST

typedef struct obs_log {
	int creates, drops, upserts, deletes;
	int fail_upsert;
} obs_log;

static int o_create(void *ctx, const char *name, const es_collection_params *p,
		    es_error *err)
{
	(void)name;
	(void)p;
	(void)err;
	((obs_log *)ctx)->creates++;
	return 0;
}

static int o_drop(void *ctx, const char *name, es_error *err)
{
	(void)name;
	(void)err;
	((obs_log *)ctx)->drops++;
	return 0;
}

static int o_upsert(void *ctx, es_collection *c, const es_point_in *pts,
		    size_t n, es_log_turn *turn, es_error *err)
{
	(void)c;
	(void)turn; /* never placed: the collection queues it on return */
	(void)pts;
	(void)n;
	obs_log *l = ctx;
	l->upserts++;
	if (l->fail_upsert)
		return es_err(err, ES_ENOSPC, "disk full (test)");
	return 0;
}

static int o_delete(void *ctx, es_collection *c, const es_point_id *ids,
		    size_t n, es_log_turn *turn, es_error *err)
{
	(void)c;
	(void)turn;
	(void)ids;
	(void)n;
	(void)err;
	((obs_log *)ctx)->deletes++;
	return 0;
}

static int count_fn(void *ctx, const es_point_view *p)
{
	ck_assert_ptr_nonnull(p->vector);
	(*(int *)ctx)++;
	return 0;
}

static void *parse_len(const char *payload, size_t len)
{
	(void)payload;
	size_t *x = malloc(sizeof *x);
	*x = len;
	return x;
}

static int parsed_is_7(void *ctx, const es_point_view *p)
{
	(void)ctx;
	return p->parsed && *(const size_t *)p->parsed == 7;
}

/* Ids of a search's hits, in order, into ids[]; returns the count. */
static size_t text_search(es_collection *c, int mode, const char *text, const float *q,
			  es_point_filter_fn filter, uint64_t *ids, es_point_out **keep)
{
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.mode = mode;
	rq.text = text;
	rq.text_len = text ? strlen(text) : 0;
	rq.query = q;
	rq.k = 10;
	rq.filter = filter;
	es_point_out *hits;
	size_t nh;
	es_error err;
	ck_assert_msg(es_collection_search(c, &rq, &hits, &nh, &err) == 0, "%s", err.msg);
	for (size_t i = 0; i < nh; i++) {
		ids[i] = hits[i].id.num;
		ck_assert(mode == ES_SEARCH_DENSE || hits[i].score > 0);
		if (mode == ES_SEARCH_LEXICAL)
			ck_assert(hits[i].has_lexical && !hits[i].has_dense &&
				  hits[i].lexical_score == hits[i].score);
		if (i)
			ck_assert(hits[i - 1].score >= hits[i].score);
	}
	if (keep)
		*keep = hits;
	else
		es_hits_free(hits, nh);
	return nh;
}

static es_point_in text_pt(uint64_t id, const float *v, const char *text)
{
	es_point_in in;
	memset(&in, 0, sizeof in);
	in.id = num_id(id);
	in.vector = v;
	in.text = text;
	in.text_len = text ? strlen(text) : 0;
	return in;
}

/* Text points: lexical entries, points without a vector, every mode,
 * filters, updates, deletes, validation, all or nothing under failing
 * allocations, and a snapshot round trip.
 * Long on purpose (~140 lines): one collection's story, each step checked
 * against the state the steps before left (what a delete removed, what the
 * snapshot must give back); split, every piece would rebuild that state. */
START_TEST(test_text_points)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(3, ES_METRIC_COSINE);
	p.lexical.k1 = 1.2f;
	p.lexical.b = 0.75f;
	p.lexical.stemming = 1;
	p.lexical_set = 1;
	ck_assert_int_eq(es_collection_new("t", &p, NULL, &c, &err), 0);
	float v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
	es_point_in in[4] = {
		text_pt(1, v[0], "rare manuscripts in the archive"),
		text_pt(2, v[1], "digital newspaper archives"),
		text_pt(3, NULL, "Quercus robur, Fagus sylvatica"), /* no vector */
		text_pt(4, v[2], NULL),                             /* no text */
	};
	ck_assert_int_eq(es_collection_upsert(c, in, 4, &err), 0);
	ck_assert_uint_eq(es_collection_count(c), 4);
	ck_assert_uint_eq(es_collection_lexical_count(c), 3);
	ck_assert_uint_gt(es_collection_lexical_bytes(c), 0);
	ck_assert_uint_gt(es_collection_memory_bytes(c), es_collection_lexical_bytes(c));
	es_point_out o;
	es_point_id id3 = num_id(3);
	ck_assert_int_eq(es_collection_get(c, &id3, 1, 1, &o, &err), 0);
	ck_assert_ptr_null(o.vector);
	es_point_out_free(&o);

	uint64_t ids[10];
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "archive", NULL, NULL, ids, NULL), 2);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "quercus", NULL, NULL, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "archive", NULL, only_even, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 2);
	/* dense never finds the point without a vector */
	size_t n = text_search(c, ES_SEARCH_DENSE, NULL, v[0], NULL, ids, NULL);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_ne(ids[i], 3);
	/* hybrid: both lists; the point first in both is first, with both scores */
	es_point_out *hits;
	n = text_search(c, ES_SEARCH_HYBRID, "archive", v[1], NULL, ids, &hits);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert(hits[0].has_dense && hits[0].has_lexical);
	ck_assert_float_eq_tol(hits[0].score, 2.0f / 61, 1e-6);
	ck_assert_float_eq_tol(hits[0].dense_score, 1.0f, 1e-5);
	es_hits_free(hits, n);
	/* hybrid without a query vector (text the model cannot encode) */
	ck_assert_uint_eq(text_search(c, ES_SEARCH_HYBRID, "quercus", NULL, NULL, ids, NULL), 1);
	/* weighted fusion: alpha 1 is the dense order */
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.mode = ES_SEARCH_HYBRID;
	rq.text = "archive";
	rq.text_len = 7;
	rq.query = v[0];
	rq.k = 10;
	rq.fusion = ES_FUSION_WEIGHTED;
	rq.alpha = 1.0f;
	size_t nh;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(hits[0].id.num, 1);
	ck_assert_float_eq_tol(hits[0].score, 1.0f, 1e-6);
	es_hits_free(hits, nh);
	rq.alpha = 1.5f;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), ES_EINVAL);
	rq.alpha = 0.5f;
	rq.text = NULL;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), ES_EINVAL);

	/* validation: nothing changes */
	es_point_in bad[2] = {text_pt(5, v[0], "fine"), text_pt(6, v[0], "")};
	bad[1].text_len = 0;
	ck_assert_int_eq(es_collection_upsert(c, bad, 2, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "points[1]: text is empty"));
	bad[1] = text_pt(6, NULL, NULL);
	ck_assert_int_eq(es_collection_upsert(c, bad, 2, &err), ES_EINVAL);
	float zero[3] = {0, 0, 0};
	bad[1] = text_pt(6, zero, "zero vector");
	ck_assert_int_eq(es_collection_upsert(c, bad, 2, &err), ES_EINVAL);
	bad[1] = text_pt(6, v[0], "bad \xff utf-8");
	ck_assert_int_eq(es_collection_upsert(c, bad, 2, &err), ES_EINVAL);
	ck_assert_uint_eq(es_collection_count(c), 4);

	/* all or nothing when an allocation fails anywhere in a text batch */
	es_point_in batch[3] = {
		text_pt(1, v[2], "catalogue of maps"), /* update */
		text_pt(7, NULL, "Betula pendula"),    /* new, no vector */
		text_pt(3, v[0], "oak and beech"),     /* gains a vector */
	};
	int applied = 0;
	for (long ok = 0; ok < 400 && !applied; ok++) {
		es_alloc_fail_after(ok);
		int rc = es_collection_upsert(c, batch, 3, &err);
		es_alloc_fail_disarm();
		if (rc == 0) {
			applied = 1;
			break;
		}
		ck_assert_int_eq(rc, ES_ENOMEM);
		ck_assert_uint_eq(es_collection_count(c), 4);
		ck_assert_uint_eq(es_collection_lexical_count(c), 3);
		ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "manuscripts", NULL, NULL, ids,
					      NULL), 1);
		ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "betula", NULL, NULL, ids, NULL), 0);
		ck_assert_uint_eq(text_search(c, ES_SEARCH_DENSE, NULL, v[0], NULL, ids, NULL), 3);
	}
	ck_assert(applied);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "manuscripts", NULL, NULL, ids, NULL), 0);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "maps", NULL, NULL, ids, NULL), 1);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_DENSE, NULL, v[0], NULL, ids, NULL), 4);

	/* an update without text drops the lexical entry; a delete too */
	es_point_in vonly = text_pt(1, v[2], NULL);
	ck_assert_int_eq(es_collection_upsert(c, &vonly, 1, &err), 0);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "maps", NULL, NULL, ids, NULL), 0);
	es_point_id id2 = num_id(2);
	ck_assert_int_eq(es_collection_delete(c, &id2, 1, NULL, &err), 0);
	ck_assert_uint_eq(text_search(c, ES_SEARCH_LEXICAL, "newspaper", NULL, NULL, ids, NULL), 0);

	/* snapshot round trip: parameters, entries, the point without a vector */
	FILE *f = tmpfile();
	ck_assert_int_eq(es_collection_save(c, f, NULL, NULL, &err), 0);
	rewind(f);
	es_collection *back;
	ck_assert_msg(es_collection_load(f, "t", NULL, &back, &err) == 0, "%s", err.msg);
	fclose(f);
	const es_collection_params *bp = es_collection_get_params(back);
	ck_assert(bp->lexical.k1 == 1.2f && bp->lexical.b == 0.75f && bp->lexical.stemming);
	ck_assert_uint_eq(es_collection_count(back), es_collection_count(c));
	ck_assert_uint_eq(es_collection_lexical_count(back), es_collection_lexical_count(c));
	ck_assert_uint_eq(text_search(back, ES_SEARCH_LEXICAL, "betula", NULL, NULL, ids, NULL), 1);
	es_point_id id7 = num_id(7);
	ck_assert_int_eq(es_collection_get(back, &id7, 1, 1, &o, &err), 0);
	ck_assert_ptr_null(o.vector);
	es_point_out_free(&o);
	es_collection_release(back);
	es_collection_release(c);
}
END_TEST

/* Payload updates through test hooks: the op is "old payload + op bytes"
 * (or "!": fail with ES_ENOMEM on the second point), so the test needs no
 * JSON. */
typedef struct pl_obs {
	int calls, fail;
	size_t last_n;
	char last_op[32];
} pl_obs;

static int o_payload(void *ctx, es_collection *c, const char *op, size_t oplen,
		     const es_point_id *ids, size_t n, es_log_turn *turn, es_error *err)
{
	(void)c;
	(void)ids;
	(void)turn;
	pl_obs *o = ctx;
	o->calls++;
	o->last_n = n;
	snprintf(o->last_op, sizeof o->last_op, "%.*s", (int)oplen, op);
	return o->fail ? es_err(err, ES_ENOSPC, "disk full (test)") : 0;
}

static void *op_compile_t(const char *op, size_t len)
{
	return len && op[0] == '?' ? NULL : strndup(op, len);
}

static int op_calls;

static int op_apply_t(const void *op, const char *old, size_t oldlen, char **out,
		      size_t *outlen)
{
	if (strcmp(op, "!") == 0 && ++op_calls == 2)
		return ES_ENOMEM;
	if (strcmp(op, "-") == 0) { /* clear */
		*out = NULL;
		*outlen = 0;
		return 0;
	}
	*outlen = oldlen + strlen(op);
	*out = malloc(*outlen + 1);
	memcpy(*out, old ? old : "", oldlen);
	strcpy(*out + oldlen, op);
	return 0;
}

static void payload_is(es_collection *c, uint64_t id, const char *want)
{
	es_point_out o;
	es_error err;
	es_point_id pid = num_id(id);
	ck_assert_int_eq(es_collection_get(c, &pid, 1, 1, &o, &err), 0);
	if (want)
		ck_assert_str_eq(o.payload, want);
	else
		ck_assert_ptr_null(o.payload);
	ck_assert_ptr_nonnull(o.vector); /* the vector stays */
	ck_assert_float_eq(o.vector[0], (float)id);
	es_point_out_free(&o);
}

START_TEST(test_update_payload)
{
	es_error err;
	es_registry *r;
	es_payload_hooks hooks = {parse_len, free, op_compile_t, op_apply_t, free, NULL};
	ck_assert_int_eq(es_registry_new(&hooks, &r, &err), 0);
	pl_obs ob;
	memset(&ob, 0, sizeof ob);
	es_mutation_observer o = {&ob, NULL, NULL, NULL, NULL, o_payload, NULL};
	es_registry_set_observer(r, &o);
	es_collection_params p = params(2, ES_METRIC_L2);
	es_collection *c;
	ck_assert_int_eq(es_registry_create(r, "pl", &p, &c, &err), 0);
	float v[3][2] = {{1, 0}, {2, 0}, {3, 0}};
	es_point_in in[3] = {{num_id(1), v[0], "a", 1, NULL, 0},
			     {num_id(2), v[1], NULL, 0, NULL, 0},
			     {num_id(3), v[2], "c", 1, "three words here", 16}};
	ck_assert_int_eq(es_collection_upsert(c, in, 3, &err), 0);

	es_point_id ids[4] = {num_id(1), num_id(2), num_id(9), num_id(1)};
	size_t up = 99;
	ck_assert_int_eq(es_collection_update_payload(c, "X", 1, ids, 4, &up, &err), 0);
	ck_assert_uint_eq(up, 2); /* 9 is absent; 1 twice counts once */
	ck_assert_int_eq(ob.calls, 1);
	ck_assert_uint_eq(ob.last_n, 4);
	ck_assert_str_eq(ob.last_op, "X");
	payload_is(c, 1, "aX"); /* computed once from the state before */
	payload_is(c, 2, "X");
	payload_is(c, 3, "c");

	/* a failing log write changes nothing */
	ob.fail = 1;
	ck_assert_int_eq(es_collection_update_payload(c, "Y", 1, ids, 2, &up, &err), ES_ENOSPC);
	ck_assert_uint_eq(up, 0);
	ob.fail = 0;
	payload_is(c, 1, "aX");
	/* all or nothing: the second point's op fails, the first keeps its payload */
	op_calls = 0;
	ck_assert_int_eq(es_collection_update_payload(c, "!", 1, ids, 2, &up, &err), ES_ENOMEM);
	payload_is(c, 1, "aX");
	payload_is(c, 2, "X");
	/* clear; an op the hooks cannot compile; bad ids */
	es_point_id three = num_id(3);
	ck_assert_int_eq(es_collection_update_payload(c, "-", 1, &three, 1, &up, &err), 0);
	payload_is(c, 3, NULL);
	ck_assert_int_eq(es_collection_update_payload(c, "?", 1, &three, 1, &up, &err), ES_EINVAL);
	es_point_id bad = {1, 0, "", 0};
	ck_assert_int_eq(es_collection_update_payload(c, "X", 1, &bad, 1, &up, &err), ES_EINVAL);
	int calls = ob.calls;
	ck_assert_int_eq(es_collection_update_payload(c, "X", 1, ids, 0, &up, &err), 0);
	ck_assert_int_eq(ob.calls, calls); /* nothing to log */
	/* the lexical entry of point 3 is untouched */
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.mode = ES_SEARCH_LEXICAL;
	rq.text = "words";
	rq.text_len = 5;
	rq.k = 3;
	es_point_out *hits;
	size_t nh;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert_uint_eq(hits[0].id.num, 3);
	es_hits_free(hits, nh);
	es_collection_release(c);
	es_registry_free(r);

	/* without op hooks: refused */
	ck_assert_int_eq(es_registry_new(NULL, &r, &err), 0);
	ck_assert_int_eq(es_registry_create(r, "np", &p, &c, &err), 0);
	ck_assert_int_eq(es_collection_update_payload(c, "X", 1, ids, 1, &up, &err), ES_EUNSUPPORTED);
	es_collection_release(c);
	es_registry_free(r);
}
END_TEST

START_TEST(test_registry)
{
	es_error err;
	es_registry *r;
	es_payload_hooks hooks = {parse_len, free, NULL, NULL, NULL, NULL};
	ck_assert_int_eq(es_registry_new(&hooks, &r, &err), 0);
	obs_log l;
	memset(&l, 0, sizeof l);
	es_mutation_observer o = {&l, o_create, o_drop, o_upsert, o_delete, NULL, NULL};
	es_registry_set_observer(r, &o);
	es_collection_params p = params(2, ES_METRIC_L2);
	es_collection *c;
	ck_assert_int_eq(es_registry_create(r, "b", &p, &c, &err), 0);
	ck_assert_int_eq(es_registry_create(r, "a", &p, NULL, &err), 0);
	ck_assert_int_eq(es_registry_create(r, "a", &p, NULL, &err), ES_EEXIST);
	ck_assert_int_eq(es_registry_create(r, "x y", &p, NULL, &err), ES_EINVAL);
	p.dim = 0;
	ck_assert_int_eq(es_registry_create(r, "z", &p, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(l.creates, 2);

	float v[2][2] = {{1, 2}, {3, 4}};
	es_point_in in[2] = {{num_id(1), v[0], "{\"k\":1}", 7, NULL, 0}, {num_id(2), v[1], "{}", 2, NULL, 0}};
	l.fail_upsert = 1;
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), ES_ENOSPC);
	ck_assert_uint_eq(es_collection_count(c), 0);
	l.fail_upsert = 0;
	ck_assert_int_eq(es_collection_upsert(c, in, 2, &err), 0);
	ck_assert_int_eq(l.upserts, 2);

	/* parsed payloads reach the filter; l2 scores are distances */
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.query = v[1];
	rq.k = 2;
	rq.filter = parsed_is_7;
	es_point_out *hits;
	size_t nh;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert_uint_eq(hits[0].id.num, 1);
	ck_assert_float_eq_tol(hits[0].score, sqrtf(8.0f), 1e-4);
	es_hits_free(hits, nh);

	int cnt = 0;
	ck_assert_int_eq(es_collection_foreach(c, count_fn, &cnt), 0);
	ck_assert_int_eq(cnt, 2);

	es_collection **all;
	size_t n;
	ck_assert_int_eq(es_registry_list(r, &all, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(es_collection_name(all[0]), "a");
	ck_assert_str_eq(es_collection_name(all[1]), "b");
	for (size_t i = 0; i < n; i++)
		es_collection_release(all[i]);
	free(all);

	/* drop while we still hold a reference: it stays usable for us */
	ck_assert_int_eq(es_registry_drop(r, "b", &err), 0);
	ck_assert_int_eq(es_registry_drop(r, "b", &err), ES_ENOTFOUND);
	ck_assert_int_eq(l.drops, 1);
	es_collection *g;
	ck_assert_int_eq(es_registry_get(r, "b", &g, &err), ES_ENOTFOUND);
	ck_assert_uint_eq(es_collection_count(c), 2);
	es_point_id d = num_id(1);
	ck_assert_int_eq(es_collection_delete(c, &d, 1, NULL, &err), 0);
	ck_assert_int_eq(l.deletes, 0); /* detached: no longer logged */
	es_collection_release(c);
	es_registry_free(r);
}
END_TEST

START_TEST(test_many_and_hash_churn)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(2, ES_METRIC_DOT);
	ck_assert_int_eq(es_collection_new("m", &p, NULL, &c, &err), 0);
	enum { N = 3000 };
	float v[2] = {1, 0.5f};
	char names[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "s%d", i);
		es_point_in a = {num_id((uint64_t)i * 7919), v, NULL, 0, NULL, 0};
		es_point_in b = {str_id(names[i]), v, NULL, 0, NULL, 0};
		ck_assert_int_eq(es_collection_upsert(c, &a, 1, &err), 0);
		ck_assert_int_eq(es_collection_upsert(c, &b, 1, &err), 0);
	}
	ck_assert_uint_eq(es_collection_count(c), 2 * N);
	for (int i = 0; i < N; i += 2) {
		es_point_id d[2] = {num_id((uint64_t)i * 7919), str_id(names[i])};
		size_t nd;
		ck_assert_int_eq(es_collection_delete(c, d, 2, &nd, &err), 0);
		ck_assert_uint_eq(nd, 2);
	}
	ck_assert_uint_eq(es_collection_count(c), N);
	for (int i = 0; i < N; i++) {
		es_point_id a = num_id((uint64_t)i * 7919), b = str_id(names[i]);
		es_point_out o;
		int want = (i % 2) ? 0 : ES_ENOTFOUND;
		ck_assert_int_eq(es_collection_get(c, &a, 0, 0, &o, &err), want);
		if (!want)
			es_point_out_free(&o);
		ck_assert_int_eq(es_collection_get(c, &b, 0, 0, &o, &err), want);
		if (!want)
			es_point_out_free(&o);
	}
	es_collection_release(c);
}
END_TEST

/* Delete + re-insert, the churn of a long-running server: memory must follow
 * the live set, also after a snapshot round trip, and every point must stay
 * right (id, payload, vector). */
enum { CHURN_N = 500 };

static void churn_vec(float *v, uint32_t i, uint32_t round)
{
	v[0] = (float)i;
	v[1] = (float)round;
	v[2] = 1;
	v[3] = -1;
}

static void churn_check(es_collection *c, const uint32_t *round, size_t n)
{
	es_error err;
	for (uint32_t i = 0; i < n; i++) {
		es_point_id id = num_id(i);
		es_point_out o;
		ck_assert_int_eq(es_collection_get(c, &id, 1, 1, &o, &err), 0);
		char want[32];
		snprintf(want, sizeof want, "{\"r\":%05u}", round[i]);
		ck_assert_str_eq(o.payload, want);
		ck_assert_float_eq(o.vector[0], (float)i);
		ck_assert_float_eq(o.vector[1], (float)round[i]);
		es_point_out_free(&o);
	}
	/* the nearest neighbour of a point's own vector is that point */
	float q[4];
	churn_vec(q, 123, round[123]);
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.query = q;
	rq.k = 1;
	es_point_out *hits = NULL;
	size_t nh = 0;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert_uint_eq(hits[0].id.num, 123);
	es_hits_free(hits, nh);
}

static void churn_rounds(es_collection *c, uint32_t *round, uint32_t from, uint32_t to)
{
	es_error err;
	for (uint32_t r = from; r < to; r++) {
		es_point_id del[10];
		for (uint32_t j = 0; j < 10; j++)
			del[j] = num_id((r * 37 + j * 53) % CHURN_N);
		size_t nd;
		ck_assert_int_eq(es_collection_delete(c, del, 10, &nd, &err), 0);
		ck_assert_uint_eq(nd, 10);
		float v[10][4];
		char pl[10][32];
		es_point_in in[10];
		for (uint32_t j = 0; j < 10; j++) {
			uint32_t i = (uint32_t)del[j].num;
			round[i] = r + 1;
			churn_vec(v[j], i, round[i]);
			snprintf(pl[j], sizeof pl[j], "{\"r\":%05u}", round[i]);
			in[j] = (es_point_in){num_id(i), v[j], pl[j], strlen(pl[j]), NULL, 0};
		}
		ck_assert_int_eq(es_collection_upsert(c, in, 10, &err), 0);
		ck_assert_uint_eq(es_collection_count(c), CHURN_N);
	}
}

START_TEST(test_churn_memory_flat)
{
	es_error err;
	es_collection *c;
	es_collection_params p = params(4, ES_METRIC_L2);
	ck_assert_int_eq(es_collection_new("churn", &p, NULL, &c, &err), 0);
	static uint32_t round[CHURN_N];
	for (uint32_t i = 0; i < CHURN_N; i++) {
		float v[4];
		char pl[32];
		churn_vec(v, i, 0);
		snprintf(pl, sizeof pl, "{\"r\":%05u}", 0u);
		es_point_in in = {num_id(i), v, pl, strlen(pl), NULL, 0};
		ck_assert_int_eq(es_collection_upsert(c, &in, 1, &err), 0);
	}
	size_t mem0 = es_collection_memory_bytes(c);
	churn_rounds(c, round, 0, 300); /* 3,000 re-inserts on 500 points */
	ck_assert_uint_le(es_collection_memory_bytes(c), mem0 + mem0 / 50);
	churn_check(c, round, CHURN_N);

	/* a snapshot holding dead labels: the loaded collection reuses them */
	es_point_id del[20];
	for (uint32_t j = 0; j < 20; j++)
		del[j] = num_id(CHURN_N + j);
	float v[4] = {1, 2, 3, 4};
	for (uint32_t j = 0; j < 20; j++) {
		es_point_in in = {del[j], v, NULL, 0, NULL, 0};
		ck_assert_int_eq(es_collection_upsert(c, &in, 1, &err), 0);
	}
	ck_assert_int_eq(es_collection_delete(c, del, 20, NULL, &err), 0);
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(es_collection_save(c, f, NULL, NULL, &err), 0);
	es_collection_release(c);
	rewind(f);
	ck_assert_int_eq(es_collection_load(f, "churn", NULL, &c, &err), 0);
	fclose(f);
	ck_assert_uint_eq(es_collection_count(c), CHURN_N);
	churn_check(c, round, CHURN_N);
	size_t mem1 = es_collection_memory_bytes(c);
	churn_rounds(c, round, 300, 600);
	ck_assert_uint_le(es_collection_memory_bytes(c), mem1 + mem1 / 50);
	churn_check(c, round, CHURN_N);
	es_collection_release(c);
}
END_TEST

/* --- commit queue ------------------------------------------------------ */

/* An observer that plays the write-ahead log: it places each change with
 * the next token, then "waits for the fsync" until the test releases that
 * token, and fails it (ES_EIO) when the test says so. */
enum { GATE_MAX = 64 };
typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t next;          /* last token handed out */
	int released[GATE_MAX];
	int fail[GATE_MAX];
} gate;

static int gate_log(gate *g, es_log_turn *turn, es_error *err)
{
	pthread_mutex_lock(&g->mu);
	uint64_t tok = ++g->next;
	ck_assert_uint_lt(tok, GATE_MAX);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	es_log_placed(turn, tok);
	pthread_mutex_lock(&g->mu);
	while (!g->released[tok])
		pthread_cond_wait(&g->cv, &g->mu);
	int fail = g->fail[tok];
	pthread_mutex_unlock(&g->mu);
	return fail ? es_err(err, ES_EIO, "fsync failed (test)") : 0;
}

static int g_upsert(void *ctx, es_collection *c, const es_point_in *pts, size_t n,
		    es_log_turn *turn, es_error *err)
{
	(void)c; (void)pts; (void)n;
	return gate_log(ctx, turn, err);
}

static int g_delete(void *ctx, es_collection *c, const es_point_id *ids, size_t n,
		    es_log_turn *turn, es_error *err)
{
	(void)c; (void)ids; (void)n;
	return gate_log(ctx, turn, err);
}

static void gate_wait_placed(gate *g, uint64_t tok)
{
	pthread_mutex_lock(&g->mu);
	while (g->next < tok)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_release(gate *g, uint64_t tok, int fail)
{
	pthread_mutex_lock(&g->mu);
	g->fail[tok] = fail;
	g->released[tok] = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

typedef struct writer {
	es_collection *c;
	uint64_t id;
	float v[2];
	int del;
	int rc;
	size_t deleted;
	pthread_t th;
} writer;

static void *writer_main(void *arg)
{
	writer *w = arg;
	es_error err;
	if (w->del) {
		es_point_id d = num_id(w->id);
		w->rc = es_collection_delete(w->c, &d, 1, &w->deleted, &err);
	} else {
		es_point_in in = {num_id(w->id), w->v, NULL, 0, NULL, 0};
		w->rc = es_collection_upsert(w->c, &in, 1, &err);
	}
	return NULL;
}

static void writer_start(writer *w, es_collection *c, uint64_t id, float x, int del)
{
	memset(w, 0, sizeof *w);
	w->c = c;
	w->id = id;
	w->v[0] = x;
	w->v[1] = 1;
	w->del = del;
	ck_assert_int_eq(pthread_create(&w->th, NULL, writer_main, w), 0);
}

/* vector x of point id, or NAN when absent */
static float point_x(es_collection *c, uint64_t id)
{
	es_point_id pid = num_id(id);
	float v[2];
	es_error err;
	if (es_collection_get_vector(c, &pid, v, &err) != 0)
		return NAN;
	return v[0];
}

struct save_note {
	int pending;
	uint64_t oldest;
};

static void note_queue(void *ctx, int pending, uint64_t oldest)
{
	struct save_note *n = ctx;
	n->pending = pending;
	n->oldest = oldest;
}

static struct save_note save_queue_state(es_collection *c)
{
	struct save_note n = {-1, 0};
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	es_error err;
	ck_assert_int_eq(es_collection_save(c, f, note_queue, &n, &err), 0);
	fclose(f);
	return n;
}

START_TEST(test_commit_queue)
{
	es_error err;
	es_registry *r;
	ck_assert_int_eq(es_registry_new(NULL, &r, &err), 0);
	gate g;
	memset(&g, 0, sizeof g);
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	es_mutation_observer o = {&g, NULL, NULL, g_upsert, g_delete, NULL, NULL};
	es_registry_set_observer(r, &o);
	es_collection_params p = params(2, ES_METRIC_L2);
	es_collection *c;
	ck_assert_int_eq(es_registry_create(r, "q", &p, &c, &err), 0);

	/* A then B write point 1; neither is visible before its sync */
	writer a, b;
	writer_start(&a, c, 1, 10, 0);
	gate_wait_placed(&g, 1);
	writer_start(&b, c, 1, 20, 0);
	gate_wait_placed(&g, 2); /* B placed while A waits: not serialised */
	ck_assert(isnan(point_x(c, 1)));
	struct save_note n = save_queue_state(c);
	ck_assert_int_eq(n.pending, 1);
	ck_assert_uint_eq(n.oldest, 1);
	/* B's sync ends first, but B applies only after A (log order) */
	gate_release(&g, 2, 0);
	usleep(20000);
	ck_assert(isnan(point_x(c, 1)));
	gate_release(&g, 1, 0);
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(b.rc, 0);
	ck_assert_float_eq(point_x(c, 1), 20); /* B last, as the log says */
	n = save_queue_state(c);
	ck_assert_int_eq(n.pending, 0);

	/* C's sync fails: C applies nothing, D (placed after it) still applies */
	writer cw, d;
	writer_start(&cw, c, 2, 30, 0);
	gate_wait_placed(&g, 3);
	writer_start(&d, c, 3, 40, 0);
	gate_wait_placed(&g, 4);
	gate_release(&g, 4, 0);
	gate_release(&g, 3, 1);
	pthread_join(cw.th, NULL);
	pthread_join(d.th, NULL);
	ck_assert_int_eq(cw.rc, ES_EIO);
	ck_assert_int_eq(d.rc, 0);
	ck_assert(isnan(point_x(c, 2)));
	ck_assert_float_eq(point_x(c, 3), 40);

	/* deletes take the same path: invisible until synced */
	writer del;
	writer_start(&del, c, 1, 0, 1);
	gate_wait_placed(&g, 5);
	ck_assert_float_eq(point_x(c, 1), 20);
	gate_release(&g, 5, 0);
	pthread_join(del.th, NULL);
	ck_assert_int_eq(del.rc, 0);
	ck_assert_uint_eq(del.deleted, 1);
	ck_assert(isnan(point_x(c, 1)));
	ck_assert_uint_eq(es_collection_count(c), 1);

	es_collection_release(c);
	es_registry_free(r);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
}
END_TEST

/* Many threads, one collection: an observer that places each change with a
 * global token and then sleeps a random "fsync" time, so syncs end out of
 * order.  Every thread writes its own points and, in turns, one shared
 * point; afterwards every own point holds its last value and the shared
 * point the value of the change with the highest token (log order). */
enum { ST_T = 8, ST_N = 200 };
typedef struct stress {
	pthread_mutex_t mu;
	uint64_t next;
	uint64_t max_tok;
	float max_val;
} stress;

static __thread float st_cur_val; /* the value the calling thread writes */

static int s_upsert(void *ctx, es_collection *c, const es_point_in *pts, size_t n,
		    es_log_turn *turn, es_error *err)
{
	(void)c; (void)err;
	stress *s = ctx;
	pthread_mutex_lock(&s->mu);
	uint64_t tok = ++s->next;
	for (size_t i = 0; i < n; i++)
		if (pts[i].id.num == 0 && tok > s->max_tok) {
			s->max_tok = tok;
			s->max_val = st_cur_val;
		}
	pthread_mutex_unlock(&s->mu);
	es_log_placed(turn, tok);
	usleep((useconds_t)(tok * 2654435761u % 300));
	return 0;
}

struct st_arg {
	es_collection *c;
	int t;
};

static void *stress_main(void *vp)
{
	struct st_arg *a = vp;
	es_error err;
	for (int i = 0; i < ST_N; i++) {
		float v[2] = {(float)(a->t * 1000 + i), 1};
		es_point_in in[2] = {{num_id((uint64_t)(1 + a->t * 10 + i % 10)), v, NULL, 0, NULL, 0},
				     {num_id(0), v, NULL, 0, NULL, 0}};
		st_cur_val = v[0];
		/* the shared point 0 in every fourth batch */
		ck_assert_int_eq(es_collection_upsert(a->c, in, i % 4 == 0 ? 2 : 1, &err), 0);
	}
	return NULL;
}

START_TEST(test_commit_queue_threads)
{
	es_error err;
	es_registry *r;
	ck_assert_int_eq(es_registry_new(NULL, &r, &err), 0);
	stress s;
	memset(&s, 0, sizeof s);
	pthread_mutex_init(&s.mu, NULL);
	es_mutation_observer o = {&s, NULL, NULL, s_upsert, NULL, NULL, NULL};
	es_registry_set_observer(r, &o);
	es_collection_params p = params(2, ES_METRIC_L2);
	es_collection *c;
	ck_assert_int_eq(es_registry_create(r, "st", &p, &c, &err), 0);
	pthread_t th[ST_T];
	struct st_arg args[ST_T];
	for (int t = 0; t < ST_T; t++) {
		args[t].c = c;
		args[t].t = t;
		ck_assert_int_eq(pthread_create(&th[t], NULL, stress_main, &args[t]), 0);
	}
	/* readers and snapshots race the writers */
	for (int k = 0; k < 20; k++) {
		struct save_note n = save_queue_state(c);
		ck_assert(n.pending == 0 || n.oldest >= 1);
		(void)point_x(c, 0);
		usleep(1000);
	}
	for (int t = 0; t < ST_T; t++)
		pthread_join(th[t], NULL);
	ck_assert_uint_eq(s.next, ST_T * ST_N);
	ck_assert_uint_eq(es_collection_count(c), 1 + ST_T * 10);
	for (int t = 0; t < ST_T; t++)
		for (int j = 0; j < 10; j++) {
			int last = ST_N - 10 + j; /* the last i with i % 10 == j */
			ck_assert_float_eq(point_x(c, (uint64_t)(1 + t * 10 + j)),
					   (float)(t * 1000 + last));
		}
	ck_assert_float_eq(point_x(c, 0), s.max_val);
	es_collection_release(c);
	es_registry_free(r);
	pthread_mutex_destroy(&s.mu);
}
END_TEST

/* Parallel apply keeps the visibility rule: two writers build their
 * batches' graph nodes (on a pool) before their records are placed, so both
 * batches are in the graph, pending, while they wait for their "fsync";
 * the later one's sync ends first and still nothing of it is visible (no
 * id, no count, no search hit, not in a snapshot) until the earlier one's
 * ends: readers see a prefix of the log. */
enum { PA_N = 300, PA_D = 8 };
typedef struct pa_writer {
	es_collection *c;
	uint64_t base;
	float *v;
	int rc;
	pthread_t th;
} pa_writer;

static void pa_vec(uint64_t id, float *v)
{
	uint64_t s = id * 0x9e3779b97f4a7c15ULL + 1;
	for (int j = 0; j < PA_D; j++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		v[j] = (float)((s >> 33) % 2001) / 1000.0f - 1.0f;
	}
}

static void *pa_main(void *arg)
{
	pa_writer *w = arg;
	es_point_in *in = calloc(PA_N, sizeof *in);
	for (int i = 0; i < PA_N; i++) {
		in[i].id = num_id(w->base + (uint64_t)i);
		in[i].vector = w->v + (size_t)i * PA_D;
	}
	es_error err;
	w->rc = es_collection_upsert(w->c, in, PA_N, &err);
	free(in);
	return NULL;
}

/* vector[0] of point id (dim PA_D), or NAN when absent */
static float pa_x(es_collection *c, uint64_t id)
{
	es_point_id pid = num_id(id);
	float v[PA_D];
	es_error err;
	return es_collection_get_vector(c, &pid, v, &err) ? NAN : v[0];
}

/* hits of an exact-vector query: how many, and whether the first is id */
static size_t pa_search(es_collection *c, const float *q, uint64_t id, int *first)
{
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.query = q;
	rq.k = 10;
	es_point_out *hits;
	size_t nh;
	es_error err;
	ck_assert_int_eq(es_collection_search(c, &rq, &hits, &nh, &err), 0);
	*first = nh > 0 && !hits[0].id.is_str && hits[0].id.num == id;
	es_hits_free(hits, nh);
	return nh;
}

START_TEST(test_parallel_apply_prefix)
{
	es_error err;
	es_registry *r;
	ck_assert_int_eq(es_registry_new(NULL, &r, &err), 0);
	es_pool *pool = es_pool_new(3);
	es_registry_set_pool(r, pool);
	gate g;
	memset(&g, 0, sizeof g);
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	es_mutation_observer o = {&g, NULL, NULL, g_upsert, g_delete, NULL, NULL};
	es_registry_set_observer(r, &o);
	es_collection_params p = params(PA_D, ES_METRIC_L2);
	es_collection *c;
	ck_assert_int_eq(es_registry_create(r, "pa", &p, &c, &err), 0);
	pa_writer w[2];
	for (int k = 0; k < 2; k++) {
		w[k].c = c;
		w[k].base = 1000 * (uint64_t)(k + 1);
		w[k].v = malloc((size_t)PA_N * PA_D * sizeof(float));
		for (int i = 0; i < PA_N; i++)
			pa_vec(w[k].base + (uint64_t)i, w[k].v + (size_t)i * PA_D);
	}
	ck_assert_int_eq(pthread_create(&w[0].th, NULL, pa_main, &w[0]), 0);
	gate_wait_placed(&g, 1);
	ck_assert_int_eq(pthread_create(&w[1].th, NULL, pa_main, &w[1]), 0);
	gate_wait_placed(&g, 2); /* both batches are in the graph now, pending */
	gate_release(&g, 2, 0);
	usleep(20000);
	int first;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < PA_N; i += 37) {
			ck_assert(isnan(pa_x(c, w[k].base + (uint64_t)i)));
			ck_assert_uint_eq(pa_search(c, w[k].v + (size_t)i * PA_D, 0, &first), 0);
		}
	ck_assert_uint_eq(es_collection_count(c), 0);
	/* a snapshot now holds neither batch: both are replayed after it */
	FILE *f = tmpfile();
	struct save_note n = {-1, 0};
	ck_assert_int_eq(es_collection_save(c, f, note_queue, &n, &err), 0);
	ck_assert_int_eq(n.pending, 1);
	ck_assert_uint_eq(n.oldest, 1);
	rewind(f);
	es_collection *snap;
	ck_assert_int_eq(es_collection_load(f, "pa", NULL, &snap, &err), 0);
	fclose(f);
	ck_assert_uint_eq(es_collection_count(snap), 0);
	ck_assert_uint_eq(pa_search(snap, w[0].v, 0, &first), 0);
	es_collection_release(snap);

	gate_release(&g, 1, 0);
	for (int k = 0; k < 2; k++) {
		pthread_join(w[k].th, NULL);
		ck_assert_int_eq(w[k].rc, 0);
	}
	ck_assert_uint_eq(es_collection_count(c), 2 * PA_N);
	size_t found = 0;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < PA_N; i++) {
			ck_assert_float_eq(pa_x(c, w[k].base + (uint64_t)i),
					   w[k].v[(size_t)i * PA_D]);
			pa_search(c, w[k].v + (size_t)i * PA_D, w[k].base + (uint64_t)i, &first);
			found += first != 0;
		}
	/* the batches built in parallel make one searchable graph */
	ck_assert_uint_ge(found, 2 * PA_N * 99 / 100);
	for (int k = 0; k < 2; k++)
		free(w[k].v);
	es_collection_release(c);
	es_registry_free(r);
	es_pool_free(pool);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
}
END_TEST

/* --- failing allocator ---------------------------------------------------- */

typedef struct dump_buf {
	char **lines;
	size_t n;
} dump_buf;

static int dump_one(void *ctx, const es_point_view *p)
{
	dump_buf *d = ctx;
	char line[512];
	int w = p->id.is_str ? snprintf(line, sizeof line, "s:%.*s|", (int)p->id.len, p->id.str)
			     : snprintf(line, sizeof line, "n:%llu|", (unsigned long long)p->id.num);
	w += snprintf(line + w, sizeof line - (size_t)w, "%.*s|", (int)p->payload_len,
		      p->payload ? p->payload : "(none)");
	for (int j = 0; p->vector && j < 4; j++)
		w += snprintf(line + w, sizeof line - (size_t)w, "%a,", (double)p->vector[j]);
	if (!p->vector)
		w += snprintf(line + w, sizeof line - (size_t)w, "(no vector)");
	d->lines = realloc(d->lines, (d->n + 1) * sizeof *d->lines);
	d->lines[d->n++] = strdup(line);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every point (id, payload, vector) as sorted text: the logical state. */
static char *dump(es_collection *c)
{
	dump_buf d = {NULL, 0};
	ck_assert_int_eq(es_collection_foreach(c, dump_one, &d), 0);
	qsort(d.lines, d.n, sizeof *d.lines, cmp_str);
	size_t len = 1;
	for (size_t i = 0; i < d.n; i++)
		len += strlen(d.lines[i]) + 1;
	char *out = malloc(len);
	out[0] = '\0';
	for (size_t i = 0; i < d.n; i++) {
		strcat(out, d.lines[i]);
		strcat(out, "\n");
		free(d.lines[i]);
	}
	free(d.lines);
	return out;
}

/* An upsert whose Nth allocation fails, for every N (and every later one
 * too, so the rollback itself runs out of memory), leaves the collection
 * exactly as it was (points, payloads, vectors bit for bit, count) and
 * still usable; with enough allocations it succeeds.  The batch mixes
 * updates (with and without payloads), new numeric and string ids, and
 * labels reused from deleted points, so the rollback of each kind runs. */
START_TEST(test_upsert_out_of_memory)
{
	for (int q8 = 0; q8 < 2; q8++) {
		es_collection_params p = params(4, ES_METRIC_COSINE);
		p.quantize_int8 = q8;
		es_collection *c;
		es_error err;
		ck_assert_int_eq(es_collection_new("oom", &p, NULL, &c, &err), 0);
		float v[80][4];
		es_point_in in[80];
		char names[80][16], pay[80][32];
		memset(in, 0, sizeof in);
		for (int i = 0; i < 80; i++) {
			for (int j = 0; j < 4; j++)
				v[i][j] = (float)((i * 7 + j * 3) % 11) - 4.5f;
			in[i].vector = v[i];
			if (i % 3 == 0) {
				snprintf(names[i], sizeof names[i], "doc-%d", i);
				in[i].id = str_id(names[i]);
			} else {
				in[i].id = num_id((uint64_t)i);
			}
			if (i % 2 == 0) {
				snprintf(pay[i], sizeof pay[i], "{\"i\":%d}", i);
				in[i].payload = pay[i];
				in[i].payload_len = strlen(pay[i]);
			}
		}
		ck_assert_int_eq(es_collection_upsert(c, in, 60, &err), 0);
		es_point_id gone[] = {num_id(4), num_id(5), str_id("doc-9")};
		ck_assert_int_eq(es_collection_delete(c, gone, 3, NULL, &err), 0);
		/* the batch: 12 updates of points 10..21, then 20 new points */
		es_point_in batch[32];
		float nv[32][4];
		for (int i = 0; i < 32; i++) {
			batch[i] = in[i < 12 ? 10 + i : 48 + i];
			for (int j = 0; j < 4; j++)
				nv[i][j] = v[i][j] + 1.0f;
			batch[i].vector = nv[i];
		}
		char *before = dump(c);
		size_t count = es_collection_count(c);
		long n = 0, failures = 0;
		for (;; n++) {
			es_alloc_fail_after(n);
			int rc = es_collection_upsert(c, batch, 32, &err);
			long failed = es_alloc_fail_disarm();
			if (rc == 0)
				break;
			ck_assert_int_eq(rc, ES_ENOMEM);
			ck_assert_int_gt(failed, 0);
			failures++;
			char *now = dump(c);
			ck_assert_msg(strcmp(now, before) == 0, "fail at %ld: state changed", n);
			free(now);
			ck_assert_uint_eq(es_collection_count(c), count);
		}
		ck_assert_int_gt(failures, 5);
		ck_assert_uint_eq(es_collection_count(c), count + 20 - 0);
		char *after = dump(c);
		ck_assert_str_ne(after, before);
		free(after);
		free(before);
		/* still searchable and consistent */
		es_search_req req;
		memset(&req, 0, sizeof req);
		req.query = nv[3];
		req.k = 5;
		es_point_out *hits;
		size_t nh;
		ck_assert_int_eq(es_collection_search(c, &req, &hits, &nh, &err), 0);
		ck_assert_uint_eq(nh, 5);
		es_hits_free(hits, nh);
		es_collection_release(c);
	}
}
END_TEST

Suite *collection_suite(void)
{
	Suite *s = suite_create("collection");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_id_rules);
	tcase_add_test(tc, test_upsert_get_delete);
	tcase_add_test(tc, test_upsert_all_or_nothing);
	tcase_add_test(tc, test_huge_vectors_refused);
	tcase_add_test(tc, test_load_index_mismatch);
	tcase_add_test(tc, test_search);
	tcase_add_test(tc, test_text_points);
	tcase_add_test(tc, test_registry);
	tcase_add_test(tc, test_update_payload);
	tcase_add_test(tc, test_many_and_hash_churn);
	tcase_add_test(tc, test_churn_memory_flat);
	tcase_add_test(tc, test_upsert_out_of_memory);
	suite_add_tcase(s, tc);

	/* writers under threads; CI also runs this case under ThreadSanitizer */
	TCase *cc = tcase_create("concurrency");
	tcase_set_timeout(cc, 120);
	tcase_add_test(cc, test_commit_queue);
	tcase_add_test(cc, test_commit_queue_threads);
	tcase_add_test(cc, test_parallel_apply_prefix);
	suite_add_tcase(s, cc);
	return s;
}
