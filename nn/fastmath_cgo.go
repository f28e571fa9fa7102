//go:build cgo

package nn

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <cblas.h>

// fold_max_rows folds rows of x into running maxima: for row i, the maxima
// of sequence seg[i] (at mx + seg[i]*ldm) take x[i,j] where it is strictly
// larger, and am records position tpos[i]. Branch-free so that it
// vectorises; target_clones picks AVX2 at load time where available.
__attribute__((target_clones("avx2","default")))
static void fold_max_rows(float *mx, int32_t *am, long ldm, const float *x, long ldx,
		const int32_t *seg, const int32_t *tpos, int rows, int n) {
	for (int i = 0; i < rows; i++) {
		float *restrict m = mx + (long)seg[i] * ldm;
		int32_t *restrict a = am + (long)seg[i] * ldm;
		const float *restrict xr = x + (long)i * ldx;
		int32_t t = tpos[i];
		for (int j = 0; j < n; j++) {
			float v = xr[j];
			int gt = v > m[j];
			m[j] = gt ? v : m[j];
			a[j] = gt ? t : a[j];
		}
	}
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// foldMaxRows folds the logit rows x (len(seg) rows of n, leading dimension
// ldx) into running maxima: row i updates mx[seg[i]·ldm : +n] where its value
// is strictly larger, recording position tpos[i] in am at the same offsets.
// Ties keep the earlier row, so the first maximal position wins.
func foldMaxRows(mx []float32, am []int32, ldm int, x []float32, ldx int, seg, tpos []int32, n int) {
	if len(seg) == 0 || n == 0 {
		return
	}
	last := 0
	for _, s := range seg {
		last = max(last, int(s))
	}
	if len(x) < (len(seg)-1)*ldx+n || len(mx) < last*ldm+n || len(am) < last*ldm+n || len(tpos) < len(seg) {
		panic(fmt.Sprintf("foldMaxRows: slices too short for %d rows of %d", len(seg), n))
	}
	C.fold_max_rows((*C.float)(unsafe.Pointer(&mx[0])), (*C.int32_t)(unsafe.Pointer(&am[0])), C.long(ldm),
		(*C.float)(unsafe.Pointer(&x[0])), C.long(ldx),
		(*C.int32_t)(unsafe.Pointer(&seg[0])), (*C.int32_t)(unsafe.Pointer(&tpos[0])), C.int(len(seg)), C.int(n))
}

// headWorkers is how many goroutines the SPLADE head splits its GEMMs over:
// two when OpenBLAS may use two or more threads.
func headWorkers() int { return min(int(C.openblas_get_num_threads()), 2) }

// singleThreadBLAS sets OpenBLAS to one thread and returns the function that
// restores the previous count.
func singleThreadBLAS() (restore func()) {
	n := C.openblas_get_num_threads()
	C.openblas_set_num_threads(1)
	return func() { C.openblas_set_num_threads(n) }
}
