/*
 * cli_args.h — the option-value parsers and usage errors the subcommands
 * share, so that every command says the same thing the same way:
 *   "embedsrv CMD: OPT wants an integer in LO..HI, got 'S'"
 *   "embedsrv CMD: OPT wants a non-negative integer, got 'S'" (0..UINT32_MAX)
 *   "embedsrv CMD: OPT wants a number, got 'S'"
 *   "embedsrv CMD: OPT must end in .esm or .vec, got 'S'"
 *   "embedsrv CMD: MESSAGE (try `embedsrv CMD --help`)"
 * CMD is what the user typed after `embedsrv` ("train", "index build").
 * Each parser prints its one-line message to stderr and returns -1 on bad
 * input, leaving *out alone; 0 otherwise.  No state: callable anywhere.
 */
#ifndef ES_CLI_ARGS_H
#define ES_CLI_ARGS_H

#include <stdint.h>

/* Decimal digits only, in lo..hi (no sign or space); 0..UINT32_MAX
 * says "a non-negative integer". */
int cli_u32(const char *cmd, const char *opt, const char *s, uint32_t lo,
	    uint32_t hi, uint32_t *out);
/* The same for 64-bit values; 0..UINT64_MAX says "a non-negative integer". */
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t lo,
	    uint64_t hi, uint64_t *out);

/* A finite number (strtof), nothing after it. */
int cli_float(const char *cmd, const char *opt, const char *s, float *out);

/* 1 when s ends in suf, ignoring ASCII case. */
int cli_ends_with(const char *s, const char *suf);

/* Which model format the output path names: 0 .esm, 1 .vec (any case);
 * -1 (message printed) for anything else. */
int cli_model_output(const char *cmd, const char *opt, const char *path);

/* Print "embedsrv CMD: MESSAGE (try `embedsrv CMD --help`)" and return 2,
 * the usage-error exit status. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* After getopt_long with a leading ':' in its option string and opterr = 0:
 * the usage error for c == ':' (an option without its value) or any other
 * c (an unknown option), naming argv[optind - 1].  Returns 2. */
int cli_getopt_error(const char *cmd, int c, char **argv);

#endif
