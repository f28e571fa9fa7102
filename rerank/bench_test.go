package rerank

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/nn"
)

// BenchmarkRerankStoreDepth100 re-ranks the 100 hits of one query end to
// end (tokenisation included) with the cross-encoder (Rerank) and with MICE
// of the same shape reading document states from a store file written
// beforehand (RerankStore; writing and opening the store are not timed):
// one op = one query. Query about 12 tokens (MICE query segment 16),
// documents about 120 tokens; batches of 25 pairs. match=true marks the
// query against each document (MICE.MatchTypes): the query's layers below
// the fusion point then run per pair.
func BenchmarkRerankStoreDepth100(b *testing.B) {
	tok := toyTokenizer(b)
	words := tok.Vocab()[5:]
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	const depth, batch = 100, 25
	docs := map[string]string{}
	run := corpora.Run{}
	for i := range depth {
		id := fmt.Sprintf("d%03d", i)
		docs[id] = text(110 + rng.IntN(20))
		run["q"] = append(run["q"], corpora.Hit{DocID: id, Score: float64(depth - i)})
	}
	queries := map[string]string{"q": text(12)}
	shapes := []struct {
		name        string
		C, L, NH, F int
	}{{"tiny", 128, 4, 4, 512}}
	for _, sh := range shapes {
		c, err := nn.NewClassifier(nn.BERTConfig(tok.VocabSize(), sh.C, sh.L, sh.NH, sh.F, 512), 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("model=%s/arch=cross-encoder", sh.name), func(b *testing.B) {
			ce, err := NewCrossEncoder(c, tok, 144, batch)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := Rerank(ce, queries, docs, run, depth, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(depth*b.N)/b.Elapsed().Seconds(), "pairs/s")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/query")
		})
		L := sh.L
		for _, v := range []struct {
			name string
			o    nn.MICEOptions
		}{
			{"mice-light", nn.MICEOptions{Fusion: L / 2, Interact: seq(L/2, L), Light: true}},
			{"mice-light-drop", nn.MICEOptions{Fusion: L / 2, Interact: []int{L - 1}, Light: true}},
		} {
			for _, match := range []bool{false, true} {
				b.Run(fmt.Sprintf("model=%s/arch=%s/store=file/match=%v", sh.name, v.name, match), func(b *testing.B) {
					m, err := NewMICE(c, tok, MICEConfig{MICEOptions: v.o, QueryLength: 16, DocLength: 128}, batch)
					if err != nil {
						b.Fatal(err)
					}
					if match {
						if err := c.GrowTokenTypes(NumMatchTypes, 1); err != nil { // rows 0, 1 kept: match=false is unchanged
							b.Fatal(err)
						}
						if err := m.SetMatchTypes(true); err != nil {
							b.Fatal(err)
						}
					}
					path := filepath.Join(b.TempDir(), "docs.mice")
					if err := BuildStore(m, docs, path, "bench", nil); err != nil {
						b.Fatal(err)
					}
					st, err := OpenStore(path)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						if _, err := RerankStore(m, st, queries, run, depth, nil); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(depth*b.N)/b.Elapsed().Seconds(), "pairs/s")
					b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/query")
				})
			}
		}
	}
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}
