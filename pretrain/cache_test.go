package pretrain

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/tokenize"
)

// FuzzReadCache: any bytes under the right key end in an error or in a
// stream whose offsets and ids are consistent.
func FuzzReadCache(f *testing.F) {
	var key [32]byte
	key[3] = 1
	dir := f.TempDir()
	s := &TokenStream{IDs: []int32{5, 6, 7}, WordStart: []bool{true, false, true}, DocStart: []int64{0, 2, 3}, VocabSize: 10}
	p := filepath.Join(dir, "seed.bin")
	if err := writeCache(p, key, s); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	f.Add(b)
	f.Add(b[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.bin")
		os.WriteFile(path, data, 0o644)
		got, err := readCache(path, key)
		if err != nil {
			return
		}
		n := int64(len(got.IDs))
		if len(got.WordStart) != len(got.IDs) || got.DocStart[0] != 0 || got.DocStart[len(got.DocStart)-1] != n {
			t.Fatalf("inconsistent stream %+v", got)
		}
		for _, id := range got.IDs {
			if id < 0 || int(id) >= got.VocabSize {
				t.Fatalf("id %d outside vocabulary %d", id, got.VocabSize)
			}
		}
	})
}

// TestScifactCache tokenises BEIR scifact (5,183 abstracts) with a 30k
// vocabulary trained on it, then again from the cache; it logs both times.
// Skipped in -short mode or without the shared collections.
func TestScifactCache(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	path := "../../shared/data/scifact"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("collection %s not found: %v", path, err)
	}
	ctx := context.Background()
	vocab, err := tokenize.TrainWordPiece(slices.Values(scifactContents(t, path)), 30000, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := tokenize.FromVocab(vocab, true)
	cache := t.TempDir()
	t0 := time.Now()
	s1, err := TokenizeCorpus(ctx, []string{path}, tok, cache, DataOptions{Progress: "off"})
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Since(t0)
	t0 = time.Now()
	s2, err := TokenizeCorpus(ctx, []string{path}, tok, cache, DataOptions{Progress: "off"})
	if err != nil {
		t.Fatal(err)
	}
	d2 := time.Since(t0)
	if s1.Reused || !s2.Reused || !slices.Equal(s1.IDs, s2.IDs) {
		t.Fatalf("reuse %v/%v, equal %v", s1.Reused, s2.Reused, slices.Equal(s1.IDs, s2.IDs))
	}
	t.Logf("scifact: %d docs, %d tokens; tokenised in %v (%.0f tokens/s), from cache in %v",
		s1.Docs(), len(s1.IDs), d1.Round(time.Millisecond), float64(len(s1.IDs))/d1.Seconds(), d2.Round(time.Millisecond))
	if s1.Docs() != 5183 {
		t.Errorf("%d docs, want 5183", s1.Docs())
	}
}

func scifactContents(t *testing.T, path string) []string {
	r, err := corpora.OpenCorpus(path, corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var texts []string
	for {
		d, err := r.Next()
		if err == io.EOF {
			return texts
		}
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, d.Content())
	}
}
