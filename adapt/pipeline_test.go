package adapt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/eval"
)

// tinyDemo writes a small demo pair and returns a config that runs the
// whole pipeline in seconds.
func tinyDemo(t *testing.T) (config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	src, tgt := DemoSource(), DemoTarget()
	src.Docs, src.Splits = 200, map[string]int{"train": 200, "dev": 20}
	tgt.Docs, tgt.Splits = 150, map[string]int{"test": 30}
	for _, s := range []DemoSpec{src, tgt} {
		if err := GenerateDemo(filepath.Join(dir, s.Name), s); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DemoConfig(config.Default(), filepath.Join(dir, src.Name), filepath.Join(dir, tgt.Name))
	cfg.CacheDir, cfg.Progress = filepath.Join(dir, "cache"), "off"
	p := &cfg.Pretrain
	p.Layers, p.Hidden, p.Heads, p.FF, p.VocabSize, p.SeqLen = 2, 32, 2, 64, 300, 32
	p.Steps, p.EvalEvery, p.CheckpointEvery, p.WarmupSteps = 12, 6, 4, 2
	s := &cfg.Splade
	s.Steps, s.BatchSize, s.EvalEvery, s.CheckpointEvery, s.WarmupSteps = 6, 8, 6, 3, 1
	cfg.Adapt.TargetMLMSteps = 8
	cfg.Adapt.FullBaseline = true // every stage kind, the full baseline's SPLADE included
	cfg.Model.MaxLength, cfg.Model.QueryMaxLength = 32, 12
	return cfg, dir
}

// syncBuffer is a log that a test can read while the pipeline writes.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	onLine func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	f := s.onLine
	s.mu.Unlock()
	if f != nil {
		f(string(p))
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPipelineEndToEndKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models end to end")
	}
	cfg, dir := tinyDemo(t)
	run := filepath.Join(dir, "run")
	newPipeline := func(log *syncBuffer) *Pipeline {
		return &Pipeline{Plan: Plan{Config: cfg, Targets: cfg.Adapt.Targets},
			Runner: &Runner{Dir: run, Log: log}, Log: log}
	}
	// First run: killed when the target's MLM stage starts.
	ctx, cancel := context.WithCancel(context.Background())
	log1 := &syncBuffer{}
	log1.onLine = func(line string) {
		if strings.Contains(line, "stage target-mlm-demo-target") && strings.Contains(line, "running") {
			cancel()
		}
	}
	p := newPipeline(log1)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx); err == nil {
		t.Fatal("killed run: no error")
	}
	for _, s := range []string{"base", "source-mlm", "splade-source"} {
		if st, _ := p.Runner.StateOf(stageNamed(t, p, s)); st != Done {
			t.Fatalf("after the kill, stage %s is %s, want done", s, st)
		}
	}
	if _, err := os.Stat(p.Runner.Path("target-mlm-demo-target")); !os.IsNotExist(err) {
		t.Fatal("the killed stage left an output directory")
	}

	// Second run: finishes, reusing the three finished stages.
	log2 := &syncBuffer{}
	p = newPipeline(log2)
	res, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, log2.String())
	}
	for _, s := range []string{"base", "source-mlm", "splade-source"} {
		if !strings.Contains(log2.String(), "stage "+padStage(s)+" reused") {
			t.Errorf("second run redid stage %s:\n%s", s, log2.String())
		}
	}
	if len(res.Targets) != 1 || !res.Targets[0].Evaluated {
		t.Fatalf("targets: %+v", res.Targets)
	}
	tr := res.Targets[0]
	for _, sys := range []string{SysBM25, SysZeroShot, SysAdapted, SysFull} {
		if _, ok := tr.Means[sys]; !ok {
			t.Errorf("report lacks system %s: %v", sys, tr.Means)
		}
	}
	if pp := tr.Perplexity; pp["source-mlm"] <= 1 || pp["target-mlm"] <= 1 {
		t.Errorf("perplexities %v", pp)
	}
	for _, f := range []string{"summary/summary.md", "summary/summary.json", "summary/summary.html", "plan.json",
		"eval-demo-target/report/report.html", "eval-demo-target/runs/adapted.trec"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	md, _ := os.ReadFile(filepath.Join(run, "summary/summary.md"))
	if !strings.Contains(string(md), "| demo-target |") || !strings.Contains(string(md), "Δ adapted") {
		t.Errorf("summary.md:\n%s", md)
	}

	// Third run: everything reused.
	log3 := &syncBuffer{}
	p = newPipeline(log3)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log3.String(), "running") {
		t.Errorf("an unchanged re-run redid stages:\n%s", log3.String())
	}
}

func padStage(s string) string { return s + strings.Repeat(" ", max(0, 22-len(s))) }

func stageNamed(t *testing.T, p *Pipeline, name string) Stage {
	for _, s := range p.Stages() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %s", name)
	return Stage{}
}

func TestPipelineTargetWithoutQrels(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models end to end")
	}
	cfg, dir := tinyDemo(t)
	cfg.Adapt.FullBaseline = false
	// A plain directory of text files as the target.
	docs := filepath.Join(dir, "notes")
	os.MkdirAll(docs, 0o755)
	for i, text := range []string{"fa fe fi fo fu", "ja je ji jo ju", "va ve vi vo vu fa je"} {
		os.WriteFile(filepath.Join(docs, string(rune('a'+i))+".txt"), []byte(strings.Repeat(text+" ", 20)), 0o644)
	}
	cfg.Adapt.Targets = []string{docs}
	// With a re-ranker: its stage records that there was nothing to re-rank.
	cfg.Adapt.Rerank, cfg.Rerank.MaxLength = demoCrossEncoder(t, 5), 64
	log := &syncBuffer{}
	p := &Pipeline{Plan: Plan{Config: cfg, Targets: cfg.Adapt.Targets}, Runner: &Runner{Dir: filepath.Join(dir, "run"), Log: log}, Log: log}
	res, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Targets[0].Evaluated || res.Targets[0].Index[SysAdapted] == "" {
		t.Fatalf("target without qrels: %+v", res.Targets[0])
	}
	if !strings.Contains(log.String(), "stops at the adapted index") {
		t.Errorf("the pipeline did not say it stopped at the index:\n%s", log.String())
	}
	m, err := ReadMeta(p.Runner.Path("rerank-notes"))
	if err != nil || m.Notes["evaluated"] != false || !strings.Contains(log.String(), "rerank-notes: "+docs+" has no queries and qrels: nothing to re-rank") {
		t.Errorf("rerank stage of a target without qrels: meta %+v (%v)\n%s", m, err, log.String())
	}
	if _, err := os.Stat(filepath.Join(p.Runner.Path("rerank-notes"), "runs")); !os.IsNotExist(err) {
		t.Errorf("rerank stage of a target without qrels wrote runs")
	}
}

// A summary without the full baseline has no Δ full-mlm: JSON null, not an error.
func TestSummaryWithoutFullBaseline(t *testing.T) {
	cfg := config.Default()
	tr := &TargetResult{Name: "t", Evaluated: true,
		Means:      map[string]map[string]float64{SysZeroShot: {"nDCG@10": 0.2}, SysAdapted: {"nDCG@10": 0.3}, SysBM25: {"nDCG@10": 0.4}},
		Perplexity: map[string]float64{"source-mlm": 10, "target-mlm": 5},
		Comparison: &eval.Comparison{Runs: []string{SysZeroShot, SysAdapted, SysBM25},
			Measures: []eval.MeasureComparison{{Measure: "nDCG@10", Means: []float64{0.2, 0.3, 0.4},
				Deltas: []eval.Delta{{Run: SysAdapted, Mean: 0.1, PHolm: 0.01}, {Run: SysBM25, Mean: 0.2, PHolm: 0.02}}}}}}
	dir := t.TempDir()
	if err := writeSummary(dir, []*TargetResult{tr}, cfg, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	if !strings.Contains(string(b), `"delta_full": null`) || !strings.Contains(string(b), `"delta": 0.1`) {
		t.Errorf("summary.json:\n%s", b)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !strings.Contains(string(md), "| t | 0.4000 | 0.2000 | 0.3000 | +0.1000† |") {
		t.Errorf("summary.md:\n%s", md)
	}
}
