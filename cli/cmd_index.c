/*
 * cmd_index.c — `embedsrv index build|search`: the HNSW index as a
 * black-box command line tool, for benchmarks against other libraries.
 *
 *   embedsrv index build --input BASE --dim D [--metric cosine|dot|l2]
 *       [--M 16] [--ef-construction 200] [--threads T] [--quantize int8]
 *       [--seed S] -o INDEX
 *   embedsrv index search --index INDEX --queries Q [--k 10] [--ef 64]
 *       [--threads T] -o IDS
 *
 * BASE and Q are raw little-endian float32 rows, or .fvecs (TEXMEX: each
 * row an int32 dimension then that many float32) when the name ends in
 * ".fvecs".  IDS is raw little-endian int32, k per query in rank order
 * (row numbers of BASE; -1 pads when fewer than k points exist).  build
 * reports seconds and bytes on stderr, search reports queries/s.
 *
 * Threading: build uses hnsw_add_batch over an es_pool; search splits the
 * queries over the pool, each worker writing its own rows of the output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_args.h"
#include "commands.h"
#include "hnsw.h"
#include "threadpool.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of the whole process so far. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Read float32 rows from path.  *dim == 0 means "take it from the file"
 * (only possible for .fvecs).  Returns 0 or prints a message and -1. */
static int read_vectors(const char *cmd, const char *path, uint32_t *dim,
			float **out, size_t *nrows)
{
	FILE *f = fopen(path, "rb");
	float *v = NULL;
	if (!f) {
		fprintf(stderr, "embedsrv index %s: %s: %s\n", cmd, path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || st.st_size <= 0) {
		fprintf(stderr, "embedsrv index %s: %s: empty or unreadable file\n", cmd, path);
		goto fail;
	}
	size_t size = (size_t)st.st_size;
	if (cli_ends_with(path, ".fvecs")) {
		int32_t d;
		if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > HNSW_MAX_DIM) {
			fprintf(stderr, "embedsrv index %s: %s: bad .fvecs row dimension\n", cmd, path);
			goto fail;
		}
		if (*dim && (uint32_t)d != *dim) {
			fprintf(stderr, "embedsrv index %s: %s: dimension %d vs %u\n",
				cmd, path, d, *dim);
			goto fail;
		}
		*dim = (uint32_t)d;
		size_t row = 4 + (size_t)d * 4;
		if (size % row) {
			fprintf(stderr, "embedsrv index %s: %s: size %zu is not a multiple of the %zu-byte .fvecs row\n",
				cmd, path, size, row);
			goto fail;
		}
		size_t n = size / row;
		v = malloc(n * (size_t)d * 4);
		if (!v) {
			fprintf(stderr, "embedsrv index %s: out of memory\n", cmd);
			goto fail;
		}
		rewind(f);
		for (size_t i = 0; i < n; i++) {
			int32_t di;
			if (fread(&di, 4, 1, f) != 1 || di != d ||
			    fread(v + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
				fprintf(stderr, "embedsrv index %s: %s: row %zu is damaged\n", cmd, path, i);
				goto fail;
			}
		}
		*nrows = n;
	} else {
		if (*dim == 0) {
			fprintf(stderr, "embedsrv index %s: --dim is required for raw float32 input\n", cmd);
			goto fail;
		}
		size_t row = (size_t)*dim * 4;
		if (size % row) {
			fprintf(stderr, "embedsrv index %s: %s: size %zu is not a multiple of dim %u x 4 bytes\n",
				cmd, path, size, *dim);
			goto fail;
		}
		size_t n = size / row;
		v = malloc(size);
		if (!v) {
			fprintf(stderr, "embedsrv index %s: out of memory\n", cmd);
			goto fail;
		}
		if (fread(v, 1, size, f) != size) {
			fprintf(stderr, "embedsrv index %s: %s: read failed\n", cmd, path);
			goto fail;
		}
		*nrows = n;
	}
	fclose(f);
	*out = v;
	return 0;
fail:
	free(v);
	fclose(f);
	return -1;
}

static void build_usage(FILE *o)
{
	fprintf(o, "usage: embedsrv index build --input BASE --dim D [--metric cosine|dot|l2]\n"
		   "         [--M 16] [--ef-construction 200] [--threads T] [--quantize int8]\n"
		   "         [--seed S] -o INDEX\n"
		   "BASE: raw little-endian float32 rows, or .fvecs by extension.\n");
}

static void search_usage(FILE *o)
{
	fprintf(o, "usage: embedsrv index search --index INDEX --queries Q [--k 10] [--ef 64]\n"
		   "         [--threads T] [--repeat R] -o IDS\n"
		   "IDS: raw little-endian int32, k per query, row numbers of BASE (-1 pads).\n"
		   "R: search the queries R times, report the fastest pass.\n");
}

/* The graph of the n vectors v (labels 0..n-1) built on `threads` threads
 * (0: every CPU) and written to output, with timings on stderr.  Returns the
 * exit status. */
static int build_save(const hnsw_params *p, uint32_t threads, const char *input,
		      const char *output, const float *v, size_t n)
{
	int ret = 1;
	hnsw *h = NULL;
	uint64_t *labels = NULL;
	es_pool *pool = NULL;
	es_error err;
	if (hnsw_new(p, &h, &err) != 0) {
		fprintf(stderr, "embedsrv index build: %s\n", err.msg);
		goto out;
	}
	labels = malloc(n * sizeof *labels);
	pool = es_pool_new(threads);
	if (!labels || !pool) {
		fprintf(stderr, "embedsrv index build: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		labels[i] = i;
	double t0 = now_s();
	if (hnsw_add_batch(h, labels, v, n, pool, &err) != 0) {
		fprintf(stderr, "embedsrv index build: %s: %s\n", input, err.msg);
		goto out;
	}
	double t1 = now_s();
	if (hnsw_save(h, output, &err) != 0) {
		fprintf(stderr, "embedsrv index build: %s\n", err.msg);
		goto out;
	}
	double t2 = now_s();
	fprintf(stderr, "built %zu vectors (dim %u, %s, M %u, efc %u, %s, %u threads) in %.3f s\n",
		n, p->dim, es_metric_name(p->metric), p->M, p->ef_construction,
		p->quantize_int8 ? "int8" : "float32", es_pool_size(pool), t1 - t0);
	fprintf(stderr, "build_seconds %.3f\nsave_seconds %.3f\nindex_bytes %zu\n"
		"vector_bytes %zu\nfloat_store_bytes %zu\n",
		t1 - t0, t2 - t1, hnsw_memory_bytes(h), hnsw_vector_bytes(h) * n,
		hnsw_store_bytes(h));
	ret = 0;
out:
	es_pool_free(pool);
	free(labels);
	hnsw_free(h);
	return ret;
}

static int index_build(int argc, char **argv)
{
	static const struct option opts[] = {
		{"input", required_argument, NULL, 'i'},
		{"dim", required_argument, NULL, 'd'},
		{"metric", required_argument, NULL, 'm'},
		{"M", required_argument, NULL, 'M'},
		{"ef-construction", required_argument, NULL, 'e'},
		{"threads", required_argument, NULL, 't'},
		{"quantize", required_argument, NULL, 'q'},
		{"seed", required_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *input = NULL, *output = NULL;
	uint32_t dim = 0, threads = 0;
	hnsw_params p;
	hnsw_params_default(&p, 1);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': input = optarg; break;
		case 'o': output = optarg; break;
		case 'd':
			if (cli_u32("index build", "--dim", optarg, 1, HNSW_MAX_DIM, &dim)) return 2;
			break;
		case 'm':
			if (es_metric_parse(optarg, &p.metric) != 0) {
				fprintf(stderr, "embedsrv index build: --metric must be cosine, dot or l2, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 'M':
			if (cli_u32("index build", "--M", optarg, 2, HNSW_MAX_M, &p.M)) return 2;
			break;
		case 'e':
			if (cli_u32("index build", "--ef-construction", optarg, 1, HNSW_MAX_EF, &p.ef_construction)) return 2;
			break;
		case 't':
			if (cli_u32("index build", "--threads", optarg, 0, 1024, &threads)) return 2;
			break;
		case 'q':
			if (strcmp(optarg, "int8") == 0)
				p.quantize_int8 = 1;
			else if (strcmp(optarg, "none") == 0 || strcmp(optarg, "float32") == 0)
				p.quantize_int8 = 0;
			else {
				fprintf(stderr, "embedsrv index build: --quantize must be int8 or none, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 's': {
			char *end;
			errno = 0;
			p.seed = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "embedsrv index build: --seed wants an integer, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'h': build_usage(stdout); return 0;
		default: build_usage(stderr); return 2;
		}
	}
	if (!input || !output || optind != argc) {
		fprintf(stderr, "embedsrv index build: --input and -o are required\n");
		build_usage(stderr);
		return 2;
	}
	if (!dim && !cli_ends_with(input, ".fvecs")) {
		fprintf(stderr, "embedsrv index build: --dim is required for raw float32 input\n");
		return 2;
	}
	float *v = NULL;
	size_t n = 0;
	if (read_vectors("build", input, &dim, &v, &n) != 0)
		return 1;
	p.dim = dim;
	p.initial_capacity = n;
	int ret = build_save(&p, threads, input, output, v, n);
	free(v);
	return ret;
}

typedef struct search_job {
	const hnsw *h;
	const float *q;
	uint32_t dim, k, ef;
	int32_t *ids;
	es_hit **hits; /* one buffer per worker */
	int failed;
	es_error err;
} search_job;

static void search_fn(void *vctx, size_t b, size_t e, unsigned w)
{
	search_job *j = vctx;
	es_hit *hits = j->hits[w];
	for (size_t i = b; i < e; i++) {
		size_t nh = 0;
		es_error err;
		if (hnsw_search(j->h, j->q + i * j->dim, j->k, j->ef, NULL, NULL,
				hits, &nh, &err) != 0) {
			if (!__atomic_exchange_n(&j->failed, 1, __ATOMIC_ACQ_REL))
				j->err = err;
			nh = 0;
		}
		int32_t *row = j->ids + i * j->k;
		for (size_t r = 0; r < j->k; r++)
			row[r] = r < nh ? (int32_t)hits[r].label : -1;
	}
}

static int index_search(int argc, char **argv)
{
	static const struct option opts[] = {
		{"index", required_argument, NULL, 'x'},
		{"queries", required_argument, NULL, 'Q'},
		{"k", required_argument, NULL, 'k'},
		{"ef", required_argument, NULL, 'e'},
		{"threads", required_argument, NULL, 't'},
		{"repeat", required_argument, NULL, 'r'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *ipath = NULL, *qpath = NULL, *output = NULL;
	uint32_t k = 10, ef = HNSW_DEFAULT_EF_SEARCH, threads = 0, repeat = 1;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'x': ipath = optarg; break;
		case 'Q': qpath = optarg; break;
		case 'o': output = optarg; break;
		case 'k':
			if (cli_u32("index search", "--k", optarg, 1, HNSW_MAX_EF, &k)) return 2;
			break;
		case 'e':
			if (cli_u32("index search", "--ef", optarg, 1, HNSW_MAX_EF, &ef)) return 2;
			break;
		case 't':
			if (cli_u32("index search", "--threads", optarg, 0, 1024, &threads)) return 2;
			break;
		case 'r':
			if (cli_u32("index search", "--repeat", optarg, 1, 1000, &repeat)) return 2;
			break;
		case 'h': search_usage(stdout); return 0;
		default: search_usage(stderr); return 2;
		}
	}
	if (!ipath || !qpath || !output || optind != argc) {
		fprintf(stderr, "embedsrv index search: --index, --queries and -o are required\n");
		search_usage(stderr);
		return 2;
	}
	int ret = 1;
	hnsw *h = NULL;
	float *q = NULL;
	es_pool *pool = NULL;
	search_job j = {0};
	FILE *f = NULL;
	es_error err;
	double tl = now_s();
	if (hnsw_load(ipath, &h, &err) != 0) {
		fprintf(stderr, "embedsrv index search: %s\n", err.msg);
		goto out;
	}
	fprintf(stderr, "load_seconds %.3f\n", now_s() - tl);
	uint32_t dim = hnsw_get_params(h)->dim;
	size_t nq = 0;
	if (read_vectors("search", qpath, &dim, &q, &nq) != 0)
		goto out;
	pool = es_pool_new(threads);
	j.h = h;
	j.q = q;
	j.dim = dim;
	j.k = k;
	j.ef = ef;
	j.ids = malloc(nq * k * sizeof *j.ids);
	j.hits = pool ? calloc(es_pool_size(pool), sizeof *j.hits) : NULL;
	if (!pool || !j.ids || !j.hits) {
		fprintf(stderr, "embedsrv index search: out of memory\n");
		goto out;
	}
	for (unsigned w = 0; w < es_pool_size(pool); w++)
		if (!(j.hits[w] = malloc(k * sizeof(es_hit)))) {
			fprintf(stderr, "embedsrv index search: out of memory\n");
			goto out;
		}
	double dt = 0, wall = 0, cpu0 = cpu_s();
	for (uint32_t r = 0; r < repeat && !j.failed; r++) {
		double t0 = now_s();
		es_pool_parallel_for(pool, nq, 16, search_fn, &j);
		double t1 = now_s() - t0;
		wall += t1;
		if (r == 0 || t1 < dt)
			dt = t1;
	}
	double cpu = cpu_s() - cpu0;
	if (j.failed) {
		fprintf(stderr, "embedsrv index search: %s: %s\n", qpath, j.err.msg);
		goto out;
	}
	f = fopen(output, "wb");
	if (!f || fwrite(j.ids, sizeof *j.ids, nq * k, f) != nq * k) {
		fprintf(stderr, "embedsrv index search: %s: write failed\n", output);
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		fprintf(stderr, "embedsrv index search: %s: write failed\n", output);
		goto out;
	}
	f = NULL;
	if (dt <= 0)
		dt = 1e-9;
	fprintf(stderr, "searched %zu queries (k %u, ef %u, %u threads) in %.3f s\n",
		nq, k, ef, es_pool_size(pool), dt);
	fprintf(stderr, "queries_per_second %.1f\n", (double)nq / dt);
	/* over all passes: the mean rate, and CPU seconds per wall second
	 * (a pool that idles while waking threads shows it here) */
	fprintf(stderr, "mean_queries_per_second %.1f\n",
		(double)nq * repeat / (wall > 0 ? wall : 1e-9));
	fprintf(stderr, "cpu_per_wall %.2f\n", wall > 0 ? cpu / wall : 0.0);
	ret = 0;
out:
	if (f)
		fclose(f);
	if (j.hits)
		for (unsigned w = 0; pool && w < es_pool_size(pool); w++)
			free(j.hits[w]);
	free(j.hits);
	free(j.ids);
	es_pool_free(pool);
	free(q);
	hnsw_free(h);
	return ret;
}

int cmd_index(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		FILE *o = argc < 2 ? stderr : stdout;
		build_usage(o);
		search_usage(o);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "build") == 0)
		return index_build(argc - 1, argv + 1);
	if (strcmp(argv[1], "search") == 0)
		return index_search(argc - 1, argv + 1);
	fprintf(stderr, "embedsrv index: unknown subcommand '%s' (build or search)\n", argv[1]);
	return 2;
}
