package bm25

import (
	"fmt"
	"math"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/registry"
)

// ImpactWeight is IDF(df, n)·tf/(tf + norm) with norm = k1·(1 − b + b·dl/avgdl).
func ImpactWeight(tf, df, n, norm float64) float64 {
	return IDF(df, n) * tf / (tf + norm)
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
