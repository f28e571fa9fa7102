package neurons

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
)

// testCase is a model and a (text, other-side vector) pair to attribute.
type testCase struct {
	name  string
	m     *nn.Model
	ids   []int32
	other []float32
}

// oracleModels are the HF-layout test checkpoints (perturbed random
// weights, so that SPLADE vectors are dense and the path crosses many ReLU
// and argmax switches) and a freshly initialised 3-layer DistilBERT with a
// large init range.
var oracleModels = []string{"bert-tiny", "distilbert-tiny", "bert-heads2", "distilbert-bf16-tied-extras"}

func loadCase(t testing.TB, name string, seed uint64) testCase {
	t.Helper()
	var m *nn.Model
	var err error
	if name == "random-distilbert" {
		cfg := nn.DistilBERTConfig(60, 32, 3, 4, 48, 32)
		cfg.InitializerRange = 0.3
		m, err = nn.NewModel(cfg, seed)
	} else {
		m, err = nn.LoadHF(filepath.Join("..", "testdata", "oracle", name, "model"))
	}
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 77))
	V := m.Config.VocabSize
	T := 12
	ids := make([]int32, T)
	ids[0], ids[T-1] = 2, 3 // [CLS] ... [SEP]
	for i := 1; i < T-1; i++ {
		ids[i] = int32(5 + rng.IntN(V-5))
	}
	other := make([]float32, V)
	for range 12 { // a query-like vector: a dozen terms, positive weights
		other[5+rng.IntN(V-5)] = float32(0.5 + 1.5*rng.Float64())
	}
	return testCase{name, m, ids, other}
}

func allLayers(m *nn.Model) []int {
	l := make([]int, m.Config.NumLayers)
	for i := range l {
		l[i] = i
	}
	return l
}

// roughModel is a freshly initialised 3-layer DistilBERT with a large init
// range: its SPLADE score has about 50 kinks along the path, and the
// logits vary fastest near the baseline.
const roughModel = "random-distilbert"

// roughTexts is the number of texts of the rough model TestCompleteness
// attributes (go test ./neurons -run TestCompleteness -rough-texts 100).
var roughTexts = flag.Int("rough-texts", 20, "texts of the rough random model in TestCompleteness")

// TestCompleteness checks Σ attributions = f(x) − f(baseline) with the
// default (piecewise) rule at 64 steps (all layers, zero baseline): on ten
// texts of every HF-layout test checkpoint and on the rough model's texts
// each case must meet the criterion, error ≤ 2% of
// |f(1) − f(0)|. These cases are hard for a rule that samples the
// integrand: it jumps at argmax and ReLU switches and several texts
// barely move the score (bert-tiny text 2: f(1) − f(0) = 0.008 while f
// rises by 0.12 and falls back), so the test also checks that the midpoint
// rule at 64 steps fails some of them (it reaches 30%) and logs the
// adaptive rule's error beside it. Outside -short, the midpoint rule at
// 1024 steps must be within 2% on the checkpoints' texts. It also checks a
// constant non-zero baseline and a single layer.
func TestCompleteness(t *testing.T) {
	var errs64, roughErrs []float64
	midFails, roughAd, roughMid := 0, 0, 0
	for _, name := range append(oracleModels, roughModel) {
		texts := uint64(10)
		if name == roughModel {
			texts = uint64(*roughTexts)
		}
		for seed := uint64(1); seed <= texts; seed++ {
			c := loadCase(t, name, seed)
			layers := allLayers(c.m)
			r, err := (&Attributor{Model: c.m, Layers: layers, Steps: 64}).Attribute(c.ids, c.other)
			if err != nil {
				t.Fatal(err)
			}
			e := r.CompletenessError()
			var ems [2]float64
			for i, rule := range []Rule{Midpoint, Adaptive} {
				o, err := (&Attributor{Model: c.m, Layers: layers, Steps: 64, Rule: rule}).Attribute(c.ids, c.other)
				if err != nil {
					t.Fatal(err)
				}
				ems[i] = o.CompletenessError()
			}
			em, ea := ems[0], ems[1]
			msg := fmt.Sprintf("%s text %d: score %.5f baseline %.5f Σattr %.5f, error at 64 steps: piecewise %.3g%%, adaptive %.3g%%, midpoint %.3g%%",
				name, seed, r.Score, r.BaselineScore, r.Sum, 100*e, 100*ea, 100*em)
			if math.Abs(r.Score-r.BaselineScore) < 1e-3 {
				t.Errorf("%s: score %g and baseline score %g too close for a meaningful test", name, r.Score, r.BaselineScore)
			}
			if e > 0.02 || math.IsNaN(e) {
				t.Errorf("%s text %d: completeness error %.3g%% > 2%% at 64 piecewise steps", name, seed, 100*e)
			}
			if name == roughModel {
				roughErrs = append(roughErrs, e)
				if ea <= 0.02 {
					roughAd++
				}
				if em <= 0.02 {
					roughMid++
				}
				t.Log(msg)
				continue
			}
			errs64 = append(errs64, e)
			if em > 0.02 {
				midFails++
			}
			if !testing.Short() {
				r, err := (&Attributor{Model: c.m, Layers: layers, Steps: 1024, Rule: Midpoint}).Attribute(c.ids, c.other)
				if err != nil {
					t.Fatal(err)
				}
				msg += fmt.Sprintf(", midpoint at 1024 steps %.3g%%", 100*r.CompletenessError())
				if e := r.CompletenessError(); e > 0.02 || math.IsNaN(e) {
					t.Errorf("%s text %d: completeness error %.3g%% > 2%% at 1024 midpoint steps", name, seed, 100*e)
				}
			}
			t.Log(msg)
		}
	}
	slices.Sort(errs64)
	slices.Sort(roughErrs)
	t.Logf("test checkpoints, 64 piecewise steps: median error %.3g%%, worst %.3g%%; the midpoint rule exceeds 2%% on %d of %d cases",
		100*errs64[len(errs64)/2], 100*errs64[len(errs64)-1], midFails, len(errs64))
	if n := len(roughErrs); n > 0 {
		t.Logf("rough model, 64 steps: piecewise median error %.3g%%, worst %.3g%%; within 2%%: piecewise %d, adaptive %d, midpoint %d of %d texts",
			100*roughErrs[n/2], 100*roughErrs[n-1], sort.SearchFloat64s(roughErrs, 0.02+1e-12), roughAd, roughMid, n)
	}
	if midFails == 0 {
		t.Errorf("the midpoint rule passes every case at 64 steps: the cases no longer test the piecewise rule")
	}
	// A constant non-zero baseline and a single layer.
	for _, name := range []string{"bert-tiny", "distilbert-bf16-tied-extras"} {
		c := loadCase(t, name, 1)
		L := c.m.Config.NumLayers
		a := &Attributor{Model: c.m, Layers: []int{L - 1}, Steps: 256}
		b := make([]float32, c.m.Config.IntermediateSize)
		for j := range b {
			b[j] = 0.1 * float32(j%5)
		}
		a.Baseline = [][]float32{b}
		r, err := a.Attribute(c.ids, c.other)
		if err != nil {
			t.Fatal(err)
		}
		if e := r.CompletenessError(); e > 0.02 {
			t.Errorf("%s, last layer, constant baseline: completeness error %.3g%%", name, 100*e)
		}
		// f(0) is the score with that layer's neurons at the baseline.
		F := len(b)
		forced := make([]float32, len(c.ids)*F)
		for i := range forced {
			forced[i] = b[i%F]
		}
		f0, _, err := a.ForcedGradient(c.ids, c.other, [][]float32{forced})
		if err != nil {
			t.Fatal(err)
		}
		if f0 != r.BaselineScore {
			t.Errorf("%s: baseline score %v, forced forward %v", name, r.BaselineScore, f0)
		}
	}
}

// TestBruteForcePath compares the batched Gauss–Legendre, adaptive and
// piecewise attributions at 64 steps (piecewise also in batches of 6 path
// points, which share their end points) with an unbatched (one path point
// per forward pass) midpoint integral at 4096 steps, neuron by neuron, and
// checks that each rule's per-position attributions sum to its per-neuron
// ones. The largest difference must be within 2% of the largest
// attribution, 0.5% for piecewise.
func TestBruteForcePath(t *testing.T) {
	steps := 4096
	if testing.Short() {
		steps = 1024
	}
	for _, name := range []string{"bert-tiny", "distilbert-tiny"} {
		c := loadCase(t, name, 2)
		layers := allLayers(c.m)
		slow, err := (&Attributor{Model: c.m, Layers: layers, Steps: steps, Rule: Midpoint, MaxRows: len(c.ids)}).Attribute(c.ids, c.other)
		if err != nil {
			t.Fatal(err)
		}
		for i, rule := range []Rule{GaussLegendre, Adaptive, Piecewise, Piecewise} {
			rows := 0 // the default
			if i == 3 {
				rows = 6 * len(c.ids)
			}
			fast, err := (&Attributor{Model: c.m, Layers: layers, Steps: 64, Rule: rule, PerPosition: true, MaxRows: rows}).Attribute(c.ids, c.other)
			if err != nil {
				t.Fatal(err)
			}
			var scale, worst float64
			for i := range fast.Attr {
				for j := range fast.Attr[i] {
					scale = max(scale, math.Abs(slow.Attr[i][j]))
					worst = max(worst, math.Abs(fast.Attr[i][j]-slow.Attr[i][j]))
				}
			}
			T, F := len(c.ids), c.m.Config.IntermediateSize
			var posDiff float64
			for i := range fast.Attr {
				for j, v := range fast.Attr[i] {
					var s float64
					for tk := range T {
						s += float64(fast.PerPos[i][tk*F+j])
					}
					posDiff = max(posDiff, math.Abs(s-v))
				}
			}
			if posDiff > 1e-5*scale {
				t.Errorf("%s, %s: per-position attributions sum to the per-neuron ones within %.3g (max |A| %.3g)", name, rule, posDiff, scale)
			}
			t.Logf("%s: max |A_%s64 − A_midpoint%d| = %.3g (max rows %d), max |A| = %.3g; Σ %.6f vs %.6f, f(1)−f(0) = %.6f",
				name, rule, steps, worst, rows, scale, fast.Sum, slow.Sum, fast.Score-fast.BaselineScore)
			tol := 0.02
			if rule == Piecewise {
				tol = 0.005
			}
			if worst > tol*scale {
				t.Errorf("%s: batched and brute-force attributions differ by %.3g (max |A| %.3g)", name, worst, scale)
			}
			if fast.Score != slow.Score || fast.BaselineScore != slow.BaselineScore {
				t.Errorf("%s: end points differ: %v %v vs %v %v", name, fast.Score, fast.BaselineScore, slow.Score, slow.BaselineScore)
			}
		}
	}
}

// TestForcedGradientFiniteDifferences checks ∂f/∂(forced activations) at
// an interior path point against central differences of f.
func TestForcedGradientFiniteDifferences(t *testing.T) {
	for _, name := range []string{"bert-tiny", "distilbert-tiny", "random-distilbert"} {
		c := loadCase(t, name, 3)
		layers := allLayers(c.m)
		a := &Attributor{Model: c.m, Layers: layers}
		// The clean activations, scaled by 0.6: a point on the zero-baseline path.
		rec := &Attributor{Model: c.m, Layers: layers, Steps: 1, Rule: Midpoint, PerPosition: true}
		if _, err := rec.Attribute(c.ids, c.other); err != nil {
			t.Fatal(err)
		}
		T, F := len(c.ids), c.m.Config.IntermediateSize
		h := &pathHook{layers: layers, pos: map[int]int{}, T: T, record: true}
		for i, l := range layers {
			h.pos[l] = i
			h.clean = append(h.clean, make([]float32, T*F))
		}
		p := c.m.NewPass()
		p.SetFFNHook(h)
		p.Encode(nn.Batch{B: 1, T: T, InputIDs: c.ids, Mask: ones(T)})
		forced := h.clean
		for _, x := range forced {
			for j := range x {
				x[j] *= 0.6
			}
		}
		f0, g, err := a.ForcedGradient(c.ids, c.other, forced)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, 9))
		var scale float64
		for _, gi := range g {
			for _, v := range gi {
				scale = max(scale, math.Abs(v))
			}
		}
		const step = 1e-2
		bad := 0
		for n := 0; n < 40; n++ {
			i, x := rng.IntN(len(layers)), rng.IntN(T*F)
			old := forced[i][x]
			forced[i][x] = old + step
			fp, _, _ := a.ForcedGradient(c.ids, c.other, forced)
			forced[i][x] = old - step
			fm, _, _ := a.ForcedGradient(c.ids, c.other, forced)
			forced[i][x] = old
			fd := (fp - fm) / (2 * step)
			if d := math.Abs(fd - g[i][x]); d > 1e-3*scale+1e-4 {
				bad++
				t.Logf("%s: layer %d entry %d: fd %.6g, analytic %.6g", name, layers[i], x, fd, g[i][x])
			}
		}
		// A kink (ReLU or argmax switch) within ±step can spoil one difference.
		if bad > 2 {
			t.Errorf("%s: %d of 40 gradients disagree with finite differences (f = %g, max |g| %g)", name, bad, f0, scale)
		}
	}
}

// TestAttributeRefusesSumPooling: attribution follows max pooling's
// argmax, so a sum-pooled model is refused with an error that says so.
func TestAttributeRefusesSumPooling(t *testing.T) {
	c := loadCase(t, oracleModels[0], 1)
	c.m.Config.SpladePooling = nn.PoolSum
	_, err := (&Attributor{Model: c.m, Layers: allLayers(c.m), Steps: 8}).Attribute(c.ids, c.other)
	if err == nil || !strings.Contains(err.Error(), "max-pooled models only") {
		t.Fatalf("sum-pooled model: err %v, want a refusal naming max pooling", err)
	}
}
