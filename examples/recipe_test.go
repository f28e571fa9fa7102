// Package examples holds the configurations and scripts of examples/; its
// tests run the scripts against a stand-in binary.
package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBin is a stand-in for spladapt: it appends its arguments to $LOG and
// creates its --out (a directory with config.json, or a file for a table).
// When $FAIL is a suffix of --out it creates the output and then fails, as a
// training run does that has saved its best model so far and is killed.
const fakeBin = `#!/usr/bin/env bash
echo "$*" >>"$LOG"
out=
while [[ $# -gt 0 ]]; do
	if [[ "$1" == --out ]]; then out="$2"; fi
	shift
done
if [[ "$out" == *.md ]]; then echo table >"$out"; else mkdir -p "$out" && echo '{}' >"$out/config.json"; fi
if [[ -n "${FAIL:-}" && "$out" == *"$FAIL" ]]; then exit 1; fi
`

// runRecipe runs recipe/run.sh with the stand-in binary and returns the
// steps it invoked (the --out of each call, relative to runs).
func runRecipe(t *testing.T, bin, runs, fail string) ([]string, error) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "calls")
	cmd := exec.Command("bash", "recipe/run.sh", runs, "data")
	cmd.Env = append(os.Environ(), "RECIPE_BIN="+bin, "LOG="+log, "FAIL="+fail)
	out, err := cmd.CombinedOutput()
	raw, _ := os.ReadFile(log)
	var steps []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if i := strings.Index(line, "--out "); i >= 0 {
			steps = append(steps, strings.TrimPrefix(strings.Fields(line[i:])[1], runs+"/"))
		}
	}
	if err != nil {
		t.Logf("run.sh output:\n%s", out)
	}
	return steps, err
}

// TestRecipeResumesAnInterruptedStage: a stage that wrote its output and
// was then killed is run again (it resumes from its checkpoint), and the
// stages that finished are not.
func TestRecipeResumesAnInterruptedStage(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	// Read here so that go test's cache sees a change of the script.
	if _, err := os.ReadFile("recipe/run.sh"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "spladapt")
	if err := os.WriteFile(bin, []byte(fakeBin), 0o755); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(dir, "runs")
	steps, err := runRecipe(t, bin, runs, "splade-stage1")
	if err == nil {
		t.Fatal("run.sh succeeded although stage 1 failed")
	}
	if want := "base splade-stage1"; strings.Join(steps, " ") != want {
		t.Fatalf("first run invoked %q, want %q", steps, want)
	}
	if _, err := os.Stat(filepath.Join(runs, "splade-stage1", "config.json")); err != nil {
		t.Fatalf("the stand-in did not leave stage 1's output: %v", err)
	}
	steps, err = runRecipe(t, bin, runs, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "splade-stage1 splade table.md table-source.md"; strings.Join(steps, " ") != want {
		t.Fatalf("second run invoked %q, want %q (stage 1 again, base reused)", steps, want)
	}
	steps, err = runRecipe(t, bin, runs, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 0 {
		t.Fatalf("third run invoked %q, want nothing (every step done)", steps)
	}
	times, err := os.ReadFile(filepath.Join(runs, "recipe-times.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(times)), "\n") {
		names = append(names, strings.Fields(line)[0])
	}
	if want := "base splade-stage1 splade-stage2 table-targets table-source-dev"; strings.Join(names, " ") != want {
		t.Errorf("recipe-times.tsv names %q, want %q", names, want)
	}
}
