/*
 * commands.h — the subcommands of the `embedsrv` binary.
 *
 * Each command lives in server/cmd_<name>.c, takes the arguments after its
 * own name (argv[0] is the command name) and returns a process exit status:
 * 0 success, 1 runtime failure, 2 usage error.  Errors go to stderr as one
 * line "embedsrv <cmd>: <message>".
 */
#ifndef ES_COMMANDS_H
#define ES_COMMANDS_H

typedef struct es_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} es_command;

/* Print the version block (version, commit, SIMD paths) to stdout. */
void es_print_version(void);

/* `embedsrv healthcheck`: GET /healthz, exit 0 when healthy (cmd_healthcheck.c). */
int cmd_healthcheck(int argc, char **argv);

#endif
