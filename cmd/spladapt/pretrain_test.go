package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the command tree and returns stdout and stderr together.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errs, err := runCLI(t, args...)
	return out + errs, err
}

func TestPretrainSwapEvalCLI(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 80; i++ {
		fmt.Fprintf(&b, "{\"_id\": \"d%d\", \"text\": \"the quick brown fox %d jumps over the lazy dog and runs far away\"}\n", i, i%7)
	}
	corpus := filepath.Join(dir, "corpus.jsonl")
	os.WriteFile(corpus, []byte(b.String()), 0o644)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(`cache_dir: `+filepath.Join(dir, "cache")+`
progress: "off"
pretrain:
  layers: 2
  hidden: 16
  heads: 2
  ff: 32
  max_positions: 32
  vocab_size: 100
  seq_len: 16
  batch_size: 4
  steps: 3
  warmup_steps: 1
  eval_every: 3
  checkpoint_every: 3
  heldout_every: 5
`), 0o644)
	base := filepath.Join(dir, "base")
	out, err := cli(t, "--config", cfg, "pretrain", "--corpus", corpus, "--from-scratch", "--out", base)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, `"steps": 3`) || !strings.Contains(out, `"train_params": "all"`) {
		t.Errorf("pretrain output:\n%s", out)
	}
	dom := filepath.Join(dir, "dom")
	out, err = cli(t, "--config", cfg, "pretrain", "--corpus", corpus, "--init", base, "--train-params", "domain", "--steps", "2", "--out", dom)
	if err != nil || !strings.Contains(out, `"train_params": "domain"`) || !strings.Contains(out, `"steps": 2`) {
		t.Fatalf("continued pretrain: %v\n%s", err, out)
	}
	swapped := filepath.Join(dir, "swapped")
	if out, err := cli(t, "--config", cfg, "model", "swap", "--domain", dom, "--task", base, "--out", swapped); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = cli(t, "--config", cfg, "pretrain", "eval", "--model", swapped, "--corpus", corpus)
	if err != nil || !strings.Contains(out, "perplexity") {
		t.Fatalf("pretrain eval: %v\n%s", err, out)
	}
	if _, err := cli(t, "--config", cfg, "pretrain", "--corpus", corpus, "--out", filepath.Join(dir, "x")); err == nil {
		t.Error("pretrain without --init or --from-scratch: no error")
	}
}
