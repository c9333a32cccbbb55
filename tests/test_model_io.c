/*
 * test_model_io.c — every reader on the real fixtures (tests/data, copied
 * from ../shared/fixtures/vectors), fastText .bin word vectors against
 * `fasttext print-word-vectors` output recorded once in tests/data/<name>.words.ref,
 * .esm and .vec round trips, and hostile files for every loader.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es_test.h"
#include "model.h"
#include "alloc.h"
#include "crc32c.h"
#include "model_io.h"

static char tmpdir[256];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/es_model_io_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *data(const char *name)
{
	static __thread char buf[512];
	char rel[256];
	snprintf(rel, sizeof rel, "tests/data/%s", name);
	return es_test_path(buf, sizeof buf, rel);
}

static es_model *load_ok(const char *path, es_model_format fmt)
{
	es_model *m = NULL;
	es_error err = {0};
	int rc = es_model_load(path, fmt, ES_LOAD_VERIFY, &m, &err);
	ck_assert_msg(rc == 0, "%s: %s", path, err.msg);
	return m;
}

/* Load must fail with code and a message naming the file and containing
 * `want` (case-sensitive substring). */
static void load_fails(const char *path, es_model_format fmt, int code,
		       const char *want)
{
	es_model *m = NULL;
	es_error err = {0};
	int rc = es_model_load(path, fmt, ES_LOAD_VERIFY, &m, &err);
	ck_assert_msg(rc != 0, "%s loaded but should fail (%s)", path, want);
	ck_assert_ptr_null(m);
	if (code)
		ck_assert_msg(rc == code, "%s: code %d, want %d (%s)", path, rc,
			      code, err.msg);
	ck_assert_msg(strstr(err.msg, path) != NULL, "message lacks path: %s",
		      err.msg);
	if (want)
		ck_assert_msg(strstr(err.msg, want) != NULL,
			      "message '%s' lacks '%s'", err.msg, want);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(*n + 1);
	ck_assert_uint_eq(fread(p, 1, *n, f), *n);
	fclose(f);
	return p;
}

static const char *tmp(const char *name)
{
	static __thread char buf[4][512];
	static __thread int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

START_TEST(test_detect)
{
	struct {
		const char *f;
		es_model_format fmt;
	} cases[] = {
		{"fasttext-toy.bin", ES_FORMAT_FASTTEXT_BIN},
		{"fasttext-toy.vec", ES_FORMAT_TEXT},
		{"word2vec-binary-2747x10.bin", ES_FORMAT_WORD2VEC_BIN},
		{"word2vec-text-1750x10.txt", ES_FORMAT_TEXT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		es_model_format f;
		ck_assert_int_eq(es_model_detect(data(cases[i].f), &f, NULL), 0);
		ck_assert_msg(f == cases[i].fmt, "%s", cases[i].f);
	}
	ck_assert_int_eq(es_model_format_parse("word2vec-bin"), ES_FORMAT_WORD2VEC_BIN);
	ck_assert_int_eq(es_model_format_parse("nope"), -1);
}
END_TEST

START_TEST(test_text_readers)
{
	es_model *m = load_ok(data("word2vec-text-1750x10.txt"), ES_FORMAT_AUTO);
	ck_assert_uint_eq(es_model_size(m), 1750);
	ck_assert_uint_eq(es_model_dim(m), 10);
	ck_assert_int_eq(es_model_has_counts(m), 0);
	int64_t id = es_vocab_find(es_model_vocab(m), "to", 2);
	ck_assert_int_eq(id, 1);
	ck_assert_float_eq_tol(es_model_vector(m, 1)[1], -2.197760f, 1e-6);
	ck_assert_str_eq(es_model_meta(m, "source_format"), "text");
	es_model_free(m);

	m = load_ok(data("fasttext-lee.vec"), ES_FORMAT_TEXT);
	ck_assert_uint_eq(es_model_size(m), 1762);
	ck_assert_float_eq_tol(es_model_vector(m, 0)[0], -0.65992f, 1e-6);
	es_model_free(m);

	/* GloVe style: no header line */
	const char *g = tmp("glove.txt");
	const char *txt = "the 0.1 0.2 0.3\nof -1 2.5e-1 3\r\n\n. . . 1 2 3\n";
	write_file(g, txt, strlen(txt));
	m = load_ok(g, ES_FORMAT_AUTO);
	ck_assert_uint_eq(es_model_size(m), 3);
	ck_assert_uint_eq(es_model_dim(m), 3);
	ck_assert_int_eq(es_vocab_find(es_model_vocab(m), ". . .", 5), 2);
	ck_assert_float_eq_tol(es_model_vector(m, 1)[1], 0.25f, 1e-7);
	es_model_free(m);
}
END_TEST

START_TEST(test_word2vec_bin)
{
	es_model *m = load_ok(data("word2vec-binary-2747x10.bin"), ES_FORMAT_AUTO);
	ck_assert_uint_eq(es_model_size(m), 2747);
	ck_assert_uint_eq(es_model_dim(m), 10);
	ck_assert_int_eq(es_vocab_find(es_model_vocab(m), "the", 3), 0);
	/* first vector's first float is 0x3ed7c8b9 (from the bytes) */
	float f;
	uint32_t u = 0x3ed7c8b9u;
	memcpy(&f, &u, 4);
	ck_assert_float_eq(es_model_vector(m, 0)[0], f);
	es_model_free(m);
}
END_TEST

/* Compare every line of a print-word-vectors reference with our vectors. */
static void check_against_fasttext(const char *bin, const char *ref)
{
	es_model *m = load_ok(data(bin), ES_FORMAT_AUTO);
	ck_assert_int_eq(es_model_has_subwords(m), 1);
	FILE *f = fopen(data(ref), "r");
	ck_assert_ptr_nonnull(f);
	char line[8192];
	uint32_t dim = es_model_dim(m);
	float *v = malloc(dim * sizeof(float));
	int lines = 0, oov = 0;
	while (fgets(line, sizeof line, f)) {
		char *sp = strchr(line, ' ');
		ck_assert_ptr_nonnull(sp);
		*sp = '\0';
		unsigned fl = 0;
		int rc = es_model_word_vector(m, line, strlen(line), v, &fl, NULL);
		ck_assert_msg(rc == 0, "no vector for %s", line);
		if (fl != 1)
			oov++;
		char *q = sp + 1;
		for (uint32_t j = 0; j < dim; j++) {
			char *e;
			double want = strtod(q, &e);
			ck_assert_ptr_ne(e, q);
			q = e;
			/* fastText prints 5 significant digits */
			double tol = 1e-5 + 0.5 * pow(10, floor(log10(fabs(want) + 1e-30)) - 4);
			ck_assert_msg(fabs(v[j] - want) <= tol,
				      "%s %s[%u]: ours %.7g fastText %.7g", bin,
				      line, j, v[j], want);
		}
		lines++;
	}
	ck_assert_int_ge(lines, 10);
	ck_assert_int_ge(oov, 5); /* OOV words, non-ASCII ones included */
	fclose(f);
	free(v);
	es_model_free(m);
}

START_TEST(test_fasttext_bin_matches_fasttext)
{
	check_against_fasttext("fasttext-toy.bin", "fasttext-toy.words.ref");
	check_against_fasttext("fasttext-crime-and-punishment.bin",
			       "fasttext-crime-and-punishment.words.ref");
}
END_TEST

START_TEST(test_fasttext_bin_vs_vec)
{
	/* the .vec fastText wrote next to the .bin has the same vocabulary */
	es_model *b = load_ok(data("fasttext-crime-and-punishment.bin"), ES_FORMAT_AUTO);
	es_model *t = load_ok(data("fasttext-crime-and-punishment.vec"), ES_FORMAT_AUTO);
	ck_assert_uint_eq(es_model_size(b), es_model_size(t));
	ck_assert_int_eq(es_model_has_counts(b), 1);
	ck_assert_uint_gt(es_vocab_count(es_model_vocab(b), 0), 0);
	for (uint32_t i = 0; i < es_model_size(t); i++) {
		const char *w = es_vocab_word(es_model_vocab(t), i);
		int64_t id = es_vocab_find(es_model_vocab(b), w, strlen(w));
		ck_assert_int_ge(id, 0);
		for (uint32_t j = 0; j < es_model_dim(b); j++)
			ck_assert_float_eq_tol(es_model_vector(b, (uint32_t)id)[j],
					       es_model_vector(t, i)[j], 1e-4);
	}
	ck_assert_str_eq(es_model_meta(b, "fasttext.minn"), "3");
	es_model_free(b);
	es_model_free(t);
}
END_TEST

START_TEST(test_esm_roundtrip)
{
	es_model *m = load_ok(data("fasttext-crime-and-punishment.bin"), ES_FORMAT_AUTO);
	uint32_t dim = es_model_dim(m);
	float u[64] = {0};
	u[0] = 3;
	u[1] = 4;
	ck_assert_int_eq(es_model_set_common(m, u, NULL), 0);
	ck_assert_int_eq(es_model_set_meta(m, "train.epoch", "5", NULL), 0);
	const char *out = tmp("m.esm");
	es_error err = {0};
	ck_assert_int_eq(es_model_save_esm(m, out, &err), 0);
	es_model *r = load_ok(out, ES_FORMAT_AUTO);
	ck_assert_int_eq(es_model_verify(r, NULL), 0);
	ck_assert_uint_eq(es_model_size(r), es_model_size(m));
	ck_assert_uint_eq(es_model_dim(r), dim);
	ck_assert_int_eq(es_model_has_counts(r), 1);
	ck_assert_int_eq(es_model_has_subwords(r), 1);
	ck_assert_str_eq(es_model_meta(r, "train.epoch"), "5");
	ck_assert_str_eq(es_model_meta(r, "fasttext.maxn"), "6");
	ck_assert_float_eq_tol(es_model_common(r)[0], 0.6f, 1e-6);
	ck_assert_float_eq_tol(es_model_common(r)[1], 0.8f, 1e-6);
	for (uint32_t i = 0; i < es_model_size(m); i++) {
		const char *w = es_vocab_word(es_model_vocab(m), i);
		ck_assert_int_eq(es_vocab_find(es_model_vocab(r), w, strlen(w)), i);
		ck_assert_uint_eq(es_vocab_count(es_model_vocab(r), i),
				  es_vocab_count(es_model_vocab(m), i));
		ck_assert_int_eq(memcmp(es_model_vector(r, i), es_model_vector(m, i),
					dim * sizeof(float)), 0);
	}
	float a[64], b[64];
	ck_assert_int_eq(es_model_word_vector(m, "zzqx", 4, a, NULL, NULL), 0);
	ck_assert_int_eq(es_model_word_vector(r, "zzqx", 4, b, NULL, NULL), 0);
	ck_assert_int_eq(memcmp(a, b, dim * sizeof(float)), 0);
	ck_assert_int_eq(es_vocab_find(es_model_vocab(r), "zzqx", 4), -1);

	/* .vec export reads back equal */
	const char *vec = tmp("m.vec");
	ck_assert_int_eq(es_model_save_vec(r, vec, &err), 0);
	es_model *t = load_ok(vec, ES_FORMAT_AUTO);
	ck_assert_uint_eq(es_model_size(t), es_model_size(m));
	for (uint32_t i = 0; i < es_model_size(m); i++)
		ck_assert_int_eq(memcmp(es_model_vector(t, i), es_model_vector(m, i),
					dim * sizeof(float)), 0);
	/* no temp files left behind */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", tmpdir);
	ck_assert_int_ne(system(cmd), 0);
	es_model_free(t);
	es_model_free(r);
	es_model_free(m);
}
END_TEST

START_TEST(test_hostile_text)
{
	struct {
		const char *content, *want;
	} cases[] = {
		{"3 2\na 1 2\nb 1 2\n", "truncated"},
		{"2 3\na 1 2 3\nb 1 2\n", "line 3"},
		{"a 1 2\nb 1\n", "expected 2"},
		{"a 1 x\n", "not a finite number"},
		{"a 1 nan\n", "not a finite number"},
		{"a 1 1e99\n", "not a finite number"},
		{"999999999999 300\na 1 2\n", "claims"},
		{"2 0\n", "dimension"},
		{"2 99999999\n", "dimension"},
		{"a\xff 1 2\n", "UTF-8"},
		{"\n\n\n", "no vectors"},
		{"onlyword\n", "expected a word"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *p = tmp("bad.txt");
		write_file(p, cases[i].content, strlen(cases[i].content));
		load_fails(p, ES_FORMAT_TEXT, ES_ECORRUPT, cases[i].want);
	}
	const char *e = tmp("empty.vec");
	write_file(e, "", 0);
	load_fails(e, ES_FORMAT_AUTO, ES_ECORRUPT, "empty");
	load_fails(tmp("missing.vec"), ES_FORMAT_AUTO, ES_ENOTFOUND, NULL);
}
END_TEST

/* Every prefix of a valid file (at a stride) must fail cleanly. */
static void truncations(const char *src, es_model_format fmt, size_t stride)
{
	size_t n;
	unsigned char *p = read_file(src, &n);
	const char *t = tmp("trunc");
	for (size_t cut = 1; cut < n; cut += stride) {
		write_file(t, p, cut);
		es_model *m = NULL;
		es_error err = {0};
		int rc = es_model_load(t, fmt, ES_LOAD_VERIFY, &m, &err);
		if (rc == 0) {
			/* text formats without a count can end at a line */
			ck_assert_msg(fmt == ES_FORMAT_TEXT || fmt == ES_FORMAT_FASTTEXT_BIN,
				      "%s cut at %zu loaded", src, cut);
			es_model_free(m);
			continue;
		}
		ck_assert_msg(strstr(err.msg, t) != NULL, "%s", err.msg);
	}
	free(p);
}

START_TEST(test_hostile_binary)
{
	truncations(data("word2vec-binary-2747x10.bin"), ES_FORMAT_WORD2VEC_BIN, 997);
	truncations(data("fasttext-toy.bin"), ES_FORMAT_FASTTEXT_BIN, 7);
	truncations(data("word2vec-text-1750x10.txt"), ES_FORMAT_TEXT, 1999);

	/* word2vec header claiming far more than the file holds */
	const char *p = tmp("huge.bin");
	const char *h = "4000000000 300\nthe \x01\x02\x03\x04";
	write_file(p, h, strlen(h));
	load_fails(p, ES_FORMAT_WORD2VEC_BIN, ES_ECORRUPT, "claims");
	/* word2vec binary: bad UTF-8 word, wrong dimension in the header */
	unsigned char wb[64] = "1 2\na\xff ";
	float two[2] = {0.5f, 1.0f};
	memcpy(wb + 7, two, 8);
	write_file(p, wb, 15);
	load_fails(p, ES_FORMAT_WORD2VEC_BIN, ES_ECORRUPT, "UTF-8");
	memcpy(wb, "1 3\nab ", 7);
	memcpy(wb + 7, two, 8);
	write_file(p, wb, 15);
	load_fails(p, ES_FORMAT_WORD2VEC_BIN, ES_ECORRUPT, NULL);

	/* fastText: bad magic, bad version, absurd dictionary, wrong dims */
	size_t n;
	unsigned char *ft = read_file(data("fasttext-toy.bin"), &n);
	unsigned char *c = malloc(n);
	memcpy(c, ft, n);
	c[4] = 99;
	write_file(p, c, n);
	load_fails(p, ES_FORMAT_FASTTEXT_BIN, ES_EUNSUPPORTED, "version 99");
	memcpy(c, ft, n);
	int32_t big = 0x7ffffff0;
	memcpy(c + 64, &big, 4); /* dictionary size */
	write_file(p, c, n);
	load_fails(p, ES_FORMAT_FASTTEXT_BIN, ES_ECORRUPT, "dictionary");
	memcpy(c, ft, n);
	int32_t dim = 7;
	memcpy(c + 8, &dim, 4);
	write_file(p, c, n);
	load_fails(p, ES_FORMAT_FASTTEXT_BIN, 0, NULL);
	memcpy(c, ft, n);
	c[0x5c + 1] = (char)0xff; /* first word "the" -> "t\xffe" */
	write_file(p, c, n);
	load_fails(p, ES_FORMAT_FASTTEXT_BIN, ES_ECORRUPT, "UTF-8");
	free(c);
	free(ft);
}
END_TEST

START_TEST(test_hostile_esm)
{
	es_model *m = load_ok(data("fasttext-toy.bin"), ES_FORMAT_AUTO);
	const char *good = tmp("good.esm");
	ck_assert_int_eq(es_model_save_esm(m, good, NULL), 0);
	es_model_free(m);
	truncations(good, ES_FORMAT_ESM, 13);
	size_t n;
	unsigned char *p = read_file(good, &n);
	unsigned char *c = malloc(n);
	const char *bad = tmp("bad.esm");
	/* a flipped byte anywhere must be caught by a checksum */
	for (size_t at = 0; at < n; at += 11) {
		memcpy(c, p, n);
		c[at] ^= 0x40;
		write_file(bad, c, n);
		load_fails(bad, ES_FORMAT_ESM, 0, NULL);
	}
	/* without ES_LOAD_VERIFY, damaged vectors are found by verify */
	memcpy(c, p, n);
	c[n - 3] ^= 1;
	write_file(bad, c, n);
	es_model *r = NULL;
	ck_assert_int_eq(es_model_load(bad, ES_FORMAT_ESM, 0, &r, NULL), 0);
	es_error err = {0};
	ck_assert_int_eq(es_model_verify(r, &err), ES_ECORRUPT);
	es_model_free(r);
	/* future version */
	memcpy(c, p, n);
	c[8] = 2;
	write_file(bad, c, n);
	load_fails(bad, ES_FORMAT_ESM, ES_EUNSUPPORTED, "version");
	free(c);
	free(p);
}
END_TEST

/* Recompute an .esm's index, data and header checksums (offsets of
 * model_io.c's header) after a test edited it: the damage a checksum cannot
 * catch, i.e. a crafted file. */
static void esm_fix_crcs(unsigned char *c)
{
	uint64_t data, dlen;
	memcpy(&data, c + 152, 8);
	memcpy(&dlen, c + 160, 8);
	uint32_t crc = crc32c(0, c + 256, (size_t)data - 256);
	memcpy(c + 168, &crc, 4);
	crc = crc32c(0, c + data, (size_t)dlen);
	memcpy(c + 172, &crc, 4);
	crc = crc32c(0, c, 252);
	memcpy(c + 252, &crc, 4);
}

/* Found by tests/fuzz (fuzz_model_ftbin, fuzz_model_esm): finite values near
 * FLT_MAX made sentence vectors NaN; an .esm whose hash table indexed none of
 * its words loaded. */
START_TEST(test_fuzz_findings)
{
	const char *p = tmp("big.txt");
	write_file(p, "a 1 2e9\n", 8);
	load_fails(p, ES_FORMAT_TEXT, ES_ECORRUPT, "magnitude");
	write_file(p, "a 1 -1e9\n", 9);
	es_model_free(load_ok(p, ES_FORMAT_TEXT));
	es_model *m;
	es_model_params mp = {.dim = 2, .maxn = 3, .minn = 2, .bucket = 4};
	ck_assert_int_eq(es_model_new(&mp, &m, NULL), 0);
	float big[8] = {1, 3e38f, 0, 0, 0, 0, 0, 0};
	ck_assert_int_eq(es_model_add_word(m, "w", 1, 0, big, NULL, NULL), ES_EINVAL);
	ck_assert_int_eq(es_model_set_ngrams(m, big, NULL), ES_EINVAL);
	es_model_free(m);

	/* fastText .bin: the last n-gram row is just before the output matrix
	 * (u8 quantised flag, i64 rows, i64 cols, 22 x 5 floats) */
	size_t n;
	unsigned char *ft = read_file(data("fasttext-toy.bin"), &n);
	float huge = 3e38f;
	memcpy(ft + n - 1 - 16 - 22 * 5 * 4 - 4, &huge, 4);
	const char *b = tmp("big.bin");
	write_file(b, ft, n);
	load_fails(b, ES_FORMAT_FASTTEXT_BIN, ES_ECORRUPT, "n-gram row 99");
	free(ft);

	/* .esm with right checksums: a huge vector value fails verification */
	m = load_ok(data("fasttext-toy.bin"), ES_FORMAT_AUTO);
	const char *good = tmp("good.esm"), *bad = tmp("bad.esm");
	ck_assert_int_eq(es_model_save_esm(m, good, NULL), 0);
	es_model_free(m);
	unsigned char *e = read_file(good, &n);
	unsigned char *c = malloc(n);
	uint64_t vecs, slots, cap;
	memcpy(&vecs, e + 104, 8);
	memcpy(&slots, e + 88, 8);
	memcpy(&cap, e + 96, 8);
	memcpy(c, e, n);
	memcpy(c + vecs + 4, &huge, 4);
	esm_fix_crcs(c);
	write_file(bad, c, n);
	load_fails(bad, ES_FORMAT_ESM, ES_ECORRUPT, "vectors: value 1");
	es_model *r = NULL;
	es_error err = {0};
	ck_assert_int_eq(es_model_load(bad, ES_FORMAT_ESM, 0, &r, NULL), 0);
	ck_assert_int_eq(es_model_verify(r, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "magnitude"));
	es_model_free(r);
	/* ... and a hash table that indexes nothing does not load at all */
	memcpy(c, e, n);
	memset(c + slots, 0, (size_t)cap * 4);
	esm_fix_crcs(c);
	write_file(bad, c, n);
	ck_assert_int_ne(es_model_load(bad, ES_FORMAT_ESM, 0, &r, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "hash table"));
	/* a metadata value cut short (it leaked the key's copy) */
	uint64_t meta;
	memcpy(&meta, e + 128, 8);
	uint32_t nm, klen, vlen = 0xfffffff0u;
	memcpy(&nm, e + meta, 4);
	memcpy(&klen, e + meta + 4, 4);
	ck_assert_uint_ge(nm, 1);
	memcpy(c, e, n);
	memcpy(c + meta + 8 + klen, &vlen, 4);
	esm_fix_crcs(c);
	write_file(bad, c, n);
	load_fails(bad, ES_FORMAT_ESM, ES_ECORRUPT, "bad metadata");
	free(c);
	free(e);
}
END_TEST

START_TEST(test_save_errors)
{
	es_model *m = load_ok(data("fasttext-toy.vec"), ES_FORMAT_AUTO);
	es_error err = {0};
	ck_assert_int_ne(es_model_save_esm(m, "/nonexistent-dir/x.esm", &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent-dir/x.esm"));
	es_model_free(m);
}
END_TEST

START_TEST(test_crc)
{
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	uint32_t a = crc32c(0, "1234", 4);
	ck_assert_uint_eq(crc32c(a, "56789", 5), 0xE3069283u);
}
END_TEST

/* The failing allocator (core/alloc.h): loading a model whose Nth
 * allocation fails, for every N, is ES_ENOMEM with nothing returned (and,
 * under ASan, nothing leaked); with enough memory it loads.  Every reader:
 * .esm (plain and verified), .vec text, word2vec binary, fastText .bin. */
START_TEST(test_load_out_of_memory)
{
	es_model *m = load_ok(data("fasttext-toy.bin"), ES_FORMAT_AUTO);
	const char *esm = tmp("oom.esm");
	es_error err = {0};
	ck_assert_int_eq(es_model_save_esm(m, esm, &err), 0);
	es_model_free(m);
	struct {
		const char *path;
		unsigned flags;
	} cases[] = {
		{esm, 0},
		{esm, ES_LOAD_VERIFY},
		{data("fasttext-toy.vec"), 0},
		{data("fasttext-toy.bin"), 0},
		{data("word2vec-text-1750x10.txt"), 0},
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		long n, failures = 0;
		for (n = 0;; n++) {
			m = NULL;
			es_alloc_fail_after(n);
			int rc = es_model_load(cases[c].path, ES_FORMAT_AUTO, cases[c].flags, &m,
					       &err);
			long failed = es_alloc_fail_disarm();
			if (rc == 0) {
				ck_assert_msg(failed == 0, "%s n=%ld: loaded with %ld failed allocations", cases[c].path, n, failed);
				break;
			}
			ck_assert_msg(rc == ES_ENOMEM, "%s n=%ld: %d %s", cases[c].path, n, rc,
				      err.msg);
			ck_assert_ptr_null(m);
			failures++;
		}
		ck_assert_ptr_nonnull(m);
		ck_assert_int_gt(failures, 0);
		es_model_free(m);
	}
}
END_TEST

Suite *model_io_suite(void)
{
	Suite *s = suite_create("model_io");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crc);
	tcase_add_test(tc, test_detect);
	tcase_add_test(tc, test_text_readers);
	tcase_add_test(tc, test_word2vec_bin);
	tcase_add_test(tc, test_fasttext_bin_matches_fasttext);
	tcase_add_test(tc, test_fasttext_bin_vs_vec);
	tcase_add_test(tc, test_esm_roundtrip);
	tcase_add_test(tc, test_hostile_text);
	tcase_add_test(tc, test_hostile_binary);
	tcase_add_test(tc, test_hostile_esm);
	tcase_add_test(tc, test_save_errors);
	tcase_add_test(tc, test_fuzz_findings);
	tcase_add_test(tc, test_load_out_of_memory);
	suite_add_tcase(s, tc);
	return s;
}
