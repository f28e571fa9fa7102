package rerank

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

// toyMICECfg is a light MICE with one separate layer on the 2-layer toy
// cross-encoder.
var toyMICECfg = MICEConfig{MICEOptions: nn.MICEOptions{Fusion: 1, Interact: []int{1}, Light: true}, QueryLength: 8, DocLength: 16}

func loadMICE(t testing.TB, dir string, cfg MICEConfig) *MICE {
	t.Helper()
	c, err := nn.LoadClassifier(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMICE(c, tok, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// teacherSource is the toy source with MarginMSE margins from the full
// cross-encoder in dir: its scores written by ScoreTriples in the
// teacher-score format, read back and applied as "train rerank --teacher"
// does.
func teacherSource(t *testing.T, dir string) splade.Source {
	t.Helper()
	src, _ := toyData()
	for i := range src.Triples {
		src.Triples[i].Margins = nil
	}
	var buf bytes.Buffer
	if _, err := ScoreTriples(loadCE(t, dir), src, &buf, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "teacher.tsv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := splade.ReadTeacherScores(path, corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src.Triples, _ = ts.Apply(src.Triples)
	for _, tr := range src.Triples {
		if !tr.HasMargins() {
			t.Fatalf("triple of %s has no teacher margins", tr.QID)
		}
	}
	return src
}

// MICE trained by MarginMSE from the full cross-encoder's scores: the
// loss falls, the kept model reloads as MICE, and its on-the-fly scores
// match the training pass.
func TestTrainMICEMarginMSE(t *testing.T) {
	// The teacher: a full cross-encoder with large random weights, so that
	// its margins are of order one; the student starts from another one.
	teacherOut := toyCrossEncoderInit(t, 11, 0.3)
	studentInit := toyCrossEncoder(t, 5)
	src := teacherSource(t, teacherOut)
	t.Logf("teacher margins of the first triple: %v", src.Triples[0].Margins)

	m := loadMICE(t, studentInit, toyMICECfg)
	mopt := toyOptions(MarginMSE)
	mopt.Steps, mopt.LR = 30, 3e-3
	tr, err := NewTrainer(m, []splade.Source{src}, nil, mopt)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	out := filepath.Join(t.TempDir(), "mice")
	meta, err := tr.Run(context.Background(), t.TempDir(), out, false, TrainHooks{OnStep: func(s StepStats) { losses = append(losses, s.Loss) }})
	if err != nil {
		t.Fatal(err)
	}
	n := len(losses)
	early, late := mean(losses[:5]), mean(losses[n-5:])
	t.Logf("MICE MarginMSE from the cross-encoder: loss %.3g → %.3g", early, late)
	if !(late < 0.7*early) {
		t.Errorf("loss did not fall by 30%%: %.4f → %.4f", early, late)
	}
	if meta.Kind != "mice" {
		t.Errorf("meta kind %q, want mice", meta.Kind)
	}
	sc, err := LoadScorer(out, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	back, ok := sc.(*MICE)
	if !ok {
		t.Fatalf("kept model loads as %T, want *MICE", sc)
	}
	if fmt.Sprint(back.Cfg) != fmt.Sprint(toyMICECfg) {
		t.Errorf("kept MICE config %+v, want %+v", back.Cfg, toyMICECfg)
	}
	qs, ds := []string{"cat mouse", "star night sky"}, []string{toyDocs["cat2"], toyDocs["rain1"]}
	got, err := back.ScorePairs(qs, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), back.Forward(qs, ds)...)
	for i := range got {
		if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
			t.Errorf("pair %d: ScorePairs %g, training pass %g", i, got[i], want[i])
		}
	}
}

// A MICE run interrupted after step 3 and resumed ends with the weights of
// an uninterrupted run, bit for bit; a run with another MICE shape does
// not resume that state.
func TestMICEResumeExact(t *testing.T) {
	dir := toyCrossEncoder(t, 7)
	src, _ := toyData()
	opt := toyOptions(MarginMSE)
	opt.Steps, opt.CheckpointEvery = 6, 2
	run := func(work string, cfg MICEConfig, stopAt int, resume bool) (*MICE, error) {
		m := loadMICE(t, dir, cfg)
		tr, err := NewTrainer(m, []splade.Source{src}, nil, opt)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err = tr.Run(ctx, work, filepath.Join(work, "out"), resume, TrainHooks{OnStep: func(s StepStats) {
			if s.Step == stopAt {
				cancel()
			}
		}})
		return m, err
	}
	full, err := run(t.TempDir(), toyMICECfg, -1, false)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if _, err := run(work, toyMICECfg, 3, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	other := toyMICECfg
	other.Light = false
	if _, err := run(work, other, -1, true); err == nil {
		t.Error("a MICE of another shape resumed the state")
	}
	resumed, err := run(work, toyMICECfg, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range full.Base().Params {
		if fmt.Sprint(p.W) != fmt.Sprint(resumed.Base().Params[i].W) {
			t.Fatalf("parameter %s differs after resuming", p.Name)
		}
	}
}

// toyCrossEncoderInit is toyCrossEncoder with initializer_range std.
func toyCrossEncoderInit(t testing.TB, seed uint64, std float64) string {
	t.Helper()
	tok := toyTokenizer(t)
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	cfg := nn.BERTConfig(tok.VocabSize(), 32, 2, 2, 64, 64)
	cfg.InitializerRange = std
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
