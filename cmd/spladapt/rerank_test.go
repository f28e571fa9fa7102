package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestRerankCLI runs the re-ranker commands on the toy collection: train a
// cross-encoder from a masked-LM checkpoint (mined negatives, dev
// selection), re-rank a run, score the mined triples, and distil those
// scores into SPLADE with MarginMSE.
func TestRerankCLI(t *testing.T) {
	toy := writeSpladeToy(t)
	init := writeTinyModel(t, 5)
	dir := t.TempDir()
	ce := filepath.Join(dir, "ce")
	env := map[string]string{"SPLADAPT_SPLADE_MINE_NEGATIVES": "2", "SPLADAPT_SPLADE_MINE_DEPTH": "6",
		"SPLADAPT_RERANK_WARMUP_STEPS": "2"}
	out, errOut, err := bm25CLI(t, env, "train", "rerank", "--train", toy, "--init", init, "--out", ce, "--dev", toy,
		"--loss", "infonce", "--steps", "6", "--batch-size", "3", "--n-neg", "2", "--eval-every", "3", "--max-length", "24", "--lr", "0.002")
	if err != nil {
		t.Fatalf("train rerank: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "trained 6 steps (infonce loss)") || !strings.Contains(errOut, "initialised [bert.pooler.dense.weight") {
		t.Errorf("train rerank output %q\nstderr %q", out, errOut)
	}
	if _, err := os.Stat(filepath.Join(ce, "rerank.json")); err != nil {
		t.Error(err)
	}

	// A first-stage run holding every document for each query, in id order.
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
	runPath, run2 := filepath.Join(dir, "run"), filepath.Join(dir, "run2")
	if err := os.WriteFile(runPath, []byte(run.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = bm25CLI(t, nil, "rerank", "--model", ce, "--queries", filepath.Join(toy, "queries.jsonl"), "--corpus", toy,
		"--run", runPath, "--out", run2, "--depth", "4")
	if err != nil {
		t.Fatalf("rerank: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "re-ranked 40 pairs of 10 queries") {
		t.Errorf("rerank output %q", out)
	}
	got, err := corpora.ReadRun(run2)
	if err != nil {
		t.Fatal(err)
	}
	for qid, hits := range got {
		if len(hits) != 4 {
			t.Errorf("query %s: %d hits, want the 4 re-ranked", qid, len(hits))
		}
		for _, h := range hits {
			if h.DocID > docs[3] {
				t.Errorf("query %s: %s was below depth 4", qid, h.DocID)
			}
		}
	}

	teacher := filepath.Join(dir, "teacher.tsv")
	out, errOut, err = bm25CLI(t, env, "rerank", "score-triples", "--model", ce, "--train", toy, "--out", teacher)
	if err != nil {
		t.Fatalf("score-triples: %v\n%s", err, errOut)
	}
	raw, err := os.ReadFile(teacher)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if !strings.Contains(out, fmt.Sprintf("scored %d pairs", len(lines))) || len(lines) < 16 || len(strings.Split(lines[0], "\t")) != 3 {
		t.Errorf("score-triples output %q, %d lines, first %q", out, len(lines), lines[0])
	}
	senv := map[string]string{"SPLADAPT_SPLADE_MINE_NEGATIVES": "2", "SPLADAPT_SPLADE_MINE_DEPTH": "6", "SPLADAPT_SPLADE_MARGIN_MSE": "1"}
	out, errOut, err = bm25CLI(t, senv, "train", "splade", "--train", toy, "--init", init, "--out", filepath.Join(dir, "sp"),
		"--teacher", teacher, "--steps", "3", "--batch-size", "2", "--max-length", "16", "--query-max-length", "8")
	if err != nil {
		t.Fatalf("train splade --teacher: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "teacher scores for") || !strings.Contains(errOut, "dropped 0 triples and 0 negatives") {
		t.Errorf("train splade with the cross-encoder's scores: stderr %q", errOut)
	}
}
