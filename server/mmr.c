/*
 * mmr.c — maximal marginal relevance; see mmr.h.
 */
#include "mmr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

/* Similarity of two stored vectors under the metric: higher is closer. */
static float sim(const float *a, const float *b, es_metric metric, uint32_t dim)
{
	if (!a || !b)
		return -INFINITY;
	switch (metric) {
	case ES_METRIC_COSINE:
		return simd_cosine(a, b, dim);
	case ES_METRIC_DOT:
		return simd_dot(a, b, dim);
	case ES_METRIC_L2:
		return -sqrtf(simd_l2sq(a, b, dim));
	}
	return 0;
}

size_t api_mmr(es_point_out *hits, size_t n, size_t k, float diversity, es_metric metric,
	       uint32_t dim)
{
	if (k > n)
		k = n;
	if (k == 0 || n <= 1) {
		for (size_t i = k; i < n; i++)
			es_point_out_free(&hits[i]);
		return k;
	}
	float *maxsim = malloc(n * sizeof *maxsim);
	if (!maxsim) { /* no room to rerank: relevance order */
		for (size_t i = k; i < n; i++)
			es_point_out_free(&hits[i]);
		return k;
	}
	const float lam = 1.0f - diversity;
	/* hits[0..done) are picked; the rest are candidates.  The first pick
	 * is the most relevant: hits are best first. */
	for (size_t i = 1; i < n; i++)
		maxsim[i] = sim(hits[i].vector, hits[0].vector, metric, dim);
	for (size_t done = 1; done < k; done++) {
		size_t best = done;
		float best_v = -INFINITY;
		for (size_t i = done; i < n; i++) {
			float rel = metric == ES_METRIC_L2 ? -hits[i].score : hits[i].score;
			float red = maxsim[i] == -INFINITY ? 0 : maxsim[i];
			float v = lam * rel - diversity * red;
			if (v > best_v) {
				best_v = v;
				best = i;
			}
		}
		es_point_out tmp = hits[done];
		hits[done] = hits[best];
		hits[best] = tmp;
		float ms = maxsim[done];
		maxsim[done] = maxsim[best];
		maxsim[best] = ms;
		for (size_t i = done + 1; i < n; i++) {
			float s = sim(hits[i].vector, hits[done].vector, metric, dim);
			if (s > maxsim[i])
				maxsim[i] = s;
		}
	}
	free(maxsim);
	for (size_t i = k; i < n; i++)
		es_point_out_free(&hits[i]);
	return k;
}
