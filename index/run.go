package index

import (
	"fmt"

	"github.com/spladapt/spladapt/corpora"
)

// BatchQueryEncoder is a QueryEncoder that encodes several queries at
// once (a SPLADE model batches them by length); out[i] belongs to texts[i].
type BatchQueryEncoder interface {
	QueryEncoder
	EncodeQueries(texts []string) ([][]TermWeight, error)
}

// EncodeQueries encodes the queries' texts with enc: in one call when enc
// is a BatchQueryEncoder, else one by one (an error names the query).
// out[i] belongs to qs[i].
func EncodeQueries(enc QueryEncoder, qs []corpora.Query) ([][]TermWeight, error) {
	if be, ok := enc.(BatchQueryEncoder); ok {
		texts := make([]string, len(qs))
		for i, q := range qs {
			texts[i] = q.Text
		}
		return be.EncodeQueries(texts)
	}
	out := make([][]TermWeight, len(qs))
	for i, q := range qs {
		v, err := enc.Encode(q.Text)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.ID, err)
		}
		out[i] = v
	}
	return out, nil
}

// SearchRun searches the query vectors vecs (vecs[i] is query ids[i]) for
// their top k by alg and returns the run: every query, with its hits best
// first, ranked from 1 and named by the documents' ids (an empty list when
// nothing matches). A query id given twice is an error. Cost: one Search
// per query.
func (r *Reader) SearchRun(ids []string, vecs [][]TermWeight, k int, alg Algorithm) (corpora.Run, error) {
	if len(ids) != len(vecs) {
		return nil, fmt.Errorf("search run: %d query ids for %d vectors", len(ids), len(vecs))
	}
	run := make(corpora.Run, len(ids))
	for i, id := range ids {
		if _, dup := run[id]; dup {
			return nil, fmt.Errorf("search run: query %s given twice", corpora.Quote(id))
		}
		hits, err := r.Search(vecs[i], k, alg)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", id, err)
		}
		hs := make([]corpora.Hit, len(hits))
		for j, h := range hits {
			hs[j] = corpora.Hit{DocID: r.DocID(h.Doc), Score: h.Score, Rank: j + 1}
		}
		run[id] = hs
	}
	return run, nil
}

// SearchQueries encodes the text queries qs with enc (EncodeQueries) and
// searches them (SearchRun).
func (r *Reader) SearchQueries(enc QueryEncoder, qs []corpora.Query, k int, alg Algorithm) (corpora.Run, error) {
	vecs, err := EncodeQueries(enc, qs)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(qs))
	for i, q := range qs {
		ids[i] = q.ID
	}
	return r.SearchRun(ids, vecs, k, alg)
}
