package sparse

import (
	"slices"
	"testing"
)

// tws builds a vector from (term, weight) pairs.
func tws(pairs ...float32) []TermWeight {
	var out []TermWeight
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, TermWeight{Term: uint32(pairs[i]), Weight: pairs[i+1]})
	}
	return out
}

// TestExact checks exact top-k against scoring every document.
func TestExact(t *testing.T) {
	docs := [][]TermWeight{tws(1, 1, 3, 2), tws(3, 1), tws(0, 5), tws(1, 1, 3, 2), nil}
	ix := NewExact(docs, 4)
	got := ix.Search(tws(1, 2, 3, 1), 10)
	// d0 = 2+2 = 4, d3 = 4 (tie → smaller doc first), d1 = 1; d2, d4 score 0.
	want := []Hit{{0, 4}, {3, 4}, {1, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := ix.Search(tws(1, 2, 3, 1), 1); len(got) != 1 || got[0].Doc != 0 {
		t.Errorf("k=1: %v", got)
	}
	// Built in two chunks: the same documents and numbers.
	inc := NewExact(docs[:2], 4)
	inc.Add(docs[2:])
	if got := inc.Search(tws(1, 2, 3, 1), 10); !slices.Equal(got, want) {
		t.Errorf("chunked: %v, want %v", got, want)
	}
}
