/*
 * cmd_serve.c — `embedsrv serve`: load the models, create the collection
 * registry, recover data (durability hooks), start the HTTP server, and on
 * SIGTERM/SIGINT stop accepting, finish in-flight requests, flush, exit 0.
 *
 * Every flag has an environment variable EMBEDSRV_<FLAG> (dashes become
 * underscores); a flag on the command line wins over the environment.
 *
 * Threading: the main thread blocks SIGTERM/SIGINT before any thread is
 * created (so every thread inherits the mask) and then waits for them with
 * sigwait; libmicrohttpd's pool serves requests.  OpenBLAS is limited to
 * one thread per call: requests are already spread over --threads.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "batcher.h"
#include "blas.h"
#include "cli_args.h"
#include "commands.h"
#include "durability.h"
#include "follower.h"
#include "http.h"
#include "store.h"
#include "threadpool.h"

#define MAX_MODELS 16
#define MAX_ALIASES 32

enum { OPT_BATCH_MAX = 1000, OPT_BATCH_WAIT_US, OPT_BATCH_THREADS }; /* long-only options */
#define DEFAULT_MODEL_PATH "models/default.esm"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: embedsrv serve [options]\n"
		"  --model [NAME=]PATH   model file (.esm, word2vec, GloVe, fastText) or a\n"
		"                        sentence-transformers folder; repeat for several\n"
		"                        models (the first is the default).\n"
		"                        Default: $EMBEDSRV_MODEL, else " DEFAULT_MODEL_PATH "\n"
		"  --model-alias NAME=MODEL  requests may name the loaded model MODEL as\n"
		"                        NAME (e.g. text-embedding-3-small=default, for\n"
		"                        clients' default names); repeatable.\n"
		"                        $EMBEDSRV_MODEL_ALIAS: NAME=MODEL[,NAME=MODEL...]\n"
		"  --host ADDR           address to bind (default 127.0.0.1)\n"
		"  --port N              port (default 8080; 0 = any free port)\n"
		"  --data-dir DIR        where collections are persisted (write-ahead log +\n"
		"                        snapshots); without it collections live in memory\n"
		"  --fsync MODE          always (default: acknowledge after fsync, concurrent\n"
		"                        writers share fsyncs), batch (fsync every 50 ms),\n"
		"                        never (leave it to the OS; for bulk loads)\n"
		"  --recover             start even if a log is damaged: truncate it at the\n"
		"                        last good record (drops what follows)\n"
		"  --snapshot-bytes N    snapshot automatically once the log passes N bytes\n"
		"                        (default 268435456)\n"
		"  --wal-retain-bytes N  keep up to N bytes of log that snapshots already\n"
		"                        cover, so followers that fell behind catch up from\n"
		"                        the log instead of bootstrapping again (default\n"
		"                        67108864; 0 deletes it at once)\n"
		"  --threads N           HTTP worker threads (default: CPU count; with a\n"
		"                        batched BERT model at least --batch-max)\n"
		"  --batch-max N         BERT models: encode concurrent requests together,\n"
		"                        up to N texts per forward pass (default 32; 0 = off)\n"
		"  --batch-wait-us N     wait up to N microseconds for a fuller batch when\n"
		"                        fewer than --batch-max texts are queued (default 0:\n"
		"                        batch only what queued while the model was busy)\n"
		"  --batch-threads N     threads per batched forward; CPU count / N batches\n"
		"                        run side by side (default 1: one batch per CPU)\n"
		"  --api-key KEY         require 'Authorization: Bearer KEY' (not /healthz, /readyz)\n"
		"  --max-body BYTES      largest request body (default 16777216)\n"
		"  --max-inputs N        texts per embeddings request (default 2048)\n"
		"  --max-points N        points per upsert/delete request (default 10000)\n"
		"  --timeout SECONDS     a request (headers and body) must arrive in full\n"
		"                        within this time; idle and slow clients are cut\n"
		"                        off (default 30)\n"
		"  --max-connections N   concurrent connections (default 4096; lowered to\n"
		"                        what the open-files limit allows)\n"
		"  --quiet               no access log\n"
		"  --no-ui               do not serve the web explorer at /ui/\n"
		"  --read-only           refuse every write (create/delete collection, upsert,\n"
		"                        delete points) with 403; for read replicas\n"
		"  --primary URL         the primary's address, named in that 403 and in\n"
		"                        /v1/info (informational)\n"
		"  --follow URL          follow the primary at URL (http://HOST:PORT) by log\n"
		"                        shipping: bootstrap --data-dir from its snapshot,\n"
		"                        then apply its log as it grows; implies --read-only\n"
		"                        and --primary URL (API key: --follow-api-key or\n"
		"                        EMBEDSRV_FOLLOW_API_KEY, else --api-key's)\n"
		"  --follow-api-key KEY  the primary's API key, when it differs from ours\n"
		"Each option can also be set as EMBEDSRV_<OPTION> (e.g. EMBEDSRV_PORT=9000);\n"
		"command-line options win.\n");
}

typedef struct serve_opts {
	const char *models[MAX_MODELS];
	size_t nmodels;
	const char *aliases[MAX_ALIASES]; /* --model-alias NAME=MODEL */
	size_t naliases;
	char *alias_env;                  /* EMBEDSRV_MODEL_ALIAS, split (owned) */
	const char *host, *port, *data_dir, *threads, *api_key, *max_body, *max_inputs,
		*max_points, *timeout, *max_conns, *fsync, *snapshot_bytes, *retain_bytes, *primary, *follow,
		*follow_api_key, *batch_max, *batch_wait_us, *batch_threads;
	int quiet, recover, no_ui, read_only;
} serve_opts;

/* The options checked and turned into values. */
typedef struct serve_config {
	api_limits lim;
	unsigned port, threads;
	wal_fsync_policy fsync;
	uint64_t snapshot_bytes;
	uint32_t batch_max, batch_wait_us;
	unsigned batch_threads; /* 0: 1 */
	uint64_t retain_bytes;
} serve_config;

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Files the server may hold open besides client sockets: models, logs and
 * snapshots, epoll and thread-pool descriptors. */
#define RESERVED_FDS 256

/* Every connection is a descriptor.  Raise the soft open-files limit (the
 * usual default, 1024, is too low for a server) as far as max_connections
 * plus RESERVED_FDS needs, up to the hard limit; if even the hard limit is
 * too low, lower max_connections (so /v1/info reports what is served) and
 * say so. */
static void fit_nofile(uint32_t *max_connections)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t want = (rlim_t)*max_connections + RESERVED_FDS;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit nrl = rl;
		nrl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
			rl = nrl;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		uint32_t fit = rl.rlim_cur > 2 * RESERVED_FDS ? (uint32_t)(rl.rlim_cur - RESERVED_FDS)
							       : (uint32_t)(rl.rlim_cur / 2);
		if (fit < 1)
			fit = 1;
		fprintf(stderr,
			"embedsrv serve: open-files limit %llu (ulimit -n) leaves room for %u "
			"connections, not %u; serving at most %u\n",
			(unsigned long long)rl.rlim_cur, fit, *max_connections, fit);
		*max_connections = fit;
	}
}

static int load_models(const serve_opts *o, es_encoder **encs, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < o->nmodels; i++) {
		const char *spec = o->models[i];
		const char *eq = strchr(spec, '=');
		char name[128];
		const char *path = spec;
		const char *namep = NULL;
		if (eq && eq != spec && (size_t)(eq - spec) < sizeof name) {
			memcpy(name, spec, (size_t)(eq - spec));
			name[eq - spec] = '\0';
			path = eq + 1;
			namep = name;
		}
		es_error err;
		es_error_clear(&err);
		if (access(path, R_OK) != 0) {
			fprintf(stderr, "embedsrv serve: model '%s' not found or not readable\n", path);
			if (strcmp(path, DEFAULT_MODEL_PATH) == 0)
				fprintf(stderr,
					"  No model given and the default model is not there yet.\n"
					"  Get one by running `sh deploy/run.sh` (it prepares the default\n"
					"  model on first start), or pass --model PATH (a .esm file, a\n"
					"  word2vec/GloVe/fastText file, or a sentence-transformers folder),\n"
					"  or set EMBEDSRV_MODEL=PATH.\n");
			return -1;
		}
		int rc = es_encoder_open(path, namep, &encs[*n], &err);
		if (rc) {
			fprintf(stderr, "embedsrv serve: cannot load model '%s': %s\n", path,
				err.msg[0] ? err.msg : es_strerror(rc));
			return -1;
		}
		for (size_t j = 0; j < *n; j++)
			if (strcmp(es_encoder_name(encs[j]), es_encoder_name(encs[*n])) == 0) {
				fprintf(stderr,
					"embedsrv serve: two models are named '%s'; name them with --model NAME=PATH\n",
					es_encoder_name(encs[*n]));
				es_encoder_free(encs[*n]);
				return -1;
			}
		(*n)++;
	}
	return 0;
}

/* 1. The command line into o.  Returns -1 to go on, else the exit status
 * (0 after --help, 2 on a usage error, message printed). */
static int parse_flags(int argc, char **argv, serve_opts *o)
{
	static const struct option longopts[] = {
		{"model", required_argument, NULL, 'm'},
		{"model-alias", required_argument, NULL, 'a'},
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"data-dir", required_argument, NULL, 'd'},
		{"fsync", required_argument, NULL, 'F'},
		{"recover", no_argument, NULL, 'R'},
		{"snapshot-bytes", required_argument, NULL, 'S'},
		{"wal-retain-bytes", required_argument, NULL, 'W'},
		{"threads", required_argument, NULL, 't'},
		{"api-key", required_argument, NULL, 'k'},
		{"max-body", required_argument, NULL, 'b'},
		{"max-inputs", required_argument, NULL, 'i'},
		{"max-points", required_argument, NULL, 'P'},
		{"timeout", required_argument, NULL, 'T'},
		{"max-connections", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},
		{"no-ui", no_argument, NULL, 'U'},
		{"read-only", no_argument, NULL, 'r'},
		{"primary", required_argument, NULL, 'y'},
		{"follow", required_argument, NULL, 'f'},
		{"follow-api-key", required_argument, NULL, 'K'},
		{"batch-max", required_argument, NULL, OPT_BATCH_MAX},
		{"batch-wait-us", required_argument, NULL, OPT_BATCH_WAIT_US},
		{"batch-threads", required_argument, NULL, OPT_BATCH_THREADS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (o->nmodels == MAX_MODELS) {
				fprintf(stderr, "embedsrv serve: at most %d models\n", MAX_MODELS);
				return 2;
			}
			o->models[o->nmodels++] = optarg;
			break;
		case 'a':
			if (o->naliases == MAX_ALIASES) {
				fprintf(stderr, "embedsrv serve: at most %d model aliases\n", MAX_ALIASES);
				return 2;
			}
			o->aliases[o->naliases++] = optarg;
			break;
		case 'H': o->host = optarg; break;
		case 'p': o->port = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'F': o->fsync = optarg; break;
		case 'R': o->recover = 1; break;
		case 'S': o->snapshot_bytes = optarg; break;
		case 'W': o->retain_bytes = optarg; break;
		case 't': o->threads = optarg; break;
		case 'k': o->api_key = optarg; break;
		case 'b': o->max_body = optarg; break;
		case 'i': o->max_inputs = optarg; break;
		case 'P': o->max_points = optarg; break;
		case 'T': o->timeout = optarg; break;
		case 'c': o->max_conns = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'U': o->no_ui = 1; break;
		case 'r': o->read_only = 1; break;
		case 'y': o->primary = optarg; break;
		case 'f': o->follow = optarg; break;
		case 'K': o->follow_api_key = optarg; break;
		case OPT_BATCH_MAX: o->batch_max = optarg; break;
		case OPT_BATCH_WAIT_US: o->batch_wait_us = optarg; break;
		case OPT_BATCH_THREADS: o->batch_threads = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "embedsrv serve: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* 2. EMBEDSRV_<FLAG> for every flag the command line did not give.  -1
 * (message printed) when EMBEDSRV_MODEL_ALIAS cannot be taken. */
static int env_fallbacks(serve_opts *o)
{
	if (!o->naliases && env("EMBEDSRV_MODEL_ALIAS")) {
		o->alias_env = strdup(env("EMBEDSRV_MODEL_ALIAS"));
		if (!o->alias_env)
			return -1;
		char *save = NULL;
		for (char *t = strtok_r(o->alias_env, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (o->naliases == MAX_ALIASES) {
				fprintf(stderr, "embedsrv serve: at most %d model aliases\n", MAX_ALIASES);
				return -1;
			}
			o->aliases[o->naliases++] = t;
		}
	}
	if (!o->nmodels)
		o->models[o->nmodels++] = env("EMBEDSRV_MODEL") ? env("EMBEDSRV_MODEL") : DEFAULT_MODEL_PATH;
	if (!o->host) o->host = env("EMBEDSRV_HOST") ? env("EMBEDSRV_HOST") : "127.0.0.1";
	if (!o->port) o->port = env("EMBEDSRV_PORT") ? env("EMBEDSRV_PORT") : "8080";
	if (!o->data_dir) o->data_dir = env("EMBEDSRV_DATA_DIR");
	if (!o->fsync) o->fsync = env("EMBEDSRV_FSYNC");
	if (!o->snapshot_bytes) o->snapshot_bytes = env("EMBEDSRV_SNAPSHOT_BYTES");
	if (!o->retain_bytes) o->retain_bytes = env("EMBEDSRV_WAL_RETAIN_BYTES");
	if (!o->recover && env("EMBEDSRV_RECOVER") && strcmp(env("EMBEDSRV_RECOVER"), "0") != 0)
		o->recover = 1;
	if (!o->threads) o->threads = env("EMBEDSRV_THREADS");
	if (!o->api_key) o->api_key = env("EMBEDSRV_API_KEY");
	if (!o->max_body) o->max_body = env("EMBEDSRV_MAX_BODY");
	if (!o->max_inputs) o->max_inputs = env("EMBEDSRV_MAX_INPUTS");
	if (!o->max_points) o->max_points = env("EMBEDSRV_MAX_POINTS");
	if (!o->timeout) o->timeout = env("EMBEDSRV_TIMEOUT");
	if (!o->max_conns) o->max_conns = env("EMBEDSRV_MAX_CONNECTIONS");
	if (!o->quiet && env("EMBEDSRV_QUIET") && strcmp(env("EMBEDSRV_QUIET"), "0") != 0)
		o->quiet = 1;
	if (!o->no_ui && env("EMBEDSRV_NO_UI") && strcmp(env("EMBEDSRV_NO_UI"), "0") != 0)
		o->no_ui = 1;
	if (!o->read_only && env("EMBEDSRV_READ_ONLY") && strcmp(env("EMBEDSRV_READ_ONLY"), "0") != 0)
		o->read_only = 1;
	if (!o->primary) o->primary = env("EMBEDSRV_PRIMARY");
	if (!o->follow) o->follow = env("EMBEDSRV_FOLLOW");
	if (!o->follow_api_key) o->follow_api_key = env("EMBEDSRV_FOLLOW_API_KEY");
	if (o->follow) { /* a follower takes writes only from its primary's log */
		o->read_only = 1;
		o->primary = o->follow;
	}
	if (!o->batch_max) o->batch_max = env("EMBEDSRV_BATCH_MAX");
	if (!o->batch_wait_us) o->batch_wait_us = env("EMBEDSRV_BATCH_WAIT_US");
	if (!o->batch_threads) o->batch_threads = env("EMBEDSRV_BATCH_THREADS");
	return 0;
}

/* 3. Numbers and policies, range-checked.  0, or -1 (message printed). */
static int parse_values(const serve_opts *o, serve_config *c)
{
	uint64_t v;
	api_limits_default(&c->lim);
	c->threads = es_cpu_count();
	if (cli_u64("serve", "--port", o->port, 0, 65535, &v)) return -1;
	c->port = (unsigned)v;
	if (o->threads) {
		if (cli_u64("serve", "--threads", o->threads, 1, 1024, &v)) return -1;
		c->threads = (unsigned)v;
	}
	if (o->max_body) {
		if (cli_u64("serve", "--max-body", o->max_body, 64, 1ull << 34, &v)) return -1;
		c->lim.max_body_bytes = (size_t)v;
	}
	if (o->max_inputs) {
		if (cli_u64("serve", "--max-inputs", o->max_inputs, 1, 1u << 20, &v)) return -1;
		c->lim.max_inputs = (uint32_t)v;
	}
	if (o->max_points) {
		if (cli_u64("serve", "--max-points", o->max_points, 1, 1u << 24, &v)) return -1;
		c->lim.max_points = (uint32_t)v;
	}
	if (o->timeout) {
		if (cli_u64("serve", "--timeout", o->timeout, 1, 86400, &v)) return -1;
		c->lim.timeout_s = (uint32_t)v;
	}
	c->fsync = WAL_FSYNC_ALWAYS;
	if (o->fsync && wal_policy_parse(o->fsync, &c->fsync) != 0) {
		fprintf(stderr, "embedsrv serve: --fsync must be always, batch or never (got '%s')\n",
			o->fsync);
		return -1;
	}
	c->snapshot_bytes = 0;
	if (o->snapshot_bytes &&
	    cli_u64("serve", "--snapshot-bytes", o->snapshot_bytes, 4096, UINT64_MAX, &c->snapshot_bytes))
		return -1;
	c->retain_bytes = (uint64_t)64 << 20;
	if (o->retain_bytes &&
	    cli_u64("serve", "--wal-retain-bytes", o->retain_bytes, 0, UINT64_MAX, &c->retain_bytes))
		return -1;
	if (o->max_conns) {
		if (cli_u64("serve", "--max-connections", o->max_conns, 1, 1u << 20, &v)) return -1;
		c->lim.max_connections = (uint32_t)v;
	}
	if (o->follow) {
		char host[256], port[16];
		es_error e;
		if (follower_parse_url(o->follow, host, sizeof host, port, sizeof port, &e)) {
			fprintf(stderr, "embedsrv serve: %s\n", e.msg);
			return -1;
		}
		if (!o->data_dir) {
			fprintf(stderr, "embedsrv serve: --follow needs --data-dir (the follower "
				"keeps its own copy of the primary's data directory)\n");
			return -1;
		}
	}
	c->batch_max = ES_BATCHER_MAX_BATCH;
	c->batch_wait_us = ES_BATCHER_MAX_WAIT_US;
	c->batch_threads = 0; /* 1 */
	if (o->batch_max) {
		if (cli_u64("serve", "--batch-max", o->batch_max, 0, 4096, &v)) return -1;
		c->batch_max = (uint32_t)v;
	}
	if (o->batch_wait_us) {
		if (cli_u64("serve", "--batch-wait-us", o->batch_wait_us, 0, 1000000, &v)) return -1;
		c->batch_wait_us = (uint32_t)v;
	}
	if (o->batch_threads) {
		if (cli_u64("serve", "--batch-threads", o->batch_threads, 1, 1024, &v)) return -1;
		c->batch_threads = (unsigned)v;
	}
	return 0;
}

/* 4. Wait for SIGTERM/SIGINT; returns which.  Our threads block them
 * (sigtimedwait takes them here), but threads that libraries start before
 * main() (OpenBLAS) do not, so a handler also catches a signal delivered to
 * one of those and the loop polls its flag. */
static int wait_for_stop(const sigset_t *set)
{
	const struct timespec tick = {0, 200 * 1000 * 1000};
	for (;;) {
		int s = sigtimedwait(set, NULL, &tick);
		if (s > 0)
			return s;
		if ((s = es_stop_requested()) != 0)
			return s;
	}
}

/* HTTP worker threads: --threads, else the CPU count, raised to
 * --batch-max when a BERT model is batched: a handler blocks while its
 * texts wait in the batcher, so a full batch of one-text requests needs
 * that many handlers at once (measured: bench/RESULTS.md). */
static unsigned http_threads(const serve_opts *o, const serve_config *c,
			     es_encoder *const *encs, size_t nenc)
{
	if (o->threads || !c->batch_max)
		return c->threads;
	for (size_t i = 0; i < nenc; i++)
		if (es_encoder_kind_of(encs[i]) == ES_ENCODER_BERT)
			return c->threads > c->batch_max ? c->threads : c->batch_max;
	return c->threads;
}

/* 5. Run: models, registry, HTTP server, data directory, ready; then wait
 * for a signal, finish in-flight requests, snapshot, free.  Returns the
 * exit status. */
static int serve(const serve_opts *o, const serve_config *c)
{
	/* Signals first, so every thread created below inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	es_stop_install();
	signal(SIGPIPE, SIG_IGN);
	es_blas_init(); /* one OpenBLAS thread per call: requests run in parallel */

	int status = 1;
	es_encoder *encs[MAX_MODELS] = {0};
	size_t nenc = 0;
	es_registry *reg = NULL;
	api_ctx *ctx = NULL;
	es_http *http = NULL;
	durability *dur = NULL;
	es_pool *ingest = NULL;
	follower *fol = NULL;
	es_error err;
	es_error_clear(&err);

	if (load_models(o, encs, &nenc))
		goto out;
	if (es_registry_new(api_payload_hooks(), &reg, &err))
		goto fail;
	/* builds the graph nodes of upsert batches (and of the replay) on
	 * every core: one writer's batch need not wait for a second writer */
	if (!(ingest = es_pool_new(0))) {
		es_err(&err, ES_ENOMEM, "cannot start the ingest threads");
		goto fail;
	}
	es_registry_set_pool(reg, ingest);
	api_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.limits = c->lim;
	cfg.api_key = o->api_key;
	cfg.models = encs;
	cfg.nmodels = nenc;
	cfg.registry = reg;
	cfg.data_dir = o->data_dir;
	cfg.no_ui = o->no_ui;
	cfg.read_only = o->read_only;
	cfg.primary = o->primary;
	cfg.batch_max = c->batch_max;
	cfg.batch_wait_us = c->batch_wait_us;
	cfg.batch_threads = c->batch_threads;
	unsigned threads = http_threads(o, c, encs, nenc);
	cfg.threads = threads;
	cfg.model_aliases = o->aliases;
	cfg.naliases = o->naliases;
	if (api_ctx_new(&cfg, &ctx, &err))
		goto fail;
	es_http_config hc = {o->host, (uint16_t)c->port, threads, o->quiet};
	if (es_http_start(&hc, ctx, &http, &err))
		goto fail;
	fprintf(stderr, "embedsrv serve: listening on http://%s%s%s:%u (model %s, dim %u, %u threads)\n",
		strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "",
		es_http_port(http), es_encoder_name(encs[0]), es_encoder_dim(encs[0]), threads);
	if (o->follow) {
		/* ready once the data directory holds data (now, or after the
		 * bootstrap): the follower thread says so */
		follower_opts fo = {o->follow, o->follow_api_key ? o->follow_api_key : o->api_key,
				    o->data_dir, c->fsync, c->snapshot_bytes, o->recover, 0};
		if (follower_start(&fo, reg, ctx, &fol, &err))
			goto fail;
		api_ctx_set_follower(ctx, follower_status, fol);
		api_ctx_set_snapshot(ctx, follower_snapshot, fol);
	} else {
		if (o->data_dir) {
			durability_opts dopts = {o->data_dir, c->fsync, o->recover, c->snapshot_bytes,
						 c->retain_bytes};
			if (durability_open(&dopts, reg, &dur, &err))
				goto fail;
			api_ctx_set_snapshot(ctx, durability_snapshot, dur);
			api_ctx_set_store(ctx, durability_store(dur));
		}
		api_ctx_set_ready(ctx, 1);
	}

	int sig = wait_for_stop(&set);
	fprintf(stderr, "embedsrv serve: %s: finishing %u in-flight request(s)\n",
		sig == SIGINT ? "SIGINT" : "SIGTERM", es_http_inflight(http));
	api_ctx_set_ready(ctx, 0);
	/* followers' long polls answer now, so the drain does not wait them out */
	if (dur)
		es_store_ship_stop(durability_store(dur));
	es_http_stop(http, 30.0);
	http = NULL;
	status = 0;
	goto out;
fail:
	fprintf(stderr, "embedsrv serve: %s\n", err.msg[0] ? err.msg : es_strerror(err.code));
out:
	es_http_stop(http, 5.0);
	durability_close(dur); /* after the last request: the final snapshot */
	follower_stop(fol);
	api_ctx_free(ctx);
	es_registry_free(reg);
	es_pool_free(ingest);
	for (size_t i = 0; i < nenc; i++)
		es_encoder_free(encs[i]);
	if (status == 0)
		fprintf(stderr, "embedsrv serve: stopped\n");
	return status;
}

int cmd_serve(int argc, char **argv)
{
	serve_opts o;
	memset(&o, 0, sizeof o);
	int rc = parse_flags(argc, argv, &o);
	if (rc >= 0)
		return rc;
	serve_config c;
	if (env_fallbacks(&o) || parse_values(&o, &c)) {
		free(o.alias_env);
		return 2;
	}
	fit_nofile(&c.lim.max_connections);
	rc = serve(&o, &c);
	free(o.alias_env);
	return rc;
}
