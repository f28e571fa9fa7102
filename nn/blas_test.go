package nn

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// naiveGemm is the oracle for Sgemm, in float64.
func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float32 {
	out := append([]float32(nil), c...)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var x, y float32
				if transA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if transB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s += float64(x) * float64(y)
			}
			out[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
	return out
}

func TestSgemmAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// The last size is above the threshold from which the cgo backend
	// cuts C into row chunks shared by the workers (2·m·n·k ≥ 2²², m ≥ 32).
	for _, tc := range []struct{ m, n, k int }{{1, 1, 1}, {3, 5, 7}, {17, 9, 33}, {64, 65, 63}, {4, 3, 0}, {97, 130, 170}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				lda, ldb, ldc := tc.k+2, tc.n+1, tc.n+3
				ar, br := tc.m, tc.k
				if ta {
					lda, ar = tc.m+2, tc.k
				}
				if tb {
					ldb, br = tc.k+1, tc.n
				}
				a := randSlice(rng, max(ar*lda, 1))
				b := randSlice(rng, max(br*ldb, 1))
				c := randSlice(rng, tc.m*ldc)
				want := naiveGemm(ta, tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
				Sgemm(ta, tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
				for i := range want {
					if d := math.Abs(float64(want[i] - c[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("%s m=%d n=%d k=%d ta=%v tb=%v: c[%d]=%g want %g", Backend, tc.m, tc.n, tc.k, ta, tb, i, c[i], want[i])
					}
				}
			}
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{256, 1024} {
		b.Run("backend="+Backend+"/n="+strconv.Itoa(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x, y, z := randSlice(rng, n*n), randSlice(rng, n*n), make([]float32, n*n)
			for b.Loop() {
				Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
			}
			b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// TestSgemmRowInvariant: a row of a product (op(A) = A, as in every
// forward linear layer) is the same bit for bit whatever the number of
// rows that share the product and wherever the row sits among them, when
// RowInvariantProducts says so ("make test" runs it again on OpenBLAS's
// Sandy Bridge kernels, which are). A failure means the probe lies.
func TestSgemmRowInvariant(t *testing.T) {
	if !RowInvariantProducts() {
		if os.Getenv("OPENBLAS_CORETYPE") == "Sandybridge" && Backend == "openblas" {
			t.Fatal("OpenBLAS's Sandy Bridge kernels round a row by its place in the product")
		}
		t.Skipf("the %s products on this CPU round a row by its place in the product (RowInvariantProducts); make test runs it again on OpenBLAS's Sandy Bridge kernels", Backend)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const M, K, N = 75, 96, 130
	a, w := make([]float32, M*K), make([]float32, N*K)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	bias := make([]float32, N)
	for i := range bias {
		bias[i] = float32(rng.NormFloat64())
	}
	full := make([]float32, M*N)
	sgemmBias(full, a, w, bias, M, K, N)
	for _, lo := range []int{0, 3, 16, 40} {
		for _, m := range []int{1, 2, 5, 8, 15, 17, 33} {
			if lo+m > M {
				continue
			}
			part := make([]float32, m*N)
			sgemmBias(part, a[lo*K:], w, bias, m, K, N)
			for r := range m {
				for j := range N {
					if part[r*N+j] != full[(lo+r)*N+j] {
						t.Fatalf("rows %d..%d: row %d column %d is %v, in the %d-row product %v",
							lo, lo+m-1, lo+r, j, part[r*N+j], M, full[(lo+r)*N+j])
					}
				}
			}
		}
	}
}
