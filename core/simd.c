/*
 * simd.c — kernels and runtime dispatch; see simd.h.
 *
 * Each x86 path is compiled with __attribute__((target(...))) so the file
 * builds without -mavx2 and the code only runs where the CPU says it can.
 * Tails are handled with masked loads (AVX2 maskload, AVX-512 mask registers)
 * or a scalar loop (NEON), never by requiring n % 16 == 0.
 *
 * Accumulation uses several independent accumulators to hide FMA latency;
 * the scalar path does the same (8 partial sums) so its rounding error and
 * speed stay reasonable without -ffast-math.
 */
#include "simd.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define ES_X86 1
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#define ES_NEON 1
#include <arm_neon.h>
#endif

/* ---------------------------------------------------------------- scalar */

static float dot_scalar(const float *a, const float *b, size_t n)
{
	float s[8] = {0};
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			s[j] += a[i + j] * b[i + j];
	float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	for (; i < n; i++)
		t += a[i] * b[i];
	return t;
}

static float l2sq_scalar(const float *a, const float *b, size_t n)
{
	float s[8] = {0};
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) {
			float d = a[i + j] - b[i + j];
			s[j] += d * d;
		}
	float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	for (; i < n; i++) {
		float d = a[i] - b[i];
		t += d * d;
	}
	return t;
}

static void axpy_scalar(float alpha, const float *x, float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += alpha * x[i];
}

static void scale_scalar(float *x, float alpha, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= alpha;
}

static void dot_batch_scalar(const float *q, const float *rows, size_t nrows,
			     size_t stride, size_t n, float *out)
{
	for (size_t r = 0; r < nrows; r++)
		out[r] = dot_scalar(q, rows + r * stride, n);
}

static int32_t dot_i8_scalar(const int8_t *a, const int8_t *b, size_t n)
{
	int32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (int32_t)a[i] * (int32_t)b[i];
	return s;
}

/* Float query x int8 codes (moved here from index/hnsw.c unchanged, so an
 * int8 index scores exactly as before on the scalar and AVX2 paths). */
static float dot_f_i8_scalar(const float *q, const int8_t *c, size_t n)
{
	float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		a0 += q[i] * c[i];
		a1 += q[i + 1] * c[i + 1];
		a2 += q[i + 2] * c[i + 2];
		a3 += q[i + 3] * c[i + 3];
	}
	for (; i < n; i++)
		a0 += q[i] * c[i];
	return (a0 + a1) + (a2 + a3);
}

static float l2_f_i8_scalar(const float *q, const int8_t *c, float s, size_t n)
{
	float a0 = 0, a1 = 0;
	size_t i = 0;
	for (; i + 2 <= n; i += 2) {
		float d0 = q[i] - s * c[i], d1 = q[i + 1] - s * c[i + 1];
		a0 += d0 * d0;
		a1 += d1 * d1;
	}
	for (; i < n; i++) {
		float d = q[i] - s * c[i];
		a0 += d * d;
	}
	return a0 + a1;
}

/* The cosine from the three sums of every path: 0 when a norm is zero (or
 * not a number); the product of the squared norms in double, so it cannot
 * overflow where each fits a float. */
static float cos_finish(float ab, float aa, float bb)
{
	if (!(aa > 0.0f) || !(bb > 0.0f))
		return 0.0f;
	return (float)((double)ab / sqrt((double)aa * (double)bb));
}

static float cosine_scalar(const float *a, const float *b, size_t n)
{
	float ab[4] = {0}, aa[4] = {0}, bb[4] = {0};
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++) {
			ab[j] += a[i + j] * b[i + j];
			aa[j] += a[i + j] * a[i + j];
			bb[j] += b[i + j] * b[i + j];
		}
	float sab = (ab[0] + ab[1]) + (ab[2] + ab[3]);
	float saa = (aa[0] + aa[1]) + (aa[2] + aa[3]);
	float sbb = (bb[0] + bb[1]) + (bb[2] + bb[3]);
	for (; i < n; i++) {
		sab += a[i] * b[i];
		saa += a[i] * a[i];
		sbb += b[i] * b[i];
	}
	return cos_finish(sab, saa, sbb);
}

static const simd_kernels k_scalar = {
	SIMD_SCALAR, "scalar", dot_scalar, l2sq_scalar, axpy_scalar,
	scale_scalar, dot_batch_scalar, dot_i8_scalar, dot_f_i8_scalar,
	l2_f_i8_scalar, cosine_scalar,
};

/* ------------------------------------------------------------------ AVX2 */
#ifdef ES_X86
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256i avx2_tail_mask(size_t rem)
{
	/* lanes [0, rem) set, rem in 1..7 */
	static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
				      0, 0, 0, 0, 0, 0, 0, 0};
	return _mm256_loadu_si256((const __m256i *)(m + 8 - rem));
}

AVX2 static inline float avx2_hsum(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v);
	__m128 hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	__m128 sh = _mm_movehdup_ps(lo);
	lo = _mm_add_ps(lo, sh);
	sh = _mm_movehl_ps(sh, lo);
	lo = _mm_add_ss(lo, sh);
	return _mm_cvtss_f32(lo);
}

AVX2 static float dot_avx2(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	if (i < n) {
		__m256i m = avx2_tail_mask(n - i);
		s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
				     _mm256_maskload_ps(b + i, m), s1);
	}
	return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2 static float l2sq_avx2(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		__m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
		__m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
		s2 = _mm256_fmadd_ps(d2, d2, s2);
		s3 = _mm256_fmadd_ps(d3, d3, s3);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		s0 = _mm256_fmadd_ps(d, d, s0);
	}
	if (i < n) {
		__m256i m = avx2_tail_mask(n - i);
		__m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
					 _mm256_maskload_ps(b + i, m));
		s1 = _mm256_fmadd_ps(d, d, s1);
	}
	return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2 static void axpy_avx2(float alpha, const float *x, float *y, size_t n)
{
	__m256 va = _mm256_set1_ps(alpha);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
							_mm256_loadu_ps(y + i)));
	if (i < n) {
		__m256i m = avx2_tail_mask(n - i);
		__m256 r = _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m),
					   _mm256_maskload_ps(y + i, m));
		_mm256_maskstore_ps(y + i, m, r);
	}
}

AVX2 static void scale_avx2(float *x, float alpha, size_t n)
{
	__m256 va = _mm256_set1_ps(alpha);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
	if (i < n) {
		__m256i m = avx2_tail_mask(n - i);
		_mm256_maskstore_ps(x + i, m, _mm256_mul_ps(va, _mm256_maskload_ps(x + i, m)));
	}
}

/* Four rows at a time share each load of the query. */
AVX2 static void dot_batch_avx2(const float *q, const float *rows, size_t nrows,
				size_t stride, size_t n, float *out)
{
	size_t r = 0;
	__m256i tm = avx2_tail_mask(n % 8 ? n % 8 : 1);
	for (; r + 4 <= nrows; r += 4) {
		const float *r0 = rows + r * stride, *r1 = r0 + stride;
		const float *r2 = r1 + stride, *r3 = r2 + stride;
		__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
		__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
		size_t i = 0;
		for (; i + 8 <= n; i += 8) {
			__m256 vq = _mm256_loadu_ps(q + i);
			s0 = _mm256_fmadd_ps(vq, _mm256_loadu_ps(r0 + i), s0);
			s1 = _mm256_fmadd_ps(vq, _mm256_loadu_ps(r1 + i), s1);
			s2 = _mm256_fmadd_ps(vq, _mm256_loadu_ps(r2 + i), s2);
			s3 = _mm256_fmadd_ps(vq, _mm256_loadu_ps(r3 + i), s3);
		}
		if (i < n) {
			__m256 vq = _mm256_maskload_ps(q + i, tm);
			s0 = _mm256_fmadd_ps(vq, _mm256_maskload_ps(r0 + i, tm), s0);
			s1 = _mm256_fmadd_ps(vq, _mm256_maskload_ps(r1 + i, tm), s1);
			s2 = _mm256_fmadd_ps(vq, _mm256_maskload_ps(r2 + i, tm), s2);
			s3 = _mm256_fmadd_ps(vq, _mm256_maskload_ps(r3 + i, tm), s3);
		}
		out[r] = avx2_hsum(s0);
		out[r + 1] = avx2_hsum(s1);
		out[r + 2] = avx2_hsum(s2);
		out[r + 3] = avx2_hsum(s3);
	}
	/* Leftover rows with the same per-row accumulation as above, so a row's
	 * score never depends on its position in the batch (exact ties stay
	 * ties, e.g. duplicate rows in index/flat). */
	for (; r < nrows; r++) {
		const float *r0 = rows + r * stride;
		__m256 s0 = _mm256_setzero_ps();
		size_t i = 0;
		for (; i + 8 <= n; i += 8)
			s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(r0 + i), s0);
		if (i < n)
			s0 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, tm),
					     _mm256_maskload_ps(r0 + i, tm), s0);
		out[r] = avx2_hsum(s0);
	}
}

/* 32 products of int8 pairs summed into 8 int32 lanes: maddubs takes an
 * unsigned and a signed operand, so |a| x (b with a's sign); with both in
 * [-127, 127] a pair's sum is at most 2 * 127 * 127 < 2^15 (no saturation). */
AVX2 static inline __m256i avx2_dot_s8_32(__m256i va, __m256i vb, __m256i acc)
{
	__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(va, va), _mm256_sign_epi8(vb, va));
	return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

AVX2 static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n)
{
	__m256i acc = _mm256_setzero_si256();
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
		acc = avx2_dot_s8_32(_mm256_loadu_si256((const __m256i *)(a + i)),
				     _mm256_loadu_si256((const __m256i *)(b + i)), acc);
	if (i < n) {
		int8_t ta[32] = {0}, tb[32] = {0};
		memcpy(ta, a + i, n - i);
		memcpy(tb, b + i, n - i);
		acc = avx2_dot_s8_32(_mm256_loadu_si256((const __m256i *)ta),
				     _mm256_loadu_si256((const __m256i *)tb), acc);
	}
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

/* 16 codes of c sign-extended to two 8-float halves (one 128-bit load). */
AVX2 static inline void avx2_codes16(const int8_t *c, __m256 *lo, __m256 *hi)
{
	__m128i b = _mm_loadu_si128((const __m128i *)c);
	*lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
	*hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
}

/* The float x int8 kernels' horizontal sum: its own addition order (not
 * avx2_hsum's), kept from the original kernels in index/hnsw.c so int8
 * scores stay bitwise the same as before the move. */
AVX2 static inline float avx2_hsum_f_i8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

/* 16 codes per step; scalar tail as the original kernels. */
AVX2 static float dot_f_i8_avx2(const float *q, const int8_t *c, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 c0, c1;
		avx2_codes16(c + i, &c0, &c1);
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), c0, acc0);
		acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), c1, acc1);
	}
	float t = avx2_hsum_f_i8(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++)
		t += q[i] * c[i];
	return t;
}

AVX2 static float l2_f_i8_avx2(const float *q, const int8_t *c, float s, size_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m256 sv = _mm256_set1_ps(s);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 c0, c1;
		avx2_codes16(c + i, &c0, &c1);
		__m256 d0 = _mm256_fnmadd_ps(sv, c0, _mm256_loadu_ps(q + i));
		__m256 d1 = _mm256_fnmadd_ps(sv, c1, _mm256_loadu_ps(q + i + 8));
		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
		acc1 = _mm256_fmadd_ps(d1, d1, acc1);
	}
	float t = avx2_hsum_f_i8(_mm256_add_ps(acc0, acc1));
	for (; i < n; i++) {
		float d = q[i] - s * c[i];
		t += d * d;
	}
	return t;
}

AVX2 static float cosine_avx2(const float *a, const float *b, size_t n)
{
	__m256 ab = _mm256_setzero_ps(), aa = _mm256_setzero_ps();
	__m256 bb = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
		ab = _mm256_fmadd_ps(x, y, ab);
		aa = _mm256_fmadd_ps(x, x, aa);
		bb = _mm256_fmadd_ps(y, y, bb);
	}
	if (i < n) {
		__m256i m = avx2_tail_mask(n - i);
		__m256 x = _mm256_maskload_ps(a + i, m), y = _mm256_maskload_ps(b + i, m);
		ab = _mm256_fmadd_ps(x, y, ab);
		aa = _mm256_fmadd_ps(x, x, aa);
		bb = _mm256_fmadd_ps(y, y, bb);
	}
	return cos_finish(avx2_hsum(ab), avx2_hsum(aa), avx2_hsum(bb));
}

static const simd_kernels k_avx2 = {
	SIMD_AVX2, "avx2", dot_avx2, l2sq_avx2, axpy_avx2, scale_avx2,
	dot_batch_avx2, dot_i8_avx2, dot_f_i8_avx2, l2_f_i8_avx2, cosine_avx2,
};

/* --------------------------------------------------------------- AVX-512 */
#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline __mmask16 avx512_tail(size_t rem)
{
	return (__mmask16)((1u << rem) - 1u);
}

AVX512 static float dot_avx512(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
	if (i < n) {
		__mmask16 m = avx512_tail(n - i);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
				     _mm512_maskz_loadu_ps(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float l2sq_avx512(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	if (i < n) {
		__mmask16 m = avx512_tail(n - i);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
					 _mm512_maskz_loadu_ps(m, b + i));
		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static void axpy_avx512(float alpha, const float *x, float *y, size_t n)
{
	__m512 va = _mm512_set1_ps(alpha);
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i),
							_mm512_loadu_ps(y + i)));
	if (i < n) {
		__mmask16 m = avx512_tail(n - i);
		__m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
					   _mm512_maskz_loadu_ps(m, y + i));
		_mm512_mask_storeu_ps(y + i, m, r);
	}
}

AVX512 static void scale_avx512(float *x, float alpha, size_t n)
{
	__m512 va = _mm512_set1_ps(alpha);
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(x + i, _mm512_mul_ps(va, _mm512_loadu_ps(x + i)));
	if (i < n) {
		__mmask16 m = avx512_tail(n - i);
		_mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)));
	}
}

AVX512 static void dot_batch_avx512(const float *q, const float *rows,
				    size_t nrows, size_t stride, size_t n,
				    float *out)
{
	size_t r = 0;
	__mmask16 tm = avx512_tail(n % 16);
	for (; r + 4 <= nrows; r += 4) {
		const float *r0 = rows + r * stride, *r1 = r0 + stride;
		const float *r2 = r1 + stride, *r3 = r2 + stride;
		__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
		__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
		size_t i = 0;
		for (; i + 16 <= n; i += 16) {
			__m512 vq = _mm512_loadu_ps(q + i);
			s0 = _mm512_fmadd_ps(vq, _mm512_loadu_ps(r0 + i), s0);
			s1 = _mm512_fmadd_ps(vq, _mm512_loadu_ps(r1 + i), s1);
			s2 = _mm512_fmadd_ps(vq, _mm512_loadu_ps(r2 + i), s2);
			s3 = _mm512_fmadd_ps(vq, _mm512_loadu_ps(r3 + i), s3);
		}
		if (i < n) {
			__m512 vq = _mm512_maskz_loadu_ps(tm, q + i);
			s0 = _mm512_fmadd_ps(vq, _mm512_maskz_loadu_ps(tm, r0 + i), s0);
			s1 = _mm512_fmadd_ps(vq, _mm512_maskz_loadu_ps(tm, r1 + i), s1);
			s2 = _mm512_fmadd_ps(vq, _mm512_maskz_loadu_ps(tm, r2 + i), s2);
			s3 = _mm512_fmadd_ps(vq, _mm512_maskz_loadu_ps(tm, r3 + i), s3);
		}
		out[r] = _mm512_reduce_add_ps(s0);
		out[r + 1] = _mm512_reduce_add_ps(s1);
		out[r + 2] = _mm512_reduce_add_ps(s2);
		out[r + 3] = _mm512_reduce_add_ps(s3);
	}
	/* Same per-row accumulation as above: position-independent scores. */
	for (; r < nrows; r++) {
		const float *r0 = rows + r * stride;
		__m512 s0 = _mm512_setzero_ps();
		size_t i = 0;
		for (; i + 16 <= n; i += 16)
			s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(r0 + i), s0);
		if (i < n)
			s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, q + i),
					     _mm512_maskz_loadu_ps(tm, r0 + i), s0);
		out[r] = _mm512_reduce_add_ps(s0);
	}
}

/* As avx2_dot_s8_32, 64 bytes at a time (AVX-512BW: byte masks, abs,
 * maddubs); a's sign moves onto b by negating b where a < 0. */
#define AVX512BW __attribute__((target("avx512f,avx512bw")))
AVX512BW static inline __m512i avx512_dot_s8_64(__m512i va, __m512i vb, __m512i acc)
{
	__m512i nb = _mm512_mask_sub_epi8(vb, _mm512_movepi8_mask(va), _mm512_setzero_si512(), vb);
	__m512i p = _mm512_maddubs_epi16(_mm512_abs_epi8(va), nb);
	return _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
}

AVX512BW static int32_t dot_i8_avx512(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i acc = _mm512_setzero_si512();
	size_t i = 0;
	for (; i + 64 <= n; i += 64)
		acc = avx512_dot_s8_64(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i), acc);
	if (i < n) {
		__mmask64 m = ~0ull >> (64 - (n - i));
		acc = avx512_dot_s8_64(_mm512_maskz_loadu_epi8(m, a + i),
				       _mm512_maskz_loadu_epi8(m, b + i), acc);
	}
	return _mm512_reduce_add_epi32(acc);
}

/* 16 codes of c sign-extended to 16 floats.  AVX-512F alone has no masked
 * byte load (that is AVX-512BW), so the tail goes through a zeroed copy. */
AVX512 static inline __m512 avx512_codes(const int8_t *c)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)c)));
}

AVX512 static inline __m512 avx512_codes_tail(const int8_t *c, size_t rem)
{
	int8_t buf[16] = {0};
	memcpy(buf, c, rem);
	return avx512_codes(buf);
}

AVX512 static float dot_f_i8_avx512(const float *q, const int8_t *c, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), avx512_codes(c + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), avx512_codes(c + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 32), avx512_codes(c + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 48), avx512_codes(c + i + 48), s3);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), avx512_codes(c + i), s0);
	if (i < n) {
		__mmask16 m = avx512_tail(n - i);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i),
				     avx512_codes_tail(c + i, n - i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float l2_f_i8_avx512(const float *q, const int8_t *c, float s, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	__m512 sv = _mm512_set1_ps(s);
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m512 d0 = _mm512_fnmadd_ps(sv, avx512_codes(c + i), _mm512_loadu_ps(q + i));
		__m512 d1 = _mm512_fnmadd_ps(sv, avx512_codes(c + i + 16), _mm512_loadu_ps(q + i + 16));
		__m512 d2 = _mm512_fnmadd_ps(sv, avx512_codes(c + i + 32), _mm512_loadu_ps(q + i + 32));
		__m512 d3 = _mm512_fnmadd_ps(sv, avx512_codes(c + i + 48), _mm512_loadu_ps(q + i + 48));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 d = _mm512_fnmadd_ps(sv, avx512_codes(c + i), _mm512_loadu_ps(q + i));
		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	if (i < n) {
		/* masked-off lanes: q = 0 and c = 0, so d = 0 */
		__mmask16 m = avx512_tail(n - i);
		__m512 d = _mm512_fnmadd_ps(sv, avx512_codes_tail(c + i, n - i),
					    _mm512_maskz_loadu_ps(m, q + i));
		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float cosine_avx512(const float *a, const float *b, size_t n)
{
	__m512 ab = _mm512_setzero_ps(), aa = _mm512_setzero_ps();
	__m512 bb = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 x = _mm512_loadu_ps(a + i), y = _mm512_loadu_ps(b + i);
		ab = _mm512_fmadd_ps(x, y, ab);
		aa = _mm512_fmadd_ps(x, x, aa);
		bb = _mm512_fmadd_ps(y, y, bb);
	}
	if (i < n) {
		__mmask16 m = avx512_tail(n - i);
		__m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
		ab = _mm512_fmadd_ps(x, y, ab);
		aa = _mm512_fmadd_ps(x, x, aa);
		bb = _mm512_fmadd_ps(y, y, bb);
	}
	return cos_finish(_mm512_reduce_add_ps(ab), _mm512_reduce_add_ps(aa),
			  _mm512_reduce_add_ps(bb));
}

static const simd_kernels k_avx512 = {
	SIMD_AVX512, "avx512", dot_avx512, l2sq_avx512, axpy_avx512,
	scale_avx512, dot_batch_avx512, dot_i8_avx512, dot_f_i8_avx512,
	l2_f_i8_avx512, cosine_avx512,
};
#endif /* ES_X86 */

/* ------------------------------------------------------------------ NEON */
#ifdef ES_NEON
static float dot_neon(const float *a, const float *b, size_t n)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
	float32x4_t s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
		s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
		s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
		s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
	}
	for (; i + 4 <= n; i += 4)
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
	float t = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
	for (; i < n; i++)
		t += a[i] * b[i];
	return t;
}

static float l2sq_neon(const float *a, const float *b, size_t n)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
		float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
		s0 = vfmaq_f32(s0, d0, d0);
		s1 = vfmaq_f32(s1, d1, d1);
	}
	float t = vaddvq_f32(vaddq_f32(s0, s1));
	for (; i < n; i++) {
		float d = a[i] - b[i];
		t += d * d;
	}
	return t;
}

static void axpy_neon(float alpha, const float *x, float *y, size_t n)
{
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
	for (; i < n; i++)
		y[i] += alpha * x[i];
}

static void scale_neon(float *x, float alpha, size_t n)
{
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), alpha));
	for (; i < n; i++)
		x[i] *= alpha;
}

static void dot_batch_neon(const float *q, const float *rows, size_t nrows,
			   size_t stride, size_t n, float *out)
{
	for (size_t r = 0; r < nrows; r++)
		out[r] = dot_neon(q, rows + r * stride, n);
}

static int32_t dot_i8_neon(const int8_t *a, const int8_t *b, size_t n)
{
	int32x4_t acc = vdupq_n_s32(0);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		int16x8_t p = vmull_s8(vld1_s8(a + i), vld1_s8(b + i));
		acc = vpadalq_s16(acc, p);
	}
	int32_t t = vaddvq_s32(acc);
	for (; i < n; i++)
		t += (int32_t)a[i] * (int32_t)b[i];
	return t;
}

/* 8 codes per step: widened s8 -> s16 -> s32, converted to two float32x4. */
static float dot_f_i8_neon(const float *q, const int8_t *c, size_t n)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		int16x8_t w = vmovl_s8(vld1_s8(c + i));
		float32x4_t c0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
		float32x4_t c1 = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w)));
		s0 = vfmaq_f32(s0, vld1q_f32(q + i), c0);
		s1 = vfmaq_f32(s1, vld1q_f32(q + i + 4), c1);
	}
	float t = vaddvq_f32(vaddq_f32(s0, s1));
	for (; i < n; i++)
		t += q[i] * c[i];
	return t;
}

static float l2_f_i8_neon(const float *q, const int8_t *c, float s, size_t n)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
	float32x4_t sv = vdupq_n_f32(s);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		int16x8_t w = vmovl_s8(vld1_s8(c + i));
		float32x4_t c0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
		float32x4_t c1 = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w)));
		/* vfmsq_f32(a, b, c) = a - b*c */
		float32x4_t d0 = vfmsq_f32(vld1q_f32(q + i), sv, c0);
		float32x4_t d1 = vfmsq_f32(vld1q_f32(q + i + 4), sv, c1);
		s0 = vfmaq_f32(s0, d0, d0);
		s1 = vfmaq_f32(s1, d1, d1);
	}
	float t = vaddvq_f32(vaddq_f32(s0, s1));
	for (; i < n; i++) {
		float d = q[i] - s * c[i];
		t += d * d;
	}
	return t;
}

static float cosine_neon(const float *a, const float *b, size_t n)
{
	float32x4_t ab = vdupq_n_f32(0), aa = vdupq_n_f32(0), bb = vdupq_n_f32(0);
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		float32x4_t x = vld1q_f32(a + i), y = vld1q_f32(b + i);
		ab = vfmaq_f32(ab, x, y);
		aa = vfmaq_f32(aa, x, x);
		bb = vfmaq_f32(bb, y, y);
	}
	float sab = vaddvq_f32(ab), saa = vaddvq_f32(aa), sbb = vaddvq_f32(bb);
	for (; i < n; i++) {
		sab += a[i] * b[i];
		saa += a[i] * a[i];
		sbb += b[i] * b[i];
	}
	return cos_finish(sab, saa, sbb);
}

static const simd_kernels k_neon = {
	SIMD_NEON, "neon", dot_neon, l2sq_neon, axpy_neon, scale_neon,
	dot_batch_neon, dot_i8_neon, dot_f_i8_neon, l2_f_i8_neon, cosine_neon,
};
#endif

/* -------------------------------------------------------------- dispatch */

static const char *const path_names[SIMD_PATH_COUNT] = {
	"scalar", "avx2", "avx512", "neon",
};

const char *simd_path_name(simd_path path)
{
	return (unsigned)path < SIMD_PATH_COUNT ? path_names[path] : "unknown";
}

int simd_path_parse(const char *name)
{
	for (int p = 0; p < SIMD_PATH_COUNT; p++)
		if (name && strcmp(name, path_names[p]) == 0)
			return p;
	return -1;
}

const simd_kernels *simd_kernels_for(simd_path path)
{
	switch (path) {
	case SIMD_SCALAR:
		return &k_scalar;
#ifdef ES_X86
	case SIMD_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
			       ? &k_avx2 : NULL;
	case SIMD_AVX512:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") &&
			       __builtin_cpu_supports("avx512bw") ? &k_avx512 : NULL;
#endif
#ifdef ES_NEON
	case SIMD_NEON:
		return &k_neon;
#endif
	default:
		return NULL;
	}
}

void simd_compiled_paths(char *buf, size_t len)
{
	snprintf(buf, len, "scalar"
#ifdef ES_X86
		 ",avx2,avx512"
#endif
#ifdef ES_NEON
		 ",neon"
#endif
	);
}

static const simd_kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void simd_select(void)
{
	const simd_kernels *k = NULL;
	const char *env = getenv("EMBEDSRV_SIMD");
	if (env && *env && strcmp(env, "auto") != 0) {
		int p = simd_path_parse(env);
		if (p < 0)
			fprintf(stderr, "embedsrv: EMBEDSRV_SIMD=%s is not one of "
				"scalar|avx2|avx512|neon|auto; choosing automatically\n", env);
		else if (!(k = simd_kernels_for((simd_path)p)))
			fprintf(stderr, "embedsrv: EMBEDSRV_SIMD=%s is not available on "
				"this CPU/build; choosing automatically\n", env);
	}
	if (!k) {
		/* Best first.  AVX-512 wins on the kernels we have measured
		 * (bench/kernels); AVX2 is the fallback on older x86-64. */
		static const simd_path order[] = {SIMD_AVX512, SIMD_AVX2, SIMD_NEON};
		for (size_t i = 0; !k && i < sizeof order / sizeof order[0]; i++)
			k = simd_kernels_for(order[i]);
		if (!k)
			k = &k_scalar;
	}
	__atomic_store_n(&active, k, __ATOMIC_RELEASE);
}

const simd_kernels *simd_get(void)
{
	const simd_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
	if (__builtin_expect(k != NULL, 1))
		return k;
	pthread_once(&active_once, simd_select);
	return active;
}

float simd_norm(const float *x, size_t n)
{
	return sqrtf(simd_get()->dot(x, x, n));
}

float simd_normalize(float *x, size_t n)
{
	float nrm = simd_norm(x, n);
	if (!(nrm > 0.0f) || !isfinite(nrm))
		return 0.0f;
	simd_get()->scale(x, 1.0f / nrm, n);
	return nrm;
}

float simd_normalize_f64(float *x, size_t n)
{
	double ss = 0;
	for (size_t j = 0; j < n; j++)
		ss += (double)x[j] * x[j];
	if (!(ss > 0) || !isfinite(ss))
		return 0.0f;
	double nrm = sqrt(ss);
	simd_get()->scale(x, (float)(1.0 / nrm), n);
	return (float)nrm;
}
