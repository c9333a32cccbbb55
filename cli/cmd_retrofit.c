/*
 * cmd_retrofit.c — `embedsrv retrofit --model M --lexicon L -o OUT`: apply a
 * lexicon of word relations to a static model (core/retrofit, README
 * "Lexicon-informed vectors").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_args.h"
#include "commands.h"
#include "lexicon.h"
#include "model.h"
#include "model_io.h"
#include "retrofit.h"

static int retrofit_usage(void)
{
	es_retrofit_params d;
	es_retrofit_params_default(&d);
	printf("usage: embedsrv retrofit --model M --lexicon L -o OUT.esm|OUT.vec\n"
	       "                         [--iterations N] [--alpha A] [--beta-syn B] [--beta-rel B]\n"
	       "                         [--gamma-ant G] [--ngram-weight W]\n"
	       "Pull the vectors of words the lexicon relates together and push antonyms\n"
	       "apart (retrofitting, Faruqui et al. 2015, with an antonym term), then\n"
	       "write the model.  The lexicon has one relation per line:\n"
	       "  syn W1 W2 ...   every pair of the words is similar\n"
	       "  rel W1 W2 ...   W1 is related to each other word (weaker pull)\n"
	       "  ant W1 W2 ...   W1 is the opposite of each other word\n"
	       "('#' starts a comment line; words the model lacks are ignored).\n"
	       "  --iterations N     Jacobi iterations (%u)\n"
	       "  --alpha A          weight of each word's own vector (%g)\n"
	       "  --beta-syn B       total weight of a word's syn neighbours (%g)\n"
	       "  --beta-rel B       total weight of its rel neighbours (%g)\n"
	       "  --gamma-ant G      total weight of its antonyms, < alpha/2 (%g)\n"
	       "  --ngram-weight W   weight of the character n-grams in a known word's\n"
	       "                     starting vector: 1 keeps it, 0 uses the word's own row (%g)\n"
	       "N-gram rows are unchanged: unseen words get the vectors they had.\n",
	       d.iterations, (double)d.alpha, (double)d.beta_syn,
	       (double)d.beta_rel, (double)d.gamma_ant, (double)d.ngram_weight);
	return 0;
}

/* The value of a float option. */
static int float_opt(const char *opt, float *out)
{
	return cli_float("retrofit", opt, optarg, out);
}

int cmd_retrofit(int argc, char **argv)
{
	enum { O_ITER = 256, O_ALPHA, O_BSYN, O_BREL, O_GANT, O_NGW };
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"lexicon", required_argument, NULL, 'l'},
		{"output", required_argument, NULL, 'o'},
		{"iterations", required_argument, NULL, O_ITER},
		{"alpha", required_argument, NULL, O_ALPHA},
		{"beta-syn", required_argument, NULL, O_BSYN},
		{"beta-rel", required_argument, NULL, O_BREL},
		{"gamma-ant", required_argument, NULL, O_GANT},
		{"ngram-weight", required_argument, NULL, O_NGW},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *model = NULL, *lexicon = NULL, *outp = NULL;
	es_retrofit_params p;
	es_retrofit_params_default(&p);
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:l:o:h", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'm': model = optarg; break;
		case 'l': lexicon = optarg; break;
		case 'o': outp = optarg; break;
		case O_ITER: bad = cli_u32("retrofit", "--iterations", optarg, 0, 1000, &p.iterations); break;
		case O_ALPHA: bad = float_opt("--alpha", &p.alpha); break;
		case O_BSYN: bad = float_opt("--beta-syn", &p.beta_syn); break;
		case O_BREL: bad = float_opt("--beta-rel", &p.beta_rel); break;
		case O_GANT: bad = float_opt("--gamma-ant", &p.gamma_ant); break;
		case O_NGW: bad = float_opt("--ngram-weight", &p.ngram_weight); break;
		case 'h': return retrofit_usage();
		default: return cli_getopt_error("retrofit", c, argv);
		}
		if (bad)
			return 2;
	}
	if (!model)
		return cli_usage_error("retrofit", "--model is required");
	if (!lexicon)
		return cli_usage_error("retrofit", "--lexicon is required");
	if (!outp)
		return cli_usage_error("retrofit", "-o OUT is required");
	if (optind < argc)
		return cli_usage_error("retrofit", "unexpected argument '%s'", argv[optind]);
	int to_vec = cli_model_output("retrofit", "-o", outp);
	if (to_vec < 0)
		return 2;
	es_error err = {0};
	if (es_retrofit_params_check(&p, &err)) {
		fprintf(stderr, "embedsrv retrofit: %s\n", err.msg);
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	es_lexicon *lx = NULL;
	es_model *in = NULL, *m = NULL;
	int rc = 1;
	if (es_lexicon_load(lexicon, &lx, &err) ||
	    es_model_load(model, ES_FORMAT_AUTO, 0, &in, &err)) {
		fprintf(stderr, "embedsrv retrofit: %s\n", err.msg);
		goto out;
	}
	es_retrofit_stats st;
	if (es_retrofit(in, lx, &p, &m, &st, &err) ||
	    es_model_set_meta(m, "retrofit.lexicon", lexicon, &err) ||
	    (to_vec ? es_model_save_vec(m, outp, &err)
		    : es_model_save_esm(m, outp, &err))) {
		fprintf(stderr, "embedsrv retrofit: %s\n", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr,
		"retrofit: %zu of %zu words moved (%zu syn, %zu rel, %zu ant pairs; "
		"%zu of %zu lexicon words not in the model), %.1f s; wrote %s\n",
		st.words_moved, es_model_size(in), st.edges[ES_LEX_SYN],
		st.edges[ES_LEX_REL], st.edges[ES_LEX_ANT], st.unknown_words,
		st.lexicon_words,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
		outp);
	rc = 0;
out:
	es_model_free(m);
	es_model_free(in);
	es_lexicon_free(lx);
	return rc;
}
