package eval

import (
	"fmt"
	"math"
	"sort"

	"github.com/spladapt/spladapt/corpora"
)

// Fusion methods of FuseOptions.Method.
const (
	// FuseRRF is reciprocal rank fusion (Cormack et al. 2009):
	// score(d) = Σ_i w_i / (k + rank_i(d)).
	FuseRRF = "rrf"
	// FuseInterp interpolates per-query min-max normalised scores:
	// score(d) = Σ_i w_i · (s_i(d) − min_i)/(max_i − min_i); a run without
	// d adds 0, and a run whose scores are all equal gives each of its
	// documents 1.
	FuseInterp = "interp"
)

// FuseOptions configure Fuse.
type FuseOptions struct {
	Method  string    // FuseRRF or FuseInterp
	Weights []float64 // one per run, each positive and finite; nil: 1 each
	RRFK    int       // k of reciprocal rank fusion, ≥ 0
	Depth   int       // documents kept per query, ≥ 1
}

// Validate checks o for fusing n runs; the errors name the setting.
func (o FuseOptions) Validate(n int) error {
	if o.Method != FuseRRF && o.Method != FuseInterp {
		return fmt.Errorf("fuse: method %q, want rrf or interp", o.Method)
	}
	if o.RRFK < 0 || o.Depth < 1 {
		return fmt.Errorf("fuse: rrf-k %d must be ≥ 0 and depth %d ≥ 1", o.RRFK, o.Depth)
	}
	if o.Weights == nil {
		return nil
	}
	if len(o.Weights) != n {
		return fmt.Errorf("fuse: %d weights for %d runs", len(o.Weights), n)
	}
	for i, w := range o.Weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("fuse: weight %g of run %d must be a positive finite number", w, i+1)
		}
	}
	return nil
}

// Fuse fuses runs query by query (the union of their queries) by
// o.Method, keeping the best o.Depth documents per query, ranked from 1
// (ties by docno ascending). Each run's ranks follow trec_eval's order
// (score descending, ties by docno descending), whatever the order of its
// hits. A NaN score is an error. Cost: O(Σ hits · log hits).
func Fuse(runs []corpora.Run, o FuseOptions) (corpora.Run, error) {
	if err := o.Validate(len(runs)); err != nil {
		return nil, err
	}
	weight := func(i int) float64 {
		if o.Weights == nil {
			return 1
		}
		return o.Weights[i]
	}
	qids := map[string]bool{}
	for _, r := range runs {
		for q := range r {
			qids[q] = true
		}
	}
	out := corpora.Run{}
	for q := range qids {
		score := map[string]float64{}
		for i, r := range runs {
			hits := append([]corpora.Hit(nil), r[q]...)
			for _, h := range hits {
				if math.IsNaN(h.Score) {
					return nil, fmt.Errorf("fuse: query %s, document %s: NaN score", q, h.DocID)
				}
			}
			// trec_eval's order: score descending, ties by docno descending.
			sort.SliceStable(hits, func(a, b int) bool {
				if hits[a].Score != hits[b].Score {
					return hits[a].Score > hits[b].Score
				}
				return hits[a].DocID > hits[b].DocID
			})
			if len(hits) == 0 {
				continue
			}
			lo, hi := hits[len(hits)-1].Score, hits[0].Score
			for rank, h := range hits {
				switch o.Method {
				case FuseRRF:
					score[h.DocID] += weight(i) / float64(o.RRFK+rank+1)
				case FuseInterp:
					n := 1.0
					if hi > lo {
						n = (h.Score - lo) / (hi - lo)
					}
					score[h.DocID] += weight(i) * n
				}
			}
		}
		hits := make([]corpora.Hit, 0, len(score))
		for d, s := range score {
			hits = append(hits, corpora.Hit{DocID: d, Score: s})
		}
		sort.Slice(hits, func(a, b int) bool {
			if hits[a].Score != hits[b].Score {
				return hits[a].Score > hits[b].Score
			}
			return hits[a].DocID < hits[b].DocID
		})
		if len(hits) > o.Depth {
			hits = hits[:o.Depth]
		}
		for i := range hits {
			hits[i].Rank = i + 1
		}
		out[q] = hits
	}
	return out, nil
}
