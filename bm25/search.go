package bm25

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/spladapt/spladapt/corpora"
)

// Index is an open BM25 index. Its methods are safe for concurrent use.
type Index struct {
	dir      string
	meta     Meta
	idx      bleve.Index
	adv      index.Index
	analyzer analysis.Analyzer
}

// Open opens the index directory dir written by Build, read-only.
func Open(dir string) (*Index, error) {
	meta, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	idx, err := bleve.OpenUsing(filepath.Join(dir, bleveDir), map[string]any{"read_only": true})
	if err != nil {
		return nil, fmt.Errorf("open bm25 index %s: %w", dir, err)
	}
	x := &Index{dir: dir, meta: meta, idx: idx}
	if x.adv, err = idx.Advanced(); err != nil {
		idx.Close()
		return nil, fmt.Errorf("open bm25 index %s: %w", dir, err)
	}
	if x.analyzer = idx.Mapping().AnalyzerNamed(Analyzer); x.analyzer == nil {
		idx.Close()
		return nil, fmt.Errorf("open bm25 index %s: no analyzer %q", dir, Analyzer)
	}
	n, err := idx.DocCount()
	if err != nil {
		idx.Close()
		return nil, fmt.Errorf("open bm25 index %s: %w", dir, err)
	}
	if int64(n) != meta.Docs {
		idx.Close()
		return nil, fmt.Errorf("open bm25 index %s: bleve holds %d documents, %s says %d (re-run \"spladapt bm25 index\")", dir, n, metaFile, meta.Docs)
	}
	return x, nil
}

// Meta returns the index's meta.json.
func (x *Index) Meta() Meta { return x.meta }

// Close releases the index.
func (x *Index) Close() error { return x.idx.Close() }

// Terms returns the analysed query terms with their counts (qtf), sorted.
// A query of only stop words or punctuation has no terms.
func (x *Index) Terms(query string) []TermCount {
	counts := map[string]int{}
	for _, tok := range x.analyzer.Analyze([]byte(query)) {
		counts[string(tok.Term)]++
	}
	out := make([]TermCount, 0, len(counts))
	for t, c := range counts {
		out = append(out, TermCount{t, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Term < out[j].Term })
	return out
}

// TermCount is an analysed query term and its number of occurrences.
type TermCount struct {
	Term  string
	Count int
}

// Searcher scores queries against one snapshot of an Index. It reuses its
// buffers between queries and is not safe for concurrent use: give each
// goroutine its own (NewSearcher is cheap).
type Searcher struct {
	x   *Index
	r   index.IndexReader
	p   Params
	acc []float64 // (maxDoc) accumulated score per internal doc number
	hit []bool    // (maxDoc) whether acc[i] was touched by this query
	ids []uint64  // internal doc numbers touched by this query
	tfd index.TermFieldDoc
}

// NewSearcher returns a Searcher with parameters p. Close it when done.
func (x *Index) NewSearcher(p Params) (*Searcher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	r, err := x.adv.Reader()
	if err != nil {
		return nil, fmt.Errorf("open reader on bm25 index %s: %w", x.dir, err)
	}
	return &Searcher{x: x, r: r, p: p}, nil
}

// Close releases the Searcher's snapshot.
func (s *Searcher) Close() error { return s.r.Close() }

// Search returns the k best documents for query, best first, with their
// BM25 scores (package comment). Ties break toward the smaller document id
// (string order). It returns fewer than k hits when fewer documents contain a query
// term, and none when the query analyses to no terms. Hit.Rank is 1-based.
// Cost: O(Σ_t df(t)) postings read and scored, plus O(m log m) to rank the
// m matching documents.
func (s *Searcher) Search(query string, k int) ([]corpora.Hit, error) {
	if k < 1 {
		return nil, fmt.Errorf("bm25 search: k must be at least 1, got %d", k)
	}
	n := float64(s.x.meta.Docs)
	avgdl := s.x.meta.AvgDL
	k1, b := s.p.K1, s.p.B
	s.ids = s.ids[:0]
	for _, tc := range s.x.Terms(query) {
		tfr, err := s.r.TermFieldReader(context.Background(), []byte(tc.Term), Field, true, true, false)
		if err != nil {
			return nil, fmt.Errorf("read postings of %q: %w", tc.Term, err)
		}
		df := float64(tfr.Count())
		w := float64(tc.Count) * IDF(df, n)
		for {
			p, err := tfr.Next(&s.tfd)
			if err != nil {
				tfr.Close()
				return nil, fmt.Errorf("read postings of %q: %w", tc.Term, err)
			}
			if p == nil {
				break
			}
			tf := float64(p.Freq)
			s.add(p.ID.Value(), w*tf/(tf+Norm(k1, b, docLen(p.Norm), avgdl)))
		}
		if err := tfr.Close(); err != nil {
			return nil, err
		}
	}
	return s.rank(k)
}

// docLen recovers a document's field length from bleve's norm, which zap
// stores as float32(1/√dl): 1/norm² is within 1e-6·dl of dl, so rounding
// is exact for any realistic length.
func docLen(norm float64) float64 {
	if norm <= 0 {
		return 0
	}
	return math.Round(1 / (norm * norm))
}

func (s *Searcher) add(doc uint64, v float64) {
	if doc >= uint64(len(s.acc)) {
		size := max(2*len(s.acc), int(doc)+1, int(s.x.meta.Docs))
		acc := make([]float64, size)
		copy(acc, s.acc)
		hit := make([]bool, size)
		copy(hit, s.hit)
		s.acc, s.hit = acc, hit
	}
	if !s.hit[doc] {
		s.hit[doc] = true
		s.ids = append(s.ids, doc)
	}
	s.acc[doc] += v
}

// rank selects the k best touched documents, resolves their ids, and
// clears the accumulator for the next query. Ties break toward the smaller
// document id (string order): bleve numbers the documents of a batch in no
// fixed order, so the internal number cannot decide. Only the documents
// tied with the k-th score need their ids looked up beyond the k returned.
func (s *Searcher) rank(k int) ([]corpora.Hit, error) {
	ids, acc := s.ids, s.acc
	sort.Slice(ids, func(i, j int) bool {
		a, b := acc[ids[i]], acc[ids[j]]
		if a != b {
			return a > b
		}
		return ids[i] < ids[j]
	})
	end := min(k, len(ids))
	for end > 0 && end < len(ids) && acc[ids[end]] == acc[ids[end-1]] {
		end++
	}
	hits := make([]corpora.Hit, end)
	var iid index.IndexInternalID
	for i, d := range ids[:end] {
		iid = index.NewIndexInternalID(iid, d)
		ext, err := s.r.ExternalID(iid)
		if err != nil {
			return nil, fmt.Errorf("resolve document number %d: %w", d, err)
		}
		hits[i] = corpora.Hit{DocID: ext, Score: acc[d]}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].DocID < hits[j].DocID
	})
	hits = hits[:min(k, len(hits))]
	for i := range hits {
		hits[i].Rank = i + 1
	}
	for _, d := range ids {
		acc[d], s.hit[d] = 0, false
	}
	s.ids = ids[:0]
	return hits, nil
}

// SearchOptions control SearchAll.
type SearchOptions struct {
	K       int     // hits per query, >= 1
	Params  Params  // k1 and b
	Scoring Scoring // Exact (default when empty) or Bleve
	Workers int     // goroutines; values below 1 mean 1
	Done    func()  // when not nil, called after each query, from any goroutine
}

// SearchAll runs every query and returns the run (query id → hits, best
// first). Queries that match nothing get an empty hit list; repeated query
// ids are an error. The first error stops the work and is returned.
func (x *Index) SearchAll(queries []corpora.Query, o SearchOptions) (corpora.Run, error) {
	if o.K < 1 {
		return nil, fmt.Errorf("bm25 search: k must be at least 1, got %d", o.K)
	}
	if o.Scoring == "" {
		o.Scoring = Exact
	}
	if _, err := ParseScoring(string(o.Scoring)); err != nil {
		return nil, err
	}
	seen := make(map[string]struct{}, len(queries))
	for _, q := range queries {
		if _, dup := seen[q.ID]; dup {
			return nil, fmt.Errorf("query %q: %w", q.ID, corpora.ErrDuplicateID)
		}
		seen[q.ID] = struct{}{}
	}
	workers := max(1, min(o.Workers, len(queries)))
	results := make([][]corpora.Hit, len(queries))
	next := make(chan int)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	var stop sync.Once
	quit := make(chan struct{})
	for w := 0; w < workers; w++ {
		s, err := x.NewSearcher(o.Params)
		if err != nil {
			stop.Do(func() { close(quit) })
			errs[w] = err
			break
		}
		wg.Add(1)
		go func(w int, s *Searcher) {
			defer wg.Done()
			defer s.Close()
			for i := range next {
				var hits []corpora.Hit
				var err error
				if o.Scoring == Bleve {
					hits, err = x.SearchBleve(queries[i].Text, o.K, o.Params)
				} else {
					hits, err = s.Search(queries[i].Text, o.K)
				}
				if err != nil {
					errs[w] = fmt.Errorf("query %s: %w", queries[i].ID, err)
					stop.Do(func() { close(quit) })
					return
				}
				results[i] = hits
				if o.Done != nil {
					o.Done()
				}
			}
		}(w, s)
	}
feed:
	for i := range queries {
		select {
		case next <- i:
		case <-quit:
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	run := make(corpora.Run, len(queries))
	for i, q := range queries {
		run[q.ID] = results[i]
	}
	return run, nil
}
