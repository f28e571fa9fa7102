//go:build cgo

package index

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <immintrin.h>

// ub[b] = src[b] + q0·r0[b] + q1·r1[b] + q2·r2[b] + q3·r3[b] for b < n, in
// uint32 (the caller guarantees no overflow; src may be ub); rows past
// nrows are not read.
static void rows_scalar(uint32_t *ub, const uint32_t *src, long n, const uint8_t *r0, const uint8_t *r1,
		const uint8_t *r2, const uint8_t *r3, uint32_t q0, uint32_t q1, uint32_t q2, uint32_t q3, int nrows, long from) {
	for (long b = from; b < n; b++) {
		uint32_t s = q0 * r0[b];
		if (nrows > 1) s += q1 * r1[b];
		if (nrows > 2) s += q2 * r2[b];
		if (nrows > 3) s += q3 * r3[b];
		ub[b] = src[b] + s;
	}
}

__attribute__((target("avx2")))
static long rows_avx2(uint32_t *ub, const uint32_t *src, long n, const uint8_t *r0, const uint8_t *r1,
		const uint8_t *r2, const uint8_t *r3, uint32_t q0, uint32_t q1, uint32_t q2, uint32_t q3, int nrows) {
	__m256i Q0 = _mm256_set1_epi32((int)q0), Q1 = _mm256_set1_epi32((int)q1);
	__m256i Q2 = _mm256_set1_epi32((int)q2), Q3 = _mm256_set1_epi32((int)q3);
	long b = 0;
	for (; b + 8 <= n; b += 8) {
		__m256i acc = _mm256_loadu_si256((const __m256i *)(src + b));
		acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q0, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r0 + b)))));
		if (nrows > 1) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q1, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r1 + b)))));
		if (nrows > 2) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q2, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r2 + b)))));
		if (nrows > 3) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(Q3, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r3 + b)))));
		_mm256_storeu_si256((__m256i *)(ub + b), acc);
	}
	return b;
}

static void add_rows_u8(uint32_t *ub, const uint32_t *src, long n, const uint8_t *r0, const uint8_t *r1,
		const uint8_t *r2, const uint8_t *r3, uint32_t q0, uint32_t q1, uint32_t q2, uint32_t q3, int nrows) {
	static int has = -1;
	if (has < 0) has = __builtin_cpu_supports("avx2");
	long from = has ? rows_avx2(ub, src, n, r0, r1, r2, r3, q0, q1, q2, q3, nrows) : 0;
	rows_scalar(ub, src, n, r0, r1, r2, r3, q0, q1, q2, q3, nrows, from);
}

// count_buckets adds one to hist[ub[b] >> shift] for every b: four
// histograms side by side (h: 3·nbk scratch) so that runs of equal
// buckets do not wait on each other's increments. A bucket ≥ nbk (bounds
// above Σ q·max impact: a corrupt file) is counted in the last one and
// makes it return −1.
static int count_buckets(const uint32_t *ub, long n, int shift, int32_t *hist, int32_t *h, long nbk) {
	int32_t *h1 = h, *h2 = h + nbk, *h3 = h + 2 * nbk;
	for (long i = 0; i < 3 * nbk; i++) h[i] = 0;
	uint32_t last = (uint32_t)(nbk - 1), over = 0;
#define BUCKET(u) ({ uint32_t x_ = (u) >> shift; over |= x_ > last; x_ < last ? x_ : last; })
	long b = 0;
	for (; b + 4 <= n; b += 4) {
		hist[BUCKET(ub[b])]++;
		h1[BUCKET(ub[b + 1])]++;
		h2[BUCKET(ub[b + 2])]++;
		h3[BUCKET(ub[b + 3])]++;
	}
	for (; b < n; b++) hist[BUCKET(ub[b])]++;
#undef BUCKET
	for (long i = 0; i < nbk; i++) hist[i] += h1[i] + h2[i] + h3[i];
	return over ? -1 : 0;
}

// select_ge writes the b with ub[b] >= lo to out (room for n) and returns
// how many; eight at a time with AVX2 when the CPU has it.
__attribute__((target("avx2")))
static long select_ge_avx2(const uint32_t *ub, long n, uint32_t lo, int32_t *out, long *from) {
	long m = 0, b = 0;
	__m256i L = _mm256_set1_epi32((int)(lo - 1)), F = _mm256_set1_epi32((int)0x80000000);
	__m256i LF = _mm256_xor_si256(L, F);
	for (; b + 8 <= n; b += 8) {
		__m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ub + b)), F);
		int mask = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(u, LF))); // unsigned u > lo-1
		while (mask) {
			out[m++] = (int32_t)(b + __builtin_ctz(mask));
			mask &= mask - 1;
		}
	}
	*from = b;
	return m;
}

static long select_ge(const uint32_t *ub, long n, uint32_t lo, int32_t *out) {
	static int has = -1;
	if (has < 0) has = __builtin_cpu_supports("avx2");
	long m = 0, b = 0;
	if (has && lo > 0) m = select_ge_avx2(ub, n, lo, out, &b);
	for (; b < n; b++)
		if (ub[b] >= lo) out[m++] = (int32_t)b;
	return m;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/spladapt/spladapt/internal/grow"
)

// addRowsU8 sets ub[b] = src[b] + Σ_i q[i]·rows[i][b] for every block,
// for up to four 1-byte RMAX rows of at least len(ub) bytes (AVX2 when the CPU has it); src
// may be ub, len(src) ≥ len(ub). The caller guarantees that no sum
// exceeds 2³²−1.
func addRowsU8(ub, src []uint32, rows [4][]byte, q [4]uint32, nrows int) {
	if len(ub) == 0 {
		return
	}
	if nrows == 0 {
		copy(ub, src)
		return
	}
	src = src[:len(ub)]
	var p [4]*C.uint8_t
	for i := range nrows {
		p[i] = (*C.uint8_t)(unsafe.Pointer(&rows[i][:len(ub)][0]))
	}
	for i := nrows; i < 4; i++ {
		p[i] = p[0] // never read
	}
	C.add_rows_u8((*C.uint32_t)(unsafe.Pointer(&ub[0])), (*C.uint32_t)(unsafe.Pointer(&src[0])), C.long(len(ub)), p[0], p[1], p[2], p[3],
		C.uint32_t(q[0]), C.uint32_t(q[1]), C.uint32_t(q[2]), C.uint32_t(q[3]), C.int(nrows))
}

// countBuckets32 adds one to hist[u>>shift] for every u of ub and
// returns scratch grown to the 3·len(hist) counters it used; a bucket past
// hist (a bound above the query's, so a corrupt file) panics.
func countBuckets32(hist []int32, ub []uint32, shift uint, scratch []int32) []int32 {
	if len(ub) == 0 {
		return scratch
	}
	scratch = grow.To(scratch, 3*len(hist))
	if C.count_buckets((*C.uint32_t)(unsafe.Pointer(&ub[0])), C.long(len(ub)), C.int(shift),
		(*C.int32_t)(unsafe.Pointer(&hist[0])), (*C.int32_t)(unsafe.Pointer(&scratch[0])), C.long(len(hist))) != 0 {
		panic(fmt.Sprintf("block bound above the query's bound %d", len(hist)<<shift))
	}
	return scratch
}

// selectGE32 returns the indexes b of ub with ub[b] ≥ lo (lo > 0), in buf's
// memory when it has room for len(ub).
func selectGE32(buf []int32, ub []uint32, lo uint32) []int32 {
	buf = grow.To(buf, len(ub))
	if len(ub) == 0 {
		return buf
	}
	m := C.select_ge((*C.uint32_t)(unsafe.Pointer(&ub[0])), C.long(len(ub)), C.uint32_t(lo), (*C.int32_t)(unsafe.Pointer(&buf[0])))
	return buf[:m]
}
