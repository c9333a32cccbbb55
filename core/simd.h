/*
 * simd.h — float32 (and float x int8) vector kernels with runtime CPU dispatch.
 *
 * Every kernel exists as a decent scalar version and, where compiled in,
 * AVX2+FMA, AVX-512F (x86-64) and NEON (AArch64) versions.  The path is chosen
 * once, on first use, from the CPU's features (__builtin_cpu_supports), never
 * from compile flags alone: the binary runs on any x86-64.  The environment
 * variable EMBEDSRV_SIMD=scalar|avx2|avx512|neon overrides the choice (for
 * tests and benchmarks); an override the CPU cannot run is refused with a
 * warning on stderr and the auto choice is used.
 *
 * All kernels accept any length n (tails are handled inside each path) and any
 * alignment.  Pointers may not alias unless stated.
 *
 * Threading: the dispatch table is filled once (pthread_once) and read-only
 * afterwards; all kernels are reentrant.
 */
#ifndef ES_SIMD_H
#define ES_SIMD_H

#include <stddef.h>
#include <stdint.h>

typedef enum simd_path {
	SIMD_SCALAR = 0,
	SIMD_AVX2 = 1,   /* AVX2 + FMA */
	SIMD_AVX512 = 2, /* AVX-512F */
	SIMD_NEON = 3,
	SIMD_PATH_COUNT
} simd_path;

typedef struct simd_kernels {
	simd_path path;
	const char *name;
	/* sum a[i]*b[i] */
	float (*dot)(const float *a, const float *b, size_t n);
	/* sum (a[i]-b[i])^2 */
	float (*l2sq)(const float *a, const float *b, size_t n);
	/* y[i] += alpha * x[i] */
	void (*axpy)(float alpha, const float *x, float *y, size_t n);
	/* x[i] *= alpha */
	void (*scale)(float *x, float alpha, size_t n);
	/* out[r] = dot(q, rows + r*stride), r < nrows (stride in floats, >= n).
	 * A row's result is bitwise the same whatever its position r and
	 * whatever nrows (so equal rows tie exactly); it may differ from
	 * dot() in the last bits (different accumulation order). */
	void (*dot_batch)(const float *q, const float *rows, size_t nrows,
			  size_t stride, size_t n, float *out);
	/* sum a[i]*b[i] over int8 codes in [-127, 127] (what an int8 index
	 * stores; -128 is never a code), exact in int32 (n <= 2^17).  x86
	 * uses maddubs (unsigned x signed pairs): |a| x (b with a's sign). */
	int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t n);
	/* sum q[i]*c[i]: a float query against int8 codes (the asymmetric
	 * distance of an int8 index: only the stored side is quantised) */
	float (*dot_f_i8)(const float *q, const int8_t *c, size_t n);
	/* sum (q[i] - s*c[i])^2: squared L2 from a float query to the
	 * dequantised vector s*c */
	float (*l2_f_i8)(const float *q, const int8_t *c, float s, size_t n);
	/* a.b / (|a| |b|) in one pass; 0 when either vector is zero */
	float (*cosine)(const float *a, const float *b, size_t n);
} simd_kernels;

/* The kernels selected for this process (initialises on first call). */
const simd_kernels *simd_get(void);

/* The kernels for one path, or NULL if that path is not compiled in or this
 * CPU cannot run it.  Used by tests and benchmarks to exercise every path. */
const simd_kernels *simd_kernels_for(simd_path path);

/* Name of a path ("scalar", "avx2", "avx512", "neon"). */
const char *simd_path_name(simd_path path);

/* Parse a path name; returns -1 if unknown. */
int simd_path_parse(const char *name);

/* Write a comma-separated list of the compiled-in paths into buf. */
void simd_compiled_paths(char *buf, size_t len);

/* Convenience wrappers over simd_get(). */
static inline float simd_dot(const float *a, const float *b, size_t n)
{
	return simd_get()->dot(a, b, n);
}
static inline float simd_l2sq(const float *a, const float *b, size_t n)
{
	return simd_get()->l2sq(a, b, n);
}
static inline void simd_axpy(float alpha, const float *x, float *y, size_t n)
{
	simd_get()->axpy(alpha, x, y, n);
}
static inline void simd_scale(float *x, float alpha, size_t n)
{
	simd_get()->scale(x, alpha, n);
}
static inline float simd_cosine(const float *a, const float *b, size_t n)
{
	return simd_get()->cosine(a, b, n);
}
static inline void simd_dot_batch(const float *q, const float *rows,
				  size_t nrows, size_t stride, size_t n,
				  float *out)
{
	simd_get()->dot_batch(q, rows, nrows, stride, n, out);
}

/* Euclidean norm of x. */
float simd_norm(const float *x, size_t n);

/* Scale x to unit L2 norm in place; returns the norm it had.  A zero (or
 * non-finite-norm) vector is left unchanged and 0 is returned. */
float simd_normalize(float *x, size_t n);

/* The same rounded as numpy rounds a float32 vector's normalisation: the
 * sum of squares in double, one float multiplier (float)(1 / sqrt(sum)).
 * core/eval needs it so that its analogy answers match gensim's to the
 * last tie, and core/bert_encoder's output rows keep the rounding they
 * always had; it is slower (a scalar double loop), so vector search should not use it. */
float simd_normalize_f64(float *x, size_t n);

#endif
