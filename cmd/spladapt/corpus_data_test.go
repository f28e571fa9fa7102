package main

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run executes the command tree with args, returning stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := NewRootCommand()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--config", "", "--progress", "off"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestCorpusStats(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.jsonl")
	content := `{"_id":"a","title":"two words","text":"and three more"}` + "\n" +
		`{"_id":"b","text":""}` + "\n" +
		`{"_id":"a","text":"dup"}` + "\n" +
		`{"_id":"c","text":"x"}` + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "corpus", "stats", path)
	if err == nil || !strings.Contains(err.Error(), `c.jsonl:3: duplicate id "a" (first on line 1)`) {
		t.Fatalf("strict: %v", err)
	}
	out, stderr, err := runCLI(t, "--skip-invalid", "corpus", "stats", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"documents        3\n", "empty documents  1\n", "tokens           6\n", "mean tokens/doc  2.0\n", "skipped records  1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "skipped "+path+`:3: duplicate id "a"`) {
		t.Errorf("stderr lacks the skipped record:\n%s", stderr)
	}
}

func TestCorpusStatsRealScifact(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "scifact")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real collection %s not found: %v", dir, err)
	}
	out, _, err := runCLI(t, "corpus", "stats", dir)
	if err != nil {
		t.Fatal(err)
	}
	// The figures of ../shared/data/README.md.
	for _, want := range []string{"documents        5183\n", "mean tokens/doc  214.6\n", "queries          1109\n", "qrels test       300 queries, 339 judgments\n", "qrels train      809 queries, 919 judgments\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDataListAndPull(t *testing.T) {
	out, _, err := runCLI(t, "data", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "scifact") || !strings.Contains(out, "5f7d1de60b170fc8027bb7898e2efca1") {
		t.Errorf("data list:\n%s", out)
	}

	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, body := range map[string]string{
		"toy/corpus.jsonl":   `{"_id":"d1","text":"x"}` + "\n",
		"toy/queries.jsonl":  `{"_id":"q1","text":"y"}` + "\n",
		"toy/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
	} {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	zw.Close()
	data := zb.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "toy.zip", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()

	dir := t.TempDir()
	out, stderr, err := runCLI(t, "data", "pull", "toy", "--out", dir, "--base-url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "3 files") || !strings.Contains(out, "unverified") || !strings.Contains(stderr, "not verified") {
		t.Errorf("pull output:\n%s\nstderr:\n%s", out, stderr)
	}
	out, _, err = runCLI(t, "corpus", "stats", filepath.Join(dir, "toy"))
	if err != nil || !strings.Contains(out, "documents        1\n") {
		t.Errorf("stats of the pulled dataset: %v\n%s", err, out)
	}
	_, _, err = runCLI(t, "data", "pull", "toy2", "--out", dir, "--base-url", srv.URL, "--sha256", strings.Repeat("0", 64))
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("wrong --sha256: %v", err)
	}
}
