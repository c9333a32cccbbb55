/*
 * batcher.c — dynamic batching of concurrent encode requests; see batcher.h.
 *
 * The queue is a FIFO list of jobs that live on the callers' stacks; each
 * caller sleeps on its own condition variable (no herd wakes when a batch
 * finishes).  Everything shared is under one mutex, held only to queue,
 * take and finish jobs, never during a forward.
 */
#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "threadpool.h"

typedef struct job {
	const char *const *texts;
	const size_t *lens;
	size_t n;
	unsigned flags;
	float *out;
	es_encode_info *infos; /* may be NULL */
	struct timespec queued;
	int rc;
	es_error err;
	int done;
	pthread_cond_t cv;
	struct job *next;
} job;

struct es_batcher {
	const es_encoder *enc;
	es_batcher_config cfg;
	uint32_t dim;
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, or stop */
	job *head, *tail;
	int stop;
	es_batcher_stats st;
	pthread_t *threads;
	unsigned nthreads;
	es_pool **pools; /* per worker, NULL entries with threads <= 1 */
};

typedef struct worker_arg {
	es_batcher *b;
	es_pool *pool;
} worker_arg;

static void add_us(struct timespec *t, uint32_t us)
{
	t->tv_nsec += (long)us * 1000;
	while (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

static uint64_t us_between(const struct timespec *a, const struct timespec *b)
{
	int64_t ns = (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
	return ns > 0 ? (uint64_t)ns / 1000 : 0;
}

/* Texts queued that the head's batch could take (same flags, in order,
 * within max_batch); also the last job it would take. */
static size_t batch_extent(const es_batcher *b, job **last)
{
	const job *h = b->head;
	size_t total = h->n;
	job *l = b->head;
	for (job *j = h->next; j && total < b->cfg.max_batch; j = j->next) {
		if (j->flags != h->flags || total + j->n > b->cfg.max_batch)
			break;
		total += j->n;
		l = j;
	}
	*last = l;
	return total;
}

static void run_alone(const es_batcher *b, job *j, es_pool *pool)
{
	es_error_clear(&j->err);
	j->rc = es_encoder_encode_batch(b->enc, j->texts, j->lens, j->n, j->flags,
					j->out, j->infos, pool, &j->err);
}

/* Encode jobs first..last (a detached list) as one forward; on failure
 * each job alone, so errors stay per request. */
static void run_batch(es_batcher *b, job *first, size_t total, es_pool *pool)
{
	if (!first->next) {
		run_alone(b, first, pool);
		return;
	}
	const char **texts = malloc(total * sizeof *texts);
	size_t *lens = malloc(total * sizeof *lens);
	float *out = malloc(total * b->dim * sizeof *out);
	es_encode_info *infos = malloc(total * sizeof *infos);
	int rc = ES_ENOMEM;
	es_error err;
	es_error_clear(&err);
	if (texts && lens && out && infos) {
		size_t o = 0;
		for (job *j = first; j; j = j->next) {
			memcpy(texts + o, j->texts, j->n * sizeof *texts);
			memcpy(lens + o, j->lens, j->n * sizeof *lens);
			o += j->n;
		}
		rc = es_encoder_encode_batch(b->enc, texts, lens, total, first->flags,
					     out, infos, pool, &err);
	}
	if (rc) {
		for (job *j = first; j; j = j->next)
			run_alone(b, j, pool);
	} else {
		size_t o = 0;
		for (job *j = first; j; j = j->next) {
			memcpy(j->out, out + o * b->dim, j->n * b->dim * sizeof *out);
			if (j->infos)
				memcpy(j->infos, infos + o, j->n * sizeof *infos);
			j->rc = 0;
			o += j->n;
		}
	}
	free(texts);
	free(lens);
	free(out);
	free(infos);
}

static void *worker(void *arg)
{
	es_batcher *b = ((worker_arg *)arg)->b;
	es_pool *pool = ((worker_arg *)arg)->pool;
	free(arg);
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->head && !b->stop)
			pthread_cond_wait(&b->work, &b->mu);
		if (!b->head)
			break; /* stop, and nothing left to encode */
		job *last;
		size_t total = batch_extent(b, &last);
		if (b->cfg.max_wait_us && total < b->cfg.max_batch && !b->stop) {
			struct timespec deadline = b->head->queued;
			add_us(&deadline, b->cfg.max_wait_us);
			job *h = b->head;
			while (b->head == h && !b->stop &&
			       batch_extent(b, &last) < b->cfg.max_batch &&
			       pthread_cond_timedwait(&b->work, &b->mu, &deadline) != ETIMEDOUT)
				;
			if (b->head != h)
				continue; /* another worker took it meanwhile */
			total = batch_extent(b, &last);
		}
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (job *j = b->head;; j = j->next) {
			b->st.wait_us += us_between(&j->queued, &t0);
			if (j == last)
				break;
		}
		job *first = b->head;
		b->head = last->next;
		if (!b->head)
			b->tail = NULL;
		last->next = NULL;
		b->st.forwards++;
		if (total > b->st.max_seen)
			b->st.max_seen = (uint32_t)total;
		pthread_mutex_unlock(&b->mu);

		run_batch(b, first, total, pool);
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		uint64_t fwd = us_between(&t0, &t1);

		pthread_mutex_lock(&b->mu);
		for (job *j = first, *nx; j; j = nx) {
			nx = j->next; /* j may be gone once done is seen */
			b->st.requests++;
			b->st.forward_us += fwd;
			b->st.texts += j->n;
			j->done = 1;
			pthread_cond_signal(&j->cv);
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int es_batcher_new(const es_encoder *enc, const es_batcher_config *cfg,
		   es_batcher **out, es_error *err)
{
	*out = NULL;
	if (!cfg->max_batch)
		return es_err(err, ES_EINVAL, "batch size must be at least 1");
	if (cfg->max_wait_us > 1000000)
		return es_err(err, ES_EINVAL, "batch wait %u us is over the 1 s limit",
			      cfg->max_wait_us);
	if (!cfg->workers || cfg->workers > 1024)
		return es_err(err, ES_EINVAL, "batch workers must be 1..1024 (got %u)",
			      cfg->workers);
	if (cfg->threads > 1024)
		return es_err(err, ES_EINVAL, "threads per forward must be 0..1024 (got %u)",
			      cfg->threads);
	es_batcher *b = calloc(1, sizeof *b);
	if (!b)
		return es_err(err, ES_ENOMEM, "out of memory");
	b->enc = enc;
	b->cfg = *cfg;
	b->dim = es_encoder_dim(enc);
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->work, &ca);
	pthread_condattr_destroy(&ca);
	b->threads = calloc(cfg->workers, sizeof *b->threads);
	b->pools = calloc(cfg->workers, sizeof *b->pools);
	if (!b->threads || !b->pools) {
		es_batcher_free(b);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < cfg->workers; i++) {
		if (cfg->threads > 1 && !(b->pools[i] = es_pool_new(cfg->threads))) {
			es_batcher_free(b);
			return es_err(err, ES_EIO, "cannot start the threads of batch worker %u", i);
		}
		worker_arg *wa = malloc(sizeof *wa);
		if (wa)
			*wa = (worker_arg){b, b->pools[i]};
		if (!wa || pthread_create(&b->threads[i], NULL, worker, wa)) {
			free(wa);
			es_batcher_free(b);
			return es_err(err, ES_EIO, "cannot start batch worker %u", i);
		}
		b->nthreads++;
	}
	*out = b;
	return 0;
}

void es_batcher_free(es_batcher *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = 1;
	pthread_cond_broadcast(&b->work);
	pthread_mutex_unlock(&b->mu);
	for (unsigned i = 0; i < b->nthreads; i++)
		pthread_join(b->threads[i], NULL);
	for (unsigned i = 0; b->pools && i < b->cfg.workers; i++)
		es_pool_free(b->pools[i]);
	free(b->pools);
	free(b->threads);
	pthread_cond_destroy(&b->work);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

int es_batcher_encode(es_batcher *b, const char *const *texts,
		      const size_t *lens, size_t n, unsigned flags, float *out,
		      es_encode_info *infos, es_error *err)
{
	if (n == 0)
		return 0;
	job j = {.texts = texts, .lens = lens, .n = n, .flags = flags,
		 .out = out, .infos = infos};
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j.cv, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_MONOTONIC, &j.queued);
	pthread_mutex_lock(&b->mu);
	if (b->tail)
		b->tail->next = &j;
	else
		b->head = &j;
	b->tail = &j;
	/* with max_wait, workers already waiting for a fuller batch must see
	 * this job too, not just one idle worker */
	if (b->cfg.max_wait_us)
		pthread_cond_broadcast(&b->work);
	else
		pthread_cond_signal(&b->work);
	while (!j.done)
		pthread_cond_wait(&j.cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	pthread_cond_destroy(&j.cv);
	if (j.rc && err)
		*err = j.err;
	return j.rc;
}

const es_encoder *es_batcher_encoder(const es_batcher *b)
{
	return b->enc;
}

void es_batcher_get_stats(es_batcher *b, es_batcher_stats *s)
{
	pthread_mutex_lock(&b->mu);
	*s = b->st;
	pthread_mutex_unlock(&b->mu);
}
