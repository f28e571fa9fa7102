package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestMICECLI runs MICE through the CLI on the toy collection: the full
// cross-encoder's scores on the mined triples (rerank score-triples) are the
// MarginMSE teacher of "train rerank --arch mice"; "mice store" writes the
// document states; "rerank --store" re-ranks from them and agrees with
// re-ranking the same MICE on the fly from the corpus.
func TestMICECLI(t *testing.T) {
	toy := writeSpladeToy(t)
	init := writeTinyModel(t, 5)
	dir := t.TempDir()
	ce, mice := filepath.Join(dir, "ce"), filepath.Join(dir, "mice")
	env := map[string]string{"SPLADAPT_SPLADE_MINE_NEGATIVES": "2", "SPLADAPT_SPLADE_MINE_DEPTH": "6",
		"SPLADAPT_RERANK_WARMUP_STEPS": "2"}
	if _, errOut, err := bm25CLI(t, env, "train", "rerank", "--train", toy, "--init", init, "--out", ce,
		"--loss", "infonce", "--steps", "3", "--batch-size", "3", "--n-neg", "2", "--max-length", "24"); err != nil {
		t.Fatalf("train rerank: %v\n%s", err, errOut)
	}
	teacher := filepath.Join(dir, "teacher.tsv")
	if _, errOut, err := bm25CLI(t, env, "rerank", "score-triples", "--model", ce, "--train", toy, "--out", teacher); err != nil {
		t.Fatalf("score-triples: %v\n%s", err, errOut)
	}
	out, errOut, err := bm25CLI(t, env, "train", "rerank", "--arch", "mice", "--mice-fusion", "1", "--mice-light",
		"--mice-query-length", "8", "--train", toy, "--teacher", teacher, "--init", ce, "--out", mice,
		"--loss", "marginmse", "--steps", "4", "--batch-size", "3", "--n-neg", "2", "--max-length", "16")
	if err != nil {
		t.Fatalf("train rerank --arch mice: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "trained 4 steps (marginmse loss, MICE)") || !strings.Contains(errOut, "training MICE (fusion 1, interaction layers [1], light true)") {
		t.Errorf("train rerank --arch mice: out %q\nstderr %q", out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(mice, "rerank.json"))
	if err != nil || !strings.Contains(string(raw), `"kind": "mice"`) || !strings.Contains(string(raw), `"query_length": 8`) {
		t.Errorf("rerank.json %s, %v", raw, err)
	}

	store := filepath.Join(dir, "docs.mice")
	out, errOut, err = bm25CLI(t, nil, "mice", "store", "--model", mice, "--corpus", toy, "--out", store)
	if err != nil {
		t.Fatalf("mice store: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("stored the states of %d documents (fusion layer 1)", len(spladeToy.docs))) {
		t.Errorf("mice store: %q", out)
	}
	if _, _, err := bm25CLI(t, nil, "mice", "store", "--model", ce, "--corpus", toy, "--out", store+"2"); err == nil || !strings.Contains(err.Error(), "not a MICE model") {
		t.Errorf("mice store of a cross-encoder: %v", err)
	}

	var docs []string
	for id := range spladeToy.docs {
		docs = append(docs, id)
	}
	sort.Strings(docs)
	var run strings.Builder
	for qid := range spladeToy.queries {
		for r, d := range docs {
			fmt.Fprintf(&run, "%s Q0 %s %d %d first\n", qid, d, r+1, len(docs)-r)
		}
	}
	runPath := filepath.Join(dir, "run")
	if err := os.WriteFile(runPath, []byte(run.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	queries := filepath.Join(toy, "queries.jsonl")
	fromStore, onTheFly := filepath.Join(dir, "run.store"), filepath.Join(dir, "run.fly")
	out, errOut, err = bm25CLI(t, nil, "rerank", "--model", mice, "--store", store, "--queries", queries, "--run", runPath, "--depth", "5", "--out", fromStore)
	if err != nil {
		t.Fatalf("rerank --store: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "re-ranked 50 pairs of 10 queries") {
		t.Errorf("rerank --store: %q", out)
	}
	if _, errOut, err := bm25CLI(t, nil, "rerank", "--model", mice, "--corpus", toy, "--queries", queries, "--run", runPath, "--depth", "5", "--out", onTheFly); err != nil {
		t.Fatalf("rerank MICE on the fly: %v\n%s", err, errOut)
	}
	if _, _, err := bm25CLI(t, nil, "rerank", "--model", ce, "--store", store, "--queries", queries, "--run", runPath, "--out", filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "needs a MICE model") {
		t.Errorf("rerank --store with a cross-encoder: %v", err)
	}
	a, err := corpora.ReadRun(fromStore)
	if err != nil {
		t.Fatal(err)
	}
	b, err := corpora.ReadRun(onTheFly)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 10 || len(b) != 10 {
		t.Fatalf("%d and %d queries, want 10", len(a), len(b))
	}
	for qid, hits := range b {
		want := map[string]float64{}
		for _, h := range hits {
			want[h.DocID] = h.Score
		}
		for _, h := range a[qid] {
			if w, ok := want[h.DocID]; !ok || math.Abs(w-h.Score) > 1e-5 {
				t.Errorf("query %s, %s: stored-state score %g, on the fly %g", qid, h.DocID, h.Score, w)
			}
		}
	}

	// A damaged store is refused, naming the CRC.
	rawStore, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	rawStore[30] ^= 0xff
	bad := filepath.Join(dir, "bad.mice")
	if err := os.WriteFile(bad, rawStore, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bm25CLI(t, nil, "rerank", "--model", mice, "--store", bad, "--queries", queries, "--run", runPath, "--out", filepath.Join(dir, "y")); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("rerank with a damaged store: %v", err)
	}
}

// TestMICEMatchTypesCLI: "train rerank --arch mice" with rerank.match_types
// grows the type table and records match_types in rerank.json; "mice store"
// keeps the documents' token ids, so that "rerank --store" marks queries
// as re-ranking on the fly from the corpus does.
func TestMICEMatchTypesCLI(t *testing.T) {
	toy := writeSpladeToy(t)
	init := writeTinyModel(t, 5)
	dir := t.TempDir()
	mice := filepath.Join(dir, "mice")
	env := map[string]string{"SPLADAPT_SPLADE_MINE_NEGATIVES": "2", "SPLADAPT_SPLADE_MINE_DEPTH": "6",
		"SPLADAPT_RERANK_WARMUP_STEPS": "2", "SPLADAPT_RERANK_MATCH_TYPES": "true"}
	_, errOut, err := bm25CLI(t, env, "train", "rerank", "--arch", "mice", "--mice-fusion", "1", "--mice-light",
		"--mice-query-length", "8", "--train", toy, "--init", init, "--out", mice,
		"--loss", "infonce", "--steps", "3", "--batch-size", "3", "--n-neg", "2", "--max-length", "16")
	if err != nil {
		t.Fatalf("train rerank --arch mice with match types: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "token types grown from 2 to 4") {
		t.Errorf("train rerank: stderr %q", errOut)
	}
	raw, err := os.ReadFile(filepath.Join(mice, "rerank.json"))
	if err != nil || !strings.Contains(string(raw), `"kind": "mice"`) || !strings.Contains(string(raw), `"match_types": true`) {
		t.Errorf("rerank.json %s, %v", raw, err)
	}
	store := filepath.Join(dir, "docs.mice")
	if _, errOut, err := bm25CLI(t, nil, "mice", "store", "--model", mice, "--corpus", toy, "--out", store); err != nil {
		t.Fatalf("mice store: %v\n%s", err, errOut)
	}
	var run strings.Builder
	for qid := range spladeToy.queries {
		r := 0
		for d := range spladeToy.docs {
			r++
			fmt.Fprintf(&run, "%s Q0 %s %d %d first\n", qid, d, r, 100-r)
		}
	}
	runPath := filepath.Join(dir, "run")
	if err := os.WriteFile(runPath, []byte(run.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	queries := filepath.Join(toy, "queries.jsonl")
	fromStore, onTheFly := filepath.Join(dir, "run.store"), filepath.Join(dir, "run.fly")
	if _, errOut, err := bm25CLI(t, nil, "rerank", "--model", mice, "--store", store, "--queries", queries, "--run", runPath, "--depth", "6", "--out", fromStore); err != nil {
		t.Fatalf("rerank --store: %v\n%s", err, errOut)
	}
	if _, errOut, err := bm25CLI(t, nil, "rerank", "--model", mice, "--corpus", toy, "--queries", queries, "--run", runPath, "--depth", "6", "--out", onTheFly); err != nil {
		t.Fatalf("rerank on the fly: %v\n%s", err, errOut)
	}
	a, err := corpora.ReadRun(fromStore)
	if err != nil {
		t.Fatal(err)
	}
	b, err := corpora.ReadRun(onTheFly)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(spladeToy.queries) || len(b) != len(a) {
		t.Fatalf("%d and %d queries, want %d", len(a), len(b), len(spladeToy.queries))
	}
	for qid, hits := range b {
		want := map[string]float64{}
		for _, h := range hits {
			want[h.DocID] = h.Score
		}
		if len(a[qid]) != len(hits) {
			t.Errorf("query %s: %d hits from the store, %d on the fly", qid, len(a[qid]), len(hits))
		}
		for _, h := range a[qid] {
			if w, ok := want[h.DocID]; !ok || math.Abs(w-h.Score) > 1e-5 {
				t.Errorf("query %s, %s: stored-state score %g, on the fly %g", qid, h.DocID, h.Score, w)
			}
		}
	}
}
