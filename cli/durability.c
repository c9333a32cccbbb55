/*
 * durability.c — the durability layer's hooks for `embedsrv serve`
 * (serve.h): recover the data directory into the registry before the
 * server reports ready, log every later change (index/store.h), snapshot on
 * request and on clean shutdown.
 *
 * Without --data-dir the hooks do nothing and collections live in memory.
 *
 * Threading: open and close run on the main thread; snapshot runs on HTTP
 * worker threads (es_store_checkpoint serialises itself).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"
#include "store.h"

typedef struct durability {
	es_store *store;
} durability;

static int dur_open(void *ctx, es_registry *reg, const es_serve_opts *o, es_error *err)
{
	durability *d = ctx;
	if (!o->data_dir)
		return 0;
	es_store_options so;
	es_store_options_default(&so);
	so.policy = o->fsync;
	so.recover = o->recover;
	if (o->snapshot_bytes)
		so.checkpoint_bytes = o->snapshot_bytes;
	es_store_stats st;
	int rc = es_store_open(o->data_dir, &so, reg, &st, &d->store, err);
	if (rc)
		return rc;
	fprintf(stderr, "embedsrv serve: data dir %s: %zu collection(s), %zu snapshot(s) with %"
		PRIu64 " points, %" PRIu64 " log record(s) replayed, last lsn %" PRIu64
		", recovered in %.3f s (fsync %s)\n", o->data_dir, st.collections,
		st.snapshots_loaded, st.points_loaded, st.records_replayed, st.last_lsn,
		st.seconds, wal_policy_name(o->fsync));
	if (st.torn_bytes)
		fprintf(stderr, "embedsrv serve: dropped a torn log tail of %" PRIu64
			" bytes (a write cut short by a crash; it was never acknowledged)\n",
			st.torn_bytes);
	if (st.truncated_bytes)
		fprintf(stderr, "embedsrv serve: --recover truncated %" PRIu64
			" bytes of damaged log\n", st.truncated_bytes);
	return 0;
}

static void dur_close(void *ctx, es_registry *reg)
{
	(void)reg;
	durability *d = ctx;
	if (d->store) {
		es_error err;
		es_error_clear(&err);
		if (es_store_close(d->store, 1, &err) != 0)
			fprintf(stderr, "embedsrv serve: final snapshot failed (the log still "
				"holds every acknowledged write): %s\n", err.msg);
		d->store = NULL;
	}
	free(d);
}

static int dur_snapshot(void *ctx, const char *name, es_error *err)
{
	durability *d = ctx;
	if (!d->store)
		return es_err(err, ES_EUNSUPPORTED,
			      "persistence is off: start the server with --data-dir to take snapshots");
	return es_store_checkpoint(d->store, name, err);
}

es_serve_hooks serve_durability(void)
{
	es_serve_hooks h;
	memset(&h, 0, sizeof h);
	durability *d = calloc(1, sizeof *d);
	if (!d)
		return h; /* cmd_serve reports a failed open for a data dir */
	h.ctx = d;
	h.open = dur_open;
	h.close = dur_close;
	h.snapshot = dur_snapshot;
	return h;
}
