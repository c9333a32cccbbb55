/*
 * train.h — learn word embeddings from a text file: skip-gram (or CBOW) with
 * negative sampling, optionally with fastText's hashed character n-grams.
 *
 * The algorithm is fastText's (Bojanowski et al. 2017) and word2vec's
 * (Mikolov et al. 2013): every line of the input is a sentence; words are
 * split and normalised by core/tokenize (the same tokenizer serving uses);
 * words seen fewer than min_count times are dropped; frequent words are
 * subsampled (keep probability sqrt(t/f) + t/f, t = `sample`); each kept word
 * predicts the words in a window of random radius 1..window around it
 * (skip-gram), or the window's mean predicts the word (CBOW); each
 * prediction is one positive and `neg` negative logistic regressions against
 * output vectors, negatives drawn from the unigram distribution raised to
 * 3/4; the learning rate decays linearly to 0 over all epochs.
 *
 * With subwords on, a word's input representation is the mean of its own
 * row and the rows of its character n-grams (minn..maxn characters of
 * "<word>", hashed with fastText's 32-bit FNV-1a variant into `bucket` rows)
 * — exactly fastText's getSubwords(), so a model reader computes the vector
 * of a word never seen as the mean of its n-gram rows, as fastText does.
 *
 * After training the vectors are post-processed as in "All-but-the-Top"
 * (Mu & Viswanath, ICLR 2018): the mean word vector is subtracted and the
 * top `drop_pcs` principal directions of the centred word vectors are
 * projected out.  Word vectors share a large common mean and a few dominant
 * directions that carry word frequency rather than meaning; removing them
 * raises both analogy accuracy and similarity correlation (bench/RESULTS.md
 * "Post-processing").  The map is affine, v -> P (v - mean), and a mean of
 * rows maps to the mean of the mapped rows, so it is applied to every word
 * vector and every n-gram row alike: a word never seen gets, from its
 * n-grams, exactly the vector the same map gives a known word.
 *
 * Departures from fastText, and why:
 *  - The corpus is tokenised once into an array of word ids, so epochs
 *    never re-read or re-hash text (fastText re-parses every epoch).
 *  - Skip-gram computes the centre word's n-gram mean once per centre word
 *    and keeps it current incrementally (adding the gradient to every row
 *    adds it to the mean), applying the summed gradient to the rows once at
 *    the end of the window.  fastText recomputes the mean and rewrites
 *    every n-gram row after each context word; the two agree exactly for
 *    one thread (up to float rounding and repeated n-grams of one word),
 *    ours does 1 + 1/(2 * window) of the n-gram work instead of 2 * window.
 *  - Negatives follow counts^ns_exponent, default 0.75 (word2vec) rather
 *    than fastText's fixed 0.5.
 *  - A line longer than ES_TRAIN_MAX_LINE words is split (fastText: 1024).
 *
 * Threading: Hogwild (Recht et al. 2011): `threads` workers of a core/
 * threadpool pool each train on their own contiguous slice of the corpus
 * and update the shared matrices without locks.  With threads == 1 and a
 * fixed seed the result is bit-for-bit reproducible.
 *
 * Ownership: es_train() returns an es_trained that the caller frees with
 * es_trained_free(); pointers obtained from it live as long as it does.
 */
#ifndef ES_TRAIN_H
#define ES_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ES_TRAIN_MAX_LINE 1024

typedef enum es_train_mode {
	ES_TRAIN_SKIPGRAM = 0,
	ES_TRAIN_CBOW = 1,
} es_train_mode;

typedef struct es_train_params {
	es_train_mode mode;
	uint32_t dim;       /* vector size (default 100) */
	uint32_t epochs;    /* passes over the corpus (5) */
	uint32_t window;    /* max context radius (5) */
	uint32_t neg;       /* negatives per positive (5) */
	uint32_t min_count; /* drop rarer words (5) */
	int subwords;       /* 1: character n-grams (fastText), 0: words only */
	uint32_t minn;      /* shortest n-gram in characters (3) */
	uint32_t maxn;      /* longest n-gram (6); maxn < minn means none */
	uint32_t bucket;    /* n-gram hash rows (2,000,000 as fastText) */
	float lr;           /* starting learning rate (0.05) */
	float sample;       /* subsampling threshold t (1e-4) */
	float ns_exponent;  /* negatives ~ count^ns_exponent (0.75) */
	unsigned threads;   /* Hogwild workers; 0 = all CPUs */
	uint64_t seed;      /* random seed (1) */
	int center;         /* 1: subtract the mean word vector (1) */
	uint32_t drop_pcs;  /* remove this many top principal directions (1) */
} es_train_params;

/* Fill *p with the defaults listed above. */
void es_train_params_default(es_train_params *p);

/* Check params for sense (dims, ranges, memory); ES_EINVAL with a message
 * naming the bad flag otherwise. */
int es_train_params_check(const es_train_params *p, es_error *err);

/* Snapshot handed to the progress callback. */
typedef struct es_train_progress {
	double fraction;        /* 0..1 of all epochs */
	double words_per_sec_thread; /* corpus tokens / s / thread */
	double loss;            /* mean loss per prediction since last call */
	double eta_s;           /* estimated seconds left */
	double elapsed_s;
	float lr;               /* current learning rate */
	uint64_t words;         /* corpus tokens processed so far */
	int done;               /* 1 on the final call */
} es_train_progress;

/* Called from one thread about every 100 ms of training and once at the end
 * (done = 1).  Return non-zero to cancel: es_train() then returns
 * ES_ECANCELED soon after. */
typedef int (*es_train_progress_fn)(void *ctx, const es_train_progress *p);

typedef struct es_trained es_trained;

/* Train on the UTF-8 text file `path`.  Errors: ES_ENOTFOUND / ES_EIO (can't
 * read), ES_EINVAL (empty, binary or invalid UTF-8 input, no word reaching
 * min_count, bad params), ES_ENOMEM, ES_ECANCELED.  progress may be NULL. */
int es_train_file(const char *path, const es_train_params *p,
		  es_train_progress_fn progress, void *ctx, es_trained **out,
		  es_error *err);

/* Same on text in memory (len bytes). */
int es_train_text(const char *text, size_t len, const es_train_params *p,
		  es_train_progress_fn progress, void *ctx, es_trained **out,
		  es_error *err);

void es_trained_free(es_trained *t);

/* Vocabulary size; words are ordered by count, most frequent first (ties by
 * byte order), so ids are deterministic. */
size_t es_trained_vocab_size(const es_trained *t);
const char *es_trained_word(const es_trained *t, size_t id);
uint64_t es_trained_count(const es_trained *t, size_t id);
/* Tokens of the corpus counted in the vocabulary (after min_count) and in
 * total. */
uint64_t es_trained_tokens(const es_trained *t);
uint64_t es_trained_tokens_total(const es_trained *t);

/* Final word vectors, vocab_size x dim row-major: with subwords the mean of
 * the word's own row and its n-gram rows (fastText's getWordVector), else
 * the word's row.  Not normalised. */
const float *es_trained_vectors(const es_trained *t);

/* n-gram rows, bucket x dim (NULL and 0 without subwords). */
const float *es_trained_buckets(const es_trained *t, uint32_t *bucket);

/* Look a word up: its id, or -1. */
long es_trained_find(const es_trained *t, const char *word);

/* Mean loss per prediction over the first and the last ~5 % of training
 * (for tests and reports). */
void es_trained_loss(const es_trained *t, double *first, double *last);

/* Wall-clock seconds of the training loop and tokens/s/thread over it. */
double es_trained_seconds(const es_trained *t);
double es_trained_words_per_sec_thread(const es_trained *t);

/* fastText's computeSubwords() for `word` (without '<' '>'; added here)
 * under p's minn/maxn/bucket: bucket indices 0..bucket-1 into ids (at most
 * cap written), total returned; 0 without subwords.  The same rule as
 * es_model_subword_ids() (tests check they agree), usable before a model
 * with n-gram rows exists. */
size_t es_train_ngrams(const es_train_params *p, const char *word, size_t len,
		       uint32_t *ids, size_t cap);

/* Build the .esm-ready model: vocabulary with counts, final vectors,
 * n-gram rows, the training parameters as metadata ("train.*" keys) and the
 * common component computed from up to `sample_lines` lines of `text`
 * (NULL: none computed).  The trained result is left unchanged. */
struct es_model;
int es_trained_to_model(const es_trained *t, const char *text, size_t len,
			size_t sample_lines, struct es_model **out,
			es_error *err);

#endif
