package bm25

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestTableTiny checks the table of testdata/tiny against values worked out
// by hand (testdata/README.md) and against the golden testdata/tiny.md.
func TestTableTiny(t *testing.T) {
	cols, err := Collections("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 1 || filepath.Base(cols[0]) != "tiny" {
		t.Fatalf("collections %v, want [testdata/tiny]", cols)
	}
	row, err := EvaluateCollection(cols[0], TableOptions{K: 1000, Params: defaults, Workers: 2, IndexDir: filepath.Join(t.TempDir(), "tiny")})
	if err != nil {
		t.Fatal(err)
	}
	if row.Name != "tiny" || row.Split != "test" || row.Docs != 4 || row.Queries != 3 {
		t.Errorf("row %s split %s docs %d queries %d, want tiny test 4 3", row.Name, row.Split, row.Docs, row.Queries)
	}
	if _, ok := row.Run["q4"]; ok {
		t.Error("q4, judged only in train, was searched")
	}
	if got := ids(row.Run["q3"]); len(got) != 2 || got[0] != "d1" || got[1] != "d4" {
		t.Errorf("q3 ranking %v, want [d1 d4]", got)
	}
	// q1 perfect, q2 no hits (0 under -c), q3 relevant at rank 2.
	want := []float64{(1 + 0 + 1/math.Log2(3)) / 3, 2.0 / 3, (1 + 0 + 0.5) / 3}
	for i, m := range TableMeasures {
		if math.Abs(row.Values[i]-want[i]) > 1e-12 {
			t.Errorf("%s = %.15g, want %.15g", m, row.Values[i], want[i])
		}
	}

	var buf bytes.Buffer
	if err := WriteTable(&buf, []Row{row}, defaults, 1000); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "tiny.md")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantMD, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), wantMD) {
		os.WriteFile(golden+".got", buf.Bytes(), 0o644)
		t.Errorf("table differs from %s (got written to %s.got):\n%s", golden, golden, buf.String())
	}
}

func TestSplit(t *testing.T) {
	dir := t.TempDir()
	if got := Split(corpora.BEIR{Dir: dir}); got != "" {
		t.Errorf("no qrels: split %q, want empty", got)
	}
	if err := os.MkdirAll(filepath.Join(dir, "qrels"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "qrels", "dev.tsv"), "query-id\tcorpus-id\tscore\nq\td\t1\n")
	if got := Split(corpora.BEIR{Dir: dir}); got != "dev" {
		t.Errorf("dev only: split %q, want dev", got)
	}
	writeFile(t, filepath.Join(dir, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq\td\t1\n")
	if got := Split(corpora.BEIR{Dir: dir}); got != "test" {
		t.Errorf("dev and test: split %q, want test", got)
	}
	if _, err := Collections(dir); err == nil {
		t.Error("a directory without collections listed no error")
	}
}

// sharedData is the shared collections directory, ../shared/data from the
// repository root.
var sharedData = filepath.Join("..", "..", "shared", "data")

// TestSciFact is the acceptance check of the baseline: on SciFact's test
// split nDCG@10 must be at least 0.66 (Pyserini's flat BM25: 0.679).
// About 5 s.
func TestSciFact(t *testing.T) {
	dir := filepath.Join(sharedData, "scifact")
	if _, err := os.Stat(filepath.Join(dir, "corpus.jsonl")); err != nil {
		t.Skipf("SciFact not found in %s: %v", dir, err)
	}
	row, err := EvaluateCollection(dir, TableOptions{K: 1000, Params: defaults, Workers: 2, IndexDir: filepath.Join(t.TempDir(), "scifact")})
	if err != nil {
		t.Fatal(err)
	}
	if row.Docs != 5183 || row.Queries != 300 {
		t.Errorf("docs %d queries %d, want 5183 300", row.Docs, row.Queries)
	}
	t.Logf("scifact test: nDCG@10 %.4f R@100 %.4f MAP %.4f (index %v, search %v)", row.Values[0], row.Values[1], row.Values[2], row.Index, row.Search)
	if row.Values[0] < 0.66 {
		t.Errorf("nDCG@10 = %.4f, want >= 0.66", row.Values[0])
	}
}
