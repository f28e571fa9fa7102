package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// sweep returns float32 points from lo to hi with the given step, plus the
// float32 neighbours of 0.
func sweep(lo, hi, step float64) []float32 {
	var xs []float32
	for x := lo; x <= hi; x += step {
		xs = append(xs, float32(x))
	}
	return append(xs, 0, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32)
}

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func TestExp64Bound(t *testing.T) {
	worst := 0.0
	for a := -700.0; a <= 700; a += 0.0137 {
		worst = max(worst, relErr(exp64(a), math.Exp(a)))
	}
	if worst > 1e-12 {
		t.Fatalf("exp64: max relative error %g over [-700, 700], bound 1e-12", worst)
	}
	if exp64(-701) != 0 {
		t.Fatalf("exp64(-701) = %g, want 0", exp64(-701))
	}
}

func TestExpf32Bound(t *testing.T) {
	worst := 0.0
	for _, x := range sweep(-87.3, 88, 1e-3) {
		worst = max(worst, relErr(float64(expf32(x)), math.Exp(float64(x))))
	}
	t.Logf("expf32: max relative error %.3g", worst)
	if worst > 2.5e-7 {
		t.Fatalf("expf32: max relative error %g over [-87.3, 88], bound 2.5e-7", worst)
	}
	if expf32(-88) != 0 || !math.IsInf(float64(expf32(89)), 1) {
		t.Fatalf("expf32 range ends: %g %g", expf32(-88), expf32(89))
	}
}

// geluRef is GELU and its derivative in float64 with math.Erf.
func geluRef(x float64) (y, dy, scale float64) {
	c := 0.5 * math.Erfc(-x/math.Sqrt2)
	pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
	return x * c, c + x*pdf, c + math.Abs(x)*pdf
}

// TestGELUBound checks GELU and GELUBackward (the backend in use: cgo C or
// pure Go) and the pure-Go twins against float64 over a dense sweep of
// [-14, 14] (beyond -14, x·Φ(x) is below the float32 normal range).
func TestGELUBound(t *testing.T) {
	xs := sweep(-14, 14, 2e-4)
	rng := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		xs = append(xs, float32(rng.NormFloat64()*3))
	}
	dy := make([]float32, len(xs))
	for i := range dy {
		dy[i] = float32(1 + rng.Float64())
	}
	for _, impl := range []struct {
		name     string
		gelu     func(dst, x []float32)
		backward func(dx, dy, x []float32)
	}{{"GELU/" + Backend, GELU, GELUBackward}, {"geluGo", geluGo, geluBackwardGo}} {
		y := make([]float32, len(xs))
		dx := make([]float32, len(xs))
		impl.gelu(y, xs)
		impl.backward(dx, dy, xs)
		worstY, worstD := 0.0, 0.0
		for i, x := range xs {
			wy, wd, scale := geluRef(float64(x))
			if math.Abs(wy) > 1e-37 {
				worstY = max(worstY, relErr(float64(y[i]), wy))
			} else if math.Abs(float64(y[i])) > 1e-37 {
				t.Fatalf("%s(%g) = %g, want %g", impl.name, x, y[i], wy)
			}
			if d := float64(dy[i]); d*scale > 1e-37 { // normal float32 results only
				worstD = max(worstD, math.Abs(float64(dx[i])-d*wd)/(d*scale))
			}
		}
		t.Logf("%s: max relative error %.3g, backward %.3g", impl.name, worstY, worstD)
		if worstY > 3e-7 || worstD > 3e-7 {
			t.Fatalf("%s: max relative error %g (backward %g), bound 3e-7", impl.name, worstY, worstD)
		}
	}
}

func TestGELUAliasAndSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	n := parallelMin*2 + 17 // split path with an odd tail
	x := randSlice(rng, n)
	want := make([]float32, n)
	geluGo(want, x)
	GELU(x, x) // in place
	for i := range want {
		if relErr(float64(x[i]), float64(want[i])) > 3e-7 && math.Abs(float64(want[i])) > 1e-30 {
			t.Fatalf("in-place GELU[%d] = %g, want %g", i, x[i], want[i])
		}
	}
}

func TestSoftmaxInPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	negInf := float32(math.Inf(-1))
	for _, n := range []int{1, 7, 8, 9, 64, 257} {
		for _, scale := range []float64{0.1, 5, 40} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(rng.NormFloat64() * scale)
			}
			if n > 2 {
				row[1] = negInf
			}
			want := make([]float64, n)
			mx := math.Inf(-1)
			for _, v := range row {
				mx = max(mx, float64(v))
			}
			var s float64
			for i, v := range row {
				want[i] = math.Exp(float64(v) - mx)
				s += want[i]
			}
			row0 := append([]float32(nil), row...)
			SoftmaxInPlace(row)
			for i := range row {
				w := want[i] / s
				if w == 0 && row[i] != 0 {
					t.Fatalf("n=%d: p[%d] = %g, want 0", n, i, row[i])
				}
				// float32 rounding of x−max alone costs |x−max|·2⁻²⁴ relative.
				tol := 1e-6 + math.Abs(float64(row0[i])-mx)*0x1p-24
				if w > 1e-30 && relErr(float64(row[i]), w) > tol {
					t.Fatalf("n=%d scale=%g: p[%d] = %g, want %g", n, scale, i, row[i], w)
				}
			}
		}
	}
	row := []float32{negInf, negInf}
	SoftmaxInPlace(row)
	if row[0] != 0 || row[1] != 0 {
		t.Fatalf("all -Inf row: %v, want zeros", row)
	}
}

func BenchmarkGELU(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 1 << 20
	x := randSlice(rng, n)
	y := make([]float32, n)
	for _, impl := range []struct {
		name string
		f    func()
	}{
		{"impl=kernel/" + Backend, func() { GELU(y, x) }},
		{"impl=go-fast", func() { geluGo(y, x) }},
		{"impl=go-matherf", func() {
			for i, v := range x {
				f := float64(v)
				y[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
			}
		}},
		{"impl=backward/" + Backend, func() { GELUBackward(y, x, x) }},
	} {
		b.Run(fmt.Sprintf("%s/n=%d", impl.name, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				impl.f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
		})
	}
}

func BenchmarkSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const T = 256
	rows := randSlice(rng, T*256)
	for _, impl := range []struct {
		name string
		f    func([]float32)
	}{{"impl=kernel/" + Backend, SoftmaxInPlace}, {"impl=go-fast", softmaxGo}} {
		b.Run(fmt.Sprintf("%s/len=%d", impl.name, T), func(b *testing.B) {
			for b.Loop() {
				for r := 0; r < 256; r++ {
					impl.f(rows[r*T : (r+1)*T])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(T*256), "ns/elem")
		})
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, n := range []int{1, 5, 30522} {
		for _, scale := range []float64{0.01, 3, 30} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(rng.NormFloat64() * scale)
			}
			label := rng.IntN(n)
			// float64 reference
			mx := math.Inf(-1)
			for _, v := range row {
				mx = max(mx, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - mx)
			}
			want := math.Log(s) + mx - float64(row[label])
			row0 := append([]float32(nil), row...)
			for _, impl := range []struct {
				name string
				f    func([]float32, int) float64
			}{{"kernel/" + Backend, SoftmaxCrossEntropy}, {"go", softmaxXentGo}} {
				r := append([]float32(nil), row0...)
				got := impl.f(r, label)
				if d := math.Abs(got - want); d > 1e-6*math.Abs(want) && d > 1e-9 {
					t.Fatalf("%s n=%d scale=%g: loss %.9g, want %.9g", impl.name, n, scale, got, want)
				}
				var ps float64
				for i, p := range r {
					w := math.Exp(float64(row0[i])-mx) / s
					tol := 1e-6 + math.Abs(float64(row0[i])-mx)*0x1p-24
					if w > 1e-30 && relErr(float64(p), w) > tol {
						t.Fatalf("%s n=%d: p[%d] = %g, want %g", impl.name, n, i, p, w)
					}
					ps += float64(p)
				}
				if math.Abs(ps-1) > 1e-5 {
					t.Fatalf("%s n=%d: probabilities sum to %g", impl.name, n, ps)
				}
			}
		}
	}
}

func BenchmarkSoftmaxCrossEntropy(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const V, rows = 30522, 32
	x := randSlice(rng, V*rows)
	for _, impl := range []struct {
		name string
		f    func([]float32, int) float64
	}{{"impl=kernel/" + Backend, SoftmaxCrossEntropy}, {"impl=go-fast", softmaxXentGo}} {
		b.Run(fmt.Sprintf("%s/vocab=%d", impl.name, V), func(b *testing.B) {
			for b.Loop() {
				for r := range rows {
					impl.f(x[r*V:(r+1)*V], r)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(V*rows), "ns/elem")
		})
	}
}

// TestLayerNormKernelMatchesGo: the backend's LayerNormForward (C with
// cgo, split over the workers for large inputs) against the pure-Go
// kernel, on a split-size input with an odd width.
func TestLayerNormKernelMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, sz := range [][2]int{{3, 5}, {parallelMin/37 + 9, 37}} {
		n, c := sz[0], sz[1]
		x, gamma, beta := randSlice(rng, n*c), randSlice(rng, c), randSlice(rng, c)
		for i := range x {
			x[i] = x[i]*3 + 10 // an offset mean, as in residual streams
		}
		out, mean, rstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
		wout, wmean, wrstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
		LayerNormForward(out, mean, rstd, x, gamma, beta, n, c, 1e-12)
		layerNormGo(wout, wmean, wrstd, x, gamma, beta, n, c, 1e-12)
		for i := range wout {
			if math.Abs(float64(out[i]-wout[i])) > 1e-5*(1+math.Abs(float64(wout[i]))) {
				t.Fatalf("n=%d c=%d: out[%d] = %g, want %g", n, c, i, out[i], wout[i])
			}
		}
		for r := range n {
			if relErr(float64(mean[r]), float64(wmean[r])) > 1e-6 || relErr(float64(rstd[r]), float64(wrstd[r])) > 1e-6 {
				t.Fatalf("n=%d c=%d: row %d stats (%g, %g), want (%g, %g)", n, c, r, mean[r], rstd[r], wmean[r], wrstd[r])
			}
		}
		// The residual form: x += res in place, then the same LayerNorm.
		res := randSlice(rng, n*c)
		sum := append([]float32(nil), x...)
		addInto(sum, res)
		layerNormGo(wout, wmean, wrstd, sum, gamma, beta, n, c, 1e-12)
		LayerNormResidualForward(out, mean, rstd, x, res, gamma, beta, n, c, 1e-12)
		for i := range wout {
			if x[i] != sum[i] {
				t.Fatalf("n=%d c=%d: residual sum x[%d] = %g, want %g", n, c, i, x[i], sum[i])
			}
			if math.Abs(float64(out[i]-wout[i])) > 1e-5*(1+math.Abs(float64(wout[i]))) {
				t.Fatalf("n=%d c=%d: residual out[%d] = %g, want %g", n, c, i, out[i], wout[i])
			}
		}
	}
}

// TestBackwardKernelsMatchGo: LayerNormBackward and LinearBackward's bias
// gradient on inputs large enough to split over the workers (C kernels with
// cgo) against the pure-Go loops, accumulating into non-zero gradients.
func TestBackwardKernelsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	n, c := parallelMin/37+9, 37
	x, dout, gamma, beta := randSlice(rng, n*c), randSlice(rng, n*c), randSlice(rng, c), randSlice(rng, c)
	out, mean, rstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
	layerNormGo(out, mean, rstd, x, gamma, beta, n, c, 1e-12)
	dx, dg, db := randSlice(rng, n*c), randSlice(rng, c), randSlice(rng, c)
	wdx, wdg, wdb := append([]float32(nil), dx...), append([]float32(nil), dg...), append([]float32(nil), db...)
	LayerNormBackward(dx, dg, db, dout, x, mean, rstd, gamma, n, c)
	layerNormBackwardGo(wdx, wdg, wdb, dout, x, mean, rstd, gamma, n, c)
	for i := range wdx {
		if math.Abs(float64(dx[i]-wdx[i])) > 1e-5*(1+math.Abs(float64(wdx[i]))) {
			t.Fatalf("dx[%d] = %g, want %g", i, dx[i], wdx[i])
		}
	}
	for i := range c {
		if math.Abs(float64(dg[i]-wdg[i])) > 1e-3 || math.Abs(float64(db[i]-wdb[i])) > 1e-3 {
			t.Fatalf("dgamma, dbeta[%d] = %g, %g; want %g, %g", i, dg[i], db[i], wdg[i], wdb[i])
		}
	}
	bias, wbias := randSlice(rng, c), make([]float32, c)
	copy(wbias, bias)
	LinearBackward(nil, nil, bias, dout, nil, nil, n, 0, c)
	colSumGo(wbias, dout, n, c, 0, c)
	for i := range c {
		if math.Abs(float64(bias[i]-wbias[i])) > 1e-3 {
			t.Fatalf("db[%d] = %g, want %g", i, bias[i], wbias[i])
		}
	}
}
