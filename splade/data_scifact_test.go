package splade

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
)

// TestMineSciFact mines BM25 hard negatives from SciFact's train qrels with
// the real BM25 baseline and checks every triple against the qrels and a
// second, independent search. It needs ../shared/data/scifact and builds a
// BM25 index of its 5 183 documents (several seconds), so -short skips it.
func TestMineSciFact(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data", "scifact")
	if _, err := os.Stat(filepath.Join(dir, "qrels", "train.tsv")); err != nil {
		t.Skipf("SciFact not found in %s (../shared/data/scifact from the repository root)", dir)
	}
	if testing.Short() {
		t.Skip("builds a BM25 index of SciFact; skipped with -short")
	}
	start := time.Now()
	idxDir := filepath.Join(t.TempDir(), "bm25")
	if _, err := bm25.BuildCorpus(idxDir, filepath.Join(dir, "corpus.jsonl"), corpora.Options{}, nil); err != nil {
		t.Fatal(err)
	}
	idx, err := bm25.Open(idxDir)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	s, err := idx.NewSearcher(bm25.Params{K1: 0.9, B: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	built := time.Since(start)

	const negs, depth = 4, 50
	var st MineStats
	cache := filepath.Join(t.TempDir(), "scifact-train.tsv")
	start = time.Now()
	ts, hit, err := MineCached(context.Background(), cache, "bm25 k1=0.9 b=0.4", dir, "train", s, negs, depth, 1, MineOptions{Stats: &st})
	if err != nil || hit {
		t.Fatalf("hit %v, err %v", hit, err)
	}
	t.Logf("index built in %v, mined in %v: %+v", built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), st)

	qrels, err := corpora.BEIR{Dir: dir}.Qrels("train")
	if err != nil {
		t.Fatal(err)
	}
	queries, err := corpora.BEIR{Dir: dir}.Queries(corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	text := map[string]string{}
	for _, q := range queries {
		text[q.ID] = q.Text
	}
	positives := 0
	for _, docs := range qrels {
		for _, g := range docs {
			if g > 0 {
				positives++
			}
		}
	}
	// Every judged positive yields a triple unless its query was skipped
	// or it is not in the corpus: the counts must reconcile.
	if st.Triples != len(ts) || st.Queries != len(qrels) || st.Triples+st.PosNotInCorpus > positives {
		t.Errorf("stats %+v do not reconcile with %d triples, %d judged queries, %d positives", st, len(ts), len(qrels), positives)
	}
	if st.Triples < positives/2 {
		t.Errorf("only %d triples from %d positives", st.Triples, positives)
	}
	top := map[string]map[string]bool{}
	for _, tr := range ts {
		if qrels[tr.QID][tr.PosID] <= 0 {
			t.Fatalf("positive %s of %s is not judged relevant", tr.PosID, tr.QID)
		}
		if top[tr.QID] == nil {
			hits, err := s.Search(text[tr.QID], depth)
			if err != nil {
				t.Fatal(err)
			}
			top[tr.QID] = map[string]bool{}
			for _, h := range hits {
				top[tr.QID][h.DocID] = true
			}
		}
		if len(tr.NegIDs) == 0 || len(tr.NegIDs) > negs {
			t.Fatalf("%d negatives in %+v", len(tr.NegIDs), tr)
		}
		for _, n := range tr.NegIDs {
			if qrels[tr.QID][n] > 0 {
				t.Fatalf("negative %s of %s is a judged positive", n, tr.QID)
			}
			if !top[tr.QID][n] {
				t.Fatalf("negative %s of %s is not in the top %d", n, tr.QID, depth)
			}
		}
	}
	back, hit, err := MineCached(context.Background(), cache, "bm25 k1=0.9 b=0.4", dir, "train", s, negs, depth, 1, MineOptions{})
	if err != nil || !hit || len(back) != len(ts) {
		t.Errorf("cache: hit %v, %d triples, err %v", hit, len(back), err)
	}
}
