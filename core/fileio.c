/*
 * fileio.c — see fileio.h.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

int es_errno_code(int e)
{
	return (e == ENOSPC || e == EDQUOT || e == EFBIG) ? ES_ENOSPC : ES_EIO;
}

int es_fsync_parent_dir(const char *path, es_error *err)
{
	char *copy = es_strdup(path);
	if (!copy)
		return es_err(err, ES_ENOMEM, "out of memory");
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || fsync(fd) != 0)
		rc = es_err(err, es_errno_code(errno), "%s: fsync of directory: %s",
			    dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	es_free(copy);
	return rc;
}

static void tmp_release(es_tmpfile *t)
{
	es_free(t->path);
	es_free(t->tmp);
	t->path = t->tmp = NULL;
	t->fd = -1;
}

int es_tmpfile_create(es_tmpfile *t, const char *path, es_error *err)
{
	memset(t, 0, sizeof *t);
	t->fd = -1;
	size_t plen = strlen(path);
	t->path = es_strdup(path);
	t->tmp = es_malloc(plen + 5);
	if (!t->path || !t->tmp) {
		tmp_release(t);
		return es_err(err, ES_ENOMEM, "%s: out of memory", path);
	}
	memcpy(t->tmp, path, plen);
	memcpy(t->tmp + plen, ".tmp", 5);
	t->fd = open(t->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (t->fd < 0) {
		int rc = es_err(err, es_errno_code(errno), "%s: create: %s", t->tmp,
				strerror(errno));
		tmp_release(t);
		return rc;
	}
	return 0;
}

void es_tmpfile_abort(es_tmpfile *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->fd >= 0 && t->tmp)
		unlink(t->tmp);
	tmp_release(t);
}

/* fsync, rename, fsync of the directory; the fd stays open.  On an error
 * the temporary file is removed (and t released). */
static int publish(es_tmpfile *t, es_error *err)
{
	int r = t->fsync ? t->fsync(t->fsync_ctx, t->fd) : fsync(t->fd);
	if (r != 0)
		return es_err(err, es_errno_code(errno), "%s: fsync: %s", t->tmp,
			      strerror(errno));
	if (rename(t->tmp, t->path) != 0)
		return es_err(err, es_errno_code(errno), "%s: rename: %s", t->tmp,
			      strerror(errno));
	es_free(t->tmp);
	t->tmp = NULL; /* renamed: nothing left to unlink */
	return es_fsync_parent_dir(t->path, err);
}

int es_tmpfile_publish(es_tmpfile *t, int *fd, es_error *err)
{
	int rc = publish(t, err);
	if (rc) {
		es_tmpfile_abort(t);
		return rc;
	}
	*fd = t->fd;
	t->fd = -1;
	tmp_release(t);
	return 0;
}

int es_tmpfile_commit(es_tmpfile *t, es_error *err)
{
	int rc = publish(t, err);
	if (!rc) {
		int c = close(t->fd);
		t->fd = -1;
		if (c != 0)
			rc = es_err(err, es_errno_code(errno), "%s: close: %s", t->path,
				    strerror(errno));
	}
	es_tmpfile_abort(t); /* closes and unlinks only what is left */
	return rc;
}

int es_file_replace(const char *path,
		    int (*write)(void *ctx, FILE *f, es_error *err), void *ctx,
		    es_error *err)
{
	es_tmpfile t;
	int rc = es_tmpfile_create(&t, path, err);
	if (rc)
		return rc;
	int fd = dup(t.fd);
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		rc = es_err(err, es_errno_code(errno), "%s: %s", t.tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		es_tmpfile_abort(&t);
		return rc;
	}
	rc = write(ctx, f, err);
	int e = 0;
	if (fflush(f) != 0 || ferror(f))
		e = errno ? errno : EIO;
	if (fclose(f) != 0 && !e)
		e = errno ? errno : EIO;
	if (!rc && e)
		rc = es_err(err, es_errno_code(e), "%s: write failed: %s", t.tmp, strerror(e));
	if (rc) {
		es_tmpfile_abort(&t);
		return es_err_prefix(err, rc, "%s", path);
	}
	return es_tmpfile_commit(&t, err);
}
