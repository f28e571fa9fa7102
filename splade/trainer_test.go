package splade

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/tokenize"
)

// toySource is the toy collection as one training source (one triple per
// query) and as a dev set judged by the same positives.
func toySource() (Source, *DevSet) {
	s := Source{Name: "toy", Texts: &Texts{Queries: map[string]string{}, Docs: map[string]string{}}}
	d := &DevSet{Name: "toy/dev", Qrels: corpora.Qrels{}}
	for _, id := range slices.Sorted(mapsKeys(toyDocs)) {
		s.Texts.Docs[id] = toyDocs[id]
		d.DocIDs = append(d.DocIDs, id)
		d.Docs = append(d.Docs, toyDocs[id])
	}
	for _, qid := range slices.Sorted(mapsKeys(toyQueries)) {
		q := toyQueries[qid]
		s.Texts.Queries[qid] = q.Text
		s.Triples = append(s.Triples, Triple{QID: qid, PosID: q.Pos, NegIDs: []string{q.Neg}})
		d.Queries = append(d.Queries, corpora.Query{ID: qid, Text: q.Text})
		d.Qrels[qid] = map[string]int{q.Pos: 1}
	}
	return s, d
}

func toyOptions() TrainOptions {
	return TrainOptions{
		Weights:     Weights{InfoNCE: 1, FLOPSQ: 1e-3, FLOPSD: 1e-3, WarmupSteps: 10},
		LR:          2e-3,
		WeightDecay: 0.01,
		MaxGradNorm: 1,
		WarmupSteps: 3,
		Steps:       30,
		BatchSize:   4,
		NNeg:        1,
		QueryMaxLen: 8,
		DocMaxLen:   16,
		Seed:        3,
		TrainParams: "all",
		// DomainLayers 1 of 2: "task" then trains layer 1 and the head.
		DomainLayers: 1,
	}
}

func loadTiny(t testing.TB, dir string) (*nn.Model, *tokenize.Tokenizer) {
	t.Helper()
	m, err := nn.LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// margins returns q·pos − q·neg for every toy query under the model.
func margins(t *testing.T, m *nn.Model, tok *tokenize.Tokenizer) []float64 {
	t.Helper()
	enc, err := NewEncoder(m, tok, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, qid := range slices.Sorted(mapsKeys(toyQueries)) {
		q := toyQueries[qid]
		vq, _ := enc.EncodeQuery(q.Text)
		vd, _ := enc.EncodeDocs([]string{toyDocs[q.Pos], toyDocs[q.Neg]})
		ix := sparse.NewExact(vd, enc.VocabSize())
		s := map[int]float64{}
		for _, h := range ix.Search(vq, 2) {
			s[h.Doc] = h.Score
		}
		out = append(out, s[0]-s[1])
	}
	return out
}

// TestTrainToy trains the tiny random model for 30 steps on the toy
// triples: the loss must fall, the positive must come to outscore the
// negative for most queries, dev nDCG@10 must rise, and the best model,
// splade.json and the curves must be written.
func TestTrainToy(t *testing.T) {
	dir := tinyModelDir(t, 11)
	m, tok := loadTiny(t, dir)
	src, dev := toySource()
	before := margins(t, m, tok)
	opt := toyOptions()
	opt.EvalEvery = 10
	tr, err := NewTrainer(m, tok, []Source{src}, []*DevSet{dev}, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tr.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	var evals []float64
	work := t.TempDir()
	out := filepath.Join(t.TempDir(), "best")
	meta, err := tr.Run(context.Background(), RunConfig{WorkDir: work, Out: out, Init: dir}, TrainHooks{
		OnStep: func(s StepStats) { losses = append(losses, s.Terms.Total) },
		OnEval: func(step int, ms map[string]float64, best bool) { evals = append(evals, ms["nDCG@10"]) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != 30 || len(evals) != 4 {
		t.Fatalf("%d steps, %d evaluations; want 30 and 4 (steps 0, 10, 20, 30)", len(losses), len(evals))
	}
	if evals[0] != first["nDCG@10"] {
		t.Errorf("evaluation before the first step %g, Evaluate of the initial model %g", evals[0], first["nDCG@10"])
	}
	mean := func(x []float64) float64 {
		s := 0.0
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	l0, l1 := mean(losses[:5]), mean(losses[25:])
	t.Logf("loss %.3f → %.3f; dev nDCG@10 %.3f → %v; best %.3f at step %d", l0, l1, first["nDCG@10"], evals, tr.Best, tr.BestAt)
	if !(l1 < 0.7*l0) {
		t.Errorf("loss fell only from %.3f to %.3f", l0, l1)
	}
	after := margins(t, m, tok)
	wins := 0
	for i := range after {
		if after[i] > 0 {
			wins++
		}
	}
	t.Logf("margins before %v\nafter %v", before, after)
	if wins < 8 {
		t.Errorf("positive outscores the negative for %d of 10 queries after training, want ≥ 8", wins)
	}
	if !(tr.Best > first["nDCG@10"]) || tr.Best < 0.6 {
		t.Errorf("dev nDCG@10 %.3f before, best %.3f after", first["nDCG@10"], tr.Best)
	}
	// The best model is reloadable and scores what was recorded.
	raw, err := os.ReadFile(filepath.Join(out, "splade.json"))
	if err != nil {
		t.Fatal(err)
	}
	var saved TrainMeta
	if err := json.Unmarshal(raw, &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Step != tr.BestAt || saved.DevMetrics["nDCG@10"] != tr.Best || meta.Step != tr.BestAt || saved.Sources[0] != "toy" {
		t.Errorf("splade.json %+v, best %g at %d", saved, tr.Best, tr.BestAt)
	}
	enc, err := LoadEncoder(out, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := EvaluateDev(enc, dev, mustMeasures(t, "nDCG@10"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.All[0]-tr.Best) > 1e-9 {
		t.Errorf("reloaded best model: nDCG@10 %g, recorded %g", res.All[0], tr.Best)
	}
	for _, f := range []string{"curves.csv", "curves.svg", "vocab.txt", "config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("best model dir: %v", err)
		}
	}
	// A second run without --resume refuses to overwrite the checkpoint.
	tr2, _ := NewTrainer(m, tok, []Source{src}, nil, opt, nil)
	if _, err := tr2.Run(context.Background(), RunConfig{WorkDir: work, Out: out}, TrainHooks{}); !errors.Is(err, ErrCheckpointExists) {
		t.Errorf("rerun without resume: %v", err)
	}
}

// TestTrainResume runs 8 steps straight, and 4 steps, a stop, and a
// resumed run to 8 from fresh copies of the same initial model: losses and
// final weights must agree (dropout on, several negatives sampled), from
// the state as saved and from the same state in format 1.
func TestTrainResume(t *testing.T) {
	dir := tinyModelDir(t, 5)
	src, _ := toySource()
	// Give every triple three negatives so the per-step sampling matters.
	for i := range src.Triples {
		src.Triples[i].NegIDs = []string{"cat1", "ship2", "rain2"}
		if slices.Contains(src.Triples[i].NegIDs, src.Triples[i].PosID) {
			src.Triples[i].NegIDs = []string{"bread1", "star2", "cat2"}
		}
	}
	opt := toyOptions()
	// Checkpoints every 3 steps: the stop after step 4 falls between two,
	// so resuming relies on the state saved at cancellation.
	opt.Steps, opt.CheckpointEvery, opt.Dropout, opt.NNeg = 8, 3, true, 2
	run := func(work string, stopAt int, resume bool) ([]float64, *nn.Model) {
		m, tok := loadTiny(t, dir)
		tr, err := NewTrainer(m, tok, []Source{src}, nil, opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var losses []float64
		_, err = tr.Run(ctx, RunConfig{WorkDir: work, Out: filepath.Join(work, "out"), Resume: resume}, TrainHooks{
			OnStep: func(s StepStats) {
				losses = append(losses, s.Terms.Total)
				if s.Step == stopAt {
					cancel()
				}
			},
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		return losses, m
	}
	straight, m1 := run(t.TempDir(), -1, false)
	if straight[0] == straight[7] {
		t.Error("loss did not change: the test compares nothing")
	}
	// The state as saved (format 2), and rewritten as format 1, which
	// SPLADE runs wrote before pretraining joined the loop: the same files,
	// train_state.json without "trainer" and "task"
	// (docs/format/train-state.md).
	for _, format := range []int{2, 1} {
		work := t.TempDir()
		a, _ := run(work, 4, false)
		if format == 1 {
			path := filepath.Join(work, "state", "train_state.json")
			var st map[string]any
			raw, err := os.ReadFile(path)
			if err != nil || json.Unmarshal(raw, &st) != nil || st["format"] != 2.0 || st["trainer"] != "splade" {
				t.Fatalf("saved state: %s (%v)", raw, err)
			}
			st["format"] = 1
			delete(st, "trainer")
			delete(st, "task")
			raw, _ = json.Marshal(st)
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, m2 := run(work, -1, true)
		if len(straight) != 8 || len(a) != 4 || len(b) != 4 {
			t.Fatalf("format %d: %d, %d + %d steps", format, len(straight), len(a), len(b))
		}
		got := append(a, b...)
		for i := range straight {
			if math.Abs(got[i]-straight[i]) > 1e-5*(1+math.Abs(straight[i])) {
				t.Errorf("format %d: step %d: loss %.9g resumed, %.9g straight", format, i+1, got[i], straight[i])
			}
		}
		for i, p := range m1.Params {
			q := m2.Params[i]
			for j := range p.W {
				if math.Abs(float64(p.W[j]-q.W[j])) > 1e-5 {
					t.Fatalf("format %d: %s[%d]: %g straight, %g resumed", format, p.Name, j, p.W[j], q.W[j])
				}
			}
		}
		log, err := os.ReadFile(filepath.Join(work, "state", "curves.csv"))
		if err != nil || len(splitLines(string(log))) != 9 {
			t.Errorf("format %d: resumed curve has %d lines (want header + 8): %v", format, len(splitLines(string(log))), err)
		}
	}
}

func splitLines(s string) []string {
	var out []string
	for _, l := range slices.Collect(func(yield func(string) bool) {
		start := 0
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' {
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
		if start < len(s) {
			yield(s[start:])
		}
	}) {
		out = append(out, l)
	}
	return out
}

// TestTrainTaskParams trains P_task only: P_domain (embeddings, layer 0)
// must stay bit-identical and every P_task tensor must move.
func TestTrainTaskParams(t *testing.T) {
	dir := tinyModelDir(t, 9)
	m, tok := loadTiny(t, dir)
	init, _ := loadTiny(t, dir)
	src, _ := toySource()
	opt := toyOptions()
	opt.Steps, opt.TrainParams = 3, "task"
	tr, err := NewTrainer(m, tok, []Source{src}, nil, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range m.Params {
		same := slices.Equal(p.W, init.Params[i].W)
		if nn.IsDomainParam(p.Name, 1) != same {
			t.Errorf("%s: domain %v, unchanged %v", p.Name, nn.IsDomainParam(p.Name, 1), same)
		}
	}
}

func mustMeasures(t *testing.T, names ...string) []eval.Measure {
	t.Helper()
	ms, err := eval.ParseMeasures(names...)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestTrainToySumPooling trains the toy with splade.pooling sum: the loss
// falls, the positive comes to outscore the negative, the saved model's
// config.json records the pooling, and the reloaded encoder (which reads
// it) scores the dev set as training's evaluation did.
func TestTrainToySumPooling(t *testing.T) {
	dir := tinyModelDir(t, 11)
	m, tok := loadTiny(t, dir)
	src, dev := toySource()
	opt := toyOptions()
	opt.EvalEvery = 10
	opt.Pooling = nn.PoolSum
	tr, err := NewTrainer(m, tok, []Source{src}, []*DevSet{dev}, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.SpladePooling != nn.PoolSum {
		t.Fatalf("model pooling %q after NewTrainer with pooling sum", m.Config.SpladePooling)
	}
	var losses []float64
	out := filepath.Join(t.TempDir(), "best")
	if _, err := tr.Run(context.Background(), RunConfig{WorkDir: t.TempDir(), Out: out, Init: dir}, TrainHooks{
		OnStep: func(s StepStats) { losses = append(losses, s.Terms.Total) },
	}); err != nil {
		t.Fatal(err)
	}
	l0 := (losses[0] + losses[1] + losses[2]) / 3
	l1 := (losses[27] + losses[28] + losses[29]) / 3
	t.Logf("loss %.3f → %.3f, best dev nDCG@10 %.3f at step %d", l0, l1, tr.Best, tr.BestAt)
	if !(l1 < 0.7*l0) {
		t.Errorf("loss fell only from %.3f to %.3f", l0, l1)
	}
	wins := 0
	for _, d := range margins(t, m, tok) {
		if d > 0 {
			wins++
		}
	}
	if wins < 8 {
		t.Errorf("positive outscores the negative for %d of 10 queries after training, want ≥ 8", wins)
	}
	enc, err := LoadEncoder(out, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Model.Config.SpladePooling != nn.PoolSum {
		t.Fatalf("reloaded model pools with %q", enc.Model.Config.SpladePooling)
	}
	res, err := EvaluateDev(enc, dev, mustMeasures(t, "nDCG@10"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.All[0]-tr.Best) > 1e-9 {
		t.Errorf("reloaded best model: nDCG@10 %g, recorded %g", res.All[0], tr.Best)
	}
	// The same weights read as max-pooled give other vectors: the pooling
	// is not ignored.
	enc.Model.Config.SpladePooling = nn.PoolMax
	maxRes, err := EvaluateDev(enc, dev, mustMeasures(t, "nDCG@10"), 100)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := enc.EncodeDocs([]string{toyDocs[toyQueries["q1"].Pos]})
	enc.Model.Config.SpladePooling = nn.PoolSum
	vsSum, _ := enc.EncodeDocs([]string{toyDocs[toyQueries["q1"].Pos]})
	if slices.Equal(vs[0], vsSum[0]) {
		t.Errorf("max and sum pooling give the same vector (dev nDCG@10 %g and %g)", maxRes.All[0], res.All[0])
	}
}
