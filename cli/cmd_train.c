/*
 * cmd_train.c — `embedsrv train`: learn a model from a text file and write
 * it as .esm (or .vec).
 *
 * Progress goes to stderr: a redrawn bar on a terminal, one line per 10 %
 * otherwise (logs), nothing with --quiet.  Ctrl-C (SIGINT) or SIGTERM
 * cancels: they set main.c's stop flag (es_stop_install), which the
 * progress callback polls, so training stops within ~0.1 s and nothing is
 * written; the model writer itself goes through a temporary file and a
 * rename, so no interruption ever leaves a file that looks like a valid
 * model.
 *
 * Threading: training runs on its own es_pool (core/train); this file only
 * runs on the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_args.h"
#include "commands.h"
#include "model.h"
#include "model_io.h"
#include "train.h"

#define COMMON_SAMPLE_DEFAULT 20000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: embedsrv train --input FILE --output MODEL.esm|MODEL.vec [options]\n"
		"\n"
		"Learn word embeddings from a UTF-8 text file (one sentence or paragraph\n"
		"per line; windows never cross lines).\n"
		"\n"
		"  --mode skipgram|cbow   model (skipgram)\n"
		"  --dim N                vector size (100)\n"
		"  --epochs N             passes over the text (5)\n"
		"  --window N             max context radius (5)\n"
		"  --neg N                negative samples (5)\n"
		"  --min-count N          ignore rarer words (5)\n"
		"  --minn N --maxn N      character n-gram lengths (3, 6)\n"
		"  --bucket N             n-gram hash rows (2000000)\n"
		"  --no-subwords          words only, no character n-grams\n"
		"  --lr X                 starting learning rate (0.05)\n"
		"  --sample X             subsampling threshold (1e-4)\n"
		"  --ns-exponent X        negative sampling exponent (0.75)\n"
		"  --drop-pcs N           after training, subtract the mean vector and\n"
		"                         remove the top N principal directions (1; 0..16)\n"
		"  --no-center            keep the raw vectors (no mean, no directions removed)\n"
		"  --threads N            worker threads (all CPUs)\n"
		"  --seed N               random seed (1); --threads 1 gives\n"
		"                         a byte-identical model for one seed\n"
		"  --common-sample N      lines used for the common component (%d)\n"
		"  --quiet                no progress output\n",
		COMMON_SAMPLE_DEFAULT);
}

typedef struct progress_state {
	int quiet;
	int tty;
	int last_decile;
} progress_state;

static void fmt_dur(char *buf, size_t len, double s)
{
	if (s < 0)
		s = 0;
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%luh%02lum", t / 3600, (t / 60) % 60);
	else
		snprintf(buf, len, "%lum%02lus", t / 60, t % 60);
}

static int on_progress(void *ctx, const es_train_progress *p)
{
	progress_state *st = ctx;
	if (es_stop_requested())
		return 1;
	if (st->quiet)
		return 0;
	char eta[32];
	fmt_dur(eta, sizeof eta, p->done ? p->elapsed_s : p->eta_s);
	if (st->tty) {
		char bar[31];
		int fill = (int)(p->fraction * 30.0);
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = 0;
		fprintf(stderr,
			"\rtrain: [%s] %5.1f%%  words/s/thread %7.0f  loss %.4f  lr %.5f  %s %s ",
			bar, p->fraction * 100.0, p->words_per_sec_thread, p->loss,
			(double)p->lr, p->done ? "took" : "ETA", eta);
		if (p->done)
			fputc('\n', stderr);
	} else {
		int dec = (int)(p->fraction * 10.0);
		if (dec > st->last_decile || p->done) {
			st->last_decile = dec;
			fprintf(stderr,
				"train: %5.1f%%  words/s/thread %7.0f  loss %.4f  lr %.5f  %s %s\n",
				p->fraction * 100.0, p->words_per_sec_thread, p->loss,
				(double)p->lr, p->done ? "took" : "ETA", eta);
		}
	}
	fflush(stderr);
	return 0;
}

/* The value of an unbounded integer option (es_train_params_check says
 * what is too large). */
static int u32_opt(const char *opt, uint32_t *out)
{
	return cli_u32("train", opt, optarg, 0, UINT32_MAX, out);
}

/* Fail before hours of training if the output cannot be written. */
static int check_output(const char *out)
{
	struct stat st;
	if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "embedsrv train: --output %s is a directory\n", out);
		return -1;
	}
	char dir[PATH_MAX];
	const char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == out)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
	if (access(dir, W_OK) != 0) {
		fprintf(stderr, "embedsrv train: cannot write --output %s: directory %s: %s\n",
			out, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* What the command line asked for. */
typedef struct train_args {
	es_train_params p;
	const char *in, *out;
	int quiet, vec;
	uint32_t common;
} train_args;

/* 1. The command line into a, checked.  Returns -1 to go on, else the exit
 * status (0 after --help, 2 on a usage error, 1 when the output cannot be
 * written; message printed). */
static int parse_args(int argc, char **argv, train_args *a)
{
	enum { O_DIM = 256, O_EPOCHS, O_WINDOW, O_NEG, O_MINCOUNT, O_MINN, O_MAXN,
	       O_BUCKET, O_NOSUB, O_LR, O_SAMPLE, O_NSEXP, O_THREADS, O_SEED,
	       O_MODE, O_QUIET, O_COMMON, O_DROPPCS, O_NOCENTER };
	static const struct option opts[] = {
		{"input", required_argument, NULL, 'i'},
		{"output", required_argument, NULL, 'o'},
		{"dim", required_argument, NULL, O_DIM},
		{"epochs", required_argument, NULL, O_EPOCHS},
		{"epoch", required_argument, NULL, O_EPOCHS},
		{"window", required_argument, NULL, O_WINDOW},
		{"neg", required_argument, NULL, O_NEG},
		{"min-count", required_argument, NULL, O_MINCOUNT},
		{"minn", required_argument, NULL, O_MINN},
		{"maxn", required_argument, NULL, O_MAXN},
		{"bucket", required_argument, NULL, O_BUCKET},
		{"no-subwords", no_argument, NULL, O_NOSUB},
		{"lr", required_argument, NULL, O_LR},
		{"sample", required_argument, NULL, O_SAMPLE},
		{"ns-exponent", required_argument, NULL, O_NSEXP},
		{"threads", required_argument, NULL, O_THREADS},
		{"seed", required_argument, NULL, O_SEED},
		{"mode", required_argument, NULL, O_MODE},
		{"quiet", no_argument, NULL, O_QUIET},
		{"common-sample", required_argument, NULL, O_COMMON},
		{"drop-pcs", required_argument, NULL, O_DROPPCS},
		{"no-center", no_argument, NULL, O_NOCENTER},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	es_train_params *pp = &a->p;
	es_train_params_default(pp);
	a->in = a->out = NULL;
	a->quiet = 0;
	a->common = COMMON_SAMPLE_DEFAULT;
	int pcs_given = 0;
	uint32_t u = 0;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:o:h", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'i': a->in = optarg; break;
		case 'o': a->out = optarg; break;
		case O_DIM: bad = u32_opt("--dim", &pp->dim); break;
		case O_EPOCHS: bad = u32_opt("--epochs", &pp->epochs); break;
		case O_WINDOW: bad = u32_opt("--window", &pp->window); break;
		case O_NEG: bad = u32_opt("--neg", &pp->neg); break;
		case O_MINCOUNT: bad = u32_opt("--min-count", &pp->min_count); break;
		case O_MINN: bad = u32_opt("--minn", &pp->minn); break;
		case O_MAXN: bad = u32_opt("--maxn", &pp->maxn); break;
		case O_BUCKET: bad = u32_opt("--bucket", &pp->bucket); break;
		case O_NOSUB: pp->subwords = 0; break;
		case O_LR: bad = cli_float("train", "--lr", optarg, &pp->lr); break;
		case O_SAMPLE: bad = cli_float("train", "--sample", optarg, &pp->sample); break;
		case O_NSEXP: bad = cli_float("train", "--ns-exponent", optarg, &pp->ns_exponent); break;
		case O_DROPPCS:
			bad = u32_opt("--drop-pcs", &pp->drop_pcs);
			pcs_given = 1;
			break;
		case O_NOCENTER: pp->center = 0; break;
		case O_THREADS:
			bad = u32_opt("--threads", &u);
			pp->threads = u;
			break;
		case O_SEED:
			bad = u32_opt("--seed", &u);
			pp->seed = u;
			break;
		case O_MODE:
			if (strcmp(optarg, "skipgram") == 0 || strcmp(optarg, "sg") == 0)
				pp->mode = ES_TRAIN_SKIPGRAM;
			else if (strcmp(optarg, "cbow") == 0)
				pp->mode = ES_TRAIN_CBOW;
			else {
				fprintf(stderr, "embedsrv train: --mode must be skipgram or cbow, got '%s'\n",
					optarg);
				bad = 1;
			}
			break;
		case O_QUIET: a->quiet = 1; break;
		case O_COMMON: bad = u32_opt("--common-sample", &a->common); break;
		case 'h': usage(stdout); return 0;
		default: return cli_getopt_error("train", c, argv);
		}
		if (bad)
			return 2;
	}
	if (optind < argc)
		return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
	if (!a->in || !a->out)
		return cli_usage_error("train", "--input and --output are required");
	if ((a->vec = cli_model_output("train", "--output", a->out)) < 0)
		return 2;
	if (!pp->center && !pcs_given)
		pp->drop_pcs = 0; /* --no-center: raw vectors */
	es_error err;
	es_error_clear(&err);
	if (es_train_params_check(pp, &err)) {
		fprintf(stderr, "embedsrv train: %s\n", err.msg);
		return 2;
	}
	if (check_output(a->out))
		return 1;
	return -1;
}

/* 2. The input file, mapped read-only.  0, or 1 (message printed). */
static int map_input(const char *in, void **text, size_t *len)
{
	int fd = open(in, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "embedsrv train: cannot open --input %s: %s\n", in, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "embedsrv train: --input %s is not a regular file\n", in);
		close(fd);
		return 1;
	}
	if (st.st_size == 0) {
		fprintf(stderr, "embedsrv train: %s: input is empty\n", in);
		close(fd);
		return 1;
	}
	*text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (*text == MAP_FAILED) {
		fprintf(stderr, "embedsrv train: %s: cannot map: %s\n", in, strerror(errno));
		return 1;
	}
	*len = (size_t)st.st_size;
	return 0;
}

/* `embedsrv train`: 1. arguments, 2. input, 3. train (Ctrl-C cancels),
 * 4. build and write the model. */
int cmd_train(int argc, char **argv)
{
	train_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	void *text;
	size_t len;
	if (map_input(a.in, &text, &len))
		return 1;
	const char *in = a.in, *outp = a.out;
	int quiet = a.quiet;

	/* 3. train */
	progress_state ps;
	memset(&ps, 0, sizeof ps);
	ps.quiet = quiet;
	ps.tty = isatty(STDERR_FILENO);
	ps.last_decile = 0;
	es_stop_install();

	rc = 1;
	es_trained *t = NULL;
	es_model *m = NULL;
	es_error err;
	es_error_clear(&err);
	int r = es_train_text(text, len, &a.p, on_progress, &ps, &t, &err);
	if (r == ES_ECANCELED) {
		if (!quiet && ps.tty)
			fputc('\n', stderr);
		fprintf(stderr, "embedsrv train: canceled; nothing written\n");
		rc = 130;
		goto out;
	}
	if (r) {
		fprintf(stderr, "embedsrv train: %s: %s\n", in, err.msg);
		goto out;
	}
	/* 4. the model, written */
	r = es_trained_to_model(t, text, len, a.common, &m, &err);
	if (r) {
		fprintf(stderr, "embedsrv train: building the model: %s\n", err.msg);
		goto out;
	}
	r = a.vec ? es_model_save_vec(m, outp, &err) : es_model_save_esm(m, outp, &err);
	if (r) {
		fprintf(stderr, "embedsrv train: writing %s: %s\n", outp, err.msg);
		goto out;
	}
	if (!quiet) {
		double l0, l1;
		es_trained_loss(t, &l0, &l1);
		fprintf(stderr,
			"train: %zu words, %llu tokens, %.1f s, %.0f words/s/thread, loss %.4f -> %.4f; wrote %s\n",
			es_trained_vocab_size(t), (unsigned long long)es_trained_tokens_total(t),
			es_trained_seconds(t), es_trained_words_per_sec_thread(t), l0, l1, outp);
	}
	rc = 0;
out:
	es_model_free(m);
	es_trained_free(t);
	munmap(text, len);
	return rc;
}
