package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkRerankDepth100 re-ranks 100 documents of one query with the
// cross-encoder and with MICE of the same shape, the document states of
// MICE stored beforehand (their cost is not timed): one op = one query.
// Query 16 tokens, documents 128 (padded lengths); batches of 25 pairs.
func BenchmarkRerankDepth100(b *testing.B) {
	shapes := []struct {
		name        string
		C, L, NH, F int
	}{{"tiny", 128, 4, 4, 512}, {"medium", 384, 6, 12, 1536}}
	const Tq, Td, depth, batch = 16, 128, 100, 25
	for _, sh := range shapes {
		cfg := BERTConfig(1000, sh.C, sh.L, sh.NH, sh.F, 512)
		c, err := NewClassifier(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		ids := func(n int) []int32 {
			s := make([]int32, n)
			for i := range s {
				s[i] = int32(5 + rng.IntN(995))
			}
			return s
		}
		ones := func(n int) []float32 {
			m := make([]float32, n)
			for i := range m {
				m[i] = 1
			}
			return m
		}
		b.Run(fmt.Sprintf("model=%s/arch=cross-encoder", sh.name), func(b *testing.B) {
			T := Tq + Td
			bt := Batch{B: batch, T: T, InputIDs: ids(batch * T), TypeIDs: make([]int32, batch*T), Mask: ones(batch * T)}
			for i := range bt.TypeIDs {
				if i%T >= Tq {
					bt.TypeIDs[i] = 1
				}
			}
			p := c.NewScorePass()
			b.ResetTimer()
			for range b.N {
				for range depth / batch {
					p.Score(bt)
				}
			}
			b.ReportMetric(float64(depth*b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
		L := sh.L
		variants := map[string]MICEOptions{
			"mice-light":      {Fusion: L / 2, Interact: seq(L/2, L), Light: true},
			"mice-light-drop": {Fusion: L / 2, Interact: []int{L - 1}, Light: true},
		}
		for _, vn := range []string{"mice-light", "mice-light-drop"} {
			o := variants[vn]
			b.Run(fmt.Sprintf("model=%s/arch=%s", sh.name, vn), func(b *testing.B) {
				p := c.NewMICEPass()
				dmask := ones(batch * Td)
				var stored [][]float32
				for range depth / batch {
					stored = append(stored, p.DocStates(o, ids(batch*Td), dmask, batch, Td, Tq))
				}
				qids, qmask := ids(Tq), ones(Tq)
				xq := make([]float32, batch*Tq*sh.C)
				qm := ones(batch * Tq)
				b.ResetTimer()
				for range b.N {
					q := p.QueryStates(o, qids, nil, qmask, 1, Tq)
					for _, xd := range stored {
						for i := range batch {
							copy(xq[i*Tq*sh.C:], q)
						}
						p.Score(o, xq, qm, Tq, xd, dmask, Td, batch)
					}
				}
				b.ReportMetric(float64(depth*b.N)/b.Elapsed().Seconds(), "pairs/s")
			})
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
