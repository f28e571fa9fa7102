package splade

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

func TestSplitSentences(t *testing.T) {
	got := splitSentences(`The cat sat. "Why?" she asked! It rained (a lot.) Then 3.5 mm fell`)
	want := []string{"The cat sat.", `"Why?"`, "she asked!", "It rained (a lot.)", "Then 3.5 mm fell"}
	if !slices.Equal(got, want) {
		t.Errorf("splitSentences = %q, want %q", got, want)
	}
}

func ictDocs(n int) []corpora.Doc {
	var docs []corpora.Doc
	for i := range n {
		docs = append(docs, corpora.Doc{ID: fmt.Sprintf("d%d", i), Title: fmt.Sprintf("title %d", i),
			Text: fmt.Sprintf("Sentence one of document %d is here. The second sentence of document %d follows it. A third sentence closes document %d now.", i, i, i)})
	}
	return docs
}

// TestICTPairs: one pair per eligible document, the query a sentence of
// it, the positive the rest (the sentence removed unless kept), and a
// document whose drawn sentence holds an excluded (test) query yields no
// pair (with seed 1, document 7 draws that sentence).
func TestICTPairs(t *testing.T) {
	docs := append(ictDocs(20), corpora.Doc{ID: "short", Text: "Too short. Two sentences."})
	set := ICTPairs(docs, ICTOptions{KeepProb: 0, Seed: 1, MinWords: 3,
		Exclude: []string{"  The SECOND sentence of   document 7 "}})
	if len(set.Queries) != 19 || set.Excluded != 1 {
		t.Fatalf("%d pairs, %d excluded; want 19 (20 documents, one leaking, one too short) and 1", len(set.Queries), set.Excluded)
	}
	for _, q := range set.Queries {
		if strings.Contains(strings.ToLower(q.Text), "second sentence of document 7") {
			t.Errorf("query %q leaks an excluded text", q.Text)
		}
		doc := strings.TrimPrefix(q.ID, "ict-")
		if set.Qrels[q.ID][doc] != 1 {
			t.Errorf("query %s: qrels %v", q.ID, set.Qrels[q.ID])
		}
		pos := set.Positives[PositiveID(doc)]
		if strings.Contains(pos, q.Text) || !strings.HasPrefix(pos, "title ") {
			t.Errorf("positive of %s %q: holds the query %q, or lost its title", doc, pos, q.Text)
		}
	}
	capped := ICTPairs(docs, ICTOptions{MaxPairs: 5, Seed: 1, MinWords: 3})
	if len(capped.Queries) != 5 {
		t.Errorf("MaxPairs 5 gave %d pairs", len(capped.Queries))
	}
}

// TestUnsupSourceExcludesTestQueries builds pairs from a BEIR directory
// whose queries.jsonl holds a sentence of the corpus: that sentence never
// becomes a training query, and every triple's negatives are other
// documents of the corpus with their full text.
func TestUnsupSourceExcludesTestQueries(t *testing.T) {
	dir := t.TempDir()
	var corpus strings.Builder
	for _, d := range ictDocs(30) {
		fmt.Fprintf(&corpus, "{\"_id\": %q, \"title\": %q, \"text\": %q}\n", d.ID, d.Title, d.Text)
	}
	leak := "A third sentence closes document 4 now."
	write := func(name, body string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("corpus.jsonl", corpus.String())
	write("queries.jsonl", fmt.Sprintf("{\"_id\": \"t1\", \"text\": %q}\n", leak))
	write("qrels/test.tsv", "query-id\tcorpus-id\tscore\nt1\td4\t1\n")
	mo := Mining{K1: 0.9, B: 0.4, Negatives: 2, Depth: 10, UnsupPairs: 10000} // config's defaults but for the mining
	// Each document draws one of its three sentences: try seeds until
	// document 4 draws the one that is a test query.
	for seed := uint64(1); seed < 40; seed++ {
		mo.Seed = seed
		src, err := UnsupSource(context.Background(), mo, dir, nil, t.TempDir(), corpora.Options{}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range src.Triples {
			if q := src.Texts.Queries[tr.QID]; strings.Contains(q, "closes document 4 now") {
				t.Fatalf("seed %d: test query %q became training query %s", seed, leak, tr.QID)
			}
			for _, n := range tr.NegIDs {
				if n == strings.TrimPrefix(tr.QID, "ict-") || !strings.HasPrefix(src.Texts.Docs[n], "title ") {
					t.Fatalf("seed %d: triple %s negative %s (text %q)", seed, tr.QID, n, src.Texts.Docs[n])
				}
			}
			if src.Texts.Docs[tr.PosID] == "" {
				t.Fatalf("seed %d: positive %q has no text", seed, tr.PosID)
			}
		}
		if len(src.Triples) < 29 {
			t.Fatalf("seed %d: %d triples from 30 documents", seed, len(src.Triples))
		}
		if len(src.Triples) == 29 {
			return // document 4's pair was the excluded one
		}
	}
	t.Fatal("no seed made document 4 draw the test query's sentence")
}
