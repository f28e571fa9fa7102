package synth

import (
	"math"
	"reflect"
	"testing"
)

func TestStatistics(t *testing.T) {
	g := New(Default)
	if !reflect.DeepEqual(g.Doc(7), New(Default).Doc(7)) {
		t.Fatal("Doc(7) differs between two generators with one seed")
	}
	n, top := 2000, 0
	lens := 0
	for i := range n {
		d := g.Doc(i)
		if len(d) < 120 || len(d) > 200 {
			t.Fatalf("doc %d has %d terms", i, len(d))
		}
		lens += len(d)
		seen := map[uint32]bool{}
		for _, tw := range d {
			if seen[tw.Term] || !(tw.Weight > 0) || tw.Weight > 4 {
				t.Fatalf("doc %d: term %d repeated or weight %v", i, tw.Term, tw.Weight)
			}
			seen[tw.Term] = true
			if g.Rank(tw.Term) == 0 {
				top++
			}
		}
		q := g.Query(i)
		if len(q) < 20 || len(q) > 40 {
			t.Fatalf("query %d has %d terms", i, len(q))
		}
	}
	// Mean length 160; the most popular term (p ≈ 0.093 per draw) is in
	// nearly every document.
	if mean := float64(lens) / float64(n); math.Abs(mean-160) > 3 {
		t.Errorf("mean doc length %.1f, want ≈160", mean)
	}
	if frac := float64(top) / float64(n); frac < 0.99 {
		t.Errorf("most popular term in %.3f of docs, want > 0.99", frac)
	}
}
