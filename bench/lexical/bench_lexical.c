/*
 * bench_lexical.c — embedsrv's lexical index (index/lexical.h) against
 * SQLite FTS5 (bm25() ranking) on the same lines, single thread, same run.
 *
 *   bench_lexical CORPUS [--lines N] [--queries Q] [--stem 0|1]
 *                 [--stop 0|1] [--fts5-content] [--db PATH]
 *
 * Every line of CORPUS (up to N) is one document, its line number the
 * label / rowid.  Q queries (default 1000) of 2 to 4 words are drawn,
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

int main(int argc, char **argv)
{
	const char *path = NULL, *dbpath = NULL;
	size_t max_lines = SIZE_MAX, nq = 1000;
	int stem = 1, stop = 0, content = 0, index_only = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lines") && i + 1 < argc)
			max_lines = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
			nq = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--stem") && i + 1 < argc)
			stem = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--stop") && i + 1 < argc)
			stop = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--db") && i + 1 < argc)
			dbpath = argv[++i];
		else if (!strcmp(argv[i], "--fts5-content"))
			content = 1;
		else if (!strcmp(argv[i], "--index-only")) /* for profiling ours */
			index_only = 1;
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else
			die("usage", "bench_lexical CORPUS [--lines N] [--queries Q] [--stem 0|1] [--fts5-content] [--db PATH]");
	}
	if (!path)
		die("usage", "no CORPUS");
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path, "cannot open");
	char **lines = NULL;
	size_t n = 0, cap = 0, bytes = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t got;
	while (n < max_lines && (got = getline(&line, &lcap, f)) > 0) {
		if (line[got - 1] == '\n')
			line[--got] = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			lines = realloc(lines, cap * sizeof *lines);
		}
		lines[n++] = strdup(line);
		bytes += (size_t)got;
	}
	free(line);
	fclose(f);

	/* queries: 2..4 plain words of random lines */
	char **qs = malloc(nq * sizeof *qs), **fq = malloc(nq * sizeof *fq);
	for (size_t q = 0; q < nq; q++) {
		char words[8][ES_TOKEN_MAX + 1];
		int nw = 0, want = 2 + (int)(rnd() % 3);
		while (nw < want) {
			const char *l = lines[rnd() % n];
			es_tokenizer t;
			char buf[ES_TOKEN_MAX + 1];
			size_t len, count = 0;
			es_tokenizer_init(&t, l, strlen(l));
			while (es_tokenizer_next(&t, buf, NULL, NULL))
				count++;
			if (!count)
				continue;
			size_t pick = rnd() % count, i = 0;
			es_tokenizer_init(&t, l, strlen(l));
			while ((len = es_tokenizer_next(&t, buf, NULL, NULL)) > 0 && i++ < pick)
				;
			if (strspn(buf, "abcdefghijklmnopqrstuvwxyz") != strlen(buf) || len < 3)
				continue;
			strcpy(words[nw++], buf);
		}
		/* 8 words of at most ES_TOKEN_MAX bytes, quoted and joined by " OR " */
		char a[8 * (ES_TOKEN_MAX + 1) + 1] = "", b[8 * (ES_TOKEN_MAX + 6) + 1] = "";
		for (int i = 0; i < nw; i++) {
			snprintf(a + strlen(a), sizeof a - strlen(a), "%s%s", i ? " " : "", words[i]);
			snprintf(b + strlen(b), sizeof b - strlen(b), "%s\"%s\"", i ? " OR " : "", words[i]);
		}
		qs[q] = strdup(a);
		fq[q] = strdup(b);
	}

	/* ours */
	es_lexical_params p;
	es_lexical_params_default(&p);
	p.stemming = stem;
	p.stopwords = stop; /* FTS5 keeps every word */
	es_lexical *lx;
	es_error err;
	if (es_lexical_new(&p, &lx, &err))
		die("lexical", err.msg);
	double t0 = now();
	for (size_t i = 0; i < n; i++)
		if (es_lexical_upsert(lx, i + 1, lines[i], strlen(lines[i]), &err))
			die("upsert", err.msg);
	double our_index = now() - t0;
	size_t our_mem = es_lexical_memory_bytes(lx);
	if (index_only) {
		printf("indexed %zu lines in %.2f s, %.1f MB\n", n, our_index, our_mem / 1e6);
		return 0;
	}

	/* FTS5 */
	char tmp[4096];
	if (!dbpath) {
		snprintf(tmp, sizeof tmp, "%s/bench_lexical_%d.db",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
		dbpath = tmp;
	}
	double fts_index, fts_opt, c_index = 0, c_opt = 0;
	size_t fts_size, c_size = 0;
	if (content) {
		sqlite3 *cdb = fts5_load(dbpath, lines, n, stem, 1, &c_index, &c_opt, &c_size);
		sqlite3_close(cdb);
	}
	sqlite3 *db = fts5_load(dbpath, lines, n, stem, 0, &fts_index, &fts_opt, &fts_size);
	sqlite3_stmt *sel;
	sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank LIMIT 10",
			   -1, &sel, NULL);

	double *lo = malloc(nq * sizeof *lo), *lf = malloc(nq * sizeof *lf);
	size_t overlap = 0, total = 0;
	for (size_t q = 0; q < nq; q++) {
		double to[3], tf[3];
		es_hit hits[10];
		size_t nh = 0;
		int64_t fr[10];
		int nf = 0;
		for (int r = 0; r < 3; r++) {
			t0 = now();
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
		lo[q] = to[1];
		lf[q] = tf[1];
		for (size_t i = 0; i < nh; i++)
			for (int j = 0; j < nf; j++)
				overlap += hits[i].label == (uint64_t)fr[j];
		total += nh;
	}
	double mo = 0, mf = 0;
	for (size_t q = 0; q < nq; q++) {
		mo += lo[q];
		mf += lf[q];
	}
	qsort(lo, nq, sizeof *lo, cmp_d);
	qsort(lf, nq, sizeof *lf, cmp_d);
	printf("lines %zu (%.1f MB), queries %zu (2-4 words, top 10), stemming %s, "
	       "stop words %s, FTS5 contentless; CPU time\n",
	       n, bytes / 1e6, nq, stem ? "snowball vs porter" : "off", stop ? "dropped" : "kept");
	printf("%-22s %14s %14s %8s\n", "", "embedsrv", "FTS5", "ratio");
	printf("%-22s %14.0f %14.0f %7.2fx\n", "index docs/s", n / our_index, n / fts_index,
	       fts_index / our_index);
	printf("%-22s %14.2f %14.2f %7.2fx\n", "index s (+optimize)", our_index,
	       fts_index + fts_opt, (fts_index + fts_opt) / our_index);
	printf("%-22s %14.1f %14.1f %7.2fx\n", "memory / db MB", our_mem / 1e6, fts_size / 1e6,
	       (double)our_mem / (double)fts_size);
	if (content) {
		printf("%-22s %14.1f %14.1f %7.2fx\n", "  FTS5 with text: MB", our_mem / 1e6,
		       c_size / 1e6, (double)our_mem / (double)c_size);
		printf("%-22s %14.2f %14.2f %7.2fx\n", "  FTS5 with text: s", our_index,
		       c_index, c_index / our_index);
	}
	printf("%-22s %14.1f %14.1f %7.2fx\n", "query p50 us", lo[nq / 2] * 1e6, lf[nq / 2] * 1e6,
	       lf[nq / 2] / lo[nq / 2]);
	printf("%-22s %14.1f %14.1f %7.2fx\n", "query p99 us", lo[nq * 99 / 100] * 1e6,
	       lf[nq * 99 / 100] * 1e6, lf[nq * 99 / 100] / lo[nq * 99 / 100]);
	printf("%-22s %14.1f %14.1f %7.2fx\n", "query mean us", mo / nq * 1e6, mf / nq * 1e6,
	       mf / mo);
	printf("top-10 overlap with FTS5: %.1f%% (BM25 parameters differ: FTS5 k1 1.2 b 0.75)\n",
	       total ? 100.0 * overlap / total : 0.0);
	sqlite3_finalize(sel);
	sqlite3_close(db);
	unlink(dbpath);
	es_lexical_free(lx);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	for (size_t q = 0; q < nq; q++) {
		free(qs[q]);
		free(fq[q]);
	}
	free(lines);
	free(qs);
	free(fq);
	free(lo);
	free(lf);
	return 0;
}
