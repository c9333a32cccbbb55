/*
 * model_io.h — reading and writing model files.
 *
 * Read: embedsrv's .esm, word2vec binary (the original C format),
 * word2vec / GloVe text with or without the "count dim" header line,
 * fastText .vec (the same text format) and the full fastText .bin (v11/12,
 * not quantized) with its subword n-gram buckets.  Write: .esm and .vec.
 *
 * Every reader treats the file as hostile: sizes are checked against the
 * file's length before anything is allocated, numbers must parse and be
 * finite, words must be valid UTF-8, and each problem is reported as
 * "<file>: <what is wrong>" (with a line number or word index where there is
 * one) — never a crash.
 *
 * .esm layout (little-endian; see model_io.c for the header fields): a
 * 256-byte header with magic "EMBSRVM\0", version, dim, flags, counts,
 * section offsets and three CRC-32C checksums (header, index, data); then the
 * word offsets, word bytes, counts, the vocabulary hash table and the
 * metadata (the "index"), then 64-byte aligned vectors, n-gram rows and the
 * common component (the "data").  es_model_load() mmaps the file and uses
 * the vectors in place; it verifies the header and index checksums (small)
 * but, so that a multi-GB model opens in milliseconds, checks the data
 * checksum only with ES_LOAD_VERIFY or es_model_verify().
 *
 * Writers go to "<out>.tmp.XXXXXX" in the same directory, fsync, rename
 * over <out> and fsync the directory: a crash leaves the old file or the new
 * one, never half of one.
 *
 * Threading: all calls are reentrant; a loaded model is read-only.
 */
#ifndef ES_MODEL_IO_H
#define ES_MODEL_IO_H

#include "error.h"
#include "model.h"

typedef enum es_model_format {
	ES_FORMAT_AUTO = 0,
	ES_FORMAT_ESM,
	ES_FORMAT_WORD2VEC_BIN,
	ES_FORMAT_TEXT,         /* word2vec text, GloVe, fastText .vec */
	ES_FORMAT_FASTTEXT_BIN,
} es_model_format;

#define ES_ESM_VERSION 1u

/* Load flags. */
#define ES_LOAD_VERIFY 1u /* .esm: also check the data checksum and that
			   * every value passes es_model_value_ok */

/* "auto", "esm", "word2vec-bin", "text", "fasttext-bin" -> format; -1 if
 * unknown. */
int es_model_format_parse(const char *name);

/* Guess the format from the file's first bytes. */
int es_model_detect(const char *path, es_model_format *fmt, es_error *err);

/* Load a model of format fmt (ES_FORMAT_AUTO: detect). */
int es_model_load(const char *path, es_model_format fmt, unsigned flags,
		  es_model **out, es_error *err);

/* Check the data checksum and the values of an mmap'ed .esm (0 for other
 * models). */
int es_model_verify(const es_model *m, es_error *err);

/* Write m as .esm / as fastText .vec text ("count dim" header, one word and
 * its numbers per line, %.9g so floats round-trip).  Atomic (tmp + rename). */
int es_model_save_esm(const es_model *m, const char *path, es_error *err);
int es_model_save_vec(const es_model *m, const char *path, es_error *err);


#endif
