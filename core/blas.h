/*
 * blas.h — the one place that says how embedsrv runs OpenBLAS.
 *
 * Policy: embedsrv's parallelism comes from its own pools (core/threadpool):
 * a batch search or an encode splits its work over es_pool workers, and each
 * worker calls cblas_sgemm on its own block.  OpenBLAS's pthreads build would
 * otherwise start its own pool of one thread per CPU inside every call, so
 * with W of our workers calling sgemm at once we would run W x ncpu threads
 * on ncpu cores (oversubscription, and OpenBLAS's spin-waiting threads steal
 * the cores our workers need).  es_blas_init() therefore limits OpenBLAS to
 * one thread per call, once per process; the caller's pool size decides how
 * many cores are used.  A caller that wants OpenBLAS's own threading for one
 * big sgemm outside any pool can call openblas_set_num_threads() itself
 * after es_blas_init(), knowing it changes the setting for the process.
 *
 * Threading: es_blas_init() is idempotent and thread-safe (pthread_once);
 * call it before the first cblas_* call of a module (it costs nothing after
 * the first time).
 */
#ifndef ES_BLAS_H
#define ES_BLAS_H

/* Limit OpenBLAS to one thread per call (once per process). */
void es_blas_init(void);

/* Threads OpenBLAS may use per call (1 after es_blas_init()). */
int es_blas_threads(void);

#endif
