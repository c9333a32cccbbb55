/* test_hnsw.c — HNSW recall against exact search on seeded clustered data,
 * all metrics, int8 quantisation, deletion with repair and slot reuse,
 * update, filter, save/load (identical answers, determinism, hostile
 * files), parallel build and a concurrent search/insert/delete stress. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "es_test.h"
#include "hnsw.h"
#include "threadpool.h"

/* ------------------------------------------------------------ data */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static float rng_gauss(uint64_t *s)
{
	double u1 = ((rng_next(s) >> 11) + 1.0) / 9007199254740993.0;
	double u2 = (rng_next(s) >> 11) / 9007199254740992.0;
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* n points around `nc` gaussian centres (spread 1, noise sigma). */
static float *clustered(size_t n, uint32_t d, uint32_t nc, float sigma,
			uint64_t seed)
{
	uint64_t s = seed;
	float *cent = malloc((size_t)nc * d * sizeof *cent);
	float *v = malloc(n * d * sizeof *v);
	for (size_t i = 0; i < (size_t)nc * d; i++)
		cent[i] = rng_gauss(&s);
	for (size_t i = 0; i < n; i++) {
		uint32_t c = (uint32_t)(rng_next(&s) % nc);
		for (uint32_t j = 0; j < d; j++)
			v[i * d + j] = cent[(size_t)c * d + j] + sigma * rng_gauss(&s);
	}
	free(cent);
	return v;
}

static float score(es_metric m, const float *a, const float *b, uint32_t d)
{
	double s = 0, na = 0, nb = 0;
	for (uint32_t i = 0; i < d; i++) {
		if (m == ES_METRIC_L2)
			s += (double)(a[i] - b[i]) * (a[i] - b[i]);
		else
			s += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	if (m == ES_METRIC_L2)
		return (float)-sqrt(s); /* higher is better here */
	if (m == ES_METRIC_COSINE)
		return (float)(s / sqrt(na * nb));
	return (float)s;
}

/* Exact top-k labels among rows with live[i] (NULL = all). */
static void exact_topk(es_metric m, const float *base, size_t n, uint32_t d,
		       const bool *live, const float *q, uint32_t k,
		       uint64_t *out)
{
	float *best = malloc(k * sizeof *best);
	for (uint32_t i = 0; i < k; i++) {
		best[i] = -INFINITY;
		out[i] = UINT64_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		if (live && !live[i])
			continue;
		float s = score(m, q, base + i * d, d);
		if (s <= best[k - 1])
			continue;
		uint32_t j = k - 1;
		while (j > 0 && best[j - 1] < s) {
			best[j] = best[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		best[j] = s;
		out[j] = i;
	}
	free(best);
}

/* Mean recall@k of the index over nq queries. */
static double recall(const hnsw *h, es_metric m, const float *base, size_t n,
		     uint32_t d, const bool *live, const float *qs, size_t nq,
		     uint32_t k, uint32_t ef)
{
	uint64_t *truth = malloc(k * sizeof *truth);
	es_hit *hits = malloc(k * sizeof *hits);
	size_t found = 0, total = 0;
	for (size_t qi = 0; qi < nq; qi++) {
		const float *q = qs + qi * d;
		exact_topk(m, base, n, d, live, q, k, truth);
		size_t nh;
		es_error err;
		ck_assert_int_eq(hnsw_search(h, q, k, ef, NULL, NULL, hits, &nh, &err), 0);
		for (uint32_t i = 0; i < k; i++) {
			if (truth[i] == UINT64_MAX)
				continue;
			total++;
			for (size_t j = 0; j < nh; j++)
				if (hits[j].label == truth[i]) {
					found++;
					break;
				}
		}
	}
	free(truth);
	free(hits);
	return total ? (double)found / total : 1.0;
}

static hnsw *build(es_metric m, const float *v, size_t n, uint32_t d,
		   uint32_t efc, int q8, uint64_t seed)
{
	hnsw_params p;
	hnsw_params_default(&p, d);
	p.metric = m;
	p.ef_construction = efc;
	p.quantize_int8 = q8;
	p.seed = seed;
	hnsw *h = NULL;
	es_error err;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(hnsw_add(h, i, v + i * d, &err), 0);
	ck_assert_uint_eq(hnsw_count(h), n);
	return h;
}

#define D 32
#define NQ 200

/* --------------------------------------------------------------- tests */

START_TEST(test_params)
{
	hnsw_params p;
	hnsw *h = NULL;
	es_error err;
	hnsw_params_default(&p, 0);
	ck_assert_int_eq(hnsw_new(&p, &h, &err), ES_EINVAL);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(err.msg, "dimension"));
	hnsw_params_default(&p, 8);
	p.M = 1;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), ES_EINVAL);
	p.M = HNSW_MAX_M + 1;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), ES_EINVAL);
	hnsw_params_default(&p, 8);
	p.metric = (es_metric)7;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), ES_EINVAL);
	hnsw_params_default(&p, 4);
	ck_assert_uint_eq(p.M, HNSW_DEFAULT_M);
	ck_assert_uint_eq(p.ef_construction, HNSW_DEFAULT_EF_CONSTRUCTION);
	ck_assert_int_eq(p.metric, ES_METRIC_COSINE);
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);

	/* empty index: no hits, not an error */
	float q[4] = {1, 0, 0, 0}, z[4] = {0, 0, 0, 0}, nan4[4] = {1, NAN, 0, 0};
	es_hit hits[3];
	size_t nh = 9;
	ck_assert_int_eq(hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 0);
	/* bad vectors */
	ck_assert_int_eq(hnsw_add(h, 1, z, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "zero"));
	ck_assert_int_eq(hnsw_add(h, 1, nan4, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "element 1"));
	ck_assert_uint_eq(hnsw_count(h), 0);
	ck_assert_int_eq(hnsw_search(h, nan4, 3, 10, NULL, NULL, hits, &nh, &err), ES_EINVAL);
	ck_assert_int_eq(hnsw_search(h, q, 0, 10, NULL, NULL, hits, &nh, &err), ES_EINVAL);
	ck_assert_int_eq(hnsw_delete(h, 5), ES_ENOTFOUND);
	/* one point */
	ck_assert_int_eq(hnsw_add(h, 77, q, &err), 0);
	ck_assert_int_eq(hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert_uint_eq(hits[0].label, 77);
	ck_assert_float_eq_tol(hits[0].score, 1.0f, 1e-5f);
	ck_assert(hnsw_contains(h, 77));
	ck_assert(!hnsw_contains(h, 78));
	ck_assert_int_eq(hnsw_delete(h, 77), 0);
	ck_assert_int_eq(hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 0);
	ck_assert_int_eq(hnsw_add(h, 78, q, &err), 0);
	ck_assert_int_eq(hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert_uint_eq(hits[0].label, 78);
	hnsw_free(h);
	hnsw_free(NULL);
}
END_TEST

/* The headline: 20,000 clustered vectors, recall@10 at ef 64, float and
 * int8 (within 0.01 of float at every ef, vector memory at most 30% of
 * float32), plus save/load giving identical answers. */
START_TEST(test_recall_20k_float_int8_saveload)
{
	const size_t n = 20000;
	float *v = clustered(n + NQ, D, 100, 0.35f, 1);
	float *qs = v + n * D; /* held-out queries from the same clusters */
	hnsw *h = build(ES_METRIC_COSINE, v, n, D, 100, 0, 7);
	double r = recall(h, ES_METRIC_COSINE, v, n, D, NULL, qs, NQ, 10, 64);
	fprintf(stderr, "hnsw: cosine float recall@10 ef64 = %.4f, %zu bytes\n",
		r, hnsw_memory_bytes(h));
	ck_assert(r >= 0.95);

	hnsw *q = build(ES_METRIC_COSINE, v, n, D, 100, 1, 7);
	const uint32_t efs[] = {10, 20, 40, 64, 80, 160, 320};
	for (size_t i = 0; i < sizeof efs / sizeof efs[0]; i++) {
		double rf = recall(h, ES_METRIC_COSINE, v, n, D, NULL, qs, NQ, 10, efs[i]);
		double rq = recall(q, ES_METRIC_COSINE, v, n, D, NULL, qs, NQ, 10, efs[i]);
		fprintf(stderr, "hnsw: cosine recall@10 ef%u float %.4f int8 %.4f\n",
			efs[i], rf, rq);
		ck_assert_msg(rq >= rf - 0.01, "ef %u: int8 %.4f vs float %.4f",
			      efs[i], rq, rf);
		if (efs[i] == 64)
			ck_assert(rq >= 0.95);
	}
	fprintf(stderr, "hnsw: int8 %zu heap bytes (float %zu), float store %zu bytes\n",
		hnsw_memory_bytes(q), hnsw_memory_bytes(h), hnsw_store_bytes(q));
	/* vector memory: dim + 4 bytes of 4 * dim, at most 30% */
	ck_assert_uint_eq(hnsw_vector_bytes(h), D * 4);
	ck_assert_uint_eq(hnsw_vector_bytes(q), D + 4);
	ck_assert(hnsw_vector_bytes(q) * 10 <= hnsw_vector_bytes(h) * 3);
	ck_assert(hnsw_memory_bytes(q) < hnsw_memory_bytes(h));
	/* the originals are in the file-backed store, not on the heap */
	ck_assert_uint_eq(hnsw_store_bytes(h), 0);
	ck_assert_uint_ge(hnsw_store_bytes(q), n * D * 4);
	ck_assert_uint_le(hnsw_store_bytes(q), (n + 1024) * D * 4 + 65536);
	/* get_vector returns the float original, bit for bit as the float
	 * index stores it (normalised) */
	float got[D], want[D];
	for (uint64_t l = 0; l < n; l += 997) {
		ck_assert_int_eq(hnsw_get_vector(q, l, got), 0);
		ck_assert_int_eq(hnsw_get_vector(h, l, want), 0);
		ck_assert_mem_eq(got, want, sizeof got);
	}
	/* a single-threaded int8 build walks the float originals, so it is
	 * the float build's graph: the files differ only in the int8 flag
	 * (offset 32) and the checksum */
	{
		char *fb[2];
		size_t fl[2];
		es_error err;
		for (int t = 0; t < 2; t++) {
			FILE *f = open_memstream(&fb[t], &fl[t]);
			ck_assert_int_eq(hnsw_write(t ? q : h, f, &err), 0);
			fclose(f);
		}
		ck_assert_uint_eq(fl[0], fl[1]);
		ck_assert_mem_eq(fb[0], fb[1], 32);
		ck_assert_mem_eq(fb[0] + 36, fb[1] + 36, fl[0] - 36 - 12);
		free(fb[0]);
		free(fb[1]);
	}

	/* save/load: identical answers */
	char dir[] = "/tmp/es_hnsw_XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/a.hnsw", dir);
	hnsw *idx[2] = {h, q};
	for (int t = 0; t < 2; t++) {
		es_error err;
		ck_assert_int_eq(hnsw_save(idx[t], path, &err), 0);
		hnsw *l = NULL;
		ck_assert_msg(hnsw_load(path, &l, &err) == 0, "%s", err.msg);
		ck_assert_uint_eq(hnsw_count(l), n);
		ck_assert_int_eq(hnsw_get_params(l)->quantize_int8, t);
		es_hit a[10], b[10];
		for (size_t qi = 0; qi < NQ; qi++) {
			size_t na, nb;
			ck_assert_int_eq(hnsw_search(idx[t], qs + qi * D, 10, 64, NULL, NULL, a, &na, &err), 0);
			ck_assert_int_eq(hnsw_search(l, qs + qi * D, 10, 64, NULL, NULL, b, &nb, &err), 0);
			ck_assert_uint_eq(na, nb);
			for (size_t i = 0; i < na; i++) {
				ck_assert_uint_eq(a[i].label, b[i].label);
				ck_assert(a[i].score == b[i].score);
			}
		}
		/* the file lists slots breadth-first from the entry point: the
		 * loaded index is in that order already, so writing it again
		 * gives the very same bytes, and the first slot is the entry
		 * point */
		char *fb[2];
		size_t fl[2];
		hnsw *w[2] = {idx[t], l};
		for (int i = 0; i < 2; i++) {
			FILE *f = open_memstream(&fb[i], &fl[i]);
			ck_assert_int_eq(hnsw_write(w[i], f, &err), 0);
			fclose(f);
		}
		ck_assert_uint_eq(fl[0], fl[1]);
		ck_assert_mem_eq(fb[0], fb[1], fl[0]);
		uint64_t ep_label, first_label;
		uint32_t ep_level, first_slot;
		ck_assert_int_eq(hnsw_entry_point(l, &ep_label, &ep_level), 0);
		memcpy(&first_slot, fb[0] + 60, 4);
		memcpy(&first_label, fb[0] + 80 + 8, 8);
		ck_assert_uint_eq(first_slot, 0);
		ck_assert_uint_eq(first_label, ep_label);
		free(fb[0]);
		free(fb[1]);
		hnsw_free(l);
	}
	unlink(path);
	rmdir(dir);
	hnsw_free(h);
	hnsw_free(q);
	free(v);
}
END_TEST

START_TEST(test_metrics)
{
	const size_t n = 3000;
	es_metric ms[3] = {ES_METRIC_COSINE, ES_METRIC_DOT, ES_METRIC_L2};
	float *v = clustered(n + 100, D, 40, 0.4f, 11);
	float *qs = v + n * D;
	for (int t = 0; t < 3; t++) {
		for (int q8 = 0; q8 < 2; q8++) {
			hnsw *h = build(ms[t], v, n, D, 100, q8, 3);
			double r = recall(h, ms[t], v, n, D, NULL, qs, 100, 10, 64);
			fprintf(stderr, "hnsw: %s%s recall@10 ef64 = %.4f\n",
				es_metric_name(ms[t]), q8 ? " int8" : "", r);
			ck_assert(r >= 0.95);
			/* scores are the metric's, best first */
			es_hit hits[10];
			size_t nh;
			es_error err;
			ck_assert_int_eq(hnsw_search(h, qs, 10, 64, NULL, NULL, hits, &nh, &err), 0);
			ck_assert_uint_eq(nh, 10);
			for (size_t i = 0; i < nh; i++) {
				float ex = score(ms[t], qs, v + hits[i].label * D, D);
				if (ms[t] == ES_METRIC_L2)
					ex = -ex;
				/* int8 re-ranks with the float originals:
				 * exact scores too */
				float tol = 1e-3f * (1 + fabsf(ex));
				ck_assert_float_eq_tol(hits[i].score, ex, tol);
				if (i) {
					if (ms[t] == ES_METRIC_L2)
						ck_assert(hits[i].score >= hits[i - 1].score);
					else
						ck_assert(hits[i].score <= hits[i - 1].score);
				}
			}
			hnsw_free(h);
		}
	}
	free(v);
}
END_TEST

/* Delete 30%, insert new points (reusing slots), recall on the live set
 * stays >= 0.95 and deleted labels never come back. */
START_TEST(test_delete_reinsert)
{
	const size_t n0 = 10000, nnew = 3000, n = n0 + nnew;
	float *v = clustered(n + NQ, D, 60, 0.35f, 21);
	float *qs = v + n * D;
	bool *live = calloc(n, sizeof *live);
	hnsw *h = build(ES_METRIC_COSINE, v, n0, D, 100, 0, 5);
	for (size_t i = 0; i < n0; i++)
		live[i] = true;
	uint64_t s = 99;
	size_t deleted = 0;
	while (deleted < n0 * 3 / 10) {
		size_t i = rng_next(&s) % n0;
		if (!live[i])
			continue;
		ck_assert_int_eq(hnsw_delete(h, i), 0);
		ck_assert_int_eq(hnsw_delete(h, i), ES_ENOTFOUND);
		live[i] = false;
		deleted++;
	}
	ck_assert_uint_eq(hnsw_count(h), n0 - deleted);
	size_t mem_before = hnsw_memory_bytes(h);
	es_error err;
	for (size_t i = n0; i < n; i++) {
		ck_assert_int_eq(hnsw_add(h, i, v + i * D, &err), 0);
		live[i] = true;
	}
	ck_assert_uint_eq(hnsw_count(h), n0 - deleted + nnew);
	/* the new points went into recycled slots: no growth */
	ck_assert_uint_le(hnsw_memory_bytes(h), mem_before + mem_before / 20);
	double r = recall(h, ES_METRIC_COSINE, v, n, D, live, qs, NQ, 10, 64);
	fprintf(stderr, "hnsw: recall@10 after 30%% deletes + inserts = %.4f\n", r);
	ck_assert(r >= 0.95);
	/* deleted never returned, even at large k/ef; querying with a deleted
	 * point's own vector does not return it */
	es_hit *hits = malloc(200 * sizeof *hits);
	for (size_t i = 0; i < n0; i += 7) {
		if (live[i])
			continue;
		size_t nh;
		ck_assert_int_eq(hnsw_search(h, v + i * D, 50, 200, NULL, NULL, hits, &nh, &err), 0);
		ck_assert_uint_eq(nh, 50);
		for (size_t j = 0; j < nh; j++)
			ck_assert_msg(live[hits[j].label], "deleted %llu returned",
				      (unsigned long long)hits[j].label);
		float tmp[D];
		ck_assert_int_eq(hnsw_get_vector(h, i, tmp), ES_ENOTFOUND);
	}
	free(hits);
	/* the batched getter: blocks of 64 and a tail, deleted labels not
	 * found, every found row as hnsw_get_vector copies it */
	{
		enum { NB = 200 };
		uint64_t labs[NB];
		unsigned char found[NB];
		float *rows = malloc((size_t)NB * D * sizeof *rows), one[D];
		size_t want = 0;
		for (size_t i = 0; i < NB; i++) {
			labs[i] = (i * 37) % n0;
			want += live[labs[i]];
		}
		ck_assert_uint_eq(hnsw_get_vectors(h, labs, NB, rows, found), want);
		for (size_t i = 0; i < NB; i++) {
			ck_assert_int_eq(found[i], live[labs[i]]);
			if (found[i]) {
				ck_assert_int_eq(hnsw_get_vector(h, labs[i], one), 0);
				ck_assert_mem_eq(rows + i * D, one, sizeof one);
			}
		}
		free(rows);
	}
	/* survives a save/load round trip with deletions */
	FILE *f = tmpfile();
	ck_assert_int_eq(hnsw_write(h, f, &err), 0);
	rewind(f);
	hnsw *l = NULL;
	ck_assert_msg(hnsw_read(f, &l, &err) == 0, "%s", err.msg);
	fclose(f);
	ck_assert_uint_eq(hnsw_count(l), hnsw_count(h));
	double rl = recall(l, ES_METRIC_COSINE, v, n, D, live, qs, NQ, 10, 64);
	ck_assert(fabs(rl - r) < 1e-9);
	/* delete everything, then the index still works */
	for (size_t i = 0; i < n; i++)
		if (live[i])
			ck_assert_int_eq(hnsw_delete(l, i), 0);
	ck_assert_uint_eq(hnsw_count(l), 0);
	size_t nh;
	es_hit one[1];
	ck_assert_int_eq(hnsw_search(l, qs, 1, 10, NULL, NULL, one, &nh, &err), 0);
	ck_assert_uint_eq(nh, 0);
	ck_assert_int_eq(hnsw_add(l, 5, v, &err), 0);
	ck_assert_int_eq(hnsw_search(l, qs, 1, 10, NULL, NULL, one, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert_uint_eq(one[0].label, 5);
	hnsw_free(l);
	hnsw_free(h);
	free(live);
	free(v);
}
END_TEST

START_TEST(test_update)
{
	const size_t n = 3000;
	float *v = clustered(n + 1, D, 30, 0.4f, 31);
	hnsw *h = build(ES_METRIC_L2, v, n, D, 100, 0, 1);
	es_error err;
	/* move label 10 onto the spare vector */
	ck_assert_int_eq(hnsw_add(h, 10, v + n * D, &err), 0);
	ck_assert_uint_eq(hnsw_count(h), n);
	float got[D];
	ck_assert_int_eq(hnsw_get_vector(h, 10, got), 0);
	ck_assert_mem_eq(got, v + n * D, sizeof got);
	es_hit hits[5];
	size_t nh;
	ck_assert_int_eq(hnsw_search(h, v + n * D, 5, 64, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(hits[0].label, 10);
	ck_assert_float_eq_tol(hits[0].score, 0.0f, 1e-4f);
	/* the old vector no longer finds label 10 at distance 0 */
	ck_assert_int_eq(hnsw_search(h, v + 10 * D, 5, 64, NULL, NULL, hits, &nh, &err), 0);
	for (size_t i = 0; i < nh; i++)
		ck_assert(hits[i].label != 10 || hits[i].score > 1e-3f);
	/* every label appears at most once in large result sets */
	es_hit *big = malloc(300 * sizeof *big);
	ck_assert_int_eq(hnsw_search(h, v + n * D, 300, 300, NULL, NULL, big, &nh, &err), 0);
	for (size_t i = 0; i < nh; i++)
		for (size_t j = i + 1; j < nh; j++)
			ck_assert(big[i].label != big[j].label);
	free(big);
	hnsw_free(h);
	free(v);
}
END_TEST

static int even_only(void *ctx, uint64_t label)
{
	(*(int *)ctx)++;
	return (label & 1) == 0;
}

START_TEST(test_filter)
{
	const size_t n = 4000;
	float *v = clustered(n, D, 30, 0.4f, 41);
	hnsw *h = build(ES_METRIC_DOT, v, n, D, 100, 0, 1);
	bool *live = malloc(n * sizeof *live);
	for (size_t i = 0; i < n; i++)
		live[i] = (i & 1) == 0;
	es_hit hits[10];
	uint64_t truth[10];
	size_t found = 0;
	for (int qi = 0; qi < 50; qi++) {
		size_t nh;
		int calls = 0;
		es_error err;
		const float *q = v + (size_t)(qi * 31 + 1) * D;
		ck_assert_int_eq(hnsw_search(h, q, 10, 64, even_only, &calls, hits, &nh, &err), 0);
		ck_assert_uint_eq(nh, 10);
		ck_assert_int_gt(calls, 0);
		exact_topk(ES_METRIC_DOT, v, n, D, live, q, 10, truth);
		for (size_t i = 0; i < nh; i++) {
			ck_assert_uint_eq(hits[i].label & 1, 0);
			for (int j = 0; j < 10; j++)
				if (truth[j] == hits[i].label)
					found++;
		}
	}
	ck_assert(found >= 0.95 * 500);
	free(live);
	hnsw_free(h);
	free(v);
}
END_TEST

/* Parallel build through the pool reaches the same recall, and a
 * single-thread build is deterministic for a seed. */
START_TEST(test_batch_and_determinism)
{
	const size_t n = 10000;
	float *v = clustered(n + NQ, D, 60, 0.35f, 51);
	float *qs = v + n * D;
	uint64_t *labels = malloc(n * sizeof *labels);
	for (size_t i = 0; i < n; i++)
		labels[i] = i;
	es_pool *pool = es_pool_new(3);
	hnsw_params p;
	hnsw_params_default(&p, D);
	p.ef_construction = 100;
	hnsw *h = NULL;
	es_error err;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
	ck_assert_int_eq(hnsw_add_batch(h, labels, v, n, pool, &err), 0);
	ck_assert_uint_eq(hnsw_count(h), n);
	double r = recall(h, ES_METRIC_COSINE, v, n, D, NULL, qs, NQ, 10, 64);
	fprintf(stderr, "hnsw: parallel build recall@10 ef64 = %.4f\n", r);
	ck_assert(r >= 0.95);
	/* a bad row fails the batch with its row number */
	float bad[2 * D];
	memcpy(bad, v, sizeof bad);
	bad[D + 3] = INFINITY;
	uint64_t bl[2] = {n + 1, n + 2};
	ck_assert_int_eq(hnsw_add_batch(h, bl, bad, 2, pool, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "row 1"));
	hnsw_free(h);

	/* determinism: same seed, same bytes */
	char *buf[2];
	size_t len[2];
	for (int t = 0; t < 2; t++) {
		hnsw *d = build(ES_METRIC_COSINE, v, 2000, D, 64, 0, 1234);
		FILE *f = open_memstream(&buf[t], &len[t]);
		ck_assert_int_eq(hnsw_write(d, f, &err), 0);
		fclose(f);
		hnsw_free(d);
	}
	ck_assert_uint_eq(len[0], len[1]);
	ck_assert_mem_eq(buf[0], buf[1], len[0]);
	free(buf[0]);
	free(buf[1]);
	es_pool_free(pool);
	free(labels);
	free(v);
}
END_TEST

static int read_buf(const char *buf, size_t len, hnsw **out, es_error *err)
{
	FILE *f = fmemopen((void *)buf, len ? len : 1, "rb");
	if (len == 0) {
		fgetc(f); /* empty stream */
	}
	int rc = hnsw_read(f, out, err);
	fclose(f);
	return rc;
}

/* A graph built by 3 threads (pending nodes too: the collection's path)
 * answers as well as one built by one thread, within noise. */
START_TEST(test_parallel_recall_matches_serial)
{
	const size_t n = 8000;
	float *v = clustered(n + NQ, D, 60, 0.35f, 52);
	float *qs = v + n * D;
	uint64_t *labels = malloc(n * sizeof *labels);
	for (size_t i = 0; i < n; i++)
		labels[i] = i;
	hnsw *serial = build(ES_METRIC_COSINE, v, n, D, 100, 0, 9);
	double rs = recall(serial, ES_METRIC_COSINE, v, n, D, NULL, qs, NQ, 10, 12);
	hnsw_free(serial);
	es_pool *pool = es_pool_new(3);
	hnsw_params p;
	hnsw_params_default(&p, D);
	p.ef_construction = 100;
	p.seed = 9;
	for (int pend = 0; pend < 2; pend++) {
		hnsw *h = NULL;
		es_error err;
		ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
		if (pend) {
			/* in batches of 500, as REST writers send them */
			for (size_t off = 0; off < n; off += 500) {
				ck_assert_int_eq(hnsw_add_pending_batch(h, labels + off, v + off * D,
									500, pool, &err), 0);
				for (size_t i = off; i < off + 500; i++)
					ck_assert_int_eq(hnsw_publish(h, i), 0);
			}
		} else {
			ck_assert_int_eq(hnsw_add_batch(h, labels, v, n, pool, &err), 0);
		}
		double rp = recall(h, ES_METRIC_COSINE, v, n, D, NULL, qs, NQ, 10, 12);
		fprintf(stderr, "hnsw: recall@10 ef12 serial %.4f, parallel%s %.4f\n", rs,
			pend ? " (pending, batches)" : "", rp);
		ck_assert(rp >= rs - 0.02);
		hnsw_free(h);
	}
	es_pool_free(pool);
	free(labels);
	free(v);
}
END_TEST

/* Pending nodes: walked through, never returned, until published; a file
 * holds them as deleted slots (also when one is the entry point). */
START_TEST(test_pending)
{
	const size_t n = 400;
	float *v = clustered(n, D, 10, 0.4f, 53);
	hnsw_params p;
	hnsw_params_default(&p, D);
	hnsw *h = NULL;
	es_error err;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(hnsw_add_pending(h, i, v + i * D, &err), 0);
	es_hit hits[10];
	size_t nh;
	ck_assert_int_eq(hnsw_search(h, v, 10, 64, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(nh, 0);
	/* the file: every pending node a deleted slot, the entry point too */
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(hnsw_write(h, f, &err), 0);
	fclose(f);
	hnsw *e = NULL;
	ck_assert_int_eq(read_buf(buf, len, &e, &err), 0);
	ck_assert_uint_eq(hnsw_count(e), 0);
	hnsw_free(e);
	free(buf);
	/* publish half (one by one, and in a batch of more than one run of
	 * 64 with an unknown label among them): only those come back, and
	 * the graph built from pending nodes finds them */
	uint64_t batch[n / 4 + 2];
	size_t nb = 0;
	for (size_t i = 0; i < n; i += 2) {
		if (i % 4 == 0)
			ck_assert_int_eq(hnsw_publish(h, i), 0);
		else
			batch[nb++] = i;
		if (nb == 40)
			batch[nb++] = n + 7;
	}
	ck_assert_int_eq(hnsw_publish_batch(h, batch, nb), ES_ENOTFOUND);
	ck_assert_int_eq(hnsw_publish_batch(h, batch, 40), 0);
	ck_assert_int_eq(hnsw_publish(h, n + 5), ES_ENOTFOUND);
	size_t self = 0;
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(hnsw_search(h, v + i * D, 10, 64, NULL, NULL, hits, &nh, &err), 0);
		for (size_t j = 0; j < nh; j++)
			ck_assert_uint_eq(hits[j].label % 2, 0);
		self += nh && hits[0].label == i;
	}
	ck_assert_uint_ge(self, n / 2 - 2);
	f = open_memstream(&buf, &len);
	ck_assert_int_eq(hnsw_write(h, f, &err), 0);
	fclose(f);
	ck_assert_int_eq(read_buf(buf, len, &e, &err), 0);
	ck_assert_uint_eq(hnsw_count(e), n / 2);
	ck_assert_int_eq(hnsw_search(e, v + 2 * D, 10, 64, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(hits[0].label, 2);
	hnsw_free(e);
	free(buf);
	hnsw_free(h);
	free(v);
}
END_TEST


/* Patch a u32 at off and fix the CRC, so structural checks (not just the
 * checksum) are exercised. */
static void patch_u32(char *buf, size_t len, size_t off, uint32_t val)
{
	memcpy(buf + off, &val, 4);
	uint32_t crc = crc32c(0, buf, len - 12);
	memcpy(buf + len - 12, &crc, 4);
}

/* test_hostile_files' steps, each on one written file (buf, len) of an
 * index h: every truncation fails ... */
static void hostile_truncations(const char *buf, size_t len)
{
	es_error err;
	hnsw *l;
	for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 7)) {
		l = NULL;
		int rc = read_buf(buf, cut, &l, &err);
		ck_assert_int_eq(rc, ES_ECORRUPT);
		ck_assert_ptr_null(l);
	}
	ck_assert_int_eq(read_buf(buf, len - 1, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
}

/* ... every single-byte corruption is caught (CRC at the least) ... */
static void hostile_flips(const char *buf, size_t len)
{
	es_error err;
	hnsw *l;
	char *c = malloc(len);
	for (size_t off = 0; off < len; off += (off < 200 ? 1 : 5)) {
		memcpy(c, buf, len);
		c[off] ^= (char)(1 + off % 251);
		l = NULL;
		int rc = read_buf(c, len, &l, &err);
		ck_assert_msg(rc == ES_ECORRUPT || rc == ES_EUNSUPPORTED,
			      "offset %zu: rc %d", off, rc);
		ck_assert_ptr_null(l);
	}
	free(c);
}

/* ... structural checks behind a valid checksum ... */
static void hostile_structure(const char *buf, size_t len)
{
	es_error err;
	hnsw *l = NULL;
	char *c = malloc(len);
	struct {
		size_t off;
		uint32_t val;
		const char *msg;
	} cases[] = {
		{8, 4, "version"},
		{16, 0, "dimension"},
		{20, 9, "metric"},
		{24, 1000, "M"},
		{36, 4, "vector size"},
		{56, 0xffffffffu, "slot count"},
		{60, 299, "entry"},
		{64, 99, "level"},
	};
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		memcpy(c, buf, len);
		patch_u32(c, len, cases[t].off, cases[t].val);
		l = NULL;
		int rc = read_buf(c, len, &l, &err);
		ck_assert_msg(rc < 0, "case %zu accepted", t);
		ck_assert_msg(strstr(err.msg, cases[t].msg), "case %zu: %s",
			      t, err.msg);
	}
	/* the first slot (live: files list slots breadth-first from
	 * the entry point, deleted ones last): level huge; link out
	 * of range */
	size_t slot1 = 80;
	memcpy(c, buf, len);
	patch_u32(c, len, slot1 + 4, 1000);
	ck_assert_int_eq(read_buf(c, len, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "level"));
	/* a vector element that is not finite */
	memcpy(c, buf, len);
	patch_u32(c, len, slot1 + 16 + 4 * 3, 0x7fc00000u);
	ck_assert_int_eq(read_buf(c, len, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "element 3"));
	/* the file holds the float originals, also under int8 */
	size_t cnt0 = slot1 + 16 + 8 * 4;
	uint32_t cnt;
	memcpy(&cnt, buf + cnt0, 4);
	ck_assert_uint_gt(cnt, 0);
	memcpy(c, buf, len);
	patch_u32(c, len, cnt0 + 4, 5000);
	ck_assert_int_eq(read_buf(c, len, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
	memcpy(c, buf, len);
	patch_u32(c, len, cnt0, 1000);
	ck_assert_int_eq(read_buf(c, len, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "links"));
	/* duplicate label: give the first slot the label of
	 * another live one */
	uint32_t lab1;
	memcpy(&lab1, buf + slot1 + 8, 4);
	memcpy(c, buf, len);
	patch_u32(c, len, slot1 + 8, lab1 == 2 ? 3 : 2);
	ck_assert_int_eq(read_buf(c, len, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "label"));
	free(c);
}

/* ... two indexes back to back in one stream read one after the other ... */
static void hostile_stream(hnsw *h)
{
	es_error err;
	FILE *f = tmpfile();
	ck_assert_int_eq(hnsw_write(h, f, &err), 0);
	ck_assert_int_eq(hnsw_write(h, f, &err), 0);
	fputs("tail", f);
	rewind(f);
	hnsw *a = NULL, *b = NULL;
	ck_assert_int_eq(hnsw_read(f, &a, &err), 0);
	ck_assert_int_eq(hnsw_read(f, &b, &err), 0);
	char tail[5] = {0};
	ck_assert_uint_eq(fread(tail, 1, 4, f), 4);
	ck_assert_str_eq(tail, "tail");
	fclose(f);
	ck_assert_uint_eq(hnsw_count(a), hnsw_count(h));
	ck_assert_uint_eq(hnsw_count(b), hnsw_count(h));
	hnsw_free(a);
	hnsw_free(b);
}

/* ... and files: missing, trailing garbage. */
static void hostile_load_files(const char *buf, size_t len)
{
	es_error err;
	hnsw *l;
	ck_assert_int_eq(hnsw_load("/nonexistent/x.hnsw", &l, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/x.hnsw"));
	char path[] = "/tmp/es_hnsw_badXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	ck_assert_int_eq(hnsw_load(path, &l, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	unlink(path);
}

START_TEST(test_hostile_files)
{
	float *v = clustered(300, 8, 5, 0.3f, 61);
	for (int q8 = 0; q8 < 2; q8++) {
		hnsw *h = build(ES_METRIC_L2, v, 300, 8, 32, q8, 1);
		for (uint64_t i = 0; i < 300; i += 10)
			hnsw_delete(h, i);
		char *buf;
		size_t len;
		es_error err;
		FILE *f = open_memstream(&buf, &len);
		ck_assert_int_eq(hnsw_write(h, f, &err), 0);
		fclose(f);
		hnsw *l = NULL;
		ck_assert_int_eq(read_buf(buf, len, &l, &err), 0);
		hnsw_free(l);
		hostile_truncations(buf, len);
		hostile_flips(buf, len);
		hostile_structure(buf, len);
		hostile_stream(h);
		hostile_load_files(buf, len);
		free(buf);
		hnsw_free(h);
	}
	free(v);
}
END_TEST


/* Rewrite a current (version 3) file (buf, len) of dimension d as version 1: same
 * layout for float32; under int8 version 1 held [f32 scale | f32 norm2 |
 * codes, padded to 4] instead of the float original. */
static char *to_v1(const char *buf, size_t len, uint32_t d, int q8,
		   size_t *olen)
{
	size_t vb1 = q8 ? (d + 8 + 3) / 4 * 4 : (size_t)d * 4;
	char *o = malloc(len * 2 + 64);
	size_t w = 0, r = 80;
	memcpy(o, buf, 80);
	uint32_t ver = 1, vb = (uint32_t)vb1, n;
	memcpy(o + 8, &ver, 4);
	memcpy(o + 36, &vb, 4);
	memcpy(&n, buf + 56, 4);
	w = 80;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t fl, lvl, c;
		memcpy(&fl, buf + r, 4);
		memcpy(o + w, buf + r, 4);
		r += 4, w += 4;
		if (fl)
			continue;
		memcpy(&lvl, buf + r, 4);
		memcpy(o + w, buf + r, 12); /* level, label */
		r += 12, w += 12;
		const float *x = (const float *)(buf + r);
		if (!q8) {
			memcpy(o + w, x, vb1);
		} else {
			float mx = 0, n2 = 0;
			for (uint32_t j = 0; j < d; j++) {
				mx = fabsf(x[j]) > mx ? fabsf(x[j]) : mx;
				n2 += x[j] * x[j];
			}
			float sc = mx / 127.0f;
			memset(o + w, 0, vb1);
			memcpy(o + w, &sc, 4);
			memcpy(o + w + 4, &n2, 4);
			for (uint32_t j = 0; j < d; j++)
				o[w + 8 + j] = (char)(int8_t)nearbyintf(x[j] / sc);
		}
		r += (size_t)d * 4, w += vb1;
		for (uint32_t l = 0; l <= lvl; l++) {
			memcpy(&c, buf + r, 4);
			memcpy(o + w, buf + r, 4 + (size_t)c * 4);
			r += 4 + (size_t)c * 4, w += 4 + (size_t)c * 4;
		}
	}
	ck_assert_uint_eq(r, len - 12);
	uint32_t crc = es_crc32_ieee(0, o, w); /* version 1 used CRC-32 */
	memcpy(o + w, &crc, 4);
	memcpy(o + w + 4, "HNSWEND\n", 8);
	*olen = w + 12;
	return o;
}

/* Files of version 1 (int8 held codes only) still load: float32 ones
 * answer exactly as before; int8 ones carry the dequantised vectors as
 * their floats. */
START_TEST(test_read_version1)
{
	const size_t n = 2000;
	float *v = clustered(n + 50, D, 20, 0.4f, 81);
	for (int q8 = 0; q8 < 2; q8++) {
		hnsw *h = build(ES_METRIC_L2, v, n, D, 64, q8, 3);
		for (uint64_t i = 0; i < n; i += 9)
			ck_assert_int_eq(hnsw_delete(h, i), 0);
		char *buf;
		size_t len, len1;
		es_error err;
		FILE *f = open_memstream(&buf, &len);
		ck_assert_int_eq(hnsw_write(h, f, &err), 0);
		fclose(f);
		char *b1 = to_v1(buf, len, D, q8, &len1);
		hnsw *l = NULL;
		ck_assert_msg(read_buf(b1, len1, &l, &err) == 0, "%s", err.msg);
		ck_assert_uint_eq(hnsw_count(l), hnsw_count(h));
		float a[D], b[D];
		for (uint64_t i = 1; i < n; i += 9) {
			ck_assert_int_eq(hnsw_get_vector(h, i, a), 0);
			ck_assert_int_eq(hnsw_get_vector(l, i, b), 0);
			float mx = 0;
			for (int j = 0; j < D; j++)
				mx = fabsf(a[j]) > mx ? fabsf(a[j]) : mx;
			if (!q8)
				ck_assert_mem_eq(a, b, sizeof a);
			for (int j = 0; q8 && j < D; j++)
				ck_assert_float_eq_tol(b[j], a[j], mx / 254 * 1.001f);
		}
		double r0 = recall(h, ES_METRIC_L2, v, n, D, NULL, v + n * D, 50, 10, 64);
		double r1 = recall(l, ES_METRIC_L2, v, n, D, NULL, v + n * D, 50, 10, 64);
		if (!q8)
			ck_assert(r0 == r1);
		else
			ck_assert(r1 >= r0 - 0.05);
		/* a version 1 int8 file with a bad scale is refused */
		if (q8) {
			size_t first_live = 80 + 4 + 4 + 12; /* slot 0 deleted */
			float bad = -1.0f;
			memcpy(b1 + first_live, &bad, 4);
			uint32_t crc = es_crc32_ieee(0, b1, len1 - 12);
			memcpy(b1 + len1 - 12, &crc, 4);
			hnsw *x = NULL;
			ck_assert_int_eq(read_buf(b1, len1, &x, &err), ES_ECORRUPT);
			ck_assert_ptr_nonnull(strstr(err.msg, "scale"));
		}
		free(b1);
		free(buf);
		hnsw_free(l);
		hnsw_free(h);
	}
	free(v);
}
END_TEST

/* Bytes of hnsw_write for the index in file path (loaded with hnsw_load). */
static char *rewrite(const char *path, size_t *len)
{
	hnsw *h = NULL;
	es_error err;
	ck_assert_msg(hnsw_load(path, &h, &err) == 0, "%s: %s", path, err.msg);
	char *buf;
	FILE *f = open_memstream(&buf, len);
	ck_assert_int_eq(hnsw_write(h, f, &err), 0);
	fclose(f);
	hnsw_free(h);
	return buf;
}

/* Version 2 files (CRC-32, written by the build before version 3; kept in
 * the fuzz corpus as *-v2.hnsw) load to exactly the index that today's
 * make_corpus writes from the same data: the two rewrite byte for byte.
 * A version 2 file with a CRC-32C instead (or a version 3 file with a
 * CRC-32) is refused. */
START_TEST(test_read_version2)
{
	static const char *names[] = {"cos-d4-n30", "dot-d3-n6", "empty-d2",
				      "l2-int8-d8-n20-del"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char rel[256], p2[1024], p3[1024];
		snprintf(rel, sizeof rel, "tests/fuzz/corpus/hnsw/%s-v2.hnsw", names[i]);
		es_test_path(p2, sizeof p2, rel);
		snprintf(rel, sizeof rel, "tests/fuzz/corpus/hnsw/%s.hnsw", names[i]);
		es_test_path(p3, sizeof p3, rel);
		size_t l2, l3;
		char *b2 = rewrite(p2, &l2), *b3 = rewrite(p3, &l3);
		ck_assert_uint_eq(l2, l3);
		ck_assert_mem_eq(b2, b3, l2);
		uint32_t ver;
		memcpy(&ver, b3 + 8, 4);
		ck_assert_uint_eq(ver, 3);
		/* the checksum goes with the version */
		hnsw *x = NULL;
		es_error err;
		ver = 2;
		memcpy(b3 + 8, &ver, 4);
		uint32_t crc = crc32c(0, b3, l3 - 12);
		memcpy(b3 + l3 - 12, &crc, 4);
		ck_assert_int_eq(read_buf(b3, l3, &x, &err), ES_ECORRUPT);
		ck_assert_ptr_nonnull(strstr(err.msg, "checksum"));
		crc = es_crc32_ieee(0, b3, l3 - 12);
		memcpy(b3 + l3 - 12, &crc, 4);
		ck_assert_msg(read_buf(b3, l3, &x, &err) == 0, "%s", err.msg);
		hnsw_free(x);
		ver = 3;
		memcpy(b3 + 8, &ver, 4);
		ck_assert_int_eq(read_buf(b3, l3, &x, &err), ES_ECORRUPT);
		free(b2);
		free(b3);
	}
}
END_TEST

/* Deleting the entry point picks a live node of the highest level from its
 * own links, without scanning every slot; the result stays valid (a
 * save/load round trip checks the entry point has the highest level). */
START_TEST(test_delete_entry_point)
{
	const size_t n = 5000;
	float *v = clustered(n + NQ, D, 40, 0.4f, 91);
	hnsw *h = build(ES_METRIC_COSINE, v, n, D, 64, 0, 11);
	bool *live = malloc(n * sizeof *live);
	for (size_t i = 0; i < n; i++)
		live[i] = true;
	uint64_t lab;
	uint32_t lvl, prev = UINT32_MAX;
	es_error err;
	size_t ep_deletes = 0;
	for (int round = 0; round < 300; round++) {
		ck_assert_int_eq(hnsw_entry_point(h, &lab, &lvl), 0);
		ck_assert(live[lab]);
		ck_assert_uint_le(lvl, prev);
		prev = lvl;
		ck_assert_int_eq(hnsw_delete(h, lab), 0);
		live[lab] = false;
		ep_deletes++;
		if (round % 50 == 0) {
			char *buf;
			size_t len;
			FILE *f = open_memstream(&buf, &len);
			ck_assert_int_eq(hnsw_write(h, f, &err), 0);
			fclose(f);
			hnsw *l = NULL;
			ck_assert_msg(read_buf(buf, len, &l, &err) == 0, "%s", err.msg);
			hnsw_free(l);
			free(buf);
		}
	}
	fprintf(stderr, "hnsw: %zu entry point deletions, %zu full scans, top level now %u\n",
		ep_deletes, hnsw_ep_scans(h), prev);
	ck_assert_uint_le(hnsw_ep_scans(h), ep_deletes / 20);
	double r = recall(h, ES_METRIC_COSINE, v, n, D, live, v + n * D, NQ, 10, 64);
	fprintf(stderr, "hnsw: recall@10 after deleting 300 entry points = %.4f\n", r);
	ck_assert(r >= 0.95);
	/* down to one point and to none */
	for (size_t i = 0; i < n; i++)
		if (live[i] && i != 17)
			ck_assert_int_eq(hnsw_delete(h, i), 0);
	ck_assert_int_eq(hnsw_entry_point(h, &lab, &lvl), 0);
	ck_assert_uint_eq(lab, 17);
	ck_assert_int_eq(hnsw_delete(h, 17), 0);
	ck_assert_int_eq(hnsw_entry_point(h, &lab, &lvl), ES_ENOTFOUND);
	free(live);
	hnsw_free(h);
	free(v);
}
END_TEST

/* The int8 float store: an unnamed file in float_dir (or $TMPDIR); a
 * directory that cannot hold it is a clear error, not a crash. */
START_TEST(test_float_store_dir)
{
	char dir[] = "/tmp/es_hnsw_fsXXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	hnsw_params p;
	hnsw_params_default(&p, D);
	p.quantize_int8 = 1;
	p.float_dir = dir;
	hnsw *h = NULL;
	es_error err;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
	ck_assert_ptr_ne(hnsw_get_params(h)->float_dir, dir); /* copied */
	ck_assert_str_eq(hnsw_get_params(h)->float_dir, dir);
	float *v = clustered(1500, D, 10, 0.4f, 5);
	for (size_t i = 0; i < 1500; i++)
		ck_assert_int_eq(hnsw_add(h, i, v + i * D, &err), 0);
	ck_assert_uint_ge(hnsw_store_bytes(h), 1500 * D * 4);
	/* the file has no name: the directory is empty (rmdir works) */
	ck_assert_int_eq(rmdir(dir), 0);
	es_hit hits[5];
	size_t nh;
	ck_assert_int_eq(hnsw_search(h, v + 7 * D, 5, 32, NULL, NULL, hits, &nh, &err), 0);
	ck_assert_uint_eq(hits[0].label, 7);
	hnsw_free(h);

	p.float_dir = "/nonexistent/dir";
	h = NULL;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), ES_EIO);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/dir"));
	/* a float index keeps no store and ignores the directory */
	p.quantize_int8 = 0;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
	ck_assert_ptr_null(hnsw_get_params(h)->float_dir);
	hnsw_free(h);
	/* TMPDIR is the default */
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TMPDIR", "/nonexistent/tmpdir", 1);
	p.quantize_int8 = 1;
	p.float_dir = NULL;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), ES_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/tmpdir"));
	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	free(v);
}
END_TEST

/* ------------------------------------------------------ concurrency */

typedef struct stress {
	hnsw *h;
	const float *v;
	size_t n;
	_Atomic int stop;
	_Atomic int bad;
	_Atomic unsigned char *state; /* 0 absent, 1 live, 2 being changed */
	_Atomic long searches, adds, dels;
} stress;

static void *searcher(void *arg)
{
	stress *s = arg;
	uint64_t r = (uint64_t)(uintptr_t)&r;
	es_hit hits[10];
	while (!atomic_load(&s->stop)) {
		size_t qi = rng_next(&r) % s->n;
		size_t nh;
		es_error err;
		if (hnsw_search(s->h, s->v + qi * D, 10, 32, NULL, NULL, hits, &nh, &err) != 0)
			atomic_store(&s->bad, 1);
		for (size_t i = 0; i < nh; i++) {
			/* a label that is absent for good must not come back */
			if (hits[i].label >= s->n)
				atomic_store(&s->bad, 2);
		}
		atomic_fetch_add(&s->searches, 1);
	}
	return NULL;
}

static void *writer(void *arg)
{
	stress *s = arg;
	uint64_t r = (uint64_t)(uintptr_t)&r;
	while (!atomic_load(&s->stop)) {
		size_t i = rng_next(&r) % s->n;
		unsigned char exp = atomic_load(&s->state[i]);
		if (exp == 2 || !atomic_compare_exchange_strong(&s->state[i], &exp, 2))
			continue;
		es_error err;
		if (exp == 1 && (rng_next(&r) & 1)) {
			if (hnsw_delete(s->h, i) != 0)
				atomic_store(&s->bad, 3);
			atomic_store(&s->state[i], 0);
			atomic_fetch_add(&s->dels, 1);
		} else if (rng_next(&r) & 1) {
			if (hnsw_add(s->h, i, s->v + i * D, &err) != 0)
				atomic_store(&s->bad, 4);
			atomic_store(&s->state[i], 1);
			atomic_fetch_add(&s->adds, 1);
		} else {
			/* the collection's two-phase insert: pending, then
			 * published (searchers never see it in between) */
			if (hnsw_add_pending(s->h, i, s->v + i * D, &err) != 0 ||
			    hnsw_publish(s->h, i) != 0)
				atomic_store(&s->bad, 5);
			atomic_store(&s->state[i], 1);
			atomic_fetch_add(&s->adds, 1);
		}
	}
	return NULL;
}

/* _i: 0 float32, 1 int8 (inserts append to the float store while
 * searches re-rank from it) */
START_TEST(test_concurrent_stress)
{
	const size_t n = getenv("ES_SANITIZED") ? 3000 : 6000;
	float *v = clustered(n, D, 30, 0.4f, 71);
	stress s = {0};
	s.v = v;
	s.n = n;
	s.state = calloc(n, 1);
	hnsw_params p;
	hnsw_params_default(&p, D);
	p.ef_construction = 64;
	p.quantize_int8 = _i;
	es_error err;
	ck_assert_int_eq(hnsw_new(&p, &s.h, &err), 0);
	for (size_t i = 0; i < n / 2; i++) {
		ck_assert_int_eq(hnsw_add(s.h, i, v + i * D, &err), 0);
		s.state[i] = 1;
	}
	pthread_t th[5];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, searcher, &s);
	for (int i = 2; i < 5; i++)
		pthread_create(&th[i], NULL, writer, &s);
	usleep(getenv("ES_SANITIZED") ? 2000000 : 1000000);
	atomic_store(&s.stop, 1);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "hnsw stress%s: %ld searches, %ld adds, %ld deletes\n",
		_i ? " int8" : "", (long)s.searches, (long)s.adds, (long)s.dels);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_int_gt(s.searches, 0);
	ck_assert_int_gt(s.dels, 0);
	/* afterwards: count matches, deleted never returned, recall holds */
	size_t live = 0;
	bool *lv = malloc(n * sizeof *lv);
	for (size_t i = 0; i < n; i++) {
		lv[i] = s.state[i] == 1;
		live += lv[i];
		ck_assert_int_eq(hnsw_contains(s.h, i), lv[i]);
	}
	ck_assert_uint_eq(hnsw_count(s.h), live);
	es_hit hits[10];
	for (size_t i = 0; i < n; i += 13) {
		size_t nh;
		ck_assert_int_eq(hnsw_search(s.h, v + i * D, 10, 64, NULL, NULL, hits, &nh, &err), 0);
		for (size_t j = 0; j < nh; j++)
			ck_assert(lv[hits[j].label]);
	}
	double r = recall(s.h, ES_METRIC_COSINE, v, n, D, lv, v + 7 * D, 50, 10, 64);
	fprintf(stderr, "hnsw stress: recall@10 after = %.4f\n", r);
	ck_assert(r >= 0.9);
	free(lv);
	hnsw_free(s.h);
	free((void *)s.state);
	free(v);
}
END_TEST

/* Found by tests/fuzz (fuzz_snapshot, UBSan): under int8, a vector whose
 * largest component is denormal made 127/max inf in float, and the zero
 * components' codes NaN cast to int8. */
START_TEST(test_int8_tiny_vector)
{
	hnsw_params p;
	hnsw_params_default(&p, 4);
	p.metric = ES_METRIC_L2;
	p.quantize_int8 = 1;
	hnsw *h;
	es_error err;
	ck_assert_int_eq(hnsw_new(&p, &h, &err), 0);
	float tiny[4] = {1e-40f, 0, -5e-41f, 0}, back[4];
	ck_assert_int_eq(hnsw_add(h, 1, tiny, &err), 0);
	ck_assert_int_eq(hnsw_get_vector(h, 1, back), 0);
	ck_assert(back[1] == 0 && back[3] == 0);
	ck_assert(back[0] > 0 && back[2] < 0);
	ck_assert(fabsf(back[0] - tiny[0]) <= 1e-42f);
	es_hit hit;
	size_t nh;
	ck_assert_int_eq(hnsw_search(h, tiny, 1, 8, NULL, NULL, &hit, &nh, &err), 0);
	ck_assert_uint_eq(nh, 1);
	ck_assert(isfinite(hit.score));
	hnsw_free(h);
}
END_TEST

Suite *hnsw_suite(void)
{
	Suite *s = suite_create("hnsw");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_params);
	tcase_add_test(tc, test_recall_20k_float_int8_saveload);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_delete_reinsert);
	tcase_add_test(tc, test_update);
	tcase_add_test(tc, test_filter);
	tcase_add_test(tc, test_batch_and_determinism);
	tcase_add_test(tc, test_parallel_recall_matches_serial);
	tcase_add_test(tc, test_pending);
	tcase_add_test(tc, test_hostile_files);
	tcase_add_test(tc, test_int8_tiny_vector);
	tcase_add_test(tc, test_read_version1);
	tcase_add_test(tc, test_read_version2);
	tcase_add_test(tc, test_delete_entry_point);
	tcase_add_test(tc, test_float_store_dir);
	suite_add_tcase(s, tc);
	/* own case so a ThreadSanitizer run can pick it alone:
	 * CK_RUN_CASE=stress build-tsan/tests/test_hnsw */
	TCase *st = tcase_create("stress");
	tcase_set_timeout(st, 300);
	tcase_add_loop_test(st, test_concurrent_stress, 0, 2);
	suite_add_tcase(s, st);
	return s;
}
