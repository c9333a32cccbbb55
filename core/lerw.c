/*
 * lerw.c — see lerw.h.
 */
#include "lerw.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

/* es_writer_init's sink: appends, whatever the offset (a FILE* may be a
 * pipe or a cookie stream); es_writer_patch never hands it an earlier one. */
static int file_sink(void *ctx, const void *p, size_t n, uint64_t off)
{
	(void)off;
	errno = 0;
	if (fwrite(p, 1, n, ctx) != n)
		return errno ? errno : EIO;
	return 0;
}

int es_writer_init_sink(es_writer *w, es_sink_fn sink, void *ctx, es_crc_fn crc_fn)
{
	memset(w, 0, sizeof *w);
	w->sink = sink;
	w->sink_ctx = ctx;
	w->crc_fn = crc_fn;
	w->buf = es_malloc(ES_WRITER_BUF);
	return w->buf ? 0 : ES_ENOMEM;
}

int es_writer_init(es_writer *w, FILE *f, es_crc_fn crc_fn)
{
	return es_writer_init_sink(w, file_sink, f, crc_fn);
}

int es_writer_init_mem(es_writer *w, es_bytebuf *out, es_crc_fn crc_fn)
{
	memset(w, 0, sizeof *w);
	w->mem = out;
	w->mem_base = w->crc_from = out->len;
	w->crc_fn = crc_fn;
	if (out->oom)
		w->err = ENOMEM;
	return out->oom ? ES_ENOMEM : 0;
}

/* The bytes not yet handed to the sink (for a memory writer: all of its
 * output, at buffer offsets) and how many there are. */
static unsigned char *staged(es_writer *w, size_t *n)
{
	*n = w->mem ? w->mem->len : w->n;
	return w->mem ? w->mem->data : w->buf;
}

static void fold_crc(es_writer *w)
{
	size_t n;
	unsigned char *b = staged(w, &n);
	if (w->crc_fn && n > w->crc_from)
		w->crc = w->crc_fn(w->crc, b + w->crc_from, n - w->crc_from);
	w->crc_from = n;
}

static void flush(es_writer *w)
{
	if (w->mem)
		return; /* nothing staged: the bytes are in place */
	fold_crc(w);
	if (w->n && !w->err)
		w->err = w->sink(w->sink_ctx, w->buf, w->n, w->pos - w->n);
	w->n = w->crc_from = 0;
}

int es_writer_finish(es_writer *w)
{
	if (w->buf)
		flush(w);
	es_free(w->buf);
	w->buf = NULL;
	return w->err;
}

void es_writer_discard(es_writer *w)
{
	es_free(w->buf);
	w->buf = NULL;
	w->n = 0;
	w->crc_from = w->mem ? w->mem->len : 0;
}

static void mem_bytes(es_writer *w, const void *p, size_t n)
{
	if (w->err || n == 0)
		return;
	es_bytebuf_put(w->mem, p, n);
	if (w->mem->oom)
		w->err = ENOMEM;
	else
		w->pos += n;
}

void es_w_bytes(es_writer *w, const void *p, size_t n)
{
	if (w->mem) {
		mem_bytes(w, p, n);
		return;
	}
	const unsigned char *c = p;
	while (n) {
		if (w->n == ES_WRITER_BUF)
			flush(w);
		size_t t = ES_WRITER_BUF - w->n;
		if (t > n)
			t = n;
		memcpy(w->buf + w->n, c, t);
		w->n += t;
		w->pos += t; /* as it is buffered: flush() writes at pos - n */
		c += t;
		n -= t;
	}
}

void es_w_u8(es_writer *w, uint8_t v)
{
	es_w_bytes(w, &v, 1);
}

void es_w_u32(es_writer *w, uint32_t v)
{
	unsigned char b[4];
	put_u32(b, v);
	es_w_bytes(w, b, 4);
}

void es_w_u64(es_writer *w, uint64_t v)
{
	unsigned char b[8];
	put_u64(b, v);
	es_w_bytes(w, b, 8);
}

/* A little-endian host stores floats as the format does: one copy. */
#define HOST_LE (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

void es_w_f32s(es_writer *w, const float *v, size_t n)
{
	if (HOST_LE) {
		es_w_bytes(w, v, n * 4);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char b[4];
		put_f32(b, v[i]);
		es_w_bytes(w, b, 4);
	}
}

void es_w_pad(es_writer *w, uint64_t align)
{
	static const unsigned char zero[64];
	uint64_t to = (w->pos + align - 1) & ~(align - 1);
	es_w_bytes(w, zero, (size_t)(to - w->pos));
}

void es_writer_patch(es_writer *w, uint64_t off, const void *p, size_t n)
{
	assert(off <= w->pos && n <= w->pos - off);
	if (w->mem) {
		fold_crc(w);
		memcpy(w->mem->data + w->mem_base + off, p, n);
		return;
	}
	uint64_t buf_off = w->pos - w->n; /* output offset of buf[0] */
	fold_crc(w);
	if (off >= buf_off) {
		memcpy(w->buf + (off - buf_off), p, n);
		return;
	}
	flush(w);
	if (w->err)
		return;
	if (w->sink == file_sink)
		w->err = ESPIPE;
	else
		w->err = w->sink(w->sink_ctx, p, n, off);
}

uint32_t es_writer_crc(es_writer *w)
{
	fold_crc(w);
	return w->crc;
}

void es_writer_crc_restart(es_writer *w)
{
	fold_crc(w);
	w->crc = 0;
}

void es_reader_file(es_reader *r, FILE *f, es_crc_fn crc_fn)
{
	memset(r, 0, sizeof *r);
	r->f = f;
	r->crc_fn = crc_fn;
}

void es_reader_mem(es_reader *r, const void *p, size_t len, es_crc_fn crc_fn)
{
	memset(r, 0, sizeof *r);
	r->p = p;
	r->len = len;
	r->crc_fn = crc_fn;
}

int es_r_bytes(es_reader *r, void *p, size_t n)
{
	if (r->f) {
		if (fread(p, 1, n, r->f) != n)
			return -1;
	} else {
		if (n > r->len - r->off)
			return -1;
		memcpy(p, r->p + r->off, n);
	}
	if (r->crc_fn)
		r->crc = r->crc_fn(r->crc, p, n);
	r->off += n;
	return 0;
}

int es_r_view(es_reader *r, size_t n, const void **p)
{
	if (r->f || n > r->len - r->off)
		return -1;
	*p = r->p + r->off;
	if (r->crc_fn)
		r->crc = r->crc_fn(r->crc, *p, n);
	r->off += n;
	return 0;
}

size_t es_r_left(const es_reader *r)
{
	return r->f ? 0 : (size_t)(r->len - r->off);
}

int es_r_u8(es_reader *r, uint8_t *v)
{
	return es_r_bytes(r, v, 1);
}

int es_r_u32(es_reader *r, uint32_t *v)
{
	unsigned char b[4];
	if (es_r_bytes(r, b, 4))
		return -1;
	*v = get_u32(b);
	return 0;
}

int es_r_u64(es_reader *r, uint64_t *v)
{
	unsigned char b[8];
	if (es_r_bytes(r, b, 8))
		return -1;
	*v = get_u64(b);
	return 0;
}

int es_r_f32s(es_reader *r, float *v, size_t n)
{
	if (n > SIZE_MAX / 4 || es_r_bytes(r, v, n * 4))
		return -1;
	if (!HOST_LE)
		for (size_t i = 0; i < n; i++)
			v[i] = get_f32((const unsigned char *)&v[i]);
	return 0;
}

int es_reader_truncated(const es_reader *r, size_t n, es_error *err)
{
	return es_err(err, ES_ECORRUPT,
		      "%s%struncated: ends within the %zu bytes at offset %llu",
		      r->what ? r->what : "", r->what ? ": " : "", n,
		      (unsigned long long)r->off);
}

int es_rd_u8(es_reader *r, uint8_t *v, es_error *err)
{
	return es_r_u8(r, v) ? es_reader_truncated(r, 1, err) : 0;
}

int es_rd_u32(es_reader *r, uint32_t *v, es_error *err)
{
	return es_r_u32(r, v) ? es_reader_truncated(r, 4, err) : 0;
}

int es_rd_u64(es_reader *r, uint64_t *v, es_error *err)
{
	return es_r_u64(r, v) ? es_reader_truncated(r, 8, err) : 0;
}

int es_rd_view(es_reader *r, size_t n, const void **p, es_error *err)
{
	return es_r_view(r, n, p) ? es_reader_truncated(r, n, err) : 0;
}

int es_reader_end(const es_reader *r, es_error *err)
{
	size_t left = es_r_left(r);
	if (left)
		return es_err(err, ES_ECORRUPT, "%s%s%zu stray bytes at offset %llu",
			      r->what ? r->what : "", r->what ? ": " : "", left,
			      (unsigned long long)r->off);
	return 0;
}
