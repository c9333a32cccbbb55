/* error.c — see error.h.  No allocation, safe from any thread. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int es_err(es_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

int es_err_prefix(es_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	char prefix[ES_ERROR_MSG_MAX];
	char old[ES_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	size_t plen = strnlen(prefix, sizeof prefix - 1);
	if (plen > sizeof err->msg - 3)
		plen = sizeof err->msg - 3;
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, ": ", 2);
	size_t room = sizeof err->msg - plen - 3;
	size_t olen = strnlen(old, room);
	memcpy(err->msg + plen + 2, old, olen);
	err->msg[plen + 2 + olen] = '\0';
	if (err->code == 0)
		err->code = code;
	return err->code;
}

const char *es_strerror(int code)
{
	switch (code) {
	case ES_OK: return "ok";
	case ES_ENOMEM: return "out_of_memory";
	case ES_EINVAL: return "invalid_argument";
	case ES_EIO: return "io_error";
	case ES_ECORRUPT: return "corrupt";
	case ES_ENOTFOUND: return "not_found";
	case ES_EEXIST: return "already_exists";
	case ES_ERANGE: return "out_of_range";
	case ES_ENOSPC: return "no_space";
	case ES_EUNSUPPORTED: return "unsupported";
	case ES_ECANCELED: return "canceled";
	case ES_EBUSY: return "busy";
	case ES_EDIM: return "dimension_mismatch";
	default: return "error";
	}
}

void es_error_clear(es_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
