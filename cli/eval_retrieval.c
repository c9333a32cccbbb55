/*
 * eval_retrieval.c — `embedsrv eval retrieval` (see eval_retrieval.h):
 *
 *   embedsrv eval retrieval (--server URL | --data-dir DIR [--model [NAME=]PATH]...)
 *                           --collection C --queries Q --qrels R
 *                           [--mode dense|lexical|hybrid]
 *                           [--fusion rrf|weighted] [--alpha A]
 *                           [--candidates N] [--k N]
 *
 * Q is BEIR-style JSONL ({"_id": ..., "text": ...} a line); R is TREC qrels
 * ("qid iter docid rel") or BEIR's TSV ("query-id<TAB>corpus-id<TAB>score",
 * with a header line).  Point ids are compared as text (an integer id as
 * its decimal digits).
 *
 * --server: the queries go to POST /v1/collections/C/search in batches of
 * 32 with k 100 (the mode and fusion as given, else the server's
 * defaults); EMBEDSRV_API_KEY is sent as a bearer token.  The HTTP client
 * is the least that talks to embedsrv: HTTP/1.1, Connection: close, the
 * body read to the end.
 *
 * --data-dir: no server.  The data directory is opened as `serve
 * --data-dir` opens it (index/store.h: its lock, snapshots, log replay;
 * closed without a snapshot), the collection's own model encodes each
 * query: of the models loaded (--model [NAME=]PATH, as `serve` takes them;
 * else $EMBEDSRV_MODEL, else models/default.esm; none for --mode lexical),
 * the one named as the collection records (a collection with no model
 * name: the first), else an error naming it; es_collection_search runs
 * the query with the API's defaults
 * (index/collection.h).  Also prints the median and 99th percentile over
 * the queries of a query's encode + search time (wall clock, one thread;
 * after a first pass that ranks and warms the pages, the median of
 * LAT_RUNS more runs).
 */
#include "eval_retrieval.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collection.h"
#include "commands.h"
#include "encoder.h"
#include "store.h"

#define BATCH 32
#define LAT_RUNS 5
#define MAX_MODELS 8

int es_retrieval_metrics(const char *const *ranked, size_t nranked,
			 const es_judged *j, double *ndcg10, double *ap100,
			 double *recall100)
{
	size_t nrel = 0;
	for (size_t i = 0; i < j->n; i++)
		nrel += j->rel[i] > 0;
	if (!nrel)
		return -1;
	double dcg = 0, idcg = 0, sum_prec = 0;
	size_t hits = 0;
	for (size_t r = 0; r < nranked && r < 100; r++) {
		int rel = 0;
		for (size_t i = 0; i < j->n; i++)
			if (strcmp(j->docs[i], ranked[r]) == 0) {
				rel = j->rel[i];
				break;
			}
		if (r < 10 && rel > 0)
			dcg += rel / log2((double)r + 2);
		if (rel > 0) {
			hits++;
			sum_prec += (double)hits / (double)(r + 1);
		}
	}
	/* the ideal: the judged gains in decreasing order */
	int top[10];
	size_t nt = 0;
	for (size_t i = 0; i < j->n; i++) {
		int g = j->rel[i];
		if (g <= 0)
			continue;
		size_t p = nt < 10 ? nt++ : 10;
		while (p > 0 && top[p - 1] < g) {
			if (p < 10)
				top[p] = top[p - 1];
			p--;
		}
		if (p < 10)
			top[p] = g;
	}
	for (size_t r = 0; r < nt; r++)
		idcg += top[r] / log2((double)r + 2);
	*ndcg10 = idcg > 0 ? dcg / idcg : 0;
	*ap100 = sum_prec / (double)nrel;
	*recall100 = (double)hits / (double)nrel;
	return 0;
}

/* ------------------------------------------------------------ inputs */

typedef struct query {
	char *id, *text;
	char **docs;
	int *rel;
	size_t n, cap;
	char **ranked; /* the system's answer, best first */
	size_t nranked;
} query;

typedef struct qset {
	query *q;
	size_t n, cap;
} qset;

static query *find_query(qset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->q[i].id, id) == 0)
			return &s->q[i];
	return NULL;
}

static void qset_free(qset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->q[i].id);
		free(s->q[i].text);
		for (size_t k = 0; k < s->q[i].n; k++)
			free(s->q[i].docs[k]);
		free(s->q[i].docs);
		free(s->q[i].rel);
		for (size_t k = 0; k < s->q[i].nranked; k++)
			free(s->q[i].ranked[k]);
		free(s->q[i].ranked);
	}
	free(s->q);
}

/* A JSON id (string or integer) as text into buf. */
static const char *id_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return NULL;
}

static int read_queries(const char *path, qset *s)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "embedsrv eval: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	int rc = 0;
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (strspn(line, " \t\r\n") == strlen(line))
			continue;
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		char buf[32];
		const char *id = o ? id_text(json_object_get(o, "_id"), buf, sizeof buf) : NULL;
		const char *text = o ? json_string_value(json_object_get(o, "text")) : NULL;
		if (!id || !text) {
			fprintf(stderr, "embedsrv eval: %s:%zu: not {\"_id\": ..., \"text\": ...}\n",
				path, lineno);
			json_decref(o);
			rc = -1;
			break;
		}
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->q = realloc(s->q, s->cap * sizeof *s->q);
		}
		memset(&s->q[s->n], 0, sizeof s->q[s->n]);
		s->q[s->n].id = strdup(id);
		s->q[s->n].text = strdup(text);
		s->n++;
		json_decref(o);
	}
	free(line);
	fclose(f);
	return rc;
}

static int read_qrels(const char *path, qset *s, size_t *njudged)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "embedsrv eval: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	*njudged = 0;
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		char *tok[5];
		int nt = 0;
		for (char *t = strtok(line, " \t\r\n"); t && nt < 5; t = strtok(NULL, " \t\r\n"))
			tok[nt++] = t;
		if (nt == 0)
			continue;
		if (lineno == 1 && strcmp(tok[0], "query-id") == 0)
			continue; /* BEIR's header */
		const char *qid, *doc, *rel;
		if (nt == 4) {
			qid = tok[0], doc = tok[2], rel = tok[3];
		} else if (nt == 3) {
			qid = tok[0], doc = tok[1], rel = tok[2];
		} else {
			fprintf(stderr, "embedsrv eval: %s:%zu: not TREC (qid iter doc rel) or "
				"BEIR (query-id corpus-id score) qrels\n", path, lineno);
			free(line);
			fclose(f);
			return -1;
		}
		query *q = find_query(s, qid);
		if (!q)
			continue; /* judged, but not in the queries file */
		if (q->n == q->cap) {
			q->cap = q->cap ? q->cap * 2 : 16;
			q->docs = realloc(q->docs, q->cap * sizeof *q->docs);
			q->rel = realloc(q->rel, q->cap * sizeof *q->rel);
		}
		q->docs[q->n] = strdup(doc);
		q->rel[q->n] = (int)lround(strtod(rel, NULL));
		q->n++;
		(*njudged)++;
	}
	free(line);
	fclose(f);
	return 0;
}

/* ------------------------------------------------------------ HTTP */

/* POST body to http://host:port/path; the response body (malloc'd) and
 * status, or NULL with a message on stderr. */
static char *http_post(const char *host, const char *port, const char *path,
		       const char *body, int *status)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai) {
		fprintf(stderr, "embedsrv eval: %s: %s\n", host, gai_strerror(gai));
		return NULL;
	}
	int fd = -1;
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "embedsrv eval: cannot connect to %s:%s\n", host, port);
		return NULL;
	}
	const char *key = getenv("EMBEDSRV_API_KEY");
	char head[1024];
	int hl = snprintf(head, sizeof head,
			  "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n",
			  path, host, port, strlen(body), key && *key ? "Authorization: Bearer " : "",
			  key && *key ? key : "", key && *key ? "\r\n" : "");
	size_t blen = strlen(body);
	char *resp = NULL;
	size_t n = 0, cap = 0;
	if (hl < 0 || (size_t)hl >= sizeof head || write(fd, head, (size_t)hl) != hl)
		goto fail;
	for (size_t off = 0; off < blen;) {
		ssize_t w = write(fd, body + off, blen - off);
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	for (;;) {
		if (n + 65536 + 1 > cap) {
			cap = cap ? cap * 2 : 131072;
			char *r = realloc(resp, cap);
			if (!r)
				goto fail;
			resp = r;
		}
		ssize_t got = read(fd, resp + n, cap - n - 1);
		if (got < 0)
			goto fail;
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	resp[n] = '\0';
	char *sep = strstr(resp, "\r\n\r\n");
	if (!sep || sscanf(resp, "HTTP/1.%*d %d", status) != 1) {
		fprintf(stderr, "embedsrv eval: the server's answer is not HTTP\n");
		free(resp);
		return NULL;
	}
	memmove(resp, sep + 4, strlen(sep + 4) + 1);
	return resp;
fail:
	fprintf(stderr, "embedsrv eval: talking to %s:%s failed\n", host, port);
	close(fd);
	free(resp);
	return NULL;
}

/* ------------------------------------------------------------ command */

typedef struct eval_opts {
	const char *server, *data_dir, *coll, *qpath, *rpath;
	const char *models[MAX_MODELS]; /* --model [NAME=]PATH */
	size_t nmodels;
	const char *mode, *fusion;
	const char *feedback; /* --feedback off|on|DOCS,TERMS,WEIGHT; NULL: default */
	double alpha;   /* < 0: default */
	long candidates; /* 0: default */
	long k;
} eval_opts;

static int usage(void)
{
	printf("usage: embedsrv eval retrieval (--server URL | --data-dir DIR [--model [NAME=]PATH]...)\n"
	       "                               --collection C --queries Q.jsonl --qrels R\n"
	       "                               [--mode dense|lexical|hybrid]\n"
	       "                               [--fusion rrf|weighted] [--alpha A]\n"
	       "                               [--candidates N] [--k N]\n"
	       "                               [--feedback off|on|DOCS,TERMS,QUERY_WEIGHT]\n"
	       "A collection's ranking on a judged query set: nDCG@10, MAP@100 and\n"
	       "recall@100 over the queries with relevant judgments.\n"
	       "--server asks a running server; --data-dir loads the collection from a\n"
	       "data directory as `serve` would (not while a server holds it) and also\n"
	       "prints the query latency; there the collection's own model encodes the\n"
	       "queries: the --model (as serve takes them; default $EMBEDSRV_MODEL, else\n"
	       "models/default.esm) whose name the collection records.\n"
	       "Q: BEIR JSONL ({\"_id\", \"text\"} per line); R: TREC qrels (qid iter doc rel)\n"
	       "or BEIR TSV (query-id corpus-id score, with a header).  k defaults to 100.\n"
	       "--feedback: pseudo-relevance feedback (RM3) on the lexical list, as the\n"
	       "search API's \"feedback\" (default: on for hybrid, off for lexical).\n");
	return 0;
}

/* --feedback off|on|DOCS,TERMS,QUERY_WEIGHT into fb: 0, or -1 with a
 * message. */
static int feedback_opt(const char *arg, es_lexical_feedback *fb)
{
	es_error err;
	unsigned d, t;
	float w;
	char end;
	es_lexical_feedback_default(fb);
	if (strcmp(arg, "off") == 0) {
		fb->docs = 0;
		return 0;
	}
	if (strcmp(arg, "on") == 0)
		return 0;
	if (sscanf(arg, "%u,%u,%f%c", &d, &t, &w, &end) != 3) {
		fprintf(stderr, "embedsrv eval retrieval: --feedback must be off, on or "
			"DOCS,TERMS,QUERY_WEIGHT (got '%s')\n", arg);
		return -1;
	}
	fb->docs = d;
	fb->terms = t;
	fb->query_weight = w;
	if (es_lexical_feedback_check(fb, &err)) {
		fprintf(stderr, "embedsrv eval retrieval: --feedback: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Parse "host:port" out of URL into host/port and the search path. */
static int parse_server(const eval_opts *o, char *host, size_t hcap, char *port,
			size_t pcap, char *path, size_t pathcap)
{
	const char *hp = strncmp(o->server, "http://", 7) == 0 ? o->server + 7 : o->server;
	size_t hlen = strcspn(hp, ":/");
	if (hlen == 0 || hlen >= hcap) {
		fprintf(stderr, "embedsrv eval retrieval: bad --server '%s'\n", o->server);
		return -1;
	}
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	snprintf(port, pcap, "80");
	if (hp[hlen] == ':')
		snprintf(port, pcap, "%.*s", (int)strcspn(hp + hlen + 1, "/"), hp + hlen + 1);
	snprintf(path, pathcap, "/v1/collections/%s/search", o->coll);
	return 0;
}

/* Every query's ranking through the server (batches of BATCH). */
static int rank_http(const eval_opts *o, qset *s)
{
	char host[256], port[16], path[512];
	if (parse_server(o, host, sizeof host, port, sizeof port, path, sizeof path))
		return -1;
	for (size_t i = 0; i < s->n; i += BATCH) {
		json_t *arr = json_array();
		for (size_t j = i; j < s->n && j < i + BATCH; j++) {
			json_t *q = json_pack("{s:s, s:I, s:b}", "text", s->q[j].text, "k",
					      (json_int_t)o->k, "with_payload", 0);
			if (o->mode)
				json_object_set_new(q, "mode", json_string(o->mode));
			if (o->fusion || o->alpha >= 0 || o->candidates) {
				json_t *f = json_object();
				if (o->fusion)
					json_object_set_new(f, "method", json_string(o->fusion));
				if (o->alpha >= 0)
					json_object_set_new(f, "alpha", json_real(o->alpha));
				if (o->candidates)
					json_object_set_new(f, "candidates",
							    json_integer(o->candidates));
				json_object_set_new(q, "fusion", f);
			}
			if (o->feedback) {
				es_lexical_feedback fb;
				if (feedback_opt(o->feedback, &fb)) {
					json_decref(q);
					json_decref(arr);
					return -1;
				}
				json_object_set_new(q, "feedback",
						    json_pack("{s:I, s:I, s:f}", "docs",
							      (json_int_t)fb.docs, "terms",
							      (json_int_t)fb.terms, "query_weight",
							      (double)fb.query_weight));
			}
			json_array_append_new(arr, q);
		}
		json_t *req = json_pack("{s:o}", "searches", arr);
		char *body = json_dumps(req, JSON_COMPACT);
		json_decref(req);
		int status = 0;
		char *resp = body ? http_post(host, port, path, body, &status) : NULL;
		free(body);
		if (!resp)
			return -1;
		json_t *js = json_loads(resp, 0, NULL);
		if (status != 200 || !js || !json_is_array(json_object_get(js, "result"))) {
			fprintf(stderr, "embedsrv eval retrieval: search answered %d: %.300s\n",
				status, resp);
			free(resp);
			json_decref(js);
			return -1;
		}
		free(resp);
		json_t *results = json_object_get(js, "result");
		for (size_t j = i; j < s->n && j < i + BATCH; j++) {
			json_t *hits = json_array_get(results, j - i);
			size_t nh = json_array_size(hits);
			query *q = &s->q[j];
			q->ranked = calloc(nh ? nh : 1, sizeof *q->ranked);
			for (size_t h = 0; h < nh; h++) {
				char buf[32];
				const char *id = id_text(json_object_get(json_array_get(hits, h), "id"),
							 buf, sizeof buf);
				q->ranked[h] = strdup(id ? id : "");
			}
			q->nranked = nh;
		}
		json_decref(js);
	}
	return 0;
}

/* The request of one text query: the API's defaults (api_search.c) with
 * the options' overrides; 0 or -1 with a message. */
static int local_request(const eval_opts *o, es_search_req *rq)
{
	memset(rq, 0, sizeof *rq);
	rq->mode = ES_TEXT_MODE_DEFAULT;
	rq->fusion = ES_FUSION_DEFAULT;
	rq->alpha = ES_FUSION_ALPHA_DEFAULT;
	rq->rrf_k = ES_RRF_K_DEFAULT;
	rq->candidates = o->candidates ? (uint32_t)o->candidates : ES_HYBRID_CANDIDATES_DEFAULT;
	rq->k = (uint32_t)o->k;
	if (o->mode && strcmp(o->mode, "dense") == 0)
		rq->mode = ES_SEARCH_DENSE;
	else if (o->mode && strcmp(o->mode, "lexical") == 0)
		rq->mode = ES_SEARCH_LEXICAL;
	else if (o->mode && strcmp(o->mode, "hybrid") == 0)
		rq->mode = ES_SEARCH_HYBRID;
	else if (o->mode) {
		fprintf(stderr, "embedsrv eval retrieval: --mode must be dense, lexical or hybrid\n");
		return -1;
	}
	es_search_feedback_default(rq->mode, &rq->feedback);
	if (o->feedback && rq->mode != ES_SEARCH_DENSE && feedback_opt(o->feedback, &rq->feedback))
		return -1;
	if (o->fusion && strcmp(o->fusion, "rrf") == 0)
		rq->fusion = ES_FUSION_RRF;
	else if (o->fusion && strcmp(o->fusion, "weighted") == 0)
		rq->fusion = ES_FUSION_WEIGHTED;
	else if (o->fusion) {
		fprintf(stderr, "embedsrv eval retrieval: --fusion must be rrf or weighted\n");
		return -1;
	}
	if (o->alpha >= 0) {
		if (o->alpha > 1) {
			fprintf(stderr, "embedsrv eval retrieval: --alpha must be between 0 and 1\n");
			return -1;
		}
		rq->alpha = (float)o->alpha;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One query through the collection: encode (unless lexical), search, keep
 * the ranked ids.  *us gets the time both took. */
static int local_query(const es_encoder *enc, es_collection *col, es_search_req rq,
		       float *qv, query *q, double *us)
{
	struct timespec t0, t1;
	es_error err;
	es_error_clear(&err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rq.text = q->text;
	rq.text_len = strlen(q->text);
	rq.query = NULL;
	if (rq.mode != ES_SEARCH_LEXICAL) {
		es_encode_info info;
		int rc = es_encoder_encode(enc, rq.text, rq.text_len, 0, qv, &info, &err);
		if (rc) {
			fprintf(stderr, "embedsrv eval retrieval: query %s: %s\n", q->id,
				err.msg[0] ? err.msg : es_strerror(rc));
			return -1;
		}
		/* as the API: text the model cannot encode is lexical alone in
		 * hybrid, and finds nothing dense */
		if (!info.empty)
			rq.query = qv;
	}
	es_point_out *hits = NULL;
	size_t nh = 0;
	if (rq.query || rq.mode != ES_SEARCH_DENSE) {
		int rc = es_collection_search(col, &rq, &hits, &nh, &err);
		if (rc) {
			fprintf(stderr, "embedsrv eval retrieval: query %s: %s\n", q->id,
				err.msg[0] ? err.msg : es_strerror(rc));
			return -1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	q->ranked = calloc(nh ? nh : 1, sizeof *q->ranked);
	for (size_t h = 0; h < nh; h++) {
		char buf[32];
		if (hits[h].id.is_str) {
			q->ranked[h] = strndup(hits[h].id.str, hits[h].id.len);
		} else {
			snprintf(buf, sizeof buf, "%llu", (unsigned long long)hits[h].id.num);
			q->ranked[h] = strdup(buf);
		}
	}
	q->nranked = nh;
	es_hits_free(hits, nh);
	return 0;
}

/* The collection's own model among --model's (as the server picks it,
 * server/api.c api_collection_model, but never another model's vectors):
 * *enc, or -1 with a message.  encs[] holds what was loaded. */
static int local_model(const eval_opts *o, const es_collection *col, es_encoder **encs,
		       size_t *nenc, const es_encoder **enc)
{
	const es_collection_params *p = es_collection_get_params(col);
	const char *deflt = getenv("EMBEDSRV_MODEL") ? getenv("EMBEDSRV_MODEL")
						     : "models/default.esm";
	size_t n = o->nmodels ? o->nmodels : 1;
	*enc = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *spec = o->nmodels ? o->models[i] : deflt, *eq = strchr(spec, '=');
		char name[128];
		const char *path = spec, *namep = NULL;
		if (eq && eq != spec && (size_t)(eq - spec) < sizeof name) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
			path = eq + 1;
			namep = name;
		}
		es_error err;
		es_error_clear(&err);
		if (es_encoder_open(path, namep, &encs[*nenc], &err)) {
			fprintf(stderr, "embedsrv eval retrieval: model %s: %s\n", path,
				err.msg[0] ? err.msg : es_strerror(err.code));
			return -1;
		}
		const es_encoder *e = encs[(*nenc)++];
		if (!*enc && (!p->model[0] || strcmp(es_encoder_name(e), p->model) == 0))
			*enc = e;
	}
	if (!*enc) {
		fprintf(stderr, "embedsrv eval retrieval: collection '%s' encodes text with model "
			"'%s', which no --model is (loaded: %s%s); pass --model %s=PATH\n",
			o->coll, p->model, es_encoder_name(encs[0]), *nenc > 1 ? ", ..." : "",
			p->model);
		return -1;
	}
	if (es_encoder_dim(*enc) != p->dim) {
		fprintf(stderr, "embedsrv eval retrieval: collection '%s' has dimension %u "
			"but model %s makes %u\n", o->coll, p->dim, es_encoder_name(*enc),
			es_encoder_dim(*enc));
		return -1;
	}
	return 0;
}

/* Rank every query (the first pass, which also warms the model's and the
 * index's pages), then time each LAT_RUNS more times and print the p50 and
 * p99 of the per-query medians.  0 or -1. */
static int local_rank_and_time(const es_encoder *enc, es_collection *col,
			       const es_search_req *rq, qset *s)
{
	int rc = -1;
	float *qv = malloc((size_t)es_collection_get_params(col)->dim * sizeof *qv);
	double *us = malloc((s->n ? s->n : 1) * sizeof *us);
	if (!qv || !us) {
		fprintf(stderr, "embedsrv eval retrieval: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < s->n; i++)
		if (local_query(enc, col, *rq, qv, &s->q[i], &us[i]))
			goto out;
	for (size_t i = 0; i < s->n; i++) {
		double t[LAT_RUNS];
		for (int r = 0; r < LAT_RUNS; r++) {
			query q = s->q[i];
			q.ranked = NULL;
			q.nranked = 0;
			if (local_query(enc, col, *rq, qv, &q, &t[r]))
				goto out;
			for (size_t h = 0; h < q.nranked; h++)
				free(q.ranked[h]);
			free(q.ranked);
		}
		qsort(t, LAT_RUNS, sizeof *t, cmp_double);
		us[i] = t[LAT_RUNS / 2];
	}
	if (s->n) {
		qsort(us, s->n, sizeof *us, cmp_double);
		printf("latency (encode + search, one thread, median of %d runs) p50 %.1f us  "
		       "p99 %.1f us over %zu queries\n", LAT_RUNS, us[s->n / 2],
		       us[(s->n * 99) / 100], s->n);
	}
	rc = 0;
out:
	free(qv);
	free(us);
	return rc;
}

/* Every query's ranking straight from the data directory: opened as
 * `serve` opens it, the collection's model, then local_rank_and_time. */
static int rank_local(const eval_opts *o, qset *s)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/MANIFEST", o->data_dir);
	if (stat(path, &st) != 0) {
		fprintf(stderr, "embedsrv eval retrieval: %s is not a data directory (no MANIFEST)\n",
			o->data_dir);
		return -1;
	}
	es_search_req rq;
	if (local_request(o, &rq))
		return -1;
	es_registry *reg = NULL;
	es_store *store = NULL;
	es_encoder *encs[MAX_MODELS];
	size_t nenc = 0;
	const es_encoder *enc = NULL;
	es_collection *col = NULL;
	es_error err;
	es_error_clear(&err);
	int rc = -1;
	if (es_registry_new(NULL, &reg, &err))
		goto fail;
	es_store_options so;
	es_store_options_default(&so);
	so.checkpoint_bytes = UINT64_MAX;
	int src = es_store_open(o->data_dir, &so, reg, NULL, &store, &err);
	if (src == ES_EBUSY) {
		fprintf(stderr, "embedsrv eval retrieval: a server holds %s; use --server, or "
			"stop it first\n", o->data_dir);
		goto out;
	}
	if (src || es_registry_get(reg, o->coll, &col, &err))
		goto fail;
	if (rq.mode != ES_SEARCH_LEXICAL && local_model(o, col, encs, &nenc, &enc))
		goto out;
	rc = local_rank_and_time(enc, col, &rq, s);
	goto out;
fail:
	fprintf(stderr, "embedsrv eval retrieval: %s\n", err.msg[0] ? err.msg : es_strerror(err.code));
out:
	if (col)
		es_collection_release(col);
	es_store_close(store, 0, NULL);
	es_registry_free(reg);
	for (size_t i = 0; i < nenc; i++)
		es_encoder_free(encs[i]);
	return rc;
}

/* The command line into o: -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, eval_opts *o)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"data-dir", required_argument, NULL, 'd'},
		{"model", required_argument, NULL, 'M'},
		{"collection", required_argument, NULL, 'c'},
		{"queries", required_argument, NULL, 'q'},
		{"qrels", required_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'},
		{"fusion", required_argument, NULL, 'f'},
		{"alpha", required_argument, NULL, 'a'},
		{"candidates", required_argument, NULL, 'C'},
		{"feedback", required_argument, NULL, 'F'},
		{"k", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	memset(o, 0, sizeof *o);
	o->alpha = -1;
	o->k = 100;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:d:M:c:q:r:m:f:a:C:F:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': o->server = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'M':
			if (o->nmodels == MAX_MODELS) {
				fprintf(stderr, "embedsrv eval retrieval: at most %d models\n",
					MAX_MODELS);
				return 2;
			}
			o->models[o->nmodels++] = optarg;
			break;
		case 'c': o->coll = optarg; break;
		case 'q': o->qpath = optarg; break;
		case 'r': o->rpath = optarg; break;
		case 'm': o->mode = optarg; break;
		case 'f': o->fusion = optarg; break;
		case 'a': o->alpha = strtod(optarg, NULL); break;
		case 'C': o->candidates = strtol(optarg, NULL, 10); break;
		case 'F': o->feedback = optarg; break;
		case 'k': o->k = strtol(optarg, NULL, 10); break;
		case 'h': return usage();
		default: return 2;
		}
	}
	if (!o->server == !o->data_dir || !o->coll || !o->qpath || !o->rpath || o->k < 1 ||
	    o->k > 10000 || o->candidates < 0 || o->candidates > ES_HYBRID_CANDIDATES_MAX ||
	    (o->nmodels && !o->data_dir)) {
		fprintf(stderr, "embedsrv eval retrieval: needs one of --server and --data-dir "
			"(--model only with --data-dir), --collection, --queries and --qrels "
			"(k 1..10000, candidates 1..%d); see --help\n", ES_HYBRID_CANDIDATES_MAX);
		return 2;
	}
	return -1;
}

/* The means over the queries with relevant judgments, printed: 0, or -1
 * when no query has one. */
static int print_metrics(const eval_opts *o, const qset *s, size_t njudged)
{
	double sum_ndcg = 0, sum_ap = 0, sum_rec = 0;
	size_t evaluated = 0;
	for (size_t i = 0; i < s->n; i++) {
		const query *q = &s->q[i];
		es_judged jd = {(const char *const *)q->docs, q->rel, q->n};
		double nd, ap, rec;
		if (es_retrieval_metrics((const char *const *)q->ranked, q->nranked, &jd, &nd,
					 &ap, &rec) == 0) {
			sum_ndcg += nd;
			sum_ap += ap;
			sum_rec += rec;
			evaluated++;
		}
	}
	if (!evaluated) {
		fprintf(stderr, "embedsrv eval retrieval: no query has a relevant judgment\n");
		return -1;
	}
	printf("queries %zu (%zu with relevant judgments, %zu judgments), k %ld, mode %s\n",
	       s->n, evaluated, njudged, o->k, o->mode ? o->mode : "default");
	printf("nDCG@10 %.4f  MAP@100 %.4f  recall@100 %.4f\n", sum_ndcg / evaluated,
	       sum_ap / evaluated, sum_rec / evaluated);
	return 0;
}

int cmd_eval_retrieval(int argc, char **argv)
{
	eval_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	qset s = {0};
	size_t njudged;
	rc = 1;
	if (!read_queries(o.qpath, &s) && !read_qrels(o.rpath, &s, &njudged) &&
	    !(o.server ? rank_http(&o, &s) : rank_local(&o, &s)) &&
	    !print_metrics(&o, &s, njudged))
		rc = 0;
	qset_free(&s);
	return rc;
}
