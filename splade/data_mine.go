package splade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Searcher is a first-stage retriever used to mine hard negatives: the
// bleve BM25 baseline satisfies it through a small adapter. Search returns
// at most k hits for a query text, best first.
type Searcher interface {
	Search(query string, k int) ([]corpora.Hit, error)
}

// MineOptions are the less common settings of negative mining.
type MineOptions struct {
	// RankOrder takes the best-ranked non-positive hits as negatives
	// instead of sampling them uniformly (seeded) from the top depth.
	RankOrder bool
	// Margins attaches the searcher's scores as teacher margins
	// (score(positive) − score(negative), one per negative) for MarginMSE:
	// distillation from BM25, a dense training signal for models trained
	// from scratch. A positive that is not among the top depth hits has no
	// score, so its triple is skipped (counted in MineStats.PosNotRetrieved).
	Margins bool
	// Report, when not nil, receives every query that was skipped and why
	// (no positive in the corpus, missing from queries.jsonl, no negative
	// among the hits).
	Report func(qid string, reason error)
	// Stats, when not nil, receives the counts of the run.
	Stats *MineStats
}

// MineStats counts what mining did; every skipped query is counted.
type MineStats struct {
	Queries        int `json:"queries"`           // queries of the split with at least one grade > 0
	Triples        int `json:"triples"`           // triples produced (one per query and positive)
	NoPositive     int `json:"no_positive"`       // queries skipped: none of their positives is in the corpus
	MissingQuery   int `json:"missing_query"`     // queries skipped: judged but not in queries.jsonl
	NoNegatives    int `json:"no_negatives"`      // queries skipped: every hit was a positive, or no hits
	FewNegatives   int `json:"few_negatives"`     // triples with fewer than the asked negatives (kept)
	PosNotInCorpus int `json:"pos_not_in_corpus"` // judged positives absent from the corpus (skipped)
	// With MineOptions.Margins: judged positives that are not among the
	// top depth hits, whose triples were skipped for want of a score.
	PosNotRetrieved int `json:"pos_not_retrieved,omitempty"`
}

// Reasons a query is skipped, passed to MineOptions.Report; match with
// errors.Is.
var (
	ErrNoPositive   = errors.New("no judged positive is in the corpus")
	ErrMissingQuery = errors.New("judged query is not in queries.jsonl")
	ErrNoNegatives  = errors.New("no non-positive document among the hits")
)

// MineBM25Negatives builds training triples from a BEIR directory: for each
// query of qrels/<split>.tsv that has a judged positive (grade > 0) present
// in the corpus, and for each such positive, one Triple with up to
// negsPerQuery hard negatives taken from the top depth hits of searcher for
// the query text, excluding every judged positive of that query.
// Negatives are sampled without replacement, seeded by seed and the
// (query, positive) pair so that a triple does not depend on the others,
// or taken in rank order (opt.RankOrder). Skipped queries are reported
// through opt.Report and counted in opt.Stats, never dropped silently.
// Triples come in queries.jsonl order, positives in id order.
//
// Cost: one pass over the corpus for its ids, one search per query.
func MineBM25Negatives(ctx context.Context, beirDir, split string, searcher Searcher, negsPerQuery, depth int, seed uint64, opt MineOptions) ([]Triple, error) {
	b := corpora.BEIR{Dir: beirDir}
	qrels, err := b.Qrels(split)
	if err != nil {
		return nil, fmt.Errorf("mine negatives: %w", err)
	}
	queries, err := b.Queries(corpora.Options{})
	if err != nil {
		return nil, fmt.Errorf("mine negatives: %w", err)
	}
	ids := map[string]struct{}{}
	r, err := b.Corpus(corpora.Options{})
	if err != nil {
		return nil, fmt.Errorf("mine negatives: %w", err)
	}
	defer r.Close()
	for {
		d, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mine negatives: %w", err)
		}
		ids[d.ID] = struct{}{}
	}
	inCorpus := func(id string) bool { _, ok := ids[id]; return ok }
	return MineNegatives(ctx, queries, qrels, inCorpus, searcher, negsPerQuery, depth, seed, opt)
}

// MineNegatives is MineBM25Negatives on data already in memory: queries in
// the order triples should come, the qrels of the training split, and a
// test for corpus membership.
func MineNegatives(ctx context.Context, queries []corpora.Query, qrels corpora.Qrels, inCorpus func(id string) bool,
	searcher Searcher, negsPerQuery, depth int, seed uint64, opt MineOptions) ([]Triple, error) {
	if negsPerQuery < 1 {
		return nil, fmt.Errorf("mine negatives: negatives per query %d, want ≥ 1", negsPerQuery)
	}
	if depth < negsPerQuery {
		return nil, fmt.Errorf("mine negatives: depth %d is smaller than the %d negatives per query", depth, negsPerQuery)
	}
	var st MineStats
	report := func(qid string, why error) {
		if opt.Report != nil {
			opt.Report(qid, why)
		}
	}
	// Judged queries absent from queries.jsonl.
	known := make(map[string]bool, len(queries))
	for _, q := range queries {
		known[q.ID] = true
	}
	var missing []string
	for qid, docs := range qrels {
		if !known[qid] && hasPositive(docs) {
			missing = append(missing, qid)
		}
	}
	sort.Strings(missing)
	for _, qid := range missing {
		st.Queries++
		st.MissingQuery++
		report(qid, ErrMissingQuery)
	}

	var out []Triple
	for _, q := range queries {
		docs, ok := qrels[q.ID]
		if !ok || !hasPositive(docs) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st.Queries++
		var pos []string
		for d, g := range docs {
			if g > 0 {
				if inCorpus(d) {
					pos = append(pos, d)
				} else {
					st.PosNotInCorpus++
				}
			}
		}
		if len(pos) == 0 {
			st.NoPositive++
			report(q.ID, ErrNoPositive)
			continue
		}
		sort.Strings(pos)
		hits, err := searcher.Search(q.Text, depth)
		if err != nil {
			return nil, fmt.Errorf("mine negatives: search query %q: %w", q.ID, err)
		}
		var cand []string // non-positive hits in rank order, each once
		seen := map[string]bool{}
		var score map[string]float64 // hit scores, for margins
		if opt.Margins {
			score = make(map[string]float64, len(hits))
		}
		for _, h := range hits[:min(depth, len(hits))] {
			if score != nil {
				if _, ok := score[h.DocID]; !ok {
					score[h.DocID] = h.Score
				}
			}
			if docs[h.DocID] > 0 || seen[h.DocID] {
				continue
			}
			seen[h.DocID] = true
			cand = append(cand, h.DocID)
		}
		if len(cand) == 0 {
			st.NoNegatives++
			report(q.ID, ErrNoNegatives)
			continue
		}
		for _, p := range pos {
			var ps float64
			if score != nil {
				s, ok := score[p]
				if !ok {
					st.PosNotRetrieved++
					continue
				}
				ps = s
			}
			negs := pickNegatives(cand, negsPerQuery, opt.RankOrder, seed, q.ID, p)
			if len(negs) < negsPerQuery {
				st.FewNegatives++
			}
			t := Triple{QID: q.ID, PosID: p, NegIDs: negs}
			if score != nil {
				for _, n := range negs {
					t.Margins = append(t.Margins, float32(ps-score[n]))
				}
			}
			out = append(out, t)
		}
	}
	st.Triples = len(out)
	if opt.Stats != nil {
		*opt.Stats = st
	}
	return out, nil
}

func hasPositive(docs map[string]int) bool {
	for _, g := range docs {
		if g > 0 {
			return true
		}
	}
	return false
}

// pickNegatives returns n of cand (all when fewer): the first n, or a
// uniform sample without replacement in sampled rank order, seeded by seed,
// qid and pos.
func pickNegatives(cand []string, n int, rankOrder bool, seed uint64, qid, pos string) []string {
	if len(cand) <= n || rankOrder {
		return append([]string(nil), cand[:min(n, len(cand))]...)
	}
	h := fnv.New64a()
	h.Write([]byte(qid))
	h.Write([]byte{0})
	h.Write([]byte(pos))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	idx := r.Perm(len(cand))[:n]
	sort.Ints(idx)
	out := make([]string, n)
	for i, k := range idx {
		out[i] = cand[k]
	}
	return out
}

// mineMeta is the sidecar of a mined-triples cache file: the settings that
// produced it and the counts of that run.
type mineMeta struct {
	Format       int       `json:"format"`
	BEIRDir      string    `json:"beir_dir"`
	Split        string    `json:"split"`
	Searcher     string    `json:"searcher"`
	NegsPerQuery int       `json:"negs_per_query"`
	Depth        int       `json:"depth"`
	Seed         uint64    `json:"seed"`
	RankOrder    bool      `json:"rank_order"`
	Margins      bool      `json:"margins,omitempty"`
	Stats        MineStats `json:"stats"`
}

// MineCached is MineBM25Negatives with a cache: the triples are written to
// cachePath (the triples format) and the settings to cachePath+".meta.json".
// A later call with the same BEIR directory, split, searcherID (a
// description of the searcher and its parameters, e.g. "bm25 k1=0.9
// b=0.4"), negsPerQuery, depth, seed, RankOrder and Margins reads the file instead
// of mining again, and fills opt.Stats from the sidecar (queries skipped
// then are not reported again). It returns whether the cache was used.
// Both files are written atomically, the sidecar last, so an interrupted
// run mines again.
func MineCached(ctx context.Context, cachePath, searcherID, beirDir, split string, searcher Searcher,
	negsPerQuery, depth int, seed uint64, opt MineOptions) ([]Triple, bool, error) {
	abs, err := filepath.Abs(beirDir)
	if err != nil {
		return nil, false, fmt.Errorf("mine negatives: %w", err)
	}
	want := mineMeta{Format: 1, BEIRDir: abs, Split: split, Searcher: searcherID,
		NegsPerQuery: negsPerQuery, Depth: depth, Seed: seed, RankOrder: opt.RankOrder, Margins: opt.Margins}
	metaPath := cachePath + ".meta.json"
	if raw, err := os.ReadFile(metaPath); err == nil {
		var have mineMeta
		if json.Unmarshal(raw, &have) == nil {
			st := have.Stats
			have.Stats = MineStats{}
			if have == want {
				ts, err := ReadTriples(cachePath, corpora.Options{})
				if err == nil {
					if opt.Stats != nil {
						*opt.Stats = st
					}
					return ts, true, nil
				}
				if !errors.Is(err, os.ErrNotExist) {
					return nil, false, fmt.Errorf("read mined-triples cache (delete %s to mine again): %w", metaPath, err)
				}
			}
		}
	}
	var st MineStats
	o := opt
	o.Stats = &st
	ts, err := MineBM25Negatives(ctx, beirDir, split, searcher, negsPerQuery, depth, seed, o)
	if err != nil {
		return nil, false, err
	}
	if opt.Stats != nil {
		*opt.Stats = st
	}
	if len(ts) == 0 {
		return nil, false, fmt.Errorf("mine negatives: no triples from split %q of %s (%d queries: %d without a positive in the corpus, %d not in queries.jsonl, %d without a negative)",
			split, beirDir, st.Queries, st.NoPositive, st.MissingQuery, st.NoNegatives)
	}
	// The old sidecar goes first: a crash between the two writes must not
	// leave it describing the new triples.
	if err := os.Remove(metaPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("write mined-triples cache: %w", err)
	}
	if err := WriteTriples(cachePath, ts); err != nil {
		return nil, false, err
	}
	want.Stats = st
	raw, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteFile(metaPath, append(raw, '\n'), 0o644); err != nil {
		return nil, false, fmt.Errorf("write mined-triples cache: %w", err)
	}
	return ts, false, nil
}
