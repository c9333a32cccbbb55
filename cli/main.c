/*
 * main.c — the `embedsrv` command line: dispatch to subcommands.
 *
 * The table below is the one list of commands; each command's code lives in
 * cli/cmd_*.c.  No global mutable state outside this file.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "es_config.h"
#include "simd.h"
#include "version.h"

/* Print the version block (version, commit, SIMD paths) to stdout. */
static void es_print_version(void)
{
	char paths[64];
	simd_compiled_paths(paths, sizeof paths);
	printf("embedsrv %s\n", ES_VERSION);
	printf("commit: %s\n", ES_GIT_COMMIT);
	printf("simd compiled: %s\n", paths);
	printf("simd selected: %s\n", simd_get()->name);
}

/* The process's one piece of signal state: the last SIGINT/SIGTERM seen
 * after a command called es_stop_install().  A flag set from a handler,
 * rather than blocking the signals, because libraries (OpenBLAS) start
 * threads before main() whose signal masks we cannot change. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a handler may only touch lock-free atomics");
static atomic_int stop_signal; /* lock-free: safe in a handler, and read
				 * by the main thread while the handler may
				 * run on another (ThreadSanitizer saw a race
				 * on the volatile sig_atomic_t it was) */

static void on_stop_signal(int sig)
{
	atomic_store_explicit(&stop_signal, sig, memory_order_relaxed);
}

void es_stop_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int es_stop_requested(void)
{
	return atomic_load_explicit(&stop_signal, memory_order_relaxed);
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
	{"serve", cmd_serve, "serve the HTTP/JSON API (embeddings, collections, search)"},
	{"index", cmd_index, "build or search an HNSW index file (benchmarks)"},
	{"import", cmd_import, "bulk-load float32 vectors into a collection of a data dir"},
	{"healthcheck", cmd_healthcheck, "exit 0 when the server on this host answers /healthz"},
	{"help", cmd_help, "list commands"},
	{"vectors", cmd_vectors, "print word vectors (fastText print-word-vectors format)"},
	{"encode", cmd_encode, "stdin lines -> one sentence vector per line"},
	{"neighbors", cmd_neighbors, "nearest words of a word or text"},
	{"analogy", cmd_analogy, "word analogies (3CosAdd / 3CosMul, gensim semantics)"},
	{"convert", cmd_convert, "convert a model to .esm or .vec"},
	{"eval", cmd_eval, "evaluate a model: analogy | pairs (gensim semantics)"},
	{"train", cmd_train, "learn a word-embedding model from a text file"},
	{"retrofit", cmd_retrofit, "pull related words together with a lexicon (WordNet, thesaurus)"},
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
