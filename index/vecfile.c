/*
 * vecfile.c — append-only, separately mapped segments of an unlinked
 * temporary file; see vecfile.h.
 *
 * Why one mapping per segment rather than one mapping grown with mremap:
 * mremap may move the mapping, and a search holding a pointer into the old
 * one would read freed address space.  Separate mappings never move; the
 * kernel merges adjacent ones of the same file into one VMA when their
 * addresses happen to touch, and the HNSW segments are large (1024 rows), so
 * even 10 million vectors stay far below vm.max_map_count.
 *
 * Threading: see vecfile.h (grow is serialised by the caller).
 */
#include "vecfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct vecfile {
	int fd;
	size_t seg_bytes;   /* rounded up to the page size */
	void **seg;         /* every mapping, for vecfile_free */
	size_t cap;
	_Atomic size_t n;
	char dir[256];      /* for error messages */
};

/* An unnamed file in dir: O_TMPFILE where the kernel and file system have
 * it, else a named one unlinked at once. */
static int open_unnamed(const char *dir)
{
#ifdef O_TMPFILE
	int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
#endif
	char path[4096];
	if (snprintf(path, sizeof path, "%s/embedsrv-vectors-XXXXXX", dir) >=
	    (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd2 = mkostemp(path, O_CLOEXEC);
	if (fd2 >= 0)
		unlink(path);
	return fd2;
}

int vecfile_new(const char *dir, size_t seg_bytes, vecfile **out,
		es_error *err)
{
	*out = NULL;
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	if (seg_bytes == 0 || seg_bytes > ((size_t)1 << 40))
		return es_err(err, ES_EINVAL, "vector file: bad segment size %zu",
			      seg_bytes);
	vecfile *f = calloc(1, sizeof *f);
	if (!f)
		return es_err(err, ES_ENOMEM, "vector file: out of memory");
	f->seg_bytes = (seg_bytes + page - 1) / page * page;
	snprintf(f->dir, sizeof f->dir, "%s", dir);
	f->fd = open_unnamed(dir);
	if (f->fd < 0) {
		int rc = es_err(err, ES_EIO,
				"cannot create the float vector file in %s: %s "
				"(set TMPDIR to a writable directory on disk)",
				dir, strerror(errno));
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void vecfile_free(vecfile *f)
{
	if (!f)
		return;
	size_t n = atomic_load(&f->n);
	for (size_t i = 0; i < n; i++)
		munmap(f->seg[i], f->seg_bytes);
	free(f->seg);
	close(f->fd);
	free(f);
}

/* Best effort after a failed grow: the tail past off is unused anyway. */
static void shrink(int fd, off_t off)
{
	if (ftruncate(fd, off) != 0)
		return;
}

int vecfile_grow(vecfile *f, void **seg, es_error *err)
{
	*seg = NULL;
	size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
	if (n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		void **s = realloc(f->seg, cap * sizeof *s);
		if (!s)
			return es_err(err, ES_ENOMEM, "vector file: out of memory");
		f->seg = s;
		f->cap = cap;
	}
	if (n > (size_t)INT64_MAX / f->seg_bytes - 1)
		return es_err(err, ES_ENOMEM, "vector file: too large");
	off_t off = (off_t)(n * f->seg_bytes);
	/* allocate the blocks now: a later write through the mapping to a
	 * hole on a full disk would be SIGBUS */
	int e = posix_fallocate(f->fd, off, (off_t)f->seg_bytes);
	if (e) {
		/* give back what was allocated; the file keeps its old size */
		shrink(f->fd, off);
		return es_err(err, e == ENOSPC ? ES_ENOSPC : ES_EIO,
			      "cannot grow the float vector file in %s: %s",
			      f->dir, strerror(e));
	}
	void *m = mmap(NULL, f->seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		       f->fd, off);
	if (m == MAP_FAILED) {
		int me = errno;
		shrink(f->fd, off);
		return es_err(err, me == ENOMEM ? ES_ENOMEM : ES_EIO,
			      "cannot map the float vector file in %s: %s",
			      f->dir, strerror(me));
	}
	f->seg[n] = m;
	atomic_store_explicit(&f->n, n + 1, memory_order_release);
	*seg = m;
	return 0;
}

size_t vecfile_segments(const vecfile *f)
{
	return atomic_load(&((vecfile *)f)->n);
}

size_t vecfile_bytes(const vecfile *f)
{
	return vecfile_segments(f) * f->seg_bytes;
}
