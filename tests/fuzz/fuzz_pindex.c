/*
 * fuzz_pindex.c — payload indexes and the filter planner (index/
 * payload_index.c, server/filter.c's plan, index/collection.c's planned
 * walks and exact search) and scroll's order_by parser (server/points.c
 * api_order_parse), on request JSON as both dialects receive it.
 *
 * Input: three parts separated by lines "\n--\n": a filter (JSON), an
 * order_by (JSON), then payloads, one JSON value per line (at most
 * MAX_PTS; a line that is not JSON is a point without a payload).  The
 * points go into a collection with payload indexes on fixed fields
 * (keyword "a", integer "n", keyword "m.s", keyword "tag") through the
 * server's own payload hooks, so the indexes see the values the filter
 * sees.  Every fourth point has text instead of a vector.
 *
 * Invariants:
 *   - order_by: accepted, the key is non-empty; refused, a 400 naming an
 *     order_by parameter;
 *   - a filter refusal is a 400/422 naming a parameter;
 *   - an accepted filter: the planned walk (es_collection_foreach_plan,
 *     what count / scroll / delete-by-filter use) visits every point the
 *     filter accepts (a superset); when the plan is exact and an index
 *     answers its term, it visits exactly those points;
 *   - a planned dense search with k = every point returns only accepted
 *     points, best first, and when an index answers a term, every accepted
 *     point that has a vector (the exact path skips the filter for an exact
 *     plan: this checks that skipping it is right); whatever the unplanned
 *     graph walk finds, the planned search finds too;
 *   - every payload update keeps that true (the indexes follow the
 *     payloads): the checks run again after a set under "m" and an
 *     overwrite of every other point.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "collection.h"
#include "filter.h"
#include "fuzz_common.h"
#include "points.h"

#define DEPTH 32  /* the server's default max_json_depth */
#define MAX_PTS 24
#define DIM 3

static const struct {
	const char *field;
	es_pindex_kind kind;
} indexes[] = {
	{"a", ES_PINDEX_KEYWORD},
	{"n", ES_PINDEX_INTEGER},
	{"m.s", ES_PINDEX_KEYWORD},
	{"tag", ES_PINDEX_KEYWORD},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* The next part of [*s, end) up to "\n--\n" (or the end). */
static size_t part(const char **s, const char *end, const char **start)
{
	*start = *s;
	const char *sep = memmem(*s, (size_t)(end - *s), "\n--\n", 4);
	size_t n = sep ? (size_t)(sep - *s) : (size_t)(end - *s);
	*s = sep ? sep + 4 : end;
	return n;
}

static json_t *load(const char *s, size_t n)
{
	if (ju_depth(s, n, DEPTH) > DEPTH)
		return NULL; /* the server refuses it before any parser sees it */
	return json_loadb(s, n, JSON_DECODE_ANY, NULL);
}

static void check_order(const char *s, size_t n)
{
	json_t *j = load(s, n);
	if (!j)
		return;
	api_order o;
	ju_err e;
	memset(&e, 0, sizeof e);
	if (api_order_parse(j, &o, &e) == 0) {
		if (!o.key || !*o.key)
			fz_fail("order_by accepted with an empty key");
	} else if (e.status != 400 || strncmp(e.param, "order_by", 8) != 0 || !e.msg[0]) {
		fz_fail("order_by refusal %d param '%s': %s", e.status, e.param, e.msg);
	}
	json_decref(j);
}

typedef struct walk {
	const api_filter *f;
	unsigned char seen[MAX_PTS]; /* by point id */
	int bad;
} walk;

static int mark_accepted(void *ctx, const es_point_view *p)
{
	walk *w = ctx;
	if (p->id.is_str || p->id.num >= MAX_PTS)
		w->bad = 1;
	else if (api_filter_match(w->f, p))
		w->seen[p->id.num] = 1;
	return 0;
}

static int mark_visited(void *ctx, const es_point_view *p)
{
	walk *w = ctx;
	if (p->id.is_str || p->id.num >= MAX_PTS)
		w->bad = 1;
	else
		w->seen[p->id.num] = 1;
	return 0;
}

static int filter_cb(void *ctx, const es_point_view *p)
{
	return api_filter_match(ctx, p);
}

/* Is term t of the plan answered by one of the fixture's indexes? */
static int indexed(const es_pquery *q, size_t t)
{
	for (size_t i = 0; q && t < q->n && i < sizeof indexes / sizeof *indexes; i++)
		if (strcmp(q->terms[t].field, indexes[i].field) == 0 &&
		    q->terms[t].kind == indexes[i].kind)
			return 1;
	return 0;
}

static size_t search(es_collection *c, const api_filter *f, int planned, uint64_t *ids)
{
	static const float qv[DIM] = {0.3f, -0.2f, 0.9f};
	es_search_req rq;
	memset(&rq, 0, sizeof rq);
	rq.mode = ES_SEARCH_DENSE;
	rq.query = qv;
	rq.k = MAX_PTS;
	rq.ef = 4 * MAX_PTS;
	rq.filter = filter_cb;
	rq.filter_ctx = (void *)f;
	rq.plan = planned ? api_filter_plan(f) : NULL;
	es_point_out *hits;
	size_t nh;
	es_error err;
	if (es_collection_search(c, &rq, &hits, &nh, &err))
		fz_fail("search: %s", err.msg);
	for (size_t i = 0; i < nh; i++) {
		ids[i] = hits[i].id.num;
		if (i > 0 && hits[i].score > hits[i - 1].score)
			fz_fail("hits out of order");
	}
	es_hits_free(hits, nh);
	return nh;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void check_filter(es_collection *c, const api_filter *f, const unsigned char *has_vec)
{
	walk acc = {f, {0}, 0}, vis = {f, {0}, 0};
	es_collection_foreach(c, mark_accepted, &acc);
	const es_pquery *q = api_filter_plan(f);
	if (es_collection_foreach_plan(c, q, 0, 0, mark_visited, &vis) < 0)
		fz_fail("planned walk failed");
	if (acc.bad || vis.bad)
		fz_fail("a walk saw a point that was never added");
	int exact = q && q->exact && indexed(q, 0), by_index = 0;
	for (size_t t = 0; q && t < q->n; t++)
		by_index |= indexed(q, t);
	size_t want = 0;
	for (size_t i = 0; i < MAX_PTS; i++) {
		if (acc.seen[i] && !vis.seen[i])
			fz_fail("point %zu: accepted by the filter, missed by the plan", i);
		if (exact && vis.seen[i] && !acc.seen[i])
			fz_fail("point %zu: in an exact plan, refused by the filter", i);
		want += acc.seen[i] && has_vec[i];
	}
	uint64_t a[MAX_PTS], b[MAX_PTS];
	size_t na = search(c, f, 1, a), nb = search(c, f, 0, b);
	if (by_index ? na != want : na > want)
		fz_fail("planned search: %zu hits, %zu accepted points", na, want);
	for (size_t i = 0; i < na; i++)
		if (a[i] >= MAX_PTS || !acc.seen[a[i]])
			fz_fail("planned search returned point %llu, refused by the filter",
				(unsigned long long)a[i]);
	/* the graph walk may miss points (it is approximate); what it finds
	 * the exact path finds too */
	qsort(a, na, sizeof *a, cmp_u64);
	for (size_t i = 0; i < nb; i++)
		if (!bsearch(&b[i], a, na, sizeof *a, cmp_u64))
			fz_fail("unplanned search found point %llu, the planned one did not",
				(unsigned long long)b[i]);
}

static void update(es_collection *c, const char *op, const es_point_id *ids, size_t n)
{
	es_error err;
	if (es_collection_update_payload(c, op, strlen(op), ids, n, NULL, &err))
		fz_fail("payload update: %s", err.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size, *p;
	size_t fn = part(&s, end, &p);
	const char *fs = p;
	size_t on = part(&s, end, &p);
	check_order(p, on);

	json_t *fj = load(fs, fn);
	if (!fj)
		return 0;
	api_filter *f = NULL;
	if (fz_filter_parse(fj, &f)) {
		json_decref(fj);
		return 0;
	}
	if (!f) {
		json_decref(fj);
		return 0;
	}

	es_registry *r;
	es_collection *c;
	es_error err;
	es_collection_params cp;
	memset(&cp, 0, sizeof cp);
	cp.dim = DIM;
	cp.metric = ES_METRIC_COSINE;
	if (es_registry_new(api_payload_hooks(), &r, &err) ||
	    es_registry_create(r, "p", &cp, &c, &err))
		fz_fail("fixture: %s", err.msg);
	for (size_t i = 0; i < sizeof indexes / sizeof *indexes; i++)
		if (es_collection_create_index(c, indexes[i].field, indexes[i].kind, &err))
			fz_fail("index %s: %s", indexes[i].field, err.msg);

	/* the payload lines: only JSON objects become payloads, as the API
	 * only takes objects */
	static es_point_in in[MAX_PTS];
	static float vec[MAX_PTS][DIM];
	static char *texts[MAX_PTS];
	unsigned char has_vec[MAX_PTS] = {0};
	size_t np = 0;
	while (np < MAX_PTS && s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
		json_t *pl = load(s, len);
		memset(&in[np], 0, sizeof in[np]);
		in[np].id.num = np;
		texts[np] = NULL;
		if (json_is_object(pl) && !ju_has_u64(pl)) {
			texts[np] = json_dumps(pl, JSON_COMPACT);
			in[np].payload = texts[np];
			in[np].payload_len = texts[np] ? strlen(texts[np]) : 0;
		}
		json_decref(pl);
		/* every fourth point has text and no vector */
		if (np % 4 == 3) {
			in[np].text = "the police";
			in[np].text_len = 10;
		} else {
			for (size_t j = 0; j < DIM; j++)
				vec[np][j] = (float)((np * 7 + j * 3) % 11) - 5.0f + 0.5f;
			in[np].vector = vec[np];
			has_vec[np] = 1;
		}
		np++;
		s = nl ? nl + 1 : end;
	}
	if (np && es_collection_upsert(c, in, np, &err))
		fz_fail("upsert: %s", err.msg);
	for (size_t i = 0; i < np; i++)
		free(texts[i]);

	check_filter(c, f, has_vec);
	/* the indexes follow payload updates */
	es_point_id ids[MAX_PTS];
	size_t nodd = 0;
	for (size_t i = 1; i < np; i += 2)
		ids[nodd++] = (es_point_id){0, i, NULL, 0};
	if (nodd) {
		update(c, "{\"op\":\"overwrite\",\"payload\":{\"a\":\"x\",\"n\":3,\"tag\":[\"x\",\"y\"]}}",
		       ids, nodd);
		update(c, "{\"op\":\"set\",\"key\":\"m\",\"payload\":{\"s\":\"x\"}}", ids, nodd / 2 + 1);
		update(c, "{\"op\":\"delete\",\"keys\":[\"n\"]}", ids, nodd / 3 + 1);
		check_filter(c, f, has_vec);
	}

	es_collection_release(c);
	es_registry_free(r);
	api_filter_free(f);
	json_decref(fj);
	return 0;
}
