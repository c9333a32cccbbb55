/*
 * test_lexical.c — the lexical index (index/lexical.h): analysis, BM25
 * against a naive formula written here, Block-Max WAND against the
 * exhaustive search on random data (with updates, deletes, compaction and
 * filters), an index rebuilt from its final state giving the same scores,
 * serialisation round trips and damaged bytes.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "crc32c.h"
#include "lexical.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* A word of a Zipf-like vocabulary of v words: "w<rank>". */
static int zipf_word(uint32_t v)
{
	double u = (rnd() % 1000000 + 1) / 1000001.0;
	int r = (int)pow((double)v, u) - 1; /* log-uniform rank */
	return r < 0 ? 0 : r >= (int)v ? (int)v - 1 : r;
}

static void random_text(char *buf, size_t cap, uint32_t vocab, int words)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; i < words && n + 16 < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%sW%d", i ? " " : "", zipf_word(vocab));
}

static es_lexical *make(float k1, float b, int stem, int stop)
{
	es_lexical_params p;
	es_lexical_params_default(&p);
	p.k1 = k1;
	p.b = b;
	p.stemming = stem;
	p.stopwords = stop;
	es_lexical *lx;
	es_error err;
	ck_assert_int_eq(es_lexical_new(&p, &lx, &err), 0);
	return lx;
}

static void put(es_lexical *lx, uint64_t label, const char *text)
{
	es_error err;
	ck_assert_msg(es_lexical_upsert(lx, label, text, strlen(text), &err) == 0, "%s", err.msg);
}

typedef struct terms {
	char t[64][64];
	int n;
} terms;

static int add_term(void *ctx, const char *t, size_t n)
{
	terms *x = ctx;
	ck_assert_uint_lt(n, 64);
	if (x->n < 64)
		memcpy(x->t[x->n++], t, n + 1);
	return 0;
}

START_TEST(analysis)
{
	es_lexical_params p;
	es_lexical_params_default(&p);
	p.stemming = 0;
	p.stopwords = 0;
	terms t = {.n = 0};
	const char *s = "The Libraries' CATALOGUING of well-known Éditions";
	ck_assert_int_eq(es_lexical_analyze(&p, s, strlen(s), add_term, &t), 0);
	ck_assert_int_eq(t.n, 6);
	ck_assert_str_eq(t.t[0], "the");
	ck_assert_str_eq(t.t[1], "libraries");
	ck_assert_str_eq(t.t[2], "cataloguing");
	ck_assert_str_eq(t.t[4], "well-known");
	ck_assert_str_eq(t.t[5], "éditions");
	p.stemming = 1;
	p.stopwords = 1;
	t.n = 0;
	ck_assert_int_eq(es_lexical_analyze(&p, s, strlen(s), add_term, &t), 0);
	ck_assert_int_eq(t.n, 4); /* "the" and "of" dropped */
	ck_assert_str_eq(t.t[0], "librari");
	ck_assert_str_eq(t.t[1], "catalogu");
	ck_assert_str_eq(t.t[3], "édition");
}
END_TEST

/* Documents are tokenized by a byte loop when they are ASCII and by
 * core/tokenize otherwise: the same words either way (a separator that is
 * not ASCII forces the second), cut words and joiners included. */
START_TEST(ascii_words_as_tokenizer)
{
	static const char alpha[] = "aZ09xY-'- ''--.,!Q\t\n";
	es_lexical *fast = make(1.2f, 0.75f, 0, 0), *slow = make(1.2f, 0.75f, 0, 0);
	static char text[1200];
	es_error err;
	rng_state = 4242;
	for (int d = 0; d < 400; d++) {
		size_t n = 1 + rnd() % 600;
		for (size_t i = 0; i < n; i++) {
			/* runs of letters, now and then past ES_TOKEN_MAX (256) */
			if (rnd() % 50 == 0) {
				size_t run = 200 + rnd() % 120;
				for (size_t j = 0; j < run && i < n; j++)
					text[i++] = j % 7 == 3 && rnd() % 3 == 0 ? "'-"[rnd() % 2]
										  : (char)('a' + rnd() % 26);
				i--;
				continue;
			}
			text[i] = alpha[rnd() % (sizeof alpha - 1)];
		}
		ck_assert_int_eq(es_lexical_upsert(fast, (uint64_t)d, text, n, &err), 0);
		memcpy(text + n, " \xe2\x80\x94", 4); /* U+2014, a separator */
		ck_assert_int_eq(es_lexical_upsert(slow, (uint64_t)d, text, n + 4, &err), 0);
	}
	unsigned char *a, *b;
	size_t la, lb;
	ck_assert_int_eq(es_lexical_serialize(fast, &a, &la, &err), 0);
	ck_assert_int_eq(es_lexical_serialize(slow, &b, &lb, &err), 0);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(a, b, la);
	free(a);
	free(b);
	es_lexical_free(fast);
	es_lexical_free(slow);
}
END_TEST

START_TEST(params_checked)
{
	es_lexical_params p;
	es_lexical_params_default(&p);
	es_lexical *lx = NULL;
	es_error err;
	p.k1 = -1;
	ck_assert_int_eq(es_lexical_new(&p, &lx, &err), ES_EINVAL);
	ck_assert_ptr_null(lx);
	ck_assert_ptr_nonnull(strstr(err.msg, "k1"));
	p.k1 = 1;
	p.b = 1.5f;
	ck_assert_int_eq(es_lexical_new(&p, &lx, &err), ES_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "b"));
	p.b = NAN;
	ck_assert_int_eq(es_lexical_params_check(&p, NULL), ES_EINVAL);
}
END_TEST

/* BM25 by the formula in lexical.h, from the texts, for one document. */
static double naive_bm25(const char *const *docs, size_t ndocs, size_t d,
			 const char *const *q, size_t nq, double k1, double b)
{
	/* documents are single-space separated lowercase words here */
	double total = 0;
	size_t lens[16];
	for (size_t i = 0; i < ndocs; i++) {
		lens[i] = 1;
		for (const char *c = docs[i]; *c; c++)
			lens[i] += *c == ' ';
		total += (double)lens[i];
	}
	double avgdl = total / (double)ndocs, score = 0;
	for (size_t j = 0; j < nq; j++) {
		int seen = 0;
		for (size_t jj = 0; jj < j; jj++)
			seen |= strcmp(q[jj], q[j]) == 0;
		if (seen)
			continue;
		double qtf = 0, df = 0, tf = 0;
		for (size_t jj = 0; jj < nq; jj++)
			qtf += strcmp(q[jj], q[j]) == 0;
		for (size_t i = 0; i < ndocs; i++) {
			char buf[256];
			snprintf(buf, sizeof buf, "%s", docs[i]);
			double c = 0;
			for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
				c += strcmp(w, q[j]) == 0;
			df += c > 0;
			if (i == d)
				tf = c;
		}
		if (tf == 0)
			continue;
		double idf = log(1 + (ndocs - df + 0.5) / (df + 0.5));
		score += qtf * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lens[d] / avgdl));
	}
	return score;
}

START_TEST(bm25_formula)
{
	const char *docs[] = {"the cat sat on the mat", "a dog and a cat",
			      "dogs chase cats", "the the the the dog",
			      "catalogue of the library"};
	const char *q[] = {"the", "cat", "dog", "cat"};
	es_lexical *lx = make(1.2f, 0.75f, 0, 0);
	for (size_t i = 0; i < 5; i++)
		put(lx, 100 + i, docs[i]);
	es_hit hits[5];
	size_t n;
	es_error err;
	const char *qs = "The cat, dog; cat!";
	ck_assert_int_eq(es_lexical_search(lx, qs, strlen(qs), 5, NULL, NULL, hits, &n, &err), 0);
	ck_assert_uint_eq(n, 4); /* "dogs chase cats" has none of the terms */
	for (size_t i = 0; i < n; i++) {
		size_t d = hits[i].label - 100;
		double want = naive_bm25(docs, 5, d, q, 4, 1.2, 0.75);
		ck_assert_msg(fabs(hits[i].score - want) < 1e-5 * want,
			      "doc %zu: %g vs %g", d, (double)hits[i].score, want);
		if (i)
			ck_assert(hits[i - 1].score >= hits[i].score);
	}
	es_lexical_free(lx);
}
END_TEST

typedef struct even_ctx {
	int calls;
} even_ctx;

static int even_only(void *ctx, uint64_t label)
{
	((even_ctx *)ctx)->calls++;
	return label % 2 == 0;
}

static void same_results_plan(const es_lexical *lx, const es_lexical *ref,
			      const char *q, uint32_t k, int filter, int plan);

/* WAND result == exhaustive result: same scores in the same order, and
 * every returned label has the exhaustive score of that label. */
static void same_results(const es_lexical *lx, const es_lexical *ref,
			 const char *q, uint32_t k, int filter)
{
	for (int plan = 0; plan < 2; plan++)
		same_results_plan(lx, ref, q, k, filter, plan);
}

/* plan 0: es_lexical_search (either plan by cost), 1: WAND always. */
static void same_results_plan(const es_lexical *lx, const es_lexical *ref,
			      const char *q, uint32_t k, int filter, int plan)
{
	es_hit *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
	size_t na, nb;
	es_error err;
	even_ctx ec = {0};
	ck_assert_int_eq((plan ? es_lexical_search_wand : es_lexical_search)(
				 lx, q, strlen(q), k, filter ? even_only : NULL, &ec, a, &na, &err),
			 0);
	ck_assert_int_eq(es_lexical_search_exhaustive(ref, q, strlen(q), k,
						      filter ? even_only : NULL, &ec,
						      b, &nb, &err), 0);
	ck_assert_msg(na == nb, "query '%s' k %u: %zu vs %zu hits", q, k, na, nb);
	for (size_t i = 0; i < na; i++) {
		ck_assert_msg(fabsf(a[i].score - b[i].score) <= 1e-6f * b[i].score,
			      "query '%s' k %u rank %zu: %.9g vs %.9g", q, k, i,
			      (double)a[i].score, (double)b[i].score);
		if (filter)
			ck_assert_uint_eq(a[i].label % 2, 0);
		/* best first: score down, a tie by label up (topk_finish) */
		for (const es_hit *h = a; h == a || h == b; h = h == a ? b : NULL)
			ck_assert_msg(i == 0 || h[i - 1].score > h[i].score ||
					      (h[i - 1].score == h[i].score &&
					       h[i - 1].label < h[i].label),
				      "query '%s' k %u rank %zu out of order", q, k, i);
		if (a[i].label != b[i].label) {
			/* a tie: the label must score the same */
			ck_assert_msg(fabsf(a[i].score - b[i].score) <= 1e-6f * b[i].score,
				      "rank %zu differs", i);
		}
	}
	free(a);
	free(b);
}

START_TEST(wand_equals_exhaustive)
{
	rng_state = 0x9E3779B97F4A7C15ull + (uint64_t)_i;
	const float k1s[] = {0.9f, 1.2f, 2.0f, 0.0f};
	const float bs[] = {0.4f, 0.75f, 1.0f, 0.0f};
	es_lexical *lx = make(k1s[_i], bs[_i], 0, 0);
	char buf[2048];
	uint32_t vocab = 3000;
	for (uint64_t label = 0; label < 4000; label++) {
		random_text(buf, sizeof buf, vocab, 1 + (int)(rnd() % 80));
		put(lx, label * 7 + 3, buf);
	}
	const uint32_t ks[] = {1, 3, 10, 100, 1000};
	for (int q = 0; q < 200; q++) {
		random_text(buf, sizeof buf, vocab, 1 + (int)(rnd() % 12));
		same_results(lx, lx, buf, ks[q % 5], q % 3 == 0);
	}
	/* long queries (CISI's have ~40 terms): es_lexical_search takes the
	 * term-at-a-time plan, WAND must still agree */
	for (int q = 0; q < 40; q++) {
		random_text(buf, sizeof buf, vocab, 40 + (int)(rnd() % 80));
		same_results(lx, lx, buf, ks[q % 5], q % 3 == 0);
	}
	es_lexical_free(lx);
}
END_TEST

static int cmp_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y) - (x > y);
}

/* Pseudo-relevance feedback by the formula in lexical.h, from the texts
 * (words "w<rank>" of a 200-word vocabulary, so arrays index them): the
 * first search's top documents weigh the terms, the expanded query scores
 * every document naively, and the search's scores and order must be the
 * naive top k (both plans: short and long queries; with and without a
 * filter; all expansion terms kept so that no tie decides which). */
START_TEST(feedback_matches_naive)
{
	enum { ND = 300, V = 200, K = 20 };
	static char texts[ND][700];
	static double tf[ND][V];
	double len[ND], df[V] = {0}, total = 0;
	const double k1 = 1.2, b = 0.75;
	rng_state = 0x5DEECE66Dull;
	es_lexical *lx = make((float)k1, (float)b, 0, 0);
	memset(tf, 0, sizeof tf);
	for (int d = 0; d < ND; d++) {
		random_text(texts[d], sizeof texts[d], V, 1 + (int)(rnd() % 60));
		put(lx, (uint64_t)d, texts[d]);
		len[d] = 0;
		for (const char *c = texts[d]; (c = strchr(c, 'W')); c++) {
			tf[d][atoi(c + 1)]++;
			len[d]++;
		}
		total += len[d];
		for (int r = 0; r < V; r++)
			df[r] += tf[d][r] > 0;
	}
	double avgdl = total / ND;
	for (int qn = 0; qn < 40; qn++) {
		char q[700];
		random_text(q, sizeof q, V, qn % 2 ? 30 + (int)(rnd() % 30) : 1 + (int)(rnd() % 6));
		int filter = qn % 4 == 3;
		even_ctx ec = {0};
		es_lexical_feedback fb = {1 + (uint32_t)(qn % 7), 1000, qn % 3 ? 0.7f : 0.4f};
		es_hit fh[8], got[K];
		size_t nf, ng;
		es_error err;
		ck_assert_int_eq(es_lexical_search(lx, q, strlen(q), fb.docs,
						   filter ? even_only : NULL, &ec, fh, &nf, &err), 0);
		ck_assert_int_eq(es_lexical_search_feedback(lx, q, strlen(q), K, &fb,
							    filter ? even_only : NULL, &ec,
							    got, &ng, &err), 0);
		double qtf[V] = {0}, P[V] = {0}, W[V], qz = 0, pz = 0, tot = 0;
		for (const char *c = q; (c = strchr(c, 'W')); c++)
			if (df[atoi(c + 1)] > 0)
				qtf[atoi(c + 1)]++;
		for (size_t i = 0; i < nf; i++)
			tot += fh[i].score;
		for (size_t i = 0; i < nf; i++)
			for (int r = 0; r < V; r++)
				P[r] += fh[i].score / tot * tf[fh[i].label][r] / len[fh[i].label];
		for (int r = 0; r < V; r++) {
			qz += qtf[r];
			pz += P[r];
		}
		for (int r = 0; r < V; r++)
			W[r] = nf ? fb.query_weight * qtf[r] / qz + (1 - fb.query_weight) * P[r] / pz
				  : qtf[r];
		double naive[ND], sorted[ND];
		size_t nn = 0;
		for (int d = 0; d < ND; d++) {
			double sc = 0;
			for (int r = 0; r < V; r++)
				if (W[r] > 0 && tf[d][r] > 0)
					sc += W[r] * log(1 + (ND - df[r] + 0.5) / (df[r] + 0.5)) *
					      tf[d][r] * (k1 + 1) /
					      (tf[d][r] + k1 * (1 - b + b * len[d] / avgdl));
			naive[d] = sc;
			if (sc > 0 && (!filter || d % 2 == 0))
				sorted[nn++] = sc;
		}
		qsort(sorted, nn, sizeof *sorted, cmp_desc);
		ck_assert_uint_eq(ng, nn < K ? nn : K);
		for (size_t i = 0; i < ng; i++) {
			double want = naive[got[i].label];
			ck_assert_msg(fabs(got[i].score - want) <= 1e-5 * want,
				      "query %d rank %zu: %g vs naive %g", qn, i,
				      (double)got[i].score, want);
			ck_assert_msg(fabs(got[i].score - sorted[i]) <= 1e-5 * sorted[i],
				      "query %d rank %zu: %g, naive top has %g", qn, i,
				      (double)got[i].score, sorted[i]);
			if (filter)
				ck_assert_uint_eq(got[i].label % 2, 0);
		}
	}
	/* docs 0 is the plain search; bad parameters are refused */
	es_lexical_feedback off = {0, 20, 0.7f}, bad = {5, 0, 0.7f}, badw = {5, 20, 1.5f};
	es_hit a[K], c[K];
	size_t na, nc;
	es_error err;
	ck_assert_int_eq(es_lexical_search_feedback(lx, "W1 W2", 5, K, &off, NULL, NULL, a, &na,
						    &err), 0);
	ck_assert_int_eq(es_lexical_search(lx, "W1 W2", 5, K, NULL, NULL, c, &nc, &err), 0);
	ck_assert_uint_eq(na, nc);
	for (size_t i = 0; i < na; i++) { /* field by field: es_hit has padding */
		ck_assert_uint_eq(a[i].label, c[i].label);
		ck_assert(a[i].score == c[i].score);
	}
	ck_assert_int_eq(es_lexical_search_feedback(lx, "W1", 2, K, &bad, NULL, NULL, a, &na,
						    &err), ES_EINVAL);
	ck_assert_int_eq(es_lexical_search_feedback(lx, "W1", 2, K, &badw, NULL, NULL, a, &na,
						    &err), ES_EINVAL);
	es_lexical_free(lx);
}
END_TEST

/* After updates, deletes and compactions: WAND == exhaustive, and the
 * index scores exactly as a fresh index built from the final texts. */
START_TEST(updates_deletes_match_fresh_build)
{
	rng_state = 12345;
	enum { N = 3000 };
	static char texts[N][400];
	static int alive[N];
	memset(alive, 0, sizeof alive);
	es_lexical *lx = make(0.9f, 0.4f, 0, 0);
	es_error err;
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < N; i++) {
			uint32_t r = rnd() % 10;
			if (r < 5) {
				random_text(texts[i], sizeof texts[i], 800, 1 + (int)(rnd() % 40));
				put(lx, (uint64_t)i, texts[i]);
				alive[i] = 1;
			} else if (r < 8) {
				ck_assert_int_eq(es_lexical_delete(lx, (uint64_t)i),
						 alive[i] ? 0 : ES_ENOTFOUND);
				alive[i] = 0;
			}
		}
		size_t live = 0;
		for (int i = 0; i < N; i++) {
			live += alive[i];
			ck_assert_int_eq(es_lexical_contains(lx, (uint64_t)i), alive[i]);
		}
		ck_assert_uint_eq(es_lexical_count(lx), live);
		if (round == 3) {
			ck_assert_int_eq(es_lexical_compact(lx, &err), 0);
			ck_assert_uint_eq(es_lexical_dead(lx), 0);
			ck_assert_uint_eq(es_lexical_count(lx), live);
		}
		es_lexical *fresh = make(0.9f, 0.4f, 0, 0);
		for (int i = 0; i < N; i++)
			if (alive[i])
				put(fresh, (uint64_t)i, texts[i]);
		for (int q = 0; q < 40; q++) {
			char qb[200];
			random_text(qb, sizeof qb, 800, 1 + (int)(rnd() % 6));
			same_results(lx, fresh, qb, q % 2 ? 10 : 50, q % 4 == 0);
			same_results(lx, lx, qb, 20, 0);
		}
		es_lexical_free(fresh);
	}
	/* automatic compaction ran: deletes past the threshold */
	ck_assert_uint_lt(es_lexical_dead(lx), 1024 + es_lexical_count(lx) + 1);
	es_lexical_free(lx);
}
END_TEST

START_TEST(update_replaces_and_delete_removes)
{
	es_lexical *lx = make(0.9f, 0.4f, 1, 0);
	es_hit h[4];
	size_t n;
	es_error err;
	put(lx, 1, "rare manuscripts in the archive");
	put(lx, 2, "digital archives of newspapers");
	ck_assert_int_eq(es_lexical_search(lx, "manuscript", 10, 4, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].label, 1);
	put(lx, 1, "maps and atlases");
	ck_assert_int_eq(es_lexical_search(lx, "manuscript", 10, 4, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(es_lexical_search(lx, "Atlas", 5, 4, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(es_lexical_search(lx, "archive", 7, 4, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 1); /* stemming: archive ~ archives */
	ck_assert_uint_eq(h[0].label, 2);
	ck_assert_int_eq(es_lexical_delete(lx, 2), 0);
	ck_assert_int_eq(es_lexical_delete(lx, 2), ES_ENOTFOUND);
	ck_assert_int_eq(es_lexical_search(lx, "archive", 7, 4, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	/* a text with no terms is a document no query finds */
	put(lx, 3, " ... !!! ");
	ck_assert(es_lexical_contains(lx, 3));
	ck_assert_uint_eq(es_lexical_count(lx), 2);
	ck_assert_int_eq(es_lexical_search(lx, "", 0, 4, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(es_lexical_search(lx, "x", 1, 0, NULL, NULL, h, &n, &err), ES_EINVAL);
	es_lexical_free(lx);
}
END_TEST

START_TEST(memory_grows_and_compaction_shrinks)
{
	rng_state = 77;
	es_lexical *lx = make(0.9f, 0.4f, 0, 0);
	size_t m0 = es_lexical_memory_bytes(lx);
	char buf[1024];
	for (uint64_t i = 0; i < 2000; i++) {
		random_text(buf, sizeof buf, 5000, 50);
		put(lx, i, buf);
	}
	size_t m1 = es_lexical_memory_bytes(lx);
	ck_assert_uint_gt(m1, m0 + 2000 * 50); /* at least a byte a posting */
	for (uint64_t i = 0; i < 1000; i++)
		ck_assert_int_eq(es_lexical_delete(lx, i), 0);
	ck_assert_uint_eq(es_lexical_dead(lx), 1000);
	es_error err;
	ck_assert_int_eq(es_lexical_compact(lx, &err), 0);
	ck_assert_uint_lt(es_lexical_memory_bytes(lx), m1);
	es_lexical_free(lx);
}
END_TEST

static es_lexical *random_index(int n, int stem, int stop)
{
	es_lexical *lx = make(1.1f, 0.6f, stem, stop);
	char buf[1024];
	for (int i = 0; i < n; i++) {
		random_text(buf, sizeof buf, 300, 1 + (int)(rnd() % 30));
		put(lx, (uint64_t)i * 11, buf);
	}
	for (int i = 0; i < n; i += 5)
		es_lexical_delete(lx, (uint64_t)i * 11);
	return lx;
}

START_TEST(serialize_round_trip)
{
	rng_state = 4242;
	es_lexical *lx = random_index(1500, 1, 1);
	unsigned char *bytes;
	size_t len;
	es_error err;
	ck_assert_int_eq(es_lexical_serialize(lx, &bytes, &len, &err), 0);
	es_lexical *back;
	ck_assert_msg(es_lexical_deserialize(bytes, len, &back, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(es_lexical_count(back), es_lexical_count(lx));
	ck_assert_uint_eq(es_lexical_dead(back), 0);
	const es_lexical_params *p = es_lexical_get_params(back);
	ck_assert(p->k1 == 1.1f && p->b == 0.6f && p->stemming && p->stopwords);
	char q[200];
	for (int i = 0; i < 50; i++) {
		random_text(q, sizeof q, 300, 1 + (int)(rnd() % 5));
		same_results(back, lx, q, 10, i % 2);
	}
	/* writing the loaded index gives the same bytes */
	unsigned char *again;
	size_t len2;
	ck_assert_int_eq(es_lexical_serialize(back, &again, &len2, &err), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert_int_eq(memcmp(bytes, again, len), 0);
	free(again);
	/* an empty index */
	es_lexical *empty = make(0.9f, 0.4f, 0, 0);
	free(bytes);
	ck_assert_int_eq(es_lexical_serialize(empty, &bytes, &len, &err), 0);
	es_lexical_free(back);
	ck_assert_int_eq(es_lexical_deserialize(bytes, len, &back, &err), 0);
	ck_assert_uint_eq(es_lexical_count(back), 0);
	es_lexical_free(back);
	es_lexical_free(empty);
	free(bytes);
	es_lexical_free(lx);
}
END_TEST

static void fix_crc(unsigned char *b, size_t len)
{
	uint32_t c = crc32c(0, b, len - 4);
	b[len - 4] = (unsigned char)c;
	b[len - 3] = (unsigned char)(c >> 8);
	b[len - 2] = (unsigned char)(c >> 16);
	b[len - 1] = (unsigned char)(c >> 24);
}

START_TEST(damaged_bytes_rejected)
{
	rng_state = 99;
	es_lexical *lx = random_index(60, 0, 0);
	unsigned char *bytes;
	size_t len;
	es_error err;
	ck_assert_int_eq(es_lexical_serialize(lx, &bytes, &len, &err), 0);
	unsigned char *b = malloc(len);
	es_lexical *back;
	/* every truncation */
	for (size_t l = 0; l < len; l++) {
		ck_assert_int_eq(es_lexical_deserialize(bytes, l, &back, &err), ES_ECORRUPT);
		ck_assert_ptr_null(back);
	}
	/* every flipped byte: the checksum catches it */
	for (size_t i = 0; i < len; i++) {
		memcpy(b, bytes, len);
		b[i] ^= 0x41;
		int rc = es_lexical_deserialize(b, len, &back, &err);
		ck_assert_msg(rc == ES_ECORRUPT || (i >= 8 && i < 12 && rc == ES_EUNSUPPORTED),
			      "byte %zu: %d", i, rc);
	}
	/* with the checksum fixed the parser itself must hold: no crash, and
	 * what loads is usable */
	int loaded = 0, rejected = 0;
	for (size_t i = 0; i < len - 4; i++) {
		for (int v = 0; v < 3; v++) {
			memcpy(b, bytes, len);
			b[i] = v == 0 ? 0xFF : v == 1 ? 0x00 : (unsigned char)(b[i] + 1);
			fix_crc(b, len);
			if (es_lexical_deserialize(b, len, &back, &err) == 0) {
				es_hit h[5];
				size_t n;
				ck_assert_int_eq(es_lexical_search(back, "w1 w2 w3", 8, 5, NULL,
								   NULL, h, &n, &err), 0);
				es_lexical_free(back);
				loaded++;
			} else {
				ck_assert_ptr_null(back);
				ck_assert(err.msg[0] != '\0');
				rejected++;
			}
		}
	}
	ck_assert_int_gt(rejected, 0);
	ck_assert_int_gt(loaded, 0); /* e.g. a changed label or term byte */
	/* a newer version */
	memcpy(b, bytes, len);
	b[8] = 2;
	fix_crc(b, len);
	ck_assert_int_eq(es_lexical_deserialize(b, len, &back, &err), ES_EUNSUPPORTED);
	free(b);
	free(bytes);
	es_lexical_free(lx);
}
END_TEST

/* A batch taken back with es_lexical_rollback leaves the index as it was:
 * the same bytes when serialised, the same answers. */
START_TEST(undo_restores)
{
	for (int mode = 0; mode < 2; mode++) {
		es_lexical *lx = make(0.9f, 0.4f, 1, 0);
		uint64_t base = mode ? (1ull << 60) : 0; /* hash map, direct array */
		put(lx, base + 1, "rare manuscripts in the archive");
		put(lx, base + 2, "digital archives of newspapers");
		put(lx, base + 3, "maps and atlases");
		unsigned char *before, *after;
		size_t lb, la;
		es_error err;
		ck_assert_int_eq(es_lexical_serialize(lx, &before, &lb, &err), 0);
		es_lexical_undo u[4];
		const char *t = "catalogues of manuscripts";
		ck_assert_int_eq(es_lexical_upsert_undoable(lx, base + 1, t, strlen(t), &u[0], &err), 0);
		ck_assert_int_eq(es_lexical_delete_undoable(lx, base + 2, &u[1]), 0);
		ck_assert_int_eq(es_lexical_upsert_undoable(lx, base + 9, t, strlen(t), &u[2], &err), 0);
		ck_assert_int_eq(es_lexical_delete_undoable(lx, base + 7, &u[3]), ES_ENOTFOUND);
		ck_assert(!es_lexical_contains(lx, base + 2));
		for (int i = 2; i >= 0; i--)
			es_lexical_rollback(lx, &u[i]);
		ck_assert_uint_eq(es_lexical_count(lx), 3);
		ck_assert(!es_lexical_contains(lx, base + 9));
		ck_assert_int_eq(es_lexical_serialize(lx, &after, &la, &err), 0);
		ck_assert_uint_eq(la, lb);
		ck_assert_int_eq(memcmp(before, after, la), 0);
		es_hit h[4];
		size_t n;
		ck_assert_int_eq(es_lexical_search(lx, "archive", 7, 4, NULL, NULL, h, &n, &err), 0);
		ck_assert_uint_eq(n, 2);
		free(before);
		free(after);
		es_lexical_free(lx);
	}
}
END_TEST

enum { BT_N = 2400 };
static char bt_texts[BT_N][400];

static es_lexical_batch *bt_prepare(es_lexical *lx, const uint64_t *labels, int from, int n)
{
	const char *t[BT_N];
	size_t l[BT_N];
	for (int i = 0; i < n; i++) {
		/* every fifth input without text: no document */
		t[i] = (from + i) % 5 == 4 ? NULL : bt_texts[from + i];
		l[i] = t[i] ? strlen(t[i]) : 0;
	}
	es_lexical_batch *b;
	es_error err;
	ck_assert_msg(es_lexical_batch_prepare(lx, labels + from, t, l, (size_t)n, &b, &err) == 0,
		      "%s", err.msg);
	return b;
}

/* Batches prepared together and applied in another order (as a
 * collection's concurrent writers do), one freed unapplied, equal the same
 * documents upserted one at a time in the order applied; applying needs
 * no allocation at all; compaction waits while a batch is out. */
START_TEST(batches_match_single_upserts)
{
	rng_state = 777;
	static uint64_t labels[BT_N];
	for (int i = 0; i < BT_N; i++) {
		/* small vocabulary: terms past a block of 128 postings, new
		 * terms with many postings within one batch; some updates */
		random_text(bt_texts[i], sizeof bt_texts[i], i < 1200 ? 300 : 900,
			    1 + (int)(rnd() % 40));
		labels[i] = i % 7 == 6 ? labels[i / 3] : (uint64_t)i * 3 + 1;
	}
	es_lexical *lx = make(1.2f, 0.75f, 1, 1), *ref = make(1.2f, 0.75f, 1, 1);
	es_error err;
	/* X = [0, 1000), Y = [1000, 1800), Z = [1800, 2400) */
	es_lexical_batch *x = bt_prepare(lx, labels, 0, 1000);
	es_lexical_batch *y = bt_prepare(lx, labels, 1000, 800);
	es_lexical_batch *z = bt_prepare(lx, labels, 1800, 600);
	ck_assert_int_eq(es_lexical_compact(lx, &err), ES_EBUSY);
	es_alloc_fail_after(0);
	es_lexical_batch_apply(lx, y, NULL, 0);
	es_lexical_batch_apply(lx, x, NULL, 0);
	ck_assert_int_eq(es_alloc_fail_disarm(), 0); /* nothing was allocated */
	es_lexical_batch_free(lx, y);
	es_lexical_batch_free(lx, x);
	es_lexical_batch_free(lx, z); /* never applied: nothing of it shows */
	for (int pass = 0; pass < 2; pass++)
		for (int i = pass ? 0 : 1000; i < (pass ? 1000 : 1800); i++)
			if (i % 5 != 4)
				put(ref, labels[i], bt_texts[i]);
	ck_assert_uint_eq(es_lexical_count(lx), es_lexical_count(ref));
	for (int i = 0; i < BT_N; i++)
		ck_assert_int_eq(es_lexical_contains(lx, labels[i]), es_lexical_contains(ref, labels[i]));
	char qb[400];
	for (int q = 0; q < 60; q++) {
		random_text(qb, sizeof qb, q % 2 ? 300 : 900, 1 + (int)(rnd() % (q % 3 ? 5 : 40)));
		same_results(lx, ref, qb, q % 2 ? 10 : 100, q % 4 == 0);
		same_results(lx, lx, qb, 20, 0);
	}
	/* and the one-call form; compaction works again */
	const char *t[600];
	size_t l[600];
	for (int i = 0; i < 600; i++) {
		t[i] = bt_texts[1800 + i];
		l[i] = strlen(t[i]);
		put(ref, labels[1800 + i], t[i]);
	}
	ck_assert_int_eq(es_lexical_upsert_batch(lx, labels + 1800, t, l, 600, &err), 0);
	ck_assert_int_eq(es_lexical_compact(lx, &err), 0);
	for (int q = 0; q < 30; q++) {
		random_text(qb, sizeof qb, 900, 1 + (int)(rnd() % 8));
		same_results(lx, ref, qb, 10, q % 4 == 0);
	}
	es_lexical_free(lx);
	es_lexical_free(ref);
}
END_TEST

/* A prepare whose Nth allocation fails, for every N: ES_ENOMEM and the
 * index serialises to the same bytes (new words it took in are in no
 * document, so they are not written) and applies later batches right. */
START_TEST(batch_prepare_out_of_memory)
{
	rng_state = 4242;
	static uint64_t labels[BT_N];
	for (int i = 0; i < 600; i++) {
		random_text(bt_texts[i], sizeof bt_texts[i], 400, 1 + (int)(rnd() % 40));
		labels[i] = (uint64_t)i * 5;
	}
	labels[500] = 1ull << 40; /* leaves the direct label array */
	es_lexical *lx = make(0.9f, 0.4f, 1, 1);
	es_lexical_batch *b0 = bt_prepare(lx, labels, 0, 300);
	es_lexical_batch_apply(lx, b0, NULL, 0);
	es_lexical_batch_free(lx, b0);
	unsigned char *before, *now;
	size_t lb, ln;
	es_error err;
	ck_assert_int_eq(es_lexical_serialize(lx, &before, &lb, &err), 0);
	const char *t[300];
	size_t l[300];
	for (int i = 0; i < 300; i++) {
		t[i] = bt_texts[300 + i];
		l[i] = strlen(t[i]);
	}
	long n, failures = 0;
	for (n = 0;; n++) {
		es_lexical_batch *b;
		es_alloc_fail_after(n);
		int rc = es_lexical_batch_prepare(lx, labels + 300, t, l, 300, &b, &err);
		es_alloc_fail_disarm();
		if (rc == 0) {
			es_lexical_batch_apply(lx, b, NULL, 0);
			es_lexical_batch_free(lx, b);
			break;
		}
		ck_assert_int_eq(rc, ES_ENOMEM);
		failures++;
		ck_assert_int_eq(es_lexical_serialize(lx, &now, &ln, &err), 0);
		ck_assert_uint_eq(ln, lb);
		ck_assert_int_eq(memcmp(now, before, lb), 0);
		free(now);
	}
	ck_assert_int_gt(failures, 5);
	es_lexical *ref = make(0.9f, 0.4f, 1, 1);
	for (int i = 0; i < 600; i++)
		if (i >= 300 || i % 5 != 4) /* the second batch: every text */
			put(ref, labels[i], bt_texts[i]);
	ck_assert_uint_eq(es_lexical_count(lx), es_lexical_count(ref));
	char qb[400];
	for (int q = 0; q < 30; q++) {
		random_text(qb, sizeof qb, 400, 1 + (int)(rnd() % 8));
		same_results(lx, ref, qb, 10, 0);
	}
	free(before);
	es_lexical_free(lx);
	es_lexical_free(ref);
}
END_TEST

/* Labels are kept in 32 bits while they are small; the first large label
 * widens them: every earlier label must survive, in search results,
 * contains, deletes and a serialisation round trip. */
START_TEST(labels_widen)
{
	es_lexical *lx = make(0.9f, 0.4f, 0, 0);
	char buf[64];
	for (uint64_t l = 0; l < 300; l++) {
		snprintf(buf, sizeof buf, "common w%u", (unsigned)l);
		put(lx, l, buf);
	}
	uint64_t big = (1ull << 40) + 5;
	put(lx, big, "common rare");
	ck_assert_int_eq(es_lexical_delete(lx, 7), 0);
	es_hit h[400];
	size_t n;
	es_error err;
	ck_assert_int_eq(es_lexical_search(lx, "w123", 4, 5, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].label, 123);
	ck_assert_int_eq(es_lexical_search(lx, "rare", 4, 5, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(h[0].label == big);
	ck_assert(!es_lexical_contains(lx, 7) && es_lexical_contains(lx, 299));
	unsigned char *bytes;
	size_t len;
	ck_assert_int_eq(es_lexical_serialize(lx, &bytes, &len, &err), 0);
	es_lexical *back;
	ck_assert_int_eq(es_lexical_deserialize(bytes, len, &back, &err), 0);
	ck_assert_int_eq(es_lexical_search(back, "common", 6, 400, NULL, NULL, h, &n, &err), 0);
	ck_assert_uint_eq(n, 300); /* 0..299 but 7, and big */
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += h[i].label;
	ck_assert(sum == 299ull * 300 / 2 - 7 + big);
	free(bytes);
	es_lexical_free(back);
	es_lexical_free(lx);
}
END_TEST

Suite *lexical_suite(void)
{
	Suite *s = suite_create("lexical");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, analysis);
	tcase_add_test(tc, ascii_words_as_tokenizer);
	tcase_add_test(tc, labels_widen);
	tcase_add_test(tc, params_checked);
	tcase_add_test(tc, bm25_formula);
	tcase_add_loop_test(tc, wand_equals_exhaustive, 0, 4);
	tcase_add_test(tc, feedback_matches_naive);
	tcase_add_test(tc, updates_deletes_match_fresh_build);
	tcase_add_test(tc, update_replaces_and_delete_removes);
	tcase_add_test(tc, memory_grows_and_compaction_shrinks);
	tcase_add_test(tc, serialize_round_trip);
	tcase_add_test(tc, damaged_bytes_rejected);
	tcase_add_test(tc, undo_restores);
	tcase_add_test(tc, batches_match_single_upserts);
	tcase_add_test(tc, batch_prepare_out_of_memory);
	suite_add_tcase(s, tc);
	return s;
}
