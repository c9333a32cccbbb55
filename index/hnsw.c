/*
 * hnsw.c — Hierarchical Navigable Small World graph (Malkov & Yashunin 2016).
 *
 * Departures from the paper, and why:
 *
 *  - Storage.  Every slot (dense uint32 id) owns one fixed-stride block:
 *      [cnt0 | links0[2M] | flags | level | label | upper* | vector]
 *    so a level-0 walk touches one contiguous region per node.  Blocks live
 *    in chunks of HNSW_CHUNK slots; the chunk table only ever grows and old
 *    tables are kept until hnsw_free, so a reader holding a stale table
 *    pointer still sees valid chunks and growth never stops searches.
 *    Chunks are carved from arenas that double in size (up to 64 MiB),
 *    mapped 2 MiB-aligned and advised for transparent huge pages: a search
 *    visits blocks at random, and with 4 KiB pages nearly every visit is a
 *    TLB miss (costlier still under virtualisation's nested paging).
 *    Levels > 0 live in one small array per node ([cnt | M links] per level).
 *
 *  - Deletion is real, not a tombstone that keeps serving as a waypoint.  A
 *    deleted node is skipped by every traversal (its vector is never read
 *    again), the out-neighbours that linked back to it are re-linked through
 *    the deleted node's own neighbours with the selection heuristic (the
 *    graph is repaired, not left to rot), and the slot is recycled for a
 *    later insert once no operation that could have seen it alive is still
 *    running (epoch-based reclamation, below).  Update (re-adding a label)
 *    is delete + insert into a fresh/recycled slot, so a vector is never
 *    rewritten under a concurrent reader.
 *
 *  - int8 quantisation (optional): in RAM each vector is int8 codes with its
 *    own scale (max|x|/127) — dim + 4 bytes instead of 4*dim (28% at d=32,
 *    26% at d=100).  The float32 originals live outside the heap, in a
 *    file-backed store (index/vecfile: an unlinked file in $TMPDIR, one
 *    mapping per chunk of slots), as Qdrant keeps originals on disk for
 *    rescoring.  Graph construction and repair use the originals, so a
 *    single-threaded int8 build gives exactly the float build's graph.  A
 *    search walks the graph on the codes — under cosine/dot with the
 *    query quantised the same way (int8 x int8, core/simd's dot_i8:
 *    maddubs/madd; 1.26-1.39x the q/s at equal recall of converting
 *    every code to float), under L2 with the float query against the codes
 *    (l2_f_i8, which needs no stored norm) —
 *    and then re-ranks its ef candidates, plus the k best of those the
 *    approximate distance pushed out of them, by the exact float distance
 *    read from the store; get_vector returns the originals.
 *
 *  - Level generator: level of the n-th add = f(seed, n) via splitmix64, so a
 *    single-threaded build with the same seed gives the same graph (and the
 *    same file), and threads never share an RNG state.
 *
 * Threading:
 *  - Link lists are read and written with atomic (relaxed) loads/stores, so
 *    searches never lock; writers serialise on a striped per-node mutex and
 *    only ever hold one node lock at a time (no lock-order cycles).
 *  - A node becomes visible through its flags word: the inserter writes the
 *    vector, then clears HNSW_F_DELETED with a release store; readers load
 *    flags with acquire before reading a vector.  hnsw_add_pending stores
 *    HNSW_F_PENDING instead: traversals (searches and inserts) walk through
 *    the node and inserts link to it, but a search never returns it until
 *    hnsw_publish clears the bit (an atomic and; a concurrent delete's
 *    store of HNSW_F_DELETED wins either way).  Files hold pending nodes as
 *    deleted slots (written_ep).
 *  - Every operation (search, add, delete) takes a scratch context from a
 *    pool and publishes the global epoch in it for its duration.  A deleted
 *    slot is tagged with the epoch at deletion and reused only when every
 *    active context started after that, so nobody reads a vector while it is
 *    rewritten.
 *  - The entry point (slot, level) is one atomic 64-bit word; changing it
 *    takes ep_lock.  Adds/deletes of the same label serialise on a striped
 *    label lock; the label -> slot map has its own mutex.
 *
 * Ownership: the index copies every vector; results go to caller buffers.
 */
#include "hnsw.h"

#include <math.h>
#include <sys/mman.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "crc32c.h"
#include "fileio.h"
#include "lerw.h"
#include "simd.h"
#include "u64map.h"
#include "vecfile.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hnsw: the file format and code assume a little-endian host"
#endif

#define HNSW_CHUNK_SHIFT 10u
#define HNSW_CHUNK (1u << HNSW_CHUNK_SHIFT)
/* Under AddressSanitizer the unused tail of an arena is poisoned and each
 * chunk unpoisoned as it is carved, so a block overrun is still reported
 * (ASan does not track mmap'ed memory by itself). */
#if defined(__SANITIZE_ADDRESS__)
#define HNSW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HNSW_ASAN 1
#endif
#endif
#ifdef HNSW_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HNSW_HUGE ((size_t)2 << 20)
#define HNSW_ARENA_MAX ((size_t)64 << 20)
#define HNSW_NODE_LOCKS 512u
#define HNSW_LABEL_LOCKS 256u
#define HNSW_NONE UINT32_MAX
#define HNSW_MAX_SLOTS (UINT32_MAX - 1u)
#define HNSW_F_DELETED 1u
#define HNSW_F_PENDING 2u /* in the graph, not yet a result (hnsw_add_pending) */

#define HNSW_FILE_MAGIC "ESHNSW\r\n"
#define HNSW_FILE_VERSION 3u
#define HNSW_FILE_ENDIAN 0x01020304u

/* Block header after the level-0 links.  Offsets are fixed per index. */
typedef struct node_hdr {
	uint32_t flags;  /* atomic: HNSW_F_DELETED, HNSW_F_PENDING */
	uint32_t level;
	uint64_t label;
	uint32_t *upper; /* atomic pointer: levels 1..level, (M+1) words each */
} node_hdr;

typedef struct chunk_tab {
	size_t cap;
	struct chunk_tab *prev; /* retired tables, freed by hnsw_free */
	float **fseg; /* int8: float rows of chunk i (mapped file); in chunk[] */
	char *chunk[]; /* cap block chunks, then cap float segments */
} chunk_tab;

/* A mapping that chunks are carved from. */
typedef struct arena {
	struct arena *next;
	void *base;
	size_t len;
} arena;

typedef struct cand {
	float d;
	uint32_t id;
} cand;

/* Per-operation scratch.  Never shared by two operations at once. */
typedef struct scratch {
	struct scratch *next_free;
	struct scratch *next_all;
	_Atomic uint64_t epoch; /* 0 = idle, else the epoch at acquire */
	uint16_t *visited;
	size_t visited_cap;
	uint32_t limit;      /* slots that existed at acquire: ids < limit */
	chunk_tab *tab;      /* table snapshot covering every id < limit */
	uint16_t tag;
	cand *cq, *rq; /* candidate min-heap, result max-heap */
	size_t cq_cap, heap_cap;
	cand *sel; /* neighbour selection buffer */
	size_t sel_cap;
	float *qf; /* prepared query (normalised copy) */
	char *q8;  /* int8 index: the query's [scale | codes] */
	float *tmp;
} scratch;

typedef struct retired {
	uint32_t slot;
	uint64_t epoch;
} retired;

struct hnsw {
	hnsw_params p;
	uint32_t dim, M, M0;
	double ml;
	const simd_kernels *k;
	vecfile *vf;     /* int8: the float originals; NULL for a float index */
	char *float_dir; /* owned copy of p.float_dir */

	/* block layout */
	size_t stride, off_hdr, off_vec, vec_bytes;

	/* storage */
	_Atomic(chunk_tab *) tab;
	pthread_mutex_t grow_lock;
	_Atomic uint32_t n_slots; /* slots handed out: ids < n_slots are valid */
	size_t n_chunks;          /* under grow_lock */
	arena *arenas;            /* newest first, under grow_lock */
	char *ar_cur;             /* unused tail of the newest arena */
	size_t ar_left, ar_total;
	retired *ret;             /* FIFO of deleted slots, under grow_lock */
	size_t ret_head, ret_len, ret_cap;

	/* entry point: (level << 32) | slot, or HNSW_NONE in the low word */
	_Atomic uint64_t ep;
	pthread_mutex_t ep_lock;

	/* label -> slot (open addressing), under map_lock */
	pthread_mutex_t map_lock;
	es_u64map map;

	pthread_mutex_t node_lock[HNSW_NODE_LOCKS];
	pthread_mutex_t label_lock[HNSW_LABEL_LOCKS];

	/* scratch pool */
	pthread_mutex_t pool_lock;
	scratch *free_list, *all_list;
	size_t n_scratch;

	_Atomic uint64_t epoch;
	_Atomic uint64_t add_seq;
	_Atomic size_t live;
	_Atomic size_t upper_bytes;
	_Atomic size_t lvl_live[HNSW_MAX_LEVEL + 1]; /* live nodes per level */
	_Atomic size_t ep_scans; /* entry point re-elections by full scan */
};

/* ------------------------------------------------------------ utilities */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline char *node_blk(const hnsw *h, uint32_t id)
{
	chunk_tab *t = atomic_load_explicit(&((hnsw *)h)->tab, memory_order_acquire);
	return t->chunk[id >> HNSW_CHUNK_SHIFT] +
	       (size_t)(id & (HNSW_CHUNK - 1)) * h->stride;
}

static inline node_hdr *blk_hdr(const hnsw *h, char *b)
{
	return (node_hdr *)(b + h->off_hdr);
}

/* The float vector of slot id through table t: in the block for a float
 * index, in the file-backed store under int8 (normalised under cosine). */
static inline const float *tab_fvec(const hnsw *h, const chunk_tab *t,
				    uint32_t id)
{
	size_t j = id & (HNSW_CHUNK - 1);
	if (!h->vf)
		return (const float *)(t->chunk[id >> HNSW_CHUNK_SHIFT] +
				       j * h->stride + h->off_vec);
	return t->fseg[id >> HNSW_CHUNK_SHIFT] + j * h->dim;
}

static inline const float *node_fvec(const hnsw *h, uint32_t id)
{
	return tab_fvec(h, atomic_load_explicit(&((hnsw *)h)->tab,
						memory_order_acquire), id);
}

static inline uint32_t load_flags(const node_hdr *nh)
{
	return __atomic_load_n(&nh->flags, __ATOMIC_ACQUIRE);
}

/* The link list of node blk at level (0 = in-block). */
static inline uint32_t *blk_links(const hnsw *h, char *b, uint32_t level)
{
	if (level == 0)
		return (uint32_t *)b;
	uint32_t *up = __atomic_load_n(&blk_hdr(h, b)->upper, __ATOMIC_ACQUIRE);
	return up + (size_t)(level - 1) * (h->M + 1);
}

static inline uint32_t link_cnt(const uint32_t *l)
{
	return __atomic_load_n(&l[0], __ATOMIC_ACQUIRE);
}

static inline uint32_t link_get(const uint32_t *l, uint32_t i)
{
	return __atomic_load_n(&l[1 + i], __ATOMIC_RELAXED);
}

/* Writers hold the node's lock; readers may see a mix of old and new ids,
 * each of which is a valid slot. */
static void links_set(uint32_t *l, const uint32_t *ids, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		__atomic_store_n(&l[1 + i], ids[i], __ATOMIC_RELAXED);
	__atomic_store_n(&l[0], n, __ATOMIC_RELEASE);
}

static inline pthread_mutex_t *nlock(hnsw *h, uint32_t id)
{
	return &h->node_lock[(id * 2654435761u) >> 23 & (HNSW_NODE_LOCKS - 1)];
}

static inline pthread_mutex_t *llock(hnsw *h, uint64_t label)
{
	return &h->label_lock[splitmix64(label) & (HNSW_LABEL_LOCKS - 1)];
}

static inline uint32_t level_max(uint32_t level, hnsw *h)
{
	return level == 0 ? h->M0 : h->M;
}

/* ------------------------------------------------------ vector encoding */

/* Under int8 the in-block vector is [float scale | int8 codes[dim]]:
 * x[i] ~ scale * code[i], scale = max|x| / 127. */
static void encode_codes(const hnsw *h, const float *v, char *dst)
{
	float mx = 0;
	for (uint32_t i = 0; i < h->dim; i++) {
		float a = fabsf(v[i]);
		if (a > mx)
			mx = a;
	}
	float scale = mx > 0 ? mx / 127.0f : 0.0f;
	/* in double: for a denormal mx, 127/mx is inf in float and 0 * inf a
	 * NaN code (found by tests/fuzz, fuzz_snapshot: UBSan float cast) */
	double inv = mx > 0 ? 127.0 / mx : 0.0;
	int8_t *c = (int8_t *)(dst + 4);
	for (uint32_t i = 0; i < h->dim; i++) {
		double x = nearbyint((double)v[i] * inv);
		if (x > 127.0)
			x = 127.0;
		if (x < -127.0)
			x = -127.0;
		c[i] = (int8_t)x;
	}
	memcpy(dst, &scale, 4);
}

/* Internal distance, lower is better: -dot for cosine/dot, squared L2. */
static inline float dist_f(const hnsw *h, const float *a, const float *b)
{
	if (h->p.metric == ES_METRIC_L2)
		return h->k->l2sq(a, b, h->dim);
	return -h->k->dot(a, b, h->dim);
}

/* Float query against int8 codes (the asymmetric distance). */
static inline float dist_codes(const hnsw *h, const float *q, const char *v)
{
	float sc;
	memcpy(&sc, v, 4);
	const int8_t *c = (const int8_t *)(v + 4);
	if (h->p.metric == ES_METRIC_L2)
		return h->k->l2_f_i8(q, c, sc, h->dim);
	return -sc * h->k->dot_f_i8(q, c, h->dim);
}

typedef struct query {
	const float *f; /* the float query (normalised under cosine) */
	bool exact;     /* int8: score against the float originals */
	/* int8 search under cosine/dot: the query's own [scale | codes], so a
	 * traversal step is an int8 x int8 dot product (simd dot_i8) instead
	 * of converting every code to float; NULL otherwise */
	const char *q8;
} query;

/* Query to slot id (block b, float row through table t): the float
 * originals for a float index or an exact (construction) query, else the
 * int8 codes. */
static inline float dist_node(const hnsw *h, const chunk_tab *t,
			      const query *q, uint32_t id, const char *b)
{
	if (!h->vf)
		return dist_f(h, q->f, (const float *)(b + h->off_vec));
	if (q->exact)
		return dist_f(h, q->f, tab_fvec(h, t, id));
	if (q->q8) {
		const char *v = b + h->off_vec;
		float sq, sv;
		memcpy(&sq, q->q8, 4);
		memcpy(&sv, v, 4);
		return -(sq * sv) * (float)h->k->dot_i8((const int8_t *)(q->q8 + 4),
						      (const int8_t *)(v + 4), h->dim);
	}
	return dist_codes(h, q->f, b + h->off_vec);
}

/* Exact distance between two stored vectors (graph construction). */
static inline float dist_ids(const hnsw *h, uint32_t a, uint32_t b)
{
	return dist_f(h, node_fvec(h, a), node_fvec(h, b));
}

/* ------------------------------------------------------------ scratch */

static void scratch_free(scratch *s)
{
	if (!s)
		return;
	es_free(s->visited);
	es_free(s->cq);
	es_free(s->rq);
	es_free(s->sel);
	es_free(s->qf);
	es_free(s->q8);
	es_free(s->tmp);
	es_free(s);
}

/* Grow the candidate array *a (capacity *cap) to hold n; the contents
 * are kept. */
static int cand_reserve(cand **a, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	cand *b = es_realloc(*a, n * sizeof *b);
	if (!b)
		return ES_ENOMEM;
	*a = b;
	*cap = n;
	return 0;
}

static int scratch_reserve_heaps(scratch *s, size_t n)
{
	int rc = cand_reserve(&s->cq, &s->cq_cap, n);
	return rc ? rc : cand_reserve(&s->rq, &s->heap_cap, n);
}

static int scratch_reserve_sel(scratch *s, size_t n)
{
	return cand_reserve(&s->sel, &s->sel_cap, n);
}

/* Take a scratch context and publish the current epoch in it.  Allocates
 * only when the pool is empty or the index grew since it was last used. */
static int scratch_get(const hnsw *hc, scratch **out, es_error *err)
{
	hnsw *h = (hnsw *)hc;
	pthread_mutex_lock(&h->pool_lock);
	scratch *s = h->free_list;
	if (s)
		h->free_list = s->next_free;
	pthread_mutex_unlock(&h->pool_lock);
	if (!s) {
		s = es_calloc(1, sizeof *s);
		if (!s)
			goto oom;
		s->qf = es_malloc((size_t)h->dim * sizeof(float));
		if (h->vf && !(s->q8 = es_malloc((size_t)h->dim + 4))) {
			scratch_free(s);
			goto oom;
		}
		s->tmp = es_malloc((size_t)h->dim * sizeof(float));
		if (!s->qf || !s->tmp) {
			scratch_free(s);
			goto oom;
		}
		pthread_mutex_lock(&h->pool_lock);
		s->next_all = h->all_list;
		h->all_list = s;
		h->n_scratch++;
		pthread_mutex_unlock(&h->pool_lock);
	}
	size_t need = atomic_load_explicit(&h->n_slots, memory_order_acquire);
	if (need > s->visited_cap) {
		size_t cap = need + need / 4 + 64;
		uint16_t *v = es_realloc(s->visited, cap * sizeof *v);
		if (!v) {
			pthread_mutex_lock(&h->pool_lock);
			s->next_free = h->free_list;
			h->free_list = s;
			pthread_mutex_unlock(&h->pool_lock);
			goto oom;
		}
		memset(v, 0, cap * sizeof *v);
		s->visited = v;
		s->visited_cap = cap;
		s->tag = 0;
	}
	if (++s->tag == 0) {
		memset(s->visited, 0, s->visited_cap * sizeof *s->visited);
		s->tag = 1;
	}
	s->limit = (uint32_t)need;
	s->tab = atomic_load_explicit(&h->tab, memory_order_acquire);
	uint64_t e = atomic_load(&h->epoch);
	atomic_store(&s->epoch, e);
	*out = s;
	return 0;
oom:
	return es_err(err, ES_ENOMEM, "hnsw: out of memory for search scratch");
}

static void scratch_put(const hnsw *hc, scratch *s)
{
	hnsw *h = (hnsw *)hc;
	atomic_store_explicit(&s->epoch, 0, memory_order_release);
	pthread_mutex_lock(&h->pool_lock);
	s->next_free = h->free_list;
	h->free_list = s;
	pthread_mutex_unlock(&h->pool_lock);
}

/* New visit pass within one operation (several layer searches). */
static void scratch_new_pass(scratch *s)
{
	if (++s->tag == 0) {
		memset(s->visited, 0, s->visited_cap * sizeof *s->visited);
		s->tag = 1;
	}
}

/* --------------------------------------------------------------- heaps */

static inline void minheap_push(cand *a, size_t *n, cand c)
{
	size_t i = (*n)++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (a[p].d <= c.d)
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = c;
}

static inline cand minheap_pop(cand *a, size_t *n)
{
	cand top = a[0];
	cand last = a[--(*n)];
	size_t i = 0, m = *n;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= m)
			break;
		size_t r = l + 1;
		size_t c = (r < m && a[r].d < a[l].d) ? r : l;
		if (a[c].d >= last.d)
			break;
		a[i] = a[c];
		i = c;
	}
	if (m)
		a[i] = last;
	return top;
}

static inline void maxheap_push(cand *a, size_t *n, cand c)
{
	size_t i = (*n)++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (a[p].d >= c.d)
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = c;
}

static inline void maxheap_pop(cand *a, size_t *n)
{
	cand last = a[--(*n)];
	size_t i = 0, m = *n;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= m)
			break;
		size_t r = l + 1;
		size_t c = (r < m && a[r].d > a[l].d) ? r : l;
		if (a[c].d <= last.d)
			break;
		a[i] = a[c];
		i = c;
	}
	if (m)
		a[i] = last;
}

static int cand_cmp(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->d < y->d)
		return -1;
	if (x->d > y->d)
		return 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* ------------------------------------------------------------- search */

/* Block of id through the scratch's table snapshot (id < s->limit). */
static inline char *blk_fast(const hnsw *h, const scratch *s, uint32_t id)
{
	return s->tab->chunk[id >> HNSW_CHUNK_SHIFT] +
	       (size_t)(id & (HNSW_CHUNK - 1)) * h->stride;
}

/* The start of the cache line holding p. */
static inline const char *line_of(const void *p)
{
	return (const char *)((uintptr_t)p & ~(uintptr_t)63);
}

static inline int visit(scratch *s, uint32_t id)
{
	if (id >= s->limit || s->visited[id] == s->tag)
		return 0;
	s->visited[id] = s->tag;
	return 1;
}

/* Greedy walk on one upper level from *cur (distance *curd). */
static void greedy_level(const hnsw *h, const query *q, uint32_t level,
			 uint32_t *cur, float *curd)
{
	bool changed = true;
	while (changed) {
		changed = false;
		char *b = node_blk(h, *cur);
		const uint32_t *l = blk_links(h, b, level);
		uint32_t n = link_cnt(l);
		/* every neighbour's scored lines first, so the loads overlap
		 * (as in search_level; q/s at recall 0.95 +12 %) */
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = link_get(l, i);
			const char *nb = node_blk(h, id) + h->off_hdr;
			const char *pe = h->vf && q->exact ? nb + 1
							   : nb + (h->stride - h->off_hdr);
			for (const char *pp = line_of(nb); pp < pe; pp += 64)
				__builtin_prefetch(pp);
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = link_get(l, i);
			char *nb = node_blk(h, id);
			node_hdr *nh = blk_hdr(h, nb);
			/* a stale link may name a recycled slot of lower level */
			if ((load_flags(nh) & HNSW_F_DELETED) || nh->level < level)
				continue;
			float d = dist_node(h, atomic_load_explicit(
						       &((hnsw *)h)->tab,
						       memory_order_acquire),
					    q, id, nb);
			if (d < *curd) {
				*curd = d;
				*cur = id;
				changed = true;
			}
		}
	}
}

/* Keep the best ov_cap of the candidates pushed out of the result heap
 * (a max-heap at ov, *nov entries). */
static inline void overflow_keep(cand *ov, size_t *nov, size_t ov_cap, cand c)
{
	if (*nov < ov_cap) {
		maxheap_push(ov, nov, c);
	} else if (c.d < ov[0].d) {
		maxheap_pop(ov, nov);
		maxheap_push(ov, nov, c);
	}
}

/* Beam search on one level from entry ep.  On return s->rq holds up to ef
 * accepted (live, not flagged `skip`, filter-passing) nodes as a max-heap;
 * *nres its size.
 * With ov_cap > 0 the best ov_cap accepted nodes that were pushed out of
 * the ef best are kept too, at s->rq + ef + 1 (*nov of them): the int8
 * search re-ranks them with the ef best, as the approximate distance may
 * have pushed out a true neighbour. */
static void search_level(const hnsw *h, scratch *s, const query *q,
			 uint32_t ep, float epd, uint32_t level, uint32_t ef,
			 uint32_t skip, hnsw_filter_fn filter, void *fctx,
			 size_t *nres, size_t ov_cap, size_t *nov)
{
	cand *cq = s->cq, *rq = s->rq;
	cand *ov = rq + ef + 1;
	size_t nc = 0, nr = 0, no = 0;
	float bound = INFINITY;
	bool fl_rows = h->vf && q->exact; /* scoring reads the float store */
	scratch_new_pass(s);
	visit(s, ep);
	char *eb = node_blk(h, ep);
	node_hdr *eh = blk_hdr(h, eb);
	if (!(load_flags(eh) & (HNSW_F_DELETED | skip)) &&
	    (!filter || filter(fctx, eh->label))) {
		maxheap_push(rq, &nr, (cand){epd, ep});
		if (nr >= ef)
			bound = epd;
	}
	minheap_push(cq, &nc, (cand){epd, ep});
	while (nc) {
		cand c = minheap_pop(cq, &nc);
		if (c.d > bound)
			break;
		/* the entry may be newer than our table snapshot; every other
		 * candidate passed visit() and so is below s->limit */
		char *b = c.id < s->limit ? blk_fast(h, s, c.id) : node_blk(h, c.id);
		/* the next candidate's link list (the block's first lines,
		 * not fetched when it was scored): its load overlaps this
		 * candidate's distance computations */
		if (nc && level == 0 && cq[0].id < s->limit) {
			const char *nb = blk_fast(h, s, cq[0].id);
			__builtin_prefetch(nb);
			__builtin_prefetch(nb + 64);
		}
		const uint32_t *l = blk_links(h, b, level);
		uint32_t n = link_cnt(l);
		if (n > level_max(level, (hnsw *)h))
			n = level_max(level, (hnsw *)h);
		/* pass 1: unvisited neighbours, the whole scored part of each
		 * block (header and vector) prefetched at once so that all the
		 * loads overlap; pass 2: score them.  (Prefetching two lines
		 * each and the rest one neighbour ahead left most of the vector
		 * loads exposed: q/s at recall 0.95 +32 %, bench/RESULTS.md.)
		 * An exact query under int8 reads the float store instead:
		 * the header here, each row one neighbour ahead. */
		uint32_t nids[2 * HNSW_MAX_M];
		uint32_t m = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = link_get(l, i);
			if (!visit(s, id))
				continue;
			const char *nb = blk_fast(h, s, id) + h->off_hdr;
			const char *pe = fl_rows ? nb + 1 : nb + (h->stride - h->off_hdr);
			for (const char *pp = line_of(nb); pp < pe; pp += 64)
				__builtin_prefetch(pp);
			nids[m++] = id;
		}
		for (uint32_t i = 0; i < m; i++) {
			uint32_t id = nids[i];
			if (fl_rows && i + 1 < m) {
				const char *pf = (const char *)tab_fvec(h, s->tab,
									nids[i + 1]);
				for (const char *pp = line_of(pf);
				     pp < pf + (size_t)h->dim * 4; pp += 64)
					__builtin_prefetch(pp);
			}
			char *nb = blk_fast(h, s, id);
			node_hdr *nh = blk_hdr(h, nb);
			uint32_t fl = load_flags(nh);
			if ((fl & HNSW_F_DELETED) || nh->level < level)
				continue;
			float d = dist_node(h, s->tab, q, id, nb);
			if (nr < ef || d < bound) {
				if (nc == s->cq_cap) {
					/* rare: the frontier outgrew the
					 * buffer; grow it once, keep it */
					if (cand_reserve(&s->cq, &s->cq_cap,
							 2 * nc))
						continue;
					cq = s->cq;
				}
				minheap_push(cq, &nc, (cand){d, id});
				/* a pending node is a waypoint, not a
				 * search's result (skip), but a neighbour
				 * for construction */
				if (!(fl & skip) &&
				    (!filter || filter(fctx, nh->label))) {
					maxheap_push(rq, &nr, (cand){d, id});
					if (nr > ef) {
						if (ov_cap)
							overflow_keep(ov, &no,
								      ov_cap,
								      rq[0]);
						maxheap_pop(rq, &nr);
					}
					if (nr >= ef)
						bound = rq[0].d;
				}
			}
		}
	}
	*nres = nr;
	if (nov)
		*nov = no;
}

/* Encode the query into the scratch (normalising under cosine). */
static int prepare_query(const hnsw *h, scratch *s, const float *v,
			 query *q, es_error *err)
{
	double n2 = 0;
	for (uint32_t i = 0; i < h->dim; i++) {
		if (!isfinite(v[i]))
			return es_err(err, ES_EINVAL,
				      "vector element %u is not a finite number", i);
		n2 += (double)v[i] * v[i];
	}
	if (!(n2 <= ES_VECTOR_MAX_NORM2))
		return es_err(err, ES_EINVAL, "query vector too large: squared norm %g is over %g",
			      n2, ES_VECTOR_MAX_NORM2);
	memcpy(s->qf, v, (size_t)h->dim * 4);
	if (h->p.metric == ES_METRIC_COSINE) {
		if (simd_normalize(s->qf, h->dim) == 0.0f)
			return es_err(err, ES_EINVAL,
				      "zero vector has no direction under cosine");
	}
	q->f = s->qf;
	q->exact = false;
	q->q8 = NULL;
	if (h->vf && h->p.metric != ES_METRIC_L2) {
		encode_codes(h, s->qf, s->q8);
		q->q8 = s->q8;
	}
	return 0;
}

static float score_of(const hnsw *h, float d)
{
	if (h->p.metric == ES_METRIC_L2)
		return sqrtf(d > 0 ? d : 0);
	return -d;
}

int hnsw_search(const hnsw *h, const float *q, uint32_t k, uint32_t ef,
		hnsw_filter_fn filter, void *filter_ctx, es_hit *out,
		size_t *nout, es_error *err)
{
	scratch *s = NULL;
	int rc;
	*nout = 0;
	if (k == 0)
		return es_err(err, ES_EINVAL, "k must be at least 1");
	if (k > HNSW_MAX_EF)
		return es_err(err, ES_ERANGE, "k %u exceeds the limit %u", k,
			      HNSW_MAX_EF);
	if (ef > HNSW_MAX_EF)
		return es_err(err, ES_ERANGE, "ef %u exceeds the limit %u", ef,
			      HNSW_MAX_EF);
	if (ef < k)
		ef = k;
	rc = scratch_get(h, &s, err);
	if (rc)
		return rc;
	/* int8: the ef best by the approximate distance plus the k best of
	 * those it pushed out are re-ranked (k more float reads: the approximate
	 * order matters most at ef close to k) */
	size_t ov_cap = h->vf ? k : 0;
	rc = scratch_reserve_heaps(s, (size_t)ef + 1 + ov_cap + h->M0 + 2);
	if (rc) {
		es_err(err, rc, "hnsw: out of memory for ef %u", ef);
		goto out;
	}
	query qq;
	rc = prepare_query(h, s, q, &qq, err);
	if (rc)
		goto out;
	uint64_t ep = atomic_load(&((hnsw *)h)->ep);
	uint32_t cur = (uint32_t)ep;
	if (cur == HNSW_NONE)
		goto out;
	uint32_t top = (uint32_t)(ep >> 32);
	float curd = dist_node(h, atomic_load(&((hnsw *)h)->tab), &qq, cur,
			       node_blk(h, cur));
	for (uint32_t l = top; l > 0; l--)
		greedy_level(h, &qq, l, &cur, &curd);
	size_t nr, nov;
	search_level(h, s, &qq, cur, curd, 0, ef, HNSW_F_PENDING, filter,
		     filter_ctx, &nr,
		     ov_cap, &nov);
	cand *r = s->rq;
	if (h->vf) {
		memmove(r + nr, r + ef + 1, nov * sizeof *r);
		nr += nov;
		/* all the rows' loads at once, before the first is read */
		for (size_t i = 0; i < nr; i++) {
			uint32_t id = r[i].id;
			if (id >= s->limit)
				continue;
			const char *fv = (const char *)tab_fvec(h, s->tab, id);
			for (const char *pp = line_of(fv);
			     pp < fv + (size_t)h->dim * 4; pp += 64)
				__builtin_prefetch(pp);
		}
		/* re-rank the ef candidates by the exact float distance; the
		 * store rows are not rewritten while we hold our epoch */
		for (size_t i = 0; i < nr; i++) {
			uint32_t id = r[i].id;
			const float *fv = id < s->limit ? tab_fvec(h, s->tab, id)
							: node_fvec(h, id);
			r[i].d = dist_f(h, qq.f, fv);
		}
	}
	qsort(r, nr, sizeof *r, cand_cmp);
	size_t m = nr < k ? nr : k;
	for (size_t i = 0; i < m; i++) {
		out[i].label = blk_hdr(h, node_blk(h, r[i].id))->label;
		out[i].score = score_of(h, r[i].d);
	}
	*nout = m;
out:
	scratch_put(h, s);
	return rc;
}

/* ------------------------------------------------------- label map */

/* Under map_lock.  Returns the slot or HNSW_NONE. */
static uint32_t map_find(const hnsw *h, uint64_t key)
{
	uint64_t v;
	return es_u64map_get(&h->map, key, &v) ? (uint32_t)v : HNSW_NONE;
}

/* Under map_lock; key must not be present.  0 or ES_ENOMEM. */
static int map_put(hnsw *h, uint64_t key, uint32_t val)
{
	return es_u64map_put(&h->map, key, val);
}

/* Under map_lock. */
static void map_del(hnsw *h, uint64_t key)
{
	es_u64map_remove(&h->map, key);
}

/* --------------------------------------------------------- lifecycle */

void hnsw_params_default(hnsw_params *p, uint32_t dim)
{
	memset(p, 0, sizeof *p);
	p->dim = dim;
	p->metric = ES_METRIC_COSINE;
	p->M = HNSW_DEFAULT_M;
	p->ef_construction = HNSW_DEFAULT_EF_CONSTRUCTION;
	p->seed = 42;
	p->quantize_int8 = 0;
	p->initial_capacity = 0;
	p->float_dir = NULL;
}

static int check_params(const hnsw_params *p, es_error *err)
{
	if (!p)
		return es_err(err, ES_EINVAL, "hnsw: no parameters");
	if (p->dim == 0 || p->dim > HNSW_MAX_DIM)
		return es_err(err, ES_EINVAL,
			      "hnsw: dimension %u out of range 1..%u", p->dim,
			      HNSW_MAX_DIM);
	if (p->metric != ES_METRIC_COSINE && p->metric != ES_METRIC_DOT &&
	    p->metric != ES_METRIC_L2)
		return es_err(err, ES_EINVAL, "hnsw: unknown metric %d",
			      (int)p->metric);
	if (p->M < 2 || p->M > HNSW_MAX_M)
		return es_err(err, ES_EINVAL, "hnsw: M %u out of range 2..%u",
			      p->M, HNSW_MAX_M);
	if (p->ef_construction < 1 || p->ef_construction > HNSW_MAX_EF)
		return es_err(err, ES_EINVAL,
			      "hnsw: ef_construction %u out of range 1..%u",
			      p->ef_construction, HNSW_MAX_EF);
	if (p->quantize_int8 != 0 && p->quantize_int8 != 1)
		return es_err(err, ES_EINVAL,
			      "hnsw: quantize_int8 must be 0 or 1");
	return 0;
}

static void free_tables(hnsw *h)
{
	chunk_tab *t = atomic_load(&h->tab);
	if (t) {
		for (size_t i = 0; i < h->n_chunks; i++) {
			char *c = t->chunk[i];
			for (uint32_t j = 0; j < HNSW_CHUNK; j++) {
				uint32_t id = (uint32_t)(i * HNSW_CHUNK + j);
				if (id >= atomic_load(&h->n_slots))
					break;
				node_hdr *nh = blk_hdr(h, c + (size_t)j * h->stride);
				es_free(nh->upper);
			}
		}
	}
	while (h->arenas) {
		arena *a = h->arenas;
		h->arenas = a->next;
		ARENA_UNPOISON(a->base, a->len);
		munmap(a->base, a->len);
		es_free(a);
	}
	vecfile_free(h->vf); /* unmaps the float segments */
	while (t) {
		chunk_tab *p = t->prev;
		es_free(t);
		t = p;
	}
}

void hnsw_free(hnsw *h)
{
	if (!h)
		return;
	free_tables(h);
	scratch *s = h->all_list;
	while (s) {
		scratch *n = s->next_all;
		scratch_free(s);
		s = n;
	}
	es_free(h->ret);
	es_u64map_destroy(&h->map);
	for (unsigned i = 0; i < HNSW_NODE_LOCKS; i++)
		pthread_mutex_destroy(&h->node_lock[i]);
	for (unsigned i = 0; i < HNSW_LABEL_LOCKS; i++)
		pthread_mutex_destroy(&h->label_lock[i]);
	pthread_mutex_destroy(&h->grow_lock);
	pthread_mutex_destroy(&h->ep_lock);
	pthread_mutex_destroy(&h->map_lock);
	pthread_mutex_destroy(&h->pool_lock);
	es_free(h->float_dir);
	es_free(h);
}

int hnsw_new(const hnsw_params *p, hnsw **out, es_error *err)
{
	*out = NULL;
	int rc = check_params(p, err);
	if (rc)
		return rc;
	hnsw *h = es_calloc(1, sizeof *h);
	if (!h)
		return es_err(err, ES_ENOMEM, "hnsw: out of memory");
	h->p = *p;
	h->dim = p->dim;
	h->M = p->M;
	h->M0 = 2 * p->M;
	h->ml = 1.0 / log((double)p->M);
	h->k = simd_get();
	h->vec_bytes = p->quantize_int8 ? (size_t)p->dim + 4 : (size_t)p->dim * 4;
	h->off_hdr = ((size_t)(1 + h->M0) * 4 + 7) / 8 * 8;
	h->off_vec = h->off_hdr + sizeof(node_hdr);
	h->stride = (h->off_vec + h->vec_bytes + 7) / 8 * 8;
	pthread_mutex_init(&h->grow_lock, NULL);
	pthread_mutex_init(&h->ep_lock, NULL);
	pthread_mutex_init(&h->map_lock, NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	for (unsigned i = 0; i < HNSW_NODE_LOCKS; i++)
		pthread_mutex_init(&h->node_lock[i], NULL);
	for (unsigned i = 0; i < HNSW_LABEL_LOCKS; i++)
		pthread_mutex_init(&h->label_lock[i], NULL);
	atomic_init(&h->ep, (uint64_t)HNSW_NONE);
	atomic_init(&h->epoch, 1);
	atomic_init(&h->n_slots, 0);
	chunk_tab *t = es_calloc(1, sizeof *t + 2 * 16 * sizeof(char *));
	if (!t) {
		hnsw_free(h);
		return es_err(err, ES_ENOMEM, "hnsw: out of memory");
	}
	t->cap = 16;
	t->fseg = (float **)(t->chunk + t->cap);
	atomic_init(&h->tab, t);
	h->p.float_dir = NULL;
	if (p->quantize_int8) {
		if (p->float_dir && !(h->float_dir = es_strdup(p->float_dir))) {
			hnsw_free(h);
			return es_err(err, ES_ENOMEM, "hnsw: out of memory");
		}
		h->p.float_dir = h->float_dir;
		rc = vecfile_new(h->float_dir, (size_t)HNSW_CHUNK * h->dim * 4,
				 &h->vf, err);
		if (rc) {
			hnsw_free(h);
			return es_err_prefix(err, rc, "hnsw");
		}
	}
	if (p->initial_capacity) {
		pthread_mutex_lock(&h->map_lock);
		rc = es_u64map_reserve(&h->map, p->initial_capacity);
		pthread_mutex_unlock(&h->map_lock);
		if (rc) {
			hnsw_free(h);
			return es_err(err, ES_ENOMEM, "hnsw: out of memory");
		}
	}
	*out = h;
	return 0;
}

const hnsw_params *hnsw_get_params(const hnsw *h)
{
	return &h->p;
}

size_t hnsw_count(const hnsw *h)
{
	return atomic_load(&((hnsw *)h)->live);
}

size_t hnsw_memory_bytes(const hnsw *hc)
{
	hnsw *h = (hnsw *)hc;
	size_t b = sizeof *h;
	pthread_mutex_lock(&h->grow_lock);
	b += h->n_chunks * HNSW_CHUNK * h->stride;
	for (chunk_tab *t = atomic_load(&h->tab); t; t = t->prev)
		b += sizeof *t + 2 * t->cap * sizeof(char *);
	b += h->ret_cap * sizeof(retired);
	pthread_mutex_unlock(&h->grow_lock);
	b += atomic_load(&h->upper_bytes);
	pthread_mutex_lock(&h->map_lock);
	b += es_u64map_bytes(&h->map);
	pthread_mutex_unlock(&h->map_lock);
	pthread_mutex_lock(&h->pool_lock);
	for (scratch *s = h->all_list; s; s = s->next_all)
		b += sizeof *s + s->visited_cap * 2 +
		     (s->heap_cap + s->cq_cap) * sizeof(cand) +
		     s->sel_cap * sizeof(cand) + (size_t)h->dim * 8;
	pthread_mutex_unlock(&h->pool_lock);
	return b;
}

size_t hnsw_vector_bytes(const hnsw *h)
{
	return h->vec_bytes;
}

size_t hnsw_store_bytes(const hnsw *h)
{
	return h->vf ? vecfile_bytes(h->vf) : 0;
}

/* ------------------------------------------------------------ slots */

/* Oldest active operation's epoch, or UINT64_MAX when none. */
static uint64_t min_active_epoch(hnsw *h)
{
	uint64_t m = UINT64_MAX;
	pthread_mutex_lock(&h->pool_lock);
	for (scratch *s = h->all_list; s; s = s->next_all) {
		uint64_t e = atomic_load(&s->epoch);
		if (e && e < m)
			m = e;
	}
	pthread_mutex_unlock(&h->pool_lock);
	return m;
}

/* Bytes one chunk takes in an arena (blocks, rounded to a cache line). */
static size_t chunk_bytes(const hnsw *h)
{
	return ((size_t)HNSW_CHUNK * h->stride + 63) & ~(size_t)63;
}

/* Under grow_lock: zeroed memory for one chunk of blocks, carved from the
 * newest arena, or NULL.  A new arena is as large as all before it (at
 * least one chunk, at most HNSW_ARENA_MAX), so a small index maps little
 * and a large one few, big, huge-page-backed regions.  Chunks are never
 * returned before hnsw_free. */
static char *chunk_alloc(hnsw *h)
{
	size_t need = chunk_bytes(h);
	if (h->ar_left < need) {
		size_t len = h->ar_total < HNSW_ARENA_MAX ? h->ar_total
							  : HNSW_ARENA_MAX;
		if (len < need)
			len = need;
		arena *a = es_malloc(sizeof *a);
		if (!a)
			return NULL;
		if (len >= HNSW_HUGE) {
			/* over-map by one huge page, trim to 2 MiB alignment */
			len = (len + HNSW_HUGE - 1) & ~(HNSW_HUGE - 1);
			size_t span = len + HNSW_HUGE;
			char *m = mmap(NULL, span, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) {
				es_free(a);
				return NULL;
			}
			uintptr_t al = ((uintptr_t)m + HNSW_HUGE - 1) &
				       ~(uintptr_t)(HNSW_HUGE - 1);
			char *b = (char *)al;
			if (b > m)
				munmap(m, (size_t)(b - m));
			if (m + span > b + len)
				munmap(b + len, (size_t)(m + span - (b + len)));
#ifdef MADV_HUGEPAGE
			(void)madvise(b, len, MADV_HUGEPAGE); /* a hint only */
#endif
			a->base = b;
		} else {
			a->base = mmap(NULL, len, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (a->base == MAP_FAILED) {
				es_free(a);
				return NULL;
			}
		}
		a->len = len;
		a->next = h->arenas;
		h->arenas = a;
		h->ar_cur = a->base;
		h->ar_left = len;
		h->ar_total += len;
		ARENA_POISON(a->base, len);
	}
	char *c = h->ar_cur;
	h->ar_cur += need;
	h->ar_left -= need;
	ARENA_UNPOISON(c, (size_t)HNSW_CHUNK * h->stride);
	return c;
}

/* Under grow_lock: make sure chunk c (and under int8 its float segment)
 * exists.  0, ES_ENOMEM, or the float store's ES_ENOSPC / ES_EIO. */
static int ensure_chunk(hnsw *h, size_t c, es_error *err)
{
	while (h->n_chunks <= c) {
		chunk_tab *t = atomic_load(&h->tab);
		if (h->n_chunks == t->cap) {
			size_t cap = t->cap * 2;
			chunk_tab *nt = es_calloc(1, sizeof *nt + 2 * cap * sizeof(char *));
			if (!nt)
				return es_err(err, ES_ENOMEM, "hnsw: out of memory");
			nt->cap = cap;
			nt->fseg = (float **)(nt->chunk + cap);
			memcpy(nt->chunk, t->chunk, t->cap * sizeof(char *));
			memcpy(nt->fseg, t->fseg, t->cap * sizeof(float *));
			nt->prev = t;
			atomic_store_explicit(&h->tab, nt, memory_order_release);
			t = nt;
		}
		char *mem = chunk_alloc(h);
		if (!mem)
			return es_err(err, ES_ENOMEM, "hnsw: out of memory");
		if (h->vf) {
			/* block first, then the segment: a failure leaves no
			 * segment without its chunk */
			void *seg;
			int rc = vecfile_grow(h->vf, &seg, err);
			if (rc) {
				/* hand the chunk back: it is the arena's tail */
				h->ar_cur = mem;
				h->ar_left += chunk_bytes(h);
				ARENA_POISON(mem, (size_t)HNSW_CHUNK * h->stride);
				return rc;
			}
			__atomic_store_n(&t->fseg[h->n_chunks], (float *)seg,
					 __ATOMIC_RELEASE);
		}
		/* published before any id in it is handed out (n_slots store) */
		__atomic_store_n(&t->chunk[h->n_chunks], mem, __ATOMIC_RELEASE);
		h->n_chunks++;
	}
	return 0;
}

/* A slot for a new node, flagged deleted (invisible) until published.
 * The caller holds no scratch epoch of its own yet. */
static int slot_alloc(hnsw *h, uint32_t *out, es_error *err)
{
	int rc = 0;
	uint64_t safe = UINT64_MAX;
	pthread_mutex_lock(&h->grow_lock);
	if (h->ret_len) {
		pthread_mutex_unlock(&h->grow_lock);
		safe = min_active_epoch(h);
		pthread_mutex_lock(&h->grow_lock);
		if (h->ret_len && h->ret[h->ret_head].epoch < safe) {
			*out = h->ret[h->ret_head].slot;
			h->ret_head = (h->ret_head + 1) % h->ret_cap;
			h->ret_len--;
			goto out;
		}
	}
	uint32_t id = atomic_load(&h->n_slots);
	if (id >= HNSW_MAX_SLOTS) {
		rc = es_err(err, ES_ENOMEM, "hnsw: index is full (%u slots)", id);
		goto out;
	}
	rc = ensure_chunk(h, id >> HNSW_CHUNK_SHIFT, err);
	if (rc)
		goto out;
	char *b = node_blk(h, id);
	__atomic_store_n(&blk_hdr(h, b)->flags, HNSW_F_DELETED, __ATOMIC_RELAXED);
	atomic_store_explicit(&h->n_slots, id + 1, memory_order_release);
	*out = id;
out:
	pthread_mutex_unlock(&h->grow_lock);
	return rc;
}

/* Under grow_lock: queue a deleted slot for reuse after epoch e. */
static int slot_retire_locked(hnsw *h, uint32_t slot, uint64_t e)
{
	if (h->ret_len == h->ret_cap) {
		size_t cap = h->ret_cap ? h->ret_cap * 2 : 64;
		retired *r = es_malloc(cap * sizeof *r);
		if (!r)
			return ES_ENOMEM;
		for (size_t i = 0; i < h->ret_len; i++)
			r[i] = h->ret[(h->ret_head + i) % h->ret_cap];
		es_free(h->ret);
		h->ret = r;
		h->ret_cap = cap;
		h->ret_head = 0;
	}
	h->ret[(h->ret_head + h->ret_len) % h->ret_cap] = (retired){slot, e};
	h->ret_len++;
	return 0;
}

static uint32_t random_level(hnsw *h)
{
	uint64_t n = atomic_fetch_add(&h->add_seq, 1);
	uint64_t r = splitmix64(h->p.seed ^ splitmix64(n));
	double u = ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
	double l = -log(u) * h->ml;
	if (l > HNSW_MAX_LEVEL)
		l = HNSW_MAX_LEVEL;
	return (uint32_t)l;
}

/* ------------------------------------------------------------ linking */

/* The paper's heuristic (algorithm 4) over c[0..n) sorted by distance to the
 * base: keep a candidate only if it is closer to the base than to every
 * candidate already kept.  Kept ones are moved to the front; returns count. */
static uint32_t select_heuristic(hnsw *h, cand *c, size_t n, uint32_t maxm)
{
	if (n <= maxm)
		return (uint32_t)n;
	uint32_t kept = 0;
	for (size_t i = 0; i < n && kept < maxm; i++) {
		const float *vi = node_fvec(h, c[i].id);
		bool good = true;
		for (uint32_t j = 0; j < kept; j++) {
			const float *vj = node_fvec(h, c[j].id);
			if (dist_f(h, vi, vj) < c[i].d) {
				good = false;
				break;
			}
		}
		if (good)
			c[kept++] = c[i];
	}
	return kept;
}

/* Link node `src` into the list of `dst` at level, pruning with the
 * heuristic when full.  Deleted entries are dropped while we are there. */
static void link_into(hnsw *h, scratch *s, uint32_t dst, uint32_t src,
		      float d_src, uint32_t level)
{
	uint32_t maxm = level_max(level, h);
	pthread_mutex_t *lk = nlock(h, dst);
	pthread_mutex_lock(lk);
	char *db = node_blk(h, dst);
	if (load_flags(blk_hdr(h, db)) & HNSW_F_DELETED ||
	    blk_hdr(h, db)->level < level)
		goto out;
	uint32_t *l = blk_links(h, db, level);
	uint32_t n = link_cnt(l);
	uint32_t ids[2 * HNSW_MAX_M + 1];
	for (uint32_t i = 0; i < n; i++) {
		ids[i] = link_get(l, i);
		if (ids[i] == src)
			goto out;
	}
	if (n < maxm) {
		__atomic_store_n(&l[1 + n], src, __ATOMIC_RELAXED);
		__atomic_store_n(&l[0], n + 1, __ATOMIC_RELEASE);
		goto out;
	}
	cand *c = s->sel;
	size_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		char *nb = node_blk(h, ids[i]);
		node_hdr *nh = blk_hdr(h, nb);
		if ((load_flags(nh) & HNSW_F_DELETED) || nh->level < level)
			continue;
		c[m++] = (cand){dist_ids(h, dst, ids[i]), ids[i]};
	}
	c[m++] = (cand){d_src, src};
	qsort(c, m, sizeof *c, cand_cmp);
	uint32_t kept = select_heuristic(h, c, m, maxm);
	for (uint32_t i = 0; i < kept; i++)
		ids[i] = c[i].id;
	links_set(l, ids, kept);
out:
	pthread_mutex_unlock(lk);
}

/* Insert the (already published) node `id` of level `lvl` into the graph.
 * Caller holds a scratch; holds ep_lock iff lvl > current top level. */
static void connect_node(hnsw *h, scratch *s, uint32_t id, uint32_t lvl,
			 uint64_t ep, const float *vf)
{
	char *b = node_blk(h, id);
	query q = {vf, true, NULL};
	uint32_t cur = (uint32_t)ep;
	uint32_t top = (uint32_t)(ep >> 32);
	float curd = dist_f(h, vf, node_fvec(h, cur));
	for (uint32_t l = top; l > lvl; l--)
		greedy_level(h, &q, l, &cur, &curd);
	uint32_t start = lvl < top ? lvl : top;
	for (uint32_t l = start + 1; l-- > 0;) {
		size_t nr;
		search_level(h, s, &q, cur, curd, l, h->p.ef_construction, 0, NULL,
			     NULL, &nr, 0, NULL);
		cand *c = s->sel;
		size_t m = 0;
		for (size_t i = 0; i < nr; i++)
			if (s->rq[i].id != id)
				c[m++] = s->rq[i];
		if (m == 0)
			continue;
		qsort(c, m, sizeof *c, cand_cmp);
		uint32_t kept = select_heuristic(h, c, m, h->M);
		uint32_t ids[2 * HNSW_MAX_M];
		for (uint32_t i = 0; i < kept; i++)
			ids[i] = c[i].id;
		pthread_mutex_lock(nlock(h, id));
		links_set(blk_links(h, b, l), ids, kept);
		pthread_mutex_unlock(nlock(h, id));
		cur = c[0].id;
		curd = c[0].d;
		/* c is reused by link_into: copy what we need first */
		float ds[2 * HNSW_MAX_M];
		for (uint32_t i = 0; i < kept; i++)
			ds[i] = c[i].d;
		for (uint32_t i = 0; i < kept; i++)
			link_into(h, s, ids[i], id, ds[i], l);
	}
}

static int check_vector(const hnsw *h, const float *v, es_error *err)
{
	double n2 = 0;
	for (uint32_t i = 0; i < h->dim; i++) {
		if (!isfinite(v[i]))
			return es_err(err, ES_EINVAL,
				      "vector element %u is not a finite number", i);
		n2 += (double)v[i] * v[i];
	}
	if (h->p.metric == ES_METRIC_COSINE && n2 == 0)
		return es_err(err, ES_EINVAL,
			      "zero vector has no direction under cosine");
	if (!(n2 <= ES_VECTOR_MAX_NORM2)) /* the float norm would overflow */
		return es_err(err, ES_EINVAL, "vector too large: squared norm %g is over %g",
			      n2, ES_VECTOR_MAX_NORM2);
	return 0;
}

static void delete_slot(hnsw *h, scratch *s, uint32_t slot);

/* Choose a new entry point after `gone` (the entry point) was deleted: a
 * live node of the highest level that has one.  The per-level live counts
 * say which level that is, and such a node is nearly always among gone's own
 * links (gone's list on that level names nodes of at least that level), so
 * this reads at most 2M + level*M links; a full scan of the slots is the
 * fallback when none of them qualifies.  Under ep_lock. */
static void reelect_ep(hnsw *h, uint32_t gone)
{
	uint64_t ep = atomic_load(&h->ep);
	if ((uint32_t)ep != gone)
		return;
	int want = -1;
	for (int l = HNSW_MAX_LEVEL; l >= 0 && want < 0; l--)
		if (atomic_load(&h->lvl_live[l]))
			want = l;
	uint32_t best = HNSW_NONE, bl = 0;
	if (want >= 0) {
		char *gb = node_blk(h, gone);
		uint32_t gl = blk_hdr(h, gb)->level;
		for (uint32_t l = gl + 1; l-- > 0 && best == HNSW_NONE;) {
			const uint32_t *lk = blk_links(h, gb, l);
			uint32_t n = link_cnt(lk);
			if (n > level_max(l, h))
				n = level_max(l, h);
			for (uint32_t i = 0; i < n; i++) {
				uint32_t id = link_get(lk, i);
				node_hdr *nh = blk_hdr(h, node_blk(h, id));
				if (!(load_flags(nh) & HNSW_F_DELETED) &&
				    nh->level == (uint32_t)want) {
					best = id;
					bl = nh->level;
					break;
				}
			}
		}
	}
	if (best == HNSW_NONE && want >= 0) {
		atomic_fetch_add(&h->ep_scans, 1);
		uint32_t n = atomic_load(&h->n_slots);
		for (uint32_t i = 0; i < n; i++) {
			node_hdr *nh = blk_hdr(h, node_blk(h, i));
			if (load_flags(nh) & HNSW_F_DELETED)
				continue;
			if (best == HNSW_NONE || nh->level > bl) {
				best = i;
				bl = nh->level;
			}
		}
	}
	atomic_store(&h->ep, best == HNSW_NONE ? (uint64_t)HNSW_NONE
					       : ((uint64_t)bl << 32) | best);
}

int hnsw_entry_point(const hnsw *hc, uint64_t *label, uint32_t *level)
{
	hnsw *h = (hnsw *)hc;
	pthread_mutex_lock(&h->ep_lock);
	uint64_t ep = atomic_load(&h->ep);
	int rc = ES_ENOTFOUND;
	if ((uint32_t)ep != HNSW_NONE) {
		*label = blk_hdr(h, node_blk(h, (uint32_t)ep))->label;
		*level = (uint32_t)(ep >> 32);
		rc = 0;
	}
	pthread_mutex_unlock(&h->ep_lock);
	return rc;
}

size_t hnsw_ep_scans(const hnsw *h)
{
	return atomic_load(&((hnsw *)h)->ep_scans);
}

/* Long on purpose (~130 lines): one lock protocol from the slot allocation
 * to the publication of the node (label lock, slot epoch, node locks while
 * linking, ep_lock for a new top level); split, each piece would need the
 * locks its caller holds spelled out again. */
static int add_node(hnsw *h, uint64_t label, const float *vec, uint32_t pub,
		    es_error *err)
{
	int rc = check_vector(h, vec, err);
	if (rc)
		return rc;
	scratch *s = NULL;
	uint32_t id = HNSW_NONE;
	uint32_t *upper = NULL;
	pthread_mutex_t *lab = llock(h, label);
	pthread_mutex_lock(lab);

	/* slot first: reuse needs our own epoch not yet published */
	rc = slot_alloc(h, &id, err);
	if (rc)
		goto out_unlocked_scratch;
	rc = scratch_get(h, &s, err);
	if (rc)
		goto out_unlocked_scratch;
	rc = scratch_reserve_heaps(s, (size_t)h->p.ef_construction + h->M0 + 2);
	if (!rc)
		rc = scratch_reserve_sel(s, (size_t)h->p.ef_construction + h->M0 + 2);
	if (rc) {
		es_err(err, rc, "hnsw: out of memory");
		goto out;
	}

	uint32_t lvl = random_level(h);
	char *b = node_blk(h, id);
	node_hdr *nh = blk_hdr(h, b);
	uint32_t *old_upper = nh->upper;
	if (lvl) {
		size_t ub = (size_t)lvl * (h->M + 1) * 4;
		upper = es_calloc(1, ub);
		if (!upper) {
			rc = es_err(err, ES_ENOMEM, "hnsw: out of memory");
			goto out;
		}
		atomic_fetch_add(&h->upper_bytes, ub);
	}
	if (old_upper)
		atomic_fetch_sub(&h->upper_bytes,
				 (size_t)nh->level * (h->M + 1) * 4);
	/* Nobody reads this slot now: it is flagged deleted and every
	 * operation that saw it alive has finished (slot_alloc). */
	float *tmp = s->tmp;
	memcpy(tmp, vec, (size_t)h->dim * 4);
	if (h->p.metric == ES_METRIC_COSINE)
		simd_normalize(tmp, h->dim);
	memcpy((float *)node_fvec(h, id), tmp, (size_t)h->dim * 4);
	if (h->vf)
		encode_codes(h, tmp, b + h->off_vec);
	__atomic_store_n(&((uint32_t *)b)[0], 0, __ATOMIC_RELAXED);
	nh->level = lvl;
	nh->label = label;
	__atomic_store_n(&nh->upper, upper, __ATOMIC_RELEASE);
	es_free(old_upper);
	upper = NULL;

	/* replace an existing label (update) */
	pthread_mutex_lock(&h->map_lock);
	uint32_t old = map_find(h, label);
	if (old != HNSW_NONE)
		map_del(h, label);
	rc = map_put(h, label, id);
	pthread_mutex_unlock(&h->map_lock);
	if (rc) {
		es_err(err, rc, "hnsw: out of memory for the label map");
		if (old != HNSW_NONE) {
			pthread_mutex_lock(&h->map_lock);
			map_put(h, label, old); /* a slot was freed above */
			pthread_mutex_unlock(&h->map_lock);
		}
		goto out;
	}
	if (old != HNSW_NONE) {
		delete_slot(h, s, old);
	}

	/* publish (as a waypoint only, when pending) */
	__atomic_store_n(&nh->flags, pub, __ATOMIC_RELEASE);
	atomic_fetch_add(&h->live, 1);
	atomic_fetch_add(&h->lvl_live[lvl], 1);
	uint64_t ep = atomic_load(&h->ep);
	bool held = false;
	if ((uint32_t)ep == HNSW_NONE || lvl > (uint32_t)(ep >> 32)) {
		pthread_mutex_lock(&h->ep_lock);
		held = true;
		ep = atomic_load(&h->ep);
		if ((uint32_t)ep == HNSW_NONE) {
			atomic_store(&h->ep, ((uint64_t)lvl << 32) | id);
			pthread_mutex_unlock(&h->ep_lock);
			goto done;
		}
		if (lvl <= (uint32_t)(ep >> 32)) {
			pthread_mutex_unlock(&h->ep_lock);
			held = false;
		}
	}
	connect_node(h, s, id, lvl, ep, tmp);
	if (!held) {
		/* a concurrent delete of the entry point may have re-elected
		 * one while we were not yet visible to it: settle it under the
		 * lock (held by every re-election), so the entry point always
		 * has the highest live level */
		pthread_mutex_lock(&h->ep_lock);
		ep = atomic_load(&h->ep);
		held = (uint32_t)ep == HNSW_NONE || lvl > (uint32_t)(ep >> 32);
		if (!held)
			pthread_mutex_unlock(&h->ep_lock);
	}
	if (held) {
		/* the entry point may have been deleted meanwhile: still ours
		 * is higher than anything live */
		atomic_store(&h->ep, ((uint64_t)lvl << 32) | id);
		pthread_mutex_unlock(&h->ep_lock);
	}
done:
	id = HNSW_NONE;
out:
	scratch_put(h, s);
out_unlocked_scratch:
	if (id != HNSW_NONE) {
		/* give the unused slot back (it was never visible) */
		pthread_mutex_lock(&h->grow_lock);
		slot_retire_locked(h, id, 0);
		pthread_mutex_unlock(&h->grow_lock);
	}
	es_free(upper);
	pthread_mutex_unlock(lab);
	return rc;
}

int hnsw_add(hnsw *h, uint64_t label, const float *vec, es_error *err)
{
	return add_node(h, label, vec, 0, err);
}

int hnsw_add_pending(hnsw *h, uint64_t label, const float *vec, es_error *err)
{
	return add_node(h, label, vec, HNSW_F_PENDING, err);
}

int hnsw_publish(hnsw *h, uint64_t label)
{
	pthread_mutex_t *lab = llock(h, label);
	pthread_mutex_lock(lab);
	pthread_mutex_lock(&h->map_lock);
	uint32_t slot = map_find(h, label);
	pthread_mutex_unlock(&h->map_lock);
	if (slot != HNSW_NONE)
		__atomic_fetch_and(&blk_hdr(h, node_blk(h, slot))->flags,
				   ~HNSW_F_PENDING, __ATOMIC_RELEASE);
	pthread_mutex_unlock(lab);
	return slot == HNSW_NONE ? ES_ENOTFOUND : 0;
}

int hnsw_publish_batch(hnsw *h, const uint64_t *labels, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n;) {
		size_t e = n - i > 64 ? i + 64 : n;
		pthread_mutex_lock(&h->map_lock);
		for (; i < e; i++) {
			uint32_t slot = map_find(h, labels[i]);
			if (slot == HNSW_NONE)
				rc = ES_ENOTFOUND;
			else
				__atomic_fetch_and(&blk_hdr(h, node_blk(h, slot))->flags,
						   ~HNSW_F_PENDING, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&h->map_lock);
	}
	return rc;
}

/* Re-link the out-neighbours of deleted node `d` at level l that point back
 * at it, through d's own neighbours. */
static void repair_level(hnsw *h, scratch *s, uint32_t d, uint32_t l)
{
	char *db = node_blk(h, d);
	const uint32_t *dl = blk_links(h, db, l);
	uint32_t dn = link_cnt(dl);
	if (dn > level_max(l, h))
		dn = level_max(l, h);
	uint32_t dids[2 * HNSW_MAX_M];
	for (uint32_t i = 0; i < dn; i++)
		dids[i] = link_get(dl, i);
	uint32_t maxm = level_max(l, h);
	for (uint32_t i = 0; i < dn; i++) {
		uint32_t n = dids[i];
		pthread_mutex_t *lk = nlock(h, n);
		pthread_mutex_lock(lk);
		char *nb = node_blk(h, n);
		node_hdr *nhh = blk_hdr(h, nb);
		if ((load_flags(nhh) & HNSW_F_DELETED) || nhh->level < l) {
			pthread_mutex_unlock(lk);
			continue;
		}
		uint32_t *nl = blk_links(h, nb, l);
		uint32_t nn = link_cnt(nl);
		bool has = false;
		uint32_t ids[4 * HNSW_MAX_M + 2];
		for (uint32_t j = 0; j < nn; j++) {
			ids[j] = link_get(nl, j);
			if (ids[j] == d)
				has = true;
		}
		if (!has) {
			pthread_mutex_unlock(lk);
			continue;
		}
		cand *c = s->sel;
		size_t m = 0;
		for (uint32_t j = 0; j < nn + dn; j++) {
			uint32_t x = j < nn ? ids[j] : dids[j - nn];
			if (x == d || x == n)
				continue;
			bool dup = false;
			for (size_t t = 0; t < m; t++)
				if (c[t].id == x) {
					dup = true;
					break;
				}
			if (dup)
				continue;
			char *xb = node_blk(h, x);
			node_hdr *xh = blk_hdr(h, xb);
			if ((load_flags(xh) & HNSW_F_DELETED) || xh->level < l)
				continue;
			c[m++] = (cand){dist_ids(h, n, x), x};
		}
		qsort(c, m, sizeof *c, cand_cmp);
		uint32_t kept = select_heuristic(h, c, m, maxm);
		for (uint32_t j = 0; j < kept; j++)
			ids[j] = c[j].id;
		links_set(nl, ids, kept);
		pthread_mutex_unlock(lk);
	}
}

/* Hide slot, repair its neighbourhood, queue it for reuse.  The caller
 * holds the label lock and a scratch; the label is already unmapped. */
static void delete_slot(hnsw *h, scratch *s, uint32_t slot)
{
	char *b = node_blk(h, slot);
	node_hdr *nh = blk_hdr(h, b);
	__atomic_store_n(&nh->flags, HNSW_F_DELETED, __ATOMIC_SEQ_CST);
	atomic_fetch_sub(&h->live, 1);
	atomic_fetch_sub(&h->lvl_live[nh->level], 1);
	/* under the lock: a re-election running now may pick us */
	pthread_mutex_lock(&h->ep_lock);
	reelect_ep(h, slot);
	pthread_mutex_unlock(&h->ep_lock);
	if (scratch_reserve_sel(s, 4 * (size_t)h->M0 + 4) == 0)
		for (uint32_t l = 0; l <= nh->level; l++)
			repair_level(h, s, slot, l);
	uint64_t e = atomic_fetch_add(&h->epoch, 1);
	pthread_mutex_lock(&h->grow_lock);
	/* on failure the slot is simply never reused */
	slot_retire_locked(h, slot, e);
	pthread_mutex_unlock(&h->grow_lock);
}

int hnsw_delete(hnsw *h, uint64_t label)
{
	pthread_mutex_t *lab = llock(h, label);
	pthread_mutex_lock(lab);
	pthread_mutex_lock(&h->map_lock);
	uint32_t slot = map_find(h, label);
	if (slot != HNSW_NONE)
		map_del(h, label);
	pthread_mutex_unlock(&h->map_lock);
	int rc = 0;
	if (slot == HNSW_NONE) {
		rc = ES_ENOTFOUND;
		goto out;
	}
	scratch *s = NULL;
	if (scratch_get(h, &s, NULL) == 0) {
		delete_slot(h, s, slot);
		scratch_put(h, s);
	} else {
		/* no memory for repair: hide it anyway, never reuse it */
		node_hdr *nh = blk_hdr(h, node_blk(h, slot));
		__atomic_store_n(&nh->flags, HNSW_F_DELETED, __ATOMIC_SEQ_CST);
		atomic_fetch_sub(&h->live, 1);
		atomic_fetch_sub(&h->lvl_live[nh->level], 1);
		pthread_mutex_lock(&h->ep_lock);
		reelect_ep(h, slot);
		pthread_mutex_unlock(&h->ep_lock);
	}
out:
	pthread_mutex_unlock(lab);
	return rc;
}

int hnsw_contains(const hnsw *hc, uint64_t label)
{
	hnsw *h = (hnsw *)hc;
	pthread_mutex_lock(&h->map_lock);
	uint32_t slot = map_find(h, label);
	pthread_mutex_unlock(&h->map_lock);
	return slot != HNSW_NONE;
}

int hnsw_get_vector(const hnsw *hc, uint64_t label, float *out)
{
	hnsw *h = (hnsw *)hc;
	pthread_mutex_t *lab = llock(h, label);
	pthread_mutex_lock(lab);
	pthread_mutex_lock(&h->map_lock);
	uint32_t slot = map_find(h, label);
	pthread_mutex_unlock(&h->map_lock);
	if (slot != HNSW_NONE)
		memcpy(out, node_fvec(h, slot), (size_t)h->dim * 4);
	pthread_mutex_unlock(lab);
	return slot == HNSW_NONE ? ES_ENOTFOUND : 0;
}

size_t hnsw_get_vectors(const hnsw *hc, const uint64_t *labels, size_t n, float *out,
			unsigned char *found)
{
	hnsw *h = (hnsw *)hc;
	const size_t row = (size_t)h->dim * 4;
	size_t got = 0;
	while (n > 0) {
		uint32_t slot[64];
		size_t m = n < 64 ? n : 64;
		pthread_mutex_lock(&h->map_lock);
		for (size_t i = 0; i < m; i++)
			es_u64map_prefetch(&h->map, labels[i]);
		for (size_t i = 0; i < m; i++)
			slot[i] = map_find(h, labels[i]);
		pthread_mutex_unlock(&h->map_lock);
		/* every row's lines requested before the first copy waits for one */
		for (size_t i = 0; i < m; i++)
			if (slot[i] != HNSW_NONE)
				for (size_t b = 0; b < row; b += 64)
					__builtin_prefetch((const char *)node_fvec(h, slot[i]) + b);
		for (size_t i = 0; i < m; i++) {
			found[i] = slot[i] != HNSW_NONE;
			if (found[i]) {
				memcpy(out + i * h->dim, node_fvec(h, slot[i]), row);
				got++;
			}
		}
		labels += m;
		out += m * h->dim;
		found += m;
		n -= m;
	}
	return got;
}

/* ---------------------------------------------------------- batch add */

typedef struct batch_ctx {
	hnsw *h;
	const uint64_t *labels;
	const float *vecs;
	size_t off;
	uint32_t pub; /* flags a node is published with */
	_Atomic int failed;
	pthread_mutex_t err_lock;
	es_error err;
	int rc;
} batch_ctx;

static void batch_fn(void *vctx, size_t begin, size_t end, unsigned worker)
{
	batch_ctx *c = vctx;
	(void)worker;
	for (size_t j = begin; j < end; j++) {
		size_t i = j + c->off;
		if (atomic_load_explicit(&c->failed, memory_order_relaxed))
			return;
		es_error e;
		int rc = add_node(c->h, c->labels[i],
				  c->vecs + i * (size_t)c->h->dim, c->pub, &e);
		if (rc) {
			pthread_mutex_lock(&c->err_lock);
			if (!c->rc) {
				c->rc = rc;
				es_err(&c->err, rc, "row %zu: %s", i, e.msg);
			}
			pthread_mutex_unlock(&c->err_lock);
			atomic_store(&c->failed, 1);
			return;
		}
	}
}

/* head: how many points go in one by one first */
static int add_batch(hnsw *h, const uint64_t *labels, const float *vecs,
		     size_t n, es_pool *pool, uint32_t pub, size_t head,
		     es_error *err)
{
	batch_ctx c = {.h = h, .labels = labels, .vecs = vecs, .pub = pub};
	pthread_mutex_init(&c.err_lock, NULL);
	if (head > n)
		head = n;
	batch_fn(&c, 0, head, 0);
	if (!c.rc && n > head) {
		/* small grains: per-item cost varies; the pool hands out
		 * chunks from an atomic counter */
		c.off = head;
		es_pool_parallel_for(pool, n - head, 32, batch_fn, &c);
	}
	pthread_mutex_destroy(&c.err_lock);
	if (c.rc) {
		if (err) {
			err->code = c.rc;
			memcpy(err->msg, c.err.msg, sizeof err->msg);
		}
		return c.rc;
	}
	return 0;
}

int hnsw_add_batch(hnsw *h, const uint64_t *labels, const float *vecs,
		   size_t n, es_pool *pool, es_error *err)
{
	/* the first points one by one, so the workers start on a real graph
	 * rather than all racing to be the entry point */
	return add_batch(h, labels, vecs, n, pool, 0, 256, err);
}

int hnsw_add_pending_batch(hnsw *h, const uint64_t *labels, const float *vecs,
			   size_t n, es_pool *pool, es_error *err)
{
	/* one by one only while the graph is too small to spread the
	 * workers (the same reason as hnsw_add_batch's first points) */
	size_t live = atomic_load(&h->live);
	return add_batch(h, labels, vecs, n, pool, HNSW_F_PENDING,
			 live < 256 ? 256 - live : 0, err);
}

/* -------------------------------------------------------- persistence */
/*
 * File layout (little-endian), version 3:
 *   magic "ESHNSW\r\n" | u32 version | u32 endian tag 0x01020304
 *   u32 dim | u32 metric | u32 M | u32 ef_construction | u32 quantize_int8
 *   u32 vector bytes | u64 seed | u64 add sequence
 *   u32 slots | u32 entry slot | u32 top level | u32 0 | u64 live count
 *   per slot: u32 flags; if live: u32 level | u64 label | vector bytes |
 *             u32 cnt0 | cnt0 x u32 | per level 1..level: u32 cnt | cnt x u32
 *   u32 CRC-32C of everything above | "HNSWEND\n"
 * The vector is always the float32 original (4 * dim bytes), also under
 * int8: the loader re-encodes the codes (deterministically, so a loaded index
 * answers exactly like the saved one) and puts the floats back in the store.
 * Older versions, still read: version 2 is the same layout checksummed with
 * CRC-32 (IEEE) instead of CRC-32C (the one checksum of every other
 * format); version 1 (CRC-32 too) held int8 indexes as [f32 scale |
 * f32 norm2 | codes, padded to 4], which load with the dequantised vectors
 * as floats.  Deleted slots are written too (links may still name them)
 * and are reused after loading.
 *
 * Slot order: the file numbers slots in breadth-first order of the level-0
 * graph from the entry point (further components from their lowest slot,
 * deleted slots last), not in insertion order, so a loaded index keeps
 * graph neighbours in nearby blocks: a search's next candidates share
 * pages and cache lines with the ones it just scored instead of sitting
 * anywhere in the arenas (insertion order is random with respect to the
 * graph).  Links, the entry point and the retire list are renumbered with
 * the blocks; labels are unchanged, so nothing outside the index sees it.
 * Files written before this order load as they are (any permutation of
 * slots is a valid file).
 */

/* The write order of the n slots: ord[i] is the slot written as number i,
 * pos[slot] its new number.  Live (written live) slots breadth-first over
 * level-0 links from the entry point ep, then from the lowest unplaced live
 * slot, ...; then the rest in slot order.  ord doubles as the BFS queue. */
static void write_order(hnsw *h, uint32_t n, uint64_t ep, uint32_t *ord,
			uint32_t *pos)
{
	for (uint32_t i = 0; i < n; i++)
		pos[i] = HNSW_NONE;
	uint32_t placed = 0, next = 0, start = (uint32_t)ep;
	if (start == HNSW_NONE)
		start = 0;
	for (uint32_t scan = 0; scan <= n; scan++) {
		uint32_t root = scan == 0 ? start : scan - 1;
		if (root >= n || pos[root] != HNSW_NONE ||
		    load_flags(blk_hdr(h, node_blk(h, root))))
			continue;
		pos[root] = placed;
		ord[placed++] = root;
		while (next < placed) {
			char *b = node_blk(h, ord[next++]);
			const uint32_t *l = blk_links(h, b, 0);
			uint32_t c = link_cnt(l);
			for (uint32_t j = 0; j < c; j++) {
				uint32_t id = link_get(l, j);
				if (id >= n || pos[id] != HNSW_NONE ||
				    load_flags(blk_hdr(h, node_blk(h, id))))
					continue;
				pos[id] = placed;
				ord[placed++] = id;
			}
		}
	}
	for (uint32_t i = 0; i < n; i++)
		if (pos[i] == HNSW_NONE) {
			pos[i] = placed;
			ord[placed++] = i;
		}
}

static void write_header(const hnsw *h, es_writer *w, uint32_t n,
			 uint64_t ep, uint64_t live)
{
	es_w_bytes(w, HNSW_FILE_MAGIC, 8);
	es_w_u32(w, HNSW_FILE_VERSION);
	es_w_u32(w, HNSW_FILE_ENDIAN);
	es_w_u32(w, h->dim);
	es_w_u32(w, (uint32_t)h->p.metric);
	es_w_u32(w, h->M);
	es_w_u32(w, h->p.ef_construction);
	es_w_u32(w, (uint32_t)h->p.quantize_int8);
	es_w_u32(w, h->dim * 4);
	es_w_u64(w, h->p.seed);
	es_w_u64(w, atomic_load(&((hnsw *)h)->add_seq));
	es_w_u32(w, n);
	es_w_u32(w, (uint32_t)ep);
	es_w_u32(w, (uint32_t)ep == HNSW_NONE ? 0 : (uint32_t)(ep >> 32));
	es_w_u32(w, 0);
	es_w_u64(w, live);
}

/* The entry point and live count a file records: pending nodes are written
 * as deleted slots (their change is not applied yet: whoever saves replays
 * it), so when one of them is the entry point the file's is the first
 * written node of the highest written level. */
static void written_ep(hnsw *h, uint32_t n, uint64_t *ep, uint64_t *live)
{
	uint64_t e = atomic_load(&h->ep);
	bool pending = false;
	uint32_t best = HNSW_NONE, bl = 0;
	*live = 0;
	for (uint32_t i = 0; i < n; i++) {
		node_hdr *nh = blk_hdr(h, node_blk(h, i));
		uint32_t fl = load_flags(nh);
		if (fl & HNSW_F_PENDING)
			pending = true;
		if (fl)
			continue;
		++*live;
		if (best == HNSW_NONE || nh->level > bl) {
			best = i;
			bl = nh->level;
		}
	}
	if (pending)
		e = best == HNSW_NONE ? HNSW_NONE : ((uint64_t)bl << 32) | best;
	*ep = e;
}

int hnsw_write(const hnsw *hc, FILE *f, es_error *err)
{
	hnsw *h = (hnsw *)hc;
	es_writer w;
	if (es_writer_init(&w, f, crc32c) != 0)
		return es_err(err, ES_ENOMEM, "hnsw: out of memory");
	uint32_t n = atomic_load(&h->n_slots);
	uint64_t ep, live;
	written_ep(h, n, &ep, &live);
	uint32_t *ord = es_malloc(((size_t)n + 1) * sizeof *ord);
	uint32_t *pos = es_malloc(((size_t)n + 1) * sizeof *pos);
	if (!ord || !pos) {
		es_free(ord);
		es_free(pos);
		es_writer_discard(&w);
		return es_err(err, ES_ENOMEM, "hnsw: out of memory");
	}
	write_order(h, n, ep, ord, pos);
	if ((uint32_t)ep != HNSW_NONE)
		ep = (ep & ~(uint64_t)UINT32_MAX) | pos[(uint32_t)ep];
	write_header(h, &w, n, ep, live);
	uint32_t ids[2 * HNSW_MAX_M];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = ord[i];
		char *b = node_blk(h, slot);
		node_hdr *nh = blk_hdr(h, b);
		uint32_t fl = load_flags(nh) ? HNSW_F_DELETED : 0;
		es_w_u32(&w, fl);
		if (fl)
			continue;
		es_w_u32(&w, nh->level);
		es_w_u64(&w, nh->label);
		es_w_bytes(&w, node_fvec(h, slot), (size_t)h->dim * 4);
		for (uint32_t l = 0; l <= nh->level; l++) {
			const uint32_t *lk = blk_links(h, b, l);
			uint32_t c = link_cnt(lk);
			if (c > level_max(l, h))
				c = level_max(l, h);
			for (uint32_t j = 0; j < c; j++)
				ids[j] = pos[link_get(lk, j)];
			es_w_u32(&w, c);
			es_w_bytes(&w, ids, (size_t)c * 4);
		}
	}
	es_free(ord);
	es_free(pos);
	es_w_u32(&w, es_writer_crc(&w));
	es_w_bytes(&w, "HNSWEND\n", 8);
	if (es_writer_finish(&w) != 0)
		return es_err(err, ES_EIO, "hnsw: write failed");
	return 0;
}

static int write_cb(void *ctx, FILE *f, es_error *err)
{
	return hnsw_write(ctx, f, err);
}

int hnsw_save(const hnsw *h, const char *path, es_error *err)
{
	return es_file_replace(path, write_cb, (void *)h, err);
}

#define CORRUPT(...)                                        \
	do {                                                \
		rc = es_err(err, ES_ECORRUPT, __VA_ARGS__); \
		goto out;                                   \
	} while (0)

#define READ(expr, n)                                            \
	do {                                                     \
		if (expr) {                                      \
			rc = es_reader_truncated(r, (n), err);   \
			goto out;                                \
		}                                                \
	} while (0)

static int check_links(const uint32_t *ids, uint32_t c, uint32_t self,
		       uint32_t n, uint32_t level, es_error *err)
{
	for (uint32_t j = 0; j < c; j++)
		if (ids[j] >= n || ids[j] == self)
			return es_err(err, ES_ECORRUPT,
				      "slot %u level %u: link %u to slot %u out of range",
				      self, level, j, ids[j]);
	return 0;
}

static int check_stored_vec(const hnsw *h, const float *f, uint32_t slot,
			    es_error *err)
{
	for (uint32_t i = 0; i < h->dim; i++)
		if (!isfinite(f[i]))
			return es_err(err, ES_ECORRUPT,
				      "slot %u: vector element %u is not finite",
				      slot, i);
	return 0;
}

/* A version 1 int8 vector [f32 scale | f32 norm2 | codes | pad] read into
 * buf (vb bytes) becomes its dequantised floats in out. */
static int v1_dequantise(const hnsw *h, const char *buf, float *out,
			 uint32_t slot, es_error *err)
{
	float sc, n2;
	memcpy(&sc, buf, 4);
	memcpy(&n2, buf + 4, 4);
	if (!isfinite(sc) || sc < 0 || !isfinite(n2) || n2 < 0)
		return es_err(err, ES_ECORRUPT,
			      "slot %u: bad quantisation scale/norm", slot);
	const int8_t *c = (const int8_t *)(buf + 8);
	for (uint32_t i = 0; i < h->dim; i++)
		out[i] = sc * (float)c[i];
	return 0;
}

/* What the header says, beyond the parameters of the new index. */
typedef struct file_hdr {
	uint32_t ver, vb, n, entry, top;
	uint64_t seq, live;
} file_hdr;

/* Magic, version (which picks the checksum r continues with) and header;
 * a new empty index with the file's parameters into *out. */
static int read_header(es_reader *r, file_hdr *fh, hnsw **out, es_error *err)
{
	int rc = 0;
	char magic[8];
	uint32_t endian, dim, metric, M, efc, quant, zero;
	uint64_t seed;
	READ(es_r_bytes(r, magic, 8), 8);
	if (memcmp(magic, HNSW_FILE_MAGIC, 8) != 0)
		CORRUPT("not an embedsrv HNSW index (bad magic)");
	READ(es_r_u32(r, &fh->ver), 4);
	READ(es_r_u32(r, &endian), 4);
	if (fh->ver < 1 || fh->ver > HNSW_FILE_VERSION) {
		rc = es_err(err, ES_EUNSUPPORTED,
			    "HNSW index version %u, this build reads versions 1-%u",
			    fh->ver, HNSW_FILE_VERSION);
		goto out;
	}
	if (endian != HNSW_FILE_ENDIAN)
		CORRUPT("bad endianness tag 0x%08x", endian);
	/* the checksum covers the file from its first byte */
	unsigned char head[16];
	memcpy(head, magic, 8);
	put_u32(head + 8, fh->ver);
	put_u32(head + 12, endian);
	r->crc_fn = fh->ver >= 3 ? crc32c : es_crc32_ieee;
	r->crc = r->crc_fn(0, head, sizeof head);
	uint32_t *u32s[] = {&dim, &metric, &M, &efc, &quant, &fh->vb};
	for (size_t i = 0; i < sizeof u32s / sizeof *u32s; i++)
		READ(es_r_u32(r, u32s[i]), 4);
	READ(es_r_u64(r, &seed), 8);
	READ(es_r_u64(r, &fh->seq), 8);
	uint32_t *u32t[] = {&fh->n, &fh->entry, &fh->top, &zero};
	for (size_t i = 0; i < sizeof u32t / sizeof *u32t; i++)
		READ(es_r_u32(r, u32t[i]), 4);
	READ(es_r_u64(r, &fh->live), 8);
	hnsw_params p;
	hnsw_params_default(&p, dim);
	p.metric = (es_metric)metric;
	p.M = M;
	p.ef_construction = efc;
	p.quantize_int8 = (int)quant;
	p.seed = seed;
	if (metric > 2)
		CORRUPT("unknown metric %u", metric);
	if (quant > 1)
		CORRUPT("bad quantisation flag %u", quant);
	es_error perr;
	if (check_params(&p, &perr) != 0)
		CORRUPT("bad parameters: %s", perr.msg);
	size_t want_vb = (size_t)dim * 4;
	if (fh->ver == 1 && quant)
		want_vb = ((size_t)dim + 8 + 3) / 4 * 4;
	if (fh->vb != want_vb)
		CORRUPT("vector size %u, expected %zu for dim %u", fh->vb, want_vb,
			dim);
	if (fh->n > HNSW_MAX_SLOTS)
		CORRUPT("slot count %u too large", fh->n);
	if (fh->live > fh->n)
		CORRUPT("live count %llu exceeds slot count %u",
			(unsigned long long)fh->live, fh->n);
	if (zero != 0)
		CORRUPT("reserved header field is not zero");
	if (fh->top > HNSW_MAX_LEVEL)
		CORRUPT("top level %u exceeds %u", fh->top, HNSW_MAX_LEVEL);
	if (fh->live == 0 ? fh->entry != HNSW_NONE : fh->entry >= fh->n)
		CORRUPT("entry point %u invalid for %u slots", fh->entry, fh->n);
	rc = hnsw_new(&p, out, err);
out:
	return rc;
}

/* Slot i becomes part of the index (deleted until read_live marks it);
 * *deleted says whether the file has it deleted. */
static int read_flags(hnsw *h, es_reader *r, uint32_t i, int *deleted, es_error *err)
{
	int rc;
	pthread_mutex_lock(&h->grow_lock);
	rc = ensure_chunk(h, i >> HNSW_CHUNK_SHIFT, err);
	if (rc) {
		es_err_prefix(err, rc, "slot %u", i);
		goto out;
	}
	atomic_store(&h->n_slots, i + 1);
	node_hdr *nh = blk_hdr(h, node_blk(h, i));
	nh->flags = HNSW_F_DELETED;
	uint32_t fl;
	READ(es_r_u32(r, &fl), 4);
	if (fl & ~HNSW_F_DELETED)
		CORRUPT("slot %u: unknown flags 0x%x", i, fl);
	*deleted = fl != 0;
	if (fl && (rc = slot_retire_locked(h, i, 0)) != 0)
		es_err(err, rc, "hnsw: out of memory");
out:
	pthread_mutex_unlock(&h->grow_lock);
	return rc;
}

/* A live slot i: level, label, vector and links.  ids holds 2 * max M
 * links; v1buf (version 1 int8 files only) holds one stored vector. */
static int read_live(hnsw *h, es_reader *r, const file_hdr *fh, uint32_t i,
		     uint32_t *ids, char *v1buf, es_error *err)
{
	int rc = 0;
	char *b = node_blk(h, i);
	node_hdr *nh = blk_hdr(h, b);
	uint32_t lvl, c;
	uint64_t label;
	READ(es_r_u32(r, &lvl), 4);
	READ(es_r_u64(r, &label), 8);
	if (lvl > HNSW_MAX_LEVEL)
		CORRUPT("slot %u: level %u exceeds %u", i, lvl, HNSW_MAX_LEVEL);
	float *fv = (float *)node_fvec(h, i);
	if (v1buf) {
		READ(es_r_bytes(r, v1buf, fh->vb), fh->vb);
		if ((rc = v1_dequantise(h, v1buf, fv, i, err)))
			goto out;
	} else {
		READ(es_r_bytes(r, fv, (size_t)h->dim * 4), (size_t)h->dim * 4);
	}
	if ((rc = check_stored_vec(h, fv, i, err)))
		goto out;
	if (h->vf)
		encode_codes(h, fv, b + h->off_vec);
	nh->level = lvl;
	nh->label = label;
	if (lvl) {
		size_t ub = (size_t)lvl * (h->M + 1) * 4;
		nh->upper = es_calloc(1, ub);
		if (!nh->upper) {
			rc = es_err(err, ES_ENOMEM, "hnsw: out of memory");
			goto out;
		}
		atomic_fetch_add(&h->upper_bytes, ub);
	}
	for (uint32_t l = 0; l <= lvl; l++) {
		READ(es_r_u32(r, &c), 4);
		if (c > level_max(l, h))
			CORRUPT("slot %u level %u: %u links, at most %u", i, l, c,
				level_max(l, h));
		READ(es_r_bytes(r, ids, (size_t)c * 4), (size_t)c * 4);
		if ((rc = check_links(ids, c, i, fh->n, l, err)))
			goto out;
		uint32_t *lk = blk_links(h, b, l);
		memcpy(lk + 1, ids, (size_t)c * 4);
		lk[0] = c;
	}
	pthread_mutex_lock(&h->map_lock);
	uint32_t dup = map_find(h, label);
	int mrc = dup == HNSW_NONE ? map_put(h, label, i) : 0;
	pthread_mutex_unlock(&h->map_lock);
	if (dup != HNSW_NONE)
		CORRUPT("slot %u: label %llu also at slot %u", i,
			(unsigned long long)label, dup);
	if (mrc) {
		rc = es_err(err, mrc, "hnsw: out of memory");
		goto out;
	}
	nh->flags = 0;
	atomic_fetch_add(&h->lvl_live[lvl], 1);
out:
	return rc;
}

/* The checksum and end marker, then the header's counts and entry point
 * against what the slots held (nlive live, highest level maxlvl). */
static int read_trailer(hnsw *h, es_reader *r, const file_hdr *fh,
			uint64_t nlive, uint32_t maxlvl, es_error *err)
{
	int rc = 0;
	uint32_t crc_calc = r->crc, crc_file;
	char end[8];
	READ(es_r_u32(r, &crc_file), 4);
	READ(es_r_bytes(r, end, 8), 8);
	if (crc_file != crc_calc)
		CORRUPT("checksum mismatch (file 0x%08x, computed 0x%08x)",
			crc_file, crc_calc);
	if (memcmp(end, "HNSWEND\n", 8) != 0)
		CORRUPT("bad end marker");
	if (nlive != fh->live)
		CORRUPT("header says %llu live points, found %llu",
			(unsigned long long)fh->live, (unsigned long long)nlive);
	if (fh->live) {
		node_hdr *eh = blk_hdr(h, node_blk(h, fh->entry));
		if (eh->flags & HNSW_F_DELETED)
			CORRUPT("entry point %u is a deleted slot", fh->entry);
		if (eh->level != fh->top || fh->top != maxlvl)
			CORRUPT("entry point level %u, header %u, highest %u",
				eh->level, fh->top, maxlvl);
		/* upper-level links may name slots of a lower level (a stale
		 * link to a recycled slot): traversal skips those */
		atomic_store(&h->ep, ((uint64_t)fh->top << 32) | fh->entry);
	}
	atomic_store(&h->live, (size_t)nlive);
out:
	return rc;
}

int hnsw_read(FILE *f, hnsw **out, es_error *err)
{
	hnsw *h = NULL;
	uint32_t *ids = NULL;
	char *v1buf = NULL;
	es_reader rd, *r = &rd;
	file_hdr fh;
	*out = NULL;
	es_reader_file(r, f, NULL);
	int rc = read_header(r, &fh, &h, err);
	if (rc)
		goto out;
	int v1q8 = fh.ver == 1 && h->p.quantize_int8;
	ids = es_malloc((size_t)(2 * HNSW_MAX_M) * 4);
	v1buf = v1q8 ? es_malloc(fh.vb) : NULL;
	if (!ids || (v1q8 && !v1buf)) {
		rc = es_err(err, ES_ENOMEM, "hnsw: out of memory");
		goto out;
	}
	atomic_store(&h->add_seq, fh.seq);
	uint64_t nlive = 0;
	uint32_t maxlvl = 0;
	for (uint32_t i = 0; i < fh.n; i++) {
		int deleted;
		if ((rc = read_flags(h, r, i, &deleted, err)))
			goto out;
		if (deleted)
			continue;
		if ((rc = read_live(h, r, &fh, i, ids, v1buf, err)))
			goto out;
		nlive++;
		uint32_t lvl = blk_hdr(h, node_blk(h, i))->level;
		if (lvl > maxlvl)
			maxlvl = lvl;
	}
	rc = read_trailer(h, r, &fh, nlive, maxlvl, err);
out:
	es_free(ids);
	es_free(v1buf);
	if (rc) {
		hnsw_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

int hnsw_load(const char *path, hnsw **out, es_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return es_err(err, ES_ENOTFOUND, "%s: cannot open: %m", path);
	int rc = hnsw_read(f, out, err);
	if (!rc) {
		int c = fgetc(f);
		if (c != EOF) {
			hnsw_free(*out);
			*out = NULL;
			rc = es_err(err, ES_ECORRUPT, "trailing bytes after the index");
		}
	}
	fclose(f);
	if (rc)
		return es_err_prefix(err, rc, "%s", path);
	return 0;
}
