package nn

import "fmt"

// checkGemm panics with both shapes when a slice is too short for the
// product: a programming error, never a user-input one.
func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if lda < ac || ldb < bc || ldc < n {
		panic(fmt.Sprintf("sgemm: leading dimensions lda=%d ldb=%d ldc=%d too small for A %dx%d B %dx%d C %dx%d", lda, ldb, ldc, ar, ac, br, bc, m, n))
	}
	if (ar > 0 && len(a) < (ar-1)*lda+ac) || (br > 0 && len(b) < (br-1)*ldb+bc) || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("sgemm: slices too short: len(A)=%d for %dx%d/%d, len(B)=%d for %dx%d/%d, len(C)=%d for %dx%d/%d",
			len(a), ar, ac, lda, len(b), br, bc, ldb, len(c), m, n, ldc))
	}
}
