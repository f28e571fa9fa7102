// Package impact builds BM25 as an index impact index (package index's
// format) and encodes text queries for it, so that the engine ranks BM25
// too; it joins package bm25's analysis and weights to package index.
package impact

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2/analysis"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
)

// BM25 through spladapt's own engine (package index): documents are
// analysed as Build analyses them (bm25.Analyzer over corpora.Doc.Content()),
// the analysed terms become a term dictionary (the index vocabulary,
// sorted), and each posting's impact is the quantised BM25 weight of the
// term in the document,
//
//	w(t, d) = idf(t) · tf / (tf + k1 · (1 − b + b · dl/avgdl))
//	idf(t)  = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//
// (the package's formula without the query term count, which the query
// vector carries; Lucene's BM25Similarity without the constant factor
// k1+1, which does not change any ranking). A query is its analysed
// terms with weight = number of occurrences, so the engine scores
// Σ qtf · w(t, d) up to quantisation, and every query algorithm applies.

// FingerprintPrefix starts the fingerprint of a BM25 index; the rest
// names the analyzer and parameters, e.g. "bm25 analyzer=en k1=0.9 b=0.4".
const FingerprintPrefix = "bm25 "

// Options configure Build.
type Options struct {
	K1, B     float64 // BM25 parameters (k1 ≥ 0, b in [0, 1])
	QuantBits int     // impact width (default 8)
	BlockSize int     // documents per block (default index.DefaultBlockSize)
	Workers   int     // goroutines encoding postings (Options.Workers)
	// Progress, when not nil, is called with the number of documents
	// analysed so far (every 1000 and at the end).
	Progress func(n int)
}

// Stats are the collection statistics of a BM25 index build.
type Stats struct {
	Docs   int     // N
	Tokens int64   // Σ dl
	AvgDL  float64 // Tokens / Docs
	Terms  int     // distinct analysed terms (vocabulary size)
}

// Build reads documents from next until io.EOF and writes a BM25
// impact index (package index's format) to dir. Memory: the analysed documents (≈ 8 bytes per
// distinct term per document) plus the Builder's. Documents whose text
// has no indexable term are kept (they count in N and avgdl, as in
// package bm25) but match no query.
func Build(dir string, next func() (corpora.Doc, error), opts Options) (*index.Meta, Stats, error) {
	var st Stats
	if !(opts.K1 >= 0) || math.IsInf(opts.K1, 0) || !(opts.B >= 0 && opts.B <= 1) {
		return nil, st, fmt.Errorf("build bm25 index %s: k1 %g must be finite ≥ 0 and b %g in [0, 1]", dir, opts.K1, opts.B)
	}
	an, err := bm25.NewAnalyzer()
	if err != nil {
		return nil, st, fmt.Errorf("build bm25 index %s: %w", dir, err)
	}
	type tf struct{ term, n uint32 }
	var (
		ids   []string
		dls   []uint32
		tfs   [][]tf
		dict  = map[string]uint32{}
		names []string
		df    []uint32
	)
	counts := map[uint32]uint32{}
	for {
		d, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, st, fmt.Errorf("build bm25 index %s: %w", dir, err)
		}
		clear(counts)
		toks := an.Analyze([]byte(d.Content()))
		for _, tok := range toks {
			t, ok := dict[string(tok.Term)]
			if !ok {
				t = uint32(len(names))
				dict[string(tok.Term)] = t
				names = append(names, string(tok.Term))
				df = append(df, 0)
			}
			counts[t]++
		}
		v := make([]tf, 0, len(counts))
		for t, n := range counts {
			v = append(v, tf{t, n})
			df[t]++
		}
		ids = append(ids, d.ID)
		dls = append(dls, uint32(len(toks)))
		tfs = append(tfs, v)
		st.Tokens += int64(len(toks))
		if opts.Progress != nil && len(ids)%1000 == 0 {
			opts.Progress(len(ids))
		}
	}
	if opts.Progress != nil {
		opts.Progress(len(ids))
	}
	st.Docs, st.Terms = len(ids), len(names)
	if st.Docs == 0 {
		return nil, st, fmt.Errorf("build bm25 index %s: no documents", dir)
	}
	st.AvgDL = float64(st.Tokens) / float64(st.Docs)

	// Sorted vocabulary: term ids follow token order.
	order := make([]uint32, len(names))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(names[a], names[b]) })
	remap := make([]uint32, len(names))
	vocab := make([]string, len(names))
	for newID, old := range order {
		remap[old] = uint32(newID)
		vocab[newID] = names[old]
	}
	b, err := index.NewBuilder(index.Options{
		Vocab: vocab, QuantBits: opts.QuantBits, BlockSize: opts.BlockSize,
		Fingerprint: Fingerprint(opts.K1, opts.B), Workers: opts.Workers,
	})
	if err != nil {
		return nil, st, fmt.Errorf("build bm25 index %s: %w", dir, err)
	}
	N := float64(st.Docs)
	vec := make([]index.TermWeight, 0, 256)
	for i, id := range ids {
		vec = vec[:0]
		norm := bm25.Norm(opts.K1, opts.B, float64(dls[i]), st.AvgDL)
		for _, x := range tfs[i] {
			w := bm25.ImpactWeight(float64(x.n), float64(df[x.term]), N, norm)
			vec = append(vec, index.TermWeight{Term: remap[x.term], Weight: float32(w)})
		}
		if _, err := b.Add(id, vec); err != nil {
			return nil, st, fmt.Errorf("build bm25 index %s: %w", dir, err)
		}
		tfs[i] = nil
	}
	m, err := b.Write(dir)
	if err != nil {
		return nil, st, err
	}
	return m, st, nil
}

// ImpactFingerprint is the fingerprint Build stores for k1 and b.
func Fingerprint(k1, b float64) string {
	return FingerprintPrefix + "analyzer=" + bm25.Analyzer +
		" k1=" + strconv.FormatFloat(k1, 'g', -1, 64) + " b=" + strconv.FormatFloat(b, 'g', -1, 64)
}

// IsIndex reports whether r was built by Build.
func IsIndex(r *index.Reader) bool {
	return strings.HasPrefix(r.Meta().Fingerprint, FingerprintPrefix)
}

// QueryEncoder turns query text into the bag of its analysed terms (weight
// = occurrences) over a BM25 index's dictionary. Terms not in the
// dictionary match nothing and are left out; a query with no known term
// is an empty vector (no hits), not an error.
type QueryEncoder struct {
	r  *index.Reader
	an analysis.Analyzer
}

// NewQueryEncoder returns the query encoder of BM25 index r.
func NewQueryEncoder(r *index.Reader) (*QueryEncoder, error) {
	if !IsIndex(r) || !r.HasVocab() {
		return nil, fmt.Errorf("bm25 encoder: index fingerprint %q is not a BM25 index (build one with \"spladapt index build-bm25\")", r.Meta().Fingerprint)
	}
	an, err := bm25.NewAnalyzer()
	if err != nil {
		return nil, fmt.Errorf("bm25 encoder: %w", err)
	}
	return &QueryEncoder{r: r, an: an}, nil
}

// Encode implements index.QueryEncoder. The analyzer is safe for concurrent use.
func (e *QueryEncoder) Encode(text string) ([]index.TermWeight, error) {
	counts := map[uint32]float32{}
	for _, tok := range e.an.Analyze([]byte(text)) {
		if t, ok := e.r.Term(string(tok.Term)); ok {
			counts[t]++
		}
	}
	out := make([]index.TermWeight, 0, len(counts))
	for t, n := range counts {
		out = append(out, index.TermWeight{Term: t, Weight: n})
	}
	slices.SortFunc(out, func(a, b index.TermWeight) int { return int(a.Term) - int(b.Term) })
	return out, nil
}
