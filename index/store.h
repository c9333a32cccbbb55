/*
 * store.h — the data directory: durable collections.
 *
 * Ties the registry of collections (index/collection.h) to the write-ahead
 * log (index/wal.h) and to snapshots (index/snapshot.h):
 *
 *   DIR/LOCK                 flock'ed while a server owns the directory
 *   DIR/MANIFEST             snapshot-format file listing every collection:
 *                            name, parameters, creation lsn, snapshot lsn
 *   DIR/wal/<base>.log       log segments; one log for all collections, so
 *                            writers of all collections share fsyncs
 *   DIR/snap/<name>@<create lsn>.snap   one snapshot per collection
 *
 * Write path (the registry's mutation observer): the change is validated by
 * the collection, then its record is written to the log, the collection
 * queues the writer (es_log_placed), and the writer waits for the record to
 * be synced per the fsync policy with no collection lock held — concurrent
 * writers, of one collection or of many, share one fdatasync (group
 * commit).  Only then is the change applied (in log order per collection)
 * and acknowledged, so readers never see a write a crash could take back.
 * A failed write (ES_ENOSPC, ES_EIO) cancels the change, so a failed request
 * changes nothing, and what readers see is always a prefix of the log.
 *
 * After an fdatasync failure the log and es_store_checkpoint refuse with
 * ES_EIO until the process restarts (like PostgreSQL's fsync panic, minus
 * the panic: reads go on); see store.c.
 *
 * Start (es_store_open): read the manifest, load each collection's snapshot
 * (HNSW graph included, no rebuild), then replay the log segments in order,
 * skipping records a snapshot already holds.  Damage follows wal.h's rules
 * (torn tail dropped; corruption stops the start with file and offset, or is
 * truncated with recover); a damaged snapshot or manifest stops the start.
 *
 * Checkpoint (es_store_checkpoint): sync the current log segment (so no
 * crash can leave a gap before the next one) and switch to a new one, write
 * the snapshots (temp file, fsync, rename, directory fsync), write the
 * manifest, then delete the segments every collection's snapshot covers.
 * Runs on request, on es_store_close, and from a background thread when the
 * current segment passes checkpoint_bytes.  A failed checkpoint deletes
 * nothing.
 *
 * Threading: all calls are thread-safe.  A snapshot holds its collection's
 * shared lock while it is written: searches continue, writers of that
 * collection log and sync but wait to apply.  Ownership: the store does not own the registry; free the
 * store first (es_store_close), then the registry.
 */
#ifndef ES_STORE_H
#define ES_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "collection.h"
#include "error.h"
#include "wal.h"

#define ES_STORE_DEFAULT_CHECKPOINT_BYTES ((uint64_t)256 << 20)

typedef struct es_store es_store;

typedef struct es_store_options {
	wal_fsync_policy policy;      /* default WAL_FSYNC_ALWAYS */
	uint32_t batch_interval_ms;   /* WAL_FSYNC_BATCH; 0 = default */
	int recover;                  /* truncate damaged logs at the last good record */
	uint64_t checkpoint_bytes;    /* auto checkpoint past this; 0 = default, UINT64_MAX = off */
	const wal_io_hooks *hooks;    /* tests: injected log I/O errors */
} es_store_options;

/* What the start found (for the server's start-up log line). */
typedef struct es_store_stats {
	size_t collections;
	size_t snapshots_loaded;
	uint64_t points_loaded;       /* from snapshots */
	uint64_t records_replayed;    /* log records applied */
	uint64_t torn_bytes;          /* torn tail dropped */
	uint64_t truncated_bytes;     /* dropped by recover */
	uint64_t last_lsn;
	double seconds;
} es_store_stats;

void es_store_options_default(es_store_options *o);

/* Open (creating when absent) the data directory, recover every collection
 * into reg (which must be empty and have no observer), then install the
 * observer so every later mutation of reg is logged.  stats may be NULL.
 * ES_EBUSY when another process holds the directory. */
int es_store_open(const char *dir, const es_store_options *opts,
		  es_registry *reg, es_store_stats *stats, es_store **out,
		  es_error *err);

/* Snapshot one collection (name) or every collection (NULL), then delete
 * the log segments that are no longer needed.  ES_ENOTFOUND for an unknown
 * name; ES_ENOSPC / ES_EIO for disk errors (nothing is deleted then). */
int es_store_checkpoint(es_store *s, const char *name, es_error *err);

/* Stop the background thread, checkpoint when final_checkpoint is set,
 * sync and close the log, remove the observer.  NULL is a no-op. */
int es_store_close(es_store *s, int final_checkpoint, es_error *err);

/* Bytes in the current log segment, and the last lsn written. */
uint64_t es_store_log_bytes(es_store *s);
uint64_t es_store_last_lsn(es_store *s);

#endif
