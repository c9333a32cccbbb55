/*
 * collection.h — named collections of points, and the registry of them.
 *
 * A collection is an HNSW index (index/hnsw.h) plus what the index does not
 * know: the users' external ids (unsigned 64-bit integers or strings), mapped
 * to dense internal labels, and an opaque payload per point (JSON bytes; this
 * layer never parses them — the server does, through es_payload_hooks).
 *
 * Mutations are funnelled through five calls so that the durability layer
 * can log them (write-ahead) in one place:
 *     es_registry_create   es_registry_drop
 *     es_collection_upsert es_collection_delete es_collection_update_payload
 * Each validates first, then calls the registry's es_mutation_observer (if
 * one is set), and applies only if the observer returned 0.  A failing log
 * write (ENOSPC, EIO) leaves nothing applied.  Replay (WAL recovery) uses the
 * same calls with the observer not yet installed.
 *
 * Write path of an upsert, in two phases around the log write:
 *   prepare (before the record is logged, concurrent with other writers
 *   of the collection): validate; copy ids and payloads; under the write
 *   lock, briefly, reserve a fresh label per point and room in the id map;
 *   then, with no collection lock held, insert the vectors into the graph
 *   as PENDING nodes (hnsw_add_pending: searches walk through them, never
 *   return them) — a batch's points on the registry's thread pool
 *   (es_registry_set_pool), several writers' batches at the same time.
 *   log: the commit queue (group commit): the observer is called under a
 *   short per-collection mutex that orders log placement, writes the record
 *   and calls es_log_placed, which queues the writer and releases that
 *   mutex; the observer then waits for the record to be durable with no
 *   collection lock held, so concurrent writers share fsyncs (and build
 *   their graph nodes while others wait for theirs).
 *   publish (after the observer returned 0, when the writer is the head of
 *   the queue, so in log order, under the write lock): map the ids to the
 *   new labels, store payloads, index texts (lexical), make the graph nodes
 *   results (hnsw_publish_batch: the batch's labels are its own, so no
 *   per-label locks), drop the labels that updates replaced.  Cheap:
 *   the graph work is done.  Deletes and payload updates
 *   (es_collection_update_payload) have only this phase.
 * A failure in prepare or in the log write takes the pending nodes out
 * and gives the labels back: nothing of the change was ever visible.
 *
 * Visibility rule: a change becomes visible to readers only when it is
 * published, which is after the observer returned 0, i.e. after its record
 * is durable under the fsync policy, and in the order of the log.  Pending
 * graph nodes are invisible (no search returns them, no id maps to them,
 * count ignores them), so although graph builds run in parallel and in any
 * order, a reader never sees (and cannot act on) a write that a crash could
 * take back, and what readers see is always a prefix of the log per
 * collection — the state a restart rebuilds.  A snapshot
 * (es_collection_save) writes pending nodes as deleted slots and their
 * labels as dead: those changes are after the snapshot's log position and
 * are replayed on top of it.  (tests/test_collection.c
 * test_parallel_apply_prefix holds an earlier writer's fsync and checks
 * that a later writer's built batch stays invisible until then.)  The
 * price: a write's own latency includes the fsync; throughput does not,
 * since the fsyncs are shared and the graph builds overlap them.  Memory:
 * everything the publish needs is reserved in prepare, the lexical index's
 * growth for points with text included (es_lexical_batch_prepare, under
 * the write lock with the labels: the texts are analysed there too, about
 * 5 ms per 500 texts — analysis joins new words to the lexical index's
 * dictionary, so it needs exclusive access until lexical.c splits it into
 * an analysis that runs unlocked and a reservation).
 *
 * Threading: every collection has a readers-writer lock.  get / search /
 * count / foreach / save take it shared; upsert / delete take it exclusive
 * to reserve labels and to publish (publishes of one collection are
 * serialised; graph builds, the log write and the fsync wait are not under
 * it).  A second readers-writer lock keeps graph builds (shared) and
 * snapshots' hnsw_write (exclusive) apart.  The registry has its own mutex for
 * its name table; collections are reference-counted so a DELETE of a
 * collection never frees it under a running search: es_registry_get returns
 * a reference that es_collection_release drops.
 *
 * Ownership: the collection copies every id, vector and payload it keeps.
 * Everything returned to callers is a copy (no pointer escapes a lock),
 * freed by the matching *_free call.
 */
#ifndef ES_COLLECTION_H
#define ES_COLLECTION_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "lexical.h"
#include "metric.h"
#include "payload_index.h"
#include "threadpool.h"

#define ES_COLLECTION_NAME_MAX 64 /* bytes; [A-Za-z0-9_.-], not starting '.' */
#define ES_POINT_ID_STR_MAX 256   /* bytes of a string id */

typedef struct es_collection es_collection;
typedef struct es_registry es_registry;

/* An external point id: either an unsigned integer or a byte string.  A
 * string that spells a decimal uint64 is refused by es_point_id_check so
 * that "7" in a URL path can only mean the integer 7. */
typedef struct es_point_id {
	int is_str;      /* 0: num is the id; 1: str/len is the id */
	uint64_t num;
	const char *str; /* not NUL-terminated necessarily; borrowed */
	size_t len;
} es_point_id;

/* 0 if id is acceptable, else ES_EINVAL with a message. */
int es_point_id_check(const es_point_id *id, es_error *err);

/* Parse a URL path segment: all digits (fits uint64) -> integer id, else a
 * string id borrowing seg. */
void es_point_id_from_text(const char *seg, size_t len, es_point_id *out);

typedef struct es_collection_params {
	uint32_t dim;
	es_metric metric;
	uint32_t M;               /* 0: HNSW_DEFAULT_M */
	uint32_t ef_construction; /* 0: HNSW_DEFAULT_EF_CONSTRUCTION */
	int quantize_int8;
	char model[128];          /* name of the model that encodes its text ("" none) */
	es_lexical_params lexical; /* the lexical index's analysis and BM25 */
	int lexical_set;          /* 0: es_collection_new fills in the defaults */
} es_collection_params;

/* Payload hooks: the server parses each payload once, when it enters the
 * collection (upsert, replay, snapshot load), and keeps the parsed form for
 * filters.  parse may return NULL (the point then never matches a filter
 * that needs its payload).  Both may be NULL.
 *
 * Payload updates (es_collection_update_payload) carry an opaque op (bytes
 * the server defines, logged as they are) that these hooks interpret, so
 * this layer never parses a payload: op_compile turns the op bytes into a
 * compiled op (NULL: out of memory, or bytes it does not understand);
 * op_apply computes one point's new payload from its current one (NULL/0
 * when it has none) into *out (malloc'd and NUL-terminated, *outlen not
 * counting the NUL, taken over by the collection; NULL for "no payload"):
 * 0 or ES_ENOMEM.  op_apply must be a pure function
 * of (op, old payload) — replay runs it again on the same state — and must
 * not fail for any other reason than memory.  op_free frees a compiled op.
 * A registry without them refuses payload updates (ES_EUNSUPPORTED). */
typedef struct es_payload_hooks {
	void *(*parse)(const char *payload, size_t len);
	void (*free)(void *parsed);
	void *(*op_compile)(const char *op, size_t len);
	int (*op_apply)(const void *op, const char *old, size_t oldlen, char **out,
			size_t *outlen);
	void (*op_free)(void *op);
	/* Payload indexes (index/payload_index.h): call emit once per value
	 * found at the dotted path in parsed (an array value: per element),
	 * as the filter reads it.  NULL: collections have no payload indexes
	 * (es_collection_create_index answers ES_EUNSUPPORTED). */
	void (*extract)(const void *parsed, const char *path,
			void (*emit)(void *ctx, const es_pval *v), void *ctx);
} es_payload_hooks;

/* One point for upsert: borrowed by the call, copied by the collection.
 * A point with text gets a lexical entry (the collection keeps its terms,
 * not the text).  vector may be NULL only for a point with text: it is
 * then stored, found by id, filter and lexical search, and absent from
 * the HNSW graph (text whose words the model does not know). */
typedef struct es_point_in {
	es_point_id id;
	const float *vector;   /* dim floats, or NULL (see above) */
	const char *payload;   /* JSON bytes, or NULL for no payload */
	size_t payload_len;
	const char *text;      /* UTF-8, not empty, or NULL for none */
	size_t text_len;
} es_point_in;

/* A point as seen by the filter callback and by es_collection_foreach:
 * borrowed, valid only during the callback. */
typedef struct es_point_view {
	es_point_id id;
	uint64_t label;         /* internal label */
	const char *payload;    /* NULL if none */
	size_t payload_len;
	const void *parsed;     /* es_payload_hooks.parse result, or NULL */
	const float *vector;    /* foreach only (as stored); NULL in filters and
				 * for a point without a vector */
} es_point_view;

/* Return non-zero to accept the point as a search result.  Called from the
 * searching thread with the collection's lock held shared. */
typedef int (*es_point_filter_fn)(void *ctx, const es_point_view *p);

/* A copied point or search hit.  Free with es_point_out_free (hits with
 * es_hits_free). */
typedef struct es_point_out {
	es_point_id id;         /* str is owned (malloc'd) when is_str */
	float score;            /* search only: the mode's score (see es_search_req) */
	float dense_score;      /* hybrid and lexical search: each list's own */
	float lexical_score;    /* score, when the point was in that list */
	int has_dense, has_lexical;
	char *payload;          /* owned, NUL-terminated, NULL if none/not asked */
	size_t payload_len;
	float *vector;          /* owned, dim floats, NULL if not asked or the
				 * point has none */
} es_point_out;

void es_point_out_free(es_point_out *p);          /* frees members only */
void es_hits_free(es_point_out *hits, size_t n);  /* members + the array */

/* Search modes and fusion methods (es_search_req). */
enum {
	ES_SEARCH_DENSE = 0,   /* HNSW over the vectors: score = the metric's */
	ES_SEARCH_LEXICAL = 1, /* BM25 over the texts: score = BM25 (> 0) */
	ES_SEARCH_HYBRID = 2,  /* both lists fused: score = the fused score */
};
enum {
	ES_FUSION_RRF = 0,      /* sum of 1 / (rrf_k + rank) over the lists */
	ES_FUSION_WEIGHTED = 1, /* alpha * dense + (1 - alpha) * lexical, each
				 * min-max normalised over its candidates */
};
#define ES_RRF_K_DEFAULT 60
/* The defaults of a text query (the API's and `eval retrieval`'s), chosen by
 * measurement on CISI (bench/RESULTS.md): hybrid, weighted fusion at alpha
 * 0.3 over the top ES_HYBRID_CANDIDATES_DEFAULT of each list, the lexical
 * list with feedback (es_search_feedback_default). */
#define ES_TEXT_MODE_DEFAULT ES_SEARCH_HYBRID
#define ES_FUSION_DEFAULT ES_FUSION_WEIGHTED
#define ES_FUSION_ALPHA_DEFAULT 0.3f
#define ES_HYBRID_CANDIDATES_DEFAULT 100
#define ES_HYBRID_CANDIDATES_MAX 10000
/* The feedback a mode gets when the request names none: hybrid the
 * lexical.h defaults (RM3 on the lexical list, chosen on CISI's
 * odd-numbered queries, bench/RESULTS.md), lexical and dense none (lexical
 * mode stays plain BM25). */
void es_search_feedback_default(int mode, es_lexical_feedback *fb);

/* Search request.  Dense needs query; lexical needs text; hybrid needs
 * text and uses query when there is one (text the model cannot encode
 * falls back to the lexical list alone).  Hybrid on a collection whose
 * lexical index is empty (vector-only points) is the dense search at k:
 * score = the dense score, no fusion.  The threshold applies to the
 * mode's score. */
typedef struct es_search_req {
	int mode;                /* ES_SEARCH_* */
	const float *query;      /* dim floats, or NULL (lexical, see above) */
	const char *text;        /* lexical and hybrid: the query text */
	size_t text_len;
	int fusion;              /* ES_FUSION_* */
	float alpha;             /* weighted fusion: weight of dense, 0..1 */
	uint32_t rrf_k;          /* 0: ES_RRF_K_DEFAULT */
	uint32_t candidates;     /* hybrid: fuse the top max(k, candidates) of
				  * each list; 0: ES_HYBRID_CANDIDATES_DEFAULT */
	es_lexical_feedback feedback; /* lexical list (lexical and hybrid):
				  * pseudo-relevance feedback (lexical.h);
				  * docs 0: none.  The API turns it on for
				  * hybrid (es_search_feedback_default) */
	uint32_t k;
	uint32_t ef;             /* 0: default (max(64, k)) */
	int has_threshold;       /* keep score >= t (cosine/dot), dist <= t (l2) */
	float threshold;
	es_point_filter_fn filter; /* may be NULL */
	void *filter_ctx;
	/* The filter's index plan (may be NULL): every point the filter
	 * accepts satisfies it.  When a payload index answers one of its
	 * terms with few enough candidates (ES_PLAN_EXACT_BYTES of vectors),
	 * a dense search scores those candidates exactly (with the filter)
	 * instead of walking the graph with the filter as a predicate. */
	const es_pquery *plan;
	int with_payload;
	int with_vector;
	int exclude_self;        /* skip the point whose id is `self` */
	es_point_id self;
} es_search_req;

/* --- collection ------------------------------------------------------- */

/* A fresh, empty collection (not in any registry).  Validates the params:
 * dim 1..65536, M 2..HNSW_MAX_M, ef_construction 1..HNSW_MAX_EF. */
int es_collection_new(const char *name, const es_collection_params *p,
		      const es_payload_hooks *hooks, es_collection **out,
		      es_error *err);

/* Drop a reference.  The last release frees the collection. */
void es_collection_release(es_collection *c);

const char *es_collection_name(const es_collection *c);
const es_collection_params *es_collection_get_params(const es_collection *c);

/* Insert or replace n points, all or none.  Validation (ids, dimensions,
 * NaN/Inf, zero vectors under cosine, payload size) happens before anything
 * changes: ES_EINVAL / ES_EDIM with a message naming the point by index
 * ("points[3]: ...").  A point whose id appears twice in one batch: the last
 * one wins.  Prepared (graph built), logged through the observer, then
 * published: see "Write path" above.
 *
 * Out of memory (ES_ENOMEM) leaves the collection as it was, whenever it
 * happens, and happens before the batch is logged (labels, map room and
 * graph nodes are all in place first), so a failed batch never comes back
 * at a restart (tests/test_store.c test_out_of_memory, with points with
 * text too): publishing needs no memory. */
int es_collection_upsert(es_collection *c, const es_point_in *pts, size_t n,
			 es_error *err);

/* Delete the points with these ids; ids that are not present are ignored.
 * *deleted (may be NULL) receives how many were removed.  Logged and
 * applied like an upsert. */
int es_collection_delete(es_collection *c, const es_point_id *ids, size_t n,
			 size_t *deleted, es_error *err);

/* Replace the payloads of the points with these ids by op (see
 * es_payload_hooks: the new payload of each is op_apply(op, its current
 * one)); ids that are not present are ignored.  Vectors and lexical
 * entries are untouched.  All or none: every new payload is computed
 * before any is swapped in.  *updated (may be NULL) receives how many
 * points changed.  Logged through the observer (on_payload) and applied
 * like an upsert, in log order, so an update never loses a concurrent
 * write to the same point and replay recomputes the same payloads.
 * ES_EINVAL for a bad id or an op the hooks do not compile,
 * ES_EUNSUPPORTED without hooks, ES_ENOMEM (new payloads are computed after
 * the record is logged: an update that then runs out of memory may come
 * back at restart). */
int es_collection_update_payload(es_collection *c, const char *op, size_t oplen,
				 const es_point_id *ids, size_t n, size_t *updated,
				 es_error *err);

/* Copy one point: 0 or ES_ENOTFOUND.  want_vector / want_payload select
 * what is copied into *out (free with es_point_out_free). */
int es_collection_get(es_collection *c, const es_point_id *id,
		      int want_vector, int want_payload, es_point_out *out,
		      es_error *err);

/* Copy the stored vector of one point into vec[dim]: 0 or ES_ENOTFOUND. */
int es_collection_get_vector(es_collection *c, const es_point_id *id,
			     float *vec, es_error *err);

/* Search: up to req->k hits best first into a fresh array *hits (*nhits;
 * free with es_hits_free).  ES_EDIM is impossible here (the caller passes
 * dim floats); ES_EINVAL for non-finite queries or k == 0. */
int es_collection_search(es_collection *c, const es_search_req *req,
			 es_point_out **hits, size_t *nhits, es_error *err);

size_t es_collection_count(es_collection *c);
size_t es_collection_memory_bytes(es_collection *c); /* lexical included */
size_t es_collection_lexical_bytes(es_collection *c); /* the lexical index */
size_t es_collection_lexical_count(es_collection *c); /* points with text */
/* Bytes of the int8 index's file-backed float originals (page cache, not
 * in es_collection_memory_bytes); 0 for a float32 collection. */
size_t es_collection_store_bytes(es_collection *c);

/* Visit every live point, shared lock held for the whole walk (the vector in
 * the view is as stored; NULL for a text point stored without a vector).  Stops early and returns fn's value if it returns
 * non-zero.  For snapshots. */
int es_collection_foreach(es_collection *c,
			  int (*fn)(void *ctx, const es_point_view *p),
			  void *ctx);

/* es_collection_foreach in label order from label `from`, over only the
 * candidates of plan when a payload index answers one of its terms (every
 * point the plan admits is visited; fn still decides).  want_vector 0
 * leaves the view's vector NULL (cheaper).  ES_ENOMEM, or fn's value. */
int es_collection_foreach_plan(es_collection *c, const es_pquery *plan, uint64_t from,
			       int want_vector,
			       int (*fn)(void *ctx, const es_point_view *p), void *ctx);

/* --- payload indexes ------------------------------------------------------ */

/* Qdrant's full-scan threshold (10000 KB of vectors): a planned search
 * whose candidates' vectors take fewer bytes is scored exactly. */
#define ES_PLAN_EXACT_BYTES ((size_t)10000 * 1024)
#define ES_PINDEX_MAX 64 /* indexes per collection */

/* Create (or, for another kind, replace) the payload index of field, logged
 * through the observer (on_index) and built from the current points under
 * the write lock.  Creating an index that exists with the same kind is a
 * no-op (0, not logged).  ES_EINVAL for a bad field or kind or past
 * ES_PINDEX_MAX, ES_EUNSUPPORTED without extract hooks, ES_ENOMEM. */
int es_collection_create_index(es_collection *c, const char *field, es_pindex_kind kind,
			       es_error *err);

/* Drop the payload index of field (logged): 0, or ES_ENOTFOUND. */
int es_collection_drop_index(es_collection *c, const char *field, es_error *err);

/* The payload indexes, sorted by field: a malloc'd array (*n; free with
 * es_index_info_free) of field, kind and the number of points indexed. */
typedef struct es_index_info {
	char field[ES_PINDEX_FIELD_MAX + 1];
	es_pindex_kind kind;
	size_t points;
	int usable;
} es_index_info;
int es_collection_list_indexes(es_collection *c, es_index_info **out, size_t *n);
void es_index_info_free(es_index_info *v);

/* Order by an integer index (scroll's order_by): fn on each live point
 * with a vector (as es_collection_foreach) in the order of the (value,
 * label) pairs of field's integer index (es_pindex_sorted: a point with
 * several values comes once per value), shared lock held, until fn
 * returns non-zero.  want_vector 0 leaves the view's vector NULL.
 * ES_ENOTFOUND when field has no usable integer index (the API answers
 * 400), ES_ENOMEM. */
int es_collection_foreach_ordered(es_collection *c, const char *field, int desc,
				  int want_vector,
				  int (*fn)(void *ctx, const es_point_view *p, int64_t value),
				  void *ctx, es_error *err);

/* --- registry ------------------------------------------------------------ */

/* A writer's turn in its collection's commit queue, handed to on_upsert /
 * on_delete.  Opaque. */
typedef struct es_log_turn es_log_turn;

/* Called by on_upsert / on_delete once the change's record is in the log
 * (written, not necessarily durable yet), at most once, with a token that
 * grows in log order (the store passes the lsn).  It queues the writer and
 * releases the collection's placement mutex: after it the observer must not
 * touch the collection. */
void es_log_placed(es_log_turn *t, uint64_t token);

/* Observer for durability: each callback runs after validation and before
 * the change is applied.  create/drop: under the registry mutex.
 * upsert/delete: under the collection's placement mutex (not its
 * readers-writer lock): write the record, call es_log_placed(turn, lsn),
 * then wait until the record is durable and return.  An observer that
 * never calls es_log_placed keeps the placement mutex for the whole call
 * (correct, but writers of the collection then wait for each other's
 * fsyncs).  on_payload (es_collection_update_payload) is called like
 * on_delete, with the op bytes beside the ids.
 * A non-zero return (negative ES_E*; fill err) cancels the change:
 * nothing is applied, whether or not the record was placed.  Any member may
 * be NULL. */
typedef struct es_mutation_observer {
	void *ctx;
	int (*on_create)(void *ctx, const char *name,
			 const es_collection_params *p, es_error *err);
	int (*on_drop)(void *ctx, const char *name, es_error *err);
	int (*on_upsert)(void *ctx, es_collection *c, const es_point_in *pts,
			 size_t n, es_log_turn *turn, es_error *err);
	int (*on_delete)(void *ctx, es_collection *c, const es_point_id *ids,
			 size_t n, es_log_turn *turn, es_error *err);
	int (*on_payload)(void *ctx, es_collection *c, const char *op, size_t oplen,
			  const es_point_id *ids, size_t n, es_log_turn *turn,
			  es_error *err);
	/* payload index created (kind > 0) or dropped (kind 0) */
	int (*on_index)(void *ctx, es_collection *c, const char *field, int kind,
			es_log_turn *turn, es_error *err);
} es_mutation_observer;

/* hooks (may be NULL) are given to every collection the registry creates. */
int es_registry_new(const es_payload_hooks *hooks, es_registry **out,
		    es_error *err);
void es_registry_free(es_registry *r); /* releases its references */

/* Install (or with NULL remove) the observer.  Not thread-safe against
 * concurrent mutations: call at start-up, after recovery. */
void es_registry_set_observer(es_registry *r, const es_mutation_observer *o);

/* The pool (may be NULL, the default) that builds the graph nodes of a
 * batch of 64 or more vectors (es_collection_upsert step 4).  The registry
 * does not own it; it must outlive every upsert.  Call at start-up. */
void es_registry_set_pool(es_registry *r, es_pool *pool);

/* Create a collection: ES_EEXIST if the name is taken, ES_EINVAL for a bad
 * name or params.  *out (may be NULL) receives a new reference. */
int es_registry_create(es_registry *r, const char *name,
		       const es_collection_params *p, es_collection **out,
		       es_error *err);

/* Remove a collection from the registry: 0 or ES_ENOTFOUND.  Searches that
 * hold a reference finish on it; it is freed by the last release. */
int es_registry_drop(es_registry *r, const char *name, es_error *err);

/* A new reference to the named collection, or ES_ENOTFOUND. */
int es_registry_get(es_registry *r, const char *name, es_collection **out,
		    es_error *err);

/* References to all collections, sorted by name: *out is a malloc'd array
 * of *n references; release each and free the array. */
int es_registry_list(es_registry *r, es_collection ***out, size_t *n,
		     es_error *err);

/* 0 if name is a valid collection name, else ES_EINVAL with a message. */
int es_collection_name_check(const char *name, es_error *err);

/* --- persistence (used by index/store.c for snapshots) ----------------- */

/* Write the whole collection (params, every slot's id and payload, and the
 * HNSW index through hnsw_write, graph included) to f.  Holds the shared
 * lock for the whole write, so writers of this collection wait to apply
 * (their log writes and fsyncs go on).  `locked` (may be NULL) is called
 * once the lock is held, before anything is written, so the caller can note
 * the log position the snapshot corresponds to: pending is non-zero when
 * changes are placed in the log but not applied (so not in this snapshot),
 * oldest is then the es_log_placed token of the first of them; every change
 * placed before it is in the snapshot.  No change is placed during the
 * call.  0, ES_EIO for a failed write, or hnsw_write's error. */
int es_collection_save(es_collection *c, FILE *f,
		       void (*locked)(void *ctx, int pending, uint64_t oldest),
		       void *ctx, es_error *err);

/* Read a collection written by es_collection_save into a new collection
 * named name (not in any registry), treating every byte as hostile:
 * ES_ECORRUPT with a message for damage, ES_EUNSUPPORTED for a newer format.
 * hooks as for es_collection_new. */
int es_collection_load(FILE *f, const char *name, const es_payload_hooks *hooks,
		       es_collection **out, es_error *err);

/* Put an existing collection (from es_collection_load) into the registry,
 * taking a new reference; ES_EEXIST if the name is taken.  The observer is
 * not called (recovery only). */
int es_registry_add(es_registry *r, es_collection *c, es_error *err);

/* The payload hooks the registry gives its collections (NULL if none). */
const es_payload_hooks *es_registry_payload_hooks(es_registry *r);

/* Bulk load (embedsrv import): add n NEW points with numeric ids and no
 * payload, building the graph with hnsw_add_batch on pool (may be NULL).
 * The observer is NOT called: the caller snapshots the collection
 * afterwards.  ES_EEXIST (nothing added) if any id is present; vectors
 * must already be validated (finite, non-zero under cosine). */
int es_collection_bulk_insert(es_collection *c, const uint64_t *ids,
			      const float *vecs, size_t n, es_pool *pool,
			      es_error *err);

#endif
