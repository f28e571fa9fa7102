package index

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestBuildVectors: token keys through a vocabulary, term-id keys without
// one, progress per document, and a bad line named by file and line with
// nothing written.
func TestBuildVectors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vocab := write("vocab.txt", "x\ny\nz\n")
	vecs := write("v.jsonl", `{"id":"a","vector":{"y":2}}`+"\n"+`{"id":"b","vector":{"z":1,"y":1}}`+"\n")
	n := 0
	m, err := BuildVectors(filepath.Join(dir, "tok"), vecs, vocab, Options{}, corpora.Options{}, func() { n++ })
	if err != nil {
		t.Fatal(err)
	}
	if m.NumDocs != 2 || n != 2 {
		t.Fatalf("%d docs, %d progress calls; want 2, 2", m.NumDocs, n)
	}
	r, err := Open(filepath.Join(dir, "tok"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	y, _ := r.Term("y")
	hits, err := r.Search([]TermWeight{{Term: y, Weight: 1}}, 10, Exhaustive)
	if err != nil || len(hits) != 2 || r.DocID(hits[0].Doc) != "a" {
		t.Fatalf("search y: %v %v, want a then b", hits, err)
	}
	ids := write("ids.jsonl", `{"id":"a","vector":{"7":1}}`+"\n")
	if m, err := BuildVectors(filepath.Join(dir, "ids"), ids, "", Options{}, corpora.Options{}, nil); err != nil || m.NumTerms < 8 {
		t.Fatalf("term ids: %v, %+v", err, m)
	}
	bad := write("bad.jsonl", `{"id":"a","vector":{"y":1}}`+"\nnot json\n")
	_, err = BuildVectors(filepath.Join(dir, "bad"), bad, vocab, Options{}, corpora.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Fatalf("bad line: err = %v, want one naming bad.jsonl:2", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); !os.IsNotExist(err) {
		t.Errorf("a failed build left %s", filepath.Join(dir, "bad"))
	}
}
