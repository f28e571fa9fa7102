//go:build !cgo

package nn

// foldMaxRows folds the logit rows x (len(seg) rows of n, leading dimension
// ldx) into running maxima: row i updates mx[seg[i]·ldm : +n] where its value
// is strictly larger, recording position tpos[i] in am at the same offsets.
// Ties keep the earlier row, so the first maximal position wins.
func foldMaxRows(mx []float32, am []int32, ldm int, x []float32, ldx int, seg, tpos []int32, n int) {
	for i, s := range seg {
		m := mx[int(s)*ldm : int(s)*ldm+n]
		a := am[int(s)*ldm : int(s)*ldm+n]
		t := tpos[i]
		for j, v := range x[i*ldx : i*ldx+n] {
			if v > m[j] {
				m[j] = v
				a[j] = t
			}
		}
	}
}

func geluKernel(dst, x []float32)            { geluGo(dst, x) }
func geluBackwardKernel(dx, dy, x []float32) { geluBackwardGo(dx, dy, x) }
func softmaxKernel(row []float32)            { softmaxGo(row) }

func softmaxXentKernel(row []float32, label int) float64 { return softmaxXentGo(row, label) }

func layerNormKernel(out, mean, rstd, x, res, gamma, beta []float32, n, c int, eps float64) {
	if res != nil {
		addInto(x[:n*c], res)
	}
	layerNormGo(out, mean, rstd, x, gamma, beta, n, c, eps)
}

func attnScratch(T, d int) int { return 0 }

// attnHeadKernel is C only; without cgo attention takes the BLAS path.
func attnHeadKernel(q, k, v []float32, ld, T, d int, scale float32, pad []int32, p, ctx, scratch []float32) bool {
	return false
}

func adamwKernel(w, g, m, v []float32, b1, b2, stepSize, bc2, eps, decay float64) {
	adamwGo(w, g, m, v, b1, b2, stepSize, bc2, eps, decay)
}

func colSumKernel(db, dout []float32, n, oc, lo, hi int) { colSumGo(db, dout, n, oc, lo, hi) }

func layerNormBackwardKernel(dx, dgamma, dbeta, dout, x, mean, rstd, gamma []float32, n, c int) {
	layerNormBackwardGo(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, n, c)
}
