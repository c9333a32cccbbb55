/*
 * flat.h — exact (brute-force) k-nearest-neighbour search.
 *
 * A flat index keeps its own copy of N vectors of `dim` floats in one
 * row-major matrix, each with a caller-chosen uint64 label, and answers
 * top-k queries exactly:
 *   - one query: the SIMD dot (or squared-L2) kernel row by row (one
 *     linear stream: the scan of a large index is memory-bound), a k-entry
 *     heap per worker, rows split over the pool's workers;
 *   - a batch of queries: cblas_sgemm over (queries x rows) blocks, each
 *     worker scanning its block's scores into per-query heaps, rows split
 *     over the workers, the workers' heaps merged at the end.
 *
 * Why it lives in bench/, not index/: no collection, route or command
 * uses it (collections are HNSW; the vocabulary search of core/arith has
 * its own sgemm top-k, which core/ must own because core cannot call
 * index/; test_hnsw's ground truth is a deliberately naive loop, an oracle
 * independent of any tuned code).  It is the exact-search side of
 * bench/flat (against FAISS IndexFlatIP); test_flat keeps it correct.
 *
 * Metrics and scores (index/metric.h): cosine (vectors and queries are
 * L2-normalised; a zero vector is refused), dot (inner product), L2
 * (Euclidean distance, not squared).  Results are best first; equal scores
 * are ordered by lower label, and the k-th place among equal scores goes to
 * the lower label.  Scores of the batch path are recomputed for the k
 * winners with the same kernel as the single-query path, so a query gives
 * bitwise the same scores alone or in a batch; which rows win can differ
 * between the two only where two rows' true scores differ by less than
 * float rounding (sgemm sums in another order).
 *
 * Labels: adding an existing label replaces its vector (as hnsw_add does).
 * Deleting moves the last row into the hole, so row order is not stable
 * (results never depend on it: ties go by label).
 *
 * Threading: any number of flat_search / flat_search_batch calls may run at
 * the same time; flat_add / flat_delete need exclusive access (the caller's
 * lock, e.g. the collection's writer lock).  A search with a pool uses that
 * pool's workers (one job at a time per pool: concurrent searches on one
 * pool take turns); pool NULL runs on the calling thread.  The batch path
 * calls es_blas_init() (OpenBLAS single-threaded per call, see core/blas.h).
 *
 * Ownership: the index copies every vector it keeps; queries are read, not
 * kept; results go into caller-provided buffers.
 */
#ifndef ES_FLAT_H
#define ES_FLAT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "metric.h"
#include "threadpool.h"

/* Largest accepted dimension (a sanity limit for hostile input). */
#define FLAT_MAX_DIM 65536u

typedef struct flat_index flat_index;

/* Create an empty index of vectors of `dim` floats (1..FLAT_MAX_DIM) under
 * `metric`.  0 and *out set, or ES_EINVAL / ES_ENOMEM. */
int flat_new(uint32_t dim, es_metric metric, flat_index **out, es_error *err);

/* Free the index and its vectors.  NULL is a no-op. */
void flat_free(flat_index *idx);

/* Add n vectors (row-major, n x dim).  labels[i] labels vecs[i]; labels
 * NULL means labels count..count+n-1 (count before the call).  An existing
 * label has its vector replaced.  All vectors are checked first: a
 * non-finite element (ES_EINVAL, naming vector and element) or a zero
 * vector under cosine (ES_EINVAL) leaves the index unchanged; so does
 * ES_ENOMEM. */
int flat_add(flat_index *idx, const float *vecs, size_t n,
	     const uint64_t *labels, es_error *err);

/* Delete one label: 0, or ES_ENOTFOUND. */
int flat_delete(flat_index *idx, uint64_t label);

/* The k best hits for one query of dim floats, best first, into out[k];
 * *nout = min(k, count).  Rows are split over pool's workers (pool may be
 * NULL).  ES_EINVAL for k == 0, NULL buffers, a non-finite query or a zero
 * query under cosine. */
int flat_search(const flat_index *idx, const float *query, uint32_t k,
		es_hit *out, size_t *nout, es_pool *pool, es_error *err);

/* nq queries (row-major, nq x dim) at once: query i's hits go to
 * out[i*k .. i*k + *nout), *nout = min(k, count) for every query.  Uses
 * sgemm over blocks for nq >= FLAT_BATCH_MIN_QUERIES and the single-query
 * path below that.  Errors as flat_search (naming the query); nq == 0 is
 * fine (nothing to do). */
int flat_search_batch(const flat_index *idx, const float *queries, size_t nq,
		      uint32_t k, es_hit *out, size_t *nout, es_pool *pool,
		      es_error *err);

/* From this many queries on, flat_search_batch uses sgemm blocks, which
 * read the rows once for all queries (at 2 queries, N = 100k, d = 100:
 * ~1.3x the single-query scans' queries per CPU second; bench/flat). */
#define FLAT_BATCH_MIN_QUERIES 2

/* Number of vectors, dimension and metric. */
size_t flat_count(const flat_index *idx);
uint32_t flat_dim(const flat_index *idx);
es_metric flat_metric(const flat_index *idx);

/* 1 if label is in the index, else 0. */
int flat_contains(const flat_index *idx, uint64_t label);

/* Copy label's stored vector (normalised under cosine) into out[dim]:
 * 0, or ES_ENOTFOUND. */
int flat_get_vector(const flat_index *idx, uint64_t label, float *out);

#endif
