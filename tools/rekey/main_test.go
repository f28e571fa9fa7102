package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spladapt/spladapt/adapt"
)

// A run whose input file is re-created (same bytes, new time) redoes its
// stages; after rekey with -accept it reuses them, downstream included,
// and an input that was not accepted stops rekey.
func TestRekeyMakesACopiedRunReusable(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(data, "corpus.jsonl")
	if err := os.WriteFile(file, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	ran := map[string]int{}
	stages := func(r *adapt.Runner) []adapt.Stage {
		mk := func(name string, inputs ...string) adapt.Stage {
			return adapt.Stage{Name: name, Config: map[string]any{"x": 1, "s": "<&>"}, Inputs: inputs,
				Run: func(ctx context.Context, out, work string, notes map[string]any) error {
					ran[name]++
					notes["n"] = 1e6
					return os.WriteFile(filepath.Join(out, "model"), []byte(name), 0o644)
				}}
		}
		return []adapt.Stage{mk("first", data), mk("second", r.Path("first"), data)}
	}
	runAll := func() {
		r := &adapt.Runner{Dir: run}
		for _, s := range stages(r) {
			if _, err := r.Run(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
	}
	runAll()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	err := rekey(filepath.Join(run, "first"), map[string]bool{})
	if err == nil || !strings.Contains(err.Error(), "-accept "+data) {
		t.Fatalf("rekey without -accept: err = %v, want one asking for -accept %s", err, data)
	}
	for _, s := range []string{"first", "second"} {
		if err := rekey(filepath.Join(run, s), map[string]bool{data: true}); err != nil {
			t.Fatal(err)
		}
	}
	runAll()
	if ran["first"] != 1 || ran["second"] != 1 {
		t.Fatalf("stages ran %v after rekey; want each once (reused)", ran)
	}
	// Without rekey the changed time makes both stages run again.
	if err := os.Chtimes(file, later.Add(time.Hour), later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	runAll()
	if ran["first"] != 2 || ran["second"] != 2 {
		t.Fatalf("stages ran %v after a new time without rekey; want each twice", ran)
	}
}
