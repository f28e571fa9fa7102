package nn

import (
	"fmt"
	"math"
	"sync"

	"github.com/spladapt/spladapt/internal/grow"
)

// The SPLADE head with saturated sum pooling (splade.pooling: sum):
//
//	s[b,v] = Σ_t relu(z[b,t,:]·E[v,:] + bias[v])   over the real positions t
//	w[b,v] = log1p(s[b,v])
//
// Max pooling gives a term the weight of its strongest position, so a
// document's term weight cannot count occurrences unless the encoder
// learns to; summing before the logarithm makes a term seen tf times at
// activation a weigh log1p(tf·a), which saturates in tf as BM25's
// tf·(k1+1)/(tf+k1) does (at a ≈ 7, log1p(2a)/log1p(a) ≈ 1.3, BM25's
// ratio at k1 0.9). The support is the same as max pooling's: w > 0 iff
// some position's logit is positive.
//
// Forward cost: 2·(real positions)·V·C flops (the same products as max
// pooling) through Sgemm on at most sumPoolRows positions at a time, and a
// pass over their (rows, V) logits. The backward recomputes the logits of
// the active columns only (w > 0 and dout ≠ 0): 6·(real positions)·nnz·C
// flops, so it costs what the vectors' non-zeros cost, not V.

// SpladeHeadForward sets out (B, V) to the pooled SPLADE weights of z under
// pooling (Config.SpladePooling): SpladePoolForward, which also sets argmax
// (B, V), for max pooling; SpladeSumPoolForward, which ignores argmax (it
// may be nil), for sum pooling. SpladeHeadBackward is its gradient.
func SpladeHeadForward(pooling string, z, mask, emb, bias []float32, B, T, C, V int, out []float32, argmax []int32) {
	if pooling == PoolSum {
		SpladeSumPoolForward(z, mask, emb, bias, B, T, C, V, out)
		return
	}
	SpladePoolForward(z, mask, emb, bias, B, T, C, V, out, argmax)
}

// SpladeHeadBackward accumulates the gradients of SpladeHeadForward under
// the same pooling, given its outputs out and argmax (SpladePoolBackward,
// SpladeSumPoolBackward).
func SpladeHeadBackward(pooling string, dout, z, mask, emb, bias []float32, argmax []int32, out []float32, B, T, C, V int, dz, demb, dbias []float32) {
	if pooling == PoolSum {
		SpladeSumPoolBackward(dout, z, mask, emb, bias, out, B, T, C, V, dz, demb, dbias)
		return
	}
	SpladePoolBackward(dout, z, emb, bias, argmax, out, B, T, C, V, dz, demb, dbias)
}

// sumPoolRows is the number of positions SpladeSumPoolForward projects
// onto the vocabulary at once: their (rows, V) logits (4 MiB at V = 16 384)
// stay in cache between the product and the ReLU-sum pass that reads them.
const sumPoolRows = 64

// sumPoolBuf recycles the logits buffers of SpladeSumPoolForward.
var sumPoolBuf sync.Pool

// SpladeSumPoolForward sets out (B, V) to the sum-pooled SPLADE weights of
// z (B, T, C) over the positions with mask > 0. A sequence with no real
// token gets an all-zero row.
func SpladeSumPoolForward(z, mask, emb, bias []float32, B, T, C, V int, out []float32) {
	checkSplade(z, emb, bias, B, T, C, V, out, nil)
	if len(mask) < B*T {
		panic(fmt.Sprintf("splade: len(mask)=%d < B·T=%d", len(mask), B*T))
	}
	clear(out[:B*V])
	var rows []float32 // gathered real positions, (n, C)
	var owner []int32  // sequence of each gathered row
	bp, _ := sumPoolBuf.Get().(*[]float32)
	if bp == nil {
		bp = new([]float32)
	}
	defer sumPoolBuf.Put(bp)
	*bp = grow.To(*bp, sumPoolRows*V)
	logits := *bp
	flush := func() {
		n := len(owner)
		if n == 0 {
			return
		}
		Sgemm(false, true, n, V, C, 1, rows, C, emb, C, 0, logits, V)
		parallelRanges(V, func(lo, hi int) {
			for r := range n {
				o := out[int(owner[r])*V:]
				l := logits[r*V:]
				for v := lo; v < hi; v++ {
					if x := l[v] + bias[v]; x > 0 {
						o[v] += x
					}
				}
			}
		})
		rows, owner = rows[:0], owner[:0]
	}
	for b := range B {
		for t := range T {
			if mask[b*T+t] <= 0 {
				continue
			}
			rows = append(rows, z[(b*T+t)*C:(b*T+t+1)*C]...)
			owner = append(owner, int32(b))
			if len(owner) == sumPoolRows {
				flush()
			}
		}
	}
	flush()
	for i, s := range out[:B*V] {
		if s > 0 {
			out[i] = float32(math.Log1p(float64(s)))
		}
	}
}

// SpladeSumPoolBackward accumulates the gradients of SpladeSumPoolForward
// given dout = dL/dout and the forward's out:
//
//	dlogit[b,t,v] = dout[b,v]·exp(−out[b,v])·1[logit + bias > 0]
//
// (exp(−out) = 1/(1+s)), for the active columns v of each sequence only
// (out > 0 and dout ≠ 0; elsewhere every logit is ≤ 0 and no gradient
// flows). dz (B, T, C), demb (V, C) and dbias (V) accumulate; any may be
// nil. Padded positions get no gradient.
func SpladeSumPoolBackward(dout, z, mask, emb, bias, out []float32, B, T, C, V int, dz, demb, dbias []float32) {
	checkSplade(z, emb, bias, B, T, C, V, out, nil)
	if len(dout) < B*V || len(mask) < B*T {
		panic(fmt.Sprintf("splade: len(dout)=%d < B·V=%d or len(mask)=%d < B·T=%d", len(dout), B*V, len(mask), B*T))
	}
	var cols []int32
	var g, ea, za, lg, dza, dea []float32
	var pos []int
	for b := range B {
		cols, g = cols[:0], g[:0]
		for v := range V {
			if w, d := out[b*V+v], dout[b*V+v]; w > 0 && d != 0 {
				cols = append(cols, int32(v))
				g = append(g, d*float32(math.Exp(-float64(w))))
			}
		}
		pos = pos[:0]
		for t := range T {
			if mask[b*T+t] > 0 {
				pos = append(pos, t)
			}
		}
		k, n := len(cols), len(pos)
		if k == 0 || n == 0 {
			continue
		}
		ea = grow.To(ea, k*C) // active decoder rows (k, C)
		for i, v := range cols {
			copy(ea[i*C:(i+1)*C], emb[int(v)*C:(int(v)+1)*C])
		}
		za = grow.To(za, n*C) // real positions (n, C)
		for i, t := range pos {
			copy(za[i*C:(i+1)*C], z[(b*T+t)*C:(b*T+t+1)*C])
		}
		lg = grow.To(lg, n*k) // logits, then dlogit (n, k)
		Sgemm(false, true, n, k, C, 1, za, C, ea, C, 0, lg, k)
		for r := range n {
			l := lg[r*k : (r+1)*k]
			for i, v := range cols {
				if l[i]+bias[v] > 0 {
					l[i] = g[i]
				} else {
					l[i] = 0
				}
			}
		}
		if dz != nil {
			dza = grow.To(dza, n*C)
			Sgemm(false, false, n, C, k, 1, lg, k, ea, C, 0, dza, C)
			for i, t := range pos {
				axpy(dz[(b*T+t)*C:(b*T+t+1)*C], dza[i*C:(i+1)*C], 1)
			}
		}
		if demb != nil {
			dea = grow.To(dea, k*C)
			Sgemm(true, false, k, C, n, 1, lg, k, za, C, 0, dea, C)
			for i, v := range cols {
				axpy(demb[int(v)*C:(int(v)+1)*C], dea[i*C:(i+1)*C], 1)
			}
		}
		if dbias != nil {
			for r := range n {
				for i, v := range cols {
					dbias[v] += lg[r*k+i]
				}
			}
		}
	}
}
