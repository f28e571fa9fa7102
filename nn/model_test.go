package nn

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestNewModelInit(t *testing.T) {
	cfg := BERTConfig(500, 64, 2, 4, 128, 40)
	m, err := NewModel(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params {
		switch {
		case strings.Contains(p.Name, "LayerNorm.weight"):
			for _, v := range p.W {
				if v != 1 {
					t.Fatalf("%s has %g, want 1", p.Name, v)
				}
			}
		case len(p.Shape) == 1:
			for _, v := range p.W {
				if v != 0 {
					t.Fatalf("%s has %g, want 0", p.Name, v)
				}
			}
		default:
			var s, ss float64
			for _, v := range p.W {
				s += float64(v)
				ss += float64(v) * float64(v)
			}
			n := float64(len(p.W))
			if p == m.wordEmb {
				n -= float64(cfg.HiddenSize) // the zero [PAD] row
			}
			std := math.Sqrt(ss/n - (s/n)*(s/n))
			if math.Abs(std-0.02) > 0.02*6/math.Sqrt(n)+1e-4 {
				t.Errorf("%s: std %.5f, want 0.02", p.Name, std)
			}
		}
	}
	for _, v := range m.wordEmb.W[:cfg.HiddenSize] {
		if v != 0 {
			t.Fatal("[PAD] row of the word table is not zero")
		}
	}
	m2, _ := NewModel(cfg, 1)
	if !slices.Equal(m.wordEmb.W, m2.wordEmb.W) {
		t.Error("same seed, different initialisation")
	}
	if m.NumParams() != 500*64+40*64+2*64+2*64+2*(4*64*64+4*64+2*128*64+128+64+4*64)+500+64*64+64+2*64 {
		t.Errorf("NumParams %d", m.NumParams())
	}
}

// A padded position must not change any real position's output, whatever
// its token id and type.
func TestPaddingIsInvisible(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		m := tinyModel(t, arch, 3)
		rng := rand.New(rand.NewPCG(4, 5))
		b := tinyBatch(rng, m.Config, 3, 8)
		h1 := slices.Clone(m.Encode(b))
		b2 := b
		b2.InputIDs, b2.TypeIDs = slices.Clone(b.InputIDs), slices.Clone(b.TypeIDs)
		for i := range b2.Mask {
			if b2.Mask[i] == 0 {
				b2.InputIDs[i] = int32(1 + rng.IntN(m.Config.VocabSize-1))
				b2.TypeIDs[i] = 1
			}
		}
		h2 := m.Encode(b2)
		C := m.Config.HiddenSize
		changed := false
		for r := range b.Mask {
			for c := range C {
				d := h1[r*C+c] != h2[r*C+c]
				if b.Mask[r] == 1 && d {
					t.Fatalf("%s: real position %d changed when padding changed", arch, r)
				}
				changed = changed || d
			}
		}
		if !changed {
			t.Fatalf("%s: padded positions did not change either: the test is vacuous", arch)
		}
	}
}

// Buffers are reused: a small batch after a large one gives the same result
// as on a fresh pass, and a steady-state training step allocates no
// activation memory. The bound, 5% of the activations' size, tolerates the
// small per-call allocations of gonum's parallel Sgemm (CGO_ENABLED=0, ~1.3%
// here) and of goroutine workers in the element-wise kernels.
func TestPassReuse(t *testing.T) {
	m := tinyModel(t, "bert", 5)
	rng := rand.New(rand.NewPCG(6, 7))
	big, small := tinyBatch(rng, m.Config, 4, 9), tinyBatch(rng, m.Config, 2, 5)
	m.Encode(big)
	got := slices.Clone(m.Encode(small))
	want := m.NewPass().Encode(small)
	if !slices.Equal(got, want) {
		t.Fatal("reused pass differs from a fresh one")
	}

	cfg := BERTConfig(200, 64, 2, 4, 256, 32)
	m, err := NewModel(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Training = true
	b := tinyBatch(rng, cfg, 8, 32)
	labels := make([]int32, len(b.InputIDs))
	for i := range labels {
		labels[i] = IgnoreIndex
		if i%5 == 1 {
			labels[i] = b.InputIDs[i]
		}
	}
	step := func() {
		m.MLMLoss(b, labels)
		m.MLMBackward(1)
	}
	step()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const steps = 3
	for range steps {
		step()
	}
	runtime.ReadMemStats(&after)
	perStep := (after.TotalAlloc - before.TotalAlloc) / steps
	// Activations: per layer about 12 (N,C) buffers, 2 (N,F) and 2 (B,NH,T,T).
	N := 8 * 32
	acts := 4 * cfg.NumLayers * (12*N*cfg.HiddenSize + 2*N*cfg.IntermediateSize + 2*8*cfg.NumHeads*32*32)
	if perStep > uint64(acts/20) {
		t.Errorf("a training step allocates %d bytes, over 5%% of the %d bytes of activations", perStep, acts)
	}
	t.Logf("%d bytes allocated per step (activations %d bytes)", perStep, acts)
}

func TestDropoutInModel(t *testing.T) {
	m := tinyModel(t, "distilbert", 9)
	b := tinyBatch(rand.New(rand.NewPCG(1, 1)), m.Config, 2, 6)
	eval := slices.Clone(m.Encode(b))
	m.Training = true
	m.SeedDropout(3)
	d1 := slices.Clone(m.Encode(b))
	m.SeedDropout(3)
	d2 := slices.Clone(m.Encode(b))
	d3 := m.Encode(b)
	if !slices.Equal(d1, d2) {
		t.Error("same dropout seed, different outputs")
	}
	if slices.Equal(d1, eval) || slices.Equal(d1, d3) {
		t.Error("dropout changed nothing, or repeated its masks without reseeding")
	}
	m.Training = false
	if !slices.Equal(m.Encode(b), eval) {
		t.Error("evaluation mode is not deterministic")
	}
}

// Freezing the embeddings and layer 0 leaves their gradients at zero and the
// others' exactly as in a full backward pass.
func TestFrozenBackward(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		m := tinyModel(t, arch, 21)
		b := tinyBatch(rand.New(rand.NewPCG(2, 2)), m.Config, 3, 7)
		labels := slices.Clone(b.InputIDs)
		for i := range labels {
			if b.Mask[i] == 0 || i%2 == 0 {
				labels[i] = IgnoreIndex
			}
		}
		m.MLMLoss(b, labels)
		m.MLMBackward(1)
		full := map[string][]float32{}
		for _, p := range m.Params {
			full[p.Name] = slices.Clone(p.G)
		}
		ZeroGrad(m.Params)
		domain := m.DomainParamNames(1)
		n, err := SetFrozen(m.Params, true, domain...)
		if err != nil || n != len(domain) {
			t.Fatalf("SetFrozen: %d, %v", n, err)
		}
		m.MLMLoss(b, labels)
		m.MLMBackward(1)
		for _, p := range m.Params {
			if p.Frozen {
				for _, g := range p.G {
					if g != 0 {
						t.Fatalf("%s: frozen but has gradient %g", p.Name, g)
					}
				}
				continue
			}
			if !slices.Equal(p.G, full[p.Name]) {
				t.Errorf("%s: gradient differs from the full pass", p.Name)
			}
		}
	}
}

func TestDomainParams(t *testing.T) {
	cases := []struct {
		name string
		k    int
		want bool
	}{
		{"bert.embeddings.word_embeddings.weight", 0, true},
		{"bert.embeddings.LayerNorm.bias", 2, true},
		{"bert.encoder.layer.1.output.dense.weight", 2, true},
		{"bert.encoder.layer.2.output.dense.weight", 2, false},
		{"bert.encoder.layer.10.output.dense.weight", 2, false},
		{"cls.predictions.bias", 12, false},
		{"cls.predictions.transform.dense.weight", 12, false},
		{"distilbert.embeddings.position_embeddings.weight", 0, true},
		{"distilbert.transformer.layer.0.ffn.lin1.weight", 1, true},
		{"distilbert.transformer.layer.1.ffn.lin1.weight", 1, false},
		{"vocab_transform.weight", 6, false},
		{"vocab_projector.bias", 6, false},
	}
	for _, c := range cases {
		if got := IsDomainParam(c.name, c.k); got != c.want {
			t.Errorf("IsDomainParam(%q, %d) = %v, want %v", c.name, c.k, got, c.want)
		}
	}
	m := tinyModel(t, "bert", 1)
	if got := len(m.DomainParamNames(1)); got != 5+16 {
		t.Errorf("%d domain params for k=1, want 21", got)
	}
	if _, err := SetFrozen(m.Params, true, "bert.encoder.layer.[01].*"); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params {
		want := strings.HasPrefix(p.Name, "bert.encoder.")
		if p.Frozen != want {
			t.Errorf("%s frozen=%v after glob", p.Name, p.Frozen)
		}
	}
	if _, err := SetFrozen(m.Params, false, `re:bert\.encoder\.layer\.1\..*`); err != nil {
		t.Fatal(err)
	}
	if m.Param("bert.encoder.layer.1.output.dense.bias").Frozen || !m.Param("bert.encoder.layer.0.output.dense.bias").Frozen {
		t.Error("regexp pattern did not unfreeze layer 1 only")
	}
	if _, err := SetFrozen(m.Params, true, "bert.encodr.*"); err == nil {
		t.Error("a pattern matching nothing is not an error")
	}
	if _, err := SetFrozen(m.Params, true, "re:("); err == nil {
		t.Error("a bad regexp is not an error")
	}
}

// Accumulating the MLM gradient of two micro-batches, each weighted by its
// share of labelled positions, equals the gradient of the whole batch.
func TestGradientAccumulation(t *testing.T) {
	m := tinyModel(t, "bert", 31)
	rng := rand.New(rand.NewPCG(3, 3))
	b := tinyBatch(rng, m.Config, 4, 6)
	labels := make([]int32, len(b.InputIDs))
	for i := range labels {
		labels[i] = IgnoreIndex
		if b.Mask[i] == 1 && rng.IntN(3) == 0 {
			labels[i] = int32(rng.IntN(m.Config.VocabSize))
		}
	}
	_, total := m.MLMLoss(b, labels)
	m.MLMBackward(1)
	full := map[string][]float32{}
	for _, p := range m.Params {
		full[p.Name] = slices.Clone(p.G)
	}
	ZeroGrad(m.Params)
	half := len(labels) / 2
	for _, part := range [][2]int{{0, half}, {half, len(labels)}} {
		sub := Batch{B: 2, T: b.T, InputIDs: b.InputIDs[part[0]:part[1]], TypeIDs: b.TypeIDs[part[0]:part[1]], Mask: b.Mask[part[0]:part[1]]}
		_, n := m.MLMLoss(sub, labels[part[0]:part[1]])
		m.MLMBackward(float32(n) / float32(total))
	}
	for _, p := range m.Params {
		for i, g := range p.G {
			if d := math.Abs(float64(g - full[p.Name][i])); d > 1e-5*(1+math.Abs(float64(g))) {
				t.Fatalf("%s[%d]: accumulated %g, whole batch %g", p.Name, i, g, full[p.Name][i])
			}
		}
	}
}

func TestValidateBatch(t *testing.T) {
	m := tinyModel(t, "bert", 1)
	good := tinyBatch(rand.New(rand.NewPCG(1, 2)), m.Config, 2, 4)
	if err := m.ValidateBatch(good); err != nil {
		t.Fatal(err)
	}
	bad := func(mut func(*Batch)) Batch {
		b := good
		b.InputIDs, b.TypeIDs, b.Mask = slices.Clone(good.InputIDs), slices.Clone(good.TypeIDs), slices.Clone(good.Mask)
		mut(&b)
		return b
	}
	for name, b := range map[string]Batch{
		"id":     bad(func(b *Batch) { b.InputIDs[3] = int32(m.Config.VocabSize) }),
		"type":   bad(func(b *Batch) { b.TypeIDs[1] = 2 }),
		"mask":   bad(func(b *Batch) { b.Mask[0] = 0.5 }),
		"length": bad(func(b *Batch) { b.InputIDs = b.InputIDs[1:] }),
		"T":      {B: 1, T: m.Config.MaxPositions + 1, InputIDs: make([]int32, m.Config.MaxPositions+1), Mask: make([]float32, m.Config.MaxPositions+1)},
	} {
		if err := m.ValidateBatch(b); err == nil {
			t.Errorf("%s: invalid batch accepted", name)
		}
	}
}

// HiddenState(l) for l ≥ 1 is what a model cut to its first l layers
// returns (HF's hidden_states[l]); HiddenState(0) is LayerNorm of the
// summed embeddings, recomputed here in float64.
func TestHiddenState(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		m := tinyModel(t, arch, 7)
		b := tinyBatch(rand.New(rand.NewPCG(8, 9)), m.Config, 3, 8)
		last := slices.Clone(m.Encode(b))
		L, C := m.Config.NumLayers, m.Config.HiddenSize
		if !slices.Equal(m.HiddenState(L), last) {
			t.Fatalf("%s: HiddenState(%d) is not Encode's output", arch, L)
		}
		for l := 1; l < L; l++ {
			cfg := m.Config
			cfg.NumLayers = l
			cut, err := newModel(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range cut.Params {
				copy(p.W, m.Param(p.Name).W)
			}
			want := cut.Encode(b)
			m.Encode(b)
			if !slices.Equal(m.HiddenState(l), want) {
				t.Fatalf("%s: HiddenState(%d) differs from the output of the model cut to %d layers", arch, l, l)
			}
		}
		m.Encode(b)
		h0 := m.HiddenState(0)
		maxDiff := 0.0
		for r := range b.B * b.T {
			e := make([]float64, C)
			id, pos := int(b.InputIDs[r]), r%b.T
			for c := range C {
				e[c] = float64(m.wordEmb.W[id*C+c]) + float64(m.posEmb.W[pos*C+c])
				if m.typeEmb != nil {
					e[c] += float64(m.typeEmb.W[int(b.TypeIDs[r])*C+c])
				}
			}
			mean, v := 0.0, 0.0
			for _, x := range e {
				mean += x / float64(C)
			}
			for _, x := range e {
				v += (x - mean) * (x - mean) / float64(C)
			}
			for c := range C {
				want := (e[c]-mean)/math.Sqrt(v+m.Config.LayerNormEps)*float64(m.embLNw.W[c]) + float64(m.embLNb.W[c])
				maxDiff = max(maxDiff, math.Abs(float64(h0[r*C+c])-want))
			}
		}
		if maxDiff > 1e-5 {
			t.Fatalf("%s: HiddenState(0) differs from LayerNorm(embeddings) by %g", arch, maxDiff)
		}
	}
}
