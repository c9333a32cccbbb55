/*
 * bench_encoder.c — texts/s of core/bert on a model folder for batches of 1
 * and 32 texts of 8, 32 and 128 tokens, with 1 thread (no pool) and with a
 * pool of N threads.  Prints one JSON object per configuration on stdout:
 *   {"impl":"embedsrv","tile":"avx512-12x32","threads":1,"batch":32,
 *    "tokens":128,"median_s":..,"texts_per_s":..}
 * and writes the embeddings of the 32 x 32-token batch to OUT/c_emb.f32 so
 * the PyTorch peer can check that both compute the same thing.
 *
 * A fourth batch-32 configuration, tokens "mixed", has text k of
 * 8 + 120 k / 31 tokens (8..128): what a real batch looks like; embedsrv
 * packs it, the peer pads it to 128 as transformers does within a batch.
 *
 * Texts come from the same formula as torch_peer.py: text k of length L
 * tokens is L-2 words "w<id>", id = 5 + (k * 7919 + j * 104729) % 15258,
 * each a whole vocabulary entry of make_model.py's vocabulary.  Timing
 * includes tokenization (the peer gets token ids for free).
 *
 * usage: bench_encoder MODEL_DIR OUT_DIR THREADS REPEATS [BATCHES [TOKENS]]
 * BATCHES and TOKENS (comma-separated; default 1,32 and 8,32,128,0 with
 * 0 = mixed) pick other shapes, e.g. "1,8,16" "6" for the forward times
 * behind the serving path's latency.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bert.h"
#include "gemm.h"
#include "simd.h"

#define NWORDS 15258

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static char *make_text(int k, int tokens)
{
	char *s = malloc((size_t)tokens * 8 + 1);
	size_t o = 0;
	for (int j = 0; j < tokens - 2; j++)
		o += (size_t)sprintf(s + o, "%sw%ld", j ? " " : "",
				     5 + ((long)k * 7919 + (long)j * 104729) % NWORDS);
	s[o] = 0;
	return s;
}

/* "a,b,c" into v (at most 16 numbers, each >= lo and <= 4096; tokens
 * 1..2 cannot be made by make_text); returns the count or -1. */
static int parse_list(const char *s, int *v, int lo)
{
	int n = 0;
	while (*s) {
		char *end;
		long x = strtol(s, &end, 10);
		if (end == s || n == 16 || x < lo || x > 4096 || (!lo && x && x < 3))
			return -1;
		v[n++] = (int)x;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n ? n : -1;
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 7) {
		fprintf(stderr, "usage: %s MODEL_DIR OUT_DIR THREADS REPEATS "
			"[BATCHES [TOKENS]]\n", argv[0]);
		return 2;
	}
	int threads = atoi(argv[3]), reps = atoi(argv[4]);
	es_bert *b;
	es_error err;
	if (es_bert_open(argv[1], &b, &err)) {
		fprintf(stderr, "bench_encoder: %s\n", err.msg);
		return 1;
	}
	es_pool *pool = threads > 1 ? es_pool_new((unsigned)threads) : NULL;
	uint32_t dim = es_bert_dim(b);
	/* tokens 0 = "mixed": text k of 32 has 8 + 120 k / 31 tokens (8..128) */
	int batches[16] = {1, 32}, lens[16] = {8, 32, 128, 0};
	int nb = argc > 5 ? parse_list(argv[5], batches, 1) : 2;
	int nl = argc > 6 ? parse_list(argv[6], lens, 0) : 4;
	if (nb < 0 || nl < 0) {
		fprintf(stderr, "bench_encoder: BATCHES and TOKENS are lists of up to "
			"16 numbers (batch 1..4096, tokens 3..512 or 0)\n");
		return 2;
	}
	for (int bi = 0; bi < nb; bi++)
		for (int li = 0; li < nl; li++) {
			int n = batches[bi], L = lens[li];
			if (L == 0 && n == 1)
				continue;
			char **texts = malloc((size_t)n * sizeof *texts);
			for (int k = 0; k < n; k++)
				texts[k] = make_text(k, L ? L : 8 + 120 * k / 31);
			float *out = malloc((size_t)n * dim * sizeof(float));
			es_encode_info *info = calloc((size_t)n, sizeof *info);
			/* small batches are fast: repeat them more for a stable median */
			int r = n < 32 ? reps * 10 : reps;
			double *t = malloc((size_t)(r + 1) * sizeof *t);
			double *cpu = malloc((size_t)(r + 1) * sizeof *cpu);
			for (int it = 0; it <= r; it++) { /* it 0: warm-up */
				double t0 = now(), c0 = cpu_now();
				if (es_bert_encode_batch(b, (const char *const *)texts, NULL,
							 (size_t)n, 0, out, info, pool, &err)) {
					fprintf(stderr, "bench_encoder: %s\n", err.msg);
					return 1;
				}
				t[it] = now() - t0;
				cpu[it] = cpu_now() - c0;
			}
			for (int k = 0; k < n; k++)
				if (info[k].tokens != (uint32_t)(L ? L : 8 + 120 * k / 31)) {
					fprintf(stderr, "text %d has %u tokens\n", k,
						info[k].tokens);
					return 1;
				}
			qsort(t + 1, (size_t)r, sizeof *t, cmp_d);
			qsort(cpu + 1, (size_t)r, sizeof *cpu, cmp_d);
			double med = t[1 + r / 2], cmed = cpu[1 + r / 2];
			char tk[16];
			snprintf(tk, sizeof tk, L ? "%d" : "\"mixed\"", L);
			printf("{\"impl\":\"embedsrv\",\"tile\":\"%s\",\"threads\":%d,"
			       "\"batch\":%d,\"tokens\":%s,\"median_s\":%.6f,"
			       "\"median_cpu_s\":%.6f,\"texts_per_s\":%.2f}\n",
			       es_gemm_tile_name(es_gemm_tile_for(simd_get()->path)), threads,
			       n, tk, med, cmed, n / med);
			fflush(stdout);
			if (n == 32 && L == 32) {
				char p[4096];
				snprintf(p, sizeof p, "%s/c_emb.f32", argv[2]);
				FILE *f = fopen(p, "wb");
				if (f) {
					fwrite(out, sizeof(float), (size_t)n * dim, f);
					fclose(f);
				}
			}
			for (int k = 0; k < n; k++)
				free(texts[k]);
			free(texts);
			free(out);
			free(info);
			free(t);
			free(cpu);
		}
	es_pool_free(pool);
	es_bert_free(b);
	return 0;
}
