/*
 * cmd_eval.c — `embedsrv eval analogy|pairs|sts --model M FILE`: intrinsic
 * evaluation with gensim's semantics, and STS Benchmark sentence similarity
 * (core/eval).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"restrict", required_argument, NULL, 'r'},
		{"method", required_argument, NULL, 'M'},
		{"case-sensitive", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	if (argc < 2)
		return eval_usage(), 2;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return eval_usage();
	if (!strcmp(argv[1], "retrieval"))
		return cmd_eval_retrieval(argc - 1, argv + 1);
	const char *what = argv[1];
	int analogy = !strcmp(what, "analogy"), sts = !strcmp(what, "sts");
	if (!analogy && !sts && strcmp(what, "pairs")) {
		fprintf(stderr, "embedsrv eval: unknown evaluation '%s' (analogy, pairs or sts)\n", what);
		return 2;
	}
	const char *model = NULL;
	size_t restrict_vocab = 0;
	int method = ES_ANALOGY_3COSADD, ci = 1, c;
	const char *given = NULL; /* the last word-level option seen, for sts/pairs refusals */
	int given_method = 0;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "m:r:M:ch", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'r': {
			char *e;
			errno = 0;
			long long v = strtoll(optarg, &e, 10);
			if (*e || errno || v < 0) {
				fprintf(stderr, "embedsrv eval: --restrict must be >= 0\n");
				return 2;
			}
			restrict_vocab = (size_t)v;
			given = "--restrict";
			break;
		}
		case 'M':
			method = es_analogy_method_parse(optarg);
			if (method < 0) {
				fprintf(stderr, "embedsrv eval: --method must be 3cosadd or 3cosmul\n");
				return 2;
			}
			given = "--method";
			given_method = 1;
			break;
		case 'c':
			ci = 0;
			given = "--case-sensitive";
			break;
		case 'h': return eval_usage();
		default: return 2;
		}
	}
	if (!model || optind != argc - 2) {
		fprintf(stderr, "embedsrv eval: need --model M and one FILE (try `embedsrv eval --help`)\n");
		return 2;
	}
	/* Options that an evaluation does not use are refused, not ignored: a
	 * user who asks for `eval sts --restrict 1000` must not believe the
	 * number they get was restricted. */
	if (sts && given) {
		fprintf(stderr, "embedsrv eval: %s applies to analogy and pairs, not sts "
				"(sts compares whole sentences with the model's own encoder)\n", given);
		return 2;
	}
	if (!analogy && !sts && given_method) {
		fprintf(stderr, "embedsrv eval: --method applies to analogy, not pairs\n");
		return 2;
	}
	const char *file = argv[1 + optind];
	es_encoder *enc;
	es_error err = {0};
	if (es_encoder_open(model, NULL, &enc, &err)) {
		fprintf(stderr, "embedsrv eval: %s\n", err.msg);
		return 1;
	}
	int rc = 0;
	if (sts) {
		es_sts_result r;
		es_pool *pool = es_pool_new(0);
		if (es_eval_sts(enc, file, pool, &r, &err)) {
			fprintf(stderr, "embedsrv eval: %s\n", err.msg);
			rc = 1;
		} else {
			printf("Spearman x100: %.2f\n", 100.0 * r.spearman);
			printf("Pearson x100: %.2f\n", 100.0 * r.pearson);
			printf("Pairs evaluated: %zu\n", r.pairs);
			printf("Pairs with a sentence of no known word: %zu\n", r.empty);
		}
		es_pool_free(pool);
	} else if (analogy) {
		es_analogy_result r;
		if (es_eval_analogy(enc, file, restrict_vocab, ci,
				    (es_analogy_method)method, &r, &err)) {
			fprintf(stderr, "embedsrv eval: %s\n", err.msg);
			rc = 1;
		} else {
			for (size_t i = 0; i < r.nsections; i++) {
				const es_eval_section *s = &r.sections[i];
				printf("%s: %.4f (%zu/%zu)\n", s->name,
				       es_eval_accuracy(s->correct, s->incorrect),
				       s->correct, s->correct + s->incorrect);
			}
			printf("Total accuracy: %.4f (%zu/%zu)\n",
			       es_eval_accuracy(r.correct, r.incorrect), r.correct,
			       r.correct + r.incorrect);
			printf("Quadruplets with out-of-vocabulary words: %.1f%% (%zu/%zu)\n",
			       r.quadruplets ? 100.0 * (double)r.oov / (double)r.quadruplets : 0.0,
			       r.oov, r.quadruplets);
			es_analogy_result_free(&r);
		}
	} else {
		es_pairs_result r;
		if (es_eval_pairs(enc, file, restrict_vocab, ci, &r, &err)) {
			fprintf(stderr, "embedsrv eval: %s\n", err.msg);
			rc = 1;
		} else {
			printf("Pearson correlation coefficient: %.4f\n", r.pearson);
			printf("Spearman rank-order correlation coefficient: %.4f\n", r.spearman);
			printf("Pairs evaluated: %zu\n", r.pairs);
			printf("Pairs with unknown words: %zu (%.1f%%)\n", r.oov, r.oov_ratio);
		}
	}
	es_encoder_free(enc);
	return rc;
}
