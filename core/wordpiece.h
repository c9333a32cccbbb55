/*
 * wordpiece.h — BERT's tokenizer with the same ids as Hugging Face's
 * BertTokenizer(Fast).
 *
 * Pipeline (tokenizers' BertNormalizer + BertPreTokenizer + WordPiece):
 *   1. special tokens written literally in the text ("[MASK]") are matched on
 *      the raw text first and kept whole;
 *   2. clean text: drop NUL, U+FFFD and control/format characters (Cc, Cf,
 *      Co; tab/CR/LF are whitespace), map every White_Space character to ' ';
 *   3. put spaces around CJK ideographs;
 *   4. strip accents (NFD via utf8proc, drop Mn marks) — by default exactly
 *      when lowercasing — then lowercase (full mapping: U+0130 -> "i\u0307");
 *   5. split on whitespace, and isolate each punctuation character (Unicode
 *      P* categories and every ASCII non-alphanumeric symbol);
 *   6. WordPiece: greedy longest-match-first with "##" continuations; a word
 *      longer than max_input_chars_per_word (100) characters, or one that
 *      cannot be fully covered, becomes [UNK].
 * es_wordpiece_encode() adds [CLS] ... [SEP] and truncates.
 *
 * Configuration comes from the model folder: tokenizer.json (normalizer
 * flags, WordPiece parameters, vocabulary, added tokens) when present, else
 * tokenizer_config.json (do_lower_case, strip_accents,
 * tokenize_chinese_chars) and vocab.txt.
 *
 * Threading: an opened tokenizer is immutable; calls may run concurrently.
 * Ownership: es_wordpiece_free() releases everything; token strings returned
 * by es_wordpiece_token() are borrowed; id arrays from es_wordpiece_encode()
 * are malloc'ed and owned by the caller.
 */
#ifndef ES_WORDPIECE_H
#define ES_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct es_wordpiece es_wordpiece;

typedef struct es_wordpiece_opts {
	int clean_text;           /* default 1 */
	int handle_chinese_chars; /* default 1 */
	int strip_accents;        /* -1: same as lowercase (default) */
	int lowercase;            /* default 1 */
	uint32_t max_input_chars_per_word; /* default 100 */
} es_wordpiece_opts;

/* The defaults of BertTokenizer. */
void es_wordpiece_opts_default(es_wordpiece_opts *o);

/* Load the tokenizer of a model folder (see above).  Errors name the file. */
int es_wordpiece_open(const char *dir, es_wordpiece **out, es_error *err);

/* Build from an in-memory vocabulary (id = index); specials are looked up as
 * "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]".  For tests and tools. */
int es_wordpiece_new(const char *const *vocab, size_t n,
		     const es_wordpiece_opts *opts, es_wordpiece **out,
		     es_error *err);

void es_wordpiece_free(es_wordpiece *wp);

size_t es_wordpiece_vocab_size(const es_wordpiece *wp);
/* Token string of id (NULL when out of range or a hole in the vocabulary). */
const char *es_wordpiece_token(const es_wordpiece *wp, int32_t id);
/* Id of an exact token string, or -1. */
int32_t es_wordpiece_id(const es_wordpiece *wp, const char *tok, size_t len);
int32_t es_wordpiece_unk_id(const es_wordpiece *wp);
int32_t es_wordpiece_cls_id(const es_wordpiece *wp);
int32_t es_wordpiece_sep_id(const es_wordpiece *wp);
/* 1 when id is a special/added token ([CLS], [PAD], ...). */
int es_wordpiece_is_special(const es_wordpiece *wp, int32_t id);
/* The options in effect. */
const es_wordpiece_opts *es_wordpiece_options(const es_wordpiece *wp);

/* Tokenize text (UTF-8, len bytes) without [CLS]/[SEP]: *ids (malloc'ed,
 * caller frees; may be NULL when *n is 0), *n pieces.  Invalid UTF-8 is
 * ES_EINVAL. */
int es_wordpiece_tokenize(const es_wordpiece *wp, const char *text, size_t len,
			  int32_t **ids, size_t *n, es_error *err);

/* Model input: [CLS] + pieces + [SEP], cut to max_len (>= 2) ids by dropping
 * pieces from the end (the [SEP] stays).  *total gets the length before
 * truncation (specials included).  *ids is malloc'ed, caller frees. */
int es_wordpiece_encode(const es_wordpiece *wp, const char *text, size_t len,
			uint32_t max_len, int32_t **ids, uint32_t *n,
			uint32_t *total, es_error *err);

#endif
