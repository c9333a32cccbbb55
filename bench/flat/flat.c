/*
 * flat.c — exact top-k search; see flat.h for the contract.
 *
 * Internally every metric is turned into a "higher is better" score s:
 *   cosine, dot  s = q . x
 *   L2 (single)  s = -|q - x|^2              (squared-L2 kernel)
 *   L2 (batch)   s = q . x - |x|^2 / 2       (sgemm; same order as -|q-x|^2
 *                                             up to rounding, |q|^2 dropped)
 * Each worker keeps, per query, a heap of its k best (s, label) pairs with
 * the worst on top (worse = lower s, or equal s and higher label).  Score
 * blocks are scanned 16 at a time against the heap's threshold with a
 * branch-free "any >= threshold" test, so after the
 * first few thousand rows almost no score touches the heap (an SSE2
 * compare of 16 scores against the threshold per step).  The workers'
 * heaps are merged with one sort at the end.
 *
 * Non-finite scores (possible only through overflow of huge but finite
 * inputs) are ranked as -infinity, so the order stays total and the result
 * count stays min(k, count).
 *
 * The label -> row map is core/u64map.
 *
 * Threading: searches only read the index; per-call scratch (heaps, sgemm
 * blocks, normalised queries) is allocated per call and indexed by the
 * pool's worker id.  See flat.h for writers.
 */
#include "flat.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "simd.h"
#include "u64map.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Rows scored per block of the single-query scan (scores on the stack). */
#define FLAT_SCAN_BLOCK 256
/* Rows per parallel chunk of the single-query scan. */
#define FLAT_ROW_GRAIN 4096
/* Batch path: rows and queries per sgemm block.  256 rows x 1024 queries
 * (a 1 MiB score block; the 256 rows are packed by OpenBLAS once per block
 * and reused by every query) measured best of 1024x128, 512x512, 256x512,
 * 2048x256, 4096x64 and 1024x1024 (CPU time for N = 100k, d = 100, 1000
 * queries on AMD EPYC Zen 4: 0.226 s vs 0.23-0.29 s; ~88 GFLOP/s).  The
 * -D overrides exist for such tuning runs. */
#ifndef FLAT_GEMM_ROWS
#define FLAT_GEMM_ROWS 256
#endif
#ifndef FLAT_GEMM_QUERIES
#define FLAT_GEMM_QUERIES 1024
#endif
/* Batch path: queries per group (each worker keeps heaps for one group). */
#define FLAT_GROUP_QUERIES 1024
/* ... and at most this many bytes of heaps for all workers together. */
#define FLAT_GROUP_HEAP_BYTES ((size_t)64 << 20)

struct flat_index {
	uint32_t dim;
	es_metric metric;
	size_t count, cap;
	float *rows;       /* cap x dim, 64-byte aligned */
	float *norms2;     /* cap: |x|^2 of each stored row */
	uint64_t *labels;  /* cap */
	es_u64map map;     /* label -> row */
};

/* ---------------------------------------------------------------- index */

int flat_new(uint32_t dim, es_metric metric, flat_index **out, es_error *err)
{
	if (!out)
		return es_err(err, ES_EINVAL, "flat_new: out is NULL");
	*out = NULL;
	if (dim == 0 || dim > FLAT_MAX_DIM)
		return es_err(err, ES_EINVAL, "dimension %u is out of range 1..%u",
			      dim, FLAT_MAX_DIM);
	if (metric != ES_METRIC_COSINE && metric != ES_METRIC_DOT &&
	    metric != ES_METRIC_L2)
		return es_err(err, ES_EINVAL, "unknown metric %d", (int)metric);
	flat_index *idx = calloc(1, sizeof *idx);
	if (!idx)
		return es_err(err, ES_ENOMEM, "out of memory for a flat index");
	idx->dim = dim;
	idx->metric = metric;
	es_u64map_init(&idx->map);
	*out = idx;
	return 0;
}

void flat_free(flat_index *idx)
{
	if (!idx)
		return;
	free(idx->rows);
	free(idx->norms2);
	free(idx->labels);
	es_u64map_destroy(&idx->map);
	free(idx);
}

size_t flat_count(const flat_index *idx)
{
	return idx ? idx->count : 0;
}

uint32_t flat_dim(const flat_index *idx)
{
	return idx ? idx->dim : 0;
}

es_metric flat_metric(const flat_index *idx)
{
	return idx ? idx->metric : ES_METRIC_COSINE;
}

int flat_contains(const flat_index *idx, uint64_t label)
{
	uint64_t row;
	return idx && es_u64map_get(&idx->map, label, &row);
}

int flat_get_vector(const flat_index *idx, uint64_t label, float *out)
{
	if (!idx || !out)
		return ES_EINVAL;
	uint64_t row;
	if (!es_u64map_get(&idx->map, label, &row))
		return ES_ENOTFOUND;
	memcpy(out, idx->rows + row * idx->dim,
	       idx->dim * sizeof *out);
	return 0;
}

/* Check one input vector ("what" number i): every element finite and,
 * under cosine, not all zero.  0 or ES_EINVAL with a message. */
static int check_vector(const float *v, uint32_t dim, es_metric metric,
			const char *what, size_t i, es_error *err)
{
	double n2 = 0;
	for (uint32_t j = 0; j < dim; j++) {
		if (!isfinite(v[j]))
			return es_err(err, ES_EINVAL,
				      "%s %zu: element %u is %s (must be finite)",
				      what, i, j, isnan(v[j]) ? "NaN" : "infinite");
		n2 += (double)v[j] * v[j];
	}
	if (metric == ES_METRIC_COSINE && !(n2 > 0))
		return es_err(err, ES_EINVAL,
			      "%s %zu is a zero vector: cosine similarity is "
			      "undefined for it", what, i);
	return 0;
}

/* Write what is stored/searched for a checked vector into out: a copy, or
 * under cosine the vector divided by its norm (taken in double, so huge
 * finite values do not overflow).  in == out is allowed. */
static void prep_vector(const float *in, float *out, uint32_t dim,
			es_metric metric)
{
	if (metric != ES_METRIC_COSINE) {
		if (out != in)
			memcpy(out, in, dim * sizeof *out);
		return;
	}
	double n2 = 0;
	for (uint32_t j = 0; j < dim; j++)
		n2 += (double)in[j] * in[j];
	double nrm = sqrt(n2);
	for (uint32_t j = 0; j < dim; j++)
		out[j] = (float)(in[j] / nrm);
}

/* Grow row storage to hold `need` rows; all-or-nothing. */
static int grow_rows(flat_index *idx, size_t need)
{
	if (need <= idx->cap)
		return 0;
	size_t cap = idx->cap ? idx->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > SIZE_MAX / sizeof(float) / idx->dim ||
	    cap > SIZE_MAX / sizeof(uint64_t))
		return ES_ENOMEM;
	float *rows = NULL, *norms2 = NULL;
	uint64_t *labels = NULL;
	if (posix_memalign((void **)&rows, 64, cap * idx->dim * sizeof(float)))
		rows = NULL;
	norms2 = malloc(cap * sizeof *norms2);
	labels = malloc(cap * sizeof *labels);
	if (!rows || !norms2 || !labels) {
		free(rows);
		free(norms2);
		free(labels);
		return ES_ENOMEM;
	}
	if (idx->count) {
		memcpy(rows, idx->rows, idx->count * idx->dim * sizeof(float));
		memcpy(norms2, idx->norms2, idx->count * sizeof *norms2);
		memcpy(labels, idx->labels, idx->count * sizeof *labels);
	}
	free(idx->rows);
	free(idx->norms2);
	free(idx->labels);
	idx->rows = rows;
	idx->norms2 = norms2;
	idx->labels = labels;
	idx->cap = cap;
	return 0;
}

int flat_add(flat_index *idx, const float *vecs, size_t n,
	     const uint64_t *labels, es_error *err)
{
	if (!idx)
		return es_err(err, ES_EINVAL, "flat_add: index is NULL");
	if (n == 0)
		return 0;
	if (!vecs)
		return es_err(err, ES_EINVAL, "flat_add: vectors are NULL");
	const uint32_t d = idx->dim;
	/* Validate everything before changing anything. */
	for (size_t i = 0; i < n; i++) {
		int rc = check_vector(vecs + i * d, d, idx->metric, "vector", i, err);
		if (rc < 0)
			return rc;
	}
	if (n > SIZE_MAX - idx->count)
		return es_err(err, ES_ENOMEM, "too many vectors");
	size_t need = idx->count + n;
	if (grow_rows(idx, need) < 0 || es_u64map_reserve(&idx->map, need) != 0)
		return es_err(err, ES_ENOMEM,
			      "out of memory for %zu vectors of dimension %u",
			      need, d);
	const simd_kernels *k = simd_get();
	const size_t base = idx->count;
	for (size_t i = 0; i < n; i++) {
		uint64_t label = labels ? labels[i] : (uint64_t)(base + i);
		uint64_t row;
		if (!es_u64map_get(&idx->map, label, &row)) {
			row = idx->count++;
			idx->labels[row] = label;
			es_u64map_put(&idx->map, label, row); /* room reserved */
		}
		float *dst = idx->rows + row * d;
		prep_vector(vecs + i * d, dst, d, idx->metric);
		idx->norms2[row] = k->dot(dst, dst, d);
	}
	return 0;
}

int flat_delete(flat_index *idx, uint64_t label)
{
	if (!idx)
		return ES_EINVAL;
	uint64_t row;
	if (!es_u64map_get(&idx->map, label, &row))
		return ES_ENOTFOUND;
	size_t last = idx->count - 1;
	es_u64map_remove(&idx->map, label);
	if (row != last) {
		const uint32_t d = idx->dim;
		memcpy(idx->rows + row * d, idx->rows + last * d, d * sizeof(float));
		idx->norms2[row] = idx->norms2[last];
		idx->labels[row] = idx->labels[last];
		size_t s = es_u64map_first(&idx->map, idx->labels[row]);
		idx->map.e[s].val = row;
	}
	idx->count--;
	return 0;
}

/* ----------------------------------------------------------------- heaps */

typedef struct cand {
	float s;       /* internal score, higher is better, never NaN */
	uint64_t label;
	size_t row;
} cand;

/* k best candidates seen so far, worst at h[0]. */
typedef struct topk {
	cand *h;
	uint32_t n, k;
} topk;

/* a is worse than b: lower score, or same score and higher label. */
static inline int cand_worse(const cand *a, const cand *b)
{
	return a->s < b->s || (a->s == b->s && a->label > b->label);
}

/* Scores below the threshold can never enter (equal ones may, by label). */
static inline float topk_threshold(const topk *t)
{
	return t->n < t->k ? -INFINITY : t->h[0].s;
}

static void topk_offer(topk *t, float s, uint64_t label, size_t row)
{
	cand c = {isnan(s) ? -INFINITY : s, label, row};
	cand *h = t->h;
	if (t->n < t->k) {
		size_t i = t->n++;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (!cand_worse(&c, &h[p]))
				break;
			h[i] = h[p];
			i = p;
		}
		h[i] = c;
		return;
	}
	if (!cand_worse(&h[0], &c))
		return;
	size_t i = 0, n = t->n;
	for (;;) {
		size_t l = 2 * i + 1, w = i;
		const cand *wc = &c;
		if (l < n && cand_worse(&h[l], wc)) {
			w = l;
			wc = &h[l];
		}
		if (l + 1 < n && cand_worse(&h[l + 1], wc))
			w = l + 1;
		if (w == i)
			break;
		h[i] = h[w];
		i = w;
	}
	h[i] = c;
}

/* Non-zero if any of x[0..16) is not below thr (NaN counts as "not
 * below").  SSE2 is part of x86-64, so no dispatch is needed; GCC does not
 * vectorise the portable loop (it keeps the comparisons' NaN semantics
 * scalar). */
static inline int any_may_enter16(const float *x, float thr)
{
#if defined(__SSE2__)
	__m128 t = _mm_set1_ps(thr);
	__m128 m = _mm_or_ps(_mm_or_ps(_mm_cmpnlt_ps(_mm_loadu_ps(x), t),
				       _mm_cmpnlt_ps(_mm_loadu_ps(x + 4), t)),
			     _mm_or_ps(_mm_cmpnlt_ps(_mm_loadu_ps(x + 8), t),
				       _mm_cmpnlt_ps(_mm_loadu_ps(x + 12), t)));
	return _mm_movemask_ps(m);
#else
	int any = 0;
	for (int u = 0; u < 16; u++)
		any |= !(x[u] < thr);
	return any;
#endif
}

/* Offer scores sc[0..n) of rows row0.. to t.  NaN passes the threshold
 * test (!(x < thr)) and is ranked -inf by topk_offer. */
static void topk_scan(topk *t, const float *sc, size_t n, size_t row0,
		      const uint64_t *labels)
{
	float thr = topk_threshold(t);
	size_t j = 0;
	for (; j + 16 <= n; j += 16) {
		if (__builtin_expect(!any_may_enter16(sc + j, thr), 1))
			continue;
		for (int u = 0; u < 16; u++)
			if (!(sc[j + u] < thr)) {
				topk_offer(t, sc[j + u], labels[row0 + j + u],
					   row0 + j + u);
				thr = topk_threshold(t);
			}
	}
	for (; j < n; j++)
		if (!(sc[j] < thr)) {
			topk_offer(t, sc[j], labels[row0 + j], row0 + j);
			thr = topk_threshold(t);
		}
}

/* Best first: higher score, then lower label. */
static int cand_cmp(const void *pa, const void *pb)
{
	const cand *a = pa, *b = pb;
	if (a->s > b->s)
		return -1;
	if (a->s < b->s)
		return 1;
	return (a->label > b->label) - (a->label < b->label);
}

/* Merge the nw heaps parts[w] into the best kk, sorted best first, in
 * buf (which holds nw*kk candidates); returns how many (<= kk). */
static size_t merge_heaps(const topk *parts, unsigned nw, size_t kk, cand *buf)
{
	size_t m = 0;
	for (unsigned w = 0; w < nw; w++) {
		memmove(buf + m, parts[w].h, parts[w].n * sizeof *buf);
		m += parts[w].n;
	}
	qsort(buf, m, sizeof *buf, cand_cmp);
	return m < kk ? m : kk;
}

/* Reported score from an internal one. */
static inline float report_score(es_metric metric, float s)
{
	if (metric == ES_METRIC_L2)
		return s < 0 ? sqrtf(-s) : 0.0f;
	return s;
}

/* --------------------------------------------------------- single query */

typedef struct single_job {
	const flat_index *idx;
	const simd_kernels *k;
	const float *q;
	topk *heaps; /* one per worker */
} single_job;

static void single_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	const single_job *job = ctx;
	const flat_index *idx = job->idx;
	const uint32_t d = idx->dim;
	topk *t = &job->heaps[worker];
	float sc[FLAT_SCAN_BLOCK];
	for (size_t b = begin; b < end; b += FLAT_SCAN_BLOCK) {
		size_t nb = end - b < FLAT_SCAN_BLOCK ? end - b : FLAT_SCAN_BLOCK;
		const float *rows = idx->rows + b * d;
		/* One row at a time, not dot_batch: past the caches the scan is
		 * memory-bound, and a single linear stream keeps the hardware
		 * prefetcher ahead (bench/kernels: ~1.3-1.5x faster per row
		 * from memory than 4 interleaved rows). */
		if (idx->metric == ES_METRIC_L2) {
			for (size_t r = 0; r < nb; r++)
				sc[r] = -job->k->l2sq(job->q, rows + r * d, d);
		} else {
			for (size_t r = 0; r < nb; r++)
				sc[r] = job->k->dot(job->q, rows + r * d, d);
		}
		topk_scan(t, sc, nb, b, idx->labels);
	}
}

/* Search one prepared (validated, normalised) query; kk = min(k, count),
 * count > 0.  heaps/buf: scratch for nw workers of kk candidates each. */
static void search_one(const flat_index *idx, const float *q, size_t kk,
		       es_hit *out, es_pool *pool, unsigned nw, topk *heaps,
		       cand *store, cand *buf)
{
	for (unsigned w = 0; w < nw; w++) {
		heaps[w].h = store + (size_t)w * kk;
		heaps[w].n = 0;
		heaps[w].k = (uint32_t)kk;
	}
	single_job job = {idx, simd_get(), q, heaps};
	size_t grain = idx->count / ((size_t)nw * 4);
	if (grain < FLAT_SCAN_BLOCK)
		grain = FLAT_SCAN_BLOCK;
	if (grain > FLAT_ROW_GRAIN)
		grain = FLAT_ROW_GRAIN;
	es_pool_parallel_for(nw > 1 ? pool : NULL, idx->count, grain,
			     single_range, &job);
	size_t m = merge_heaps(heaps, nw, kk, buf);
	for (size_t i = 0; i < m; i++) {
		out[i].label = buf[i].label;
		out[i].score = report_score(idx->metric, buf[i].s);
	}
}

/* Scratch for searching with nw workers and kk results each. */
typedef struct scratch {
	topk *heaps;
	cand *store, *buf;
	float *qbuf;
} scratch;

static void scratch_free(scratch *s)
{
	free(s->heaps);
	free(s->store);
	free(s->buf);
	free(s->qbuf);
}

/* heaps: nheaps; store and buf: nheaps*kk candidates; qbuf: nq*dim. */
static int scratch_alloc(scratch *s, size_t nheaps, size_t kk, size_t nq,
			 uint32_t dim)
{
	memset(s, 0, sizeof *s);
	if (kk && nheaps > SIZE_MAX / sizeof(cand) / kk)
		return ES_ENOMEM;
	if (nq > SIZE_MAX / sizeof(float) / dim)
		return ES_ENOMEM;
	s->heaps = calloc(nheaps ? nheaps : 1, sizeof *s->heaps);
	size_t ncand = nheaps * kk > 0 ? nheaps * kk : 1;
	s->store = malloc(ncand * sizeof(cand));
	s->buf = malloc(ncand * sizeof(cand));
	if (posix_memalign((void **)&s->qbuf, 64, (nq ? nq : 1) * dim * sizeof(float)))
		s->qbuf = NULL;
	if (!s->heaps || !s->store || !s->buf || !s->qbuf) {
		scratch_free(s);
		return ES_ENOMEM;
	}
	return 0;
}

int flat_search(const flat_index *idx, const float *query, uint32_t k,
		es_hit *out, size_t *nout, es_pool *pool, es_error *err)
{
	if (nout)
		*nout = 0;
	if (!idx || !query || !out || !nout)
		return es_err(err, ES_EINVAL, "flat_search: NULL argument");
	if (k == 0)
		return es_err(err, ES_EINVAL, "k must be at least 1");
	scratch s;
	unsigned nw = es_pool_size(pool);
	size_t kk = k < idx->count ? k : idx->count;
	if (scratch_alloc(&s, nw, kk, 1, idx->dim) < 0)
		return es_err(err, ES_ENOMEM, "out of memory for k = %u", k);
	int rc = check_vector(query, idx->dim, idx->metric, "query", 0, err);
	if (rc < 0)
		goto out;
	prep_vector(query, s.qbuf, idx->dim, idx->metric);
	if (kk)
		search_one(idx, s.qbuf, kk, out, pool, nw, s.heaps, s.store, s.buf);
	*nout = kk;
out:
	scratch_free(&s);
	return rc;
}

/* ---------------------------------------------------------------- batch */

typedef struct batch_job {
	const flat_index *idx;
	const float *q;     /* nq prepared queries */
	size_t nq;
	topk *heaps;        /* worker w, query i: heaps[w * nq + i] */
	float *scores;      /* worker w: FLAT_GEMM_QUERIES x FLAT_GEMM_ROWS */
} batch_job;

static void batch_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	const batch_job *job = ctx;
	const flat_index *idx = job->idx;
	const uint32_t d = idx->dim;
	float *sc = job->scores + (size_t)worker * FLAT_GEMM_QUERIES * FLAT_GEMM_ROWS;
	topk *heaps = job->heaps + (size_t)worker * job->nq;
	for (size_t chunk = begin; chunk < end; chunk++) {
		size_t r0 = chunk * FLAT_GEMM_ROWS;
		size_t rn = idx->count - r0 < FLAT_GEMM_ROWS ? idx->count - r0
							     : FLAT_GEMM_ROWS;
		const float *rows = idx->rows + r0 * d;
		for (size_t q0 = 0; q0 < job->nq; q0 += FLAT_GEMM_QUERIES) {
			size_t qn = job->nq - q0 < FLAT_GEMM_QUERIES
					    ? job->nq - q0 : FLAT_GEMM_QUERIES;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)qn, (int)rn, (int)d, 1.0f,
				    job->q + q0 * d, (int)d, rows, (int)d,
				    0.0f, sc, (int)rn);
			for (size_t i = 0; i < qn; i++) {
				float *row = sc + i * rn;
				if (idx->metric == ES_METRIC_L2) {
					const float *n2 = idx->norms2 + r0;
					for (size_t j = 0; j < rn; j++)
						row[j] -= 0.5f * n2[j];
				}
				topk_scan(&heaps[q0 + i], row, rn, r0, idx->labels);
			}
		}
	}
}

/* One group of nq prepared queries through sgemm blocks. */
static int search_group(const flat_index *idx, const float *q, size_t nq,
			size_t kk, uint32_t k, es_hit *out, es_pool *pool,
			unsigned nw, scratch *s, float *scores)
{
	const uint32_t d = idx->dim;
	const simd_kernels *kern = simd_get();
	for (unsigned w = 0; w < nw; w++)
		for (size_t i = 0; i < nq; i++) {
			topk *t = &s->heaps[(size_t)w * nq + i];
			t->h = s->store + ((size_t)w * nq + i) * kk;
			t->n = 0;
			t->k = (uint32_t)kk;
		}
	batch_job job = {idx, q, nq, s->heaps, scores};
	size_t nchunks = (idx->count + FLAT_GEMM_ROWS - 1) / FLAT_GEMM_ROWS;
	es_pool_parallel_for(nw > 1 ? pool : NULL, nchunks, 1, batch_range, &job);

	topk *parts = malloc(nw * sizeof *parts);
	if (!parts)
		return ES_ENOMEM;
	for (size_t i = 0; i < nq; i++) {
		const float *qi = q + i * d;
		for (unsigned w = 0; w < nw; w++)
			parts[w] = s->heaps[(size_t)w * nq + i];
		cand *buf = s->buf; /* nw*nq*kk >= nw*kk */
		size_t m = merge_heaps(parts, nw, kk, buf);
		/* Rescore the winners with the single-query kernels, so a query
		 * reports the same scores alone or in a batch. */
		for (size_t j = 0; j < m; j++) {
			const float *x = idx->rows + buf[j].row * d;
			float v;
			if (idx->metric == ES_METRIC_L2) {
				v = -kern->l2sq(qi, x, d);
			} else {
				v = kern->dot(qi, x, d);
			}
			buf[j].s = isnan(v) ? -INFINITY : v;
		}
		qsort(buf, m, sizeof *buf, cand_cmp);
		es_hit *o = out + i * k;
		for (size_t j = 0; j < m; j++) {
			o[j].label = buf[j].label;
			o[j].score = report_score(idx->metric, buf[j].s);
		}
	}
	free(parts);
	return 0;
}

int flat_search_batch(const flat_index *idx, const float *queries, size_t nq,
		      uint32_t k, es_hit *out, size_t *nout, es_pool *pool,
		      es_error *err)
{
	if (nout)
		*nout = 0;
	if (!idx || !nout || (nq && (!queries || !out)))
		return es_err(err, ES_EINVAL, "flat_search_batch: NULL argument");
	if (k == 0)
		return es_err(err, ES_EINVAL, "k must be at least 1");
	const uint32_t d = idx->dim;
	/* Validate every query before any work. */
	for (size_t i = 0; i < nq; i++) {
		int rc = check_vector(queries + i * d, d, idx->metric, "query", i, err);
		if (rc < 0)
			return rc;
	}
	size_t kk = k < idx->count ? k : idx->count;
	if (nq == 0 || kk == 0) {
		*nout = kk;
		return 0;
	}
	unsigned nw = es_pool_size(pool);
	scratch s;
	int rc = 0;
	float *scores = NULL;

	if (nq < FLAT_BATCH_MIN_QUERIES) {
		if (scratch_alloc(&s, nw, kk, 1, d) < 0)
			return es_err(err, ES_ENOMEM, "out of memory for k = %u", k);
		for (size_t i = 0; i < nq; i++) {
			prep_vector(queries + i * d, s.qbuf, d, idx->metric);
			search_one(idx, s.qbuf, kk, out + i * k, pool, nw,
				   s.heaps, s.store, s.buf);
		}
		goto done;
	}

	es_blas_init();
	size_t group = nq < FLAT_GROUP_QUERIES ? nq : FLAT_GROUP_QUERIES;
	while (group > 1 && (size_t)nw * group * kk * sizeof(cand) > FLAT_GROUP_HEAP_BYTES)
		group /= 2;
	if ((size_t)nw * kk > SIZE_MAX / sizeof(cand) / group ||
	    scratch_alloc(&s, (size_t)nw * group, kk, group, d) < 0)
		return es_err(err, ES_ENOMEM, "out of memory for %zu queries, k = %u",
			      group, k);
	if (posix_memalign((void **)&scores, 64, (size_t)nw * FLAT_GEMM_QUERIES *
			   FLAT_GEMM_ROWS * sizeof(float))) {
		scores = NULL;
		rc = es_err(err, ES_ENOMEM, "out of memory for sgemm blocks");
		goto done;
	}
	for (size_t g = 0; g < nq; g += group) {
		size_t gn = nq - g < group ? nq - g : group;
		for (size_t i = 0; i < gn; i++)
			prep_vector(queries + (g + i) * d, s.qbuf + i * d, d,
				    idx->metric);
		rc = search_group(idx, s.qbuf, gn, kk, k, out + g * k, pool, nw,
				  &s, scores);
		if (rc < 0) {
			rc = es_err(err, rc, "out of memory merging results");
			goto done;
		}
	}
done:
	if (rc == 0)
		*nout = kk;
	free(scores);
	scratch_free(&s);
	return rc;
}
