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
		// Column sums, split by columns when large.
		split2(ewJob{op: opColSum, n: oc, cs: colSumArgs{db, dout, n, oc}})
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
	split2(ewJob{op: opLayerNorm, n: n, ln: lnArgs{out, mean, rstd, x, nil, gamma, beta, c, eps}})
}

// LayerNormResidualForward adds res to x in place (x keeps the sum, the
// input a backward pass needs) and then runs LayerNormForward on it, in one
// pass over the rows.
func LayerNormResidualForward(out, mean, rstd, x, res, gamma, beta []float32, n, c int, eps float64) {
	split2(ewJob{op: opLayerNorm, n: n, ln: lnArgs{out, mean, rstd, x, res, gamma, beta, c, eps}})
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
func LayerNormBackward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma []float32, n, c int) {
	if dgamma == nil || n*c < parallelMin {
		layerNormBackwardKernel(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, n, c)
		return
	}
	// Rows split over two workers; the second accumulates dγ and dβ into
	// partials that are added once both are done.
	part := lnbPool.Get().(*[]float32)
	if cap(*part) < 2*c {
		*part = make([]float32, 2*c)
	}
	pg := (*part)[:2*c]
	clear(pg)
	split2(ewJob{op: opLNBackward, n: n, lnb: lnbArgs{dx, dgamma, dbeta, pg[:c], pg[c:], dout, x, mean, rstd, gamma, c}})
	for i := range c {
		dgamma[i] += pg[i]
		dbeta[i] += pg[c+i]
	}
	lnbPool.Put(part)
}

// lnbPool holds LayerNormBackward's partial sums between calls.
var lnbPool = sync.Pool{New: func() any { return new([]float32) }}

// lnbArgs are LayerNormBackward's arguments; rows split between workers,
// the worker that does not start at row 0 accumulating into pg and pb.
type lnbArgs struct {
	dx, dgamma, dbeta, pg, pb, dout, x, mean, rstd, gamma []float32
	c                                                     int
}

func (a lnbArgs) rows(lo, hi int) {
	c := a.c
	dg, db := a.dgamma, a.dbeta
	if lo > 0 {
		dg, db = a.pg, a.pb
	}
	layerNormBackwardKernel(a.dx[lo*c:hi*c], dg, db, a.dout[lo*c:hi*c], a.x[lo*c:hi*c], a.mean[lo:hi], a.rstd[lo:hi], a.gamma, hi-lo, c)
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
