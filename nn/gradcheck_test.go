package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Finite-difference checks of every Backward: each layer primitive on its
// own, then whole models (BERT and DistilBERT, padded batches, dropout on
// and off, frozen lower layers) through Encode/Backward, the head transform,
// the decoder and the MLM loss. Central differences in float32 with a
// float64 loss: the agreement expected is about 1e-3 relative.

func gaussSlice(rng *rand.Rand, n int, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64() * std)
	}
	return s
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// fdCheck compares analytic gradient ana of f w.r.t. x at the listed
// indices (all when idx is nil) with central differences of step h.
// Tolerance: |fd−ana| ≤ atol + rtol·max|ana| over the tensor, where atol
// = max(1e-4, 1e-6·|f|/h) covers the float32 rounding of f itself.
func fdCheck(t *testing.T, label string, x []float32, ana []float32, idx []int, h float64, f func() float64, rtol float64) {
	t.Helper()
	atol := max(1e-4, 1e-6*math.Abs(f())/h)
	if idx == nil {
		idx = make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
	}
	var scale float64
	for _, i := range idx {
		scale = max(scale, math.Abs(float64(ana[i])))
	}
	var worst float64
	for _, i := range idx {
		old := x[i]
		x[i] = old + float32(h)
		hp := float64(x[i]) - float64(old)
		lp := f()
		x[i] = old - float32(h)
		hm := float64(old) - float64(x[i])
		lm := f()
		x[i] = old
		fd := (lp - lm) / (hp + hm)
		err := math.Abs(fd - float64(ana[i]))
		worst = max(worst, err/(atol+rtol*scale))
		if err > atol+rtol*scale {
			t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g (scale %.3g)", label, i, ana[i], fd, scale)
			return
		}
	}
	t.Logf("%-60s %d elements, scale %.3g, worst use %.3f", label, len(idx), scale, worst)
}

func TestLinearBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n, ic, oc := 5, 7, 6
	x, w, b := gaussSlice(rng, n*ic, 1), gaussSlice(rng, oc*ic, 0.5), gaussSlice(rng, oc, 0.5)
	r := gaussSlice(rng, n*oc, 1)
	out := make([]float32, n*oc)
	loss := func() float64 { LinearForward(out, x, w, b, n, ic, oc); return dot64(r, out) }
	dx, dw, db := make([]float32, n*ic), make([]float32, oc*ic), make([]float32, oc)
	LinearBackward(dx, dw, db, r, x, w, n, ic, oc)
	fdCheck(t, "dx", x, dx, nil, 1e-2, loss, 1e-3)
	fdCheck(t, "dw", w, dw, nil, 1e-2, loss, 1e-3)
	fdCheck(t, "db", b, db, nil, 1e-2, loss, 1e-3)
}

func TestLayerNormBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n, c := 4, 9
	x, g, b := gaussSlice(rng, n*c, 2), gaussSlice(rng, c, 1), gaussSlice(rng, c, 1)
	r := gaussSlice(rng, n*c, 1)
	out, mean, rstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
	loss := func() float64 { LayerNormForward(out, mean, rstd, x, g, b, n, c, 1e-12); return dot64(r, out) }
	loss()
	dx, dg, db := make([]float32, n*c), make([]float32, c), make([]float32, c)
	LayerNormBackward(dx, dg, db, r, x, mean, rstd, g, n, c)
	fdCheck(t, "dx", x, dx, nil, 1e-2, loss, 2e-3)
	fdCheck(t, "dgamma", g, dg, nil, 1e-2, loss, 1e-3)
	fdCheck(t, "dbeta", b, db, nil, 1e-2, loss, 1e-3)
	loss()
	// Forward against the definition in float64.
	for row := range n {
		xr := x[row*c : (row+1)*c]
		var mu, v float64
		for _, e := range xr {
			mu += float64(e)
		}
		mu /= float64(c)
		for _, e := range xr {
			v += (float64(e) - mu) * (float64(e) - mu)
		}
		v /= float64(c)
		for i, e := range xr {
			want := (float64(e)-mu)/math.Sqrt(v+1e-12)*float64(g[i]) + float64(b[i])
			if d := math.Abs(float64(out[row*c+i]) - want); d > 1e-5*max(1, math.Abs(want)) {
				t.Fatalf("LayerNorm[%d,%d] = %g, want %g", row, i, out[row*c+i], want)
			}
		}
	}
}

func TestDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, p = 100000, 0.25
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	mask := make([]float32, n)
	DropoutForward(x, mask, p, rng)
	zeros := 0
	for i, v := range x {
		switch v {
		case 0:
			zeros++
		case float32(1 / (1 - p)):
		default:
			t.Fatalf("x[%d] = %g, want 0 or %g", i, v, 1/(1-p))
		}
		if mask[i] != v {
			t.Fatalf("mask[%d] = %g, x %g", i, mask[i], v)
		}
	}
	if frac := float64(zeros) / n; math.Abs(frac-p) > 0.01 {
		t.Errorf("dropped fraction %.4f, want %.2f", frac, p)
	}
	dy := make([]float32, n)
	for i := range dy {
		dy[i] = 2
	}
	DropoutBackward(dy, mask)
	for i := range dy {
		if dy[i] != 2*mask[i] {
			t.Fatalf("dx[%d] = %g, want %g", i, dy[i], 2*mask[i])
		}
	}
}

// tinyBatch is a padded batch: row 0 full, the others shorter.
func tinyBatch(rng *rand.Rand, cfg Config, B, T int) Batch {
	b := Batch{B: B, T: T, InputIDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i := range B {
		n := T - i*(T/(B+1))
		for t := range T {
			r := i*T + t
			if t < n {
				b.InputIDs[r] = int32(1 + rng.IntN(cfg.VocabSize-1))
				b.Mask[r] = 1
				if t >= n/2 {
					b.TypeIDs[r] = 1
				}
			}
		}
	}
	return b
}

// tinyModel is a randomly initialised model with perturbed biases and
// LayerNorms (as the oracle's), so no term hides behind a zero.
func tinyModel(t *testing.T, arch string, seed uint64) *Model {
	t.Helper()
	cfg := BERTConfig(23, 12, 2, 3, 20, 10)
	if arch == "distilbert" {
		cfg = DistilBERTConfig(23, 12, 2, 3, 20, 10)
	}
	cfg.InitializerRange = 0.3
	m, err := NewModel(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, p := range m.Params {
		if len(p.Shape) == 1 {
			for i := range p.W {
				p.W[i] += float32(rng.NormFloat64() * 0.2)
			}
		}
	}
	return m
}

// sampleIdx picks up to k indices of a tensor of n elements.
func sampleIdx(rng *rand.Rand, n, k int) []int {
	if n <= k {
		return nil
	}
	idx := make([]int, k)
	for i := range idx {
		idx[i] = rng.IntN(n)
	}
	return idx
}

func TestModelBackwardFD(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		for _, training := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dropout=%v", arch, training), func(t *testing.T) {
				m := tinyModel(t, arch, 7)
				m.Training = training
				rng := rand.New(rand.NewPCG(8, 9))
				B, T := 3, 7
				b := tinyBatch(rng, m.Config, B, T)
				C, V := m.Config.HiddenSize, m.Config.VocabSize
				N := B * T
				// L = Σ r1⊙hidden + Σ r2⊙logits(head(hidden)): exercises the
				// encoder, the head transform and the tied decoder at once.
				// Padded positions are left out of L: their inputs are [PAD],
				// whose word row gets no lookup gradient (HF padding_idx), and
				// nothing else may depend on them.
				r1, r2 := gaussSlice(rng, N*C, 1), gaussSlice(rng, N*V, 1)
				for r := range N {
					if b.Mask[r] == 0 {
						clear(r1[r*C : (r+1)*C])
						clear(r2[r*V : (r+1)*V])
					}
				}
				logits := make([]float32, N*V)
				loss := func() float64 {
					m.SeedDropout(42) // the same dropout masks at every evaluation
					h := m.Encode(b)
					z := m.HeadTransform(h, N)
					m.Logits(logits, z, N)
					return dot64(r1, h) + dot64(r2, logits)
				}
				loss()
				ZeroGrad(m.Params)
				dz := make([]float32, N*C)
				m.LogitsBackward(dz, r2, m.pass.head.z, N)
				dh := m.HeadTransformBackward(dz)
				addInto(dh, r1)
				m.Backward(dh)
				checkAllFD(t, m, rng, loss)
			})
		}
	}
}

func TestMLMLossFD(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		t.Run(arch, func(t *testing.T) {
			m := tinyModel(t, arch, 11)
			rng := rand.New(rand.NewPCG(12, 13))
			b := tinyBatch(rng, m.Config, 3, 6)
			labels := make([]int32, len(b.InputIDs))
			for i := range labels {
				labels[i] = IgnoreIndex
				if b.Mask[i] == 1 && rng.IntN(3) == 0 {
					labels[i] = int32(rng.IntN(m.Config.VocabSize))
				}
			}
			loss := func() float64 { l, _ := m.MLMLoss(b, labels); return l }
			l0, count := m.MLMLoss(b, labels)
			if count == 0 {
				t.Fatal("no labelled position")
			}
			// Against the definition on logits at every position.
			N, V := b.B*b.T, m.Config.VocabSize
			probe := m.NewPass()
			z := probe.HeadTransform(probe.Encode(b), N)
			logits := make([]float32, N*V)
			m.Logits(logits, z, N)
			var want float64
			for r, lab := range labels {
				if lab == IgnoreIndex {
					continue
				}
				var s float64
				for _, v := range logits[r*V : (r+1)*V] {
					s += math.Exp(float64(v))
				}
				want += math.Log(s) - float64(logits[r*V+int(lab)])
			}
			want /= float64(count)
			if math.Abs(l0-want) > 1e-5*want {
				t.Fatalf("MLM loss %.7g, want %.7g from all-position logits", l0, want)
			}
			ZeroGrad(m.Params)
			m.MLMLoss(b, labels)
			m.MLMBackward(1)
			checkAllFD(t, m, rng, loss)
		})
	}
}

// checkAllFD checks up to 24 elements of every parameter's gradient. The
// attention key bias has an exactly zero gradient (softmax is invariant to
// adding q·b_k to a whole row of scores): finite differences only measure
// rounding noise there, so it is checked to be zero instead.
func checkAllFD(t *testing.T, m *Model, rng *rand.Rand, loss func() float64) {
	t.Helper()
	for _, p := range m.Params {
		if strings.HasSuffix(p.Name, "key.bias") || strings.HasSuffix(p.Name, "k_lin.bias") {
			for i, g := range p.G {
				if math.Abs(float64(g)) > 1e-4 {
					t.Errorf("%s[%d] = %g, want 0", p.Name, i, g)
				}
			}
			continue
		}
		fdCheck(t, p.Name, p.W, p.G, sampleIdx(rng, len(p.W), 24), 1e-2, loss, 1e-2)
	}
}
