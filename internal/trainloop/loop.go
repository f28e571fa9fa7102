// Package trainloop is the machinery every fine-tuning run of spladapt
// shares (SPLADE in package splade, cross-encoders and MICE in package
// rerank): AdamW with the linear warm-up/decay schedule and global-norm
// clipping, the run loop with its evaluation and checkpoint cadence and
// best-model selection, and the resumable state (weights, AdamW moments,
// step, best result, curves) saved atomically and restored exactly.
//
// The trainer of a model supplies a Task: how to take one step and what
// its curve values are, how to evaluate on the dev sets, and how to write
// the selected model. Every source of randomness in a step must be a
// function of (seed, step) for a resumed run to repeat an uninterrupted one.
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
	// Step takes one optimiser step — gradients, then Loop.Update — and
	// returns the values to log for it.
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
	Opt    Options
	Model  *nn.Model // its Params are optimised and saved in the state
	Title  string    // title of the curves' chart
	Select string    // the dev measure that selects the best model
	// Key identifies the options and data that fix the trajectory: a
	// state saved under another key is not resumed.
	Key string

	StepsDone int // optimiser steps taken
	Best      float64
	BestAt    int
	BestDev   map[string]float64
	Curves    *curves.Log

	optim *nn.AdamW
	sched nn.LinearSchedule
}

// New returns a loop at step 0 over m's parameters (frozen ones are left
// alone by the optimiser).
func New(m *nn.Model, opt Options, title, sel string) *Loop {
	return &Loop{Opt: opt, Model: m, Title: title, Select: sel, Best: -1, Curves: &curves.Log{},
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

// Run trains until Opt.Steps, evaluating, checkpointing (to
// workDir/state) and keeping the best model through task as configured.
// With resume and a checkpoint in workDir it continues from there
// (identically to an uninterrupted run); without resume an existing
// checkpoint is ErrCheckpointExists. Without dev sets the model of the
// last step is the result. The context is checked between steps; on
// cancellation the state of the last step taken is saved and ctx.Err()
// returned.
func (l *Loop) Run(ctx context.Context, workDir string, resume bool, task Task, hooks Hooks) error {
	stateDir := filepath.Join(workDir, "state")
	if _, err := os.Stat(filepath.Join(stateDir, "train_state.json")); err == nil {
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
			vals["dev "+k] = v
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
	if l.StepsDone == 0 && hasDev && l.Opt.EvalEvery > 0 {
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
			if !hasDev {
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

// state is train_state.json in a checkpoint: where to resume.
type state struct {
	Format  int                `json:"format"`
	Step    int                `json:"step"`
	Key     string             `json:"key"`
	Best    float64            `json:"best"`
	BestAt  int                `json:"best_at"`
	BestDev map[string]float64 `json:"best_dev,omitempty"`
}

// Save writes the resumable state to stateDir, replaced atomically: the
// model (HF layout, stateDir/model), the AdamW moments
// (optimizer.safetensors: "m.<name>", "v.<name>", the step in the
// metadata), the curves and train_state.json.
func (l *Loop) Save(stateDir string) error {
	st := state{Format: 1, Step: l.StepsDone, Key: l.Key, Best: l.Best, BestAt: l.BestAt, BestDev: l.BestDev}
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
		if err := safetensors.WriteFile(filepath.Join(tmp, "optimizer.safetensors"), tensors,
			map[string]string{"step": strconv.Itoa(ost.Step)}); err != nil {
			return err
		}
		if err := l.Curves.Save(filepath.Join(tmp, "curves"), l.Title); err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(tmp, "train_state.json"), append(raw, '\n'), 0o644)
	})
	if err != nil {
		return fmt.Errorf("save training state %s: %w", stateDir, err)
	}
	return nil
}

// Load restores what Save wrote. The key must match, and the saved step
// must not be past Opt.Steps.
func (l *Loop) Load(stateDir string) error {
	fail := func(err error) error { return fmt.Errorf("resume from %s: %w", stateDir, err) }
	raw, err := os.ReadFile(filepath.Join(stateDir, "train_state.json"))
	if err != nil {
		return fail(err)
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return fail(err)
	}
	if st.Format != 1 {
		return fail(fmt.Errorf("train_state.json format %d, want 1", st.Format))
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
	f, err := safetensors.ReadFile(filepath.Join(stateDir, "optimizer.safetensors"))
	if err != nil {
		return fail(err)
	}
	step, err := strconv.Atoi(f.Metadata()["step"])
	if err != nil {
		return fail(fmt.Errorf("optimizer.safetensors: bad step %q", f.Metadata()["step"]))
	}
	ost := nn.AdamWState{Step: step, M: map[string][]float32{}, V: map[string][]float32{}}
	for _, p := range l.Model.Params {
		if ost.M[p.Name], _, err = f.Float32("m." + p.Name); err != nil {
			return fail(err)
		}
		if ost.V[p.Name], _, err = f.Float32("v." + p.Name); err != nil {
			return fail(err)
		}
	}
	if err := l.optim.Load(ost); err != nil {
		return fail(err)
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
