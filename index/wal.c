/*
 * wal.c — see wal.h for the file format, the replay rules and the policies.
 *
 * Threading: one mutex guards the file offset, the lsn counters and the
 * states; write() happens under it (so records are laid down in lsn order;
 * the payload CRC is computed before taking it), fdatasync happens outside
 * it by one leader at a time.  Group commit: wal_write returns as soon as
 * the record is in the page cache; wal_wait_durable either finds a sync
 * that already covers its lsn, or becomes the leader when no sync runs
 * (syncing everything written up to then), or sleeps on sync_cv until a
 * leader's sync ends and looks again.  So a burst of N writers costs about
 * two fsyncs, not N.  freeze_cv: freeze state changed; the flusher of the
 * batch policy sleeps on flush_cv.
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "fileio.h"
#include "le.h"
#include "lerw.h"

struct wal {
	char *path;
	int fd;
	wal_options o;
	wal_io_hooks hooks;

	pthread_mutex_t m;
	pthread_cond_t sync_cv, freeze_cv, flush_cv;
	uint64_t end;         /* file size = offset of the next record */
	uint64_t last_lsn;    /* last lsn appended */
	uint64_t durable_lsn; /* last lsn known fdatasynced */
	uint64_t durable_end; /* file size at durable_lsn */
	uint32_t last_crc;    /* payload CRC of record last_lsn (0 unknown) */
	int syncing;          /* a leader is in fdatasync */
	int frozen;
	int failed;           /* 0 or ES_EIO */

	pthread_t flusher;
	int flusher_on, stop;
};

/* ------------------------------------------------------------------ policy */

int wal_policy_parse(const char *s, wal_fsync_policy *out)
{
	if (!s)
		return ES_EINVAL;
	if (strcmp(s, "always") == 0)
		*out = WAL_FSYNC_ALWAYS;
	else if (strcmp(s, "batch") == 0)
		*out = WAL_FSYNC_BATCH;
	else if (strcmp(s, "never") == 0)
		*out = WAL_FSYNC_NEVER;
	else
		return ES_EINVAL;
	return 0;
}

const char *wal_policy_name(wal_fsync_policy p)
{
	switch (p) {
	case WAL_FSYNC_ALWAYS: return "always";
	case WAL_FSYNC_BATCH: return "batch";
	case WAL_FSYNC_NEVER: return "never";
	}
	return "unknown";
}

void wal_options_default(wal_options *o)
{
	memset(o, 0, sizeof *o);
	o->policy = WAL_FSYNC_ALWAYS;
	o->batch_interval_ms = WAL_DEFAULT_BATCH_MS;
}

/* --------------------------------------------------------------------- I/O */

static ssize_t real_pwritev(void *ctx, int fd, const struct iovec *iov,
			    int iovcnt, off_t off)
{
	(void)ctx;
	return pwritev(fd, iov, iovcnt, off);
}

static int real_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return fdatasync(fd);
}


/* Write all of iov at off, continuing after short writes.  0 or -1/errno. */
static int write_all(wal *w, struct iovec *iov, int iovcnt, off_t off)
{
	while (iovcnt > 0) {
		ssize_t r = w->hooks.pwritev(w->hooks.ctx, w->fd, iov, iovcnt, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		off += r;
		size_t done = (size_t)r;
		while (iovcnt > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}


static void file_header(unsigned char h[WAL_FILE_HEADER_SIZE], uint64_t base,
			uint32_t base_crc)
{
	memset(h, 0, WAL_FILE_HEADER_SIZE);
	memcpy(h, WAL_MAGIC, 8);
	put_u32(h + 8, WAL_VERSION);
	put_u32(h + 12, WAL_FILE_HEADER_SIZE);
	put_u64(h + 16, base);
	put_u32(h + 24, base_crc);
	put_u32(h + 28, crc32c(0, h, 28));
}

/* Write a fresh header at offset 0 of fd and cut the file after it. */
static int write_fresh_header(wal *w, uint64_t base, uint32_t base_crc, es_error *err)
{
	unsigned char h[WAL_FILE_HEADER_SIZE];
	file_header(h, base, base_crc);
	w->last_crc = base_crc;
	struct iovec iov = {h, sizeof h};
	if (write_all(w, &iov, 1, 0) != 0 ||
	    ftruncate(w->fd, WAL_FILE_HEADER_SIZE) != 0 ||
	    w->hooks.fdatasync(w->hooks.ctx, w->fd) != 0)
		return es_err(err, es_errno_code(errno), "%s: writing log header: %s",
			      w->path, strerror(errno));
	return 0;
}

/* ------------------------------------------------------------------ replay */

static int valid_type(uint32_t t)
{
	return t >= WAL_REC_CREATE && t <= WAL_REC_PINDEX;
}

/* Check the record at off.  Returns NULL when valid (sets *plen), else a
 * static reason. */
static const char *check_record(const unsigned char *map, uint64_t size,
				uint64_t off, uint64_t expect_lsn, size_t *plen)
{
	if (size - off < WAL_RECORD_HEADER_SIZE)
		return "incomplete record header";
	const unsigned char *h = map + off;
	if (crc32c(0, h, 20) != get_u32(h + 20))
		return "record header checksum mismatch";
	uint32_t len = get_u32(h);
	if (len > WAL_MAX_RECORD)
		return "record length over the 1 GiB bound";
	if (!valid_type(get_u32(h + 4)))
		return "unknown record type";
	if (get_u64(h + 8) != expect_lsn)
		return "record lsn out of sequence";
	if (size - off - WAL_RECORD_HEADER_SIZE < len)
		return "record payload cut short";
	if (crc32c(0, h + WAL_RECORD_HEADER_SIZE, len) != get_u32(h + 16))
		return "record payload checksum mismatch";
	*plen = len;
	return NULL;
}

/* Is there a whole valid record anywhere at or after `from` whose lsn is
 * later than prev_lsn?  Then damage before it is corruption, not a tear. */
static int valid_record_follows(const unsigned char *map, uint64_t size,
				uint64_t from, uint64_t prev_lsn)
{
	for (uint64_t p = from; p + WAL_RECORD_HEADER_SIZE <= size; p++) {
		const unsigned char *h = map + p;
		uint64_t lsn = get_u64(h + 8);
		if (lsn <= prev_lsn || lsn - prev_lsn > ((uint64_t)1 << 40) ||
		    !valid_type(get_u32(h + 4)))
			continue;
		size_t len;
		if (!check_record(map, size, p, lsn, &len))
			return 1;
	}
	return 0;
}

static int replay(wal *w, uint64_t size, wal_replay_fn fn, void *ctx,
		  wal_replay_stats *st, es_error *err)
{
	int rc = 0;
	unsigned char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, w->fd, 0);
	if (map == MAP_FAILED)
		return es_err(err, ES_EIO, "%s: mmap: %s", w->path, strerror(errno));

	const unsigned char *h = map;
	if (memcmp(h, WAL_MAGIC, 8) != 0 || crc32c(0, h, 28) != get_u32(h + 28) ||
	    get_u32(h + 8) != WAL_VERSION || get_u32(h + 12) != WAL_FILE_HEADER_SIZE) {
		const char *why = memcmp(h, WAL_MAGIC, 8) != 0 ? "bad magic (not an embedsrv log)"
				  : crc32c(0, h, 28) != get_u32(h + 28) ? "header checksum mismatch"
				  : "unsupported log version";
		if (!w->o.recover) {
			rc = es_err(err, ES_ECORRUPT,
				    "%s: offset 0: %s; start with --recover to discard this log",
				    w->path, why);
			goto out;
		}
		st->truncated_bytes = size;
		st->corrupt_offset = 0;
		munmap(map, size);
		map = NULL;
		w->last_lsn = w->o.base_lsn;
		st->base_lsn = w->o.base_lsn;
		rc = write_fresh_header(w, w->o.base_lsn, w->o.base_crc, err);
		w->end = WAL_FILE_HEADER_SIZE;
		goto out;
	}
	uint64_t base = get_u64(h + 16);
	st->base_lsn = base;
	w->last_crc = get_u32(h + 24);
	uint64_t off = WAL_FILE_HEADER_SIZE, expect = base + 1;
	while (off < size) {
		size_t len = 0;
		const char *why = check_record(map, size, off, expect, &len);
		if (!why) {
			w->last_crc = get_u32(map + off + 16);
			if (fn) {
				rc = fn(ctx, expect, get_u32(map + off + 4),
					map + off + WAL_RECORD_HEADER_SIZE, len, err);
				if (rc) {
					es_err_prefix(err, rc, "%s: replaying lsn %" PRIu64
						      " at offset %" PRIu64, w->path, expect, off);
					goto out;
				}
			}
			st->records++;
			off += WAL_RECORD_HEADER_SIZE + len;
			expect++;
			continue;
		}
		if (valid_record_follows(map, size, off + 1, expect - 1)) {
			if (!w->o.recover) {
				rc = es_err(err, ES_ECORRUPT,
					    "%s: offset %" PRIu64 " (lsn %" PRIu64 "): %s, and valid "
					    "records follow, so this is damage, not a torn write; "
					    "start with --recover to truncate the log here "
					    "(drops %" PRIu64 " bytes)",
					    w->path, off, expect, why, size - off);
				goto out;
			}
			st->truncated_bytes = size - off;
			st->corrupt_offset = (int64_t)off;
		} else {
			st->torn_bytes = size - off;
		}
		break;
	}
	if (off < size) {
		if (ftruncate(w->fd, (off_t)off) != 0 ||
		    w->hooks.fdatasync(w->hooks.ctx, w->fd) != 0) {
			rc = es_err(err, es_errno_code(errno), "%s: truncating at offset %"
				    PRIu64 ": %s", w->path, off, strerror(errno));
			goto out;
		}
	}
	w->end = off;
	w->last_lsn = expect - 1;
out:
	if (map)
		munmap(map, size);
	return rc;
}

/* --------------------------------------------------------------- lifecycle */

static void *flusher_main(void *arg);

int wal_open(const char *path, const wal_options *opts, wal_replay_fn fn,
	     void *ctx, wal_replay_stats *stats, wal **out, es_error *err)
{
	int rc = 0;
	wal_replay_stats st_local;
	wal_replay_stats *st = stats ? stats : &st_local;
	memset(st, 0, sizeof *st);
	st->corrupt_offset = -1;
	*out = NULL;

	wal *w = es_calloc(1, sizeof *w);
	if (!w)
		return es_err(err, ES_ENOMEM, "out of memory");
	w->fd = -1;
	if (opts)
		w->o = *opts;
	else
		wal_options_default(&w->o);
	if (w->o.batch_interval_ms == 0)
		w->o.batch_interval_ms = WAL_DEFAULT_BATCH_MS;
	if (w->o.hooks)
		w->hooks = *w->o.hooks;
	if (!w->hooks.pwritev)
		w->hooks.pwritev = real_pwritev;
	if (!w->hooks.fdatasync)
		w->hooks.fdatasync = real_fdatasync;
	w->o.hooks = NULL;
	pthread_mutex_init(&w->m, NULL);
	pthread_cond_init(&w->sync_cv, NULL);
	pthread_cond_init(&w->freeze_cv, NULL);
	pthread_cond_init(&w->flush_cv, NULL);
	w->path = es_strdup(path);
	if (!w->path) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto fail;
	}
	int created = access(path, F_OK) != 0;
	w->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = es_err(err, es_errno_code(errno), "%s: open: %s", path, strerror(errno));
		goto fail;
	}
	struct stat sb;
	if (fstat(w->fd, &sb) != 0) {
		rc = es_err(err, ES_EIO, "%s: stat: %s", path, strerror(errno));
		goto fail;
	}
	uint64_t size = (uint64_t)sb.st_size;
	if (size == 0) {
		/* new, or created by a crash before its header reached the disk */
		rc = write_fresh_header(w, w->o.base_lsn, w->o.base_crc, err);
		if (!rc && created)
			rc = es_fsync_parent_dir(path, err);
		if (rc)
			goto fail;
		w->end = WAL_FILE_HEADER_SIZE;
		w->last_lsn = w->o.base_lsn;
		st->base_lsn = w->o.base_lsn;
	} else if (size < WAL_FILE_HEADER_SIZE) {
		if (!w->o.recover) {
			rc = es_err(err, ES_ECORRUPT,
				    "%s: offset 0: file of %" PRIu64 " bytes is shorter than "
				    "the log header; start with --recover to discard it",
				    path, size);
			goto fail;
		}
		st->truncated_bytes = size;
		st->corrupt_offset = 0;
		rc = write_fresh_header(w, w->o.base_lsn, w->o.base_crc, err);
		if (rc)
			goto fail;
		w->end = WAL_FILE_HEADER_SIZE;
		w->last_lsn = w->o.base_lsn;
		st->base_lsn = w->o.base_lsn;
	} else {
		rc = replay(w, size, fn, ctx, st, err);
		if (rc)
			goto fail;
	}
	w->durable_lsn = w->last_lsn;
	w->durable_end = w->end;
	st->last_lsn = w->last_lsn;
	st->valid_bytes = w->end;
	if (w->o.policy == WAL_FSYNC_BATCH) {
		if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0) {
			rc = es_err(err, ES_ENOMEM, "cannot start the log flusher thread");
			goto fail;
		}
		w->flusher_on = 1;
	}
	*out = w;
	return 0;
fail:
	wal_close(w);
	return rc;
}

void wal_close(wal *w)
{
	if (!w)
		return;
	if (w->flusher_on) {
		pthread_mutex_lock(&w->m);
		w->stop = 1;
		pthread_cond_broadcast(&w->flush_cv);
		pthread_mutex_unlock(&w->m);
		pthread_join(w->flusher, NULL);
	}
	if (w->fd >= 0) {
		if (!w->failed && w->durable_lsn < w->last_lsn)
			w->hooks.fdatasync(w->hooks.ctx, w->fd);
		close(w->fd);
	}
	pthread_mutex_destroy(&w->m);
	pthread_cond_destroy(&w->sync_cv);
	pthread_cond_destroy(&w->freeze_cv);
	pthread_cond_destroy(&w->flush_cv);
	es_free(w->path);
	es_free(w);
}

/* ------------------------------------------------------------------ append */

/* Leader: fdatasync everything written so far.  Called and returns with
 * w->m held, drops it around the system call.  truncate_on_fail: cut the
 * non-durable records off (policy always: nobody acknowledged them). */
static void group_sync(wal *w, int truncate_on_fail)
{
	w->syncing = 1;
	uint64_t target = w->last_lsn, target_end = w->end;
	pthread_mutex_unlock(&w->m);
	int r = w->hooks.fdatasync(w->hooks.ctx, w->fd);
	pthread_mutex_lock(&w->m);
	w->syncing = 0;
	if (r != 0) {
		w->failed = ES_EIO;
		if (truncate_on_fail && ftruncate(w->fd, (off_t)w->durable_end) == 0)
			w->end = w->durable_end;
	} else if (!w->failed) {
		w->durable_lsn = target;
		w->durable_end = target_end;
	}
	pthread_cond_broadcast(&w->sync_cv);
}

int wal_write(wal *w, uint32_t type, const void *data, size_t len,
	      uint64_t *lsn_out, es_error *err)
{
	if (!valid_type(type))
		return es_err(err, ES_EINVAL, "unknown log record type %u", type);
	if (len > WAL_MAX_RECORD)
		return es_err(err, ES_ERANGE, "log record of %zu bytes is over the 1 GiB bound", len);
	uint32_t payload_crc = crc32c(0, data, len); /* outside the lock */
	int rc = 0;
	pthread_mutex_lock(&w->m);
	while (w->frozen)
		pthread_cond_wait(&w->freeze_cv, &w->m);
	if (w->failed) {
		rc = es_err(err, ES_EIO, "%s: an fdatasync of the write-ahead log failed "
			    "earlier, so what the disk holds after it is unknown; writes are "
			    "refused until the server restarts (reads go on)", w->path);
		goto out;
	}
	uint64_t lsn = w->last_lsn + 1;
	unsigned char h[WAL_RECORD_HEADER_SIZE];
	put_u32(h, (uint32_t)len);
	put_u32(h + 4, type);
	put_u64(h + 8, lsn);
	put_u32(h + 16, payload_crc);
	put_u32(h + 20, crc32c(0, h, 20));
	struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
	if (write_all(w, iov, len ? 2 : 1, (off_t)w->end) != 0) {
		int e = errno;
		rc = es_err(err, es_errno_code(e), "%s: write of %zu bytes at offset %" PRIu64
			    " failed: %s", w->path, len + sizeof h, w->end, strerror(e));
		/* whole records only: cut whatever part of this one landed */
		if (ftruncate(w->fd, (off_t)w->end) != 0)
			w->failed = ES_EIO;
		goto out;
	}
	w->end += sizeof h + len;
	w->last_lsn = lsn;
	w->last_crc = payload_crc;
	if (lsn_out)
		*lsn_out = lsn;
out:
	pthread_mutex_unlock(&w->m);
	return rc;
}

int wal_wait_durable(wal *w, uint64_t lsn, es_error *err)
{
	if (w->o.policy != WAL_FSYNC_ALWAYS)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&w->m);
	while (w->durable_lsn < lsn && !w->failed) {
		if (!w->syncing)
			group_sync(w, 1); /* leader: syncs for everyone written so far */
		else
			pthread_cond_wait(&w->sync_cv, &w->m);
	}
	if (w->durable_lsn < lsn)
		rc = es_err(err, ES_EIO, "%s: fdatasync of the write-ahead log failed, so the "
			    "write was not applied; writes are refused until the server restarts "
			    "(reads go on)", w->path);
	pthread_mutex_unlock(&w->m);
	return rc;
}

int wal_append(wal *w, uint32_t type, const void *data, size_t len,
	       uint64_t *lsn_out, es_error *err)
{
	uint64_t lsn;
	int rc = wal_write(w, type, data, len, &lsn, err);
	if (!rc)
		rc = wal_wait_durable(w, lsn, err);
	if (!rc && lsn_out)
		*lsn_out = lsn;
	return rc;
}

static void *flusher_main(void *arg)
{
	wal *w = arg;
	pthread_mutex_lock(&w->m);
	while (!w->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)w->o.batch_interval_ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&w->flush_cv, &w->m, &ts);
		if (!w->stop && !w->failed && !w->syncing && w->durable_lsn < w->last_lsn)
			group_sync(w, 0);
	}
	pthread_mutex_unlock(&w->m);
	return NULL;
}

int wal_sync(wal *w, es_error *err)
{
	pthread_mutex_lock(&w->m);
	while (w->syncing)
		pthread_cond_wait(&w->sync_cv, &w->m);
	if (!w->failed && w->durable_lsn < w->last_lsn)
		group_sync(w, 0);
	int rc = w->failed ? es_err(err, ES_EIO, "%s: fdatasync failed", w->path) : 0;
	pthread_mutex_unlock(&w->m);
	return rc;
}

/* ------------------------------------------------------------------ freeze */

void wal_freeze(wal *w, uint64_t *last_lsn)
{
	pthread_mutex_lock(&w->m);
	while (w->frozen)
		pthread_cond_wait(&w->freeze_cv, &w->m);
	w->frozen = 1;
	while (w->syncing)
		pthread_cond_wait(&w->sync_cv, &w->m);
	if (last_lsn)
		*last_lsn = w->last_lsn;
	pthread_mutex_unlock(&w->m);
}

void wal_thaw(wal *w)
{
	pthread_mutex_lock(&w->m);
	w->frozen = 0;
	pthread_cond_broadcast(&w->freeze_cv);
	pthread_mutex_unlock(&w->m);
}

int wal_reset(wal *w, uint64_t base_lsn, es_error *err)
{
	es_tmpfile t;
	pthread_mutex_lock(&w->m);
	int rc = es_tmpfile_create(&t, w->path, err);
	if (rc)
		goto out;
	t.fsync = w->hooks.fdatasync;
	t.fsync_ctx = w->hooks.ctx;
	int old = w->fd, fd;
	w->fd = t.fd; /* write_fresh_header goes through the hooks on w->fd */
	rc = write_fresh_header(w, base_lsn, 0, err);
	w->fd = old;
	if (rc) {
		es_tmpfile_abort(&t);
		goto out;
	}
	rc = es_tmpfile_publish(&t, &fd, err);
	if (rc)
		goto out;
	close(old);
	w->fd = fd;
	w->end = w->durable_end = WAL_FILE_HEADER_SIZE;
	w->last_lsn = w->durable_lsn = base_lsn;
	w->last_crc = 0;
	w->failed = 0;
out:
	pthread_mutex_unlock(&w->m);
	return rc;
}

wal_state wal_get_state(wal *w)
{
	pthread_mutex_lock(&w->m);
	wal_state st = {w->end, w->last_lsn, w->last_crc, w->failed};
	pthread_mutex_unlock(&w->m);
	return st;
}

uint64_t wal_size_bytes(wal *w)
{
	return wal_get_state(w).end;
}

uint64_t wal_last_lsn(wal *w)
{
	return wal_get_state(w).last_lsn;
}

int wal_failed(wal *w)
{
	return wal_get_state(w).failed;
}

uint32_t wal_last_crc(wal *w)
{
	return wal_get_state(w).last_crc;
}

void wal_shippable(wal *w, uint64_t *lsn, uint64_t *end)
{
	pthread_mutex_lock(&w->m);
	if (w->o.policy == WAL_FSYNC_ALWAYS) {
		*lsn = w->durable_lsn;
		*end = w->durable_end;
	} else {
		*lsn = w->last_lsn;
		*end = w->end;
	}
	pthread_mutex_unlock(&w->m);
}

/* ------------------------------------------------------- read side (shipping) */

int wal_record_parse(const void *buf, size_t len, uint64_t expect_lsn,
		     uint32_t *type, const void **payload, size_t *plen,
		     size_t *rec_len, es_error *err)
{
	const unsigned char *b = buf;
	size_t n = 0;
	const char *why = check_record(b, len, 0, expect_lsn, &n);
	if (why)
		return es_err(err, ES_ECORRUPT, "log record lsn %" PRIu64 ": %s", expect_lsn, why);
	*type = get_u32(b + 4);
	*payload = b + WAL_RECORD_HEADER_SIZE;
	*plen = n;
	*rec_len = WAL_RECORD_HEADER_SIZE + n;
	return 0;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	unsigned char *p = buf;
	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* The record header at off: checked like replay does (payload aside).  0
 * with *len, or ES_ECORRUPT / ES_EIO. */
static int ship_header(int fd, uint64_t limit, uint64_t off, uint64_t expect,
		       unsigned char h[WAL_RECORD_HEADER_SIZE], uint32_t *len,
		       es_error *err)
{
	if (pread_all(fd, h, WAL_RECORD_HEADER_SIZE, off) != 0)
		return es_err(err, ES_EIO, "log read at offset %" PRIu64 ": %s", off,
			      strerror(errno ? errno : EIO));
	const char *why = NULL;
	*len = get_u32(h);
	if (crc32c(0, h, 20) != get_u32(h + 20))
		why = "record header checksum mismatch";
	else if (*len > WAL_MAX_RECORD || !valid_type(get_u32(h + 4)))
		why = "bad record length or type";
	else if (get_u64(h + 8) != expect)
		why = "record lsn out of sequence";
	else if (limit - off - WAL_RECORD_HEADER_SIZE < *len)
		why = "record payload cut short";
	if (why)
		return es_err(err, ES_ECORRUPT, "log record at offset %" PRIu64 " (lsn %" PRIu64
			      "): %s", off, expect, why);
	return 0;
}

int wal_ship_read(int fd, uint64_t limit, uint64_t from, const wal_ship_pos *hint,
		  size_t max_bytes, wal_buf *out, wal_ship_pos *prev,
		  wal_ship_pos *end, es_error *err)
{
	unsigned char h[WAL_FILE_HEADER_SIZE];
	if (limit < WAL_FILE_HEADER_SIZE || pread_all(fd, h, sizeof h, 0) != 0)
		return es_err(err, ES_EIO, "log header cannot be read");
	if (memcmp(h, WAL_MAGIC, 8) != 0 || crc32c(0, h, 28) != get_u32(h + 28))
		return es_err(err, ES_ECORRUPT, "log header damaged");
	uint64_t base = get_u64(h + 16);
	if (from < base)
		return es_err(err, ES_ENOTFOUND, "lsn %" PRIu64 " is before this log (base %"
			      PRIu64 ")", from, base);
	wal_ship_pos pos = {base, WAL_FILE_HEADER_SIZE, get_u32(h + 24)};
	unsigned char rh[WAL_RECORD_HEADER_SIZE];
	uint32_t len;
	int rc;
	if (hint && hint->lsn == from && hint->off <= limit && hint->lsn >= base)
		pos = *hint;
	while (pos.lsn < from) { /* scan to the record `from` */
		if (limit - pos.off < WAL_RECORD_HEADER_SIZE)
			return es_err(err, ES_ERANGE, "lsn %" PRIu64 " is past this log's "
				      "last record (lsn %" PRIu64 ")", from, pos.lsn);
		if ((rc = ship_header(fd, limit, pos.off, pos.lsn + 1, rh, &len, err)))
			return rc;
		pos.lsn++;
		pos.off += WAL_RECORD_HEADER_SIZE + len;
		pos.crc = get_u32(rh + 16);
	}
	*prev = pos;
	size_t total = 0;
	while (limit - pos.off >= WAL_RECORD_HEADER_SIZE) {
		if ((rc = ship_header(fd, limit, pos.off, pos.lsn + 1, rh, &len, err)))
			return rc;
		size_t n = WAL_RECORD_HEADER_SIZE + (size_t)len;
		if (total && total + n > max_bytes)
			break;
		unsigned char *dst = es_bytebuf_grow(out, n);
		if (!dst)
			return es_err(err, ES_ENOMEM, "out of memory reading %zu log bytes", n);
		memcpy(dst, rh, WAL_RECORD_HEADER_SIZE);
		if (len && pread_all(fd, dst + WAL_RECORD_HEADER_SIZE, len,
				     pos.off + WAL_RECORD_HEADER_SIZE) != 0)
			return es_err(err, ES_EIO, "log read at offset %" PRIu64 ": %s", pos.off,
				      strerror(errno ? errno : EIO));
		if (crc32c(0, dst + WAL_RECORD_HEADER_SIZE, len) != get_u32(rh + 16))
			return es_err(err, ES_ECORRUPT, "log record at offset %" PRIu64 " (lsn %"
				      PRIu64 "): record payload checksum mismatch", pos.off,
				      pos.lsn + 1);
		total += n;
		pos.lsn++;
		pos.off += n;
		pos.crc = get_u32(rh + 16);
	}
	*end = pos;
	return 0;
}

/* ---------------------------------------------------------------- payloads */

void wal_buf_init(wal_buf *b)
{
	es_bytebuf_init(b);
}

void wal_buf_free(wal_buf *b)
{
	es_bytebuf_free(b);
}

/* Payloads are built with core/lerw's memory writer appending to the
 * wal_buf (errors sticky: write everything, check once) and read with its
 * memory reader (every read bounds-checked; ids, payloads and texts are
 * views into the record). */

/* 0, or ES_ENOMEM when the buffer ran out of memory. */
static int done(es_writer *w)
{
	return es_writer_finish(w) ? ES_ENOMEM : 0;
}

/* A fresh payload: b emptied, w appending from its first byte. */
static void fresh(wal_buf *b, es_writer *w)
{
	b->len = 0;
	b->oom = 0;
	es_writer_init_mem(w, b, NULL);
}

static int id_ok(const wal_id *id)
{
	return !id->is_str || (id->len > 0 && id->len <= WAL_MAX_ID_LEN);
}

/* kind byte 0 and u64, or 1 and u32 length + bytes */
static void put_id(es_writer *w, const wal_id *id)
{
	es_w_u8(w, id->is_str ? 1 : 0);
	if (id->is_str) {
		es_w_u32(w, id->len);
		es_w_bytes(w, id->str, id->len);
	} else {
		es_w_u64(w, id->num);
	}
}

int wal_upsert_begin(wal_buf *b, uint32_t dim, uint32_t n)
{
	es_writer w;
	fresh(b, &w);
	es_w_u32(&w, dim);
	es_w_u32(&w, n);
	return done(&w);
}

int wal_upsert_add(wal_buf *b, const wal_id *id, const float *vec, uint32_t dim,
		   const void *payload, uint32_t payload_len)
{
	if (!id_ok(id))
		return ES_EINVAL;
	es_writer w;
	es_writer_init_mem(&w, b, NULL);
	put_id(&w, id);
	es_w_f32s(&w, vec, dim);
	es_w_u32(&w, payload_len);
	es_w_bytes(&w, payload, payload_len);
	return done(&w);
}

int wal_upsert_text_add(wal_buf *b, const wal_id *id, const float *vec,
			uint32_t dim, const void *payload, uint32_t payload_len,
			const char *text, uint32_t text_len)
{
	if ((text && text_len == 0) || !id_ok(id))
		return ES_EINVAL;
	es_writer w;
	es_writer_init_mem(&w, b, NULL);
	put_id(&w, id);
	es_w_u8(&w, (uint8_t)((vec ? 1 : 0) | (text ? 2 : 0)));
	if (vec)
		es_w_f32s(&w, vec, dim);
	es_w_u32(&w, payload_len);
	es_w_bytes(&w, payload, payload_len);
	if (text) {
		es_w_u32(&w, text_len);
		es_w_bytes(&w, text, text_len);
	}
	return done(&w);
}

int wal_delete_begin(wal_buf *b, uint32_t n)
{
	es_writer w;
	fresh(b, &w);
	es_w_u32(&w, n);
	return done(&w);
}

int wal_delete_add(wal_buf *b, const wal_id *id)
{
	if (!id_ok(id))
		return ES_EINVAL;
	es_writer w;
	es_writer_init_mem(&w, b, NULL);
	put_id(&w, id);
	return done(&w);
}

int wal_payload_begin(wal_buf *b, const void *op, uint32_t oplen, uint32_t n)
{
	es_writer w;
	fresh(b, &w);
	es_w_u32(&w, oplen);
	es_w_bytes(&w, op, oplen);
	es_w_u32(&w, n);
	return done(&w);
}

/* The shortest encoded id: kind byte, u32 length, one byte of string. */
#define WAL_MIN_ID_BYTES 6u

static void reader_init(wal_reader *r, const void *data, size_t len)
{
	memset(r, 0, sizeof *r);
	es_reader_mem(&r->in, data, len, NULL);
	r->in.what = "record payload";
}

static int rd_id(wal_reader *r, wal_id *id, es_error *err)
{
	uint8_t kind;
	int rc = es_rd_u8(&r->in, &kind, err);
	if (rc)
		return rc;
	memset(id, 0, sizeof *id);
	if (kind == 0)
		return es_rd_u64(&r->in, &id->num, err);
	if (kind != 1)
		return es_err(err, ES_ECORRUPT, "unknown id kind %u at byte %llu", kind,
			      (unsigned long long)r->in.off - 1);
	uint32_t len;
	const void *str;
	if ((rc = es_rd_u32(&r->in, &len, err)))
		return rc;
	if (len == 0 || len > WAL_MAX_ID_LEN)
		return es_err(err, ES_ECORRUPT, "string id length %u out of range", len);
	if ((rc = es_rd_view(&r->in, len, &str, err)))
		return rc;
	id->is_str = 1;
	id->len = len;
	id->str = str;
	return 0;
}

static int rd_vec(wal_reader *r, float *vec, es_error *err)
{
	if (es_r_f32s(&r->in, vec, r->dim))
		return es_reader_truncated(&r->in, (size_t)r->dim * 4, err);
	return 0;
}

/* u32 length and that many bytes, viewed in place. */
static int rd_blob(wal_reader *r, const void **p, uint32_t *len, es_error *err)
{
	int rc = es_rd_u32(&r->in, len, err);
	return rc ? rc : es_rd_view(&r->in, *len, p, err);
}

/* The header both upsert record kinds open with: dimension and point count. */
static int upsert_header(wal_reader *r, const void *data, size_t len, es_error *err)
{
	reader_init(r, data, len);
	int rc = es_rd_u32(&r->in, &r->dim, err);
	if (!rc)
		rc = es_rd_u32(&r->in, &r->n, err);
	if (rc)
		return rc;
	if (r->dim == 0 || r->dim > (1u << 20))
		return es_err(err, ES_ECORRUPT, "upsert record dimension %u out of range", r->dim);
	return 0;
}

int wal_upsert_read_begin(wal_reader *r, const void *data, size_t len, es_error *err)
{
	int rc = upsert_header(r, data, len, err);
	if (rc)
		return rc;
	/* callers allocate n points before reading them: a count the payload
	 * cannot hold is damage, not a reason to allocate gigabytes */
	if (r->n > (len - 8) / (WAL_MIN_ID_BYTES + (size_t)r->dim * 4 + 4))
		return es_err(err, ES_ECORRUPT, "upsert record claims %u points of dimension %u "
			      "in %zu bytes", r->n, r->dim, len);
	return 0;
}

int wal_upsert_read_next(wal_reader *r, wal_id *id, float *vec,
			 const void **payload, uint32_t *payload_len, es_error *err)
{
	if (r->i >= r->n)
		return es_err(err, ES_ECORRUPT, "read past the last point of the record");
	int rc = rd_id(r, id, err);
	if (!rc)
		rc = rd_vec(r, vec, err);
	if (!rc)
		rc = rd_blob(r, payload, payload_len, err);
	if (!rc)
		r->i++;
	return rc;
}

int wal_upsert_text_read_begin(wal_reader *r, const void *data, size_t len,
			       es_error *err)
{
	int rc = upsert_header(r, data, len, err);
	if (rc)
		return rc;
	/* the shortest point: an id, the flags, a payload length */
	if (r->n > (len - 8) / (WAL_MIN_ID_BYTES + 1 + 4))
		return es_err(err, ES_ECORRUPT, "upsert record claims %u points in %zu bytes",
			      r->n, len);
	return 0;
}

int wal_upsert_text_read_next(wal_reader *r, wal_id *id, float *vec,
			      int *has_vec, const void **payload,
			      uint32_t *payload_len, const char **text,
			      uint32_t *text_len, es_error *err)
{
	if (r->i >= r->n)
		return es_err(err, ES_ECORRUPT, "read past the last point of the record");
	uint8_t flags;
	int rc = rd_id(r, id, err);
	if (!rc)
		rc = es_rd_u8(&r->in, &flags, err);
	if (rc)
		return rc;
	if (flags > 3 || flags == 0)
		return es_err(err, ES_ECORRUPT, "point flags %u at byte %llu", flags,
			      (unsigned long long)r->in.off - 1);
	*has_vec = flags & 1;
	if (*has_vec && (rc = rd_vec(r, vec, err)))
		return rc;
	if ((rc = rd_blob(r, payload, payload_len, err)))
		return rc;
	*text = NULL;
	*text_len = 0;
	if (flags & 2) {
		const void *t;
		if ((rc = rd_blob(r, &t, text_len, err)))
			return rc;
		if (*text_len == 0)
			return es_err(err, ES_ECORRUPT, "empty text at byte %llu",
				      (unsigned long long)r->in.off - 4);
		*text = t;
	}
	r->i++;
	return 0;
}

int wal_delete_read_begin(wal_reader *r, const void *data, size_t len, es_error *err)
{
	reader_init(r, data, len);
	int rc = es_rd_u32(&r->in, &r->n, err);
	if (rc)
		return rc;
	if (r->n > (len - 4) / WAL_MIN_ID_BYTES) /* as in wal_upsert_read_begin */
		return es_err(err, ES_ECORRUPT, "delete record claims %u ids in %zu bytes",
			      r->n, len);
	return 0;
}

int wal_payload_read_begin(wal_reader *r, const void *data, size_t len,
			   const void **op, uint32_t *oplen, es_error *err)
{
	reader_init(r, data, len);
	int rc = rd_blob(r, op, oplen, err);
	if (!rc)
		rc = es_rd_u32(&r->in, &r->n, err);
	if (rc)
		return rc;
	if (r->n > es_r_left(&r->in) / WAL_MIN_ID_BYTES)
		return es_err(err, ES_ECORRUPT, "payload record claims %u ids in %zu bytes",
			      r->n, len);
	return 0;
}

int wal_delete_read_next(wal_reader *r, wal_id *id, es_error *err)
{
	if (r->i >= r->n)
		return es_err(err, ES_ECORRUPT, "read past the last id of the record");
	int rc = rd_id(r, id, err);
	if (!rc)
		r->i++;
	return rc;
}

int wal_read_end(const wal_reader *r, es_error *err)
{
	if (r->i != r->n)
		return es_err(err, ES_ECORRUPT, "record holds %u items, %u read", r->n, r->i);
	return es_reader_end(&r->in, err);
}
