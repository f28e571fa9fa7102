package splade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spladapt/spladapt/internal/grow"
	"github.com/spladapt/spladapt/internal/trainloop"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// SPLADE training.
//
// One optimiser step on B triples (query, positive, NNeg hard negatives):
//
//	tokenise and pad Q (B,Tq), P (B,Tp), N (B·NNeg,Tn)          BuildTrainBatch
//	for X in Q, P, N, each in its own nn.Pass:
//	    h = Encode(X) (R,T,C);  z = HeadTransform(h) (R·T,C)
//	    W_X = SpladeHeadForward(z) (R,V), argmax (R,V)            the model's pooling
//	Total = InfoNCE(Q; P,N) + λ_t·reg(Q) + λ_t·FLOPS([P;N]) (+ MarginMSE)   Objective
//	for X: dz = SpladeHeadBackward(dW_X)  (sparse: w > 0 only)
//	       dh = HeadTransformBackward(dz); Backward(dh)   (gradients accumulate:
//	                                                        weights are shared)
//	clip the global gradient norm; AdamW step with the linear schedule
//
// Every source of randomness is a function of (Seed, step): the order of
// the triples (one seeded permutation per epoch), the choice of negatives
// and the dropout masks. A run resumed from the checkpoint of step s
// therefore repeats exactly the steps s+1… of an uninterrupted run.

// TrainOptions configure a Trainer. Zero values are not defaults: fill
// them from config (the CLI does) or by hand.
type TrainOptions struct {
	Weights     Weights // loss weights; Weights.WarmupSteps is the λ warm-up T
	LR          float64 // peak learning rate
	WeightDecay float64 // AdamW decoupled weight decay
	MaxGradNorm float64 // clip the global gradient norm (≤ 0: no clipping)
	WarmupSteps int     // linear learning-rate warm-up steps
	Steps       int     // optimiser steps in all
	BatchSize   int     // triples per step (B)
	NNeg        int     // hard negatives per triple
	QueryMaxLen int     // tokens per query, [CLS] and [SEP] included
	DocMaxLen   int     // tokens per training document
	// DevDocMaxLen and DevTopN are the document length and the top-n
	// pruning of dev evaluation — those the model will be encoded with —
	// so that model selection sees the deployed vectors (0: DocMaxLen, and
	// DevTopN).
	DevDocMaxLen int
	DevTopN      int
	Seed         uint64
	// TrainParams is "all", "task" (P_task only: the adaptation method's
	// fine-tuning step) or "domain" (P_domain only), with DomainLayers the
	// k of nn.IsDomainParam.
	TrainParams  string
	DomainLayers int
	Dropout      bool // dropout (the model's config rates) while training
	// QueryEncoder is QueryEncoderModel (queries through the model) or
	// QueryEncoderIDF (inference-free: queries are their tokens weighted
	// by Trainer.QueryWeights; only documents train the model, and the
	// query regularisers do not apply).
	QueryEncoder string
	// Pooling sets the model's SPLADE pooling before training (nn.Config.
	// SpladePooling, saved in its config.json): "max", "sum", or "" to keep
	// the checkpoint's.
	Pooling string
	// EvalEvery evaluates on the dev sets every this many steps, at the
	// last step and, when > 0, before the first step (the initial model is
	// a candidate too); 0 only at the last step. No dev sets: no
	// evaluation.
	EvalEvery int
	// CheckpointEvery saves the resumable state to WorkDir every this many
	// steps (and at the last step); 0 only at the last step.
	CheckpointEvery int
	EvalDepth       int // hits per dev query (default 100)
	// EncodeBatch is the batch size of dev-set encoding (default 32).
	EncodeBatch int
}

// Validate checks the options.
func (o *TrainOptions) Validate() error {
	switch {
	case o.Steps < 1:
		return fmt.Errorf("train: steps %d, want ≥ 1", o.Steps)
	case o.BatchSize < 1 || o.NNeg < 1:
		return fmt.Errorf("train: batch size %d and negatives %d must be ≥ 1", o.BatchSize, o.NNeg)
	case o.QueryMaxLen < 2 || o.DocMaxLen < 2:
		return fmt.Errorf("train: max lengths %d (queries) and %d (documents) must be ≥ 2", o.QueryMaxLen, o.DocMaxLen)
	case !(o.LR > 0):
		return fmt.Errorf("train: learning rate %g, want > 0", o.LR)
	case o.WarmupSteps < 0 || o.EvalEvery < 0 || o.CheckpointEvery < 0:
		return fmt.Errorf("train: warm-up, eval-every and checkpoint-every must be ≥ 0")
	}
	switch o.TrainParams {
	case "all", "task", "domain":
	default:
		return fmt.Errorf("train: train params %q, want all, task or domain", o.TrainParams)
	}
	if _, err := nn.ParsePooling(o.Pooling); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	switch o.QueryEncoder {
	case QueryEncoderModel, QueryEncoderIDF, "":
	default:
		return fmt.Errorf("train: query encoder %q, want %s or %s", o.QueryEncoder, QueryEncoderModel, QueryEncoderIDF)
	}
	return nil
}

// Source is one training set: triples whose ids refer to texts.
type Source struct {
	Name    string // e.g. the collection directory, recorded in the metadata
	Triples []Triple
	Texts   *Texts
}

// Trainer trains a SPLADE model. It is not safe for concurrent use.
type Trainer struct {
	Model *nn.Model
	Tok   *tokenize.Tokenizer
	Opt   TrainOptions

	sources []Source
	triples []Triple // all sources, ids prefixed "<source>\x00"
	texts   *Texts
	dev     []*DevSet
	// Loop holds the optimiser, the step count (StepsDone), the best dev
	// result (Best, BestAt, BestDev) and the curves.
	*trainloop.Loop

	order trainloop.Order // the order of the triples

	passes [3]*nn.Pass
	heads  [3]headBuf
	grads  Grads[float32]
	// QueryWeights (V) are the query-token weights of an inference-free
	// model (Opt.QueryEncoder idf); nil otherwise.
	QueryWeights []float32
}

// headBuf holds one pass's pooled output for its backward.
type headBuf struct {
	z      []float32 // (R·T, C) head transform output, owned by the pass
	out    []float32 // (R, V)
	argmax []int32   // (R, V)
	dz     []float32 // (R·T, C)
	b      nn.Batch
}

// NewTrainer prepares training of m on the sources: it freezes parameters
// as opt.TrainParams says and creates the AdamW optimiser. Triple ids are
// kept apart per source, so two sources may reuse ids.
//
// An inference-free run (opt.QueryEncoder idf) needs queryWeights, a (V)
// vector (ComputeIDF); a two-sided run takes nil.
func NewTrainer(m *nn.Model, tok *tokenize.Tokenizer, sources []Source, dev []*DevSet, opt TrainOptions, queryWeights []float32) (*Trainer, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if opt.QueryEncoder == "" {
		opt.QueryEncoder = QueryEncoderModel
	}
	if (opt.QueryEncoder == QueryEncoderIDF) != (queryWeights != nil) {
		return nil, fmt.Errorf("train: query encoder %s with %d query weights (idf needs them, model takes none)", opt.QueryEncoder, len(queryWeights))
	}
	if queryWeights != nil && len(queryWeights) != m.Config.VocabSize {
		return nil, fmt.Errorf("train: %d query weights for a vocabulary of %d", len(queryWeights), m.Config.VocabSize)
	}
	if opt.QueryEncoder == QueryEncoderIDF {
		opt.Weights.FLOPSQ, opt.Weights.L1Q = 0, 0
	}
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("train: tokenizer has %d tokens, model vocab_size is %d", tok.VocabSize(), m.Config.VocabSize)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("train: no training source")
	}
	if opt.QueryMaxLen > m.Config.MaxPositions || opt.DocMaxLen > m.Config.MaxPositions {
		opt.QueryMaxLen = min(opt.QueryMaxLen, m.Config.MaxPositions)
		opt.DocMaxLen = min(opt.DocMaxLen, m.Config.MaxPositions)
	}
	if opt.EvalDepth <= 0 {
		opt.EvalDepth = 100
	}
	if opt.Pooling != "" {
		m.Config.SpladePooling, _ = nn.ParsePooling(opt.Pooling) // checked by Validate
	}
	t := &Trainer{Model: m, Tok: tok, Opt: opt, sources: sources, dev: dev,
		QueryWeights: queryWeights}
	t.triples, t.texts = MergeSources(sources)
	t.order = trainloop.Order{N: len(t.triples), Seed: opt.Seed}
	if len(t.triples) == 0 {
		return nil, fmt.Errorf("train: the sources hold no triples")
	}
	for _, p := range m.Params {
		switch opt.TrainParams {
		case "all":
			p.Frozen = false
		case "task":
			p.Frozen = nn.IsDomainParam(p.Name, opt.DomainLayers)
		case "domain":
			p.Frozen = !nn.IsDomainParam(p.Name, opt.DomainLayers)
		}
	}
	t.Loop = trainloop.New(m, trainloop.Options{LR: opt.LR, WeightDecay: opt.WeightDecay, MaxGradNorm: opt.MaxGradNorm,
		WarmupSteps: opt.WarmupSteps, Steps: opt.Steps, EvalEvery: opt.EvalEvery, CheckpointEvery: opt.CheckpointEvery},
		"SPLADE training", DevMeasures[0])
	t.Loop.Kind, t.Loop.Key = "splade", t.key()
	for i := range t.passes {
		t.passes[i] = m.NewPass()
	}
	return t, nil
}

// MergeSources joins the triples and texts of several sources, their ids
// prefixed "<source index>\x00" so that two sources may reuse ids.
func MergeSources(sources []Source) ([]Triple, *Texts) {
	var triples []Triple
	texts := &Texts{Queries: map[string]string{}, Docs: map[string]string{}}
	for k, s := range sources {
		pre := strconv.Itoa(k) + "\x00"
		for _, tr := range s.Triples {
			c := tr
			c.QID, c.PosID = pre+tr.QID, pre+tr.PosID
			c.NegIDs = make([]string, len(tr.NegIDs))
			for i, n := range tr.NegIDs {
				c.NegIDs[i] = pre + n
			}
			triples = append(triples, c)
		}
		for id, s := range s.Texts.Queries {
			texts.Queries[pre+id] = s
		}
		for id, s := range s.Texts.Docs {
			texts.Docs[pre+id] = s
		}
	}
	return triples, texts
}

// StepCount is the number of optimiser steps taken.
func (t *Trainer) StepCount() int { return t.StepsDone }

// NumTriples is the number of training triples over all sources.
func (t *Trainer) NumTriples() int { return len(t.triples) }

// TrainableParams counts the scalars that are updated.
func (t *Trainer) TrainableParams() int {
	n := 0
	for _, p := range t.Model.Params {
		if !p.Frozen {
			n += len(p.W)
		}
	}
	return n
}

// StepStats are one step's loss terms and speed.
type StepStats struct {
	Step     int // 1-based index of the step just taken
	Terms    Terms
	LR       float64
	GradNorm float64
	Tokens   int // real tokens of Q, P and N
	Elapsed  time.Duration
}

// Step takes one optimiser step and returns its statistics.
func (t *Trainer) Step() (StepStats, error) {
	start := time.Now()
	m, o := t.Model, t.Opt
	s := t.StepsDone
	tokfn := func(text string, maxLen int) []int32 { return t.Tok.Encode(text, maxLen).IDs }
	tb, err := BuildTrainBatch(t.triples, t.order.Batch(s, o.BatchSize), t.texts, tokfn, TrainBatchOptions{
		QueryMaxLen: o.QueryMaxLen, DocMaxLen: o.DocMaxLen, NNeg: o.NNeg, PadID: t.Tok.PAD(),
		Rand: rand.New(rand.NewPCG(trainloop.StepSeed(o.Seed, s, "negatives"), 1)),
	})
	if err != nil {
		return StepStats{}, fmt.Errorf("train step %d: %w", s+1, err)
	}
	m.Training = o.Dropout
	m.SeedDropout(trainloop.StepSeed(o.Seed, s, "dropout"))
	defer func() { m.Training = false }()
	terms, tokens, err := t.Gradients(tb, s)
	if err != nil {
		return StepStats{}, fmt.Errorf("train step %d: %w", s+1, err)
	}
	lr, norm := t.Update()
	return StepStats{Step: t.StepsDone, Terms: terms, LR: lr, GradNorm: norm, Tokens: tokens, Elapsed: time.Since(start)}, nil
}

// Gradients sets the parameter gradients (ZeroGrad first) to those of the
// objective on batch tb at 0-based step (for the λ warm-up): forward of Q,
// P and N in their own passes, Objective, and the backward of each, the
// three accumulating into the shared weights. Frozen parameters get none.
// It returns the loss terms and the number of real tokens. Dropout follows
// Model.Training.
func (t *Trainer) Gradients(tb *TrainBatch, step int) (Terms, int, error) {
	m, o := t.Model, t.Opt
	if t.passes[0] == nil {
		for i := range t.passes {
			t.passes[i] = m.NewPass()
		}
	}
	nn.ZeroGrad(m.Params)
	C, V := m.Config.HiddenSize, m.Config.VocabSize
	emb, bias := m.WordEmbeddings(), m.DecoderBias()
	batches := [3]nn.Batch{tb.Q, tb.P, tb.N}
	var mats [3]*Mat[float32]
	tokens := 0
	idf := t.QueryWeights != nil
	pool := m.Config.SpladePooling
	for i, b := range batches {
		hb := &t.heads[i]
		hb.b = b
		if i == 0 && idf {
			// Inference-free: the query rows are the vectors the encoder
			// gives queries (WeightedTokens; padding is a special token,
			// weight 0).
			hb.out = zeroF(hb.out, b.B*V)
			for r := range b.B {
				for _, tw := range WeightedTokens(b.InputIDs[r*b.T:(r+1)*b.T], t.QueryWeights) {
					hb.out[r*V+int(tw.Term)] = tw.Weight
				}
				for _, x := range b.Mask[r*b.T : (r+1)*b.T] {
					tokens += int(x)
				}
			}
			mats[i] = NewMat(hb.out, b.B, V)
			continue
		}
		h := t.passes[i].Encode(b)
		hb.z = t.passes[i].HeadTransform(h, b.B*b.T)
		hb.out = grow.To(hb.out, b.B*V)
		hb.argmax = grow.To(hb.argmax, b.B*V)
		nn.SpladeHeadForward(pool, hb.z, b.Mask, emb.W, bias.W, b.B, b.T, C, V, hb.out, hb.argmax)
		mats[i] = NewMat(hb.out, b.B, V)
		for _, x := range b.Mask {
			tokens += int(x)
		}
	}
	g := &t.grads
	g.Q, g.P, g.N = zeroF(g.Q, tb.Q.B*V), zeroF(g.P, tb.P.B*V), zeroF(g.N, tb.N.B*V)
	terms, err := Objective(&Batch[float32]{Q: mats[0], P: mats[1], N: mats[2]}, tb.Teacher, o.Weights, step, g)
	if err != nil {
		return Terms{}, 0, err
	}
	if math.IsNaN(terms.Total) || math.IsInf(terms.Total, 0) {
		return Terms{}, 0, fmt.Errorf("loss is %v (lower the learning rate)", terms.Total)
	}
	gradOf := func(p *nn.Param) []float32 {
		if p.Frozen {
			return nil
		}
		return p.G
	}
	for i, dout := range [3][]float32{g.Q, g.P, g.N} {
		if i == 0 && idf {
			continue
		}
		hb := &t.heads[i]
		b := hb.b
		hb.dz = zeroF(hb.dz, b.B*b.T*C)
		nn.SpladeHeadBackward(pool, dout, hb.z, b.Mask, emb.W, bias.W, hb.argmax, hb.out, b.B, b.T, C, V, hb.dz, gradOf(emb), gradOf(bias))
		dh := t.passes[i].HeadTransformBackward(hb.dz)
		t.passes[i].Backward(dh)
	}
	return terms, tokens, nil
}

func zeroF(b []float32, n int) []float32 {
	b = grow.To(b, n)
	clear(b)
	return b
}

// TrainHooks observe a run; any may be nil.
type TrainHooks struct {
	OnStep       func(s StepStats)
	OnEval       func(step int, metrics map[string]float64, best bool)
	OnCheckpoint func(step int)
}

// TrainMeta is splade.json, written beside the best model: how it was
// trained and how it scored.
type TrainMeta struct {
	Format      int                `json:"format"`
	Init        string             `json:"init"`
	Sources     []string           `json:"train_sets"`
	Dev         []string           `json:"dev_sets"`
	Triples     int                `json:"triples"`
	Steps       int                `json:"steps"`
	Step        int                `json:"step"` // the step this model is from
	TrainParams string             `json:"train_params"`
	Options     TrainOptions       `json:"options"`
	DevMetrics  map[string]float64 `json:"dev_metrics,omitempty"`
	Saved       string             `json:"saved"`
}

// ErrCheckpointExists is returned by Run when the work directory already
// holds a checkpoint and resuming was not asked for.
var ErrCheckpointExists = trainloop.ErrCheckpointExists

// RunConfig says where a run keeps its state and its result.
type RunConfig struct {
	WorkDir string // checkpoints: WorkDir/state (resumable), curves
	Out     string // the best model (HF layout + splade.json + curves.*)
	Init    string // the initial checkpoint, recorded in splade.json
	Resume  bool   // continue from WorkDir/state when present
}

// key identifies the options that fix the trajectory: a resumed run must
// use the same ones.
func (t *Trainer) key() string {
	o := t.Opt
	o.EvalEvery, o.CheckpointEvery, o.EncodeBatch = 0, 0, 0
	b, _ := json.Marshal(struct {
		O       TrainOptions
		Triples int
	}{o, len(t.triples)})
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// Run trains until Opt.Steps, evaluating, checkpointing and keeping the
// best model as configured (trainloop.Loop.Run). With rc.Resume and a
// checkpoint in rc.WorkDir it continues from there (identically to an
// uninterrupted run); without rc.Resume an existing checkpoint is
// ErrCheckpointExists. Without dev sets the model of the last step is the
// result. The context is checked between steps; on cancellation the state
// of the last step taken is saved (so a resumed run loses nothing) and
// ctx.Err() returned.
func (t *Trainer) Run(ctx context.Context, rc RunConfig, hooks TrainHooks) (*TrainMeta, error) {
	err := t.Loop.Run(ctx, rc.WorkDir, rc.Resume, spladeTask{t, rc, hooks}, trainloop.Hooks{OnEval: hooks.OnEval, OnCheckpoint: hooks.OnCheckpoint})
	if err != nil {
		return nil, err
	}
	meta := t.meta(rc, t.BestDev)
	if len(t.dev) > 0 {
		meta.Step = t.BestAt
	}
	return meta, nil
}

// spladeTask is the SPLADE trainer's part of the run loop.
type spladeTask struct {
	t     *Trainer
	rc    RunConfig
	hooks TrainHooks
}

func (k spladeTask) HasDev() bool                          { return len(k.t.dev) > 0 }
func (k spladeTask) Evaluate() (map[string]float64, error) { return k.t.Evaluate() }
func (k spladeTask) SaveBest(dev map[string]float64) error { return k.t.saveModel(k.rc, dev) }
func (k spladeTask) Step() (map[string]float64, error) {
	st, err := k.t.Step()
	if err != nil {
		return nil, err
	}
	tm := st.Terms
	vals := map[string]float64{
		"loss": tm.Total, "infonce": tm.InfoNCE, "flops_q": tm.FLOPSQ, "flops_d": tm.FLOPSD,
		"l1_q": tm.L1Q, "nnz_q": tm.MeanNNZQuery, "nnz_d": tm.MeanNNZDoc, "lr": st.LR, "grad_norm": st.GradNorm,
	}
	if tm.HasMarginMSE {
		vals["margin_mse"] = tm.MarginMSE
	}
	if k.hooks.OnStep != nil {
		k.hooks.OnStep(st)
	}
	return vals, nil
}

func (t *Trainer) meta(rc RunConfig, dev map[string]float64) *TrainMeta {
	m := &TrainMeta{Format: 1, Init: rc.Init, Triples: len(t.triples), Steps: t.Opt.Steps, Step: t.StepsDone,
		TrainParams: t.Opt.TrainParams, Options: t.Opt, DevMetrics: dev, Saved: time.Now().UTC().Format(time.RFC3339)}
	for _, s := range t.sources {
		m.Sources = append(m.Sources, s.Name)
	}
	for _, d := range t.dev {
		m.Dev = append(m.Dev, d.Name)
	}
	return m
}

// saveModel writes the current weights to rc.Out in HF layout with
// splade.json and the curves so far, replacing rc.Out atomically.
func (t *Trainer) saveModel(rc RunConfig, dev map[string]float64) error {
	meta := t.meta(rc, dev)
	raw, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return t.SaveModelDir(rc.Out, map[string]string{"spladapt": "splade", "step": strconv.Itoa(t.StepsDone)}, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "splade.json"), append(raw, '\n'), 0o644); err != nil {
			return err
		}
		if t.QueryWeights != nil {
			return WriteIDF(tmp, t.Tok, t.QueryWeights)
		}
		if err := os.Remove(filepath.Join(tmp, IDFFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err // a two-sided model trained from an inference-free one
		}
		return nil
	})
}
