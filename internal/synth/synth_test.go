package synth

import (
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/spladapt/spladapt/index"
)

// frozenDefault is TestDefaultFrozen's hash, computed at commit b481e39.
const frozenDefault = 0xf5b11780434db6e1

func TestStatistics(t *testing.T) {
	g := New(Default)
	if !reflect.DeepEqual(g.Doc(7), New(Default).Doc(7)) {
		t.Fatal("Doc(7) differs between two generators with one seed")
	}
	n, top := 2000, 0
	lens := 0
	for i := range n {
		d := checkShapes(t, g, i)
		lens += len(d)
		for _, tw := range d {
			if g.Rank(tw.Term) == 0 {
				top++
			}
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

// TestDefaultFrozen keeps Default's documents and queries as they were
// when the benchmark figures in the README were measured.
func TestDefaultFrozen(t *testing.T) {
	g := New(Default)
	h := fnv.New64a()
	for i := range 20 {
		for _, v := range [][]index.TermWeight{g.Doc(i), g.Query(i)} {
			for _, tw := range v {
				fmt.Fprintf(h, "%d:%.6g ", tw.Term, tw.Weight)
			}
			h.Write([]byte{'\n'})
		}
	}
	if got, want := h.Sum64(), uint64(frozenDefault); got != want {
		t.Errorf("Default's first 20 documents and queries hash to %#x, want %#x", got, want)
	}
}

func TestTopical(t *testing.T) {
	g := New(Topical)
	if !reflect.DeepEqual(g.Doc(11), New(Topical).Doc(11)) || !reflect.DeepEqual(g.Query(3), New(Topical).Query(3)) {
		t.Fatal("two generators with one seed differ")
	}
	inTopic := func(topic int, term uint32) bool {
		return slices.Contains(g.topics[topic], uint32(g.Rank(term)))
	}
	n := 3000
	df := make([]int, Topical.Vocab)
	own, lens := 0, 0
	for i := range n {
		d := checkShapes(t, g, i)
		lens += len(d)
		topic := g.Topic(i)
		for _, tw := range d {
			df[g.Rank(tw.Term)]++
			if inTopic(topic, tw.Term) {
				own++
			}
		}
	}
	if mean := float64(lens) / float64(n); math.Abs(mean-160) > 3 {
		t.Errorf("mean doc length %.1f, want ≈160", mean)
	}
	// 40% of the terms come from the main topic (a few more are in it by
	// chance); with independent terms it would be about 1%.
	if frac := float64(own) / float64(lens); frac < 0.4 || frac > 0.5 {
		t.Errorf("%.3f of the terms are in the document's main topic, want 0.40–0.50", frac)
	}
	// Document frequencies stay Zipfian: the least-squares slope of
	// log df against log(rank+1) over ranks 10–3000, next to Default's.
	slope := dfSlope(df)
	dfDefault := make([]int, Default.Vocab)
	gd := New(Default)
	for i := range n {
		for _, tw := range gd.Doc(i) {
			dfDefault[gd.Rank(tw.Term)]++
		}
	}
	t.Logf("document-frequency slope over ranks 10–3000: Topical %.3f, Default %.3f", slope, dfSlope(dfDefault))
	if slope > -0.7 || slope < -1.3 {
		t.Errorf("df slope %.3f, want within ±0.3 of −1", slope)
	}
}

func dfSlope(df []int) float64 {
	var sx, sy, sxx, sxy, m float64
	for r := 10; r <= 3000; r++ {
		if df[r] == 0 {
			continue
		}
		x, y := math.Log(float64(r+1)), math.Log(float64(df[r]))
		sx, sy, sxx, sxy, m = sx+x, sy+y, sxx+x*x, sxy+x*y, m+1
	}
	return (m*sxy - sx*sy) / (m*sxx - sx*sx)
}

// checkShapes fails unless document i has 120–200 distinct terms with
// weights in (0, 4] and query i has 20–40 terms; it returns the document.
func checkShapes(t *testing.T, g *Gen, i int) []index.TermWeight {
	t.Helper()
	d := g.Doc(i)
	if len(d) < 120 || len(d) > 200 {
		t.Fatalf("doc %d has %d terms", i, len(d))
	}
	seen := map[uint32]bool{}
	for _, tw := range d {
		if seen[tw.Term] || !(tw.Weight > 0) || tw.Weight > 4 {
			t.Fatalf("doc %d: term %d repeated or weight %v", i, tw.Term, tw.Weight)
		}
		seen[tw.Term] = true
	}
	if q := g.Query(i); len(q) < 20 || len(q) > 40 {
		t.Fatalf("query %d has %d terms", i, len(q))
	}
	return d
}
