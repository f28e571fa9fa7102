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
// OpenBLAS thread count (nn's head always uses its two workers when BLAS
// has ≥ 2 threads). Reports docs/s and tokens/s.
func BenchmarkEncodeDocs(b *testing.B) {
	for _, threads := range []int{2, 1} {
		for _, bs := range []int{8, 32, 64} {
			b.Run(fmt.Sprintf("model=mini/threads=%d/batch=%d/len=128", threads, bs), func(b *testing.B) {
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
