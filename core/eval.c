/*
 * eval.c — see eval.h.
 */
#include "eval.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"
#include "tokenize.h"
#include "vocab.h"

size_t es_eval_upper(const char *s, size_t len, char *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = u[i];
		if (c >= 'a' && c <= 'z') {
			out[o++] = (char)(c - 32);
		} else if (c == 0xC3 && i + 1 < len) {
			unsigned char d = u[i + 1];
			i++;
			if (d == 0x9F) { /* ß -> SS */
				out[o++] = 'S';
				out[o++] = 'S';
			} else if (d == 0xBF) { /* ÿ -> Ÿ U+0178 */
				out[o++] = (char)0xC5;
				out[o++] = (char)0xB8;
			} else if (d >= 0xA0 && d <= 0xBE && d != 0xB7) {
				out[o++] = (char)0xC3;
				out[o++] = (char)(d - 0x20);
			} else {
				out[o++] = (char)0xC3;
				out[o++] = (char)d;
			}
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

double es_eval_accuracy(size_t correct, size_t incorrect)
{
	return correct + incorrect ? (double)correct / (double)(correct + incorrect)
				   : 0.0;
}

double es_pearson(const double *x, const double *y, size_t n)
{
	if (n < 2)
		return NAN;
	double mx = 0, my = 0;
	for (size_t i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= (double)n;
	my /= (double)n;
	double sxy = 0, sxx = 0, syy = 0;
	for (size_t i = 0; i < n; i++) {
		double a = x[i] - mx, b = y[i] - my;
		sxy += a * b;
		sxx += a * a;
		syy += b * b;
	}
	if (sxx == 0 || syy == 0)
		return NAN;
	double r = sxy / (sqrt(sxx) * sqrt(syy));
	return r > 1 ? 1 : r < -1 ? -1 : r;
}

typedef struct ranked {
	double v;
	size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	return x->v < y->v ? -1 : x->v > y->v ? 1 : 0;
}

/* average ranks (1-based), scipy.stats.rankdata(method='average') */
static int rank_avg(const double *x, size_t n, double *r)
{
	ranked *t = malloc(n * sizeof *t);
	if (!t)
		return -1;
	for (size_t i = 0; i < n; i++) {
		t[i].v = x[i];
		t[i].i = i;
	}
	qsort(t, n, sizeof *t, cmp_ranked);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && t[j + 1].v == t[i].v)
			j++;
		double avg = (double)(i + j) / 2.0 + 1.0;
		for (size_t k = i; k <= j; k++)
			r[t[k].i] = avg;
		i = j + 1;
	}
	free(t);
	return 0;
}

double es_spearman(const double *x, const double *y, size_t n)
{
	if (n < 2)
		return NAN;
	double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
	double r = NAN;
	if (rx && ry && rank_avg(x, n, rx) == 0 && rank_avg(y, n, ry) == 0)
		r = es_pearson(rx, ry, n);
	free(rx);
	free(ry);
	return r;
}

/* ok_vocab: upper-cased word -> id of its most frequent spelling among the
 * first `limit` words. */
typedef struct okvocab {
	es_vocab *v;
	uint32_t *ids;
} okvocab;

static int okvocab_build(const char *const *words, size_t limit, int ci,
			 okvocab *ok, es_error *err)
{
	ok->v = es_vocab_new();
	ok->ids = malloc((limit ? limit : 1) * sizeof *ok->ids);
	char *buf = malloc(2 * ES_TOKEN_MAX * 4 + 8);
	size_t bufcap = 2 * ES_TOKEN_MAX * 4 + 8;
	if (!ok->v || !ok->ids || !buf)
		goto oom;
	for (size_t i = 0; i < limit; i++) {
		size_t wl = strlen(words[i]);
		if (2 * wl + 1 > bufcap) {
			free(buf);
			bufcap = 2 * wl + 1;
			buf = malloc(bufcap);
			if (!buf)
				goto oom;
		}
		size_t ul = ci ? es_eval_upper(words[i], wl, buf) : wl;
		const char *key = ci ? buf : words[i];
		uint32_t id;
		int added;
		if (ul == 0)
			continue;
		if (es_vocab_add(ok->v, key, ul, 0, &id, &added, err))
			goto fail;
		if (added)
			ok->ids[id] = (uint32_t)i; /* first = most frequent */
	}
	free(buf);
	return 0;
oom:
	es_err(err, ES_ENOMEM, "out of memory");
fail:
	free(buf);
	es_vocab_free(ok->v);
	free(ok->ids);
	ok->v = NULL;
	ok->ids = NULL;
	return err ? err->code : ES_ENOMEM;
}

static void okvocab_free(okvocab *ok)
{
	es_vocab_free(ok->v);
	free(ok->ids);
}

static int64_t ok_find(const okvocab *ok, const char *key, size_t len)
{
	int64_t i = es_vocab_find(ok->v, key, len);
	return i < 0 ? -1 : (int64_t)ok->ids[i];
}

/* Read a whole file (bounded: evaluation sets are small). */
static int slurp(const char *path, char **out, size_t *len, es_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return es_err(err, errno == ENOENT ? ES_ENOTFOUND : ES_EIO,
			      "%s: cannot open: %s", path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	while (b) {
		size_t r = fread(b + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		if (cap >= ((size_t)1 << 30)) {
			fclose(f);
			free(b);
			return es_err(err, ES_ERANGE, "%s: larger than 1 GiB", path);
		}
		cap *= 2;
		char *nb = realloc(b, cap + 1);
		if (!nb) {
			free(b);
			b = NULL;
		}
		b = nb;
	}
	int rd_err = ferror(f);
	fclose(f);
	if (!b)
		return es_err(err, ES_ENOMEM, "%s: out of memory", path);
	if (rd_err) {
		free(b);
		return es_err(err, ES_EIO, "%s: read error", path);
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

/* next line [*s, *e) without the newline (and a '\r' before it) */
static int next_line(const char *buf, size_t len, size_t *pos, const char **s,
		     size_t *l)
{
	if (*pos >= len)
		return 0;
	const char *p = buf + *pos;
	const char *nl = memchr(p, '\n', len - *pos);
	size_t ll = nl ? (size_t)(nl - p) : len - *pos;
	*pos += ll + (nl ? 1 : 0);
	if (ll > 0 && p[ll - 1] == '\r')
		ll--;
	*s = p;
	*l = ll;
	return 1;
}

typedef struct pending {
	size_t section;
	uint32_t ids[3];   /* a, b, c */
	size_t nex;
	char keys[4][4 * ES_TOKEN_MAX + 8]; /* A, B, C, EXPECTED upper-cased */
} pending;

#define EVAL_BATCH 128
#define EVAL_TOPN 5

static int flush_batch(const es_encoder *enc, const float *unit, size_t n,
		       uint32_t dim, const char *const *words, int ci,
		       es_analogy_method method, pending *pd, size_t np,
		       es_analogy_result *res, es_error *err)
{
	if (np == 0)
		return 0;
	(void)enc;
	float *q = NULL;
	es_word_score *out = NULL;
	size_t *nout = NULL, *nex = NULL;
	const uint32_t **ex = NULL;
	char *ubuf = NULL;
	q = calloc(np * 3 * (size_t)dim, sizeof(float));
	out = malloc(np * EVAL_TOPN * sizeof *out);
	nout = malloc(np * sizeof *nout);
	ex = calloc(np, sizeof *ex);
	nex = calloc(np, sizeof *nex);
	ubuf = malloc(4 * ES_TOKEN_MAX * 4 + 8);
	int rc = 0;
	if (!q || !out || !nout || !ex || !nex || !ubuf) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		const float *a = unit + (size_t)pd[i].ids[0] * dim;
		const float *b = unit + (size_t)pd[i].ids[1] * dim;
		const float *c = unit + (size_t)pd[i].ids[2] * dim;
		ex[i] = pd[i].ids;
		nex[i] = pd[i].nex;
		if (method == ES_ANALOGY_3COSADD) {
			/* gensim: (b + c - a) / 3, then unit length as numpy
			 * rounds it */
			float *m = q + i * dim;
			for (uint32_t j = 0; j < dim; j++)
				m[j] = (b[j] + c[j] - a[j]) / 3.0f;
			simd_normalize_f64(m, dim);
		} else {
			float *t = q + i * 3 * dim;
			memcpy(t, b, dim * sizeof(float));
			memcpy(t + dim, c, dim * sizeof(float));
			memcpy(t + 2 * dim, a, dim * sizeof(float));
			rc = es_arith_most_similar_vectors(
				unit, n, dim, t, 2, 1, method, pd[i].ids,
				pd[i].nex, EVAL_TOPN, out + i * EVAL_TOPN,
				&nout[i], err);
			if (rc)
				goto out;
		}
	}
	if (method == ES_ANALOGY_3COSADD) {
		rc = es_arith_topk_batch(unit, n, dim, q, np, EVAL_TOPN, ex, nex,
					 out, nout, err);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < np; i++) {
		const char *pred = NULL;
		size_t pl = 0;
		for (size_t r = 0; r < nout[i]; r++) {
			const char *w = words[out[i * EVAL_TOPN + r].id];
			size_t wl = strlen(w);
			if (wl > 4 * ES_TOKEN_MAX) {
				pred = NULL;
				continue;
			}
			pl = ci ? es_eval_upper(w, wl, ubuf) : wl;
			if (!ci)
				memcpy(ubuf, w, wl + 1);
			pred = ubuf;
			if (strcmp(pred, pd[i].keys[0]) && strcmp(pred, pd[i].keys[1]) &&
			    strcmp(pred, pd[i].keys[2]))
				break;
		}
		(void)pl;
		es_eval_section *s = &res->sections[pd[i].section];
		if (pred && strcmp(pred, pd[i].keys[3]) == 0) {
			s->correct++;
			res->correct++;
		} else {
			s->incorrect++;
			res->incorrect++;
		}
	}
out:
	free(q);
	free(out);
	free(nout);
	free(ex);
	free(nex);
	free(ubuf);
	return rc;
}

/* The unit vectors of the first restrict_vocab words (0: the default), as
 * gensim restricts its evaluations to the most frequent words. */
static int eval_vocab(const es_encoder *enc, size_t restrict_vocab,
		      const char *const **words, const float **unit, size_t *n,
		      es_error *err)
{
	int rc = es_encoder_vocab(enc, words, unit, n, err);
	if (rc)
		return rc;
	if (restrict_vocab == 0)
		restrict_vocab = ES_EVAL_RESTRICT_DEFAULT;
	if (*n > restrict_vocab)
		*n = restrict_vocab;
	return 0;
}

/* What both word-list evaluations start from: the vocabulary they answer
 * from, the question file read whole, and the lookup of allowed words. */
typedef struct {
	const char *const *words;
	const float *unit;
	size_t n;
	uint32_t dim;
	char *buf;
	size_t len;
	okvocab ok;
} eval_input;

/* On failure *in is still safe to pass to eval_input_free. */
static int eval_input_open(const es_encoder *enc, const char *path,
			   size_t restrict_vocab, int case_insensitive,
			   eval_input *in, es_error *err)
{
	memset(in, 0, sizeof *in);
	int rc = eval_vocab(enc, restrict_vocab, &in->words, &in->unit, &in->n,
			    err);
	if (rc)
		return rc;
	in->dim = es_encoder_dim(enc);
	rc = slurp(path, &in->buf, &in->len, err);
	if (rc)
		return rc;
	return okvocab_build(in->words, in->n, case_insensitive, &in->ok, err);
}

static void eval_input_free(eval_input *in)
{
	free(in->buf);
	okvocab_free(&in->ok);
}

/* Long on purpose (~130 lines): gensim's evaluate_word_analogies as one
 * loop over the file (sections, lines, batches of pending questions), kept
 * in gensim's order so the two can be read side by side. */
int es_eval_analogy(const es_encoder *enc, const char *path,
		    size_t restrict_vocab, int case_insensitive,
		    es_analogy_method method, es_analogy_result *res,
		    es_error *err)
{
	memset(res, 0, sizeof *res);
	size_t pos = 0, lineno = 0, np = 0, seccap = 0;
	eval_input in;
	pending *pd = malloc(EVAL_BATCH * sizeof *pd);
	if (!pd)
		return es_err(err, ES_ENOMEM, "out of memory");
	int rc = eval_input_open(enc, path, restrict_vocab, case_insensitive,
				 &in, err);
	if (rc)
		goto out;
	const char *const *words = in.words;
	const float *unit = in.unit;
	size_t n = in.n;
	uint32_t dim = in.dim;
	const char *ls;
	size_t ll;
	while (next_line(in.buf, in.len, &pos, &ls, &ll)) {
		lineno++;
		size_t bad;
		if (!es_utf8_valid(ls, ll, &bad)) {
			rc = es_err(err, ES_EINVAL,
				    "%s: line %zu is not valid UTF-8", path,
				    lineno);
			goto out;
		}
		if (ll >= 2 && ls[0] == ':' && ls[1] == ' ') {
			if (res->nsections == seccap) {
				seccap = seccap ? seccap * 2 : 16;
				es_eval_section *ns = realloc(
					res->sections, seccap * sizeof *ns);
				if (!ns) {
					rc = es_err(err, ES_ENOMEM, "out of memory");
					goto out;
				}
				res->sections = ns;
			}
			es_eval_section *s = &res->sections[res->nsections++];
			memset(s, 0, sizeof *s);
			/* line.lstrip(': ').strip() */
			size_t a = 0, b = ll;
			while (a < b && (ls[a] == ':' || ls[a] == ' '))
				a++;
			while (b > a && isspace((unsigned char)ls[b - 1]))
				b--;
			size_t nl = b - a < sizeof s->name - 1 ? b - a
							       : sizeof s->name - 1;
			memcpy(s->name, ls + a, nl);
			s->name[nl] = '\0';
			continue;
		}
		if (res->nsections == 0) {
			rc = es_err(err, ES_EINVAL,
				    "%s: missing section header before line %zu",
				    path, lineno);
			goto out;
		}
		/* exactly four whitespace-separated words */
		const char *w[5];
		size_t wl[5], nw = 0;
		for (size_t i = 0; i < ll && nw < 5;) {
			while (i < ll && isspace((unsigned char)ls[i]))
				i++;
			if (i >= ll)
				break;
			w[nw] = ls + i;
			while (i < ll && !isspace((unsigned char)ls[i]))
				i++;
			wl[nw] = (size_t)(ls + i - w[nw]);
			nw++;
		}
		if (nw != 4)
			continue; /* gensim: "Skipping invalid line" */
		res->quadruplets++;
		pending *p = &pd[np];
		int64_t ids[4];
		int oov = 0;
		for (int k = 0; k < 4; k++) {
			if (wl[k] > 2 * ES_TOKEN_MAX) {
				oov = 1;
				break;
			}
			size_t ul;
			if (case_insensitive) {
				ul = es_eval_upper(w[k], wl[k], p->keys[k]);
			} else {
				memcpy(p->keys[k], w[k], wl[k]);
				p->keys[k][wl[k]] = '\0';
				ul = wl[k];
			}
			ids[k] = ok_find(&in.ok, p->keys[k], ul);
			if (ids[k] < 0)
				oov = 1;
		}
		if (oov) {
			res->oov++;
			continue;
		}
		p->section = res->nsections - 1;
		/* query a, b, c; excluded: the same ids (gensim's all_keys) */
		for (int k = 0; k < 3; k++)
			p->ids[k] = (uint32_t)ids[k];
		p->nex = 3;
		np++;
		if (np == EVAL_BATCH) {
			rc = flush_batch(enc, unit, n, dim, words,
					 case_insensitive, method, pd, np, res,
					 err);
			if (rc)
				goto out;
			np = 0;
		}
	}
	rc = flush_batch(enc, unit, n, dim, words, case_insensitive, method, pd,
			 np, res, err);
out:
	free(pd);
	eval_input_free(&in);
	if (rc)
		es_analogy_result_free(res);
	return rc;
}

void es_analogy_result_free(es_analogy_result *res)
{
	free(res->sections);
	res->sections = NULL;
	res->nsections = 0;
}

int es_eval_pairs(const es_encoder *enc, const char *path,
		  size_t restrict_vocab, int case_insensitive,
		  es_pairs_result *res, es_error *err)
{
	memset(res, 0, sizeof *res);
	size_t pos = 0, lineno = 0, cap = 0;
	double *gold = NULL, *model = NULL;
	eval_input in;
	char *key = malloc(8 * ES_TOKEN_MAX + 8);
	if (!key)
		return es_err(err, ES_ENOMEM, "out of memory");
	int rc = eval_input_open(enc, path, restrict_vocab, case_insensitive,
				 &in, err);
	if (rc)
		goto out;
	const float *unit = in.unit;
	uint32_t dim = in.dim;
	const char *ls;
	size_t ll;
	while (next_line(in.buf, in.len, &pos, &ls, &ll)) {
		lineno++;
		if (ll > 0 && ls[0] == '#')
			continue;
		if (!es_utf8_valid(ls, ll, NULL)) {
			rc = es_err(err, ES_EINVAL,
				    "%s: line %zu is not valid UTF-8", path,
				    lineno);
			goto out;
		}
		/* exactly three tab-separated fields */
		const char *t1 = memchr(ls, '\t', ll);
		if (!t1)
			continue;
		const char *t2 = memchr(t1 + 1, '\t', (size_t)(ls + ll - t1 - 1));
		if (!t2 || memchr(t2 + 1, '\t', (size_t)(ls + ll - t2 - 1)))
			continue;
		/* float(field): surrounding whitespace allowed */
		char num[64];
		const char *ns = t2 + 1, *ne = ls + ll;
		while (ns < ne && isspace((unsigned char)*ns))
			ns++;
		while (ne > ns && isspace((unsigned char)ne[-1]))
			ne--;
		if (ne == ns || (size_t)(ne - ns) >= sizeof num)
			continue;
		memcpy(num, ns, (size_t)(ne - ns));
		num[ne - ns] = '\0';
		char *end;
		double sim = strtod(num, &end);
		if (*end)
			continue;
		size_t al = (size_t)(t1 - ls), bl = (size_t)(t2 - t1 - 1);
		int64_t ia = -1, ib = -1;
		if (al <= 2 * ES_TOKEN_MAX && bl <= 2 * ES_TOKEN_MAX) {
			size_t ul = case_insensitive ? es_eval_upper(ls, al, key) : al;
			if (!case_insensitive)
				memcpy(key, ls, al);
			ia = ok_find(&in.ok, key, ul);
			ul = case_insensitive ? es_eval_upper(t1 + 1, bl, key) : bl;
			if (!case_insensitive)
				memcpy(key, t1 + 1, bl);
			ib = ok_find(&in.ok, key, ul);
		}
		if (ia < 0 || ib < 0) {
			res->oov++;
			continue;
		}
		if (res->pairs == cap) {
			cap = cap ? cap * 2 : 256;
			double *ng = realloc(gold, cap * sizeof *ng);
			if (ng)
				gold = ng;
			double *nm = realloc(model, cap * sizeof *nm);
			if (nm)
				model = nm;
			if (!ng || !nm) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
		}
		float s = 0;
		const float *va = unit + (size_t)ia * dim, *vb = unit + (size_t)ib * dim;
		for (uint32_t j = 0; j < dim; j++)
			s += va[j] * vb[j];
		gold[res->pairs] = sim;
		model[res->pairs] = (double)s;
		res->pairs++;
	}
	if (res->pairs == 0) {
		rc = es_err(err, ES_EINVAL,
			    "%s: no pair with both words in the vocabulary", path);
		goto out;
	}
	res->pearson = es_pearson(gold, model, res->pairs);
	res->spearman = es_spearman(gold, model, res->pairs);
	res->oov_ratio = 100.0 * (double)res->oov / (double)(res->pairs + res->oov);
out:
	free(key);
	eval_input_free(&in);
	free(gold);
	free(model);
	return rc;
}

/* ------------------------------------------------------------ STS */

/* Field f (0-based) of a tab-separated line, or 0 when there are fewer. */
static int tab_field(const char *s, size_t l, int f, const char **fs,
		     size_t *fl)
{
	const char *end = s + l;
	for (int i = 0; i < f; i++) {
		const char *t = memchr(s, '\t', (size_t)(end - s));
		if (!t)
			return 0;
		s = t + 1;
	}
	const char *t = memchr(s, '\t', (size_t)(end - s));
	*fs = s;
	*fl = t ? (size_t)(t - s) : (size_t)(end - s);
	return 1;
}

void es_sts_pairs_free(es_sts_pairs *p)
{
	if (!p)
		return;
	free(p->text);
	free(p->sents);
	free(p->lens);
	free(p->gold);
	memset(p, 0, sizeof *p);
}

int es_sts_parse(const char *buf, size_t len, const char *name,
		 es_sts_pairs *out, es_error *err)
{
	memset(out, 0, sizeof *out);
	if (!name)
		name = "sts";
	size_t pos = 0, lineno = 0, n = 0, cap = 0;
	const char *ls;
	size_t ll;
	int rc = 0;
	/* sentences point into a private copy of the text */
	char *text = malloc(len + 1);
	if (!text)
		return es_err(err, ES_ENOMEM, "out of memory");
	memcpy(text, buf, len);
	text[len] = '\0';
	out->text = text;
	while (next_line(text, len, &pos, &ls, &ll)) {
		lineno++;
		if (ll == 0)
			continue;
		size_t bad;
		if (!es_utf8_valid(ls, ll, &bad)) {
			rc = es_err(err, ES_EINVAL, "%s:%zu: invalid UTF-8 (byte %zu of the line)",
				    name, lineno, bad + 1);
			goto out;
		}
		const char *sc, *s1, *s2;
		size_t scl, s1l, s2l;
		if (!tab_field(ls, ll, 4, &sc, &scl) || !tab_field(ls, ll, 5, &s1, &s1l) ||
		    !tab_field(ls, ll, 6, &s2, &s2l)) {
			rc = es_err(err, ES_EINVAL,
				    "%s:%zu: expected 7 tab-separated fields (genre, file, year, id, score, sentence1, sentence2)",
				    name, lineno);
			goto out;
		}
		char num[64];
		char *e;
		if (scl == 0 || scl >= sizeof num) {
			rc = es_err(err, ES_EINVAL, "%s:%zu: score field is not a number",
				    name, lineno);
			goto out;
		}
		memcpy(num, sc, scl);
		num[scl] = '\0';
		errno = 0;
		double g = strtod(num, &e);
		if (*e || errno || !isfinite(g)) {
			rc = es_err(err, ES_EINVAL, "%s:%zu: score '%s' is not a number",
				    name, lineno, num);
			goto out;
		}
		if (n == cap) {
			size_t c = cap ? cap * 2 : 256;
			const char **ns = realloc(out->sents, 2 * c * sizeof *ns);
			if (ns)
				out->sents = ns;
			size_t *nl = realloc(out->lens, 2 * c * sizeof *nl);
			if (nl)
				out->lens = nl;
			double *ng = realloc(out->gold, c * sizeof *ng);
			if (ng)
				out->gold = ng;
			if (!ns || !nl || !ng) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
			cap = c;
		}
		out->sents[2 * n] = s1;
		out->lens[2 * n] = s1l;
		out->sents[2 * n + 1] = s2;
		out->lens[2 * n + 1] = s2l;
		out->gold[n] = g;
		n++;
	}
	out->n = n;
	if (n < 2)
		rc = es_err(err, ES_EINVAL, "%s: %zu sentence pairs; need at least 2",
			    name, n);
out:
	if (rc)
		es_sts_pairs_free(out);
	return rc;
}

/* Encode on pool (may be NULL) and correlate. */
static int sts_eval_pairs(const es_encoder *enc, const es_sts_pairs *pairs,
			  es_pool *pool, es_sts_result *res, es_error *err)
{
	memset(res, 0, sizeof *res);
	uint32_t dim = es_encoder_dim(enc);
	size_t n = pairs->n;
	float *v = malloc(2 * n * (size_t)dim * sizeof *v);
	es_encode_info *info = malloc(2 * n * sizeof *info);
	double *cos = malloc((n ? n : 1) * sizeof *cos);
	int rc = 0;
	if (!v || !info || !cos) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	rc = es_encoder_encode_batch(enc, pairs->sents, pairs->lens, 2 * n, 0, v,
				     info, pool, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const float *a = v + 2 * i * dim, *b = a + dim;
		double d = 0, na = 0, nb = 0;
		for (uint32_t j = 0; j < dim; j++) {
			d += (double)a[j] * b[j];
			na += (double)a[j] * a[j];
			nb += (double)b[j] * b[j];
		}
		cos[i] = na > 0 && nb > 0 ? d / sqrt(na * nb) : 0;
		res->empty += info[2 * i].empty || info[2 * i + 1].empty;
	}
	res->pairs = n;
	res->pearson = es_pearson(pairs->gold, cos, n);
	res->spearman = es_spearman(pairs->gold, cos, n);
out:
	free(v);
	free(info);
	free(cos);
	return rc;
}

int es_eval_sts(const es_encoder *enc, const char *path, es_pool *pool,
		es_sts_result *res, es_error *err)
{
	char *buf = NULL;
	size_t len;
	es_sts_pairs pairs;
	memset(res, 0, sizeof *res);
	int rc = slurp(path, &buf, &len, err);
	if (rc)
		return rc;
	rc = es_sts_parse(buf, len, path, &pairs, err);
	free(buf);
	if (rc)
		return rc;
	rc = sts_eval_pairs(enc, &pairs, pool, res, err);
	if (rc)
		es_err_prefix(err, rc, "%s", path);
	es_sts_pairs_free(&pairs);
	return rc;
}
