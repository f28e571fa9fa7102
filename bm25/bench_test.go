package bm25

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// synthetic returns n documents of 20..200 words drawn from a Zipf-like
// distribution over a 5,000-word vocabulary, and a query maker.
func synthetic(n int, seed uint64) ([]corpora.Doc, func(terms int) string) {
	rng := rand.New(rand.NewPCG(seed, 7))
	word := func() string {
		return fmt.Sprintf("w%d", int(5000*math.Pow(rng.Float64(), 3)))
	}
	text := func(m int) string {
		w := make([]string, m)
		for i := range w {
			w[i] = word()
		}
		return strings.Join(w, " ")
	}
	docs := make([]corpora.Doc, n)
	for i := range docs {
		docs[i] = corpora.Doc{ID: fmt.Sprintf("d%d", i), Text: text(20 + rng.IntN(180))}
	}
	return docs, text
}

// BenchmarkSearch compares the exact scorer with bleve's own in one run.
func BenchmarkSearch(b *testing.B) {
	const docsN = 10000
	docs, query := synthetic(docsN, 1)
	dir := filepath.Join(b.TempDir(), "idx")
	if _, err := Build(dir, docsOf(docs), BuildOptions{}); err != nil {
		b.Fatal(err)
	}
	x, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	queries := make([]string, 64)
	for i := range queries {
		queries[i] = query(8)
	}
	for _, sc := range []Scoring{Exact, Bleve} {
		b.Run(fmt.Sprintf("scoring=%s/terms=8/k=1000/docs=10k", sc), func(b *testing.B) {
			s, err := x.NewSearcher(defaults)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := queries[i%len(queries)]
				i++
				if sc == Exact {
					_, err = s.Search(q, 1000)
				} else {
					_, err = x.SearchBleve(q, 1000, defaults)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuild measures indexing throughput.
func BenchmarkBuild(b *testing.B) {
	docs, _ := synthetic(5000, 2)
	b.Run("docs=5k", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Build(filepath.Join(b.TempDir(), "idx"), docsOf(docs), BuildOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
