/*
 * lexical_run.c — embedsrv's lexical index (index/lexical.h) over a
 * BEIR-style data set, straight through the library (no server): writes a
 * TREC run ("qid Q0 docid rank score embedsrv") of each query's top k to
 * stdout, for bench/lexical/cisi.py metrics to score against the reference.
 *
 *   lexical_run DIR [--k1 X] [--b X] [--stem 0|1] [--stop 0|1] [--k N]
 *               [--time R] [--wand 1] [--feedback 1]
 *
 * --time R: instead of the run, each query's search R times (thread CPU
 * time) and the median over the queries of each query's median, on stderr
 * ("search p50 ... us"): the lexical half of a hybrid query's cost.
 * --wand 1: es_lexical_search_wand (Block-Max WAND always) instead of
 * es_lexical_search's choice of plan.
 * --feedback 1: es_lexical_search_feedback with the default RM3 (the
 * lexical half of a default hybrid search).
 *
 * DIR holds corpus.jsonl ({"_id", "title", "text"}) and queries.jsonl
 * ({"_id", "text"}); a document's text is title + " " + text.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lexical.h"

static void die(const char *a, const char *b)
{
	fprintf(stderr, "lexical_run: %s: %s\n", a, b);
	exit(1);
}

typedef struct rec {
	char *id;
	char *text;
} rec;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static rec *read_jsonl(const char *path, size_t *n, int with_title)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(path, "cannot open");
	rec *r = NULL;
	size_t cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	*n = 0;
	while (getline(&line, &lcap, f) > 0) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		if (!o)
			die(path, je.text);
		const char *id = json_string_value(json_object_get(o, "_id"));
		const char *t = json_string_value(json_object_get(o, "title"));
		const char *x = json_string_value(json_object_get(o, "text"));
		if (!id || !x)
			die(path, "a line without _id or text");
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			r = realloc(r, cap * sizeof *r);
		}
		size_t len = strlen(x) + (t ? strlen(t) : 0) + 2;
		char *s = malloc(len);
		snprintf(s, len, "%s%s%s", with_title && t ? t : "",
			 with_title && t && *t ? " " : "", x);
		r[*n].id = strdup(id);
		r[*n].text = s;
		(*n)++;
		json_decref(o);
	}
	free(line);
	fclose(f);
	return r;
}

static int search(const es_lexical *lx, const char *q, uint32_t k, int wand, int fb,
		  es_hit *hits, size_t *nh, es_error *err)
{
	if (fb) {
		es_lexical_feedback f;
		es_lexical_feedback_default(&f);
		return es_lexical_search_feedback(lx, q, strlen(q), k, &f, NULL, NULL, hits, nh,
						  err);
	}
	return (wand ? es_lexical_search_wand : es_lexical_search)(lx, q, strlen(q), k, NULL,
								   NULL, hits, nh, err);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage", "lexical_run DIR [--k1 X] [--b X] [--stem 0|1] [--stop 0|1] [--k N]");
	es_lexical_params p;
	es_lexical_params_default(&p);
	uint32_t k = 100;
	int reps = 0, wand = 0, fb = 0;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--k1"))
			p.k1 = strtof(argv[i + 1], NULL);
		else if (!strcmp(argv[i], "--b"))
			p.b = strtof(argv[i + 1], NULL);
		else if (!strcmp(argv[i], "--stem"))
			p.stemming = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--stop"))
			p.stopwords = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--k"))
			k = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--time"))
			reps = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--wand"))
			wand = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--feedback"))
			fb = atoi(argv[i + 1]);
		else
			die("unknown option", argv[i]);
	}
	char path[4096];
	size_t nd, nq;
	snprintf(path, sizeof path, "%s/corpus.jsonl", argv[1]);
	rec *docs = read_jsonl(path, &nd, 1);
	snprintf(path, sizeof path, "%s/queries.jsonl", argv[1]);
	rec *qs = read_jsonl(path, &nq, 0);
	es_lexical *lx;
	es_error err;
	if (es_lexical_new(&p, &lx, &err))
		die("lexical", err.msg);
	for (size_t i = 0; i < nd; i++)
		if (es_lexical_upsert(lx, i, docs[i].text, strlen(docs[i].text), &err))
			die("upsert", err.msg);
	es_hit *hits = malloc(k * sizeof *hits);
	if (reps > 0) {
		double *per = malloc(nq * sizeof *per), *t = malloc((size_t)reps * sizeof *t);
		for (size_t q = 0; q < nq; q++) {
			for (int r = 0; r < reps; r++) {
				size_t nh;
				double t0 = now_us();
				if (search(lx, qs[q].text, k, wand, fb, hits, &nh, &err))
					die("search", err.msg);
				t[r] = now_us() - t0;
			}
			qsort(t, (size_t)reps, sizeof *t, cmp_double);
			per[q] = t[reps / 2];
		}
		qsort(per, nq, sizeof *per, cmp_double);
		fprintf(stderr, "search p50 %.1f us, p90 %.1f us over %zu queries (k %u)\n",
			per[nq / 2], per[nq * 9 / 10], nq, k);
		free(per);
		free(t);
	}
	for (size_t q = 0; q < nq && reps <= 0; q++) {
		size_t nh;
		if (search(lx, qs[q].text, k, wand, fb, hits, &nh, &err))
			die("search", err.msg);
		for (size_t i = 0; i < nh; i++)
			printf("%s Q0 %s %zu %.6f embedsrv\n", qs[q].id, docs[hits[i].label].id,
			       i + 1, (double)hits[i].score);
	}
	es_lexical_free(lx);
	free(hits);
	for (size_t i = 0; i < nd; i++) {
		free(docs[i].id);
		free(docs[i].text);
	}
	for (size_t i = 0; i < nq; i++) {
		free(qs[i].id);
		free(qs[i].text);
	}
	free(docs);
	free(qs);
	return 0;
}
