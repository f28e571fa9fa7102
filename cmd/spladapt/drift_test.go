package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/toyset"
	"github.com/spladapt/spladapt/pretrain"
)

func TestAdaptDrift(t *testing.T) {
	a, b := toyset.TinyModelDir(t, 1), toyset.TinyModelDir(t, 2)
	var lines []string
	for id, text := range toyset.Docs {
		lines = append(lines, fmt.Sprintf(`{"_id": %q, "text": %q}`, id, text))
	}
	corpus := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(corpus, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "adapt", "drift", "--a", a, "--b", a, "--corpus", corpus, "--n", "4")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4 documents", "0 embeddings  1.0000  1.0000", "2 layer 1     1.0000  1.0000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCLI(t, "adapt", "drift", "--a", a, "--b", b, "--corpus", corpus, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res pretrain.DriftResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if res.Docs != len(toyset.Docs) || len(res.Layers) != 3 || res.Layers[0].CKA >= 0.999 {
		t.Errorf("two random models: %d docs, layers %+v; want %d docs, 3 layers, CKA below 1 at the embeddings", res.Docs, res.Layers, len(toyset.Docs))
	}
}
