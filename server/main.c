/*
 * main.c — the `embedsrv` command line: dispatch to subcommands.
 *
 * The table below is the one list of commands; each command's code lives in
 * server/cmd_*.c.  No global mutable state outside this file.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "es_config.h"
#include "simd.h"
#include "version.h"

void es_print_version(void)
{
	char paths[64];
	simd_compiled_paths(paths, sizeof paths);
	printf("embedsrv %s\n", ES_VERSION);
	printf("commit: %s\n", ES_GIT_COMMIT);
	printf("simd compiled: %s\n", paths);
	printf("simd selected: %s\n", simd_get()->name);
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	es_print_version();
	return 0;
}

static int cmd_help(int argc, char **argv);

static const es_command commands[] = {
	{"version", cmd_version, "print version, git commit and SIMD paths"},
	{"healthcheck", cmd_healthcheck, "exit 0 when the server on this host answers /healthz"},
	{"help", cmd_help, "list commands"},
};

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("usage: embedsrv <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		printf("  %-12s %s\n", commands[i].name, commands[i].summary);
	printf("\n`embedsrv <command> --help` describes each command's options.\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_help(0, NULL);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
		name = "version";
	else if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		name = "help";
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "embedsrv: unknown command '%s' (try `embedsrv help`)\n", name);
	return 2;
}
