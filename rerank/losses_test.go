package rerank

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/spladapt/spladapt/safetensors"
)

// The losses on the golden scores of tools/ceoracle equal PyTorch's, value
// and gradient (binary_cross_entropy_with_logits, the margin MSE and the
// group-wise softmax cross-entropy, in float64).
func TestLossesOracle(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/ceoracle/ce-*")
	if len(dirs) == 0 {
		t.Fatal("no oracle case in ../testdata/ceoracle")
	}
	for _, dir := range dirs {
		var cj struct {
			Groups, Negatives int
			Losses            map[string]struct {
				Value   float64   `json:"value"`
				DScores []float64 `json:"dscores"`
			} `json:"losses"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "golden/case.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &cj); err != nil {
			t.Fatal(err)
		}
		sf, err := safetensors.ReadFile(filepath.Join(dir, "golden/scores.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := safetensors.ReadFile(filepath.Join(dir, "golden/inputs.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		s, _, _ := sf.Float32("scores")
		teacher, _, _ := in.Float32("teacher")
		if len(cj.Losses) != 3 {
			t.Fatalf("%s: %d losses in case.json, want 3", dir, len(cj.Losses))
		}
		for name, want := range cj.Losses {
			ds := make([]float32, len(s))
			got, err := Loss(name, s, cj.Groups, cj.Negatives, teacher, ds)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-want.Value) > 1e-6*max(1, math.Abs(want.Value)) {
				t.Errorf("%s %s: loss %.9g, PyTorch %.9g", filepath.Base(dir), name, got, want.Value)
			}
			var worst float64
			for i, g := range want.DScores {
				worst = max(worst, math.Abs(float64(ds[i])-g))
			}
			if worst > 1e-6 {
				t.Errorf("%s %s: ∂loss/∂s differs by %.3g", filepath.Base(dir), name, worst)
			}
			t.Logf("%s %-9s loss %.6f (PyTorch %.6f), max |Δ∂s| %.2e", filepath.Base(dir), name, got, want.Value, worst)
		}
	}
	if _, err := Loss(MarginMSE, make([]float32, 6), 2, 2, nil, make([]float32, 6)); err == nil {
		t.Error("marginmse without teacher margins: no error")
	}
	if _, err := Loss("listwise", make([]float32, 6), 2, 2, nil, make([]float32, 6)); err == nil {
		t.Error("unknown loss: no error")
	}
}
