/*
 * fuzz_hnsw.c — the HNSW index reader (index/hnsw.c hnsw_read, which
 * hnsw_load and collection snapshots use).  The input is an index file as
 * hnsw_save writes it; it is read through fmemopen as it is, and again with
 * its CRC-32 recomputed so mutations reach the graph checks.
 *
 * An index the reader accepts must then work: searches (plain, filtered,
 * k larger than the index), an insert, a delete and an update run on it,
 * and it must write out and read back with the same count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hnsw.h"

static int odd_labels(void *ctx, uint64_t label)
{
	(void)ctx;
	return (int)(label & 1);
}

static void exercise(hnsw *h)
{
	const hnsw_params *p = hnsw_get_params(h);
	uint32_t dim = p->dim;
	float *q = malloc((size_t)dim * sizeof *q);
	es_hit hits[40];
	size_t nh;
	es_error err;
	if (!q)
		return;
	for (uint32_t i = 0; i < dim; i++)
		q[i] = (float)((i % 7) + 1) * (i & 1 ? -0.25f : 0.5f);
	size_t before = hnsw_count(h);
	if (hnsw_search(h, q, 10, 32, NULL, NULL, hits, &nh, &err) != 0)
		fz_fail("search on a loaded index failed: %s", err.msg);
	if (nh > 10 || (before > 0 && nh == 0))
		fz_fail("search returned %zu of 10 from %zu points", nh, before);
	hnsw_search(h, q, 40, 0, odd_labels, NULL, hits, &nh, &err);
	uint64_t first = nh ? hits[0].label : 0;
	for (size_t i = 0; i < nh && i < 4; i++)
		if (hnsw_get_vector(h, hits[i].label, q) != 0)
			fz_fail("hit %llu has no vector", (unsigned long long)hits[i].label);
	for (uint32_t i = 0; i < dim; i++)
		q[i] = (float)(i + 1);
	if (hnsw_add(h, (uint64_t)1 << 62, q, &err) != 0)
		fz_fail("insert into a loaded index failed: %s", err.msg);
	if (nh) {
		hnsw_delete(h, first);
		q[0] += 1.0f;
		hnsw_add(h, first ^ 1, q, &err); /* insert or update */
	}
	hnsw_search(h, q, 5, 16, NULL, NULL, hits, &nh, &err);

	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	if (f) {
		int rc = hnsw_write(h, f, &err);
		fclose(f);
		if (rc == 0) {
			FILE *r = fmemopen(buf, blen, "rb");
			hnsw *back = NULL;
			if (r && hnsw_read(r, &back, &err) != 0)
				fz_fail("a loaded index written back does not read: %s", err.msg);
			if (back && hnsw_count(back) != hnsw_count(h))
				fz_fail("count %zu after write+read, %zu before",
					hnsw_count(back), hnsw_count(h));
			hnsw_free(back);
			if (r)
				fclose(r);
		}
	}
	free(buf);
	free(q);
}

static void read_once(const uint8_t *data, size_t size)
{
	if (size == 0)
		return; /* fmemopen wants a non-empty buffer */
	FILE *f = fmemopen((void *)data, size, "rb");
	if (!f)
		return;
	hnsw *h = NULL;
	es_error err;
	int rc = hnsw_read(f, &h, &err);
	if (getenv("FUZZ_VERBOSE")) /* see what the seeds reach */
		fprintf(stderr, "read: %s\n", rc ? err.msg : "ok");
	if (rc == 0) {
		exercise(h);
		hnsw_free(h);
	}
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_once(data, size);
	unsigned char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fz_fix_hnsw(copy, size);
	if (size && memcmp(copy, data, size) != 0)
		read_once(copy, size);
	free(copy);
	return 0;
}
