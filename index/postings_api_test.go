package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// TestReaderPostings: Postings gives back, term by term, the documents and
// impacts that were added (scale 1, so impacts are the integer weights),
// across array and bitmap containers; unknown terms are empty.
func TestReaderPostings(t *testing.T) {
	const n, V = 70000, 5 // > 65536 docs: two containers; term 0 dense enough for a bitmap
	b, err := NewBuilder(Options{NumTerms: V, QuantBits: 8, MaxWeight: 255})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	want := make([][][2]int, V)
	for d := range n {
		var vec []TermWeight
		for term := range V - 1 {
			if rng.IntN(1+term*40) == 0 {
				w := 1 + rng.IntN(255)
				vec = append(vec, TermWeight{Term: uint32(term), Weight: float32(w)})
				want[term] = append(want[term], [2]int{d, w})
			}
		}
		if _, err := b.Add(fmt.Sprint(d), vec); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var docs []uint32
	var imps []uint16
	for term := range uint32(V + 2) {
		docs, imps, err = r.Postings(term, docs, imps)
		if err != nil {
			t.Fatal(err)
		}
		var got [][2]int
		for i, d := range docs {
			got = append(got, [2]int{int(d), int(imps[i])})
		}
		var w [][2]int
		if int(term) < V {
			w = want[term]
		}
		if !slices.Equal(got, w) {
			t.Errorf("term %d: %d postings, want %d", term, len(got), len(w))
		}
	}
	// A corrupt impact chunk header is reported, not returned as data.
	data := slices.Clone(r.data)
	r2, err := OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	bm := r2.bitmap(r2.termInfo(3)) // array containers
	nc := int(binary.LittleEndian.Uint32(bm[4:]))
	off := int(binary.LittleEndian.Uint32(bm[8+4*nc:]))
	copy(bm[off+2:off+4], bm[off:off+2]) // second doc = first
	if _, _, err := r2.Postings(3, nil, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("repeated doc number: %v", err)
	}
}
