/*
 * bench_lexical.c — embedsrv's lexical index (index/lexical.h) against
 * SQLite FTS5 (bm25() ranking) on the same lines, single thread, same run.
 *
 *   bench_lexical CORPUS [--lines N] [--queries Q] [--stem 0|1]
 *                 [--stop 0|1] [--batch B] [--fts5-content] [--db PATH]
 *
 * Every line of CORPUS (up to N) is one document, its line number the
 * label / rowid.  Ours indexes B lines per es_lexical_upsert_batch call
 * (default 1000; 1: es_lexical_upsert a line at a time), as a collection
 * indexes an upsert's points; FTS5 buffers its pending terms in memory
 * within the transaction the same way.  Q queries (default 1000) of 2 to 4 words are drawn,
 * deterministically, from random lines; both engines answer each with its
 * top 10 by BM25 over the OR of the words (FTS5: '"a" OR "b"' ... ORDER BY
 * rank LIMIT 10).  Analysis is matched: --stem 1 (default) is our Snowball
 * English stemmer against FTS5's 'porter unicode61'; --stem 0 plain
 * lowercased words against 'unicode61'.  Stop words stay (as in FTS5)
 * unless --stop 1.
 *
 * FTS5 loads in one transaction with journal_mode=OFF, synchronous=OFF into
 * a contentless table (content='': the index only, as ours keeps no text;
 * --fts5-content keeps the text too, as a default FTS5 table), then is
 * optimised (merged into one segment, timed apart) before the queries.
 * Memory: es_lexical_memory_bytes against the database file's size; the
 * size of a default FTS5 table (with the text) is measured too, by a second
 * load of the same lines.
 * Latency: each query is run 3 times per engine, interleaved; the median of
 * its times is its latency; the report gives p50/p99/mean over queries.
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): both engines
 * run in this one thread and do no I/O that matters (journal and sync off),
 * and on a shared machine wall time measures the neighbours.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lexical.h"
#include "tokenize.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 16);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *m, const char *e)
{
	fprintf(stderr, "bench_lexical: %s: %s\n", m, e ? e : "");
	exit(1);
}

static void sq(sqlite3 *db, const char *sql)
{
	char *e = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
		die(sql, e);
}

/* Load lines into a fresh FTS5 database at path; *load / *opt get the
 * CPU seconds of the load and of the optimize; returns the open db. */
static sqlite3 *fts5_load(const char *path, char **lines, size_t n, int stem,
			  int content, double *load, double *opt, size_t *size)
{
	unlink(path);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sq(db, "PRAGMA journal_mode=OFF");
	sq(db, "PRAGMA synchronous=OFF");
	char ddl[256];
	snprintf(ddl, sizeof ddl, "CREATE VIRTUAL TABLE t USING fts5(body%s, tokenize='%sunicode61')",
		 content ? "" : ", content=''", stem ? "porter " : "");
	sq(db, ddl);
	sqlite3_stmt *ins;
	sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES(?, ?)", -1, &ins, NULL);
	double t0 = now();
	sq(db, "BEGIN");
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)(i + 1));
		sqlite3_bind_text(ins, 2, lines[i], -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			die("insert", sqlite3_errmsg(db));
		sqlite3_reset(ins);
	}
	sq(db, "COMMIT");
	*load = now() - t0;
	sqlite3_finalize(ins);
	t0 = now();
	sq(db, "INSERT INTO t(t) VALUES('optimize')");
	*opt = now() - t0;
	struct stat st;
	if (stat(path, &st) != 0)
		die(path, "stat");
	*size = (size_t)st.st_size;
	return db;
}

typedef struct opts {
	const char *path, *dbpath;
	size_t max_lines, nq, batch;
	int stem, stop, content, index_only;
} opts;

static void parse_opts(int argc, char **argv, opts *o)
{
	*o = (opts){.max_lines = SIZE_MAX, .nq = 1000, .batch = 1000, .stem = 1};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lines") && i + 1 < argc)
			o->max_lines = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
			o->nq = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--stem") && i + 1 < argc)
			o->stem = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--stop") && i + 1 < argc)
			o->stop = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			o->batch = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--db") && i + 1 < argc)
			o->dbpath = argv[++i];
		else if (!strcmp(argv[i], "--fts5-content"))
			o->content = 1;
		else if (!strcmp(argv[i], "--index-only")) /* for profiling ours */
			o->index_only = 1;
		else if (argv[i][0] != '-' && !o->path)
			o->path = argv[i];
		else
			die("usage", "bench_lexical CORPUS [--lines N] [--queries Q] [--stem 0|1] "
			    "[--stop 0|1] [--batch B] [--fts5-content] [--db PATH]");
	}
	if (!o->path)
		die("usage", "no CORPUS");
	if (o->batch < 1)
		die("usage", "--batch must be at least 1");
}

/* Up to max lines of path (without their newlines); *bytes their size. */
static char **read_lines(const char *path, size_t max, size_t *n, size_t *bytes)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path, "cannot open");
	char **lines = NULL;
	size_t cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t got;
	*n = *bytes = 0;
	while (*n < max && (got = getline(&line, &lcap, f)) > 0) {
		if (line[got - 1] == '\n')
			line[--got] = '\0';
		if (*n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			lines = realloc(lines, cap * sizeof *lines);
		}
		lines[(*n)++] = strdup(line);
		*bytes += (size_t)got;
	}
	free(line);
	fclose(f);
	if (!*n)
		die(path, "no lines");
	return lines;
}

/* A plain word (3+ letters a-z) of a random line into buf, or 0. */
static int random_word(char **lines, size_t n, char *buf)
{
	const char *l = lines[rnd() % n];
	es_tokenizer t;
	size_t len, count = 0;
	es_tokenizer_init(&t, l, strlen(l));
	while (es_tokenizer_next(&t, buf, NULL, NULL))
		count++;
	if (!count)
		return 0;
	size_t pick = rnd() % count, i = 0;
	es_tokenizer_init(&t, l, strlen(l));
	while ((len = es_tokenizer_next(&t, buf, NULL, NULL)) > 0 && i++ < pick)
		;
	return strspn(buf, "abcdefghijklmnopqrstuvwxyz") == strlen(buf) && len >= 3;
}

/* nq queries of 2..4 plain words of random lines: ours (qs, the words)
 * and FTS5's (fq, '"a" OR "b"'). */
static void make_queries(char **lines, size_t n, size_t nq, char ***qs, char ***fq)
{
	*qs = malloc(nq * sizeof **qs);
	*fq = malloc(nq * sizeof **fq);
	for (size_t q = 0; q < nq; q++) {
		char words[8][ES_TOKEN_MAX + 1];
		int nw = 0, want = 2 + (int)(rnd() % 3);
		while (nw < want)
			nw += random_word(lines, n, words[nw]);
		/* 8 words of at most ES_TOKEN_MAX bytes, quoted and joined by " OR " */
		char a[8 * (ES_TOKEN_MAX + 1) + 1] = "", b[8 * (ES_TOKEN_MAX + 6) + 1] = "";
		for (int i = 0; i < nw; i++) {
			snprintf(a + strlen(a), sizeof a - strlen(a), "%s%s", i ? " " : "", words[i]);
			snprintf(b + strlen(b), sizeof b - strlen(b), "%s\"%s\"", i ? " OR " : "", words[i]);
		}
		(*qs)[q] = strdup(a);
		(*fq)[q] = strdup(b);
	}
}

/* Our index of the lines, o->batch at a time; *secs the CPU time. */
static es_lexical *index_ours(const opts *o, char **lines, size_t n, double *secs)
{
	es_lexical_params p;
	es_lexical_params_default(&p);
	p.stemming = o->stem;
	p.stopwords = o->stop; /* FTS5 keeps every word */
	es_lexical *lx;
	es_error err;
	if (es_lexical_new(&p, &lx, &err))
		die("lexical", err.msg);
	uint64_t *labels = malloc(o->batch * sizeof *labels);
	size_t *lens = malloc(o->batch * sizeof *lens);
	double t0 = now();
	for (size_t i = 0; i < n; i += o->batch) {
		size_t m = n - i < o->batch ? n - i : o->batch;
		if (o->batch == 1) {
			if (es_lexical_upsert(lx, i + 1, lines[i], strlen(lines[i]), &err))
				die("upsert", err.msg);
			continue;
		}
		for (size_t j = 0; j < m; j++) {
			labels[j] = i + j + 1;
			lens[j] = strlen(lines[i + j]);
		}
		if (es_lexical_upsert_batch(lx, labels, (const char *const *)lines + i, lens, m,
					    &err))
			die("upsert", err.msg);
	}
	*secs = now() - t0;
	free(labels);
	free(lens);
	return lx;
}

typedef struct qtimes {
	double *lo, *lf; /* per query: ours, FTS5 (median of 3) */
	size_t overlap, total;
} qtimes;

/* Every query 3 times per engine, interleaved. */
static void run_queries(es_lexical *lx, sqlite3 *db, char **qs, char **fq, size_t nq,
			qtimes *qt)
{
	sqlite3_stmt *sel;
	sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank LIMIT 10",
			   -1, &sel, NULL);
	qt->lo = malloc(nq * sizeof *qt->lo);
	qt->lf = malloc(nq * sizeof *qt->lf);
	qt->overlap = qt->total = 0;
	es_error err;
	for (size_t q = 0; q < nq; q++) {
		double to[3], tf[3];
		es_hit hits[10];
		size_t nh = 0;
		int64_t fr[10];
		int nf = 0;
		for (int r = 0; r < 3; r++) {
			double t0 = now();
			if (es_lexical_search(lx, qs[q], strlen(qs[q]), 10, NULL, NULL, hits, &nh, &err))
				die("search", err.msg);
			to[r] = now() - t0;
			t0 = now();
			sqlite3_bind_text(sel, 1, fq[q], -1, SQLITE_STATIC);
			nf = 0;
			int rc;
			while ((rc = sqlite3_step(sel)) == SQLITE_ROW)
				fr[nf++] = sqlite3_column_int64(sel, 0);
			if (rc != SQLITE_DONE)
				die(fq[q], sqlite3_errmsg(db));
			sqlite3_reset(sel);
			tf[r] = now() - t0;
		}
		qsort(to, 3, sizeof *to, cmp_d);
		qsort(tf, 3, sizeof *tf, cmp_d);
		qt->lo[q] = to[1];
		qt->lf[q] = tf[1];
		for (size_t i = 0; i < nh; i++)
			for (int j = 0; j < nf; j++)
				qt->overlap += hits[i].label == (uint64_t)fr[j];
		qt->total += nh;
	}
	sqlite3_finalize(sel);
}

typedef struct loads {
	double ours, fts, fts_opt, c_fts;
	size_t ours_mem, fts_size, c_size;
} loads;

static void report(const opts *o, size_t n, size_t bytes, const loads *ld, qtimes *qt)
{
	size_t nq = o->nq;
	double mo = 0, mf = 0;
	for (size_t q = 0; q < nq; q++) {
		mo += qt->lo[q];
		mf += qt->lf[q];
	}
	double *lo = qt->lo, *lf = qt->lf;
	qsort(lo, nq, sizeof *lo, cmp_d);
	qsort(lf, nq, sizeof *lf, cmp_d);
	printf("lines %zu (%.1f MB), queries %zu (2-4 words, top 10), stemming %s, "
	       "stop words %s, batch %zu, FTS5 contentless; CPU time\n", n, bytes / 1e6, nq,
	       o->stem ? "snowball vs porter" : "off", o->stop ? "dropped" : "kept", o->batch);
	printf("%-22s %14s %14s %8s\n", "", "embedsrv", "FTS5", "ratio");
	printf("%-22s %14.0f %14.0f %7.2fx\n", "index docs/s", n / ld->ours, n / ld->fts,
	       ld->fts / ld->ours);
	printf("%-22s %14.2f %14.2f %7.2fx\n", "index s (+optimize)", ld->ours,
	       ld->fts + ld->fts_opt, (ld->fts + ld->fts_opt) / ld->ours);
	printf("%-22s %14.1f %14.1f %7.2fx\n", "memory / db MB", ld->ours_mem / 1e6,
	       ld->fts_size / 1e6, (double)ld->ours_mem / (double)ld->fts_size);
	if (o->content) {
		printf("%-22s %14.1f %14.1f %7.2fx\n", "  FTS5 with text: MB", ld->ours_mem / 1e6,
		       ld->c_size / 1e6, (double)ld->ours_mem / (double)ld->c_size);
		printf("%-22s %14.2f %14.2f %7.2fx\n", "  FTS5 with text: s", ld->ours,
		       ld->c_fts, ld->c_fts / ld->ours);
	}
	printf("%-22s %14.1f %14.1f %7.2fx\n", "query p50 us", lo[nq / 2] * 1e6, lf[nq / 2] * 1e6,
	       lf[nq / 2] / lo[nq / 2]);
	printf("%-22s %14.1f %14.1f %7.2fx\n", "query p99 us", lo[nq * 99 / 100] * 1e6,
	       lf[nq * 99 / 100] * 1e6, lf[nq * 99 / 100] / lo[nq * 99 / 100]);
	printf("%-22s %14.1f %14.1f %7.2fx\n", "query mean us", mo / nq * 1e6, mf / nq * 1e6,
	       mf / mo);
	printf("top-10 overlap with FTS5: %.1f%% (BM25 parameters differ: FTS5 k1 1.2 b 0.75)\n",
	       qt->total ? 100.0 * qt->overlap / qt->total : 0.0);
}

int main(int argc, char **argv)
{
	opts o;
	parse_opts(argc, argv, &o);
	size_t n, bytes;
	char **lines = read_lines(o.path, o.max_lines, &n, &bytes);
	char **qs, **fq;
	make_queries(lines, n, o.nq, &qs, &fq);
	loads ld = {0};
	es_lexical *lx = index_ours(&o, lines, n, &ld.ours);
	ld.ours_mem = es_lexical_memory_bytes(lx);
	if (o.index_only) {
		printf("indexed %zu lines in %.2f s, %.1f MB\n", n, ld.ours, ld.ours_mem / 1e6);
		return 0;
	}
	char tmp[4096];
	const char *dbpath = o.dbpath;
	if (!dbpath) {
		snprintf(tmp, sizeof tmp, "%s/bench_lexical_%d.db",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
		dbpath = tmp;
	}
	double c_opt;
	if (o.content) /* the size and load time of a default table, then dropped */
		sqlite3_close(fts5_load(dbpath, lines, n, o.stem, 1, &ld.c_fts, &c_opt, &ld.c_size));
	sqlite3 *db = fts5_load(dbpath, lines, n, o.stem, 0, &ld.fts, &ld.fts_opt, &ld.fts_size);
	qtimes qt;
	run_queries(lx, db, qs, fq, o.nq, &qt);
	report(&o, n, bytes, &ld, &qt);
	sqlite3_close(db);
	unlink(dbpath);
	es_lexical_free(lx);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	for (size_t q = 0; q < o.nq; q++) {
		free(qs[q]);
		free(fq[q]);
	}
	free(lines);
	free(qs);
	free(fq);
	free(qt.lo);
	free(qt.lf);
	return 0;
}
