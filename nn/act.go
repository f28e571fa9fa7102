package nn

import "math"

// Element-wise kernels shared by the layers. They are the hot loops outside
// the matrix products, so each has one definition here to optimise.

// GELU sets dst[i] = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the exact (erf) GELU of
// BERT and DistilBERT. dst and x may alias.
func GELU(dst, x []float32) {
	for i, v := range x[:len(dst)] {
		f := float64(v)
		dst[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
	}
}

// GELUBackward sets dx[i] = dy[i]·GELU'(x[i]), where
// GELU'(x) = Φ(x) + x·φ(x). dx may alias dy.
func GELUBackward(dx, dy, x []float32) {
	for i := range dx {
		f := float64(x[i])
		cdf := 0.5 * (1 + math.Erf(f/math.Sqrt2))
		pdf := math.Exp(-0.5*f*f) / math.Sqrt(2*math.Pi)
		dx[i] = dy[i] * float32(cdf+f*pdf)
	}
}

// SoftmaxInPlace replaces row by softmax(row), subtracting the maximum
// first for stability. Entries equal to -Inf get probability 0; a row
// entirely -Inf becomes all zeros.
func SoftmaxInPlace(row []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), -1) {
		clear(row)
		return
	}
	var sum float32
	for i, v := range row {
		e := float32(math.Exp(float64(v - mx)))
		row[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range row {
		row[i] *= inv
	}
}
