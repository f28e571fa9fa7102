package nn

import (
	"encoding/json"
	"fmt"
	"math"
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
			s := tp.Forward(o, qids, nil, maskOf(qm), Tq, dids, maskOf(dm), Td, B)
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
			loss := func() float64 { return dot64(r, tp.Forward(o, qids, nil, qm, Tq, dids, dm, Td, B)) }
			inf := c.NewMICEPass()
			xd := inf.DocStates(o, dids, dm, B, Td, Tq)
			xq := inf.QueryStates(o, qids, nil, qm, B, Tq)
			s0 := append([]float32(nil), inf.Score(o, xq, qm, Tq, xd, dm, Td, B)...)
			if s1 := tp.Forward(o, qids, nil, qm, Tq, dids, dm, Td, B); fmt.Sprint(s1) != fmt.Sprint(s0) {
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
	tp.Forward(o, qids, nil, qm, Tq, dids, dm, Td, B)
	ZeroGrad(c.Params)
	tp.Backward(r)
	want := map[string]string{}
	for _, p := range c.Params {
		want[p.Name] = fmt.Sprint(p.G)
	}
	if _, err := SetFrozen(c.Params, true, "bert.embeddings.*", "bert.encoder.layer.0.*"); err != nil {
		t.Fatal(err)
	}
	tp.Forward(o, qids, nil, qm, Tq, dids, dm, Td, B)
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

// queryTypes returns token types (B,Tq) for the real tokens of qmask drawn
// from 0…Y−1, every type present; padding keeps 0.
func queryTypes(rng *rand.Rand, qmask []float32, Y int) []int32 {
	types := make([]int32, len(qmask))
	k := 0
	for i, m := range qmask {
		if m == 0 {
			continue
		}
		if k < Y {
			types[i] = int32(k) // the first real tokens take every type once
		} else {
			types[i] = int32(rng.IntN(Y))
		}
		k++
	}
	return types
}

// Per-token query types (a table grown to four rows, types 0…3 mixed over
// the query tokens; the document keeps type 1): the training pass scores
// as the inference pass, and the gradient of every entry of the type table
// matches central differences, each row receiving some.
func TestMICEQueryTypesBackwardFD(t *testing.T) {
	for _, name := range []string{"full", "midfusion", "light", "late-light"} {
		o := testVariants[name]
		t.Run(name, func(t *testing.T) {
			c := tinyMICE(t, 5)
			if err := c.Model.GrowTokenTypes(4, 3); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(6, 8))
			const B, Tq, Td = 3, 5, 7
			qids, qm, dids, dm := micePairs(rng, c.Config.VocabSize, B, Tq, Td)
			qtypes := queryTypes(rng, qm, 4)
			r := gaussSlice(rng, B, 1)
			tp := c.NewMICETrainPass()
			loss := func() float64 { return dot64(r, tp.Forward(o, qids, qtypes, qm, Tq, dids, dm, Td, B)) }
			inf := c.NewMICEPass()
			xd := inf.DocStates(o, dids, dm, B, Td, Tq)
			xq := inf.QueryStates(o, qids, qtypes, qm, B, Tq)
			s0 := append([]float32(nil), inf.Score(o, xq, qm, Tq, xd, dm, Td, B)...)
			if s1 := tp.Forward(o, qids, qtypes, qm, Tq, dids, dm, Td, B); fmt.Sprint(s1) != fmt.Sprint(s0) {
				t.Errorf("training pass scores %v, inference pass %v", s1, s0)
			}
			loss()
			ZeroGrad(c.Params)
			tp.Backward(r)
			var typeEmb *Param
			for _, p := range c.Params {
				if p.Name == "bert.embeddings.token_type_embeddings.weight" {
					typeEmb = p
				}
			}
			C := c.Config.HiddenSize
			for y := range 4 {
				var n float64
				for _, g := range typeEmb.G[y*C : (y+1)*C] {
					n += float64(g) * float64(g)
				}
				if n == 0 {
					t.Errorf("type %d got no gradient", y)
				}
			}
			fdCheck(t, typeEmb.Name, typeEmb.W, typeEmb.G, nil, 1e-2, loss, 1e-2)
			if name == "midfusion" {
				checkAllFD(t, c.Model, rng, loss)
			}
		})
	}
}

// MICE at fusion 0 with every layer and no light cross-attention, given
// per-token query types, is the plain cross-encoder forward on the same
// layout ([CLS] q [SEP] padded to Tq, then d [SEP]) with the same token
// types (query types, then 1); and the types matter: ignoring them (nil)
// changes the scores.
func TestMICEQueryTypesEqualCrossEncoder(t *testing.T) {
	c := tinyMICE(t, 9)
	if err := c.Model.GrowTokenTypes(4, 2); err != nil {
		t.Fatal(err)
	}
	c.Training = false
	rng := rand.New(rand.NewPCG(3, 4))
	const B, Tq, Td = 4, 6, 8
	T := Tq + Td
	qids, qm, dids, dm := micePairs(rng, c.Config.VocabSize, B, Tq, Td)
	qtypes := queryTypes(rng, qm, 4)
	bt := Batch{B: B, T: T, InputIDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for b := range B {
		copy(bt.InputIDs[b*T:], qids[b*Tq:(b+1)*Tq])
		copy(bt.InputIDs[b*T+Tq:], dids[b*Td:(b+1)*Td])
		copy(bt.TypeIDs[b*T:], qtypes[b*Tq:(b+1)*Tq])
		for j := Tq; j < T; j++ {
			bt.TypeIDs[b*T+j] = 1
		}
		copy(bt.Mask[b*T:], qm[b*Tq:(b+1)*Tq])
		copy(bt.Mask[b*T+Tq:], dm[b*Td:(b+1)*Td])
	}
	if err := c.Model.ValidateBatch(bt); err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), c.NewScorePass().Score(bt)...)
	o := testVariants["full"]
	p := c.NewMICEPass()
	mice := func(types []int32) []float32 {
		xd := p.DocStates(o, dids, dm, B, Td, Tq)
		xq := p.QueryStates(o, qids, types, qm, B, Tq)
		return append([]float32(nil), p.Score(o, xq, qm, Tq, xd, dm, Td, B)...)
	}
	got := mice(qtypes)
	train := c.NewMICETrainPass().Forward(o, qids, qtypes, qm, Tq, dids, dm, Td, B)
	plain := mice(nil)
	var moved float64
	for b := range B {
		if d := math.Abs(float64(got[b] - want[b])); d > 1e-5*max(1, math.Abs(float64(want[b]))) {
			t.Errorf("pair %d: MICE %g, cross-encoder %g", b, got[b], want[b])
		}
		if d := math.Abs(float64(train[b] - want[b])); d > 1e-5*max(1, math.Abs(float64(want[b]))) {
			t.Errorf("pair %d: MICE training pass %g, cross-encoder %g", b, train[b], want[b])
		}
		moved = max(moved, math.Abs(float64(plain[b]-got[b])))
	}
	t.Logf("max |score with types − score without| = %.3g", moved)
	if moved < 1e-3 {
		t.Errorf("query types changed the scores by %g at most: they are not read", moved)
	}
}
