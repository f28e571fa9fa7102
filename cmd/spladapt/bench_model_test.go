package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/benchmodel"
	"github.com/spladapt/spladapt/nn"
)

func TestBenchModelJSON(t *testing.T) {
	for _, task := range []string{"encode", "mlm-train"} {
		out, err := evalCLI(t, "bench", "model", "--task", task, "--layers", "1", "--hidden", "16", "--heads", "2",
			"--ff", "32", "--vocab", "300", "--batch", "2", "--len", "16", "--runs", "3", "--warmup", "0", "--peak=false", "--json")
		if err != nil {
			t.Fatalf("%s: %v", task, err)
		}
		var r benchmodel.Result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: %v in %q", task, err, out)
		}
		if r.Task != task || r.Batch != 2 || r.Len != 16 || r.Runs != 3 || len(r.MsRuns) != 3 {
			t.Fatalf("%s: echoed settings wrong: %+v", task, r)
		}
		// tokens/s and GFLOPS must be consistent with the median time.
		if r.MsPerBatch <= 0 || r.TokensPerS <= 0 || r.GFLOPS <= 0 || r.RSSMB <= 0 {
			t.Fatalf("%s: non-positive measurement: %+v", task, r)
		}
		if d := r.TokensPerS*r.MsPerBatch/1e3 - 32; d > 1e-6 || d < -1e-6 {
			t.Fatalf("%s: tokens/s %g × %g ms ≠ 32 tokens", task, r.TokensPerS, r.MsPerBatch)
		}
		if r.PeakGFLOPS != benchmodel.ReferencePeak || r.PctPeak != 100*r.GFLOPS/benchmodel.ReferencePeak {
			t.Fatalf("%s: peak %g, pct %g", task, r.PeakGFLOPS, r.PctPeak)
		}
		if task == "mlm-train" && (r.Masked == 0 || r.Loss <= 0) {
			t.Fatalf("mlm-train: masked %d, loss %g", r.Masked, r.Loss)
		}
	}
	if _, err := evalCLI(t, "bench", "model", "--task", "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad task: err %v", err)
	}
}

// TestBenchModelKernels: --kernels with two levels times both, runs
// alternating, and reports each; a level the CPU cannot run is an error.
func TestBenchModelKernels(t *testing.T) {
	if _, err := evalCLI(t, "bench", "model", "--kernels", "sse", "--peak=false"); err == nil || !strings.Contains(err.Error(), "--kernels") {
		t.Fatalf("bad --kernels: err %v", err)
	}
	prev := nn.Kernels()
	if nn.SetKernels("avx512") != nil {
		t.Skipf("side by side needs avx2 and avx512 kernels; this build and CPU run %s", prev)
	}
	defer nn.SetKernels("auto")
	out, err := evalCLI(t, "bench", "model", "--kernels", "avx2,avx512", "--layers", "1", "--hidden", "32", "--heads", "2",
		"--ff", "32", "--vocab", "300", "--batch", "2", "--len", "16", "--runs", "2", "--warmup", "0", "--peak=false", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r benchmodel.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if len(r.ByKernels) != 2 || r.ByKernels[0].Kernels != "avx2" || r.ByKernels[1].Kernels != "avx512" || r.Kernels != "avx2" {
		t.Fatalf("by_kernels %+v, kernels %q", r.ByKernels, r.Kernels)
	}
	for _, l := range r.ByKernels {
		if len(l.MsRuns) != 2 || len(l.CPUMsRuns) != 2 || l.TokensPerS <= 0 {
			t.Fatalf("level %s: %+v", l.Kernels, l)
		}
	}
	if r.MsPerBatch != r.ByKernels[0].MsPerBatch || nn.Kernels() != "avx2" {
		t.Fatalf("first level not reported or not left in force: %g vs %g, kernels %s", r.MsPerBatch, r.ByKernels[0].MsPerBatch, nn.Kernels())
	}
}

// TestBenchModelCorpus encodes a small corpus with a trained vocabulary.
func TestBenchModelCorpus(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	for i := range 40 {
		sb.WriteString(`{"_id":"d` + strconv.Itoa(i) + `","title":"","text":"`)
		for range i%7 + 1 {
			sb.WriteString("protein binding cell membrane receptor ")
		}
		sb.WriteString("\"}\n")
	}
	path := filepath.Join(dir, "corpus.jsonl")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := evalCLI(t, "bench", "model", "--corpus", path, "--layers", "1", "--hidden", "16", "--heads", "2",
		"--ff", "32", "--vocab", "200", "--batch", "4", "--len", "16", "--runs", "1", "--peak=false", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r benchmodel.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Docs != 40 || r.RealTokens < 40*3 || r.Batches < 40*3/64 || r.TokensPerS <= 0 {
		t.Fatalf("corpus run: %+v", r)
	}
}
