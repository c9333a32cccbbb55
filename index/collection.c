/*
 * collection.c — named collections over the HNSW index; see collection.h.
 *
 * Layout: every point gets a dense internal label (its slot in `pts`), which
 * is also its HNSW label.  A deleted slot's id, payload and parsed payload
 * are freed and its label goes on a free list that later inserts take
 * first, so memory follows the live set, not every insert ever made (a
 * server that deletes and re-inserts would otherwise grow without end).
 * Reuse cannot make a label name a different point under a reader: labels
 * never leave the collection lock (a search walks the index and resolves
 * its hits to points under one read lock; labels change only under the
 * write lock).
 * External ids map to labels through core/u64map keyed by the id's 64-bit
 * hash; two ids of one hash are told apart by comparing the points.
 *
 * All-or-nothing upsert: everything that can fail for a reason other than
 * memory is validated before anything changes; copies of ids and payloads,
 * the labels, the id map's room and the graph nodes (pending, invisible)
 * are made before the log write; publishing then has an undo log for the
 * one part that can still fail (the lexical index).  Every point goes in at
 * a fresh label (an update's old label leaves the id map but stays in the
 * index until the batch has published), so the rollback itself needs no
 * memory and restores every vector bit for bit (tests/test_collection.c
 * fails each allocation in turn).
 *
 * Write pipeline (group commit, see collection.h "Write path"): a writer
 * validates, copies, reserves labels (write lock, briefly) and builds its
 * graph nodes as pending (graph_lk shared, no collection lock), then under
 * seq_mu hands the change to the observer, which writes the log record and
 * calls es_log_placed: that puts the writer at the tail of the collection's
 * commit queue and releases seq_mu, so the next writer can write its record
 * while this one waits for the fsync (with no collection lock held;
 * concurrent waiters share one fsync).  Once the observer returned, the
 * writer waits to be the head of the queue, publishes under the write lock,
 * and leaves the queue before dropping the write lock.  So changes become
 * visible in log order, each only after it is durable, and a reader never
 * sees a change that a crash could take back.
 *
 * Threading: one pthread rwlock per collection (readers: get, search, count,
 * foreach, save; writers: upsert and delete while applying, drop while
 * detaching).  seq_mu orders log placement and guards the commit queue;
 * each queued writer sleeps on its own condition variable, signalled when
 * it becomes the head.  graph_lk: graph builds outside lk take it shared,
 * es_collection_save exclusive inside lk shared (a build never waits for
 * lk while holding it).  Lock order: lk -> graph_lk; lk -> seq_mu -> the
 * observer's locks;
 * a writer holds seq_mu and calls the observer, and takes lk only after it
 * has dropped seq_mu.  Reference counts are atomic.  The registry's mutex
 * guards only its table of names.
 */
#include "collection.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hnsw.h"
#include "tokenize.h"
#include "lerw.h"
#include "crc32c.h"
#include "u64map.h"
#include "simd.h"

typedef struct pt {
	uint64_t hash;
	uint64_t num;
	char *str;       /* owned, NUL-terminated; NULL for numeric ids */
	size_t slen;
	char *payload;   /* owned, NUL-terminated, NULL if none */
	size_t plen;
	void *parsed;    /* hooks.parse result */
	unsigned char live;
	unsigned char is_str;
	unsigned char novec;  /* stored without a vector: not in the graph */
} pt;

/* A writer's place in its collection's commit queue (on the writer's
 * stack). */
typedef struct commit_node {
	uint64_t token;           /* what the observer placed it with (an lsn) */
	struct commit_node *next;
	pthread_cond_t head_cv;   /* signalled when this node becomes the head */
} commit_node;

struct es_log_turn {
	es_collection *c;
	commit_node *node;
	int placed;
};

struct es_collection {
	char name[ES_COLLECTION_NAME_MAX + 1];
	es_collection_params p;
	es_payload_hooks hooks;
	hnsw *h;
	es_lexical *lx;         /* terms of the points with text; label = slot */
	pthread_rwlock_t lk;
	atomic_int refs;
	pt *pts;
	size_t npts, cap;
	uint64_t free_head;     /* dead labels to reuse: label + 1, 0 = none */
	es_u64map ids;          /* id hash -> label (hashes may repeat) */
	size_t live;
	size_t payload_bytes;
	es_registry *reg;       /* for the observer; NULL when detached */
	size_t reserved;        /* map room held for unpublished batches (lk) */
	pthread_rwlock_t graph_lk; /* shared: building the graph outside lk;
				    * exclusive: es_collection_save */
	pthread_mutex_t seq_mu; /* log placement order; the commit queue */
	commit_node *qhead, *qtail;
	es_pindex *pidx[ES_PINDEX_MAX]; /* payload indexes (lk), by field */
	size_t npidx;
};

struct es_registry {
	pthread_mutex_t mu;
	es_payload_hooks hooks;
	int has_hooks;
	es_mutation_observer obs;
	int has_obs;
	es_collection **cols;
	size_t n, cap;
	es_pool *pool;          /* builds batches' graph nodes; may be NULL */
};

/* --- ids ---------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t id_hash(const es_point_id *id)
{
	if (!id->is_str)
		return mix64(id->num) | 1;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < id->len; i++) {
		h ^= (unsigned char)id->str[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ 0x5bd1e995) | 1;
}

static int id_digits_u64(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20)
		return 0;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*out = v;
	return 1;
}

int es_point_id_check(const es_point_id *id, es_error *err)
{
	if (!id->is_str)
		return 0;
	if (id->len == 0)
		return es_err(err, ES_EINVAL, "a string id must not be empty");
	if (id->len > ES_POINT_ID_STR_MAX)
		return es_err(err, ES_EINVAL, "string id is %zu bytes; the limit is %d",
			      id->len, ES_POINT_ID_STR_MAX);
	if (memchr(id->str, '\0', id->len))
		return es_err(err, ES_EINVAL, "a string id must not contain NUL characters");
	uint64_t v;
	if (id_digits_u64(id->str, id->len, &v))
		return es_err(err, ES_EINVAL,
			      "string id \"%.*s\" spells a number; use the integer %llu instead",
			      (int)id->len, id->str, (unsigned long long)v);
	return 0;
}

void es_point_id_from_text(const char *seg, size_t len, es_point_id *out)
{
	memset(out, 0, sizeof *out);
	uint64_t v;
	if (id_digits_u64(seg, len, &v)) {
		out->num = v;
		return;
	}
	out->is_str = 1;
	out->str = seg;
	out->len = len;
}

static int pt_is(const pt *p, const es_point_id *id, uint64_t hash)
{
	if (p->hash != hash || p->is_str != (id->is_str != 0))
		return 0;
	if (!id->is_str)
		return p->num == id->num;
	return p->slen == id->len && memcmp(p->str, id->str, id->len) == 0;
}

static es_point_id pt_id(const pt *p)
{
	es_point_id id = {p->is_str, p->num, p->str, p->slen};
	return id;
}

/* --- id -> label map (core/u64map keyed by the id's hash) ------------- */

static long tab_find(const es_collection *c, const es_point_id *id, uint64_t hash)
{
	for (size_t i = es_u64map_first(&c->ids, hash); i != ES_U64MAP_END;
	     i = es_u64map_next(&c->ids, hash, i))
		if (pt_is(&c->pts[c->ids.e[i].val], id, hash))
			return (long)c->ids.e[i].val;
	return -1;
}

/* Make room for `extra` more live entries, so tab_put cannot fail. */
static int tab_reserve(es_collection *c, size_t extra)
{
	return es_u64map_reserve(&c->ids, c->live + extra);
}

static void tab_put(es_collection *c, uint64_t label)
{
	int rc = es_u64map_put(&c->ids, c->pts[label].hash, label);
	assert(rc == 0); /* room was reserved */
	(void)rc;
}

static void tab_remove(es_collection *c, uint64_t label)
{
	es_u64map_remove_entry(&c->ids, c->pts[label].hash, label);
}

/* --- collection ------------------------------------------------------- */

int es_collection_name_check(const char *name, es_error *err)
{
	if (!name || !*name)
		return es_err(err, ES_EINVAL, "collection name must not be empty");
	size_t len = strlen(name);
	if (len > ES_COLLECTION_NAME_MAX)
		return es_err(err, ES_EINVAL, "collection name is %zu bytes; the limit is %d",
			      len, ES_COLLECTION_NAME_MAX);
	if (name[0] == '.')
		return es_err(err, ES_EINVAL, "collection name must not start with '.'");
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
			return es_err(err, ES_EINVAL,
				      "collection name may use only letters, digits, '_', '-' and '.' (got '%s')",
				      name);
	}
	return 0;
}

static int params_check(es_collection_params *p, es_error *err)
{
	if (p->dim < 1 || p->dim > 65536)
		return es_err(err, ES_EINVAL, "dim must be in 1..65536 (got %u)", p->dim);
	if (p->metric != ES_METRIC_COSINE && p->metric != ES_METRIC_DOT &&
	    p->metric != ES_METRIC_L2)
		return es_err(err, ES_EINVAL, "unknown metric %d", (int)p->metric);
	if (p->M == 0)
		p->M = HNSW_DEFAULT_M;
	if (p->ef_construction == 0)
		p->ef_construction = HNSW_DEFAULT_EF_CONSTRUCTION;
	if (p->M < 2 || p->M > HNSW_MAX_M)
		return es_err(err, ES_EINVAL, "m must be in 2..%d (got %u)", HNSW_MAX_M, p->M);
	if (p->ef_construction > HNSW_MAX_EF)
		return es_err(err, ES_EINVAL, "ef_construction must be in 1..%d (got %u)",
			      HNSW_MAX_EF, p->ef_construction);
	p->model[sizeof p->model - 1] = '\0';
	if (!p->lexical_set) {
		es_lexical_params_default(&p->lexical);
		p->lexical_set = 1;
	}
	return es_lexical_params_check(&p->lexical, err);
}

int es_collection_new(const char *name, const es_collection_params *p,
		      const es_payload_hooks *hooks, es_collection **out,
		      es_error *err)
{
	int rc = es_collection_name_check(name, err);
	if (rc)
		return rc;
	es_collection_params pp = *p;
	rc = params_check(&pp, err);
	if (rc)
		return rc;
	es_collection *c = es_calloc(1, sizeof *c);
	if (!c)
		return es_err(err, ES_ENOMEM, "out of memory creating collection '%s'", name);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->p = pp;
	if (hooks)
		c->hooks = *hooks;
	atomic_init(&c->refs, 1);
	hnsw_params hp;
	hnsw_params_default(&hp, pp.dim);
	hp.metric = pp.metric;
	hp.M = pp.M;
	hp.ef_construction = pp.ef_construction;
	hp.quantize_int8 = pp.quantize_int8;
	rc = hnsw_new(&hp, &c->h, err);
	if (rc) {
		es_free(c);
		return rc;
	}
	rc = es_lexical_new(&pp.lexical, &c->lx, err);
	if (rc) {
		hnsw_free(c->h);
		es_free(c);
		return rc;
	}
	if (pthread_rwlock_init(&c->lk, NULL) != 0) {
		hnsw_free(c->h);
		es_lexical_free(c->lx);
		es_free(c);
		return es_err(err, ES_ENOMEM, "cannot create a lock for collection '%s'", name);
	}
	if (pthread_mutex_init(&c->seq_mu, NULL) != 0) {
		pthread_rwlock_destroy(&c->lk);
		hnsw_free(c->h);
		es_lexical_free(c->lx);
		es_free(c);
		return es_err(err, ES_ENOMEM, "cannot create a lock for collection '%s'", name);
	}
	if (pthread_rwlock_init(&c->graph_lk, NULL) != 0) {
		pthread_mutex_destroy(&c->seq_mu);
		pthread_rwlock_destroy(&c->lk);
		hnsw_free(c->h);
		es_lexical_free(c->lx);
		es_free(c);
		return es_err(err, ES_ENOMEM, "cannot create a lock for collection '%s'", name);
	}
	*out = c;
	return 0;
}

static void pidx_point(es_collection *c, uint64_t label, const void *parsed, int add);

static void pt_clear(es_collection *c, pt *q)
{
	pidx_point(c, (uint64_t)(q - c->pts), q->parsed, 0);
	if (q->parsed && c->hooks.free)
		c->hooks.free(q->parsed);
	if (q->payload)
		c->payload_bytes -= q->plen;
	es_free(q->str);
	es_free(q->payload);
	q->str = NULL;
	q->payload = NULL;
	q->parsed = NULL;
	q->plen = q->slen = 0;
	q->live = 0;
}

/* Labels of deleted points are reused by later inserts, so memory follows
 * the live set rather than the number of inserts ever made (a server that
 * deletes and re-inserts would otherwise grow without end).  The free list
 * is threaded through the dead entries' num field; pt_clear first. */
static void label_free(es_collection *c, uint64_t label)
{
	c->pts[label].num = c->free_head;
	c->free_head = label + 1;
}

static void collection_free(es_collection *c)
{
	for (size_t i = 0; i < c->npidx; i++)
		es_pindex_free(c->pidx[i]);
	c->npidx = 0;
	for (size_t i = 0; i < c->npts; i++)
		pt_clear(c, &c->pts[i]);
	es_free(c->pts);
	es_u64map_destroy(&c->ids);
	hnsw_free(c->h);
	es_lexical_free(c->lx);
	pthread_rwlock_destroy(&c->lk);
	pthread_mutex_destroy(&c->seq_mu);
	pthread_rwlock_destroy(&c->graph_lk);
	es_free(c);
}

static void coll_retain(es_collection *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void es_collection_release(es_collection *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		collection_free(c);
}

const char *es_collection_name(const es_collection *c)
{
	return c->name;
}

const es_collection_params *es_collection_get_params(const es_collection *c)
{
	return &c->p;
}

static const es_mutation_observer *observer_of(const es_collection *c)
{
	return (c->reg && c->reg->has_obs) ? &c->reg->obs : NULL;
}

/* --- commit queue ------------------------------------------------------- */

/* seq_mu held. */
static void queue_push(es_collection *c, commit_node *n)
{
	n->next = NULL;
	if (c->qtail)
		c->qtail->next = n;
	else
		c->qhead = n;
	c->qtail = n;
}

/* seq_mu held; n is the head.  Wakes the next writer. */
static void queue_pop(es_collection *c, commit_node *n)
{
	assert(c->qhead == n);
	c->qhead = n->next;
	if (!c->qhead)
		c->qtail = NULL;
	else
		pthread_cond_signal(&c->qhead->head_cv);
}

void es_log_placed(es_log_turn *t, uint64_t token)
{
	assert(!t->placed);
	t->node->token = token;
	queue_push(t->c, t->node);
	t->placed = 1;
	pthread_mutex_unlock(&t->c->seq_mu);
}

/* Hand the change (pts for an upsert, op and ids for a payload update,
 * else ids for a delete) to the
 * observer and wait for this writer's turn.  Returns 0 with node at the head
 * of the queue: the caller applies under the write lock, then calls
 * turn_end.  On an error the node is not (or no longer) in the queue and
 * nothing may be applied. */
static int turn_begin(es_collection *c, commit_node *node, const es_point_in *pts,
		      const es_point_id *ids, size_t n, const char *op, size_t oplen,
		      es_error *err)
{
	int rc = 0;
	es_log_turn t = {c, node, 0};
	pthread_cond_init(&node->head_cv, NULL);
	pthread_mutex_lock(&c->seq_mu);
	const es_mutation_observer *obs = observer_of(c);
	if (obs && pts && obs->on_upsert)
		rc = obs->on_upsert(obs->ctx, c, pts, n, &t, err);
	else if (obs && op && obs->on_payload)
		rc = obs->on_payload(obs->ctx, c, op, oplen, ids, n, &t, err);
	else if (obs && !pts && !op && obs->on_delete)
		rc = obs->on_delete(obs->ctx, c, ids, n, &t, err);
	if (!t.placed) {
		if (!rc)
			queue_push(c, node); /* nothing logged: take a turn all the same */
		pthread_mutex_unlock(&c->seq_mu);
		if (rc)
			goto out; /* never queued */
	}
	/* placed: the observer has waited for durability and returned */
	pthread_mutex_lock(&c->seq_mu);
	while (c->qhead != node)
		pthread_cond_wait(&node->head_cv, &c->seq_mu);
	if (rc) /* logged but not durable: leave the queue, apply nothing */
		queue_pop(c, node);
	pthread_mutex_unlock(&c->seq_mu);
out:
	if (rc)
		pthread_cond_destroy(&node->head_cv);
	return rc;
}

/* After applying, with the write lock still held: leave the queue, so a
 * snapshot (which reads the queue under the shared lock) never sees a node
 * whose change is already applied. */
static void turn_end(es_collection *c, commit_node *node)
{
	pthread_mutex_lock(&c->seq_mu);
	queue_pop(c, node);
	pthread_mutex_unlock(&c->seq_mu);
	pthread_cond_destroy(&node->head_cv);
}

/* Undo record for one point.  Every point, new or an update, goes in at a
 * fresh label, reserved before the change is logged; an update's old label
 * stays as it was (out of the id map, still in the index) until the whole
 * batch has been published, so undoing needs no memory: delete the new
 * label, map the id back. */
typedef struct undo {
	uint64_t label;        /* reserved for the point (prepare) */
	uint64_t old_label;    /* updates: the label it replaces */
	int update;
	int reused;            /* label came from the free list */
} undo;

/* An upsert batch on its way in: the caller's points, our copies of their
 * ids and payloads (`fresh`, moved into the collection as they publish),
 * the undo log, and the labels and rows of the points with a vector (for
 * the graph). */
typedef struct batch {
	es_collection *c;
	const es_point_in *pts;
	size_t n;
	pt *fresh;
	undo *log;
	uint64_t *vlabels;
	float *vrows;
	size_t nv;
	int reserved;          /* labels and map room are held (prepare) */
	es_lexical_batch *lex; /* the texts, analysed, their room reserved */
	int in_graph;          /* the vectors are in the graph, pending */
} batch;

/* 1. Validate: nothing after this fails except for memory. */
static int upsert_validate(const es_collection *c, const es_point_in *pts,
			   size_t n, es_error *err)
{
	const uint32_t dim = c->p.dim;
	for (size_t i = 0; i < n; i++) {
		int rc = es_point_id_check(&pts[i].id, err);
		if (rc)
			return es_err_prefix(err, rc, "points[%zu]", i);
		if (pts[i].text) {
			size_t bad;
			if (pts[i].text_len == 0)
				return es_err(err, ES_EINVAL, "points[%zu]: text is empty", i);
			if (!es_utf8_valid(pts[i].text, pts[i].text_len, &bad))
				return es_err(err, ES_EINVAL,
					      "points[%zu]: text is not valid UTF-8 at byte %zu", i, bad);
		}
		if (!pts[i].vector) {
			if (pts[i].text)
				continue; /* stored without a vector */
			return es_err(err, ES_EINVAL, "points[%zu]: no vector and no text", i);
		}
		double norm = 0;
		for (uint32_t j = 0; j < dim; j++) {
			float v = pts[i].vector[j];
			if (!isfinite(v))
				return es_err(err, ES_EINVAL,
					      "points[%zu]: vector[%u] is not a finite number", i, j);
			norm += (double)v * v;
		}
		if (norm == 0 && c->p.metric == ES_METRIC_COSINE)
			return es_err(err, ES_EINVAL,
				      "points[%zu]: an all-zero vector has no direction under the cosine metric",
				      i);
		if (norm > ES_VECTOR_MAX_NORM2)
			return es_err(err, ES_EINVAL,
				      "points[%zu]: vector too large: squared norm %g is over %g", i,
				      norm, ES_VECTOR_MAX_NORM2);
	}
	return 0;
}


/* 2. Copies of ids and payloads, made before taking any lock: 0 or
 * ES_ENOMEM (batch_free releases what was made). */
static int upsert_copy(batch *b)
{
	es_collection *c = b->c;
	b->fresh = es_calloc(b->n, sizeof *b->fresh);
	b->log = es_calloc(b->n, sizeof *b->log);
	if (!b->fresh || !b->log)
		return ES_ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		const es_point_in *in = &b->pts[i];
		pt *q = &b->fresh[i];
		q->hash = id_hash(&in->id);
		q->is_str = in->id.is_str != 0;
		q->num = in->id.is_str ? 0 : in->id.num;
		if (in->id.is_str) {
			if (!(q->str = es_memdup0(in->id.str, in->id.len)))
				return ES_ENOMEM;
			q->slen = in->id.len;
		}
		if (in->payload) {
			if (!(q->payload = es_memdup0(in->payload, in->payload_len)))
				return ES_ENOMEM;
			q->plen = in->payload_len;
			if (c->hooks.parse)
				q->parsed = c->hooks.parse(q->payload, q->plen);
		}
		q->live = 1;
		q->novec = in->vector == NULL;
	}
	return 0;
}

static void batch_free(batch *b)
{
	es_collection *c = b->c;
	for (size_t i = 0; b->fresh && i < b->n; i++) {
		if (b->fresh[i].parsed && c->hooks.free)
			c->hooks.free(b->fresh[i].parsed);
		es_free(b->fresh[i].str);
		es_free(b->fresh[i].payload);
	}
	es_free(b->fresh);
	es_free(b->log);
	es_free(b->vlabels);
	es_free(b->vrows);
}

/* Room for `extra` more points in pts (write lock held): 0 or ES_ENOMEM. */
static int pts_reserve(es_collection *c, size_t extra)
{
	if (c->npts + extra <= c->cap)
		return 0;
	size_t ncap = c->cap ? c->cap : 64;
	while (ncap < c->npts + extra)
		ncap *= 2;
	pt *np = es_realloc(c->pts, ncap * sizeof *np);
	if (!np)
		return ES_ENOMEM;
	memset(np + c->cap, 0, (ncap - c->cap) * sizeof *np);
	c->pts = np;
	c->cap = ncap;
	return 0;
}

static void release_labels(batch *b);

/* The batch's texts analysed into the lexical index's terms, with room
 * reserved for their postings (write lock held): publishing them then
 * needs no memory.  0, ES_ENOMEM or ES_ERANGE. */
static int lexical_prepare(batch *b, es_error *err)
{
	size_t nt = 0;
	for (size_t i = 0; i < b->n; i++)
		nt += b->pts[i].text != NULL;
	if (!nt)
		return 0;
	uint64_t *labels = es_malloc(b->n * sizeof *labels);
	const char **texts = es_malloc(b->n * sizeof *texts);
	size_t *lens = es_malloc(b->n * sizeof *lens);
	int rc = ES_ENOMEM;
	if (labels && texts && lens) {
		for (size_t i = 0; i < b->n; i++) {
			labels[i] = b->log[i].label;
			texts[i] = b->pts[i].text;
			lens[i] = b->pts[i].text_len;
		}
		rc = es_lexical_batch_prepare(b->c->lx, labels, texts, lens, b->n, &b->lex, err);
	} else {
		es_err(err, rc, "out of memory copying a batch of %zu points", b->n);
	}
	es_free(labels);
	es_free(texts);
	es_free(lens);
	return rc;
}

/* 3. Under the write lock, briefly: a label for every point (free list
 * first) and room in the id map for all of them, so that publishing needs
 * no memory for either.  A reserved label is neither live nor on the free
 * list; c->reserved counts the map room promised to batches not yet
 * published.  0 or ES_ENOMEM (nothing reserved). */
static int reserve_labels(batch *b, es_error *err)
{
	es_collection *c = b->c;
	int rc = 0;
	pthread_rwlock_wrlock(&c->lk);
	if (pts_reserve(c, b->n) != 0 || tab_reserve(c, c->reserved + b->n) != 0) {
		rc = es_err(err, ES_ENOMEM, "out of memory reserving room for %zu points", b->n);
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		undo *u = &b->log[i];
		u->reused = c->free_head != 0;
		if (u->reused) {
			u->label = c->free_head - 1;
			c->free_head = c->pts[u->label].num;
			c->pts[u->label].num = 0;
		} else {
			u->label = c->npts++;
		}
	}
	c->reserved += b->n;
	b->reserved = 1;
	if ((rc = lexical_prepare(b, err)) != 0)
		release_labels(b);
out:
	pthread_rwlock_unlock(&c->lk);
	return rc;
}

/* Give the reserved labels back, in reverse order so the free list is as
 * it was (write lock held).  A label past others' reservations cannot
 * shrink npts: it goes on the free list. */
static void release_labels(batch *b)
{
	es_collection *c = b->c;
	for (size_t i = b->n; i-- > 0;) {
		uint64_t label = b->log[i].label;
		if (!b->log[i].reused && label + 1 == c->npts)
			c->npts--;
		else
			label_free(c, label);
	}
	c->reserved -= b->n;
	b->reserved = 0;
}

/* 4. The vectors into the graph as pending nodes (hnsw_add_pending: walked
 * through, never returned), on the registry's pool, with no collection
 * lock held: concurrent writers of one collection build at the same time,
 * and the build overlaps the log's fsyncs.  graph_lk shared keeps a
 * snapshot's hnsw_write out meanwhile.  0, or the index's error with every
 * node of the batch taken out again. */
static int graph_insert(batch *b, es_error *err)
{
	es_collection *c = b->c;
	const size_t dim = c->p.dim;
	for (size_t i = 0; i < b->n; i++)
		b->nv += b->pts[i].vector != NULL;
	if (b->nv == 0)
		return 0;
	b->vlabels = es_malloc(b->nv * sizeof *b->vlabels);
	b->vrows = es_malloc(b->nv * dim * sizeof *b->vrows);
	if (!b->vlabels || !b->vrows)
		return es_err(err, ES_ENOMEM, "out of memory copying a batch of %zu points",
			      b->n);
	for (size_t i = 0, j = 0; i < b->n; i++) {
		if (!b->pts[i].vector)
			continue;
		b->vlabels[j] = b->log[i].label;
		memcpy(b->vrows + j * dim, b->pts[i].vector, dim * sizeof(float));
		j++;
	}
	pthread_mutex_lock(&c->seq_mu); /* c->reg changes under it (drop) */
	es_pool *pool = c->reg ? c->reg->pool : NULL;
	pthread_mutex_unlock(&c->seq_mu);
	pthread_rwlock_rdlock(&c->graph_lk);
	int rc = hnsw_add_pending_batch(c->h, b->vlabels, b->vrows, b->nv,
					b->nv >= 64 ? pool : NULL, err);
	if (rc)
		for (size_t j = 0; j < b->nv; j++)
			hnsw_delete(c->h, b->vlabels[j]); /* ES_ENOTFOUND: never went in */
	pthread_rwlock_unlock(&c->graph_lk);
	b->in_graph = rc == 0;
	return rc;
}

/* Undo steps 3 and 4 of a batch that will not be published (its log
 * write failed, or it is rolled back): no lock held on entry. */
static void unprepare(batch *b)
{
	es_collection *c = b->c;
	if (b->in_graph) {
		pthread_rwlock_rdlock(&c->graph_lk);
		for (size_t j = 0; j < b->nv; j++)
			hnsw_delete(c->h, b->vlabels[j]);
		pthread_rwlock_unlock(&c->graph_lk);
	}
	if (b->reserved) {
		pthread_rwlock_wrlock(&c->lk);
		es_lexical_batch_free(c->lx, b->lex);
		b->lex = NULL;
		release_labels(b);
		pthread_rwlock_unlock(&c->lk);
	}
}

/* Publish point i at its reserved label (write lock held), recording its
 * undo entry.  Needs no memory: pts and the id map have room. */
static void publish_one(batch *b, size_t i)
{
	es_collection *c = b->c;
	pt *q = &b->fresh[i];
	undo *u = &b->log[i];
	es_point_id id = pt_id(q);
	long lab = tab_find(c, &id, q->hash);
	u->update = lab >= 0;
	u->old_label = u->update ? (uint64_t)lab : 0;
	c->pts[u->label] = *q;
	memset(q, 0, sizeof *q); /* ownership moved */
	pidx_point(c, u->label, c->pts[u->label].parsed, 1);
	c->payload_bytes += c->pts[u->label].plen;
	if (u->update)
		tab_remove(c, u->old_label);
	else
		c->live++;
	tab_put(c, u->label); /* room was reserved */
}

/* After the whole batch is published: the labels that updates replaced
 * go, and the batch's nodes become search results. */
static void drop_replaced(batch *b)
{
	es_collection *c = b->c;
	hnsw_publish_batch(c->h, b->vlabels, b->nv); /* ours alone: no label locks */
	for (size_t i = 0; i < b->n; i++) {
		undo *u = &b->log[i];
		if (!u->update)
			continue;
		hnsw_delete(c->h, u->old_label);
		es_lexical_undo gone; /* no compaction inside a batch */
		es_lexical_delete_undoable(c->lx, u->old_label, &gone);
		pt_clear(c, &c->pts[u->old_label]);
		label_free(c, u->old_label);
	}
	c->reserved -= b->n;
	b->reserved = 0;
}

/* 6. Publish the whole batch (write lock held, head of the commit queue):
 * ids, payloads, then texts (their room was reserved in step 3).  Needs
 * no memory, cannot fail. */
static void publish(batch *b)
{
	es_collection *c = b->c;
	for (size_t i = 0; i < b->n; i++)
		publish_one(b, i);
	if (b->lex) {
		es_lexical_batch_apply(c->lx, b->lex, NULL, 0);
		es_lexical_batch_free(c->lx, b->lex);
		b->lex = NULL;
	}
	drop_replaced(b);
	es_lexical_maybe_compact(c->lx);
}

/* Long-ish on purpose: the numbered steps are the write path of
 * collection.h ("Write path"), each a call; what is left is the order. */
int es_collection_upsert(es_collection *c, const es_point_in *pts, size_t n,
			 es_error *err)
{
	int rc = upsert_validate(c, pts, n, err);
	if (rc || n == 0)
		return rc;
	batch b = {.c = c, .pts = pts, .n = n};
	if (upsert_copy(&b) != 0) {
		rc = es_err(err, ES_ENOMEM, "out of memory copying a batch of %zu points", n);
		goto out;
	}
	/* 3, 4: everything that needs memory, before the log has the batch */
	if ((rc = reserve_labels(&b, err)) != 0 || (rc = graph_insert(&b, err)) != 0)
		goto out_unprepare;
	/* 5. the write-ahead log gets the batch and makes it durable (group
	 * commit, no collection lock held while it waits); then our turn */
	commit_node node;
	rc = turn_begin(c, &node, pts, NULL, n, NULL, 0, err);
	if (rc)
		goto out_unprepare;
	pthread_rwlock_wrlock(&c->lk);
	publish(&b);
	turn_end(c, &node);
	pthread_rwlock_unlock(&c->lk);
out_unprepare:
	if (rc)
		unprepare(&b);
out:
	batch_free(&b);
	return rc;
}

int es_collection_delete(es_collection *c, const es_point_id *ids, size_t n,
			 size_t *deleted, es_error *err)
{
	int rc = 0;
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		rc = es_point_id_check(&ids[i], err);
		if (rc)
			return es_err_prefix(err, rc, "points[%zu]", i);
	}
	if (n == 0)
		goto out_nolock;
	commit_node node;
	rc = turn_begin(c, &node, NULL, ids, n, NULL, 0, err);
	if (rc)
		goto out_nolock;
	pthread_rwlock_wrlock(&c->lk);
	for (size_t i = 0; i < n; i++) {
		long lab = tab_find(c, &ids[i], id_hash(&ids[i]));
		if (lab < 0)
			continue;
		hnsw_delete(c->h, (uint64_t)lab);
		es_lexical_delete(c->lx, (uint64_t)lab);
		tab_remove(c, (uint64_t)lab);
		pt_clear(c, &c->pts[lab]);
		label_free(c, (uint64_t)lab);
		c->live--;
		count++;
	}
	turn_end(c, &node);
	pthread_rwlock_unlock(&c->lk);
out_nolock:
	if (deleted)
		*deleted = count;
	return rc;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* Payload updates: every new payload is computed (op_apply, then parsed)
 * under the write lock, in this writer's turn, before any is swapped in,
 * so a failure changes nothing and the op sees exactly the state that
 * replay will show it.  An id listed twice gets the same new payload twice
 * (computed from the state before the update) and counts once. */
int es_collection_update_payload(es_collection *c, const char *op, size_t oplen,
				 const es_point_id *ids, size_t n, size_t *updated,
				 es_error *err)
{
	int rc = 0;
	size_t count = 0;
	void *cop = NULL;
	char **np = NULL;
	size_t *nl = NULL;
	void **npar = NULL;
	long *labs = NULL;
	const es_payload_hooks *h = &c->hooks;
	if (!h->op_compile || !h->op_apply || !h->op_free) {
		rc = es_err(err, ES_EUNSUPPORTED, "collection '%s' cannot update payloads here",
			    c->name);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = es_point_id_check(&ids[i], err);
		if (rc) {
			es_err_prefix(err, rc, "points[%zu]", i);
			goto out;
		}
	}
	if (n == 0)
		goto out;
	np = es_calloc(n, sizeof *np);
	nl = es_calloc(n, sizeof *nl);
	npar = es_calloc(n, sizeof *npar);
	labs = es_malloc(n * sizeof *labs);
	if (!np || !nl || !npar || !labs) {
		rc = es_err(err, ES_ENOMEM, "out of memory updating %zu payloads", n);
		goto out;
	}
	if (!(cop = h->op_compile(op, oplen))) {
		rc = es_err(err, ES_EINVAL, "a payload update the server cannot read (or out of memory)");
		goto out;
	}
	commit_node node;
	rc = turn_begin(c, &node, NULL, ids, n, op, oplen, err);
	if (rc)
		goto out;
	pthread_rwlock_wrlock(&c->lk);
	for (size_t i = 0; i < n && !rc; i++) {
		labs[i] = tab_find(c, &ids[i], id_hash(&ids[i]));
		if (labs[i] < 0)
			continue;
		const pt *q = &c->pts[labs[i]];
		if (h->op_apply(cop, q->payload, q->payload ? q->plen : 0, &np[i], &nl[i]) != 0)
			rc = es_err(err, ES_ENOMEM, "out of memory updating payloads");
		else if (np[i] && h->parse)
			npar[i] = h->parse(np[i], nl[i]);
	}
	if (!rc) {
		for (size_t i = 0; i < n; i++) {
			if (labs[i] < 0)
				continue;
			pt *q = &c->pts[labs[i]];
			pidx_point(c, (uint64_t)labs[i], q->parsed, 0);
			pidx_point(c, (uint64_t)labs[i], npar[i], 1);
			if (q->parsed && h->free)
				h->free(q->parsed);
			if (q->payload)
				c->payload_bytes -= q->plen;
			es_free(q->payload);
			q->payload = np[i];
			q->plen = np[i] ? nl[i] : 0;
			q->parsed = npar[i];
			c->payload_bytes += q->plen;
			np[i] = NULL;
			npar[i] = NULL;
		}
		qsort(labs, n, sizeof *labs, cmp_long);
		for (size_t i = 0; i < n; i++)
			count += labs[i] >= 0 && (i == 0 || labs[i] != labs[i - 1]);
	}
	turn_end(c, &node);
	pthread_rwlock_unlock(&c->lk);
out:
	for (size_t i = 0; np && npar && i < n; i++) {
		if (npar[i] && h->free)
			h->free(npar[i]);
		es_free(np[i]);
	}
	es_free(np);
	es_free(nl);
	es_free(npar);
	es_free(labs);
	if (cop)
		h->op_free(cop);
	if (updated)
		*updated = count;
	return rc;
}

static int copy_out(es_collection *c, const pt *q, uint64_t label,
		    int want_vector, int want_payload, es_point_out *out)
{
	memset(out, 0, sizeof *out);
	out->id.is_str = q->is_str;
	out->id.num = q->num;
	if (q->is_str) {
		char *s = es_malloc(q->slen + 1);
		if (!s)
			return ES_ENOMEM;
		memcpy(s, q->str, q->slen + 1);
		out->id.str = s;
		out->id.len = q->slen;
	}
	if (want_payload && q->payload) {
		out->payload = es_malloc(q->plen + 1);
		if (!out->payload)
			goto oom;
		memcpy(out->payload, q->payload, q->plen + 1);
		out->payload_len = q->plen;
	}
	if (want_vector && !q->novec) {
		out->vector = es_malloc((size_t)c->p.dim * sizeof(float));
		if (!out->vector)
			goto oom;
		if (hnsw_get_vector(c->h, label, out->vector) != 0)
			memset(out->vector, 0, (size_t)c->p.dim * sizeof(float));
	}
	return 0;
oom:
	es_point_out_free(out);
	return ES_ENOMEM;
}

void es_point_out_free(es_point_out *p)
{
	if (!p)
		return;
	if (p->id.is_str)
		es_free((char *)p->id.str);
	es_free(p->payload);
	es_free(p->vector);
	memset(p, 0, sizeof *p);
}

void es_hits_free(es_point_out *hits, size_t n)
{
	if (!hits)
		return;
	for (size_t i = 0; i < n; i++)
		es_point_out_free(&hits[i]);
	es_free(hits);
}

int es_collection_get(es_collection *c, const es_point_id *id,
		      int want_vector, int want_payload, es_point_out *out,
		      es_error *err)
{
	int rc = 0;
	pthread_rwlock_rdlock(&c->lk);
	long lab = tab_find(c, id, id_hash(id));
	if (lab < 0) {
		rc = ES_ENOTFOUND;
	} else {
		rc = copy_out(c, &c->pts[lab], (uint64_t)lab, want_vector,
			      want_payload, out);
		if (rc)
			es_err(err, rc, "out of memory copying a point");
	}
	pthread_rwlock_unlock(&c->lk);
	if (rc == ES_ENOTFOUND) {
		if (id->is_str)
			es_err(err, rc, "no point with id \"%.*s\" in collection '%s'",
			       (int)id->len, id->str, c->name);
		else
			es_err(err, rc, "no point with id %llu in collection '%s'",
			       (unsigned long long)id->num, c->name);
	}
	return rc;
}

int es_collection_get_vector(es_collection *c, const es_point_id *id,
			     float *vec, es_error *err)
{
	es_point_out o;
	int rc = es_collection_get(c, id, 1, 0, &o, err);
	if (rc)
		return rc;
	memcpy(vec, o.vector, (size_t)c->p.dim * sizeof(float));
	es_point_out_free(&o);
	return 0;
}

typedef struct filter_ctx {
	es_collection *c;
	const es_search_req *req;
	long self;
	int planned; /* the labels are the candidates of an exact plan: the
		      * filter accepts them all (only self is checked) */
} filter_ctx;

static int filter_tramp(void *ctx, uint64_t label)
{
	filter_ctx *f = ctx;
	if ((long)label == f->self)
		return 0;
	if (!f->req->filter || f->planned)
		return 1;
	if (label >= f->c->npts)
		return 0;
	const pt *q = &f->c->pts[label];
	if (!q->live)
		return 0;
	es_point_view v = {pt_id(q), label, q->payload, q->plen, q->parsed, NULL};
	return f->req->filter(f->req->filter_ctx, &v);
}

/* One fused candidate. */
typedef struct fused {
	uint64_t label;
	float score, dense, lexical;
	int has_dense, has_lexical;
} fused;

static int cmp_fused_best(const void *a, const void *b)
{
	const fused *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->label < y->label ? -1 : x->label > y->label;
}

/* min-max normalisation of a list's score; higher is better in the result
 * (an L2 distance is turned round). */
static float norm01(float s, float lo, float hi, int lower_better)
{
	if (hi <= lo)
		return 1.0f;
	return lower_better ? (hi - s) / (hi - lo) : (s - lo) / (hi - lo);
}

static inline uint64_t label_mix(uint64_t x)
{
	x *= 0x9E3779B97F4A7C15ull;
	return x ^ (x >> 29);
}

/* Restore the heap f[0..n) (worst on top) below i. */
static void fused_sift(fused *f, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && cmp_fused_best(&f[l], &f[m]) > 0)
			m = l;
		if (r < n && cmp_fused_best(&f[r], &f[m]) > 0)
			m = r;
		if (m == i)
			return;
		fused t = f[i];
		f[i] = f[m];
		f[m] = t;
		i = m;
	}
}

/* The k best of f[0..n) into f[0..min(n, k)), best first: a heap of k
 * over the rest (the fusion reads 2 x candidates to return k). */
static size_t fused_top(fused *f, size_t n, size_t k)
{
	if (n > k) {
		for (size_t i = k / 2; i-- > 0;)
			fused_sift(f, k, i);
		for (size_t i = k; i < n; i++)
			if (cmp_fused_best(&f[i], &f[0]) < 0) {
				f[0] = f[i];
				fused_sift(f, k, 0);
			}
		n = k;
	}
	qsort(f, n, sizeof *f, cmp_fused_best);
	return n;
}

/* Fuse the dense and lexical lists into f (room for nd + nl) and return
 * the best k, best first.  slots (nslots, a power of two >= 2 (nd + nl))
 * is scratch for the join on labels. */
static size_t fuse(const es_search_req *req, es_metric metric, const es_hit *d,
		   size_t nd, const es_hit *l, size_t nl, fused *f, uint32_t *slots,
		   size_t nslots, size_t k)
{
	size_t n = 0;
	uint32_t rrf_k = req->rrf_k ? req->rrf_k : ES_RRF_K_DEFAULT;
	float dlo = 0, dhi = 0, llo = 0, lhi = 0;
	for (size_t i = 0; i < nd; i++) {
		if (!i || d[i].score < dlo) dlo = d[i].score;
		if (!i || d[i].score > dhi) dhi = d[i].score;
	}
	for (size_t i = 0; i < nl; i++) {
		if (!i || l[i].score < llo) llo = l[i].score;
		if (!i || l[i].score > lhi) lhi = l[i].score;
	}
	memset(slots, 0xff, nslots * sizeof *slots);
	for (size_t i = 0; i < nd; i++) {
		fused *x = &f[n];
		memset(x, 0, sizeof *x);
		x->label = d[i].label;
		x->dense = d[i].score;
		x->has_dense = 1;
		x->score = req->fusion == ES_FUSION_WEIGHTED
				   ? req->alpha * norm01(d[i].score, dlo, dhi, metric == ES_METRIC_L2)
				   : 1.0f / (float)(rrf_k + i + 1);
		size_t h = (size_t)label_mix(x->label) & (nslots - 1);
		while (slots[h] != UINT32_MAX)
			h = (h + 1) & (nslots - 1);
		slots[h] = (uint32_t)n++;
	}
	for (size_t i = 0; i < nl; i++) {
		float part = req->fusion == ES_FUSION_WEIGHTED
				     ? (1.0f - req->alpha) * norm01(l[i].score, llo, lhi, 0)
				     : 1.0f / (float)(rrf_k + i + 1);
		size_t h = (size_t)label_mix(l[i].label) & (nslots - 1);
		fused *x = NULL;
		while (slots[h] != UINT32_MAX) {
			if (f[slots[h]].label == l[i].label) {
				x = &f[slots[h]];
				break;
			}
			h = (h + 1) & (nslots - 1);
		}
		if (!x) {
			x = &f[n++];
			memset(x, 0, sizeof *x);
			x->label = l[i].label;
		}
		x->score += part;
		x->lexical = l[i].score;
		x->has_lexical = 1;
	}
	return fused_top(f, n, k);
}

void es_search_feedback_default(int mode, es_lexical_feedback *fb)
{
	es_lexical_feedback_default(fb);
	if (mode != ES_SEARCH_HYBRID)
		fb->docs = 0;
}

static int search_check(const es_collection *c, const es_search_req *req, es_error *err)
{
	if (req->k == 0)
		return es_err(err, ES_EINVAL, "k must be at least 1");
	if (req->mode != ES_SEARCH_DENSE && req->mode != ES_SEARCH_LEXICAL &&
	    req->mode != ES_SEARCH_HYBRID)
		return es_err(err, ES_EINVAL, "unknown search mode %d", req->mode);
	if (req->mode != ES_SEARCH_DENSE && !req->text)
		return es_err(err, ES_EINVAL, "%s search needs a query text",
			      req->mode == ES_SEARCH_LEXICAL ? "lexical" : "hybrid");
	if (req->mode == ES_SEARCH_DENSE && !req->query)
		return es_err(err, ES_EINVAL, "dense search needs a query vector");
	if (req->fusion != ES_FUSION_RRF && req->fusion != ES_FUSION_WEIGHTED)
		return es_err(err, ES_EINVAL, "unknown fusion method %d", req->fusion);
	if (req->fusion == ES_FUSION_WEIGHTED && !(req->alpha >= 0 && req->alpha <= 1))
		return es_err(err, ES_EINVAL, "fusion alpha must be between 0 and 1");
	if (req->candidates > ES_HYBRID_CANDIDATES_MAX)
		return es_err(err, ES_EINVAL, "fusion candidates must be at most %u",
			      ES_HYBRID_CANDIDATES_MAX);
	if (req->mode != ES_SEARCH_DENSE && es_lexical_feedback_check(&req->feedback, err))
		return ES_EINVAL;
	for (uint32_t j = 0; req->query && req->mode != ES_SEARCH_LEXICAL && j < c->p.dim; j++)
		if (!isfinite(req->query[j]))
			return es_err(err, ES_EINVAL, "query vector[%u] is not a finite number", j);
	return 0;
}

/* Does a hit with mode's score pass the request's threshold? */
static int passes(const es_collection *c, const es_search_req *req, int mode, float score)
{
	if (!req->has_threshold)
		return 1;
	if (mode == ES_SEARCH_DENSE && c->p.metric == ES_METRIC_L2)
		return score <= req->threshold;
	return score >= req->threshold;
}

static int dense_search(es_collection *c, const es_search_req *req, uint32_t depth,
			uint32_t ef, hnsw_filter_fn filt, void *fctx, es_hit *out, size_t *nout,
			es_error *err);

int es_collection_search(es_collection *c, const es_search_req *req,
			 es_point_out **hits_out, size_t *nhits, es_error *err)
{
	*hits_out = NULL;
	*nhits = 0;
	int rc = search_check(c, req, err);
	if (rc)
		return rc;
	es_hit *dh = NULL, *lh = NULL;
	fused *f = NULL;
	uint32_t *slots = NULL;
	es_point_out *outs = NULL;
	size_t nd = 0, nl = 0, nf = 0, m = 0;

	pthread_rwlock_rdlock(&c->lk);
	int mode = req->mode;
	/* Vector-only points have no lexical entries: fusing an empty list
	 * would only cost the deeper dense search (bench/http). */
	if (mode == ES_SEARCH_HYBRID && req->query && es_lexical_count(c->lx) == 0)
		mode = ES_SEARCH_DENSE;
	uint32_t depth = req->k;
	uint32_t cand = req->candidates ? req->candidates : ES_HYBRID_CANDIDATES_DEFAULT;
	if (mode == ES_SEARCH_HYBRID && depth < cand)
		depth = cand;
	uint32_t ef = req->ef ? req->ef : (depth > HNSW_DEFAULT_EF_SEARCH ? depth : HNSW_DEFAULT_EF_SEARCH);
	if (ef < depth)
		ef = depth;
	int want_dense = mode != ES_SEARCH_LEXICAL && req->query;
	int want_lex = mode != ES_SEARCH_DENSE;
	size_t nslots = 16;
	while (nslots < 4 * (size_t)depth)
		nslots *= 2;
	dh = es_malloc(depth * sizeof *dh);
	lh = es_malloc(depth * sizeof *lh);
	f = es_malloc(2 * (size_t)depth * sizeof *f);
	if (mode == ES_SEARCH_HYBRID)
		slots = es_malloc(nslots * sizeof *slots);
	if (!dh || !lh || !f || (mode == ES_SEARCH_HYBRID && !slots)) {
		rc = es_err(err, ES_ENOMEM, "out of memory for %u results", depth);
		goto out;
	}
	filter_ctx fc = {c, req, -1, 0};
	if (req->exclude_self)
		fc.self = tab_find(c, &req->self, id_hash(&req->self));
	int need_filter = req->filter || fc.self >= 0;
	if (want_dense && hnsw_count(c->h) > 0) {
		rc = dense_search(c, req, depth, ef, need_filter ? filter_tramp : NULL, &fc, dh,
				  &nd, err);
		if (rc)
			goto out;
	}
	if (want_lex) {
		rc = es_lexical_search_feedback(c->lx, req->text, req->text_len, depth,
						&req->feedback,
						need_filter ? filter_tramp : NULL, &fc, lh,
						&nl, err);
		if (rc)
			goto out;
	}
	if (mode == ES_SEARCH_HYBRID) {
		nf = fuse(req, c->p.metric, dh, nd, lh, nl, f, slots, nslots, req->k);
	} else {
		const es_hit *src = mode == ES_SEARCH_DENSE ? dh : lh;
		nf = mode == ES_SEARCH_DENSE ? nd : nl;
		for (size_t i = 0; i < nf; i++) {
			memset(&f[i], 0, sizeof f[i]);
			f[i].label = src[i].label;
			f[i].score = src[i].score;
			if (mode == ES_SEARCH_DENSE) {
				f[i].dense = src[i].score;
				f[i].has_dense = 1;
			} else {
				f[i].lexical = src[i].score;
				f[i].has_lexical = 1;
			}
		}
	}
	if (nf > req->k)
		nf = req->k;
	outs = es_calloc(nf ? nf : 1, sizeof *outs);
	if (!outs) {
		rc = es_err(err, ES_ENOMEM, "out of memory for %zu results", nf);
		goto out;
	}
	for (size_t i = 0; i < nf; i++) {
		uint64_t lab = f[i].label;
		if (lab >= c->npts || !c->pts[lab].live || !passes(c, req, mode, f[i].score))
			continue;
		rc = copy_out(c, &c->pts[lab], lab, req->with_vector, req->with_payload,
			      &outs[m]);
		if (rc) {
			es_err(err, rc, "out of memory copying results");
			goto out;
		}
		outs[m].score = f[i].score;
		outs[m].dense_score = f[i].dense;
		outs[m].has_dense = f[i].has_dense;
		outs[m].lexical_score = f[i].lexical;
		outs[m].has_lexical = f[i].has_lexical;
		m++;
	}
out:
	pthread_rwlock_unlock(&c->lk);
	es_free(dh);
	es_free(lh);
	es_free(f);
	es_free(slots);
	if (rc) {
		es_hits_free(outs, m);
		return rc;
	}
	*hits_out = outs;
	*nhits = m;
	return 0;
}

size_t es_collection_count(es_collection *c)
{
	pthread_rwlock_rdlock(&c->lk);
	size_t n = c->live;
	pthread_rwlock_unlock(&c->lk);
	return n;
}

static size_t pidx_bytes(const es_collection *c);

size_t es_collection_memory_bytes(es_collection *c)
{
	pthread_rwlock_rdlock(&c->lk);
	size_t b = sizeof *c + hnsw_memory_bytes(c->h) + c->cap * sizeof(pt) +
		   es_u64map_bytes(&c->ids) + c->payload_bytes +
		   es_lexical_memory_bytes(c->lx) + pidx_bytes(c);
	for (size_t i = 0; i < c->npts; i++)
		b += c->pts[i].slen;
	pthread_rwlock_unlock(&c->lk);
	return b;
}

size_t es_collection_lexical_bytes(es_collection *c)
{
	pthread_rwlock_rdlock(&c->lk);
	size_t b = es_lexical_memory_bytes(c->lx);
	pthread_rwlock_unlock(&c->lk);
	return b;
}

size_t es_collection_lexical_count(es_collection *c)
{
	pthread_rwlock_rdlock(&c->lk);
	size_t n = es_lexical_count(c->lx);
	pthread_rwlock_unlock(&c->lk);
	return n;
}

size_t es_collection_store_bytes(es_collection *c)
{
	pthread_rwlock_rdlock(&c->lk);
	size_t b = hnsw_store_bytes(c->h);
	pthread_rwlock_unlock(&c->lk);
	return b;
}

int es_collection_foreach(es_collection *c,
			  int (*fn)(void *ctx, const es_point_view *p),
			  void *ctx)
{
	int rc = 0;
	float *vec = es_malloc((size_t)c->p.dim * sizeof *vec);
	if (!vec)
		return ES_ENOMEM;
	pthread_rwlock_rdlock(&c->lk);
	for (size_t i = 0; i < c->npts && rc == 0; i++) {
		const pt *q = &c->pts[i];
		if (!q->live)
			continue;
		/* a text point stored without a vector is visited with vector NULL */
		const float *pv = q->novec ? NULL : vec;
		if (pv && hnsw_get_vector(c->h, i, vec) != 0)
			continue;
		es_point_view v = {pt_id(q), i, q->payload, q->plen, q->parsed, pv};
		rc = fn(ctx, &v);
	}
	pthread_rwlock_unlock(&c->lk);
	es_free(vec);
	return rc;
}

/* --- payload indexes ----------------------------------------------------- */

typedef struct pidx_emit {
	es_pindex *x;
	uint64_t label;
	int add;
} pidx_emit;

static void pidx_emit_fn(void *ctx, const es_pval *v)
{
	pidx_emit *e = ctx;
	if (e->add)
		es_pindex_add(e->x, e->label, v);
	else
		es_pindex_remove(e->x, e->label, v);
}

/* Add (or remove) the values of one point's parsed payload to (from)
 * every payload index (write lock held).  Needs memory only to add; a
 * failure there marks that index unusable (payload_index.h). */
static void pidx_point(es_collection *c, uint64_t label, const void *parsed, int add)
{
	if (!parsed || !c->hooks.extract)
		return;
	for (size_t i = 0; i < c->npidx; i++) {
		pidx_emit e = {c->pidx[i], label, add};
		c->hooks.extract(parsed, es_pindex_field(c->pidx[i]), pidx_emit_fn, &e);
	}
}

static long pidx_find(const es_collection *c, const char *field)
{
	for (size_t i = 0; i < c->npidx; i++)
		if (strcmp(es_pindex_field(c->pidx[i]), field) == 0)
			return (long)i;
	return -1;
}

/* A new index of field over every live point (lock held). */
static int pidx_build(es_collection *c, const char *field, es_pindex_kind kind,
		      es_pindex **out)
{
	int rc = es_pindex_new(field, kind, out);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->npts; i++)
		if (c->pts[i].live && c->pts[i].parsed) {
			pidx_emit e = {*out, i, 1};
			c->hooks.extract(c->pts[i].parsed, field, pidx_emit_fn, &e);
		}
	if (!es_pindex_usable(*out)) {
		es_pindex_free(*out);
		*out = NULL;
		return ES_ENOMEM;
	}
	return 0;
}

/* Put x in as field's index (replacing one of another kind), keeping the
 * array sorted by field (lock held; room checked by the caller). */
static void pidx_install(es_collection *c, es_pindex *x)
{
	long at = pidx_find(c, es_pindex_field(x));
	if (at >= 0) {
		es_pindex_free(c->pidx[at]);
		c->pidx[at] = x;
		return;
	}
	size_t i = c->npidx;
	while (i > 0 && strcmp(es_pindex_field(c->pidx[i - 1]), es_pindex_field(x)) > 0) {
		c->pidx[i] = c->pidx[i - 1];
		i--;
	}
	c->pidx[i] = x;
	c->npidx++;
}

static void pidx_remove_at(es_collection *c, size_t at)
{
	es_pindex_free(c->pidx[at]);
	memmove(&c->pidx[at], &c->pidx[at + 1], (c->npidx - at - 1) * sizeof *c->pidx);
	c->npidx--;
}

/* Log an index change (kind 0: drop) and take this writer's turn. */
static int pidx_turn(es_collection *c, commit_node *node, const char *field, int kind,
		     es_error *err)
{
	int rc = 0;
	es_log_turn t = {c, node, 0};
	pthread_cond_init(&node->head_cv, NULL);
	pthread_mutex_lock(&c->seq_mu);
	const es_mutation_observer *obs = observer_of(c);
	if (obs && obs->on_index)
		rc = obs->on_index(obs->ctx, c, field, kind, &t, err);
	if (!t.placed) {
		if (!rc)
			queue_push(c, node);
		pthread_mutex_unlock(&c->seq_mu);
		if (rc) {
			pthread_cond_destroy(&node->head_cv);
			return rc;
		}
	}
	pthread_mutex_lock(&c->seq_mu);
	while (c->qhead != node)
		pthread_cond_wait(&node->head_cv, &c->seq_mu);
	if (rc)
		queue_pop(c, node);
	pthread_mutex_unlock(&c->seq_mu);
	if (rc)
		pthread_cond_destroy(&node->head_cv);
	return rc;
}

int es_collection_create_index(es_collection *c, const char *field, es_pindex_kind kind,
			       es_error *err)
{
	int rc = es_pindex_check(field, (int)kind, err);
	if (rc)
		return rc;
	if (!c->hooks.extract)
		return es_err(err, ES_EUNSUPPORTED, "collection '%s' cannot index payloads here",
			      c->name);
	pthread_rwlock_rdlock(&c->lk);
	long at = pidx_find(c, field);
	int same = at >= 0 && es_pindex_kind_of(c->pidx[at]) == kind;
	int full = at < 0 && c->npidx == ES_PINDEX_MAX;
	pthread_rwlock_unlock(&c->lk);
	if (same)
		return 0;
	if (full)
		return es_err(err, ES_EINVAL, "collection '%s' has %d payload indexes, the most "
			      "it may have", c->name, ES_PINDEX_MAX);
	commit_node node;
	if ((rc = pidx_turn(c, &node, field, (int)kind, err)) != 0)
		return rc;
	pthread_rwlock_wrlock(&c->lk);
	es_pindex *x = NULL;
	if (pidx_find(c, field) < 0 && c->npidx == ES_PINDEX_MAX)
		rc = es_err(err, ES_EINVAL, "collection '%s' has %d payload indexes", c->name,
			    ES_PINDEX_MAX);
	else if ((rc = pidx_build(c, field, kind, &x)) != 0)
		es_err(err, rc, "out of memory building the index of '%s'", field);
	else
		pidx_install(c, x);
	turn_end(c, &node);
	pthread_rwlock_unlock(&c->lk);
	return rc;
}

int es_collection_drop_index(es_collection *c, const char *field, es_error *err)
{
	pthread_rwlock_rdlock(&c->lk);
	long at = field ? pidx_find(c, field) : -1;
	pthread_rwlock_unlock(&c->lk);
	if (at < 0)
		return es_err(err, ES_ENOTFOUND, "collection '%s' has no payload index on '%s'",
			      c->name, field ? field : "");
	commit_node node;
	int rc = pidx_turn(c, &node, field, 0, err);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&c->lk);
	if ((at = pidx_find(c, field)) >= 0)
		pidx_remove_at(c, (size_t)at);
	turn_end(c, &node);
	pthread_rwlock_unlock(&c->lk);
	return 0;
}

int es_collection_list_indexes(es_collection *c, es_index_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&c->lk);
	es_index_info *v = es_calloc(c->npidx ? c->npidx : 1, sizeof *v);
	if (!v) {
		pthread_rwlock_unlock(&c->lk);
		return ES_ENOMEM;
	}
	for (size_t i = 0; i < c->npidx; i++) {
		snprintf(v[i].field, sizeof v[i].field, "%s", es_pindex_field(c->pidx[i]));
		v[i].kind = es_pindex_kind_of(c->pidx[i]);
		v[i].usable = es_pindex_usable(c->pidx[i]);
		v[i].points = es_pindex_points(c->pidx[i], c->npts);
	}
	*n = c->npidx;
	pthread_rwlock_unlock(&c->lk);
	*out = v;
	return 0;
}

void es_index_info_free(es_index_info *v)
{
	es_free(v);
}

static size_t pidx_bytes(const es_collection *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->npidx; i++)
		n += es_pindex_bytes(c->pidx[i]);
	return n;
}

/* The plan's cheapest term that a usable index answers, if its estimate
 * is at most limit: its candidates (sorted labels) into *labs / *n and 1;
 * 0 when no index helps; ES_ENOMEM (lock held shared). */
static int plan_candidates(const es_collection *c, const es_pquery *plan, size_t limit,
			   uint64_t **labs, size_t *n)
{
	*labs = NULL;
	*n = 0;
	const es_pindex *best = NULL;
	const es_pterm *bt = NULL;
	size_t best_n = SIZE_MAX;
	for (size_t t = 0; plan && c->hooks.extract && t < plan->n; t++)
		for (size_t i = 0; i < c->npidx; i++) {
			const es_pindex *x = c->pidx[i];
			if (!es_pindex_usable(x) || !es_pindex_answers(x, &plan->terms[t]))
				continue;
			size_t e = es_pindex_estimate(x, &plan->terms[t]);
			if (e < best_n) {
				best_n = e;
				best = x;
				bt = &plan->terms[t];
			}
		}
	if (!best || best_n > limit)
		return 0;
	if (es_pindex_collect(best, bt, labs, n) != 0)
		return ES_ENOMEM;
	return 1;
}

static int cmp_hit_desc(const void *a, const void *b)
{
	const es_hit *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->label > y->label) - (x->label < y->label);
}

static int cmp_hit_asc(const void *a, const void *b)
{
	const es_hit *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? -1 : 1;
	return (x->label > y->label) - (x->label < y->label);
}

/* Is hit a better than hit b: the nearer score, then the lower label (the
 * order of cmp_hit_desc / cmp_hit_asc)? */
static int hit_better(int l2, const es_hit *a, const es_hit *b)
{
	if (a->score != b->score)
		return l2 ? a->score < b->score : a->score > b->score;
	return a->label < b->label;
}

/* Keep the best `depth` hits in heap h (*m of them; its root the worst
 * kept): offer one more. */
static void topk_offer(es_hit *h, size_t *m, size_t depth, int l2, es_hit x)
{
	size_t i;
	if (*m < depth) {
		for (i = (*m)++; i > 0 && hit_better(l2, &h[(i - 1) / 2], &x); i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = x;
		return;
	}
	if (!hit_better(l2, &x, &h[0]))
		return;
	for (i = 0;;) {
		size_t w = 2 * i + 1;
		if (w >= *m)
			break;
		if (w + 1 < *m && hit_better(l2, &h[w], &h[w + 1]))
			w++;
		if (!hit_better(l2, &x, &h[w]))
			break;
		h[i] = h[w];
		i = w;
	}
	h[i] = x;
}

#define EXACT_BLOCK 64 /* candidates whose vectors are scored in one batch */

/* Score the candidates exactly (those the filter accepts; filt NULL: all),
 * the best `depth` into out, best first (lock held shared): 0 or
 * ES_ENOMEM.  Vectors are gathered EXACT_BLOCK at a time and scored with
 * one batched kernel call; a bounded heap keeps the best. */
static int exact_search(es_collection *c, const float *query, const uint64_t *labs, size_t n,
			uint32_t depth, hnsw_filter_fn filt, void *fctx, es_hit *out,
			size_t *nout)
{
	uint32_t dim = c->p.dim;
	int l2 = c->p.metric == ES_METRIC_L2;
	float *q = es_malloc(((size_t)EXACT_BLOCK + 1) * dim * sizeof *q);
	if (!q)
		return ES_ENOMEM;
	float *blk = q + dim;
	memcpy(q, query, (size_t)dim * sizeof *q);
	if (c->p.metric == ES_METRIC_COSINE)
		simd_normalize(q, dim);
	uint64_t bl[EXACT_BLOCK];
	unsigned char found[EXACT_BLOCK];
	float sc[EXACT_BLOCK];
	size_t m = 0, i = 0;
	while (i < n) {
		size_t nb = 0;
		for (; i < n && nb < EXACT_BLOCK; i++) {
			uint64_t l = labs[i];
			if (l >= c->npts || !c->pts[l].live || c->pts[l].novec ||
			    (filt && !filt(fctx, l)))
				continue;
			bl[nb++] = l;
		}
		/* live labels stay put while the lock is held shared */
		if (hnsw_get_vectors(c->h, bl, nb, blk, found) < nb) {
			size_t k = 0;
			for (size_t j = 0; j < nb; j++)
				if (found[j]) {
					if (k != j)
						memcpy(blk + k * dim, blk + j * dim, (size_t)dim * 4);
					bl[k++] = bl[j];
				}
			nb = k;
		}
		if (l2)
			for (size_t j = 0; j < nb; j++)
				sc[j] = sqrtf(simd_l2sq(q, blk + j * dim, dim));
		else
			simd_dot_batch(q, blk, nb, dim, dim, sc);
		for (size_t j = 0; j < nb; j++)
			topk_offer(out, &m, depth, l2, (es_hit){.label = bl[j], .score = sc[j]});
	}
	qsort(out, m, sizeof *out, l2 ? cmp_hit_asc : cmp_hit_desc);
	*nout = m;
	es_free(q);
	return 0;
}

/* The dense list: exact over the plan's candidates when an index makes
 * them few (Qdrant's full-scan threshold in bytes of vectors), else the
 * graph walk with the filter as a predicate (lock held shared). */
static int dense_search(es_collection *c, const es_search_req *req, uint32_t depth,
			uint32_t ef, hnsw_filter_fn filt, void *fctx, es_hit *out, size_t *nout,
			es_error *err)
{
	uint64_t *labs = NULL;
	size_t n = 0;
	int rc = plan_candidates(c, req->plan, ES_PLAN_EXACT_BYTES / ((size_t)c->p.dim * 4),
				 &labs, &n);
	if (rc == 1) {
		/* filt is filter_tramp (es_collection_search): an exact plan's
		 * candidates need only the self check */
		filter_ctx *fc = fctx;
		int skip = filt && req->plan->exact;
		if (skip)
			fc->planned = 1;
		rc = exact_search(c, req->query, labs, n, depth,
				  skip && fc->self < 0 ? NULL : filt, fctx, out, nout);
		if (skip)
			fc->planned = 0;
	}
	else if (rc == 0)
		rc = hnsw_search(c->h, req->query, depth, ef, filt, fctx, out, nout, err);
	es_free(labs);
	if (rc == ES_ENOMEM)
		es_err(err, rc, "out of memory searching");
	return rc;
}

int es_collection_foreach_plan(es_collection *c, const es_pquery *plan, uint64_t from,
			       int want_vector,
			       int (*fn)(void *ctx, const es_point_view *p), void *ctx)
{
	float *vec = want_vector ? es_malloc((size_t)c->p.dim * sizeof *vec) : NULL;
	if (want_vector && !vec)
		return ES_ENOMEM;
	uint64_t *labs = NULL;
	size_t n = 0;
	pthread_rwlock_rdlock(&c->lk);
	int rc = plan_candidates(c, plan, SIZE_MAX, &labs, &n);
	int planned = rc == 1;
	if (rc < 0)
		goto out;
	rc = 0;
	size_t i = 0;
	if (planned)
		while (i < n && labs[i] < from)
			i++;
	for (uint64_t l = planned ? 0 : from; rc == 0; i++) {
		if (planned) {
			if (i >= n)
				break;
			l = labs[i];
		} else if (i > 0) {
			l++;
		}
		if (l >= c->npts)
			break;
		const pt *q = &c->pts[l];
		/* as es_collection_foreach: every live point, a text point stored
		 * without a vector with vector NULL (filters and pages see it) */
		const float *pv = q->novec ? NULL : vec;
		if (!q->live || (pv && hnsw_get_vector(c->h, l, vec) != 0))
			continue;
		es_point_view v = {pt_id(q), l, q->payload, q->plen, q->parsed, pv};
		rc = fn(ctx, &v);
	}
out:
	pthread_rwlock_unlock(&c->lk);
	es_free(labs);
	es_free(vec);
	return rc;
}

int es_collection_foreach_ordered(es_collection *c, const char *field, int desc,
				  int want_vector,
				  int (*fn)(void *ctx, const es_point_view *p, int64_t value),
				  void *ctx, es_error *err)
{
	int64_t *pairs = NULL;
	size_t n = 0;
	int rc = 0;
	float *vec = want_vector ? es_malloc((size_t)c->p.dim * sizeof *vec) : NULL;
	if (want_vector && !vec)
		return es_err(err, ES_ENOMEM, "out of memory ordering by '%s'", field);
	pthread_rwlock_rdlock(&c->lk);
	long at = pidx_find(c, field);
	if (at < 0 || es_pindex_kind_of(c->pidx[at]) != ES_PINDEX_INTEGER ||
	    !es_pindex_usable(c->pidx[at])) {
		rc = es_err(err, ES_ENOTFOUND, "no integer payload index on '%s'", field);
		goto out;
	}
	if (es_pindex_sorted(c->pidx[at], desc, &pairs, &n) != 0) {
		rc = es_err(err, ES_ENOMEM, "out of memory ordering by '%s'", field);
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint64_t l = (uint64_t)pairs[2 * i + 1];
		if (l >= c->npts || !c->pts[l].live)
			continue;
		const pt *q = &c->pts[l];
		const float *pv = q->novec ? NULL : vec;
		if (pv && hnsw_get_vector(c->h, l, vec) != 0)
			continue;
		es_point_view v = {pt_id(q), l, q->payload, q->plen, q->parsed, pv};
		rc = fn(ctx, &v, pairs[2 * i]);
	}
	if (rc > 0)
		rc = 0;
out:
	pthread_rwlock_unlock(&c->lk);
	es_free(pairs);
	es_free(vec);
	return rc;
}

/* --- registry ---------------------------------------------------------- */

int es_registry_new(const es_payload_hooks *hooks, es_registry **out,
		    es_error *err)
{
	es_registry *r = es_calloc(1, sizeof *r);
	if (!r)
		return es_err(err, ES_ENOMEM, "out of memory creating the registry");
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		es_free(r);
		return es_err(err, ES_ENOMEM, "cannot create the registry lock");
	}
	if (hooks) {
		r->hooks = *hooks;
		r->has_hooks = 1;
	}
	*out = r;
	return 0;
}

void es_registry_free(es_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		r->cols[i]->reg = NULL;
		es_collection_release(r->cols[i]);
	}
	es_free(r->cols);
	pthread_mutex_destroy(&r->mu);
	es_free(r);
}

void es_registry_set_observer(es_registry *r, const es_mutation_observer *o)
{
	pthread_mutex_lock(&r->mu);
	if (o) {
		r->obs = *o;
		r->has_obs = 1;
	} else {
		memset(&r->obs, 0, sizeof r->obs);
		r->has_obs = 0;
	}
	pthread_mutex_unlock(&r->mu);
}

void es_registry_set_pool(es_registry *r, es_pool *pool)
{
	pthread_mutex_lock(&r->mu);
	r->pool = pool;
	pthread_mutex_unlock(&r->mu);
}

static long reg_find(es_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->cols[i]->name, name) == 0)
			return (long)i;
	return -1;
}

int es_registry_create(es_registry *r, const char *name,
		       const es_collection_params *p, es_collection **out,
		       es_error *err)
{
	es_collection *c = NULL;
	int rc = es_collection_new(name, p, r->has_hooks ? &r->hooks : NULL, &c, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->mu);
	if (reg_find(r, name) >= 0) {
		rc = es_err(err, ES_EEXIST, "collection '%s' already exists", name);
		goto out;
	}
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 8;
		es_collection **nc = es_realloc(r->cols, ncap * sizeof *nc);
		if (!nc) {
			rc = es_err(err, ES_ENOMEM, "out of memory adding collection '%s'", name);
			goto out;
		}
		r->cols = nc;
		r->cap = ncap;
	}
	if (r->has_obs && r->obs.on_create) {
		rc = r->obs.on_create(r->obs.ctx, name, &c->p, err);
		if (rc)
			goto out;
	}
	c->reg = r;
	r->cols[r->n++] = c;
	if (out) {
		coll_retain(c);
		*out = c;
	}
	c = NULL;
out:
	pthread_mutex_unlock(&r->mu);
	if (c)
		es_collection_release(c);
	return rc;
}

int es_registry_drop(es_registry *r, const char *name, es_error *err)
{
	int rc = 0;
	es_collection *c = NULL;
	pthread_mutex_lock(&r->mu);
	long i = reg_find(r, name);
	if (i < 0) {
		rc = es_err(err, ES_ENOTFOUND, "no collection named '%s'", name);
		goto out;
	}
	if (r->has_obs && r->obs.on_drop) {
		rc = r->obs.on_drop(r->obs.ctx, name, err);
		if (rc)
			goto out;
	}
	c = r->cols[i];
	r->cols[i] = r->cols[--r->n];
	/* detach under seq_mu so no writer of it is mid-way through an observer
	 * call that reads c->reg (writers already logged apply as usual) */
	pthread_mutex_lock(&c->seq_mu);
	c->reg = NULL;
	pthread_mutex_unlock(&c->seq_mu);
out:
	pthread_mutex_unlock(&r->mu);
	if (c)
		es_collection_release(c);
	return rc;
}

int es_registry_get(es_registry *r, const char *name, es_collection **out,
		    es_error *err)
{
	int rc = 0;
	pthread_mutex_lock(&r->mu);
	long i = reg_find(r, name);
	if (i < 0) {
		rc = es_err(err, ES_ENOTFOUND, "no collection named '%s'", name);
	} else {
		coll_retain(r->cols[i]);
		*out = r->cols[i];
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int cmp_col(const void *a, const void *b)
{
	const es_collection *x = *(es_collection *const *)a;
	const es_collection *y = *(es_collection *const *)b;
	return strcmp(x->name, y->name);
}

int es_registry_list(es_registry *r, es_collection ***out, size_t *n,
		     es_error *err)
{
	pthread_mutex_lock(&r->mu);
	es_collection **a = es_malloc((r->n ? r->n : 1) * sizeof *a);
	if (!a) {
		pthread_mutex_unlock(&r->mu);
		return es_err(err, ES_ENOMEM, "out of memory listing collections");
	}
	for (size_t i = 0; i < r->n; i++) {
		coll_retain(r->cols[i]);
		a[i] = r->cols[i];
	}
	*n = r->n;
	pthread_mutex_unlock(&r->mu);
	qsort(a, *n, sizeof *a, cmp_col);
	*out = a;
	return 0;
}

/* --- persistence (snapshots; index/store.c) ------------------------------
 *
 * Layout (little-endian): magic "ESCOLL01", u32 version (2; 1 is read),
 * u32 dim, u32 metric, u32 M, u32 ef_construction, u32 int8, 128 bytes
 * model name, [v2: u32 k1 (float bits), u32 b (float bits), u32 lexical
 * flags (1 stemming, 2 stop words)], u64 slots; per slot u8 state (0 dead,
 * 1 live, v2: 3 live without a vector), and for live slots: u8 is_str, then
 * u64 num or (u32 len, bytes), u32 payload length (0xFFFFFFFF: none),
 * payload bytes; then the HNSW index (hnsw_write), whose labels are the slot
 * numbers, so the graph is restored as it was (no rebuild, vectors
 * bit-exact); v2: then u64 length and the lexical index
 * (es_lexical_serialize, labels = slot numbers; its own magic and CRC).
 * The loader treats every byte as hostile and cross-checks the index and
 * the lexical index against the slots.  A version-1 file has no lexical
 * index (the default parameters, no entries).
 */
#define COLL_MAGIC "ESCOLL01"
#define COLL_VERSION 3u
#define COLL_NO_PAYLOAD 0xFFFFFFFFu

/* Version 3: the payload index definitions after the lexical index, as
 * u32 count, then per index u8 kind and u32 length + the field's bytes.
 * The contents are not saved: es_collection_load rebuilds them from the
 * payloads. */
static void pidx_write(const es_collection *c, es_writer *w)
{
	es_w_u32(w, (uint32_t)c->npidx);
	for (size_t i = 0; i < c->npidx; i++) {
		const char *field = es_pindex_field(c->pidx[i]);
		size_t len = strlen(field);
		es_w_u8(w, (uint8_t)es_pindex_kind_of(c->pidx[i]));
		es_w_u32(w, (uint32_t)len);
		es_w_bytes(w, field, len);
	}
}

/* The definitions (hostile bytes), installed empty; filled by
 * pidx_fill once the slots are in. */
static int pidx_read(es_collection *c, es_reader *r, es_error *err)
{
	uint32_t n;
	if (es_r_u32(r, &n))
		return es_err(err, ES_ECORRUPT, "collection '%s': payload indexes missing", c->name);
	if (n > ES_PINDEX_MAX)
		return es_err(err, ES_ECORRUPT, "collection '%s': %u payload indexes", c->name, n);
	for (uint32_t i = 0; i < n; i++) {
		char field[ES_PINDEX_FIELD_MAX + 1];
		uint8_t kind;
		uint32_t len;
		if (es_r_u8(r, &kind) || es_r_u32(r, &len))
			return es_err(err, ES_ECORRUPT, "collection '%s': payload index cut short",
				      c->name);
		if (len > ES_PINDEX_FIELD_MAX || es_r_bytes(r, field, len))
			return es_err(err, ES_ECORRUPT, "collection '%s': bad payload index field",
				      c->name);
		field[len] = '\0';
		if (strlen(field) != len || es_pindex_check(field, kind, NULL) != 0 ||
		    pidx_find(c, field) >= 0)
			return es_err(err, ES_ECORRUPT, "collection '%s': bad payload index %u",
				      c->name, i);
		es_pindex *x;
		if (es_pindex_new(field, (es_pindex_kind)kind, &x) != 0)
			return es_err(err, ES_ENOMEM, "out of memory loading '%s'", c->name);
		pidx_install(c, x);
	}
	return 0;
}

static void write_slots(const es_collection *c, es_writer *w)
{
	es_w_bytes(w, COLL_MAGIC, 8);
	es_w_u32(w, COLL_VERSION);
	es_w_u32(w, c->p.dim);
	es_w_u32(w, (uint32_t)c->p.metric);
	es_w_u32(w, c->p.M);
	es_w_u32(w, c->p.ef_construction);
	es_w_u32(w, (uint32_t)c->p.quantize_int8);
	es_w_bytes(w, c->p.model, sizeof c->p.model);
	uint32_t k1, b;
	memcpy(&k1, &c->p.lexical.k1, 4);
	memcpy(&b, &c->p.lexical.b, 4);
	es_w_u32(w, k1);
	es_w_u32(w, b);
	es_w_u32(w, (c->p.lexical.stemming ? 1u : 0) | (c->p.lexical.stopwords ? 2u : 0));
	es_w_u64(w, c->npts);
	for (size_t i = 0; i < c->npts; i++) {
		const pt *q = &c->pts[i];
		es_w_u8(w, q->live ? (q->novec ? 3 : 1) : 0);
		if (!q->live)
			continue;
		es_w_u8(w, q->is_str ? 1 : 0);
		if (q->is_str) {
			es_w_u32(w, (uint32_t)q->slen);
			es_w_bytes(w, q->str, q->slen);
		} else {
			es_w_u64(w, q->num);
		}
		es_w_u32(w, q->payload ? (uint32_t)q->plen : COLL_NO_PAYLOAD);
		if (q->payload)
			es_w_bytes(w, q->payload, q->plen);
	}
}

/* After the HNSW index: u64 length and the lexical index, then the
 * payload index definitions (pidx_write). */
static int write_tail(const es_collection *c, FILE *f, es_error *err)
{
	unsigned char *lb = NULL;
	size_t ll = 0;
	int rc = es_lexical_serialize(c->lx, &lb, &ll, err);
	if (rc)
		return rc;
	es_writer w;
	if (es_writer_init(&w, f, NULL) != 0) {
		free(lb);
		return es_err(err, ES_ENOMEM, "collection '%s': out of memory", c->name);
	}
	es_w_u64(&w, ll);
	es_w_bytes(&w, lb, ll);
	free(lb);
	pidx_write(c, &w);
	if (es_writer_finish(&w) != 0)
		return es_err(err, ES_EIO, "collection '%s': writing the snapshot failed", c->name);
	return 0;
}

int es_collection_save(es_collection *c, FILE *f,
		       void (*locked)(void *ctx, int pending, uint64_t oldest),
		       void *ctx, es_error *err)
{
	es_writer w;
	if (es_writer_init(&w, f, NULL) != 0)
		return es_err(err, ES_ENOMEM, "collection '%s': out of memory", c->name);
	int rc = 0;
	pthread_rwlock_rdlock(&c->lk);
	if (locked) {
		/* under seq_mu nothing new is placed; under lk nothing is applied */
		pthread_mutex_lock(&c->seq_mu);
		locked(ctx, c->qhead != NULL, c->qhead ? c->qhead->token : 0);
		pthread_mutex_unlock(&c->seq_mu);
	}
	write_slots(c, &w);
	if (es_writer_finish(&w) != 0) {
		rc = es_err(err, ES_EIO, "collection '%s': writing the snapshot failed", c->name);
	} else {
		/* no graph builds meanwhile (hnsw_write needs no concurrent
		 * inserts); their pending nodes are written as deleted, their
		 * slots as dead: those changes are not in this snapshot */
		pthread_rwlock_wrlock(&c->graph_lk);
		rc = hnsw_write(c->h, f, err);
		pthread_rwlock_unlock(&c->graph_lk);
	}
	if (!rc)
		rc = write_tail(c, f, err);
	pthread_rwlock_unlock(&c->lk);
	return rc;
}

/* The header: a new, empty collection with its parameters. */
static int load_header(es_reader *r, const char *name, const es_payload_hooks *hooks,
		       es_collection **out, uint32_t *version, es_error *err)
{
	char magic[8];
	uint32_t ver, dim, metric, M, efc, q8;
	es_collection_params p;
	memset(&p, 0, sizeof p);
	if (es_r_bytes(r, magic, 8) || memcmp(magic, COLL_MAGIC, 8) != 0)
		return es_err(err, ES_ECORRUPT, "collection '%s': bad magic", name);
	if (es_r_u32(r, &ver) || es_r_u32(r, &dim) || es_r_u32(r, &metric) ||
	    es_r_u32(r, &M) || es_r_u32(r, &efc) || es_r_u32(r, &q8) ||
	    es_r_bytes(r, p.model, sizeof p.model))
		return es_err(err, ES_ECORRUPT, "collection '%s': header cut short", name);
	if (ver < 1 || ver > COLL_VERSION)
		return es_err(err, ES_EUNSUPPORTED, "collection '%s': format version %u", name, ver);
	*version = ver;
	if (ver >= 2) {
		uint32_t k1, b, flags;
		if (es_r_u32(r, &k1) || es_r_u32(r, &b) || es_r_u32(r, &flags))
			return es_err(err, ES_ECORRUPT, "collection '%s': header cut short", name);
		if (flags > 3)
			return es_err(err, ES_ECORRUPT, "collection '%s': bad lexical flags", name);
		memcpy(&p.lexical.k1, &k1, 4);
		memcpy(&p.lexical.b, &b, 4);
		p.lexical.stemming = flags & 1;
		p.lexical.stopwords = (flags & 2) != 0;
		p.lexical_set = 1;
	}
	if (metric > ES_METRIC_L2 || q8 > 1)
		return es_err(err, ES_ECORRUPT, "collection '%s': bad metric or flags", name);
	p.model[sizeof p.model - 1] = '\0';
	p.dim = dim;
	p.metric = (es_metric)metric;
	p.M = M;
	p.ef_construction = efc;
	p.quantize_int8 = (int)q8;
	int rc = es_collection_new(name, &p, hooks, out, err);
	if (rc == ES_ENOMEM)
		return rc;
	if (rc) {
		es_err_prefix(err, rc, "collection '%s' in snapshot", name);
		if (err)
			err->code = ES_ECORRUPT;
		return ES_ECORRUPT;
	}
	return 0;
}

/* One live slot's id and payload into q (slot i, for messages). */
static int load_point(es_collection *c, es_reader *r, pt *q, uint64_t i, es_error *err)
{
	const char *name = c->name;
	uint8_t is_str;
	if (es_r_u8(r, &is_str) || is_str > 1)
		return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad flags",
			      name, i);
	q->is_str = is_str;
	if (is_str) {
		uint32_t len;
		if (es_r_u32(r, &len) || len == 0 || len > ES_POINT_ID_STR_MAX)
			return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad id",
				      name, i);
		if (!(q->str = es_malloc(len + 1)))
			return es_err(err, ES_ENOMEM, "out of memory loading '%s'", name);
		if (es_r_bytes(r, q->str, len))
			return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad id",
				      name, i);
		q->str[len] = '\0';
		q->slen = len;
	} else if (es_r_u64(r, &q->num)) {
		return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad id", name, i);
	}
	uint32_t plen;
	if (es_r_u32(r, &plen))
		return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": cut short", name, i);
	if (plen != COLL_NO_PAYLOAD) {
		if (plen > ((uint32_t)1 << 30))
			return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad payload",
				      name, i);
		if (!(q->payload = es_malloc((size_t)plen + 1)))
			return es_err(err, ES_ENOMEM, "out of memory loading '%s'", name);
		if (es_r_bytes(r, q->payload, plen))
			return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad payload",
				      name, i);
		q->payload[plen] = '\0';
		q->plen = plen;
		c->payload_bytes += plen;
		if (c->hooks.parse)
			q->parsed = c->hooks.parse(q->payload, q->plen);
	}
	es_point_id id = pt_id(q);
	if (es_point_id_check(&id, NULL) != 0)
		return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": invalid id", name, i);
	q->hash = id_hash(&id);
	q->live = 1;
	if (tab_reserve(c, 1) != 0)
		return es_err(err, ES_ENOMEM, "out of memory loading '%s'", name);
	if (tab_find(c, &id, q->hash) >= 0)
		return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": duplicate id",
			      name, i);
	tab_put(c, i);
	c->live++;
	return 0;
}

/* The slots: grown as they are read, so a hostile count cannot force a
 * huge allocation. */
static int load_slots(es_collection *c, es_reader *r, uint32_t ver, es_error *err)
{
	uint64_t n;
	if (es_r_u64(r, &n) || n > ((uint64_t)1 << 40))
		return es_err(err, ES_ECORRUPT, "collection '%s': bad point count", c->name);
	for (uint64_t i = 0; i < n; i++) {
		if (c->npts == c->cap && pts_reserve(c, c->cap ? c->cap : 64) != 0)
			return es_err(err, ES_ENOMEM, "out of memory loading '%s'", c->name);
		pt *q = &c->pts[c->npts++];
		uint8_t live;
		if (es_r_u8(r, &live) || (live > 1 && !(ver >= 2 && live == 3)))
			return es_err(err, ES_ECORRUPT, "collection '%s': slot %" PRIu64 ": bad flags",
				      c->name, i);
		if (live) {
			int rc = load_point(c, r, q, i, err);
			if (rc)
				return rc;
			q->novec = live == 3;
		}
	}
	return 0;
}

/* The lexical index of a version-2 file, cross-checked against the slots
 * and the header, replaces c's empty one.  Read in chunks, so a hostile
 * length cannot force a huge allocation before the bytes are there. */
static int load_lexical(es_collection *c, es_reader *r, es_error *err)
{
	uint64_t len;
	if (es_r_u64(r, &len))
		return es_err(err, ES_ECORRUPT, "collection '%s': lexical index missing", c->name);
	if (len > ((uint64_t)1 << 40))
		return es_err(err, ES_ECORRUPT, "collection '%s': lexical index of %" PRIu64
			      " bytes", c->name, len);
	unsigned char *buf = NULL;
	size_t have = 0;
	int rc = 0;
	while (have < len) {
		size_t chunk = len - have < ((size_t)1 << 24) ? (size_t)(len - have) : (size_t)1 << 24;
		unsigned char *nb = es_realloc(buf, have + chunk);
		if (!nb) {
			rc = es_err(err, ES_ENOMEM, "out of memory loading '%s'", c->name);
			goto out;
		}
		buf = nb;
		if (es_r_bytes(r, buf + have, chunk)) {
			rc = es_err(err, ES_ECORRUPT, "collection '%s': lexical index cut short",
				    c->name);
			goto out;
		}
		have += chunk;
	}
	es_lexical *lx;
	rc = es_lexical_deserialize(buf, have, &lx, err);
	if (rc) {
		es_err_prefix(err, rc, "collection '%s'", c->name);
		goto out;
	}
	const es_lexical_params *lp = es_lexical_get_params(lx);
	size_t bad = SIZE_MAX;
	for (size_t i = 0; i < c->npts && bad == SIZE_MAX; i++)
		if (!c->pts[i].live && es_lexical_contains(lx, i))
			bad = i;
	if (lp->k1 != c->p.lexical.k1 || lp->b != c->p.lexical.b ||
	    lp->stemming != c->p.lexical.stemming || lp->stopwords != c->p.lexical.stopwords ||
	    es_lexical_count(lx) > c->live || bad != SIZE_MAX) {
		es_lexical_free(lx);
		rc = es_err(err, ES_ECORRUPT, "collection '%s': lexical index does not match its "
			    "points", c->name);
		goto out;
	}
	es_lexical_free(c->lx);
	c->lx = lx;
out:
	es_free(buf);
	return rc;
}

/* The HNSW index, cross-checked against the slots, replaces c's empty one. */
static int load_index(es_collection *c, es_reader *r, uint32_t ver, es_error *err)
{
	const char *name = c->name;
	const es_collection_params *p = &c->p;
	hnsw *h = NULL;
	int rc = hnsw_read(r->f, &h, err);
	if (rc)
		return es_err_prefix(err, rc, "collection '%s'", name);
	const hnsw_params *hp = hnsw_get_params(h);
	size_t with_vec = 0;
	for (size_t i = 0; i < c->npts; i++)
		with_vec += c->pts[i].live && !c->pts[i].novec;
	if (hp->dim != p->dim || hp->metric != p->metric ||
	    hp->quantize_int8 != p->quantize_int8 || hnsw_count(h) != with_vec) {
		/* the message reads the index, so it is freed only after (found by
		 * tests/fuzz, fuzz_snapshot: a use after free) */
		rc = es_err(err, ES_ECORRUPT, "collection '%s': index does not match its points "
			    "(dim %u/%u, metric %d/%d, int8 %d/%d, %zu/%zu points)", name, hp->dim,
			    p->dim, (int)hp->metric, (int)p->metric, hp->quantize_int8,
			    p->quantize_int8, hnsw_count(h), with_vec);
		goto fail;
	}
	for (size_t i = 0; i < c->npts; i++)
		if (c->pts[i].live && !c->pts[i].novec && !hnsw_contains(h, i)) {
			rc = es_err(err, ES_ECORRUPT, "collection '%s': point in slot %zu is missing "
				    "from the index", name, i);
			goto fail;
		}
	if (ver >= 2 && (rc = load_lexical(c, r, err)) != 0)
		goto fail;
	if (ver >= 3 && (rc = pidx_read(c, r, err)) != 0)
		goto fail;
	if (fgetc(r->f) != EOF) {
		rc = es_err(err, ES_ECORRUPT, "collection '%s': stray bytes after the index", name);
		goto fail;
	}
	hnsw_free(c->h);
	c->h = h;
	return 0;
fail:
	hnsw_free(h);
	return rc;
}

int es_collection_load(FILE *f, const char *name, const es_payload_hooks *hooks,
		       es_collection **out, es_error *err)
{
	*out = NULL;
	es_reader r;
	es_reader_file(&r, f, NULL);
	es_collection *c = NULL;
	uint32_t ver = 0;
	int rc = load_header(&r, name, hooks, &c, &ver, err);
	if (rc)
		return rc;
	rc = load_slots(c, &r, ver, err);
	if (!rc)
		rc = load_index(c, &r, ver, err);
	for (size_t i = 0; !rc && i < c->npts; i++)
		pidx_point(c, i, c->pts[i].live ? c->pts[i].parsed : NULL, 1);
	for (size_t i = 0; !rc && i < c->npidx; i++)
		if (!es_pindex_usable(c->pidx[i]))
			rc = es_err(err, ES_ENOMEM, "out of memory loading '%s'", name);
	if (rc) {
		es_collection_release(c);
		return rc;
	}
	for (size_t i = c->npts; i-- > 0;) /* lowest dead label first */
		if (!c->pts[i].live)
			label_free(c, i);
	*out = c;
	return 0;
}

int es_registry_add(es_registry *r, es_collection *c, es_error *err)
{
	int rc = 0;
	pthread_mutex_lock(&r->mu);
	if (reg_find(r, c->name) >= 0) {
		rc = es_err(err, ES_EEXIST, "collection '%s' already exists", c->name);
		goto out;
	}
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 8;
		es_collection **nc = es_realloc(r->cols, ncap * sizeof *nc);
		if (!nc) {
			rc = es_err(err, ES_ENOMEM, "out of memory adding collection '%s'", c->name);
			goto out;
		}
		r->cols = nc;
		r->cap = ncap;
	}
	coll_retain(c);
	c->reg = r;
	r->cols[r->n++] = c;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

const es_payload_hooks *es_registry_payload_hooks(es_registry *r)
{
	return r->has_hooks ? &r->hooks : NULL;
}

int es_collection_bulk_insert(es_collection *c, const uint64_t *ids,
			      const float *vecs, size_t n, es_pool *pool,
			      es_error *err)
{
	int rc = 0;
	uint64_t *labels = es_malloc((n ? n : 1) * sizeof *labels);
	if (!labels)
		return es_err(err, ES_ENOMEM, "out of memory for %zu labels", n);
	pthread_rwlock_wrlock(&c->lk);
	if (pts_reserve(c, n) != 0 || tab_reserve(c, c->reserved + n) != 0) {
		rc = es_err(err, ES_ENOMEM, "out of memory for %zu points", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		es_point_id id = {0, ids[i], NULL, 0};
		uint64_t h = id_hash(&id);
		if (tab_find(c, &id, h) >= 0) {
			rc = es_err(err, ES_EEXIST, "point %llu exists already (bulk insert adds "
				    "new points only)", (unsigned long long)ids[i]);
			goto undo;
		}
		pt *q = &c->pts[c->npts + i];
		memset(q, 0, sizeof *q);
		q->hash = h;
		q->num = ids[i];
		q->live = 1;
		labels[i] = c->npts + i;
		tab_put(c, labels[i]);
	}
	rc = hnsw_add_batch(c->h, labels, vecs, n, pool, err);
	if (!rc) {
		c->npts += n;
		c->live += n;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		hnsw_delete(c->h, labels[i]);
undo: /* every slot reserved above goes */
	for (size_t l = c->npts; l < c->cap && c->pts[l].live; l++) {
		tab_remove(c, l);
		memset(&c->pts[l], 0, sizeof c->pts[l]);
	}
out:
	pthread_rwlock_unlock(&c->lk);
	es_free(labels);
	return rc;
}
