/*
 * bytebuf.h — the one growable buffer: on-disk records (WAL payloads,
 * snapshot sections) in index/, hand-written JSON (server/json_util's
 * ju_buf) and the Prometheus text (server/metrics' es_strbuf) above it.
 *
 * Allocation failure is sticky: after the first one every grow returns
 * NULL and `oom` stays set, so a builder can append a whole record or
 * response without checking each step and test once at the end.  The
 * contents are always followed by a NUL byte (not counted in len), so a
 * text buffer is a C string as it stands.  Memory comes from es_realloc
 * (core/alloc.h), so the failing-allocator tests reach it.
 *
 * A zeroed struct is an empty buffer (es_bytebuf_init does that).
 * Ownership: the buffer owns `data`; es_bytebuf_free releases it, or the
 * caller takes it (then free() it).
 */
#ifndef ES_BYTEBUF_H
#define ES_BYTEBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct es_bytebuf {
	union {
		unsigned char *data;
		char *s;        /* the same bytes, for text */
	};
	size_t len, cap;
	int oom; /* an allocation failed; the contents are incomplete */
} es_bytebuf;

void es_bytebuf_init(es_bytebuf *b);
void es_bytebuf_free(es_bytebuf *b);

/* Append n uninitialised bytes; a pointer to them, or NULL (and oom set)
 * when the buffer cannot grow or its length would pass PTRDIFF_MAX. */
unsigned char *es_bytebuf_grow(es_bytebuf *b, size_t n);

/* Room for n more bytes without appending them: 0, or -1 (oom set). */
int es_bytebuf_reserve(es_bytebuf *b, size_t n);

/* Append bytes / a C string / printf output (sticky on failure). */
void es_bytebuf_put(es_bytebuf *b, const void *p, size_t n);
void es_bytebuf_puts(es_bytebuf *b, const char *s);
void es_bytebuf_printf(es_bytebuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void es_bytebuf_vprintf(es_bytebuf *b, const char *fmt, va_list ap);

#endif
