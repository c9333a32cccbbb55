/*
 * fuzz_model.c — the model readers of core/model_io, one binary per format:
 * built with -DFUZZ_FORMAT=ES_FORMAT_ESM / _WORD2VEC_BIN / _TEXT /
 * _FASTTEXT_BIN into fuzz_model_esm, fuzz_model_w2v, fuzz_model_text and
 * fuzz_model_ftbin.  The input is the model file.
 *
 * es_model_load takes a path and mmaps it (as the server does), so the input
 * goes into a file in the scratch directory (tmpfs where there is one).
 * For .esm the input is loaded as it is (flags 0, what es_encoder_open does)
 * and again with its checksums recomputed and ES_LOAD_VERIFY.
 *
 * A model a reader accepts must then be usable and persistable: it is
 * wrapped in an encoder (as the server does) and asked for sentence and word
 * vectors, tokens and the unit vocabulary; every vector it returns must be
 * finite (for .esm: when loaded with ES_LOAD_VERIFY); and it must save as .esm and load back, verified, with the same
 * words and dimension.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "fuzz_common.h"
#include "model.h"
#include "model_io.h"
#include "vocab.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT ES_FORMAT_TEXT
#endif

static char in_path[4096], out_path[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(in_path, sizeof in_path, "%s/model.in", fz_scratch_dir());
	snprintf(out_path, sizeof out_path, "%s/model.esm", fz_scratch_dir());
	return 0;
}

/* Without ES_LOAD_VERIFY an .esm's vectors are used in place unchecked (its
 * documented trade-off for opening multi-GB models in milliseconds), so
 * only verified loads promise finite output. */
static int values_checked;

static void check_finite(const float *v, uint32_t dim, const char *what)
{
	if (!values_checked)
		return;
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(v[i]))
			fz_fail("%s: element %u is not finite", what, i);
}

static int count_tok(void *ctx, const char *tok, size_t len, int32_t id,
		     unsigned flags)
{
	(void)tok;
	(void)len;
	(void)id;
	(void)flags;
	(*(size_t *)ctx)++;
	return 0;
}

static void exercise(es_model *m)
{
	const uint32_t dim = es_model_dim(m);
	const size_t nwords = es_model_size(m);
	const es_vocab *v = es_model_vocab(m);
	/* a sentence of the first words, an unknown word (subwords) and one
	 * with non-ASCII letters */
	char text[1024];
	size_t tl = 0;
	for (uint32_t i = 0; i < nwords && i < 4; i++) {
		size_t wl = es_vocab_word_len(v, i);
		if (tl + wl + 2 >= sizeof text / 2)
			break;
		memcpy(text + tl, es_vocab_word(v, i), wl);
		tl += wl;
		text[tl++] = ' ';
	}
	const char *tail = "unfuzzable Zürich naïveté";
	memcpy(text + tl, tail, strlen(tail));
	tl += strlen(tail);

	float *vec = malloc((size_t)dim * sizeof *vec);
	if (!vec)
		return;
	float *snap = NULL;
	char *w0 = nwords ? strndup(es_vocab_word(v, 0), es_vocab_word_len(v, 0)) : NULL;
	es_error err;
	es_encoder *enc;
	if (es_encoder_from_model(m, "fuzz", &enc, &err) != 0) {
		free(vec);
		free(w0);
		return; /* the model was freed; ES_ENOMEM only */
	}
	es_encode_info info;
	if (es_encoder_encode(enc, text, tl, 0, vec, &info, &err) == 0)
		check_finite(vec, dim, "sentence vector");
	size_t ntok = 0;
	es_encoder_tokenize(enc, text, tl, count_tok, &ntok, &err);
	unsigned fl;
	if (w0 && es_encoder_word_vector(enc, w0, strlen(w0), vec, &fl, &err) == 0)
		check_finite(vec, dim, "first word vector");
	if (es_encoder_word_vector(enc, "unfuzzable", 10, vec, &fl, &err) == 0)
		check_finite(vec, dim, "subword vector");
	const char *const *words;
	const float *unit;
	size_t count;
	if (es_encoder_vocab(enc, &words, &unit, &count, &err) == 0 && count)
		check_finite(unit, dim, "unit vector 0");

	/* what was accepted must round-trip through .esm */
	const es_model *sm = es_encoder_static_model(enc);
	if (es_model_save_esm(sm, out_path, &err) == 0) {
		es_model *back;
		/* verified, unless the values were never checked (an unverified
		 * .esm may hold anything the checksum would have caught) */
		if (es_model_load(out_path, ES_FORMAT_ESM, values_checked ? ES_LOAD_VERIFY : 0,
				  &back, &err) != 0)
			fz_fail("a loaded model saved as .esm does not load back: %s", err.msg);
		if (es_model_dim(back) != dim || es_model_size(back) != nwords)
			fz_fail("the .esm copy has %u x %zu, the model %u x %zu",
				es_model_dim(back), es_model_size(back), dim, nwords);
		if (w0) {
			int64_t id;
			snap = malloc((size_t)dim * sizeof *snap);
			if (snap && es_model_word_vector(back, w0, strlen(w0), snap, &fl, &id) != 0)
				fz_fail("word '%s' lost in the .esm copy", w0);
		}
		es_model_free(back);
	}
	free(snap);
	free(w0);
	free(vec);
	es_encoder_free(enc);
}

static void load_once(const uint8_t *data, size_t size, unsigned flags)
{
	fz_write_file(in_path, data, size);
	es_model *m;
	es_error err;
	int rc = es_model_load(in_path, FUZZ_FORMAT, flags, &m, &err);
	values_checked = FUZZ_FORMAT != ES_FORMAT_ESM || (flags & ES_LOAD_VERIFY);
	if (getenv("FUZZ_VERBOSE")) /* see what the seeds reach */
		fprintf(stderr, "load: %s\n", rc ? err.msg : "ok");
	if (rc == 0)
		exercise(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!in_path[0])
		LLVMFuzzerInitialize(NULL, NULL);
	load_once(data, size, 0);
	if (FUZZ_FORMAT == ES_FORMAT_ESM && size >= 256) {
		unsigned char *copy = malloc(size);
		if (!copy)
			return 0;
		memcpy(copy, data, size);
		fz_fix_esm(copy, size);
		load_once(copy, size, ES_LOAD_VERIFY);
		free(copy);
	}
	return 0;
}
