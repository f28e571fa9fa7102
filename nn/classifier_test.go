package nn

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/safetensors"
)

// Cross-encoder parity with tools/ceoracle (plain-torch
// BertForSequenceClassification / DistilBertForSequenceClassification,
// float64): testdata/ceoracle/ce-*/ hold an HF checkpoint and the golden
// scores and parameter gradients of Σ_b r_b·s_b.

const ceOracleRoot = "../testdata/ceoracle"

type ceGolden struct {
	in     *safetensors.File
	scores *safetensors.File
}

func readGolden(t *testing.T, dir string) ceGolden {
	t.Helper()
	in, err := safetensors.ReadFile(filepath.Join(dir, "golden/inputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := safetensors.ReadFile(filepath.Join(dir, "golden/scores.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return ceGolden{in, sc}
}

func (g ceGolden) ints(t *testing.T, name string) ([]int32, []int) {
	t.Helper()
	v, shape, err := g.in.Int64(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out, shape
}

func (g ceGolden) floats(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	v, _, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func maskOf(ids []int32) []float32 {
	m := make([]float32, len(ids))
	for i, v := range ids {
		m[i] = float32(v)
	}
	return m
}

// checkGrads compares every parameter gradient of ps with dir/golden/file.
func checkGrads(t *testing.T, dir, file string, ps []*Param) {
	t.Helper()
	gf, err := safetensors.ReadFile(filepath.Join(dir, "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	if len(gf.Names()) != len(ps) {
		t.Errorf("%s holds %d gradients, the model has %d parameters", file, len(gf.Names()), len(ps))
	}
	for _, p := range ps {
		want, _, err := gf.Float32(p.Name)
		if err != nil {
			t.Errorf("golden gradient of %s: %v", p.Name, err)
			continue
		}
		tl := defaultTol
		if strings.HasSuffix(p.Name, "key.bias") || strings.HasSuffix(p.Name, "k_lin.bias") {
			tl = tolerance{1e-4, 0, -1} // 0 in exact arithmetic
		}
		checkTensor(t, "grad "+p.Name, f64(p.G), f64(want), tl, true, true, 0)
	}
}

func TestClassifierOracleParity(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(ceOracleRoot, "ce-*"))
	if len(dirs) == 0 {
		t.Fatalf("no oracle case in %s", ceOracleRoot)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, err := LoadClassifier(filepath.Join(dir, "model"), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.NewHead) != 0 {
				t.Fatalf("head initialised instead of loaded: %v", c.NewHead)
			}
			g := readGolden(t, dir)
			ids, shape := g.ints(t, "input_ids")
			types, _ := g.ints(t, "token_type_ids")
			mask, _ := g.ints(t, "attention_mask")
			b := Batch{B: shape[0], T: shape[1], InputIDs: ids, TypeIDs: types, Mask: maskOf(mask)}
			p := c.NewScorePass()
			s := p.Score(b)
			checkTensor(t, "scores", f64(s), f64(g.floats(t, g.scores, "scores")), defaultTol, true, true, 0)
			ZeroGrad(c.Params)
			p.Backward(g.floats(t, g.in, "r"))
			checkGrads(t, dir, "grads.safetensors", c.Params)
		})
	}
}

// tinyClassifier is a random cross-encoder with biases and LayerNorm terms
// perturbed so that none can hide, as tinyModel.
func tinyClassifier(t *testing.T, arch string, seed uint64) *Classifier {
	t.Helper()
	cfg := BERTConfig(23, 12, 2, 3, 20, 16)
	if arch == "distilbert" {
		cfg = DistilBERTConfig(23, 12, 2, 3, 20, 16)
	}
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

// pairBatch builds B padded [CLS] q [SEP] d [SEP] rows with token types.
func pairBatch(rng *rand.Rand, V, B, T int) Batch {
	b := Batch{B: B, T: T, InputIDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i := range B {
		nq := 1 + rng.IntN(3)
		n := T
		if i > 0 {
			n = nq + 3 + rng.IntN(T-nq-2)
		}
		row := b.InputIDs[i*T : (i+1)*T]
		for j := range n {
			row[j] = int32(5 + rng.IntN(V-5))
			b.Mask[i*T+j] = 1
			if j > nq+1 {
				b.TypeIDs[i*T+j] = 1
			}
		}
		row[0], row[nq+1], row[n-1] = 2, 3, 3
	}
	return b
}

func TestClassifierBackwardFD(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		for _, training := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dropout=%v", arch, training), func(t *testing.T) {
				c := tinyClassifier(t, arch, 5)
				c.Training = training
				if arch == "distilbert" {
					// Keep the pre_classifier's ReLU away from its kink,
					// where central differences are wrong: most units
					// always on, the last two always off.
					for j := range c.poolB.W {
						c.poolB.W[j] = 4
						if j >= len(c.poolB.W)-2 {
							c.poolB.W[j] = -4
						}
					}
				}
				rng := rand.New(rand.NewPCG(6, 7))
				b := pairBatch(rng, c.Config.VocabSize, 4, 9)
				r := gaussSlice(rng, b.B, 1)
				p := c.NewScorePass()
				loss := func() float64 {
					c.SeedDropout(42)
					return dot64(r, p.Score(b))
				}
				loss()
				ZeroGrad(c.Params)
				p.Backward(r)
				checkAllFD(t, c.Model, rng, loss)
			})
		}
	}
}

// A cross-encoder saved by SaveHF is an HF sequence classifier: its config
// names the class with one label, and it loads back bit for bit.
func TestClassifierSaveLoad(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		t.Run(arch, func(t *testing.T) {
			c := tinyClassifier(t, arch, 3)
			dir := t.TempDir()
			src := filepath.Join(ceOracleRoot, "ce-bert/model")
			c.TokenizerDir = src // vocab.txt
			out := filepath.Join(dir, "ce")
			if err := c.SaveHF(out, nil); err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			raw, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(cfg["architectures"]), "["+classifierArchitecture(arch)+"]"; got != want {
				t.Errorf("architectures %s, want %s", got, want)
			}
			if got := fmt.Sprint(cfg["id2label"]); got != "map[0:LABEL_0]" {
				t.Errorf("id2label %s, want one label", got)
			}
			d, err := LoadClassifier(out, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Params) != len(c.Params) {
				t.Fatalf("%d parameters loaded, %d saved", len(d.Params), len(c.Params))
			}
			for i, p := range c.Params {
				q := d.Params[i]
				if q.Name != p.Name || fmt.Sprint(q.W) != fmt.Sprint(p.W) {
					t.Errorf("parameter %s differs after the round trip", p.Name)
				}
			}
			rng := rand.New(rand.NewPCG(1, 1))
			b := pairBatch(rng, c.Config.VocabSize, 3, 8)
			s1 := append([]float32(nil), c.NewScorePass().Score(b)...)
			s2 := d.NewScorePass().Score(b)
			if fmt.Sprint(s1) != fmt.Sprint(s2) {
				t.Errorf("scores %v after the round trip, want %v", s2, s1)
			}
		})
	}
}

// A masked-LM checkpoint starts a cross-encoder only when asked to: the
// head is then initialised and named in NewHead. A classifier with two
// labels is refused.
func TestLoadClassifierFromMLM(t *testing.T) {
	mlm := filepath.Join(oracleRoot, "bert-tiny/model")
	if _, err := LoadClassifier(mlm, false, 0); err == nil || !strings.Contains(err.Error(), "not a cross-encoder") {
		t.Errorf("loading a masked-LM checkpoint as a cross-encoder: err %v, want \"not a cross-encoder\"", err)
	}
	c, err := LoadClassifier(mlm, true, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.NewHead, " "); got != "bert.pooler.dense.weight bert.pooler.dense.bias classifier.weight classifier.bias" {
		t.Errorf("NewHead = %q", got)
	}
	m, err := LoadHF(mlm)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Params[:len(c.Params)-4] {
		if q := m.Param(p.Name); q == nil || fmt.Sprint(q.W) != fmt.Sprint(p.W) {
			t.Errorf("encoder parameter %s not loaded from the checkpoint", p.Name)
		}
	}
	if c.Param("cls.predictions.bias") != nil {
		t.Error("the classifier kept the MLM head")
	}
	var nonzero bool
	for _, v := range c.clsW.W {
		nonzero = nonzero || v != 0
	}
	if !nonzero {
		t.Error("classifier.weight left at zero")
	}

	// Two labels.
	two := t.TempDir()
	src := filepath.Join(ceOracleRoot, "ce-bert/model")
	for _, name := range []string{"config.json", "vocab.txt"} {
		if err := atomicfile.CopyFile(filepath.Join(two, name), filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := safetensors.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Named
	for _, n := range f.Names() {
		d, shape, _ := f.Float32(n)
		switch n {
		case "classifier.weight":
			d, shape = append(d, d...), []int{2, shape[1]}
		case "classifier.bias":
			d, shape = append(d, d...), []int{2}
		}
		ts = append(ts, safetensors.Named{Name: n, Shape: shape, Data: d})
	}
	if err := safetensors.WriteFile(filepath.Join(two, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClassifier(two, false, 0); err == nil || !strings.Contains(err.Error(), "2 labels") {
		t.Errorf("two-label classifier: err %v, want \"2 labels\"", err)
	}
}
