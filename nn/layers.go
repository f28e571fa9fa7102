package nn

import (
	"math"
	"math/rand/v2"
	"sync"
)

// Layer primitives on rows: every tensor is a row-major []float32 of N rows.
// Each Forward has its Backward; Backward functions add (+=) into parameter
// gradients and, unless stated otherwise, into dx.

// LinearForward sets out (N,OC) = inp (N,IC)·Wᵀ + b, W (OC,IC), b (OC) or nil.
// Cost: one Sgemm, 2·N·OC·IC flops.
func LinearForward(out, inp, w, b []float32, n, ic, oc int) {
	if b != nil {
		sgemmBias(out, inp, w, b, n, ic, oc)
		return
	}
	Sgemm(false, true, n, oc, ic, 1, inp, ic, w, ic, 0, out, oc)
}

// LinearBackward adds dout·W to dinp (N,IC) (skipped when dinp is nil),
// doutᵀ·inp to dw (OC,IC) and the column sums of dout to db (both skipped
// when nil, as for a frozen layer). Cost: up to two Sgemms.
func LinearBackward(dinp, dw, db, dout, inp, w []float32, n, ic, oc int) {
	if dinp != nil {
		Sgemm(false, false, n, ic, oc, 1, dout, oc, w, ic, 1, dinp, ic)
	}
	if dw != nil {
		Sgemm(true, false, oc, ic, n, 1, dout, oc, inp, ic, 1, dw, ic)
	}
	if db != nil {
		// Column sums, split by columns when large (each column summed
		// over the rows in order, whichever worker holds it).
		split(ewJob{op: opColSum, n: oc, cs: colSumArgs{db, dout, n, oc}})
	}
}

// colSumArgs are LinearBackward's bias-gradient arguments; columns split
// between workers.
type colSumArgs struct {
	db, dout []float32
	n, oc    int
}

func (a colSumArgs) run(lo, hi int) { colSumKernel(a.db, a.dout, a.n, a.oc, lo, hi) }

// colSumGo adds the column sums of dout (n,oc) for the columns lo..hi−1 to db.
func colSumGo(db, dout []float32, n, oc, lo, hi int) {
	for r := range n {
		row := dout[r*oc+lo : r*oc+hi]
		d := db[lo:hi]
		for j, v := range row {
			d[j] += v
		}
	}
}

// LayerNormForward sets out = (x−μ)/√(σ²+eps)·γ + β per row of C features
// (σ² biased), and stores each row's μ and 1/√(σ²+eps) in mean and rstd (N)
// for the backward pass. Statistics are accumulated in float64. out may not
// alias x.
func LayerNormForward(out, mean, rstd, x, gamma, beta []float32, n, c int, eps float64) {
	split(ewJob{op: opLayerNorm, n: n, ln: lnArgs{out, mean, rstd, x, nil, gamma, beta, c, eps}})
}

// LayerNormResidualForward adds res to x in place (x keeps the sum, the
// input a backward pass needs) and then runs LayerNormForward on it, in one
// pass over the rows.
func LayerNormResidualForward(out, mean, rstd, x, res, gamma, beta []float32, n, c int, eps float64) {
	split(ewJob{op: opLayerNorm, n: n, ln: lnArgs{out, mean, rstd, x, res, gamma, beta, c, eps}})
}

// layerNormGo is LayerNormForward's pure-Go kernel.
func layerNormGo(out, mean, rstd, x, gamma, beta []float32, n, c int, eps float64) {
	for r := range n {
		row := x[r*c : (r+1)*c]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		mu := s / float64(c)
		var ss float64
		for _, v := range row {
			d := float64(v) - mu
			ss += d * d
		}
		rs := 1 / math.Sqrt(ss/float64(c)+eps)
		m32, r32 := float32(mu), float32(rs)
		o := out[r*c : (r+1)*c]
		for i, v := range row {
			o[i] = (v-m32)*r32*gamma[i] + beta[i]
		}
		mean[r], rstd[r] = m32, r32
	}
}

// LayerNormBackward adds to dx (N,C) the gradient through LayerNorm, and to
// dgamma/dbeta (skipped when nil) their gradients, given dout and the
// forward input x with its mean and rstd:
// dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)), ĝ = dout⊙γ, x̂ = (x−μ)·rstd.
//
// Large calls split their rows over the workers. The dγ/dβ sum is cut into
// lnbBlocks(n, c) blocks of rows, a number fixed by the shape: block 0
// accumulates into dgamma/dbeta directly, every other block into its own
// partial sums, which are then added in block order; so the result is the
// same at every worker count. Extra cost: 2·C floats per block (at most
// lnbMaxBlocks), written and added once.
func LayerNormBackward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma []float32, n, c int) {
	if n*c < parallelMin {
		layerNormBackwardKernel(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, n, c)
		return
	}
	k := lnbBlocks(n, c)
	var part *[]float32
	var pg []float32
	if dgamma != nil {
		part = lnbPool.Get().(*[]float32)
		if cap(*part) < 2*c*(k-1) {
			*part = make([]float32, 2*c*(k-1))
		}
		pg = (*part)[:2*c*(k-1)]
		clear(pg)
	}
	split(ewJob{op: opLNBackward, n: k, lnb: lnbArgs{dx, dgamma, dbeta, pg, dout, x, mean, rstd, gamma, n, c, k}})
	if dgamma == nil {
		return
	}
	for b := 1; b < k; b++ {
		p := pg[2*c*(b-1) : 2*c*b]
		for i := range c {
			dgamma[i] += p[i]
			dbeta[i] += p[c+i]
		}
	}
	lnbPool.Put(part)
}

// lnbMaxBlocks bounds LayerNormBackward's blocks (and so its workers).
const lnbMaxBlocks = 32

// lnbBlocks is the number of row blocks of LayerNormBackward for n rows of
// c (n·c ≥ parallelMin): one per parallelMin/2 elements, 2 to lnbMaxBlocks,
// at most n. It depends on the shape only.
func lnbBlocks(n, c int) int {
	return min(max(n*c/(parallelMin/2), 2), lnbMaxBlocks, n)
}

// lnbPool holds LayerNormBackward's partial sums between calls.
var lnbPool = sync.Pool{New: func() any { return new([]float32) }}

// lnbArgs are LayerNormBackward's arguments: n rows of c in k blocks,
// block b > 0 accumulating dγ, dβ into pg[2c(b−1) : 2cb] (nil: no dγ, dβ).
type lnbArgs struct {
	dx, dgamma, dbeta, pg, dout, x, mean, rstd, gamma []float32
	n, c, k                                           int
}

// blocks runs blocks lo..hi−1.
func (a lnbArgs) blocks(lo, hi int) {
	c := a.c
	for b := lo; b < hi; b++ {
		r0, r1 := a.n*b/a.k, a.n*(b+1)/a.k
		dg, db := a.dgamma, a.dbeta
		if b > 0 && a.dgamma != nil {
			dg, db = a.pg[2*c*(b-1):2*c*(b-1)+c], a.pg[2*c*(b-1)+c:2*c*b]
		}
		layerNormBackwardKernel(a.dx[r0*c:r1*c], dg, db, a.dout[r0*c:r1*c], a.x[r0*c:r1*c], a.mean[r0:r1], a.rstd[r0:r1], a.gamma, r1-r0, c)
	}
}

// layerNormBackwardGo is LayerNormBackward's pure-Go kernel.
func layerNormBackwardGo(dx, dgamma, dbeta, dout, x, mean, rstd, gamma []float32, n, c int) {
	for r := range n {
		xr, dr, dxr := x[r*c:(r+1)*c], dout[r*c:(r+1)*c], dx[r*c:(r+1)*c]
		mu, rs := mean[r], rstd[r]
		var sg, sgx float64
		for i, d := range dr {
			g := d * gamma[i]
			xh := (xr[i] - mu) * rs
			sg += float64(g)
			sgx += float64(g * xh)
		}
		mg, mgx := float32(sg/float64(c)), float32(sgx/float64(c))
		for i, d := range dr {
			xh := (xr[i] - mu) * rs
			dxr[i] += rs * (d*gamma[i] - mg - xh*mgx)
			if dgamma != nil {
				dgamma[i] += d * xh
				dbeta[i] += d
			}
		}
	}
}

// DropoutForward applies inverted dropout in place: each element is kept
// with probability 1−p and scaled by 1/(1−p), else zeroed. The multiplier
// (0 or 1/(1−p)) is written to mask for the backward pass. p = 0 leaves x
// unchanged and fills mask with ones.
func DropoutForward(x, mask []float32, p float64, rng *rand.Rand) {
	if p == 0 {
		for i := range mask[:len(x)] {
			mask[i] = 1
		}
		return
	}
	scale := float32(1 / (1 - p))
	for i := range x {
		if rng.Float64() < p {
			mask[i] = 0
			x[i] = 0
		} else {
			mask[i] = scale
			x[i] *= scale
		}
	}
}

// DropoutBackward multiplies dx by the mask of DropoutForward, in place.
func DropoutBackward(dx, mask []float32) {
	for i, m := range mask[:len(dx)] {
		dx[i] *= m
	}
}

// addInto sets dst[i] += src[i].
func addInto(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] += v
	}
}
