/*
 * model_internal.h — the es_model struct, shared by model.c, model_io.c and
 * encode.c only.  Not part of the public interface.
 */
#ifndef ES_MODEL_INTERNAL_H
#define ES_MODEL_INTERNAL_H

#include <pthread.h>

#include "model.h"

struct es_model {
	es_model_params p;
	es_vocab *vocab;
	float *vectors;        /* size x dim: owned (vec_cap rows) or in map */
	size_t vec_cap;
	float *ngrams;         /* bucket x dim or NULL: owned or in map */
	float *common_vec;     /* dim, unit, owned; NULL = none */
	char **meta_keys, **meta_vals;
	size_t nmeta;
	void *map;             /* mmap'ed .esm, or NULL */
	size_t map_len;
	int vectors_owned, ngrams_owned;
	/* lazily built unit vectors */
	pthread_mutex_t unit_lock;
	float *unit;
	/* .esm data checksum (vectors, n-grams), checked by es_model_verify */
	uint32_t data_crc;
	uint64_t data_off, data_len;
};

/* Unmap an .esm mapping (model_io.c). */
void es_model_io_unmap(void *map, size_t len);

#endif
