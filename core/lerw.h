/*
 * lerw.h — the one buffered little-endian writer and reader of embedsrv's
 * binary files (HNSW indexes, collection sections of snapshots, .esm
 * models), each keeping a running checksum of what passed through it.
 *
 * The writer fills a 64 KiB buffer and hands it to its sink when full: a
 * FILE* (es_writer_init) or a function that writes at a file offset
 * (es_writer_init_sink; index/snapshot.c's pwrite, with its failure hooks).
 * The checksum is folded in lazily (at each flush or when asked), so
 * writing a u32 costs a store, not a CRC call.  Write errors are sticky:
 * the first failing write sets `err` (an errno value) and later writes do
 * nothing, so a serialiser writes everything and checks once at the end.
 * es_writer_patch() overwrites bytes already written (a header whose sizes
 * are known only at the end): in the buffer while they are still there,
 * else through an offset sink.
 *
 * The writer can also append to memory (es_writer_init_mem: a growable
 * es_bytebuf, for WAL records and snapshot sections built before they are
 * written); there is no staging buffer then and running out of memory is
 * the sticky ENOMEM.
 *
 * The reader reads from a FILE* or from memory; each read either delivers
 * all n bytes (and extends the checksum over them) or fails without a
 * partial result.  es_reader_truncated() writes the standard message.  A
 * memory reader also hands out views (es_r_view: a pointer to the next n
 * bytes where they lie, no copy: section data of a mapped snapshot, a log
 * record) and says how much is left.  The es_rd_* reads are the same reads
 * for parsers that return es_error codes: a short read is ES_ECORRUPT with
 * es_reader_truncated's message, prefixed with the reader's `what` (the
 * file or section it reads) when that is set.
 *
 * The checksum function is the caller's: crc32c (core/crc32c.h) for every
 * current format; es_crc32_ieee only for reading HNSW files of versions 1
 * and 2, which were checksummed with CRC-32.
 *
 * Threading: a writer or reader belongs to one thread.
 */
#ifndef ES_LERW_H
#define ES_LERW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bytebuf.h"
#include "error.h"
#include "le.h"

typedef uint32_t (*es_crc_fn)(uint32_t crc, const void *data, size_t len);

/* Write all n bytes at byte offset off of the writer's output (offsets
 * count from the writer's first byte): 0, or an errno value. */
typedef int (*es_sink_fn)(void *ctx, const void *p, size_t n, uint64_t off);

#define ES_WRITER_BUF ((size_t)1 << 16)

typedef struct es_writer {
	es_sink_fn sink;
	void *sink_ctx;     /* the FILE* for es_writer_init */
	es_crc_fn crc_fn;   /* NULL: no checksum */
	uint32_t crc;       /* of the bytes before buf[crc_from] */
	size_t crc_from;
	unsigned char *buf; /* ES_WRITER_BUF bytes */
	size_t n;           /* bytes in buf */
	uint64_t pos;       /* bytes written in all (flushed or not) */
	int err;            /* errno of the first failure; sticky */
	es_bytebuf *mem;    /* es_writer_init_mem: appended to directly */
	size_t mem_base;    /* mem->len at init: the writer's byte 0 */
} es_writer;

/* 0, or ES_ENOMEM (no buffer; nothing to release).  Appends to f
 * sequentially (it need not be seekable). */
int es_writer_init(es_writer *w, FILE *f, es_crc_fn crc_fn);
/* The same with every flush going to sink(ctx, bytes, n, offset). */
int es_writer_init_sink(es_writer *w, es_sink_fn sink, void *ctx, es_crc_fn crc_fn);

/* The same appending to out (whose earlier contents stay before the
 * writer's byte 0): 0, or ES_ENOMEM when out has already failed.  The
 * caller owns out; es_writer_finish then only reports the sticky error. */
int es_writer_init_mem(es_writer *w, es_bytebuf *out, es_crc_fn crc_fn);

/* Flush what is buffered and free the buffer: 0, or the sticky errno. */
int es_writer_finish(es_writer *w);
/* Free the buffer without writing what it holds (the output is being
 * thrown away). */
void es_writer_discard(es_writer *w);

void es_w_bytes(es_writer *w, const void *p, size_t n);
void es_w_u8(es_writer *w, uint8_t v);
void es_w_u32(es_writer *w, uint32_t v);
void es_w_u64(es_writer *w, uint64_t v);
/* n floats as little-endian IEEE-754 words (their bits, -0 and NaNs kept). */
void es_w_f32s(es_writer *w, const float *v, size_t n);
/* Zero bytes up to the next multiple of align (a power of two, <= 64). */
void es_w_pad(es_writer *w, uint64_t align);

/* Overwrite the n bytes at offset off, all written already (off + n <=
 * pos).  The running checksum keeps the bytes as first written.  Bytes that
 * left the buffer are rewritten through the sink at off, so that needs an
 * offset sink: an es_writer_init writer fails with ESPIPE then. */
void es_writer_patch(es_writer *w, uint64_t off, const void *p, size_t n);

/* The checksum of everything written since init or the last restart. */
uint32_t es_writer_crc(es_writer *w);
/* Start a fresh checksum from here on. */
void es_writer_crc_restart(es_writer *w);

typedef struct es_reader {
	FILE *f;                /* NULL: reading from p */
	const unsigned char *p;
	size_t len;
	uint64_t off;           /* bytes consumed */
	es_crc_fn crc_fn;
	uint32_t crc;
	const char *what;       /* names the input in es_rd_* messages; may be NULL */
} es_reader;

void es_reader_file(es_reader *r, FILE *f, es_crc_fn crc_fn);
void es_reader_mem(es_reader *r, const void *p, size_t len, es_crc_fn crc_fn);

/* 0, or -1 when fewer than n bytes are left (nothing consumed then from
 * memory; a FILE* may have been advanced). */
int es_r_bytes(es_reader *r, void *p, size_t n);
int es_r_u8(es_reader *r, uint8_t *v);
int es_r_u32(es_reader *r, uint32_t *v);
int es_r_u64(es_reader *r, uint64_t *v);
/* n floats written by es_w_f32s; 0 or -1 (as es_r_bytes). */
int es_r_f32s(es_reader *r, float *v, size_t n);

/* Memory readers only (a FILE* reader fails): the next n bytes where they
 * lie, no copy; 0, or -1 when fewer are left (nothing consumed). */
int es_r_view(es_reader *r, size_t n, const void **p);
/* Bytes not yet consumed by a memory reader (0 for a FILE* reader). */
size_t es_r_left(const es_reader *r);

/* ES_ECORRUPT: "[WHAT: ]truncated: ends within the N bytes at offset O". */
int es_reader_truncated(const es_reader *r, size_t n, es_error *err);

/* The reads above returning 0 or es_reader_truncated()'s error. */
int es_rd_u8(es_reader *r, uint8_t *v, es_error *err);
int es_rd_u32(es_reader *r, uint32_t *v, es_error *err);
int es_rd_u64(es_reader *r, uint64_t *v, es_error *err);
int es_rd_view(es_reader *r, size_t n, const void **p, es_error *err);
/* ES_ECORRUPT ("[WHAT: ]N stray bytes at offset O") unless a memory
 * reader consumed everything. */
int es_reader_end(const es_reader *r, es_error *err);

#endif
