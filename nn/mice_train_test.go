package nn

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// miceVariants reads the variants of the mice-bert oracle case.
func miceVariants(t *testing.T, dir string) map[string]MICEOptions {
	t.Helper()
	var cj struct {
		Variants map[string]MICEOptions `json:"variants"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "golden/case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cj); err != nil {
		t.Fatal(err)
	}
	return cj.Variants
}

// The gradients of Σ_b r_b·s_b for every MICE variant match the PyTorch
// autograd goldens of tools/ceoracle (grads.<variant>.safetensors), and
// the training pass scores as the inference pass does.
func TestMICEBackwardOracleParity(t *testing.T) {
	dir := filepath.Join(ceOracleRoot, "mice-bert")
	c, err := LoadClassifier(filepath.Join(dir, "model"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := readGolden(t, dir)
	qids, qs := g.ints(t, "query_ids")
	qm, _ := g.ints(t, "query_mask")
	dids, ds := g.ints(t, "doc_ids")
	dm, _ := g.ints(t, "doc_mask")
	B, Tq, Td := qs[0], qs[1], ds[1]
	r := g.floats(t, g.in, "r")
	variants := miceVariants(t, dir)
	if len(variants) != 4 {
		t.Fatalf("%d variants, want 4", len(variants))
	}
	for name, o := range variants {
		t.Run(name, func(t *testing.T) {
			tp := c.NewMICETrainPass()
			s := tp.Forward(o, qids, maskOf(qm), Tq, dids, maskOf(dm), Td, B)
			checkTensor(t, "scores "+name, f64(s), f64(g.floats(t, g.scores, "scores."+name)), defaultTol, true, true, 0)
			ZeroGrad(c.Params)
			tp.Backward(r)
			checkGrads(t, dir, "grads."+name+".safetensors", c.Params)
		})
	}
}

// tinyMICE is a random 3-layer BERT cross-encoder with perturbed biases and
// LayerNorm terms (tinyClassifier with one more layer and room for the
// MICE layout).
func tinyMICE(t *testing.T, seed uint64) *Classifier {
	t.Helper()
	cfg := BERTConfig(23, 12, 3, 3, 20, 24)
	cfg.InitializerRange = 0.3
	c, err := NewClassifier(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, p := range c.Params {
		if len(p.Shape) == 1 {
			for i := range p.W {
				p.W[i] += float32(rng.NormFloat64() * 0.2)
			}
		}
	}
	return c
}

// micePairs returns B padded query segments (B,Tq) and document segments
// (B,Td) with their masks; row 0 unpadded.
func micePairs(rng *rand.Rand, V, B, Tq, Td int) (qids []int32, qmask []float32, dids []int32, dmask []float32) {
	qids, qmask = make([]int32, B*Tq), make([]float32, B*Tq)
	dids, dmask = make([]int32, B*Td), make([]float32, B*Td)
	for b := range B {
		nq, nd := Tq-2, Td-1
		if b > 0 {
			nq, nd = 1+rng.IntN(Tq-2), 1+rng.IntN(Td-1)
		}
		q := qids[b*Tq:]
		q[0] = 2
		for j := 1; j <= nq; j++ {
			q[j] = int32(5 + rng.IntN(V-5))
		}
		q[nq+1] = 3
		for j := range nq + 2 {
			qmask[b*Tq+j] = 1
		}
		d := dids[b*Td:]
		for j := range nd {
			d[j] = int32(5 + rng.IntN(V-5))
		}
		d[nd] = 3
		for j := range nd + 1 {
			dmask[b*Td+j] = 1
		}
	}
	return
}

// testVariants are the MICE variants of the finite-difference tests on 3
// layers.
var testVariants = map[string]MICEOptions{
	"full":           {Fusion: 0, Interact: []int{0, 1, 2}},
	"midfusion":      {Fusion: 1, Interact: []int{1, 2}},
	"light":          {Fusion: 1, Interact: []int{1, 2}, Light: true},
	"light-drop":     {Fusion: 1, Interact: []int{2}, Light: true},
	"late-light":     {Fusion: 2, Interact: []int{2}, Light: true},
	"drop-midfusion": {Fusion: 1, Interact: []int{2}},
}

// Every parameter gradient of every variant against central differences,
// with a frozen embedding table for one of them.
func TestMICEBackwardFD(t *testing.T) {
	for _, name := range []string{"full", "midfusion", "light", "light-drop", "late-light", "drop-midfusion"} {
		o := testVariants[name]
		t.Run(name, func(t *testing.T) {
			c := tinyMICE(t, 5)
			rng := rand.New(rand.NewPCG(6, 7))
			const B, Tq, Td = 3, 5, 7
			qids, qm, dids, dm := micePairs(rng, c.Config.VocabSize, B, Tq, Td)
			r := gaussSlice(rng, B, 1)
			tp := c.NewMICETrainPass()
			loss := func() float64 { return dot64(r, tp.Forward(o, qids, qm, Tq, dids, dm, Td, B)) }
			inf := c.NewMICEPass()
			xd := inf.DocStates(o, dids, dm, B, Td, Tq)
			xq := inf.QueryStates(o, qids, qm, B, Tq)
			s0 := append([]float32(nil), inf.Score(o, xq, qm, Tq, xd, dm, Td, B)...)
			if s1 := tp.Forward(o, qids, qm, Tq, dids, dm, Td, B); fmt.Sprint(s1) != fmt.Sprint(s0) {
				t.Errorf("training pass scores %v, inference pass %v", s1, s0)
			}
			loss()
			ZeroGrad(c.Params)
			tp.Backward(r)
			checkAllFD(t, c.Model, rng, loss)
		})
	}
}

// Frozen parameters get no gradient and the others the same as unfrozen.
func TestMICEBackwardFrozen(t *testing.T) {
	c := tinyMICE(t, 8)
	rng := rand.New(rand.NewPCG(1, 2))
	const B, Tq, Td = 2, 4, 6
	qids, qm, dids, dm := micePairs(rng, c.Config.VocabSize, B, Tq, Td)
	o := testVariants["light"]
	r := []float32{1, -0.5}
	tp := c.NewMICETrainPass()
	tp.Forward(o, qids, qm, Tq, dids, dm, Td, B)
	ZeroGrad(c.Params)
	tp.Backward(r)
	want := map[string]string{}
	for _, p := range c.Params {
		want[p.Name] = fmt.Sprint(p.G)
	}
	if _, err := SetFrozen(c.Params, true, "bert.embeddings.*", "bert.encoder.layer.0.*"); err != nil {
		t.Fatal(err)
	}
	tp.Forward(o, qids, qm, Tq, dids, dm, Td, B)
	ZeroGrad(c.Params)
	tp.Backward(r)
	for _, p := range c.Params {
		if p.Frozen {
			for _, g := range p.G {
				if g != 0 {
					t.Errorf("frozen %s got a gradient", p.Name)
					break
				}
			}
		} else if got := fmt.Sprint(p.G); got != want[p.Name] {
			t.Errorf("%s: gradient changed by freezing others", p.Name)
		}
	}
}
