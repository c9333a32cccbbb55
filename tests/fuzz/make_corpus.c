/*
 * make_corpus.c — writes the seed corpora of the fuzz targets:
 *
 *   ES_SOURCE_ROOT=. build/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
 *
 * Seeds are small, valid files made by the product's own writers from the
 * fixtures in tests/data (the same files as ../shared/fixtures/vectors):
 * models cut down to a few words in every input format, HNSW indexes of
 * each metric and quantisation, a log segment and a data directory with
 * every record type and snapshot, and API requests for every route.  A few
 * edge cases (no header, CRLF, trailing newline, deletions) are included.
 * Output is deterministic, so re-running it changes nothing in git.
 *
 * Files named *-v1.* and *-v2.* (hnsw/, snapshot/) are not written here:
 * they are the seeds of earlier builds, whose HNSW files were format
 * version 1 and 2 (CRC-32; version 3 checksums with CRC-32C), kept so the
 * fuzzers keep reaching the older readers (hnsw.c reads all three) and so
 * test_hnsw can check that a version 2 file loads to exactly the index that
 * today's writer saves here.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "collection.h"
#include "encoder.h"
#include "fuzz_common.h"
#include "hnsw.h"
#include "lexical.h"
#include "model.h"
#include "model_io.h"
#include "store.h"
#include "vocab.h"

static const char *out_root;

static __attribute__((noreturn)) void die(const char *what, const es_error *err)
{
	fprintf(stderr, "make_corpus: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

static void mkdirs(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *s = buf + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(buf, 0755);
			*s = '/';
		}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		die(path, NULL);
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", out_root, target);
	mkdirs(path);
	snprintf(path, sizeof path, "%s/%s/%s", out_root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(path, NULL);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path, NULL);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
		die(path, NULL);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void copy_file(const char *target, const char *name, const char *src)
{
	size_t n;
	unsigned char *b = slurp(src, &n);
	put(target, name, b, n);
	free(b);
}

static void copy_fixture(const char *target, const char *name, const char *rel)
{
	char *src = fz_source_path(rel);
	copy_file(target, name, src);
	free(src);
}

/* ---------------------------------------------------------------- models */

/* The first n words of m as a new model (no subwords). */
static es_model *cut(const es_model *m, size_t n)
{
	es_model_params p;
	es_model_get_params(m, &p);
	p.bucket = 0;
	p.maxn = 0;
	p.minn = 0;
	es_model *o;
	es_error err;
	if (es_model_new(&p, &o, &err))
		die("model", &err);
	const es_vocab *v = es_model_vocab(m);
	for (uint32_t i = 0; i < n && i < es_model_size(m); i++) {
		int added;
		if (es_model_add_word(o, es_vocab_word(v, i), es_vocab_word_len(v, i),
				      es_vocab_count(v, i), es_model_vector(m, i), &added, &err))
			die("add word", &err);
	}
	return o;
}

static es_model *load(const char *rel)
{
	es_model *m;
	es_error err;
	char *path = fz_source_path(rel);
	if (es_model_load(path, ES_FORMAT_AUTO, 0, &m, &err))
		die(rel, &err);
	free(path);
	return m;
}

static void save_esm(const es_model *m, const char *name)
{
	char tmp[4096];
	es_error err;
	snprintf(tmp, sizeof tmp, "%s/model_esm/%s", out_root, name);
	mkdirs(out_root);
	char d[4096];
	snprintf(d, sizeof d, "%s/model_esm", out_root);
	mkdirs(d);
	if (es_model_save_esm(m, tmp, &err))
		die(name, &err);
}

/* word2vec text: "count dim" header (or none: GloVe), %.6g numbers. */
static void write_text(const es_model *m, const char *name, int header, int crlf)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint32_t dim = es_model_dim(m);
	const es_vocab *v = es_model_vocab(m);
	if (header)
		fprintf(f, "%zu %u%s\n", es_model_size(m), dim, crlf ? "\r" : "");
	for (uint32_t i = 0; i < es_model_size(m); i++) {
		fprintf(f, "%.*s", (int)es_vocab_word_len(v, i), es_vocab_word(v, i));
		const float *x = es_model_vector(m, i);
		for (uint32_t k = 0; k < dim; k++)
			fprintf(f, " %.6g", x[k]);
		fprintf(f, "%s\n", crlf ? "\r" : "");
	}
	fclose(f);
	put("model_text", name, buf, len);
	free(buf);
}

/* word2vec binary: "count dim\n", then "word " and dim float32 per word,
 * with or without a newline after each vector (both occur in the wild). */
static void write_w2v(const es_model *m, const char *name, int newline)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint32_t dim = es_model_dim(m);
	const es_vocab *v = es_model_vocab(m);
	fprintf(f, "%zu %u\n", es_model_size(m), dim);
	for (uint32_t i = 0; i < es_model_size(m); i++) {
		fprintf(f, "%.*s ", (int)es_vocab_word_len(v, i), es_vocab_word(v, i));
		fwrite(es_model_vector(m, i), 4, dim, f);
		if (newline)
			fputc('\n', f);
	}
	fclose(f);
	put("model_w2v", name, buf, len);
	free(buf);
}

static void models(void)
{
	es_error err;
	es_model *lee = load("tests/data/lee-10d.vec");
	es_model *w2v = load("tests/data/word2vec-binary-2747x10.bin");
	es_model *toy = load("tests/data/fasttext-toy.bin");
	es_model *small = cut(lee, 12), *tiny = cut(w2v, 5);

	write_text(small, "lee12.vec", 1, 0);
	write_text(small, "lee12-glove.txt", 0, 0);
	write_text(tiny, "w2v5-crlf.txt", 1, 1);
	copy_fixture("model_text", "fasttext-toy.vec", "tests/data/fasttext-toy.vec");
	put("model_text", "one-word.txt", "1 3\nx 1 2 3\n", 12);
	put("model_text", "glove-unicode.txt", "Zürich 0.5 -1e-3\nnaïve 1 2\n", 29);

	write_w2v(tiny, "w2v5.bin", 0);
	write_w2v(small, "lee12-nl.bin", 1);

	copy_fixture("model_ftbin", "fasttext-toy.bin", "tests/data/fasttext-toy.bin");
	copy_fixture("model_ftbin", "fasttext-crime-and-punishment.bin",
		     "tests/data/fasttext-crime-and-punishment.bin");

	save_esm(toy, "fasttext-toy.esm");
	save_esm(tiny, "w2v5.esm");
	float common[10] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (es_model_set_common(small, common, &err) ||
	    es_model_set_meta(small, "source", "fuzz seed", &err))
		die("common", &err);
	save_esm(small, "lee12-common-meta.esm");

	es_model_free(small);
	es_model_free(tiny);
	es_model_free(toy);
	es_model_free(w2v);
	es_model_free(lee);
}

/* ----------------------------------------------------------------- HNSW */

static void vec_for(uint32_t dim, uint32_t i, float *v)
{
	for (uint32_t k = 0; k < dim; k++)
		v[k] = (float)((i * 7 + k * 3) % 11) - 5.0f + 0.25f * (float)k;
}

static void one_hnsw(const char *name, uint32_t dim, es_metric metric, int q8,
		     uint32_t n, int deletes)
{
	hnsw_params p;
	hnsw_params_default(&p, dim);
	p.metric = metric;
	p.quantize_int8 = q8;
	p.M = 4;
	p.ef_construction = 16;
	p.seed = 42;
	hnsw *h;
	es_error err;
	if (hnsw_new(&p, &h, &err))
		die("hnsw", &err);
	float v[64];
	for (uint32_t i = 0; i < n; i++) {
		vec_for(dim, i, v);
		if (hnsw_add(h, i * 3 + 1, v, &err))
			die("hnsw add", &err);
	}
	for (uint32_t i = 0; i < n && deletes; i += 3)
		hnsw_delete(h, i * 3 + 1);
	char path[4096];
	snprintf(path, sizeof path, "%s/hnsw", out_root);
	mkdirs(path);
	snprintf(path, sizeof path, "%s/hnsw/%s", out_root, name);
	if (hnsw_save(h, path, &err))
		die(name, &err);
	hnsw_free(h);
}

static void hnsws(void)
{
	one_hnsw("cos-d4-n30.hnsw", 4, ES_METRIC_COSINE, 0, 30, 0);
	one_hnsw("l2-int8-d8-n20-del.hnsw", 8, ES_METRIC_L2, 1, 20, 1);
	one_hnsw("dot-d3-n6.hnsw", 3, ES_METRIC_DOT, 0, 6, 0);
	one_hnsw("empty-d2.hnsw", 2, ES_METRIC_COSINE, 0, 0, 0);
}

/* ---------------------------------------------------------------- store */

static void store_ops(es_registry *reg, int phase)
{
	es_error err;
	es_collection *c;
	es_collection_params p;
	memset(&p, 0, sizeof p);
	if (phase == 0) {
		p.dim = 4;
		p.metric = ES_METRIC_COSINE;
		p.M = 4;
		p.ef_construction = 16;
		if (es_registry_create(reg, "docs", &p, NULL, &err))
			die("create", &err);
		p.dim = 3;
		p.metric = ES_METRIC_L2;
		p.quantize_int8 = 1;
		snprintf(p.model, sizeof p.model, "small");
		if (es_registry_create(reg, "q8", &p, NULL, &err) ||
		    es_registry_create(reg, "gone", &p, NULL, &err))
			die("create", &err);
	}
	const char *names[] = {"docs", "q8"};
	for (int k = 0; k < 2; k++) {
		if (es_registry_get(reg, names[k], &c, &err))
			die("get", &err);
		uint32_t dim = es_collection_get_params(c)->dim;
		float v[4][4];
		es_point_in in[4];
		memset(in, 0, sizeof in);
		char sid[4][16];
		for (int i = 0; i < 4; i++) {
			vec_for(dim, (uint32_t)(i + phase * 4 + k), v[i]);
			in[i].vector = v[i];
			if (i % 2) {
				snprintf(sid[i], sizeof sid[i], "p%d-%d", phase, i);
				in[i].id.is_str = 1;
				in[i].id.str = sid[i];
				in[i].id.len = strlen(sid[i]);
				in[i].payload = "{\"t\":\"a\",\"n\":[1,2]}";
				in[i].payload_len = strlen(in[i].payload);
			} else {
				in[i].id.num = (uint64_t)(i + phase * 10);
			}
		}
		if (es_collection_upsert(c, in, 4, &err))
			die("upsert", &err);
		if (es_collection_delete(c, &in[0].id, 1, NULL, &err))
			die("delete", &err);
		es_collection_release(c);
	}
	if (phase == 0 && es_registry_drop(reg, "gone", &err))
		die("drop", &err);
}

static es_store *store_open(const char *dir, es_registry **reg)
{
	es_error err;
	es_store_options o;
	es_store_options_default(&o);
	o.policy = WAL_FSYNC_NEVER;
	o.checkpoint_bytes = UINT64_MAX;
	es_store *s;
	if (es_registry_new(api_payload_hooks(), reg, &err) ||
	    es_store_open(dir, &o, *reg, NULL, &s, &err))
		die(dir, &err);
	return s;
}

/* Pack the data directory into fuzz_snapshot's container format. */
static void pack_dir(const char *dir, const char *sub, FILE *out)
{
	char path[4096];
	snprintf(path, sizeof path, "%s%s%s", dir, *sub ? "/" : "", sub);
	DIR *d = opendir(path);
	if (!d)
		die(path, NULL);
	char *names[64];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 64)
		if (e->d_name[0] != '.' && strcmp(e->d_name, "LOCK") != 0 &&
		    strcmp(e->d_name, "wal") != 0 && strcmp(e->d_name, "snap") != 0)
			names[n++] = strdup(e->d_name);
	closedir(d);
	for (size_t i = 0; i + 1 < n; i++) /* sorted: deterministic output */
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		char rel[512], full[4400];
		snprintf(rel, sizeof rel, "%s%s%s", sub, *sub ? "/" : "", names[i]);
		snprintf(full, sizeof full, "%s/%s", dir, rel);
		size_t len;
		unsigned char *b = slurp(full, &len);
		unsigned char hdr[5];
		fputc((int)strlen(rel), out);
		fwrite(rel, 1, strlen(rel), out);
		hdr[0] = (unsigned char)len;
		hdr[1] = (unsigned char)(len >> 8);
		hdr[2] = (unsigned char)(len >> 16);
		hdr[3] = (unsigned char)(len >> 24);
		fwrite(hdr, 1, 4, out);
		fwrite(b, 1, len, out);
		free(b);
		free(names[i]);
	}
}

static void pack(const char *dir, const char *name)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	pack_dir(dir, "", f);
	pack_dir(dir, "snap", f);
	pack_dir(dir, "wal", f);
	fclose(f);
	put("snapshot", name, buf, len);
	free(buf);
}

static void stores(void)
{
	char dir[4096];
	es_error err;
	es_registry *reg;
	snprintf(dir, sizeof dir, "%s/store", fz_scratch_dir());

	/* 1: a log only (no checkpoint): every record type */
	es_store *s = store_open(dir, &reg);
	store_ops(reg, 0);
	if (es_store_close(s, 0, &err))
		die("close", &err);
	es_registry_free(reg);
	char seg[4800];
	snprintf(seg, sizeof seg, "%s/wal/%016x.log", dir, 0);
	copy_file("wal", "all-records.log", seg);
	pack(dir, "log-only.dir");

	/* 2: snapshots, then more log after them */
	s = store_open(dir, &reg);
	if (es_store_checkpoint(s, NULL, &err))
		die("checkpoint", &err);
	store_ops(reg, 1);
	if (es_store_close(s, 0, &err))
		die("close", &err);
	es_registry_free(reg);
	pack(dir, "snap-and-log.dir");

	/* 3: everything in snapshots (final checkpoint), an empty log */
	s = store_open(dir, &reg);
	if (es_store_close(s, 1, &err))
		die("close", &err);
	es_registry_free(reg);
	pack(dir, "snap-only.dir");
	DIR *d;
	char wdir[4400];
	snprintf(wdir, sizeof wdir, "%s/wal", dir);
	if ((d = opendir(wdir))) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(seg, sizeof seg, "%s/%s", wdir, e->d_name);
				copy_file("wal", "empty-after-checkpoint.log", seg);
			}
		closedir(d);
	}
	fz_clear_dir(fz_scratch_dir());
}

/* ------------------------------------------------------------------ API */

/* ------------------------------------------------------------- lexical */

static void one_lexical(const char *name, int stem, int stop, const char *const *texts,
			size_t n, int del)
{
	es_lexical_params p;
	es_lexical_params_default(&p);
	p.stemming = stem;
	p.stopwords = stop;
	es_lexical *lx;
	es_error err;
	if (es_lexical_new(&p, &lx, &err))
		die("lexical", &err);
	for (size_t i = 0; i < n; i++)
		if (es_lexical_upsert(lx, i * 3 + 1, texts[i], strlen(texts[i]), &err))
			die("lexical upsert", &err);
	if (del && n)
		es_lexical_delete(lx, 1);
	unsigned char *b;
	size_t len;
	if (es_lexical_serialize(lx, &b, &len, &err))
		die("lexical serialize", &err);
	put("lexical", name, b, len);
	free(b);
	es_lexical_free(lx);
}

static void lexicals(void)
{
	static const char *const texts[] = {
		"The Dewey Decimal Classification and its editions",
		"Use made of technical libraries: a library survey",
		"w1 w2 w3 w1 w1 catalogue cataloguing",
		"Zürich naïve café, don't well-known",
		"",
	};
	one_lexical("empty.lex", 0, 0, texts, 0, 0);
	one_lexical("plain.lex", 0, 0, texts, 5, 0);
	one_lexical("stem-stop-del.lex", 1, 1, texts, 5, 1);
}

static void api(void)
{
	static const char *const req[][2] = {
		{"healthz", "GET /healthz"},
		{"info", "GET /v1/info\n---\nGET /v1/models\n---\nGET /readyz\n---\nGET /metrics"},
		{"embeddings", "POST /v1/embeddings\n{\"input\":[\"the police\",\"government\"],"
			       "\"model\":\"small\",\"encoding_format\":\"float\",\"dimensions\":10}"},
		{"embeddings-b64", "POST /v1/embeddings\n{\"input\":\"Zürich crime\",\"model\":\"ft\","
				   "\"encoding_format\":\"base64\",\"normalize\":true,\"truncate\":false}"},
		{"similarity", "POST /v1/similarity\n{\"pairs\":[[\"police\",\"government\"]],\"model\":\"small\"}"},
		{"tokenize", "POST /v1/tokenize\n{\"input\":\"the crime, punishment!\",\"model\":\"ft\"}"},
		{"collections", "GET /v1/collections\n---\nGET /v1/collections/x\n---\nGET /v1/collections/q/"},
		{"create-drop", "PUT /v1/collections/new\n{\"dim\":4,\"metric\":\"l2\",\"m\":8,"
				"\"ef_construction\":32,\"quantization\":\"int8\"}\n---\n"
				"PUT /v1/collections/new/points\n{\"points\":[{\"id\":9,\"vector\":[1,2,3,4],"
				"\"payload\":{\"a\":1}}]}\n---\nDELETE /v1/collections/new\n---\n"
				"GET /v1/collections/new"},
		{"upsert", "PUT /v1/collections/x/points\n{\"points\":[{\"id\":3,\"text\":\"police\","
			   "\"payload\":{\"t\":\"c\",\"n\":5}},{\"id\":\"z\",\"vector\":[0,1,0,0,0,0,0,0,0,0]}]}"},
		{"get-point", "GET /v1/collections/x/points/1\n---\nGET /v1/collections/x/points/b\n---\n"
			      "GET /v1/collections/q/points/s"},
		{"delete-points", "POST /v1/collections/x/points/delete\n{\"points\":[1,\"b\",99]}\n---\n"
				  "POST /v1/collections/q/points/delete\n{\"points\":[\"s\"]}\n---\nGET /v1/collections/q/points/s"},
		{"search", "POST /v1/collections/x/search\n{\"text\":\"police\",\"k\":3,\"ef\":20,"
			   "\"with_payload\":true,\"with_vector\":true,\"score_threshold\":-1,"
			   "\"filter\":{\"must\":[{\"key\":\"t\",\"match\":{\"any\":[\"a\",\"b\"]}}],"
			   "\"should\":[{\"key\":\"n\",\"match\":3},{\"key\":\"n\",\"match\":2}],"
			   "\"must_not\":[{\"key\":\"t\",\"match\":{\"value\":\"z\"}}]}}"},
		{"search-vector", "POST /v1/collections/q/search\n{\"vector\":[0.1,0.2,0.3,0.4,0.5],\"k\":2}"},
		{"search-id", "POST /v1/collections/x/search\n{\"id\":1,\"k\":2}"},
		{"search-batch", "POST /v1/collections/x/search\n{\"searches\":[{\"text\":\"police\",\"k\":1},"
				 "{\"vector\":[1,0,0,0,0,0,0,0,0,1],\"k\":2}]}"},
		{"snapshot", "POST /v1/collections/x/snapshot\n{}"},
		{"neighbors", "POST /v1/words/neighbors\n{\"word\":\"police\",\"k\":3,\"restrict_vocab\":100,"
			      "\"model\":\"small\"}"},
		{"analogy", "POST /v1/words/analogy\n{\"positive\":[\"police\",\"government\"],\"negative\":[\"the\"],\"k\":2}\n---\n"
			    "POST /v1/words/analogy\n{\"positive\":[\"king\",\"woman\"],\"negative\":[\"man\"],"
			    "\"method\":\"3cosmul\",\"model\":\"ft\"}"},
		{"arithmetic", "POST /v1/arithmetic\n{\"terms\":[{\"word\":\"police\",\"weight\":1},"
			       "{\"word\":\"government\",\"weight\":-0.5},{\"vector\":[0,0,0,0,0,0,0,0,0,1]}],\"k\":3}"},
		{"bad", "POST /v1/embeddings\n{\"input\":\n---\nPATCH /v1/collections/x\n---\n"
			"GET /v1/nothing\n---\nPOST /v1/collections/x/search\n{\"k\":-1,\"score_treshold\":1}"},
		{"scroll", "POST /v1/collections/x/points/scroll\n{\"limit\":1,\"with_vector\":true}\n---\n"
			   "POST /v1/collections/x/points/scroll\n{\"limit\":2,\"offset\":1,\"with_payload\":false}\n---\n"
			   "POST /v1/collections/q/points/scroll"},
		{"ui", "GET /ui/\n---\nGET /ui/app.js\n---\nGET /ui/style.css\n---\nGET /ui/nope\n---\nGET /ui"},
		{"encoded", "PUT /v1/collections/a%00b\n{}\n---\nGET /v1/collections/x/points/1%00junk\n---\n"
			    "GET /v1/collections/%78/points/%31\n---\nDELETE /v1/collections/x%2500"},
	};
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
		put("api", req[i][0], req[i][1], strlen(req[i][1]));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ES_SOURCE_ROOT=. %s OUTDIR\n", argv[0]);
		return 2;
	}
	out_root = argv[1];
	mkdirs(out_root);
	models();
	hnsws();
	stores();
	lexicals();
	api();
	return 0;
}
