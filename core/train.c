/*
 * train.c — skip-gram / CBOW with negative sampling and fastText subwords.
 * See train.h for the algorithm, the departures from fastText and the
 * threading model (Hogwild over core/threadpool).
 *
 * Data layout, chosen for the inner loop:
 *  - the corpus is one uint32 array of word ids with ES_EOL between lines;
 *  - `in` is (vocab + bucket) x dim: word rows first, then n-gram rows, as
 *    fastText's input matrix; `out` is vocab x dim;
 *  - each word's input rows (itself + its n-grams) are precomputed once in
 *    a CSR array, so no hashing happens while training;
 *  - the sigmoid and log-sigmoid are 1024-entry tables over [-8, 8] (values
 *    beyond saturate, as in word2vec and fastText);
 *  - negatives come from a unigram^0.75 table sized to the vocabulary (at
 *    most 2^24 entries), so it stays cache-resident for small vocabularies;
 *  - the output rows of a prediction's targets are prefetched before use.
 * Per-thread scratch is allocated once per worker, never in the loop.
 */
#include "train.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "encode.h"
#include "model.h"
#include "simd.h"
#include "threadpool.h"
#include "tokenize.h"

#define ES_EOL UINT32_MAX
#define SIG_SIZE 1024
#define SIG_MAX 8.0f
#define PROGRESS_EVERY 10000 /* tokens between shared-counter updates */
#define MAX_VOCAB (1u << 30)

struct es_trained {
	es_train_params p;
	size_t nwords;
	char **words;      /* NUL-terminated, owned (one arena) */
	char *arena;
	uint64_t *counts;
	float *vectors;    /* nwords x dim */
	float *buckets;    /* bucket x dim or NULL */
	uint64_t ntokens;  /* in-vocabulary tokens */
	uint64_t ntokens_all;
	double loss_first, loss_last;
	double seconds;
	double wps_thread;
	/* lookup: open addressing over word ids */
	uint32_t *slots;
	size_t nslots;
};

/* ---------- small helpers ---------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: seeds; xorshift-style generator per thread. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

typedef struct rng {
	uint64_t s[2];
} rng;

static void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
	r->s[0] = splitmix64(&x);
	r->s[1] = splitmix64(&x);
	if (!r->s[0] && !r->s[1])
		r->s[0] = 1;
}

/* xoroshiro128+ */
static inline uint64_t rng_next(rng *r)
{
	uint64_t s0 = r->s[0], s1 = r->s[1];
	uint64_t res = s0 + s1;
	s1 ^= s0;
	r->s[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
	r->s[1] = (s1 << 37) | (s1 >> 27);
	return res;
}

static inline uint32_t rng_u32(rng *r)
{
	return (uint32_t)(rng_next(r) >> 32);
}

/* uniform in [0, 1) */
static inline float rng_unif(rng *r)
{
	return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* ---------- fastText subwords ---------- */

size_t es_train_ngrams(const es_train_params *p, const char *word, size_t len,
		       uint32_t *ids, size_t cap)
{
	if (!p->subwords || p->maxn == 0 || p->bucket == 0 || p->maxn < p->minn)
		return 0;
	char w[ES_TOKEN_MAX + 3];
	if (len > ES_TOKEN_MAX)
		len = ES_TOKEN_MAX;
	w[0] = '<';
	memcpy(w + 1, word, len);
	w[len + 1] = '>';
	size_t n = len + 2, total = 0;
	for (size_t i = 0; i < n; i++) {
		if (((unsigned char)w[i] & 0xC0) == 0x80)
			continue;
		size_t j = i;
		for (uint32_t k = 1; j < n && k <= p->maxn; k++) {
			j++;
			while (j < n && ((unsigned char)w[j] & 0xC0) == 0x80)
				j++;
			if (k >= p->minn && !(k == 1 && (i == 0 || j == n))) {
				if (total < cap)
					ids[total] = es_fasttext_hash(w + i, j - i) % p->bucket;
				total++;
			}
		}
	}
	return total;
}

/* ---------- parameters ---------- */

void es_train_params_default(es_train_params *p)
{
	memset(p, 0, sizeof *p);
	p->mode = ES_TRAIN_SKIPGRAM;
	p->dim = 100;
	p->epochs = 5;
	p->window = 5;
	p->neg = 5;
	p->min_count = 5;
	p->subwords = 1;
	p->minn = 3;
	p->maxn = 6;
	p->bucket = 2000000;
	p->lr = 0.05f;
	p->sample = 1e-4f;
	p->ns_exponent = 0.75f;
	p->threads = 0;
	p->seed = 1;
	p->center = 1;
	p->drop_pcs = 1;
}

int es_train_params_check(const es_train_params *p, es_error *err)
{
	if (p->mode != ES_TRAIN_SKIPGRAM && p->mode != ES_TRAIN_CBOW)
		return es_err(err, ES_EINVAL, "--mode must be skipgram or cbow");
	if (p->dim < 1 || p->dim > 4096)
		return es_err(err, ES_EINVAL, "--dim %u out of range 1..4096", p->dim);
	if (p->epochs < 1 || p->epochs > 1000)
		return es_err(err, ES_EINVAL, "--epochs %u out of range 1..1000", p->epochs);
	if (p->window < 1 || p->window > 100)
		return es_err(err, ES_EINVAL, "--window %u out of range 1..100", p->window);
	if (p->neg < 1 || p->neg > 100)
		return es_err(err, ES_EINVAL, "--neg %u out of range 1..100", p->neg);
	if (p->min_count < 1)
		return es_err(err, ES_EINVAL, "--min-count must be >= 1");
	if (!(p->lr > 0.0f && p->lr <= 10.0f))
		return es_err(err, ES_EINVAL, "--lr must be in (0, 10]");
	if (!(p->sample >= 0.0f && p->sample < 1.0f))
		return es_err(err, ES_EINVAL, "--sample must be in [0, 1)");
	if (!(p->ns_exponent >= -1.0f && p->ns_exponent <= 1.0f))
		return es_err(err, ES_EINVAL, "--ns-exponent must be in [-1, 1]");
	if (p->drop_pcs > 16)
		return es_err(err, ES_EINVAL, "--drop-pcs %u out of range 0..16", p->drop_pcs);
	if (p->drop_pcs && !p->center)
		return es_err(err, ES_EINVAL, "--drop-pcs needs centring (drop --no-center or use --drop-pcs 0)");
	if (p->threads > 1024)
		return es_err(err, ES_EINVAL, "--threads %u is too many", p->threads);
	if (p->subwords) {
		if (p->minn < 1 || p->maxn < p->minn || p->maxn > 32)
			return es_err(err, ES_EINVAL,
				      "need 1 <= --minn <= --maxn <= 32 (got %u, %u); use --no-subwords for none",
				      p->minn, p->maxn);
		if (p->bucket < 1 || p->bucket > 100000000)
			return es_err(err, ES_EINVAL, "--bucket %u out of range 1..100000000", p->bucket);
		if ((uint64_t)p->bucket * p->dim * sizeof(float) > ((uint64_t)1 << 36))
			return es_err(err, ES_EINVAL, "--bucket %u x --dim %u needs more than 64 GiB",
				      p->bucket, p->dim);
	}
	return 0;
}

/* ---------- vocabulary counting ---------- */

typedef struct count_entry {
	uint32_t off;  /* into arena */
	uint32_t len;
	uint32_t hash;
	uint64_t count;
} count_entry;

typedef struct counter {
	count_entry *e;
	size_t n, cap;
	uint32_t *slots; /* index+1, 0 = empty */
	size_t nslots;
	char *arena;
	size_t alen, acap;
} counter;

static uint32_t str_hash(const char *s, size_t len)
{
	return es_fasttext_hash(s, len) * 0x9E3779B1u; /* spread low bits */
}

static int counter_grow_slots(counter *c)
{
	size_t ns = c->nslots ? c->nslots * 2 : 1 << 16;
	uint32_t *sl = calloc(ns, sizeof *sl);
	if (!sl)
		return ES_ENOMEM;
	for (size_t i = 0; i < c->n; i++) {
		size_t h = c->e[i].hash & (ns - 1);
		while (sl[h])
			h = (h + 1) & (ns - 1);
		sl[h] = (uint32_t)i + 1;
	}
	free(c->slots);
	c->slots = sl;
	c->nslots = ns;
	return 0;
}

/* Returns the entry index, or -1 on allocation failure. */
static long counter_add(counter *c, const char *w, size_t len)
{
	if ((c->n + 1) * 2 > c->nslots && counter_grow_slots(c))
		return -1;
	uint32_t hv = str_hash(w, len);
	size_t h = hv & (c->nslots - 1);
	while (c->slots[h]) {
		count_entry *e = &c->e[c->slots[h] - 1];
		if (e->hash == hv && e->len == len &&
		    memcmp(c->arena + e->off, w, len) == 0) {
			e->count++;
			return (long)(c->slots[h] - 1);
		}
		h = (h + 1) & (c->nslots - 1);
	}
	if (c->n >= MAX_VOCAB)
		return -1;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 1 << 14;
		count_entry *ne = realloc(c->e, nc * sizeof *ne);
		if (!ne)
			return -1;
		c->e = ne;
		c->cap = nc;
	}
	if (c->alen + len + 1 > c->acap) {
		size_t nc = c->acap ? c->acap * 2 : 1 << 20;
		while (nc < c->alen + len + 1)
			nc *= 2;
		if (nc > UINT32_MAX)
			return -1;
		char *na = realloc(c->arena, nc);
		if (!na)
			return -1;
		c->arena = na;
		c->acap = nc;
	}
	memcpy(c->arena + c->alen, w, len);
	c->arena[c->alen + len] = 0;
	count_entry *e = &c->e[c->n];
	e->off = (uint32_t)c->alen;
	e->len = (uint32_t)len;
	e->hash = hv;
	e->count = 1;
	c->alen += len + 1;
	c->slots[h] = (uint32_t)c->n + 1;
	return (long)c->n++;
}

static void counter_free(counter *c)
{
	free(c->e);
	free(c->slots);
	free(c->arena);
}

/* ---------- trained model lookups ---------- */

void es_trained_free(es_trained *t)
{
	if (!t)
		return;
	free(t->words);
	free(t->arena);
	free(t->counts);
	free(t->vectors);
	free(t->buckets);
	free(t->slots);
	free(t);
}

size_t es_trained_vocab_size(const es_trained *t) { return t->nwords; }
const char *es_trained_word(const es_trained *t, size_t id) { return t->words[id]; }
uint64_t es_trained_count(const es_trained *t, size_t id) { return t->counts[id]; }
uint64_t es_trained_tokens(const es_trained *t) { return t->ntokens; }
uint64_t es_trained_tokens_total(const es_trained *t) { return t->ntokens_all; }
const float *es_trained_vectors(const es_trained *t) { return t->vectors; }
double es_trained_seconds(const es_trained *t) { return t->seconds; }
double es_trained_words_per_sec_thread(const es_trained *t) { return t->wps_thread; }

const float *es_trained_buckets(const es_trained *t, uint32_t *bucket)
{
	if (bucket)
		*bucket = t->buckets ? t->p.bucket : 0;
	return t->buckets;
}

void es_trained_loss(const es_trained *t, double *first, double *last)
{
	if (first)
		*first = t->loss_first;
	if (last)
		*last = t->loss_last;
}

long es_trained_find(const es_trained *t, const char *word)
{
	size_t len = strlen(word);
	size_t h = str_hash(word, len) & (t->nslots - 1);
	while (t->slots[h]) {
		uint32_t id = t->slots[h] - 1;
		if (strcmp(t->words[id], word) == 0)
			return (long)id;
		h = (h + 1) & (t->nslots - 1);
	}
	return -1;
}

/* ---------- training state ---------- */

typedef void (*update_pair_fn)(float *restrict grad, float *restrict o,
			       const float *restrict h, float g, size_t n);

typedef struct trainer {
	es_train_params p;
	uint32_t dim;
	size_t nwords;
	const uint32_t *corpus; /* ids and ES_EOL */
	size_t clen;
	uint64_t ntokens;       /* in-vocab tokens in corpus */
	float *in;              /* (nwords + bucket) x dim */
	float *out;             /* nwords x dim */
	uint32_t *rows_off;     /* nwords + 1 */
	uint32_t *rows;         /* input rows of each word */
	uint32_t max_rows;
	uint32_t *keep;         /* keep if rng_u32 < keep[w] */
	uint32_t *negtab;
	size_t negsize;
	float sig[SIG_SIZE + 1];
	float nls[SIG_SIZE + 1]; /* -log(sigmoid(x)) */
	size_t *bounds;         /* threads + 1 slice starts in corpus */
	unsigned nthreads;
	const simd_kernels *k;
	update_pair_fn update_pair;

	/* shared progress (atomics) */
	uint64_t done_tokens;
	int cancel;
	int failed;
	double t0;

	es_train_progress_fn progress;
	void *pctx;
	/* loss bookkeeping (worker 0 only) */
	uint64_t *tloss;        /* per slice running loss sum (double bits) */
	uint64_t *tcount;       /* per thread predictions */
	double first_sum, last_sum;
	double rep_sum, rep_loss; /* reporter's last totals (worker 0 only) */
	uint64_t rep_n;
	uint64_t first_n, last_n;
} trainer;

static void tables_init(trainer *tr)
{
	for (int i = 0; i <= SIG_SIZE; i++) {
		double x = ((double)i * 2.0 / SIG_SIZE - 1.0) * SIG_MAX;
		double s = 1.0 / (1.0 + exp(-x));
		tr->sig[i] = (float)s;
		tr->nls[i] = (float)(-log(s > 1e-12 ? s : 1e-12));
	}
}

static inline int sig_index(float x)
{
	if (x <= -SIG_MAX)
		return 0;
	if (x >= SIG_MAX)
		return SIG_SIZE;
	return (int)((x + SIG_MAX) * (SIG_SIZE / SIG_MAX / 2.0f) + 0.5f);
}

/* grad += g * o; o += g * h — the two updates of one prediction fused into
 * one pass over o.  A plain loop that the compiler vectorises, built twice
 * (AVX2 and baseline) and picked once per training run by the CPU's
 * features.  Not target_clones: its ifunc resolver runs before the
 * sanitizer runtimes are up and crashes ThreadSanitizer builds at start. */
#define UPDATE_PAIR_BODY                                                       \
	for (size_t i = 0; i < n; i++) {                                       \
		float oi = o[i];                                               \
		grad[i] += g * oi;                                             \
		o[i] = oi + g * h[i];                                          \
	}

static void update_pair_base(float *restrict grad, float *restrict o,
			     const float *restrict h, float g, size_t n)
{
	UPDATE_PAIR_BODY
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2")))
static void update_pair_avx2(float *restrict grad, float *restrict o,
			     const float *restrict h, float g, size_t n)
{
	UPDATE_PAIR_BODY
}
#endif

static update_pair_fn update_pair_pick(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return update_pair_avx2;
#endif
	return update_pair_base;
}

/* One logistic prediction: h against out row `target` with `label`.
 * Accumulates into grad, updates the out row, returns the loss. */
static inline float predict(const trainer *tr, const float *h, float *grad,
			    uint32_t target, float label, float lr)
{
	float *o = tr->out + (size_t)target * tr->dim;
	float f = tr->k->dot(h, o, tr->dim);
	int i = sig_index(f);
	float g = (label - tr->sig[i]) * lr;
	tr->update_pair(grad, o, h, g, tr->dim);
	return label > 0.5f ? tr->nls[i] : tr->nls[SIG_SIZE - i];
}

typedef struct worker_scratch {
	float *h, *grad, *acc;
	uint32_t *sen;
	uint32_t *ctxrows;
	uint32_t *targets;
} worker_scratch;

static float negatives_and_update(const trainer *tr, rng *r, const float *h,
				  float *grad, uint32_t target, float lr,
				  uint32_t *targets)
{
	uint32_t n = tr->p.neg;
	targets[0] = target;
	for (uint32_t d = 1; d <= n; d++) {
		uint32_t t;
		do {
			t = tr->negtab[rng_next(r) % tr->negsize];
		} while (t == target && tr->nwords > 1);
		targets[d] = t;
		__builtin_prefetch(tr->out + (size_t)t * tr->dim);
	}
	float loss = 0.0f;
	for (uint32_t d = 0; d <= n; d++)
		loss += predict(tr, h, grad, targets[d], d == 0 ? 1.0f : 0.0f, lr);
	return loss;
}

/* Fill h with the mean of word w's input rows. */
static inline void input_mean(const trainer *tr, uint32_t w, float *h)
{
	uint32_t b = tr->rows_off[w], e = tr->rows_off[w + 1];
	size_t dim = tr->dim;
	memcpy(h, tr->in + (size_t)tr->rows[b] * dim, dim * sizeof(float));
	for (uint32_t j = b + 1; j < e; j++)
		tr->k->axpy(1.0f, tr->in + (size_t)tr->rows[j] * dim, h, dim);
	if (e - b > 1)
		tr->k->scale(h, 1.0f / (float)(e - b), dim);
}

static float train_skipgram_sentence(const trainer *tr, rng *r,
				     const uint32_t *sen, size_t n, float lr,
				     worker_scratch *s, uint64_t *npred)
{
	size_t dim = tr->dim;
	float loss = 0.0f;
	for (size_t pos = 0; pos < n; pos++) {
		uint32_t w = sen[pos];
		uint32_t b = 1 + rng_u32(r) % tr->p.window;
		size_t lo = pos > b ? pos - b : 0;
		size_t hi = pos + b < n - 1 ? pos + b : n - 1;
		if (lo == hi)
			continue;
		input_mean(tr, w, s->h);
		memset(s->acc, 0, dim * sizeof(float));
		for (size_t c = lo; c <= hi; c++) {
			if (c == pos)
				continue;
			memset(s->grad, 0, dim * sizeof(float));
			loss += negatives_and_update(tr, r, s->h, s->grad,
						     sen[c], lr, s->targets);
			(*npred)++;
			/* every input row moves by grad, so their mean does */
			tr->k->axpy(1.0f, s->grad, s->h, dim);
			tr->k->axpy(1.0f, s->grad, s->acc, dim);
		}
		uint32_t rb = tr->rows_off[w], re = tr->rows_off[w + 1];
		for (uint32_t j = rb; j < re; j++)
			tr->k->axpy(1.0f, s->acc, tr->in + (size_t)tr->rows[j] * dim, dim);
	}
	return loss;
}

static float train_cbow_sentence(const trainer *tr, rng *r, const uint32_t *sen,
				 size_t n, float lr, worker_scratch *s,
				 uint64_t *npred)
{
	size_t dim = tr->dim;
	float loss = 0.0f;
	for (size_t pos = 0; pos < n; pos++) {
		uint32_t b = 1 + rng_u32(r) % tr->p.window;
		size_t lo = pos > b ? pos - b : 0;
		size_t hi = pos + b < n - 1 ? pos + b : n - 1;
		size_t nr = 0;
		for (size_t c = lo; c <= hi; c++) {
			if (c == pos)
				continue;
			uint32_t w = sen[c];
			for (uint32_t j = tr->rows_off[w]; j < tr->rows_off[w + 1]; j++)
				s->ctxrows[nr++] = tr->rows[j];
		}
		if (!nr)
			continue;
		memcpy(s->h, tr->in + (size_t)s->ctxrows[0] * dim, dim * sizeof(float));
		for (size_t j = 1; j < nr; j++)
			tr->k->axpy(1.0f, tr->in + (size_t)s->ctxrows[j] * dim, s->h, dim);
		tr->k->scale(s->h, 1.0f / (float)nr, dim);
		memset(s->grad, 0, dim * sizeof(float));
		loss += negatives_and_update(tr, r, s->h, s->grad, sen[pos], lr,
					     s->targets);
		(*npred)++;
		/* fastText's CBOW adds the whole gradient to every context row */
		for (size_t j = 0; j < nr; j++)
			tr->k->axpy(1.0f, s->grad, tr->in + (size_t)s->ctxrows[j] * dim, dim);
	}
	return loss;
}

/* Per-thread loss sums are published as the bits of a double so the
 * reporting thread reads them without a data race. */
static void store_double(uint64_t *dst, double v)
{
	uint64_t b;
	memcpy(&b, &v, sizeof b);
	__atomic_store_n(dst, b, __ATOMIC_RELAXED);
}

static double load_double(const uint64_t *src)
{
	uint64_t b = __atomic_load_n(src, __ATOMIC_RELAXED);
	double v;
	memcpy(&v, &b, sizeof v);
	return v;
}

static void report(trainer *tr, double *last_report, int done)
{
	double t = now_s();
	if (!done && t - *last_report < 0.1)
		return;
	*last_report = t;
	uint64_t dt = __atomic_load_n(&tr->done_tokens, __ATOMIC_RELAXED);
	uint64_t total = tr->ntokens * tr->p.epochs;
	es_train_progress pr;
	memset(&pr, 0, sizeof pr);
	pr.fraction = total ? (double)dt / (double)total : 1.0;
	if (pr.fraction > 1.0)
		pr.fraction = 1.0;
	pr.elapsed_s = t - tr->t0;
	pr.words = dt;
	pr.words_per_sec_thread = pr.elapsed_s > 0 ?
		(double)dt / pr.elapsed_s / tr->nthreads : 0.0;
	pr.eta_s = pr.fraction > 0 ? pr.elapsed_s * (1.0 - pr.fraction) / pr.fraction : 0;
	pr.lr = tr->p.lr * (float)(1.0 - pr.fraction);
	double ls = 0;
	uint64_t ln = 0;
	for (unsigned i = 0; i < tr->nthreads; i++) {
		ls += load_double(&tr->tloss[i]);
		ln += __atomic_load_n(&tr->tcount[i], __ATOMIC_RELAXED);
	}
	/* loss since the previous report */
	pr.loss = ln > tr->rep_n ? (ls - tr->rep_sum) / (double)(ln - tr->rep_n) : 0.0;
	if (ln > tr->rep_n) {
		tr->rep_sum = ls;
		tr->rep_n = ln;
		tr->rep_loss = pr.loss;
	} else {
		pr.loss = tr->rep_loss;
	}
	pr.done = done;
	if (tr->progress && tr->progress(tr->pctx, &pr))
		__atomic_store_n(&tr->cancel, 1, __ATOMIC_RELAXED);
}

static void worker(void *ctx, size_t begin, size_t end, unsigned wid)
{
	trainer *tr = ctx;
	size_t dim = tr->dim;
	worker_scratch s;
	memset(&s, 0, sizeof s);
	s.h = aligned_alloc(64, ((dim * sizeof(float) + 63) / 64) * 64);
	s.grad = aligned_alloc(64, ((dim * sizeof(float) + 63) / 64) * 64);
	s.acc = aligned_alloc(64, ((dim * sizeof(float) + 63) / 64) * 64);
	s.sen = malloc(ES_TRAIN_MAX_LINE * sizeof *s.sen);
	s.ctxrows = malloc((size_t)2 * tr->p.window * tr->max_rows * sizeof *s.ctxrows);
	s.targets = malloc((tr->p.neg + 1) * sizeof *s.targets);
	if (!s.h || !s.grad || !s.acc || !s.sen || !s.ctxrows || !s.targets) {
		__atomic_store_n(&tr->failed, 1, __ATOMIC_RELAXED);
		goto out;
	}
	double last_report = now_s();
	uint64_t total = tr->ntokens * tr->p.epochs;
	for (size_t slice = begin; slice < end; slice++) {
		rng r;
		rng_seed(&r, tr->p.seed, slice);
		const uint32_t *c = tr->corpus + tr->bounds[slice];
		const uint32_t *cend = tr->corpus + tr->bounds[slice + 1];
		double lsum = 0;
		uint64_t pending = 0, npred = 0, ldone = 0;
		double ltotal = 1.0;
		for (const uint32_t *q = c; q < cend; q++)
			ltotal += *q != ES_EOL;
		ltotal *= tr->p.epochs;
		for (uint32_t ep = 0; ep < tr->p.epochs; ep++) {
			const uint32_t *q = c;
			while (q < cend) {
				if (__atomic_load_n(&tr->cancel, __ATOMIC_RELAXED) ||
				    __atomic_load_n(&tr->failed, __ATOMIC_RELAXED))
					goto out;
				/* one line (or ES_TRAIN_MAX_LINE tokens of it) */
				size_t n = 0, seen = 0;
				while (q < cend && *q != ES_EOL && seen < ES_TRAIN_MAX_LINE) {
					uint32_t w = *q++;
					seen++;
					if (rng_u32(&r) < tr->keep[w])
						s.sen[n++] = w;
				}
				if (q < cend && *q == ES_EOL)
					q++;
				uint64_t dt = __atomic_load_n(&tr->done_tokens, __ATOMIC_RELAXED);
				double frac = total ? (double)dt / (double)total : 1.0;
				float lr = tr->p.lr * (float)(frac < 1.0 ? 1.0 - frac : 0.0);
				if (lr < tr->p.lr * 1e-4f)
					lr = tr->p.lr * 1e-4f;
				uint64_t np0 = npred;
				float l;
				if (n >= 2) {
					if (tr->p.mode == ES_TRAIN_CBOW)
						l = train_cbow_sentence(tr, &r, s.sen, n, lr, &s, &npred);
					else
						l = train_skipgram_sentence(tr, &r, s.sen, n, lr, &s, &npred);
					lsum += l;
				} else {
					l = 0;
				}
				pending += seen;
				if (pending >= PROGRESS_EVERY || q >= cend) {
					uint64_t before = __atomic_fetch_add(&tr->done_tokens, pending,
									     __ATOMIC_RELAXED);
					pending = 0;
					store_double(&tr->tloss[slice], lsum);
					__atomic_store_n(&tr->tcount[slice], npred, __ATOMIC_RELAXED);
					(void)before;
				}
				ldone += seen;
				if (npred > np0 && slice == 0) {
					/* loss at the start and end of slice 0's own work */
					double f = (double)ldone / ltotal;
					if (f < 0.05) {
						tr->first_sum += l;
						tr->first_n += npred - np0;
					} else if (f >= 0.95) {
						tr->last_sum += l;
						tr->last_n += npred - np0;
					}
				}
				if (wid == 0)
					report(tr, &last_report, 0);
			}
		}
		store_double(&tr->tloss[slice], lsum);
		__atomic_store_n(&tr->tcount[slice], npred, __ATOMIC_RELAXED);
	}
out:
	free(s.h);
	free(s.grad);
	free(s.acc);
	free(s.sen);
	free(s.ctxrows);
	free(s.targets);
}

/* ---------- post-processing: all-but-the-top ---------- */

/* v -> P (v - mu) for rows x dim floats, P removing the k directions u. */
static void abtt_apply(float *rows, size_t nrows, size_t dim, const double *mu,
		       const double *u, uint32_t k)
{
	for (size_t r = 0; r < nrows; r++) {
		float *v = rows + r * dim;
		for (size_t j = 0; j < dim; j++)
			v[j] = (float)((double)v[j] - mu[j]);
		for (uint32_t c = 0; c < k; c++) {
			const double *uc = u + (size_t)c * dim;
			double dot = 0;
			for (size_t j = 0; j < dim; j++)
				dot += (double)v[j] * uc[j];
			for (size_t j = 0; j < dim; j++)
				v[j] = (float)((double)v[j] - dot * uc[j]);
		}
	}
}

/* Subtract the mean word vector and project out the top p->drop_pcs
 * principal directions, from the word vectors and every n-gram row. */
static int abtt(es_trained *t, const es_train_params *p, es_error *err)
{
	if (!p->center)
		return 0;
	size_t d = p->dim, nw = t->nwords;
	/* at most dim - 1 directions (dim 1: centring only) */
	uint32_t k = p->drop_pcs < d ? p->drop_pcs : (uint32_t)(d - 1);
	double *mu = calloc(d, sizeof *mu);
	double *cov = calloc(d * d, sizeof *cov);
	double *u = calloc((size_t)(k + 1) * d, sizeof *u);
	double *tmp = calloc(d, sizeof *tmp);
	double *x = calloc(d, sizeof *x);
	if (!mu || !cov || !u || !tmp || !x) {
		free(mu); free(cov); free(u); free(tmp); free(x);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nw; i++)
		for (size_t j = 0; j < d; j++)
			mu[j] += t->vectors[i * d + j];
	for (size_t j = 0; j < d; j++)
		mu[j] /= (double)nw;
	if (k) {
		for (size_t i = 0; i < nw; i++) {
			for (size_t j = 0; j < d; j++)
				x[j] = t->vectors[i * d + j] - mu[j];
			for (size_t a = 0; a < d; a++)
				for (size_t b = a; b < d; b++)
					cov[a * d + b] += x[a] * x[b];
		}
		for (size_t a = 0; a < d; a++)
			for (size_t b = 0; b < a; b++)
				cov[a * d + b] = cov[b * d + a];
		uint64_t st = 0x5EED5EEDull; /* fixed start: deterministic */
		for (uint32_t c = 0; c < k; c++) {
			double *uc = u + (size_t)c * d;
			for (size_t j = 0; j < d; j++)
				uc[j] = (double)(splitmix64(&st) >> 11) * 0x1p-53 - 0.5;
			es_power_iteration(cov, (uint32_t)d, uc, tmp);
			double l = 0; /* uc is the eigenvector times its eigenvalue */
			for (size_t j = 0; j < d; j++)
				l += uc[j] * uc[j];
			l = sqrt(l);
			if (l == 0) { /* nothing left to remove */
				k = c;
				break;
			}
			for (size_t j = 0; j < d; j++)
				uc[j] /= l;
			for (size_t a = 0; a < d; a++) /* deflate */
				for (size_t b = 0; b < d; b++)
					cov[a * d + b] -= l * uc[a] * uc[b];
		}
	}
	abtt_apply(t->vectors, nw, d, mu, u, k);
	if (t->buckets)
		abtt_apply(t->buckets, p->bucket, d, mu, u, k);
	free(mu); free(cov); free(u); free(tmp); free(x);
	return 0;
}

/* ---------- setup ---------- */

static int cmp_entry(const void *a, const void *b, void *arena)
{
	const count_entry *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp((const char *)arena + x->off, (const char *)arena + y->off);
}

/* Next line [*pos, eol) of text; returns 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, size_t *b,
		     size_t *e)
{
	if (*pos >= len)
		return 0;
	*b = *pos;
	const char *nl = memchr(text + *pos, '\n', len - *pos);
	*e = nl ? (size_t)(nl - text) : len;
	*pos = *e + 1;
	return 1;
}

/* es_train_text, step by step.  Each step returns 0 or an ES_E* code with
 * err filled; whatever it allocated into tr / t is freed by the caller's
 * cleanup (train_free). */

/* Pass 1: count every token; *ntok tokens on *nlines lines with a word. */
static int count_words(const char *text, size_t len, counter *cnt, size_t *ntok,
		       size_t *nlines, es_error *err)
{
	size_t pos = 0, lb, le;
	char buf[ES_TOKEN_MAX + 1];
	*ntok = *nlines = 0;
	while (next_line(text, len, &pos, &lb, &le)) {
		es_tokenizer tk;
		es_tokenizer_init(&tk, text + lb, le - lb);
		size_t n;
		int any = 0;
		while ((n = es_tokenizer_next(&tk, buf, NULL, NULL)) > 0) {
			if (counter_add(cnt, buf, n) < 0)
				return es_err(err, ES_ENOMEM, "out of memory counting words");
			(*ntok)++;
			any = 1;
		}
		*nlines += any;
	}
	if (*ntok == 0)
		return es_err(err, ES_EINVAL, "input has no words");
	return 0;
}

/* The vocabulary of t from the sorted counter entries (the first nw pass
 * min_count), and remap: counter index -> vocabulary id (ES_EOL: dropped). */
static int fill_vocab(es_trained *t, const counter *cnt, const count_entry *sorted,
		      size_t nw, uint32_t *remap, es_error *err)
{
	t->nwords = nw;
	size_t alen = 0;
	for (size_t i = 0; i < nw; i++)
		alen += sorted[i].len + 1;
	t->arena = malloc(alen);
	t->words = malloc(nw * sizeof *t->words);
	t->counts = malloc(nw * sizeof *t->counts);
	t->nslots = 16;
	while (t->nslots < nw * 2)
		t->nslots *= 2;
	t->slots = calloc(t->nslots, sizeof *t->slots);
	if (!t->arena || !t->words || !t->counts || !t->slots)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (size_t i = 0; i < cnt->n; i++)
		remap[i] = ES_EOL;
	/* map counter index -> vocab id: find each sorted entry's index by
	 * its arena offset (offsets are unique, increasing with index) */
	size_t off = 0;
	for (size_t i = 0; i < nw; i++) {
		const count_entry *e = &sorted[i];
		memcpy(t->arena + off, cnt->arena + e->off, e->len + 1);
		t->words[i] = t->arena + off;
		t->counts[i] = e->count;
		t->ntokens += e->count;
		off += e->len + 1;
		size_t h = e->hash & (t->nslots - 1);
		while (t->slots[h])
			h = (h + 1) & (t->nslots - 1);
		t->slots[h] = (uint32_t)i + 1;
	}
	/* binary search over cnt->e by offset */
	for (size_t i = 0; i < nw; i++) {
		size_t lo = 0, hi = cnt->n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (cnt->e[mid].off < sorted[i].off)
				lo = mid + 1;
			else
				hi = mid;
		}
		remap[lo] = (uint32_t)i;
	}
	return 0;
}

/* Vocabulary: count >= min_count, by count desc then bytes, into a new *tp;
 * *remap as fill_vocab's. */
static int build_vocab(trainer *tr, const counter *cnt, size_t ntok,
		       es_trained **tp, uint32_t **remap, es_error *err)
{
	int rc = 0;
	*remap = malloc(cnt->n * sizeof **remap);
	count_entry *sorted = malloc(cnt->n * sizeof *sorted);
	if (!*remap || !sorted) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(sorted, cnt->e, cnt->n * sizeof *sorted);
	qsort_r(sorted, cnt->n, sizeof *sorted, cmp_entry, cnt->arena);
	size_t nw = 0;
	while (nw < cnt->n && sorted[nw].count >= tr->p.min_count)
		nw++;
	if (nw == 0) {
		rc = es_err(err, ES_EINVAL,
			    "no word occurs --min-count %u times (%zu distinct words, %zu tokens); lower --min-count or give more text",
			    tr->p.min_count, cnt->n, ntok);
		goto out;
	}
	*tp = calloc(1, sizeof **tp);
	if (!*tp) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	rc = fill_vocab(*tp, cnt, sorted, nw, *remap, err);
	(*tp)->ntokens_all = ntok;
	tr->nwords = nw;
	tr->ntokens = (*tp)->ntokens;
out:
	free(sorted);
	return rc;
}

/* Pass 2: the corpus as vocabulary ids, ES_EOL after each line. */
static int corpus_ids(trainer *tr, const char *text, size_t len, counter *cnt,
		      const uint32_t *remap, size_t ntokens, size_t nlines,
		      uint32_t **corpus, es_error *err)
{
	size_t clen_max = ntokens + nlines + 1;
	*corpus = malloc(clen_max * sizeof **corpus);
	if (!*corpus)
		return es_err(err, ES_ENOMEM, "out of memory for %zu tokens", clen_max);
	uint32_t *c = *corpus;
	size_t cl = 0, pos = 0, lb, le;
	char buf[ES_TOKEN_MAX + 1];
	while (next_line(text, len, &pos, &lb, &le)) {
		es_tokenizer tk;
		es_tokenizer_init(&tk, text + lb, le - lb);
		size_t n, start = cl;
		while ((n = es_tokenizer_next(&tk, buf, NULL, NULL)) > 0) {
			long ci = counter_add(cnt, buf, n); /* finds; never inserts */
			cnt->e[ci].count--;
			uint32_t id = remap[ci];
			if (id != ES_EOL)
				c[cl++] = id;
		}
		if (cl > start)
			c[cl++] = ES_EOL;
	}
	tr->corpus = c;
	tr->clen = cl;
	return 0;
}

/* Input rows per word: itself, then its n-grams. */
static int input_rows(trainer *tr, const es_trained *t, es_error *err)
{
	size_t nw = t->nwords;
	tr->rows_off = malloc((nw + 1) * sizeof *tr->rows_off);
	size_t nrows = 0;
	for (size_t i = 0; i < nw; i++)
		nrows += 1 + es_train_ngrams(&tr->p, t->words[i],
					     strlen(t->words[i]), NULL, 0);
	if (nrows > UINT32_MAX)
		return es_err(err, ES_ERANGE, "vocabulary too large");
	tr->rows = malloc(nrows * sizeof *tr->rows);
	if (!tr->rows_off || !tr->rows)
		return es_err(err, ES_ENOMEM, "out of memory");
	size_t at = 0;
	for (size_t i = 0; i < nw; i++) {
		tr->rows_off[i] = (uint32_t)at;
		tr->rows[at++] = (uint32_t)i;
		size_t k = es_train_ngrams(&tr->p, t->words[i], strlen(t->words[i]),
					   tr->rows + at, nrows - at);
		for (size_t j = 0; j < k; j++)
			tr->rows[at + j] += (uint32_t)nw;
		at += k;
		uint32_t nr = (uint32_t)(at - tr->rows_off[i]);
		if (nr > tr->max_rows)
			tr->max_rows = nr;
	}
	tr->rows_off[nw] = (uint32_t)at;
	return 0;
}

/* Matrices: input uniform(-1/dim, 1/dim) as fastText, output zero. */
static int init_matrices(trainer *tr, es_error *err)
{
	size_t nw = tr->nwords;
	size_t nin = (nw + tr->p.bucket) * (size_t)tr->dim;
	tr->in = malloc(nin * sizeof(float));
	tr->out = calloc((size_t)nw * tr->dim, sizeof(float));
	if (!tr->in || !tr->out)
		return es_err(err, ES_ENOMEM, "out of memory for %zu x %u matrices",
			      nw + tr->p.bucket, tr->dim);
	rng r;
	rng_seed(&r, tr->p.seed, 0xC0FFEEull);
	float a = 1.0f / (float)tr->dim;
	for (size_t i = 0; i < nin; i++)
		tr->in[i] = (rng_unif(&r) * 2.0f - 1.0f) * a;
	return 0;
}

/* Subsampling thresholds and the negative table (unigram^ns_exponent). */
static int sampling_tables(trainer *tr, const es_trained *t, es_error *err)
{
	size_t nw = t->nwords;
	tr->keep = malloc(nw * sizeof *tr->keep);
	if (!tr->keep)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (size_t i = 0; i < nw; i++) {
		double pk = 1.0;
		if (tr->p.sample > 0) {
			double f = (double)t->counts[i] / (double)t->ntokens;
			double r = tr->p.sample / f;
			pk = sqrt(r) + r;
		}
		tr->keep[i] = pk >= 1.0 ? UINT32_MAX : (uint32_t)(pk * 4294967296.0);
	}
	size_t ns = nw * 64;
	if (ns < (1u << 16))
		ns = 1u << 16;
	if (ns > (1u << 24))
		ns = 1u << 24;
	tr->negtab = malloc(ns * sizeof *tr->negtab);
	if (!tr->negtab)
		return es_err(err, ES_ENOMEM, "out of memory");
	double z = 0;
	for (size_t i = 0; i < nw; i++)
		z += pow((double)t->counts[i], tr->p.ns_exponent);
	size_t j = 0;
	double cum = 0;
	for (size_t i = 0; i < nw && j < ns; i++) {
		cum += pow((double)t->counts[i], tr->p.ns_exponent) / z;
		size_t upto = (size_t)(cum * (double)ns + 0.5);
		if (upto > ns || i == nw - 1)
			upto = ns;
		while (j < upto)
			tr->negtab[j++] = (uint32_t)i;
	}
	tr->negsize = ns;
	return 0;
}

/* Slices: cut the corpus into nthreads pieces at line ends. */
static int slice_corpus(trainer *tr, es_error *err)
{
	tr->bounds = malloc((tr->nthreads + 1) * sizeof *tr->bounds);
	tr->tloss = calloc(tr->nthreads, sizeof *tr->tloss);
	tr->tcount = calloc(tr->nthreads, sizeof *tr->tcount);
	if (!tr->bounds || !tr->tloss || !tr->tcount)
		return es_err(err, ES_ENOMEM, "out of memory");
	tr->bounds[0] = 0;
	for (unsigned i = 1; i < tr->nthreads; i++) {
		size_t b = tr->clen * i / tr->nthreads;
		if (b < tr->bounds[i - 1])
			b = tr->bounds[i - 1];
		while (b < tr->clen && b > 0 && tr->corpus[b - 1] != ES_EOL)
			b++;
		tr->bounds[i] = b;
	}
	tr->bounds[tr->nthreads] = tr->clen;
	return 0;
}

/* The epochs on nthreads workers; timing and losses into t. */
static int run_epochs(trainer *tr, es_trained *t, es_train_progress_fn progress,
		      void *pctx, es_error *err)
{
	es_pool *pool = NULL;
	if (tr->nthreads > 1) {
		pool = es_pool_new(tr->nthreads);
		if (!pool)
			return es_err(err, ES_ENOMEM, "cannot start %u threads", tr->nthreads);
	}
	tr->progress = progress;
	tr->pctx = pctx;
	tr->t0 = now_s();
	es_pool_parallel_for(pool, tr->nthreads, 1, worker, tr);
	double secs = now_s() - tr->t0;
	es_pool_free(pool);
	if (tr->failed)
		return es_err(err, ES_ENOMEM, "out of memory in a training thread");
	if (tr->cancel)
		return es_err(err, ES_ECANCELED, "training canceled");
	double last = 0;
	report(tr, &last, 1);
	t->seconds = secs;
	t->wps_thread = secs > 0 ? (double)t->ntokens * tr->p.epochs / secs / tr->nthreads : 0;
	t->loss_first = tr->first_n ? tr->first_sum / (double)tr->first_n : 0;
	t->loss_last = tr->last_n ? tr->last_sum / (double)tr->last_n : 0;
	return 0;
}

/* Final word vectors (mean of each word's input rows) and n-gram rows. */
static int final_vectors(trainer *tr, es_trained *t, es_error *err)
{
	size_t nw = t->nwords;
	t->vectors = malloc((size_t)nw * tr->dim * sizeof(float));
	if (!t->vectors)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (size_t i = 0; i < nw; i++)
		input_mean(tr, (uint32_t)i, t->vectors + i * tr->dim);
	if (tr->p.bucket) {
		t->buckets = malloc((size_t)tr->p.bucket * tr->dim * sizeof(float));
		if (!t->buckets)
			return es_err(err, ES_ENOMEM, "out of memory");
		memcpy(t->buckets, tr->in + (size_t)nw * tr->dim,
		       (size_t)tr->p.bucket * tr->dim * sizeof(float));
	}
	return 0;
}

static void trainer_free(trainer *tr)
{
	free(tr->in);
	free(tr->out);
	free(tr->rows_off);
	free(tr->rows);
	free(tr->keep);
	free(tr->negtab);
	free(tr->bounds);
	free(tr->tloss);
	free(tr->tcount);
}

int es_train_text(const char *text, size_t len, const es_train_params *params,
		  es_train_progress_fn progress, void *pctx, es_trained **out,
		  es_error *err)
{
	int rc = 0;
	counter cnt;
	memset(&cnt, 0, sizeof cnt);
	trainer tr;
	memset(&tr, 0, sizeof tr);
	es_trained *t = NULL;
	uint32_t *corpus = NULL, *remap = NULL;
	*out = NULL;

	if ((rc = es_train_params_check(params, err)))
		return rc;
	tr.p = *params;
	if (!tr.p.subwords) {
		tr.p.minn = tr.p.maxn = 0;
		tr.p.bucket = 0;
	}
	tr.nthreads = tr.p.threads ? tr.p.threads : es_cpu_count();
	tr.p.threads = tr.nthreads;
	tr.dim = tr.p.dim;

	if (len == 0)
		return es_err(err, ES_EINVAL, "input is empty");
	if (memchr(text, '\0', len))
		return es_err(err, ES_EINVAL,
			      "input contains NUL bytes: binary data, not UTF-8 text");
	size_t bad;
	if (!es_utf8_valid(text, len, &bad))
		return es_err(err, ES_EINVAL, "input is not valid UTF-8 (byte offset %zu)", bad);

	size_t ntok, nlines;
	rc = count_words(text, len, &cnt, &ntok, &nlines, err);
	if (!rc)
		rc = build_vocab(&tr, &cnt, ntok, &t, &remap, err);
	if (!rc)
		rc = corpus_ids(&tr, text, len, &cnt, remap, t->ntokens, nlines, &corpus, err);
	counter_free(&cnt);
	free(remap);
	if (!rc)
		rc = input_rows(&tr, t, err);
	if (!rc)
		rc = init_matrices(&tr, err);
	if (!rc)
		rc = sampling_tables(&tr, t, err);
	if (!rc) {
		tables_init(&tr);
		tr.k = simd_get();
		tr.update_pair = update_pair_pick();
		rc = slice_corpus(&tr, err);
	}
	if (!rc)
		rc = run_epochs(&tr, t, progress, pctx, err);
	if (!rc)
		rc = final_vectors(&tr, t, err);
	if (!rc)
		rc = abtt(t, &tr.p, err);
	if (!rc) {
		t->p = tr.p;
		*out = t;
		t = NULL;
	}
	free(corpus);
	trainer_free(&tr);
	es_trained_free(t);
	return rc;
}

int es_train_file(const char *path, const es_train_params *p,
		  es_train_progress_fn progress, void *ctx, es_trained **out,
		  es_error *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return es_err(err, e == ENOENT ? ES_ENOTFOUND : ES_EIO, "%s: %s", path,
			      strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return es_err(err, ES_EINVAL, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return es_err(err, ES_EINVAL, "%s: input is empty", path);
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return es_err(err, ES_EIO, "%s: cannot map: %s", path, strerror(errno));
	int rc = es_train_text(m, (size_t)st.st_size, p, progress, ctx, out, err);
	munmap(m, (size_t)st.st_size);
	if (rc && err)
		es_err_prefix(err, rc, "%s", path);
	return rc;
}

/* ---------- hand-off to the model ---------- */

static int meta_u(es_model *m, const char *key, unsigned long long v,
		  es_error *err)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%llu", v);
	return es_model_set_meta(m, key, buf, err);
}

static int meta_f(es_model *m, const char *key, double v, es_error *err)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%.9g", v);
	return es_model_set_meta(m, key, buf, err);
}

int es_trained_to_model(const es_trained *t, const char *text, size_t len,
			size_t sample_lines, es_model **out, es_error *err)
{
	*out = NULL;
	es_model_params mp;
	memset(&mp, 0, sizeof mp);
	mp.dim = t->p.dim;
	mp.minn = t->p.minn;
	mp.maxn = t->p.maxn;
	mp.bucket = t->buckets ? t->p.bucket : 0;
	mp.has_counts = 1;
	es_model *m = NULL;
	const char **texts = NULL;
	size_t *lens = NULL;
	int rc = es_model_from_arrays(&mp, t->nwords, (const char *const *)t->words,
				      t->counts, t->vectors, t->buckets, &m, err);
	if (rc)
		goto out;
	const es_train_params *p = &t->p;
	if ((rc = es_model_set_meta(m, "train.mode",
				    p->mode == ES_TRAIN_CBOW ? "cbow" : "skipgram", err)) ||
	    (rc = meta_u(m, "train.dim", p->dim, err)) ||
	    (rc = meta_u(m, "train.epochs", p->epochs, err)) ||
	    (rc = meta_u(m, "train.window", p->window, err)) ||
	    (rc = meta_u(m, "train.neg", p->neg, err)) ||
	    (rc = meta_u(m, "train.min_count", p->min_count, err)) ||
	    (rc = meta_u(m, "train.subwords", (unsigned long long)(p->bucket != 0), err)) ||
	    (rc = meta_u(m, "train.minn", p->minn, err)) ||
	    (rc = meta_u(m, "train.maxn", p->maxn, err)) ||
	    (rc = meta_u(m, "train.bucket", p->bucket, err)) ||
	    (rc = meta_f(m, "train.lr", p->lr, err)) ||
	    (rc = meta_f(m, "train.sample", p->sample, err)) ||
	    (rc = meta_f(m, "train.ns_exponent", p->ns_exponent, err)) ||
	    (rc = meta_u(m, "train.center", (unsigned long long)p->center, err)) ||
	    (rc = meta_u(m, "train.drop_pcs", p->drop_pcs, err)) ||
	    (rc = meta_u(m, "train.threads", p->threads, err)) ||
	    (rc = meta_u(m, "train.seed", (unsigned long long)p->seed, err)) ||
	    (rc = meta_u(m, "train.tokens", (unsigned long long)t->ntokens_all, err)))
		goto out;
	if (text && sample_lines) {
		/* every k-th non-empty line, so the sample spans the corpus */
		size_t nlines = 0, pos = 0, b, e;
		while (next_line(text, len, &pos, &b, &e))
			nlines += e > b;
		size_t step = nlines > sample_lines ? nlines / sample_lines : 1;
		size_t cap = nlines / step + 1;
		texts = malloc(cap * sizeof *texts);
		lens = malloc(cap * sizeof *lens);
		if (!texts || !lens) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
		size_t n = 0, i = 0;
		pos = 0;
		while (next_line(text, len, &pos, &b, &e) && n < cap) {
			if (e == b)
				continue;
			if (i++ % step == 0) {
				texts[n] = text + b;
				lens[n++] = e - b;
			}
		}
		if ((rc = es_model_compute_common(m, texts, lens, n, NULL, err)))
			goto out;
	}
	*out = m;
	m = NULL;
out:
	free(texts);
	free(lens);
	es_model_free(m);
	return rc;
}
