/*
 * vocab.c — see vocab.h.  Open addressing with linear probing over a
 * power-of-two slot array kept at most half full.
 */
#include "alloc.h"
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

struct es_vocab {
	size_t n;
	uint64_t *offs;   /* n + 1 entries */
	char *blob;
	uint64_t *counts; /* NULL allowed for views */
	uint32_t *slots;
	uint64_t cap;     /* slots, power of two */
	uint64_t total;
	size_t offs_cap, blob_cap, counts_cap;
	int owned;
};

uint64_t es_vocab_hash(const char *word, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)word[i];
		h *= 1099511628211ull;
	}
	return h;
}

es_vocab *es_vocab_new(void)
{
	es_vocab *v = es_calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->owned = 1;
	v->cap = 64;
	v->slots = es_calloc(v->cap, sizeof *v->slots);
	v->offs_cap = 64;
	v->offs = es_calloc(v->offs_cap, sizeof *v->offs);
	if (!v->slots || !v->offs) {
		es_vocab_free(v);
		return NULL;
	}
	return v;
}

void es_vocab_free(es_vocab *v)
{
	if (!v)
		return;
	if (v->owned) {
		es_free(v->offs);
		es_free(v->blob);
		es_free(v->counts);
		es_free(v->slots);
	}
	es_free(v);
}

/* Does the borrowed table index every word, so that es_vocab_find(word i)
 * reaches slot i+1?  One pass, no per-word probing (a crafted table of one
 * long cluster would make probing quadratic): walking the slots from just
 * after an empty one, `run` is the length of the cluster ending here, and a
 * word is reachable iff its slot is less than `run` past its home slot.
 * Every id must sit in exactly one slot.  Found by tests/fuzz
 * (fuzz_model_esm): a table that indexed nothing loaded, and then no word of
 * the model could be looked up. */
static int view_check_slots(size_t n, const uint64_t *offs, const char *blob,
			    const uint32_t *slots, uint64_t cap, es_error *err)
{
	const uint64_t mask = cap - 1;
	unsigned char *seen = es_calloc(n / 8 + 1, 1);
	if (!seen)
		return es_err(err, ES_ENOMEM, "out of memory");
	uint64_t z = 0;
	while (z < cap && slots[z] != 0)
		z++;
	int rc = 0;
	if (z == cap) /* cap > n, so a full table repeats an id or names a stranger */
		rc = es_err(err, ES_ECORRUPT, "vocabulary hash table has no empty slot");
	size_t found = 0;
	uint64_t run = 0;
	for (uint64_t k = 1; k <= cap && !rc; k++) {
		uint64_t pos = (z + k) & mask;
		uint32_t s = slots[pos];
		if (s == 0) {
			run = 0;
			continue;
		}
		run++;
		size_t id = (size_t)s - 1;
		if (id >= n || (seen[id / 8] & (1u << (id % 8)))) {
			rc = es_err(err, ES_ECORRUPT, "vocabulary hash table slot %llu names "
				    "word %u, which is %s", (unsigned long long)pos, s,
				    id >= n ? "not in the vocabulary" : "in another slot too");
			break;
		}
		seen[id / 8] |= (unsigned char)(1u << (id % 8));
		found++;
		uint64_t home = es_vocab_hash(blob + offs[id], offs[id + 1] - offs[id] - 1) & mask;
		if (((pos - home) & mask) >= run)
			rc = es_err(err, ES_ECORRUPT, "vocabulary hash table: word %zu is "
				    "stored where a lookup cannot reach it", id + 1);
	}
	if (!rc && found != n)
		rc = es_err(err, ES_ECORRUPT, "vocabulary hash table indexes %zu of %zu words",
			    found, n);
	es_free(seen);
	return rc;
}

int es_vocab_view(size_t n, const uint64_t *offs, const char *blob,
		  const uint64_t *counts, const uint32_t *slots, uint64_t cap,
		  es_vocab **out, es_error *err)
{
	*out = NULL;
	if (cap == 0 || (cap & (cap - 1)) || n > ES_VOCAB_MAX_WORDS || cap <= n)
		return es_err(err, ES_ECORRUPT,
			      "vocabulary hash table has a bad size");
	int rc = view_check_slots(n, offs, blob, slots, cap, err);
	if (rc)
		return rc;
	es_vocab *v = es_calloc(1, sizeof *v);
	if (!v)
		return es_err(err, ES_ENOMEM, "out of memory");
	v->n = n;
	v->offs = (uint64_t *)offs;
	v->blob = (char *)blob;
	v->counts = (uint64_t *)counts;
	v->slots = (uint32_t *)slots;
	v->cap = cap;
	if (counts)
		for (size_t i = 0; i < n; i++)
			v->total += counts[i];
	*out = v;
	return 0;
}

static int word_eq(const es_vocab *v, uint32_t id, const char *w, size_t len)
{
	uint64_t a = v->offs[id], b = v->offs[id + 1];
	return b - a == len + 1 && memcmp(v->blob + a, w, len) == 0;
}

int64_t es_vocab_find(const es_vocab *v, const char *word, size_t len)
{
	uint64_t mask = v->cap - 1;
	uint64_t i = es_vocab_hash(word, len) & mask;
	for (uint64_t probes = 0; probes < v->cap; probes++) {
		uint32_t s = v->slots[i];
		if (s == 0)
			return -1;
		/* hostile .esm: a slot naming a word that does not exist */
		if (s <= v->n && word_eq(v, s - 1, word, len))
			return (int64_t)(s - 1);
		i = (i + 1) & mask;
	}
	return -1;
}

static int grow_slots(es_vocab *v)
{
	uint64_t ncap = v->cap * 2;
	uint32_t *ns = es_calloc(ncap, sizeof *ns);
	if (!ns)
		return ES_ENOMEM;
	for (size_t id = 0; id < v->n; id++) {
		uint64_t a = v->offs[id];
		uint64_t i = es_vocab_hash(v->blob + a, v->offs[id + 1] - a - 1) &
			     (ncap - 1);
		while (ns[i])
			i = (i + 1) & (ncap - 1);
		ns[i] = (uint32_t)(id + 1);
	}
	es_free(v->slots);
	v->slots = ns;
	v->cap = ncap;
	return 0;
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	void *np = es_realloc(*p, nc * elem);
	if (!np)
		return ES_ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

int es_vocab_add(es_vocab *v, const char *word, size_t len, uint64_t count,
		 uint32_t *id, int *added, es_error *err)
{
	if (!v->owned)
		return es_err(err, ES_EINVAL, "vocabulary is read-only");
	if (len == 0)
		return es_err(err, ES_EINVAL, "empty word");
	if (memchr(word, '\0', len))
		return es_err(err, ES_EINVAL, "word contains a NUL byte");
	int64_t f = es_vocab_find(v, word, len);
	if (f >= 0) {
		if (v->counts) {
			v->counts[f] += count;
			v->total += count;
		}
		if (id)
			*id = (uint32_t)f;
		if (added)
			*added = 0;
		return 0;
	}
	if (v->n >= ES_VOCAB_MAX_WORDS)
		return es_err(err, ES_ERANGE, "vocabulary is full (%u words)",
			      ES_VOCAB_MAX_WORDS);
	if ((v->n + 1) * 2 > v->cap && grow_slots(v))
		goto oom;
	uint64_t bsize = v->offs[v->n];
	if (reserve((void **)&v->blob, &v->blob_cap, bsize + len + 1, 1) ||
	    reserve((void **)&v->offs, &v->offs_cap, v->n + 2,
		    sizeof *v->offs) ||
	    reserve((void **)&v->counts, &v->counts_cap, v->n + 1,
		    sizeof *v->counts))
		goto oom;
	memcpy(v->blob + bsize, word, len);
	v->blob[bsize + len] = '\0';
	v->offs[v->n + 1] = bsize + len + 1;
	v->counts[v->n] = count;
	v->total += count;
	uint64_t i = es_vocab_hash(word, len) & (v->cap - 1);
	while (v->slots[i])
		i = (i + 1) & (v->cap - 1);
	v->slots[i] = (uint32_t)(v->n + 1);
	if (id)
		*id = (uint32_t)v->n;
	if (added)
		*added = 1;
	v->n++;
	return 0;
oom:
	return es_err(err, ES_ENOMEM, "out of memory growing the vocabulary");
}

size_t es_vocab_size(const es_vocab *v)
{
	return v->n;
}

const char *es_vocab_word(const es_vocab *v, uint32_t id)
{
	return v->blob + v->offs[id];
}

size_t es_vocab_word_len(const es_vocab *v, uint32_t id)
{
	return v->offs[id + 1] - v->offs[id] - 1;
}

uint64_t es_vocab_count(const es_vocab *v, uint32_t id)
{
	return v->counts ? v->counts[id] : 0;
}

void es_vocab_set_count(es_vocab *v, uint32_t id, uint64_t count)
{
	if (!v->counts || !v->owned)
		return;
	v->total = v->total - v->counts[id] + count;
	v->counts[id] = count;
}

uint64_t es_vocab_total(const es_vocab *v)
{
	return v->total;
}

void es_vocab_arrays(const es_vocab *v, const uint64_t **offs,
		     const char **blob, const uint64_t **counts,
		     const uint32_t **slots, uint64_t *cap)
{
	*offs = v->offs;
	*blob = v->blob ? v->blob : "";
	*counts = v->counts;
	*slots = v->slots;
	*cap = v->cap;
}
