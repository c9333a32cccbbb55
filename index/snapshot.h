/*
 * snapshot.h — checksummed point-in-time files (collection snapshots and the
 * data directory's manifest).
 *
 * A snapshot is a container of tagged sections; the caller decides what the
 * sections hold (index/store.c writes a collection's parameters, ids,
 * payloads, vectors and its HNSW graph through hnsw_write).  Layout, all
 * little-endian:
 *   header, 64 bytes: magic "ESSNAP01", u32 version (1), u32 header size (64),
 *     u64 lsn (the last write-ahead-log record the snapshot contains),
 *     u64 file size, u32 section count, u32 reserved[7], u32 CRC32C of bytes 0..59
 *   sections, each:   u32 tag, u32 reserved, u64 length, u32 CRC32C of the data,
 *     u32 CRC32C of bytes 0..19 of this section header, data, zero padding to
 *     a multiple of 8.
 *
 * Writing: snapshot_writer_new() writes PATH.tmp; snapshot_writer_commit()
 * finishes the header, fsyncs the file, renames it over PATH and fsyncs the
 * directory, so PATH is always either the old or the new complete file.
 *
 * Reading: snapshot_open() maps the file and checks everything before any
 * section is handed out: magic, version, header checksum, the recorded file
 * size against the real one, every section header and data checksum, and
 * that the sections end exactly at the end of the file.  Any mismatch is
 * ES_ECORRUPT with "PATH: offset N: what".  Section data stays hostile to
 * the parser that reads it: a core/lerw memory reader (es_reader_mem, with
 * es_r_view for fields used in place) bounds-checks every field, and
 * section contents are built with its memory writer (es_writer_init_mem).
 * Section padding must be zero, so no byte of the file goes unchecked.
 *
 * Threading: a writer or reader is used by one thread at a time; distinct
 * objects are independent.  Ownership: the reader owns its mapping; section
 * pointers are valid until snapshot_close.
 */
#ifndef ES_SNAPSHOT_H
#define ES_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define SNAPSHOT_MAGIC "ESSNAP01"
#define SNAPSHOT_VERSION 1u
#define SNAPSHOT_HEADER_SIZE 64u
#define SNAPSHOT_SECTION_HEADER_SIZE 24u
#define SNAPSHOT_MAX_SECTIONS 4096u

typedef struct snapshot_writer snapshot_writer;
typedef struct snapshot snapshot;

/* I/O failure injection for tests (NULL = real write/fsync); like the system
 * calls, return -1 with errno on failure. */
typedef struct snapshot_io_hooks {
	void *ctx;
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
	int (*fsync)(void *ctx, int fd);
} snapshot_io_hooks;

/* Start writing PATH.tmp for a snapshot at log position lsn.  hooks may be
 * NULL.  Errors: ES_EIO / ES_ENOSPC / ES_ENOMEM naming the file. */
int snapshot_writer_new(const char *path, uint64_t lsn,
			const snapshot_io_hooks *hooks, snapshot_writer **out,
			es_error *err);

/* Change the lsn recorded in the header (it is written at commit). */
void snapshot_writer_set_lsn(snapshot_writer *w, uint64_t lsn);

/* A whole section at once. */
int snapshot_write_section(snapshot_writer *w, uint32_t tag, const void *data,
			   size_t len, es_error *err);

/* A section written in pieces: begin, any number of appends, end.  Between
 * begin and end, snapshot_section_stream() gives a FILE* whose writes append
 * to the section (for hnsw_write); fclose it before snapshot_section_end. */
int snapshot_section_begin(snapshot_writer *w, uint32_t tag, es_error *err);
int snapshot_section_append(snapshot_writer *w, const void *data, size_t len,
			    es_error *err);
FILE *snapshot_section_stream(snapshot_writer *w);
int snapshot_section_end(snapshot_writer *w, es_error *err);

/* Finish, fsync, rename over PATH, fsync the directory; frees w either way.
 * On failure PATH is untouched and PATH.tmp removed. */
int snapshot_writer_commit(snapshot_writer *w, es_error *err);
/* Give up: remove PATH.tmp and free.  NULL is a no-op. */
void snapshot_writer_abort(snapshot_writer *w);

/* Convenience: PATH atomically becomes a one-section snapshot. */
int snapshot_write_file(const char *path, uint64_t lsn, uint32_t tag,
			const void *data, size_t len, es_error *err);

/* Open and fully verify a snapshot (see above).  ES_ENOTFOUND when PATH does
 * not exist, ES_ECORRUPT for damage, ES_EIO for read errors. */
int snapshot_open(const char *path, snapshot **out, es_error *err);
void snapshot_close(snapshot *s);

uint64_t snapshot_lsn(const snapshot *s);
const char *snapshot_path(const snapshot *s);
/* The first section with this tag: 0, or ES_ENOTFOUND. */
int snapshot_section(const snapshot *s, uint32_t tag, const void **data,
		     size_t *len);
/* A read-only FILE* over a section (for hnsw_read); NULL when absent or on
 * error.  Close it with fclose before snapshot_close. */
FILE *snapshot_section_fopen(const snapshot *s, uint32_t tag);

#endif
