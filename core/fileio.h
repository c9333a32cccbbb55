/*
 * fileio.h — the one way embedsrv replaces a file on disk: write
 * "<path>.tmp", fsync it, rename it over path, fsync the directory.  After a
 * crash the path holds either the old or the new contents, never a torn or
 * empty file.  Every writer of a whole file (models, HNSW indexes,
 * snapshots, a reset log segment) goes through it.
 *
 * Two forms: es_file_replace() for a writer that fills a FILE*, and the
 * es_tmpfile steps (create, write to fd, commit or abort) for writers that
 * pwrite at offsets or inject I/O failures in tests.
 *
 * Threading: no shared state; two writers of one path at once would share
 * the temporary name (callers serialise writes of one path).
 */
#ifndef ES_FILEIO_H
#define ES_FILEIO_H

#include <stdio.h>

#include "error.h"

typedef struct es_tmpfile {
	char *path; /* the destination */
	char *tmp;  /* path + ".tmp" */
	int fd;     /* open for writing; -1 after commit or abort */
	/* fsync of the data (tests inject failures; NULL = fsync(2)) */
	int (*fsync)(void *ctx, int fd);
	void *fsync_ctx;
} es_tmpfile;

/* Create (truncate) "<path>.tmp" for writing.  0, or ES_ENOMEM / ES_EIO /
 * ES_ENOSPC naming the file; t needs no cleanup on an error. */
int es_tmpfile_create(es_tmpfile *t, const char *path, es_error *err);

/* fsync, close, rename over the destination, fsync the directory.  The
 * temporary file is removed on any error; t is released either way. */
int es_tmpfile_commit(es_tmpfile *t, es_error *err);

/* The same, but the file stays open: its descriptor (returned in *fd, now
 * the caller's to close) writes to path.  For a log that goes on growing
 * after its header is in place. */
int es_tmpfile_publish(es_tmpfile *t, int *fd, es_error *err);

/* Close and remove the temporary file; releases t.  Safe after a failed
 * create and after commit (then a no-op). */
void es_tmpfile_abort(es_tmpfile *t);

/* Replace path with what write(ctx, f, err) writes to f (a FILE* on the
 * temporary file).  write returns 0 or an ES_E* code (its message in err);
 * a failed write of f itself is caught at the flush.  Errors name path. */
int es_file_replace(const char *path,
		    int (*write)(void *ctx, FILE *f, es_error *err), void *ctx,
		    es_error *err);

/* fsync the directory that holds path (after a rename or create in it). */
int es_fsync_parent_dir(const char *path, es_error *err);

/* errno -> ES_ENOSPC for a full disk or quota, else ES_EIO. */
int es_errno_code(int e);

#endif
