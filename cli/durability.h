/*
 * durability.h — `embedsrv serve --data-dir`: the data directory around
 * the HTTP server.
 *
 * durability_open runs after the registry exists and before the server
 * reports ready: it loads the snapshots, replays the logs and from then on
 * logs every change to the registry (index/store.h).  durability_close runs
 * after the HTTP server stopped and every in-flight request finished: it
 * takes a final snapshot and closes the logs.  durability_snapshot is the
 * POST /v1/collections/{name}/snapshot hook (api_ctx_set_snapshot).
 * Without --data-dir, cmd_serve opens none of this and collections live in
 * memory.
 *
 * Threading: open and close run on the main thread; snapshot runs on HTTP
 * worker threads (es_store_checkpoint serialises itself).
 */
#ifndef ES_DURABILITY_H
#define ES_DURABILITY_H

#include <stdint.h>

#include "collection.h"
#include "error.h"
#include "wal.h"

typedef struct durability_opts {
	const char *data_dir;    /* required */
	wal_fsync_policy fsync;  /* --fsync always|batch|never */
	int recover;             /* --recover: truncate damaged logs */
	uint64_t snapshot_bytes; /* --snapshot-bytes: snapshot past this log size; 0 default */
	uint64_t retain_bytes;   /* --wal-retain-bytes: covered log kept for followers */
} durability_opts;

typedef struct durability durability;

/* Recover o->data_dir into reg and start logging its changes; reports what
 * was recovered on stderr.  0 with *out set, or an ES_E* code with err. */
int durability_open(const durability_opts *o, es_registry *reg, durability **out,
		    es_error *err);

/* Final snapshot (a failure is reported on stderr: the log still holds every
 * acknowledged write), close, free.  NULL: no-op. */
void durability_close(durability *d);

/* Snapshot collection `name` now; d is a durability (void * to fit
 * api_ctx_set_snapshot). */
int durability_snapshot(void *d, const char *name, es_error *err);

/* The store (for log shipping: server/api_replication.c). */
struct es_store *durability_store(durability *d);

#endif
