/*
 * bench_flat.c — queries/s of index/flat (metric dot, like FAISS
 * IndexFlatIP) on vectors and queries read from files that the FAISS peer
 * (bench/flat/faiss_peer.py) reads too.
 *
 * File format (written by bench/flat/make_data.py): "ESBV", uint32 n,
 * uint32 d (little-endian), then n*d float32 row-major.
 *
 * For every thread count T and batch size B:
 *   B == 1: one repetition = NSEQ single queries one after another
 *           (flat_search, rows split over a pool of T workers);
 *   B  > 1: one repetition = the first B queries as one flat_search_batch.
 * Prints one JSON object per configuration (medians over REPS repetitions
 * of the wall time and of the process CPU time):
 *   {"impl":"embedsrv","threads":T,"batch":B,"median_s":..,"qps":..,
 *    "cpu_s":..,"q_per_cpu_s":..}
 * and, if LABELS_OUT is given, the top-k labels of the largest batch with
 * the largest thread count as int64 (B x k) for the peer to compare.
 *
 * usage: bench_flat BASE QUERIES K REPS BATCHES THREADS [LABELS_OUT]
 *        e.g. bench_flat base.esbv queries.esbv 10 7 1,1000 1,2 ours.i64
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flat.h"

#define NSEQ 100

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): on a shared machine the
 * work done, whatever the scheduler did with the wall clock. */
static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static float *read_esbv(const char *path, uint32_t *n, uint32_t *d)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return NULL;
	}
	char magic[4];
	uint32_t hdr[2];
	float *x = NULL;
	if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "ESBV", 4) ||
	    fread(hdr, 4, 2, f) != 2 || hdr[0] == 0 || hdr[1] == 0 ||
	    hdr[1] > FLAT_MAX_DIM) {
		fprintf(stderr, "%s: not an ESBV vector file\n", path);
		goto out;
	}
	size_t cnt = (size_t)hdr[0] * hdr[1];
	x = malloc(cnt * sizeof *x);
	if (!x || fread(x, sizeof *x, cnt, f) != cnt) {
		fprintf(stderr, "%s: truncated (want %u x %u floats)\n", path,
			hdr[0], hdr[1]);
		free(x);
		x = NULL;
		goto out;
	}
	*n = hdr[0];
	*d = hdr[1];
out:
	fclose(f);
	return x;
}

/* Parse "1,1000" into up to 16 positive numbers. */
static int parse_list(const char *s, size_t *v)
{
	int n = 0;
	while (*s && n < 16) {
		char *end;
		long x = strtol(s, &end, 10);
		if (end == s || x <= 0)
			return -1;
		v[n++] = (size_t)x;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: bench_flat BASE QUERIES K REPS BATCHES THREADS "
			"[LABELS_OUT]\n");
		return 2;
	}
	uint32_t n, d, nq, dq;
	int k = atoi(argv[3]), reps = atoi(argv[4]);
	size_t batches[16], threads[16];
	int nb = parse_list(argv[5], batches), nt = parse_list(argv[6], threads);
	if (k <= 0 || reps <= 0 || nb <= 0 || nt <= 0) {
		fprintf(stderr, "bench_flat: bad K, REPS, BATCHES or THREADS\n");
		return 2;
	}
	float *base = read_esbv(argv[1], &n, &d);
	float *qs = read_esbv(argv[2], &nq, &dq);
	if (!base || !qs)
		return 1;
	if (dq != d) {
		fprintf(stderr, "bench_flat: base has d=%u, queries d=%u\n", d, dq);
		return 1;
	}
	es_error err;
	flat_index *idx;
	if (flat_new(d, ES_METRIC_DOT, &idx, &err) ||
	    flat_add(idx, base, n, NULL, &err)) {
		fprintf(stderr, "bench_flat: %s\n", err.msg);
		return 1;
	}
	free(base);
	size_t maxb = 0;
	for (int i = 0; i < nb; i++)
		if (batches[i] > maxb)
			maxb = batches[i];
	if (maxb < NSEQ)
		maxb = NSEQ;
	if (maxb > nq) {
		fprintf(stderr, "bench_flat: need %zu queries, file has %u\n", maxb, nq);
		return 1;
	}
	es_hit *hits = malloc(maxb * (size_t)k * sizeof *hits);
	double *ts = malloc((size_t)reps * sizeof *ts);
	double *cs = malloc((size_t)reps * sizeof *cs);
	if (!hits || !ts || !cs)
		return 1;
	size_t nout = 0;
	for (int ti = 0; ti < nt; ti++) {
		es_pool *pool = es_pool_new((unsigned)threads[ti]);
		if (!pool)
			return 1;
		for (int bi = 0; bi < nb; bi++) {
			size_t b = batches[bi];
			size_t per_rep = b == 1 ? NSEQ : b;
			for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
				double t0 = now(), c0 = cpu_now();
				int rc = 0;
				if (b == 1) {
					for (size_t i = 0; i < NSEQ && !rc; i++)
						rc = flat_search(idx, qs + i * d, (uint32_t)k,
								 hits + i * k, &nout, pool, &err);
				} else {
					rc = flat_search_batch(idx, qs, b, (uint32_t)k, hits,
							       &nout, pool, &err);
				}
				double t = now() - t0, c = cpu_now() - c0;
				if (rc) {
					fprintf(stderr, "bench_flat: %s\n", err.msg);
					return 1;
				}
				if (r >= 0) {
					ts[r] = t;
					cs[r] = c;
				}
			}
			qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
			double med = reps % 2 ? ts[reps / 2]
					      : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
			qsort(cs, (size_t)reps, sizeof *cs, cmp_double);
			double cmed = reps % 2 ? cs[reps / 2]
					       : 0.5 * (cs[reps / 2 - 1] + cs[reps / 2]);
			printf("{\"impl\":\"embedsrv\",\"threads\":%zu,\"batch\":%zu,"
			       "\"n\":%u,\"d\":%u,\"k\":%d,\"reps\":%d,"
			       "\"median_s\":%.6f,\"qps\":%.1f,\"cpu_s\":%.6f,"
			       "\"q_per_cpu_s\":%.1f}\n",
			       threads[ti], b, n, d, k, reps, med, (double)per_rep / med,
			       cmed, (double)per_rep / cmed);
			fflush(stdout);
		}
		es_pool_free(pool);
	}
	if (argc > 7) {
		/* labels of the largest batch (last configuration run with it) */
		size_t b = 0;
		for (int i = 0; i < nb; i++)
			if (batches[i] > b)
				b = batches[i];
		if (flat_search_batch(idx, qs, b, (uint32_t)k, hits, &nout, NULL, &err)) {
			fprintf(stderr, "bench_flat: %s\n", err.msg);
			return 1;
		}
		FILE *f = fopen(argv[7], "wb");
		if (!f) {
			perror(argv[7]);
			return 1;
		}
		for (size_t i = 0; i < b * (size_t)k; i++) {
			int64_t l = i % k < nout ? (int64_t)hits[i].label : -1;
			fwrite(&l, sizeof l, 1, f);
		}
		fclose(f);
	}
	free(hits);
	free(ts);
	free(cs);
	free(qs);
	flat_free(idx);
	return 0;
}
