package nn

import (
	"math"
	"slices"
)

// Element-wise kernels shared by the layers. They are the hot loops outside
// the matrix products (scalar float64 math.Erf/math.Exp took about half of a
// layer's time once the GEMMs ran on OpenBLAS), so each has one definition
// here. The arithmetic lives in fastmath.go (pure Go) and fastmath_cgo.go
// (the same formulas as vectorised C, used when cgo is on).

// SoftmaxCrossEntropy replaces row (V logits) by softmax(row) and returns
// the cross-entropy logsumexp(row) − row[label], with the sum in float64:
// each probability has the error bound of SoftmaxInPlace and the loss a
// relative error below 1e-6 for losses above 1e-3 (absolute below 1e-9
// otherwise). label must index row. Cost: two exp-free passes and one
// expf32 pass over row, vectorised under cgo.
func SoftmaxCrossEntropy(row []float32, label int) float64 { return softmaxXentKernel(row, label) }

// parallelMin is the element count from which GELU, GELUBackward and the
// other element-wise kernels split their work over the workers (a goroutine
// handoff costs ~1 µs, ~1000 elements of work); each part then has at least
// parallelMin/2 elements (threads.go).
const parallelMin = 1 << 14

// GELU sets dst[i] = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the exact (erf) GELU of
// BERT and DistilBERT, with relative error below 3e-7 for every float32 x
// whose result is a normal float32 (fastmath.go: normCDF). dst and x may
// alias. Large slices are split over the workers (SetThreads).
func GELU(dst, x []float32) {
	split(ewJob{op: opGELU, a: dst, b: x[:len(dst)]})
}

// GELUBackward sets dx[i] = dy[i]·GELU'(x[i]), where
// GELU'(x) = Φ(x) + x·φ(x), with error below 3e-7·|dy|·(Φ(x)+|x|·φ(x)).
// dx may alias dy.
func GELUBackward(dx, dy, x []float32) {
	split(ewJob{op: opGELUBackward, a: dx, b: dy[:len(dx)], c: x[:len(dx)]})
}

// SoftmaxInPlace replaces row by softmax(row), subtracting the maximum
// first for stability. Entries equal to -Inf get probability 0; a row
// entirely -Inf becomes all zeros. Each probability p_i has relative error
// below 1e-6 + |x_i − max|·2⁻²⁴ (float32 exp with ≤ 4 ulp, fastmath.go:
// expf32, a float32 sum, and the float32 rounding of x_i − max).
func SoftmaxInPlace(row []float32) { softmaxKernel(row) }

// maskedSoftmaxRows replaces each of the rows rows of S (rows, K), K =
// len(mask), by its softmax over the keys whose mask is non-zero: a masked
// key's logit becomes -Inf, so its probability is 0 (attention over padded
// sequences). Cost: SoftmaxInPlace per row, plus one pass over the mask
// per row when the mask has a zero.
func maskedSoftmaxRows(S, mask []float32, rows int) {
	K := len(mask)
	padded := slices.Contains(mask, 0)
	negInf := float32(math.Inf(-1))
	for s := range rows {
		row := S[s*K : (s+1)*K]
		if padded {
			for t, mv := range mask {
				if mv == 0 {
					row[t] = negInf
				}
			}
		}
		SoftmaxInPlace(row)
	}
}

// softmaxBackwardRows turns dP (rows, K), the gradient with respect to the
// probabilities P (rows, K) of a row-wise softmax of scale·S, into the
// gradient with respect to S, in place: dS = scale·P⊙(dP − Σ_t P·dP) per
// row (attention's backward, the 1/√HS scale included).
func softmaxBackwardRows(P, dP []float32, rows, K int, scale float32) {
	for s := range rows {
		pr, dr := P[s*K:(s+1)*K], dP[s*K:(s+1)*K]
		var dot float32
		for t, pv := range pr {
			dot += pv * dr[t]
		}
		for t, pv := range pr {
			dr[t] = pv * (dr[t] - dot) * scale
		}
	}
}
