package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/export/ciff"
	"github.com/spladapt/spladapt/export/elastic"
)

// TestExportCommands: "export ciff" from an index and from the vectors it
// was built from give the same file, which decodes with the index's
// postings; "export opensearch" writes the mapping and the bulk file;
// "export elasticsearch --query" prints the query body; "export onnx"
// writes the model and the tokenizer files.
func TestExportCommands(t *testing.T) {
	dir := t.TempDir()
	vocab := filepath.Join(dir, "vocab.txt")
	vecs := filepath.Join(dir, "docs.jsonl")
	os.WriteFile(vocab, []byte("[PAD]\nhello\n.\nworld\n"), 0o644)
	os.WriteFile(vecs, []byte(`{"id":"d1","vector":{"hello":1.0,".":0.5}}`+"\n"+`{"id":"d2","vector":{"world":2.0,"hello":0.25}}`+"\n"), 0o644)
	idx := filepath.Join(dir, "idx")
	if _, _, err := runCLI(t, "index", "build", "--vectors", vecs, "--vocab", vocab, "--out", idx); err != nil {
		t.Fatal(err)
	}
	c1, c2 := filepath.Join(dir, "a.ciff"), filepath.Join(dir, "b.ciff")
	out, _, err := runCLI(t, "export", "ciff", "--index", idx, "--out", c1)
	if err != nil || !strings.Contains(out, "3 postings lists, 2 documents") {
		t.Fatalf("export ciff: %q %v", out, err)
	}
	if _, _, err := runCLI(t, "export", "ciff", "--vectors", vecs, "--vocab", vocab, "--out", c2); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(c1)
	b2, _ := os.ReadFile(c2)
	if !bytes.Equal(b1, b2) || len(b1) == 0 {
		t.Errorf("CIFF from the index (%d bytes) and from its vectors (%d bytes) differ", len(b1), len(b2))
	}
	cr := ciff.NewReader(bytes.NewReader(b1))
	cr.ReadHeader()
	var pl ciff.PostingsList
	var got []string
	for cr.NextPostingsList(&pl) {
		for _, p := range pl.Postings {
			got = append(got, pl.Term+":"+string(rune('0'+p.DocID))+":"+itoa(int(p.TF)))
		}
	}
	// scale = 2/255: hello 1.0 → 128, 0.25 → 32; "." 0.5 → 64; world → 255.
	if want := ".:0:64 hello:0:128 hello:1:32 world:1:255"; strings.Join(got, " ") != want {
		t.Errorf("postings %q, want %q", strings.Join(got, " "), want)
	}
	if _, _, err := runCLI(t, "export", "ciff", "--out", c1); err == nil || !strings.Contains(err.Error(), "exactly one of --index and --vectors") {
		t.Errorf("no source: %v", err)
	}

	osDir := filepath.Join(dir, "os")
	if out, _, err := runCLI(t, "export", "opensearch", "--vectors", vecs, "--out", osDir); err != nil || !strings.Contains(out, "2 documents in 1 bulk files") {
		t.Fatalf("export opensearch: %q %v", out, err)
	}
	bulk, _ := os.ReadFile(filepath.Join(osDir, "bulk-00000.ndjson"))
	if want := `{"index":{"_id":"d1"}}` + "\n" + `{"id":"d1","splade":{"%2E":0.5,"hello":1}}` + "\n"; !strings.HasPrefix(string(bulk), want) {
		t.Errorf("bulk file starts %q, want %q", bulk, want)
	}
	if m, _ := os.ReadFile(filepath.Join(osDir, "mapping.json")); !bytes.Equal(m, elastic.Mapping(elastic.OpenSearch, "splade")) {
		t.Errorf("mapping %s", m)
	}
	out, _, err = runCLI(t, "export", "elasticsearch", "--query", `{"a.b": 1.5}`, "-k", "3")
	var body map[string]any
	if err != nil || json.Unmarshal([]byte(out), &body) != nil || !strings.Contains(out, `"query_vector":{"a%2Eb":1.5}`) || body["size"] != 3.0 {
		t.Errorf("elasticsearch --query: %q %v", out, err)
	}

	onnxDir := filepath.Join(dir, "onnx")
	if _, _, err := runCLI(t, "export", "onnx", "--model", filepath.Join("..", "..", "testdata", "oracle", "distilbert-tiny", "model"), "--out", onnxDir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.onnx", "vocab.txt", "config.json"} {
		if _, err := os.Stat(filepath.Join(onnxDir, f)); err != nil {
			t.Error(err)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
