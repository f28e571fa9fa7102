// Package synth generates SPLADE-like sparse collections for benchmarks,
// reproducibly from a seed.
//
// Statistics (Config; Default and Topical differ only in the topic model):
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
// Default draws every term of every document and query independently of
// the others: no document is about anything, and a query is unrelated to
// every document. That is the worst case for pruning (the k-th score is a
// small fraction of the score bound) and for compression (no doc-number
// order clusters anything).
//
// Topical adds what real collections have: topics. There are Topics
// topics, of Zipfian size (exponent TopicZipf); each owns TopicTerms
// terms, drawn by the same popularity among the ranks ≥ TopicMinRank (so
// not the function words). A document has a main and a second topic: a
// share DocTopic1 of its terms is drawn uniformly from its main topic's
// terms, DocTopic2 from its second topic's, the rest by popularity as
// above. A query is about one topic: a share QueryTopic of its terms comes
// from that topic. Because a term's chance to be in a topic grows with
// its popularity, the terms' document frequencies stay close to Zipfian
// (TestTopical measures the slope: −0.88 against Default's −0.96 over
// ranks 10–3000). Documents come in random topic order; the index
// benchmarks can number them by main topic instead
// (SPLADAPT_BENCH_ORDER=topic, Gen.TopicOrder), the clustering a doc-reordering method
// would at best find.
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

	// Topic model; Topics == 0 draws every term independently.
	Topics               int     // number of topics
	TopicZipf            float64 // topic sizes: P(topic j) ∝ (j+1)^−TopicZipf
	TopicTerms           int     // terms per topic
	TopicMinRank         int     // topic terms have popularity rank ≥ this
	DocTopic1, DocTopic2 float64 // shares of a document's terms from its main and second topic
	QueryTopic           float64 // share of a query's terms from its topic
}

// Default is the collection of independent terms.
var Default = Config{Vocab: 30522, Zipf: 1, DocMin: 120, DocMax: 200, QueryMin: 20, QueryMax: 40,
	DocSigma: 0.6, QuerySig: 0.8, MaxWeight: 4, Seed: 1}

// Topical is Default with topics: 2 000 topics of Zipfian size (0.8), 300
// terms each among the ranks ≥ 100; documents draw 40% of their terms from
// their main topic and 15% from a second one, queries 60% from theirs.
var Topical = func() Config {
	c := Default
	c.Topics, c.TopicZipf, c.TopicTerms, c.TopicMinRank = 2000, 0.8, 300, 100
	c.DocTopic1, c.DocTopic2, c.QueryTopic = 0.4, 0.15, 0.6
	return c
}()

// Gen draws documents and queries of a Config.
type Gen struct {
	c      Config
	cdf    []float64  // cumulative popularity by rank
	term   []uint32   // rank → term id
	ranks  []int      // term id → rank
	topCDF []float64  // cumulative topic popularity
	topics [][]uint32 // topic → its terms' ranks
	logV   float64
}

// New prepares a generator: O(V + Topics·TopicTerms).
func New(c Config) *Gen {
	g := &Gen{c: c, cdf: zipfCDF(c.Vocab, c.Zipf), logV: math.Log(1 + float64(c.Vocab))}
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	g.term = make([]uint32, c.Vocab)
	for i, p := range rng.Perm(c.Vocab) {
		g.term[i] = uint32(p)
	}
	g.ranks = make([]int, c.Vocab)
	for r, t := range g.term {
		g.ranks[t] = r
	}
	if c.Topics > 0 {
		g.topCDF = zipfCDF(c.Topics, c.TopicZipf)
		g.topics = make([][]uint32, c.Topics)
		lo := 0.0
		if c.TopicMinRank > 0 {
			lo = g.cdf[c.TopicMinRank-1]
		}
		n := min(c.TopicTerms, c.Vocab-c.TopicMinRank)
		for j := range g.topics {
			trng := rand.New(rand.NewPCG(c.Seed, 0x70b1c<<32|uint64(j)))
			seen := make(map[int]bool, n)
			ts := make([]uint32, 0, n)
			for len(ts) < n {
				r := sort.SearchFloat64s(g.cdf, lo+(1-lo)*trng.Float64())
				if r < c.TopicMinRank || r >= c.Vocab || seen[r] {
					continue
				}
				seen[r] = true
				ts = append(ts, uint32(r))
			}
			g.topics[j] = ts
		}
	}
	return g
}

func zipfCDF(n int, s float64) []float64 {
	cdf := make([]float64, n)
	sum := 0.0
	for r := range cdf {
		sum += math.Pow(float64(r+1), -s)
		cdf[r] = sum
	}
	for r := range cdf {
		cdf[r] /= sum
	}
	return cdf
}

// Rank returns the popularity rank of term t (0 = most popular).
func (g *Gen) Rank(t uint32) int { return g.ranks[t] }

// source is where a vector's terms come from: n of them uniformly from
// ranks (a topic's), the rest by popularity.
type source struct {
	ranks []uint32
	n     int
}

func (g *Gen) vector(rng *rand.Rand, lo, hi int, sigma float64, srcs ...source) []index.TermWeight {
	n := lo + rng.IntN(hi-lo+1)
	seen := make(map[int]bool, n)
	out := make([]index.TermWeight, 0, n)
	add := func(r int) bool {
		if r >= len(g.cdf) || seen[r] {
			return false
		}
		seen[r] = true
		w := math.Exp(rng.NormFloat64()*sigma) * (0.2 + 0.8*math.Log(1+float64(r))/g.logV)
		out = append(out, index.TermWeight{Term: g.term[r], Weight: float32(min(w, g.c.MaxWeight))})
		return true
	}
	for _, s := range srcs {
		want := min(len(out)+min(s.n, len(s.ranks)), n)
		for tries := 0; len(out) < want && tries < 20*len(s.ranks); tries++ {
			add(int(s.ranks[rng.IntN(len(s.ranks))]))
		}
	}
	for len(out) < n {
		add(sort.SearchFloat64s(g.cdf, rng.Float64()))
	}
	return out
}

// Topic returns document i's main topic (−1 without a topic model).
func (g *Gen) Topic(i int) int {
	if g.topics == nil {
		return -1
	}
	rng := rand.New(rand.NewPCG(g.c.Seed, uint64(i)<<1))
	return g.topic(rng)
}

func (g *Gen) topic(rng *rand.Rand) int {
	return min(sort.SearchFloat64s(g.topCDF, rng.Float64()), len(g.topics)-1)
}

// Doc returns document i's vector.
func (g *Gen) Doc(i int) []index.TermWeight {
	rng := rand.New(rand.NewPCG(g.c.Seed, uint64(i)<<1))
	if g.topics == nil {
		return g.vector(rng, g.c.DocMin, g.c.DocMax, g.c.DocSigma)
	}
	t1, t2 := g.topic(rng), g.topic(rng)
	mid := float64(g.c.DocMin+g.c.DocMax) / 2
	return g.vector(rng, g.c.DocMin, g.c.DocMax, g.c.DocSigma,
		source{g.topics[t1], int(g.c.DocTopic1 * mid)}, source{g.topics[t2], int(g.c.DocTopic2 * mid)})
}

// Query returns query i's vector.
func (g *Gen) Query(i int) []index.TermWeight {
	rng := rand.New(rand.NewPCG(g.c.Seed, uint64(i)<<1|1))
	if g.topics == nil {
		return g.vector(rng, g.c.QueryMin, g.c.QueryMax, g.c.QuerySig)
	}
	t := g.topic(rng)
	mid := float64(g.c.QueryMin+g.c.QueryMax) / 2
	return g.vector(rng, g.c.QueryMin, g.c.QueryMax, g.c.QuerySig, source{g.topics[t], int(g.c.QueryTopic * mid)})
}
