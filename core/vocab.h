/*
 * vocab.h — word <-> id table with counts.
 *
 * Ids are dense, 0..size-1, in insertion order (every model format we read
 * stores its words most frequent first, so id order is frequency order).
 * Words are stored NUL-terminated in one blob with a u64 offset per word, and
 * found through an open-addressing hash table of u32 slots (id + 1, 0 =
 * empty) with FNV-1a 64 hashing.  The same three arrays are either owned and
 * growable (es_vocab_new / es_vocab_add) or borrowed from an mmap'ed .esm file
 * (es_vocab_view), so a large model's vocabulary is usable without building
 * anything at load time.
 *
 * Threading: lookups are reentrant; es_vocab_add/set_count need exclusive
 * access.  Ownership: es_vocab_free() frees what the vocab owns; a view never
 * frees the borrowed arrays.  Pointers from es_vocab_word() stay valid until
 * the next es_vocab_add() or es_vocab_free().
 */
#ifndef ES_VOCAB_H
#define ES_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct es_vocab es_vocab;

/* Largest vocabulary we accept (ids are u32, slot value id+1 must fit). */
#define ES_VOCAB_MAX_WORDS 0x7fffffffu

/* Empty, owned vocabulary.  NULL on allocation failure. */
es_vocab *es_vocab_new(void);

/* Free; NULL is a no-op. */
void es_vocab_free(es_vocab *v);

/* Add word[0..len) with count.  If the word is already there its count is
 * increased by `count` and *added (may be NULL) is 0; otherwise it gets the
 * next id and *added is 1.  *id (may be NULL) receives the id.  Empty words,
 * words containing NUL and a full table are ES_EINVAL / ES_ERANGE. */
int es_vocab_add(es_vocab *v, const char *word, size_t len, uint64_t count,
		 uint32_t *id, int *added, es_error *err);

/* Id of word[0..len), or -1. */
int64_t es_vocab_find(const es_vocab *v, const char *word, size_t len);

size_t es_vocab_size(const es_vocab *v);

/* NUL-terminated word of id (id < size). */
const char *es_vocab_word(const es_vocab *v, uint32_t id);
size_t es_vocab_word_len(const es_vocab *v, uint32_t id);

/* Count of id (0 when the source had no counts). */
uint64_t es_vocab_count(const es_vocab *v, uint32_t id);
void es_vocab_set_count(es_vocab *v, uint32_t id, uint64_t count);

/* Sum of all counts. */
uint64_t es_vocab_total(const es_vocab *v);

/* The hash every vocab and the .esm format use (FNV-1a 64). */
uint64_t es_vocab_hash(const char *word, size_t len);

/* Raw arrays, for the .esm writer: offs[size + 1] into blob (each word is
 * followed by a NUL that offs[i+1] counts), counts[size], slots[cap]. */
void es_vocab_arrays(const es_vocab *v, const uint64_t **offs,
		     const char **blob, const uint64_t **counts,
		     const uint32_t **slots, uint64_t *cap);

/* A vocabulary over borrowed arrays (an mmap'ed .esm).  The caller has
 * checked that offs is non-decreasing, offs[n] <= blob size, every word is
 * NUL-terminated at offs[i+1]-1, and cap is a power of two; slot contents are
 * hostile: checked once here (every word reachable by a lookup, each in one
 * slot; ES_ECORRUPT otherwise) and again on every probe.  counts may be NULL (all zero).  Lookups
 * and reads only: es_vocab_add on a view is ES_EINVAL. */
int es_vocab_view(size_t n, const uint64_t *offs, const char *blob,
		  const uint64_t *counts, const uint32_t *slots, uint64_t cap,
		  es_vocab **out, es_error *err);

#endif
