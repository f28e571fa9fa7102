package nn

import (
	"fmt"
	"math"
	"sync"

	"github.com/spladapt/spladapt/internal/grow"
)

// The SPLADE head: w[b,v] = max_t log1p(relu(z[b,t,:]·E[v,:] + bias[v])) over
// the real (unpadded) positions t of sequence b (Formal et al., SPLADE v2,
// arXiv:2109.10086, max pooling).
//
// Shape legend: B batch, T positions, C hidden width, V vocabulary size.
//
// Because bias, ReLU and log1p are non-decreasing,
//
//	max_t log1p(relu(z_t·E + b)) = log1p(relu(max_t(z_t·E) + b)),
//
// so the forward pass computes z·Eᵀ tile by tile (rows of positions × a block
// of the vocabulary, one Sgemm per tile, the tile sized to stay in L2), folds
// each tile into a running max and argmax, and applies bias/ReLU/log1p once
// per (b, v). The (B·T)×V logit matrix (1 GB at 32×256×30522) never exists.
//
// The backward pass is sparse: d w[b,v] / d logit[b,t,v] is non-zero only at
// t = argmax[b,v] and only where the pooled weight is positive.

// Tile sizes of SpladePoolForward: each worker folds a spladeRows×spladeCols
// float32 logit tile (256×512×4 B = 512 KiB) into the running max, which
// leaves room in a 1 MiB L2 for the packed operands; the tiles are shared
// by the workers, each product on single-threaded OpenBLAS (threads.go;
// BenchmarkSpladeTiling compares tile shapes and worker counts).
const (
	spladeRows = 256
	spladeCols = 512
)

// SpladePoolForward computes the SPLADE max-pooled term weights.
//
//	z      (B, T, C) head-transform output (the input of the tied decoder)
//	mask   (B, T)    1 for a real token, 0 for padding (any value > 0 counts as real)
//	emb    (V, C)    tied decoder weights (the word embeddings)
//	bias   (V)       decoder bias
//	out    (B, V)    set to max_t log1p(relu(z[b,t]·emb[v] + bias[v])) over real t
//	argmax (B, V)    set to the first real t reaching the max of z[b,t]·emb[v],
//	                 or -1 for a sequence with no real token
//
// A sequence with no real token gets an all-zero row. out and argmax are
// overwritten, never read. Cost: 2·(real positions)·V·C flops (padded
// positions are skipped, not computed) plus one compare per logit; extra
// memory is one copy of the real rows of z (packed for the fused kernel,
// gathered for the tiled path when the mask is not all ones), plus one
// logit tile per worker on the tiled path.
//
// With cgo on a CPU with AVX2 and FMA it runs the fused kernel of
// SpladePoolInfer, tracking the argmax per vector lane. Otherwise work is
// split over the workers (Threads) by vocabulary block, each calling one
// product per tile, so one worker's max pass overlaps another's GEMM. Each
// (b, v) is computed the same way whichever worker holds it, so results do
// not depend on the worker count.
func SpladePoolForward(z, mask, emb, bias []float32, B, T, C, V int, out []float32, argmax []int32) {
	if argmax == nil {
		panic("splade: SpladePoolForward needs argmax (SpladePoolInfer does without)")
	}
	if fusedMaxPool && fusedArgmax() {
		spladePoolFused(z, mask, emb, bias, B, T, C, V, out, argmax)
		return
	}
	spladePool(z, mask, emb, bias, B, T, C, V, out, argmax, spladeTiling{spladeRows, spladeCols, Threads()})
}

// maxPoolPanel is the number of positions in a packed panel of the fused
// SPLADE inference kernel (maxpool_cgo.go: two AVX2 vectors).
const maxPoolPanel = 16

// SpladePoolInfer sets out (B,V) as SpladePoolForward does, without the
// argmax a backward pass needs: the inference path of SpladeEncode. With
// cgo it runs a fused kernel that keeps the maxima of z·Eᵀ in registers
// (no logit tile is stored, the embeddings are read in place), on the
// workers (Threads) by vocabulary range; each sequence's real positions are packed
// once into panels of 16. Results equal SpladePoolForward's up to the
// rounding of the dot products (fused multiply-adds in another order).
// Cost: 2·(real positions, rounded up to 16 per sequence)·V·C flops; extra
// memory one packed copy of the real rows of z.
func SpladePoolInfer(z, mask, emb, bias []float32, B, T, C, V int, out []float32) {
	if !fusedMaxPool {
		spladePool(z, mask, emb, bias, B, T, C, V, out, make([]int32, B*V), spladeTiling{spladeRows, spladeCols, Threads()})
		return
	}
	spladePoolFused(z, mask, emb, bias, B, T, C, V, out, nil)
}

// spladePoolFused is SpladePoolInfer's fused path; with argmax non-nil it
// also sets argmax as SpladePoolForward does (AVX2 only: see fusedArgmax).
func spladePoolFused(z, mask, emb, bias []float32, B, T, C, V int, out []float32, argmax []int32) {
	checkSplade(z, emb, bias, B, T, C, V, out, argmax)
	if len(mask) < B*T {
		panic(fmt.Sprintf("splade: len(mask)=%d < B·T=%d", len(mask), B*T))
	}
	poff := make([]int64, B)
	pn := make([]int32, B)
	real := make([]int, B) // real positions per sequence
	prefix := make([]bool, B)
	total := 0
	for b := range B {
		n, pre := 0, true
		for t, mv := range mask[b*T : (b+1)*T] {
			if mv > 0 {
				pre = pre && t == n
				n++
			}
		}
		real[b], prefix[b] = n, pre
		poff[b] = int64(total * maxPoolPanel * C)
		pn[b] = int32((n + maxPoolPanel - 1) / maxPoolPanel)
		total += int(pn[b])
	}
	pa := make([]float32, total*maxPoolPanel*C)
	var gather []float32
	for b := range B {
		if real[b] == 0 {
			continue
		}
		src := z[b*T*C:]
		if !prefix[b] {
			gather = grow.To(gather, real[b]*C)
			i := 0
			for t, mv := range mask[b*T : (b+1)*T] {
				if mv > 0 {
					copy(gather[i*C:(i+1)*C], z[(b*T+t)*C:(b*T+t+1)*C])
					i++
				}
			}
			src = gather
		}
		packPanels(pa[poff[b]:], src, C, real[b], C)
	}
	// Each worker pools its vocabulary range, then applies bias, ReLU and
	// log1p to it (and maps packed rows to positions).
	work := func(v0, v1 int) {
		if total > 0 {
			if !maxPoolRange(pa, poff, pn, emb, C, v0, v1, out, argmax, V) {
				panic("splade: fused argmax pooling without AVX2") // callers check fusedArgmax
			}
		}
		for b := range B {
			row := out[b*V+v0 : b*V+v1]
			if real[b] == 0 {
				clear(row)
				if argmax != nil {
					for i := range argmax[b*V+v0 : b*V+v1] {
						argmax[b*V+v0+i] = -1
					}
				}
				continue
			}
			if argmax != nil && !prefix[b] {
				// Packed row i is the i-th real position.
				pos := realPos(mask[b*T:(b+1)*T], nil)
				am := argmax[b*V+v0 : b*V+v1]
				for i, r := range am {
					if r >= 0 { // −1 only if every logit was NaN
						am[i] = pos[r]
					}
				}
			}
			for v, m := range row {
				s := m + bias[v0+v]
				if s > 0 {
					row[v] = float32(math.Log1p(float64(s)))
				} else {
					row[v] = 0
				}
			}
		}
	}
	// Ranges are whole numbers of the kernel's 6-row blocks.
	nb := (V + 5) / 6
	parallelRanges(nb, func(lo, hi int) { work(lo*6, min(hi*6, V)) })
}

// realPos appends to dst the positions t with mask[t] > 0.
func realPos(mask []float32, dst []int32) []int32 {
	for t, mv := range mask {
		if mv > 0 {
			dst = append(dst, int32(t))
		}
	}
	return dst
}

// spladeTiling is SpladePoolForward's tile shape and worker count (a
// parameter so that benchmarks can compare others).
type spladeTiling struct{ rows, cols, workers int }

func spladePool(z, mask, emb, bias []float32, B, T, C, V int, out []float32, argmax []int32, tl spladeTiling) {
	checkSplade(z, emb, bias, B, T, C, V, out, argmax)
	if len(mask) < B*T {
		panic(fmt.Sprintf("splade: len(mask)=%d < B·T=%d", len(mask), B*T))
	}
	// Real positions in order: seg[i] = b, tpos[i] = t of the i-th real row.
	// A tile of rows may span sequences, so short sequences still make
	// full-height GEMMs.
	seg := make([]int32, 0, B*T)
	tpos := make([]int32, 0, B*T)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			if mask[b*T+t] > 0 {
				seg = append(seg, int32(b))
				tpos = append(tpos, int32(t))
			}
		}
	}
	negInf := float32(math.Inf(-1))
	for i := range out[:B*V] {
		out[i] = negInf // running maxima live in out until the final pass
	}
	for i := range argmax[:B*V] {
		argmax[i] = -1
	}
	nr := len(seg)
	if nr > 0 && V > 0 {
		rows := z[:B*T*C] // (nr, C) real rows of z, contiguous
		if nr < B*T {
			rows = make([]float32, nr*C)
			for i := range seg {
				src := (int(seg[i])*T + int(tpos[i])) * C
				copy(rows[i*C:(i+1)*C], z[src:src+C])
			}
		}
		nblocks := (V + tl.cols - 1) / tl.cols
		work := func(w, nw int) {
			tile := make([]float32, tl.rows*tl.cols) // (R, n) logits
			for r0 := 0; r0 < nr; r0 += tl.rows {
				r1 := min(r0+tl.rows, nr)
				for bi := w; bi < nblocks; bi += nw {
					v0 := bi * tl.cols
					n := min(tl.cols, V-v0)
					sgemmSerial(false, true, r1-r0, n, C, 1, rows[r0*C:], C, emb[v0*C:], C, 0, tile, n)
					foldMaxRows(out[v0:], argmax[v0:], V, tile, n, seg[r0:r1], tpos[r0:r1], n)
				}
			}
		}
		nw := min(nblocks, max(tl.workers, 1))
		var wg sync.WaitGroup
		for w := 1; w < nw; w++ {
			wg.Go(func() { work(w, nw) })
		}
		work(0, nw)
		wg.Wait()
	}
	for b := 0; b < B; b++ {
		row, am := out[b*V:(b+1)*V], argmax[b*V:(b+1)*V]
		if V > 0 && am[0] < 0 {
			clear(row) // no real token
			continue
		}
		for v, m := range row {
			s := m + bias[v]
			if s > 0 {
				row[v] = float32(math.Log1p(float64(s)))
			} else {
				row[v] = 0
			}
		}
	}
}

// SpladePoolBackward accumulates the gradients of SpladePoolForward given
// dout = dL/dout.
//
//	dout   (B, V)    gradient of the loss with respect to out
//	z      (B, T, C), emb (V, C), bias (V): the forward inputs
//	argmax (B, V), out (B, V): the forward outputs
//	dz     (B, T, C) += gradient with respect to z
//	demb   (V, C)    += gradient with respect to emb
//	dbias  (V)       += gradient with respect to bias
//
// Only entries with out[b,v] > 0 carry gradient: there
// dlogit = dout[b,v]·1/(1+s) with s = max + bias = expm1(out[b,v]), and it
// flows to position argmax[b,v] only. (At s = 0 exactly the ReLU's
// subgradient is taken as 0.) Any of dz, demb, dbias may be nil to skip it.
// Cost: 4·C flops per positive weight; the dz and demb passes each run on
// the workers (Threads) over disjoint rows, so no locking, and each row
// adds its terms in the same order whatever the worker count.
func SpladePoolBackward(dout, z, emb, bias []float32, argmax []int32, out []float32, B, T, C, V int, dz, demb, dbias []float32) {
	checkSplade(z, emb, bias, B, T, C, V, out, argmax)
	if len(dout) < B*V {
		panic(fmt.Sprintf("splade: len(dout)=%d < B·V=%d", len(dout), B*V))
	}
	// g[b,v] = dL/dlogit at the argmax, 0 where no gradient flows.
	g := make([]float32, B*V)
	for i, w := range out[:B*V] {
		if w > 0 && dout[i] != 0 && argmax[i] >= 0 {
			g[i] = dout[i] * float32(math.Exp(-float64(w)))
		}
	}
	if dz != nil {
		if len(dz) < B*T*C {
			panic(fmt.Sprintf("splade: len(dz)=%d < B·T·C=%d", len(dz), B*T*C))
		}
		// dz[b,argmax,:] += g·emb[v,:]: split by sequence.
		parallelRanges(B, func(lo, hi int) {
			for b := lo; b < hi; b++ {
				for v := 0; v < V; v++ {
					gv := g[b*V+v]
					if gv == 0 {
						continue
					}
					t := int(argmax[b*V+v])
					axpy(dz[(b*T+t)*C:(b*T+t+1)*C], emb[v*C:(v+1)*C], gv)
				}
			}
		})
	}
	if demb != nil || dbias != nil {
		if demb != nil && len(demb) < V*C {
			panic(fmt.Sprintf("splade: len(demb)=%d < V·C=%d", len(demb), V*C))
		}
		if dbias != nil && len(dbias) < V {
			panic(fmt.Sprintf("splade: len(dbias)=%d < V=%d", len(dbias), V))
		}
		// demb[v,:] += g·z[b,argmax,:]: split by vocabulary range.
		parallelRanges(V, func(lo, hi int) {
			for b := 0; b < B; b++ {
				for v := lo; v < hi; v++ {
					gv := g[b*V+v]
					if gv == 0 {
						continue
					}
					if dbias != nil {
						dbias[v] += gv
					}
					if demb != nil {
						t := int(argmax[b*V+v])
						axpy(demb[v*C:(v+1)*C], z[(b*T+t)*C:(b*T+t+1)*C], gv)
					}
				}
			}
		})
	}
}

// axpy sets y += a·x over len(y) elements.
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

func checkSplade(z, emb, bias []float32, B, T, C, V int, out []float32, argmax []int32) {
	switch {
	case len(z) < B*T*C:
		panic(fmt.Sprintf("splade: len(z)=%d < B·T·C=%d", len(z), B*T*C))
	case len(emb) < V*C:
		panic(fmt.Sprintf("splade: len(emb)=%d < V·C=%d", len(emb), V*C))
	case len(bias) < V:
		panic(fmt.Sprintf("splade: len(bias)=%d < V=%d", len(bias), V))
	case len(out) < B*V || (argmax != nil && len(argmax) < B*V):
		panic(fmt.Sprintf("splade: len(out)=%d, len(argmax)=%d < B·V=%d", len(out), len(argmax), B*V))
	}
}

// spladeEncodeRows bounds the positions SpladeEncode runs through the
// encoder at once: activations cost ~400 KB per position for distilbert-base
// at T=256 (all layers are kept for a backward), so 2048 positions keep
// SPLADE encoding of a 32×256 batch under ~1 GB while the GEMMs stay
// 2048 rows tall.
const spladeEncodeRows = 2048

// SpladeEncode computes the SPLADE term weights of batch b with model m for
// inference: the encoder (Model.Encode), the MLM head transform over every
// position, and the pooling of m.Config.SpladePooling with the tied decoder
// (word embeddings and decoder bias), writing out (B,V) and, unless argmax
// is nil, argmax (B,V) (max pooling only; a sum-pooled model panics).
// With argmax nil the pooling is SpladePoolInfer (the fused kernel),
// otherwise SpladePoolForward. It runs groups of
// sequences of at most spladeEncodeRows positions (at least one sequence)
// through the model in turn, so memory stays bounded for large batches;
// m's default pass is left holding the last group's activations, so a
// training step must call Encode, HeadTransform and SpladePoolForward
// itself. Cost: see SpladeEncodeFLOPs; padded positions go through the
// encoder and the head transform but not the vocabulary projection.
func SpladeEncode(m *Model, b Batch, out []float32, argmax []int32) {
	spladeEncode(m, b, out, argmax, spladeEncodeRows)
}

func spladeEncode(m *Model, b Batch, out []float32, argmax []int32, maxRows int) {
	C, V, T := m.Config.HiddenSize, m.Config.VocabSize, b.T
	per := max(1, maxRows/T) // sequences per group
	for s0 := 0; s0 < b.B; s0 += per {
		n := min(per, b.B-s0)
		sub := Batch{B: n, T: T, InputIDs: b.InputIDs[s0*T : (s0+n)*T], Mask: b.Mask[s0*T : (s0+n)*T]}
		if b.TypeIDs != nil {
			sub.TypeIDs = b.TypeIDs[s0*T : (s0+n)*T]
		}
		h := m.Encode(sub)
		z := m.HeadTransform(h, n*T)
		if m.Config.SpladePooling == PoolSum {
			if argmax != nil {
				panic("splade: argmax asked of a sum-pooled model")
			}
			SpladeSumPoolForward(z, sub.Mask, m.wordEmb.W, m.decBias.W, n, T, C, V, out[s0*V:(s0+n)*V])
		} else if argmax == nil {
			SpladePoolInfer(z, sub.Mask, m.wordEmb.W, m.decBias.W, n, T, C, V, out[s0*V:(s0+n)*V])
		} else {
			SpladePoolForward(z, sub.Mask, m.wordEmb.W, m.decBias.W, n, T, C, V, out[s0*V:(s0+n)*V], argmax[s0*V:(s0+n)*V])
		}
	}
}
