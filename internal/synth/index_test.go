package synth

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/spladapt/spladapt/index"
)

// TestWriteIndex: document numbers follow the order given, ids are the
// generator's numbers, and each document's postings are its vector.
func TestWriteIndex(t *testing.T) {
	g := New(Topical)
	const n = 300
	order := g.TopicOrder(n)
	for i := 1; i < n; i++ {
		if g.Topic(order[i-1]) > g.Topic(order[i]) {
			t.Fatalf("TopicOrder: document %d (topic %d) before %d (topic %d)", order[i-1], g.Topic(order[i-1]), order[i], g.Topic(order[i]))
		}
	}
	if sorted := slices.Sorted(slices.Values(order)); sorted[0] != 0 || sorted[n-1] != n-1 || len(slices.Compact(sorted)) != n {
		t.Fatal("TopicOrder is not a permutation of 0..n−1")
	}
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := g.WriteIndex(dir, n, order, index.Options{}); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumDocs() != n || r.NumTerms() != Topical.Vocab {
		t.Fatalf("index of %d docs, %d terms; want %d, %d", r.NumDocs(), r.NumTerms(), n, Topical.Vocab)
	}
	for _, d := range []uint32{0, 7, n - 1} {
		if got, want := r.DocID(d), order[d]; got != itoa(want) {
			t.Errorf("doc %d has id %s, want %d", d, got, want)
		}
	}
	// Document 0 of the generator is at doc number slices.Index(order, 0);
	// its terms all have postings containing that number.
	at := uint32(slices.Index(order, 0))
	for _, tw := range g.Doc(0) {
		docs, _, err := r.Postings(tw.Term, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := slices.BinarySearch(docs, at); !ok {
			t.Fatalf("term %d of document 0 has no posting for doc number %d", tw.Term, at)
		}
	}
	if _, err := g.WriteIndex(filepath.Join(t.TempDir(), "x"), n, order[:5], index.Options{}); err == nil {
		t.Error("an order of 5 documents for 300 was accepted")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
