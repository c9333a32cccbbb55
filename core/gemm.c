/*
 * gemm.c — packed-B matrix product with a fused epilogue; see gemm.h.
 *
 * Micro-kernels: a tile of MR rows x one panel is kept in registers for the
 * whole k loop, so the epilogue sees the finished sum.  No k blocking:
 * splitting k = 1536 into chunks of 256-512 rows measured no gain on Zen 5
 * (a panel of 1536 rows, 192 KiB, stays in L2 while a block's tiles reuse
 * it, and the 12 rows of A stream from L2 fine).  Each step loads one row of the panel (2 x 16 floats on
 * AVX-512) and broadcasts one float of each of the MR rows of A.  Rows are
 * processed in blocks sized so a block of A (~256 KiB) and a panel share L2;
 * the panels are walked once per block, so for a short batch (one query of
 * a few tokens) every weight is read from memory exactly once.
 *
 * The kernels are written once as always_inline functions of a constant
 * row count and instantiated for every count 1..MR, so the accumulators
 * live in registers for tails too.  Each x86 path is compiled with
 * __attribute__((target)) and runs only where the CPU says it can.
 */
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define ES_GEMM_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define NR ES_GEMM_NR
#define BLOCK_BYTES (256u << 10) /* A rows per block: about this much */

size_t es_gemm_packed_floats(size_t k, size_t n)
{
	return (n + NR - 1) / NR * NR * k;
}

static void pack(float *dst, const float *src, size_t k, size_t n, size_t rs,
		 size_t cs, float scale)
{
	size_t panels = (n + NR - 1) / NR;
	for (size_t p = 0; p < panels; p++) {
		float *d = dst + p * k * NR;
		size_t c0 = p * NR, nc = n - c0 < NR ? n - c0 : NR;
		for (size_t i = 0; i < k; i++) {
			const float *s = src + i * rs + c0 * cs;
			for (size_t j = 0; j < nc; j++)
				d[i * NR + j] = scale * s[j * cs];
			for (size_t j = nc; j < NR; j++)
				d[i * NR + j] = 0.0f;
		}
	}
}

void es_gemm_pack_into(es_gemm_b *b, float *buf, const float *src, size_t k,
		       size_t n, size_t rs, size_t cs, float scale)
{
	b->k = k;
	b->n = n;
	b->panels = (n + NR - 1) / NR;
	b->data = buf;
	b->owned = 0;
	pack(buf, src, k, n, rs, cs, scale);
}

int es_gemm_pack(const float *src, size_t k, size_t n, size_t rs, size_t cs,
		 es_gemm_b **out, es_error *err)
{
	*out = NULL;
	if (!k || !n)
		return es_err(err, ES_EINVAL, "cannot pack a %zu x %zu matrix", k, n);
	es_gemm_b *b = calloc(1, sizeof *b);
	if (!b)
		return es_err(err, ES_ENOMEM, "out of memory");
	b->k = k;
	b->n = n;
	b->panels = (n + NR - 1) / NR;
	size_t bytes = b->panels * k * NR * sizeof(float);
	if (posix_memalign((void **)&b->data, 64, bytes)) {
		free(b);
		return es_err(err, ES_ENOMEM, "out of memory packing a %zu x %zu matrix",
			      k, n);
	}
	pack(b->data, src, k, n, rs, cs, 1.0f);
	b->owned = 1;
	*out = b;
	return 0;
}

void es_gemm_free(es_gemm_b *b)
{
	if (!b || !b->owned)
		return;
	free(b->data);
	free(b);
}

size_t es_gemm_rows(const es_gemm_b *b)
{
	return b->k;
}

size_t es_gemm_cols(const es_gemm_b *b)
{
	return b->n;
}

size_t es_gemm_panels(const es_gemm_b *b)
{
	return b->panels;
}

/* ---- epilogue in plain C (cblas path, GELU tanh form, tests) ---- */

/* erf(x) for |x| <= 4: Eigen's / XLA's float rational approximation (odd
 * degree-13 over even degree-8 polynomial; max abs error 4.2e-7 against the
 * exact erf over [-6, 6] with clamping).  Branch-free, so loops vectorise. */
static inline float gelu_erf(float v)
{
	float x = v * 0.70710678118654752440f;
	x = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
	float x2 = x * x;
	float p = -2.72614225801306e-10f;
	p = p * x2 + 2.77068142495902e-08f;
	p = p * x2 - 2.10102402082508e-06f;
	p = p * x2 - 5.69250639462346e-05f;
	p = p * x2 - 7.34990630326855e-04f;
	p = p * x2 - 2.95459980854025e-03f;
	p = p * x2 - 1.60960333262415e-02f;
	float q = -1.45660718464996e-05f;
	q = q * x2 - 2.13374055278905e-04f;
	q = q * x2 - 1.68282697438203e-03f;
	q = q * x2 - 7.37332916720468e-03f;
	q = q * x2 - 1.42647390514189e-02f;
	return 0.5f * v * (1.0f + x * p / q);
}

static inline float gelu_tanh(float v)
{
	const float c = 0.7978845608028654f;
	return 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
}

void es_gemm_gelu(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = gelu_erf(x[i]);
}

/* dst[j] = act(src[j] + bias[j]) + res[j] for j < nc; bias and res may
 * be NULL, dst may equal src or res. */
static void epi_row(float *dst, const float *src, size_t nc, const float *bias,
		    es_gemm_act act, const float *res)
{
	for (size_t j = 0; j < nc; j++) {
		float v = bias ? src[j] + bias[j] : src[j];
		if (act == ES_GEMM_ACT_GELU)
			v = gelu_erf(v);
		else if (act == ES_GEMM_ACT_GELU_TANH)
			v = gelu_tanh(v);
		dst[j] = res ? v + res[j] : v;
	}
}

#define CBLAS_ROWS 256 /* rows per sgemm call of the cblas path */

/* Each panel is one sgemm into a stack tile (so res may be C: it is read
 * only when the tile is added to it), then the epilogue into C. */
static void run_cblas(const es_gemm_b *b, size_t m, const float *a, size_t lda,
		      float *c, size_t ldc, size_t p0, size_t p1,
		      const es_gemm_epi *e)
{
	float tile[CBLAS_ROWS * NR];
	es_blas_init();
	for (size_t r0 = 0; r0 < m; r0 += CBLAS_ROWS) {
		size_t rows = m - r0 < CBLAS_ROWS ? m - r0 : CBLAS_ROWS;
		for (size_t p = p0; p < p1; p++) {
			size_t c0 = p * NR, nc = b->n - c0 < NR ? b->n - c0 : NR;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows,
				    (int)nc, (int)b->k, 1.0f, a + r0 * lda, (int)lda,
				    b->data + p * b->k * NR, NR, 0.0f, tile, NR);
			for (size_t r = 0; r < rows; r++)
				epi_row(c + (r0 + r) * ldc + c0, tile + r * NR, nc,
					e->bias ? e->bias + c0 : NULL, e->act,
					e->res ? e->res + (r0 + r) * e->ldres + c0 : NULL);
		}
	}
}

/* One tile's part of the epilogue. */
typedef struct tile_args {
	const float *bias; /* at the tile's first column, or NULL */
	const float *res;  /* at the tile's first row and column, or NULL */
	size_t ldres;
	int gelu;
} tile_args;

#ifdef ES_GEMM_X86
/* ------------------------------------------------------------ AVX-512F */
#define AVX512 __attribute__((target("avx512f")))
#define MR512 14 /* the most rows a tile512 takes (28 accumulators) */

AVX512 static inline __m512 gelu512(__m512 v)
{
	__m512 x = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752440f));
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
	__m512 x2 = _mm512_mul_ps(x, x);
	__m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
	p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
	p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
	p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
	p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
	p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
	p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
	__m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
	q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
	q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
	q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
	q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
	__m512 erf = _mm512_div_ps(_mm512_mul_ps(x, p), q);
	__m512 h = _mm512_mul_ps(v, _mm512_set1_ps(0.5f));
	return _mm512_fmadd_ps(h, erf, h);
}

/* Store one 16-column vector of a result row through the epilogue. */
AVX512 static inline void store512(float *dst, __m512 v, __mmask16 msk,
				   __m512 bias, int gelu, const float *res)
{
	v = _mm512_add_ps(v, bias);
	if (gelu)
		v = gelu512(v);
	if (res)
		v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(msk, res));
	_mm512_mask_storeu_ps(dst, msk, v);
}

/* C rows [0, mr) x one panel = epilogue(A B).  nc: valid columns of the
 * panel (1..32). */
__attribute__((always_inline)) AVX512 static inline void
tile512(const int mr, size_t k, const float *a, size_t lda, const float *bp,
	float *c, size_t ldc, size_t nc, const tile_args *t)
{
	__m512 c0[MR512], c1[MR512];
	__mmask16 m0 = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1);
	__mmask16 m1 = nc >= 32 ? (__mmask16)0xffff
		       : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;
#pragma GCC unroll 14
	for (int i = 0; i < mr; i++) {
		c0[i] = _mm512_setzero_ps();
		c1[i] = _mm512_setzero_ps();
	}
	for (size_t kk = 0; kk < k; kk++) {
		__m512 b0 = _mm512_load_ps(bp + kk * NR);
		__m512 b1 = _mm512_load_ps(bp + kk * NR + 16);
#pragma GCC unroll 14
		for (int i = 0; i < mr; i++) {
			__m512 av = _mm512_set1_ps(a[(size_t)i * lda + kk]);
			c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
			c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
		}
	}
	const float *bias = t->bias, *res = t->res;
	__m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
	__m512 bb1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
	for (int i = 0; i < mr; i++) {
		const float *rr = res ? res + (size_t)i * t->ldres : NULL;
		store512(c + (size_t)i * ldc, c0[i], m0, bb0, t->gelu, rr);
		if (m1)
			store512(c + (size_t)i * ldc + 16, c1[i], m1, bb1, t->gelu,
				 rr ? rr + 16 : NULL);
	}
}

#define TILE512_CASE(R)                                       \
	case R:                                               \
		tile512(R, k, a, lda, bp, c, ldc, nc, t);     \
		break;

AVX512 static void tile512_any(int mr, size_t k, const float *a, size_t lda,
			       const float *bp, float *c, size_t ldc, size_t nc,
			       const tile_args *t)
{
	switch (mr) {
		TILE512_CASE(14) TILE512_CASE(13) TILE512_CASE(12) TILE512_CASE(11) TILE512_CASE(10) TILE512_CASE(9)
		TILE512_CASE(8) TILE512_CASE(7) TILE512_CASE(6) TILE512_CASE(5)
		TILE512_CASE(4) TILE512_CASE(3) TILE512_CASE(2) TILE512_CASE(1)
	default:
		break;
	}
}

/* ---------------------------------------------------------- AVX2 + FMA */
#define AVX2 __attribute__((target("avx2,fma")))
#define MR256 6

AVX2 static inline __m256 gelu256(__m256 v)
{
	__m256 x = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752440f));
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
	__m256 x2 = _mm256_mul_ps(x, x);
	__m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
	p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
	p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
	p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
	p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
	p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
	p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
	__m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
	q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
	q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
	q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
	q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
	__m256 erf = _mm256_div_ps(_mm256_mul_ps(x, p), q);
	__m256 h = _mm256_mul_ps(v, _mm256_set1_ps(0.5f));
	return _mm256_fmadd_ps(h, erf, h);
}

AVX2 static inline __m256i mask256(size_t valid)
{
	/* lanes [0, valid) set, valid in 0..8 */
	static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
				      0, 0, 0, 0, 0, 0, 0, 0};
	return _mm256_loadu_si256((const __m256i *)(m + 8 - valid));
}

AVX2 static inline void store256(float *dst, __m256 v, __m256i msk, int full,
				 __m256 bias, int gelu, const float *res)
{
	v = _mm256_add_ps(v, bias);
	if (gelu)
		v = gelu256(v);
	if (full) {
		if (res)
			v = _mm256_add_ps(v, _mm256_loadu_ps(res));
		_mm256_storeu_ps(dst, v);
	} else {
		if (res)
			v = _mm256_add_ps(v, _mm256_maskload_ps(res, msk));
		_mm256_maskstore_ps(dst, msk, v);
	}
}

/* C rows [0, mr) x 16 columns of a panel (bp points at the first of them,
 * rows NR floats apart) = epilogue(A B).  nc: valid columns of these 16. */
__attribute__((always_inline)) AVX2 static inline void
tile256(const int mr, size_t k, const float *a, size_t lda, const float *bp,
	float *c, size_t ldc, size_t nc, const tile_args *t)
{
	__m256 c0[MR256], c1[MR256];
	size_t n0 = nc < 8 ? nc : 8, n1 = nc > 8 ? nc - 8 : 0;
	__m256i m0 = mask256(n0), m1 = mask256(n1);
#pragma GCC unroll 6
	for (int i = 0; i < mr; i++) {
		c0[i] = _mm256_setzero_ps();
		c1[i] = _mm256_setzero_ps();
	}
	for (size_t kk = 0; kk < k; kk++) {
		__m256 b0 = _mm256_load_ps(bp + kk * NR);
		__m256 b1 = _mm256_load_ps(bp + kk * NR + 8);
#pragma GCC unroll 6
		for (int i = 0; i < mr; i++) {
			__m256 av = _mm256_broadcast_ss(a + (size_t)i * lda + kk);
			c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
			c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
		}
	}
	const float *bias = t->bias, *res = t->res;
	__m256 bb0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
	__m256 bb1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
#pragma GCC unroll 6
	for (int i = 0; i < mr; i++) {
		const float *rr = res ? res + (size_t)i * t->ldres : NULL;
		store256(c + (size_t)i * ldc, c0[i], m0, n0 == 8, bb0, t->gelu, rr);
		if (n1)
			store256(c + (size_t)i * ldc + 8, c1[i], m1, n1 == 8, bb1, t->gelu,
				 rr ? rr + 8 : NULL);
	}
}

#define TILE256_CASE(R)                                       \
	case R:                                               \
		tile256(R, k, a, lda, bp, c, ldc, nc, t);     \
		break;

AVX2 static void tile256_any(int mr, size_t k, const float *a, size_t lda,
			     const float *bp, float *c, size_t ldc, size_t nc,
			     const tile_args *t)
{
	switch (mr) {
		TILE256_CASE(6) TILE256_CASE(5) TILE256_CASE(4)
		TILE256_CASE(3) TILE256_CASE(2) TILE256_CASE(1)
	default:
		break;
	}
}

/* ------------------------------------------------------- row kernels */

/* exp(x) for x <= 0 (softmax arguments): Cephes' expf — x = n ln2 + r,
 * |r| <= ln2/2, degree-7 polynomial, 2^n by exponent scaling — within
 * 2 ulps of expf; x below -87 gives exp(-87) ~ 1.6e-38 instead of a
 * denormal, invisible next to the row's maximum term 1. */
AVX512 static inline __m512 exp512(__m512 x)
{
	x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
					_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

AVX512 static inline __mmask16 tail512(size_t rem)
{
	return rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1);
}

AVX512 static void softmax512(float *x, size_t n)
{
	__m512 m = _mm512_set1_ps(-INFINITY);
	for (size_t i = 0; i < n; i += 16)
		m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY),
							  tail512(n - i), x + i));
	__m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
	__m512 sum = _mm512_setzero_ps();
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = tail512(n - i);
		__m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mx));
		sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
		_mm512_mask_storeu_ps(x + i, k, e);
	}
	__m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = tail512(n - i);
		_mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
	}
}

AVX512 static void layernorm512(const float *in, float *out, const float *g,
				const float *b, size_t n, float eps)
{
	__m512 s = _mm512_setzero_ps();
	for (size_t i = 0; i < n; i += 16)
		s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail512(n - i), in + i));
	float mean = _mm512_reduce_add_ps(s) / (float)n;
	__m512 mv = _mm512_set1_ps(mean), v = _mm512_setzero_ps();
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = tail512(n - i);
		__m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, in + i), mv);
		v = _mm512_fmadd_ps(d, d, v);
	}
	float inv = 1.0f / sqrtf(_mm512_reduce_add_ps(v) / (float)n + eps);
	__m512 iv = _mm512_set1_ps(inv);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = tail512(n - i);
		__m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, in + i), mv), iv);
		d = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, b + i));
		_mm512_mask_storeu_ps(out + i, k, d);
	}
}

AVX2 static inline __m256 exp256(__m256 x)
{
	x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
				   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	/* n in [-126, 0]: 2^n is a normal float built from its exponent */
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
						       _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 static inline float hsum256(__m256 v)
{
	__m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

AVX2 static void softmax256(float *x, size_t n)
{
	float mx = x[0];
	for (size_t i = 1; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	__m256 m = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
		sum = _mm256_add_ps(sum, e);
		_mm256_storeu_ps(x + i, e);
	}
	if (i < n) {
		__m256i k = mask256(n - i);
		__m256 e = exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), m));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(k));
		sum = _mm256_add_ps(sum, e);
		_mm256_maskstore_ps(x + i, k, e);
	}
	float inv = 1.0f / hsum256(sum);
	for (size_t j = 0; j < n; j++)
		x[j] *= inv;
}

AVX2 static void layernorm256(const float *in, float *out, const float *g,
			      const float *b, size_t n, float eps)
{
	__m256 s = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		s = _mm256_add_ps(s, _mm256_loadu_ps(in + i));
	float tail = 0;
	for (size_t j = i; j < n; j++)
		tail += in[j];
	float mean = (hsum256(s) + tail) / (float)n;
	__m256 mv = _mm256_set1_ps(mean), v = _mm256_setzero_ps();
	for (i = 0; i + 8 <= n; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(in + i), mv);
		v = _mm256_fmadd_ps(d, d, v);
	}
	tail = 0;
	for (size_t j = i; j < n; j++)
		tail += (in[j] - mean) * (in[j] - mean);
	float inv = 1.0f / sqrtf((hsum256(v) + tail) / (float)n + eps);
	__m256 iv = _mm256_set1_ps(inv);
	for (i = 0; i + 8 <= n; i += 8) {
		__m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(in + i), mv), iv);
		_mm256_storeu_ps(out + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(g + i),
							   _mm256_loadu_ps(b + i)));
	}
	for (; i < n; i++)
		out[i] = (in[i] - mean) * inv * g[i] + b[i];
}
#endif /* ES_GEMM_X86 */

static void softmax_c(float *x, size_t n)
{
	float m = x[0];
	for (size_t j = 1; j < n; j++)
		m = x[j] > m ? x[j] : m;
	float sum = 0;
	for (size_t j = 0; j < n; j++) {
		x[j] = expf(x[j] - m);
		sum += x[j];
	}
	float inv = 1.0f / sum;
	for (size_t j = 0; j < n; j++)
		x[j] *= inv;
}

static void layernorm_c(const float *in, float *out, const float *g,
			const float *b, size_t n, float eps)
{
	float s = 0;
	for (size_t j = 0; j < n; j++)
		s += in[j];
	float mean = s / (float)n;
	float v = 0;
	for (size_t j = 0; j < n; j++) {
		float d = in[j] - mean;
		v += d * d;
	}
	float inv = 1.0f / sqrtf(v / (float)n + eps);
	for (size_t j = 0; j < n; j++)
		out[j] = (in[j] - mean) * inv * g[j] + b[j];
}

/* the x86 path to use for path, or SIMD_SCALAR */
static simd_path x86_path(simd_path path)
{
	if ((path == SIMD_AVX512 || path == SIMD_AVX2) && simd_kernels_for(path))
		return path;
	return SIMD_SCALAR;
}

void es_softmax_path(simd_path path, float *x, size_t n)
{
	switch (x86_path(path)) {
#ifdef ES_GEMM_X86
	case SIMD_AVX512:
		softmax512(x, n);
		break;
	case SIMD_AVX2:
		softmax256(x, n);
		break;
#endif
	default:
		softmax_c(x, n);
	}
}

void es_layernorm_path(simd_path path, const float *in, float *out,
		       const float *g, const float *b, size_t n, float eps)
{
	switch (x86_path(path)) {
#ifdef ES_GEMM_X86
	case SIMD_AVX512:
		layernorm512(in, out, g, b, n, eps);
		break;
	case SIMD_AVX2:
		layernorm256(in, out, g, b, n, eps);
		break;
#endif
	default:
		layernorm_c(in, out, g, b, n, eps);
	}
}

void es_softmax(float *x, size_t n)
{
	es_softmax_path(simd_get()->path, x, n);
}

void es_layernorm(const float *in, float *out, const float *g, const float *b,
		  size_t n, float eps)
{
	es_layernorm_path(simd_get()->path, in, out, g, b, n, eps);
}

/* Rows per block: a block of A of about BLOCK_BYTES, a multiple of mr. */
static size_t block_rows(size_t k, size_t mr)
{
	size_t rows = BLOCK_BYTES / (k * sizeof(float));
	rows = rows / mr * mr;
	return rows < mr ? mr : rows;
}

/* Blocks of rows; within a block, every panel over every tile of rows
 * (the panel stays in L2 while the block's tiles use it). */
static void run_x86(simd_path path, size_t mr, const es_gemm_b *b, size_t m,
		    const float *a, size_t lda, float *c, size_t ldc, size_t p0,
		    size_t p1, const es_gemm_epi *e)
{
#ifdef ES_GEMM_X86
	tile_args t = {0};
	t.gelu = e->act == ES_GEMM_ACT_GELU;
	t.ldres = e->ldres;
	/* the tanh form goes through epi_row after the tile, before res */
	const float *res = e->act == ES_GEMM_ACT_GELU_TANH ? NULL : e->res;
	size_t mb = block_rows(b->k, mr);
	for (size_t r0 = 0; r0 < m; r0 += mb) {
		size_t r1 = r0 + mb < m ? r0 + mb : m;
		for (size_t p = p0; p < p1; p++) {
			const float *bp = b->data + p * b->k * NR;
			size_t c0 = p * NR, nc = b->n - c0 < NR ? b->n - c0 : NR;
			t.bias = e->bias ? e->bias + c0 : NULL;
			for (size_t r = r0; r < r1; r += mr) {
				int rows = (int)(r1 - r < mr ? r1 - r : mr);
				const float *ar = a + r * lda;
				float *cr = c + r * ldc + c0;
				t.res = res ? res + r * e->ldres + c0 : NULL;
				if (path == SIMD_AVX512) {
					tile512_any(rows, b->k, ar, lda, bp, cr, ldc, nc, &t);
					continue;
				}
				tile256_any(rows, b->k, ar, lda, bp, cr, ldc,
					    nc < 16 ? nc : 16, &t);
				if (nc > 16) {
					tile_args t2 = t;
					t2.bias = t.bias ? t.bias + 16 : NULL;
					t2.res = t.res ? t.res + 16 : NULL;
					tile256_any(rows, b->k, ar, lda, bp + 16, cr + 16, ldc,
						    nc - 16, &t2);
				}
			}
			if (e->act == ES_GEMM_ACT_GELU_TANH) /* bias is in */
				for (size_t r = r0; r < r1; r++)
					epi_row(c + r * ldc + c0, c + r * ldc + c0, nc, NULL,
						e->act,
						e->res ? e->res + r * e->ldres + c0 : NULL);
		}
	}
#else
	(void)path;
	(void)mr;
	run_cblas(b, m, a, lda, c, ldc, p0, p1, e);
#endif
}

/* ---- tile shapes: measured per CPU kind, picked once ---- */

static const struct {
	const char *name;
	simd_path path;
	unsigned mr; /* rows; columns: 32 (AVX-512, a panel) or 16 (AVX2) */
} tiles[] = {
	{"avx512-12x32", SIMD_AVX512, 12},
	{"avx512-14x32", SIMD_AVX512, 14},
	{"avx512-8x32", SIMD_AVX512, 8},
	{"avx512-4x32", SIMD_AVX512, 4},
	{"avx2-6x16", SIMD_AVX2, 6},
	{"avx2-4x16", SIMD_AVX2, 4},
};
#define NTILES (sizeof tiles / sizeof tiles[0])

int es_gemm_tile_count(void)
{
	return (int)NTILES;
}

const char *es_gemm_tile_name(int t)
{
	return t >= 0 && (size_t)t < NTILES ? tiles[t].name : "cblas";
}

simd_path es_gemm_tile_path(int t)
{
	return t >= 0 && (size_t)t < NTILES ? tiles[t].path : SIMD_SCALAR;
}

int es_gemm_tile_parse(const char *name)
{
	for (size_t t = 0; t < NTILES; t++)
		if (!strcmp(name, tiles[t].name))
			return (int)t;
	return -1;
}

static int tile_index(const char *name)
{
	int t = es_gemm_tile_parse(name);
	return t < 0 ? 0 : t; /* names below are in the table */
}

/* x86 family and model as cpuid leaf 1 reports them (family 0 elsewhere). */
static void cpu_family(unsigned *vendor_amd, unsigned *family, unsigned *model)
{
	*vendor_amd = *family = *model = 0;
#ifdef ES_GEMM_X86
	unsigned a, b, c, d;
	if (!__get_cpuid(0, &a, &b, &c, &d))
		return;
	*vendor_amd = b == 0x68747541u; /* "Auth"enticAMD */
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	unsigned base = (a >> 8) & 0xf;
	*family = base == 0xf ? base + ((a >> 20) & 0xff) : base;
	*model = ((a >> 4) & 0xf) | (base >= 0x6 ? ((a >> 16) & 0xf) << 4 : 0);
#endif
}

/* The tile this CPU kind runs fastest on `path` (bench/RESULTS.md,
 * "tile shapes"): see gemm.h for the table and what was measured. */
static int default_tile(simd_path path)
{
	unsigned amd, fam, model;
	cpu_family(&amd, &fam, &model);
	(void)model;
	if (path == SIMD_AVX2)
		return tile_index("avx2-6x16");
	if (amd && fam == 0x19) /* Zen 4: 512-bit ops on 256-bit units */
		return tile_index("avx512-12x32");
	if (amd && fam >= 0x1a) /* Zen 5 */
		return tile_index("avx512-12x32");
	return tile_index("avx512-12x32");
}

static int chosen[SIMD_PATH_COUNT];
static pthread_once_t tile_once = PTHREAD_ONCE_INIT;

static void tile_init(void)
{
	for (int p = 0; p < SIMD_PATH_COUNT; p++)
		chosen[p] = p == SIMD_AVX512 || p == SIMD_AVX2 ? default_tile((simd_path)p) : -1;
	const char *env = getenv("EMBEDSRV_GEMM_TILE");
	if (!env || !*env)
		return;
	int t = es_gemm_tile_parse(env);
	if (t < 0) {
		fprintf(stderr, "embedsrv: EMBEDSRV_GEMM_TILE=%s is not a tile (", env);
		for (size_t i = 0; i < NTILES; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", tiles[i].name);
		fprintf(stderr, "); using the CPU's default\n");
		return;
	}
	if (!simd_kernels_for(tiles[t].path)) {
		fprintf(stderr, "embedsrv: EMBEDSRV_GEMM_TILE=%s needs %s, which this "
			"CPU or build lacks; using the CPU's default\n", env,
			simd_path_name(tiles[t].path));
		return;
	}
	chosen[tiles[t].path] = t;
}

int es_gemm_tile_for(simd_path path)
{
	pthread_once(&tile_once, tile_init);
	return path < SIMD_PATH_COUNT && x86_path(path) != SIMD_SCALAR ? chosen[path] : -1;
}

void es_gemm_run_tile(int t, const es_gemm_b *b, size_t m, const float *a,
		      size_t lda, float *c, size_t ldc, size_t p0, size_t p1,
		      const es_gemm_epi *epi)
{
	static const es_gemm_epi none = {0};
	if (!epi)
		epi = &none;
	if (p1 > b->panels)
		p1 = b->panels;
	if (!m || p0 >= p1)
		return;
	if (t >= 0 && (size_t)t < NTILES && x86_path(tiles[t].path) != SIMD_SCALAR)
		run_x86(tiles[t].path, tiles[t].mr, b, m, a, lda, c, ldc, p0, p1, epi);
	else
		run_cblas(b, m, a, lda, c, ldc, p0, p1, epi);
}

void es_gemm_run_path(simd_path path, const es_gemm_b *b, size_t m,
		      const float *a, size_t lda, float *c, size_t ldc,
		      size_t p0, size_t p1, const es_gemm_epi *epi)
{
	es_gemm_run_tile(es_gemm_tile_for(path), b, m, a, lda, c, ldc, p0, p1, epi);
}

void es_gemm_run(const es_gemm_b *b, size_t m, const float *a, size_t lda,
		 float *c, size_t ldc, size_t p0, size_t p1,
		 const es_gemm_epi *epi)
{
	es_gemm_run_path(simd_get()->path, b, m, a, lda, c, ldc, p0, p1, epi);
}
