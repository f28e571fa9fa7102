package impact_test

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/registry"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/bm25/impact"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/index"
)

func docsFrom(docs []corpora.Doc) func() (corpora.Doc, error) {
	i := 0
	return func() (corpora.Doc, error) {
		if i == len(docs) {
			return corpora.Doc{}, io.EOF
		}
		i++
		return docs[i-1], nil
	}
}

// TestImpactMatchesBruteForce: the engine's BM25 ranking is exactly the
// brute-force ranking of every document by Σ q · impact, where impacts are
// this test's own BM25 weights (own tf/df/dl counting over the analysed
// text) quantised with the index's scale, for every algorithm; and the
// reported scores are the float BM25 scores up to quantisation.
func TestImpactMatchesBruteForce(t *testing.T) {
	words := []string{"apple", "apples", "banana", "orchard", "orchards", "the", "a", "of", "pie", "recipe",
		"tropical", "autumn", "running", "runs", "cell", "cells", "protein", "gene", "genes", "cancer",
		"study", "studies", "mouse", "mice", "brain", "is", "and", "with"}
	rng := rand.New(rand.NewPCG(7, 7))
	var docs []corpora.Doc
	for i := range 300 {
		n := 1 + rng.IntN(30)
		var text []byte
		for range n {
			text = append(text, words[int(float64(len(words))*rng.Float64()*rng.Float64())]...)
			text = append(text, ' ')
		}
		docs = append(docs, corpora.Doc{ID: fmt.Sprintf("d%03d", i), Title: words[rng.IntN(len(words))], Text: string(text)})
	}
	docs = append(docs, corpora.Doc{ID: "stop", Text: "the a of and"}) // no indexable term
	const k1, b = 0.9, 0.4
	dir := filepath.Join(t.TempDir(), "bm25")
	m, st, err := impact.Build(dir, docsFrom(docs), impact.Options{K1: k1, B: b})
	if err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if !impact.IsIndex(r) || m.NumDocs != len(docs) || st.Docs != len(docs) {
		t.Fatalf("IsImpactIndex %v, %d docs in META, %d in stats, want %d", impact.IsIndex(r), m.NumDocs, st.Docs, len(docs))
	}

	// Own counting.
	an, err := registry.NewCache().AnalyzerNamed(en.AnalyzerName)
	if err != nil {
		t.Fatal(err)
	}
	tfs := make([]map[string]int, len(docs))
	df := map[string]int{}
	dl := make([]int, len(docs))
	total := 0
	for i, d := range docs {
		tfs[i] = map[string]int{}
		for _, tok := range an.Analyze([]byte(d.Content())) {
			tfs[i][string(tok.Term)]++
			dl[i]++
		}
		total += dl[i]
		for w := range tfs[i] {
			df[w]++
		}
	}
	N, avgdl := float64(len(docs)), float64(total)/float64(len(docs))
	if st.Tokens != int64(total) || st.Terms != len(df) || math.Abs(st.AvgDL-avgdl) > 1e-12 {
		t.Fatalf("stats %+v, want tokens %d terms %d avgdl %g", st, total, len(df), avgdl)
	}
	weight := func(d int, w string) float64 {
		tf := float64(tfs[d][w])
		idf := math.Log(1 + (N-float64(df[w])+0.5)/(float64(df[w])+0.5))
		return idf * tf / (tf + k1*(1-b+b*float64(dl[d])/avgdl))
	}
	enc, err := impact.NewQueryEncoder(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, qtext := range []string{"apple pie recipe", "the mice and the mouse", "cancer cells cancer genes study", "orchards", "of the", "zebra apple"} {
		qtf := map[string]int{}
		for _, tok := range an.Analyze([]byte(qtext)) {
			if df[string(tok.Term)] > 0 {
				qtf[string(tok.Term)]++
			}
		}
		maxq := 0
		for _, c := range qtf {
			maxq = max(maxq, c)
		}
		type scored struct {
			doc   int
			raw   uint64
			float float64
		}
		var want []scored
		for d := range docs {
			var raw uint64
			var f float64
			for w, c := range qtf {
				if tfs[d][w] == 0 {
					continue
				}
				imp := uint64(math.Round(weight(d, w) / m.Scale))
				raw += uint64(math.Round(float64(c)/float64(maxq)*65535)) * imp
				f += float64(c) * weight(d, w)
			}
			if raw > 0 {
				want = append(want, scored{d, raw, f})
			}
		}
		slices.SortFunc(want, func(a, b scored) int {
			if a.raw != b.raw {
				if a.raw > b.raw {
					return -1
				}
				return 1
			}
			return a.doc - b.doc
		})
		want = want[:min(len(want), 20)]
		vec, err := enc.Encode(qtext)
		if err != nil {
			t.Fatal(err)
		}
		for _, alg := range index.Algorithms {
			hits, err := r.Search(vec, 20, alg)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != len(want) {
				t.Fatalf("%q %v: %d hits, want %d", qtext, alg, len(hits), len(want))
			}
			for i, h := range hits {
				if int(h.Doc) != want[i].doc || h.Raw != want[i].raw {
					t.Fatalf("%q %v: hit %d is doc %d raw %d, want doc %d raw %d", qtext, alg, i, h.Doc, h.Raw, want[i].doc, want[i].raw)
				}
				// quantisation error: ≤ half a unit per posting per query occurrence
				if tol := float64(len(qtf)*maxq)*m.Scale + 1e-9; math.Abs(h.Score-want[i].float) > tol {
					t.Errorf("%q: doc %d score %g, float BM25 %g (tolerance %g)", qtext, h.Doc, h.Score, want[i].float, tol)
				}
			}
		}
	}
}

// TestImpactSciFact: on SciFact's test queries the engine's BM25 run has the
// nDCG@10 of package bm25's (exact float scoring over bleve) within 0.01
// (8-bit impacts cost a little).
func TestImpactSciFact(t *testing.T) {
	data := filepath.Join("..", "..", "shared", "data", "scifact")
	if _, err := os.Stat(filepath.Join(data, "corpus.jsonl")); err != nil {
		t.Skipf("needs the SciFact collection in %s: %v", data, err)
	}
	if testing.Short() {
		t.Skip("builds two SciFact indexes; skipped with -short")
	}
	qrels, err := corpora.ReadQrels(filepath.Join(data, "qrels", "test.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := corpora.ReadQueries(filepath.Join(data, "queries.jsonl"), corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	corpus := filepath.Join(data, "corpus.jsonl")
	open := func() func() (corpora.Doc, error) {
		cr, err := corpora.OpenCorpus(corpus, corpora.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cr.Close() })
		return cr.Next
	}
	p := bm25.Params{K1: 0.9, B: 0.4}
	bdir := filepath.Join(t.TempDir(), "bleve")
	if _, err := bm25.Build(bdir, open(), bm25.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	bx, err := bm25.Open(bdir)
	if err != nil {
		t.Fatal(err)
	}
	defer bx.Close()
	bs, err := bx.NewSearcher(p)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	edir := filepath.Join(t.TempDir(), "engine")
	if _, _, err := impact.Build(edir, open(), impact.Options{K1: p.K1, B: p.B}); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(edir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	enc, err := impact.NewQueryEncoder(r)
	if err != nil {
		t.Fatal(err)
	}
	ref, ours := corpora.Run{}, corpora.Run{}
	for _, q := range queries {
		if qrels[q.ID] == nil {
			continue
		}
		hits, err := bs.Search(q.Text, 100)
		if err != nil {
			t.Fatal(err)
		}
		ref[q.ID] = hits
		vec, _ := enc.Encode(q.Text)
		eh, err := r.Search(vec, 100, index.MaxScore)
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range eh {
			ours[q.ID] = append(ours[q.ID], corpora.Hit{DocID: r.DocID(h.Doc), Score: h.Score, Rank: i + 1})
		}
	}
	ms, err := eval.ParseMeasures("ndcg_cut.10")
	if err != nil {
		t.Fatal(err)
	}
	score := func(run corpora.Run) float64 {
		res, err := eval.Evaluate(qrels, run, ms, eval.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res.All[0]
	}
	a, b := score(ref), score(ours)
	t.Logf("SciFact test (%d queries) nDCG@10: package bm25 %.4f, engine (8-bit impacts) %.4f, difference %+.4f", len(ref), a, b, b-a)
	if math.Abs(a-b) > 0.01 || a < 0.5 {
		t.Errorf("nDCG@10 engine %.4f vs bm25 %.4f: want within 0.01 (and bm25 ≥ 0.5)", b, a)
	}
}
