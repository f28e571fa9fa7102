package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/tokenize"
)

func TestTokenizeTrainEncodeCLI(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte{}, 0o644)
	corpus := filepath.Join(dir, "docs")
	os.MkdirAll(corpus, 0o755)
	os.WriteFile(filepath.Join(corpus, "a.txt"), []byte(strings.Repeat("Sparse retrieval adapts to new domains. ", 20)), 0o644)
	os.WriteFile(filepath.Join(corpus, "b.txt"), []byte(strings.Repeat("Café naïve résumé retrieval! ", 10)), 0o644)
	jsonl := filepath.Join(dir, "c.jsonl")
	os.WriteFile(jsonl, []byte(`{"_id":"1","title":"Domains","text":"sparse domains"}`+"\n"), 0o644)
	out := filepath.Join(dir, "tok")

	run := func(args ...string) string {
		t.Helper()
		root := NewRootCommand()
		var o, e bytes.Buffer
		root.SetOut(&o)
		root.SetErr(&e)
		root.SetArgs(append([]string{"--config", cfgPath, "--progress", "off"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v (stderr %s)", args, err, e.String())
		}
		return o.String()
	}
	got := run("tokenize", "train", "--corpus", corpus, "--corpus", jsonl, "--vocab-size", "60", "--min-freq", "1", "--out", out)
	if !strings.Contains(got, "on 3 documents") {
		t.Errorf("train output %q, want 3 documents", got)
	}
	tok, err := tokenize.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 60 || tok.MaxLen() != 512 || !tok.Lowercase() {
		t.Errorf("trained tokenizer: %d tokens, max len %d, lowercase %v", tok.VocabSize(), tok.MaxLen(), tok.Lowercase())
	}
	got = run("tokenize", "encode", "--model", out, "--max-len", "6", "Retrieval retrieval café", "x")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[1], "tokens: [CLS] ") || !strings.HasSuffix(lines[1], " [SEP]") {
		t.Fatalf("encode output:\n%s", got)
	}
	toks := strings.Fields(strings.TrimPrefix(lines[1], "tokens:"))
	ids := strings.Fields(strings.TrimPrefix(lines[2], "ids:"))
	if len(toks) != 6 || len(ids) != 6 || ids[0] != "2" || ids[5] != "3" {
		t.Errorf("truncated encoding: tokens %v ids %v", toks, ids)
	}
	if strings.Contains(lines[1], "[UNK]") || lines[4] != "tokens: [CLS] [UNK] [SEP]" {
		t.Errorf("want no [UNK] for training words, [UNK] for the unseen 'x':\n%s", got)
	}

	root := NewRootCommand()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"--config", cfgPath, "tokenize", "train", "--corpus", filepath.Join(dir, "missing"), "--out", out})
	if err := root.Execute(); err == nil {
		t.Error("missing corpus: no error")
	}
}
