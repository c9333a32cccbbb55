/*
 * safetensors.h — read-only reader for Hugging Face .safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *  "__metadata__": {...}}, then the data block; offsets are relative to the
 * start of the data block.  The file is mmap'ed; tensors are converted to
 * float32 on load (F32, F16 and BF16 are supported; other dtypes are listed
 * but refused when loaded).
 *
 * Every byte is hostile: the header length must fit in the file and be at most
 * ES_ST_MAX_HEADER, every tensor's offsets must lie inside the data block and
 * its byte size must equal product(shape) x dtype size (overflow-checked).
 *
 * Names: lookups accept a name with or without a "bert." prefix, so the same
 * code reads plain BertModel checkpoints ("embeddings.word_embeddings.weight")
 * and BertFor* ones ("bert.embeddings.word_embeddings.weight").
 *
 * Threading: an opened file is immutable; all calls may run concurrently.
 * Ownership: es_safetensors_free() unmaps the file; buffers returned by
 * es_safetensors_load_f32() are malloc'ed and owned by the caller.
 */
#ifndef ES_SAFETENSORS_H
#define ES_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ES_ST_MAX_HEADER (100u * 1024 * 1024)
#define ES_ST_MAX_DIMS 8

typedef struct es_safetensors es_safetensors;

typedef enum es_st_dtype {
	ES_ST_UNKNOWN = 0,
	ES_ST_F32,
	ES_ST_F16,
	ES_ST_BF16,
	ES_ST_F64,
	ES_ST_I64,
	ES_ST_I32,
	ES_ST_I16,
	ES_ST_I8,
	ES_ST_U8,
	ES_ST_BOOL,
	ES_ST_OTHER, /* a dtype we know the size of but do not convert */
} es_st_dtype;

/* One tensor's description (borrowed from the reader). */
typedef struct es_st_tensor {
	const char *name;   /* as stored in the file */
	es_st_dtype dtype;
	const char *dtype_name;
	uint32_t ndim;
	uint64_t shape[ES_ST_MAX_DIMS];
	uint64_t count;     /* product of shape */
	const void *data;   /* into the mapping; not necessarily aligned */
	size_t nbytes;
} es_st_tensor;

/* Open and validate `path`.  ES_ENOTFOUND / ES_EIO when it cannot be read,
 * ES_ECORRUPT when the header or an entry is malformed (message names the
 * file and the entry). */
int es_safetensors_open(const char *path, es_safetensors **out, es_error *err);

/* Unmap and free.  NULL is a no-op. */
void es_safetensors_free(es_safetensors *st);

/* Number of tensors. */
size_t es_safetensors_count(const es_safetensors *st);

/* Find `name`, trying it as given, with a "bert." prefix added, and with a
 * "bert." prefix removed.  NULL when absent. */
const es_st_tensor *es_safetensors_find(const es_safetensors *st,
					const char *name);

/* Load tensor `name` as float32 into a new malloc'ed buffer (*out).  When
 * ndim > 0 the tensor must have exactly that shape (ES_ECORRUPT otherwise,
 * with both shapes in the message); a missing tensor is ES_ENOTFOUND with
 * the name and file in the message. */
int es_safetensors_load_f32(const es_safetensors *st, const char *name,
			    uint32_t ndim, const uint64_t *shape, float **out,
			    es_error *err);

/* Same, into a caller buffer; the expected shape (ndim > 0) is required and
 * fixes how many floats are written. */
int es_safetensors_read_f32(const es_safetensors *st, const char *name,
			    uint32_t ndim, const uint64_t *shape, float *dst,
			    es_error *err);

#endif
