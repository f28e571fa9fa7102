package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/neurons"
	"github.com/spladapt/spladapt/splade"
)

// TestNeuronsAttributeRelevantExplain runs neurons attribute on a pairs
// file and on a collection with a run, checks the files' layout and every
// pair's completeness (≤ 2% at 256 steps on the tiny random model, where
// the 1/m quadrature error has shrunk), ranks relevance neurons with two
// directories, and checks explain's contributions sum to its score.
func TestNeuronsAttributeRelevantExplain(t *testing.T) {
	model := writeTinyModel(t, 11)
	data := writeSpladeToy(t)
	var pairs strings.Builder
	i := 0
	for id, q := range spladeToy.queries {
		if i == 4 {
			break
		}
		i++
		for _, d := range []string{q[1], "ship1"} {
			label := 0
			if d == q[1] {
				label = 1
			}
			b, _ := json.Marshal(neurons.Pair{QID: id, DocID: d, Query: q[0], Doc: spladeToy.docs[d], Label: label})
			pairs.Write(append(b, '\n'))
		}
	}
	pairsPath := filepath.Join(t.TempDir(), "pairs.jsonl")
	os.WriteFile(pairsPath, []byte(pairs.String()), 0o644)
	out := filepath.Join(t.TempDir(), "attr")
	stdout, stderr, err := runCLI(t, "neurons", "attribute", "--model", model, "--pairs", pairsPath, "--out", out, "--steps", "256", "--side", "both")
	if err != nil {
		t.Fatalf("neurons attribute: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "attributed 8 pairs") {
		t.Errorf("output %q", stdout)
	}
	a, err := neurons.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Pairs) != 8 || len(a.Layers) != 2 || a.Neurons != 64 || len(a.Attr["doc"]) != 8*2*64 || len(a.Attr["query"]) != 8*2*64 {
		t.Fatalf("layout: %d pairs, layers %v, %d neurons, %d/%d values", len(a.Pairs), a.Layers, a.Neurons, len(a.Attr["doc"]), len(a.Attr["query"]))
	}
	for p, pr := range a.Pairs {
		var sum float64
		for _, v := range a.Attr["doc"][p*128 : (p+1)*128] {
			sum += float64(v)
		}
		if math.Abs(sum-pr.AttributionSum) > 1e-4*(1+math.Abs(sum)) {
			t.Errorf("pair %d: tensor sums to %g, summary says %g", p, sum, pr.AttributionSum)
		}
		d := pr.Score - pr.BaselineScore
		if math.Abs(pr.AttributionSum-d) > 0.02*math.Abs(d)+1e-6 {
			t.Errorf("pair %s/%s: attribution sum %g, score − baseline %g", pr.QID, pr.DocID, pr.AttributionSum, d)
		}
	}
	// summary.json holds the fields.
	b, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	var raw map[string]any
	json.Unmarshal(b, &raw)
	p0 := raw["pairs"].([]any)[0].(map[string]any)
	for _, k := range []string{"qid", "docid", "label", "score", "baseline_score", "attribution_sum"} {
		if _, ok := p0[k]; !ok {
			t.Errorf("summary.json pairs lack %q", k)
		}
	}
	if _, ok := raw["layer_stats"]; !ok {
		t.Error("summary.json lacks layer_stats")
	}

	// From a collection: the run ranks ship1 first for every query.
	run := filepath.Join(t.TempDir(), "run.txt")
	var rs strings.Builder
	for id := range spladeToy.queries {
		rs.WriteString(id + " Q0 ship1 1 9 r\n" + id + " Q0 rain2 2 8 r\n")
	}
	os.WriteFile(run, []byte(rs.String()), 0o644)
	out2 := filepath.Join(t.TempDir(), "attr2")
	if _, stderr, err := runCLI(t, "neurons", "attribute", "--model", model, "--queries", filepath.Join(data, "queries.jsonl"),
		"--corpus", data, "--qrels", filepath.Join(data, "qrels", "dev.tsv"), "--run", run, "--max-queries", "3", "--out", out2, "--steps", "16", "--baseline", "mean", "--layers", "1"); err != nil {
		t.Fatalf("neurons attribute from a collection: %v\n%s", err, stderr)
	}
	a2, err := neurons.ReadDir(out2)
	if err != nil {
		t.Fatal(err)
	}
	if len(a2.Pairs) != 6 || a2.Pairs[0].Label != 1 || a2.Pairs[1].Label != 0 || a2.Baseline != "mean" {
		t.Errorf("drawn pairs: %+v", a2.Pairs)
	}
	// Relevance neurons, overlap of the two directories' top 10.
	stdout, stderr, err = runCLI(t, "neurons", "relevant", "--attr", out, "--attr", out, "--top", "10", "--json")
	if err != nil {
		t.Fatalf("neurons relevant: %v\n%s", err, stderr)
	}
	var reps []struct {
		Top     []neurons.NeuronRelevance
		Overlap *neurons.Overlap `json:"overlap_with_first"`
	}
	if err := json.Unmarshal([]byte(stdout), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || len(reps[0].Top) != 10 || reps[1].Overlap == nil || reps[1].Overlap.Common != 10 || reps[1].Overlap.Jaccard != 1 {
		t.Errorf("relevant: %s", stdout)
	}
	for k := 1; k < len(reps[0].Top); k++ {
		if reps[0].Top[k].Delta > reps[0].Top[k-1].Delta {
			t.Errorf("relevance not sorted: %+v", reps[0].Top)
		}
	}

	// explain: contributions sum to the score, and the score is q·d.
	stdout, stderr, err = runCLI(t, "explain", "--model", model, "--data", data, "--qid", "q1", "--docid", "cat2", "--json", "--steps", "32")
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, stderr)
	}
	var ex neurons.Explanation
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for k, tm := range ex.Terms {
		sum += tm.Score
		if math.Abs(tm.Score-tm.Query*tm.Doc) > 1e-6 {
			t.Errorf("term %s: %g ≠ %g·%g", tm.Token, tm.Score, tm.Query, tm.Doc)
		}
		if k > 0 && tm.Score > ex.Terms[k-1].Score {
			t.Errorf("terms not sorted")
		}
	}
	if len(ex.Terms) == 0 || sum != ex.Score || len(ex.Neurons) != 10 {
		t.Errorf("explain: %d terms summing to %g, score %g, %d neurons", len(ex.Terms), sum, ex.Score, len(ex.Neurons))
	}
	if math.Abs(ex.IGScore-ex.Score) > 1e-4*(1+ex.Score) {
		t.Errorf("explain: IG score %g, term score %g (no top-n pruning: they must agree)", ex.IGScore, ex.Score)
	}
	for _, tm := range ex.Terms {
		own := strings.Contains(" "+spladeToy.docs["cat2"]+" ", " "+tm.Token+" ") || tm.Token == "[CLS]" || tm.Token == "[SEP]"
		if own == tm.Expansion {
			t.Errorf("term %s: expansion %v", tm.Token, tm.Expansion)
		}
	}
	stdout, _, err = runCLI(t, "explain", "--model", model, "--query", "cat mouse", "--doc", spladeToy.docs["cat2"], "--html", "--top-neurons", "0")
	if err != nil || !strings.HasPrefix(stdout, `<div class="spladapt-explain">`) || strings.Contains(stdout, "<script") {
		t.Errorf("explain --html: %v\n%s", err, stdout)
	}
	stdout, _, err = runCLI(t, "explain", "--model", model, "--query", "cat mouse", "--doc", spladeToy.docs["cat2"], "--top-neurons", "3", "--steps", "8")
	if err != nil || !strings.Contains(stdout, "score ") || !strings.Contains(stdout, "layer ") {
		t.Errorf("explain text: %v\n%s", err, stdout)
	}
}

// TestNeuronsPrune runs the pruning study end to end on the tiny random
// model and the toy collection: n = 0 reproduces "spladapt eval"-style exact
// evaluation of the unablated model (splade.EvaluateDev), prune.json,
// prune.svg and prune.html are written, and a selection larger than a third
// of the attributed neurons is refused.
func TestNeuronsPrune(t *testing.T) {
	model := writeTinyModel(t, 11)
	data := writeSpladeToy(t)
	run := filepath.Join(t.TempDir(), "run.txt")
	var rs strings.Builder
	for id := range spladeToy.queries {
		rs.WriteString(id + " Q0 ship1 1 9 r\n" + id + " Q0 rain2 2 8 r\n")
	}
	os.WriteFile(run, []byte(rs.String()), 0o644)
	attr := filepath.Join(t.TempDir(), "attr")
	if _, stderr, err := runCLI(t, "neurons", "attribute", "--model", model, "--queries", filepath.Join(data, "queries.jsonl"),
		"--corpus", data, "--qrels", filepath.Join(data, "qrels", "dev.tsv"), "--run", run, "--max-queries", "0", "--out", attr, "--steps", "8"); err != nil {
		t.Fatalf("neurons attribute: %v\n%s", err, stderr)
	}
	rep := filepath.Join(t.TempDir(), "rep")
	stdout, stderr, err := runCLI(t, "neurons", "prune", "--model", model, "--attr", attr, "--data", data, "--split", "dev",
		"--n", "0,5,40", "--random-seeds", "2", "--out", rep)
	if err != nil {
		t.Fatalf("neurons prune: %v\n%s", err, stderr)
	}
	st, err := neurons.ReadPruneStudy(filepath.Join(rep, "prune.json"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := loadEncoder(config.Default(), model)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := splade.LoadDevSet(data, "dev", corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := eval.ParseMeasures("ndcg_cut.10")
	res, err := splade.EvaluateDev(enc, dev, ms, 100)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unablated != res.All[0] || len(st.Points) != 3 {
		t.Fatalf("unablated %v, EvaluateDev %v; %d points\n%s", st.Unablated, res.All[0], len(st.Points), stdout)
	}
	if p := st.Points[0]; p.Top != st.Unablated || p.Random != st.Unablated || p.Least != st.Unablated {
		t.Errorf("n=0 %+v differs from unablated %v", p, st.Unablated)
	}
	if len(st.Points[2].RandomPerSeed) != 2 || st.Queries != len(spladeToy.queries) || st.Docs != len(spladeToy.docs) {
		t.Errorf("study: %+v", st)
	}
	for _, f := range []string{"prune.svg", "prune.html"} {
		b, err := os.ReadFile(filepath.Join(rep, f))
		if err != nil || strings.Count(string(b), `class="line"`) != 3 {
			t.Errorf("%s: %v, want three curves", f, err)
		}
	}
	if _, _, err := runCLI(t, "neurons", "prune", "--model", model, "--attr", attr, "--data", data, "--split", "dev",
		"--n", "43", "--out", filepath.Join(t.TempDir(), "r")); err == nil || !strings.Contains(err.Error(), "3n") {
		t.Errorf("n = 43 of 128 neurons: err %v, want the 3n bound", err)
	}
	// The report directory is claimed: re-running replaces it, an input
	// is never an output.
	if _, stderr, err := runCLI(t, "neurons", "prune", "--model", model, "--attr", attr, "--data", data, "--split", "dev",
		"--n", "5", "--random-seeds", "1", "--out", rep); err != nil {
		t.Errorf("re-running into the same report directory: %v\n%s", err, stderr)
	}
	if _, _, err := runCLI(t, "neurons", "prune", "--model", model, "--attr", attr, "--data", data, "--split", "dev",
		"--n", "5", "--out", attr); err == nil {
		t.Error("the attribution directory accepted as the report directory")
	}
}
