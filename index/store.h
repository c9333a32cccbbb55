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
#include <sys/types.h>

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
	uint64_t retain_bytes;        /* keep up to this many bytes of log segments
				       * that snapshots already cover, newest
				       * first, for followers that fell behind;
				       * 0: delete them at once */
	int follower;                 /* a follower's store: no mutation observer;
				       * records come from es_store_follow_apply */
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
/* The payload CRC of the last record (0 unknown): see wal_last_crc. */
uint32_t es_store_last_crc(es_store *s);

/* ---------------------------------------------------------------------
 * Log shipping.  A follower's data directory is a copy of the primary's
 * (same files, same lsns): it starts from a bundle of the primary's
 * manifest, snapshots and log segments, and then appends the primary's
 * records, byte for byte, to its own log and applies them through the
 * recovery path (the same checks and rules as a restart).  So a follower
 * restarts like any server, from its own directory, and resumes after its
 * last lsn.
 *
 * Primary side. */

typedef struct es_store_ship {
	uint64_t last_lsn;  /* the last record that may be shipped (wal_shippable) */
	uint64_t first_lsn; /* the oldest `from` the kept log can serve */
	uint32_t prev_crc;  /* payload CRC of record `from` (0 unknown) */
	uint64_t records;   /* records copied */
} es_store_ship;

/* Append to out the log records after lsn `from` (file format, at most
 * max_bytes, at least one record when one follows; only from one segment,
 * so a read may return fewer than there are).  ES_ENOTFOUND when `from` is
 * older than the kept log (the follower must bootstrap again), ES_ERANGE
 * when it is past the last shippable record (the follower holds records
 * this log does not: diverged); info is filled either way. */
int es_store_ship_log(es_store *s, uint64_t from, size_t max_bytes, wal_buf *out,
		      es_store_ship *info, es_error *err);

/* Long poll: wait until a record after lsn `from` is shippable (an append,
 * woken by a condition variable, no polling), at most wait_ms.  1 when
 * es_store_ship_log now has something to say (records, or `from` is no
 * longer servable), 0 when the wait expired, -1 when es_store_ship_stop
 * was called (the server is stopping: answer at once).  Blocks the caller:
 * the HTTP server runs it on a deferred thread (server/api_replication.c). */
int es_store_ship_wait(es_store *s, uint64_t from, uint32_t wait_ms);

/* End every es_store_ship_wait now and from now on (before stopping the
 * HTTP server, so that no waiting request holds its shutdown).  NULL: none. */
void es_store_ship_stop(es_store *s);

/* A bundle of the data directory's files, read out as a byte stream
 * (consistent: what a start from them recovers is the state at its lsn).
 * Format: "ESREPL01", u64 lsn, then per file: u16 path length, path
 * (MANIFEST, snap/NAME@N.snap, wal/BASE.log), u64 size, the bytes, u32
 * CRC32C of them; a zero path length ends it.
 *
 * es_bundle_open snapshots every collection, then opens the files (under
 * the store's locks, so that they agree) and returns at once: the bytes
 * are read from those open files when es_bundle_read gets to them, never
 * copied first, so the bundle costs no disk writes and no disk space
 * (files the store replaces or removes meanwhile stay readable through
 * the open descriptors).  The size is known up front (es_bundle_size).
 * es_bundle_read fills up to n bytes in order: the count (0 at the end),
 * or a negative ES_E* (ES_EIO: a file could not be read; the bundle is
 * then unusable).  One reader at a time; the store may be used and even
 * closed meanwhile.  es_bundle_free(NULL) is a no-op. */
typedef struct es_bundle es_bundle;
int es_bundle_open(es_store *s, es_bundle **out, es_error *err);
uint64_t es_bundle_lsn(const es_bundle *b);
uint64_t es_bundle_size(const es_bundle *b);
ssize_t es_bundle_read(es_bundle *b, void *buf, size_t n, es_error *err);
void es_bundle_free(es_bundle *b);

/* The whole bundle written to fd (es_bundle_open + read + write). */
int es_store_bundle(es_store *s, int fd, uint64_t *lsn, es_error *err);

/* Follower side. */

/* Replace the data directory dir's files with the bundle read from in
 * (every name, size and checksum checked; extracted next to it first, so a
 * bad bundle changes nothing).  The directory must not be open.  A
 * marker file makes a start after a crash mid-way bootstrap again. */
int es_store_install_bundle(const char *dir, FILE *in, uint64_t *lsn, es_error *err);

/* The same, except that nothing is fsynced yet: the files are in place
 * (the directory can be opened at once) but the BOOTSTRAP marker stays, so
 * a crash before es_store_install_sync finished means a new bootstrap.
 * es_store_install_sync fsyncs every file of dir and its directories, then
 * removes the marker.  It may run while the directory is open in a store
 * (a follower loads it meanwhile, so the disk writes overlap the load);
 * a file the store replaced meanwhile was synced by the store. */
int es_store_install_bundle_unsynced(const char *dir, FILE *in, uint64_t *lsn,
				     es_error *err);
int es_store_install_sync(const char *dir, es_error *err);

/* Whether dir holds no data directory yet (or a cut-short install). */
int es_store_needs_bootstrap(const char *dir);

/* Append the shipped records in recs (file format, lsns continuing this
 * log) to the log, sync it per the policy, and apply them as replay does.
 * *applied: the last lsn applied.  Records before a bad one are kept and
 * applied; the bad one is ES_ECORRUPT. */
int es_store_follow_apply(es_store *s, const void *recs, size_t len, uint64_t *applied,
			  es_error *err);

#endif
