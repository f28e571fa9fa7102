package nn

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Workers. SetThreads(n) (the config key threads) sets how many goroutines
// the parallel parts of nn use, 1..N:
//
//   - large matrix products (Sgemm, LinearForward, LinearBackward under cgo)
//     are split by rows of C over up to n goroutines, each calling OpenBLAS
//     on one thread (blas_cgo.go says why OpenBLAS's own pool is not used);
//     with the pure-Go backend gonum splits them over GOMAXPROCS itself;
//   - element-wise kernels (GELU, its backward, LayerNorm and its backward,
//     bias-gradient column sums, AdamW) split by elements, rows or columns;
//   - attention heads (forward and backward) and the SPLADE pooling
//     (vocabulary ranges, sequences) split by independent ranges.
//
// Results do not depend on the worker count, bit for bit. Element-wise
// kernels, LayerNorm rows, bias-gradient columns, attention heads and SPLADE
// vocabulary ranges are independent and computed by the same arithmetic
// whichever part holds them (element splits fall on multiples of 16 so that
// vector lanes line up). Two things are not independent of how they are
// cut, so their cut depends on the shape alone and the workers only share
// out its pieces: a large product runs as gemmChunks(m, n, k) separate
// OpenBLAS calls on row blocks of C, whatever the worker count (OpenBLAS
// rounds a row differently depending on the rows around it in the call: on
// an AVX-512 EPYC, 0.3.21, 16-row calls differ from one 200-row call in
// the last bits), and LayerNorm's dγ/dβ sum is cut into shape-fixed blocks
// of rows added in a fixed order (LayerNormBackward).
//
// Cost: a part is handed to a parked helper goroutine (~1 µs), so work is
// split only from a size that pays for it: products of at least 32 rows and
// 2²² flops (as many chunks as 64-row blocks, 2 to 32, each at least 2²¹
// flops; running a chunk per call repacks op(B), under 2% of the flops of a
// 64-row chunk); element-wise kernels from parallelMin elements, with at
// least parallelMin/2 per part.
// Smaller calls run on the calling goroutine, as do calls made while the
// helpers are busy (a call from inside a part, or from a second goroutine
// using another model concurrently), so nested parallelism never
// oversubscribes. The helpers (n−1 of them) are started on first use and
// then park on a channel.
var workers atomic.Int32

// Threads is the worker count set by SetThreads (at least 1).
func Threads() int { return int(workers.Load()) }

func setWorkers(n int) { workers.Store(int32(max(n, 1))) }

// Sizes from which a product is cut into chunks (see above): when C has at
// least gemmMinRows rows and the product 2·gemmMinFlops flops.
const (
	gemmMinRows   = 32
	gemmMinFlops  = 1 << 21
	gemmChunkRows = 64 // rows per chunk aimed at
	gemmMaxChunks = 32 // so that 32 workers have a chunk each
)

// gemmChunks is the number of row blocks a product with C (m, n) and inner
// dimension k runs as: 1 below the thresholds, else m/gemmChunkRows clamped
// to [2, gemmMaxChunks], at most one per 2²¹ flops. It depends on the shape
// only, never on the worker count; chunk c is rows gemmChunkStart(m, p, c)
// up to the next start (multiples of 8: whole register blocks).
func gemmChunks(m, n, k int) int {
	flops := 2 * float64(m) * float64(n) * float64(k)
	if m < gemmMinRows || flops < 2*gemmMinFlops {
		return 1
	}
	return min(max(m/gemmChunkRows, 2), gemmMaxChunks, int(min(flops/gemmMinFlops, gemmMaxChunks)))
}

func gemmChunkStart(m, p, c int) int {
	if c >= p {
		return m
	}
	return (m * c / p) &^ 7
}

// ewJob is one parallel call, passed by value to the helper goroutines so
// that splitting allocates nothing (training steps are allocation-free).
type ewJob struct {
	op      int
	a, b, c []float32           // the kernel's slices, all of the same length
	n       int                 // opFunc, opLayerNorm, opColSum, opLNBackward: the range [0, n)
	f       func(w, lo, hi int) // opFunc
	ln      lnArgs              // opLayerNorm
	gemm    *gemmArgs           // opGemm (cgo only)
	adam    adamArgs            // opAdamW
	cs      colSumArgs          // opColSum
	lnb     lnbArgs             // opLNBackward
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

// parts returns how many parts j splits into with nw workers, and its
// range [0, n) (elements, rows, columns or blocks as run takes them).
func (j ewJob) parts(nw int) (p, n int) {
	// each part at least parallelMin/2 elements, from parallelMin
	ew := func(size int) int {
		if size < parallelMin {
			return 1
		}
		return max(2, size/(parallelMin/2))
	}
	switch j.op {
	case opFunc, opLNBackward, opGemm: // ranges of heads, blocks, chunks
		return min(nw, j.n), j.n
	case opAdamW:
		return min(nw, ew(j.n)), j.n
	case opLayerNorm:
		return min(nw, j.n, ew(j.n*j.ln.c)), j.n
	case opColSum:
		return min(nw, j.n, ew(j.cs.n*j.cs.oc)), j.n
	}
	return min(nw, ew(len(j.a))), len(j.a)
}

// bound is the start of part i of p over [0, n): element splits fall on
// multiples of 16 (vector lanes line up with an unsplit call), row splits
// of a product are chunk numbers (gemmChunks).
func (j ewJob) bound(i, p, n int) int {
	if i == p {
		return n
	}
	b := int(int64(n) * int64(i) / int64(p))
	switch j.op {
	case opGELU, opGELUBackward, opAdamW:
		b &^= 15
	}
	return b
}

func (j ewJob) run(w, lo, hi int) {
	switch j.op {
	case opFunc:
		j.f(w, lo, hi)
	case opLayerNorm:
		j.ln.rows(lo, hi)
	case opGemm:
		j.gemm.chunks(lo, hi)
	case opAdamW:
		j.adam.run(lo, hi)
	case opColSum:
		j.cs.run(lo, hi)
	case opLNBackward:
		j.lnb.blocks(lo, hi)
	case opGELU:
		geluKernel(j.a[lo:hi], j.b[lo:hi])
	case opGELUBackward:
		geluBackwardKernel(j.a[lo:hi], j.b[lo:hi], j.c[lo:hi])
	}
}

// ewTask is part w (lo..hi) of a job, for a helper.
type ewTask struct {
	j         ewJob
	w, lo, hi int
}

// The helpers that run all parts but the first of a split job. ewMu makes
// it one job at a time; a caller that finds it held runs its job inline.
var (
	ewMu   sync.Mutex
	ewWork []chan ewTask // one per helper, guarded by ewMu
	ewDone = make(chan struct{})
)

// split runs j over its range, split into parts over Threads() workers
// (see parts), the first part on the calling goroutine.
func split(j ewJob) {
	splitN(j, Threads())
}

func splitN(j ewJob, nw int) {
	p, n := j.parts(nw)
	if p < 2 || !ewMu.TryLock() {
		j.run(0, 0, n)
		return
	}
	for len(ewWork) < p-1 {
		c := make(chan ewTask)
		ewWork = append(ewWork, c)
		go func() {
			for t := range c {
				t.j.run(t.w, t.lo, t.hi)
				ewDone <- struct{}{}
			}
		}()
	}
	for i := 1; i < p; i++ {
		ewWork[i-1] <- ewTask{j, i, j.bound(i, p, n), j.bound(i+1, p, n)}
	}
	j.run(0, 0, j.bound(1, p, n))
	for i := 1; i < p; i++ {
		<-ewDone
	}
	ewMu.Unlock()
}

// parallelBLAS runs f(w, lo, hi) over [0, n) split into at most nw
// contiguous ranges, range w on worker w (0 on the calling goroutine): for
// many small independent products (attention heads), single-threaded BLAS
// calls side by side beat one split call after another. nw is the caller's
// Threads() read once, so that it can size per-worker scratch (indexed by
// w < nw) beforehand. f must only write state owned by its range or its w;
// when the helpers are busy (a concurrent caller) f(0, 0, n) runs inline,
// and so do the Sgemm calls inside f. It allocates nothing if f is an
// existing func value.
func parallelBLAS(nw, n int, f func(w, lo, hi int)) {
	if n < 2 || nw < 2 {
		f(0, 0, n)
		return
	}
	splitN(ewJob{op: opFunc, n: n, f: f}, nw)
}

// parallelRanges runs f(lo, hi) over [0, n) split into at most Threads()
// contiguous ranges on their own goroutines (for calls that are not on an
// allocation-free path). f must only write state owned by its range.
func parallelRanges(n int, f func(lo, hi int)) {
	p := min(Threads(), n)
	if p < 2 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < p; i++ {
		lo, hi := n*i/p, n*(i+1)/p
		wg.Go(func() { f(lo, hi) })
	}
	f(0, n/p)
	wg.Wait()
}

// RowInvariantProducts reports whether a row of a matrix product (op(A) =
// A, as in every linear layer's forward) comes out the same bit for bit
// whatever other rows share the product and wherever it sits among them.
// It depends on the kernels: OpenBLAS's Sandy Bridge ones are, its
// Haswell/Zen ones (picked on Zen 3) round a row by its place within a
// 12-row register block and by whether that block is whole, and gonum's
// (the pure-Go build) are not either. Where they are not, an encoded
// document can differ in its last bit with its batch. "make test" runs the
// tests that need it with OPENBLAS_CORETYPE=Sandybridge as well. Cost: two
// small products, the first time.
var RowInvariantProducts = sync.OnceValue(func() bool {
	const M, K, N = 75, 96, 130
	rng := rand.New(rand.NewPCG(5, 6))
	a, w := make([]float32, M*K), make([]float32, N*K)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	full, part := make([]float32, M*N), make([]float32, 5*N)
	Sgemm(false, true, M, N, K, 1, a, K, w, K, 0, full, N)
	Sgemm(false, true, 5, N, K, 1, a[3*K:], K, w, K, 0, part, N)
	return slices.Equal(part, full[3*N:8*N])
})
