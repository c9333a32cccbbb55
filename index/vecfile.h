/*
 * vecfile.h — an append-only store of fixed-size segments in an unlinked,
 * file-backed temporary file, each segment mapped on its own.
 *
 * Purpose: the int8 HNSW index keeps its float32 originals here rather than
 * on the heap (the way Qdrant keeps quantised vectors in RAM and originals
 * on disk for rescoring).  The pages are the kernel's page cache: they can
 * be written back and evicted under memory pressure, so they are not part of
 * the index's own memory.  The directory should be on a real disk (on a
 * tmpfs the pages stay in RAM, which works but saves nothing).
 *
 * Invariants: a segment, once returned, stays mapped at the same address
 * until vecfile_free (growth never moves a mapping), so readers may keep
 * segment pointers without a lock.  Every byte of a segment is allocated on
 * disk before it is mapped (posix_fallocate): writing through the mapping
 * cannot hit a full disk (which would be SIGBUS, not an error code).  The
 * file has no name (O_TMPFILE, or mkstemp + unlink), so nobody else can
 * truncate it and it disappears with the process.
 *
 * Threading: vecfile_grow calls must be serialised by the caller; segment
 * memory is the caller's to synchronise; vecfile_bytes may race with grow
 * (it reads one atomic).
 *
 * Ownership: vecfile_free unmaps every segment and closes the file.
 */
#ifndef ES_VECFILE_H
#define ES_VECFILE_H

#include <stddef.h>

#include "error.h"

typedef struct vecfile vecfile;

/* Open an empty store of segments of at least seg_bytes each (rounded up
 * to the page size) in directory dir; dir NULL or "" means $TMPDIR, else
 * /tmp.
 * ES_EIO with the directory named when the file cannot be created. */
int vecfile_new(const char *dir, size_t seg_bytes, vecfile **out,
		es_error *err);
void vecfile_free(vecfile *f);

/* Append one zero-filled segment and return its mapping in *seg.
 * ES_ENOSPC when the disk is full, ES_ENOMEM / ES_EIO otherwise; the store
 * is unchanged on failure. */
int vecfile_grow(vecfile *f, void **seg, es_error *err);

size_t vecfile_segments(const vecfile *f);
size_t vecfile_bytes(const vecfile *f); /* file size: segments x rounded size */

#endif
