/*
 * payload_index.c — payload indexes; see payload_index.h.
 *
 * Layout: one posting per distinct value (its key bytes: the string, or
 * the int64 in 8 little-endian bytes; the label set as a sorted array) in
 * a dense array, found through core/u64map keyed by a 64-bit hash of the
 * key (hashes may repeat: the keys are compared).  Labels mostly arrive in
 * increasing order (fresh labels), so an insert is usually an append; a
 * reused label costs a memmove of its posting's tail.  A posting that
 * becomes empty leaves the array (the last one takes its place), so
 * memory follows the live values.
 */
#include "payload_index.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "u64map.h"

typedef struct posting {
	unsigned char *key;
	size_t klen;
	uint64_t hash;
	uint64_t *lab;   /* sorted, unique */
	size_t n, cap;
} posting;

struct es_pindex {
	char *field;
	es_pindex_kind kind;
	posting *e;       /* distinct values */
	size_t n, cap;
	es_u64map map;    /* key hash -> index into e */
	posting other;    /* integer: labels with a non-int64 number */
	int broken;
	size_t lab_bytes; /* bytes of all label arrays and keys */
};

int es_pindex_check(const char *field, int kind, es_error *err)
{
	size_t len = field ? strlen(field) : 0;
	if (len == 0 || len > ES_PINDEX_FIELD_MAX)
		return es_err(err, ES_EINVAL, "a field name of 1 to %d bytes is required",
			      ES_PINDEX_FIELD_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)field[i] < 0x20 || field[i] == 0x7f)
			return es_err(err, ES_EINVAL, "field name: control character at byte %zu", i);
	if (kind != ES_PINDEX_KEYWORD && kind != ES_PINDEX_INTEGER)
		return es_err(err, ES_EINVAL, "unknown index kind %d", kind);
	return 0;
}

int es_pindex_new(const char *field, es_pindex_kind kind, es_pindex **out)
{
	*out = NULL;
	es_pindex *x = es_calloc(1, sizeof *x);
	if (!x)
		return ES_ENOMEM;
	if (!(x->field = es_strdup(field))) {
		es_free(x);
		return ES_ENOMEM;
	}
	x->kind = kind;
	es_u64map_init(&x->map);
	*out = x;
	return 0;
}

void es_pindex_free(es_pindex *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n; i++) {
		es_free(x->e[i].key);
		es_free(x->e[i].lab);
	}
	es_free(x->e);
	es_free(x->other.lab);
	es_u64map_destroy(&x->map);
	es_free(x->field);
	es_free(x);
}

const char *es_pindex_field(const es_pindex *x)
{
	return x->field;
}

es_pindex_kind es_pindex_kind_of(const es_pindex *x)
{
	return x->kind;
}

const char *es_pindex_kind_name(es_pindex_kind k)
{
	return k == ES_PINDEX_KEYWORD ? "keyword" : k == ES_PINDEX_INTEGER ? "integer" : "unknown";
}

int es_pindex_kind_parse(const char *name, es_pindex_kind *out)
{
	if (name && strcmp(name, "keyword") == 0)
		*out = ES_PINDEX_KEYWORD;
	else if (name && strcmp(name, "integer") == 0)
		*out = ES_PINDEX_INTEGER;
	else
		return -1;
	return 0;
}

int es_pindex_usable(const es_pindex *x)
{
	return !x->broken;
}

/* FNV-1a; the map spreads it further. */
static uint64_t key_hash(const void *k, size_t n)
{
	const unsigned char *p = k;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void int_key(int64_t v, unsigned char k[8])
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(u >> (8 * i));
}

static int64_t key_int(const unsigned char k[8])
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)k[i] << (8 * i);
	return (int64_t)u;
}

/* The posting of key, or -1. */
static long find(const es_pindex *x, const void *key, size_t klen, uint64_t h)
{
	for (size_t i = es_u64map_first(&x->map, h); i != ES_U64MAP_END;
	     i = es_u64map_next(&x->map, h, i)) {
		const posting *p = &x->e[x->map.e[i].val];
		if (p->klen == klen && memcmp(p->key, key, klen) == 0)
			return (long)x->map.e[i].val;
	}
	return -1;
}

/* Position of label in p (or where it would go). */
static size_t lower_bound(const posting *p, uint64_t label)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->lab[mid] < label)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int posting_add(es_pindex *x, posting *p, uint64_t label)
{
	size_t at = p->n && p->lab[p->n - 1] < label ? p->n : lower_bound(p, label);
	if (at < p->n && p->lab[at] == label)
		return 0;
	if (p->n == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 4;
		uint64_t *nl = es_realloc(p->lab, nc * sizeof *nl);
		if (!nl)
			return ES_ENOMEM;
		x->lab_bytes += (nc - p->cap) * sizeof *nl;
		p->lab = nl;
		p->cap = nc;
	}
	memmove(p->lab + at + 1, p->lab + at, (p->n - at) * sizeof *p->lab);
	p->lab[at] = label;
	p->n++;
	return 0;
}

static void posting_remove(posting *p, uint64_t label)
{
	size_t at = lower_bound(p, label);
	if (at < p->n && p->lab[at] == label) {
		memmove(p->lab + at, p->lab + at + 1, (p->n - at - 1) * sizeof *p->lab);
		p->n--;
	}
}

/* The key of v for this index, or 0 when the index does not hold v. */
static int value_key(const es_pindex *x, const es_pval *v, const void **key, size_t *klen,
		     unsigned char buf[8])
{
	if (x->kind == ES_PINDEX_KEYWORD && v->kind == ES_PVAL_STR) {
		*key = v->s;
		*klen = v->len;
		return 1;
	}
	if (x->kind == ES_PINDEX_INTEGER && v->kind == ES_PVAL_INT) {
		int_key(v->i, buf);
		*key = buf;
		*klen = 8;
		return 1;
	}
	return 0;
}

void es_pindex_add(es_pindex *x, uint64_t label, const es_pval *v)
{
	if (x->broken)
		return;
	if (x->kind == ES_PINDEX_INTEGER && v->kind == ES_PVAL_NUM) {
		if (posting_add(x, &x->other, label))
			x->broken = 1;
		return;
	}
	const void *key;
	size_t klen;
	unsigned char buf[8];
	if (!value_key(x, v, &key, &klen, buf))
		return;
	uint64_t h = key_hash(key, klen);
	long at = find(x, key, klen, h);
	if (at < 0) {
		if (x->n == x->cap) {
			size_t nc = x->cap ? 2 * x->cap : 16;
			posting *ne = es_realloc(x->e, nc * sizeof *ne);
			if (!ne)
				goto broken;
			x->e = ne;
			x->cap = nc;
		}
		posting *p = &x->e[x->n];
		memset(p, 0, sizeof *p);
		if (!(p->key = es_malloc(klen ? klen : 1)))
			goto broken;
		memcpy(p->key, key, klen);
		p->klen = klen;
		p->hash = h;
		if (es_u64map_put(&x->map, h, x->n) != 0) {
			es_free(p->key);
			goto broken;
		}
		x->lab_bytes += klen;
		at = (long)x->n++;
	}
	if (posting_add(x, &x->e[at], label) == 0)
		return;
broken:
	x->broken = 1;
}

void es_pindex_remove(es_pindex *x, uint64_t label, const es_pval *v)
{
	if (x->kind == ES_PINDEX_INTEGER && v->kind == ES_PVAL_NUM) {
		posting_remove(&x->other, label);
		return;
	}
	const void *key;
	size_t klen;
	unsigned char buf[8];
	if (!value_key(x, v, &key, &klen, buf))
		return;
	long at = find(x, key, klen, key_hash(key, klen));
	if (at < 0)
		return;
	posting *p = &x->e[at];
	posting_remove(p, label);
	if (p->n)
		return;
	/* empty: the last posting takes its place (the map needs no memory
	 * for that: it loses an entry before it gains one) */
	es_u64map_remove_entry(&x->map, p->hash, (uint64_t)at);
	x->lab_bytes -= p->klen + p->cap * sizeof *p->lab;
	es_free(p->key);
	es_free(p->lab);
	size_t last = --x->n;
	if ((size_t)at != last) {
		es_u64map_remove_entry(&x->map, x->e[last].hash, last);
		x->e[at] = x->e[last];
		es_u64map_put(&x->map, x->e[at].hash, (uint64_t)at);
	}
}

int es_pindex_answers(const es_pindex *x, const es_pterm *t)
{
	return t->kind == x->kind && strcmp(t->field, x->field) == 0 &&
	       (!t->is_range || x->kind == ES_PINDEX_INTEGER);
}

static int in_range(const es_pterm *t, int64_t v)
{
	return v >= t->lo && v <= t->hi;
}

/* The posting of value i of term t, or NULL. */
static const posting *term_value(const es_pindex *x, const es_pterm *t, size_t i)
{
	unsigned char buf[8];
	const void *key;
	size_t klen;
	if (t->kind == ES_PINDEX_KEYWORD) {
		key = t->strs[i];
		klen = t->lens[i];
	} else {
		int_key(t->ints[i], buf);
		key = buf;
		klen = 8;
	}
	long at = find(x, key, klen, key_hash(key, klen));
	return at < 0 ? NULL : &x->e[at];
}

size_t es_pindex_estimate(const es_pindex *x, const es_pterm *t)
{
	size_t n = 0;
	if (t->is_range) {
		n = x->other.n;
		for (size_t i = 0; i < x->n; i++)
			if (in_range(t, key_int(x->e[i].key)))
				n += x->e[i].n;
		return n;
	}
	for (size_t i = 0; i < t->n; i++) {
		const posting *p = term_value(x, t, i);
		n += p ? p->n : 0;
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void append(uint64_t *dst, size_t *n, const posting *p)
{
	if (p->n == 0)
		return; /* an empty posting may have no array: memcpy(NULL) is UB */
	memcpy(dst + *n, p->lab, p->n * sizeof *dst);
	*n += p->n;
}

int es_pindex_collect(const es_pindex *x, const es_pterm *t, uint64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = es_pindex_estimate(x, t);
	if (cap == 0)
		return 0;
	uint64_t *v = es_malloc(cap * sizeof *v);
	if (!v)
		return ES_ENOMEM;
	size_t m = 0, parts = 0;
	if (t->is_range) {
		append(v, &m, &x->other);
		parts += x->other.n > 0;
		for (size_t i = 0; i < x->n; i++)
			if (in_range(t, key_int(x->e[i].key))) {
				append(v, &m, &x->e[i]);
				parts++;
			}
	} else {
		for (size_t i = 0; i < t->n; i++) {
			const posting *p = term_value(x, t, i);
			if (p && p->n) {
				append(v, &m, p);
				parts++;
			}
		}
	}
	if (parts > 1) { /* a union: sort, then keep each label once */
		qsort(v, m, sizeof *v, cmp_u64);
		size_t k = 0;
		for (size_t i = 0; i < m; i++)
			if (k == 0 || v[k - 1] != v[i])
				v[k++] = v[i];
		m = k;
	}
	*out = v;
	*n = m;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;
	int c = (x[0] > y[0]) - (x[0] < y[0]);
	if (!c)
		c = ((uint64_t)x[1] > (uint64_t)y[1]) - ((uint64_t)x[1] < (uint64_t)y[1]);
	return c;
}

int es_pindex_sorted(const es_pindex *x, int desc, int64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t total = 0;
	for (size_t i = 0; i < x->n; i++)
		total += x->e[i].n;
	if (x->kind != ES_PINDEX_INTEGER || total == 0)
		return 0;
	int64_t *v = es_malloc(2 * total * sizeof *v);
	if (!v)
		return ES_ENOMEM;
	size_t m = 0;
	for (size_t i = 0; i < x->n; i++) {
		int64_t val = key_int(x->e[i].key);
		for (size_t j = 0; j < x->e[i].n; j++) {
			v[2 * m] = val;
			v[2 * m + 1] = (int64_t)x->e[i].lab[j];
			m++;
		}
	}
	qsort(v, m, 2 * sizeof *v, cmp_pair);
	if (desc) { /* the whole order reversed */
		for (size_t i = 0; i < m / 2; i++)
			for (int k = 0; k < 2; k++) {
				int64_t tmp = v[2 * i + k];
				v[2 * i + k] = v[2 * (m - 1 - i) + k];
				v[2 * (m - 1 - i) + k] = tmp;
			}
	}
	*out = v;
	*n = m;
	return 0;
}

size_t es_pindex_points(const es_pindex *x, size_t nlabels)
{
	unsigned char *seen = es_calloc(nlabels / 8 + 1, 1);
	if (!seen)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i <= x->n; i++) {
		const posting *p = i < x->n ? &x->e[i] : &x->other;
		for (size_t j = 0; j < p->n; j++) {
			uint64_t l = p->lab[j];
			if (l < nlabels && !(seen[l / 8] & (1u << (l % 8)))) {
				seen[l / 8] |= (unsigned char)(1u << (l % 8));
				n++;
			}
		}
	}
	es_free(seen);
	return n;
}

size_t es_pindex_bytes(const es_pindex *x)
{
	return sizeof *x + strlen(x->field) + 1 + x->cap * sizeof *x->e + x->lab_bytes +
	       es_u64map_bytes(&x->map);
}
