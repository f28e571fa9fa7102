package splade

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// benchEncoder is a random BERT-mini (L4, H256, 4 heads, FF 1024) with a
// synthetic 30 522-token word vocabulary, and texts of n words each drawn
// from it (one token per word).
func benchEncoder(b *testing.B, words, docs int) (*Encoder, []string) {
	b.Helper()
	const V = 30522
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for i := len(vocab); i < V; i++ {
		vocab = append(vocab, "w"+strconv.Itoa(i))
	}
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		b.Fatal(err)
	}
	m, err := nn.NewModel(nn.BERTConfig(V, 256, 4, 4, 1024, 512), 1)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := NewEncoder(m, tok, 256, 32, 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	texts := make([]string, docs)
	for i := range texts {
		n := words/2 + rng.IntN(words) // lengths vary: words/2 … 3·words/2
		w := make([]string, n)
		for j := range w {
			w[j] = vocab[5+rng.IntN(V-5)]
		}
		texts[i] = strings.Join(w, " ")
	}
	return enc, texts
}

// BenchmarkEncodeDocs measures corpus encoding with a BERT-mini-shaped
// model: documents of ~128 tokens (64…192), 256 per op, by batch size and
// worker count (nn.SetThreads; the head splits over the same workers).
// Reports docs/s and tokens/s.
//
// path=forward runs only nn.SpladeEncode on the same length-bucketed,
// pre-tokenised, pre-padded batches (batch 32, two BLAS threads), so the
// difference to path=encoder is the encoder's own cost (tokenisation,
// bucketing, sparsification), measured side by side; path=overhead times
// that cost alone (the forward replaced by a fixed pooled matrix in which
// half the weights are positive, as in a random model).
func BenchmarkEncodeDocs(b *testing.B) {
	b.Run("model=mini/batch=32/len=128/path=overhead", func(b *testing.B) {
		enc, texts := benchEncoder(b, 128, 256)
		V := enc.VocabSize()
		out := make([]float32, 32*V)
		for i := range out {
			if i%2 == 0 {
				out[i] = float32(i%7) + 0.5
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			var seqs [][]int32
			var lengths []int
			for _, e := range enc.Tok.EncodeBatch(texts, enc.MaxLen) {
				seqs = append(seqs, e.IDs)
				lengths = append(lengths, len(e.IDs))
			}
			buckets, _ := LengthBatches(lengths, 32, 0)
			for _, idx := range buckets {
				part := make([][]int32, len(idx))
				for k, i := range idx {
					part[k] = seqs[i]
				}
				Pad(part, 0)
				for k := range idx {
					Sparsify(out[k*V:(k+1)*V], 0)
				}
			}
		}
		b.ReportMetric(float64(len(texts))*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	})
	b.Run("model=mini/threads=2/batch=32/len=128/path=forward", func(b *testing.B) {
		enc, texts := benchEncoder(b, 128, 256)
		var seqs [][]int32
		var lengths []int
		for _, e := range enc.Tok.EncodeBatch(texts, enc.MaxLen) {
			seqs = append(seqs, e.IDs)
			lengths = append(lengths, len(e.IDs))
		}
		buckets, _ := LengthBatches(lengths, 32, 0)
		var batches []nn.Batch
		tokens := 0
		for _, idx := range buckets {
			var part [][]int32
			for _, i := range idx {
				part = append(part, seqs[i])
				tokens += len(seqs[i])
			}
			pb, _ := Pad(part, 0)
			batches = append(batches, pb)
		}
		V := enc.VocabSize()
		out, arg := make([]float32, 32*V), make([]int32, 32*V)
		b.ReportAllocs()
		for b.Loop() {
			for _, pb := range batches {
				nn.SpladeEncode(enc.Model, pb, out, arg)
			}
		}
		s := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(float64(len(texts))/s, "docs/s")
		b.ReportMetric(float64(tokens)/s, "tokens/s")
	})
	for _, threads := range []int{2, 1} {
		for _, bs := range []int{8, 32, 64} {
			b.Run(fmt.Sprintf("model=mini/threads=%d/batch=%d/len=128/path=encoder", threads, bs), func(b *testing.B) {
				enc, texts := benchEncoder(b, 128, 256)
				enc.BatchSize = bs
				nn.SetThreads(threads)
				defer nn.SetThreads(2)
				tokens := 0
				for _, e := range enc.Tok.EncodeBatch(texts, enc.MaxLen) {
					tokens += len(e.IDs)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := enc.EncodeDocs(texts); err != nil {
						b.Fatal(err)
					}
				}
				s := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(len(texts))/s, "docs/s")
				b.ReportMetric(float64(tokens)/s, "tokens/s")
			})
		}
	}
}
