package index

import (
	"cmp"
	"fmt"
	"slices"
)

// TermScore is one query term's share of a document's score.
type TermScore struct {
	Term uint32
	// Query is the query weight as quantised for this index
	// (q_t · max_q / 65535: within 1/65535 of max_q of the weight given).
	Query float64
	// Doc is the document's weight as stored (impact · scale).
	Doc    float64
	Impact int
	// Score is Query · Doc; a document's shares add up to its Hit.Score.
	Score float64
}

// Explain returns the terms of q that document d matches, with their
// query weight, document weight and product, by decreasing product (ties
// by term). They are computed from the same quantised query and stored
// impacts as Search, so their sum is the score Search gives d (up to
// float rounding; score is the exact Σ q·impact · factor). A document that
// matches no term has score 0 and no terms. Cost: one seek per query term
// (O(log containers + log postings)).
func (r *Reader) Explain(q []TermWeight, d uint32) (score float64, terms []TermScore, err error) {
	if int64(d) >= int64(r.meta.NumDocs) {
		return 0, nil, fmt.Errorf("explain: doc %d outside %d documents", d, r.meta.NumDocs)
	}
	pq, err := r.Prepare(q)
	if err != nil {
		return 0, nil, err
	}
	defer func() {
		if p := recover(); p != nil { // only reachable on a corrupt, unvalidated file
			score, terms, err = 0, nil, fmt.Errorf("explain: %v (run Validate): %w", p, ErrCorrupt)
		}
	}()
	var raw uint64
	var c cursor
	for _, qt := range pq.terms {
		ti := r.termInfo(qt.term)
		c = cursor{rk: r.ranks, bmOff: ti.docOff}
		c.init(r.bitmap(ti), r.impLayout(ti), int(ti.df))
		c.advance(d)
		if c.doc != d {
			continue
		}
		imp := c.imp.l.at(c.rank)
		raw += qt.q * imp
		terms = append(terms, TermScore{
			Term:   qt.term,
			Query:  float64(qt.q) * pq.factor / r.meta.Scale,
			Doc:    float64(imp) * r.meta.Scale,
			Impact: int(imp),
			Score:  float64(qt.q*imp) * pq.factor,
		})
	}
	slices.SortFunc(terms, func(a, b TermScore) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Term, b.Term)
	})
	return float64(raw) * pq.factor, terms, nil
}

// DocNum returns the doc number of external id id. The first call builds
// a map of every id (O(N) heap).
func (r *Reader) DocNum(id string) (uint32, bool) {
	r.docsOnce.Do(func() {
		r.docs = make(map[string]uint32, r.meta.NumDocs)
		for d := range uint32(r.meta.NumDocs) {
			if s := r.DocID(d); s != "" {
				if _, dup := r.docs[s]; !dup {
					r.docs[s] = d
				}
			}
		}
	})
	d, ok := r.docs[id]
	return d, ok
}
