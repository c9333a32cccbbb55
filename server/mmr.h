/*
 * mmr.h — maximal marginal relevance (Carbonell & Goldstein, 1998): rerank
 * search candidates so that the results are relevant to the query and not
 * near-duplicates of each other.  Used by /v1 search ("mmr") and by the
 * Qdrant layer's query {"nearest": v, "mmr": {...}}.
 *
 * Greedy: the first pick is the most relevant candidate; each next pick
 * maximises (1 - diversity) * rel(c) - diversity * max_{s picked} sim(c, s),
 * where rel is the candidate's similarity to the query and sim the
 * collection's metric between stored vectors (cosine, dot, or minus the
 * Euclidean distance for l2), computed with the core SIMD kernels.
 * diversity 0 is plain relevance order; 1 picks for difference alone (after
 * the first).  Cost: k x n similarity evaluations of dim floats.
 *
 * Threading: pure function of its arguments.  Ownership: works in place on
 * the caller's array.
 */
#ifndef ES_MMR_H
#define ES_MMR_H

#include <stddef.h>

#include "collection.h"

#define API_MMR_DIVERSITY_DEFAULT 0.5f

/* hits[0..n): dense search results, best first, score = the metric's
 * score to the query, vector = the stored vector (NULL: treated as
 * unlike every other).  Reorders hits so that hits[0..min(k, n)) are the
 * MMR picks in pick order (scores unchanged) and frees the rest
 * (es_point_out_free).  Returns min(k, n). */
size_t api_mmr(es_point_out *hits, size_t n, size_t k, float diversity,
	       es_metric metric, uint32_t dim);

#endif
