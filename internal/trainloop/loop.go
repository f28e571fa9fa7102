// Package trainloop is the machinery every training run of spladapt
// shares (MLM pretraining in package pretrain, SPLADE in package splade,
// cross-encoders and MICE in package rerank): AdamW with the linear
// warm-up/decay schedule and global-norm clipping, the run loop with its
// evaluation and checkpoint cadence and best-model selection, and the
// resumable state (weights, AdamW moments, step, best result, curves, the
// task's own state) saved atomically and restored exactly, in the format
// of docs/format/train-state.md.
//
// The trainer of a model supplies a Task: how to take one step (its
// gradients, then Loop.Update; or its micro-batches' gradients through
// Loop.Accumulate) and what its curve values are, how to evaluate on the dev
// sets, and how to write the selected model. Every source of randomness in
// a step must be a function of (seed, step) for a resumed run to repeat an
// uninterrupted one; state that is not (a data position, counters) is the
// task's to save (StatefulTask).
package trainloop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/curves"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
)

// Options are the optimiser's and the run's settings.
type Options struct {
	LR          float64 // peak learning rate
	WeightDecay float64 // AdamW decoupled weight decay
	MaxGradNorm float64 // clip the global gradient norm (≤ 0: no clipping)
	WarmupSteps int     // linear learning-rate warm-up steps
	Steps       int     // optimiser steps in all
	// GradAccum is the number of micro-batches whose gradients make one
	// step, for a task that steps through Accumulate (≤ 1: one).
	GradAccum int
	// EvalEvery evaluates every this many steps, at the last step and,
	// when > 0, before the first step (the initial model is a candidate
	// too); 0 only at the last step. A task without dev sets is never
	// evaluated.
	EvalEvery int
	// CheckpointEvery saves the resumable state every this many steps and
	// at the last step; 0 only at the last step.
	CheckpointEvery int
}

// Task is one model's part of a run.
type Task interface {
	// Step takes one optimiser step — gradients, then Loop.Update, or
	// both through Loop.Accumulate — and returns the values to log for it.
	Step() (map[string]float64, error)
	// HasDev reports whether Evaluate has dev sets to evaluate on.
	HasDev() bool
	// Evaluate returns the dev measures of the current weights; the
	// Loop's Select measure picks the best model.
	Evaluate() (map[string]float64, error)
	// SaveBest writes the current model as the run's result, with its dev
	// measures (nil without dev sets).
	SaveBest(dev map[string]float64) error
}

// StatefulTask is a Task with state of its own to resume, saved as JSON
// beside the loop's (train_state.json's "task").
type StatefulTask interface {
	Task
	// SaveState returns the task's state after the steps taken so far.
	SaveState() (json.RawMessage, error)
	// LoadState restores what SaveState returned (or, for a checkpoint of
	// pretrain's format 0, the whole state.json), or refuses it: it is
	// called before the weights are restored, so a refusal leaves the
	// model as it was.
	LoadState(raw json.RawMessage) error
}

// Hooks observe a run; any may be nil.
type Hooks struct {
	OnEval       func(step int, metrics map[string]float64, best bool)
	OnCheckpoint func(step int)
}

// ErrCheckpointExists is returned by Run when the work directory already
// holds a checkpoint and resuming was not asked for.
var ErrCheckpointExists = errors.New("work directory holds a checkpoint")

// Loop is the state of a run: the optimiser, the step count, the best dev
// result and the curves. Not safe for concurrent use.
type Loop struct {
	Opt   Options
	Model *nn.Model // its Params are optimised and saved in the state
	Title string    // title of the curves' chart
	// Select is the dev measure that selects the best model. Empty: dev
	// measures are only logged (at EvalEvery, never before the first
	// step), and the model of the last step is the result.
	Select string
	// Kind names the trainer ("pretrain", "splade", "rerank"); a state
	// saved by another kind is not resumed.
	Kind string
	// EvalPrefix is put before each dev measure's name in the curves
	// ("dev " unless changed).
	EvalPrefix string
	// Key identifies the options and data that fix the trajectory: a
	// state saved under another key is not resumed.
	Key string

	StepsDone int // optimiser steps taken
	Best      float64
	BestAt    int
	BestDev   map[string]float64
	Curves    *curves.Log

	optim    *nn.AdamW
	sched    nn.LinearSchedule
	stateful StatefulTask // the running task, when it has state of its own
}

// New returns a loop at step 0 over m's parameters (frozen ones are left
// alone by the optimiser).
func New(m *nn.Model, opt Options, title, sel string) *Loop {
	return &Loop{Opt: opt, Model: m, Title: title, Select: sel, EvalPrefix: "dev ", Best: -1, Curves: &curves.Log{},
		optim: nn.NewAdamW(m.Params, opt.WeightDecay),
		sched: nn.LinearSchedule{Warmup: opt.WarmupSteps, Total: opt.Steps}}
}

// Update clips the global gradient norm, takes the AdamW step of the
// schedule at the current step and counts it. It returns the learning
// rate used and the norm before clipping.
func (l *Loop) Update() (lr, norm float64) {
	norm = nn.ClipGradNorm(l.Model.Params, l.Opt.MaxGradNorm)
	lr = l.Opt.LR * l.sched.Factor(l.StepsDone)
	l.optim.Step(lr)
	l.StepsDone++
	return lr, norm
}

// Accumulate takes one optimiser step over Opt.GradAccum micro-batches:
// it zeroes the gradients, calls micro for each (0-based index, and the
// scale 1/GradAccum its backward must apply to the gradients), then
// Update. It returns the mean of the micro-batches' losses, the learning
// rate and the gradient norm before clipping.
func (l *Loop) Accumulate(micro func(i int, scale float32) (loss float64, err error)) (loss, lr, norm float64, err error) {
	n := max(l.Opt.GradAccum, 1)
	nn.ZeroGrad(l.Model.Params)
	for i := range n {
		li, err := micro(i, float32(1/float64(n)))
		if err != nil {
			return 0, 0, 0, err
		}
		loss += li / float64(n)
	}
	lr, norm = l.Update()
	return loss, lr, norm, nil
}

// HasState reports whether workDir holds a resumable state (of any
// format Load reads).
func HasState(workDir string) bool {
	for _, f := range []string{stateFile, legacyPretrainStateFile} {
		if _, err := os.Stat(filepath.Join(workDir, "state", f)); err == nil {
			return true
		}
	}
	return false
}

// StateModelDir is the directory of the model (HF layout, with its
// tokenizer files) in the resumable state of workDir.
func StateModelDir(workDir string) string { return filepath.Join(workDir, "state", "model") }

// Run trains until Opt.Steps, evaluating, checkpointing (to
// workDir/state) and keeping the best model through task as configured.
// With resume and a checkpoint in workDir it continues from there
// (identically to an uninterrupted run); without resume an existing
// checkpoint is ErrCheckpointExists. Without dev sets, or without Select,
// the model of the last step is the result. The context is checked
// between steps; on cancellation the state of the last step taken is
// saved and ctx.Err() returned.
func (l *Loop) Run(ctx context.Context, workDir string, resume bool, task Task, hooks Hooks) error {
	stateDir := filepath.Join(workDir, "state")
	l.stateful, _ = task.(StatefulTask)
	defer func() { l.stateful = nil }()
	if HasState(workDir) {
		if !resume {
			return fmt.Errorf("train: %w: %s (pass --resume to continue it, or remove it)", ErrCheckpointExists, stateDir)
		}
		if err := l.Load(stateDir); err != nil {
			return err
		}
	}
	every := func(n, s int) bool { return s == l.Opt.Steps || (n > 0 && s%n == 0) }
	saved := l.StepsDone
	// seconds is the wall-clock time of the run so far (steps and dev
	// evaluations), recorded in the curve and continued across resumes.
	var seconds float64
	if n := len(l.Curves.Points); n > 0 {
		seconds = l.Curves.Points[n-1].Values["seconds"]
	}
	last := time.Now()
	clock := func() float64 {
		now := time.Now()
		seconds += now.Sub(last).Seconds()
		last = now
		return seconds
	}
	evaluate := func(vals map[string]float64) error {
		ms, err := task.Evaluate()
		if err != nil {
			return err
		}
		for k, v := range ms {
			vals[l.EvalPrefix+k] = v
		}
		if l.Select == "" {
			if hooks.OnEval != nil {
				hooks.OnEval(l.StepsDone, ms, false)
			}
			return nil
		}
		sel := ms[l.Select]
		better := sel > l.Best
		if better {
			l.Best, l.BestAt, l.BestDev = sel, l.StepsDone, ms
			if err := task.SaveBest(ms); err != nil {
				return err
			}
		}
		if hooks.OnEval != nil {
			hooks.OnEval(l.StepsDone, ms, better)
		}
		return nil
	}
	hasDev := task.HasDev()
	selects := hasDev && l.Select != ""
	if l.StepsDone == 0 && selects && l.Opt.EvalEvery > 0 {
		vals := map[string]float64{}
		if err := evaluate(vals); err != nil {
			return err
		}
		vals["seconds"] = clock()
		l.Curves.Add(0, vals)
	}
	for l.StepsDone < l.Opt.Steps {
		if err := ctx.Err(); err != nil {
			if l.StepsDone > saved {
				if serr := l.Save(stateDir); serr != nil {
					return errors.Join(err, serr)
				}
			}
			return err
		}
		vals, err := task.Step()
		if err != nil {
			return err
		}
		if hasDev && every(l.Opt.EvalEvery, l.StepsDone) {
			if err := evaluate(vals); err != nil {
				return err
			}
		}
		vals["seconds"] = clock()
		l.Curves.Add(l.StepsDone, vals)
		if every(l.Opt.CheckpointEvery, l.StepsDone) {
			if !selects {
				if err := task.SaveBest(nil); err != nil {
					return err
				}
			}
			if err := l.Save(stateDir); err != nil {
				return err
			}
			saved = l.StepsDone
			if hooks.OnCheckpoint != nil {
				hooks.OnCheckpoint(l.StepsDone)
			}
		}
	}
	return nil
}

// The files of a resumable state (docs/format/train-state.md).
const (
	stateFile     = "train_state.json"
	optimizerFile = "optimizer.safetensors"
	// StateFormat is the version of train_state.json this package writes.
	// Format 1 (splade and rerank before pretrain joined the loop) had
	// neither "trainer" nor "task"; Load reads it.
	StateFormat = 2
	// pretrain's own layout before format 2 ("format 0"): state.json and
	// optim.safetensors beside the same model/ and curves.
	legacyPretrainStateFile     = "state.json"
	legacyPretrainOptimizerFile = "optim.safetensors"
)

// state is train_state.json in a checkpoint: where to resume.
type state struct {
	Format  int                `json:"format"`
	Trainer string             `json:"trainer,omitempty"`
	Step    int                `json:"step"`
	Key     string             `json:"key"`
	Best    float64            `json:"best"`
	BestAt  int                `json:"best_at"`
	BestDev map[string]float64 `json:"best_dev,omitempty"`
	Task    json.RawMessage    `json:"task,omitempty"`
}

// Save writes the resumable state to stateDir, replaced atomically: the
// model (HF layout, stateDir/model), the AdamW moments
// (optimizer.safetensors: "m.<name>", "v.<name>", the step in the
// metadata), the curves and train_state.json (format StateFormat, with
// the running StatefulTask's state).
func (l *Loop) Save(stateDir string) error {
	st := state{Format: StateFormat, Trainer: l.Kind, Step: l.StepsDone, Key: l.Key, Best: l.Best, BestAt: l.BestAt, BestDev: l.BestDev}
	if l.stateful != nil {
		raw, err := l.stateful.SaveState()
		if err != nil {
			return fmt.Errorf("save training state %s: %w", stateDir, err)
		}
		st.Task = raw
	}
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	ost := l.optim.State()
	var tensors []safetensors.Named
	for _, p := range l.Model.Params {
		tensors = append(tensors,
			safetensors.Named{Name: "m." + p.Name, Shape: p.Shape, Data: ost.M[p.Name]},
			safetensors.Named{Name: "v." + p.Name, Shape: p.Shape, Data: ost.V[p.Name]})
	}
	err = atomicfile.Dir(stateDir, func(tmp string) error {
		if err := l.Model.SaveHF(filepath.Join(tmp, "model"), nil); err != nil {
			return err
		}
		if err := safetensors.WriteFile(filepath.Join(tmp, optimizerFile), tensors,
			map[string]string{"step": strconv.Itoa(ost.Step)}); err != nil {
			return err
		}
		if err := l.Curves.Save(filepath.Join(tmp, "curves"), l.Title); err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(tmp, stateFile), append(raw, '\n'), 0o644)
	})
	if err != nil {
		return fmt.Errorf("save training state %s: %w", stateDir, err)
	}
	return nil
}

// readState reads the state of stateDir in any format Load accepts and
// returns it as format 2 with the name of its optimizer file.
func (l *Loop) readState(stateDir string) (state, string, error) {
	var st state
	raw, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		// Format 0: pretrain's state.json, {"step", "position", "tokens",
		// "seconds", "config"}; all but the step are the task's.
		raw, err = os.ReadFile(filepath.Join(stateDir, legacyPretrainStateFile))
		if err != nil {
			return st, "", err
		}
		if l.Kind != "pretrain" {
			return st, "", fmt.Errorf("%s is the state of a pretrain run (format 0), not of a %s run: use another work directory", legacyPretrainStateFile, l.Kind)
		}
		var old struct {
			Step *int `json:"step"`
		}
		if err := json.Unmarshal(raw, &old); err != nil || old.Step == nil {
			return st, "", fmt.Errorf("%s: not a pretrain state (%v)", legacyPretrainStateFile, err)
		}
		return state{Format: 0, Trainer: "pretrain", Step: *old.Step, Key: l.Key, Best: -1, Task: raw}, legacyPretrainOptimizerFile, nil
	}
	if err != nil {
		return st, "", err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, "", fmt.Errorf("%s: %w", stateFile, err)
	}
	switch st.Format {
	case 1:
		// splade and rerank before format 2: no trainer, no task state.
		if l.Kind == "pretrain" {
			return st, "", fmt.Errorf("%s format 1 is the state of a splade or rerank run, not of a pretrain run: use another work directory", stateFile)
		}
		st.Trainer = l.Kind
	case StateFormat:
	default:
		return st, "", fmt.Errorf("%s format %d, want 1 or %d (written by another version of spladapt? remove the work directory to start again)", stateFile, st.Format, StateFormat)
	}
	if st.Trainer != l.Kind {
		return st, "", fmt.Errorf("%s is the state of a %s run, not of a %s run: use another work directory", stateFile, st.Trainer, l.Kind)
	}
	return st, optimizerFile, nil
}

// Load restores what Save wrote, or a state of format 1 (splade, rerank)
// or 0 (pretrain's state.json and optim.safetensors). The trainer kind and
// the key must match (a format-0 state has no key: its task checks it),
// the running StatefulTask must accept its state, and the saved step must
// not be past Opt.Steps.
func (l *Loop) Load(stateDir string) error {
	fail := func(err error) error { return fmt.Errorf("resume from %s: %w", stateDir, err) }
	st, optFile, err := l.readState(stateDir)
	if err != nil {
		return fail(err)
	}
	if l.stateful != nil {
		if len(st.Task) == 0 {
			return fail(fmt.Errorf("%s holds no task state", stateFile))
		}
		if err := l.stateful.LoadState(st.Task); err != nil {
			return fail(err)
		}
	}
	if st.Key != l.Key {
		return fail(fmt.Errorf("the checkpoint was made with other training options or data (key %s, now %s): use the same settings, or another work directory", st.Key, l.Key))
	}
	if st.Step > l.Opt.Steps {
		return fail(fmt.Errorf("checkpoint at step %d is past the %d steps asked", st.Step, l.Opt.Steps))
	}
	mf, err := safetensors.ReadFile(filepath.Join(stateDir, "model", "model.safetensors"))
	if err != nil {
		return fail(err)
	}
	for _, p := range l.Model.Params {
		w, _, err := mf.Float32(p.Name)
		if err != nil || len(w) != len(p.W) {
			return fail(fmt.Errorf("checkpoint model lacks %s or has another shape", p.Name))
		}
		copy(p.W, w)
	}
	f, err := safetensors.ReadFile(filepath.Join(stateDir, optFile))
	if err != nil {
		return fail(err)
	}
	step, err := strconv.Atoi(f.Metadata()["step"])
	if err != nil {
		return fail(fmt.Errorf("%s: bad step %q", optFile, f.Metadata()["step"]))
	}
	ost := nn.AdamWState{Step: step, M: map[string][]float32{}, V: map[string][]float32{}}
	for _, p := range l.Model.Params {
		if ost.M[p.Name], _, err = f.Float32("m." + p.Name); err != nil {
			return fail(fmt.Errorf("%s: %w", optFile, err))
		}
		if ost.V[p.Name], _, err = f.Float32("v." + p.Name); err != nil {
			return fail(fmt.Errorf("%s: %w", optFile, err))
		}
	}
	if err := l.optim.Load(ost); err != nil {
		return fail(fmt.Errorf("%s: %w", optFile, err))
	}
	log, err := curves.ReadCSV(filepath.Join(stateDir, "curves.csv"))
	if err != nil {
		return fail(err)
	}
	log.Truncate(st.Step)
	l.Curves = log
	l.StepsDone, l.Best, l.BestAt, l.BestDev = st.Step, st.Best, st.BestAt, st.BestDev
	return nil
}

// SaveModelDir writes m to out in HF layout (config.json,
// model.safetensors with meta, the tokenizer files) plus the files extra
// writes into the same temporary directory, and the curves so far as
// curves.csv/curves.svg; out is replaced atomically.
func (l *Loop) SaveModelDir(out string, meta map[string]string, extra func(tmp string) error) error {
	return atomicfile.Dir(out, func(tmp string) error {
		hf := filepath.Join(tmp, "hf")
		if err := l.Model.SaveHF(hf, meta); err != nil {
			return err
		}
		ents, err := os.ReadDir(hf)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := os.Rename(filepath.Join(hf, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
				return err
			}
		}
		if err := os.Remove(hf); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(tmp); err != nil {
				return err
			}
		}
		return l.Curves.Save(filepath.Join(tmp, "curves"), l.Title)
	})
}
