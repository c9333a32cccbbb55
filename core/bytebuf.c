/*
 * bytebuf.c — see bytebuf.h.
 */
#include "bytebuf.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

void es_bytebuf_init(es_bytebuf *b)
{
	memset(b, 0, sizeof *b);
}

void es_bytebuf_free(es_bytebuf *b)
{
	es_free(b->data);
	memset(b, 0, sizeof *b);
}

int es_bytebuf_reserve(es_bytebuf *b, size_t n)
{
	if (b->oom)
		return -1;
	/* no object is larger than PTRDIFF_MAX bytes; one more for the NUL */
	if (n >= (size_t)PTRDIFF_MAX - b->len) {
		b->oom = 1;
		return -1;
	}
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > (size_t)PTRDIFF_MAX / 2 ? need : cap * 2;
	unsigned char *d = es_realloc(b->data, cap);
	if (!d) {
		b->oom = 1;
		return -1;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

unsigned char *es_bytebuf_grow(es_bytebuf *b, size_t n)
{
	if (es_bytebuf_reserve(b, n))
		return NULL;
	unsigned char *p = b->data + b->len;
	b->len += n;
	b->data[b->len] = '\0';
	return p;
}

void es_bytebuf_put(es_bytebuf *b, const void *p, size_t n)
{
	unsigned char *d = es_bytebuf_grow(b, n);
	if (d && n)
		memcpy(d, p, n);
}

void es_bytebuf_puts(es_bytebuf *b, const char *s)
{
	es_bytebuf_put(b, s, strlen(s));
}

void es_bytebuf_vprintf(es_bytebuf *b, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	char small[256];
	int n = vsnprintf(small, sizeof small, fmt, aq);
	va_end(aq);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n < sizeof small) {
		es_bytebuf_put(b, small, (size_t)n);
		return;
	}
	if (es_bytebuf_reserve(b, (size_t)n))
		return;
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void es_bytebuf_printf(es_bytebuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	es_bytebuf_vprintf(b, fmt, ap);
	va_end(ap);
}
