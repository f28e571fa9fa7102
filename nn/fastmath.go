package nn

import "math"

// Fast element-wise math shared by the kernels in act.go. Each function here
// is the pure-Go statement of an algorithm that fastmath_cgo.go also runs as
// vectorised C (the same formulas and coefficients); with cgo the C version
// is used, without cgo the Go one. Both are tested against float64 math over
// dense sweeps (fastmath_test.go), which is where the error bounds below are
// checked.
//
// Exp: Cody–Waite range reduction a = k·ln2 + r, |r| ≤ ln2/2, then a Taylor
// polynomial for e^r and a 2^k scaling built from the exponent bits.
//
// Φ (the normal CDF of GELU): through erfc, with the Chebyshev-fitted form of
// Numerical Recipes (2nd ed., §6.2, erfcc): for z ≥ 0, t = 2/(2+z),
//
//	erfc(z) ≈ t·exp(−z² − 1.26551223 + t·(1.00002368 + … + t·0.17087277))
//
// with fractional error below 1.2e-7 for every z ≥ 0. Evaluated in float64,
// that keeps GELU's relative error below ~2e-7 everywhere, including the
// negative tail where x·Φ(x) is tiny (an absolute-error erf would lose all
// relative accuracy there).

// erfcCoef are the coefficients c0..c9 of the exponent polynomial of erfcc,
// in increasing powers of t.
var erfcCoef = [10]float64{-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
	0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277}

// exp64 returns e^a in float64 for a ≤ 700, with relative error below 1e-11
// for a ≥ −700 (degree-10 Taylor polynomial on |r| ≤ ln2/2); below −700 it
// returns 0.
func exp64(a float64) float64 {
	if a < -700 {
		return 0
	}
	const ln2hi, ln2lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
	k := math.Round(a * math.Log2E)
	r := a - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320+r*(1.0/362880+r*(1.0/3628800))))))))))
	return p * math.Float64frombits(uint64(int64(k)+1023)<<52)
}

// expf32 returns e^x in float32 with relative error below 2.5e-7 (4 ulp)
// for x ∈ [−87.3, 88]; below −87.3 it returns 0 and above 88 +Inf (e^88 ≈
// 1.7e38 is near the float32 maximum; softmax only needs x ≤ 0). Degree-7
// Taylor polynomial on |r| ≤ ln2/2, evaluated in float32.
func expf32(x float32) float32 {
	if x > 88 {
		return float32(math.Inf(1))
	}
	if x < -87.3 {
		return 0
	}
	const ln2hi, ln2lo = 0.693145751953125, 1.428606765330187e-06
	k := float32(math.Round(float64(x * math.Log2E)))
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}

// normCDF returns Φ(x) and the Gaussian density e^(−x²/2) (without the
// 1/√(2π)) in float64; Φ has relative error below 1.2e-7 for every x.
func normCDF(x float64) (cdf, gauss float64) {
	z := math.Abs(x) * (1 / math.Sqrt2)
	z = min(z, 26) // beyond, Φ(−x) underflows float32 anyway
	t := 2 / (2 + z)
	p := erfcCoef[9]
	for i := 8; i >= 0; i-- {
		p = p*t + erfcCoef[i]
	}
	g := exp64(-z * z)
	erfc := t * g * exp64(p) // p ∈ [−1.27, 3e-8]
	if x < 0 {
		return 0.5 * erfc, g
	}
	return 1 - 0.5*erfc, g
}

// geluGo sets dst[i] = x·Φ(x) (see normCDF for the error).
func geluGo(dst, x []float32) {
	for i, v := range x[:len(dst)] {
		c, _ := normCDF(float64(v))
		dst[i] = float32(float64(v) * c)
	}
}

// geluBackwardGo sets dx[i] = dy[i]·(Φ(x)+x·φ(x)).
func geluBackwardGo(dx, dy, x []float32) {
	const invSqrt2Pi = 0.3989422804014327
	for i := range dx {
		f := float64(x[i])
		c, g := normCDF(f)
		dx[i] = dy[i] * float32(c+f*g*invSqrt2Pi)
	}
}

// softmaxGo is SoftmaxInPlace with expf32.
func softmaxGo(row []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		mx = max(mx, v)
	}
	if math.IsInf(float64(mx), -1) {
		clear(row)
		return
	}
	var sum float32
	for i, v := range row {
		e := expf32(v - mx)
		row[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range row {
		row[i] *= inv
	}
}

// softmaxXentGo replaces row by softmax(row) and returns
// logsumexp(row) − row[label]; the sum of the expf32 terms is in float64.
func softmaxXentGo(row []float32, label int) float64 {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		mx = max(mx, v)
	}
	target := float64(row[label]) - float64(mx)
	var sum float64
	for i, v := range row {
		e := expf32(v - mx)
		row[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range row {
		row[i] *= inv
	}
	return math.Log(sum) - target
}
