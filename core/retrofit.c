/*
 * retrofit.c — see retrofit.h.
 *
 * Layout: the lexicon becomes a list of directed edges (i, j, kind) over
 * vocabulary ids, both directions of every pair, sorted and merged so that
 * a pair counts once (an antonym pair is only an antonym pair; syn wins
 * over rel); then CSR rows per word.  Iterates in double over unit vectors,
 * two buffers (Jacobi).  es_retrofit runs the steps in that order on one
 * rf_work: start_vectors, build_edges, edge_weights, iterate (update_word
 * per word), output_model.
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

/* What es_retrofit works on: n words of dim, per word its starting vector
 * (base, float, as the model stores it), its length and unit vector (u),
 * the two Jacobi buffers (q: the current iterate, nq: the next), the CSR
 * rows of its edges and the per-edge weight of each kind (wdeg) with their
 * signed sum (wsum). */
typedef struct rf_work {
	size_t n;
	uint32_t dim;
	float *base;
	double *u, *q, *nq, *norm, *sum;
	size_t *row;
	double *wsum;
	double *wdeg[ES_LEX_KINDS];
	edge *e;
	size_t ne;
} rf_work;

static void work_free(rf_work *w)
{
	free(w->base);
	free(w->u);
	free(w->q);
	free(w->nq);
	free(w->norm);
	free(w->sum);
	free(w->row);
	free(w->wsum);
	for (int k = 0; k < ES_LEX_KINDS; k++)
		free(w->wdeg[k]);
	free(w->e);
}

static int work_alloc(rf_work *w, size_t n, uint32_t dim, es_error *err)
{
	size_t n1 = n ? n : 1;
	memset(w, 0, sizeof *w);
	w->n = n;
	w->dim = dim;
	w->base = malloc(n1 * dim * sizeof *w->base);
	w->u = malloc(n1 * dim * sizeof *w->u);
	w->q = malloc(n1 * dim * sizeof *w->q);
	w->nq = malloc(n1 * dim * sizeof *w->nq);
	w->norm = malloc(n1 * sizeof *w->norm);
	w->sum = malloc(dim * sizeof *w->sum);
	w->row = calloc(n + 1, sizeof *w->row);
	w->wsum = calloc(n1, sizeof *w->wsum);
	int ok = w->base && w->u && w->q && w->nq && w->norm && w->sum && w->row && w->wsum;
	for (int k = 0; k < ES_LEX_KINDS && ok; k++)
		ok = (w->wdeg[k] = calloc(n1, sizeof(double))) != NULL;
	return ok ? 0 : es_err(err, ES_ENOMEM, "out of memory");
}

/* Each word's starting vector (its n-grams reweighted when asked), its
 * length and its unit vector. */
static int start_vectors(const es_model *in, const es_retrofit_params *p,
			 rf_work *w, es_error *err)
{
	uint32_t dim = w->dim;
	int rew = p->ngram_weight != 1.0f && es_model_has_subwords(in);
	for (size_t i = 0; i < w->n; i++) {
		float *b = w->base + i * dim;
		if (rew) {
			if (reweight_ngrams(in, (uint32_t)i, p->ngram_weight, b, w->sum))
				return es_err(err, ES_ENOMEM, "out of memory");
		} else {
			memcpy(b, es_model_vector(in, (uint32_t)i), dim * sizeof *b);
		}
		double s = 0;
		for (uint32_t j = 0; j < dim; j++)
			s += (double)b[j] * b[j];
		w->norm[i] = sqrt(s);
		double inv = w->norm[i] > 0 ? 1.0 / w->norm[i] : 0;
		for (uint32_t j = 0; j < dim; j++)
			w->u[i * dim + j] = (double)b[j] * inv;
	}
	return 0;
}

/* CSR rows of the edges (sorted by i) and the per-edge weights: a kind's
 * total over its edges; attract kinds share beta by their share of the
 * word's attract edges.  Counts the words that will move. */
static void edge_weights(const es_retrofit_params *p, rf_work *w, es_retrofit_stats *st)
{
	for (size_t r = 0; r < w->ne; r++) {
		w->row[w->e[r].i + 1]++;
		w->wdeg[w->e[r].kind][w->e[r].i] += 1;
	}
	for (size_t i = 0; i < w->n; i++)
		w->row[i + 1] += w->row[i];
	const float beta[ES_LEX_KINDS] = {p->beta_syn, p->beta_rel, 0};
	for (size_t i = 0; i < w->n; i++) {
		double attract = w->wdeg[ES_LEX_SYN][i] + w->wdeg[ES_LEX_REL][i];
		double ws = 0;
		for (int k = 0; k < ES_LEX_KINDS; k++) {
			double c = w->wdeg[k][i];
			if (c == 0)
				continue;
			if (k == ES_LEX_ANT) {
				w->wdeg[k][i] = (double)p->gamma_ant / c;
				ws -= p->gamma_ant;
			} else {
				w->wdeg[k][i] = (double)beta[k] / attract;
				ws += (double)beta[k] * c / attract;
			}
		}
		w->wsum[i] = ws;
		st->words_moved += w->row[i + 1] > w->row[i];
	}
}

/* Word i's next iterate into nq from its neighbours in q (retrofit.h's
 * update); a word without edges, or of length 0, keeps its unit vector. */
static void update_word(const es_retrofit_params *p, rf_work *w, size_t i)
{
	uint32_t dim = w->dim;
	double *o = w->nq + i * dim;
	const double *ui = w->u + i * dim;
	if (w->row[i + 1] == w->row[i] || w->norm[i] == 0) {
		memcpy(o, ui, dim * sizeof *o);
		return;
	}
	for (uint32_t j = 0; j < dim; j++)
		o[j] = (double)p->alpha * ui[j];
	for (size_t r = w->row[i]; r < w->row[i + 1]; r++) {
		uint32_t k = w->e[r].kind;
		double wt = w->wdeg[k][i];
		if (k == ES_LEX_ANT)
			wt = -wt;
		const double *qj = w->q + (size_t)w->e[r].j * dim;
		for (uint32_t j = 0; j < dim; j++)
			o[j] += wt * qj[j];
	}
	double den = (double)p->alpha + w->wsum[i];
	for (uint32_t j = 0; j < dim; j++)
		o[j] /= den;
}

/* Jacobi iterations from q = u; the result is in w->q. */
static void iterate(const es_retrofit_params *p, rf_work *w)
{
	memcpy(w->q, w->u, w->n * w->dim * sizeof *w->q);
	for (uint32_t it = 0; it < p->iterations; it++) {
		for (size_t i = 0; i < w->n; i++)
			update_word(p, w, i);
		double *t = w->q;
		w->q = w->nq;
		w->nq = t;
	}
}

/* The parameters and the count of words moved, as retrofit.* metadata. */
static int retrofit_meta(es_model *m, const es_retrofit_params *p,
			 const es_retrofit_stats *st, es_error *err)
{
	int rc;
	if ((rc = meta_num(m, "retrofit.iterations", p->iterations, err)) ||
	    (rc = meta_num(m, "retrofit.alpha", p->alpha, err)) ||
	    (rc = meta_num(m, "retrofit.beta_syn", p->beta_syn, err)) ||
	    (rc = meta_num(m, "retrofit.beta_rel", p->beta_rel, err)) ||
	    (rc = meta_num(m, "retrofit.gamma_ant", p->gamma_ant, err)) ||
	    (rc = meta_num(m, "retrofit.ngram_weight", p->ngram_weight, err)))
		return rc;
	return meta_num(m, "retrofit.words_moved", (double)st->words_moved, err);
}

/* The output model: in's words with the retrofitted vectors scaled back to
 * each word's length, in's n-gram rows, common component and metadata, and
 * the parameters as retrofit.* metadata. */
static int output_model(const es_model *in, const es_retrofit_params *p,
			rf_work *w, const es_retrofit_stats *st, es_model **out,
			es_error *err)
{
	uint32_t dim = w->dim;
	es_model_params mp;
	es_model_get_params(in, &mp);
	es_model *m = NULL;
	int rc = es_model_new(&mp, &m, err);
	if (rc)
		return rc;
	const es_vocab *voc = es_model_vocab(in);
	for (size_t i = 0; i < w->n && !rc; i++) {
		float *b = w->base + i * dim;
		const double *qi = w->q + i * dim;
		double s = 0;
		for (uint32_t j = 0; j < dim; j++)
			s += qi[j] * qi[j];
		double scale = s > 0 ? w->norm[i] / sqrt(s) : 0;
		if (w->norm[i] > 0)
			for (uint32_t j = 0; j < dim; j++)
				b[j] = (float)(qi[j] * scale);
		int added;
		rc = es_model_add_word(m, es_vocab_word(voc, (uint32_t)i),
				       es_vocab_word_len(voc, (uint32_t)i),
				       es_vocab_count(voc, (uint32_t)i), b, &added, err);
	}
	if (!rc && es_model_has_subwords(in))
		rc = es_model_set_ngrams(m, es_model_ngrams(in), err);
	if (!rc && es_model_common(in))
		rc = es_model_set_common(m, es_model_common(in), err);
	if (!rc)
		rc = copy_meta(in, m, err);
	if (!rc)
		rc = retrofit_meta(m, p, st, err);
	if (rc) {
		es_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
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
	rf_work w;
	if (!(rc = work_alloc(&w, es_model_size(in), es_model_dim(in), err)) &&
	    !(rc = start_vectors(in, p, &w, err)) &&
	    !(rc = build_edges(in, lx, &w.e, &w.ne, &st, err))) {
		edge_weights(p, &w, &st);
		iterate(p, &w);
		rc = output_model(in, p, &w, &st, out, err);
	}
	if (!rc && stats)
		*stats = st;
	work_free(&w);
	return rc;
}
