// k6x16.h — the register blocks shared by nn's fused C kernels (the SPLADE
// pooling in maxpool_cgo.go, attention in fastmath_cgo.go): the 6×16 AVX2
// block below and, at the end, its AVX-512 widening k6_tile512 (6 rows ×
// up to 64 lanes), with the run-time choice between them (k6_cpu_level).
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
#include <cpuid.h>

enum { K6_LANES = 16, K6_ROWS = 6 };

// Kernel levels, chosen per call by the Go side (kernels.go): every level
// computes each dot product as the same chain of fused multiply-adds in k
// order, so the levels give bit-identical dot products.
enum { K6_SCALAR = 0, K6_AVX2 = 1, K6_AVX512 = 2 };

// k6_has_avx2_fma reports whether the CPU runs the kernels (checked once).
static inline int k6_has_avx2_fma(void) {
	static int has = -1;
	if (has < 0) {
		__builtin_cpu_init();
		has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return has;
}

// k6_os_zmm reports whether the OS saves the AVX-512 state: CPUID.1:ECX
// OSXSAVE set and XCR0 enabling SSE, AVX, opmask, ZMM_Hi256 and Hi16_ZMM
// (bits 1, 2, 5, 6, 7). A CPU with avx512f under an OS (or hypervisor)
// that does not save zmm registers must not run the AVX-512 kernels.
static inline int k6_os_zmm(void) {
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	(void)hi;
	return (lo & 0xe6) == 0xe6;
}

// k6_cpu_level is the best kernel level this CPU and OS run: K6_AVX512
// needs avx512f, avx512bw, avx512vl, FMA and the zmm state (k6_os_zmm);
// K6_AVX2 needs AVX2 and FMA.
static inline int k6_cpu_level(void) {
	__builtin_cpu_init();
	if (!k6_has_avx2_fma()) return K6_SCALAR;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
			__builtin_cpu_supports("avx512vl") && k6_os_zmm())
		return K6_AVX512;
	return K6_AVX2;
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

// The AVX-512 block. A 512-bit FMA does the work of two 256-bit ones: at
// the same flop rate on Zen 4 (which splits it in halves), at up to twice
// it on Intel cores with two 512-bit FMA units. Either way the wider block
// needs fewer loads, broadcasts and loop steps per FMA, and the 32 zmm
// registers hold 24 accumulators: six broadcast rows, as in the AVX2 block,
// times NP ≤ 4 vectors of 16 lanes.
#define K6_TARGET512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

// k6_tile512 sets acc[i][j] = Σ_{k<kn} a[k·astep + j·pstride + 0..15] · r[i][k]
// for i < 6 and j < NP (NP a constant 1..4 where it is inlined, so that acc
// lives in registers). The first nl steps also prefetch one cache line of
// pf each (pf may be NULL when nl is 0).
static inline __attribute__((always_inline)) K6_TARGET512
void k6_tile512(__m512 acc[K6_ROWS][4], const int NP, const float *a, long astep, long pstride, int kn,
		const float *const r[K6_ROWS], const float *pf, int nl) {
	__m512 c[K6_ROWS][4];
#pragma GCC unroll 6
	for (int i = 0; i < K6_ROWS; i++)
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) c[i][j] = _mm512_setzero_ps();
	const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5];
#define K6_STEP512(k) do { \
		const float *ak_ = a + (long)(k) * astep; \
		__m512 l_[4]; \
		_Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) if (j < NP) l_[j] = _mm512_loadu_ps(ak_ + j * pstride); \
		K6_ROW512(0, r0, k); K6_ROW512(1, r1, k); K6_ROW512(2, r2, k); \
		K6_ROW512(3, r3, k); K6_ROW512(4, r4, k); K6_ROW512(5, r5, k); \
	} while (0)
	// One broadcast, consumed at once: 24 accumulators, NP loads and one
	// broadcast fit the 32 registers.
#define K6_ROW512(i, ri, k) do { \
		__m512 b_ = _mm512_set1_ps((ri)[k]); \
		_Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) \
			if (j < NP) c[i][j] = _mm512_fmadd_ps(l_[j], b_, c[i][j]); \
	} while (0)
	int k = 0;
	for (; k < nl; k++) {
		_mm_prefetch((const char *)(pf + (long)k * 16), _MM_HINT_T0);
		K6_STEP512(k);
	}
	for (; k < kn; k++) K6_STEP512(k);
#undef K6_STEP512
#undef K6_ROW512
#pragma GCC unroll 6
	for (int i = 0; i < K6_ROWS; i++)
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) acc[i][j] = c[i][j];
}

#endif
