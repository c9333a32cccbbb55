/*
 * durability.c — `embedsrv serve --data-dir` (durability.h): recover the
 * data directory into the registry before the server reports ready, log
 * every later change (index/store.h), snapshot on request and on clean
 * shutdown.
 *
 * Threading: open and close run on the main thread; snapshot runs on HTTP
 * worker threads (es_store_checkpoint serialises itself).
 */
#include "durability.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"

struct durability {
	es_store *store;
};

int durability_open(const durability_opts *o, es_registry *reg, durability **out,
		    es_error *err)
{
	*out = NULL;
	durability *d = calloc(1, sizeof *d);
	if (!d)
		return es_err(err, ES_ENOMEM, "out of memory");
	es_store_options so;
	es_store_options_default(&so);
	so.policy = o->fsync;
	so.recover = o->recover;
	if (o->snapshot_bytes)
		so.checkpoint_bytes = o->snapshot_bytes;
	so.retain_bytes = o->retain_bytes;
	es_store_stats st;
	int rc = es_store_open(o->data_dir, &so, reg, &st, &d->store, err);
	if (rc) {
		free(d);
		return rc;
	}
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
	*out = d;
	return 0;
}

void durability_close(durability *d)
{
	if (!d)
		return;
	es_error err;
	es_error_clear(&err);
	if (es_store_close(d->store, 1, &err) != 0)
		fprintf(stderr, "embedsrv serve: final snapshot failed (the log still "
			"holds every acknowledged write): %s\n", err.msg);
	free(d);
}

int durability_snapshot(void *d, const char *name, es_error *err)
{
	return es_store_checkpoint(((durability *)d)->store, name, err);
}

struct es_store *durability_store(durability *d)
{
	return d->store;
}
