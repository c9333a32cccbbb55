/*
 * cmd_model.c — model commands of the `embedsrv` binary:
 *   vectors    print word vectors (fastText print-word-vectors format)
 *   encode     stdin lines -> one sentence vector per line
 *   neighbors  nearest words of a word (or of --text)
 *   analogy    gensim most_similar / most_similar_cosmul
 *   convert    any model format -> .esm or .vec
 * Every command takes --model in any format core/model_io reads (or a BERT
 * folder where the encoder supports one).
 *
 * Threading: single-threaded except batch encoding on an es_pool.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "cli_args.h"
#include "commands.h"
#include "encode.h"
#include "encoder.h"
#include "model.h"
#include "model_io.h"
#include "threadpool.h"

static int fail(const char *cmd, const es_error *err)
{
	fprintf(stderr, "embedsrv %s: %s\n", cmd, err->msg);
	return 1;
}


static int open_model(const char *cmd, const char *path, es_encoder **enc)
{
	es_error err = {0};
	if (!path)
		return cli_usage_error(cmd, "--model is required");
	if (es_encoder_open(path, NULL, enc, &err) != 0)
		return fail(cmd, &err);
	return 0;
}

/* Read one line of any length from f into *buf (without '\n'); -1 at EOF. */
static ssize_t read_line(FILE *f, char **buf, size_t *cap)
{
	ssize_t n = getline(buf, cap, f);
	if (n <= 0)
		return -1;
	if ((*buf)[n - 1] == '\n')
		(*buf)[--n] = '\0';
	if (n > 0 && (*buf)[n - 1] == '\r')
		(*buf)[--n] = '\0';
	return n;
}

/* ---------------------------------------------------------------- vectors */

static void print_word_vector(const es_encoder *enc, const char *w)
{
	uint32_t dim = es_encoder_dim(enc);
	float *v = calloc(dim, sizeof(float));
	if (!v)
		return;
	const es_model *m = es_encoder_static_model(enc);
	int rc;
	if (m)
		rc = es_model_word_vector(m, w, strlen(w), v, NULL, NULL);
	else
		rc = es_encoder_word_vector(enc, w, strlen(w), v, NULL, NULL);
	if (rc)
		fprintf(stderr, "embedsrv vectors: no vector for '%s' (zeros printed)\n", w);
	/* fastText: the word, then each value with 5 significant digits and
	 * a trailing space */
	fputs(w, stdout);
	putchar(' ');
	for (uint32_t j = 0; j < dim; j++)
		printf("%.5g ", (double)v[j]);
	putchar('\n');
	free(v);
}

int cmd_vectors(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *model = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'h':
			printf("usage: embedsrv vectors --model M [WORD...]\n"
			       "Print each word's vector in fastText print-word-vectors format\n"
			       "(words from the command line, else one per whitespace-separated\n"
			       "token on stdin).  Unknown words without subwords print zeros.\n");
			return 0;
		default: return 2;
		}
	}
	es_encoder *enc;
	int rc = open_model("vectors", model, &enc);
	if (rc)
		return rc;
	if (optind < argc) {
		for (int i = optind; i < argc; i++)
			print_word_vector(enc, argv[i]);
	} else {
		char w[4096];
		while (scanf("%4095s", w) == 1)
			print_word_vector(enc, w);
	}
	es_encoder_free(enc);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ----------------------------------------------------------------- encode */

#define ENCODE_CHUNK 4096

/* Append v as text: fixed point with up to 8 decimals (trailing zeros
 * dropped) for the usual range of unit-vector components, "%.7g" outside
 * it.  Several times faster than printf, which dominated `encode`. */
static char *put_float(char *p, float f)
{
	double v = f;
	if (!(fabs(v) < 1e4) || (v != 0 && fabs(v) < 1e-3))
		return p + sprintf(p, "%.7g", v);
	if (v < 0) {
		*p++ = '-';
		v = -v;
	}
	uint64_t x = (uint64_t)llround(v * 1e8);
	uint64_t ip = x / 100000000u, fp = x % 100000000u;
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + ip % 10);
		ip /= 10;
	} while (ip);
	while (n)
		*p++ = tmp[--n];
	if (fp) {
		char d[8];
		for (int i = 7; i >= 0; i--) {
			d[i] = (char)('0' + fp % 10);
			fp /= 10;
		}
		int e = 8;
		while (e > 0 && d[e - 1] == '0')
			e--;
		*p++ = '.';
		memcpy(p, d, (size_t)e);
		p += e;
	}
	return p;
}

int cmd_encode(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *model = NULL;
	long threads = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 't':
			threads = strtol(optarg, NULL, 10);
			if (threads < 0 || threads > 1024)
				return cli_usage_error("encode", "--threads must be 0..1024");
			break;
		case 'h':
			printf("usage: embedsrv encode --model M [--threads N]\n"
			       "Read text lines on stdin, write one sentence vector per line\n"
			       "(space-separated, unit length; all zeros for a line with no\n"
			       "known word).  --threads 0 (default) uses every core.\n");
			return 0;
		default: return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error("encode", "unexpected argument");
	es_encoder *enc;
	int rc = open_model("encode", model, &enc);
	if (rc)
		return rc;
	es_pool *pool = es_pool_new((unsigned)threads);
	uint32_t dim = es_encoder_dim(enc);
	char **lines = calloc(ENCODE_CHUNK, sizeof *lines);
	size_t *caps = calloc(ENCODE_CHUNK, sizeof *caps);
	size_t *lens = calloc(ENCODE_CHUNK, sizeof *lens);
	float *out = malloc((size_t)ENCODE_CHUNK * dim * sizeof(float));
	char *obuf = malloc((size_t)dim * 24 + 2);
	es_error err = {0};
	size_t lineno = 0;
	rc = 0;
	if (!pool || !lines || !caps || !lens || !out || !obuf) {
		fprintf(stderr, "embedsrv encode: out of memory\n");
		rc = 1;
		goto out;
	}
	for (int eof = 0; !eof && rc == 0;) {
		size_t n = 0;
		while (n < ENCODE_CHUNK) {
			ssize_t l = read_line(stdin, &lines[n], &caps[n]);
			if (l < 0) {
				eof = 1;
				break;
			}
			lens[n++] = (size_t)l;
		}
		if (n == 0)
			break;
		if (es_encoder_encode_batch(enc, (const char *const *)lines, lens,
					    n, 0, out, NULL, pool, &err) != 0) {
			fprintf(stderr, "embedsrv encode: line %zu+: %s\n",
				lineno + 1, err.msg);
			rc = 1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			char *p = obuf;
			const float *v = out + i * dim;
			for (uint32_t j = 0; j < dim; j++) {
				if (j)
					*p++ = ' ';
				p = put_float(p, v[j]);
			}
			*p++ = '\n';
			fwrite(obuf, 1, (size_t)(p - obuf), stdout);
		}
		lineno += n;
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = 1;
out:
	if (lines)
		for (size_t i = 0; i < ENCODE_CHUNK; i++)
			free(lines[i]);
	free(lines);
	free(caps);
	free(lens);
	free(out);
	free(obuf);
	es_pool_free(pool);
	es_encoder_free(enc);
	return rc;
}

/* ------------------------------------------------- neighbors / analogy */

static int parse_k(const char *cmd, const char *s, size_t *k)
{
	char *e;
	errno = 0;
	long v = strtol(s, &e, 10);
	if (*e || errno || v < 1 || v > 100000)
		return cli_usage_error(cmd, "--k must be an integer 1..100000");
	*k = (size_t)v;
	return 0;
}

static int parse_restrict(const char *cmd, const char *s, size_t *r)
{
	char *e;
	errno = 0;
	long long v = strtoll(s, &e, 10);
	if (*e || errno || v < 0)
		return cli_usage_error(cmd, "--restrict must be an integer >= 0");
	*r = (size_t)v;
	return 0;
}

static void print_hits(const es_encoder *enc, const es_word_score *hits,
		       size_t n)
{
	const char *const *words;
	const float *unit;
	size_t count;
	if (es_encoder_vocab(enc, &words, &unit, &count, NULL))
		return;
	for (size_t i = 0; i < n; i++)
		printf("%s %.6f\n", words[hits[i].id], (double)hits[i].score);
}

/* "word" or "word:weight" (the weight only when the suffix parses). */
static void parse_term(const char *s, es_arith_term *t)
{
	memset(t, 0, sizeof *t);
	t->word = s;
	t->len = strlen(s);
	const char *colon = strrchr(s, ':');
	if (colon && colon != s && colon[1]) {
		char *e;
		float w = strtof(colon + 1, &e);
		if (!*e && isfinite(w) && w != 0) {
			t->len = (size_t)(colon - s);
			t->weight = w;
		}
	}
}

int cmd_neighbors(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"k", required_argument, NULL, 'k'},
		{"restrict", required_argument, NULL, 'r'},
		{"text", required_argument, NULL, 't'},
		{"score", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *model = NULL, *text = NULL;
	size_t k = 10, restrict_vocab = 0;
	int c, cosine = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:k:r:t:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'k':
			if (parse_k("neighbors", optarg, &k))
				return 2;
			break;
		case 'r':
			if (parse_restrict("neighbors", optarg, &restrict_vocab))
				return 2;
			break;
		case 't': text = optarg; break;
		case 's':
			if (strcmp(optarg, "meaning") && strcmp(optarg, "cosine"))
				return cli_usage_error("neighbors", "--score must be meaning or cosine");
			cosine = !strcmp(optarg, "cosine");
			break;
		case 'h':
			printf("usage: embedsrv neighbors --model M WORD... [--k 10] [--restrict N]\n"
			       "                         [--score meaning|cosine]\n"
			       "       embedsrv neighbors --model M --text \"some text\" [--k 10]\n"
			       "Print the k nearest vocabulary words, one `word score` (cosine)\n"
			       "per line, best first; the query words themselves are excluded.\n"
			       "Several words are summed (gensim most_similar(positive=...)).\n"
			       "One word of a subword model: by meaning (default), the 100 nearest\n"
			       "re-scored by the cosine without the character n-grams the two\n"
			       "words share; --score cosine gives the plain cosine.\n");
			return 0;
		default: return 2;
		}
	}
	if (!text && optind >= argc)
		return cli_usage_error("neighbors", "give a WORD or --text");
	if (text && optind < argc)
		return cli_usage_error("neighbors", "give WORDs or --text, not both");
	es_encoder *enc;
	int rc = open_model("neighbors", model, &enc);
	if (rc)
		return rc;
	es_word_score *hits = malloc(k * sizeof *hits);
	size_t nt = (size_t)(argc - optind), nh = 0;
	es_arith_term *terms = calloc(nt ? nt : 1, sizeof *terms);
	es_error err = {0};
	if (!hits || !terms) {
		rc = 1;
		goto out;
	}
	if (text) {
		rc = es_arith_neighbors_text(enc, text, strlen(text),
					     restrict_vocab, k, hits, &nh, &err);
	} else {
		for (size_t i = 0; i < nt; i++)
			parse_term(argv[optind + (int)i], &terms[i]);
		if (nt == 1 && terms[0].weight == 0 && !cosine)
			rc = es_arith_word_neighbors(enc, terms[0].word, terms[0].len,
						     restrict_vocab, k, hits, &nh, &err);
		else
			rc = es_arith_most_similar(enc, terms, nt, NULL, 0,
						   ES_ANALOGY_3COSADD, restrict_vocab,
						   k, hits, &nh, &err);
	}
	if (rc) {
		rc = fail("neighbors", &err);
		goto out;
	}
	print_hits(enc, hits, nh);
out:
	free(hits);
	free(terms);
	es_encoder_free(enc);
	return rc;
}

int cmd_analogy(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"positive", required_argument, NULL, 'p'},
		{"negative", required_argument, NULL, 'n'},
		{"k", required_argument, NULL, 'k'},
		{"method", required_argument, NULL, 'M'},
		{"restrict", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *model = NULL;
	size_t k = 10, restrict_vocab = 0, np = 0, nn = 0;
	int method = ES_ANALOGY_3COSADD, list = 0, c;
	es_arith_term *pos = calloc((size_t)argc, sizeof *pos);
	es_arith_term *neg = calloc((size_t)argc, sizeof *neg);
	if (!pos || !neg) {
		free(pos);
		free(neg);
		return 1;
	}
	int rc = 0;
	optind = 1;
	/* leading '-': non-option words arrive as code 1, in order, so
	 * "--positive a b --negative c" fills the lists */
	while ((c = getopt_long(argc, argv, "-m:p:n:k:M:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'p': list = 1; parse_term(optarg, &pos[np++]); break;
		case 'n': list = 2; parse_term(optarg, &neg[nn++]); break;
		case 1:
			if (list == 1)
				parse_term(optarg, &pos[np++]);
			else if (list == 2)
				parse_term(optarg, &neg[nn++]);
			else
				rc = cli_usage_error("analogy", "words must follow --positive or --negative");
			break;
		case 'k':
			if (parse_k("analogy", optarg, &k))
				rc = 2;
			break;
		case 'r':
			if (parse_restrict("analogy", optarg, &restrict_vocab))
				rc = 2;
			break;
		case 'M':
			method = es_analogy_method_parse(optarg);
			if (method < 0)
				rc = cli_usage_error("analogy", "--method must be 3cosadd or 3cosmul");
			break;
		case 'h':
			printf("usage: embedsrv analogy --model M --positive W... [--negative W...]\n"
			       "                        [--k 10] [--method 3cosadd|3cosmul] [--restrict N]\n"
			       "gensim most_similar (3cosadd) / most_similar_cosmul (3cosmul):\n"
			       "e.g. --positive king woman --negative man.  A word may carry a\n"
			       "weight as WORD:W (3cosadd only).  Prints `word score`, best first;\n"
			       "the query words are excluded.\n");
			goto out;
		default: rc = 2; break;
		}
		if (rc)
			goto out;
	}
	if (np == 0) {
		rc = cli_usage_error("analogy", "--positive needs at least one word");
		goto out;
	}
	es_encoder *enc;
	rc = open_model("analogy", model, &enc);
	if (rc)
		goto out;
	es_word_score *hits = malloc(k * sizeof *hits);
	size_t nh = 0;
	es_error err = {0};
	if (!hits) {
		rc = 1;
	} else if (es_arith_most_similar(enc, pos, np, neg, nn,
					 (es_analogy_method)method,
					 restrict_vocab, k, hits, &nh, &err)) {
		rc = fail("analogy", &err);
	} else {
		print_hits(enc, hits, nh);
	}
	free(hits);
	es_encoder_free(enc);
out:
	free(pos);
	free(neg);
	return rc;
}

/* ---------------------------------------------------------------- convert */


/* Synthetic sample for the common component when no --sample is given:
 * 10-word "sentences" drawn from the model's unigram distribution (counts,
 * else the Zipf estimate), with a fixed seed so conversions are
 * reproducible. */
static int synthetic_sample(const es_model *m, size_t nsent, char ***texts,
			    size_t **lens)
{
	size_t n = es_model_size(m);
	const es_vocab *v = es_model_vocab(m);
	double *cdf = malloc(n * sizeof *cdf);
	*texts = calloc(nsent, sizeof **texts);
	*lens = calloc(nsent, sizeof **lens);
	if (!cdf || !*texts || !*lens) {
		free(cdf);
		return -1;
	}
	double acc = 0;
	for (size_t i = 0; i < n; i++) {
		acc += es_model_word_prob(m, (uint32_t)i);
		cdf[i] = acc;
	}
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (size_t t = 0; t < nsent; t++) {
		size_t cap = 256, len = 0;
		char *buf = malloc(cap);
		if (!buf)
			break;
		for (int w = 0; w < 10; w++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			double u = (double)(s >> 11) / 9007199254740992.0 * acc;
			size_t lo = 0, hi = n - 1;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (cdf[mid] < u)
					lo = mid + 1;
				else
					hi = mid;
			}
			const char *word = es_vocab_word(v, (uint32_t)lo);
			size_t wl = strlen(word);
			if (len + wl + 2 > cap) {
				cap = (len + wl + 2) * 2;
				char *nb = realloc(buf, cap);
				if (!nb)
					break;
				buf = nb;
			}
			if (len)
				buf[len++] = ' ';
			memcpy(buf + len, word, wl);
			len += wl;
		}
		buf[len] = '\0';
		(*texts)[t] = buf;
		(*lens)[t] = len;
	}
	free(cdf);
	return 0;
}

/* The first max lines of the file sample (malloc'ed, with their lengths)
 * for the common component; fewer when the file is shorter, none if memory
 * runs out.  0, or 1 when the file cannot be opened (message printed). */
static int read_sample(const char *sample, size_t max, char ***textsp, size_t **lensp,
		       size_t *ntp)
{
	FILE *f = fopen(sample, "r");
	if (!f) {
		fprintf(stderr, "embedsrv convert: %s: %s\n", sample, strerror(errno));
		return 1;
	}
	char **texts = calloc(max, sizeof *texts);
	size_t *lens = calloc(max, sizeof *lens), nt = 0;
	while (texts && lens && nt < max) {
		size_t cap = 0;
		ssize_t l = read_line(f, &texts[nt], &cap);
		if (l < 0) {
			free(texts[nt]);
			texts[nt] = NULL;
			break;
		}
		lens[nt++] = (size_t)l;
	}
	fclose(f);
	*textsp = texts;
	*lensp = lens;
	*ntp = nt;
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{"input", required_argument, NULL, 'i'},
		{"format", required_argument, NULL, 'f'},
		{"output", required_argument, NULL, 'o'},
		{"sample", required_argument, NULL, 's'},
		{"sample-lines", required_argument, NULL, 'n'},
		{"no-common", no_argument, NULL, 'C'},
		{"sif-a", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *in = NULL, *outp = NULL, *sample = NULL;
	int fmt = ES_FORMAT_AUTO, no_common = 0, c;
	long sample_lines = 10000;
	float sif_a = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:f:o:s:n:Ca:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in = optarg; break;
		case 'o': outp = optarg; break;
		case 's': sample = optarg; break;
		case 'C': no_common = 1; break;
		case 'n':
			sample_lines = strtol(optarg, NULL, 10);
			if (sample_lines < 1 || sample_lines > 10000000)
				return cli_usage_error("convert", "--sample-lines must be 1..10000000");
			break;
		case 'a':
			sif_a = strtof(optarg, NULL);
			if (!(sif_a > 0) || !isfinite(sif_a))
				return cli_usage_error("convert", "--sif-a must be > 0");
			break;
		case 'f':
			fmt = es_model_format_parse(optarg);
			if (fmt < 0)
				return cli_usage_error("convert",
						 "--format must be auto, word2vec-bin, text, fasttext-bin or esm");
			break;
		case 'h':
			printf("usage: embedsrv convert --input F [--format auto|word2vec-bin|text|fasttext-bin|esm]\n"
			       "                        -o OUT.esm|OUT.vec [--sample TEXT] [--sample-lines N]\n"
			       "                        [--no-common] [--sif-a A]\n"
			       "Read a model in any supported format and write embedsrv's .esm\n"
			       "(mmap-able, checksummed) or a fastText/word2vec .vec text file.\n"
			       "For .esm, the SIF common component is computed over the first N\n"
			       "lines (default 10000) of --sample, or without --sample over 10000\n"
			       "synthetic 10-word sentences drawn from the word frequencies;\n"
			       "--no-common keeps the input's component (if any) untouched.\n");
			return 0;
		default: return 2;
		}
	}
	if (!in)
		return cli_usage_error("convert", "--input is required");
	if (!outp)
		return cli_usage_error("convert", "-o OUT is required");
	if (optind < argc)
		return cli_usage_error("convert", "unexpected argument");
	int to_vec = cli_model_output("convert", "-o", outp);
	if (to_vec < 0)
		return 2;
	int to_esm = !to_vec;
	es_model *m;
	es_error err = {0};
	if (es_model_load(in, (es_model_format)fmt, ES_LOAD_VERIFY, &m, &err))
		return fail("convert", &err);
	int rc = 0;
	if (sif_a > 0)
		es_model_set_sif_a(m, sif_a);
	if (to_esm && !no_common) {
		char **texts = NULL;
		size_t *lens = NULL, nt = 0;
		if (sample) {
			if (read_sample(sample, (size_t)sample_lines, &texts, &lens, &nt)) {
				es_model_free(m);
				return 1;
			}
		} else {
			nt = 10000;
			if (synthetic_sample(m, nt, &texts, &lens))
				nt = 0;
		}
		es_pool *pool = es_pool_new(0);
		rc = es_model_compute_common(m, (const char *const *)texts, lens,
					     nt, pool, &err);
		es_pool_free(pool);
		for (size_t i = 0; texts && i < nt; i++)
			free(texts[i]);
		free(texts);
		free(lens);
		if (rc) {
			es_err_prefix(&err, rc, "common component");
			es_model_free(m);
			return fail("convert", &err);
		}
		es_model_set_meta(m, "common_component.source",
				  sample ? sample : "synthetic-unigram", NULL);
	}
	if (!es_model_meta(m, "source_file"))
		es_model_set_meta(m, "source_file", in, NULL);
	rc = to_esm ? es_model_save_esm(m, outp, &err)
		    : es_model_save_vec(m, outp, &err);
	if (rc)
		rc = fail("convert", &err);
	else
		fprintf(stderr, "embedsrv convert: wrote %s (%zu words, dim %u%s)\n",
			outp, es_model_size(m), es_model_dim(m),
			es_model_has_subwords(m) && to_esm ? ", subwords" : "");
	es_model_free(m);
	return rc;
}
