//go:build cgo

package nn

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "k6x16.h"

// The fused kernel of the SPLADE head: for one sequence's packed positions
// and a range of vocabulary rows, the maximum over positions of z_t·E_v
// (and, for training, its position), without ever storing a logit.
// Positions are packed in panels of 16 (the vector lanes, k6_pack),
// vocabulary rows are taken 6 at a time straight from the row-major
// embedding matrix (one broadcast per row and k), so the embeddings need no
// packing: the 6×16 register block of k6x16.h.

// MP_SETUP points e0..e5 at the nv ≤ 6 embedding rows starting at e (rows
// past nv repeat the last one) and sets nl, the cache lines of the next
// block (pf, contiguous in the row-major matrix) to prefetch, < c.
#define MP_SETUP(e, nv, c, pf) \
	const float *e0 = (e); \
	const float *e1 = (e) + (long)((nv) > 1 ? 1 : 0) * (c); \
	const float *e2 = (e) + (long)((nv) > 2 ? 2 : (nv) - 1) * (c); \
	const float *e3 = (e) + (long)((nv) > 3 ? 3 : (nv) - 1) * (c); \
	const float *e4 = (e) + (long)((nv) > 4 ? 4 : (nv) - 1) * (c); \
	const float *e5 = (e) + (long)((nv) > 5 ? 5 : (nv) - 1) * (c); \
	int nl = (pf) ? (6 * (c) + 15) / 16 : 0

// K6_LANES_DOT declares the accumulators and fills them with panel p of pa
// against e0..e5; the first panel also prefetches the next block, one cache
// line per k step, so that it does not wait for memory.
#define K6_LANES_DOT(pa, p, c, pf) \
	K6_ZERO(); \
	do { \
		const float *a = (pa) + (long)(p) * K6_LANES * (c); \
		int k = 0; \
		if ((p) == 0) \
			for (; k < nl; k++) { \
				_mm_prefetch((const char *)((pf) + (long)k * 16), _MM_HINT_T0); \
				K6_PANEL_STEP(a, k, e0, e1, e2, e3, e4, e5); \
			} \
		for (; k < (c); k++) K6_PANEL_STEP(a, k, e0, e1, e2, e3, e4, e5); \
	} while (0)

// mp_block_avx2 sets mx[i] = max over the np panels at pa of z·e_i for the
// nv ≤ 6 embedding rows starting at e; pf (or NULL) is the next block.
__attribute__((target("avx2,fma")))
static void mp_block_avx2(const float *pa, int np, const float *e, int nv, int c, const float *pf, float *mx) {
	MP_SETUP(e, nv, c, pf);
	__m256 r[K6_ROWS];
	for (int i = 0; i < K6_ROWS; i++) r[i] = _mm256_set1_ps(-INFINITY);
	for (int p = 0; p < np; p++) {
		K6_LANES_DOT(pa, p, c, pf);
		K6_ACC(acc);
		for (int i = 0; i < K6_ROWS; i++) r[i] = _mm256_max_ps(r[i], _mm256_max_ps(acc[i][0], acc[i][1]));
	}
	for (int i = 0; i < nv; i++) {
		float t[8];
		_mm256_storeu_ps(t, r[i]);
		float m = t[0];
		for (int j = 1; j < 8; j++) m = t[j] > m ? t[j] : m;
		mx[i] = m;
	}
}

// mp_block_arg_avx2 is mp_block_avx2 that also sets am[i] to the packed
// row (0-based position among the sequence's packed rows) of the maximum,
// the first such row on ties. Each vector lane keeps its own running
// maximum and row (strictly greater replaces, so a lane keeps its earliest
// row); the lanes are merged at the end, smaller row first on ties.
__attribute__((target("avx2,fma")))
static void mp_block_arg_avx2(const float *pa, int np, const float *e, int nv, int c, const float *pf, float *mx, int32_t *am) {
	MP_SETUP(e, nv, c, pf);
	__m256 r[K6_ROWS][2];
	__m256i ix[K6_ROWS][2];
	for (int i = 0; i < K6_ROWS; i++) {
		r[i][0] = r[i][1] = _mm256_set1_ps(-INFINITY);
		ix[i][0] = ix[i][1] = _mm256_set1_epi32(-1);
	}
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	for (int p = 0; p < np; p++) {
		K6_LANES_DOT(pa, p, c, pf);
		K6_ACC(acc);
		__m256i p0 = _mm256_add_epi32(lane, _mm256_set1_epi32(p * K6_LANES));
		__m256i p1 = _mm256_add_epi32(p0, _mm256_set1_epi32(8));
		for (int i = 0; i < K6_ROWS; i++) {
			__m256 g0 = _mm256_cmp_ps(acc[i][0], r[i][0], _CMP_GT_OQ);
			__m256 g1 = _mm256_cmp_ps(acc[i][1], r[i][1], _CMP_GT_OQ);
			r[i][0] = _mm256_blendv_ps(r[i][0], acc[i][0], g0);
			r[i][1] = _mm256_blendv_ps(r[i][1], acc[i][1], g1);
			ix[i][0] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(ix[i][0]), _mm256_castsi256_ps(p0), g0));
			ix[i][1] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(ix[i][1]), _mm256_castsi256_ps(p1), g1));
		}
	}
	for (int i = 0; i < nv; i++) {
		float t[16];
		int32_t q[16];
		_mm256_storeu_ps(t, r[i][0]);
		_mm256_storeu_ps(t + 8, r[i][1]);
		_mm256_storeu_si256((__m256i *)q, ix[i][0]);
		_mm256_storeu_si256((__m256i *)(q + 8), ix[i][1]);
		float m = t[0];
		int32_t at = q[0];
		for (int j = 1; j < 16; j++)
			if (t[j] > m || (t[j] == m && q[j] >= 0 && (at < 0 || q[j] < at))) {
				m = t[j];
				at = q[j];
			}
		mx[i] = m;
		am[i] = at;
	}
}

// mp_avx2 runs mp_pool's work on AVX2: sequences in chunks whose packed
// positions fit in about half of a 1 MiB L2 (so that they stay there while
// every block of embedding rows passes over them), each block of 6 rows
// read from memory once per chunk and prefetched while the previous one
// computes.
__attribute__((target("avx2,fma")))
static void mp_avx2(const float *pa, const int64_t *poff, const int32_t *pn, int nseq,
		const float *emb, int c, int v0, int v1, float *mx, int32_t *am, long ldm) {
	int chunk = 8192 / c; // panels per chunk: 16·c·4 bytes each, ~512 KiB
	if (chunk < 1) chunk = 1;
	for (int b0 = 0; b0 < nseq;) {
		int b1 = b0, tot = 0;
		while (b1 < nseq && (b1 == b0 || tot + pn[b1] <= chunk)) tot += pn[b1++];
		for (int v = v0; v < v1; v += K6_ROWS) {
			int nv = v1 - v < K6_ROWS ? v1 - v : K6_ROWS;
			const float *pf = v + K6_ROWS < v1 ? emb + (long)(v + K6_ROWS) * c : NULL;
			for (int b = b0; b < b1; b++) {
				if (pn[b] == 0) continue;
				if (am)
					mp_block_arg_avx2(pa + poff[b], pn[b], emb + (long)v * c, nv, c, b == b0 ? pf : NULL, mx + (long)b * ldm + v, am + (long)b * ldm + v);
				else
					mp_block_avx2(pa + poff[b], pn[b], emb + (long)v * c, nv, c, b == b0 ? pf : NULL, mx + (long)b * ldm + v);
			}
		}
		b0 = b1;
	}
}

// The AVX-512 twins of the three functions above: the 6×64 block of
// k6_tile512 (four panels of 16 positions against six embedding rows, the
// same rows and prefetch as the AVX2 block), then a 6×32 or 6×16 block for
// the last one to three panels. Each lane keeps its running maximum (and
// row) over the panels in order, as in the AVX2 kernels, so both give the
// same results bit for bit (for finite logits: the maxima are merged in
// another order, which only a NaN could tell apart).

// MP512_TILES runs BODY(NP) over the np panels at pa in tiles of NP = 4,
// then one tile of the remaining 1–3; p is the tile's first panel and acc
// its accumulators; the first tile prefetches the next block.
#define MP512_TILES(BODY) do { \
	const float *rows_[K6_ROWS] = {e0, e1, e2, e3, e4, e5}; \
	__m512 acc[K6_ROWS][4]; \
	int p = 0; \
	for (; p + 4 <= np; p += 4) { \
		k6_tile512(acc, 4, pa + (long)p * K6_LANES * c, K6_LANES, (long)K6_LANES * c, c, rows_, pf, p == 0 ? nl : 0); \
		BODY(4); \
	} \
	int nl_ = p == 0 ? nl : 0; \
	switch (np - p) { \
	case 3: k6_tile512(acc, 3, pa + (long)p * K6_LANES * c, K6_LANES, (long)K6_LANES * c, c, rows_, pf, nl_); BODY(3); break; \
	case 2: k6_tile512(acc, 2, pa + (long)p * K6_LANES * c, K6_LANES, (long)K6_LANES * c, c, rows_, pf, nl_); BODY(2); break; \
	case 1: k6_tile512(acc, 1, pa + (long)p * K6_LANES * c, K6_LANES, (long)K6_LANES * c, c, rows_, pf, nl_); BODY(1); break; \
	} \
} while (0)

K6_TARGET512
static void mp_block_avx512(const float *pa, int np, const float *e, int nv, int c, const float *pf, float *mx) {
	MP_SETUP(e, nv, c, pf);
	__m512 r[K6_ROWS];
	for (int i = 0; i < K6_ROWS; i++) r[i] = _mm512_set1_ps(-INFINITY);
#define MP512_MAX(NP) \
	_Pragma("GCC unroll 6") for (int i = 0; i < K6_ROWS; i++) \
		_Pragma("GCC unroll 4") for (int j = 0; j < (NP); j++) r[i] = _mm512_max_ps(r[i], acc[i][j])
	MP512_TILES(MP512_MAX);
#undef MP512_MAX
	for (int i = 0; i < nv; i++) mx[i] = _mm512_reduce_max_ps(r[i]);
}

K6_TARGET512
static void mp_block_arg_avx512(const float *pa, int np, const float *e, int nv, int c, const float *pf, float *mx, int32_t *am) {
	MP_SETUP(e, nv, c, pf);
	__m512 r[K6_ROWS];
	__m512i ix[K6_ROWS];
	for (int i = 0; i < K6_ROWS; i++) {
		r[i] = _mm512_set1_ps(-INFINITY);
		ix[i] = _mm512_set1_epi32(-1);
	}
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	// Panels in order, strictly greater replaces: each lane keeps its
	// earliest row, as mp_block_arg_avx2.
#define MP512_ARG(NP) \
	_Pragma("GCC unroll 4") for (int j = 0; j < (NP); j++) { \
		__m512i pj = _mm512_add_epi32(lane, _mm512_set1_epi32((p + j) * K6_LANES)); \
		_Pragma("GCC unroll 6") for (int i = 0; i < K6_ROWS; i++) { \
			__mmask16 g = _mm512_cmp_ps_mask(acc[i][j], r[i], _CMP_GT_OQ); \
			r[i] = _mm512_mask_mov_ps(r[i], g, acc[i][j]); \
			ix[i] = _mm512_mask_mov_epi32(ix[i], g, pj); \
		} \
	}
	MP512_TILES(MP512_ARG);
#undef MP512_ARG
	for (int i = 0; i < nv; i++) {
		float t[16];
		int32_t q[16];
		_mm512_storeu_ps(t, r[i]);
		_mm512_storeu_si512((void *)q, ix[i]);
		float m = t[0];
		int32_t at = q[0];
		for (int j = 1; j < 16; j++)
			if (t[j] > m || (t[j] == m && q[j] >= 0 && (at < 0 || q[j] < at))) {
				m = t[j];
				at = q[j];
			}
		mx[i] = m;
		am[i] = at;
	}
}

// mp_avx512 is mp_avx2 with the AVX-512 blocks: the same chunks of
// sequences and the same order over embedding blocks.
K6_TARGET512
static void mp_avx512(const float *pa, const int64_t *poff, const int32_t *pn, int nseq,
		const float *emb, int c, int v0, int v1, float *mx, int32_t *am, long ldm) {
	int chunk = 8192 / c;
	if (chunk < 1) chunk = 1;
	for (int b0 = 0; b0 < nseq;) {
		int b1 = b0, tot = 0;
		while (b1 < nseq && (b1 == b0 || tot + pn[b1] <= chunk)) tot += pn[b1++];
		for (int v = v0; v < v1; v += K6_ROWS) {
			int nv = v1 - v < K6_ROWS ? v1 - v : K6_ROWS;
			const float *pf = v + K6_ROWS < v1 ? emb + (long)(v + K6_ROWS) * c : NULL;
			for (int b = b0; b < b1; b++) {
				if (pn[b] == 0) continue;
				if (am)
					mp_block_arg_avx512(pa + poff[b], pn[b], emb + (long)v * c, nv, c, b == b0 ? pf : NULL, mx + (long)b * ldm + v, am + (long)b * ldm + v);
				else
					mp_block_avx512(pa + poff[b], pn[b], emb + (long)v * c, nv, c, b == b0 ? pf : NULL, mx + (long)b * ldm + v);
			}
		}
		b0 = b1;
	}
}

// mp_scalar is the same computation for CPUs without AVX2 and FMA.
static void mp_scalar(const float *pa, int np, const float *emb, int c, int v0, int v1, float *mx) {
	for (int v = v0; v < v1; v++) {
		const float *e = emb + (long)v * c;
		float m = -INFINITY;
		for (int p = 0; p < np; p++) {
			const float *a = pa + (long)p * K6_LANES * c;
			float acc[K6_LANES] = {0};
			for (int k = 0; k < c; k++)
				for (int i = 0; i < K6_LANES; i++) acc[i] += a[(long)k * K6_LANES + i] * e[k];
			for (int i = 0; i < K6_LANES; i++) m = acc[i] > m ? acc[i] : m;
		}
		mx[v] = m;
	}
}


// mp_pool sets mx[b·ldm + v] = max_t z[b,t]·emb[v] for the sequences of pa
// (panel offsets poff[b], panel counts pn[b]; pn[b] = 0 leaves the row
// untouched) and the vocabulary rows v0..v1−1, and, when am is not NULL,
// am[b·ldm + v] = the packed row of that maximum, with the kernels of
// level (K6_*, at most k6_cpu_level()). It returns 0, doing nothing, when
// am is wanted at K6_SCALAR.
static int mp_pool(int level, const float *pa, const int64_t *poff, const int32_t *pn, int nseq,
		const float *emb, int c, int v0, int v1, float *mx, int32_t *am, long ldm) {
	if (level >= K6_AVX512) {
		mp_avx512(pa, poff, pn, nseq, emb, c, v0, v1, mx, am, ldm);
		return 1;
	}
	if (level >= K6_AVX2) {
		mp_avx2(pa, poff, pn, nseq, emb, c, v0, v1, mx, am, ldm);
		return 1;
	}
	if (am) return 0;
	for (int b = 0; b < nseq; b++)
		if (pn[b] > 0) mp_scalar(pa + poff[b], pn[b], emb, c, v0, v1, mx + (long)b * ldm);
	return 1;
}
*/
import "C"

import "unsafe"

// packPanels packs n rows of src (leading dimension ld, width c) into
// panels of maxPoolPanel rows (see the C k6_pack); dst needs
// ceil(n/16)·16·c floats.
func packPanels(dst, src []float32, ld, n, c int) {
	if n == 0 || c == 0 {
		return
	}
	_, _ = dst[((n+maxPoolPanel-1)/maxPoolPanel)*maxPoolPanel*c-1], src[(n-1)*ld+c-1]
	C.k6_pack((*C.float)(unsafe.Pointer(&dst[0])), (*C.float)(unsafe.Pointer(&src[0])), C.long(ld), C.int(n), C.int(c))
}

// maxPoolRange sets mx[b·ldm+v] = max over the packed positions of
// sequence b of z·emb[v], for v in [v0, v1), and, unless am is nil,
// am[b·ldm+v] = the packed row of the first maximum (see the C mp_pool). It
// reports false, doing nothing, when am is wanted and the CPU lacks AVX2.
// The kernels are those of the level in force (SetKernels).
func maxPoolRange(pa []float32, poff []int64, pn []int32, emb []float32, c, v0, v1 int, mx []float32, am []int32, ldm int) bool {
	if len(pn) == 0 || v1 <= v0 {
		return true
	}
	_, _ = emb[v1*c-1], mx[(len(pn)-1)*ldm+v1-1]
	var pam *C.int32_t
	if am != nil {
		_ = am[(len(pn)-1)*ldm+v1-1]
		pam = (*C.int32_t)(unsafe.Pointer(&am[0]))
	}
	return C.mp_pool(C.int(kernelLevel), (*C.float)(unsafe.Pointer(&pa[0])), (*C.int64_t)(unsafe.Pointer(&poff[0])), (*C.int32_t)(unsafe.Pointer(&pn[0])), C.int(len(pn)),
		(*C.float)(unsafe.Pointer(&emb[0])), C.int(c), C.int(v0), C.int(v1), (*C.float)(unsafe.Pointer(&mx[0])), pam, C.long(ldm)) != 0
}

// fusedArgmax reports whether maxPoolRange can return the argmax here.
func fusedArgmax() bool { return kernelLevel >= levelAVX2 }

// fusedMaxPool reports whether SpladePoolInfer runs the fused kernel.
const fusedMaxPool = true
