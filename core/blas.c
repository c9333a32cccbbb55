/*
 * blas.c — OpenBLAS threading policy; see blas.h for why.
 */
#include "blas.h"

#include <cblas.h>
#include <pthread.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_setup(void)
{
	openblas_set_num_threads(1);
}

void es_blas_init(void)
{
	pthread_once(&blas_once, blas_setup);
}

int es_blas_threads(void)
{
	return openblas_get_num_threads();
}
