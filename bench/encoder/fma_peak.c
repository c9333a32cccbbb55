/*
 * fma_peak.c — the FP32 multiply-add peak of this CPU, measured: N threads
 * each run 12 independent chains of vfmadd (no loads, no stores; 12
 * chains cover FMA latency x the FMA ports on every x86 core these benches
 * meet) for a fixed count, and the program prints GFLOP/s per thread and in
 * all, for 512-bit (zmm) and 256-bit (ymm) FMAs:
 *   {"isa":"avx512","threads":2,"gflops":..,"gflops_per_thread":..,
 *    "flop_per_cycle_at_nominal":..,"nominal_mhz":..}
 * It is the ceiling the encoder's products are compared with in
 * bench/RESULTS.md (issue 23), and with THREADS = 2 it shows whether two
 * vCPUs are two cores' worth of FMA units or share one core (SMT siblings
 * would give ~1x the one-thread figure in all).
 *
 * usage: fma_peak [THREADS [SECONDS_PER_RUN]]   (defaults 1 and 0.5)
 * x86-64 only; prints nothing for an ISA the CPU lacks.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* 12 chains, each in its own register (an array would live in memory at
 * -O2 and measure store-to-load forwarding instead): 12 >= FMA latency (4)
 * x FMA pipes (2) on the cores these benches meet, and 12 + 2 constants
 * fit the 16 ymm registers of AVX2 as well. */
#define CHAINS 12
#define FMA12(op)                                                              \
	do {                                                                   \
		c0 = op(c0, m, a); c1 = op(c1, m, a); c2 = op(c2, m, a);       \
		c3 = op(c3, m, a); c4 = op(c4, m, a); c5 = op(c5, m, a);       \
		c6 = op(c6, m, a); c7 = op(c7, m, a); c8 = op(c8, m, a);       \
		c9 = op(c9, m, a); c10 = op(c10, m, a); c11 = op(c11, m, a);   \
	} while (0)

__attribute__((target("avx512f"), noinline)) static float run512(long iters, float seed)
{
	const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f * seed);
	/* distinct starts, or the compiler folds equal chains into one */
	__m512 c0 = _mm512_set1_ps(seed), c1 = _mm512_set1_ps(seed + 1), c2 = _mm512_set1_ps(seed + 2),
	       c3 = _mm512_set1_ps(seed + 3), c4 = _mm512_set1_ps(seed + 4), c5 = _mm512_set1_ps(seed + 5),
	       c6 = _mm512_set1_ps(seed + 6), c7 = _mm512_set1_ps(seed + 7), c8 = _mm512_set1_ps(seed + 8),
	       c9 = _mm512_set1_ps(seed + 9), c10 = _mm512_set1_ps(seed + 10), c11 = _mm512_set1_ps(seed + 11);
	for (long i = 0; i < iters; i++)
		FMA12(_mm512_fmadd_ps);
	__m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
				 _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
	s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
	return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float run256(long iters, float seed)
{
	const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f * seed);
	/* distinct starts, or the compiler folds equal chains into one */
	__m256 c0 = _mm256_set1_ps(seed), c1 = _mm256_set1_ps(seed + 1), c2 = _mm256_set1_ps(seed + 2),
	       c3 = _mm256_set1_ps(seed + 3), c4 = _mm256_set1_ps(seed + 4), c5 = _mm256_set1_ps(seed + 5),
	       c6 = _mm256_set1_ps(seed + 6), c7 = _mm256_set1_ps(seed + 7), c8 = _mm256_set1_ps(seed + 8),
	       c9 = _mm256_set1_ps(seed + 9), c10 = _mm256_set1_ps(seed + 10), c11 = _mm256_set1_ps(seed + 11);
	for (long i = 0; i < iters; i++)
		FMA12(_mm256_fmadd_ps);
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
				 _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
	s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
	float v[8];
	_mm256_storeu_ps(v, s);
	return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

struct job {
	int wide;
	long iters;
	pthread_barrier_t *start;
	double secs;
	float sink;
};

static void *worker(void *p)
{
	struct job *j = p;
	pthread_barrier_wait(j->start);
	double t0 = now();
	j->sink = j->wide ? run512(j->iters, 1.0f) : run256(j->iters, 1.0f);
	j->secs = now() - t0;
	return NULL;
}

/* aggregate GFLOP/s of n threads, each running iters iterations */
static double measure(int wide, int n, long iters)
{
	pthread_t th[64];
	struct job jobs[64];
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct job){.wide = wide, .iters = iters, .start = &b};
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	double slowest = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].secs > slowest)
			slowest = jobs[i].secs;
		if (jobs[i].sink == 12345.0f) /* keep the result alive */
			puts("");
	}
	pthread_barrier_destroy(&b);
	double flop = 2.0 * CHAINS * (wide ? 16 : 8) * (double)iters * n;
	return flop / slowest / 1e9;
}

static double nominal_mhz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	double mhz = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "cpu MHz", 7) && strchr(line, ':')) {
			mhz = atof(strchr(line, ':') + 1);
			break;
		}
	if (f)
		fclose(f);
	return mhz;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	double want = argc > 2 ? atof(argv[2]) : 0.5;
	if (n < 1 || n > 64 || want <= 0 || want > 60) {
		fprintf(stderr, "usage: %s [THREADS (1..64) [SECONDS_PER_RUN (0..60]]]\n", argv[0]);
		return 2;
	}
	__builtin_cpu_init();
	double mhz = nominal_mhz();
	for (int wide = 1; wide >= 0; wide--) {
		if (wide ? !__builtin_cpu_supports("avx512f") : !__builtin_cpu_supports("fma"))
			continue;
		/* size the run from a short one-thread probe, then take the best of 5 */
		long iters = 1000000;
		double g = measure(wide, 1, iters);
		iters = (long)(want * g * 1e9 / (2.0 * CHAINS * (wide ? 16 : 8)));
		double best = 0;
		for (int r = 0; r < 5; r++) {
			double x = measure(wide, n, iters);
			if (x > best)
				best = x;
		}
		printf("{\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f,\"gflops_per_thread\":%.1f,"
		       "\"nominal_mhz\":%.0f,\"flop_per_cycle_at_nominal\":%.1f}\n",
		       wide ? "avx512" : "avx2", n, best, best / n, mhz,
		       mhz > 0 ? best / n * 1e3 / mhz : 0.0);
	}
	return 0;
}
#else
int main(void)
{
	fprintf(stderr, "fma_peak: x86-64 only\n");
	return 1;
}
#endif
