/*
 * u64map.h — the one uint64 -> uint64 hash map of the code base (HNSW's
 * label -> slot, the flat index's label -> row, a collection's id -> label).
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so a table that sees many deletes never fills up with them),
 * load at most 1/2, capacity a power of two.  Keys are spread with the
 * splitmix64 finaliser, so sequential keys (labels, row numbers) do not
 * cluster.
 *
 * Keys may repeat (a multimap) for callers whose key is itself a hash of
 * something larger (a collection's string ids): es_u64map_first/next walk
 * every entry of one key, es_u64map_remove_entry removes exactly one.
 * Callers with unique keys use get/put/remove.  The value UINT64_MAX is
 * reserved (it marks an empty slot).
 *
 * Threading: none inside; the owner's lock guards it.
 * Ownership: the map owns its table; es_u64map_destroy frees it.
 */
#ifndef ES_U64MAP_H
#define ES_U64MAP_H

#include <stddef.h>
#include <stdint.h>

#define ES_U64MAP_EMPTY UINT64_MAX
#define ES_U64MAP_END SIZE_MAX

typedef struct es_u64map_ent {
	uint64_t key;
	uint64_t val; /* ES_U64MAP_EMPTY: a free slot */
} es_u64map_ent;

typedef struct es_u64map {
	es_u64map_ent *e;
	size_t cap;  /* 0 or a power of two */
	size_t used;
} es_u64map;

/* An empty map (no allocation until the first reserve or put). */
void es_u64map_init(es_u64map *m);
void es_u64map_destroy(es_u64map *m);

/* Room for `entries` entries in all without growing (load <= 1/2):
 * 0 or ES_ENOMEM (the map is unchanged then). */
int es_u64map_reserve(es_u64map *m, size_t entries);

/* Add (key, val), growing as needed: 0 or ES_ENOMEM (map unchanged).  Does
 * not look for an existing entry of key: unique-key callers check first. */
int es_u64map_put(es_u64map *m, uint64_t key, uint64_t val);

/* The value of key (the first one found under a repeated key) into *val:
 * 1 if present, else 0. */
int es_u64map_get(const es_u64map *m, uint64_t key, uint64_t *val);

/* Start loading key's home slot into the cache (a caller about to look up
 * many keys issues these first, so the lookups' misses overlap). */
void es_u64map_prefetch(const es_u64map *m, uint64_t key);

/* Remove one entry of key: 1 if there was one, else 0. */
int es_u64map_remove(es_u64map *m, uint64_t key);

/* Walk the entries of key: the slot index of the first (then the next
 * after slot i), or ES_U64MAP_END.  m->e[i].val is its value.  The map
 * must not change during a walk. */
size_t es_u64map_first(const es_u64map *m, uint64_t key);
size_t es_u64map_next(const es_u64map *m, uint64_t key, size_t i);

/* Remove the entry (key, val): 1 if it was there, else 0. */
int es_u64map_remove_entry(es_u64map *m, uint64_t key, uint64_t val);

/* Bytes held by the table. */
size_t es_u64map_bytes(const es_u64map *m);

#endif
