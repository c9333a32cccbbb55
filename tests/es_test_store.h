/*
 * es_test_store.h — data shared by the suites that check what a data
 * directory gives back (test_store.c, test_replication.c): deterministic
 * points (even ids numeric, odd ids strings, some with payloads), deletes,
 * and a canonical dump of a collection (every point bit-exact, sorted, plus
 * the answers of 20 searches) to compare two registries by.
 */
#ifndef ES_TEST_STORE_H
#define ES_TEST_STORE_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collection.h"

enum { DIM = 8 };

static void vec_for(uint64_t i, uint32_t gen, float *v)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + gen * 7919u + 1;
	for (int j = 0; j < DIM; j++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		v[j] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * (j + 1);
	}
}

/* Upsert points [from, to): even ids numeric, odd ids strings "doc-N". */
static int put_range(es_registry *r, const char *name, uint64_t from, uint64_t to,
		     uint32_t gen, es_error *err)
{
	es_collection *c;
	int rc = es_registry_get(r, name, &c, err);
	if (rc)
		return rc;
	size_t n = to - from;
	es_point_in *pts = calloc(n, sizeof *pts);
	float *vecs = malloc(n * DIM * sizeof *vecs);
	char (*ids)[32] = malloc(n * sizeof *ids);
	char (*pl)[64] = malloc(n * sizeof *pl);
	for (size_t k = 0; k < n; k++) {
		uint64_t i = from + k;
		vec_for(i, gen, vecs + k * DIM);
		pts[k].vector = vecs + k * DIM;
		if (i % 2) {
			int l = snprintf(ids[k], sizeof ids[k], "doc-%llu", (unsigned long long)i);
			pts[k].id.is_str = 1;
			pts[k].id.str = ids[k];
			pts[k].id.len = (size_t)l;
		} else {
			pts[k].id.num = i;
		}
		if (i % 3) {
			int l = snprintf(pl[k], sizeof pl[k], "{\"i\":%llu,\"gen\":%u}",
					 (unsigned long long)i, gen);
			pts[k].payload = pl[k];
			pts[k].payload_len = (size_t)l;
		}
	}
	rc = es_collection_upsert(c, pts, n, err);
	free(pts);
	free(vecs);
	free(ids);
	free(pl);
	es_collection_release(c);
	return rc;
}

static int del_range(es_registry *r, const char *name, uint64_t from, uint64_t to,
		     es_error *err)
{
	es_collection *c;
	int rc = es_registry_get(r, name, &c, err);
	if (rc)
		return rc;
	size_t n = to - from;
	es_point_id *ids = calloc(n, sizeof *ids);
	char (*s)[32] = malloc(n * sizeof *s);
	for (size_t k = 0; k < n; k++) {
		uint64_t i = from + k;
		if (i % 2) {
			int l = snprintf(s[k], sizeof s[k], "doc-%llu", (unsigned long long)i);
			ids[k].is_str = 1;
			ids[k].str = s[k];
			ids[k].len = (size_t)l;
		} else {
			ids[k].num = i;
		}
	}
	rc = es_collection_delete(c, ids, n, NULL, err);
	free(ids);
	free(s);
	es_collection_release(c);
	return rc;
}

/* Canonical dump of a collection: sorted lines "id|payload|vector hex",
 * plus the ids of a few searches. */
struct dump {
	char **lines;
	size_t n, cap;
};

static int dump_fn(void *ctx, const es_point_view *p)
{
	struct dump *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->lines = realloc(d->lines, d->cap * sizeof *d->lines);
	}
	char *line = malloc(1024);
	int o;
	if (p->id.is_str)
		o = snprintf(line, 1024, "s:%.*s|", (int)p->id.len, p->id.str);
	else
		o = snprintf(line, 1024, "n:%llu|", (unsigned long long)p->id.num);
	o += snprintf(line + o, 1024 - (size_t)o, "%.*s|", p->payload ? (int)p->payload_len : 4,
		      p->payload ? p->payload : "null");
	for (int j = 0; j < DIM; j++) {
		uint32_t bits;
		memcpy(&bits, &p->vector[j], 4);
		o += snprintf(line + o, 1024 - (size_t)o, "%08x", bits);
	}
	d->lines[d->n++] = line;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *dump_collection(es_registry *r, const char *name)
{
	es_collection *c;
	es_error err;
	if (es_registry_get(r, name, &c, &err) != 0)
		return strdup("<missing>");
	struct dump d = {0};
	ck_assert_int_eq(es_collection_foreach(c, dump_fn, &d), 0);
	qsort(d.lines, d.n, sizeof *d.lines, cmp_str);
	size_t total = 64;
	for (size_t i = 0; i < d.n; i++)
		total += strlen(d.lines[i]) + 1;
	total += 20 * 400;
	char *out = malloc(total);
	size_t o = (size_t)snprintf(out, total, "dim=%u count=%zu\n",
				    es_collection_get_params(c)->dim, es_collection_count(c));
	for (size_t i = 0; i < d.n; i++) {
		o += (size_t)snprintf(out + o, total - o, "%s\n", d.lines[i]);
		free(d.lines[i]);
	}
	free(d.lines);
	/* search answers */
	for (int q = 0; q < 20; q++) {
		float v[DIM];
		vec_for(100000 + (uint64_t)q, 0, v);
		es_search_req req = {0};
		req.query = v;
		req.k = 5;
		req.ef = 50;
		es_point_out *hits;
		size_t nh;
		ck_assert_int_eq(es_collection_search(c, &req, &hits, &nh, &err), 0);
		for (size_t i = 0; i < nh; i++) {
			if (hits[i].id.is_str)
				o += (size_t)snprintf(out + o, total - o, "%.*s ", (int)hits[i].id.len,
						      hits[i].id.str);
			else
				o += (size_t)snprintf(out + o, total - o, "%llu ",
						      (unsigned long long)hits[i].id.num);
		}
		o += (size_t)snprintf(out + o, total - o, "\n");
		es_hits_free(hits, nh);
	}
	es_collection_release(c);
	return out;
}

static inline es_registry *new_reg(void)
{
	es_registry *r;
	es_error err;
	ck_assert_int_eq(es_registry_new(NULL, &r, &err), 0);
	return r;
}

#endif
