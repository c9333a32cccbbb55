/*
 * cmd_eval.c — `embedsrv eval analogy|pairs|sts --model M FILE`: intrinsic
 * evaluation with gensim's semantics, and STS Benchmark sentence similarity
 * (core/eval).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "commands.h"
#include "encoder.h"
#include "eval.h"

static int eval_usage(void)
{
	printf("usage: embedsrv eval analogy --model M FILE [--restrict N] [--method 3cosadd|3cosmul]\n"
	       "                                        [--case-sensitive]\n"
	       "       embedsrv eval pairs --model M FILE [--restrict N] [--case-sensitive]\n"
	       "       embedsrv eval sts --model M FILE\n"
	       "       embedsrv eval retrieval --server URL --collection C --queries Q --qrels R\n"
	       "                               [--mode dense|lexical|hybrid]  (see retrieval --help)\n"
	       "analogy: gensim evaluate_word_analogies (questions-words.txt format):\n"
	       "  per-section and total accuracy over the first N words (default 300000).\n"
	       "pairs: gensim evaluate_word_pairs (word<TAB>word<TAB>score, '#' comments):\n"
	       "  Pearson and Spearman correlation, and the pairs skipped as unknown.\n"
	       "sts: STS Benchmark TSV (genre, file, year, id, score, sentence1, sentence2):\n"
	       "  Spearman and Pearson x100 of the cosine of the model's sentence vectors\n"
	       "  against the gold scores; any model (static or BERT folder).\n");
	return 0;
}

/* What the command line asked for. */
struct eval_opts {
	const char *what;  /* analogy, pairs or sts */
	int analogy, sts;
	const char *model, *file;
	uint32_t restrict_vocab; /* 0: gensim's default */
	int method, ci;
};

/* The options after `eval WHAT`: 0 to go on, 2 after a usage error (message
 * printed), -1 after --help (the exit status is 0 then). */
static int eval_parse(int argc, char **argv, struct eval_opts *o)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"restrict", required_argument, NULL, 'r'},
		{"method", required_argument, NULL, 'M'},
		{"case-sensitive", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *given = NULL; /* the last word-level option seen, for sts/pairs refusals */
	int given_method = 0, c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "m:r:M:ch", opts, NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'r':
			if (cli_u32("eval", "--restrict", optarg, 0, UINT32_MAX,
				    &o->restrict_vocab))
				return 2;
			given = "--restrict";
			break;
		case 'M':
			o->method = es_analogy_method_parse(optarg);
			if (o->method < 0) {
				fprintf(stderr, "embedsrv eval: --method must be 3cosadd or 3cosmul\n");
				return 2;
			}
			given = "--method";
			given_method = 1;
			break;
		case 'c':
			o->ci = 0;
			given = "--case-sensitive";
			break;
		case 'h': eval_usage(); return -1;
		default: return 2;
		}
	}
	if (!o->model || optind != argc - 2) {
		fprintf(stderr, "embedsrv eval: need --model M and one FILE (try `embedsrv eval --help`)\n");
		return 2;
	}
	o->file = argv[1 + optind];
	/* Options that an evaluation does not use are refused, not ignored: a
	 * user who asks for `eval sts --restrict 1000` must not believe the
	 * number they get was restricted. */
	if (o->sts && given) {
		fprintf(stderr, "embedsrv eval: %s applies to %s, not sts "
				"(sts compares whole sentences with the model's own encoder)\n",
			given, given_method ? "analogy" : "analogy and pairs");
		return 2;
	}
	if (!o->analogy && !o->sts && given_method) {
		fprintf(stderr, "embedsrv eval: --method applies to analogy, not pairs\n");
		return 2;
	}
	return 0;
}

static int eval_sts(const es_encoder *enc, const struct eval_opts *o, es_error *err)
{
	es_sts_result r;
	es_pool *pool = es_pool_new(0);
	int rc = es_eval_sts(enc, o->file, pool, &r, err);
	es_pool_free(pool);
	if (rc)
		return rc;
	printf("Spearman x100: %.2f\n", 100.0 * r.spearman);
	printf("Pearson x100: %.2f\n", 100.0 * r.pearson);
	printf("Pairs evaluated: %zu\n", r.pairs);
	printf("Pairs with a sentence of no known word: %zu\n", r.empty);
	return 0;
}

static int eval_analogy(const es_encoder *enc, const struct eval_opts *o, es_error *err)
{
	es_analogy_result r;
	int rc = es_eval_analogy(enc, o->file, o->restrict_vocab, o->ci,
				 (es_analogy_method)o->method, &r, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < r.nsections; i++) {
		const es_eval_section *s = &r.sections[i];
		printf("%s: %.4f (%zu/%zu)\n", s->name, es_eval_accuracy(s->correct, s->incorrect),
		       s->correct, s->correct + s->incorrect);
	}
	printf("Total accuracy: %.4f (%zu/%zu)\n", es_eval_accuracy(r.correct, r.incorrect),
	       r.correct, r.correct + r.incorrect);
	printf("Quadruplets with out-of-vocabulary words: %.1f%% (%zu/%zu)\n",
	       r.quadruplets ? 100.0 * (double)r.oov / (double)r.quadruplets : 0.0, r.oov,
	       r.quadruplets);
	es_analogy_result_free(&r);
	return 0;
}

static int eval_pairs(const es_encoder *enc, const struct eval_opts *o, es_error *err)
{
	es_pairs_result r;
	int rc = es_eval_pairs(enc, o->file, o->restrict_vocab, o->ci, &r, err);
	if (rc)
		return rc;
	printf("Pearson correlation coefficient: %.4f\n", r.pearson);
	printf("Spearman rank-order correlation coefficient: %.4f\n", r.spearman);
	printf("Pairs evaluated: %zu\n", r.pairs);
	printf("Pairs with unknown words: %zu (%.1f%%)\n", r.oov, r.oov_ratio);
	return 0;
}

int cmd_eval(int argc, char **argv)
{
	if (argc < 2)
		return eval_usage(), 2;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return eval_usage();
	if (!strcmp(argv[1], "retrieval"))
		return cmd_eval_retrieval(argc - 1, argv + 1);
	struct eval_opts o = {.what = argv[1], .method = ES_ANALOGY_3COSADD, .ci = 1};
	o.analogy = !strcmp(o.what, "analogy");
	o.sts = !strcmp(o.what, "sts");
	if (!o.analogy && !o.sts && strcmp(o.what, "pairs")) {
		fprintf(stderr, "embedsrv eval: unknown evaluation '%s' (analogy, pairs or sts)\n",
			o.what);
		return 2;
	}
	int rc = eval_parse(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	es_encoder *enc;
	es_error err = {0};
	if (es_encoder_open(o.model, NULL, &enc, &err)) {
		fprintf(stderr, "embedsrv eval: %s\n", err.msg);
		return 1;
	}
	rc = o.sts ? eval_sts(enc, &o, &err) : o.analogy ? eval_analogy(enc, &o, &err)
							  : eval_pairs(enc, &o, &err);
	if (rc)
		fprintf(stderr, "embedsrv eval: %s\n", err.msg);
	es_encoder_free(enc);
	return rc ? 1 : 0;
}
