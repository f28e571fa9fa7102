package nn

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/safetensors"
)

// pairModel is tinyModel with a pair head whose biases are perturbed too.
func pairModel(t *testing.T, seed uint64) *Model {
	t.Helper()
	m := tinyModel(t, "bert", seed)
	if err := m.AddPairHead(seed + 1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 98))
	for _, name := range []string{"bert.pooler.dense.bias", "cls.seq_relationship.bias"} {
		for i := range m.Param(name).W {
			m.Param(name).W[i] = float32(rng.NormFloat64() * 0.2)
		}
	}
	return m
}

// savePairModel saves m (with bert-tiny's tokenizer) as an HF checkpoint
// and returns its directory and its read-back weights file.
func savePairModel(t *testing.T, m *Model) (string, *safetensors.File) {
	t.Helper()
	m.TokenizerDir = filepath.Join(oracleRoot, "bert-tiny", "model")
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := m.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, f
}

// The joint loss MLM + w·pair: its value against the definition on the
// [CLS] states, and every parameter's gradient (pooler and
// seq_relationship included) against finite differences, with dropout on.
func TestPairLossFD(t *testing.T) {
	m := pairModel(t, 31)
	m.Training = true
	rng := rand.New(rand.NewPCG(32, 33))
	b := tinyBatch(rng, m.Config, 4, 7)
	labels := make([]int32, len(b.InputIDs))
	for i := range labels {
		labels[i] = IgnoreIndex
		if b.Mask[i] == 1 && rng.IntN(3) == 0 {
			labels[i] = int32(rng.IntN(m.Config.VocabSize))
		}
	}
	next := []int32{0, 1, 1, 0}
	const w = 0.7
	loss := func() float64 {
		m.SeedDropout(5)
		l, _ := m.MLMLoss(b, labels)
		pl, _ := m.PairLoss(next)
		return l + w*pl
	}
	m.SeedDropout(5)
	m.MLMLoss(b, labels)
	pl, correct := m.PairLoss(next)

	// The definition: tanh pooler and a 2-way softmax on h[:, 0].
	m.SeedDropout(5)
	h := m.NewPass().Encode(b)
	C := m.Config.HiddenSize
	pw, pb := m.Param("bert.pooler.dense.weight").W, m.Param("bert.pooler.dense.bias").W
	rw, rb := m.Param("cls.seq_relationship.weight").W, m.Param("cls.seq_relationship.bias").W
	var want float64
	wantCorrect := 0
	for s := range b.B {
		x := h[s*b.T*C : s*b.T*C+C]
		y := [2]float64{float64(rb[0]), float64(rb[1])}
		for j := range C {
			a := float64(pb[j])
			for i := range C {
				a += float64(pw[j*C+i]) * float64(x[i])
			}
			for k := range 2 {
				y[k] += float64(rw[k*C+j]) * math.Tanh(a)
			}
		}
		lse := math.Log(math.Exp(y[0]) + math.Exp(y[1]))
		want += lse - y[next[s]]
		if y[next[s]] > y[1-next[s]] {
			wantCorrect++
		}
	}
	want /= float64(b.B)
	if math.Abs(pl-want) > 1e-5*want || correct != wantCorrect {
		t.Fatalf("pair loss %.7g with %d correct, want %.7g with %d", pl, correct, want, wantCorrect)
	}

	ZeroGrad(m.Params)
	loss()
	m.PretrainBackward(1, w)
	for _, name := range PairHeadNames {
		if slices.Max(m.Param(name).G) == 0 && slices.Min(m.Param(name).G) == 0 {
			t.Errorf("%s has no gradient", name)
		}
	}
	checkAllFD(t, m, rng, loss)
}

// Without an MLM label in the batch, PretrainBackward still carries the
// pair gradient into the encoder.
func TestPairLossWithoutMLMLabels(t *testing.T) {
	m := pairModel(t, 41)
	rng := rand.New(rand.NewPCG(42, 43))
	b := tinyBatch(rng, m.Config, 3, 6)
	labels := make([]int32, len(b.InputIDs))
	for i := range labels {
		labels[i] = IgnoreIndex
	}
	next := []int32{1, 0, 1}
	loss := func() float64 {
		m.MLMLoss(b, labels)
		l, _ := m.PairLoss(next)
		return l
	}
	ZeroGrad(m.Params)
	loss()
	m.PretrainBackward(1, 1)
	checkAllFD(t, m, rng, loss)
}

// Parity with tools/pairoracle (BertForPreTraining in float64 PyTorch):
// the MLM and pair losses, the pair logits and every parameter's gradient
// of mlm + w·pair.
func TestPairHeadOracleParity(t *testing.T) {
	dir := "../testdata/pairoracle/nsp-bert"
	m, err := LoadPreTraining(filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasPairHead() {
		t.Fatal("the pair head was not loaded")
	}
	g := readGolden(t, dir)
	ids, shape := g.ints(t, "input_ids")
	types, _ := g.ints(t, "token_type_ids")
	mask, _ := g.ints(t, "attention_mask")
	labels, _ := g.ints(t, "labels")
	next, _ := g.ints(t, "next_sentence_label")
	var c struct {
		PairWeight float64 `json:"pair_weight"`
		MLMLoss    float64 `json:"mlm_loss"`
		PairLoss   float64 `json:"pair_loss"`
	}
	readJSON(t, filepath.Join(dir, "golden/case.json"), &c)
	b := Batch{B: shape[0], T: shape[1], InputIDs: ids, TypeIDs: types, Mask: maskOf(mask)}
	ZeroGrad(m.Params)
	ml, _ := m.MLMLoss(b, labels)
	pl, _ := m.PairLoss(next)
	for _, l := range []struct {
		name      string
		got, want float64
	}{{"mlm", ml, c.MLMLoss}, {"pair", pl, c.PairLoss}} {
		if math.Abs(l.got-l.want) > 2e-5*math.Abs(l.want) {
			t.Errorf("%s loss %.8g, oracle %.8g", l.name, l.got, l.want)
		}
	}
	checkTensor(t, "pair logits", f64(m.pass.pairSt.head.scores[:2*b.B]), f64(g.floats(t, g.scores, "pair_logits")), defaultTol, true, true, 0)
	m.PretrainBackward(1, float32(c.PairWeight))
	checkGrads(t, dir, "grads.safetensors", m.Params)
}

// A checkpoint with a pair head survives SaveHF → LoadPreTraining bit for
// bit, as BertForPreTraining; LoadHF reads it as a masked LM without the
// head; LoadClassifier keeps the trained pooler and starts only
// classifier.*.
func TestPairHeadRoundTrip(t *testing.T) {
	m := pairModel(t, 51)
	dir, f := savePairModel(t, m)
	for _, name := range PairHeadNames {
		if _, ok := f.Tensor(name); !ok {
			t.Errorf("%s not saved", name)
		}
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if a, _ := cfg["architectures"].([]any); len(a) != 1 || a[0] != PreTrainingArchitecture {
		t.Errorf("architectures %v, want [%s]", cfg["architectures"], PreTrainingArchitecture)
	}
	m2, err := LoadPreTraining(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m2.Params) != len(m.Params) || !m2.HasPairHead() {
		t.Fatalf("reloaded %d parameters (pair head %v), want %d", len(m2.Params), m2.HasPairHead(), len(m.Params))
	}
	for i, p := range m.Params {
		if p.Name != m2.Params[i].Name || !slices.Equal(p.W, m2.Params[i].W) {
			t.Fatalf("%s changed in the round trip", p.Name)
		}
	}
	mlm, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mlm.HasPairHead() || len(mlm.Params) != len(m.Params)-len(PairHeadNames) {
		t.Errorf("LoadHF: pair head %v, %d parameters", mlm.HasPairHead(), len(mlm.Params))
	}

	c, err := LoadClassifier(dir, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.NewHead, []string{"classifier.weight", "classifier.bias"}) {
		t.Errorf("initialised %v, want only classifier.*", c.NewHead)
	}
	for _, name := range PairHeadNames[:2] {
		if !slices.Equal(c.Param(name).W, m.Param(name).W) {
			t.Errorf("%s not kept by LoadClassifier", name)
		}
	}
	if slices.Max(c.clsW.W) == 0 {
		t.Error("classifier.weight not initialised")
	}
	if _, err := LoadClassifier(dir, false, 3); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("LoadClassifier without initHead on a pretraining checkpoint: %v, want an incomplete-head error", err)
	}
}

// A checkpoint with part of the pair head is refused, naming what is
// missing; DistilBERT cannot have one.
func TestPairHeadErrors(t *testing.T) {
	m := pairModel(t, 61)
	dir, f := savePairModel(t, m)
	var keep []safetensors.Named
	for _, name := range f.Names() {
		if strings.HasPrefix(name, "cls.seq_relationship.") {
			continue
		}
		data, shape, _ := f.Float32(name)
		keep = append(keep, safetensors.Named{Name: name, Shape: shape, Data: data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), keep, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPreTraining(dir); err == nil || !strings.Contains(err.Error(), "cls.seq_relationship.weight") {
		t.Errorf("partial pair head: %v, want an error naming cls.seq_relationship.weight", err)
	}
	d := tinyModel(t, "distilbert", 1)
	if err := d.AddPairHead(1); err == nil {
		t.Error("AddPairHead on DistilBERT: no error")
	}
	if err := m.AddPairHead(1); err == nil {
		t.Error("a second AddPairHead: no error")
	}
}
