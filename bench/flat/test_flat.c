/*
 * test_flat.c — index/flat against a brute-force double-precision reference.
 *
 * Two kinds of data:
 *   - exact data: small integers (dot, L2) or unit vectors with four
 *     components of +-1/2 (cosine), so every float score is exact whatever
 *     the summation order: results must equal the reference exactly,
 *     labels and order included, with many exact ties (and duplicate rows)
 *     that must be broken by the lower label;
 *   - random floats: every reported score within a stated tolerance of the
 *     reference (2e-6 * d for components in [-1, 1]), results sorted best
 *     first, and no row left out that the reference scores better than a
 *     returned one by more than the tolerance.
 * Each case runs the single-query and the batch path with no pool and with
 * pools of 1, 2 and 3 threads: every configuration of a path gives bitwise
 * the same hits, and batch and single agree (same scores bitwise where they
 * return the same label).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat.h"

/* ------------------------------------------------------------ helpers */

/* ck_assert_msg records a checkpoint (a write to Check's pipe) even when it
 * passes; in the inner loops that is millions of syscalls, so they use
 * this, which only talks to Check on failure. */
#define EXPECT(cond, ...) \
	do { \
		if (!(cond)) \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static float frand(void) /* [-1, 1) */
{
	return (float)((next_u64() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Internal reference score, higher is better (L2: minus the distance). */
typedef struct ref {
	double s;
	uint64_t label;
} ref;

static double ref_score(const float *q, const float *x, uint32_t d, es_metric m)
{
	double dot = 0, qq = 0, xx = 0, l2 = 0;
	for (uint32_t i = 0; i < d; i++) {
		dot += (double)q[i] * x[i];
		qq += (double)q[i] * q[i];
		xx += (double)x[i] * x[i];
		l2 += ((double)q[i] - x[i]) * ((double)q[i] - x[i]);
	}
	switch (m) {
	case ES_METRIC_COSINE: return dot / (sqrt(qq) * sqrt(xx));
	case ES_METRIC_DOT: return dot;
	case ES_METRIC_L2: return -sqrt(l2);
	}
	return 0;
}

static int ref_cmp(const void *pa, const void *pb)
{
	const ref *a = pa, *b = pb;
	if (a->s > b->s) return -1;
	if (a->s < b->s) return 1;
	return (a->label > b->label) - (a->label < b->label);
}

static int ref_label_cmp(const void *pa, const void *pb)
{
	const ref *a = pa, *b = pb;
	return (a->label > b->label) - (a->label < b->label);
}

static int u64_cmp(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return (a > b) - (a < b);
}

/* A data set kept by the test, mirroring what was added to the index. */
typedef struct dataset {
	uint32_t d;
	size_t n;
	float *x;        /* n x d, as added (not normalised) */
	uint64_t *labels;
} dataset;

/* Check hits for query q against the reference.  exact: labels and order
 * must equal the reference's; else scores within tol and no better row
 * missing.  Returns nothing; fails the test with ctx in the message. */
static void check_hits(const dataset *ds, es_metric m, const float *q,
		       uint32_t k, const es_hit *hits, size_t nout, int exact,
		       const char *ctx)
{
	const uint32_t d = ds->d;
	size_t kk = k < ds->n ? k : ds->n;
	EXPECT(nout == kk, "%s: %zu hits, want %zu", ctx, nout, kk);
	ref *r = malloc((ds->n ? ds->n : 1) * sizeof *r);
	ck_assert_ptr_nonnull(r);
	for (size_t i = 0; i < ds->n; i++) {
		r[i].s = ref_score(q, ds->x + i * d, d, m);
		r[i].label = ds->labels[i];
	}
	double tol = exact ? 0 : 2e-6 * d;
	/* reported -> internal */
	double got[nout ? nout : 1];
	for (size_t i = 0; i < nout; i++)
		got[i] = m == ES_METRIC_L2 ? -(double)hits[i].score : hits[i].score;
	/* best first, ties by lower label */
	for (size_t i = 1; i < nout; i++)
		EXPECT(got[i - 1] > got[i] ||
			      (got[i - 1] == got[i] && hits[i - 1].label < hits[i].label),
			      "%s: hits %zu and %zu out of order (%.9g/%llu, %.9g/%llu)",
			      ctx, i - 1, i, got[i - 1],
			      (unsigned long long)hits[i - 1].label, got[i],
			      (unsigned long long)hits[i].label);
	if (exact) {
		qsort(r, ds->n, sizeof *r, ref_cmp);
		for (size_t i = 0; i < nout; i++) {
			EXPECT(hits[i].label == r[i].label,
				      "%s: hit %zu is label %llu (%.9g), reference %llu (%.9g)",
				      ctx, i, (unsigned long long)hits[i].label,
				      got[i], (unsigned long long)r[i].label, r[i].s);
			double e = m == ES_METRIC_L2 ? 1e-6 * fabs(r[i].s) : 0;
			EXPECT(fabs(got[i] - r[i].s) <= e,
				      "%s: hit %zu score %.9g, reference %.9g", ctx,
				      i, got[i], r[i].s);
		}
		free(r);
		return;
	}
	/* tolerance mode: each score near its reference, distinct labels, and
	 * no row outside the hits better than the worst hit by more than tol */
	qsort(r, ds->n, sizeof *r, ref_label_cmp);
	uint64_t hl[nout ? nout : 1];
	double worst = INFINITY;
	for (size_t i = 0; i < nout; i++) {
		ref key = {0, hits[i].label};
		ref *f = bsearch(&key, r, ds->n, sizeof *r, ref_label_cmp);
		EXPECT(f != NULL, "%s: hit label %llu not in the data", ctx,
			      (unsigned long long)hits[i].label);
		EXPECT(fabs(got[i] - f->s) <= tol,
			      "%s: label %llu score %.9g, reference %.9g", ctx,
			      (unsigned long long)hits[i].label, got[i], f->s);
		if (f->s < worst)
			worst = f->s;
		hl[i] = hits[i].label;
	}
	qsort(hl, nout, sizeof *hl, u64_cmp);
	for (size_t i = 1; i < nout; i++)
		EXPECT(hl[i - 1] != hl[i], "%s: label %llu returned twice",
			      ctx, (unsigned long long)hl[i]);
	for (size_t i = 0; i < ds->n; i++) {
		if (bsearch(&r[i].label, hl, nout, sizeof *hl, u64_cmp))
			continue;
		EXPECT(r[i].s <= worst + tol,
			      "%s: label %llu (%.9g) missing, worst hit %.9g", ctx,
			      (unsigned long long)r[i].label, r[i].s, worst);
	}
	free(r);
}

static flat_index *build(const dataset *ds, es_metric m)
{
	flat_index *idx = NULL;
	es_error err;
	ck_assert_int_eq(flat_new(ds->d, m, &idx, &err), 0);
	/* add in two calls to exercise growth */
	size_t h = ds->n / 2;
	ck_assert_int_eq(flat_add(idx, ds->x, h, ds->labels, &err), 0);
	ck_assert_int_eq(flat_add(idx, ds->x + h * ds->d, ds->n - h,
				  ds->labels + h, &err), 0);
	ck_assert_uint_eq(flat_count(idx), ds->n);
	return idx;
}

/* Run nq queries through every path and thread count; check each against
 * the reference and against each other. */
static void run_case(const dataset *ds, es_metric m, const float *qs,
		     size_t nq, uint32_t k, int exact)
{
	flat_index *idx = build(ds, m);
	es_error err;
	es_pool *pools[4] = {NULL, es_pool_new(1), es_pool_new(2), es_pool_new(3)};
	for (int p = 1; p < 4; p++)
		ck_assert_ptr_nonnull(pools[p]);
	es_hit *single[4], *batch[4];
	size_t kk = k < ds->n ? k : ds->n;
	char ctx[160];
	for (int p = 0; p < 4; p++) {
		single[p] = calloc(nq * k, sizeof(es_hit));
		batch[p] = calloc(nq * k, sizeof(es_hit));
		ck_assert(single[p] && batch[p]);
		for (size_t i = 0; i < nq; i++) {
			size_t nout = 99;
			ck_assert_int_eq(flat_search(idx, qs + i * ds->d, k,
						     single[p] + i * k, &nout,
						     pools[p], &err), 0);
			ck_assert_uint_eq(nout, kk);
		}
		size_t nout = 99;
		ck_assert_int_eq(flat_search_batch(idx, qs, nq, k, batch[p], &nout,
						   pools[p], &err), 0);
		ck_assert_uint_eq(nout, kk);
	}
	for (size_t i = 0; i < nq; i++) {
		snprintf(ctx, sizeof ctx, "%s d=%u n=%zu k=%u nq=%zu query %zu single",
			 es_metric_name(m), ds->d, ds->n, k, nq, i);
		check_hits(ds, m, qs + i * ds->d, k, single[0] + i * k, kk, exact, ctx);
		snprintf(ctx, sizeof ctx, "%s d=%u n=%zu k=%u nq=%zu query %zu batch",
			 es_metric_name(m), ds->d, ds->n, k, nq, i);
		check_hits(ds, m, qs + i * ds->d, k, batch[0] + i * k, kk, exact, ctx);
		for (size_t j = 0; j < kk; j++) {
			const es_hit *s0 = &single[0][i * k + j], *b0 = &batch[0][i * k + j];
			for (int p = 1; p < 4; p++) {
				const es_hit *sp = &single[p][i * k + j], *bp = &batch[p][i * k + j];
				EXPECT(sp->label == s0->label && sp->score == s0->score,
					      "%s d=%u query %zu hit %zu: single differs with %d threads",
					      es_metric_name(m), ds->d, i, j, p);
				EXPECT(bp->label == b0->label && bp->score == b0->score,
					      "%s d=%u query %zu hit %zu: batch differs with %d threads",
					      es_metric_name(m), ds->d, i, j, p);
			}
			if (exact)
				EXPECT(b0->label == s0->label,
					      "%s query %zu hit %zu: batch label %llu, single %llu",
					      es_metric_name(m), i, j,
					      (unsigned long long)b0->label,
					      (unsigned long long)s0->label);
			if (b0->label == s0->label)
				EXPECT(b0->score == s0->score,
					      "%s query %zu hit %zu: batch score %.9g, single %.9g",
					      es_metric_name(m), i, j, b0->score, s0->score);
		}
	}
	for (int p = 0; p < 4; p++) {
		free(single[p]);
		free(batch[p]);
		es_pool_free(pools[p]);
	}
	flat_free(idx);
}

static void dataset_alloc(dataset *ds, uint32_t d, size_t n)
{
	ds->d = d;
	ds->n = n;
	ds->x = malloc((n ? n : 1) * d * sizeof(float));
	ds->labels = malloc((n ? n : 1) * sizeof(uint64_t));
	ck_assert(ds->x && ds->labels);
	/* distinct, unordered labels spread over the whole uint64 range (an
	 * odd multiplier is a bijection), so ties cannot follow row order */
	for (size_t i = 0; i < n; i++)
		ds->labels[i] = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
}

static void dataset_free(dataset *ds)
{
	free(ds->x);
	free(ds->labels);
}

/* Exact data: integer components for dot/L2, unit vectors with four +-1/2
 * components (one +-1 when d < 4) for cosine; every 5th row duplicates an earlier one. */
static void fill_exact(float *v, uint32_t d, es_metric m)
{
	if (m == ES_METRIC_COSINE) {
		/* four components of +-1/2, or one of +-1 when d < 4 */
		memset(v, 0, d * sizeof *v);
		int nz = d >= 4 ? 4 : 1;
		for (int c = 0; c < nz; c++) {
			uint32_t j;
			do
				j = (uint32_t)(next_u64() % d);
			while (v[j] != 0);
			v[j] = (next_u64() & 1 ? 1.0f : -1.0f) / (nz == 4 ? 2.0f : 1.0f);
		}
	} else {
		for (uint32_t j = 0; j < d; j++)
			v[j] = (float)((int)(next_u64() % 5) - 2);
	}
}

static void exact_case(es_metric m, uint32_t d, size_t n, size_t nq, uint32_t k)
{
	dataset ds;
	dataset_alloc(&ds, d, n);
	for (size_t i = 0; i < n; i++) {
		if (i % 5 == 4)
			memcpy(ds.x + i * d, ds.x + (next_u64() % i) * d, d * sizeof(float));
		else
			fill_exact(ds.x + i * d, d, m);
	}
	float *qs = malloc(nq * d * sizeof *qs);
	for (size_t i = 0; i < nq; i++)
		fill_exact(qs + i * d, d, m);
	run_case(&ds, m, qs, nq, k, 1);
	free(qs);
	dataset_free(&ds);
}

static void random_case(es_metric m, uint32_t d, size_t n, size_t nq, uint32_t k)
{
	dataset ds;
	dataset_alloc(&ds, d, n);
	for (size_t i = 0; i < n * d; i++)
		ds.x[i] = frand();
	float *qs = malloc(nq * d * sizeof *qs);
	for (size_t i = 0; i < nq * d; i++)
		qs[i] = frand();
	run_case(&ds, m, qs, nq, k, 0);
	free(qs);
	dataset_free(&ds);
}

static const es_metric metrics[] = {ES_METRIC_COSINE, ES_METRIC_DOT, ES_METRIC_L2};

/* ---------------------------------------------------------------- tests */

START_TEST(test_exact_ties)
{
	es_metric m = metrics[_i];
	/* n crosses the 256-row scan block, the 1024-row sgemm block and the
	 * thread grain; nq crosses the batch threshold and a 128-query block */
	exact_case(m, 8, 50, 5, 7);
	exact_case(m, 17, 2500, 130, 10);
	exact_case(m, 3, 300, 6, 40);      /* d = 3: huge tie groups */
	exact_case(m, 16, 1100, 4, 1);
	exact_case(m, 5, 20, 4, 25);       /* k > n */
	exact_case(m, 1, 9, 1, 4);         /* d = 1, one-query batch */
	exact_case(m, 6, 40, 2, 3);        /* smallest sgemm batch */
}
END_TEST

START_TEST(test_random_vs_reference)
{
	es_metric m = metrics[_i];
	random_case(m, 1, 40, 5, 3);
	random_case(m, 3, 257, 9, 10);
	random_case(m, 100, 3000, 20, 10);
	random_case(m, 17, 1025, 129, 50);
	random_case(m, 64, 700, 4, 700);   /* k = n: everything, sorted */
	random_case(m, 33, 10, 8, 64);     /* k > n */
}
END_TEST

/* More queries than one group (1024): two groups through sgemm. */
START_TEST(test_batch_groups)
{
	random_case(ES_METRIC_DOT, 16, 2100, 1100, 5);
}
END_TEST

START_TEST(test_add_update_delete)
{
	const uint32_t d = 12;
	const size_t n = 3000;
	dataset ds;
	dataset_alloc(&ds, d, n);
	for (size_t i = 0; i < n * d; i++)
		ds.x[i] = frand();
	flat_index *idx = build(&ds, ES_METRIC_L2);
	es_error err;

	/* update: same label, new vector; count unchanged */
	float nv[12], got[12];
	for (uint32_t j = 0; j < d; j++)
		nv[j] = 10.0f + (float)j;
	ck_assert_int_eq(flat_add(idx, nv, 1, &ds.labels[7], &err), 0);
	ck_assert_uint_eq(flat_count(idx), n);
	memcpy(ds.x + 7 * d, nv, sizeof nv);
	ck_assert_int_eq(flat_get_vector(idx, ds.labels[7], got), 0);
	ck_assert_mem_eq(got, nv, sizeof nv);
	es_hit hit;
	size_t nout;
	ck_assert_int_eq(flat_search(idx, nv, 1, &hit, &nout, NULL, &err), 0);
	ck_assert_uint_eq(hit.label, ds.labels[7]);
	ck_assert_float_eq(hit.score, 0.0f);

	/* delete two thirds in random order, mirror in ds, search again */
	for (size_t i = n; i > 1; i--) { /* shuffle rows of ds */
		size_t j = next_u64() % i;
		float tmp[12];
		memcpy(tmp, ds.x + (i - 1) * d, sizeof tmp);
		memcpy(ds.x + (i - 1) * d, ds.x + j * d, sizeof tmp);
		memcpy(ds.x + j * d, tmp, sizeof tmp);
		uint64_t t = ds.labels[i - 1];
		ds.labels[i - 1] = ds.labels[j];
		ds.labels[j] = t;
	}
	size_t keep = n / 3;
	for (size_t i = keep; i < n; i++)
		ck_assert_int_eq(flat_delete(idx, ds.labels[i]), 0);
	for (size_t i = keep; i < n; i++) {
		ck_assert(!flat_contains(idx, ds.labels[i]));
		ck_assert_int_eq(flat_delete(idx, ds.labels[i]), ES_ENOTFOUND);
		ck_assert_int_eq(flat_get_vector(idx, ds.labels[i], got), ES_ENOTFOUND);
	}
	for (size_t i = 0; i < keep; i++) {
		ck_assert(flat_contains(idx, ds.labels[i]));
		ck_assert_int_eq(flat_get_vector(idx, ds.labels[i], got), 0);
		ck_assert_mem_eq(got, ds.x + i * d, d * sizeof(float));
	}
	ck_assert_uint_eq(flat_count(idx), keep);
	ds.n = keep;
	es_pool *pool = es_pool_new(2);
	float q[12];
	es_hit hits[20];
	for (int t = 0; t < 10; t++) {
		for (uint32_t j = 0; j < d; j++)
			q[j] = frand();
		ck_assert_int_eq(flat_search(idx, q, 20, hits, &nout, pool, &err), 0);
		check_hits(&ds, ES_METRIC_L2, q, 20, hits, nout, 0, "after delete");
	}
	/* re-add deleted labels; delete everything; empty index */
	ck_assert_int_eq(flat_add(idx, ds.x, 1, &ds.labels[keep], &err), 0);
	ck_assert(flat_contains(idx, ds.labels[keep]));
	ck_assert_int_eq(flat_delete(idx, ds.labels[keep]), 0);
	for (size_t i = 0; i < keep; i++)
		ck_assert_int_eq(flat_delete(idx, ds.labels[i]), 0);
	ck_assert_uint_eq(flat_count(idx), 0);
	nout = 5;
	ck_assert_int_eq(flat_search(idx, q, 3, hits, &nout, pool, &err), 0);
	ck_assert_uint_eq(nout, 0);
	ck_assert_int_eq(flat_search_batch(idx, q, 1, 3, hits, &nout, pool, &err), 0);
	ck_assert_uint_eq(nout, 0);
	es_pool_free(pool);
	flat_free(idx);
	dataset_free(&ds);
}
END_TEST

START_TEST(test_default_labels_and_cosine_storage)
{
	flat_index *idx;
	es_error err;
	ck_assert_int_eq(flat_new(2, ES_METRIC_COSINE, &idx, &err), 0);
	float v[6] = {3, 4, 0, -2, 1e30f, 1e30f}; /* huge but finite: no overflow */
	ck_assert_int_eq(flat_add(idx, v, 3, NULL, &err), 0);
	ck_assert_uint_eq(flat_count(idx), 3);
	ck_assert_uint_eq(flat_dim(idx), 2);
	ck_assert_int_eq(flat_metric(idx), ES_METRIC_COSINE);
	float got[2];
	ck_assert_int_eq(flat_get_vector(idx, 0, got), 0);
	ck_assert_float_eq_tol(got[0], 0.6f, 1e-7);
	ck_assert_float_eq_tol(got[1], 0.8f, 1e-7);
	ck_assert_int_eq(flat_get_vector(idx, 2, got), 0);
	ck_assert_float_eq_tol(got[0], (float)M_SQRT1_2, 1e-7);
	float q[2] = {0, 5};
	es_hit hits[3];
	size_t nout;
	ck_assert_int_eq(flat_search(idx, q, 3, hits, &nout, NULL, &err), 0);
	ck_assert_uint_eq(nout, 3);
	ck_assert_uint_eq(hits[0].label, 0);
	ck_assert_float_eq_tol(hits[0].score, 0.8f, 1e-6);
	ck_assert_uint_eq(hits[2].label, 1);
	ck_assert_float_eq_tol(hits[2].score, -1.0f, 1e-6);
	flat_free(idx);
}
END_TEST

/* Huge finite values overflow float scores to inf/NaN: the result still
 * has min(k, n) distinct hits and no crash. */
START_TEST(test_overflowing_scores)
{
	flat_index *idx;
	es_error err;
	ck_assert_int_eq(flat_new(2, ES_METRIC_DOT, &idx, &err), 0);
	float v[8] = {3e38f, -3e38f, 3e38f, 3e38f, -3e38f, -3e38f, 1, 1};
	ck_assert_int_eq(flat_add(idx, v, 4, NULL, &err), 0);
	float q[8] = {3e38f, 3e38f, 1, 1, -1, 2, 3e38f, -3e38f};
	es_hit hits[4 * 4];
	size_t nout;
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(flat_search(idx, q + 2 * i, 4, hits, &nout, NULL, &err), 0);
		ck_assert_uint_eq(nout, 4);
		uint64_t seen = 0;
		for (int j = 0; j < 4; j++)
			seen |= 1u << hits[j].label;
		ck_assert_uint_eq(seen, 15);
	}
	ck_assert_int_eq(flat_search_batch(idx, q, 4, 4, hits, &nout, NULL, &err), 0);
	ck_assert_uint_eq(nout, 4);
	for (int i = 0; i < 4; i++) {
		uint64_t seen = 0;
		for (int j = 0; j < 4; j++)
			seen |= 1u << hits[i * 4 + j].label;
		ck_assert_uint_eq(seen, 15);
	}
	flat_free(idx);
}
END_TEST

START_TEST(test_bad_arguments)
{
	flat_index *idx = NULL;
	es_error err;
	ck_assert_int_eq(flat_new(0, ES_METRIC_DOT, &idx, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "dimension"));
	ck_assert_int_eq(flat_new(FLAT_MAX_DIM + 1, ES_METRIC_DOT, &idx, &err), ES_EINVAL);
	ck_assert_int_eq(flat_new(4, (es_metric)7, &idx, &err), ES_EINVAL);
	ck_assert_ptr_null(idx);
	ck_assert_int_eq(flat_new(4, ES_METRIC_DOT, NULL, &err), ES_EINVAL);

	ck_assert_int_eq(flat_new(4, ES_METRIC_COSINE, &idx, &err), 0);
	float good[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	ck_assert_int_eq(flat_add(idx, good, 2, NULL, &err), 0);

	float bad[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
	ck_assert_int_eq(flat_add(idx, bad, 2, NULL, &err), ES_EINVAL);
	ck_assert_msg(strstr(err.msg, "vector 1") && strstr(err.msg, "element 1") &&
		      strstr(err.msg, "NaN"), "message: %s", err.msg);
	ck_assert_uint_eq(flat_count(idx), 2); /* unchanged: nothing added */
	bad[5] = INFINITY;
	ck_assert_int_eq(flat_add(idx, bad, 2, NULL, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "infinite"));
	float zero[4] = {0};
	ck_assert_int_eq(flat_add(idx, zero, 1, NULL, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "zero vector"));
	ck_assert_int_eq(flat_add(idx, NULL, 1, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_add(NULL, good, 1, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_add(idx, NULL, 0, NULL, &err), 0);
	ck_assert_uint_eq(flat_count(idx), 2);

	es_hit hits[8];
	size_t nout = 77;
	ck_assert_int_eq(flat_search(idx, good, 0, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "k must"));
	ck_assert_uint_eq(nout, 0);
	ck_assert_int_eq(flat_search(idx, NULL, 1, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_search(idx, good, 1, NULL, &nout, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_search(idx, good, 1, hits, NULL, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_search(NULL, good, 1, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_search(idx, zero, 1, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "query 0 is a zero vector"));
	ck_assert_int_eq(flat_search(idx, bad + 4, 1, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "query 0: element 1"));

	float qs[6 * 4];
	for (int i = 0; i < 24; i++)
		qs[i] = (float)(i + 1);
	qs[5 * 4 + 2] = NAN;
	ck_assert_int_eq(flat_search_batch(idx, qs, 6, 1, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_msg(strstr(err.msg, "query 5: element 2"), "message: %s", err.msg);
	ck_assert_int_eq(flat_search_batch(idx, qs, 5, 0, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_search_batch(idx, NULL, 5, 1, hits, &nout, NULL, &err), ES_EINVAL);
	ck_assert_int_eq(flat_search_batch(idx, qs, 0, 1, hits, &nout, NULL, &err), 0);
	ck_assert_int_eq(flat_search_batch(idx, qs, 5, 1, hits, &nout, NULL, &err), 0);
	ck_assert_uint_eq(nout, 1);
	/* NULL err is allowed everywhere */
	ck_assert_int_eq(flat_search(idx, zero, 1, hits, &nout, NULL, NULL), ES_EINVAL);
	ck_assert_int_eq(flat_delete(idx, 12345), ES_ENOTFOUND);
	ck_assert_int_eq(flat_delete(NULL, 0), ES_EINVAL);
	ck_assert(!flat_contains(NULL, 0));
	flat_free(idx);
	flat_free(NULL);
}
END_TEST

Suite *flat_suite(void)
{
	Suite *s = suite_create("flat");
	TCase *tc = tcase_create("search");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_exact_ties, 0, 3);
	tcase_add_loop_test(tc, test_random_vs_reference, 0, 3);
	tcase_add_test(tc, test_batch_groups);
	tcase_add_test(tc, test_add_update_delete);
	tcase_add_test(tc, test_default_labels_and_cosine_storage);
	tcase_add_test(tc, test_overflowing_scores);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
