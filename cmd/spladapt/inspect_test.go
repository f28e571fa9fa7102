package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/safetensors"
)

// nnCLI runs the command tree with args (no config file, no progress).
func nnCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRootCommand()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--config", "", "--progress", "off"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

const oracleCases = "../../testdata/oracle"

// closeTo applies the oracle's compare.py rule (atol 1e-4 scaled by
// max(1, rms), rtol 1e-3, norm rtol 1e-3) to a whole tensor.
func closeTo(t *testing.T, label string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d elements, want %d", label, len(got), len(want))
	}
	var ss, sd float64
	for i := range want {
		ss += float64(want[i]) * float64(want[i])
	}
	scale := max(1, math.Sqrt(ss/float64(len(want))))
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		sd += d * d
		if d > 1e-4*scale+1e-3*math.Abs(float64(want[i])) {
			t.Fatalf("%s[%d] = %g, want %g", label, i, got[i], want[i])
		}
	}
	if math.Sqrt(sd) > 1e-3*math.Sqrt(ss) {
		t.Fatalf("%s: relative L2 error %g", label, math.Sqrt(sd/ss))
	}
}

func readTensor(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	d, _, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// inspect forward and grad on the oracle's inputs reproduce its golden
// hidden states, logits, SPLADE vectors, MLM loss and MLM gradients.
func TestInspectMatchesOracle(t *testing.T) {
	for _, c := range []string{"bert-tiny", "distilbert-bf16-tied-extras"} {
		t.Run(c, func(t *testing.T) {
			model := filepath.Join(oracleCases, c, "model")
			golden := filepath.Join(oracleCases, c, "golden")
			inputs := filepath.Join(golden, "inputs.json")
			outs, err := safetensors.ReadFile(filepath.Join(golden, "outputs.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			fw := filepath.Join(dir, "fw.safetensors")
			if _, err := nnCLI(t, "inspect", "forward", "--model", model, "--input", inputs, "--group", "pos", "--out", fw); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.ReadFile(fw)
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, "last_hidden_state", readTensor(t, f, "last_hidden_state"), readTensor(t, outs, "pos.last_hidden_state"))
			closeTo(t, "mlm_logits", readTensor(t, f, "mlm_logits"), readTensor(t, outs, "pos.logits"))
			closeTo(t, "splade", readTensor(t, f, "splade"), readTensor(t, outs, "pos.splade"))

			gr := filepath.Join(dir, "grad.safetensors")
			out, err := nnCLI(t, "inspect", "grad", "--model", model, "--input", inputs, "--group", "mlm", "--out", gr)
			if err != nil {
				t.Fatal(err)
			}
			g, err := safetensors.ReadFile(gr)
			if err != nil {
				t.Fatal(err)
			}
			want, err := safetensors.ReadFile(filepath.Join(golden, "grads.mlm.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Names()) != len(want.Names()) {
				t.Errorf("%d gradients, golden has %d", len(g.Names()), len(want.Names()))
			}
			for _, n := range want.Names() {
				if strings.HasSuffix(n, "key.bias") || strings.HasSuffix(n, "k_lin.bias") {
					continue // exactly 0 in exact arithmetic; rounding noise here
				}
				closeTo(t, n, readTensor(t, g, n), readTensor(t, want, n))
			}
			var losses map[string]float64
			b, _ := os.ReadFile(filepath.Join(golden, "losses.json"))
			if err := json.Unmarshal(b, &losses); err != nil {
				t.Fatal(err)
			}
			var got float64
			got, err = strconv.ParseFloat(g.Metadata()["mlm_loss"], 64)
			if err != nil || math.Abs(got-losses["mlm"]) > 1e-5*losses["mlm"] {
				t.Errorf("mlm_loss %v (%v), want %v", g.Metadata()["mlm_loss"], err, losses["mlm"])
			}
			if !strings.HasPrefix(out, "mlm_loss ") {
				t.Errorf("output %q", out)
			}
		})
	}
}

func TestInspectInputErrors(t *testing.T) {
	model := filepath.Join(oracleCases, "bert-tiny", "model")
	dir := t.TempDir()
	for name, c := range map[string]struct{ json, want string }{
		"ragged":    {`{"input_ids": [[2, 5, 3], [2, 3]]}`, "row 1 has 2 entries, want 3"},
		"vocab":     {`{"input_ids": [[2, 500, 3]]}`, "input id 500 at row 0 position 1"},
		"no ids":    {`{"attention_mask": [[1]]}`, `no "input_ids" rows`},
		"mask rows": {`{"input_ids": [[2, 3]], "attention_mask": [[1, 1], [1, 1]]}`, "attention_mask has 2 rows"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		os.WriteFile(p, []byte(c.json), 0o644)
		_, err := nnCLI(t, "inspect", "forward", "--model", model, "--input", p, "--out", filepath.Join(dir, "x.safetensors"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
	p := filepath.Join(dir, "nolabels.json")
	os.WriteFile(p, []byte(`{"input_ids": [[2, 5, 3]]}`), 0o644)
	if _, err := nnCLI(t, "inspect", "grad", "--model", model, "--input", p, "--out", filepath.Join(dir, "x.safetensors")); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Errorf("grad without labels: %v", err)
	}
}

func TestModelInfo(t *testing.T) {
	out, err := nnCLI(t, "model", "info", filepath.Join(oracleCases, "distilbert-tiny", "model"), "--domain-layers", "1", "--freeze", "domain")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"model_type distilbert: vocab 100, hidden 32, layers 2, heads 4 (size 8), intermediate 64, max positions 32\n",
		"distilbert.transformer.layer.0.ffn.lin1.weight", "vocab_projector.bias",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// 100·32 + 32·32 + 2·32 embeddings, 2 layers of 4·(32·32+32) + 2·(2·32) + 64·32+64 + 32·64+32, head 32·32+32 + 2·32 + 100.
	layer := 4*(32*32+32) + 2*2*32 + 64*32 + 64 + 32*64 + 32
	total := 100*32 + 32*32 + 2*32 + 2*layer + 32*32 + 32 + 2*32 + 100
	domain := 100*32 + 32*32 + 2*32 + layer
	wantLine := "parameters " + strconv.Itoa(total) + " (tied decoder counted once): P_domain(k=1) " + strconv.Itoa(domain) +
		", P_task " + strconv.Itoa(total-domain) + "; trainable " + strconv.Itoa(total-domain) + "\n"
	if !strings.HasSuffix(out, wantLine) {
		t.Errorf("last line of\n%s\nwant %q", out, wantLine)
	}
}
