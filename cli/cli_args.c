/*
 * cli_args.c — see cli_args.h.
 */
#include "cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t lo,
	    uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || errno || *end || v < lo || v > hi) {
		if (lo == 0 && (hi == UINT32_MAX || hi == UINT64_MAX))
			fprintf(stderr, "embedsrv %s: %s wants a non-negative integer, got '%s'\n",
				cmd, opt, s);
		else
			fprintf(stderr, "embedsrv %s: %s wants an integer in %" PRIu64 "..%" PRIu64
				", got '%s'\n", cmd, opt, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_u32(const char *cmd, const char *opt, const char *s, uint32_t lo,
	    uint32_t hi, uint32_t *out)
{
	uint64_t v;
	if (cli_u64(cmd, opt, s, lo, hi, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cli_float(const char *cmd, const char *opt, const char *s, float *out)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (errno || end == s || *end || !isfinite(v)) {
		fprintf(stderr, "embedsrv %s: %s wants a number, got '%s'\n", cmd, opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcasecmp(s + a - b, suf) == 0;
}

int cli_model_output(const char *cmd, const char *opt, const char *path)
{
	if (cli_ends_with(path, ".esm"))
		return 0;
	if (cli_ends_with(path, ".vec"))
		return 1;
	fprintf(stderr, "embedsrv %s: %s must end in .esm or .vec, got '%s'\n", cmd, opt, path);
	return -1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "embedsrv %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (try `embedsrv %s --help`)\n", cmd);
	va_end(ap);
	return 2;
}

int cli_getopt_error(const char *cmd, int c, char **argv)
{
	if (c == ':')
		return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
	return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}
