/*
 * error.h — the one error convention of embedsrv.
 *
 * Fallible functions return int: 0 on success or a negative ES_E* code, and
 * take an optional `es_error *err` (may be NULL) that receives a short,
 * user-facing message saying what went wrong and, where it helps, how to fix
 * it.  Messages never allocate.  The HTTP layer maps codes to status codes.
 */
#ifndef ES_ERROR_H
#define ES_ERROR_H

#include <stddef.h>

enum {
	ES_OK = 0,
	ES_ENOMEM = -1,       /* allocation failed or would exceed a limit */
	ES_EINVAL = -2,       /* bad argument / bad input value */
	ES_EIO = -3,          /* read/write/fsync failed */
	ES_ECORRUPT = -4,     /* file content is damaged or not what it claims */
	ES_ENOTFOUND = -5,    /* no such collection / point / word / file */
	ES_EEXIST = -6,       /* already exists */
	ES_ERANGE = -7,       /* value out of the allowed range / limit */
	ES_ENOSPC = -8,       /* disk full */
	ES_EUNSUPPORTED = -9, /* format or feature not supported */
	ES_ECANCELED = -10,   /* interrupted by the user / shutdown */
	ES_EBUSY = -11,       /* resource busy, try again */
	ES_EDIM = -12,        /* vector dimension mismatch */
};

#define ES_ERROR_MSG_MAX 512

typedef struct es_error {
	int code;
	char msg[ES_ERROR_MSG_MAX];
} es_error;

/* Fill *err (if not NULL) with code and a printf-style message; returns code,
 * so callers can write `return es_err(err, ES_EINVAL, "k must be > 0");`. */
int es_err(es_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "file.bin: <old message>". Returns err->code
 * (or `code` when err is NULL). */
int es_err_prefix(es_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Stable short name of a code, e.g. "invalid_argument", "corrupt". */
const char *es_strerror(int code);

/* Reset *err to "no error". */
void es_error_clear(es_error *err);

#endif
