/*
 * retrofit.c — see retrofit.h.
 *
 * Layout: the lexicon becomes a list of directed edges (i, j, kind) over
 * vocabulary ids, both directions of every pair, sorted and merged so that
 * a pair counts once (an antonym pair is only an antonym pair; syn wins
 * over rel); then CSR rows per word.  Iterates in double over unit vectors,
 * two buffers (Jacobi).
 */
#include "retrofit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenize.h"

typedef struct edge {
	uint32_t i, j;
	uint32_t kind;
} edge;

void es_retrofit_params_default(es_retrofit_params *p)
{
	p->iterations = 10;
	p->alpha = 1.0f;
	p->beta_syn = 0.5f;
	p->beta_rel = 0.5f;
	p->gamma_ant = 0.0f;
	p->ngram_weight = 1.0f;
}

static int finite_in(float x, float lo, float hi)
{
	return isfinite(x) && x >= lo && x <= hi;
}

int es_retrofit_params_check(const es_retrofit_params *p, es_error *err)
{
	if (p->iterations > 1000)
		return es_err(err, ES_EINVAL, "--iterations %u out of range 0..1000", p->iterations);
	if (!(finite_in(p->alpha, 0, 1000) && p->alpha > 0))
		return es_err(err, ES_EINVAL, "--alpha must be in (0, 1000]");
	if (!finite_in(p->beta_syn, 0, 1000))
		return es_err(err, ES_EINVAL, "--beta-syn must be in [0, 1000]");
	if (!finite_in(p->beta_rel, 0, 1000))
		return es_err(err, ES_EINVAL, "--beta-rel must be in [0, 1000]");
	if (!(finite_in(p->gamma_ant, 0, 1000) && p->gamma_ant < p->alpha / 2))
		return es_err(err, ES_EINVAL, "--gamma-ant must be >= 0 and below alpha / 2 (%g)",
			      (double)p->alpha / 2);
	if (!finite_in(p->ngram_weight, 0, 1))
		return es_err(err, ES_EINVAL, "--ngram-weight must be in [0, 1]");
	return 0;
}

/* Vocabulary id of a lexicon word: as written, else its normalised form
 * when the tokenizer sees exactly one token in it; -1 if neither. */
static int64_t lex_word_id(const es_model *m, const char *w)
{
	size_t len = strlen(w);
	const es_vocab *v = es_model_vocab(m);
	int64_t id = es_vocab_find(v, w, len);
	if (id >= 0)
		return id;
	es_tokenizer t;
	char tok[ES_TOKEN_MAX + 1];
	size_t off, sl;
	es_tokenizer_init(&t, w, len);
	size_t tl = es_tokenizer_next(&t, tok, &off, &sl);
	if (tl == 0 || off != 0 || sl != len)
		return -1;
	return es_vocab_find(v, tok, tl);
}

static int cmp_edge(const void *a, const void *b)
{
	const edge *x = a, *y = b;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	if (x->j != y->j)
		return x->j < y->j ? -1 : 1;
	return (x->kind > y->kind) - (x->kind < y->kind);
}

/* merge rank: antonym over syn over rel */
static int kind_rank(uint32_t k)
{
	return k == ES_LEX_ANT ? 2 : k == ES_LEX_SYN ? 1 : 0;
}

static int push_edge(edge **e, size_t *n, size_t *cap, uint32_t i, uint32_t j,
		     uint32_t kind)
{
	if (*n + 2 > *cap) {
		size_t c = *cap ? *cap * 2 : 1024;
		edge *q = realloc(*e, c * sizeof *q);
		if (!q)
			return -1;
		*e = q;
		*cap = c;
	}
	(*e)[(*n)++] = (edge){i, j, kind};
	(*e)[(*n)++] = (edge){j, i, kind};
	return 0;
}

/* Collect, symmetrise and merge the lexicon's edges over m's ids. */
static int build_edges(const es_model *m, const es_lexicon *lx, edge **out,
		       size_t *nout, es_retrofit_stats *st, es_error *err)
{
	edge *e = NULL;
	size_t n = 0, cap = 0, idcap = 0;
	int64_t *ids = NULL;
	int rc = 0;
	for (size_t g = 0; g < es_lexicon_groups(lx); g++) {
		const char *const *words;
		size_t nw;
		es_lex_kind kind = es_lexicon_group(lx, g, &words, &nw);
		if (nw > idcap) {
			int64_t *q = realloc(ids, nw * sizeof *q);
			if (!q) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
			ids = q;
			idcap = nw;
		}
		for (size_t k = 0; k < nw; k++) {
			ids[k] = lex_word_id(m, words[k]);
			st->lexicon_words++;
			st->unknown_words += ids[k] < 0;
		}
		/* syn: every pair; rel and ant: the first word with each other */
		size_t alast = kind == ES_LEX_SYN ? nw : 1;
		for (size_t a = 0; a < alast; a++) {
			if (ids[a] < 0)
				continue;
			for (size_t b = a + 1; b < nw; b++) {
				if (ids[b] < 0 || ids[b] == ids[a])
					continue;
				if (push_edge(&e, &n, &cap, (uint32_t)ids[a],
					      (uint32_t)ids[b], (uint32_t)kind)) {
					rc = es_err(err, ES_ENOMEM, "out of memory");
					goto out;
				}
			}
		}
	}
	if (n)
		qsort(e, n, sizeof *e, cmp_edge);
	size_t w = 0;
	for (size_t r = 0; r < n; r++) {
		if (w && e[w - 1].i == e[r].i && e[w - 1].j == e[r].j) {
			if (kind_rank(e[r].kind) > kind_rank(e[w - 1].kind))
				e[w - 1].kind = e[r].kind;
			continue;
		}
		e[w++] = e[r];
	}
	n = w;
	for (size_t r = 0; r < n; r++)
		if (e[r].i < e[r].j)
			st->edges[e[r].kind]++;
	*out = e;
	*nout = n;
	e = NULL;
out:
	free(e);
	free(ids);
	return rc;
}

/* Word i's starting vector with the n-gram part weighted by w (see
 * retrofit.h) into out[dim]; sum is dim floats of scratch. */
static int reweight_ngrams(const es_model *m, uint32_t id, float w,
			   float *out, double *sum)
{
	uint32_t dim = es_model_dim(m);
	const float *v = es_model_vector(m, id);
	const float *rows = es_model_ngrams(m);
	const es_vocab *voc = es_model_vocab(m);
	const char *word = es_vocab_word(voc, id);
	size_t len = es_vocab_word_len(voc, id);
	uint32_t stack[512], *ids = stack;
	size_t n = es_model_subword_ids(m, word, len, stack, 512);
	if (n == 0) {
		memcpy(out, v, dim * sizeof(float));
		return 0;
	}
	if (n > 512) {
		ids = malloc(n * sizeof *ids);
		if (!ids)
			return ES_ENOMEM;
		es_model_subword_ids(m, word, len, ids, n);
	}
	memset(sum, 0, dim * sizeof *sum);
	for (size_t k = 0; k < n; k++) {
		const float *r = rows + (size_t)ids[k] * dim;
		for (uint32_t j = 0; j < dim; j++)
			sum[j] += r[j];
	}
	double dn = (double)n;
	for (uint32_t j = 0; j < dim; j++) {
		double own = (dn + 1) * (double)v[j] - sum[j];
		out[j] = (float)((own + (double)w * sum[j]) / (1.0 + (double)w * dn));
	}
	if (ids != stack)
		free(ids);
	return 0;
}

static int copy_meta(const es_model *in, es_model *m, es_error *err)
{
	for (size_t i = 0; i < es_model_meta_count(in); i++) {
		const char *k, *v;
		es_model_meta_at(in, i, &k, &v);
		int rc = es_model_set_meta(m, k, v, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int meta_num(es_model *m, const char *key, double v, es_error *err)
{
	char buf[48];
	snprintf(buf, sizeof buf, "%.9g", v);
	return es_model_set_meta(m, key, buf, err);
}

int es_retrofit(const es_model *in, const es_lexicon *lx,
		const es_retrofit_params *p, es_model **out,
		es_retrofit_stats *stats, es_error *err)
{
	*out = NULL;
	int rc = es_retrofit_params_check(p, err);
	if (rc)
		return rc;
	es_retrofit_stats st;
	memset(&st, 0, sizeof st);
	size_t n = es_model_size(in);
	uint32_t dim = es_model_dim(in);
	float *base = malloc((n ? n : 1) * dim * sizeof *base);
	double *u = malloc((n ? n : 1) * dim * sizeof *u);
	double *q = malloc((n ? n : 1) * dim * sizeof *q);
	double *nq = malloc((n ? n : 1) * dim * sizeof *nq);
	double *norm = malloc((n ? n : 1) * sizeof *norm);
	double *sum = malloc(dim * sizeof *sum);
	size_t *row = calloc(n + 1, sizeof *row);
	double *wsum = calloc(n ? n : 1, sizeof *wsum);
	double *wdeg[ES_LEX_KINDS] = {NULL, NULL, NULL};
	edge *e = NULL;
	size_t ne = 0;
	es_model *m = NULL;
	if (!base || !u || !q || !nq || !norm || !sum || !row || !wsum) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (int k = 0; k < ES_LEX_KINDS; k++)
		if (!(wdeg[k] = calloc(n ? n : 1, sizeof(double)))) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}

	/* starting vectors */
	int rew = p->ngram_weight != 1.0f && es_model_has_subwords(in);
	for (size_t i = 0; i < n; i++) {
		float *b = base + i * dim;
		if (rew) {
			if (reweight_ngrams(in, (uint32_t)i, p->ngram_weight, b, sum)) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
		} else {
			memcpy(b, es_model_vector(in, (uint32_t)i), dim * sizeof *b);
		}
		double s = 0;
		for (uint32_t j = 0; j < dim; j++)
			s += (double)b[j] * b[j];
		norm[i] = sqrt(s);
		double inv = norm[i] > 0 ? 1.0 / norm[i] : 0;
		for (uint32_t j = 0; j < dim; j++)
			u[i * dim + j] = (double)b[j] * inv;
	}

	if ((rc = build_edges(in, lx, &e, &ne, &st, err)))
		goto out;
	/* CSR rows (edges are sorted by i) and per-word weights */
	for (size_t r = 0; r < ne; r++) {
		row[e[r].i + 1]++;
		wdeg[e[r].kind][e[r].i] += 1;
	}
	for (size_t i = 0; i < n; i++)
		row[i + 1] += row[i];
	const float beta[ES_LEX_KINDS] = {p->beta_syn, p->beta_rel, 0};
	for (size_t i = 0; i < n; i++) {
		/* per-edge weights: a kind's total over its edges; attract
		 * kinds share beta by their share of the word's attract edges */
		double attract = wdeg[ES_LEX_SYN][i] + wdeg[ES_LEX_REL][i];
		double ws = 0;
		for (int k = 0; k < ES_LEX_KINDS; k++) {
			double c = wdeg[k][i];
			if (c == 0)
				continue;
			if (k == ES_LEX_ANT) {
				wdeg[k][i] = (double)p->gamma_ant / c;
				ws -= p->gamma_ant;
			} else {
				wdeg[k][i] = (double)beta[k] / attract;
				ws += (double)beta[k] * c / attract;
			}
		}
		wsum[i] = ws;
		st.words_moved += row[i + 1] > row[i];
	}

	memcpy(q, u, n * dim * sizeof *q);
	for (uint32_t it = 0; it < p->iterations; it++) {
		for (size_t i = 0; i < n; i++) {
			double *o = nq + i * dim;
			const double *ui = u + i * dim;
			if (row[i + 1] == row[i] || norm[i] == 0) {
				memcpy(o, ui, dim * sizeof *o);
				continue;
			}
			for (uint32_t j = 0; j < dim; j++)
				o[j] = (double)p->alpha * ui[j];
			for (size_t r = row[i]; r < row[i + 1]; r++) {
				uint32_t k = e[r].kind;
				double w = wdeg[k][i];
				if (k == ES_LEX_ANT)
					w = -w;
				const double *qj = q + (size_t)e[r].j * dim;
				for (uint32_t j = 0; j < dim; j++)
					o[j] += w * qj[j];
			}
			double den = (double)p->alpha + wsum[i];
			for (uint32_t j = 0; j < dim; j++)
				o[j] /= den;
		}
		double *t = q;
		q = nq;
		nq = t;
	}

	/* back to each word's length; output model */
	es_model_params mp;
	es_model_get_params(in, &mp);
	if ((rc = es_model_new(&mp, &m, err)))
		goto out;
	const es_vocab *voc = es_model_vocab(in);
	for (size_t i = 0; i < n; i++) {
		float *b = base + i * dim;
		const double *qi = q + i * dim;
		double s = 0;
		for (uint32_t j = 0; j < dim; j++)
			s += qi[j] * qi[j];
		double scale = s > 0 ? norm[i] / sqrt(s) : 0;
		if (norm[i] > 0)
			for (uint32_t j = 0; j < dim; j++)
				b[j] = (float)(qi[j] * scale);
		int added;
		if ((rc = es_model_add_word(m, es_vocab_word(voc, (uint32_t)i),
					    es_vocab_word_len(voc, (uint32_t)i),
					    es_vocab_count(voc, (uint32_t)i), b,
					    &added, err)))
			goto out;
	}
	if (es_model_has_subwords(in) &&
	    (rc = es_model_set_ngrams(m, es_model_ngrams(in), err)))
		goto out;
	if (es_model_common(in) &&
	    (rc = es_model_set_common(m, es_model_common(in), err)))
		goto out;
	if ((rc = copy_meta(in, m, err)) ||
	    (rc = meta_num(m, "retrofit.iterations", p->iterations, err)) ||
	    (rc = meta_num(m, "retrofit.alpha", p->alpha, err)) ||
	    (rc = meta_num(m, "retrofit.beta_syn", p->beta_syn, err)) ||
	    (rc = meta_num(m, "retrofit.beta_rel", p->beta_rel, err)) ||
	    (rc = meta_num(m, "retrofit.gamma_ant", p->gamma_ant, err)) ||
	    (rc = meta_num(m, "retrofit.ngram_weight", p->ngram_weight, err)) ||
	    (rc = meta_num(m, "retrofit.words_moved", (double)st.words_moved, err)))
		goto out;
	*out = m;
	m = NULL;
	if (stats)
		*stats = st;
out:
	es_model_free(m);
	free(base);
	free(u);
	free(q);
	free(nq);
	free(norm);
	free(sum);
	free(row);
	free(wsum);
	for (int k = 0; k < ES_LEX_KINDS; k++)
		free(wdeg[k]);
	free(e);
	return rc;
}
