package bm25

import (
	"context"
	"fmt"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"

	"github.com/spladapt/spladapt/corpora"
)

// Scoring names how a query is scored.
type Scoring string

const (
	// Exact is the BM25 of the package comment, scored by this package from
	// bleve's postings. It is the baseline.
	Exact Scoring = "exact"
	// Bleve is bleve's own "bm25" scoring model through a match query with
	// the OR operator, kept for comparison only. In bleve v2.6.3 it differs
	// from BM25 in four ways (search/scorer/scorer_term.go,
	// scorer_disjunction.go, searcher/search_term.go):
	//   - tf is replaced by √tf;
	//   - avgdl is ⌈Σ_segments |dictionary| / N⌉: distinct terms per
	//     document, not tokens, and it depends on the segment layout;
	//   - each term's score is multiplied by its query weight
	//     idf · queryNorm, so idf enters squared (queryNorm = 1/√Σ idf² is
	//     the same for every document of a query);
	//   - a disjunction multiplies the sum by coord = matched/total terms.
	// A one-term query avoids the last two: idf·√tf·k1/(√tf + k1·(1−b+b·dl/avgdl)).
	Bleve Scoring = "bleve"
)

// ParseScoring accepts "exact" or "bleve".
func ParseScoring(s string) (Scoring, error) {
	switch Scoring(s) {
	case Exact, Bleve:
		return Scoring(s), nil
	}
	return "", fmt.Errorf("bm25 scoring must be %q or %q, got %q", Exact, Bleve, s)
}

// bleveParams guards bleve's BM25 parameters, which are process-global
// package variables (search.BM25_k1, search.BM25_b) read by every bleve
// search in the process. Writers hold the write lock; a SearchBleve holds
// the read lock for the whole search, so it never sees a change half-way.
var bleveParams sync.RWMutex

// withBleveParams runs f with bleve's global k1 and b set to p.
func withBleveParams(p Params, f func() error) error {
	for {
		bleveParams.RLock()
		if search.BM25_k1 == p.K1 && search.BM25_b == p.B {
			defer bleveParams.RUnlock()
			return f()
		}
		bleveParams.RUnlock()
		bleveParams.Lock()
		search.BM25_k1, search.BM25_b = p.K1, p.B
		bleveParams.Unlock()
	}
}

// SearchBleve returns the k best documents for query under bleve's own
// "bm25" scoring (see Bleve), best first, with bleve's scores. It sets
// bleve's process-global k1 and b to p for the duration of the search, and
// waits for concurrent SearchBleve calls with other parameters to finish.
// Use it to compare with Search, not as the baseline.
func (x *Index) SearchBleve(query string, k int, p Params) ([]corpora.Hit, error) {
	if k < 1 {
		return nil, fmt.Errorf("bm25 search: k must be at least 1, got %d", k)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	q := bleve.NewMatchQuery(query)
	q.SetField(Field)
	q.Analyzer = Analyzer
	req := bleve.NewSearchRequestOptions(q, k, 0, false)
	var hits []corpora.Hit
	err := withBleveParams(p, func() error {
		res, err := x.idx.SearchInContext(context.Background(), req)
		if err != nil {
			return err
		}
		hits = make([]corpora.Hit, len(res.Hits))
		for i, h := range res.Hits {
			hits[i] = corpora.Hit{DocID: h.ID, Score: h.Score, Rank: i + 1}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bleve search: %w", err)
	}
	return hits, nil
}

// bleveK1B reads bleve's global parameters.
func bleveK1B() Params {
	bleveParams.RLock()
	defer bleveParams.RUnlock()
	return Params{K1: search.BM25_k1, B: search.BM25_b}
}
