package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveSplade is the oracle: the full (B, T, V) logits in float64, then
// log1p(relu(·)) and a max over real positions, exactly as the definition
// reads. It also returns, per (b, v), the first real position of the largest
// logit and the gap to the runner-up (to skip near-ties when comparing argmax).
func naiveSplade(z, mask, emb, bias []float64, B, T, C, V int) (out []float64, arg []int, gap []float64) {
	out = make([]float64, B*V)
	arg = make([]int, B*V)
	gap = make([]float64, B*V)
	for b := 0; b < B; b++ {
		for v := 0; v < V; v++ {
			best, second, bt := math.Inf(-1), math.Inf(-1), -1
			w := 0.0
			for t := 0; t < T; t++ {
				if mask[b*T+t] <= 0 {
					continue
				}
				var s float64
				for c := 0; c < C; c++ {
					s += z[(b*T+t)*C+c] * emb[v*C+c]
				}
				if s > best {
					second, best, bt = best, s, t
				} else if s > second {
					second = s
				}
				w = math.Max(w, math.Log1p(math.Max(0, s+bias[v])))
			}
			out[b*V+v], arg[b*V+v], gap[b*V+v] = w, bt, best-second
		}
	}
	return out, arg, gap
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// spladeCase builds random inputs; lens[b] real tokens per sequence, with
// holes when holes is set (mask not a prefix).
func spladeCase(rng *rand.Rand, B, T, C, V int, lens []int, holes bool) (z, mask, emb, bias []float32) {
	z = randSlice(rng, B*T*C)
	emb = randSlice(rng, V*C)
	bias = randSlice(rng, V)
	for i := range bias {
		bias[i] *= 2
	}
	mask = make([]float32, B*T)
	for b, n := range lens {
		if holes {
			for _, t := range rng.Perm(T)[:n] {
				mask[b*T+t] = 1
			}
		} else {
			for t := 0; t < n; t++ {
				mask[b*T+t] = 1
			}
		}
	}
	return z, mask, emb, bias
}

func TestSpladePoolForwardAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name       string
		B, T, C, V int
		lens       []int
		holes      bool
	}{
		{"tiny", 2, 3, 4, 5, []int{3, 1}, false},
		{"empty-row", 3, 4, 3, 7, []int{2, 0, 4}, true},
		// > spladeRows real positions spanning sequences, > spladeCols vocabulary,
		// a ragged last vocabulary tile and a mask with holes.
		{"multi-tile", 3, 100, 16, 2*spladeCols + 37, []int{100, 7, 61}, true},
		{"prefix-masks", 4, 70, 8, spladeCols + 1, []int{70, 70, 3, 69}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			B, T, C, V := tc.B, tc.T, tc.C, tc.V
			z, mask, emb, bias := spladeCase(rng, B, T, C, V, tc.lens, tc.holes)
			out := make([]float32, B*V)
			arg := make([]int32, B*V)
			for i := range out {
				out[i], arg[i] = 42, 42 // must be overwritten
			}
			SpladePoolForward(z, mask, emb, bias, B, T, C, V, out, arg)
			want, warg, gap := naiveSplade(to64(z), to64(mask), to64(emb), to64(bias), B, T, C, V)
			positive := 0
			for i := range want {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5*(1+want[i]) {
					t.Fatalf("out[b=%d,v=%d] = %g, want %g", i/V, i%V, out[i], want[i])
				}
				if warg[i] < 0 {
					if arg[i] != -1 || out[i] != 0 {
						t.Fatalf("empty sequence %d: out %g argmax %d, want 0 and -1", i/V, out[i], arg[i])
					}
					continue
				}
				if gap[i] > 1e-4 && int(arg[i]) != warg[i] {
					t.Fatalf("argmax[b=%d,v=%d] = %d, want %d (gap %g)", i/V, i%V, arg[i], warg[i], gap[i])
				}
				if mask[(i/V)*T+int(arg[i])] <= 0 {
					t.Fatalf("argmax[b=%d,v=%d] = %d is a padded position", i/V, i%V, arg[i])
				}
				if want[i] > 0 {
					positive++
				}
			}
			if positive == 0 || positive == len(want) {
				t.Fatalf("degenerate case: %d of %d weights positive", positive, len(want))
			}
		})
	}
}

// TestSpladePoolInferAgainstNaive checks the fused inference kernel (and,
// without cgo, its fallback) against the float64 oracle: panels of 16
// positions with a ragged last one, vocabulary sizes that are not a
// multiple of the kernel's 6 rows, masks with holes, empty sequences.
func TestSpladePoolInferAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name       string
		B, T, C, V int
		lens       []int
		holes      bool
	}{
		{"tiny", 2, 3, 4, 5, []int{3, 1}, false},
		{"one-row", 1, 1, 1, 1, []int{1}, false},
		{"empty-row", 3, 4, 3, 7, []int{2, 0, 4}, true},
		{"all-empty", 2, 5, 3, 13, []int{0, 0}, false},
		{"panels", 3, 100, 17, 6*37 + 5, []int{100, 16, 33}, true},
		{"prefix-masks", 4, 70, 8, 1031, []int{70, 70, 3, 69}, false},
		{"wide", 2, 40, 96, 2*spladeCols + 1, []int{40, 17}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			B, T, C, V := tc.B, tc.T, tc.C, tc.V
			z, mask, emb, bias := spladeCase(rng, B, T, C, V, tc.lens, tc.holes)
			out := make([]float32, B*V)
			for i := range out {
				out[i] = 42 // must be overwritten
			}
			SpladePoolInfer(z, mask, emb, bias, B, T, C, V, out)
			want, _, _ := naiveSplade(to64(z), to64(mask), to64(emb), to64(bias), B, T, C, V)
			positive := 0
			for i := range want {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5*(1+want[i]) {
					t.Fatalf("out[b=%d,v=%d] = %g, want %g", i/V, i%V, out[i], want[i])
				}
				if want[i] > 0 {
					positive++
				}
			}
			// Both sides of the ReLU must be exercised where there is room
			// (one-row has a single weight, wide's long dot products are all
			// large).
			mixed := tc.name != "all-empty" && tc.name != "one-row" && tc.name != "wide"
			if mixed && (positive == 0 || positive == len(want)) {
				t.Fatalf("degenerate case: %d of %d weights positive", positive, len(want))
			}
		})
	}
}

// TestSpladePoolBackwardFiniteDifferences checks every gradient entry against
// central differences of the float64 oracle of L = Σ dout·out.
func TestSpladePoolBackwardFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	B, T, C, V := 3, 5, 4, 9
	z, mask, emb, bias := spladeCase(rng, B, T, C, V, []int{5, 2, 0}, true)
	dout := randSlice(rng, B*V)
	out := make([]float32, B*V)
	arg := make([]int32, B*V)
	SpladePoolForward(z, mask, emb, bias, B, T, C, V, out, arg)
	dz := make([]float32, B*T*C)
	demb := make([]float32, V*C)
	dbias := make([]float32, V)
	// Accumulation: start from a known value and subtract it afterwards.
	for i := range dz {
		dz[i] = 0.5
	}
	SpladePoolBackward(dout, z, emb, bias, arg, out, B, T, C, V, dz, demb, dbias)
	for i := range dz {
		dz[i] -= 0.5
	}

	z64, m64, e64, b64, d64 := to64(z), to64(mask), to64(emb), to64(bias), to64(dout)
	loss := func() float64 {
		o, _, _ := naiveSplade(z64, m64, e64, b64, B, T, C, V)
		var s float64
		for i := range o {
			s += d64[i] * o[i]
		}
		return s
	}
	checkFiniteDifferences(t, "dz", z64, dz, loss)
	checkFiniteDifferences(t, "demb", e64, demb, loss)
	checkFiniteDifferences(t, "dbias", b64, dbias, loss)
	// Sequence 2 is empty: no gradient may reach it.
	for i := 2 * T * C; i < 3*T*C; i++ {
		if dz[i] != 0 {
			t.Fatalf("dz[%d] = %g inside an empty sequence", i, dz[i])
		}
	}
}

// TestSpladePoolBackwardLarge checks the parallel sparse backward against a
// dense float64 backward over the oracle's argmax on a multi-tile case.
func TestSpladePoolBackwardLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	B, T, C, V := 4, 40, 12, spladeCols+300
	z, mask, emb, bias := spladeCase(rng, B, T, C, V, []int{40, 13, 1, 27}, false)
	dout := randSlice(rng, B*V)
	out := make([]float32, B*V)
	arg := make([]int32, B*V)
	SpladePoolForward(z, mask, emb, bias, B, T, C, V, out, arg)
	dz, demb, dbias := make([]float32, B*T*C), make([]float32, V*C), make([]float32, V)
	SpladePoolBackward(dout, z, emb, bias, arg, out, B, T, C, V, dz, demb, dbias)

	want, _, _ := naiveSplade(to64(z), to64(mask), to64(emb), to64(bias), B, T, C, V)
	wz, we, wb := make([]float64, B*T*C), make([]float64, V*C), make([]float64, V)
	for b := 0; b < B; b++ {
		for v := 0; v < V; v++ {
			w := want[b*V+v]
			if w <= 0 {
				continue
			}
			g := float64(dout[b*V+v]) / math.Exp(w) // 1/(1+s), s = expm1(w)
			tt := int(arg[b*V+v])
			wb[v] += g
			for c := 0; c < C; c++ {
				wz[(b*T+tt)*C+c] += g * float64(emb[v*C+c])
				we[v*C+c] += g * float64(z[(b*T+tt)*C+c])
			}
		}
	}
	for _, x := range []struct {
		name string
		got  []float32
		want []float64
	}{{"dz", dz, wz}, {"demb", demb, we}, {"dbias", dbias, wb}} {
		for i := range x.want {
			if d := math.Abs(float64(x.got[i]) - x.want[i]); d > 1e-4*(1+math.Abs(x.want[i])) {
				t.Fatalf("%s[%d] = %g, want %g", x.name, i, x.got[i], x.want[i])
			}
		}
	}
}

func BenchmarkSpladePool(b *testing.B) {
	for _, s := range []struct {
		name    string
		B, T, C int
	}{{"mini", 32, 256, 256}, {"base", 32, 256, 768}, {"short", 64, 128, 256}} {
		if testing.Short() && s.name == "base" {
			continue
		}
		const V = 30522
		rng := rand.New(rand.NewPCG(1, 2))
		lens := make([]int, s.B)
		for i := range lens {
			lens[i] = s.T
			if s.name == "short" { // real lengths 64–128, as in a length-sorted batch of short documents
				lens[i] = s.T/2 + rng.IntN(s.T/2+1)
			}
		}
		z, mask, emb, bias := spladeCase(rng, s.B, s.T, s.C, V, lens, false)
		out := make([]float32, s.B*V)
		arg := make([]int32, s.B*V)
		b.Run(fmt.Sprintf("pass=forward/hidden=%d/batch=%d/len=%d", s.C, s.B, s.T), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				SpladePoolForward(z, mask, emb, bias, s.B, s.T, s.C, V, out, arg)
			}
			flops := 2 * float64(s.B*s.T) * V * float64(s.C)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
		b.Run(fmt.Sprintf("pass=infer/hidden=%d/batch=%d/len=%d", s.C, s.B, s.T), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				SpladePoolInfer(z, mask, emb, bias, s.B, s.T, s.C, V, out)
			}
			flops := 2 * float64(s.B*s.T) * V * float64(s.C)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
		b.Run(fmt.Sprintf("pass=backward/hidden=%d/batch=%d/len=%d", s.C, s.B, s.T), func(b *testing.B) {
			SpladePoolForward(z, mask, emb, bias, s.B, s.T, s.C, V, out, arg)
			dout := randSlice(rng, s.B*V)
			dz, demb, dbias := make([]float32, s.B*s.T*s.C), make([]float32, V*s.C), make([]float32, V)
			b.ReportAllocs()
			for b.Loop() {
				SpladePoolBackward(dout, z, emb, bias, arg, out, s.B, s.T, s.C, V, dz, demb, dbias)
			}
		})
		b.Run(fmt.Sprintf("pass=sum-forward/hidden=%d/batch=%d/len=%d", s.C, s.B, s.T), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				SpladeSumPoolForward(z, mask, emb, bias, s.B, s.T, s.C, V, out)
			}
			flops := 2 * float64(s.B*s.T) * V * float64(s.C)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
		// The backwards at a trained model's sparsity: only the first
		// sparseCols terms can be positive (a trained vector has 200–2 000
		// non-zeros), where the random case above activates half of V.
		const sparseCols = 1024
		sb := append([]float32(nil), bias...)
		for v := sparseCols; v < V; v++ {
			sb[v] = -1e6
		}
		dout := randSlice(rng, s.B*V)
		dz, demb, dbias := make([]float32, s.B*s.T*s.C), make([]float32, V*s.C), make([]float32, V)
		b.Run(fmt.Sprintf("pass=backward-sparse/hidden=%d/batch=%d/len=%d", s.C, s.B, s.T), func(b *testing.B) {
			SpladePoolForward(z, mask, emb, sb, s.B, s.T, s.C, V, out, arg)
			b.ReportAllocs()
			for b.Loop() {
				SpladePoolBackward(dout, z, emb, sb, arg, out, s.B, s.T, s.C, V, dz, demb, dbias)
			}
		})
		b.Run(fmt.Sprintf("pass=sum-backward-sparse/hidden=%d/batch=%d/len=%d", s.C, s.B, s.T), func(b *testing.B) {
			SpladeSumPoolForward(z, mask, emb, sb, s.B, s.T, s.C, V, out)
			b.ReportAllocs()
			for b.Loop() {
				SpladeSumPoolBackward(dout, z, mask, emb, sb, out, s.B, s.T, s.C, V, dz, demb, dbias)
			}
		})
	}
}

// TestSpladePoolTiesPickFirst: identical rows at real positions 1 and 3 (0
// padded) tie on every logit; the first real position must win.
func TestSpladePoolTiesPickFirst(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	B, T, C, V := 1, 4, 3, 6
	z, _, emb, bias := spladeCase(rng, B, T, C, V, []int{0}, false)
	for c := 0; c < C; c++ {
		z[0*C+c] = 100 // padded, would win if not excluded
		z[3*C+c] = z[1*C+c]
		z[2*C+c] = -z[1*C+c] / 2
	}
	mask := []float32{0, 1, 1, 1}
	out := make([]float32, V)
	arg := make([]int32, V)
	SpladePoolForward(z, mask, emb, bias, B, T, C, V, out, arg)
	for v := range arg {
		var s float32
		for c := 0; c < C; c++ {
			s += z[C+c] * emb[v*C+c]
		}
		want := int32(1)
		if s < 0 {
			want = 2 // -s/2 > s
		}
		if arg[v] != want {
			t.Errorf("argmax[v=%d] = %d, want %d (logit at t=1: %g)", v, arg[v], want, s)
		}
	}
}

// checkFiniteDifferences compares every entry of grad with the central
// difference of loss in p (float64 parameters that loss reads), and fails
// when none of the differences is non-zero (a vacuous check).
func checkFiniteDifferences(t *testing.T, name string, p []float64, grad []float32, loss func() float64) {
	t.Helper()
	const h = 1e-6
	nonzero := 0
	for i := range p {
		old := p[i]
		p[i] = old + h
		lp := loss()
		p[i] = old - h
		lm := loss()
		p[i] = old
		fd := (lp - lm) / (2 * h)
		if d := math.Abs(fd - float64(grad[i])); d > 1e-4*(1+math.Abs(fd)) {
			t.Errorf("%s[%d]: analytic %g, finite difference %g", name, i, grad[i], fd)
		}
		if fd != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Errorf("%s: all finite differences zero, test is vacuous", name)
	}
}
