/*
 * bench_encode.c — in-process numbers for the static model:
 *
 *   bench_encode encode MODEL SENTENCES THREADS REPEATS
 *       sentences/s of es_encoder_encode_batch over every line of SENTENCES
 *       (THREADS 1: no pool; else a pool of THREADS, 0 = all cores);
 *       median of REPEATS runs; one JSON line on stdout.
 *   bench_encode load PATH.esm WORDS DIM REPEATS
 *       writes a WORDS x DIM synthetic .esm at PATH (if it is not there),
 *       then times es_model_load (mmap, header/vocabulary checks) and the
 *       first lookup; median of REPEATS loads with a warm page cache, plus
 *       the first load after dropping the file from the cache with
 *       posix_fadvise(DONTNEED).  One JSON line on stdout.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "encoder.h"
#include "model.h"
#include "model_io.h"
#include "threadpool.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int bench_encode(const char *model, const char *file, int threads,
			int reps)
{
	es_encoder *enc;
	es_error err = {0};
	if (es_encoder_open(model, NULL, &enc, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	FILE *f = fopen(file, "r");
	if (!f) {
		perror(file);
		return 1;
	}
	size_t cap = 1 << 16, n = 0;
	char **lines = malloc(cap * sizeof *lines);
	size_t *lens = malloc(cap * sizeof *lens);
	char *line = NULL;
	size_t lc = 0;
	ssize_t l;
	while ((l = getline(&line, &lc, f)) > 0) {
		if (line[l - 1] == '\n')
			line[--l] = '\0';
		if (n == cap) {
			cap *= 2;
			lines = realloc(lines, cap * sizeof *lines);
			lens = realloc(lens, cap * sizeof *lens);
		}
		lines[n] = strdup(line);
		lens[n++] = (size_t)l;
	}
	fclose(f);
	free(line);
	uint32_t dim = es_encoder_dim(enc);
	float *out = malloc(n * dim * sizeof(float));
	es_pool *pool = threads == 1 ? NULL : es_pool_new((unsigned)threads);
	double *t = malloc((size_t)reps * sizeof *t);
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		if (es_encoder_encode_batch(enc, (const char *const *)lines, lens, n,
					    0, out, NULL, pool, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		t[r] = now() - t0;
	}
	qsort(t, (size_t)reps, sizeof *t, cmp_d);
	double med = t[reps / 2];
	printf("{\"impl\":\"embedsrv-inprocess\",\"threads\":%u,\"sentences\":%zu,"
	       "\"dim\":%u,\"median_s\":%.4f,\"sentences_per_s\":%.0f}\n",
	       pool ? es_pool_size(pool) : 1, n, dim, med, (double)n / med);
	es_pool_free(pool);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	free(lens);
	free(out);
	free(t);
	es_encoder_free(enc);
	return 0;
}

static int make_esm(const char *path, size_t words, uint32_t dim)
{
	es_model_params p = {.dim = dim, .has_counts = 1};
	es_model *m;
	es_error err = {0};
	if (es_model_new(&p, &m, &err))
		goto fail;
	float *v = malloc(dim * sizeof(float));
	uint64_t s = 88172645463325252ull;
	char w[32];
	for (size_t i = 0; i < words; i++) {
		for (uint32_t j = 0; j < dim; j++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			v[j] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
		}
		int len = snprintf(w, sizeof w, "w%zu", i);
		if (es_model_add_word(m, w, (size_t)len, words - i, v, NULL, &err))
			goto fail;
	}
	free(v);
	if (es_model_save_esm(m, path, &err))
		goto fail;
	es_model_free(m);
	return 0;
fail:
	fprintf(stderr, "%s\n", err.msg);
	return 1;
}

static int bench_load(const char *path, size_t words, uint32_t dim, int reps)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		double t0 = now();
		if (make_esm(path, words, dim))
			return 1;
		fprintf(stderr, "wrote %s in %.1f s\n", path, now() - t0);
		stat(path, &st);
	}
	es_error err = {0};
	double cold = -1;
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	double *t = malloc((size_t)(reps + 1) * sizeof *t);
	for (int r = 0; r <= reps; r++) {
		es_model *m;
		double t0 = now();
		if (es_model_load(path, ES_FORMAT_AUTO, 0, &m, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		/* first use: a lookup and a touch of its vector */
		int64_t id = es_vocab_find(es_model_vocab(m), "w123", 4);
		volatile float x = id >= 0 ? es_model_vector(m, (uint32_t)id)[0] : 0;
		(void)x;
		double dt = now() - t0;
		if (r == 0)
			cold = dt;
		else
			t[r - 1] = dt;
		es_model_free(m);
	}
	qsort(t, (size_t)reps, sizeof *t, cmp_d);
	printf("{\"impl\":\"embedsrv-esm-load\",\"words\":%zu,\"dim\":%u,"
	       "\"file_bytes\":%lld,\"cold_ms\":%.1f,\"warm_median_ms\":%.1f}\n",
	       words, dim, (long long)st.st_size, cold * 1e3, t[reps / 2] * 1e3);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "encode"))
		return bench_encode(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "load"))
		return bench_load(argv[2], (size_t)atoll(argv[3]),
				  (uint32_t)atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: bench_encode encode MODEL SENTENCES THREADS REPEATS\n"
			"       bench_encode load PATH.esm WORDS DIM REPEATS\n");
	return 2;
}
