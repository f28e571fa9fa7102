package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/adapt"
	"github.com/spladapt/spladapt/config"
)

// TestAdaptRerankFlags: --rerank and --rerank-depth set adapt.rerank and
// adapt.rerank_depth (a bad model path and a depth of 0 are refused,
// naming them, before any stage runs), and "adapt status" lists the
// rerank stage of a plan that re-ranks.
func TestAdaptRerankFlags(t *testing.T) {
	dir := t.TempDir()
	src := adapt.DemoSource()
	src.Docs, src.Splits = 20, map[string]int{"train": 5}
	if err := adapt.GenerateDemo(filepath.Join(dir, "src"), src); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "tgt")
	os.MkdirAll(target, 0o755)
	// adapt.base is missing: should a flag fail to reach its setting, the
	// pipeline stops at its first stage instead of training for hours.
	cfgFile := filepath.Join(dir, "config.yaml")
	yaml := "adapt:\n  source: [" + filepath.Join(dir, "src") + "]\n  base: " + filepath.Join(dir, "no-such-base") + "\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	missing := filepath.Join(dir, "no-such-ce")
	_, _, err := runCLI(t, "--config", cfgFile, "adapt", "--target", target, "--out", run, "--rerank", missing)
	if err == nil || !strings.Contains(err.Error(), "adapt.rerank = "+missing) {
		t.Errorf("--rerank %s: err %v, want it refused by name", missing, err)
	}
	ce := filepath.Join("..", "..", "testdata", "ceoracle", "ce-bert", "model")
	_, _, err = runCLI(t, "--config", cfgFile, "adapt", "--target", target, "--out", run, "--rerank", ce, "--rerank-depth", "0")
	if err == nil || !strings.Contains(err.Error(), "adapt.rerank_depth") {
		t.Errorf("--rerank-depth 0: err %v, want it refused naming adapt.rerank_depth", err)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("a refused adapt made its run directory (%v)", err)
	}

	// status rebuilds the stage list from plan.json.
	c := config.Default()
	c.Adapt.Source, c.Adapt.Rerank = []string{filepath.Join(dir, "src")}, ce
	raw, _ := json.Marshal(adapt.Plan{Config: c, Targets: []string{target}})
	os.MkdirAll(run, 0o755)
	if err := os.WriteFile(filepath.Join(run, "plan.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "adapt", "status", run)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^eval-tgt +pending\s*\nrerank-tgt +pending\s*\nsummary +pending`).MatchString(out) {
		t.Errorf("adapt status lacks rerank-tgt between eval-tgt and summary:\n%s", out)
	}
}
