package pretrain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/curves"
	"github.com/spladapt/spladapt/nn"
)

// toyCorpus writes a JSONL corpus of n short documents over a small
// vocabulary with some structure (word pairs that co-occur).
func toyCorpus(t *testing.T, n int, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega")
	var b strings.Builder
	for i := 0; i < n; i++ {
		var doc []string
		for j := 0; j < 20+rng.IntN(20); j++ {
			w := rng.IntN(len(words) / 2)
			doc = append(doc, words[2*w], words[2*w+1]) // pairs: predictable partner
		}
		fmt.Fprintf(&b, `{"_id": "d%d", "title": "", "text": %q}`+"\n", i, strings.Join(doc, " "))
	}
	p := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tinyConfig is config.Default().Pretrain shrunk to a model of two layers
// of width 32 trained for 12 steps.
func tinyConfig() Settings {
	return Settings{Arch: "bert", Layers: 2, Hidden: 32, Heads: 4, FF: 64, MaxPositions: 64,
		VocabSize: 120, SeqLen: 32, BatchSize: 8, GradAccum: 1, Steps: 12,
		LR: 3e-3, WarmupSteps: 2, WeightDecay: 0.01, MaxGradNorm: 1, MaskProb: 0.15, Init: "bert",
		HeldoutEvery: 10, HeldoutMax: 0, EvalEvery: 4, CheckpointEvery: 4,
		TrainParams: "all", DomainLayers: 2, Seed: 1}
}

func losses(t *testing.T, dir string) []float64 {
	t.Helper()
	l, err := curves.ReadCSV(filepath.Join(dir, "curves.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, p := range l.Points {
		out = append(out, p.Values["loss"])
	}
	return out
}

// TestTrainResumeGivesTheSameCurve: a run interrupted and resumed repeats
// the uninterrupted curve, with MLM alone and with the pair task (pairs,
// like masks, are drawn from (seed, epoch, sequence)).
func TestTrainResumeGivesTheSameCurve(t *testing.T) {
	for _, pair := range []string{"none", "nsp"} {
		t.Run(pair, func(t *testing.T) { testResume(t, pair) })
	}
}

func testResume(t *testing.T, pairTask string) {
	corpus := toyCorpus(t, 120, 1)
	dir := t.TempDir()
	cfg := tinyConfig()
	if pairTask != "none" {
		cfg.PairTask, cfg.PairWeight = pairTask, 0.5
	}
	base := Options{Corpora: []string{corpus}, FromScratch: true, Settings: cfg, Progress: "off",
		CacheDir: filepath.Join(dir, "cache")}

	straight := base
	straight.Out = filepath.Join(dir, "straight")
	res, err := Train(context.Background(), straight)
	if err != nil {
		t.Fatal(err)
	}
	want := losses(t, straight.Out)
	if len(want) != 12 || res.Steps != 12 {
		t.Fatalf("straight run: %d curve points, %d steps; want 12", len(want), res.Steps)
	}
	if !(want[len(want)-1] < want[0]) || math.IsNaN(res.HeldoutPPL) {
		t.Errorf("loss did not fall: first %.4f last %.4f, held-out ppl %g", want[0], want[len(want)-1], res.HeldoutPPL)
	}

	// Stop after step 6 (not a checkpoint step), then resume.
	broken := base
	broken.Out = filepath.Join(dir, "broken")
	ctx, cancel := context.WithCancel(context.Background())
	broken.OnStep = func(step int, _ float64) {
		if step == 6 {
			cancel()
		}
	}
	if _, err := Train(ctx, broken); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	broken.OnStep = nil
	if _, err := Train(context.Background(), broken); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("restart without --resume: err = %v, want a hint to pass --resume", err)
	}
	broken.Resume = true
	other := broken
	other.Settings.LR *= 2
	if _, err := Train(context.Background(), other); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Fatalf("resume with another learning rate: err = %v", err)
	}
	if _, err := Train(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	got := losses(t, broken.Out)
	if len(got) != len(want) {
		t.Fatalf("resumed curve has %d points, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
			t.Errorf("step %d: resumed loss %.7f, uninterrupted %.7f", i+1, got[i], want[i])
		}
		if testing.Verbose() {
			t.Logf("step %d: %.9f %.9f", i+1, got[i], want[i])
		}
	}
	if _, err := os.Stat(broken.Out + ".work"); !os.IsNotExist(err) {
		t.Errorf("work directory left after a finished run")
	}
	// The final weights agree too, within floating-point noise: kernels
	// round by 1 ulp differently for buffers at other offsets (a fresh
	// process has not run the held-out pass), and Adam's normalisation
	// turns 1-ulp changes of near-zero gradients into visible steps. A
	// resume that lost the optimizer moments differs by ~10%.
	a, _ := nn.LoadHF(straight.Out)
	b, _ := nn.LoadHF(broken.Out)
	var diff, norm float64
	for i, p := range a.Params {
		for j := range p.W {
			d := float64(p.W[j] - b.Params[i].W[j])
			diff += d * d
			norm += float64(p.W[j]) * float64(p.W[j])
		}
	}
	if rel := math.Sqrt(diff / norm); rel > 1e-2 {
		t.Errorf("final weights differ by %.2e (relative L2) between resumed and uninterrupted runs", rel)
	}
}

func TestTrainDomainOnlyFreezesTask(t *testing.T) {
	corpus := toyCorpus(t, 60, 2)
	dir := t.TempDir()
	cfg := tinyConfig()
	cfg.Steps = 3
	init := Options{Corpora: []string{corpus}, FromScratch: true, Settings: cfg, Progress: "off", Out: filepath.Join(dir, "base")}
	if _, err := Train(context.Background(), init); err != nil {
		t.Fatal(err)
	}
	cfg.TrainParams = "domain"
	cont := Options{Corpora: []string{toyCorpus(t, 60, 3)}, Init: init.Out, Settings: cfg, Progress: "off", Out: filepath.Join(dir, "dom")}
	res, err := Train(context.Background(), cont)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := nn.LoadHF(init.Out)
	after, _ := nn.LoadHF(cont.Out)
	changedDom := 0
	for i, p := range after.Params {
		same := true
		for j := range p.W {
			if p.W[j] != before.Params[i].W[j] {
				same = false
				break
			}
		}
		if nn.IsDomainParam(p.Name, cfg.DomainLayers) {
			if !same {
				changedDom++
			}
		} else if !same {
			t.Errorf("P_task parameter %s changed during domain-only training", p.Name)
		}
	}
	if changedDom == 0 {
		t.Error("no P_domain parameter changed")
	}
	meta, err := ReadMeta(cont.Out)
	if err != nil || meta[MetaTrainedParams] != "domain" || meta[MetaDomainLayers] != "2" || res.TrainParams != "domain" {
		t.Errorf("checkpoint records %v (%v), result %q", meta, err, res.TrainParams)
	}
	for _, f := range []string{"training.json", "curves.csv", "curves.svg", "vocab.txt", "config.json"} {
		if _, err := os.Stat(filepath.Join(cont.Out, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	// Held-out perplexity on the corpus it continued on is measurable and finite.
	_, ppl, n, err := EvalCorpus(context.Background(), cont.Out, cont.Corpora, cfg, "", cont.CorpusOpts)
	if err != nil || n == 0 || math.IsNaN(ppl) || ppl <= 1 {
		t.Errorf("EvalCorpus: ppl %g over %d positions, %v", ppl, n, err)
	}
}

// TestTrainResumesFormat0State resumes the state a pretrain run wrote
// before the format of docs/format/train-state.md (state.json,
// optim.safetensors; testdata/legacy-state: TestTrainResumeGivesTheSameCurve's
// run stopped after step 6, written by commit 206256a) and checks that the
// continuation repeats the uninterrupted run, as a resume of the current
// format does.
func TestTrainResumesFormat0State(t *testing.T) {
	corpus := toyCorpus(t, 120, 1)
	dir := t.TempDir()
	straight := Options{Corpora: []string{corpus}, FromScratch: true, Settings: tinyConfig(), Progress: "off",
		CacheDir: filepath.Join(dir, "cache"), Out: filepath.Join(dir, "straight")}
	if _, err := Train(context.Background(), straight); err != nil {
		t.Fatal(err)
	}
	want := losses(t, straight.Out)

	old := straight
	old.Out, old.Resume = filepath.Join(dir, "old"), true
	if err := os.CopyFS(filepath.Join(old.Out+".work", "state"), os.DirFS(filepath.Join("testdata", "legacy-state", "state"))); err != nil {
		t.Fatal(err)
	}
	var steps []int
	old.OnStep = func(step int, _ float64) { steps = append(steps, step) }
	res, err := Train(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || len(steps) != 6 || steps[0] != 7 {
		t.Fatalf("resumed %v, steps %v; want steps 7…12 of a resumed run", res.Resumed, steps)
	}
	got := losses(t, old.Out)
	if len(got) != len(want) {
		t.Fatalf("resumed curve has %d points, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
			t.Errorf("step %d: resumed loss %.7f, uninterrupted %.7f", i+1, got[i], want[i])
		}
	}
	a, _ := nn.LoadHF(straight.Out)
	b, _ := nn.LoadHF(old.Out)
	var diff, norm float64
	for i, p := range a.Params {
		for j := range p.W {
			d := float64(p.W[j] - b.Params[i].W[j])
			diff += d * d
			norm += float64(p.W[j]) * float64(p.W[j])
		}
	}
	if rel := math.Sqrt(diff / norm); rel > 1e-2 {
		t.Errorf("final weights differ by %.2e (relative L2) between resumed and uninterrupted runs", rel)
	}

	// Other settings are refused as with a state of the current format.
	other := straight
	other.Settings.LR *= 2
	other.Out, other.Resume = filepath.Join(dir, "other"), true
	if err := os.CopyFS(filepath.Join(other.Out+".work", "state"), os.DirFS(filepath.Join("testdata", "legacy-state", "state"))); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(context.Background(), other); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("format-0 state resumed with another learning rate: err = %v", err)
	}
}
