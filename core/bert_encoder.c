/*
 * bert_encoder.c — core/bert as one kind behind core/encoder (the ops table
 * of encoder_impl.h): es_encoder_open() on a folder lands here.
 *
 * What each encoder call means for BERT:
 *   encode / encode_batch  sentence vector (pooling of the folder), always
 *                          returned with unit L2 norm as encoder.h promises
 *                          (a folder without a Normalize module is
 *                          normalised here; cosine ranking is unchanged);
 *   tokenize               the WordPiece pieces the model sees, [CLS] and
 *                          [SEP] included, after truncation;
 *   word_vector            the encoding of the word alone ("[CLS] word
 *                          [SEP]"); ES_ENOTFOUND when every piece is [UNK];
 *   vocab                  the tokenizer's whole-word entries (no "##"
 *                          continuations, no "[...]" specials) in vocabulary
 *                          order (WordPiece has no counts), each encoded
 *                          alone — built on first use with progress on
 *                          stderr, then cached.
 *
 * Threading: the model is immutable; the vocabulary cache is built once
 * under a mutex (later callers wait for it, then read it without locking).
 * Ownership: the impl owns the es_bert and the cache; destroy frees both.
 */
#include "encoder_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bert.h"
#include "simd.h"

#define VOCAB_BATCH 256

typedef struct bert_enc {
	es_bert *b;
	pthread_mutex_t mu;
	int built;
	const char **words; /* borrowed from the tokenizer */
	float *unit;
	size_t count;
} bert_enc;

static void unit_rows(float *v, size_t n, size_t dim)
{
	for (size_t i = 0; i < n; i++)
		simd_normalize_f64(v + i * dim, dim);
}

static void be_destroy(void *impl)
{
	bert_enc *e = impl;
	if (!e)
		return;
	es_bert_free(e->b);
	free(e->words);
	free(e->unit);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

static uint32_t be_dim(const void *impl)
{
	return es_bert_dim(((const bert_enc *)impl)->b);
}

static uint32_t be_max_tokens(const void *impl)
{
	return es_bert_max_seq_length(((const bert_enc *)impl)->b);
}

static size_t be_vocab_size(const void *impl)
{
	return es_wordpiece_vocab_size(es_bert_tokenizer(((const bert_enc *)impl)->b));
}

static int be_encode_batch(const void *impl, const char *const *texts,
			   const size_t *lens, size_t n, unsigned flags,
			   float *out, es_encode_info *infos, es_pool *pool,
			   es_error *err)
{
	const bert_enc *e = impl;
	int rc = es_bert_encode_batch(e->b, texts, lens, n, flags, out, infos, pool, err);
	if (rc)
		return rc;
	if (!es_bert_normalizes(e->b))
		unit_rows(out, n, es_bert_dim(e->b));
	return 0;
}

static int be_encode(const void *impl, const char *text, size_t len,
		     unsigned flags, float *out, es_encode_info *info,
		     es_error *err)
{
	return be_encode_batch(impl, &text, &len, 1, flags, out, info, NULL, err);
}

static int be_tokenize(const void *impl, const char *text, size_t len,
		       es_token_fn fn, void *ctx, es_error *err)
{
	const bert_enc *e = impl;
	const es_wordpiece *wp = es_bert_tokenizer(e->b);
	int32_t *ids;
	uint32_t n, total;
	int rc = es_wordpiece_encode(wp, text, len, es_bert_max_seq_length(e->b), &ids,
				     &n, &total, err);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n && !rc; i++) {
		const char *t = es_wordpiece_token(wp, ids[i]);
		unsigned fl;
		if (es_wordpiece_is_special(wp, ids[i]) && ids[i] != es_wordpiece_unk_id(wp))
			fl = ES_TOK_SPECIAL;
		else if (ids[i] == es_wordpiece_unk_id(wp))
			fl = ES_TOK_UNKNOWN;
		else {
			fl = ES_TOK_KNOWN;
			const char *next = i + 1 < n ? es_wordpiece_token(wp, ids[i + 1]) : NULL;
			if (strncmp(t, "##", 2) == 0 || (next && strncmp(next, "##", 2) == 0))
				fl |= ES_TOK_SUBWORD; /* part of a word split into pieces */
		}
		rc = fn(ctx, t, strlen(t), ids[i], fl);
	}
	free(ids);
	return rc;
}

static int be_word_vector(const void *impl, const char *word, size_t len,
			  float *out, unsigned *flags, es_error *err)
{
	const bert_enc *e = impl;
	const es_wordpiece *wp = es_bert_tokenizer(e->b);
	int32_t *ids;
	size_t n;
	int rc = es_wordpiece_tokenize(wp, word, len, &ids, &n, err);
	if (rc)
		return rc;
	size_t known = 0;
	for (size_t i = 0; i < n; i++)
		known += ids[i] != es_wordpiece_unk_id(wp);
	free(ids);
	if (known == 0)
		return es_err(err, ES_ENOTFOUND, "'%.*s' has no known word pieces",
			      (int)(len > 64 ? 64 : len), word);
	if ((rc = be_encode(impl, word, len, 0, out, NULL, err)))
		return rc;
	if (flags)
		*flags = n == 1 ? ES_TOK_KNOWN : ES_TOK_KNOWN | ES_TOK_SUBWORD;
	return 0;
}

static int build_vocab(bert_enc *e, es_error *err)
{
	const es_wordpiece *wp = es_bert_tokenizer(e->b);
	size_t nv = es_wordpiece_vocab_size(wp), dim = es_bert_dim(e->b), cnt = 0;
	const char **words = malloc((nv ? nv : 1) * sizeof *words);
	if (!words)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (size_t i = 0; i < nv; i++) {
		const char *t = es_wordpiece_token(wp, (int32_t)i);
		size_t l = t ? strlen(t) : 0;
		if (!l || strncmp(t, "##", 2) == 0 || es_wordpiece_is_special(wp, (int32_t)i) ||
		    (t[0] == '[' && t[l - 1] == ']'))
			continue;
		words[cnt++] = t;
	}
	float *unit = malloc((cnt ? cnt : 1) * dim * sizeof(float));
	if (!unit) {
		free(words);
		return es_err(err, ES_ENOMEM, "out of memory for %zu x %zu vectors", cnt, dim);
	}
	es_pool *pool = es_pool_new(0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fprintf(stderr, "embedsrv: encoding the %zu-word vocabulary with the BERT model "
		"(once)...\n", cnt);
	int rc = 0;
	size_t next_report = cnt / 10;
	for (size_t i = 0; i < cnt; i += VOCAB_BATCH) {
		size_t m = cnt - i < VOCAB_BATCH ? cnt - i : VOCAB_BATCH;
		rc = be_encode_batch(e, words + i, NULL, m, 0, unit + i * dim, NULL, pool, err);
		if (rc)
			break;
		if (i + m >= next_report || i + m == cnt) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
			fprintf(stderr, "embedsrv: vocabulary %zu/%zu words (%.0f%%), %.1f s\n",
				i + m, cnt, 100.0 * (double)(i + m) / (double)(cnt ? cnt : 1), s);
			next_report += cnt / 10 ? cnt / 10 : 1;
		}
	}
	es_pool_free(pool);
	if (rc) {
		free(words);
		free(unit);
		return rc;
	}
	e->words = words;
	e->unit = unit;
	e->count = cnt;
	return 0;
}

static int be_vocab(const void *impl, const char *const **words,
		    const float **unit, size_t *count, es_error *err)
{
	bert_enc *e = (bert_enc *)impl; /* the cache is the one mutable part */
	int rc = 0;
	pthread_mutex_lock(&e->mu);
	if (!e->built) {
		rc = build_vocab(e, err);
		e->built = rc == 0;
	}
	pthread_mutex_unlock(&e->mu);
	if (rc)
		return rc;
	*words = e->words;
	*unit = e->unit;
	*count = e->count;
	return 0;
}

static const es_encoder_ops bert_ops = {
	.kind = ES_ENCODER_BERT,
	.destroy = be_destroy,
	.dim = be_dim,
	.max_tokens = be_max_tokens,
	.vocab_size = be_vocab_size,
	.encode = be_encode,
	.encode_batch = be_encode_batch,
	.tokenize = be_tokenize,
	.word_vector = be_word_vector,
	.vocab = be_vocab,
};

int es_bert_encoder_open(const char *dir, const es_encoder_ops **ops, void **impl,
			 es_error *err)
{
	*ops = NULL;
	*impl = NULL;
	bert_enc *e = calloc(1, sizeof *e);
	if (!e)
		return es_err(err, ES_ENOMEM, "out of memory");
	int rc = es_bert_open(dir, &e->b, err);
	if (rc) {
		free(e);
		return rc;
	}
	pthread_mutex_init(&e->mu, NULL);
	*ops = &bert_ops;
	*impl = e;
	return 0;
}
