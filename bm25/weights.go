package bm25

import (
	"fmt"
	"math"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/registry"
)

// ImpactWeight is IDF(df, n)·tf/(tf + norm) with norm = Norm(k1, b, dl, avgdl).
func ImpactWeight(tf, df, n, norm float64) float64 {
	return IDF(df, n) * tf / (tf + norm)
}

// Norm is BM25's length normalisation k1·(1 − b + b·dl/avgdl) of a
// document of dl tokens (k1 alone when avgdl is 0).
func Norm(k1, b, dl, avgdl float64) float64 {
	if avgdl <= 0 {
		return k1
	}
	return k1 * (1 - b + b*dl/avgdl)
}

// IDF is BM25's idf of a term in df of n documents,
// ln(1 + (n − df + 0.5)/(df + 0.5)), always > 0.
func IDF(df, n float64) float64 {
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// NewAnalyzer returns the analyzer named Analyzer (bleve's registry).
func NewAnalyzer() (analysis.Analyzer, error) {
	an, err := registry.NewCache().AnalyzerNamed(Analyzer)
	if err != nil {
		return nil, fmt.Errorf("bleve analyzer %q: %w", Analyzer, err)
	}
	return an, nil
}
