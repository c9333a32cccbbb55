/*
 * lexical.c — inverted index and BM25 Block-Max WAND search (lexical.h).
 *
 * Layout:
 *  - documents have dense uint32 ids in insertion order; an update gives the
 *    label a new id and tombstones the old one, so every posting list is
 *    appended in increasing id order and stays sorted without rewriting;
 *  - a term's postings are (doc, tf) pairs in blocks of LEX_BLOCK, each
 *    posting two LEB128 varints (doc gap, tf); the gap of a block's first
 *    posting is from the previous block's last doc, so any block decodes
 *    on its own.  Per block we keep its last doc and byte offset (to skip
 *    without decoding) and the largest tf and smallest document length in
 *    it: BM25 grows with tf and falls with length, so the term's score with
 *    (max tf, min length) bounds every score in the block whatever N, df and
 *    avgdl are at query time (Ding & Suel's block-max bounds, computed at
 *    query time instead of stored as floats, so they never go stale);
 *  - each document keeps its (term, tf) list, delta + varint coded: a delete
 *    decrements the df of its terms exactly, and compaction and
 *    serialisation rebuild the postings from these lists (one code path).
 *
 * Search (Ding & Suel 2011, Block-Max WAND): cursors sorted by current doc;
 * the pivot is the first cursor where the sum of the terms' global bounds
 * passes the k-th best score so far (theta); if the block bounds of the
 * cursors up to the pivot still pass theta the pivot document is scored
 * (or the cursors behind it jump to it), else every cursor up to the pivot
 * jumps past the nearest block end.  A scored document's terms are summed in
 * query order, exactly as the exhaustive search sums them, so both give the
 * same double for the same document.
 *
 * Departures: the term dictionary and the label map are open-addressing
 * tables private to this file, not core/u64map: their slots are 4-byte ids
 * keyed through the term arena or doc_label (u64map's entries are 16 bytes
 * at load 1/2, ~4x the memory, and memory is what this index is judged on).
 * Allocations go through core/alloc (the failing-allocator tests reach
 * them); the serialised form is built in a core/bytebuf.
 *
 * Threading: see lexical.h.  Search allocates its own scratch (cursors, the
 * heap) per call, stems with its thread's stemmer (thread_stemmer) and
 * reads the index only.
 */
#include "lexical.h"

#include <inttypes.h>
#include <libstemmer.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bytebuf.h"
#include "crc32c.h"
#include "le.h"
#include "lerw.h"
#include "tokenize.h"

#define LEX_BLOCK 128
#define LEX_END UINT32_MAX
#define LEX_COMPACT_MIN_DEAD 1024
/* Term at a time (search_taat) for queries of at least LEX_TAAT_MIN_TERMS
 * distinct terms whose postings times LEX_TAAT_RATIO reach the document
 * count; Block-Max WAND otherwise (short queries skip best with it). */
#define LEX_TAAT_RATIO 4
#define LEX_TAAT_MIN_TERMS 8
#define LEX_MAGIC "ESLEXIDX"
#define LEX_VERSION 1u
#define LEX_FLAG_STEM 1u
#define LEX_FLAG_STOP 2u

typedef struct lex_block {
	uint32_t last_doc; /* doc id of the block's last posting */
	uint32_t off;      /* byte offset of its first posting in data */
	uint32_t max_tf;
	uint32_t min_dl;
} lex_block;

/* Capacities are not stored: blocks has exactly nblocks(t) entries (or is
 * NULL for one block) and data data_cap(len) bytes. */
typedef struct lex_term {
	uint32_t str_off, str_len; /* in lx->strs */
	uint32_t df;               /* live documents containing the term */
	uint32_t npost;            /* postings stored, dead documents included */
	uint32_t len;              /* bytes of data */
	uint32_t last_doc;         /* of the last posting */
	lex_block *blocks;         /* NULL while the term has one block: most
				    * terms are rare, and a single block's
				    * bounds are computed when it is searched */
	unsigned char *data;
} lex_term;

static inline uint32_t nblocks(const lex_term *t)
{
	return (t->npost + LEX_BLOCK - 1) / LEX_BLOCK;
}

/* Allocated size of a posting list of len bytes: 8, 12, 16, 24, 32, 48...
 * (at most 1.5x the bytes used). */
static size_t data_cap(size_t len)
{
	if (len <= 8)
		return len ? 8 : 0;
	size_t p = 8;
	while (p < len) {
		if (p + p / 2 >= len)
			return p + p / 2;
		p *= 2;
	}
	return p;
}

struct es_lexical {
	es_lexical_params p;
	struct sb_stemmer *stemmer; /* writers' stemmer (NULL: no stemming) */

	/* dictionary */
	lex_term *terms;
	uint32_t nterms, capterms;
	char *strs;
	size_t strs_len, strs_cap;
	uint32_t *tslots; /* term ids, LEX_END empty; power of two */
	size_t tcap;

	/* documents */
	void *doc_label;    /* uint32_t while dense (labels < 2^32), else uint64_t */
	uint32_t *doc_len;
	uint32_t *doc_fwd;  /* offset of [vN pairs][(term gap, tf) pairs] in fwd */
	unsigned char *doc_alive;
	uint32_t ndocs, capdocs;
	unsigned char *fwd;
	size_t fwd_len, fwd_cap;
	size_t live, dead;
	uint64_t total_len; /* sum of live lengths */

	/* label -> live doc id.  While labels are small (a collection's are
	 * its dense slot numbers) a direct array ldir[label]; after the first
	 * label that is not, a hash table: linear probing over doc ids (the
	 * key is doc_label[id]), backward-shift deletion. */
	int dense;
	uint32_t *ldir; /* LEX_END: none */
	size_t ldcap;
	uint32_t *lslots; /* LEX_END: empty */
	size_t lcap, lcount;

	/* writers' cache of analysed words: the term id of a raw (lowercased)
	 * token, direct-mapped, so that a frequent word is stemmed and looked
	 * up once, not at every occurrence.  Cleared when term ids change. */
	struct wcache *wc;
	size_t wcap;

	/* Room promised to prepared batches not yet applied or freed
	 * (es_lexical_batch_prepare): documents, forward-list bytes, and per
	 * term the postings and their bytes (an open-addressing table, only
	 * while batches are out; a term's data holds at least
	 * data_cap(len + bytes) and its block array nblocks(npost + posts)
	 * entries when that is more than one). */
	size_t resv_docs, resv_fwd, resv_batches;
	struct lex_resv *rt;
	size_t rtcap, rtn;
	/* The batch out alone: its room is not in rt (most writers have one
	 * batch out at a time); rt is built from it when a second comes. */
	struct es_lexical_batch *solo;
};

typedef struct lex_resv {
	uint32_t term; /* LEX_END: empty */
	uint32_t posts, bytes;
} lex_resv;

#define WC_MAX_WORD 11 /* 16-byte entries (a set of two in half a cache line);
			* longer words are rarer */
typedef struct wcache {
	uint32_t term;           /* LEX_END: empty */
	unsigned char len;
	char s[WC_MAX_WORD]; /* len bytes, no NUL */
} wcache;
_Static_assert(sizeof(wcache) == 16, "two word-cache entries a half cache line");

/* Document d's label; labels are 32-bit while the label map is dense (a
 * collection's labels are its slot numbers), which saves 4 bytes a
 * document. */
static inline uint64_t dlabel(const es_lexical *lx, uint32_t d)
{
	return lx->dense ? ((const uint32_t *)lx->doc_label)[d]
			 : ((const uint64_t *)lx->doc_label)[d];
}

static inline void dlabel_set(es_lexical *lx, uint32_t d, uint64_t label)
{
	if (lx->dense)
		((uint32_t *)lx->doc_label)[d] = (uint32_t)label;
	else
		((uint64_t *)lx->doc_label)[d] = label;
}

/* ------------------------------------------------------------ helpers */

static size_t put_varint(unsigned char *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* Trusted data (built by this file). */
static inline uint32_t get_varint(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t v = *p & 0x7F;
	unsigned shift = 7;
	while (*p++ & 0x80) {
		v |= (uint32_t)(*p & 0x7F) << shift;
		shift += 7;
	}
	*pp = p;
	return v;
}

/* A (gap, tf) pair, in postings and in document term lists: varint of
 * gap << 1 | (tf > 1), then tf itself only when it is > 1 (most are 1). */
static size_t put_pair(unsigned char *p, uint32_t gap, uint32_t tf)
{
	uint64_t v = (uint64_t)gap << 1 | (tf > 1);
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	if (tf > 1)
		n += put_varint(p + n, tf);
	return n;
}

#define PAIR_MAX 10 /* bytes */

static inline uint32_t get_pair(const unsigned char **pp, uint32_t *tf)
{
	const unsigned char *p = *pp;
	uint64_t v = *p & 0x7F;
	unsigned shift = 7;
	while (*p++ & 0x80) {
		v |= (uint64_t)(*p & 0x7F) << shift;
		shift += 7;
	}
	*pp = p;
	*tf = v & 1 ? get_varint(pp) : 1;
	return (uint32_t)(v >> 1);
}

/* Hostile data: 0, or -1 when truncated or longer than 5 bytes / 32 bits. */
static int read_varint(const unsigned char *buf, size_t len, size_t *off,
		       uint32_t *out)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 5; i++) {
		if (*off >= len)
			return -1;
		unsigned char c = buf[(*off)++];
		v |= (uint64_t)(c & 0x7F) << (7 * i);
		if (!(c & 0x80)) {
			if (v > UINT32_MAX)
				return -1;
			*out = (uint32_t)v;
			return 0;
		}
	}
	return -1;
}

/* Grow *p (elements of size sz) to hold need; 0 or -1. */
static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4;
	while (c < need) { /* 1.5x: memory is what this index is judged on */
		if (c > SIZE_MAX / 2 / sz)
			return -1;
		c += (c < (1u << 20) ? c / 2 : c / 4) + 4;
	}
	void *n = es_realloc(*p, c * sz);
	if (!n)
		return -1;
	*p = n;
	*cap = c;
	return 0;
}

static int grow32(void **p, uint32_t *cap, size_t need, size_t sz)
{
	if (need > UINT32_MAX - 1)
		return -1;
	size_t c = *cap;
	if (grow(p, &c, need, sz))
		return -1;
	if (c > UINT32_MAX - 1)
		c = UINT32_MAX - 1; /* never used beyond need anyway */
	*cap = (uint32_t)c;
	return 0;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* ------------------------------------------------------------ analysis */

/* Lucene's EnglishAnalyzer stop set (sorted, for bsearch). */
static const char *const stop_words[] = {
	"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if",
	"in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that",
	"the", "their", "then", "there", "these", "they", "this", "to", "was",
	"will", "with",
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_stop_word(const char *w)
{
	return bsearch(&w, stop_words, sizeof stop_words / sizeof *stop_words,
		       sizeof *stop_words, cmp_str) != NULL;
}

typedef int (*term_fn)(void *ctx, const char *term, size_t tlen);

static int analyze(const es_lexical_params *p, struct sb_stemmer *st,
		   const char *text, size_t len, term_fn fn, void *ctx)
{
	es_tokenizer tk;
	char buf[ES_TOKEN_MAX + 1];
	size_t n;
	es_tokenizer_init(&tk, text, len);
	while ((n = es_tokenizer_next(&tk, buf, NULL, NULL)) > 0) {
		if (p->stopwords && is_stop_word(buf))
			continue;
		const char *t = buf;
		if (st) {
			const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)buf, (int)n);
			if (!s)
				return ES_ENOMEM;
			int sl = sb_stemmer_length(st);
			if (sl > 0 && (size_t)sl <= ES_TOKEN_MAX) {
				t = (const char *)s;
				n = (size_t)sl;
			}
		}
		int rc = fn(ctx, t, n);
		if (rc)
			return rc;
	}
	return 0;
}

static struct sb_stemmer *stemmer_new(const es_lexical_params *p, int *rc)
{
	*rc = 0;
	if (!p->stemming)
		return NULL;
	struct sb_stemmer *s = sb_stemmer_new("english", "UTF_8");
	if (!s)
		*rc = ES_ENOMEM;
	return s;
}

/* Searches' stemmer: one per thread, made at its first stemmed query and
 * freed when the thread exits (sb_stemmer_new allocates a few hundred
 * bytes and the search is a few microseconds: making one per query was a
 * measurable part of a short query).  A stemmer is not thread-safe, but
 * nothing else of a search's state is shared.  NULL: no memory. */
static pthread_key_t stem_key;
static pthread_once_t stem_once = PTHREAD_ONCE_INIT;
static int stem_key_ok;

static void stem_free(void *p)
{
	sb_stemmer_delete(p);
}

static void stem_key_init(void)
{
	stem_key_ok = pthread_key_create(&stem_key, stem_free) == 0;
}

static struct sb_stemmer *thread_stemmer(const es_lexical_params *p, int *rc,
					 int *owned)
{
	*owned = 0;
	*rc = 0;
	pthread_once(&stem_once, stem_key_init);
	struct sb_stemmer *s = p->stemming && stem_key_ok ? pthread_getspecific(stem_key) : NULL;
	if (s || !p->stemming)
		return s;
	s = stemmer_new(p, rc);
	if (s && (!stem_key_ok || pthread_setspecific(stem_key, s) != 0))
		*owned = 1; /* no slot: this query's own */
	return s;
}

typedef struct user_term_ctx {
	term_fn fn;
	void *ctx;
} user_term_ctx;

static int user_term(void *ctx, const char *t, size_t n)
{
	user_term_ctx *u = ctx;
	char buf[ES_TOKEN_MAX + 1];
	memcpy(buf, t, n);
	buf[n] = '\0';
	return u->fn(u->ctx, buf, n);
}

int es_lexical_analyze(const es_lexical_params *p, const char *text,
		       size_t len, term_fn fn, void *ctx)
{
	int rc;
	struct sb_stemmer *st = stemmer_new(p, &rc);
	if (rc)
		return rc;
	user_term_ctx u = {fn, ctx};
	rc = analyze(p, st, text, len, user_term, &u);
	if (st)
		sb_stemmer_delete(st);
	return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------ params */

void es_lexical_params_default(es_lexical_params *p)
{
	p->k1 = ES_LEXICAL_DEFAULT_K1;
	p->b = ES_LEXICAL_DEFAULT_B;
	p->stemming = ES_LEXICAL_DEFAULT_STEMMING;
	p->stopwords = ES_LEXICAL_DEFAULT_STOPWORDS;
}

int es_lexical_params_check(const es_lexical_params *p, es_error *err)
{
	if (!(p->k1 >= 0.0f && p->k1 <= ES_LEXICAL_MAX_K1))
		return es_err(err, ES_EINVAL, "lexical k1 must be between 0 and %g",
			      (double)ES_LEXICAL_MAX_K1);
	if (!(p->b >= 0.0f && p->b <= 1.0f))
		return es_err(err, ES_EINVAL, "lexical b must be between 0 and 1");
	return 0;
}

/* ------------------------------------------------------------ tables */

static int lmap_init(es_lexical *lx, size_t cap)
{
	uint32_t *v = es_malloc(cap * sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < cap; i++)
		v[i] = LEX_END;
	es_free(lx->lslots);
	lx->lslots = v;
	lx->lcap = cap;
	lx->lcount = 0;
	return 0;
}

/* Home slot of a label: any capacity, not only powers of two. */
static inline size_t lmap_home(size_t cap, uint64_t label)
{
	return (size_t)(((hash_u64(label) >> 32) * (uint64_t)cap) >> 32);
}

static size_t lmap_find(const es_lexical *lx, uint64_t label)
{
	size_t i = lmap_home(lx->lcap, label);
	while (lx->lslots[i] != LEX_END) {
		if (dlabel(lx, lx->lslots[i]) == label)
			return i;
		if (++i == lx->lcap)
			i = 0;
	}
	return SIZE_MAX;
}

static uint32_t lmap_get(const es_lexical *lx, uint64_t label)
{
	size_t i = lmap_find(lx, label);
	return i == SIZE_MAX ? LEX_END : lx->lslots[i];
}

/* Make room for extra more keys (call before lmap_put). */
static int lmap_room(es_lexical *lx, size_t extra)
{
	if ((lx->lcount + extra) * 5 <= lx->lcap * 4)
		return 0;
	size_t ocap = lx->lcap, n = lx->lcount, ncap = ocap + ocap / 2;
	if (ncap < (n + extra) * 5 / 4 + 64)
		ncap = (n + extra) * 5 / 4 + 64;
	if (ncap > UINT32_MAX) /* capacities fit fastrange's 32 bits */
		return -1;
	uint32_t *ov = lx->lslots;
	lx->lslots = NULL;
	if (lmap_init(lx, ncap)) {
		lx->lslots = ov;
		lx->lcap = ocap;
		return -1;
	}
	for (size_t i = 0; i < ocap; i++) {
		if (ov[i] == LEX_END)
			continue;
		size_t j = lmap_home(lx->lcap, dlabel(lx, ov[i]));
		while (lx->lslots[j] != LEX_END)
			if (++j == lx->lcap)
				j = 0;
		lx->lslots[j] = ov[i];
	}
	lx->lcount = n;
	es_free(ov);
	return 0;
}

/* Point label (= doc_label[doc]) at doc; room must have been reserved. */
static void lmap_put(es_lexical *lx, uint64_t label, uint32_t doc)
{
	size_t i = lmap_home(lx->lcap, label);
	while (lx->lslots[i] != LEX_END) {
		if (dlabel(lx, lx->lslots[i]) == label) {
			lx->lslots[i] = doc;
			return;
		}
		if (++i == lx->lcap)
			i = 0;
	}
	lx->lslots[i] = doc;
	lx->lcount++;
}

static void lmap_remove(es_lexical *lx, size_t i)
{
	size_t j = i;
	lx->lslots[i] = LEX_END;
	for (;;) {
		if (++j == lx->lcap)
			j = 0;
		if (lx->lslots[j] == LEX_END)
			break;
		size_t home = lmap_home(lx->lcap, dlabel(lx, lx->lslots[j]));
		/* can the entry at j move to the hole at i? */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			lx->lslots[i] = lx->lslots[j];
			lx->lslots[j] = LEX_END;
			i = j;
		}
	}
	lx->lcount--;
}

static uint32_t label_get(const es_lexical *lx, uint64_t label)
{
	if (lx->dense)
		return label < lx->ldcap ? lx->ldir[label] : LEX_END;
	return lmap_get(lx, label);
}

/* Make room to map label (and leave dense mode for a label that is too
 * large for the array); 0 or -1. */
static int label_reserve(es_lexical *lx, uint64_t label)
{
	if (lx->dense && label < lx->ldcap)
		return 0;
	if (lx->dense && label < UINT32_MAX && label < 2 * (uint64_t)lx->live + 4096) {
		size_t c = lx->ldcap + lx->ldcap / 2 + 64;
		if (c <= label)
			c = (size_t)label + 64;
		uint32_t *d = es_realloc(lx->ldir, c * sizeof *d);
		if (!d)
			return -1;
		for (size_t i = lx->ldcap; i < c; i++)
			d[i] = LEX_END;
		lx->ldir = d;
		lx->ldcap = c;
		return 0;
	}
	if (lx->dense) {
		/* 64-bit labels from now on: widen them before the map reads them */
		uint64_t *wide = es_malloc((lx->capdocs ? lx->capdocs : 1) * sizeof *wide);
		if (!wide)
			return -1;
		for (uint32_t d = 0; d < lx->ndocs; d++)
			wide[d] = ((const uint32_t *)lx->doc_label)[d];
		if (lmap_init(lx, (lx->live + 1) * 5 / 4 + 64)) {
			es_free(wide);
			return -1;
		}
		es_free(lx->doc_label);
		lx->doc_label = wide;
		lx->dense = 0;
		for (size_t l = 0; l < lx->ldcap; l++)
			if (lx->ldir[l] != LEX_END)
				lmap_put(lx, l, lx->ldir[l]);
		es_free(lx->ldir);
		lx->ldir = NULL;
		lx->ldcap = 0;
	}
	return lmap_room(lx, 1);
}

/* Map label (= doc_label[doc]) to doc; room must have been reserved. */
static void label_put(es_lexical *lx, uint64_t label, uint32_t doc)
{
	if (lx->dense)
		lx->ldir[label] = doc;
	else
		lmap_put(lx, label, doc);
}

/* Unmap label: its doc, or LEX_END when it had none. */
static uint32_t label_take(es_lexical *lx, uint64_t label)
{
	if (lx->dense) {
		if (label >= lx->ldcap)
			return LEX_END;
		uint32_t d = lx->ldir[label];
		lx->ldir[label] = LEX_END;
		return d;
	}
	size_t i = lmap_find(lx, label);
	if (i == SIZE_MAX)
		return LEX_END;
	uint32_t d = lx->lslots[i];
	lmap_remove(lx, i);
	return d;
}

static const char *term_str(const es_lexical *lx, const lex_term *t)
{
	return lx->strs + t->str_off;
}

/* Term id of s[0..n), or LEX_END. */
static uint32_t term_find(const es_lexical *lx, const char *s, size_t n)
{
	if (!lx->tcap)
		return LEX_END;
	size_t m = lx->tcap - 1, i = hash_bytes(s, n) & m;
	for (;;) {
		uint32_t id = lx->tslots[i];
		if (id == LEX_END)
			return LEX_END;
		const lex_term *t = &lx->terms[id];
		if (t->str_len == n && memcmp(term_str(lx, t), s, n) == 0)
			return id;
		i = (i + 1) & m;
	}
}

static int tslots_rehash(es_lexical *lx, size_t cap)
{
	uint32_t *s = es_malloc(cap * sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; i < cap; i++)
		s[i] = LEX_END;
	size_t m = cap - 1;
	for (uint32_t id = 0; id < lx->nterms; id++) {
		const lex_term *t = &lx->terms[id];
		size_t i = hash_bytes(term_str(lx, t), t->str_len) & m;
		while (s[i] != LEX_END)
			i = (i + 1) & m;
		s[i] = id;
	}
	es_free(lx->tslots);
	lx->tslots = s;
	lx->tcap = cap;
	return 0;
}

/* Term id of s[0..n), added if new; LEX_END when out of memory. */
static uint32_t term_intern(es_lexical *lx, const char *s, size_t n)
{
	uint32_t id = term_find(lx, s, n);
	if (id != LEX_END)
		return id;
	if (lx->nterms >= UINT32_MAX - 2)
		return LEX_END;
	if ((size_t)(lx->nterms + 1) * 4 > lx->tcap * 3 &&
	    tslots_rehash(lx, lx->tcap ? lx->tcap * 2 : 1024))
		return LEX_END;
	if (grow32((void **)&lx->terms, &lx->capterms, lx->nterms + 1, sizeof *lx->terms))
		return LEX_END;
	if (lx->strs_len + n + 1 > UINT32_MAX ||
	    grow((void **)&lx->strs, &lx->strs_cap, lx->strs_len + n + 1, 1))
		return LEX_END;
	id = lx->nterms++;
	lex_term *t = &lx->terms[id];
	memset(t, 0, sizeof *t);
	t->str_off = (uint32_t)lx->strs_len;
	t->str_len = (uint32_t)n;
	memcpy(lx->strs + lx->strs_len, s, n);
	lx->strs[lx->strs_len + n] = '\0';
	lx->strs_len += n + 1;
	size_t m = lx->tcap - 1, i = hash_bytes(s, n) & m;
	while (lx->tslots[i] != LEX_END)
		i = (i + 1) & m;
	lx->tslots[i] = id;
	return id;
}

/* ------------------------------------------------------------ life cycle */

int es_lexical_new(const es_lexical_params *p, es_lexical **out, es_error *err)
{
	*out = NULL;
	int rc = es_lexical_params_check(p, err);
	if (rc)
		return rc;
	es_lexical *lx = es_calloc(1, sizeof *lx);
	if (!lx)
		return es_err(err, ES_ENOMEM, "out of memory for the lexical index");
	lx->p = *p;
	lx->p.stemming = !!p->stemming;
	lx->p.stopwords = !!p->stopwords;
	lx->stemmer = stemmer_new(&lx->p, &rc);
	lx->dense = 1;
	if (rc) {
		es_lexical_free(lx);
		return es_err(err, ES_ENOMEM, "out of memory for the lexical index");
	}
	*out = lx;
	return 0;
}

static void free_contents(es_lexical *lx)
{
	for (uint32_t i = 0; i < lx->nterms; i++) {
		es_free(lx->terms[i].blocks);
		es_free(lx->terms[i].data);
	}
	es_free(lx->terms);
	es_free(lx->strs);
	es_free(lx->tslots);
	es_free(lx->doc_label);
	es_free(lx->doc_len);
	es_free(lx->doc_fwd);
	es_free(lx->doc_alive);
	es_free(lx->fwd);
	es_free(lx->lslots);
	es_free(lx->ldir);
	es_free(lx->wc);
	es_free(lx->rt);
}

void es_lexical_free(es_lexical *lx)
{
	if (!lx)
		return;
	free_contents(lx);
	if (lx->stemmer)
		sb_stemmer_delete(lx->stemmer);
	es_free(lx);
}

const es_lexical_params *es_lexical_get_params(const es_lexical *lx)
{
	return &lx->p;
}

int es_lexical_contains(const es_lexical *lx, uint64_t label)
{
	return label_get(lx, label) != LEX_END;
}

size_t es_lexical_count(const es_lexical *lx) { return lx->live; }
size_t es_lexical_dead(const es_lexical *lx) { return lx->dead; }

size_t es_lexical_memory_bytes(const es_lexical *lx)
{
	size_t b = sizeof *lx;
	b += (size_t)lx->capterms * sizeof(lex_term) + lx->strs_cap + lx->tcap * sizeof(uint32_t);
	for (uint32_t i = 0; i < lx->nterms; i++)
		b += (lx->terms[i].blocks ? (size_t)nblocks(&lx->terms[i]) * sizeof(lex_block) : 0) +
		     data_cap(lx->terms[i].len);
	b += (size_t)lx->capdocs * ((lx->dense ? sizeof(uint32_t) : sizeof(uint64_t)) +
				   sizeof(uint32_t) * 2 + 1);
	b += lx->fwd_cap;
	b += (lx->lcap + lx->ldcap) * sizeof(uint32_t);
	b += lx->wcap * sizeof(wcache);
	b += lx->rtcap * sizeof(lex_resv);
	return b;
}

/* ------------------------------------------------------------ writing */

typedef struct tf_pair {
	uint32_t term, tf;
} tf_pair;

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The bounds of a term's first block, from its postings. */
static void first_block(const es_lexical *lx, const lex_term *t, lex_block *b)
{
	const unsigned char *p = t->data;
	uint32_t n = t->npost < LEX_BLOCK ? t->npost : LEX_BLOCK, doc = 0, tf;
	b->off = 0;
	b->max_tf = 0;
	b->min_dl = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		doc += get_pair(&p, &tf);
		if (tf > b->max_tf)
			b->max_tf = tf;
		if (lx->doc_len[doc] < b->min_dl)
			b->min_dl = lx->doc_len[doc];
	}
	b->last_doc = doc;
}

/* Append one posting (doc, tf) of a document of length dl to term t.
 * reserved: es_lexical_batch_prepare made room for it (no allocation,
 * cannot fail); else the room is allocated here (0 or -1). */
static int term_append(const es_lexical *lx, lex_term *t, uint32_t doc,
		       uint32_t tf, uint32_t dl, int reserved)
{
	unsigned char tmp[PAIR_MAX];
	uint32_t nb = nblocks(t), gap = doc - (t->npost ? t->last_doc : 0);
	size_t n = reserved ? 0 : put_pair(tmp, gap, tf);
	if (!reserved) {
		if ((size_t)t->len + n > UINT32_MAX / 2 || t->npost == UINT32_MAX - 1)
			return -1;
		if (t->len + n > data_cap(t->len)) {
			unsigned char *d = es_realloc(t->data, data_cap(t->len + n));
			if (!d)
				return -1;
			t->data = d;
		}
		if (t->npost && t->npost % LEX_BLOCK == 0) {
			/* a new block: from the second one on, bounds are kept */
			lex_block *bl = es_realloc(t->blocks, (size_t)(nb + 1) * sizeof *bl);
			if (!bl)
				return -1;
			if (!t->blocks)
				first_block(lx, t, &bl[0]);
			t->blocks = bl;
		}
	}
	if (t->blocks && t->npost % LEX_BLOCK == 0) {
		/* a new block (a reservation may have made the array before the
		 * term's first posting) */
		lex_block *b = &t->blocks[nb++];
		b->off = t->len;
		b->max_tf = tf;
		b->min_dl = dl;
	} else if (t->blocks) {
		lex_block *b = &t->blocks[nb - 1];
		if (tf > b->max_tf)
			b->max_tf = tf;
		if (dl < b->min_dl)
			b->min_dl = dl;
	}
	if (t->blocks)
		t->blocks[nb - 1].last_doc = doc;
	t->last_doc = doc;
	if (reserved) /* the room is there: the pair goes straight in */
		n = put_pair(t->data + t->len, gap, tf);
	else
		memcpy(t->data + t->len, tmp, n);
	t->len += (uint32_t)n;
	t->npost++;
	return 0;
}

/* Room for need documents. */
static int docs_room(es_lexical *lx, size_t need)
{
	if (need <= lx->capdocs)
		return 0;
	if (need >= UINT32_MAX - 2)
		return -1;
	uint32_t c = lx->capdocs ? lx->capdocs : 16;
	while (c < need) {
		if (c > (UINT32_MAX - 2) / 5 * 4)
			c = UINT32_MAX - 2;
		else
			c += c < (1u << 20) ? c / 2 : c / 4;
	}
	void *a = es_realloc(lx->doc_label, (size_t)c * (lx->dense ? sizeof(uint32_t)
								: sizeof(uint64_t)));
	if (!a)
		return -1;
	lx->doc_label = a;
	a = es_realloc(lx->doc_len, (size_t)c * sizeof(uint32_t));
	if (!a)
		return -1;
	lx->doc_len = a;
	a = es_realloc(lx->doc_fwd, (size_t)c * sizeof(uint32_t));
	if (!a)
		return -1;
	lx->doc_fwd = a;
	a = es_realloc(lx->doc_alive, c);
	if (!a)
		return -1;
	lx->doc_alive = a;
	lx->capdocs = c;
	return 0;
}

/* Make room for one more document. */
static int docs_reserve(es_lexical *lx)
{
	return docs_room(lx, (size_t)lx->ndocs + 1);
}

/* Doc d's (term, tf) list: the pair count, and p moved to the first pair. */
static uint32_t doc_list(const es_lexical *lx, uint32_t d, const unsigned char **p)
{
	*p = lx->fwd + lx->doc_fwd[d];
	return get_varint(p);
}

/* Tombstone doc d (alive): its statistics leave the index now. */
static void doc_kill(es_lexical *lx, uint32_t d)
{
	const unsigned char *p;
	uint32_t np = doc_list(lx, d, &p), term = 0;
	for (uint32_t i = 0; i < np; i++) {
		uint32_t tf;
		term += get_pair(&p, &tf);
		lx->terms[term].df--;
	}
	lx->doc_alive[d] = 0;
	lx->live--;
	lx->dead++;
	lx->total_len -= lx->doc_len[d];
}

/* Add a document with its sorted (term, tf) pairs as a new doc id and map
 * label to it; an older document of the label is tombstoned.  On error
 * nothing visible changed (postings already appended point to a dead id). */
static int doc_add(es_lexical *lx, uint64_t label, const tf_pair *pairs,
		   uint32_t np)
{
	uint64_t dl = 0;
	for (uint32_t i = 0; i < np; i++)
		dl += pairs[i].tf;
	if (dl > UINT32_MAX - 1)
		return ES_ERANGE;
	if (docs_reserve(lx) || label_reserve(lx, label))
		return ES_ENOMEM;
	size_t most = (size_t)np * PAIR_MAX + 5;
	if (lx->fwd_len + most > UINT32_MAX) /* doc_fwd is 32-bit */
		return ES_ERANGE;
	if (grow((void **)&lx->fwd, &lx->fwd_cap, lx->fwd_len + most, 1))
		return ES_ENOMEM;
	uint32_t d = lx->ndocs;
	dlabel_set(lx, d, label);
	lx->doc_len[d] = (uint32_t)dl;
	lx->doc_fwd[d] = (uint32_t)lx->fwd_len;
	lx->doc_alive[d] = 0;
	lx->ndocs++; /* dead until complete */
	for (uint32_t i = 0; i < np; i++) {
		if (term_append(lx, &lx->terms[pairs[i].term], d, pairs[i].tf, (uint32_t)dl, 0)) {
			lx->dead++;
			return ES_ENOMEM;
		}
	}
	unsigned char *w = lx->fwd + lx->fwd_len;
	uint32_t prev = 0;
	w += put_varint(w, np);
	for (uint32_t i = 0; i < np; i++) {
		w += put_pair(w, pairs[i].term - prev, pairs[i].tf);
		prev = pairs[i].term;
		lx->terms[pairs[i].term].df++;
	}
	lx->fwd_len = (size_t)(w - lx->fwd);
	uint32_t old = label_get(lx, label);
	if (old != LEX_END)
		doc_kill(lx, old);
	label_put(lx, label, d);
	lx->doc_alive[d] = 1;
	lx->live++;
	lx->total_len += dl;
	return 0;
}

/* Size the word cache to the vocabulary (1024 .. 65536 entries, 1 MiB;
 * two-way sets: the model corpus: 90% of its words hit direct-mapped, 92% so). */
static void wcache_size(es_lexical *lx)
{
	size_t want = 1024;
	while (want < lx->nterms && want < 65536)
		want *= 2;
	if (lx->wcap >= want)
		return;
	wcache *w = es_malloc(want * sizeof *w);
	if (!w)
		return; /* keep the smaller one: it is only a cache */
	for (size_t i = 0; i < want; i++)
		w[i].term = LEX_END;
	es_free(lx->wc);
	lx->wc = w;
	lx->wcap = want;
}

#define LEX_STOP (UINT32_MAX - 1) /* cached: a stop word */

static void sort_u32(uint32_t *a, size_t n)
{
	if (n > 48) {
		qsort(a, n, sizeof *a, cmp_u32);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint32_t x = a[i];
		size_t j = i;
		while (j && a[j - 1] > x) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = x;
	}
}

/* An ASCII letter or digit lowercased; 0 for every other byte. */
static inline unsigned char ascii_word(unsigned char c)
{
	if ((unsigned)(c - 'a') < 26u || (unsigned)(c - '0') < 10u)
		return c;
	if ((unsigned)(c - 'A') < 26u)
		return (unsigned char)(c + 0x20);
	return 0;
}

static int text_is_ascii(const char *s, size_t len)
{
	unsigned char any = 0;
	for (size_t i = 0; i < len; i++)
		any |= (unsigned char)s[i];
	return any < 0x80;
}

/* es_tokenizer_next for ASCII text (text_is_ascii), the same tokens: words
 * of letters and digits, lowercased, joined by a single ' or - between two
 * word characters, cut at ES_TOKEN_MAX bytes without a trailing joiner.
 * The tokenizer decodes UTF-8 a code point at a time and looks non-ASCII
 * ones up; most documents are ASCII and this is a byte table.  Returns the
 * length, 0 at the end; *pos moves past the word. */
static size_t ascii_next(const char *s, size_t len, size_t *pos, char *buf)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = *pos, n = 0;
	int full = 0;
	while (p < len && !ascii_word(u[p]))
		p++;
	while (p < len) {
		unsigned char c = ascii_word(u[p]);
		if (c) {
			if (n + 1 > ES_TOKEN_MAX)
				full = 1;
			else if (!full)
				buf[n++] = (char)c;
			p++;
			continue;
		}
		if ((u[p] != '\'' && u[p] != '-') || p + 1 >= len || !ascii_word(u[p + 1]))
			break;
		if (!full && n + 1 <= ES_TOKEN_MAX)
			buf[n++] = (char)u[p];
		else
			full = 1;
		p++;
	}
	while (n > 0 && (buf[n - 1] == '\'' || buf[n - 1] == '-'))
		n--;
	buf[n] = '\0';
	*pos = p;
	return n;
}

/* The term id of the lowercased word buf[0..n) (NUL-terminated; h its
 * hash_bytes when n <= WC_MAX_WORD) into *id, LEX_STOP for a stop word;
 * new terms join the dictionary.  The same analysis as analyze(), through
 * the word cache.  0 or ES_ENOMEM. */
static int word_id(es_lexical *lx, const char *buf, size_t n, uint64_t h, uint32_t *id)
{
	wcache *e = NULL;
	if (lx->wcap && n <= WC_MAX_WORD) {
		/* two ways a set, the last used first */
		e = &lx->wc[h & (lx->wcap - 2)];
		if (e[0].term != LEX_END && e[0].len == n && memcmp(e[0].s, buf, n) == 0) {
			*id = e[0].term;
			return 0;
		}
		wcache x = e[0];
		if (e[1].term != LEX_END && e[1].len == n && memcmp(e[1].s, buf, n) == 0) {
			*id = e[1].term;
			e[0] = e[1];
			e[1] = x;
			return 0;
		}
		e[1] = x;
	}
	if (lx->p.stopwords && is_stop_word(buf)) {
		*id = LEX_STOP;
	} else {
		const char *t = buf;
		size_t tn = n;
		if (lx->stemmer) {
			const sb_symbol *s = sb_stemmer_stem(lx->stemmer, (const sb_symbol *)buf,
							     (int)n);
			if (!s)
				return ES_ENOMEM;
			int sl = sb_stemmer_length(lx->stemmer);
			if (sl > 0 && (size_t)sl <= ES_TOKEN_MAX) {
				t = (const char *)s;
				tn = (size_t)sl;
			}
		}
		*id = term_intern(lx, t, tn);
		if (*id == LEX_END)
			return ES_ENOMEM;
	}
	if (e) {
		e->term = *id;
		e->len = (unsigned char)n;
		memcpy(e->s, buf, n);
	}
	return 0;
}

/* The term ids of text (added to the dictionary), in text order.  Words
 * are tokenized WORD_AHEAD at a time and their word-cache sets fetched
 * before the first is looked up: the cache (1 MiB) is mostly outside the
 * CPU's caches, and one miss a word was the largest cost of indexing. */
#define WORD_AHEAD 16
static int doc_terms(es_lexical *lx, const char *text, size_t len,
		     uint32_t **ids, size_t *nids, size_t *cap)
{
	es_tokenizer tk;
	char buf[WORD_AHEAD][ES_TOKEN_MAX + 1];
	size_t wl[WORD_AHEAD], pos = 0, m;
	uint64_t wh[WORD_AHEAD];
	int ascii = text_is_ascii(text, len);
	wcache_size(lx);
	es_tokenizer_init(&tk, text, len);
	do {
		for (m = 0; m < WORD_AHEAD; m++) {
			size_t n = ascii ? ascii_next(text, len, &pos, buf[m])
					 : es_tokenizer_next(&tk, buf[m], NULL, NULL);
			if (!n)
				break;
			wl[m] = n;
			wh[m] = 0;
			if (lx->wcap && n <= WC_MAX_WORD) {
				wh[m] = hash_bytes(buf[m], n);
				__builtin_prefetch(&lx->wc[wh[m] & (lx->wcap - 2)]);
			}
		}
		if (*nids + m > *cap && grow((void **)ids, cap, *nids + m, sizeof **ids))
			return ES_ENOMEM;
		for (size_t i = 0; i < m; i++) {
			uint32_t id;
			if (word_id(lx, buf[i], wl[i], wh[i], &id))
				return ES_ENOMEM;
			if (id != LEX_STOP)
				(*ids)[(*nids)++] = id;
		}
	} while (m == WORD_AHEAD);
	return 0;
}

/* Sorted term ids -> (term, tf) pairs; returns the pair count. */
static uint32_t to_pairs(const uint32_t *ids, size_t n, tf_pair *pairs)
{
	uint32_t np = 0;
	for (size_t i = 0; i < n; i++) {
		if (np && pairs[np - 1].term == ids[i]) {
			pairs[np - 1].tf++;
		} else {
			pairs[np].term = ids[i];
			pairs[np].tf = 1;
			np++;
		}
	}
	return np;
}

void es_lexical_maybe_compact(es_lexical *lx)
{
	if (lx->resv_batches == 0 && lx->dead >= LEX_COMPACT_MIN_DEAD && lx->dead > lx->live)
		es_lexical_compact(lx, NULL); /* best effort */
}

/* Bring a tombstoned doc d back (undo of its kill): its label must map to
 * nothing and have room in the map (it had an entry just before). */
static void doc_revive(es_lexical *lx, uint32_t d)
{
	const unsigned char *p;
	uint32_t np = doc_list(lx, d, &p), term = 0;
	for (uint32_t i = 0; i < np; i++) {
		uint32_t tf;
		term += get_pair(&p, &tf);
		lx->terms[term].df++;
	}
	lx->doc_alive[d] = 1;
	lx->live++;
	lx->dead--;
	lx->total_len += lx->doc_len[d];
	label_reserve(lx, dlabel(lx, d)); /* cannot fail: it was mapped */
	label_put(lx, dlabel(lx, d), d);
}

void es_lexical_rollback(es_lexical *lx, const es_lexical_undo *u)
{
	if (u->new_doc != LEX_END) {
		doc_kill(lx, u->new_doc);
		label_take(lx, u->label);
	}
	if (u->old_doc != LEX_END)
		doc_revive(lx, u->old_doc);
}

int es_lexical_upsert(es_lexical *lx, uint64_t label, const char *text,
		      size_t len, es_error *err)
{
	es_lexical_undo u;
	int rc = es_lexical_upsert_undoable(lx, label, text, len, &u, err);
	if (!rc)
		es_lexical_maybe_compact(lx);
	return rc;
}

/* ------------------------------------------------------------ batches */

/* A prepared batch: its documents (those with text) in input order, each
 * one's sorted (term, tf) pairs, and the same postings grouped by term
 * (in document order within a term), so applying touches each term once. */
typedef struct lex_group {
	uint32_t term, n;  /* postings of the batch */
	uint32_t bytes;    /* room reserved for them */
	uint32_t start;    /* first in post[] */
	uint32_t alloc;    /* bytes the reservation gave t->data, 0: none */
	uint32_t last;     /* while grouping: the batch's last document with it */
} lex_group;

struct es_lexical_batch {
	size_t n;          /* documents (inputs with text) */
	size_t *idx;       /* input index of each */
	uint64_t *labels;
	uint32_t *np, *dl; /* pairs and length of each */
	size_t *off;       /* first pair of each */
	tf_pair *pairs;
	lex_group *g;
	size_t ng;
	tf_pair *post;     /* .term: the document's number in the batch */
	size_t fwd;        /* forward-list bytes reserved */
	int held;          /* reservations held (until applied or freed) */
	int in_rt;         /* ... and counted in lx->rt (else lx->solo) */
	int applied;
};

/* Room for a posting of frequency tf whatever its gap (< 2^32): the first
 * posting of a term in a batch, whose gap from the term's last document is
 * only known when the batch is applied.  The others' gaps are the distances
 * between the batch's documents, known at once, so their room is exact
 * (a batch grows a posting list by what it adds, not 5 bytes a posting,
 * and the list is not shrunk back and grown again at every batch). */
static uint32_t posting_room(uint32_t tf)
{
	unsigned char tmp[PAIR_MAX];
	return 5 + (tf > 1 ? (uint32_t)put_varint(tmp, tf) : 0);
}

static size_t rt_home(size_t cap, uint32_t term)
{
	return ((uint32_t)(term * 2654435761u)) & (cap - 1);
}

/* The reservation entry of term, or NULL. */
static lex_resv *rt_find(const es_lexical *lx, uint32_t term)
{
	if (!lx->rtcap)
		return NULL;
	for (size_t i = rt_home(lx->rtcap, term);; i = (i + 1) & (lx->rtcap - 1)) {
		if (lx->rt[i].term == term)
			return &lx->rt[i];
		if (lx->rt[i].term == LEX_END)
			return NULL;
	}
}

/* Room for extra more entries (load at most 1/2); 0 or -1. */
static int rt_room(es_lexical *lx, size_t extra)
{
	if ((lx->rtn + extra) * 2 <= lx->rtcap)
		return 0;
	size_t cap = lx->rtcap ? lx->rtcap : 64;
	while (cap < (lx->rtn + extra) * 2)
		cap *= 2;
	lex_resv *t = es_malloc(cap * sizeof *t);
	if (!t)
		return -1;
	for (size_t i = 0; i < cap; i++)
		t[i].term = LEX_END;
	for (size_t i = 0; i < lx->rtcap; i++) {
		if (lx->rt[i].term == LEX_END)
			continue;
		size_t j = rt_home(cap, lx->rt[i].term);
		while (t[j].term != LEX_END)
			j = (j + 1) & (cap - 1);
		t[j] = lx->rt[i];
	}
	es_free(lx->rt);
	lx->rt = t;
	lx->rtcap = cap;
	return 0;
}

/* The entry of term, added (zero) if new; room must have been made. */
static lex_resv *rt_get(es_lexical *lx, uint32_t term)
{
	size_t i = rt_home(lx->rtcap, term);
	while (lx->rt[i].term != term && lx->rt[i].term != LEX_END)
		i = (i + 1) & (lx->rtcap - 1);
	if (lx->rt[i].term == LEX_END) {
		lx->rt[i].term = term;
		lx->rt[i].posts = lx->rt[i].bytes = 0;
		lx->rtn++;
	}
	return &lx->rt[i];
}

/* Count batch b's room in rt (room for its groups made). */
static void rt_add(es_lexical *lx, es_lexical_batch *b)
{
	for (size_t i = 0; i < b->ng; i++) {
		lex_resv *e = rt_get(lx, b->g[i].term);
		e->posts += b->g[i].n;
		e->bytes += b->g[i].bytes;
	}
	b->in_rt = 1;
}

/* Give back what a batch reserved (once). */
static void batch_release(es_lexical *lx, es_lexical_batch *b)
{
	if (!b->held)
		return;
	for (size_t i = 0; b->in_rt && i < b->ng; i++) {
		lex_resv *e = rt_find(lx, b->g[i].term);
		e->posts -= b->g[i].n;
		e->bytes -= b->g[i].bytes;
	}
	if (lx->solo == b)
		lx->solo = NULL;
	lx->resv_docs -= b->n;
	lx->resv_fwd -= b->fwd;
	b->held = 0;
	if (--lx->resv_batches == 0) {
		es_free(lx->rt);
		lx->rt = NULL;
		lx->rtcap = lx->rtn = 0;
	}
}

/* After an applied batch, when no other batch holds room: posting lists
 * back to data_cap(len) (a reservation counts every gap as 5 bytes).  Best
 * effort: a failed shrink keeps the larger block. */
static void batch_trim(es_lexical *lx, const es_lexical_batch *b)
{
	for (size_t i = 0; i < b->ng; i++) {
		if (!b->g[i].alloc) /* most: the reservation fitted in the list's room */
			continue;
		lex_term *t = &lx->terms[b->g[i].term];
		if (b->g[i].alloc > data_cap(t->len) && t->len) {
			unsigned char *d = es_realloc(t->data, data_cap(t->len));
			if (d)
				t->data = d;
		}
	}
}

void es_lexical_batch_free(es_lexical *lx, es_lexical_batch *b)
{
	if (!b)
		return;
	batch_release(lx, b);
	if (b->applied && lx->resv_batches == 0)
		batch_trim(lx, b);
	es_free(b->idx);
	es_free(b->labels);
	es_free(b->np);
	es_free(b->dl);
	es_free(b->off);
	es_free(b->pairs);
	es_free(b->g);
	es_free(b->post);
	es_free(b);
}

/* Analyse the texts into each document's sorted (term, tf) pairs (new
 * words join the dictionary). */
static int batch_analyse(es_lexical *lx, es_lexical_batch *b,
			 const char *const *texts, const size_t *lens,
			 es_error *err)
{
	uint32_t *ids = NULL;
	size_t nids = 0, cap = 0;
	int rc = 0;
	for (size_t j = 0; j < b->n; j++) {
		size_t start = nids, i = b->idx[j];
		if (doc_terms(lx, texts[i], lens[i], &ids, &nids, &cap)) {
			rc = es_err(err, ES_ENOMEM, "out of memory analysing text");
			goto out;
		}
		if (nids - start > UINT32_MAX - 1) {
			rc = es_err(err, ES_ERANGE, "text has too many words");
			goto out;
		}
		sort_u32(ids + start, nids - start);
		b->off[j] = start;
		b->dl[j] = (uint32_t)(nids - start);
	}
	b->pairs = es_malloc((nids ? nids : 1) * sizeof *b->pairs);
	if (!b->pairs) {
		rc = es_err(err, ES_ENOMEM, "out of memory analysing text");
		goto out;
	}
	for (size_t j = 0; j < b->n; j++)
		b->np[j] = to_pairs(ids + b->off[j], b->dl[j], b->pairs + b->off[j]);
out:
	es_free(ids);
	return rc;
}

/* Group the batch's postings by term: b->g, b->post. */
static int batch_group(es_lexical_batch *b)
{
	size_t total = 0;
	for (size_t j = 0; j < b->n; j++)
		total += b->np[j];
	size_t hcap = 16;
	while (hcap < total * 2)
		hcap *= 2;
	uint32_t *h = es_malloc(hcap * sizeof *h);          /* group + 1, 0 empty */
	uint32_t *gi = es_malloc((total ? total : 1) * sizeof *gi); /* per pair */
	b->g = es_malloc((total ? total : 1) * sizeof *b->g);
	b->post = es_malloc((total ? total : 1) * sizeof *b->post);
	int rc = -1;
	if (!h || !gi || !b->g || !b->post || total > UINT32_MAX - 1)
		goto out;
	memset(h, 0, hcap * sizeof *h);
	size_t k = 0;
	for (size_t j = 0; j < b->n; j++) {
		const tf_pair *pr = b->pairs + b->off[j];
		for (uint32_t q = 0; q < b->np[j]; q++, k++) {
			size_t s = rt_home(hcap, pr[q].term);
			while (h[s] && b->g[h[s] - 1].term != pr[q].term)
				s = (s + 1) & (hcap - 1);
			lex_group *g;
			if (!h[s]) {
				g = &b->g[b->ng];
				*g = (lex_group){pr[q].term, 0, posting_room(pr[q].tf), 0, 0, 0};
				h[s] = (uint32_t)++b->ng;
			} else {
				unsigned char tmp[PAIR_MAX];
				g = &b->g[h[s] - 1];
				g->bytes += (uint32_t)put_pair(tmp, (uint32_t)j - g->last, pr[q].tf);
			}
			g->n++;
			g->last = (uint32_t)j;
			gi[k] = h[s] - 1;
		}
	}
	uint32_t at = 0;
	for (size_t i = 0; i < b->ng; i++) {
		b->g[i].start = at;
		at += b->g[i].n;
		b->g[i].n = 0; /* refilled below */
	}
	k = 0;
	for (size_t j = 0; j < b->n; j++) {
		const tf_pair *pr = b->pairs + b->off[j];
		for (uint32_t q = 0; q < b->np[j]; q++, k++) {
			lex_group *g = &b->g[gi[k]];
			b->post[g->start + g->n++] = (tf_pair){(uint32_t)j, pr[q].tf};
		}
	}
	rc = 0;
out:
	es_free(h);
	es_free(gi);
	return rc;
}

/* Room in term t for posts more postings of bytes more bytes, on top of
 * what other batches hold (e: the term's entry, or NULL).  0, -1 (memory)
 * or ES_ERANGE. */
static int term_room(es_lexical *lx, lex_term *t, const lex_resv *e,
		     uint32_t posts, uint32_t bytes, uint32_t *alloc)
{
	uint64_t op = e ? e->posts : 0, ob = e ? e->bytes : 0;
	uint64_t np = (uint64_t)t->npost + op + posts, nb = (uint64_t)t->len + ob + bytes;
	if (np >= UINT32_MAX - 1 || nb > UINT32_MAX / 2)
		return ES_ERANGE;
	/* t->data holds at least data_cap(len + ob) bytes (see es_lexical) */
	if (data_cap(nb) > data_cap(t->len + ob)) {
		unsigned char *d = es_realloc(t->data, data_cap(nb));
		if (!d)
			return -1;
		t->data = d;
		*alloc = (uint32_t)data_cap(nb);
	}
	uint32_t need = (uint32_t)((np + LEX_BLOCK - 1) / LEX_BLOCK);
	uint32_t have = t->blocks ? (uint32_t)((t->npost + op + LEX_BLOCK - 1) / LEX_BLOCK) : 0;
	if (need > 1 && need > have) {
		lex_block *bl = es_realloc(t->blocks, (size_t)need * sizeof *bl);
		if (!bl)
			return -1;
		if (!t->blocks && t->npost)
			first_block(lx, t, &bl[0]);
		t->blocks = bl;
	}
	return 0;
}

/* Groups ahead whose term (and in apply, posting list end) is fetched
 * before it is needed. */
#define TERM_AHEAD 8

/* Reserve room for everything applying the batch needs. */
static int batch_reserve(es_lexical *lx, es_lexical_batch *b, es_error *err)
{
	size_t fwd = 0; /* exact: the term ids are known */
	unsigned char tmp[PAIR_MAX];
	for (size_t j = 0; j < b->n; j++) {
		const tf_pair *pr = b->pairs + b->off[j];
		fwd += put_varint(tmp, b->np[j]);
		for (uint32_t q = 0; q < b->np[j]; q++)
			fwd += put_pair(tmp, pr[q].term - (q ? pr[q - 1].term : 0), pr[q].tf);
	}
	if ((uint64_t)lx->ndocs + lx->resv_docs + b->n >= UINT32_MAX - 2 ||
	    lx->fwd_len + lx->resv_fwd + fwd > UINT32_MAX) /* doc_fwd is 32-bit */
		return es_err(err, ES_ERANGE, "the lexical index is full");
	if (docs_room(lx, lx->ndocs + lx->resv_docs + b->n) ||
	    grow((void **)&lx->fwd, &lx->fwd_cap, lx->fwd_len + lx->resv_fwd + fwd, 1))
		goto oom;
	for (size_t j = 0; j < b->n; j++)
		if (label_reserve(lx, b->labels[j]))
			goto oom;
	if (!lx->dense && lmap_room(lx, lx->resv_docs + b->n))
		goto oom;
	/* other batches out: their room per term in rt (built from the solo
	 * one when this is the second) */
	es_lexical_batch *solo = lx->solo;
	if (lx->resv_batches && rt_room(lx, b->ng + (solo ? solo->ng : 0)))
		goto oom;
	if (solo) {
		rt_add(lx, solo);
		lx->solo = NULL;
	}
	for (size_t i = 0; i < b->ng; i++) {
		lex_group *g = &b->g[i];
		if (i + TERM_AHEAD < b->ng) /* terms are 7 MB on a large corpus */
			__builtin_prefetch(&lx->terms[b->g[i + TERM_AHEAD].term]);
		int rc = term_room(lx, &lx->terms[g->term], rt_find(lx, g->term), g->n, g->bytes,
				   &g->alloc);
		if (rc == ES_ERANGE)
			return es_err(err, ES_ERANGE, "a word is in too many documents");
		if (rc)
			goto oom;
	}
	/* nothing can fail from here on */
	if (lx->resv_batches)
		rt_add(lx, b);
	else
		lx->solo = b;
	lx->resv_docs += b->n;
	lx->resv_fwd += fwd;
	lx->resv_batches++;
	b->fwd = fwd;
	b->held = 1;
	return 0;
oom:
	return es_err(err, ES_ENOMEM, "out of memory in the lexical index");
}

int es_lexical_batch_prepare(es_lexical *lx, const uint64_t *labels,
			     const char *const *texts, const size_t *lens,
			     size_t n, es_lexical_batch **out, es_error *err)
{
	*out = NULL;
	es_lexical_batch *b = es_calloc(1, sizeof *b);
	if (!b)
		return es_err(err, ES_ENOMEM, "out of memory analysing text");
	size_t nd = 0;
	for (size_t i = 0; i < n; i++)
		nd += texts[i] != NULL;
	size_t m = nd ? nd : 1;
	b->idx = es_malloc(m * sizeof *b->idx);
	b->labels = es_malloc(m * sizeof *b->labels);
	b->np = es_malloc(m * sizeof *b->np);
	b->dl = es_malloc(m * sizeof *b->dl);
	b->off = es_malloc(m * sizeof *b->off);
	int rc;
	if (!b->idx || !b->labels || !b->np || !b->dl || !b->off) {
		rc = es_err(err, ES_ENOMEM, "out of memory analysing text");
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (texts[i]) {
			b->idx[b->n] = i;
			b->labels[b->n++] = labels[i];
		}
	if ((rc = batch_analyse(lx, b, texts, lens, err)) != 0)
		goto fail;
	if (batch_group(b)) {
		rc = es_err(err, ES_ENOMEM, "out of memory analysing text");
		goto fail;
	}
	if ((rc = batch_reserve(lx, b, err)) != 0)
		goto fail;
	*out = b;
	return 0;
fail:
	es_lexical_batch_free(lx, b);
	return rc;
}

void es_lexical_batch_apply(es_lexical *lx, es_lexical_batch *b,
			    es_lexical_undo *undo, size_t n)
{
	for (size_t i = 0; undo && i < n; i++)
		undo[i].new_doc = undo[i].old_doc = LEX_END;
	uint32_t base = lx->ndocs;
	/* documents, dead until complete, with their forward lists */
	for (size_t j = 0; j < b->n; j++) {
		uint32_t d = lx->ndocs++;
		const tf_pair *pr = b->pairs + b->off[j];
		dlabel_set(lx, d, b->labels[j]);
		lx->doc_len[d] = b->dl[j];
		lx->doc_fwd[d] = (uint32_t)lx->fwd_len;
		lx->doc_alive[d] = 0;
		unsigned char *w = lx->fwd + lx->fwd_len;
		uint32_t prev = 0;
		w += put_varint(w, b->np[j]);
		for (uint32_t q = 0; q < b->np[j]; q++) {
			w += put_pair(w, pr[q].term - prev, pr[q].tf);
			prev = pr[q].term;
		}
		lx->fwd_len = (size_t)(w - lx->fwd);
	}
	/* postings and document frequencies, a term at a time */
	for (size_t i = 0; i < b->ng; i++) {
		const lex_group *g = &b->g[i];
		lex_term *t = &lx->terms[g->term];
		if (i + 2 * TERM_AHEAD < b->ng)
			__builtin_prefetch(&lx->terms[b->g[i + 2 * TERM_AHEAD].term], 1);
		if (i + TERM_AHEAD < b->ng) {
			const lex_term *u = &lx->terms[b->g[i + TERM_AHEAD].term];
			__builtin_prefetch(u->data + u->len, 1);
			if (u->blocks && u->npost)
				__builtin_prefetch(&u->blocks[nblocks(u) - 1], 1);
		}
		t->df += g->n;
		for (uint32_t q = 0; q < g->n; q++) {
			const tf_pair *p = &b->post[g->start + q];
			term_append(lx, t, base + p->term, p->tf, b->dl[p->term], 1);
		}
	}
	/* then they replace the labels' documents */
	for (size_t j = 0; j < b->n; j++) {
		uint32_t d = base + (uint32_t)j;
		uint64_t label = b->labels[j];
		uint32_t old = label_get(lx, label);
		if (old != LEX_END)
			doc_kill(lx, old);
		label_put(lx, label, d);
		lx->doc_alive[d] = 1;
		lx->live++;
		lx->total_len += b->dl[j];
		if (undo) {
			es_lexical_undo *u = &undo[b->idx[j]];
			u->label = label;
			u->old_doc = old;
			u->new_doc = d;
		}
	}
	b->applied = 1;
	batch_release(lx, b);
}

int es_lexical_upsert_batch(es_lexical *lx, const uint64_t *labels,
			    const char *const *texts, const size_t *lens,
			    size_t n, es_error *err)
{
	es_lexical_batch *b;
	int rc = es_lexical_batch_prepare(lx, labels, texts, lens, n, &b, err);
	if (rc)
		return rc;
	es_lexical_batch_apply(lx, b, NULL, 0);
	es_lexical_batch_free(lx, b);
	es_lexical_maybe_compact(lx);
	return 0;
}

int es_lexical_upsert_undoable(es_lexical *lx, uint64_t label,
			       const char *text, size_t len,
			       es_lexical_undo *u, es_error *err)
{
	u->label = label;
	u->new_doc = u->old_doc = LEX_END;
	es_lexical_batch *b;
	int rc = es_lexical_batch_prepare(lx, &label, &text, &len, 1, &b, err);
	if (rc)
		return rc;
	es_lexical_batch_apply(lx, b, u, 1);
	es_lexical_batch_free(lx, b);
	return 0;
}

int es_lexical_delete(es_lexical *lx, uint64_t label)
{
	es_lexical_undo u;
	int rc = es_lexical_delete_undoable(lx, label, &u);
	if (!rc)
		es_lexical_maybe_compact(lx);
	return rc;
}

int es_lexical_delete_undoable(es_lexical *lx, uint64_t label,
			       es_lexical_undo *u)
{
	u->label = label;
	u->new_doc = LEX_END;
	u->old_doc = label_take(lx, label);
	if (u->old_doc == LEX_END)
		return ES_ENOTFOUND;
	doc_kill(lx, u->old_doc);
	return 0;
}

/* Decode doc d's (term, tf) list into *pairs (grown as needed); returns
 * the pair count, or LEX_END when out of memory. */
static uint32_t doc_pairs(const es_lexical *lx, uint32_t d, tf_pair **pairs,
			  size_t *cap)
{
	const unsigned char *p;
	uint32_t np = doc_list(lx, d, &p), term = 0;
	if (grow((void **)pairs, cap, (size_t)np + 1, sizeof **pairs))
		return LEX_END;
	for (uint32_t i = 0; i < np; i++) {
		term += get_pair(&p, &(*pairs)[i].tf);
		(*pairs)[i].term = term;
	}
	return np;
}

int es_lexical_compact(es_lexical *lx, es_error *err)
{
	es_lexical *nx = NULL;
	tf_pair *pairs = NULL;
	uint32_t *remap = NULL;
	size_t cap = 0;
	if (lx->resv_batches) /* their term ids must stay */
		return es_err(err, ES_EBUSY, "prepared batches hold the lexical index");
	int rc = es_lexical_new(&lx->p, &nx, err);
	if (rc)
		return rc;
	remap = es_malloc(((size_t)lx->nterms + 1) * sizeof *remap);
	if (!remap)
		goto oom;
	/* terms some live document has, in their order: lists stay sorted */
	for (uint32_t i = 0; i < lx->nterms; i++) {
		const lex_term *ot = &lx->terms[i];
		remap[i] = LEX_END;
		if (ot->df && (remap[i] = term_intern(nx, term_str(lx, ot), ot->str_len)) == LEX_END)
			goto oom;
	}
	for (uint32_t d = 0; d < lx->ndocs; d++) {
		if (!lx->doc_alive[d])
			continue;
		uint32_t np = doc_pairs(lx, d, &pairs, &cap);
		if (np == LEX_END)
			goto oom;
		for (uint32_t i = 0; i < np; i++)
			pairs[i].term = remap[pairs[i].term];
		if (doc_add(nx, dlabel(lx, d), pairs, np))
			goto oom;
	}
	/* lx takes nx's contents and stemmer; the old ones go */
	struct sb_stemmer *st = lx->stemmer;
	free_contents(lx);
	*lx = *nx;
	es_free(nx);
	if (st)
		sb_stemmer_delete(st);
	es_free(pairs);
	es_free(remap);
	return 0;
oom:
	es_lexical_free(nx);
	es_free(pairs);
	es_free(remap);
	return es_err(err, ES_ENOMEM, "out of memory compacting the lexical index");
}

/* ------------------------------------------------------------ search */

/* A query term and its weight: how often it occurs in the analysed query
 * (qtf), or its relevance-model weight after feedback. */
typedef struct qterm {
	uint32_t term;
	double w;
} qterm;

typedef struct query_ctx {
	const es_lexical *lx;
	qterm *q;
	size_t n, cap;
	int oom;
} query_ctx;

/* Add weight w to term id in qc (appended when new): 0 or ES_ENOMEM. */
static int query_add(query_ctx *c, uint32_t id, double w)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->q[i].term == id) {
			c->q[i].w += w;
			return 0;
		}
	if (grow((void **)&c->q, &c->cap, c->n + 1, sizeof *c->q)) {
		c->oom = 1;
		return ES_ENOMEM;
	}
	c->q[c->n].term = id;
	c->q[c->n].w = w;
	c->n++;
	return 0;
}

static int query_term(void *ctx, const char *t, size_t n)
{
	query_ctx *c = ctx;
	uint32_t id = term_find(c->lx, t, n);
	if (id == LEX_END || c->lx->terms[id].df == 0)
		return 0;
	return query_add(c, id, 1.0);
}

/* Check k and analyse the query into distinct known terms (in first-seen
 * order, weight qtf); *nout = 0.  The caller frees qc->q. */
static int query_terms(const es_lexical *lx, const char *query, size_t len,
		       uint32_t k, query_ctx *qc, size_t *nout, es_error *err)
{
	int rc;
	*nout = 0;
	if (k == 0)
		return es_err(err, ES_EINVAL, "k must be > 0");
	memset(qc, 0, sizeof *qc);
	qc->lx = lx;
	int owned;
	struct sb_stemmer *st = thread_stemmer(&lx->p, &rc, &owned);
	if (!rc)
		rc = analyze(&lx->p, st, query, len, query_term, qc);
	if (owned)
		sb_stemmer_delete(st);
	if (rc || qc->oom) {
		es_free(qc->q);
		qc->q = NULL;
		return es_err(err, ES_ENOMEM, "out of memory analysing the query");
	}
	return 0;
}

typedef struct bm25 {
	double k1p1, c1, c2; /* K(dl) = c1 + c2 * dl */
	double N;
} bm25;

static void bm25_init(const es_lexical *lx, bm25 *s)
{
	double k1 = lx->p.k1, b = lx->p.b;
	double avgdl = lx->live ? (double)lx->total_len / (double)lx->live : 1.0;
	if (avgdl <= 0)
		avgdl = 1.0;
	s->k1p1 = k1 + 1.0;
	s->c1 = k1 * (1.0 - b);
	s->c2 = k1 * b / avgdl;
	s->N = (double)lx->live;
}

static double bm25_idf(const bm25 *s, uint32_t df)
{
	return log(1.0 + (s->N - df + 0.5) / (df + 0.5));
}

static inline double bm25_term(const bm25 *s, double w, uint32_t tf, uint32_t dl)
{
	double t = tf;
	return w * (t * s->k1p1) / (t + (s->c1 + s->c2 * dl));
}

/* A min-heap of the k best (score, label); ties: the larger label is
 * worse, so it leaves first. */
typedef struct topk {
	es_hit *h;
	size_t n, k;
} topk;

static int hit_worse(const es_hit *a, const es_hit *b)
{
	return a->score < b->score || (a->score == b->score && a->label > b->label);
}

/* x into the heap h[0..n) at the hole i, moving the worse children up:
 * the sift-down of topk_push's replace and of topk_finish. */
static void topk_sift(es_hit *h, size_t n, size_t i, es_hit x)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const es_hit *best = &x;
		if (l < n && hit_worse(&h[l], best)) {
			m = l;
			best = &h[l];
		}
		if (r < n && hit_worse(&h[r], best))
			m = r;
		if (m == i)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = x;
}

static void topk_push(topk *t, uint64_t label, float score)
{
	es_hit x = {label, score};
	size_t i;
	if (t->n < t->k) {
		i = t->n++;
		while (i) {
			size_t p = (i - 1) / 2;
			if (!hit_worse(&x, &t->h[p]))
				break;
			t->h[i] = t->h[p];
			i = p;
		}
		t->h[i] = x;
		return;
	}
	if (!hit_worse(&t->h[0], &x))
		return;
	topk_sift(t->h, t->n, 0, x);
}

/* The heap best first, in place: the worst (the root) swapped to the end
 * and the heap shrunk, a heap sort.  Same order as a sort by score then
 * label (hit_worse is total on distinct labels), without qsort's
 * callbacks and scratch buffer (~2% of a hybrid query's profile). */
static void topk_finish(topk *t, es_hit *out, size_t *nout)
{
	for (size_t n = t->n; n > 1;) {
		es_hit worst = t->h[0];
		n--;
		topk_sift(t->h, n, 0, t->h[n]);
		t->h[n] = worst;
	}
	if (out != t->h)
		memcpy(out, t->h, t->n * sizeof *out);
	*nout = t->n;
}

static int accept(const es_lexical *lx, uint32_t d, es_lexical_filter_fn f,
		  void *fctx)
{
	return lx->doc_alive[d] && (!f || f(fctx, dlabel(lx, d)));
}

/* Where a search's answer goes and what it may return. */
typedef struct search_out {
	uint32_t k;
	es_lexical_filter_fn filter;
	void *filter_ctx;
	es_hit *out;
	size_t *nout;
} search_out;

/* Term at a time: every posting of every query term into one accumulator
 * per document, then the k best.  O(postings + documents): the reference
 * for tests, and the faster plan when the query's postings cover much of
 * the collection (long queries, see es_lexical_search). */
/* Add term `term`'s BM25 part at weight w (its query weight) to every
 * document that has it: acc[doc] += ..., hit[doc] = 1. */
static void taat_add(const es_lexical *lx, const bm25 *s, uint32_t term, double w,
		     double *acc, unsigned char *hit)
{
	const lex_term *t = &lx->terms[term];
	w *= bm25_idf(s, t->df);
	const unsigned char *p = t->data;
	uint32_t doc = 0;
	for (uint32_t j = 0; j < t->npost; j++) {
		uint32_t tf;
		doc += get_pair(&p, &tf);
		acc[doc] += bm25_term(s, w, tf, lx->doc_len[doc]);
		hit[doc] = 1;
	}
}

/* The k best accepted documents of the accumulators into so. */
static void taat_top(const es_lexical *lx, const double *acc, const unsigned char *hit,
		     const search_out *so)
{
	topk tk = {so->out, 0, so->k};
	for (uint32_t d = 0; d < lx->ndocs; d++) {
		if (!hit[d])
			continue;
		/* below the k-th best: out without the filter or the heap (a
		 * tie may still win on its label) */
		float sc = (float)acc[d];
		if (tk.n == tk.k && sc < tk.h[0].score)
			continue;
		if (accept(lx, d, so->filter, so->filter_ctx))
			topk_push(&tk, dlabel(lx, d), sc);
	}
	topk_finish(&tk, so->out, so->nout);
}

/* One accumulator and one hit flag per document: 0 or ES_ENOMEM. */
static int taat_alloc(const es_lexical *lx, double **acc, unsigned char **hit, es_error *err)
{
	*acc = es_calloc(lx->ndocs ? lx->ndocs : 1, sizeof **acc);
	*hit = es_calloc(lx->ndocs ? lx->ndocs : 1, 1);
	if (*acc && *hit)
		return 0;
	es_free(*acc);
	es_free(*hit);
	return es_err(err, ES_ENOMEM, "out of memory for the search");
}

/* The accumulators of every document for the query qc (*acc, *hit, one
 * per document; the caller frees them) and the BM25 constants in *s: the
 * term-at-a-time pass that search_taat and feedback_taat share.  0 or
 * ES_ENOMEM. */
static int taat_score_query(const es_lexical *lx, const query_ctx *qc, bm25 *s,
			    double **acc, unsigned char **hit, es_error *err)
{
	if (taat_alloc(lx, acc, hit, err))
		return ES_ENOMEM;
	bm25_init(lx, s);
	for (size_t i = 0; i < qc->n; i++)
		taat_add(lx, s, qc->q[i].term, qc->q[i].w, *acc, *hit);
	return 0;
}

static int search_taat(const es_lexical *lx, const query_ctx *qc,
		       const search_out *so, es_error *err)
{
	double *acc;
	unsigned char *hit;
	bm25 s;
	*so->nout = 0;
	if (!qc->n)
		return 0;
	if (taat_score_query(lx, qc, &s, &acc, &hit, err))
		return ES_ENOMEM;
	taat_top(lx, acc, hit, so);
	es_free(acc);
	es_free(hit);
	return 0;
}

int es_lexical_search_exhaustive(const es_lexical *lx, const char *query,
				 size_t len, uint32_t k,
				 es_lexical_filter_fn filter, void *filter_ctx,
				 es_hit *out, size_t *nout, es_error *err)
{
	query_ctx qc;
	int rc = query_terms(lx, query, len, k, &qc, nout, err);
	if (rc)
		return rc;
	search_out so = {k, filter, filter_ctx, out, nout};
	rc = search_taat(lx, &qc, &so, err);
	es_free(qc.q);
	return rc;
}

typedef struct cursor {
	const lex_term *t;
	double w;       /* query weight * idf */
	double ub;      /* bound over all blocks */
	uint32_t doc;   /* current doc, LEX_END when done */
	uint32_t blk;   /* block of doc */
	uint32_t pos, n; /* in the decoded block */
	uint32_t decoded; /* block in docs/tfs, LEX_END none */
	uint32_t sblk;  /* shallow position (block bounds only) */
	uint32_t nb;    /* blocks of t */
	const lex_block *bl; /* t->blocks, or &b0 for a single block */
	lex_block b0;
	uint32_t docs[LEX_BLOCK], tfs[LEX_BLOCK];
} cursor;

static void cur_decode(cursor *c, uint32_t b)
{
	const lex_term *t = c->t;
	uint32_t base = b ? c->bl[b - 1].last_doc : 0;
	uint32_t n = t->npost - b * LEX_BLOCK;
	if (n > LEX_BLOCK)
		n = LEX_BLOCK;
	const unsigned char *p = t->data + c->bl[b].off;
	for (uint32_t i = 0; i < n; i++) {
		base += get_pair(&p, &c->tfs[i]);
		c->docs[i] = base;
	}
	c->n = n;
	c->decoded = b;
	c->blk = b;
	c->pos = 0;
}

static void cur_next_geq(cursor *c, uint32_t target)
{
	if (c->doc >= target)
		return;
	uint32_t b = c->blk;
	while (b < c->nb && c->bl[b].last_doc < target)
		b++;
	if (b == c->nb) {
		c->doc = LEX_END;
		c->blk = b;
		return;
	}
	if (b != c->decoded)
		cur_decode(c, b);
	while (c->docs[c->pos] < target)
		c->pos++;
	c->doc = c->docs[c->pos];
}

static void cur_next(cursor *c)
{
	if (++c->pos < c->n) {
		c->doc = c->docs[c->pos];
		return;
	}
	if (c->blk + 1 >= c->nb) {
		c->doc = LEX_END;
		c->blk = c->nb;
		return;
	}
	cur_decode(c, c->blk + 1);
	c->doc = c->docs[0];
}

static double block_bound(const bm25 *s, const cursor *c, uint32_t b)
{
	const lex_block *bl = &c->bl[b];
	/* 1e-9: the sum of bounds is added in another order than a score */
	return bm25_term(s, c->w, bl->max_tf, bl->min_dl) * (1.0 + 1e-9);
}

static void sort_cursors(cursor **cs, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		cursor *x = cs[i];
		size_t j = i;
		while (j && cs[j - 1]->doc > x->doc) {
			cs[j] = cs[j - 1];
			j--;
		}
		cs[j] = x;
	}
}

/* Block-Max WAND's state: one cursor per query term (cur, in query
 * order; cs, sorted by current document), the k best so far and theta,
 * the score a document must beat to enter them. */
typedef struct wand {
	const es_lexical *lx;
	bm25 s;
	cursor *cur, **cs;
	size_t n;
	topk tk;
	double theta;
	const search_out *so;
} wand;

/* Open a cursor on each query term, on its first posting, with the bound
 * of its best block. */
static void wand_open(wand *w, const query_ctx *qc)
{
	for (size_t i = 0; i < w->n; i++) {
		cursor *c = &w->cur[i];
		c->t = &w->lx->terms[qc->q[i].term];
		c->w = qc->q[i].w * bm25_idf(&w->s, c->t->df);
		c->ub = 0;
		c->nb = nblocks(c->t);
		if (c->t->blocks) {
			c->bl = c->t->blocks;
		} else {
			first_block(w->lx, c->t, &c->b0);
			c->bl = &c->b0;
		}
		for (uint32_t b = 0; b < c->nb; b++) {
			double x = block_bound(&w->s, c, b);
			if (x > c->ub)
				c->ub = x;
		}
		c->decoded = LEX_END;
		c->sblk = 0;
		cur_decode(c, 0);
		c->doc = c->docs[0];
		w->cs[i] = c;
	}
}

/* The pivot: the first sorted cursor at which the bounds so far exceed
 * theta, moved on past the cursors on the same document.  n when no
 * document left can enter the top k. */
static size_t wand_pivot(const wand *w)
{
	cursor *const *cs = w->cs;
	double acc = 0;
	size_t p = w->n;
	for (size_t i = 0; i < w->n && cs[i]->doc != LEX_END; i++) {
		acc += cs[i]->ub;
		if (acc > w->theta) {
			p = i;
			break;
		}
	}
	if (p == w->n)
		return p;
	while (p + 1 < w->n && cs[p + 1]->doc == cs[p]->doc)
		p++;
	return p;
}

/* The sum of the bounds of the blocks cursors cs[0..p] hold for document
 * d (shallow moves: nothing is decoded); *minlast the first block end. */
static double wand_block_sum(wand *w, size_t p, uint32_t d, uint32_t *minlast)
{
	double bsum = 0;
	*minlast = LEX_END;
	for (size_t i = 0; i <= p; i++) {
		cursor *c = w->cs[i];
		if (c->sblk < c->blk)
			c->sblk = c->blk;
		while (c->sblk < c->nb && c->bl[c->sblk].last_doc < d)
			c->sblk++;
		if (c->sblk < c->nb) {
			bsum += block_bound(&w->s, c, c->sblk);
			if (c->bl[c->sblk].last_doc < *minlast)
				*minlast = c->bl[c->sblk].last_doc;
		}
	}
	return bsum;
}

/* Score document d (every cursor on it) into the top k, when accepted. */
static void wand_score(wand *w, uint32_t d)
{
	const es_lexical *lx = w->lx;
	if (!accept(lx, d, w->so->filter, w->so->filter_ctx))
		return;
	/* sum in query order, as the exhaustive search */
	double sc = 0;
	uint32_t dl = lx->doc_len[d];
	for (size_t i = 0; i < w->n; i++)
		if (w->cur[i].doc == d)
			sc += bm25_term(&w->s, w->cur[i].w, w->cur[i].tfs[w->cur[i].pos], dl);
	topk_push(&w->tk, dlabel(lx, d), (float)sc);
	if (w->tk.n == w->tk.k)
		w->theta = w->tk.h[0].score;
}

/* Nothing in [d, next) can pass theta: move cs[0..p] to next, the first
 * document after the blocks' ends (minlast) or the next cursor's. */
static void wand_skip(wand *w, size_t p, uint32_t minlast)
{
	cursor **cs = w->cs;
	uint32_t next = minlast == LEX_END ? LEX_END : minlast + 1;
	if (p + 1 < w->n && cs[p + 1]->doc < next)
		next = cs[p + 1]->doc;
	for (size_t i = 0; i <= p; i++) {
		if (next == LEX_END) {
			cs[i]->doc = LEX_END;
			cs[i]->blk = cs[i]->nb;
		} else {
			cur_next_geq(cs[i], next);
		}
	}
}

/* Document at a time with Block-Max WAND: postings that cannot reach the
 * current k-th score are skipped a block at a time. */
static int search_wand(const es_lexical *lx, const query_ctx *qc,
		       const search_out *so, es_error *err)
{
	wand w;
	memset(&w, 0, sizeof w);
	w.lx = lx;
	w.n = qc->n;
	w.tk = (topk){so->out, 0, so->k};
	w.so = so;
	*so->nout = 0;
	if (!w.n)
		return 0;
	w.cur = es_malloc(w.n * sizeof *w.cur);
	w.cs = es_malloc(w.n * sizeof *w.cs);
	if (!w.cur || !w.cs) {
		es_free(w.cur);
		es_free(w.cs);
		return es_err(err, ES_ENOMEM, "out of memory for the search");
	}
	bm25_init(lx, &w.s);
	wand_open(&w, qc);
	for (;;) {
		sort_cursors(w.cs, w.n);
		size_t p = wand_pivot(&w);
		if (p == w.n)
			break;
		uint32_t d = w.cs[p]->doc, minlast;
		if (wand_block_sum(&w, p, d, &minlast) <= w.theta) {
			wand_skip(&w, p, minlast);
		} else if (w.cs[0]->doc == d) {
			wand_score(&w, d);
			for (size_t i = 0; i <= p; i++)
				cur_next(w.cs[i]);
		} else {
			/* no document before d can pass theta */
			for (size_t i = 0; i < p && w.cs[i]->doc < d; i++)
				cur_next_geq(w.cs[i], d);
		}
	}
	topk_finish(&w.tk, so->out, so->nout);
	es_free(w.cur);
	es_free(w.cs);
	return 0;
}

/* Run an analysed query with the faster plan (auto_plan), or always WAND.
 * Long queries (CISI's are ~40 terms) touch most of a small collection:
 * document-at-a-time pivoting then costs more per posting than it skips,
 * and one pass per term into an accumulator is several times faster
 * (bench/RESULTS.md).  Same scores, same order. */
static int plan_taat(const es_lexical *lx, const query_ctx *qc)
{
	uint64_t npost = 0;
	for (size_t i = 0; i < qc->n; i++)
		npost += lx->terms[qc->q[i].term].npost;
	return qc->n >= LEX_TAAT_MIN_TERMS && npost * LEX_TAAT_RATIO >= lx->ndocs;
}

static int search_run(const es_lexical *lx, const query_ctx *qc, const search_out *so,
		      int auto_plan, es_error *err)
{
	if (auto_plan && plan_taat(lx, qc))
		return search_taat(lx, qc, so, err);
	return search_wand(lx, qc, so, err);
}

static int search_plan(const es_lexical *lx, const char *query, size_t len,
		       uint32_t k, es_lexical_filter_fn filter, void *filter_ctx,
		       es_hit *out, size_t *nout, int auto_plan, es_error *err)
{
	query_ctx qc;
	int rc = query_terms(lx, query, len, k, &qc, nout, err);
	if (rc)
		return rc;
	search_out so = {k, filter, filter_ctx, out, nout};
	rc = search_run(lx, &qc, &so, auto_plan, err);
	es_free(qc.q);
	return rc;
}

int es_lexical_search(const es_lexical *lx, const char *query, size_t len,
		      uint32_t k, es_lexical_filter_fn filter, void *filter_ctx,
		      es_hit *out, size_t *nout, es_error *err)
{
	return search_plan(lx, query, len, k, filter, filter_ctx, out, nout, 1, err);
}

int es_lexical_search_wand(const es_lexical *lx, const char *query, size_t len,
			   uint32_t k, es_lexical_filter_fn filter, void *filter_ctx,
			   es_hit *out, size_t *nout, es_error *err)
{
	return search_plan(lx, query, len, k, filter, filter_ctx, out, nout, 0, err);
}

/* ------------------------------------------------------------ feedback */

void es_lexical_feedback_default(es_lexical_feedback *fb)
{
	fb->docs = ES_LEXICAL_FEEDBACK_DOCS;
	fb->terms = ES_LEXICAL_FEEDBACK_TERMS;
	fb->query_weight = ES_LEXICAL_FEEDBACK_QUERY_WEIGHT;
}

int es_lexical_feedback_check(const es_lexical_feedback *fb, es_error *err)
{
	if (fb->docs > ES_LEXICAL_FEEDBACK_MAX)
		return es_err(err, ES_EINVAL, "feedback docs must be at most %u",
			      ES_LEXICAL_FEEDBACK_MAX);
	if (fb->docs && (fb->terms < 1 || fb->terms > ES_LEXICAL_FEEDBACK_MAX))
		return es_err(err, ES_EINVAL, "feedback terms must be 1..%u",
			      ES_LEXICAL_FEEDBACK_MAX);
	if (!(fb->query_weight >= 0 && fb->query_weight <= 1))
		return es_err(err, ES_EINVAL, "feedback query_weight must be between 0 and 1");
	return 0;
}

/* A candidate expansion term and its relevance-model weight. */
typedef struct fb_term {
	uint32_t term;
	double w;
} fb_term;

/* Is x heavier than y (ties: the smaller term id first)? */
static int fb_heavier(const fb_term *x, const fb_term *y)
{
	return x->w > y->w || (x->w == y->w && x->term < y->term);
}

/* The relevance model of the feedback documents fh[0..nf): every term of
 * each document with weight (score / sum of scores) * tf / length, summed
 * over the documents (an open-addressing table on the term id), the best
 * `terms` kept, heaviest first, into *out (*nout of them; the caller frees
 * *out).  0 or ES_ENOMEM. */
static int relevance_model(const es_lexical *lx, const es_hit *fh, size_t nf,
			   uint32_t terms, fb_term **out, size_t *nout)
{
	double tot = 0;
	size_t cap = 0;
	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < nf; i++) {
		const unsigned char *p;
		tot += fh[i].score;
		cap += doc_list(lx, label_get(lx, fh[i].label), &p);
	}
	if (!cap || !(tot > 0))
		return 0;
	size_t h = 16;
	while (h < 2 * cap)
		h *= 2;
	size_t keep = terms < cap ? terms : cap;
	fb_term *tab = es_malloc(h * sizeof *tab), *best = es_malloc(keep * sizeof *best);
	if (!tab || !best) {
		es_free(tab);
		es_free(best);
		return ES_ENOMEM;
	}
	for (size_t i = 0; i < h; i++)
		tab[i].term = LEX_END;
	for (size_t i = 0; i < nf; i++) {
		uint32_t d = label_get(lx, fh[i].label), term = 0;
		const unsigned char *p;
		uint32_t np = doc_list(lx, d, &p);
		double dw = fh[i].score / tot / (lx->doc_len[d] ? lx->doc_len[d] : 1);
		for (uint32_t j = 0; j < np; j++) {
			uint32_t tf;
			term += get_pair(&p, &tf);
			size_t x = (size_t)hash_u64(term) & (h - 1);
			while (tab[x].term != LEX_END && tab[x].term != term)
				x = (x + 1) & (h - 1);
			if (tab[x].term == LEX_END) {
				tab[x].term = term;
				tab[x].w = 0;
			}
			tab[x].w += dw * tf;
		}
	}
	/* the `keep` heaviest by insertion into a sorted array: most terms
	 * are lighter than the lightest kept and cost one comparison */
	size_t n = 0;
	for (size_t x = 0; x < h; x++) {
		if (tab[x].term == LEX_END || (n == keep && !fb_heavier(&tab[x], &best[n - 1])))
			continue;
		size_t i = n < keep ? n++ : n - 1;
		while (i && fb_heavier(&tab[x], &best[i - 1])) {
			best[i] = best[i - 1];
			i--;
		}
		best[i] = tab[x];
	}
	es_free(tab);
	*out = best;
	*nout = n;
	return 0;
}

/* RM3's mixture: the query's weights are to be multiplied by the
 * returned factor, query_weight / (sum of them), and t[0..nt) get their
 * weights in the expanded query, (1 - query_weight) * w / (sum of w). */
static double rm3_mix(const query_ctx *qc, fb_term *t, size_t nt,
		      const es_lexical_feedback *fb)
{
	double qz = 0, ez = 0;
	for (size_t i = 0; i < qc->n; i++)
		qz += qc->q[i].w;
	for (size_t i = 0; i < nt; i++)
		ez += t[i].w;
	for (size_t i = 0; i < nt; i++)
		t[i].w = (1.0 - fb->query_weight) * t[i].w / ez;
	return fb->query_weight / qz;
}

/* RM3: qc becomes query_weight * (qc normalised to sum 1) + (1 -
 * query_weight) * (the relevance model's terms normalised to sum 1). */
static int expand_query(const es_lexical *lx, query_ctx *qc, const es_hit *fh, size_t nf,
			const es_lexical_feedback *fb)
{
	fb_term *t;
	size_t nt;
	int rc = relevance_model(lx, fh, nf, fb->terms, &t, &nt);
	if (rc || !nt) {
		es_free(t);
		return rc;
	}
	double scale = rm3_mix(qc, t, nt, fb);
	for (size_t i = 0; i < qc->n; i++)
		qc->q[i].w *= scale;
	for (size_t i = 0; i < nt && !rc; i++)
		rc = query_add(qc, t[i].term, t[i].w);
	es_free(t);
	/* a weight of 0 (query_weight 0 or 1) would match without scoring */
	size_t m = 0;
	for (size_t i = 0; i < qc->n; i++)
		if (qc->q[i].w > 0)
			qc->q[m++] = qc->q[i];
	qc->n = m;
	return rc;
}

/* Feedback when the query is scored term at a time: the expanded query's
 * scores are the first pass's accumulators times the query's factor plus
 * the expansion terms' parts (BM25 is linear in the query weights), so
 * only the expansion terms' postings are read again.  Same scores as
 * expand_query + search_taat up to the order of the additions. */
static int feedback_taat(const es_lexical *lx, const query_ctx *qc,
			 const es_lexical_feedback *fb, es_hit *fh, const search_out *so,
			 es_error *err)
{
	double *acc;
	unsigned char *hit;
	size_t nf = 0, nt = 0;
	fb_term *t = NULL;
	bm25 s;
	if (taat_score_query(lx, qc, &s, &acc, &hit, err))
		return ES_ENOMEM;
	search_out first = {fb->docs, so->filter, so->filter_ctx, fh, &nf};
	taat_top(lx, acc, hit, &first);
	if (relevance_model(lx, fh, nf, fb->terms, &t, &nt)) {
		es_free(acc);
		es_free(hit);
		return es_err(err, ES_ENOMEM, "out of memory expanding the query");
	}
	if (nt) {
		double scale = rm3_mix(qc, t, nt, fb);
		if (scale > 0) {
			for (uint32_t d = 0; d < lx->ndocs; d++)
				acc[d] *= scale;
		} else {
			/* query_weight 0: only the expansion terms match */
			memset(acc, 0, lx->ndocs * sizeof *acc);
			memset(hit, 0, lx->ndocs);
		}
		for (size_t i = 0; i < nt; i++)
			if (t[i].w > 0)
				taat_add(lx, &s, t[i].term, t[i].w, acc, hit);
	}
	taat_top(lx, acc, hit, so);
	es_free(t);
	es_free(acc);
	es_free(hit);
	return 0;
}

int es_lexical_search_feedback(const es_lexical *lx, const char *query, size_t len,
			       uint32_t k, const es_lexical_feedback *fb,
			       es_lexical_filter_fn filter, void *filter_ctx,
			       es_hit *out, size_t *nout, es_error *err)
{
	int rc = es_lexical_feedback_check(fb, err);
	if (rc)
		return rc;
	if (!fb->docs)
		return es_lexical_search(lx, query, len, k, filter, filter_ctx, out, nout, err);
	query_ctx qc;
	rc = query_terms(lx, query, len, k, &qc, nout, err);
	if (rc)
		return rc;
	size_t nf = 0;
	es_hit *fh = es_malloc(fb->docs * sizeof *fh);
	if (!fh) {
		rc = es_err(err, ES_ENOMEM, "out of memory for the feedback documents");
		goto out;
	}
	if (qc.n && plan_taat(lx, &qc)) {
		search_out so = {k, filter, filter_ctx, out, nout};
		rc = feedback_taat(lx, &qc, fb, fh, &so, err);
		goto out;
	}
	search_out first = {fb->docs, filter, filter_ctx, fh, &nf};
	rc = search_run(lx, &qc, &first, 1, err);
	if (rc)
		goto out;
	if (expand_query(lx, &qc, fh, nf, fb)) {
		rc = es_err(err, ES_ENOMEM, "out of memory expanding the query");
		goto out;
	}
	search_out so = {k, filter, filter_ctx, out, nout};
	rc = search_run(lx, &qc, &so, 1, err);
out:
	es_free(fh);
	es_free(qc.q);
	return rc;
}

/* ------------------------------------------------------------ bytes */

static void w_varint(es_writer *w, uint32_t v)
{
	unsigned char tmp[5];
	es_w_bytes(w, tmp, put_varint(tmp, v));
}

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/*
 * Format (version 1), all integers little-endian, vN = LEB128 varint:
 *   "ESLEXIDX" u32 version u32 flags (1 stemming, 2 stop words)
 *   u32 k1 (float bits) u32 b (float bits)
 *   u32 nterms u32 ndocs u64 total length
 *   nterms x { vN length (1..ES_TOKEN_MAX), bytes }   distinct terms
 *   ndocs x { u64 label, vN pairs, pairs x { vN term gap, vN tf } }
 *            term ids strictly increasing (the first gap from 0), tf >= 1
 *   u32 CRC-32C of everything before it
 * Only live documents and the terms they use are written.
 */
int es_lexical_serialize(const es_lexical *lx, unsigned char **out,
			 size_t *len, es_error *err)
{
	*out = NULL;
	*len = 0;
	uint32_t *remap = es_malloc(((size_t)lx->nterms + 1) * sizeof *remap);
	if (!remap)
		return es_err(err, ES_ENOMEM, "out of memory serialising the lexical index");
	uint32_t nt = 0;
	for (uint32_t i = 0; i < lx->nterms; i++)
		remap[i] = lx->terms[i].df ? nt++ : LEX_END;
	es_bytebuf buf;
	es_bytebuf_init(&buf);
	es_writer w;
	es_writer_init_mem(&w, &buf, crc32c); /* a fresh buffer: cannot fail */
	es_w_bytes(&w, LEX_MAGIC, 8);
	es_w_u32(&w, LEX_VERSION);
	es_w_u32(&w, (lx->p.stemming ? LEX_FLAG_STEM : 0) | (lx->p.stopwords ? LEX_FLAG_STOP : 0));
	es_w_f32s(&w, &lx->p.k1, 1);
	es_w_f32s(&w, &lx->p.b, 1);
	es_w_u32(&w, nt);
	es_w_u32(&w, (uint32_t)lx->live);
	es_w_u64(&w, lx->total_len);
	for (uint32_t i = 0; i < lx->nterms; i++) {
		const lex_term *t = &lx->terms[i];
		if (remap[i] == LEX_END)
			continue;
		w_varint(&w, t->str_len);
		es_w_bytes(&w, term_str(lx, t), t->str_len);
	}
	for (uint32_t d = 0; d < lx->ndocs; d++) {
		if (!lx->doc_alive[d])
			continue;
		es_w_u64(&w, dlabel(lx, d));
		const unsigned char *p;
		uint32_t np = doc_list(lx, d, &p), term = 0, prev = 0;
		w_varint(&w, np);
		for (uint32_t i = 0; i < np; i++) {
			uint32_t tf;
			term += get_pair(&p, &tf);
			/* remap keeps the order: gaps stay positive */
			w_varint(&w, remap[term] - prev);
			w_varint(&w, tf);
			prev = remap[term];
		}
	}
	es_free(remap);
	es_w_u32(&w, es_writer_crc(&w));
	if (es_writer_finish(&w)) {
		es_bytebuf_free(&buf);
		return es_err(err, ES_ENOMEM, "out of memory serialising the lexical index");
	}
	*out = buf.data;
	*len = buf.len;
	return 0;
}

#define BAD(...)                                                        \
	do {                                                            \
		rc = es_err(err, ES_ECORRUPT, "lexical index: " __VA_ARGS__); \
		goto out;                                               \
	} while (0)

int es_lexical_deserialize(const unsigned char *buf, size_t len,
			   es_lexical **out, es_error *err)
{
	*out = NULL;
	es_lexical *lx = NULL;
	uint32_t *ids = NULL;
	tf_pair *pairs = NULL;
	size_t pcap = 0;
	int rc = 0;
	if (len < 40 + 4)
		BAD("%zu bytes is too short", len);
	if (memcmp(buf, LEX_MAGIC, 8) != 0)
		BAD("bad magic at offset 0");
	uint32_t ver = get_u32(buf + 8);
	if (ver > LEX_VERSION || ver == 0) {
		rc = es_err(err, ES_EUNSUPPORTED,
			    "lexical index: format version %u is not supported (this build reads 1)",
			    ver);
		goto out;
	}
	uint32_t stored = get_u32(buf + len - 4);
	if (crc32c(0, buf, len - 4) != stored)
		BAD("checksum mismatch (offset %zu)", len - 4);
	len -= 4;
	uint32_t flags = get_u32(buf + 12);
	if (flags & ~(LEX_FLAG_STEM | LEX_FLAG_STOP))
		BAD("unknown flags 0x%x at offset 12", flags);
	es_lexical_params p;
	p.k1 = bits_f32(get_u32(buf + 16));
	p.b = bits_f32(get_u32(buf + 20));
	p.stemming = !!(flags & LEX_FLAG_STEM);
	p.stopwords = !!(flags & LEX_FLAG_STOP);
	if (es_lexical_params_check(&p, NULL))
		BAD("k1 %g / b %g out of range at offset 16", (double)p.k1, (double)p.b);
	uint32_t nt = get_u32(buf + 24), nd = get_u32(buf + 28);
	uint64_t total = get_u64(buf + 32);
	size_t off = 40;
	/* every term takes >= 2 bytes and every document >= 9 */
	if (nt > (len - off) / 2 || nd > (len - off) / 9)
		BAD("%u terms / %u documents cannot fit in %zu bytes", nt, nd, len);
	rc = es_lexical_new(&p, &lx, err);
	if (rc)
		goto out;
	ids = es_malloc(((size_t)nt + 1) * sizeof *ids);
	if (!ids) {
		rc = es_err(err, ES_ENOMEM, "out of memory loading the lexical index");
		goto out;
	}
	for (uint32_t i = 0; i < nt; i++) {
		uint32_t tl;
		size_t at = off;
		if (read_varint(buf, len, &off, &tl) || tl == 0 || tl > ES_TOKEN_MAX ||
		    tl > len - off)
			BAD("bad length of term %u at offset %zu", i, at);
		const char *s = (const char *)buf + off;
		if (memchr(s, '\0', tl))
			BAD("term %u at offset %zu holds a NUL byte", i, at);
		if (term_find(lx, s, tl) != LEX_END)
			BAD("term %u at offset %zu is a duplicate", i, at);
		ids[i] = term_intern(lx, s, tl);
		if (ids[i] == LEX_END) {
			rc = es_err(err, ES_ENOMEM, "out of memory loading the lexical index");
			goto out;
		}
		off += tl;
	}
	uint64_t sum = 0;
	for (uint32_t d = 0; d < nd; d++) {
		size_t at = off;
		if (len - off < 8)
			BAD("document %u truncated at offset %zu", d, at);
		uint64_t label = get_u64(buf + off);
		off += 8;
		uint32_t np;
		if (read_varint(buf, len, &off, &np) || np > nt || np > (len - off) / 2)
			BAD("bad term count of document %u at offset %zu", d, at);
		if (grow((void **)&pairs, &pcap, (size_t)np + 1, sizeof *pairs)) {
			rc = es_err(err, ES_ENOMEM, "out of memory loading the lexical index");
			goto out;
		}
		uint64_t term = 0;
		for (uint32_t i = 0; i < np; i++) {
			uint32_t gap, tf;
			size_t pat = off;
			if (read_varint(buf, len, &off, &gap) || read_varint(buf, len, &off, &tf))
				BAD("document %u truncated at offset %zu", d, pat);
			term += gap;
			if ((i > 0 && gap == 0) || term >= nt || tf == 0)
				BAD("bad term %" PRIu64 " / frequency %u in document %u at offset %zu",
				    term, tf, d, pat);
			pairs[i].term = ids[term];
			pairs[i].tf = tf;
			sum += tf;
		}
		if (label_get(lx, label) != LEX_END)
			BAD("document %u at offset %zu repeats label %" PRIu64, d, at, label);
		rc = doc_add(lx, label, pairs, np);
		if (rc == ES_ERANGE)
			BAD("document %u at offset %zu is too long", d, at);
		if (rc) {
			es_err(err, rc, "out of memory loading the lexical index");
			goto out;
		}
	}
	if (off != len)
		BAD("%zu unexpected bytes at offset %zu", len - off, off);
	if (sum != total)
		BAD("document lengths add up to %" PRIu64 ", the header says %" PRIu64, sum, total);
	for (uint32_t i = 0; i < nt; i++)
		if (lx->terms[ids[i]].df == 0)
			BAD("term %u is in no document", i);
	*out = lx;
	lx = NULL;
out:
	es_lexical_free(lx);
	es_free(ids);
	es_free(pairs);
	return rc;
}
