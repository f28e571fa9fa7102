package splade

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
)

// TestGradientsOracle checks Trainer.Gradients — three passes, SPLADE
// pooling, Objective, sparse pool backward, head and encoder backward —
// against the PyTorch oracle's per-term losses and parameter gradients
// (testdata/oracle, float64 reference): the total
// infonce + 0.5·margin_mse + 0.05·flops_q + 0.03·flops_d + 0.02·l1_q
// + 0.01·l1_d, every case, every parameter, compare.py's elementwise rule
// (|got − want| ≤ 1e-4·max(1, rms want) + 1e-3·|want|; key biases, whose
// true gradient is 0, absolute only).
func TestGradientsOracle(t *testing.T) {
	cases, _ := filepath.Glob(filepath.Join("..", "testdata", "oracle", "*", "golden"))
	if len(cases) == 0 {
		t.Fatal("no oracle case under ../testdata/oracle")
	}
	weights := map[string]float64{"infonce": 1, "margin_mse": 0.5, "flops_q": 0.05, "flops_d": 0.03, "l1_q": 0.02, "l1_d": 0.01}
	for _, golden := range cases {
		name := filepath.Base(filepath.Dir(golden))
		t.Run(name, func(t *testing.T) {
			m, err := nn.LoadHF(filepath.Join(golden, "..", "model"))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(golden, "inputs.json"))
			if err != nil {
				t.Fatal(err)
			}
			var in map[string]json.RawMessage
			if err := json.Unmarshal(raw, &in); err != nil {
				t.Fatal(err)
			}
			batch := func(g string) nn.Batch {
				var ids, mask, types [][]int32
				json.Unmarshal(in[g+".input_ids"], &ids)
				json.Unmarshal(in[g+".attention_mask"], &mask)
				json.Unmarshal(in[g+".token_type_ids"], &types)
				b := nn.Batch{B: len(ids), T: len(ids[0])}
				for i := range ids {
					b.InputIDs = append(b.InputIDs, ids[i]...)
					for j := range mask[i] {
						b.Mask = append(b.Mask, float32(mask[i][j]))
					}
					if types != nil {
						b.TypeIDs = append(b.TypeIDs, types[i]...)
					}
				}
				return b
			}
			var teacher []float32
			json.Unmarshal(in["teacher_margin"], &teacher)
			tb := &TrainBatch{Q: batch("q"), P: batch("pos"), N: batch("neg"), NNeg: 1, Teacher: teacher}
			tr := &Trainer{Model: m, Opt: TrainOptions{Weights: Weights{InfoNCE: weights["infonce"], MarginMSE: weights["margin_mse"],
				FLOPSQ: weights["flops_q"], FLOPSD: weights["flops_d"], L1Q: weights["l1_q"], L1D: weights["l1_d"]}}}
			terms, _, err := tr.Gradients(tb, 0)
			if err != nil {
				t.Fatal(err)
			}
			var losses map[string]float64
			raw, _ = os.ReadFile(filepath.Join(golden, "losses.json"))
			json.Unmarshal(raw, &losses)
			for k, got := range map[string]float64{"infonce": terms.InfoNCE, "margin_mse": terms.MarginMSE,
				"flops_q": terms.FLOPSQ, "flops_d": terms.FLOPSD, "l1_q": terms.L1Q, "l1_d": terms.L1D} {
				if want := losses[k]; math.Abs(got-want) > 1e-4*max(1, math.Abs(want)) {
					t.Errorf("%s = %.8g, oracle %.8g", k, got, want)
				}
			}
			// Expected gradient: the weighted sum of the per-term goldens.
			want := map[string][]float64{}
			for term, w := range weights {
				f, err := safetensors.ReadFile(filepath.Join(golden, "grads."+term+".safetensors"))
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range m.Params {
					g, _, err := f.Float32(p.Name)
					if err != nil {
						t.Fatalf("%s: %v", term, err)
					}
					if want[p.Name] == nil {
						want[p.Name] = make([]float64, len(g))
					}
					for i, x := range g {
						want[p.Name][i] += w * float64(x)
					}
				}
			}
			worst, worstName := 0.0, ""
			for _, p := range m.Params {
				wg := want[p.Name]
				var ss float64
				for _, x := range wg {
					ss += x * x
				}
				scale := max(1, math.Sqrt(ss/float64(len(wg))))
				keyBias := strings.HasSuffix(p.Name, ".attention.self.key.bias") || strings.HasSuffix(p.Name, ".attention.k_lin.bias")
				for i, x := range wg {
					allowed := 1e-4 * scale
					if !keyBias {
						allowed += 1e-3 * math.Abs(x)
					}
					if use := math.Abs(float64(p.G[i])-x) / allowed; use > worst {
						worst, worstName = use, p.Name
					}
				}
			}
			t.Logf("worst error/allowed %.3f (%s)", worst, worstName)
			if worst > 1 {
				t.Errorf("gradient of %s off the oracle: error/allowed %.3f", worstName, worst)
			}
		})
	}
}
