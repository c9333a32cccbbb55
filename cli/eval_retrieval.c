/*
 * eval_retrieval.c — `embedsrv eval retrieval` (see eval_retrieval.h):
 *
 *   embedsrv eval retrieval --server URL --collection C --queries Q
 *                           --qrels R [--mode dense|lexical|hybrid]
 *                           [--fusion rrf|weighted] [--alpha A] [--k N]
 *
 * Q is BEIR-style JSONL ({"_id": ..., "text": ...} a line); R is TREC qrels
 * ("qid iter docid rel") or BEIR's TSV ("query-id<TAB>corpus-id<TAB>score",
 * with a header line).  Point ids are compared as text (an integer id as
 * its decimal digits).  The queries go to POST /v1/collections/C/search in
 * batches of 32 with k 100 (the mode and fusion as given, else the
 * server's defaults); EMBEDSRV_API_KEY is sent as a bearer token.  The HTTP
 * client is the least that talks to embedsrv: HTTP/1.1, Connection: close,
 * the body read to the end.
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
#include <unistd.h>

#include "commands.h"

#define BATCH 32

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

static int usage(void)
{
	printf("usage: embedsrv eval retrieval --server URL --collection C --queries Q.jsonl\n"
	       "                               --qrels R [--mode dense|lexical|hybrid]\n"
	       "                               [--fusion rrf|weighted] [--alpha A] [--k N]\n"
	       "A collection's ranking through a running server on a judged query set:\n"
	       "nDCG@10, MAP@100 and recall@100 over the queries with relevant judgments.\n"
	       "Q: BEIR JSONL ({\"_id\", \"text\"} per line); R: TREC qrels (qid iter doc rel)\n"
	       "or BEIR TSV (query-id corpus-id score, with a header).  k defaults to 100.\n");
	return 0;
}

int cmd_eval_retrieval(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"collection", required_argument, NULL, 'c'},
		{"queries", required_argument, NULL, 'q'},
		{"qrels", required_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'},
		{"fusion", required_argument, NULL, 'f'},
		{"alpha", required_argument, NULL, 'a'},
		{"k", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *server = NULL, *coll = NULL, *qpath = NULL, *rpath = NULL;
	const char *mode = NULL, *fusion = NULL;
	double alpha = -1;
	long k = 100;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:c:q:r:m:f:a:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'c': coll = optarg; break;
		case 'q': qpath = optarg; break;
		case 'r': rpath = optarg; break;
		case 'm': mode = optarg; break;
		case 'f': fusion = optarg; break;
		case 'a': alpha = strtod(optarg, NULL); break;
		case 'k': k = strtol(optarg, NULL, 10); break;
		case 'h': return usage();
		default: return 2;
		}
	}
	if (!server || !coll || !qpath || !rpath || k < 1 || k > 10000) {
		fprintf(stderr, "embedsrv eval retrieval: needs --server, --collection, --queries "
			"and --qrels (k 1..10000); see --help\n");
		return 2;
	}
	char host[256], port[16] = "80", path[512];
	const char *hp = strncmp(server, "http://", 7) == 0 ? server + 7 : server;
	size_t hlen = strcspn(hp, ":/");
	if (hlen == 0 || hlen >= sizeof host) {
		fprintf(stderr, "embedsrv eval retrieval: bad --server '%s'\n", server);
		return 2;
	}
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	if (hp[hlen] == ':')
		snprintf(port, sizeof port, "%.*s", (int)strcspn(hp + hlen + 1, "/"), hp + hlen + 1);
	snprintf(path, sizeof path, "/v1/collections/%s/search", coll);

	qset s = {0};
	size_t njudged;
	int rc = 1;
	if (read_queries(qpath, &s) || read_qrels(rpath, &s, &njudged))
		goto out;
	double sum_ndcg = 0, sum_ap = 0, sum_rec = 0;
	size_t evaluated = 0;
	for (size_t i = 0; i < s.n; i += BATCH) {
		json_t *arr = json_array();
		for (size_t j = i; j < s.n && j < i + BATCH; j++) {
			json_t *q = json_pack("{s:s, s:I, s:b}", "text", s.q[j].text, "k",
					      (json_int_t)k, "with_payload", 0);
			if (mode)
				json_object_set_new(q, "mode", json_string(mode));
			if (fusion || alpha >= 0) {
				json_t *f = json_object();
				if (fusion)
					json_object_set_new(f, "method", json_string(fusion));
				if (alpha >= 0)
					json_object_set_new(f, "alpha", json_real(alpha));
				json_object_set_new(q, "fusion", f);
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
			goto out;
		json_t *js = json_loads(resp, 0, NULL);
		if (status != 200 || !js || !json_is_array(json_object_get(js, "result"))) {
			fprintf(stderr, "embedsrv eval retrieval: search answered %d: %.300s\n",
				status, resp);
			free(resp);
			json_decref(js);
			goto out;
		}
		free(resp);
		json_t *results = json_object_get(js, "result");
		for (size_t j = i; j < s.n && j < i + BATCH; j++) {
			json_t *hits = json_array_get(results, j - i);
			size_t nh = json_array_size(hits);
			char **ranked = calloc(nh ? nh : 1, sizeof *ranked);
			for (size_t h = 0; h < nh; h++) {
				char buf[32];
				const char *id = id_text(json_object_get(json_array_get(hits, h), "id"),
							 buf, sizeof buf);
				ranked[h] = strdup(id ? id : "");
			}
			es_judged jd = {(const char *const *)s.q[j].docs, s.q[j].rel, s.q[j].n};
			double nd, ap, rec;
			if (es_retrieval_metrics((const char *const *)ranked, nh, &jd, &nd, &ap,
						 &rec) == 0) {
				sum_ndcg += nd;
				sum_ap += ap;
				sum_rec += rec;
				evaluated++;
			}
			for (size_t h = 0; h < nh; h++)
				free(ranked[h]);
			free(ranked);
		}
		json_decref(js);
	}
	if (!evaluated) {
		fprintf(stderr, "embedsrv eval retrieval: no query has a relevant judgment\n");
		goto out;
	}
	printf("queries %zu (%zu with relevant judgments, %zu judgments), k %ld, mode %s\n",
	       s.n, evaluated, njudged, k, mode ? mode : "server default");
	printf("nDCG@10 %.4f  MAP@100 %.4f  recall@100 %.4f\n", sum_ndcg / evaluated,
	       sum_ap / evaluated, sum_rec / evaluated);
	rc = 0;
out:
	qset_free(&s);
	return rc;
}
