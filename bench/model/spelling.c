/*
 * spelling.c — how much of a model's notion of "similar" is spelling.
 *
 *     bench_spelling MODEL [N] [K] [meaning|cosine]
 *
 * Over the N (default 1,000) most frequent vocabulary words that are at
 * least 4 letters long (letters only: a word with a digit, hyphen or
 * apostrophe is skipped), takes each word's K (default 10) nearest
 * vocabulary words (the query excluded; exact search, as `embedsrv
 * neighbors WORD`: by meaning, es_arith_word_neighbors, unless the last
 * argument is "cosine": the plain cosine) and prints the share of those neighbours that begin
 * with the same 4 letters as the query word — "bank" -> banks, banknote,
 * banker... counts 8 of 8 for the model of issue 18.  Lower is better for
 * neighbours by meaning; it is not a WordNet score, so it does not reward
 * fitting the lexicon a model was retrofitted to.  Letters are compared as
 * bytes after the model's own (lowercase) spelling; a 4-letter prefix of a
 * non-ASCII word compares its first 4 code points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "encoder.h"

/* byte length of the first n code points of s, or 0 if s is shorter */
static size_t prefix_bytes(const char *s, size_t n)
{
	size_t i = 0, cp = 0;
	while (s[i] && cp < n) {
		i++;
		while (((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		cp++;
	}
	return cp == n ? i : 0;
}

static int letters_only(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x80 && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	int cosine = 0;
	if (argc > 2 && (!strcmp(argv[argc - 1], "cosine") || !strcmp(argv[argc - 1], "meaning")))
		cosine = !strcmp(argv[--argc], "cosine");
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: bench_spelling MODEL [N] [K] [meaning|cosine]\n");
		return 2;
	}
	size_t want = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
	size_t k = argc > 3 ? strtoul(argv[3], NULL, 10) : 10;
	if (!want || !k || k > 1000) {
		fprintf(stderr, "bench_spelling: N and K must be > 0 (K <= 1000)\n");
		return 2;
	}
	es_encoder *enc;
	es_error err = {0};
	if (es_encoder_open(argv[1], NULL, &enc, &err)) {
		fprintf(stderr, "bench_spelling: %s\n", err.msg);
		return 1;
	}
	const char *const *words;
	const float *unit;
	size_t n;
	if (es_encoder_vocab(enc, &words, &unit, &n, &err)) {
		fprintf(stderr, "bench_spelling: %s\n", err.msg);
		return 1;
	}
	uint32_t dim = es_encoder_dim(enc);
	uint32_t *qid = malloc(want * sizeof *qid);
	float *q = malloc(want * dim * sizeof *q);
	size_t nq = 0;
	for (size_t i = 0; i < n && nq < want; i++) {
		if (!prefix_bytes(words[i], 4) || !letters_only(words[i]))
			continue;
		qid[nq] = (uint32_t)i;
		memcpy(q + nq * dim, unit + i * dim, dim * sizeof *q);
		nq++;
	}
	const uint32_t **excl = malloc(nq * sizeof *excl);
	size_t *nexcl = malloc(nq * sizeof *nexcl);
	es_word_score *res = malloc(nq * k * sizeof *res);
	size_t *nout = malloc(nq * sizeof *nout);
	for (size_t i = 0; i < nq; i++) {
		excl[i] = &qid[i];
		nexcl[i] = 1;
	}
	if (cosine && es_arith_topk_batch(unit, n, dim, q, nq, k, excl, nexcl, res, nout, &err)) {
		fprintf(stderr, "bench_spelling: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; !cosine && i < nq; i++)
		if (es_arith_word_neighbors(enc, words[qid[i]], strlen(words[qid[i]]), 0, k,
					    res + i * k, &nout[i], &err)) {
			fprintf(stderr, "bench_spelling: %s\n", err.msg);
			return 1;
		}
	size_t same = 0, total = 0;
	for (size_t i = 0; i < nq; i++) {
		const char *w = words[qid[i]];
		size_t pb = prefix_bytes(w, 4);
		for (size_t j = 0; j < nout[i]; j++) {
			const char *nb = words[res[i * k + j].id];
			same += strncmp(nb, w, pb) == 0 && prefix_bytes(nb, 4) == pb;
			total++;
		}
	}
	printf("spelling neighbours: %.2f %% (%zu of %zu top-%zu neighbours of the %zu most frequent words of 4+ letters share their first 4 letters)\n",
	       total ? 100.0 * (double)same / (double)total : 0.0, same, total, k, nq);
	free(qid);
	free(q);
	free(excl);
	free(nexcl);
	free(res);
	free(nout);
	es_encoder_free(enc);
	return 0;
}
