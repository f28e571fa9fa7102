//go:build !cgo

package nn

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Backend names the matrix-product implementation in use.
const Backend = "gonum"

func init() { setWorkers(runtime.GOMAXPROCS(0)) }

// SetThreads sets how many workers the parallel kernels use (values below
// 1 mean 1); see threads.go. Matrix products are gonum's, which splits them
// over GOMAXPROCS goroutines itself (each element of C summed in the same
// order whatever the split, so results do not depend on either count).
func SetThreads(n int) { setWorkers(n) }

var impl gonum.Implementation

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// where op(X) is X or Xᵀ: op(A) is (m, k), op(B) is (k, n), C is (m, n),
// with leading dimensions lda, ldb, ldc. Cost: 2·m·n·k flops.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	if k == 0 {
		// gonum requires non-empty operands; C = beta·C.
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	impl.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmArgs is the cgo backend's split product; gonum splits its own.
type gemmArgs struct{}

func (g *gemmArgs) chunks(lo, hi int) {}

// sgemmSerial is Sgemm (gonum's result does not depend on its split).
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmBias sets out (n,oc) = inp (n,ic)·wᵀ + b.
func sgemmBias(out, inp, w, b []float32, n, ic, oc int) {
	for r := range n {
		copy(out[r*oc:(r+1)*oc], b)
	}
	Sgemm(false, true, n, oc, ic, 1, inp, ic, w, ic, 1, out, oc)
}
