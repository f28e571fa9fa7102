package nn

import "sync"

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

// parallelMin is the element count from which GELU and GELUBackward split
// their work over two goroutines (a goroutine handoff costs ~1 µs, ~1000
// elements of work).
const parallelMin = 1 << 14

// GELU sets dst[i] = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the exact (erf) GELU of
// BERT and DistilBERT, with relative error below 3e-7 for every float32 x
// whose result is a normal float32 (fastmath.go: normCDF). dst and x may
// alias. Large slices are split over two goroutines; do not call it while
// an Sgemm runs.
func GELU(dst, x []float32) {
	split2(ewJob{op: opGELU, a: dst, b: x[:len(dst)]})
}

// GELUBackward sets dx[i] = dy[i]·GELU'(x[i]), where
// GELU'(x) = Φ(x) + x·φ(x), with error below 3e-7·|dy|·(Φ(x)+|x|·φ(x)).
// dx may alias dy.
func GELUBackward(dx, dy, x []float32) {
	split2(ewJob{op: opGELUBackward, a: dx, b: dy[:len(dx)], c: x[:len(dx)]})
}

// SoftmaxInPlace replaces row by softmax(row), subtracting the maximum
// first for stability. Entries equal to -Inf get probability 0; a row
// entirely -Inf becomes all zeros. Each probability p_i has relative error
// below 1e-6 + |x_i − max|·2⁻²⁴ (float32 exp with ≤ 4 ulp, fastmath.go:
// expf32, a float32 sum, and the float32 rounding of x_i − max).
func SoftmaxInPlace(row []float32) { softmaxKernel(row) }

// ewJob is one element-wise call, passed by value to the helper goroutine
// so that splitting allocates nothing (training steps are allocation-free).
type ewJob struct {
	op      int
	a, b, c []float32        // the kernel's slices, all of the same length
	n       int              // opFunc, opLayerNorm: the range [0, n)
	f       func(lo, hi int) // opFunc
	ln      lnArgs           // opLayerNorm
	gemm    *gemmArgs        // opGemm (cgo only)
	adam    adamArgs         // opAdamW
	cs      colSumArgs       // opColSum
	lnb     lnbArgs          // opLNBackward
}

// lnArgs are LayerNormForward's arguments; rows split between workers.
type lnArgs struct {
	out, mean, rstd, x, res, gamma, beta []float32 // res: nil, or added to x first
	c                                    int
	eps                                  float64
}

func (a lnArgs) rows(lo, hi int) {
	c := a.c
	var res []float32
	if a.res != nil {
		res = a.res[lo*c : hi*c]
	}
	layerNormKernel(a.out[lo*c:hi*c], a.mean[lo:hi], a.rstd[lo:hi], a.x[lo*c:hi*c], res, a.gamma, a.beta, hi-lo, c, a.eps)
}

const (
	opGELU = iota
	opGELUBackward
	opFunc
	opLayerNorm
	opGemm
	opAdamW
	opColSum
	opLNBackward
)

func (j ewJob) len() int {
	switch j.op {
	case opFunc, opGemm, opAdamW:
		return j.n
	case opLayerNorm:
		return j.n * j.ln.c
	case opColSum:
		return j.cs.n * j.cs.oc
	case opLNBackward:
		return j.n * j.lnb.c
	}
	return len(j.a)
}

func (j ewJob) run(lo, hi int) {
	switch j.op {
	case opFunc:
		j.f(lo, hi)
	case opLayerNorm:
		j.ln.rows(lo, hi)
	case opGemm:
		j.gemm.rows(lo, hi)
	case opAdamW:
		j.adam.run(lo, hi)
	case opColSum:
		j.cs.run(lo, hi)
	case opLNBackward:
		j.lnb.rows(lo, hi)
	case opGELU:
		geluKernel(j.a[lo:hi], j.b[lo:hi])
	case opGELUBackward:
		geluBackwardKernel(j.a[lo:hi], j.b[lo:hi], j.c[lo:hi])
	}
}

// The helper goroutine that runs the upper half of a split job. ewMu makes
// it one job at a time; a caller that finds it busy runs its job inline.
var (
	ewMu    sync.Mutex
	ewOnce  sync.Once
	ewWork  chan ewJob
	ewDone  chan struct{}
	ewRange [2]int
)

// split2 runs j over its length, split in two halves (the upper one on the
// helper goroutine) when the length is at least parallelMin.
func split2(j ewJob) {
	n := j.len()
	if (j.op != opFunc && j.op != opGemm && n < parallelMin) || n < 2 || !ewMu.TryLock() {
		if j.op == opLayerNorm || j.op == opColSum || j.op == opLNBackward {
			n = j.n // run takes row (or column) indices
		}
		j.run(0, n)
		return
	}
	ewOnce.Do(func() {
		ewWork, ewDone = make(chan ewJob), make(chan struct{})
		go func() {
			for w := range ewWork {
				w.run(ewRange[0], ewRange[1])
				ewDone <- struct{}{}
			}
		}()
	})
	mid := (n / 2) &^ 15
	switch j.op {
	case opFunc:
		mid = n / 2
	case opGemm:
		mid = (n / 2) &^ 7
	case opLayerNorm, opColSum, opLNBackward: // split by rows (columns): run takes indices
		mid, n = j.n/2, j.n
	}
	ewRange = [2]int{mid, n}
	ewWork <- j
	j.run(0, mid)
	<-ewDone
	ewMu.Unlock()
}

// parallelBLAS runs f(lo, hi) over [0, n) in two halves, the upper one on the
// helper goroutine: for many small independent products (attention heads),
// two single-threaded BLAS calls side by side beat one split call after
// another. f must only write state owned by its range; when the helper is
// busy (a concurrent caller) f runs inline on the whole range, and so do
// the Sgemm calls inside f. It allocates nothing if f is an existing func
// value.
func parallelBLAS(n int, f func(lo, hi int)) {
	if n < 2 || headWorkers() < 2 {
		f(0, n)
		return
	}
	split2(ewJob{op: opFunc, n: n, f: f})
}
