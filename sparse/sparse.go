// Package sparse is the sparse vector that packages hand each other:
// splade emits it, index stores and searches it, and neither imports the
// other. Exact is the naive exact top-k over such vectors, for SPLADE's
// dev evaluation and as the oracle of tests.
package sparse

import "sort"

// TermWeight is one non-zero entry of a sparse vector; a vector is a
// []TermWeight, terms increasing unless a producer says otherwise.
type TermWeight struct {
	Term   uint32  `json:"term"`
	Weight float32 `json:"weight"`
}

// Exact is an in-memory inverted index over float weights, for exact
// top-k by sparse dot product.
type Exact struct {
	n     int
	posts [][]posting // (V) term → postings in doc order
}

type posting struct {
	doc int32
	w   float32
}

// Hit is a document number and its exact score.
type Hit struct {
	Doc   int
	Score float64
}

// NewExact indexes docs (doc number = position) over a vocabulary of v
// terms. Terms ≥ v and weights ≤ 0 are ignored.
func NewExact(docs [][]TermWeight, v int) *Exact {
	ix := &Exact{posts: make([][]posting, v)}
	ix.Add(docs)
	return ix
}

// Add appends documents, numbered from the current count on.
func (ix *Exact) Add(docs [][]TermWeight) {
	v := len(ix.posts)
	for _, vec := range docs {
		d := int32(ix.n)
		ix.n++
		for _, tw := range vec {
			if int(tw.Term) < v && tw.Weight > 0 {
				ix.posts[tw.Term] = append(ix.posts[tw.Term], posting{d, tw.Weight})
			}
		}
	}
}

// Search returns the k documents with the highest q·d > 0, best first,
// ties toward the smaller doc number. Scores are summed in float64 in
// query-term order. Cost: O(Σ postings of q's terms + n) plus a sort of
// the matching documents.
func (ix *Exact) Search(q []TermWeight, k int) []Hit {
	acc := make([]float64, ix.n)
	for _, tw := range q {
		if int(tw.Term) >= len(ix.posts) || tw.Weight <= 0 {
			continue
		}
		for _, p := range ix.posts[tw.Term] {
			acc[p.doc] += float64(tw.Weight) * float64(p.w)
		}
	}
	var hits []Hit
	for d, s := range acc {
		if s > 0 {
			hits = append(hits, Hit{d, s})
		}
	}
	sort.Slice(hits, func(a, b int) bool {
		if hits[a].Score != hits[b].Score {
			return hits[a].Score > hits[b].Score
		}
		return hits[a].Doc < hits[b].Doc
	})
	return hits[:min(k, len(hits))]
}
