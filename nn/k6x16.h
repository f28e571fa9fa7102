// k6x16.h — the 6×16 AVX2 register block shared by nn's fused C kernels
// (the SPLADE pooling in maxpool_cgo.go, attention in fastmath_cgo.go).
//
// Sixteen rows of one operand are packed as the vector lanes (two __m256
// per k), six rows of the other are broadcast one element at a time:
// twelve accumulators c00..c51 (row i, lanes 0–7 and 8–15), two loads, six
// broadcasts and twelve fused multiply-adds per k — the register budget of
// AVX2's sixteen ymm registers.
#ifndef NN_K6X16_H
#define NN_K6X16_H

#include <stdint.h>
#include <immintrin.h>

enum { K6_LANES = 16, K6_ROWS = 6 };

// k6_has_avx2_fma reports whether the CPU runs the kernels (checked once).
static inline int k6_has_avx2_fma(void) {
	static int has = -1;
	if (has < 0) {
		__builtin_cpu_init();
		has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return has;
}

// k6_pack copies rows (n of them, leading dimension ld, width c) into
// panels of 16: dst[p·16c + k·16 + i] = src[(16p+i)·ld + k]. The rows past n
// in the last panel repeat row n−1 (harmless for a maximum, and ignored by
// callers that only read the first n results).
static inline void k6_pack(float *dst, const float *src, long ld, int n, int c) {
	int np = (n + K6_LANES - 1) / K6_LANES;
	for (int p = 0; p < np; p++) {
		float *d = dst + (long)p * K6_LANES * c;
		for (int i = 0; i < K6_LANES; i++) {
			int r = p * K6_LANES + i;
			if (r >= n) r = n - 1;
			const float *s = src + (long)r * ld;
			for (int k = 0; k < c; k++) d[(long)k * K6_LANES + i] = s[k];
		}
	}
}

// K6_ZERO declares the twelve accumulators, zeroed.
#define K6_ZERO() \
	__m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(); \
	__m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(); \
	__m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(); \
	__m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(); \
	__m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(); \
	__m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps()

// K6_FMA is one k step: lanes L0 (0–7) and L1 (8–15) times the broadcast
// scalars at B0..B5, added into the accumulators.
#define K6_FMA(L0, L1, B0, B1, B2, B3, B4, B5) do { \
	__m256 k6a0_ = (L0), k6a1_ = (L1), k6b_; \
	k6b_ = _mm256_broadcast_ss(B0); c00 = _mm256_fmadd_ps(k6a0_, k6b_, c00); c01 = _mm256_fmadd_ps(k6a1_, k6b_, c01); \
	k6b_ = _mm256_broadcast_ss(B1); c10 = _mm256_fmadd_ps(k6a0_, k6b_, c10); c11 = _mm256_fmadd_ps(k6a1_, k6b_, c11); \
	k6b_ = _mm256_broadcast_ss(B2); c20 = _mm256_fmadd_ps(k6a0_, k6b_, c20); c21 = _mm256_fmadd_ps(k6a1_, k6b_, c21); \
	k6b_ = _mm256_broadcast_ss(B3); c30 = _mm256_fmadd_ps(k6a0_, k6b_, c30); c31 = _mm256_fmadd_ps(k6a1_, k6b_, c31); \
	k6b_ = _mm256_broadcast_ss(B4); c40 = _mm256_fmadd_ps(k6a0_, k6b_, c40); c41 = _mm256_fmadd_ps(k6a1_, k6b_, c41); \
	k6b_ = _mm256_broadcast_ss(B5); c50 = _mm256_fmadd_ps(k6a0_, k6b_, c50); c51 = _mm256_fmadd_ps(k6a1_, k6b_, c51); \
} while (0)

// K6_PANEL_STEP is K6_FMA on a packed panel a at step k with six row
// pointers r0..r5.
#define K6_PANEL_STEP(a, k, r0, r1, r2, r3, r4, r5) \
	K6_FMA(_mm256_loadu_ps((a) + (long)(k) * K6_LANES), _mm256_loadu_ps((a) + (long)(k) * K6_LANES + 8), \
		(r0) + (k), (r1) + (k), (r2) + (k), (r3) + (k), (r4) + (k), (r5) + (k))

// K6_ACC is the accumulators as acc[row][half], for per-row loops.
#define K6_ACC(name) __m256 name[K6_ROWS][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}}

#endif
