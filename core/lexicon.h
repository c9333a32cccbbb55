/*
 * lexicon.h — word relations for lexicon-informed post-processing
 * (core/retrofit): which words a lexicon says mean the same, are related,
 * or are opposites.
 *
 * File format (UTF-8 text; deploy/make-lexicon.py writes one from WordNet
 * and the mythes thesaurus):
 *
 *     # a comment line (also: empty lines)
 *     syn car auto automobile     every pair of the line's words is similar
 *     rel dog canine animal       the FIRST word is related to each other one
 *     ant hot cold                the FIRST word is the opposite of each other one
 *
 * Fields are separated by spaces or tabs; a word is any run of other bytes
 * (valid UTF-8, no control characters, at most ES_TOKEN_MAX bytes).  Each
 * line needs a kind and at least two words.  A repeated word in a line is
 * allowed (the pair of a word with itself is ignored).  Words are matched
 * against a model's vocabulary by core/retrofit (exactly, else in the
 * tokenizer's normalised form); words the model lacks are ignored there.
 * A bad line is ES_EINVAL with "NAME:LINE: what is wrong" — nothing is
 * returned.
 *
 * Ownership: es_lexicon_free() frees everything; word pointers live as long
 * as the lexicon.  Threading: a parsed lexicon is read-only and may be
 * shared.
 */
#ifndef ES_LEXICON_H
#define ES_LEXICON_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum es_lex_kind {
	ES_LEX_SYN = 0, /* clique: all pairs attract */
	ES_LEX_REL = 1, /* star: first word attracts each other (weaker) */
	ES_LEX_ANT = 2, /* star: first word repels each other */
} es_lex_kind;

#define ES_LEX_KINDS 3

typedef struct es_lexicon es_lexicon;

/* Parse text[0..len).  name (may be NULL: "lexicon") prefixes error
 * messages: "NAME:LINE: ...". */
int es_lexicon_parse(const char *text, size_t len, const char *name,
		     es_lexicon **out, es_error *err);

/* Read and parse the file at path (errors name the path). */
int es_lexicon_load(const char *path, es_lexicon **out, es_error *err);

/* Free; NULL is a no-op. */
void es_lexicon_free(es_lexicon *lx);

/* Number of relation lines (groups). */
size_t es_lexicon_groups(const es_lexicon *lx);

/* Group i: its kind, and its words (count in *n, >= 2), borrowed. */
es_lex_kind es_lexicon_group(const es_lexicon *lx, size_t i,
			     const char *const **words, size_t *n);

/* "syn", "rel", "ant". */
const char *es_lex_kind_name(es_lex_kind k);

#endif
