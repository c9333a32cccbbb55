/*
 * serve.h — the seams of `embedsrv serve` that other layers plug into.
 *
 * Durability (WAL + snapshots) hooks in here: `open` runs after the
 * registry exists and before the server reports ready (load snapshots,
 * replay logs, then es_registry_set_observer to log every later change);
 * `close` runs after the HTTP server stopped and every in-flight request
 * finished (flush, final snapshot).  cmd_serve.c calls serve_durability()
 * to get the hooks for this run; with no durability layer built it
 * returns hooks that do nothing.
 */
#ifndef ES_SERVE_H
#define ES_SERVE_H

#include "collection.h"
#include "error.h"
#include "wal.h"

typedef struct es_serve_opts {
	const char *data_dir;   /* NULL: in-memory only */
	wal_fsync_policy fsync; /* --fsync always|batch|never */
	int recover;            /* --recover: truncate damaged logs */
	uint64_t snapshot_bytes;/* --snapshot-bytes: auto snapshot past this log size; 0 default */
	int argc;               /* the serve arguments, for layer-specific flags */
	char **argv;
} es_serve_opts;

typedef struct es_serve_hooks {
	void *ctx;
	/* Recover data into reg and start logging.  Non-zero: serve exits 1
	 * with err's message. */
	int (*open)(void *ctx, es_registry *reg, const es_serve_opts *o, es_error *err);
	/* Flush and release.  Called once, also after a failed open. */
	void (*close)(void *ctx, es_registry *reg);
	/* Snapshot one collection now (POST /v1/collections/{name}/snapshot).
	 * May be NULL. */
	int (*snapshot)(void *ctx, const char *name, es_error *err);
} es_serve_hooks;

/* The durability layer's hooks (cli/durability.c). */
es_serve_hooks serve_durability(void);

#endif
