/*
 * payload_index.h — a payload index on one field of a collection's points:
 * value -> the sorted set of labels whose payload holds that value there.
 *
 * Two kinds, as Qdrant's field schemas "keyword" and "integer":
 *   keyword  the string values of the field (exact bytes);
 *   integer  the integral numbers of the field (1 and 1.0 alike, within
 *            int64), plus one "other" set: points whose field holds a
 *            number that is not such an integer (2.5, 1e30).  A range term
 *            always includes that set, so a range over an integer index
 *            never misses a point that the filter itself would accept.
 * A value that is an array contributes each element (the filter's reading
 * of arrays); a point is in a value's set once however often it holds it.
 *
 * The index answers terms (es_pterm) with a SUPERSET of the points that
 * satisfy them (exact for keyword and integer equality; the "other" set
 * makes ranges a superset): callers evaluate the whole filter on every
 * candidate, so results with and without an index are the same points.
 *
 * This layer never parses a payload: the collection hands it the values
 * its payload hooks extract (es_payload_hooks.extract), under the
 * collection's write lock, in log order.  Out of memory while adding marks
 * the index broken: es_pindex_usable is then 0 and planners must ignore it
 * (it no longer holds every point); a restart rebuilds it.
 *
 * Threading: none inside; the owning collection's lock guards it (writes
 * exclusive, reads shared).  Ownership: the index copies the field and
 * every value it keeps; results (es_pindex_collect) are malloc'd arrays the
 * caller frees.
 */
#ifndef ES_PAYLOAD_INDEX_H
#define ES_PAYLOAD_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ES_PINDEX_FIELD_MAX 255 /* bytes of a field path */

typedef enum es_pindex_kind {
	ES_PINDEX_KEYWORD = 1,
	ES_PINDEX_INTEGER = 2,
} es_pindex_kind;

/* One value of a field as the payload hooks found it. */
enum {
	ES_PVAL_STR = 1, /* s, len */
	ES_PVAL_INT = 2, /* i: an integral number within int64 */
	ES_PVAL_NUM = 3, /* any other number */
};
typedef struct es_pval {
	int kind;
	const char *s;
	size_t len;
	int64_t i;
} es_pval;

/* A term of a query plan: the points whose `field` holds one of the n
 * values (keyword: strs/lens; integer: ints), or, for an integer range
 * (is_range), an integer in [lo, hi] or any "other" number. */
typedef struct es_pterm {
	const char *field;
	es_pindex_kind kind;
	size_t n;
	const char *const *strs;
	const size_t *lens;
	const int64_t *ints;
	int is_range;
	int64_t lo, hi;
} es_pterm;

/* A conjunction of terms: a point can satisfy the filter it was made from
 * only if it satisfies every term (the planner uses the terms it has an
 * index for, and evaluates the filter itself on the candidates).  exact:
 * the filter is the one term (n == 1, an equality or `any`, not a range)
 * and accepts exactly the points that satisfy it, so the candidates an
 * index gives for it need no filter evaluation. */
typedef struct es_pquery {
	const es_pterm *terms;
	size_t n;
	int exact;
} es_pquery;

typedef struct es_pindex es_pindex;

/* 0 if field is an acceptable path (1..ES_PINDEX_FIELD_MAX bytes, no
 * control characters) and kind a known one, else ES_EINVAL. */
int es_pindex_check(const char *field, int kind, es_error *err);

/* A new, empty index: 0 or ES_ENOMEM. */
int es_pindex_new(const char *field, es_pindex_kind kind, es_pindex **out);
void es_pindex_free(es_pindex *x); /* NULL is a no-op */

const char *es_pindex_field(const es_pindex *x);
es_pindex_kind es_pindex_kind_of(const es_pindex *x);
const char *es_pindex_kind_name(es_pindex_kind k); /* "keyword", "integer" */
int es_pindex_kind_parse(const char *name, es_pindex_kind *out); /* 0 or -1 */

/* Values of another kind than the index's are ignored (a keyword index
 * ignores numbers; an integer index, strings).  add: out of memory marks
 * the index broken.  remove: the (label, value) pair, if present. */
void es_pindex_add(es_pindex *x, uint64_t label, const es_pval *v);
void es_pindex_remove(es_pindex *x, uint64_t label, const es_pval *v);

/* 1 while the index holds every point's values (no allocation failed). */
int es_pindex_usable(const es_pindex *x);

/* 1 if the index can answer term t (same field and kind). */
int es_pindex_answers(const es_pindex *x, const es_pterm *t);

/* An upper bound of the labels es_pindex_collect returns for t (the sum of
 * the values' set sizes), without allocating. */
size_t es_pindex_estimate(const es_pindex *x, const es_pterm *t);

/* The labels satisfying t, sorted, each once, into a malloc'd *out (*n;
 * *out may be NULL when *n is 0): 0 or ES_ENOMEM. */
int es_pindex_collect(const es_pindex *x, const es_pterm *t, uint64_t **out, size_t *n);

/* Integer index, for order_by: the (value, label) pairs of the integers,
 * sorted by value then label (descending when desc), into a malloc'd
 * array of 2*n int64s (value, label as int64 bits).  "Other" numbers are
 * not included.  0 or ES_ENOMEM. */
int es_pindex_sorted(const es_pindex *x, int desc, int64_t **out, size_t *n);

/* How many distinct labels the index holds (labels < nlabels): the
 * "points" of Qdrant's payload_schema.  Allocates a bitmap; 0 when that
 * fails. */
size_t es_pindex_points(const es_pindex *x, size_t nlabels);

/* Heap bytes held. */
size_t es_pindex_bytes(const es_pindex *x);

#endif
