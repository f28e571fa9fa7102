package splade

import (
	"fmt"
	"testing"
)

// BenchmarkTrainStep measures one SPLADE training step with a
// BERT-mini-shaped model: B triples, one hard negative, queries of ~16
// words and documents of ~128 (capped at 32 and 256 tokens), all
// parameters or P_task only (k = 2). Reports triples/s.
func BenchmarkTrainStep(b *testing.B) {
	for _, params := range []string{"all", "task"} {
		for _, B := range []int{8, 32} {
			b.Run(fmt.Sprintf("model=mini/params=%s/batch=%d/len=128", params, B), func(b *testing.B) {
				enc, docs := benchEncoder(b, 128, 4*B)
				_, queries := benchEncoder(b, 16, 2*B)
				src := Source{Name: "bench", Texts: &Texts{Queries: map[string]string{}, Docs: map[string]string{}}}
				for i, q := range queries {
					qid, pos, neg := fmt.Sprint("q", i), fmt.Sprint("d", 2*i), fmt.Sprint("d", 2*i+1)
					src.Texts.Queries[qid] = q
					src.Texts.Docs[pos], src.Texts.Docs[neg] = docs[2*i], docs[2*i+1]
					src.Triples = append(src.Triples, Triple{QID: qid, PosID: pos, NegIDs: []string{neg}})
				}
				opt := TrainOptions{Weights: Weights{InfoNCE: 1, FLOPSQ: 0.01, FLOPSD: 0.008}, LR: 5e-5, MaxGradNorm: 1,
					Steps: 1 << 30, BatchSize: B, NNeg: 1, QueryMaxLen: 32, DocMaxLen: 256, Seed: 1,
					TrainParams: params, DomainLayers: 2, Dropout: true}
				tr, err := NewTrainer(enc.Model, enc.Tok, []Source{src}, nil, opt, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := tr.Step(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(B)*float64(b.N)/b.Elapsed().Seconds(), "triples/s")
			})
		}
	}
}
