package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestExplainMatchesBruteForce: for random corpora (array and bitmap
// containers, 8- and 12-bit impacts) and random queries, Explain of every
// document of the exhaustive top 50 and of random documents gives exactly
// the terms the document shares with the query, the score Search gives it,
// shares that add up to that score, query weights within 1/65535 of the
// largest and document weights equal to the quantised source weights,
// sorted by decreasing share.
func TestExplainMatchesBruteForce(t *testing.T) {
	for ci, c := range []struct{ n, v, maxLen, bits int }{{300, 40, 10, 8}, {70000, 60, 5, 12}} {
		t.Run(fmt.Sprintf("docs=%d/bits=%d", c.n, c.bits), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 17))
			docs := randomCorpus(rng, c.n, c.v, c.maxLen)
			r := buildTest(t, docs, Options{QuantBits: c.bits, NumTerms: c.v})
			m := r.Meta()
			for range 20 {
				q := randomQuery(rng, c.v, 1+rng.IntN(12))
				qsum := map[uint32]float64{}
				qmax := 0.0
				for _, tw := range q {
					qsum[tw.Term] += float64(tw.Weight)
				}
				for _, w := range qsum {
					qmax = max(qmax, w)
				}
				hits, err := r.Search(q, 50, Exhaustive)
				if err != nil {
					t.Fatal(err)
				}
				score := map[uint32]float64{}
				var ds []uint32
				for _, h := range hits {
					score[h.Doc] = h.Score
					ds = append(ds, h.Doc)
				}
				for range 10 {
					ds = append(ds, uint32(rng.IntN(c.n)))
				}
				for _, d := range ds {
					got, terms, err := r.Explain(q, d)
					if err != nil {
						t.Fatal(err)
					}
					if s, ok := score[d]; ok && got != s {
						t.Errorf("doc %d: explain score %v, search %v", d, got, s)
					}
					want := map[uint32]int{}
					for _, tw := range docs[d].vec {
						imp, _ := quantize(tw.Weight, m.Scale, m.maxImpact())
						if qsum[tw.Term] > 0 && imp > 0 && math.Round(qsum[tw.Term]/qmax*queryWeightMax) >= 1 {
							want[tw.Term] = imp
						}
					}
					if len(terms) != len(want) {
						t.Fatalf("doc %d: %d terms %v, want %v", d, len(terms), terms, want)
					}
					sum := 0.0
					for i, ts := range terms {
						if want[ts.Term] != ts.Impact || ts.Doc != float64(ts.Impact)*m.Scale {
							t.Errorf("doc %d term %d: impact %d (doc weight %v), want %d", d, ts.Term, ts.Impact, ts.Doc, want[ts.Term])
						}
						if math.Abs(ts.Query-qsum[ts.Term]) > qmax/queryWeightMax {
							t.Errorf("doc %d term %d: query weight %v, given %v", d, ts.Term, ts.Query, qsum[ts.Term])
						}
						if math.Abs(ts.Score-ts.Query*ts.Doc) > 1e-12*math.Abs(ts.Score) {
							t.Errorf("doc %d term %d: share %v ≠ %v·%v", d, ts.Term, ts.Score, ts.Query, ts.Doc)
						}
						if i > 0 && ts.Score > terms[i-1].Score {
							t.Errorf("doc %d: shares not sorted: %v", d, terms)
						}
						sum += ts.Score
					}
					if math.Abs(sum-got) > 1e-9*math.Max(1, got) {
						t.Errorf("doc %d: shares add up to %v, score %v", d, sum, got)
					}
				}
			}
			if _, _, err := r.Explain([]TermWeight{{Term: 0, Weight: 1}}, uint32(c.n)); err == nil {
				t.Error("explain of a doc past the end: no error")
			}
			for _, d := range []int{0, c.n / 2, c.n - 1} {
				if got, ok := r.DocNum(docs[d].id); !ok || got != uint32(d) {
					t.Errorf("DocNum(%q) = %d, %v", docs[d].id, got, ok)
				}
			}
			if _, ok := r.DocNum("nosuch"); ok {
				t.Error("DocNum of an unknown id")
			}
		})
	}
}
