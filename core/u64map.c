/*
 * u64map.c — see u64map.h.
 */
#include "u64map.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

#define MIN_CAP 16u

static inline size_t home_of(uint64_t key, size_t mask)
{
	/* splitmix64 finaliser: keys are often sequential */
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebull;
	key ^= key >> 31;
	return (size_t)key & mask;
}

void es_u64map_init(es_u64map *m)
{
	memset(m, 0, sizeof *m);
}

void es_u64map_destroy(es_u64map *m)
{
	es_free(m->e);
	memset(m, 0, sizeof *m);
}

/* Insert into a table known to have room. */
static void place(es_u64map_ent *e, size_t cap, uint64_t key, uint64_t val)
{
	size_t mask = cap - 1, i = home_of(key, mask);
	while (e[i].val != ES_U64MAP_EMPTY)
		i = (i + 1) & mask;
	e[i].key = key;
	e[i].val = val;
}

int es_u64map_reserve(es_u64map *m, size_t entries)
{
	size_t want = MIN_CAP;
	while (want / 2 < entries) {
		if (want > SIZE_MAX / 2 / sizeof(es_u64map_ent))
			return ES_ENOMEM;
		want *= 2;
	}
	if (want <= m->cap)
		return 0;
	es_u64map_ent *e = es_malloc(want * sizeof *e);
	if (!e)
		return ES_ENOMEM;
	for (size_t i = 0; i < want; i++)
		e[i].val = ES_U64MAP_EMPTY;
	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].val != ES_U64MAP_EMPTY)
			place(e, want, m->e[i].key, m->e[i].val);
	es_free(m->e);
	m->e = e;
	m->cap = want;
	return 0;
}

int es_u64map_put(es_u64map *m, uint64_t key, uint64_t val)
{
	if (m->used + 1 > m->cap / 2) {
		int rc = es_u64map_reserve(m, m->used + 1);
		if (rc)
			return rc;
	}
	place(m->e, m->cap, key, val);
	m->used++;
	return 0;
}

size_t es_u64map_next(const es_u64map *m, uint64_t key, size_t i)
{
	size_t mask = m->cap - 1;
	for (i = (i + 1) & mask; m->e[i].val != ES_U64MAP_EMPTY; i = (i + 1) & mask)
		if (m->e[i].key == key)
			return i;
	return ES_U64MAP_END;
}

size_t es_u64map_first(const es_u64map *m, uint64_t key)
{
	if (!m->cap)
		return ES_U64MAP_END;
	size_t mask = m->cap - 1, i = home_of(key, mask);
	if (m->e[i].val == ES_U64MAP_EMPTY)
		return ES_U64MAP_END;
	if (m->e[i].key == key)
		return i;
	return es_u64map_next(m, key, i);
}

void es_u64map_prefetch(const es_u64map *m, uint64_t key)
{
	if (m->cap)
		__builtin_prefetch(&m->e[home_of(key, m->cap - 1)]);
}

int es_u64map_get(const es_u64map *m, uint64_t key, uint64_t *val)
{
	size_t i = es_u64map_first(m, key);
	if (i == ES_U64MAP_END)
		return 0;
	*val = m->e[i].val;
	return 1;
}

/* Empty slot i, shifting later members of its cluster back so every probe
 * chain stays unbroken. */
static void remove_slot(es_u64map *m, size_t i)
{
	size_t mask = m->cap - 1;
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (m->e[j].val == ES_U64MAP_EMPTY)
			break;
		size_t h = home_of(m->e[j].key, mask);
		/* j may move into the hole at i unless its home lies in (i, j] */
		int stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (!stays) {
			m->e[i] = m->e[j];
			i = j;
		}
	}
	m->e[i].val = ES_U64MAP_EMPTY;
	m->used--;
}

int es_u64map_remove(es_u64map *m, uint64_t key)
{
	size_t i = es_u64map_first(m, key);
	if (i == ES_U64MAP_END)
		return 0;
	remove_slot(m, i);
	return 1;
}

int es_u64map_remove_entry(es_u64map *m, uint64_t key, uint64_t val)
{
	for (size_t i = es_u64map_first(m, key); i != ES_U64MAP_END;
	     i = es_u64map_next(m, key, i))
		if (m->e[i].val == val) {
			remove_slot(m, i);
			return 1;
		}
	return 0;
}

size_t es_u64map_bytes(const es_u64map *m)
{
	return m->cap * sizeof *m->e;
}
