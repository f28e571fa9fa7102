// Package eval scores runs against relevance judgments exactly as
// trec_eval 10 does, and compares runs with paired significance tests in
// Markdown, JSON and self-contained HTML reports.
//
// Semantics (trec_eval's, checked line by line against its output on real
// collections in the golden test):
//
//   - A query's hits are re-sorted by score, highest first, ties broken by
//     docno in descending string order; the rank column of a run file is
//     ignored. Only the first Options.Depth hits count (trec_eval -M).
//   - Queries are those of the qrels. A run query without judgments is
//     ignored. A judged query missing from the run is skipped, or with
//     Options.AllQueries (trec_eval -c) scored as an empty ranking, so it
//     counts 0 in the means and its judgments count in num_rel.
//   - Binary measures call a document relevant when its grade is at least
//     the threshold (trec_eval -l, default 1). nDCG uses the grade itself
//     as gain (negative grades gain 0), 1/log2(rank+1) discount, and the
//     ideal ranking of all judged grades.
//   - The aggregate ("all") of a count is its sum over queries; of every
//     other measure the mean over the evaluated queries. One exception, as
//     in trec_eval: with AllQueries, the summary of trec_eval's num_rel is
//     the number of judgments with grade > 0 in the whole qrels, whatever
//     the relevance threshold (so with -c -l 2 it is not the sum of the
//     per-query num_rel); ir_measures' NumRel keeps the sum.
//
// One known difference: trec_eval 10.0 exits with an error when, without
// -c, a judged query has no results; this package skips such queries (the
// documented behaviour of trec_eval 9 and of its -c flag's description).
package eval

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/spladapt/spladapt/corpora"
)

// Options are trec_eval's evaluation flags.
type Options struct {
	// AllQueries averages over every judged query, scoring a query absent
	// from the run as an empty ranking (trec_eval -c).
	AllQueries bool `json:"all_queries"`
	// RelThreshold is the lowest relevant grade for binary measures
	// (trec_eval -l); 0 means trec_eval's default, 1. Must be >= 0.
	RelThreshold int `json:"rel_threshold"`
	// Depth keeps only the first Depth hits of each query after sorting
	// (trec_eval -M); 0 means all.
	Depth int `json:"depth"`
	// Workers is how many goroutines share the queries of a large run (the
	// config key threads); 0 means GOMAXPROCS, at most 8. Values are
	// computed per query and summed in query order, so they do not depend
	// on it.
	Workers int `json:"-"`
}

// Results are the values of each measure for each evaluated query and
// their aggregate.
type Results struct {
	Measures []Measure
	// Queries holds one entry per evaluated query, in ascending qid
	// (string) order, as trec_eval prints them.
	Queries []QueryValues
	// All is the aggregate of each measure (parallel to Measures): the sum
	// over queries for counts, the mean for every other measure.
	All []float64
}

// QueryValues are one query's values, parallel to Results.Measures.
type QueryValues struct {
	QID    string
	Values []float64
}

// Index returns the position of the measure named name (as printed by
// Measure.Name) in r.Measures, or -1.
func (r *Results) Index(name string) int {
	return slices.IndexFunc(r.Measures, func(m Measure) bool { return m.Name() == name })
}

// PerQuery returns measure i's value for each evaluated query.
func (r *Results) PerQuery(i int) map[string]float64 {
	out := make(map[string]float64, len(r.Queries))
	for _, q := range r.Queries {
		out[q.QID] = q.Values[i]
	}
	return out
}

// ErrNoQueries is returned when no judged query has results (and
// Options.AllQueries is off), as trec_eval refuses to average nothing.
var ErrNoQueries = errors.New("no query has both judgments and results")

// Encoded relevance of a retrieved document, trec_eval's convention: the
// grade when judged with grade >= 0, else one of these.
const (
	relNotJudged = -1 // not in the qrels (trec_eval RELVALUE_NONPOOL)
	relNegative  = -2 // judged with a negative grade (RELVALUE_UNJUDGED)
)

// Evaluate scores run against qrels for each measure. It does not modify
// run. A docno twice in one query's first Depth hits, or a NaN score, is an
// error (trec_eval refuses duplicates too).
//
// Cost: O(H log h) for H hits in all with h per query (the sort), plus
// O(H·|measures|); queries are spread over opts.Workers goroutines for
// runs of more than 20 000 hits. A 1M-hit run evaluates in well under a second (BenchmarkEvalRun).
func Evaluate(qrels corpora.Qrels, run corpora.Run, measures []Measure, opts Options) (*Results, error) {
	if len(measures) == 0 {
		return nil, fmt.Errorf("evaluate: no measures")
	}
	for _, m := range measures {
		if err := m.validate(); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	if opts.RelThreshold < 0 || opts.Depth < 0 {
		return nil, fmt.Errorf("evaluate: relevance threshold %d and depth %d must be >= 0", opts.RelThreshold, opts.Depth)
	}
	if opts.RelThreshold == 0 {
		opts.RelThreshold = 1
	}
	qids := make([]string, 0, len(qrels))
	hits := 0
	for qid := range qrels {
		h, ok := run[qid]
		if !ok && !opts.AllQueries {
			continue
		}
		qids = append(qids, qid)
		hits += len(h)
	}
	if len(qids) == 0 {
		return nil, fmt.Errorf("evaluate: %w", ErrNoQueries)
	}
	slices.Sort(qids)
	res := &Results{Measures: slices.Clone(measures), Queries: make([]QueryValues, len(qids)), All: make([]float64, len(measures))}
	values := make([]float64, len(qids)*len(measures))
	for i, qid := range qids {
		res.Queries[i] = QueryValues{QID: qid, Values: values[i*len(measures) : (i+1)*len(measures) : (i+1)*len(measures)]}
	}

	workers := 1
	if hits > 20000 {
		workers = opts.Workers
		if workers <= 0 {
			workers = min(runtime.GOMAXPROCS(0), 8)
		}
		workers = min(workers, len(qids))
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s scorer
			for i := w; i < len(qids); i += workers {
				qid := qids[i]
				if err := s.load(qrels[qid], run[qid], opts.Depth); err != nil {
					errs[w] = fmt.Errorf("evaluate query %s: %w", qid, err)
					return
				}
				for j, m := range measures {
					t := m.Rel
					if t == 0 {
						t = opts.RelThreshold
					}
					res.Queries[i].Values[j] = s.value(m, t)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Accumulate in query order, as trec_eval does, so sums round alike.
	for _, q := range res.Queries {
		for j, v := range q.Values {
			res.All[j] += v
		}
	}
	for j, m := range measures {
		if !m.IsCount() {
			res.All[j] /= float64(len(qids))
		}
		if opts.AllQueries && m.Kind == NumRel && !m.IR {
			res.All[j] = float64(positiveJudgments(qrels))
		}
	}
	return res, nil
}

// positiveJudgments counts the judgments with grade > 0 over every query of
// qrels. It is trec_eval's summary num_rel under -c (te_calc_avg_num_rel in
// m_num_rel.c goes back to the whole qrels and counts rel > 0), which
// ignores the -l threshold: with -l 2 it is not the sum of the per-query
// values.
func positiveJudgments(qrels corpora.Qrels) int {
	n := 0
	for _, docs := range qrels {
		for _, g := range docs {
			if g > 0 {
				n++
			}
		}
	}
	return n
}

// scorer holds one query's ranking in trec_eval's form, with buffers
// reused from query to query.
type scorer struct {
	sorted []corpora.Hit
	rels   []int // encoded relevance of each ranked hit, best first
	grades []int // judged grades >= 0, highest first
	seen   map[string]struct{}
}

// load sorts hits (trec_eval's order), truncates them to depth, and
// encodes their relevance.
func (s *scorer) load(judged map[string]int, hits []corpora.Hit, depth int) error {
	s.sorted = append(s.sorted[:0], hits...)
	for _, h := range s.sorted {
		if math.IsNaN(h.Score) {
			return fmt.Errorf("document %s has a NaN score", h.DocID)
		}
	}
	slices.SortFunc(s.sorted, func(a, b corpora.Hit) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(b.DocID, a.DocID)
	})
	if depth > 0 && len(s.sorted) > depth {
		s.sorted = s.sorted[:depth]
	}
	if s.seen == nil {
		s.seen = map[string]struct{}{}
	}
	clear(s.seen)
	s.rels = s.rels[:0]
	for i, h := range s.sorted {
		// Equal docnos sort next to each other when their scores tie;
		// otherwise the set finds them.
		if i > 0 && s.sorted[i-1].DocID == h.DocID {
			return fmt.Errorf("duplicate document %s in the run", h.DocID)
		}
		if _, dup := s.seen[h.DocID]; dup {
			return fmt.Errorf("duplicate document %s in the run", h.DocID)
		}
		s.seen[h.DocID] = struct{}{}
		g, ok := judged[h.DocID]
		switch {
		case !ok:
			g = relNotJudged
		case g < 0:
			g = relNegative
		}
		s.rels = append(s.rels, g)
	}
	s.grades = s.grades[:0]
	for _, g := range judged {
		if g >= 0 {
			s.grades = append(s.grades, g)
		}
	}
	slices.SortFunc(s.grades, func(a, b int) int { return cmp.Compare(b, a) })
	return nil
}

// numRel counts judged documents with grade >= t (trec_eval's num_rel:
// negative grades never count).
func (s *scorer) numRel(t int) int {
	n := 0
	for _, g := range s.grades {
		if g >= t {
			n++
		}
	}
	return n
}

// top is the number of ranked hits within cutoff k (0: all).
func (s *scorer) top(k int) int {
	if k > 0 && k < len(s.rels) {
		return k
	}
	return len(s.rels)
}

// relIn counts relevant hits (grade >= t) among the first n.
func (s *scorer) relIn(n, t int) int {
	c := 0
	for _, r := range s.rels[:n] {
		if r >= t {
			c++
		}
	}
	return c
}

// value computes measure m for the loaded query with threshold t >= 1.
func (s *scorer) value(m Measure, t int) float64 {
	switch m.Kind {
	case NumQ:
		return 1
	case NumRet:
		return float64(len(s.rels))
	case NumRel:
		return float64(s.numRel(t))
	case NumRelRet:
		return float64(s.relIn(len(s.rels), t))
	case AP:
		R := s.numRel(t)
		if R == 0 {
			return 0
		}
		found, sum := 0, 0.0
		for i, r := range s.rels[:s.top(m.Cutoff)] {
			if r >= t {
				found++
				sum += float64(found) / float64(i+1)
			}
		}
		return sum / float64(R)
	case Rprec:
		R := s.numRel(t)
		n := min(R, len(s.rels))
		if n == 0 {
			return 0
		}
		return float64(s.relIn(n, t)) / float64(R)
	case RR:
		for i, r := range s.rels[:s.top(m.Cutoff)] {
			if r >= t {
				return 1 / float64(i+1)
			}
		}
		return 0
	case P:
		return float64(s.relIn(s.top(m.Cutoff), t)) / float64(m.Cutoff)
	case Recall:
		R := s.numRel(t)
		if R == 0 {
			return 0
		}
		return float64(s.relIn(s.top(m.Cutoff), t)) / float64(R)
	case NDCG:
		dcg := 0.0
		for i, r := range s.rels[:s.top(m.Cutoff)] {
			if r > 0 {
				dcg += float64(r) / log2(i+2)
			}
		}
		ideal := s.grades
		if m.Cutoff > 0 && m.Cutoff < len(ideal) {
			ideal = ideal[:m.Cutoff]
		}
		idcg := 0.0
		for i, g := range ideal {
			if g > 0 {
				idcg += float64(g) / log2(i+2)
			}
		}
		if idcg <= 0 {
			return 0
		}
		return dcg / idcg
	case Judged:
		n := s.top(m.Cutoff)
		if n == 0 {
			return 0
		}
		c := 0
		for _, r := range s.rels[:n] {
			if r != relNotJudged {
				c++
			}
		}
		return float64(c) / float64(n)
	}
	panic(fmt.Sprintf("eval: measure kind %d not handled", m.Kind)) // validate rejects unknown kinds
}

// log2Table caches log2(i) for the ranks that nearly all runs have.
var log2Table = func() []float64 {
	t := make([]float64, 4096)
	for i := range t {
		t[i] = math.Log2(float64(i))
	}
	return t
}()

func log2(i int) float64 {
	if i < len(log2Table) {
		return log2Table[i]
	}
	return math.Log2(float64(i))
}
