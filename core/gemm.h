/*
 * gemm.h — C = A B for a B that is fixed (a layer's weights), packed once.
 *
 * The encoder multiplies every batch of activations by the same weight
 * matrices.  OpenBLAS repacks B on every call and, on CPUs its build does
 * not know (Debian's 0.3.21 runs its Haswell AVX2 kernels on AVX-512 Zen 5),
 * uses half the vector width.  Here B is packed at load time into panels of
 * ES_GEMM_NR columns — panel p holds columns [32p, 32p + 32) as k rows of 32
 * contiguous floats, zero-padded past n — so a product streams each panel
 * exactly once per block of rows, and the micro-kernel reads A in place
 * (row-major, any lda; no packing).  The epilogue (bias, GELU, residual) is
 * applied while the result tile is still in registers, saving a pass over C.
 *
 * Paths (core/simd dispatch, EMBEDSRV_SIMD respected): AVX-512F kernel of
 * 12 rows x 32 columns, AVX2+FMA kernel of 6 rows x 16 columns; anywhere
 * else (scalar, NEON) each panel is one cblas_sgemm (OpenBLAS's own kernels
 * for that CPU) followed by the same epilogue in plain C.  Results agree
 * with a double-precision reference to float rounding; they are not bitwise
 * equal across paths (different summation order).
 *
 * Threading: a packed matrix is immutable; es_gemm_run() is reentrant, and
 * callers split the work across threads by panel ranges.
 * Ownership: es_gemm_pack() returns a matrix freed by es_gemm_free().
 */
#ifndef ES_GEMM_H
#define ES_GEMM_H

#include <stddef.h>

#include "error.h"
#include "simd.h"

#define ES_GEMM_NR 32 /* columns per packed panel */

/* A packed matrix.  Fields are read-only for users: fill one with
 * es_gemm_pack() (heap) or es_gemm_pack_into() (caller memory). */
typedef struct es_gemm_b {
	size_t k, n, panels;
	float *data; /* panels x k x ES_GEMM_NR floats, 64-byte aligned */
	int owned;   /* data and the struct were allocated by es_gemm_pack */
} es_gemm_b;

typedef enum es_gemm_act {
	ES_GEMM_ACT_NONE = 0,
	ES_GEMM_ACT_GELU,      /* x/2 (1 + erf(x/sqrt 2)), |error| < 5e-7 |x| */
	ES_GEMM_ACT_GELU_TANH, /* x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} es_gemm_act;

/* What happens to each result element v = (A B)[i][j] before it is stored:
 * v += bias[j]; v = act(v); v += res[i * ldres + j].  NULL skips a step. */
typedef struct es_gemm_epi {
	const float *bias;
	es_gemm_act act;
	const float *res;
	size_t ldres;
} es_gemm_epi;

/* Pack the k x n matrix whose element (i, j) is src[i * rs + j * cs] — a
 * row-major [k x n] matrix is rs = n, cs = 1; a PyTorch Linear weight
 * [n x k] used as its transpose is rs = 1, cs = k.  Returns 0, or
 * ES_EINVAL for k or n of 0, ES_ENOMEM. */
int es_gemm_pack(const float *src, size_t k, size_t n, size_t rs, size_t cs,
		 es_gemm_b **out, es_error *err);

void es_gemm_free(es_gemm_b *b);

/* Floats of packed storage a k x n matrix needs. */
size_t es_gemm_packed_floats(size_t k, size_t n);

/* Pack scale * (the k x n matrix src[i * rs + j * cs]) into buf (64-byte
 * aligned, es_gemm_packed_floats(k, n) floats) and describe it in *b, which
 * borrows buf (es_gemm_free must not be called on it).  k, n >= 1. */
void es_gemm_pack_into(es_gemm_b *b, float *buf, const float *src, size_t k,
		       size_t n, size_t rs, size_t cs, float scale);

size_t es_gemm_rows(const es_gemm_b *b);   /* k */
size_t es_gemm_cols(const es_gemm_b *b);   /* n */
size_t es_gemm_panels(const es_gemm_b *b); /* ceil(n / ES_GEMM_NR) */

/* C[i][j] = epi((A B)[i][j]) for rows i < m and the columns of panels
 * [p0, p1) (p1 <= es_gemm_panels).  A is m x k with row stride lda, C has
 * row stride ldc; columns past n are never read or written.  C must not
 * overlap A or epi->res except that res may equal C (read before written,
 * element by element). */
void es_gemm_run(const es_gemm_b *b, size_t m, const float *a, size_t lda,
		 float *c, size_t ldc, size_t p0, size_t p1,
		 const es_gemm_epi *epi);

/* The same on one dispatch path (tests and benchmarks); a path this build
 * or CPU cannot run falls back to the cblas path. */
void es_gemm_run_path(simd_path path, const es_gemm_b *b, size_t m,
		      const float *a, size_t lda, float *c, size_t ldc,
		      size_t p0, size_t p1, const es_gemm_epi *epi);

/* Tile shapes.  A tile is the block of C a micro-kernel keeps in
 * registers over the whole k loop: "avx512-12x32" is 12 rows x one 32-column
 * panel (24 zmm accumulators), -14x32 (28), -8x32 (16), -4x32 (8);
 * "avx2-6x16" is 6 rows x half a panel (12 ymm), -4x16 (8).  More rows
 * read each panel row from L2 fewer times per FMA; fewer leave registers
 * and load ports to spare.  Which wins is a property of the core (FMA
 * width and count, load ports), so the shape is picked once per process
 * from cpuid's vendor and family — measured rows in bench/RESULTS.md
 * ("tile shapes"): Zen 5 (AMD family 0x1a, two 512-bit FMA pipes) runs
 * avx512-12x32; Zen 4 (family 0x19, AVX-512 double-pumped on 256-bit
 * units) and Intel cores were not measured here and keep avx512-12x32,
 * whose 24 accumulators also cover Zen 4's FMA latency x throughput; the
 * AVX2 path runs avx2-6x16 everywhere.  EMBEDSRV_GEMM_TILE=NAME overrides
 * the pick for its path (benchmarks; a name the CPU cannot run is refused
 * with a warning on stderr).  Every tile computes the same products
 * (tests/test_gemm.c runs them all). */
int es_gemm_tile_count(void);
const char *es_gemm_tile_name(int t);    /* "cblas" for an index out of range */
simd_path es_gemm_tile_path(int t);
int es_gemm_tile_parse(const char *name); /* -1 if unknown */
/* The tile `path` runs in this process, or -1 (the cblas path). */
int es_gemm_tile_for(simd_path path);
/* es_gemm_run on one tile (tests, benchmarks); a tile this CPU or build
 * cannot run, or -1, runs the cblas path. */
void es_gemm_run_tile(int t, const es_gemm_b *b, size_t m, const float *a,
		      size_t lda, float *c, size_t ldc, size_t p0, size_t p1,
		      const es_gemm_epi *epi);

/* GELU (erf form) of n floats in place, with the same approximation as the
 * epilogue; exposed for tests. */
void es_gemm_gelu(float *x, size_t n);

/* Row kernels the encoder runs between products, on the same dispatch.
 * softmax: x = exp(x - max x) / sum, n >= 1 (exp to ~2 float ulps).
 * layernorm: out = (in - mean) / sqrt(var + eps) * g + b over n >= 1
 * floats (population variance, as torch); out may equal in. */
void es_softmax(float *x, size_t n);
void es_layernorm(const float *in, float *out, const float *g, const float *b,
		  size_t n, float eps);
void es_softmax_path(simd_path path, float *x, size_t n);
void es_layernorm_path(simd_path path, const float *in, float *out,
		       const float *g, const float *b, size_t n, float eps);

#endif
