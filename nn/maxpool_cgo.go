//go:build cgo

package nn

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <immintrin.h>

// The fused inference kernel of the SPLADE head: for one sequence's packed
// positions and a range of vocabulary rows, the maximum over positions of
// z_t·E_v, without ever storing a logit. Positions are packed in panels of
// 16 (the vector lanes), vocabulary rows are taken 6 at a time straight
// from the row-major embedding matrix (one broadcast per row and k), so the
// embeddings need no packing: 12 accumulators, 2 position loads and 6
// broadcasts per k — the register budget of a 6×16 AVX2 micro-kernel.

enum { MP_PANEL = 16, MP_ROWS = 6 };

// mp_pack copies rows (n of them, leading dimension ld, width c) into
// panels of 16: dst[p·16c + k·16 + i] = src[(16p+i)·ld + k]. The rows past n
// in the last panel repeat row n−1, which leaves every maximum unchanged.
static void mp_pack(float *dst, const float *src, long ld, int n, int c) {
	int np = (n + MP_PANEL - 1) / MP_PANEL;
	for (int p = 0; p < np; p++) {
		float *d = dst + (long)p * MP_PANEL * c;
		for (int i = 0; i < MP_PANEL; i++) {
			int r = p * MP_PANEL + i;
			if (r >= n) r = n - 1;
			const float *s = src + (long)r * ld;
			for (int k = 0; k < c; k++) d[(long)k * MP_PANEL + i] = s[k];
		}
	}
}

// MP_STEP is one k step of the 6×16 kernel: two loads of positions, six
// broadcasts of embedding entries, twelve fused multiply-adds.
#define MP_STEP(k) do { \
	__m256 a0 = _mm256_loadu_ps(a + (long)(k) * MP_PANEL); \
	__m256 a1 = _mm256_loadu_ps(a + (long)(k) * MP_PANEL + 8); \
	__m256 b; \
	b = _mm256_broadcast_ss(e0 + (k)); c00 = _mm256_fmadd_ps(a0, b, c00); c01 = _mm256_fmadd_ps(a1, b, c01); \
	b = _mm256_broadcast_ss(e1 + (k)); c10 = _mm256_fmadd_ps(a0, b, c10); c11 = _mm256_fmadd_ps(a1, b, c11); \
	b = _mm256_broadcast_ss(e2 + (k)); c20 = _mm256_fmadd_ps(a0, b, c20); c21 = _mm256_fmadd_ps(a1, b, c21); \
	b = _mm256_broadcast_ss(e3 + (k)); c30 = _mm256_fmadd_ps(a0, b, c30); c31 = _mm256_fmadd_ps(a1, b, c31); \
	b = _mm256_broadcast_ss(e4 + (k)); c40 = _mm256_fmadd_ps(a0, b, c40); c41 = _mm256_fmadd_ps(a1, b, c41); \
	b = _mm256_broadcast_ss(e5 + (k)); c50 = _mm256_fmadd_ps(a0, b, c50); c51 = _mm256_fmadd_ps(a1, b, c51); \
} while (0)

// mp_block_avx2 sets mx[i] = max over the np panels at pa of z·e_i for the
// nv ≤ 6 embedding rows starting at e (rows past nv repeat the last one).
// When pf is not NULL, the first panel also prefetches the 6·c floats at
// pf (the next block of rows, contiguous in the row-major matrix), one
// cache line per k step, so that the next block does not wait for memory.
__attribute__((target("avx2,fma")))
static void mp_block_avx2(const float *pa, int np, const float *e, int nv, int c, const float *pf, float *mx) {
	const float *e0 = e;
	const float *e1 = e + (long)(nv > 1 ? 1 : 0) * c;
	const float *e2 = e + (long)(nv > 2 ? 2 : nv - 1) * c;
	const float *e3 = e + (long)(nv > 3 ? 3 : nv - 1) * c;
	const float *e4 = e + (long)(nv > 4 ? 4 : nv - 1) * c;
	const float *e5 = e + (long)(nv > 5 ? 5 : nv - 1) * c;
	int nl = pf ? (6 * c + 15) / 16 : 0; // cache lines to prefetch (< c)
	__m256 r[MP_ROWS];
	for (int i = 0; i < MP_ROWS; i++) r[i] = _mm256_set1_ps(-INFINITY);
	for (int p = 0; p < np; p++) {
		const float *a = pa + (long)p * MP_PANEL * c;
		__m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
		__m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
		__m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
		__m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
		__m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
		__m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
		int k = 0;
		if (p == 0)
			for (; k < nl; k++) {
				_mm_prefetch((const char *)(pf + (long)k * 16), _MM_HINT_T0);
				MP_STEP(k);
			}
		for (; k < c; k++) MP_STEP(k);
		r[0] = _mm256_max_ps(r[0], _mm256_max_ps(c00, c01));
		r[1] = _mm256_max_ps(r[1], _mm256_max_ps(c10, c11));
		r[2] = _mm256_max_ps(r[2], _mm256_max_ps(c20, c21));
		r[3] = _mm256_max_ps(r[3], _mm256_max_ps(c30, c31));
		r[4] = _mm256_max_ps(r[4], _mm256_max_ps(c40, c41));
		r[5] = _mm256_max_ps(r[5], _mm256_max_ps(c50, c51));
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
	const float *e0 = e;
	const float *e1 = e + (long)(nv > 1 ? 1 : 0) * c;
	const float *e2 = e + (long)(nv > 2 ? 2 : nv - 1) * c;
	const float *e3 = e + (long)(nv > 3 ? 3 : nv - 1) * c;
	const float *e4 = e + (long)(nv > 4 ? 4 : nv - 1) * c;
	const float *e5 = e + (long)(nv > 5 ? 5 : nv - 1) * c;
	int nl = pf ? (6 * c + 15) / 16 : 0;
	__m256 r[MP_ROWS][2];
	__m256i ix[MP_ROWS][2];
	for (int i = 0; i < MP_ROWS; i++) {
		r[i][0] = r[i][1] = _mm256_set1_ps(-INFINITY);
		ix[i][0] = ix[i][1] = _mm256_set1_epi32(-1);
	}
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	for (int p = 0; p < np; p++) {
		const float *a = pa + (long)p * MP_PANEL * c;
		__m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
		__m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
		__m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
		__m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
		__m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
		__m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
		int k = 0;
		if (p == 0)
			for (; k < nl; k++) {
				_mm_prefetch((const char *)(pf + (long)k * 16), _MM_HINT_T0);
				MP_STEP(k);
			}
		for (; k < c; k++) MP_STEP(k);
		__m256i p0 = _mm256_add_epi32(lane, _mm256_set1_epi32(p * MP_PANEL));
		__m256i p1 = _mm256_add_epi32(p0, _mm256_set1_epi32(8));
		__m256 acc[MP_ROWS][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
		for (int i = 0; i < MP_ROWS; i++) {
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
		for (int v = v0; v < v1; v += MP_ROWS) {
			int nv = v1 - v < MP_ROWS ? v1 - v : MP_ROWS;
			const float *pf = v + MP_ROWS < v1 ? emb + (long)(v + MP_ROWS) * c : NULL;
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

// mp_scalar is the same computation for CPUs without AVX2 and FMA.
static void mp_scalar(const float *pa, int np, const float *emb, int c, int v0, int v1, float *mx) {
	for (int v = v0; v < v1; v++) {
		const float *e = emb + (long)v * c;
		float m = -INFINITY;
		for (int p = 0; p < np; p++) {
			const float *a = pa + (long)p * MP_PANEL * c;
			float acc[MP_PANEL] = {0};
			for (int k = 0; k < c; k++)
				for (int i = 0; i < MP_PANEL; i++) acc[i] += a[(long)k * MP_PANEL + i] * e[k];
			for (int i = 0; i < MP_PANEL; i++) m = acc[i] > m ? acc[i] : m;
		}
		mx[v] = m;
	}
}

static int mp_has_avx2(void) {
	static int has = -1;
	if (has < 0) {
		__builtin_cpu_init();
		has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return has;
}

// mp_pool sets mx[b·ldm + v] = max_t z[b,t]·emb[v] for the sequences of pa
// (panel offsets poff[b], panel counts pn[b]; pn[b] = 0 leaves the row
// untouched) and the vocabulary rows v0..v1−1, and, when am is not NULL,
// am[b·ldm + v] = the packed row of that maximum. It returns 0, doing
// nothing, when am is wanted on a CPU without AVX2 and FMA.
static int mp_pool(const float *pa, const int64_t *poff, const int32_t *pn, int nseq,
		const float *emb, int c, int v0, int v1, float *mx, int32_t *am, long ldm) {
	if (mp_has_avx2()) {
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
// panels of maxPoolPanel rows (see the C mp_pack); dst needs
// ceil(n/16)·16·c floats.
func packPanels(dst, src []float32, ld, n, c int) {
	if n == 0 || c == 0 {
		return
	}
	_, _ = dst[((n+maxPoolPanel-1)/maxPoolPanel)*maxPoolPanel*c-1], src[(n-1)*ld+c-1]
	C.mp_pack((*C.float)(unsafe.Pointer(&dst[0])), (*C.float)(unsafe.Pointer(&src[0])), C.long(ld), C.int(n), C.int(c))
}

// maxPoolRange sets mx[b·ldm+v] = max over the packed positions of
// sequence b of z·emb[v], for v in [v0, v1), and, unless am is nil,
// am[b·ldm+v] = the packed row of the first maximum (see the C mp_pool). It
// reports false, doing nothing, when am is wanted and the CPU lacks AVX2.
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
	return C.mp_pool((*C.float)(unsafe.Pointer(&pa[0])), (*C.int64_t)(unsafe.Pointer(&poff[0])), (*C.int32_t)(unsafe.Pointer(&pn[0])), C.int(len(pn)),
		(*C.float)(unsafe.Pointer(&emb[0])), C.int(c), C.int(v0), C.int(v1), (*C.float)(unsafe.Pointer(&mx[0])), pam, C.long(ldm)) != 0
}

// fusedArgmax reports whether maxPoolRange can return the argmax here.
func fusedArgmax() bool { return C.mp_has_avx2() != 0 }

// fusedMaxPool reports whether SpladePoolInfer runs the fused kernel.
const fusedMaxPool = true
