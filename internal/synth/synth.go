// Package synth generates SPLADE-like sparse collections for benchmarks,
// reproducibly from a seed.
//
// Statistics (defaults of Config):
//   - vocabulary V = 30 522 (BERT's); term popularity is Zipfian with
//     exponent 1: the term of popularity rank r (0-based) is drawn with
//     probability ∝ 1/(r+1). Ranks map to term ids through a fixed random
//     permutation, so popular terms are scattered over the id space.
//   - documents have 120–200 distinct terms (uniform), drawn by popularity
//     without replacement;
//   - queries have 20–40 distinct terms (uniform), drawn the same way;
//   - weights are log-normal and larger for rarer terms, as SPLADE's are:
//     w = min(4, g · (0.2 + 0.8·ln(1+r)/ln(1+V))), g = exp(N(0, σ²)) with
//     σ = 0.6 for documents and 0.8 (more skewed) for queries.
//
// A collection is a pure function of (Config, seed): document i and query i
// are drawn from their own generators, so any prefix is the same whatever
// the size.
package synth

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/spladapt/spladapt/index"
)

// Config describes a synthetic collection.
type Config struct {
	Vocab              int
	Zipf               float64 // popularity exponent s: P(rank r) ∝ (r+1)^−s
	DocMin, DocMax     int     // terms per document
	QueryMin, QueryMax int     // terms per query
	DocSigma, QuerySig float64 // log-normal σ of weights
	MaxWeight          float64 // weights are clipped here
	Seed               uint64
}

// Default is the collection the benchmarks use.
var Default = Config{Vocab: 30522, Zipf: 1, DocMin: 120, DocMax: 200, QueryMin: 20, QueryMax: 40,
	DocSigma: 0.6, QuerySig: 0.8, MaxWeight: 4, Seed: 1}

// Gen draws documents and queries of a Config.
type Gen struct {
	c     Config
	cdf   []float64 // cumulative popularity by rank
	term  []uint32  // rank → term id
	ranks []int     // term id → rank
	logV  float64
}

// New prepares a generator: O(V).
func New(c Config) *Gen {
	g := &Gen{c: c, cdf: make([]float64, c.Vocab), logV: math.Log(1 + float64(c.Vocab))}
	sum := 0.0
	for r := range g.cdf {
		sum += math.Pow(float64(r+1), -c.Zipf)
		g.cdf[r] = sum
	}
	for r := range g.cdf {
		g.cdf[r] /= sum
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	g.term = make([]uint32, c.Vocab)
	for i, p := range rng.Perm(c.Vocab) {
		g.term[i] = uint32(p)
	}
	g.ranks = make([]int, c.Vocab)
	for r, t := range g.term {
		g.ranks[t] = r
	}
	return g
}

// Rank returns the popularity rank of term t (0 = most popular).
func (g *Gen) Rank(t uint32) int { return g.ranks[t] }

func (g *Gen) vector(rng *rand.Rand, lo, hi int, sigma float64) []index.TermWeight {
	n := lo + rng.IntN(hi-lo+1)
	seen := make(map[int]bool, n)
	out := make([]index.TermWeight, 0, n)
	for len(out) < n {
		r := sort.SearchFloat64s(g.cdf, rng.Float64())
		if r >= len(g.cdf) || seen[r] {
			continue
		}
		seen[r] = true
		w := math.Exp(rng.NormFloat64()*sigma) * (0.2 + 0.8*math.Log(1+float64(r))/g.logV)
		out = append(out, index.TermWeight{Term: g.term[r], Weight: float32(min(w, g.c.MaxWeight))})
	}
	return out
}

// Doc returns document i's vector.
func (g *Gen) Doc(i int) []index.TermWeight {
	rng := rand.New(rand.NewPCG(g.c.Seed, uint64(i)<<1))
	return g.vector(rng, g.c.DocMin, g.c.DocMax, g.c.DocSigma)
}

// Query returns query i's vector.
func (g *Gen) Query(i int) []index.TermWeight {
	rng := rand.New(rand.NewPCG(g.c.Seed, uint64(i)<<1|1))
	return g.vector(rng, g.c.QueryMin, g.c.QueryMax, g.c.QuerySig)
}
