/*
 * threadpool.c — see threadpool.h for the threading model.
 *
 * Workers sleep on a condition variable and wake on a job generation change.
 * Chunks are claimed with an atomic fetch-add; the last finisher signals the
 * caller.  No allocation happens per job.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct es_pool {
	unsigned nthreads;   /* workers including the caller */
	pthread_t *threads;  /* nthreads - 1 */
	pthread_mutex_t job_lock; /* serialises parallel_for callers */

	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t done;
	unsigned long generation;
	int shutdown;

	/* current job */
	es_range_fn fn;
	void *ctx;
	size_t n, grain;
	size_t next;        /* atomic: next item to claim */
	unsigned active;    /* workers still running the current job */
};

struct worker_arg {
	es_pool *pool;
	unsigned id;
};

static __thread const es_pool *tls_pool; /* pool this thread works for */
static __thread unsigned tls_worker;     /* its worker id in that pool */

static void run_chunks(es_pool *p, unsigned id)
{
	for (;;) {
		size_t b = __atomic_fetch_add(&p->next, p->grain, __ATOMIC_RELAXED);
		if (b >= p->n)
			break;
		size_t e = b + p->grain < p->n ? b + p->grain : p->n;
		p->fn(p->ctx, b, e, id);
	}
}

static void *worker_main(void *arg)
{
	struct worker_arg wa = *(struct worker_arg *)arg;
	free(arg);
	es_pool *p = wa.pool;
	tls_pool = p;
	tls_worker = wa.id;
	unsigned long seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->shutdown && p->generation == seen)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->shutdown)
			break;
		seen = p->generation;
		pthread_mutex_unlock(&p->mu);
		run_chunks(p, wa.id);
		pthread_mutex_lock(&p->mu);
		if (--p->active == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

unsigned es_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

es_pool *es_pool_new(unsigned nthreads)
{
	if (nthreads == 0)
		nthreads = es_cpu_count();
	if (nthreads > 1024)
		nthreads = 1024;
	es_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->nthreads = 1;
	pthread_mutex_init(&p->job_lock, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nthreads > 1) {
		p->threads = calloc(nthreads - 1, sizeof *p->threads);
		if (!p->threads)
			goto fail;
		for (unsigned i = 1; i < nthreads; i++) {
			struct worker_arg *wa = malloc(sizeof *wa);
			if (!wa)
				goto fail;
			wa->pool = p;
			wa->id = i;
			if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa)) {
				free(wa);
				goto fail;
			}
			p->nthreads = i + 1;
		}
	}
	return p;
fail:
	es_pool_free(p);
	return NULL;
}

void es_pool_free(es_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->shutdown = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 1; i < p->nthreads; i++)
		pthread_join(p->threads[i - 1], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->job_lock);
	free(p);
}

unsigned es_pool_size(const es_pool *p)
{
	return p ? p->nthreads : 1u;
}

void es_pool_parallel_for(es_pool *p, size_t n, size_t grain, es_range_fn fn,
			  void *ctx)
{
	if (n == 0)
		return;
	if (!p || p->nthreads == 1 || tls_pool == p || n == 1) {
		/* Inline: no pool, single worker, nested call, or one item.  A
		 * nested call keeps the id of the worker it runs on, so callers
		 * that index per-worker scratch by id never share a slot. */
		unsigned id = (p && tls_pool == p) ? tls_worker : 0;
		if (grain == 0)
			grain = n;
		for (size_t b = 0; b < n; b += grain)
			fn(ctx, b, b + grain < n ? b + grain : n, id);
		return;
	}
	if (grain == 0) {
		grain = n / ((size_t)p->nthreads * 4);
		if (grain == 0)
			grain = 1;
	}
	pthread_mutex_lock(&p->job_lock);
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->n = n;
	p->grain = grain;
	__atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
	p->active = p->nthreads - 1;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	const es_pool *saved = tls_pool;
	unsigned saved_id = tls_worker;
	tls_pool = p;
	tls_worker = 0;
	run_chunks(p, 0);
	tls_pool = saved;
	tls_worker = saved_id;

	pthread_mutex_lock(&p->mu);
	while (p->active > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->job_lock);
}
