package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestLinearSchedule(t *testing.T) {
	s := LinearSchedule{Warmup: 2, Total: 6}
	want := []float64{0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0}
	for k, w := range want {
		if got := s.Factor(k); math.Abs(got-w) > 1e-15 {
			t.Errorf("Factor(%d) = %g, want %g", k, got, w)
		}
	}
	if got := (LinearSchedule{Warmup: 0, Total: 4}).Factor(0); got != 1 {
		t.Errorf("no warm-up: first factor %g, want 1", got)
	}
}

func randParams(rng *rand.Rand) []*Param {
	ps := []*Param{newParam("a.weight", 3, 4), newParam("a.bias", 4), newParam("x.LayerNorm.weight", 4)}
	for _, p := range ps {
		for i := range p.W {
			p.W[i] = float32(rng.NormFloat64())
		}
	}
	return ps
}

func setRandGrads(rng *rand.Rand, ps []*Param) {
	for _, p := range ps {
		for i := range p.G {
			p.G[i] = float32(rng.NormFloat64())
		}
	}
}

// The first step from zero state is p·(1 − lr·wd) − lr·g/(|g| + eps);
// biases and LayerNorm weights are not decayed; frozen parameters stay.
func TestAdamWFirstStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	ps := randParams(rng)
	setRandGrads(rng, ps)
	ps[2].Frozen = true
	before := [][]float32{slices.Clone(ps[0].W), slices.Clone(ps[1].W), slices.Clone(ps[2].W)}
	const lr, wd = 0.01, 0.1
	NewAdamW(ps, wd).Step(lr)
	for i, p := range ps[:2] {
		for j := range p.W {
			p0, g := float64(before[i][j]), float64(p.G[j])
			decay := 1 - lr*wd
			if p.NoDecay {
				decay = 1
			}
			want := p0*decay - lr*g/(math.Abs(g)+1e-8)
			if math.Abs(float64(p.W[j])-want) > 1e-6 {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, p.W[j], want)
			}
		}
	}
	if !ps[1].NoDecay || ps[0].NoDecay || !ps[2].NoDecay {
		t.Error("NoDecay not set from names")
	}
	if !slices.Equal(ps[2].W, before[2]) {
		t.Error("a frozen parameter moved")
	}
}

// Saving the state after 2 steps and loading it into a new optimiser gives
// the same parameters after 2 more steps as 4 uninterrupted steps.
func TestAdamWResume(t *testing.T) {
	run := func(resumeAt int) []*Param {
		rng := rand.New(rand.NewPCG(2, 2))
		ps := randParams(rng)
		opt := NewAdamW(ps, 0.01)
		for k := range 4 {
			if k == resumeAt {
				st := opt.State()
				opt = NewAdamW(ps, 0.01)
				if err := opt.Load(st); err != nil {
					t.Fatal(err)
				}
			}
			setRandGrads(rng, ps)
			opt.Step(1e-2 * LinearSchedule{Warmup: 1, Total: 4}.Factor(k))
		}
		if opt.StepCount() != 4 {
			t.Fatalf("step count %d", opt.StepCount())
		}
		return ps
	}
	a, b := run(-1), run(2)
	for i := range a {
		if !slices.Equal(a[i].W, b[i].W) {
			t.Errorf("%s differs after resuming", a[i].Name)
		}
	}
	opt := NewAdamW(a, 0)
	st := opt.State()
	delete(st.M, "a.bias")
	if err := opt.Load(st); err == nil {
		t.Error("a state without a parameter's moments loads")
	}
}

func TestClipGradNorm(t *testing.T) {
	ps := []*Param{newParam("w", 2), newParam("v", 1), newParam("frozen", 1)}
	ps[0].G[0], ps[0].G[1], ps[1].G[0], ps[2].G[0] = 3, 0, 4, 100
	ps[2].Frozen = true
	if n := ClipGradNorm(ps, 0); n != 5 {
		t.Fatalf("norm %g, want 5 (frozen excluded)", n)
	}
	if n := ClipGradNorm(ps, 1); n != 5 {
		t.Fatalf("norm before clipping %g, want 5", n)
	}
	if n := ClipGradNorm(ps, 0); math.Abs(n-1) > 1e-6 {
		t.Errorf("norm after clipping %g, want 1", n)
	}
	if ps[2].G[0] != 100 {
		t.Error("clipping touched a frozen gradient")
	}
}

// TestAdamWKernelMatchesGo: the backend's AdamW update (C with cgo, split
// over the workers for large parameters) against the pure-Go loop.
func TestAdamWKernelMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	n := parallelMin*2 + 13
	w, g := randSlice(rng, n), randSlice(rng, n)
	m, v := randSlice(rng, n), randSlice(rng, n)
	for i := range v {
		v[i] *= v[i] // second moments are non-negative
	}
	w2, m2, v2 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
	p := &Param{Name: "x", W: w, G: g}
	o := NewAdamW([]*Param{p}, 0.01)
	copy(o.m[0], m)
	copy(o.v[0], v)
	o.Step(1e-3) // step 1
	stepSize := 1e-3 / (1 - 0.9)
	bc2 := math.Sqrt(1 - 0.999)
	adamwGo(w2, g, m2, v2, 0.9, 0.999, stepSize, bc2, 1e-8, 1-1e-3*0.01)
	for i := range w2 {
		if relErr(float64(p.W[i]), float64(w2[i])) > 1e-6 || relErr(float64(o.m[0][i]), float64(m2[i])) > 1e-6 || relErr(float64(o.v[0][i]), float64(v2[i])) > 1e-6 {
			t.Fatalf("element %d: w, m, v = %g, %g, %g; want %g, %g, %g", i, p.W[i], o.m[0][i], o.v[0][i], w2[i], m2[i], v2[i])
		}
	}
}
