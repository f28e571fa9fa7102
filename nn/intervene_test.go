package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// forceHook forces chosen layers' FFN activations to fixed values and
// collects their gradients; other layers pass through untouched.
type forceHook struct {
	vals map[int][]float32 // layer → (N,F) forced values
	grad map[int][]float32 // layer → (N,F) gradients from Backward
	seen []int             // layers FFNBackward was called for
}

func (h *forceHook) FFNForward(l int, b Batch, act []float32) bool {
	v, ok := h.vals[l]
	if !ok {
		return false
	}
	copy(act, v)
	return true
}

func (h *forceHook) FFNBackward(l int, grad []float32) {
	h.seen = append(h.seen, l)
	if _, ok := h.vals[l]; ok {
		h.grad[l] = slices.Clone(grad)
	}
}

func (h *forceHook) GradFrom() int {
	g := math.MaxInt
	for l := range h.vals {
		g = min(g, l)
	}
	return g
}

// TestFFNHookForcedGradient checks the gradient w.r.t. forced FFN
// activations (two layers forced at once, every parameter frozen, padded
// batch) against central differences of the loss <h, R>, and that a
// hook which writes back the clean activations changes nothing.
func TestFFNHookForcedGradient(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		t.Run(arch, func(t *testing.T) {
			cfg := BERTConfig(40, 16, 3, 2, 24, 16)
			if arch == "distilbert" {
				cfg = DistilBERTConfig(40, 16, 3, 2, 24, 16)
			}
			m, err := NewModel(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params {
				p.Frozen = true
			}
			rng := rand.New(rand.NewPCG(1, 2))
			B, T, C, F := 2, 5, cfg.HiddenSize, cfg.IntermediateSize
			b := Batch{B: B, T: T, InputIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
			for i := range b.InputIDs {
				b.InputIDs[i] = int32(5 + rng.IntN(30))
				b.Mask[i] = 1
			}
			b.Mask[B*T-1], b.InputIDs[B*T-1] = 0, 0
			p := m.NewPass()
			clean := slices.Clone(p.Encode(b))
			// The clean activations of layers 0 and 1, perturbed, are the forced values.
			h := &forceHook{vals: map[int][]float32{}, grad: map[int][]float32{}}
			for _, l := range []int{0, 1} {
				v := slices.Clone(p.layers[l].ffg)
				for i := range v {
					v[i] += float32(0.3 * rng.NormFloat64())
				}
				h.vals[l] = v
			}
			// Identity first: forcing the clean values reproduces Encode.
			id := &forceHook{vals: map[int][]float32{1: slices.Clone(p.layers[1].ffg)}, grad: map[int][]float32{}}
			p.SetFFNHook(id)
			if got := p.Encode(b); !slices.Equal(got, clean) {
				t.Fatalf("forcing the clean activations changed the output")
			}
			R := gaussSlice(rng, B*T*C, 1)
			loss := func() float64 { return dot64(p.Encode(b), R) }
			p.SetFFNHook(h)
			loss()
			p.Backward(R)
			if !slices.Equal(h.seen, []int{2, 1, 0}) {
				t.Fatalf("FFNBackward called for layers %v, want [2 1 0]", h.seen)
			}
			for _, p := range m.Params {
				for _, g := range p.G {
					if g != 0 {
						t.Fatalf("frozen %s got a gradient", p.Name)
					}
				}
			}
			for _, l := range []int{0, 1} {
				idx := make([]int, 0, 20)
				for range 20 {
					idx = append(idx, rng.IntN(B*T*F))
				}
				fdCheck(t, arch+" forced layer", h.vals[l], h.grad[l], idx, 1e-2, loss, 2e-3)
			}
		})
	}
}

// TestBackwardOddLayersTwice is the regression test of a buffer mix-up:
// Backward swapped its two (N,C) gradient buffers through the Pass, so a
// Backward that went through an odd number of layers (lower layers frozen)
// left both names on one buffer, and the next Backward on that pass
// cleared the gradient it was reading. Two identical backwards must give
// twice the gradient of one.
func TestBackwardOddLayersTwice(t *testing.T) {
	m, err := NewModel(BERTConfig(40, 16, 2, 2, 24, 16), 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params {
		p.Frozen = !containsAny(p.Name, "layer.1.", "cls.")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	b := Batch{B: 1, T: 6, InputIDs: []int32{2, 7, 9, 11, 13, 3}, Mask: []float32{1, 1, 1, 1, 1, 1}}
	p := m.NewPass()
	R := gaussSlice(rng, 6*16, 1)
	var once []float32
	for i := range 2 {
		p.Encode(b)
		p.Backward(R)
		if i == 0 {
			once = slices.Clone(m.layers[1].qw.G)
		}
	}
	for i, g := range m.layers[1].qw.G {
		if d := math.Abs(float64(g - 2*once[i])); d > 1e-5*(1+math.Abs(float64(g))) {
			t.Fatalf("second Backward: query weight gradient %d is %g after two passes, want 2×%g", i, g, once[i])
		}
	}
}
