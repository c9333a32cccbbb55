/*
 * batcher.h — dynamic batching: texts of concurrent requests encoded in one
 * forward pass.
 *
 * A BERT forward over one short text reads every weight (90 MB for a
 * MiniLM-shaped model) for a handful of token rows; over 16 texts it reads
 * them once for 16x the rows.  Requests that arrive while the model is busy
 * are therefore queued and taken together by the next free worker, TEI's
 * continuous batching: no request waits for a timer when a worker is idle
 * (max_wait_us 0), and under load the queue fills while the workers run.
 *
 * A worker takes the oldest request and, after it in arrival order, every
 * queued request with the same encode flags while the batch stays within
 * max_batch texts (a request larger than max_batch runs alone, never
 * split).  With max_wait_us > 0 a worker that finds fewer than max_batch
 * texts queued waits for more until the oldest request has waited that
 * long: the added latency is bounded by max_wait_us plus one forward.
 *
 * Errors stay per request: when a combined forward fails, each of its
 * requests is encoded again on its own, so one request's bad text (invalid
 * UTF-8, too long with ES_ENC_NO_TRUNCATE) fails that request only.
 * Results equal an unbatched encode to float rounding (each text's rows are
 * computed independently of its batch companions).
 *
 * Threading: es_batcher_encode() may be called from any number of threads;
 * it blocks until its texts are encoded.  `workers` threads run forwards,
 * each with a pool of `threads` threads for its forward (core/bert cuts a
 * batch into one run of texts per thread, or splits each product of a
 * short one by columns).
 * Ownership: the encoder is borrowed and must outlive the batcher;
 * es_batcher_free() encodes what is still queued, then joins the workers.
 */
#ifndef ES_BATCHER_H
#define ES_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "encoder.h"

#define ES_BATCHER_MAX_BATCH 32  /* default max_batch (measured: bench/RESULTS.md) */
#define ES_BATCHER_MAX_WAIT_US 0 /* default max_wait_us */

typedef struct es_batcher es_batcher;

typedef struct es_batcher_config {
	uint32_t max_batch;   /* texts per forward, >= 1 */
	uint32_t max_wait_us; /* see above; <= 1000000 */
	unsigned workers;     /* forwards at once, >= 1 */
	unsigned threads;     /* threads per forward, 0 or 1: the worker alone */
} es_batcher_config;

typedef struct es_batcher_stats {
	uint64_t requests; /* es_batcher_encode calls served */
	uint64_t texts;    /* texts encoded */
	uint64_t forwards; /* combined forward passes run */
	uint32_t max_seen; /* most texts in one forward */
	/* where a request's time goes, summed over requests (divide by
	 * requests for means): queued until a worker took it, then the
	 * forward it was part of (tokenising and pooling included) */
	uint64_t wait_us, forward_us;
} es_batcher_stats;

/* ES_EINVAL for a config outside the ranges above. */
int es_batcher_new(const es_encoder *enc, const es_batcher_config *cfg,
		   es_batcher **out, es_error *err);
void es_batcher_free(es_batcher *b);

/* es_encoder_encode_batch(enc, texts, lens, n, flags, out, infos, NULL, err)
 * through the queue; same contract and result. */
int es_batcher_encode(es_batcher *b, const char *const *texts,
		      const size_t *lens, size_t n, unsigned flags, float *out,
		      es_encode_info *infos, es_error *err);

const es_encoder *es_batcher_encoder(const es_batcher *b);
void es_batcher_get_stats(es_batcher *b, es_batcher_stats *s);

#endif
