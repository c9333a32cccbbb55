/*
 * alloc.c — failure injection for es_malloc and friends; see alloc.h.
 */
#include "alloc.h"

#include <string.h>

atomic_long es_alloc_countdown;
static atomic_long failed;

/* countdown 1 means "this call fails"; it then stays at 1 (fail every
 * call) until disarmed.  Values above 1 count down. */
int es_alloc_should_fail(void)
{
	long c = atomic_load_explicit(&es_alloc_countdown, memory_order_relaxed);
	while (c > 1) {
		if (atomic_compare_exchange_weak(&es_alloc_countdown, &c, c - 1))
			return 0;
	}
	if (c == 1) {
		atomic_fetch_add(&failed, 1);
		return 1;
	}
	return 0;
}

char *es_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = es_malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

char *es_strndup(const char *s, size_t n)
{
	size_t l = strnlen(s, n);
	char *d = es_malloc(l + 1);
	if (d) {
		memcpy(d, s, l);
		d[l] = '\0';
	}
	return d;
}

char *es_memdup0(const void *s, size_t n)
{
	char *d = es_malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void es_alloc_fail_after(long ok)
{
	atomic_store(&failed, 0);
	atomic_store(&es_alloc_countdown, ok + 1);
}

long es_alloc_fail_disarm(void)
{
	atomic_store(&es_alloc_countdown, 0);
	return atomic_load(&failed);
}
