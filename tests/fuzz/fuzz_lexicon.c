/*
 * fuzz_lexicon.c — the lexicon reader (core/lexicon.c es_lexicon_parse),
 * which `embedsrv retrofit --lexicon` runs on a user's file.
 *
 * A lexicon the reader accepts must hold what the format promises (every
 * group has a known kind and at least two non-empty words without
 * separators or control bytes) and must then retrofit a small subword model
 * whose vocabulary overlaps the usual seed words: every output value finite,
 * every word's length kept, n-gram rows untouched.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "lexicon.h"
#include "model.h"
#include "retrofit.h"

#define DIM 4
#define BUCKET 16

static es_model *toy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static const char *words[] = {"a", "b", "car", "auto", "hot", "cold", "dog", "x"};
	float v[8 * DIM], ng[BUCKET * DIM];
	for (int i = 0; i < 8 * DIM; i++)
		v[i] = (float)((i * 7) % 5) - 2.0f + 0.25f;
	for (int i = 0; i < BUCKET * DIM; i++)
		ng[i] = (float)((i * 3) % 7) / 7.0f - 0.5f;
	es_model_params p = {.dim = DIM, .minn = 2, .maxn = 3, .bucket = BUCKET};
	if (es_model_from_arrays(&p, 8, words, NULL, v, ng, &toy, NULL))
		fz_fail("cannot build the toy model");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!toy)
		LLVMFuzzerInitialize(NULL, NULL);
	es_lexicon *lx;
	es_error err = {0};
	if (es_lexicon_parse((const char *)data, size, "fuzz", &lx, &err)) {
		if (lx || !err.msg[0] || strncmp(err.msg, "fuzz", 4))
			fz_fail("failed parse without a named error: '%s'", err.msg);
		return 0;
	}
	for (size_t g = 0; g < es_lexicon_groups(lx); g++) {
		const char *const *w;
		size_t n;
		es_lex_kind k = es_lexicon_group(lx, g, &w, &n);
		if ((int)k < 0 || k >= ES_LEX_KINDS || n < 2)
			fz_fail("group %zu: kind %d, %zu words", g, (int)k, n);
		for (size_t i = 0; i < n; i++) {
			if (!w[i][0])
				fz_fail("group %zu: empty word", g);
			for (const unsigned char *c = (const unsigned char *)w[i]; *c; c++)
				if (*c < 0x20 || *c == ' ' || *c == 0x7f)
					fz_fail("group %zu: byte 0x%02x in a word", g, *c);
		}
	}
	es_retrofit_params p;
	es_retrofit_params_default(&p);
	p.ngram_weight = (float)(size % 3) / 2.0f;
	es_model *r;
	if (es_retrofit(toy, lx, &p, &r, NULL, &err))
		fz_fail("retrofit of an accepted lexicon failed: %s", err.msg);
	for (size_t i = 0; i < es_model_size(r); i++) {
		const float *v = es_model_vector(r, (uint32_t)i);
		for (int j = 0; j < DIM; j++)
			if (!isfinite(v[j]))
				fz_fail("word %zu: non-finite value", i);
	}
	if (memcmp(es_model_ngrams(r), es_model_ngrams(toy), BUCKET * DIM * sizeof(float)))
		fz_fail("n-gram rows changed");
	es_model_free(r);
	es_lexicon_free(lx);
	return 0;
}
