//go:build cgo

package index

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <immintrin.h>

// ub[b] += q0·r0[b] + q1·r1[b] + q2·r2[b] + q3·r3[b] for b < n, in uint32
// (the caller guarantees no overflow); rows past nrows are not read.
static void rows_scalar(uint32_t *ub, long n, const uint8_t *r0, const uint8_t *r1,
		const uint8_t *r2, const uint8_t *r3, uint32_t q0, uint32_t q1, uint32_t q2, uint32_t q3, int nrows, long from) {
	for (long b = from; b < n; b++) {
		uint32_t s = q0 * r0[b];
		if (nrows > 1) s += q1 * r1[b];
		if (nrows > 2) s += q2 * r2[b];
		if (nrows > 3) s += q3 * r3[b];
		ub[b] += s;
	}
}

__attribute__((target("avx2")))
static long rows_avx2(uint32_t *ub, long n, const uint8_t *r0, const uint8_t *r1,
		const uint8_t *r2, const uint8_t *r3, uint32_t q0, uint32_t q1, uint32_t q2, uint32_t q3, int nrows) {
	__m256i Q0 = _mm256_set1_epi32((int)q0), Q1 = _mm256_set1_epi32((int)q1);
	__m256i Q2 = _mm256_set1_epi32((int)q2), Q3 = _mm256_set1_epi32((int)q3);
	long b = 0;
	for (; b + 8 <= n; b += 8) {
		__m256i acc = _mm256_loadu_si256((const __m256i *)(ub + b));
		acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q0, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r0 + b)))));
		if (nrows > 1) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q1, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r1 + b)))));
		if (nrows > 2) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q2, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r2 + b)))));
		if (nrows > 3) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q3, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r3 + b)))));
		_mm256_storeu_si256((__m256i *)(ub + b), acc);
	}
	return b;
}

static void add_rows_u8(uint32_t *ub, long n, const uint8_t *r0, const uint8_t *r1,
		const uint8_t *r2, const uint8_t *r3, uint32_t q0, uint32_t q1, uint32_t q2, uint32_t q3, int nrows) {
	static int has = -1;
	if (has < 0) has = __builtin_cpu_supports("avx2");
	long from = has ? rows_avx2(ub, n, r0, r1, r2, r3, q0, q1, q2, q3, nrows) : 0;
	rows_scalar(ub, n, r0, r1, r2, r3, q0, q1, q2, q3, nrows, from);
}
*/
import "C"

import "unsafe"

// addRowsU8 adds Σ_i q[i]·rows[i][b] to ub[b] for every block, for up to
// four 1-byte RMAX rows of len(ub) bytes (AVX2 when the CPU has it). The
// caller guarantees that no sum exceeds 2³²−1.
func addRowsU8(ub []uint32, rows [4][]byte, q [4]uint32, nrows int) {
	if len(ub) == 0 || nrows == 0 {
		return
	}
	var p [4]*C.uint8_t
	for i := range nrows {
		p[i] = (*C.uint8_t)(unsafe.Pointer(&rows[i][:len(ub)][0]))
	}
	for i := nrows; i < 4; i++ {
		p[i] = p[0] // never read
	}
	C.add_rows_u8((*C.uint32_t)(unsafe.Pointer(&ub[0])), C.long(len(ub)), p[0], p[1], p[2], p[3],
		C.uint32_t(q[0]), C.uint32_t(q[1]), C.uint32_t(q[2]), C.uint32_t(q[3]), C.int(nrows))
}
