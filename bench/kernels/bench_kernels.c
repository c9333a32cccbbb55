/*
 * bench_kernels.c — nanoseconds per dot product for every SIMD path of
 * core/simd that this CPU runs, against OpenBLAS cblas_sdot, in one process
 * on one thread (OpenBLAS limited to one thread by es_blas_init()).
 * Timing is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so time spent
 * descheduled on a shared machine does not count; the implementations are
 * measured round-robin within each repetition, so they share the noise.
 *
 * Two regimes:
 *   cache  — a query against ROWS rows that stay in L2 (128 rows; at
 *            d = 1024 that is 512 KiB): the kernel's own speed.
 *            Columns: dot (one call per row), dot_batch (the kernel
 *            index/flat uses, 4 rows per query load), cblas_sdot.
 *   memory — a matrix far larger than the caches (256 MiB), dot row by
 *            row, dot_batch and cblas_sdot, in ns per row and GB/s: the
 *            regime of a flat scan over 100k+ vectors.
 * Each figure is the median of REPS repetitions; a repetition runs enough
 * dot products to last a few milliseconds.  Every kernel's results are
 * summed into a checksum that is printed, so nothing is optimised away, and
 * compared across implementations (a wrong kernel fails loudly).
 *
 * usage: bench_kernels [REPS]   (default 31)
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blas.h"
#include "simd.h"

#define ROWS 128
static const size_t dims[] = {64, 100, 128, 384, 768, 1024};
#define NDIMS (sizeof dims / sizeof dims[0])

/* Thread CPU time, not wall time: the development machines are shared by
 * several busy users, and time spent descheduled is not the kernel's. */
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef enum { K_DOT, K_BATCH, K_SDOT } kind;

/* One repetition: `passes` passes over nrows rows; returns seconds and
 * adds the scores into *sum. */
static double run_once(kind kd, const simd_kernels *k, const float *q,
		       const float *rows, size_t nrows, size_t d, int passes,
		       float *out, double *sum)
{
	double t0 = now();
	for (int p = 0; p < passes; p++) {
		switch (kd) {
		case K_DOT:
			for (size_t r = 0; r < nrows; r++)
				out[r] = k->dot(q, rows + r * d, d);
			break;
		case K_BATCH:
			k->dot_batch(q, rows, nrows, d, d, out);
			break;
		case K_SDOT:
			for (size_t r = 0; r < nrows; r++)
				out[r] = cblas_sdot((int)d, q, 1, rows + r * d, 1);
			break;
		}
		/* read the results inside the timed loop: the compiler cannot
		 * drop work whose value is used */
		*sum += out[p % nrows];
	}
	double t = now() - t0;
	for (size_t r = 0; r < nrows; r++)
		*sum += out[r];
	return t;
}

/* Passes over nrows rows for one repetition to take ~2 ms. */
static int calibrate(kind kd, const simd_kernels *k, const float *q,
		     const float *rows, size_t nrows, size_t d, float *out)
{
	int passes = 1;
	for (;;) {
		double s = 0, t = run_once(kd, k, q, rows, nrows, d, passes, out, &s);
		if (t > 2e-3 || passes > (1 << 24))
			return passes;
		passes *= 2;
	}
}

static float frand(unsigned long long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (float)((*s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* The implementations measured, in column order: measurement m is path
 * m / 2's dot (m even) or dot_batch (m odd); m == 2 * np is cblas_sdot. */
typedef struct impls {
	const simd_kernels *paths[SIMD_PATH_COUNT];
	int np;
} impls;

static int impl_count(const impls *im)
{
	return 2 * im->np + 1;
}

static kind impl_kind(const impls *im, int m, const simd_kernels **k)
{
	*k = m == 2 * im->np ? NULL : im->paths[m / 2];
	return m == 2 * im->np ? K_SDOT : m % 2 ? K_BATCH : K_DOT;
}

/* Every path this CPU runs, and the header line that names them. */
static void find_impls(impls *im, int reps)
{
	im->np = 0;
	for (int p = 0; p < SIMD_PATH_COUNT; p++)
		if ((im->paths[im->np] = simd_kernels_for((simd_path)p)))
			im->np++;
	char compiled[64];
	simd_compiled_paths(compiled, sizeof compiled);
	printf("# bench_kernels: single thread, median of %d repetitions\n", reps);
	printf("# simd compiled: %s; runnable here:", compiled);
	for (int i = 0; i < im->np; i++)
		printf(" %s", im->paths[i]->name);
	printf("; selected: %s; OpenBLAS threads: %d\n", simd_get()->name,
	       es_blas_threads());
}

static void cache_header(const impls *im)
{
	printf("\n## in cache (%d rows), ns per dot product\n", ROWS);
	printf("%-6s", "d");
	for (int i = 0; i < im->np; i++)
		printf(" %10s %12s", im->paths[i]->name, "+dot_batch");
	printf(" %11s", "cblas_sdot");
	for (int i = 0; i < im->np; i++)
		printf(" %14s", "sdot/");
	printf("\n%-6s", "");
	for (int i = 0; i < im->np; i++)
		printf(" %10s %12s", "dot", "");
	printf(" %11s", "");
	for (int i = 0; i < im->np; i++)
		printf(" %14s", im->paths[i]->name);
	printf("\n");
}

/* One row of the in-cache table (dimension d): returns 1 when a kernel
 * disagreed with cblas_sdot.  ts: room for every measurement's reps. */
static int cache_row(const impls *im, size_t d, int reps, const float *q,
		     const float *rows, float *out, double *ts, double *sum)
{
	int nm = impl_count(im), bad = 0;
	float ref[ROWS];
	int passes[2 * SIMD_PATH_COUNT + 1];
	const simd_kernels *k;
	for (size_t r = 0; r < ROWS; r++)
		ref[r] = cblas_sdot((int)d, q, 1, rows + r * d, 1);
	for (int m = 0; m < nm; m++) {
		kind kd = impl_kind(im, m, &k);
		passes[m] = calibrate(kd, k, q, rows, ROWS, d, out);
		for (size_t r = 0; r < ROWS; r++)
			if (fabsf(out[r] - ref[r]) > 1e-4f * (float)d)
				bad = 1;
	}
	for (int rep = 0; rep < reps; rep++)
		for (int m = 0; m < nm; m++) {
			kind kd = impl_kind(im, m, &k);
			ts[m * reps + rep] = run_once(kd, k, q, rows, ROWS, d, passes[m], out,
						      sum) /
					     ((double)passes[m] * ROWS) * 1e9;
		}
	double med[2 * SIMD_PATH_COUNT + 1];
	for (int m = 0; m < nm; m++)
		med[m] = median(ts + m * reps, reps);
	double ns_s = med[2 * im->np];
	printf("%-6zu", d);
	for (int i = 0; i < im->np; i++)
		printf(" %10.2f %12.2f", med[2 * i], med[2 * i + 1]);
	printf(" %11.2f", ns_s);
	for (int i = 0; i < im->np; i++) {
		double best = med[2 * i] < med[2 * i + 1] ? med[2 * i] : med[2 * i + 1];
		printf(" %13.2fx", ns_s / best);
	}
	printf("\n");
	return bad;
}

/* memory-bound: ~256 MiB of rows, round-robin over the implementations:
 * each path's dot row by row (what index/flat scans with), its
 * dot_batch, and cblas_sdot row by row.  0, or 1 when out of memory. */
static int memory_table(const impls *im, int reps, const float *q,
			unsigned long long *seed, double *sum)
{
	printf("\n## from memory (~256 MiB of rows), ns per row and GB/s\n");
	printf("%-6s %-8s %-10s %10s %8s\n", "d", "rows", "impl", "ns/row", "GB/s");
	const size_t big_bytes = (size_t)256 << 20;
	float *big = aligned_alloc(64, big_bytes);
	float *bout = malloc(big_bytes / (64 * sizeof(float)) * sizeof *bout);
	if (!big || !bout) {
		free(big);
		free(bout);
		return 1;
	}
	for (size_t i = 0; i < big_bytes / sizeof(float); i++)
		big[i] = frand(seed);
	int mreps = reps < 7 ? reps : 7, nmm = impl_count(im);
	const simd_kernels *k;
	for (size_t di = 0; di < NDIMS; di++) {
		size_t d = dims[di], n = big_bytes / (d * sizeof(float));
		double mt[2 * SIMD_PATH_COUNT + 1][7];
		for (int r = 0; r < mreps; r++)
			for (int m = 0; m < nmm; m++) {
				kind kd = impl_kind(im, m, &k);
				double s = 0;
				mt[m][r] = run_once(kd, k, q, big, n, d, 1, bout, &s);
				*sum += s;
			}
		for (int m = 0; m < nmm; m++) {
			char name[32];
			if (m == 2 * im->np)
				snprintf(name, sizeof name, "sdot");
			else
				snprintf(name, sizeof name, "%s%s", im->paths[m / 2]->name,
					 m % 2 ? "/batch" : "");
			double t = median(mt[m], mreps);
			printf("%-6zu %-8zu %-10s %10.2f %8.2f\n", d, n, name,
			       t / (double)n * 1e9,
			       (double)(n * d * sizeof(float)) / t * 1e-9);
		}
	}
	free(big);
	free(bout);
	return 0;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 31;
	if (reps < 1 || reps > 10000) {
		fprintf(stderr, "usage: bench_kernels [REPS 1..10000]\n");
		return 2;
	}
	es_blas_init();
	impls im;
	find_impls(&im, reps);

	size_t maxd = dims[NDIMS - 1];
	unsigned long long seed = 12345;
	float *q = aligned_alloc(64, maxd * sizeof *q);
	float *rows = aligned_alloc(64, ROWS * maxd * sizeof *rows);
	float *out = malloc(ROWS * sizeof *out);
	double *ts = malloc((size_t)impl_count(&im) * reps * sizeof *ts);
	if (!q || !rows || !out || !ts)
		return 1;
	for (size_t i = 0; i < maxd; i++)
		q[i] = frand(&seed);
	for (size_t i = 0; i < ROWS * maxd; i++)
		rows[i] = frand(&seed);

	int bad = 0;
	double sum = 0;
	cache_header(&im);
	for (size_t di = 0; di < NDIMS; di++)
		bad |= cache_row(&im, dims[di], reps, q, rows, out, ts, &sum);
	free(ts);
	if (memory_table(&im, reps, q, &seed, &sum))
		return 1;
	printf("\n# checksum %.6g\n", sum);
	free(q);
	free(rows);
	free(out);
	if (bad) {
		fprintf(stderr, "bench_kernels: a kernel disagreed with cblas_sdot\n");
		return 1;
	}
	return 0;
}
