package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// bm25CLI runs the command tree with args (no config file, no progress).
func bm25CLI(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	root := NewRootCommand()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--config", "", "--progress", "off"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// TestBM25IndexSearch runs index then search on the bm25 package's tiny
// collection and checks the run file, the --qrels filter, -k and the
// k1/b precedence (flag over environment).
func TestBM25IndexSearch(t *testing.T) {
	tiny := filepath.Join("..", "..", "bm25", "testdata", "tiny")
	dir := t.TempDir()
	idx := filepath.Join(dir, "idx")
	out, _, err := bm25CLI(t, nil, "bm25", "index", "--corpus", tiny, "--out", idx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "indexed 4 documents (") {
		t.Errorf("index output %q", out)
	}

	runPath := filepath.Join(dir, "run.trec")
	out, _, err = bm25CLI(t, nil, "bm25", "search", "--index", idx, "--queries", tiny,
		"--qrels", filepath.Join(tiny, "qrels", "test.tsv"), "--run", runPath, "-k", "1", "--tag", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "searched 3 queries (1 without any hit)") || !strings.Contains(out, "k 1,") {
		t.Errorf("search output %q", out)
	}
	run, err := corpora.ReadRun(runPath)
	if err != nil {
		t.Fatal(err)
	}
	// q2 is all stop words; q4 is not judged in test; k = 1.
	if len(run) != 2 || len(run["q1"]) != 1 || run["q1"][0].DocID != "d3" || len(run["q3"]) != 1 || run["q3"][0].DocID != "d1" {
		t.Errorf("run %v, want q1→d3, q3→d1", run)
	}
	b, _ := os.ReadFile(runPath)
	if !strings.HasSuffix(strings.TrimSpace(string(b)), " t1") {
		t.Errorf("run lacks tag t1:\n%s", b)
	}

	// k1 and b: the flag beats SPLADAPT_BM25_B; both appear in the summary.
	env := map[string]string{"SPLADAPT_BM25_K1": "1.5", "SPLADAPT_BM25_B": "0.9"}
	out, _, err = bm25CLI(t, env, "bm25", "search", "--index", idx, "--queries", tiny, "--run", runPath, "--b", "0.2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "searched 4 queries") || !strings.Contains(out, "(k1 1.5, b 0.2, k 1000, exact scoring)") {
		t.Errorf("search output %q", out)
	}
	if _, _, err = bm25CLI(t, nil, "bm25", "search", "--index", idx, "--queries", tiny, "--run", runPath, "--b", "2"); err == nil || !strings.Contains(err.Error(), "bm25.b") {
		t.Errorf("b = 2: err %v", err)
	}
	if _, _, err = bm25CLI(t, nil, "bm25", "search", "--index", idx, "--queries", tiny, "--run", runPath, "--scoring", "tfidf"); err == nil {
		t.Error("scoring tfidf: no error")
	}
	if _, _, err = bm25CLI(t, nil, "bm25", "search", "--index", filepath.Join(dir, "missing"), "--queries", tiny, "--run", runPath); err == nil || !strings.Contains(err.Error(), `spladapt bm25 index`) {
		t.Errorf("missing index: err %v", err)
	}
}

// TestBM25Table checks that "bm25 table" prints and writes the golden
// table of the bm25 package's testdata.
func TestBM25Table(t *testing.T) {
	data := filepath.Join("..", "..", "bm25", "testdata")
	dir := t.TempDir()
	outPath := filepath.Join(dir, "bm25.md")
	out, stderr, err := bm25CLI(t, nil, "bm25", "table", "--data", data, "--out", outPath, "--index-dir", filepath.Join(dir, "idx"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(data, "tiny.md"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if got, _ := os.ReadFile(outPath); string(got) != string(want) {
		t.Errorf("--out file:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(stderr, "tiny: 4 docs indexed") {
		t.Errorf("stderr %q", stderr)
	}
}
