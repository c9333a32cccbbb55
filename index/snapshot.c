/*
 * snapshot.c — see snapshot.h.  Writes go through core/lerw's buffered
 * writer with a pwrite sink (the failure hooks of snapshot_io_hooks), so a
 * section header is patched at its offset once the section ends, and the
 * writer's running CRC-32C, restarted at each section, is the section's
 * data checksum.  Errors are sticky: after the first failed write every
 * call returns that error and commit removes the temporary file.
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
#include "lerw.h"

struct snapshot_writer {
	es_tmpfile t;       /* t.fd, t.tmp: the file being written */
	snapshot_io_hooks hooks;
	es_writer w;        /* w.buf NULL: not set up yet */
	uint64_t lsn;
	uint32_t nsections;
	int in_section;
	uint64_t sec_hdr_off;
	uint32_t sec_tag;
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

/* The es_writer sink: all n bytes at off through the pwrite hook. */
static int pwrite_sink(void *ctx, const void *p, size_t n, uint64_t off)
{
	snapshot_writer *w = ctx;
	const unsigned char *c = p;
	while (n) {
		ssize_t r = w->hooks.pwrite(w->hooks.ctx, w->t.fd, c, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EIO;
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int w_fail(snapshot_writer *w, int e, const char *what)
{
	if (!w->rc)
		w->rc = es_err(&w->err, es_errno_code(e), "%s: %s: %s", w->t.tmp, what, strerror(e));
	return w->rc;
}

/* The sticky error, turning a write error of the es_writer into it. */
static int w_status(snapshot_writer *w)
{
	if (w->w.err)
		w_fail(w, w->w.err, "write");
	return w->rc;
}

/* w_status, copied to *err when there is one. */
static int w_report(snapshot_writer *w, es_error *err)
{
	int rc = w_status(w);
	if (rc && err)
		*err = w->err;
	return rc;
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
	if (es_writer_init_sink(&w->w, pwrite_sink, w, NULL) != 0) {
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
	es_w_bytes(&w->w, zero, sizeof zero); /* the real header is written at commit */
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
	w->sec_hdr_off = w->w.pos;
	unsigned char zero[SNAPSHOT_SECTION_HEADER_SIZE] = {0};
	es_w_bytes(&w->w, zero, sizeof zero); /* patched at section end */
	w->w.crc_fn = crc32c;
	es_writer_crc_restart(&w->w);
	return w_report(w, err);
}

int snapshot_section_append(snapshot_writer *w, const void *data, size_t len,
			    es_error *err)
{
	if (!w->in_section)
		return es_err(err, ES_EINVAL, "snapshot section append outside a section");
	if (!w_status(w))
		es_w_bytes(&w->w, data, len);
	return w_report(w, err);
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
	uint64_t len = w->w.pos - w->sec_hdr_off - SNAPSHOT_SECTION_HEADER_SIZE;
	uint32_t crc = es_writer_crc(&w->w);
	w->w.crc_fn = NULL;
	static const unsigned char pad[8] = {0};
	es_w_bytes(&w->w, pad, (size_t)((8 - (len & 7)) & 7));
	unsigned char h[SNAPSHOT_SECTION_HEADER_SIZE];
	put_u32(h, w->sec_tag);
	put_u32(h + 4, 0);
	put_u64(h + 8, len);
	put_u32(h + 16, crc);
	put_u32(h + 20, crc32c(0, h, 20));
	es_writer_patch(&w->w, w->sec_hdr_off, h, sizeof h);
	if (!w_status(w))
		w->nsections++;
	return w_report(w, err);
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
	es_writer_discard(&w->w);
	es_free(w);
}

int snapshot_writer_commit(snapshot_writer *w, es_error *err)
{
	if (w->in_section)
		w_fail(w, EINVAL, "commit inside an open section");
	if (!w_status(w)) {
		unsigned char h[SNAPSHOT_HEADER_SIZE] = {0};
		memcpy(h, SNAPSHOT_MAGIC, 8);
		put_u32(h + 8, SNAPSHOT_VERSION);
		put_u32(h + 12, SNAPSHOT_HEADER_SIZE);
		put_u64(h + 16, w->lsn);
		put_u64(h + 24, w->w.pos);
		put_u32(h + 32, w->nsections);
		put_u32(h + 60, crc32c(0, h, 60));
		es_writer_patch(&w->w, 0, h, sizeof h);
	}
	es_writer_finish(&w->w);
	int rc = w_report(w, err);
	if (!rc)
		rc = es_tmpfile_commit(&w->t, err); /* fsync, rename, fsync dir */
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
