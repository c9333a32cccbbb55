/*
 * tokenize.h — the one word tokenizer for training and serving static
 * models.
 *
 * Rules:
 *  - input is UTF-8; invalid sequences are an error from es_utf8_valid() and
 *    are never split mid-character by the tokenizer;
 *  - lowercases ASCII and Latin-1 letters (U+00C0..U+00DE -> +0x20, except
 *    U+00D7), other characters pass through unchanged;
 *  - a word is a maximal run of letters, digits and non-ASCII characters that
 *    are not punctuation/space; an apostrophe (' or U+2019) or a hyphen between
 *    two word characters stays inside the word ("don't", "well-known");
 *    everything else separates words.
 *
 * Threading: stateless, reentrant.
 */
#ifndef ES_TOKENIZE_H
#define ES_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* Maximum bytes of one normalised token; longer words are cut at a
 * character boundary. */
#define ES_TOKEN_MAX 256

/* Return 1 if s[0..len) is valid UTF-8, else 0 and *bad_offset (if not NULL)
 * is the byte offset of the first invalid sequence. */
int es_utf8_valid(const char *s, size_t len, size_t *bad_offset);

typedef struct es_tokenizer {
	const char *s;
	size_t len;
	size_t pos;
} es_tokenizer;

void es_tokenizer_init(es_tokenizer *t, const char *s, size_t len);

/* Next normalised token into buf (NUL-terminated, at most ES_TOKEN_MAX
 * bytes + NUL; buf must hold ES_TOKEN_MAX + 1).  Returns its length, or 0 at
 * the end of the text.  *src_off / *src_len (may be NULL) give where it was
 * in the input. */
size_t es_tokenizer_next(es_tokenizer *t, char *buf, size_t *src_off,
			 size_t *src_len);

#endif
