/*
 * lexical.h — the lexical (keyword) index of a collection: text analysis,
 * an inverted index of compressed postings and BM25 top-k search with
 * Block-Max WAND.
 *
 * Analysis (the same for documents and queries): the model's word tokenizer
 * (core/tokenize.h: UTF-8 words, lowercased), then optionally dropping
 * English stop words (the 33 words of Lucene's English list, see lexical.c)
 * and optionally the Snowball English stemmer (libstemmer).  A document's
 * length is the number of terms left after analysis.
 *
 * Scoring (BM25, as Lucene and most peers): for a query Q and document D,
 *   score(D, Q) = sum over distinct terms t of Q with tf(t, D) > 0 of
 *     qtf(t) * idf(t) * tf(t,D) * (k1 + 1) / (tf(t,D) + K(D)),
 *   idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5)),
 *   K(D)  = k1 * (1 - b + b * |D| / avgdl),
 * where qtf(t) is how often t occurs in the analysed query, N the number of
 * documents, df(t) the number of documents containing t and avgdl the mean
 * document length, all over the live (not deleted) documents.
 *
 * Labels are the caller's uint64 ids.  Upserting an existing label replaces
 * its document.  Deletes tombstone: the document's statistics (N, df,
 * lengths) change at once, its postings stay until a compaction rewrites
 * every posting list without the dead documents, which happens on its own
 * when the dead outnumber the live (and at least 1024 are dead), and in
 * es_lexical_compact().  Serialisation writes only the live documents.
 *
 * Threading: any number of es_lexical_search calls may run at the same
 * time; upsert, delete and compact need exclusive access (the collection's
 * write lock).  Nothing here locks.
 *
 * Ownership: the index copies what it keeps (it keeps terms, not text);
 * results go into caller-provided buffers.
 */
#ifndef ES_LEXICAL_H
#define ES_LEXICAL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "metric.h"

/* Defaults, chosen on the CISI collection (bench/lexical/cisi.py sweep: the
 * best nDCG@10 of k1 0.6..2, b 0.3..0.75, stemming and stop words on or off;
 * bench/RESULTS.md). */
#define ES_LEXICAL_DEFAULT_K1 1.2f
#define ES_LEXICAL_DEFAULT_B 0.75f
#define ES_LEXICAL_DEFAULT_STEMMING 1
#define ES_LEXICAL_DEFAULT_STOPWORDS 1
#define ES_LEXICAL_MAX_K1 10.0f

typedef struct es_lexical es_lexical;

typedef struct es_lexical_params {
	float k1;      /* term-frequency saturation, 0 .. ES_LEXICAL_MAX_K1 */
	float b;       /* length normalisation, 0 .. 1 */
	int stemming;  /* Snowball English stemmer */
	int stopwords; /* drop English stop words */
} es_lexical_params;

/* Return non-zero to accept a label as a result (as hnsw_filter_fn). */
typedef int (*es_lexical_filter_fn)(void *ctx, uint64_t label);

void es_lexical_params_default(es_lexical_params *p);

/* ES_EINVAL naming the bad field, or 0. */
int es_lexical_params_check(const es_lexical_params *p, es_error *err);

int es_lexical_new(const es_lexical_params *p, es_lexical **out, es_error *err);
void es_lexical_free(es_lexical *lx);
const es_lexical_params *es_lexical_get_params(const es_lexical *lx);

/* Index text[0..len) (UTF-8; invalid bytes separate words) under label,
 * replacing the label's previous document.  A text with no terms is still a
 * document (of length 0) that no query finds.  On error nothing changed. */
int es_lexical_upsert(es_lexical *lx, uint64_t label, const char *text,
		      size_t len, es_error *err);

/* Index a batch: texts[i] (lens[i] bytes) under labels[i], as n calls of
 * es_lexical_upsert (a NULL text is skipped), but with the postings
 * appended a term at a time (faster).  On error nothing visible changed. */
int es_lexical_upsert_batch(es_lexical *lx, const uint64_t *labels,
			    const char *const *texts, const size_t *lens,
			    size_t n, es_error *err);

/* Remove a label's document: 0, or ES_ENOTFOUND. */
int es_lexical_delete(es_lexical *lx, uint64_t label);

/* Batches that must be all or nothing (a collection's upsert): the same
 * changes, never compacting, each recording in *u how to take it back with
 * es_lexical_rollback (in reverse order, before any other change).  Call
 * es_lexical_maybe_compact once the batch stands. */
typedef struct es_lexical_undo {
	uint64_t label;
	uint32_t new_doc, old_doc; /* UINT32_MAX: none */
} es_lexical_undo;

int es_lexical_upsert_undoable(es_lexical *lx, uint64_t label,
			       const char *text, size_t len,
			       es_lexical_undo *u, es_error *err);
/* 0, or ES_ENOTFOUND (nothing to undo then: u->old_doc is none). */
int es_lexical_delete_undoable(es_lexical *lx, uint64_t label,
			       es_lexical_undo *u);
void es_lexical_rollback(es_lexical *lx, const es_lexical_undo *u);
/* Compact when the dead documents outnumber the live (best effort). */
void es_lexical_maybe_compact(es_lexical *lx);

/* The same in two steps, for writers that must not fail once they have
 * committed to a change (a collection logs its batch in between):
 * es_lexical_batch_prepare analyses the texts and reserves everything
 * applying them needs (dictionary entries for new words, room in the
 * posting lists, the documents' arrays and the label map);
 * es_lexical_batch_apply then cannot fail.  Reservations add up: several
 * batches may be prepared before any is applied, in any order, as long as
 * every change to the index goes through a batch meanwhile (deletes are
 * fine; compaction waits until no batch is out: es_lexical_compact says
 * ES_EBUSY).  es_lexical_batch_free gives back what was not applied.  All
 * three need exclusive access.  prepare: 0, ES_ENOMEM or ES_ERANGE, and
 * nothing visible changed on error. */
typedef struct es_lexical_batch es_lexical_batch;
int es_lexical_batch_prepare(es_lexical *lx, const uint64_t *labels,
			     const char *const *texts, const size_t *lens,
			     size_t n, es_lexical_batch **out, es_error *err);
/* Apply a prepared batch (once).  undo (may be NULL): n entries, by input
 * index, each taking back its document with es_lexical_rollback (in
 * reverse order); an input without text gets an entry that does nothing. */
void es_lexical_batch_apply(es_lexical *lx, es_lexical_batch *b,
			    es_lexical_undo *undo, size_t n);
void es_lexical_batch_free(es_lexical *lx, es_lexical_batch *b);

int es_lexical_contains(const es_lexical *lx, uint64_t label);
size_t es_lexical_count(const es_lexical *lx);  /* live documents */
size_t es_lexical_dead(const es_lexical *lx);   /* tombstoned, not compacted */

/* Heap bytes held by the index (dictionary, postings, block maxima,
 * per-document lengths and term lists, label map). */
size_t es_lexical_memory_bytes(const es_lexical *lx);

/* Up to k best documents for the query text, best first (ties: smaller
 * label first), into out[k]; *nout gets the count.  Scores are BM25 (above),
 * always > 0; documents without a query term are never returned.  filter
 * may be NULL.  Two plans, the same answer: Block-Max WAND (postings that
 * cannot reach the current k-th score are skipped a block at a time), or,
 * for a query of 8 or more distinct terms whose postings number at least
 * a quarter of the documents (long queries on small collections, where
 * WAND skips little and pivots a lot), one pass per term into a
 * per-document accumulator. */
int es_lexical_search(const es_lexical *lx, const char *query, size_t len,
		      uint32_t k, es_lexical_filter_fn filter, void *filter_ctx,
		      es_hit *out, size_t *nout, es_error *err);

/* The same, always with Block-Max WAND (for tests and benchmarks). */
int es_lexical_search_wand(const es_lexical *lx, const char *query, size_t len,
			   uint32_t k, es_lexical_filter_fn filter, void *filter_ctx,
			   es_hit *out, size_t *nout, es_error *err);

/* The same result by scoring every posting of every query term: the
 * reference that tests compare es_lexical_search against. */
int es_lexical_search_exhaustive(const es_lexical *lx, const char *query,
				 size_t len, uint32_t k,
				 es_lexical_filter_fn filter, void *filter_ctx,
				 es_hit *out, size_t *nout, es_error *err);

/* Pseudo-relevance feedback (RM3, Lavrenko and Croft's relevance model
 * mixed with the query, as Anserini and Lucene's query expansion): search
 * the query's top `docs` documents, weigh each term t of those documents by
 *   P(t) = sum over feedback documents D of
 *          (score(D) / sum of their scores) * tf(t, D) / |D|,
 * keep the `terms` heaviest, and search again with the query
 *   query_weight * qtf(t) / sum qtf  +  (1 - query_weight) * P(t) / sum P
 * (a term's weight multiplies its BM25 part in place of qtf).  docs 0: no
 * feedback.  Defaults chosen on the CISI collection, odd-numbered queries
 * (bench/RESULTS.md); hybrid search uses them on its lexical list. */
typedef struct es_lexical_feedback {
	uint32_t docs;      /* feedback documents, 0..ES_LEXICAL_FEEDBACK_MAX */
	uint32_t terms;     /* expansion terms, 1..ES_LEXICAL_FEEDBACK_MAX */
	float query_weight; /* 0..1 */
} es_lexical_feedback;
#define ES_LEXICAL_FEEDBACK_DOCS 5
#define ES_LEXICAL_FEEDBACK_TERMS 20
#define ES_LEXICAL_FEEDBACK_QUERY_WEIGHT 0.7f
#define ES_LEXICAL_FEEDBACK_MAX 1000
void es_lexical_feedback_default(es_lexical_feedback *fb);
/* ES_EINVAL naming the bad field, or 0. */
int es_lexical_feedback_check(const es_lexical_feedback *fb, es_error *err);
/* es_lexical_search with feedback (fb->docs 0: the same as it).  Scores
 * are BM25 with the expanded query's weights (> 0); filter applies to the
 * feedback documents and the results. */
int es_lexical_search_feedback(const es_lexical *lx, const char *query, size_t len,
			       uint32_t k, const es_lexical_feedback *fb,
			       es_lexical_filter_fn filter, void *filter_ctx,
			       es_hit *out, size_t *nout, es_error *err);

/* Rewrite the posting lists without the tombstoned documents and drop terms
 * no live document has.  On error the index is unchanged. */
int es_lexical_compact(es_lexical *lx, es_error *err);

/* Serialise the live documents into a malloc'd buffer (*out, *len; the
 * caller frees it): magic "ESLEXIDX", version, parameters, dictionary, each
 * document's label and (term, frequency) list, CRC-32C.  Byte order is
 * little-endian on every host. */
int es_lexical_serialize(const es_lexical *lx, unsigned char **out,
			 size_t *len, es_error *err);

/* Rebuild an index from es_lexical_serialize bytes.  Every byte is treated
 * as hostile: ES_ECORRUPT with the offset and what is wrong, never a crash;
 * ES_EUNSUPPORTED for a newer version. */
int es_lexical_deserialize(const unsigned char *buf, size_t len,
			   es_lexical **out, es_error *err);

/* The analysed terms of text, for tests and tools: calls fn for each term
 * (NUL-terminated, at most ES_TOKEN_MAX bytes) in order; stops early when fn
 * returns non-zero.  0 or ES_ENOMEM. */
int es_lexical_analyze(const es_lexical_params *p, const char *text,
		       size_t len, int (*fn)(void *ctx, const char *term,
					      size_t tlen),
		       void *ctx);

#endif
