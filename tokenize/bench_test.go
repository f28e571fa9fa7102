package tokenize

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// scifactTexts returns up to n documents (title + text) of BEIR scifact, or
// skips when the shared collections are absent.
func scifactTexts(b testing.TB, n int) []string {
	path := "../../shared/data/scifact/corpus.jsonl"
	f, err := os.Open(path)
	if err != nil {
		b.Skipf("collection %s not found: %v", path, err)
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() && len(texts) < n {
		var d struct{ Title, Text string }
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			b.Fatal(err)
		}
		texts = append(texts, d.Title+" "+d.Text)
	}
	return texts
}

// BenchmarkEncode measures tokens/s of Encode (one goroutine) and
// EncodeBatch (two) on scifact documents with a 30k vocabulary trained on
// them.
func BenchmarkEncode(b *testing.B) {
	texts := scifactTexts(b, 1000)
	vocab, err := TrainWordPiece(slices.Values(texts), 30000, 2, true)
	if err != nil {
		b.Fatal(err)
	}
	tk, err := FromVocab(vocab, true)
	if err != nil {
		b.Fatal(err)
	}
	texts = texts[:200]
	b.Run("mode=single/docs=200", func(b *testing.B) {
		b.ReportAllocs()
		toks := 0
		for b.Loop() {
			for _, s := range texts {
				toks += len(tk.Encode(s, 0).IDs)
			}
		}
		b.ReportMetric(float64(toks)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("mode=batch2/docs=200", func(b *testing.B) {
		b.ReportAllocs()
		toks := 0
		for b.Loop() {
			for _, e := range tk.EncodeBatch(texts, 0) {
				toks += len(e.IDs)
			}
		}
		b.ReportMetric(float64(toks)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// BenchmarkTrain measures WordPiece training on scifact's first 2000
// documents (~3 MB).
func BenchmarkTrain(b *testing.B) {
	texts := scifactTexts(b, 2000)
	size := 0
	for _, s := range texts {
		size += len(s)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TrainWordPiece(slices.Values(texts), 30000, 2, true); err != nil {
			b.Fatal(err)
		}
	}
}
