/*
 * commands.h — the subcommands of the `embedsrv` binary.
 *
 * Each command lives in cli/cmd_<name>.c, takes the arguments after its
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

/* `embedsrv serve` (cli/cmd_serve.c). */
int cmd_serve(int argc, char **argv);
/* Cooperative cancel for long commands (cli/main.c): after
 * es_stop_install(), SIGINT and SIGTERM only set a flag that
 * es_stop_requested() returns (the signal number, 0 if none). */
void es_stop_install(void);
int es_stop_requested(void);

/* `embedsrv train`: learn a model from text (cli/cmd_train.c). */
int cmd_train(int argc, char **argv);

/* embedsrv index build|search (cli/cmd_index.c). */
int cmd_index(int argc, char **argv);

/* embedsrv import (cli/cmd_import.c). */
int cmd_import(int argc, char **argv);


/* cli/cmd_model.c */
int cmd_vectors(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_neighbors(int argc, char **argv);
int cmd_analogy(int argc, char **argv);
int cmd_convert(int argc, char **argv);
/* `embedsrv retrofit`: lexicon-informed vectors (cli/cmd_retrofit.c). */
int cmd_retrofit(int argc, char **argv);
/* cli/cmd_eval.c */
int cmd_eval(int argc, char **argv);
/* cli/eval_retrieval.c: `eval retrieval` (argv[0] is "retrieval") */
int cmd_eval_retrieval(int argc, char **argv);
/* `embedsrv healthcheck`: GET /healthz, exit 0 when healthy (cmd_healthcheck.c). */
int cmd_healthcheck(int argc, char **argv);

#endif
