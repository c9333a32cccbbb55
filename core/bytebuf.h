/*
 * bytebuf.h — a growable byte buffer for building on-disk records (WAL
 * payloads, snapshot sections).  Allocation failure is sticky: after the
 * first one every grow returns NULL and `oom` stays set, so a builder can
 * append a whole record without checking each step and test once at the
 * end.  Header-only, like le.h.
 */
#ifndef ES_BYTEBUF_H
#define ES_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct es_bytebuf {
	unsigned char *data;
	size_t len, cap;
	int oom; /* an allocation failed; the contents are incomplete */
} es_bytebuf;

static inline void es_bytebuf_init(es_bytebuf *b)
{
	memset(b, 0, sizeof *b);
}

static inline void es_bytebuf_free(es_bytebuf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* Append n uninitialised bytes; a pointer to them, or NULL (and oom set)
 * when the buffer cannot grow or its length would pass PTRDIFF_MAX. */
static inline unsigned char *es_bytebuf_grow(es_bytebuf *b, size_t n)
{
	if (b->oom)
		return NULL;
	/* no object is larger than PTRDIFF_MAX bytes */
	if (n > (size_t)PTRDIFF_MAX - b->len) {
		b->oom = 1;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t need = b->len + n, cap = b->cap ? b->cap : 256;
		while (cap < need)
			cap = cap > (size_t)PTRDIFF_MAX / 2 ? need : cap * 2;
		unsigned char *d = realloc(b->data, cap);
		if (!d) {
			b->oom = 1;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	unsigned char *p = b->data + b->len;
	b->len += n;
	return p;
}

#endif
