package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/index"
)

// TestIndexInspect: "index inspect --validate" prints the format, every
// section and the postings breakdown, whose container counts are the
// index's own.
func TestIndexInspect(t *testing.T) {
	tiny := filepath.Join("..", "..", "bm25", "testdata", "tiny")
	idx := filepath.Join(t.TempDir(), "engine")
	if _, _, err := bm25CLI(t, nil, "index", "build-bm25", "--corpus", tiny, "--out", idx); err != nil {
		t.Fatal(err)
	}
	out, _, err := bm25CLI(t, nil, "index", "inspect", "--validate", idx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(idx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps := r.PostingSizes()
	if ps.ArrayPostings+ps.BitmapPostings != ps.Postings || ps.Postings == 0 {
		t.Fatalf("sizes %+v: container postings do not add up to %d", ps, ps.Postings)
	}
	for _, want := range []string{
		fmt.Sprintf("format %d,", index.Version),
		"DOCS", "IMPS", "RMAX",
		fmt.Sprintf("array containers %.3f (%d, %d postings)", float64(ps.ArrayBytes)/float64(ps.Postings), ps.ArrayContainers, ps.ArrayPostings),
		"valid (every CRC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}
