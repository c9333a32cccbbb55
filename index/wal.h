/*
 * wal.h — write-ahead log: append-only file of checksummed records.
 *
 * File layout (little-endian):
 *   header, 32 bytes: magic "ESWAL001", u32 version (1), u32 header size (32),
 *                     u64 base_lsn, u32 base CRC, u32 CRC32C of bytes 0..27
 *                     (base CRC: the payload CRC of record base_lsn, which
 *                     ends the previous segment, or 0 when unknown; logs
 *                     before log shipping wrote 0 there, replay ignores it)
 *   records, each:    u32 payload length, u32 type, u64 lsn,
 *                     u32 CRC32C of the payload, u32 CRC32C of bytes 0..19
 *                     of this record header, then the payload.
 * Record lsns are base_lsn+1, base_lsn+2, ... without gaps.
 *
 * Replay (wal_open): every record is checked (header CRC, payload CRC, lsn
 * continuity, length bound).  The first damaged record is
 *   - the torn tail when no valid record header follows it anywhere in the
 *     file (a write the crash cut short: it was never acknowledged under
 *     --fsync always).  It is dropped, the file is truncated there and the
 *     dropped byte count is reported in wal_replay_stats;
 *   - corruption otherwise: ES_ECORRUPT "PATH: record at offset N: ..." and
 *     nothing is changed on disk, unless wal_options.recover is set, in which
 *     case the file is truncated at the last good record (everything after
 *     it is dropped and counted in stats.truncated_bytes).
 *
 * Durability policies (wal_options.policy):
 *   WAL_FSYNC_ALWAYS  a record is durable once wal_wait_durable (or
 *                     wal_append, which is wal_write + wal_wait_durable)
 *                     returned for it: it was fdatasync'ed.  Concurrent
 *                     writers share fsyncs (group commit): a waiter that
 *                     finds no fsync running becomes the leader and syncs
 *                     every record written so far; the others sleep until a
 *                     sync covers their record.  Writing (wal_write) and
 *                     waiting are separate calls so that callers can give
 *                     up their own locks in between.
 *   WAL_FSYNC_BATCH   durable enough once wal_write returned; a background
 *                     thread fdatasyncs every batch_interval_ms.  Survives a
 *                     process crash; a power cut loses at most that interval.
 *   WAL_FSYNC_NEVER   write() only; the OS flushes when it likes (bulk loads).
 *                     Survives a process crash, not a power cut.
 *
 * Disk errors: a failed or short write is cut back off the file
 * (ftruncate to the record's start), so the log holds whole records only, and
 * the write returns ES_ENOSPC (ENOSPC, EDQUOT, EFBIG) or ES_EIO; the log
 * stays usable.  A failed fdatasync leaves the page cache state unknown
 * (Linux may have dropped the dirty pages), so every record not yet known
 * durable is cut off the file, its waiters get ES_EIO, and the log enters a
 * failed state: every later write returns ES_EIO until wal_reset() starts a
 * fresh file.  (Whether the cut records reach the disk anyway is unknown:
 * after a crash they may come back, whole or torn, never as anything else.)
 *
 * Apply order is the caller's business: wal_write hands out lsns in file
 * order, and a caller that applies a record only after wal_wait_durable
 * returned 0, in lsn order per object it changes, makes replay reproduce
 * what readers saw (index/collection.c does this per collection).
 *
 * Threading: all calls are thread-safe on one wal.  wal_freeze blocks new
 * writes and waits for a running fsync, which gives a quiet point for
 * wal_reset; wal_thaw follows it.
 *
 * Ownership: the wal owns its file descriptor and thread; wal_close frees.
 * Payload pointers handed to the replay callback point into a read-only
 * mapping valid only during the callback.
 */
#ifndef ES_WAL_H
#define ES_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "bytebuf.h"
#include "error.h"
#include "lerw.h"

#define WAL_MAGIC "ESWAL001"
#define WAL_VERSION 1u
#define WAL_FILE_HEADER_SIZE 32u
#define WAL_RECORD_HEADER_SIZE 24u
#define WAL_MAX_RECORD ((size_t)1 << 30) /* 1 GiB payload bound */
#define WAL_DEFAULT_BATCH_MS 50u

typedef struct wal wal;

/* Record types.  Payload formats of UPSERT and DELETE are defined by the
 * wal_encode_* / wal_decode_* helpers below; CREATE carries the caller's
 * serialised collection parameters, DROP nothing. */
enum {
	WAL_REC_CREATE = 1,
	WAL_REC_DROP = 2,
	WAL_REC_UPSERT = 3,
	WAL_REC_DELETE = 4,
	WAL_REC_UPSERT_TEXT = 5, /* UPSERT whose points may have text and may
				  * lack a vector (below) */
	WAL_REC_PAYLOAD = 6,     /* payload update: an op and the ids (below) */
	WAL_REC_PINDEX = 7,      /* payload index created or dropped: u8 kind
				  * (0: drop), u32 length, the field (store.c) */
};

typedef enum wal_fsync_policy {
	WAL_FSYNC_ALWAYS = 0,
	WAL_FSYNC_BATCH = 1,
	WAL_FSYNC_NEVER = 2,
} wal_fsync_policy;

/* Parse "always" | "batch" | "never": 0 or ES_EINVAL. */
int wal_policy_parse(const char *s, wal_fsync_policy *out);
const char *wal_policy_name(wal_fsync_policy p);

/* I/O hooks so tests can inject disk errors.  Each returns like the system
 * call (-1 with errno set on failure).  NULL members use the real calls. */
typedef struct wal_io_hooks {
	void *ctx;
	ssize_t (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt,
			   off_t off);
	int (*fdatasync)(void *ctx, int fd);
} wal_io_hooks;

typedef struct wal_options {
	wal_fsync_policy policy;
	uint32_t batch_interval_ms; /* WAL_FSYNC_BATCH; 0 = default */
	int recover;                /* truncate at the last good record */
	uint64_t base_lsn;          /* base lsn of a newly created file */
	uint32_t base_crc;          /* its header's base CRC (0 = unknown) */
	const wal_io_hooks *hooks;  /* NULL = real system calls */
} wal_options;

/* What replay found.  torn_bytes: a torn tail dropped; truncated_bytes:
 * bytes dropped by recover mode (with corrupt_offset where it began). */
typedef struct wal_replay_stats {
	uint64_t records;
	uint64_t base_lsn;
	uint64_t last_lsn;
	uint64_t valid_bytes;
	uint64_t torn_bytes;
	uint64_t truncated_bytes;
	int64_t corrupt_offset; /* -1 when none */
} wal_replay_stats;

/* Called once per valid record in order.  Return 0 to go on or a negative
 * ES_E* code to stop replay (wal_open then fails with that code). */
typedef int (*wal_replay_fn)(void *ctx, uint64_t lsn, uint32_t type,
			     const void *data, size_t len, es_error *err);

void wal_options_default(wal_options *o);

/* Open (creating when absent) the log at path, replay every valid record
 * through fn (may be NULL), apply the torn-tail / corruption rules above and
 * leave the log ready for appends.  stats may be NULL. */
int wal_open(const char *path, const wal_options *opts, wal_replay_fn fn,
	     void *ctx, wal_replay_stats *stats, wal **out, es_error *err);

/* Sync outstanding writes, stop the flusher, close.  NULL is a no-op. */
void wal_close(wal *w);

/* Write one record (no fsync wait); on success *lsn receives its lsn.
 * On failure nothing of the record remains in the file (see "Disk errors")
 * and no lsn is consumed.  Under WAL_FSYNC_ALWAYS the record is durable
 * only after wal_wait_durable(lsn) returned 0: call it before telling anyone
 * the write happened.  Holds the wal's mutex for the write() only. */
int wal_write(wal *w, uint32_t type, const void *data, size_t len,
	      uint64_t *lsn, es_error *err);

/* Block until the record lsn (from wal_write) is as durable as the policy
 * promises: under WAL_FSYNC_ALWAYS a group fsync that covers it finished
 * (this thread may be the leader that runs it); other policies return at
 * once.  0, or ES_EIO when the fsync failed (the record was cut off and
 * the log is in the failed state). */
int wal_wait_durable(wal *w, uint64_t lsn, es_error *err);

/* wal_write + wal_wait_durable. */
int wal_append(wal *w, uint32_t type, const void *data, size_t len,
	       uint64_t *lsn, es_error *err);

/* Block new writes and wait for a running fsync to finish; *last_lsn
 * receives the last lsn.  Must be followed by wal_thaw. */
void wal_freeze(wal *w, uint64_t *last_lsn);
/* While frozen: replace the log with an empty one whose base is base_lsn
 * (written to PATH.tmp, fsynced, renamed, directory fsynced).  Clears the
 * failed state.  On failure the old log stays in place. */
int wal_reset(wal *w, uint64_t base_lsn, es_error *err);
void wal_thaw(wal *w);

/* fdatasync now (any policy).  0, or ES_EIO and the failed state. */
int wal_sync(wal *w, es_error *err);

/* The log's counters, read together under its mutex. */
typedef struct wal_state {
	uint64_t end;      /* current file size */
	uint64_t last_lsn;
	uint32_t last_crc; /* see wal_last_crc */
	int failed;        /* see wal_failed */
} wal_state;
wal_state wal_get_state(wal *w);

/* One counter each (wal_get_state reads them all at once). */
uint64_t wal_size_bytes(wal *w);   /* current file size */
uint64_t wal_last_lsn(wal *w);
/* 0, or the ES_E* code of the failed state (ES_EIO). */
int wal_failed(wal *w);

/* ---------------------------------------------------------------------
 * Record payloads.  Points have an id that is an unsigned 64-bit number or
 * a byte string (1..WAL_MAX_ID_LEN bytes), dim float32 values (bit-exact,
 * little-endian) and an opaque payload (e.g. JSON text, may be empty).
 *
 * UPSERT: u32 dim, u32 n, then per point: u8 id kind (0 num, 1 str),
 *         u64 num | (u32 len, bytes), dim x f32, u32 payload len, bytes.
 * DELETE: u32 n, then per id: kind and value as above.
 * UPSERT_TEXT: u32 dim, u32 n, then per point: the id as above, u8 flags
 *         (1 has a vector, 2 has text), [dim x f32], u32 payload len,
 *         bytes, [u32 text len (>= 1), bytes].  A batch with no text and
 *         every vector is logged as UPSERT, as before.
 * PAYLOAD: u32 op len, op bytes (opaque here: the server's payload update,
 *         es_collection_update_payload), u32 n, then the ids as in DELETE.
 */
#define WAL_MAX_ID_LEN 4096u

typedef struct wal_id {
	int is_str;
	uint64_t num;
	const char *str; /* not NUL-terminated necessarily */
	uint32_t len;
} wal_id;

/* A growable byte buffer for building payloads (core/bytebuf.h). */
typedef es_bytebuf wal_buf;

void wal_buf_init(wal_buf *b);
void wal_buf_free(wal_buf *b);

/* Start an UPSERT payload for n points of dimension dim, then add each point
 * with wal_upsert_add.  0 or ES_ENOMEM / ES_EINVAL (id too long). */
int wal_upsert_begin(wal_buf *b, uint32_t dim, uint32_t n);
int wal_upsert_add(wal_buf *b, const wal_id *id, const float *vec, uint32_t dim,
		   const void *payload, uint32_t payload_len);
/* UPSERT_TEXT (begun with wal_upsert_begin): vec and text may be NULL. */
int wal_upsert_text_add(wal_buf *b, const wal_id *id, const float *vec,
			uint32_t dim, const void *payload, uint32_t payload_len,
			const char *text, uint32_t text_len);
int wal_delete_begin(wal_buf *b, uint32_t n);
int wal_delete_add(wal_buf *b, const wal_id *id);
/* PAYLOAD: the op, then n ids added with wal_delete_add. */
int wal_payload_begin(wal_buf *b, const void *op, uint32_t oplen, uint32_t n);

/* Reading: a cursor over a payload (a core/lerw memory reader); every
 * field is bounds-checked. */
typedef struct wal_reader {
	es_reader in;
	uint32_t dim, n, i;
} wal_reader;

/* Begin reading an UPSERT (sets r->dim, r->n) or DELETE (r->n) payload. */
int wal_upsert_read_begin(wal_reader *r, const void *data, size_t len,
			  es_error *err);
/* Next point: id (str points into the payload), vector copied into
 * vec[dim], payload pointer into the record.  0, or ES_ECORRUPT. */
int wal_upsert_read_next(wal_reader *r, wal_id *id, float *vec,
			 const void **payload, uint32_t *payload_len,
			 es_error *err);
/* UPSERT_TEXT: begin with wal_upsert_text_read_begin; *has_vec says
 * whether vec[dim] was filled, *text is NULL when the point has none. */
int wal_upsert_text_read_begin(wal_reader *r, const void *data, size_t len,
			       es_error *err);
int wal_upsert_text_read_next(wal_reader *r, wal_id *id, float *vec,
			      int *has_vec, const void **payload,
			      uint32_t *payload_len, const char **text,
			      uint32_t *text_len, es_error *err);
int wal_delete_read_begin(wal_reader *r, const void *data, size_t len,
			  es_error *err);
int wal_delete_read_next(wal_reader *r, wal_id *id, es_error *err);
/* PAYLOAD: *op points into the record; then the ids with
 * wal_delete_read_next. */
int wal_payload_read_begin(wal_reader *r, const void *data, size_t len,
			   const void **op, uint32_t *oplen, es_error *err);
/* ES_ECORRUPT unless every byte of the payload was consumed. */
int wal_read_end(const wal_reader *r, es_error *err);

/* ---------------------------------------------------------------------
 * Log shipping (server/api_replication.c, cli/follower.c).  A follower
 * checks that the primary's log continues its own by the payload CRC of
 * the last record both should share, so a log remembers that CRC: of its
 * last record, or (no record yet) its header's base CRC. */
uint32_t wal_last_crc(wal *w);

/* The end of what may be shipped: under WAL_FSYNC_ALWAYS the records known
 * durable (a record whose fdatasync fails is cut off the file, and must not
 * reach a follower either), else every record written.  lsn and the file
 * size after it. */
void wal_shippable(wal *w, uint64_t *lsn, uint64_t *end);

/* A place in a log file: record lsn (or the base lsn) ends at off; crc is
 * its payload CRC (0 unknown). */
typedef struct wal_ship_pos {
	uint64_t lsn;
	uint64_t off;
	uint32_t crc;
} wal_ship_pos;

/* Copy the records after lsn `from` out of the log file open at fd (the
 * first `limit` bytes of it, whole records), exactly as they are in the
 * file (header + payload), each checked as replay checks it, appending to
 * out at most max_bytes (but always one record when one follows).  *prev
 * receives record `from`'s place (its CRC), *end the place after the last
 * record copied (equal to *prev when none).  hint: a place a previous read
 * ended at; when its lsn is `from`, the scan for record `from` starts
 * there instead of at the file's start.  ES_ENOTFOUND when `from` is
 * before the file's base, ES_ERANGE when past its last record,
 * ES_ECORRUPT / ES_EIO for a damaged or unreadable file. */
int wal_ship_read(int fd, uint64_t limit, uint64_t from, const wal_ship_pos *hint,
		  size_t max_bytes, wal_buf *out, wal_ship_pos *prev,
		  wal_ship_pos *end, es_error *err);

/* One record of a shipped stream (the file's record format) at buf: checked
 * as replay checks it (header CRC, length bound, type, lsn == expect_lsn,
 * payload CRC).  0 with its type, payload and whole length (header +
 * payload) in *rec_len, or ES_ECORRUPT saying what is wrong. */
int wal_record_parse(const void *buf, size_t len, uint64_t expect_lsn,
		     uint32_t *type, const void **payload, size_t *plen,
		     size_t *rec_len, es_error *err);

#endif
