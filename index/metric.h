/*
 * metric.h — distance metrics shared by the exact and the HNSW index.
 *
 * Scores reported to callers are "best first":
 *   ES_METRIC_COSINE  cosine similarity in [-1, 1], higher is better
 *                     (vectors are L2-normalised on insert and query);
 *   ES_METRIC_DOT     inner product, higher is better;
 *   ES_METRIC_L2      Euclidean distance (not squared), lower is better.
 */
#ifndef ES_METRIC_H
#define ES_METRIC_H

#include <float.h>
#include <stdint.h>
#include <string.h>

/* Largest squared L2 norm of a stored or query vector: a quarter of
 * FLT_MAX, so that dot products (|a.b| <= |a||b|) and squared L2 distances
 * (|a-b|^2 <= 2|a|^2 + 2|b|^2) between any two vectors stay finite in float,
 * and so do the norms the int8 codes keep.  Components up to about 1e18
 * pass; real embeddings are many orders below.  Found by tests/fuzz
 * (fuzz_wal, fuzz_snapshot): a vector of 3e38s was accepted, its float norm
 * was inf, and the snapshot holding it could not be read back. */
#define ES_VECTOR_MAX_NORM2 ((double)FLT_MAX / 4)

typedef enum es_metric {
	ES_METRIC_COSINE = 0,
	ES_METRIC_DOT = 1,
	ES_METRIC_L2 = 2,
} es_metric;

/* One search result: the caller's label/row and its score (see above). */
typedef struct es_hit {
	uint64_t label;
	float score;
} es_hit;

static inline const char *es_metric_name(es_metric m)
{
	switch (m) {
	case ES_METRIC_COSINE: return "cosine";
	case ES_METRIC_DOT: return "dot";
	case ES_METRIC_L2: return "l2";
	}
	return "unknown";
}

/* Returns 0 and sets *out, or -1 for an unknown name. */
static inline int es_metric_parse(const char *name, es_metric *out)
{
	if (!name)
		return -1;
	if (strcmp(name, "cosine") == 0) *out = ES_METRIC_COSINE;
	else if (strcmp(name, "dot") == 0) *out = ES_METRIC_DOT;
	else if (strcmp(name, "l2") == 0 || strcmp(name, "euclid") == 0) *out = ES_METRIC_L2;
	else return -1;
	return 0;
}

#endif
