package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestIndexBuildBM25Search: "index build-bm25" then "search --queries"
// retrieves, for every query, the documents "bm25 search" retrieves, in
// the same order (the tiny collection has no tied scores).
func TestIndexBuildBM25Search(t *testing.T) {
	tiny := filepath.Join("..", "..", "bm25", "testdata", "tiny")
	dir := t.TempDir()
	idx := filepath.Join(dir, "engine")
	out, _, err := bm25CLI(t, nil, "index", "build-bm25", "--corpus", tiny, "--out", idx, "--k1", "1.2", "--b", "0.75")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "indexed 4 documents (0 skipped)") || !strings.Contains(out, "k1 1.2 b 0.75") {
		t.Errorf("build-bm25 output %q", out)
	}
	ours := filepath.Join(dir, "ours.trec")
	for _, alg := range []string{"exhaustive", "maxscore", "blockmax", "taat"} {
		if _, _, err := bm25CLI(t, nil, "search", "--index", idx, "--queries", tiny, "--run", ours, "-k", "10", "--algorithm", alg); err != nil {
			t.Fatal(err)
		}
		bidx := filepath.Join(dir, "bleve")
		if _, _, err := bm25CLI(t, nil, "bm25", "index", "--corpus", tiny, "--out", bidx); err != nil {
			t.Fatal(err)
		}
		ref := filepath.Join(dir, "ref.trec")
		if _, _, err := bm25CLI(t, nil, "bm25", "search", "--index", bidx, "--queries", tiny, "--run", ref, "-k", "10", "--k1", "1.2", "--b", "0.75"); err != nil {
			t.Fatal(err)
		}
		a, err := corpora.ReadRun(ours)
		if err != nil {
			t.Fatal(err)
		}
		b, err := corpora.ReadRun(ref)
		if err != nil {
			t.Fatal(err)
		}
		docs := func(hs []corpora.Hit) []string {
			var out []string
			for _, h := range hs {
				out = append(out, h.DocID)
			}
			return out
		}
		if len(b) == 0 {
			t.Fatal("reference run is empty")
		}
		for qid, hs := range b {
			if !slices.Equal(docs(a[qid]), docs(hs)) {
				t.Errorf("%s: query %s: engine %v, bm25 %v", alg, qid, docs(a[qid]), docs(hs))
			}
		}
		for qid := range a {
			if b[qid] == nil {
				t.Errorf("%s: query %s retrieved by the engine only", alg, qid)
			}
		}
	}
}

// TestSearchQrelsFilter: "search --qrels" searches only the judged queries
// (q1–q3 in test.tsv, not train's q4), in the order of the queries file.
func TestSearchQrelsFilter(t *testing.T) {
	tiny := filepath.Join("..", "..", "bm25", "testdata", "tiny")
	dir := t.TempDir()
	idx := filepath.Join(dir, "engine")
	if _, _, err := bm25CLI(t, nil, "index", "build-bm25", "--corpus", tiny, "--out", idx); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run.trec")
	for _, c := range []struct {
		qrels string
		want  []string
	}{
		{"", []string{"q1", "q3", "q4"}}, // q2 is all stop words: no hits, no lines
		{filepath.Join(tiny, "qrels", "test.tsv"), []string{"q1", "q3"}},
	} {
		args := []string{"search", "--index", idx, "--queries", tiny, "--run", run, "-k", "10"}
		if c.qrels != "" {
			args = append(args, "--qrels", c.qrels)
		}
		if _, _, err := bm25CLI(t, nil, args...); err != nil {
			t.Fatal(err)
		}
		got, err := corpora.ReadRun(run)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for q := range got {
			ids = append(ids, q)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, c.want) {
			t.Errorf("--qrels %q: queries %v, want %v", c.qrels, ids, c.want)
		}
	}
	if _, _, err := bm25CLI(t, nil, "search", "--index", idx, "--queries", tiny, "--run", run, "--qrels", filepath.Join(dir, "missing.tsv")); err == nil || !strings.Contains(err.Error(), "missing.tsv") {
		t.Errorf("missing qrels file: error %v, want one naming it", err)
	}
}
