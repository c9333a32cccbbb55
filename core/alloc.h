/*
 * alloc.h — the allocator that the fallible paths of index/ and core/
 * allocate through (collection upsert, WAL append, snapshot write, model
 * load), so a test can make the Nth allocation fail and check that every
 * out-of-memory path rolls back completely (as jansson's test suite does).
 *
 * es_malloc / es_calloc / es_realloc / es_strdup behave as the C library's;
 * es_free is free().  In a release build the only cost is one relaxed load
 * of an atomic counter per call (zero unless a test armed it).
 *
 * Threading: the counter is atomic; arming it is meant for single-threaded
 * tests (allocations of other threads also count).
 */
#ifndef ES_ALLOC_H
#define ES_ALLOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

/* > 0: that many more allocations succeed, then every one fails until the
 * test disarms it.  0: off (the normal state). */
extern atomic_long es_alloc_countdown;

/* Slow path of the hooks (out of line): 1 if this call must fail. */
int es_alloc_should_fail(void);

static inline int es_alloc_armed(void)
{
	return __builtin_expect(
		atomic_load_explicit(&es_alloc_countdown, memory_order_relaxed) != 0, 0);
}

static inline void *es_malloc(size_t n)
{
	if (es_alloc_armed() && es_alloc_should_fail())
		return NULL;
	return malloc(n);
}

static inline void *es_calloc(size_t n, size_t size)
{
	if (es_alloc_armed() && es_alloc_should_fail())
		return NULL;
	return calloc(n, size);
}

static inline void *es_realloc(void *p, size_t n)
{
	if (es_alloc_armed() && es_alloc_should_fail())
		return NULL;
	return realloc(p, n);
}

static inline void es_free(void *p)
{
	free(p);
}

/* strdup / strndup through es_malloc. */
char *es_strdup(const char *s);
char *es_strndup(const char *s, size_t n);
/* All n bytes (a NUL among them kept: ids and payloads are bytes) and a
 * NUL after them, through es_malloc. */
char *es_memdup0(const void *s, size_t n);

/* Tests: let `ok` more allocations succeed, then fail every one (ok >= 0);
 * es_alloc_fail_disarm turns failure injection off and returns how many
 * allocations failed while it was armed. */
void es_alloc_fail_after(long ok);
long es_alloc_fail_disarm(void);

#endif
