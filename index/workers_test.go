package index

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestBuildWorkersIdentical builds the same index with 1, 2 and 8 workers
// (small shares forced, so that 8 ranges really run) and wants the same
// index.spl bytes, the same META counts and the same search results.
func TestBuildWorkersIdentical(t *testing.T) {
	old := encodeMinPostings
	encodeMinPostings = 16
	t.Cleanup(func() { encodeMinPostings = old })
	rng := rand.New(rand.NewPCG(17, 18))
	docs := randomCorpus(rng, 3000, 300, 30)
	// clipped and dropped postings too
	opts := Options{QuantBits: 8, BlockSize: 8, NumTerms: 310, MaxWeight: 0.7}
	var want []byte
	var wantHits [][]Hit
	queries := make([][]TermWeight, 20)
	for i := range queries {
		queries[i] = randomQuery(rng, 300, 1+rng.IntN(20))
	}
	for _, nw := range []int{1, 2, 8} {
		opts.Workers = nw
		b, err := NewBuilder(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			if _, err := b.Add(d.id, d.vec); err != nil {
				t.Fatal(err)
			}
		}
		var total int64
		for _, d := range b.docs {
			total += int64(len(d))
		}
		if parts := b.encodeTerms(make([]termPlan, len(b.docs)), 1, 255, 1, nw); len(parts) != nw {
			t.Fatalf("%d workers: %d term ranges over %d postings", nw, len(parts), total)
		}
		dir := filepath.Join(t.TempDir(), fmt.Sprint(nw))
		m, err := b.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.ClippedPostings == 0 || m.DroppedPostings == 0 {
			t.Fatalf("want clipped and dropped postings, got %d, %d", m.ClippedPostings, m.DroppedPostings)
		}
		got, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		var hits [][]Hit
		for _, q := range queries {
			h, err := r.Search(q, 10, Algorithms[0])
			if err != nil {
				t.Fatal(err)
			}
			hits = append(hits, h)
		}
		r.Close()
		if want == nil {
			want, wantHits = got, hits
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d workers: index.spl differs from the 1-worker build", nw)
		}
		for i := range hits {
			if !sameHits(hits[i], wantHits[i]) {
				t.Fatalf("%d workers: query %d hits %v, want %v", nw, i, head(hits[i]), head(wantHits[i]))
			}
		}
	}
}
