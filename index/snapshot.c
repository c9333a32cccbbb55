/*
 * snapshot.c — see snapshot.h.  Writes go through a 1 MiB buffer and pwrite
 * at explicit offsets, so section headers can be patched in place when a
 * streamed section ends.  Errors are sticky: after the first failed write
 * every call returns that error and commit removes the temporary file.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "fileio.h"
#include "le.h"

#define SNAP_BUF_SIZE ((size_t)1 << 20)

struct snapshot_writer {
	es_tmpfile t;       /* t.fd, t.tmp: the file being written */
	snapshot_io_hooks hooks;
	uint64_t lsn;
	unsigned char *buf;
	size_t buf_len;
	uint64_t buf_off;   /* file offset of buf[0] */
	uint32_t nsections;
	int in_section;
	uint64_t sec_hdr_off;
	uint64_t sec_len;
	uint32_t sec_tag, sec_crc;
	int rc;             /* sticky error */
	es_error err;
};

struct snap_section {
	uint32_t tag;
	uint64_t off, len;
};

struct snapshot {
	char *path;
	unsigned char *map;
	size_t size;
	uint64_t lsn;
	uint32_t n;
	struct snap_section *sec;
};

static ssize_t real_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	(void)ctx;
	return pwrite(fd, buf, n, off);
}

/* ------------------------------------------------------------------ writer */

static int w_fail(snapshot_writer *w, int e, const char *what)
{
	if (!w->rc)
		w->rc = es_err(&w->err, es_errno_code(e), "%s: %s: %s", w->t.tmp, what, strerror(e));
	return w->rc;
}

static int w_pwrite_all(snapshot_writer *w, const unsigned char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t r = w->hooks.pwrite(w->hooks.ctx, w->t.fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return w_fail(w, r < 0 ? errno : EIO, "write");
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int w_flush(snapshot_writer *w)
{
	if (w->rc)
		return w->rc;
	int rc = w_pwrite_all(w, w->buf, w->buf_len, w->buf_off);
	w->buf_off += w->buf_len;
	w->buf_len = 0;
	return rc;
}

static int w_put(snapshot_writer *w, const void *data, size_t len)
{
	const unsigned char *p = data;
	while (len && !w->rc) {
		size_t room = SNAP_BUF_SIZE - w->buf_len;
		if (room == 0) {
			w_flush(w);
			continue;
		}
		size_t n = len < room ? len : room;
		memcpy(w->buf + w->buf_len, p, n);
		w->buf_len += n;
		p += n;
		len -= n;
	}
	return w->rc;
}

static uint64_t w_pos(const snapshot_writer *w)
{
	return w->buf_off + w->buf_len;
}

int snapshot_writer_new(const char *path, uint64_t lsn,
			const snapshot_io_hooks *hooks, snapshot_writer **out,
			es_error *err)
{
	*out = NULL;
	snapshot_writer *w = es_calloc(1, sizeof *w);
	if (!w)
		return es_err(err, ES_ENOMEM, "out of memory");
	w->t.fd = -1;
	w->lsn = lsn;
	if (hooks)
		w->hooks = *hooks;
	if (!w->hooks.pwrite)
		w->hooks.pwrite = real_pwrite;
	w->buf = es_malloc(SNAP_BUF_SIZE);
	if (!w->buf) {
		snapshot_writer_abort(w);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	int rc = es_tmpfile_create(&w->t, path, err);
	if (rc) {
		snapshot_writer_abort(w);
		return rc;
	}
	w->t.fsync = w->hooks.fsync;
	w->t.fsync_ctx = w->hooks.ctx;
	unsigned char zero[SNAPSHOT_HEADER_SIZE] = {0};
	w_put(w, zero, sizeof zero); /* the real header is written at commit */
	*out = w;
	return 0;
}

void snapshot_writer_set_lsn(snapshot_writer *w, uint64_t lsn)
{
	w->lsn = lsn;
}

int snapshot_section_begin(snapshot_writer *w, uint32_t tag, es_error *err)
{
	if (w->in_section || w->nsections >= SNAPSHOT_MAX_SECTIONS)
		return es_err(err, ES_EINVAL, "snapshot section misuse (nested or too many)");
	w->in_section = 1;
	w->sec_tag = tag;
	w->sec_len = 0;
	w->sec_crc = 0;
	w->sec_hdr_off = w_pos(w);
	unsigned char zero[SNAPSHOT_SECTION_HEADER_SIZE] = {0};
	if (w_put(w, zero, sizeof zero) && err)
		*err = w->err;
	return w->rc;
}

int snapshot_section_append(snapshot_writer *w, const void *data, size_t len,
			    es_error *err)
{
	if (!w->in_section)
		return es_err(err, ES_EINVAL, "snapshot section append outside a section");
	if (w->rc) {
		if (err)
			*err = w->err;
		return w->rc;
	}
	w->sec_crc = crc32c(w->sec_crc, data, len);
	w->sec_len += len;
	if (w_put(w, data, len) && err)
		*err = w->err;
	return w->rc;
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	snapshot_writer *w = cookie;
	if (snapshot_section_append(w, buf, size, NULL)) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)size;
}

FILE *snapshot_section_stream(snapshot_writer *w)
{
	if (!w->in_section)
		return NULL;
	cookie_io_functions_t io = {NULL, cookie_write, NULL, NULL};
	return fopencookie(w, "w", io);
}

int snapshot_section_end(snapshot_writer *w, es_error *err)
{
	if (!w->in_section)
		return es_err(err, ES_EINVAL, "snapshot section end outside a section");
	w->in_section = 0;
	static const unsigned char pad[8] = {0};
	size_t npad = (size_t)((8 - (w->sec_len & 7)) & 7);
	w_put(w, pad, npad);
	unsigned char h[SNAPSHOT_SECTION_HEADER_SIZE];
	put_u32(h, w->sec_tag);
	put_u32(h + 4, 0);
	put_u64(h + 8, w->sec_len);
	put_u32(h + 16, w->sec_crc);
	put_u32(h + 20, crc32c(0, h, 20));
	if (w->sec_hdr_off >= w->buf_off) {
		memcpy(w->buf + (w->sec_hdr_off - w->buf_off), h, sizeof h);
	} else {
		w_flush(w);
		if (!w->rc)
			w_pwrite_all(w, h, sizeof h, w->sec_hdr_off);
	}
	if (!w->rc)
		w->nsections++;
	if (w->rc && err)
		*err = w->err;
	return w->rc;
}

int snapshot_write_section(snapshot_writer *w, uint32_t tag, const void *data,
			   size_t len, es_error *err)
{
	int rc = snapshot_section_begin(w, tag, err);
	if (!rc)
		rc = snapshot_section_append(w, data, len, err);
	if (!rc)
		rc = snapshot_section_end(w, err);
	return rc;
}

void snapshot_writer_abort(snapshot_writer *w)
{
	if (!w)
		return;
	es_tmpfile_abort(&w->t);
	es_free(w->buf);
	es_free(w);
}

int snapshot_writer_commit(snapshot_writer *w, es_error *err)
{
	if (w->in_section)
		w_fail(w, EINVAL, "commit inside an open section");
	w_flush(w);
	if (!w->rc) {
		unsigned char h[SNAPSHOT_HEADER_SIZE] = {0};
		memcpy(h, SNAPSHOT_MAGIC, 8);
		put_u32(h + 8, SNAPSHOT_VERSION);
		put_u32(h + 12, SNAPSHOT_HEADER_SIZE);
		put_u64(h + 16, w->lsn);
		put_u64(h + 24, w->buf_off);
		put_u32(h + 32, w->nsections);
		put_u32(h + 60, crc32c(0, h, 60));
		w_pwrite_all(w, h, sizeof h, 0);
	}
	int rc = w->rc;
	if (rc) {
		if (err)
			*err = w->err;
	} else {
		rc = es_tmpfile_commit(&w->t, err); /* fsync, rename, fsync dir */
	}
	snapshot_writer_abort(w);
	return rc;
}

int snapshot_write_file(const char *path, uint64_t lsn, uint32_t tag,
			const void *data, size_t len, es_error *err)
{
	snapshot_writer *w;
	int rc = snapshot_writer_new(path, lsn, NULL, &w, err);
	if (rc)
		return rc;
	rc = snapshot_write_section(w, tag, data, len, err);
	if (rc) {
		snapshot_writer_abort(w);
		return rc;
	}
	return snapshot_writer_commit(w, err);
}

/* ------------------------------------------------------------------ reader */

void snapshot_close(snapshot *s)
{
	if (!s)
		return;
	if (s->map)
		munmap(s->map, s->size);
	es_free(s->sec);
	es_free(s->path);
	es_free(s);
}

int snapshot_open(const char *path, snapshot **out, es_error *err)
{
	int rc = 0;
	*out = NULL;
	snapshot *s = es_calloc(1, sizeof *s);
	if (!s || !(s->path = es_strdup(path))) {
		es_free(s);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = es_err(err, errno == ENOENT ? ES_ENOTFOUND : ES_EIO, "%s: open: %s",
			    path, strerror(errno));
		goto fail;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		rc = es_err(err, ES_EIO, "%s: stat: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	s->size = (size_t)sb.st_size;
	if (s->size < SNAPSHOT_HEADER_SIZE) {
		close(fd);
		rc = es_err(err, ES_ECORRUPT, "%s: offset 0: file of %zu bytes is shorter "
			    "than the snapshot header", path, s->size);
		goto fail;
	}
	s->map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		rc = es_err(err, ES_EIO, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	const unsigned char *h = s->map;
	if (memcmp(h, SNAPSHOT_MAGIC, 8) != 0) {
		rc = es_err(err, ES_ECORRUPT, "%s: offset 0: bad magic (not an embedsrv snapshot)", path);
		goto fail;
	}
	if (crc32c(0, h, 60) != get_u32(h + 60)) {
		rc = es_err(err, ES_ECORRUPT, "%s: offset 0: header checksum mismatch", path);
		goto fail;
	}
	if (get_u32(h + 8) != SNAPSHOT_VERSION || get_u32(h + 12) != SNAPSHOT_HEADER_SIZE) {
		rc = es_err(err, ES_EUNSUPPORTED, "%s: offset 8: snapshot version %u is not "
			    "supported (this build reads version %u)", path, get_u32(h + 8),
			    SNAPSHOT_VERSION);
		goto fail;
	}
	s->lsn = get_u64(h + 16);
	uint64_t fsize = get_u64(h + 24);
	uint32_t n = get_u32(h + 32);
	if (fsize != s->size) {
		rc = es_err(err, ES_ECORRUPT, "%s: offset 24: header says %" PRIu64
			    " bytes, the file has %zu (truncated or extended)", path, fsize, s->size);
		goto fail;
	}
	if (n > SNAPSHOT_MAX_SECTIONS) {
		rc = es_err(err, ES_ECORRUPT, "%s: offset 32: %u sections is over the bound %u",
			    path, n, SNAPSHOT_MAX_SECTIONS);
		goto fail;
	}
	s->sec = es_calloc(n ? n : 1, sizeof *s->sec);
	if (!s->sec) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto fail;
	}
	uint64_t off = SNAPSHOT_HEADER_SIZE;
	for (uint32_t i = 0; i < n; i++) {
		if (s->size - off < SNAPSHOT_SECTION_HEADER_SIZE) {
			rc = es_err(err, ES_ECORRUPT, "%s: offset %" PRIu64 ": section %u header "
				    "runs past the end of the file", path, off, i);
			goto fail;
		}
		const unsigned char *sh = s->map + off;
		if (crc32c(0, sh, 20) != get_u32(sh + 20)) {
			rc = es_err(err, ES_ECORRUPT, "%s: offset %" PRIu64 ": section %u header "
				    "checksum mismatch", path, off, i);
			goto fail;
		}
		uint64_t len = get_u64(sh + 8);
		uint64_t room = s->size - off - SNAPSHOT_SECTION_HEADER_SIZE;
		uint64_t padded = len + ((8 - (len & 7)) & 7);
		if (len > room || padded > room) {
			rc = es_err(err, ES_ECORRUPT, "%s: offset %" PRIu64 ": section %u claims %"
				    PRIu64 " bytes, only %" PRIu64 " remain", path, off, i, len, room);
			goto fail;
		}
		const unsigned char *data = sh + SNAPSHOT_SECTION_HEADER_SIZE;
		if (crc32c(0, data, (size_t)len) != get_u32(sh + 16)) {
			rc = es_err(err, ES_ECORRUPT, "%s: offset %" PRIu64 ": section %u (tag 0x%08x, "
				    "%" PRIu64 " bytes) data checksum mismatch", path,
				    off + SNAPSHOT_SECTION_HEADER_SIZE, i, get_u32(sh), len);
			goto fail;
		}
		for (uint64_t k = len; k < padded; k++)
			if (data[k] != 0) {
				rc = es_err(err, ES_ECORRUPT, "%s: offset %" PRIu64 ": section %u "
					    "padding is not zero", path,
					    off + SNAPSHOT_SECTION_HEADER_SIZE + k, i);
				goto fail;
			}
		s->sec[i].tag = get_u32(sh);
		s->sec[i].off = off + SNAPSHOT_SECTION_HEADER_SIZE;
		s->sec[i].len = len;
		off += SNAPSHOT_SECTION_HEADER_SIZE + padded;
	}
	if (off != s->size) {
		rc = es_err(err, ES_ECORRUPT, "%s: offset %" PRIu64 ": %zu stray bytes after "
			    "the last section", path, off, (size_t)(s->size - off));
		goto fail;
	}
	s->n = n;
	*out = s;
	return 0;
fail:
	snapshot_close(s);
	return rc;
}

uint64_t snapshot_lsn(const snapshot *s)
{
	return s->lsn;
}

const char *snapshot_path(const snapshot *s)
{
	return s->path;
}

int snapshot_section(const snapshot *s, uint32_t tag, const void **data, size_t *len)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->sec[i].tag == tag) {
			*data = s->map + s->sec[i].off;
			*len = (size_t)s->sec[i].len;
			return 0;
		}
	return ES_ENOTFOUND;
}

FILE *snapshot_section_fopen(const snapshot *s, uint32_t tag)
{
	const void *d;
	size_t len;
	if (snapshot_section(s, tag, &d, &len) != 0)
		return NULL;
	if (len == 0)
		return fopen("/dev/null", "rb");
	/* "r" mode never writes, so the const mapping is safe */
	return fmemopen((void *)d, len, "r");
}

/* ------------------------------------------------------------------ cursor */

void snap_cursor_init(snap_cursor *c, const void *data, size_t len, const char *what)
{
	c->p = data;
	c->len = len;
	c->pos = 0;
	c->what = what ? what : "section";
}

static int cur_need(snap_cursor *c, size_t n, es_error *err)
{
	if (c->len - c->pos < n)
		return es_err(err, ES_ECORRUPT, "%s: %zu bytes short at byte %zu", c->what,
			      n - (c->len - c->pos), c->pos);
	return 0;
}

int snap_get_u8(snap_cursor *c, uint8_t *v, es_error *err)
{
	int rc = cur_need(c, 1, err);
	if (!rc)
		*v = c->p[c->pos++];
	return rc;
}

int snap_get_u32(snap_cursor *c, uint32_t *v, es_error *err)
{
	int rc = cur_need(c, 4, err);
	if (!rc) {
		*v = get_u32(c->p + c->pos);
		c->pos += 4;
	}
	return rc;
}

int snap_get_u64(snap_cursor *c, uint64_t *v, es_error *err)
{
	int rc = cur_need(c, 8, err);
	if (!rc) {
		*v = get_u64(c->p + c->pos);
		c->pos += 8;
	}
	return rc;
}

int snap_get_bytes(snap_cursor *c, size_t n, const void **p, es_error *err)
{
	int rc = cur_need(c, n, err);
	if (!rc) {
		*p = c->p + c->pos;
		c->pos += n;
	}
	return rc;
}

int snap_cursor_end(const snap_cursor *c, es_error *err)
{
	if (c->pos != c->len)
		return es_err(err, ES_ECORRUPT, "%s: %zu stray bytes at byte %zu", c->what,
			      c->len - c->pos, c->pos);
	return 0;
}

/* ----------------------------------------------------------------- builder */

void snap_buf_init(snap_buf *b)
{
	es_bytebuf_init(b);
}

void snap_buf_free(snap_buf *b)
{
	es_bytebuf_free(b);
}

void snap_put_u8(snap_buf *b, uint8_t v)
{
	unsigned char *p = es_bytebuf_grow(b, 1);
	if (p)
		*p = v;
}

void snap_put_u32(snap_buf *b, uint32_t v)
{
	unsigned char *p = es_bytebuf_grow(b, 4);
	if (p)
		put_u32(p, v);
}

void snap_put_u64(snap_buf *b, uint64_t v)
{
	unsigned char *p = es_bytebuf_grow(b, 8);
	if (p)
		put_u64(p, v);
}

void snap_put_bytes(snap_buf *b, const void *src, size_t n)
{
	unsigned char *p = es_bytebuf_grow(b, n);
	if (p && n)
		memcpy(p, src, n);
}

int snap_buf_status(const snap_buf *b)
{
	return b->oom ? ES_ENOMEM : 0;
}
