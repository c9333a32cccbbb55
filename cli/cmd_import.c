/*
 * cmd_import.c — `embedsrv import`: bulk-load raw float32 vectors into a
 * collection of a data directory, offline (no server running on it).
 *
 * The graph is built on all cores (hnsw_add_batch) instead of one point at
 * a time through the API, and the result is written as the collection's
 * snapshot, so `embedsrv serve --data-dir DIR` starts with it without a
 * rebuild.  The points are not written to the log: the import is durable
 * once the snapshot is; if the import fails half-way the collection exists
 * but holds nothing of this import.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "cli_args.h"
#include "commands.h"
#include "store.h"
#include "threadpool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: embedsrv import --data-dir DIR --collection NAME --input BASE --dim D\n"
		"         [--metric cosine|dot|l2] [--M 16] [--ef-construction 200]\n"
		"         [--threads T] [--first-id 0]\n"
		"BASE: raw little-endian float32 rows; point ids are first-id, first-id+1, ...\n"
		"The collection is created if absent (then with these parameters); the\n"
		"ids must not exist in it.  Run while no server uses DIR.\n");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The rows of BASE (raw float32, dim per row) into *v, checked (finite;
 * not all zeros under cosine), and their ids first, first+1, ... into *ids
 * (both malloc).  0, or -1 (message printed; nothing to free). */
static int read_rows(const char *input, uint32_t dim, es_metric metric, uint64_t first,
		     float **vp, uint64_t **idsp, size_t *np)
{
	int rc = -1;
	float *v = NULL;
	uint64_t *ids = NULL;
	FILE *f = fopen(input, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "embedsrv import: %s: %s\n", input, strerror(errno));
		goto out;
	}
	size_t row = (size_t)dim * 4, size = (size_t)st.st_size;
	if (size == 0 || size % row) {
		fprintf(stderr, "embedsrv import: %s: size %zu is not a multiple of dim %u x 4 bytes\n",
			input, size, dim);
		goto out;
	}
	size_t n = size / row;
	v = malloc(size);
	ids = malloc(n * sizeof *ids);
	if (!v || !ids || fread(v, 1, size, f) != size) {
		fprintf(stderr, "embedsrv import: %s: out of memory or read failed\n", input);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		double norm = 0;
		for (size_t j = 0; j < dim; j++) {
			float x = v[i * dim + j];
			if (!isfinite(x)) {
				fprintf(stderr, "embedsrv import: %s: row %zu: value %zu is not finite\n",
					input, i, j);
				goto out;
			}
			norm += (double)x * x;
		}
		if (norm == 0 && metric == ES_METRIC_COSINE) {
			fprintf(stderr, "embedsrv import: %s: row %zu is all zeros (no direction "
				"under cosine)\n", input, i);
			goto out;
		}
		ids[i] = first + i;
	}
	*vp = v;
	*idsp = ids;
	*np = n;
	v = NULL;
	ids = NULL;
	rc = 0;
out:
	if (f)
		fclose(f);
	free(v);
	free(ids);
	return rc;
}

int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data-dir", required_argument, NULL, 'd'},
		{"collection", required_argument, NULL, 'c'},
		{"input", required_argument, NULL, 'i'},
		{"dim", required_argument, NULL, 'D'},
		{"metric", required_argument, NULL, 'm'},
		{"M", required_argument, NULL, 'M'},
		{"ef-construction", required_argument, NULL, 'e'},
		{"threads", required_argument, NULL, 't'},
		{"first-id", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *name = NULL, *input = NULL, *metric = "cosine";
	uint32_t dim = 0, M = 0, efc = 0, threads = 0;
	uint64_t first = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'c': name = optarg; break;
		case 'i': input = optarg; break;
		case 'm': metric = optarg; break;
		case 'D': if (cli_u32("import", "--dim", optarg, 0, 65536, &dim)) return 2; break;
		case 'M': if (cli_u32("import", "--M", optarg, 0, 1024, &M)) return 2; break;
		case 'e': if (cli_u32("import", "--ef-construction", optarg, 0, 100000, &efc)) return 2; break;
		case 't': if (cli_u32("import", "--threads", optarg, 0, 1024, &threads)) return 2; break;
		case 'f': if (cli_u64("import", "--first-id", optarg, 0, UINT64_MAX, &first)) return 2; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!dir || !name || !input || !dim || optind != argc) {
		usage(stderr);
		return 2;
	}
	es_collection_params p;
	memset(&p, 0, sizeof p);
	p.dim = dim;
	p.M = M;
	p.ef_construction = efc;
	if (es_metric_parse(metric, &p.metric) != 0) {
		fprintf(stderr, "embedsrv import: --metric must be cosine, dot or l2\n");
		return 2;
	}

	int status = 1;
	float *v = NULL;
	uint64_t *ids = NULL;
	es_registry *reg = NULL;
	es_store *store = NULL;
	es_collection *col = NULL;
	es_pool *pool = NULL;
	es_error err;
	es_error_clear(&err);
	size_t n;
	if (read_rows(input, dim, p.metric, first, &v, &ids, &n))
		goto out;
	double t0 = now_s();
	if (es_registry_new(api_payload_hooks(), &reg, &err)) /* replays payload updates */
		goto fail;
	es_store_options so;
	es_store_options_default(&so);
	so.policy = WAL_FSYNC_NEVER; /* the snapshot below is what makes it durable */
	so.checkpoint_bytes = UINT64_MAX;
	if (es_store_open(dir, &so, reg, NULL, &store, &err))
		goto fail;
	if (es_registry_get(reg, name, &col, NULL) != 0 &&
	    es_registry_create(reg, name, &p, &col, &err) != 0)
		goto fail;
	if (es_collection_get_params(col)->dim != dim) {
		es_err(&err, ES_EDIM, "collection '%s' has dimension %u, the input %u", name,
		       es_collection_get_params(col)->dim, dim);
		goto fail;
	}
	pool = es_pool_new((unsigned)threads);
	if (!pool) {
		es_err(&err, ES_ENOMEM, "cannot start threads");
		goto fail;
	}
	if (es_collection_bulk_insert(col, ids, v, n, pool, &err))
		goto fail;
	double t1 = now_s();
	if (es_store_checkpoint(store, name, &err))
		goto fail;
	double t2 = now_s();
	fprintf(stderr, "embedsrv import: %zu points into '%s' (graph built in %.1f s on %u "
		"threads, snapshot written in %.1f s)\n", n, name, t1 - t0, es_pool_size(pool),
		t2 - t1);
	status = 0;
	goto out;
fail:
	fprintf(stderr, "embedsrv import: %s\n", err.msg[0] ? err.msg : es_strerror(err.code));
out:
	es_collection_release(col);
	if (store && es_store_close(store, 0, &err) != 0 && status == 0) {
		fprintf(stderr, "embedsrv import: %s\n", err.msg);
		status = 1;
	}
	es_registry_free(reg);
	es_pool_free(pool);
	free(v);
	free(ids);
	return status;
}
