package trainloop

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
)

// toyTask takes steps whose gradients are a fixed function of the weights
// and the step, and counts them.
type toyTask struct {
	l       *Loop
	counter int // steps taken; statefulToy saves and restores it
	stopAt  int
	cancel  func()
}

// statefulToy is toyTask with its counter as its own state.
type statefulToy struct{ *toyTask }

type toyState struct {
	Counter int `json:"counter"`
}

func (k statefulToy) SaveState() (json.RawMessage, error) { return json.Marshal(toyState{k.counter}) }
func (k statefulToy) LoadState(raw json.RawMessage) error {
	var st toyState
	err := json.Unmarshal(raw, &st)
	k.counter = st.Counter
	return err
}

func (k *toyTask) Step() (map[string]float64, error) {
	nn.ZeroGrad(k.l.Model.Params)
	for i, p := range k.l.Model.Params {
		for j := range p.G {
			p.G[j] = p.W[j] + float32((i+j+k.l.StepsDone)%7)/100
		}
	}
	lr, norm := k.l.Update()
	k.counter++
	if k.l.StepsDone == k.stopAt {
		k.cancel()
	}
	return map[string]float64{"lr": lr, "grad_norm": norm}, nil
}
func (k *toyTask) HasDev() bool                          { return false }
func (k *toyTask) Evaluate() (map[string]float64, error) { return nil, nil }
func (k *toyTask) SaveBest(map[string]float64) error     { return nil }

func toyModel(t *testing.T) *nn.Model {
	t.Helper()
	m, err := nn.NewModel(nn.BERTConfig(30, 8, 1, 2, 16, 16), 7)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run trains a fresh toy model for 6 steps in work, stopping after
// stopAt, and returns the model and the task; the task is stateful for
// pretrain, as pretrain's is.
func run(t *testing.T, work string, stopAt int, resume bool, kind string) (*nn.Model, *toyTask, error) {
	t.Helper()
	m := toyModel(t)
	l := New(m, Options{LR: 1e-2, WeightDecay: 0.01, MaxGradNorm: 1, WarmupSteps: 2, Steps: 6, CheckpointEvery: 4}, "toy", "")
	l.Kind, l.Key = kind, "k1"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := &toyTask{l: l, stopAt: stopAt, cancel: cancel}
	var task Task = k
	if kind == "pretrain" {
		task = statefulToy{k}
	}
	return m, k, l.Run(ctx, work, resume, task, Hooks{})
}

func sameWeights(t *testing.T, a, b *nn.Model) {
	t.Helper()
	for i, p := range a.Params {
		for j := range p.W {
			if p.W[j] != b.Params[i].W[j] {
				t.Fatalf("%s[%d]: %g uninterrupted, %g resumed", p.Name, j, p.W[j], b.Params[i].W[j])
			}
		}
	}
}

// TestResumeFormats stops a run after step 3, rewrites its state in each
// format Load reads, resumes it, and checks that the weights equal an
// uninterrupted run's bit for bit and the task got its state back.
func TestResumeFormats(t *testing.T) {
	want, _, err := run(t, t.TempDir(), -1, false, "pretrain")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, kind string
		rewrite    func(t *testing.T, dir string)
	}{
		{"format 2", "pretrain", func(*testing.T, string) {}},
		{"format 1", "splade", func(t *testing.T, dir string) {
			var st map[string]any
			readJSON(t, filepath.Join(dir, stateFile), &st)
			st["format"] = 1
			delete(st, "trainer")
			delete(st, "task")
			writeJSON(t, filepath.Join(dir, stateFile), st)
		}},
		{"format 0", "pretrain", func(t *testing.T, dir string) {
			// state.json: the step and the task's state in one object.
			var st state
			readJSON(t, filepath.Join(dir, stateFile), &st)
			var task map[string]any
			must(t, json.Unmarshal(st.Task, &task))
			task["step"] = st.Step
			writeJSON(t, filepath.Join(dir, legacyPretrainStateFile), task)
			must(t, os.Remove(filepath.Join(dir, stateFile)))
			must(t, os.Rename(filepath.Join(dir, optimizerFile), filepath.Join(dir, legacyPretrainOptimizerFile)))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			if _, _, err := run(t, work, 3, false, c.kind); !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped run: %v", err)
			}
			c.rewrite(t, filepath.Join(work, "state"))
			m, k, err := run(t, work, -1, true, c.kind)
			if err != nil {
				t.Fatal(err)
			}
			sameWeights(t, want, m)
			wantCounter := 6 // 3 restored + 3 taken
			if c.kind != "pretrain" {
				wantCounter = 3 // no task state
			}
			if k.counter != wantCounter {
				t.Errorf("task counter %d, want %d", k.counter, wantCounter)
			}
		})
	}
}

// TestRefusals: states of another trainer, key or format are refused with
// the file named, and a state without --resume is ErrCheckpointExists.
func TestRefusals(t *testing.T) {
	work := t.TempDir()
	if _, _, err := run(t, work, 3, false, "pretrain"); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, _, err := run(t, work, -1, false, "pretrain"); !errors.Is(err, ErrCheckpointExists) {
		t.Errorf("without resume: %v", err)
	}
	if _, _, err := run(t, work, -1, true, "splade"); err == nil || !strings.Contains(err.Error(), "train_state.json is the state of a pretrain run, not of a splade run") {
		t.Errorf("another trainer: %v", err)
	}
	dir := filepath.Join(work, "state")
	var st map[string]any
	readJSON(t, filepath.Join(dir, stateFile), &st)
	st["format"] = 3
	writeJSON(t, filepath.Join(dir, stateFile), st)
	if _, _, err := run(t, work, -1, true, "pretrain"); err == nil || !strings.Contains(err.Error(), "train_state.json format 3, want 1 or 2") {
		t.Errorf("format 3: %v", err)
	}
	st["format"] = 1
	writeJSON(t, filepath.Join(dir, stateFile), st)
	if _, _, err := run(t, work, -1, true, "pretrain"); err == nil || !strings.Contains(err.Error(), "train_state.json format 1 is the state of a splade or rerank run") {
		t.Errorf("format 1 in pretrain: %v", err)
	}
	must(t, os.Rename(filepath.Join(dir, stateFile), filepath.Join(dir, legacyPretrainStateFile)))
	if _, _, err := run(t, work, -1, true, "rerank"); err == nil || !strings.Contains(err.Error(), "state.json is the state of a pretrain run (format 0), not of a rerank run") {
		t.Errorf("format 0 in rerank: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	must(t, json.Unmarshal(b, v))
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	must(t, os.WriteFile(path, b, 0o644))
}
