package adapt

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/internal/toyset"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/tokenize"
)

// demoCrossEncoder writes a tiny random BERT cross-encoder whose WordPiece
// vocabulary is the demo's function words and syllables (a demo word is a
// run of syllables: "ba", "##ko", ...), so that its scores depend on the
// text, and returns the checkpoint directory. It is untrained: the tests
// check the plumbing, not the ranking.
func demoCrossEncoder(t testing.TB, seed uint64) string {
	t.Helper()
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for _, s := range DemoTarget().Syllables {
		vocab = append(vocab, s, "##"+s)
	}
	for _, w := range functionWords {
		if !slices.Contains(vocab, w) { // "be" is also a syllable
			vocab = append(vocab, w)
		}
	}
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	cfg := nn.BERTConfig(tok.VocabSize(), 32, 2, 2, 64, 64)
	cfg.InitializerRange = 0.3 // scores spread enough that ties are rare
	c, err := nn.NewClassifier(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	c.TokenizerDir = tokDir
	dir := filepath.Join(t.TempDir(), "ce")
	if err := c.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runningStages are the stages a pipeline log says it ran.
func runningStages(log string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^stage (\S+) +running$`).FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// TestPipelineRerank runs the pipeline with adapt.rerank on the tiny demo
// (every system, the full baseline included) and checks that each
// re-ranked run is rerank.Rerank of the eval stage's run, that the rerank
// report and the summary carry the re-ranked systems with the report's
// figures, that an unchanged re-run redoes nothing, that a new
// adapt.rerank_depth redoes only the rerank stage and the summary, and that
// turning re-ranking off again redoes only the summary, which is then as
// without re-ranking.
func TestPipelineRerank(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models end to end")
	}
	cfg, dir := tinyDemo(t)
	ce := demoCrossEncoder(t, 7)
	cfg.Adapt.Rerank, cfg.Adapt.RerankDepth = ce, 5
	cfg.Rerank.MaxLength, cfg.Rerank.ScoreBatchSize = 64, 16
	run := filepath.Join(dir, "run")
	target := cfg.Adapt.Targets[0]
	pipeline := func(c config.Config) (*Pipeline, *syncBuffer) {
		log := &syncBuffer{}
		return &Pipeline{Plan: Plan{Config: c, Targets: c.Adapt.Targets}, Runner: &Runner{Dir: run, Log: log}, Log: log}, log
	}
	p, log := pipeline(cfg)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Stages() {
		names = append(names, s.Name)
	}
	if i := slices.Index(names, "rerank-demo-target"); i < 0 || names[i-1] != "eval-demo-target" || names[i+1] != "summary" {
		t.Fatalf("stages %v: want rerank-demo-target between eval-demo-target and summary", names)
	}
	res, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "rerank-demo-target: 4 runs × 30 queries, top 5 re-ranked: ") {
		t.Errorf("no re-ranking line in the log:\n%s", log.String())
	}

	// Each re-ranked run is rerank.Rerank of the eval stage's run.
	sc, err := rerank.LoadScorer(ce, 64, 16)
	if err != nil {
		t.Fatal(err)
	}
	_, queries, err := corpora.BEIR{Dir: target}.Judged("test", corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	qtext := map[string]string{}
	for _, q := range queries {
		qtext[q.ID] = q.Text
	}
	docs, err := rerank.DocTexts(target, nil, corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	qrels, err := corpora.BEIR{Dir: target}.Qrels("test")
	if err != nil {
		t.Fatal(err)
	}
	ndcg, _ := eval.ParseMeasures("nDCG@10")
	tr := res.Targets[0]
	systems := []string{SysBM25, SysZeroShot, SysAdapted, SysFull}
	checkRuns := func(depth int) {
		t.Helper()
		pairs := 0
		for _, sys := range systems {
			first, err := corpora.ReadRun(filepath.Join(run, "eval-demo-target", "runs", sys+".trec"))
			if err != nil {
				t.Fatal(err)
			}
			for _, hits := range first {
				pairs += min(depth, len(hits))
			}
			want, err := rerank.Rerank(sc, qtext, docs, first, depth, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := corpora.ReadRun(filepath.Join(run, "rerank-demo-target", "runs", sys+RerankSuffix+".trec"))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(queries) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s+rerank at depth %d is not rerank.Rerank of the eval stage's run (%d queries, want %d)", sys, depth, len(got), len(queries))
			}
		}
		m, err := ReadMeta(filepath.Join(run, "rerank-demo-target"))
		if err != nil || m.Notes["pairs"] != float64(pairs) {
			t.Errorf("rerank stage notes %v (%v), want %d pairs", m.Notes, err, pairs)
		}
	}
	checkRuns(5)

	// The report and the target result: the re-ranked systems' means are
	// those of the re-ranked runs; zero-shot+rerank is the baseline.
	raw, err := os.ReadFile(filepath.Join(run, "rerank-demo-target", "report", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cmp eval.Comparison
	if err := json.Unmarshal(raw, &cmp); err != nil {
		t.Fatal(err)
	}
	if want := []string{"zero-shot+rerank", "adapted+rerank", "full-mlm+rerank", "bm25+rerank"}; !slices.Equal(cmp.Runs, want) {
		t.Errorf("report runs %v, want %v", cmp.Runs, want)
	}
	if tr.RerankReport != filepath.Join(run, "rerank-demo-target", "report") {
		t.Errorf("rerank report %q", tr.RerankReport)
	}
	for _, sys := range systems {
		got, _ := corpora.ReadRun(filepath.Join(run, "rerank-demo-target", "runs", sys+RerankSuffix+".trec"))
		r, err := eval.Evaluate(qrels, got, ndcg, eval.Options{AllQueries: true})
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := tr.Means[sys+RerankSuffix]["nDCG@10"]; !ok || math.Abs(m-r.All[0]) > 1e-9 {
			t.Errorf("%s+rerank nDCG@10 %v (present %v), recomputed %v", sys, m, ok, r.All[0])
		}
		if _, ok := tr.Means[sys]; !ok {
			t.Errorf("the first-stage system %s left the target's means", sys)
		}
	}

	// The summary: re-ranked columns, and Δ adapted+rerank with its Holm p
	// from the rerank report.
	var reportDelta eval.Delta
	for _, mc := range cmp.Measures {
		if mc.Measure == "nDCG@10" {
			for _, d := range mc.Deltas {
				if d.Run == "adapted+rerank" {
					reportDelta = d
				}
			}
		}
	}
	var sum Summary
	raw, _ = os.ReadFile(filepath.Join(run, "summary", "summary.json"))
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	if want := []string{"bm25", "zero-shot", "adapted", "full-mlm", "bm25+rerank", "zero-shot+rerank", "adapted+rerank", "full-mlm+rerank"}; !slices.Equal(sum.Systems, want) {
		t.Errorf("summary systems %v, want %v", sum.Systems, want)
	}
	row := sum.Rows["nDCG@10"][0]
	if row.DeltaR == nil || row.PHolmR == nil || float64(*row.DeltaR) != reportDelta.Mean || *row.PHolmR != reportDelta.PHolm {
		t.Errorf("summary Δ adapted+rerank %v p %v, report %v p %v", row.DeltaR, row.PHolmR, reportDelta.Mean, reportDelta.PHolm)
	}
	if row.Means["adapted+rerank"] != tr.Means["adapted+rerank"]["nDCG@10"] || sum.MeanDeltaR["nDCG@10"] != reportDelta.Mean || sum.Reranker != ce {
		t.Errorf("summary row %+v, mean Δ rerank %v, reranker %q", row, sum.MeanDeltaR, sum.Reranker)
	}
	md, _ := os.ReadFile(filepath.Join(run, "summary", "summary.md"))
	html, _ := os.ReadFile(filepath.Join(run, "summary", "summary.html"))
	for f, text := range map[string]string{"summary.md": string(md), "summary.html": string(html)} {
		for _, s := range []string{"Δ adapted+rerank", "zero-shot+rerank", "full-mlm+rerank"} {
			if !strings.Contains(text, s) {
				t.Errorf("%s lacks %q:\n%s", f, s, text)
			}
		}
	}

	// Unchanged: nothing reruns.
	p, log = pipeline(cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := runningStages(log.String()); len(got) != 0 {
		t.Errorf("an unchanged re-run redid %v", got)
	}

	// Another depth: only the rerank stage and the summary.
	cfg.Adapt.RerankDepth = 3
	p, log = pipeline(cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := runningStages(log.String()), []string{"rerank-demo-target", "summary"}; !slices.Equal(got, want) {
		t.Errorf("adapt.rerank_depth 5 → 3 redid %v, want %v", got, want)
	}
	checkRuns(3)

	// Re-ranking off: only the summary, which no longer has the columns.
	off := cfg
	off.Adapt.Rerank = ""
	p, log = pipeline(off)
	res, err = p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := runningStages(log.String()), []string{"summary"}; !slices.Equal(got, want) {
		t.Errorf("adapt.rerank off redid %v, want %v", got, want)
	}
	raw, _ = os.ReadFile(filepath.Join(run, "summary", "summary.json"))
	if strings.Contains(string(raw), "rerank") {
		t.Errorf("summary.json without re-ranking mentions it:\n%s", raw)
	}
	if tr := res.Targets[0]; tr.RerankComparison != nil || tr.Means["adapted+rerank"] != nil {
		t.Errorf("target result without re-ranking has its figures: %+v", tr)
	}
}

// TestPipelineRerankRefusesBadModel: Validate refuses an adapt.rerank that
// does not exist, is a file, or is a model without a re-ranker's head,
// naming the setting and the path, before any stage runs.
func TestPipelineRerankRefusesBadModel(t *testing.T) {
	cfg, dir := tinyDemo(t)
	file := filepath.Join(dir, "notes.txt")
	os.WriteFile(file, []byte("not a model"), 0o644)
	mlm := toyset.TinyModelDir(t, 3) // a BERT with an MLM head, no classifier
	for _, tc := range []struct{ path, says string }{
		{filepath.Join(dir, "no-such-model"), "no such file or directory"},
		{file, "is not a model directory"},
		{mlm, "does not load as a cross-encoder or MICE model"},
	} {
		c := cfg
		c.Adapt.Rerank = tc.path
		p := &Pipeline{Plan: Plan{Config: c, Targets: c.Adapt.Targets}, Runner: &Runner{Dir: filepath.Join(dir, "run")}}
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), "adapt.rerank = "+tc.path) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("adapt.rerank %s: err %v, want it to name the setting and the path and say %q", tc.path, err, tc.says)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); !os.IsNotExist(err) {
		t.Errorf("a refused plan made its run directory")
	}
	// Without a re-ranker, no rerank stage and a summary key without
	// adapt.rerank (runs made before the setting keep their summary).
	p := &Pipeline{Plan: Plan{Config: cfg, Targets: cfg.Adapt.Targets}, Runner: &Runner{Dir: filepath.Join(dir, "run")}}
	for _, s := range p.Stages() {
		if strings.HasPrefix(s.Name, "rerank-") {
			t.Errorf("stage %s without adapt.rerank", s.Name)
		}
		if s.Name == "summary" {
			if _, ok := s.Config.(map[string]any)["adapt.rerank"]; ok {
				t.Errorf("summary key %v has adapt.rerank while it is off", s.Config)
			}
		}
	}
}

// A summary with re-ranking: the re-ranked systems' columns after the
// first-stage ones and Δ adapted+rerank with its † from the rerank
// comparison, in every format.
func TestSummaryWithRerank(t *testing.T) {
	cfg := config.Default()
	cfg.Adapt.Rerank = "models/ce"
	nd := func(v float64) map[string]float64 { return map[string]float64{"nDCG@10": v} }
	tr := &TargetResult{Name: "t", Evaluated: true,
		Means: map[string]map[string]float64{SysZeroShot: nd(0.2), SysAdapted: nd(0.3), SysBM25: nd(0.4),
			SysZeroShot + RerankSuffix: nd(0.5), SysAdapted + RerankSuffix: nd(0.55), SysBM25 + RerankSuffix: nd(0.6)},
		Perplexity: map[string]float64{"source-mlm": 10, "target-mlm": 5},
		Comparison: &eval.Comparison{Runs: []string{SysZeroShot, SysAdapted, SysBM25},
			Measures: []eval.MeasureComparison{{Measure: "nDCG@10", Means: []float64{0.2, 0.3, 0.4},
				Deltas: []eval.Delta{{Run: SysAdapted, Mean: 0.1, PHolm: 0.01}, {Run: SysBM25, Mean: 0.2, PHolm: 0.02}}}}},
		RerankComparison: &eval.Comparison{Runs: []string{"zero-shot+rerank", "adapted+rerank", "bm25+rerank"},
			Measures: []eval.MeasureComparison{{Measure: "nDCG@10", Means: []float64{0.5, 0.55, 0.6},
				Deltas: []eval.Delta{{Run: "adapted+rerank", Mean: 0.05, PHolm: 0.2}, {Run: "bm25+rerank", Mean: 0.1, PHolm: 0.03}}}}}}
	dir := t.TempDir()
	if err := writeSummary(dir, []*TargetResult{tr}, cfg, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	for _, want := range []string{`"delta_rerank": 0.05`, `"p_holm_rerank": 0.2`, `"mean_delta_rerank": {`, `"reranker": "models/ce"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("summary.json lacks %s:\n%s", want, b)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	for _, want := range []string{
		"| target | bm25 | zero-shot | adapted | bm25+rerank | zero-shot+rerank | adapted+rerank | Δ adapted | Δ adapted+rerank |",
		"| t | 0.4000 | 0.2000 | 0.3000 | 0.6000 | 0.5000 | 0.5500 | +0.1000† | +0.0500 |",
		"| **mean** | 0.4000 | 0.2000 | 0.3000 | 0.6000 | 0.5000 | 0.5500 | +0.1000 | +0.0500 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks\n%s\n%s", want, md)
		}
	}
	h, _ := os.ReadFile(filepath.Join(dir, "summary.html"))
	if !strings.Contains(string(h), "<td>+0.1000†</td><td>+0.0500</td></tr>") {
		t.Errorf("summary.html lacks the Δ adapted+rerank cell:\n%s", h)
	}
}
