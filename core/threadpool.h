/*
 * threadpool.h — fixed pool of worker threads with a parallel-for.
 *
 * Threading model: a pool of N workers where the calling thread is worker 0
 * and N-1 threads are created at es_pool_new().  es_pool_parallel_for() hands
 * out [begin, end) chunks of `grain` items from an atomic counter until the
 * range is exhausted, and returns when every chunk has finished.  One job runs
 * at a time per pool (concurrent callers are serialised).  A parallel_for
 * issued from inside a worker of the same pool runs inline on that thread, so
 * nesting never deadlocks.
 *
 * Ownership: the pool owns its threads; es_pool_free() joins them.
 */
#ifndef ES_THREADPOOL_H
#define ES_THREADPOOL_H

#include <stddef.h>

typedef struct es_pool es_pool;

/* fn processes items [begin, end); worker is in [0, es_pool_size()). */
typedef void (*es_range_fn)(void *ctx, size_t begin, size_t end,
			    unsigned worker);

/* nthreads == 0 means "number of online CPUs".  Returns NULL on failure. */
es_pool *es_pool_new(unsigned nthreads);

/* Join all workers and free.  NULL is a no-op. */
void es_pool_free(es_pool *pool);

/* Total workers, the caller included (>= 1). */
unsigned es_pool_size(const es_pool *pool);

/* Run fn over [0, n) in chunks of grain (0 picks a grain giving ~4 chunks
 * per worker).  A NULL pool runs everything inline as worker 0. */
void es_pool_parallel_for(es_pool *pool, size_t n, size_t grain,
			  es_range_fn fn, void *ctx);

/* Number of online CPUs (>= 1). */
unsigned es_cpu_count(void);

#endif
