//go:build cgo

package nn

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// Backend names the matrix-product implementation in use.
const Backend = "openblas"

// OpenBLAS itself always runs on one thread: its own pool spins between
// calls and then steals the cores from the element-wise kernels, attention
// and pooling workers that run between products, so the rows of a large
// product are cut into chunks that our workers share instead (Sgemm,
// threads.go). Without SetThreads the worker count is OpenBLAS's own
// default (OPENBLAS_NUM_THREADS, else one per CPU).
func init() {
	setWorkers(int(C.openblas_get_num_threads()))
	C.openblas_set_num_threads(1)
}

// SetThreads sets how many workers the matrix products and the other
// parallel kernels use (values below 1 mean 1); see threads.go for what
// they split and what it costs. Results do not depend on it.
func SetThreads(n int) {
	setWorkers(n)
	C.openblas_set_num_threads(1)
}

// gemmArgs are Sgemm's arguments; C is cut into p row chunks
// (gemmChunks), which the workers share.
type gemmArgs struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
	bias           []float32 // when set, copied into each row of C first (beta must be 1)
	p              int       // chunks
}

// chunks runs chunks lo..hi−1, one OpenBLAS call each.
func (g *gemmArgs) chunks(lo, hi int) {
	for c := lo; c < hi; c++ {
		g.rows(gemmChunkStart(g.m, g.p, c), gemmChunkStart(g.m, g.p, c+1))
	}
}

// rows runs rows lo..hi−1 of the product on the calling thread.
func (g *gemmArgs) rows(lo, hi int) {
	var a []float32
	if g.transA {
		a = g.a[lo:] // op(A) = Aᵀ: its rows are columns of A
	} else {
		a = g.a[lo*g.lda:]
	}
	if g.bias != nil {
		for r := lo; r < hi; r++ {
			copy(g.c[r*g.ldc:r*g.ldc+g.n], g.bias)
		}
	}
	sgemm1(g.transA, g.transB, hi-lo, g.n, g.k, g.alpha, a, g.lda, g.b, g.ldb, g.beta, g.c[lo*g.ldc:], g.ldc)
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// where op(X) is X or Xᵀ: op(A) is (m, k), op(B) is (k, n), C is (m, n),
// with leading dimensions lda, ldb, ldc. Cost: 2·m·n·k flops.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	sgemmSplit(&gemmArgs{transA, transB, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc, nil, 0})
}

// sgemmSplit runs g as gemmChunks row chunks shared by the workers (inline
// when the helpers are busy, e.g. from within a worker).
func sgemmSplit(g *gemmArgs) {
	g.p = gemmChunks(g.m, g.n, g.k)
	if g.p < 2 {
		g.rows(0, g.m)
		return
	}
	split(ewJob{op: opGemm, n: g.p, gemm: g})
}

// sgemmSerial is Sgemm as one OpenBLAS call on the calling goroutine, for
// code that is itself the parallel unit (attention heads, pooling tiles):
// the same result wherever it runs.
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	sgemm1(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmBias sets out (n,oc) = inp (n,ic)·wᵀ + b; each worker copies the
// bias into its own rows just before its product reads them.
func sgemmBias(out, inp, w, b []float32, n, ic, oc int) {
	if n == 0 || oc == 0 {
		return
	}
	checkGemm(false, true, n, oc, ic, inp, ic, w, ic, out, oc)
	sgemmSplit(&gemmArgs{false, true, n, oc, ic, 1, 1, inp, w, out, ic, ic, oc, b[:oc], 0})
}

// sgemm1 is one cblas_sgemm call (OpenBLAS on one thread).
func sgemm1(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	var pa, pb *float32
	if k > 0 {
		pa, pb = &a[0], &b[0]
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(pa)), C.blasint(lda),
		(*C.float)(unsafe.Pointer(pb)), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
