/*
 * hnsw.h — Hierarchical Navigable Small World graph (Malkov & Yashunin).
 *
 * Labels are the caller's uint64 ids; internally points have dense uint32
 * slots.  Adding an existing label replaces its vector (update).  Deleted
 * labels are never returned by search.
 *
 * Threading: any number of hnsw_search calls may run concurrently with each
 * other and with hnsw_add / hnsw_delete from other threads; search keeps no
 * shared mutable state (ef and scratch are per call).  hnsw_save needs no
 * concurrent writers.
 *
 * Ownership: the index copies every vector it keeps; results go into
 * caller-provided buffers.
 */
#ifndef ES_HNSW_H
#define ES_HNSW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "metric.h"
#include "threadpool.h"

#define HNSW_DEFAULT_M 16
#define HNSW_DEFAULT_EF_CONSTRUCTION 200
#define HNSW_DEFAULT_EF_SEARCH 64
#define HNSW_MAX_M 128
#define HNSW_MAX_EF 10000
#define HNSW_MAX_DIM 65536  /* keeps int8 dot products exact in int32 */
#define HNSW_MAX_LEVEL 30

typedef struct hnsw hnsw;

typedef struct hnsw_params {
	uint32_t dim;
	es_metric metric;
	uint32_t M;               /* links per node on levels > 0; 2M on level 0 */
	uint32_t ef_construction;
	uint64_t seed;            /* level generator seed */
	int quantize_int8;        /* int8 codes in RAM, float originals in a
				   * file-backed store, re-rank with float */
	size_t initial_capacity;  /* hint; the index grows as needed */
	const char *float_dir;    /* int8: directory of the (unlinked) float
				   * store file; NULL: $TMPDIR, else /tmp.
				   * Copied by hnsw_new. */
} hnsw_params;

/* Optional filter: return non-zero to accept a label as a result. */
typedef int (*hnsw_filter_fn)(void *ctx, uint64_t label);

/* Fill *p with the defaults for dimension dim (cosine, M 16, efc 200). */
void hnsw_params_default(hnsw_params *p, uint32_t dim);

int hnsw_new(const hnsw_params *p, hnsw **out, es_error *err);
void hnsw_free(hnsw *h);

/* Insert or update (same label) one vector of params.dim floats.
 * ES_EINVAL for non-finite values (or a zero vector under cosine). */
int hnsw_add(hnsw *h, uint64_t label, const float *vec, es_error *err);

/* Add n vectors (row-major, n x dim) using the pool's threads. */
int hnsw_add_batch(hnsw *h, const uint64_t *labels, const float *vecs,
		   size_t n, es_pool *pool, es_error *err);

/* Two-phase insert, for a writer that must build the graph before its
 * change may be seen (index/collection.c builds while the change's log
 * record is being made durable): hnsw_add_pending links the node into the
 * graph like hnsw_add, but searches only walk through it (a waypoint) and
 * never return it, until hnsw_publish(label) makes it a result (needs no
 * memory; ES_ENOTFOUND for an unknown label).  hnsw_delete takes a pending
 * node out as any other.  Files (hnsw_write) hold pending nodes as deleted
 * slots: whoever saves with changes pending replays them after loading.
 * hnsw_count counts pending nodes. */
int hnsw_add_pending(hnsw *h, uint64_t label, const float *vec, es_error *err);
int hnsw_add_pending_batch(hnsw *h, const uint64_t *labels, const float *vecs,
			   size_t n, es_pool *pool, es_error *err);
int hnsw_publish(hnsw *h, uint64_t label);
/* hnsw_publish of n labels that nobody else inserts or deletes meanwhile
 * (the caller added them pending and alone knows them), without the label
 * locks: an insert holds its label's lock (one of 256 stripes) for its
 * whole graph search, so publishing 500 labels one by one while another
 * batch is being built waited for a few of those inserts, and a
 * collection publishes under its write lock, with searches waiting (8 ms
 * a batch measured: issue 19's search p99 during ingestion).  The label map
 * is looked up in runs of 64 under its lock.  0, or ES_ENOTFOUND when some
 * label is unknown (the others are published). */
int hnsw_publish_batch(hnsw *h, const uint64_t *labels, size_t n);

/* Delete a label: 0, or ES_ENOTFOUND. */
int hnsw_delete(hnsw *h, uint64_t label);

/* Up to k best hits for query q (dim floats), best first, into out[k];
 * *nout receives the count.  ef < k is raised to k.  filter may be NULL. */
int hnsw_search(const hnsw *h, const float *q, uint32_t k, uint32_t ef,
		hnsw_filter_fn filter, void *filter_ctx, es_hit *out,
		size_t *nout, es_error *err);

/* Copy a stored vector: the float original (normalised under cosine), also
 * under int8 (read from the float store).  0 or ES_ENOTFOUND. */
int hnsw_get_vector(const hnsw *h, uint64_t label, float *out);
/* The same for n labels at once into out (n rows of dim floats); found[i]
 * is 0 (its row untouched) where label i is missing; returns how many were
 * found.  One map lock per 64 lookups and the rows prefetched before they
 * are copied (a caller scoring thousands of labels pays memory latency
 * once per block, not per row).  Takes no label locks: the caller keeps
 * these labels from being deleted or re-added meanwhile (index/
 * collection.c: its lock held shared, under which only pending nodes of
 * other labels come and go). */
size_t hnsw_get_vectors(const hnsw *h, const uint64_t *labels, size_t n, float *out,
			unsigned char *found);
int hnsw_contains(const hnsw *h, uint64_t label);

size_t hnsw_count(const hnsw *h);        /* live (not deleted) points */
size_t hnsw_memory_bytes(const hnsw *h); /* heap bytes held by the index
					   * (not the int8 float store) */
const hnsw_params *hnsw_get_params(const hnsw *h);

/* Persistence: whole index to/from a file (magic, version, sizes, checksum);
 * the stream forms let a snapshot embed an index.  Loading treats every byte
 * as hostile: ES_ECORRUPT with a message naming the problem.  The file holds
 * the float originals also under int8 (a loaded int8 index puts them into a
 * new float store in $TMPDIR). */
int hnsw_save(const hnsw *h, const char *path, es_error *err);
int hnsw_load(const char *path, hnsw **out, es_error *err);
int hnsw_write(const hnsw *h, FILE *f, es_error *err);
int hnsw_read(FILE *f, hnsw **out, es_error *err);

/* Sizes, the entry point and counters (reports, tests). */

/* Bytes one vector takes in memory: 4*dim, or dim + 4 under int8 (codes
 * and scale); the rest of hnsw_memory_bytes is graph, ids and scratch. */
size_t hnsw_vector_bytes(const hnsw *h);

/* Bytes of the int8 index's file-backed float store (page cache, not heap:
 * 4*dim per slot, allocated in chunks of 1024 slots); 0 for a float index. */
size_t hnsw_store_bytes(const hnsw *h);

/* The entry point's label and level: 0, or ES_ENOTFOUND when empty. */
int hnsw_entry_point(const hnsw *h, uint64_t *label, uint32_t *level);

/* How many times deleting the entry point needed a full scan of the slots
 * to find its successor (normally one of its links is it); for tests. */
size_t hnsw_ep_scans(const hnsw *h);

#endif
