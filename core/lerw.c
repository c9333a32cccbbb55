/*
 * lerw.c — see lerw.h.
 */
#include "lerw.h"

#include <assert.h>
#include <errno.h>
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

static void fold_crc(es_writer *w)
{
	if (w->crc_fn && w->n > w->crc_from)
		w->crc = w->crc_fn(w->crc, w->buf + w->crc_from, w->n - w->crc_from);
	w->crc_from = w->n;
}

static void flush(es_writer *w)
{
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
	w->n = w->crc_from = 0;
}

void es_w_bytes(es_writer *w, const void *p, size_t n)
{
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

void es_w_pad(es_writer *w, uint64_t align)
{
	static const unsigned char zero[64];
	uint64_t to = (w->pos + align - 1) & ~(align - 1);
	es_w_bytes(w, zero, (size_t)(to - w->pos));
}

void es_writer_patch(es_writer *w, uint64_t off, const void *p, size_t n)
{
	assert(off <= w->pos && n <= w->pos - off);
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

int es_reader_truncated(const es_reader *r, size_t n, es_error *err)
{
	return es_err(err, ES_ECORRUPT,
		      "truncated: ends within the %zu bytes at offset %llu", n,
		      (unsigned long long)r->off);
}
