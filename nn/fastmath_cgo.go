//go:build cgo

package nn

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
// No FP traps lets gcc if-convert the selects below, so the loops vectorise
// (values are unchanged: no reassociation, no fast-math).
#pragma GCC optimize("no-trapping-math")
// sqrt need not set errno (values unchanged), so that it vectorises too.
#pragma GCC optimize("no-math-errno")
#include <stdint.h>
#include <cblas.h>
#include <string.h>
#include <math.h>
#include "k6x16.h"

// fold_max_rows folds rows of x into running maxima: for row i, the maxima
// of sequence seg[i] (at mx + seg[i]*ldm) take x[i,j] where it is strictly
// larger, and am records position tpos[i]. Branch-free so that it
// vectorises; target_clones picks AVX2 at load time where available.
__attribute__((target_clones("arch=x86-64-v3","default")))
static void fold_max_rows(float *mx, int32_t *am, long ldm, const float *x, long ldx,
		const int32_t *seg, const int32_t *tpos, int rows, int n) {
	for (int i = 0; i < rows; i++) {
		float *restrict m = mx + (long)seg[i] * ldm;
		int32_t *restrict a = am + (long)seg[i] * ldm;
		const float *restrict xr = x + (long)i * ldx;
		int32_t t = tpos[i];
		for (int j = 0; j < n; j++) {
			float v = xr[j];
			int gt = v > m[j];
			m[j] = gt ? v : m[j];
			a[j] = gt ? t : a[j];
		}
	}
}

#include <string.h>
#include <math.h>

// The C twins of fastmath.go's exp64, expf32 and normCDF: same formulas and
// coefficients, written branch-free so that gcc vectorises the loops.

static inline double c_exp64(double a) {
	const double shift = 6755399441055744.0; // 0x1.8p52
	const double ln2hi = 6.93147180369123816490e-01, ln2lo = 1.90821492927058770002e-10;
	double kd = a * 1.4426950408889634 + shift;
	double k = kd - shift;
	double r = a - k * ln2hi - k * ln2lo;
	double p = 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320+r*(1.0/362880+r*(1.0/3628800))))))))));
	int64_t bits;
	memcpy(&bits, &kd, 8);
	bits = (bits + 1023) << 52;
	double s;
	memcpy(&s, &bits, 8);
	return p * s;
}

static inline float c_expf32(float x) {
	const float shift = 12582912.0f; // 0x1.8p23
	const float ln2hi = 0.693145751953125f, ln2lo = 1.428606765330187e-06f;
	float xc = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
	float kd = xc * 1.44269504088896341f + shift;
	float k = kd - shift;
	float r = xc - k * ln2hi - k * ln2lo;
	float p = 1 + r*(1+r*(1.0f/2+r*(1.0f/6+r*(1.0f/24+r*(1.0f/120+r*(1.0f/720+r*(1.0f/5040)))))));
	int32_t bits;
	memcpy(&bits, &kd, 4);
	bits = (bits + 127) << 23;
	float s;
	memcpy(&s, &bits, 4);
	return x < -87.3f ? 0.0f : (x > 88.0f ? INFINITY : p * s);
}

// c_erfc_poly is the exponent polynomial of Numerical Recipes' erfc:
// erfc(z) = t·e^(−z² + P(t)), t = 2/(2+z), fractional error < 1.2e-7.
static inline double c_erfc_poly(double t) {
	double p = 0.17087277;
	p = p*t - 0.82215223; p = p*t + 1.48851587; p = p*t - 1.13520398;
	p = p*t + 0.27886807; p = p*t - 0.18628806; p = p*t + 0.09678418;
	p = p*t + 0.37409196; p = p*t + 1.00002368; p = p*t - 1.26551223;
	return p;
}

// c_normcdf returns Φ(x) and stores e^(−x²/2) in *gauss.
static inline double c_normcdf(double x, double *gauss) {
	double z = fabs(x) * 0.70710678118654752440;
	z = z > 26 ? 26 : z;
	double t = 2 / (2 + z);
	double p = c_erfc_poly(t);
	double g = c_exp64(-z * z);
	double half = 0.5 * t * g * c_exp64(p);
	*gauss = g;
	return x < 0 ? half : 1 - half;
}

// The element-wise kernels below are each a body inlined into two
// functions: NAME, target_clones of AVX2 (x86-64-v3) and the baseline,
// chosen by the loader as before, and NAME_avx512, the same loops
// vectorised for AVX-512, which the Go side calls at the avx512 kernel
// level (kernels.go). Neither reassociates anything, so both give the same
// results bit for bit. Only the kernels where AVX-512 measured faster have
// a twin (docs/performance.md); softmax and the LayerNorm forward did not.

// c_gelu needs no Gaussian density, so the two exponentials of c_normcdf
// fold into one: ½·t·e^(−z²)·e^p = ½·t·e^(p−z²).
static inline __attribute__((always_inline)) void c_gelu_body(float *dst, const float *x, long n) {
	for (long i = 0; i < n; i++) {
		double f = x[i];
		double z = fabs(f) * 0.70710678118654752440;
		z = z > 26 ? 26 : z;
		double t = 2 / (2 + z);
		double p = c_erfc_poly(t);
		double half = 0.5 * t * c_exp64(p - z * z);
		dst[i] = (float)(f * (f < 0 ? half : 1 - half));
	}
}
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_gelu(float *dst, const float *x, long n) { c_gelu_body(dst, x, n); }
K6_TARGET512 static void c_gelu_avx512(float *dst, const float *x, long n) { c_gelu_body(dst, x, n); }

static inline __attribute__((always_inline)) void c_gelu_backward_body(float *dx, const float *dy, const float *x, long n) {
	for (long i = 0; i < n; i++) {
		double g, f = x[i];
		double c = c_normcdf(f, &g);
		dx[i] = dy[i] * (float)(c + f * g * 0.3989422804014327);
	}
}
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_gelu_backward(float *dx, const float *dy, const float *x, long n) { c_gelu_backward_body(dx, dy, x, n); }
K6_TARGET512 static void c_gelu_backward_avx512(float *dx, const float *dy, const float *x, long n) { c_gelu_backward_body(dx, dy, x, n); }

// c_layernorm is layerNormGo (layers.go) in C: statistics in double over
// four partial sums so that the loops vectorise. With res, each row of x
// first becomes x + res (in place).
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_layernorm(float *out, float *mean, float *rstd, float *x, const float *res,
		const float *gamma, const float *beta, long n, long c, double eps) {
	for (long r = 0; r < n; r++) {
		float *row = x + r * c;
		if (res)
			for (long i = 0; i < c; i++) row[i] += res[r * c + i];
		double s4[4] = {0, 0, 0, 0};
		long c4 = c & ~3L;
		for (long i = 0; i < c4; i += 4)
			for (int j = 0; j < 4; j++) s4[j] += (double)row[i+j];
		double s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
		for (long i = c4; i < c; i++) s += (double)row[i];
		double mu = s / (double)c;
		double q4[4] = {0, 0, 0, 0};
		for (long i = 0; i < c4; i += 4)
			for (int j = 0; j < 4; j++) { double d = (double)row[i+j] - mu; q4[j] += d * d; }
		double ss = (q4[0] + q4[1]) + (q4[2] + q4[3]);
		for (long i = c4; i < c; i++) { double d = (double)row[i] - mu; ss += d * d; }
		float m32 = (float)mu, r32 = (float)(1 / sqrt(ss / (double)c + eps));
		float *o = out + r * c;
		for (long i = 0; i < c; i++) o[i] = (row[i] - m32) * r32 * gamma[i] + beta[i];
		mean[r] = m32;
		rstd[r] = r32;
	}
}

// c_adamw is adamwGo (adamw.go) in C: the same float64 arithmetic per
// element, four lanes wide.
static inline __attribute__((always_inline)) void c_adamw_body(float *w, const float *g, float *m, float *v, long n,
		double b1, double b2, double step, double bc2, double eps, double decay) {
	for (long j = 0; j < n; j++) {
		double gj = g[j];
		double mj = b1 * (double)m[j] + (1 - b1) * gj;
		double vj = b2 * (double)v[j] + (1 - b2) * gj * gj;
		m[j] = (float)mj;
		v[j] = (float)vj;
		double wj = (double)w[j] * decay;
		w[j] = (float)(wj - step * mj / (sqrt(vj) / bc2 + eps));
	}
}
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_adamw(float *w, const float *g, float *m, float *v, long n,
		double b1, double b2, double step, double bc2, double eps, double decay) { c_adamw_body(w, g, m, v, n, b1, b2, step, bc2, eps, decay); }
K6_TARGET512 static void c_adamw_avx512(float *w, const float *g, float *m, float *v, long n,
		double b1, double b2, double step, double bc2, double eps, double decay) { c_adamw_body(w, g, m, v, n, b1, b2, step, bc2, eps, decay); }

// c_colsum adds the column sums of dout (n, oc) for columns lo..hi−1 to db.
static inline __attribute__((always_inline)) void c_colsum_body(float *db, const float *dout, long n, long oc, long lo, long hi) {
	for (long r = 0; r < n; r++) {
		const float *row = dout + r * oc;
		for (long j = lo; j < hi; j++) db[j] += row[j];
	}
}
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_colsum(float *db, const float *dout, long n, long oc, long lo, long hi) { c_colsum_body(db, dout, n, oc, lo, hi); }
K6_TARGET512 static void c_colsum_avx512(float *db, const float *dout, long n, long oc, long lo, long hi) { c_colsum_body(db, dout, n, oc, lo, hi); }

// c_layernorm_backward is layerNormBackwardGo (layers.go) in C; dgamma and
// dbeta may be NULL.
static inline __attribute__((always_inline)) void c_layernorm_backward_body(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
		const float *mean, const float *rstd, const float *gamma, long n, long c) {
	for (long r = 0; r < n; r++) {
		const float *xr = x + r * c, *dr = dout + r * c;
		float *dxr = dx + r * c;
		float mu = mean[r], rs = rstd[r];
		double s4[4] = {0, 0, 0, 0}, t4[4] = {0, 0, 0, 0};
		long c4 = c & ~3L;
		for (long i = 0; i < c4; i += 4)
			for (int j = 0; j < 4; j++) {
				float g = dr[i+j] * gamma[i+j];
				float xh = (xr[i+j] - mu) * rs;
				s4[j] += (double)g;
				t4[j] += (double)(g * xh);
			}
		double sg = (s4[0] + s4[1]) + (s4[2] + s4[3]), sgx = (t4[0] + t4[1]) + (t4[2] + t4[3]);
		for (long i = c4; i < c; i++) {
			float g = dr[i] * gamma[i];
			float xh = (xr[i] - mu) * rs;
			sg += (double)g;
			sgx += (double)(g * xh);
		}
		float mg = (float)(sg / (double)c), mgx = (float)(sgx / (double)c);
		for (long i = 0; i < c; i++) {
			float xh = (xr[i] - mu) * rs;
			dxr[i] += rs * (dr[i] * gamma[i] - mg - xh * mgx);
		}
		if (dgamma)
			for (long i = 0; i < c; i++) {
				float xh = (xr[i] - mu) * rs;
				dgamma[i] += dr[i] * xh;
				dbeta[i] += dr[i];
			}
	}
}
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
		const float *mean, const float *rstd, const float *gamma, long n, long c) { c_layernorm_backward_body(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, n, c); }
K6_TARGET512 static void c_layernorm_backward_avx512(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
		const float *mean, const float *rstd, const float *gamma, long n, long c) { c_layernorm_backward_body(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, n, c); }

// c_softmax replaces row by softmax(row); a row entirely −Inf becomes zeros.
// Eight partial maxima and sums let the reductions vectorise.
__attribute__((target_clones("arch=x86-64-v3","default")))
static void c_softmax(float *row, long n) {
	float m8[8], s8[8];
	for (int j = 0; j < 8; j++) { m8[j] = -INFINITY; s8[j] = 0; }
	long n8 = n & ~7L;
	for (long i = 0; i < n8; i += 8)
		for (int j = 0; j < 8; j++) m8[j] = row[i+j] > m8[j] ? row[i+j] : m8[j];
	float mx = -INFINITY;
	for (int j = 0; j < 8; j++) mx = m8[j] > mx ? m8[j] : mx;
	for (long i = n8; i < n; i++) mx = row[i] > mx ? row[i] : mx;
	if (isinf(mx) && mx < 0) {
		for (long i = 0; i < n; i++) row[i] = 0;
		return;
	}
	for (long i = 0; i < n; i++) row[i] = c_expf32(row[i] - mx);
	for (long i = 0; i < n8; i += 8)
		for (int j = 0; j < 8; j++) s8[j] += row[i+j];
	float sum = 0;
	for (int j = 0; j < 8; j++) sum += s8[j];
	for (long i = n8; i < n; i++) sum += row[i];
	float inv = 1 / sum;
	for (long i = 0; i < n; i++) row[i] *= inv;
}


// c_softmax_xent replaces row by softmax(row) and returns
// logsumexp(row) − row[label], summing in double.
static inline __attribute__((always_inline)) double c_softmax_xent_body(float *row, long n, long label) {
	float m8[8];
	double s4[4] = {0, 0, 0, 0};
	for (int j = 0; j < 8; j++) m8[j] = -INFINITY;
	long n8 = n & ~7L, n4 = n & ~3L;
	for (long i = 0; i < n8; i += 8)
		for (int j = 0; j < 8; j++) m8[j] = row[i+j] > m8[j] ? row[i+j] : m8[j];
	float mx = -INFINITY;
	for (int j = 0; j < 8; j++) mx = m8[j] > mx ? m8[j] : mx;
	for (long i = n8; i < n; i++) mx = row[i] > mx ? row[i] : mx;
	double target = (double)row[label] - (double)mx;
	for (long i = 0; i < n; i++) row[i] = c_expf32(row[i] - mx);
	for (long i = 0; i < n4; i += 4)
		for (int j = 0; j < 4; j++) s4[j] += row[i+j];
	double sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
	for (long i = n4; i < n; i++) sum += row[i];
	float inv = (float)(1 / sum);
	for (long i = 0; i < n; i++) row[i] *= inv;
	return log(sum) - target;
}
__attribute__((target_clones("arch=x86-64-v3","default")))
static double c_softmax_xent(float *row, long n, long label) { return c_softmax_xent_body(row, n, label); }
K6_TARGET512 static double c_softmax_xent_avx512(float *row, long n, long label) { return c_softmax_xent_body(row, n, label); }


#include "k6x16.h"

// attn_head runs one attention head without dropout: S = scale·Q·Kᵀ with
// padded keys at −∞, P = softmax(S) row by row (written to p, T×T), and
// ctx = P·V. q, k, v and ctx are rows of width d at stride ld; pad lists the
// npad padded key positions. kp (ceil(T/16)·16·d floats) and blk (6·T16
// floats, T16 = T rounded up to 16) are scratch. Keys are packed in panels
// of 16 (the vector lanes) and query rows taken 6 at a time, so both
// products run the 6×16 register kernel of the SPLADE pooling; d must be a
// multiple of 16.
__attribute__((target("avx2,fma")))
static void attn_head_avx2(const float *q, const float *k, const float *v, long ld, int T, int d, float scale,
		const int32_t *pad, int npad, float *p, float *ctx, float *kp, float *blk) {
	int np = (T + 15) / 16, T16 = np * 16;
	k6_pack(kp, k, ld, T, d); // keys past T repeat key T−1; their scores are never read
	__m256 sc = _mm256_set1_ps(scale);
	for (int r0 = 0; r0 < T; r0 += 6) {
		int nr = T - r0 < 6 ? T - r0 : 6;
		const float *qr[6];
		for (int i = 0; i < 6; i++) qr[i] = q + (long)(r0 + (i < nr ? i : nr - 1)) * ld;
		// Scores of the block's rows against every key panel.
		for (int pi = 0; pi < np; pi++) {
			const float *a = kp + (long)pi * 16 * d;
			K6_ZERO();
			for (int kk = 0; kk < d; kk++) K6_PANEL_STEP(a, kk, qr[0], qr[1], qr[2], qr[3], qr[4], qr[5]);
			K6_ACC(acc);
			for (int i = 0; i < K6_ROWS; i++) {
				float *o = blk + (long)i * T16 + pi * 16;
				_mm256_storeu_ps(o, _mm256_mul_ps(acc[i][0], sc));
				_mm256_storeu_ps(o + 8, _mm256_mul_ps(acc[i][1], sc));
			}
		}
		for (int i = 0; i < 6; i++) {
			float *row = blk + (long)i * T16;
			for (int j = 0; j < npad; j++) row[pad[j]] = -INFINITY;
			c_softmax(row, T);
			if (i < nr) memcpy(p + (long)(r0 + i) * T, row, (size_t)T * sizeof(float));
		}
		// ctx rows = P·V, 16 columns of V at a time.
		for (int c0 = 0; c0 < d; c0 += 16) {
			K6_ZERO();
			for (int j = 0; j < T; j++) {
				const float *vr = v + (long)j * ld + c0;
				K6_FMA(_mm256_loadu_ps(vr), _mm256_loadu_ps(vr + 8), blk + 0 * T16 + j, blk + 1 * T16 + j,
					blk + 2 * T16 + j, blk + 3 * T16 + j, blk + 4 * T16 + j, blk + 5 * T16 + j);
			}
			K6_ACC(acc);
			for (int i = 0; i < nr; i++) {
				float *o = ctx + (long)(r0 + i) * ld + c0;
				_mm256_storeu_ps(o, acc[i][0]);
				_mm256_storeu_ps(o + 8, acc[i][1]);
			}
		}
	}
}

// attn_head_avx512 is attn_head_avx2 on the 6×64 block of k6_tile512: the
// scores of six query rows against four key panels at a time, P·V six rows
// by 64 columns of V. Every score and output is the same chain of fused
// multiply-adds as in attn_head_avx2, and the softmax is the same
// function, so the two give the same results bit for bit.
K6_TARGET512
static void attn_head_avx512(const float *q, const float *k, const float *v, long ld, int T, int d, float scale,
		const int32_t *pad, int npad, float *p, float *ctx, float *kp, float *blk) {
	int np = (T + 15) / 16, T16 = np * 16;
	k6_pack(kp, k, ld, T, d);
	__m512 sc = _mm512_set1_ps(scale);
	__m512 acc[K6_ROWS][4];
	for (int r0 = 0; r0 < T; r0 += 6) {
		int nr = T - r0 < 6 ? T - r0 : 6;
		const float *qr[6];
		for (int i = 0; i < 6; i++) qr[i] = q + (long)(r0 + (i < nr ? i : nr - 1)) * ld;
#define ATTN512_SCORES(NP) do { \
			k6_tile512(acc, NP, kp + (long)pi * 16 * d, 16, 16L * d, d, qr, NULL, 0); \
			_Pragma("GCC unroll 6") for (int i = 0; i < K6_ROWS; i++) \
				_Pragma("GCC unroll 4") for (int j = 0; j < (NP); j++) \
					_mm512_storeu_ps(blk + (long)i * T16 + (pi + j) * 16, _mm512_mul_ps(acc[i][j], sc)); \
		} while (0)
		int pi = 0;
		for (; pi + 4 <= np; pi += 4) ATTN512_SCORES(4);
		switch (np - pi) {
		case 3: ATTN512_SCORES(3); break;
		case 2: ATTN512_SCORES(2); break;
		case 1: ATTN512_SCORES(1); break;
		}
#undef ATTN512_SCORES
		for (int i = 0; i < 6; i++) {
			float *row = blk + (long)i * T16;
			for (int j = 0; j < npad; j++) row[pad[j]] = -INFINITY;
			c_softmax(row, T);
			if (i < nr) memcpy(p + (long)(r0 + i) * T, row, (size_t)T * sizeof(float));
		}
		const float *pr[6];
		for (int i = 0; i < 6; i++) pr[i] = blk + (long)i * T16;
#define ATTN512_PV(NP) do { \
			k6_tile512(acc, NP, v + c0, ld, 16, T, pr, NULL, 0); \
			for (int i = 0; i < nr; i++) \
				_Pragma("GCC unroll 4") for (int j = 0; j < (NP); j++) \
					_mm512_storeu_ps(ctx + (long)(r0 + i) * ld + c0 + j * 16, acc[i][j]); \
		} while (0)
		int c0 = 0;
		for (; c0 + 64 <= d; c0 += 64) ATTN512_PV(4);
		switch ((d - c0) / 16) {
		case 3: ATTN512_PV(3); break;
		case 2: ATTN512_PV(2); break;
		case 1: ATTN512_PV(1); break;
		}
#undef ATTN512_PV
	}
}

// attn_head returns 0 when it cannot run (level below K6_AVX2, or d not a
// multiple of 16) and the caller must take the BLAS path.
static int attn_head(int level, const float *q, const float *k, const float *v, long ld, int T, int d, float scale,
		const int32_t *pad, int npad, float *p, float *ctx, float *kp, float *blk) {
	if (level < K6_AVX2 || d % 16 != 0 || T == 0) return 0;
	if (level >= K6_AVX512)
		attn_head_avx512(q, k, v, ld, T, d, scale, pad, npad, p, ctx, kp, blk);
	else
		attn_head_avx2(q, k, v, ld, T, d, scale, pad, npad, p, ctx, kp, blk);
	return 1;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// foldMaxRows folds the logit rows x (len(seg) rows of n, leading dimension
// ldx) into running maxima: row i updates mx[seg[i]·ldm : +n] where its value
// is strictly larger, recording position tpos[i] in am at the same offsets.
// Ties keep the earlier row, so the first maximal position wins.
func foldMaxRows(mx []float32, am []int32, ldm int, x []float32, ldx int, seg, tpos []int32, n int) {
	if len(seg) == 0 || n == 0 {
		return
	}
	last := 0
	for _, s := range seg {
		last = max(last, int(s))
	}
	if len(x) < (len(seg)-1)*ldx+n || len(mx) < last*ldm+n || len(am) < last*ldm+n || len(tpos) < len(seg) {
		panic(fmt.Sprintf("foldMaxRows: slices too short for %d rows of %d", len(seg), n))
	}
	C.fold_max_rows((*C.float)(unsafe.Pointer(&mx[0])), (*C.int32_t)(unsafe.Pointer(&am[0])), C.long(ldm),
		(*C.float)(unsafe.Pointer(&x[0])), C.long(ldx),
		(*C.int32_t)(unsafe.Pointer(&seg[0])), (*C.int32_t)(unsafe.Pointer(&tpos[0])), C.int(len(seg)), C.int(n))
}

// geluKernel, geluBackwardKernel and softmaxKernel run the C twins of
// geluGo, geluBackwardGo and softmaxGo (fastmath.go); GELU and its
// backward, AdamW, the column sums, the LayerNorm backward and the softmax
// cross-entropy take their AVX-512 builds at that kernel level.
func geluKernel(dst, x []float32) {
	if len(dst) == 0 {
		return
	}
	_ = x[len(dst)-1]
	if kernelLevel >= levelAVX512 {
		C.c_gelu_avx512((*C.float)(unsafe.Pointer(&dst[0])), (*C.float)(unsafe.Pointer(&x[0])), C.long(len(dst)))
		return
	}
	C.c_gelu((*C.float)(unsafe.Pointer(&dst[0])), (*C.float)(unsafe.Pointer(&x[0])), C.long(len(dst)))
}

func geluBackwardKernel(dx, dy, x []float32) {
	if len(dx) == 0 {
		return
	}
	_, _ = dy[len(dx)-1], x[len(dx)-1]
	if kernelLevel >= levelAVX512 {
		C.c_gelu_backward_avx512((*C.float)(unsafe.Pointer(&dx[0])), (*C.float)(unsafe.Pointer(&dy[0])), (*C.float)(unsafe.Pointer(&x[0])), C.long(len(dx)))
		return
	}
	C.c_gelu_backward((*C.float)(unsafe.Pointer(&dx[0])), (*C.float)(unsafe.Pointer(&dy[0])), (*C.float)(unsafe.Pointer(&x[0])), C.long(len(dx)))
}

func layerNormKernel(out, mean, rstd, x, res, gamma, beta []float32, n, c int, eps float64) {
	if n == 0 || c == 0 {
		return
	}
	_, _, _, _, _ = out[n*c-1], mean[n-1], rstd[n-1], x[n*c-1], gamma[c-1]
	_ = beta[c-1]
	var pr *C.float
	if res != nil {
		_ = res[n*c-1]
		pr = (*C.float)(unsafe.Pointer(&res[0]))
	}
	C.c_layernorm((*C.float)(unsafe.Pointer(&out[0])), (*C.float)(unsafe.Pointer(&mean[0])), (*C.float)(unsafe.Pointer(&rstd[0])),
		(*C.float)(unsafe.Pointer(&x[0])), pr, (*C.float)(unsafe.Pointer(&gamma[0])), (*C.float)(unsafe.Pointer(&beta[0])),
		C.long(n), C.long(c), C.double(eps))
}

// attnScratch is the float count of attnHeadKernel's scratch for T and d.
func attnScratch(T, d int) int {
	t16 := (T + 15) / 16 * 16
	return t16*d + 6*t16
}

// attnHeadKernel runs one attention head without dropout (see the C
// attn_head): P (T,T) = softmax(scale·Q·Kᵀ, padded keys at −∞), ctx = P·V,
// with q, k, v, ctx rows of width d at stride ld. It reports false, doing
// nothing, when the kernel cannot run here (no AVX2/FMA, d not a multiple
// of 16); the caller then takes the BLAS path. The kernel is that of the
// level in force (SetKernels).
func attnHeadKernel(q, k, v []float32, ld, T, d int, scale float32, pad []int32, p, ctx, scratch []float32) bool {
	if T == 0 || d%16 != 0 {
		return false
	}
	_, _, _, _ = q[(T-1)*ld+d-1], k[(T-1)*ld+d-1], v[(T-1)*ld+d-1], ctx[(T-1)*ld+d-1]
	_, _ = p[T*T-1], scratch[attnScratch(T, d)-1]
	var pp *C.int32_t
	if len(pad) > 0 {
		pp = (*C.int32_t)(unsafe.Pointer(&pad[0]))
	}
	t16 := (T + 15) / 16 * 16
	return C.attn_head(C.int(kernelLevel), (*C.float)(unsafe.Pointer(&q[0])), (*C.float)(unsafe.Pointer(&k[0])), (*C.float)(unsafe.Pointer(&v[0])),
		C.long(ld), C.int(T), C.int(d), C.float(scale), pp, C.int(len(pad)),
		(*C.float)(unsafe.Pointer(&p[0])), (*C.float)(unsafe.Pointer(&ctx[0])),
		(*C.float)(unsafe.Pointer(&scratch[0])), (*C.float)(unsafe.Pointer(&scratch[t16*d]))) != 0
}

func adamwKernel(w, g, m, v []float32, b1, b2, stepSize, bc2, eps, decay float64) {
	n := len(g)
	if n == 0 {
		return
	}
	_, _, _ = w[n-1], m[n-1], v[n-1]
	if kernelLevel >= levelAVX512 {
		C.c_adamw_avx512((*C.float)(unsafe.Pointer(&w[0])), (*C.float)(unsafe.Pointer(&g[0])), (*C.float)(unsafe.Pointer(&m[0])), (*C.float)(unsafe.Pointer(&v[0])),
			C.long(n), C.double(b1), C.double(b2), C.double(stepSize), C.double(bc2), C.double(eps), C.double(decay))
		return
	}
	C.c_adamw((*C.float)(unsafe.Pointer(&w[0])), (*C.float)(unsafe.Pointer(&g[0])), (*C.float)(unsafe.Pointer(&m[0])), (*C.float)(unsafe.Pointer(&v[0])),
		C.long(n), C.double(b1), C.double(b2), C.double(stepSize), C.double(bc2), C.double(eps), C.double(decay))
}

func colSumKernel(db, dout []float32, n, oc, lo, hi int) {
	if n == 0 || hi <= lo {
		return
	}
	_, _ = db[hi-1], dout[(n-1)*oc+hi-1]
	if kernelLevel >= levelAVX512 {
		C.c_colsum_avx512((*C.float)(unsafe.Pointer(&db[0])), (*C.float)(unsafe.Pointer(&dout[0])), C.long(n), C.long(oc), C.long(lo), C.long(hi))
		return
	}
	C.c_colsum((*C.float)(unsafe.Pointer(&db[0])), (*C.float)(unsafe.Pointer(&dout[0])), C.long(n), C.long(oc), C.long(lo), C.long(hi))
}

func layerNormBackwardKernel(dx, dgamma, dbeta, dout, x, mean, rstd, gamma []float32, n, c int) {
	if n == 0 || c == 0 {
		return
	}
	_, _, _, _, _, _ = dx[n*c-1], dout[n*c-1], x[n*c-1], mean[n-1], rstd[n-1], gamma[c-1]
	var pg, pb *C.float
	if dgamma != nil {
		_, _ = dgamma[c-1], dbeta[c-1]
		pg, pb = (*C.float)(unsafe.Pointer(&dgamma[0])), (*C.float)(unsafe.Pointer(&dbeta[0]))
	}
	if kernelLevel >= levelAVX512 {
		C.c_layernorm_backward_avx512((*C.float)(unsafe.Pointer(&dx[0])), pg, pb, (*C.float)(unsafe.Pointer(&dout[0])), (*C.float)(unsafe.Pointer(&x[0])),
			(*C.float)(unsafe.Pointer(&mean[0])), (*C.float)(unsafe.Pointer(&rstd[0])), (*C.float)(unsafe.Pointer(&gamma[0])), C.long(n), C.long(c))
		return
	}
	C.c_layernorm_backward((*C.float)(unsafe.Pointer(&dx[0])), pg, pb, (*C.float)(unsafe.Pointer(&dout[0])), (*C.float)(unsafe.Pointer(&x[0])),
		(*C.float)(unsafe.Pointer(&mean[0])), (*C.float)(unsafe.Pointer(&rstd[0])), (*C.float)(unsafe.Pointer(&gamma[0])), C.long(n), C.long(c))
}

func softmaxKernel(row []float32) {
	if len(row) == 0 {
		return
	}
	C.c_softmax((*C.float)(unsafe.Pointer(&row[0])), C.long(len(row)))
}

func softmaxXentKernel(row []float32, label int) float64 {
	_ = row[label]
	if kernelLevel >= levelAVX512 {
		return float64(C.c_softmax_xent_avx512((*C.float)(unsafe.Pointer(&row[0])), C.long(len(row)), C.long(label)))
	}
	return float64(C.c_softmax_xent((*C.float)(unsafe.Pointer(&row[0])), C.long(len(row)), C.long(label)))
}
