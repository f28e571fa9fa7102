package rerank

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/internal/grow"
	"github.com/spladapt/spladapt/internal/trainloop"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
)

// Re-ranker training. One optimiser step on G triples (query, positive,
// NNeg hard negatives):
//
//	pairs (q_i, pos_i), (q_i, neg_i1) … (q_i, neg_iNNeg)    G·(1+NNeg) pairs
//	s = Forward(pairs)                                       one batch
//	loss, ds = Loss(objective, s, teacher margins)
//	Backward(ds); clip; AdamW with the linear schedule      (trainloop)
//
// The triples' order, the negatives drawn and the dropout masks are
// functions of (Seed, step) (trainloop.Order, trainloop.StepSeed), so a
// resumed run repeats an uninterrupted one exactly.

// PairModel is a re-ranker that trains: a Scorer with a batch forward kept
// for backward.
type PairModel interface {
	Scorer
	// Forward scores the pairs (qs[i], ds[i]) as one batch, kept for Backward.
	Forward(qs, ds []string) []float32
	// Backward adds the gradient of Σ dscores·scores of the last Forward.
	Backward(dscores []float32)
	// Base is the model whose Params train and whose SaveHF writes it.
	Base() *nn.Model
}

// TrainOptions configure a Trainer (config.Config.RerankJob fills them
// from config section rerank).
type TrainOptions struct {
	Loss            string // Pointwise, MarginMSE or InfoNCE
	LR              float64
	WeightDecay     float64
	MaxGradNorm     float64
	WarmupSteps     int
	Steps           int
	BatchSize       int // queries per step (G)
	NNeg            int // negatives per query
	Dropout         bool
	Seed            uint64
	EvalEvery       int
	CheckpointEvery int
	DevDepth        int // BM25 hits re-ranked per dev query
	// MatchTypes trains on exact-match token types (a cross-encoder:
	// MarkMatches; MICE: the query side, MICE.MatchTypes); it is part of
	// the model, recorded in rerank.json, and must agree with the model's.
	MatchTypes bool
}

// Validate checks the options.
func (o TrainOptions) Validate() error {
	switch o.Loss {
	case Pointwise, MarginMSE, InfoNCE:
	default:
		return fmt.Errorf("train rerank: loss %q, want %s, %s or %s", o.Loss, Pointwise, MarginMSE, InfoNCE)
	}
	if o.Steps < 1 || o.BatchSize < 1 || o.NNeg < 1 || !(o.LR > 0) || o.DevDepth < 1 {
		return fmt.Errorf("train rerank: steps %d, batch size %d, negatives %d, dev depth %d must be ≥ 1 and lr %g > 0",
			o.Steps, o.BatchSize, o.NNeg, o.DevDepth, o.LR)
	}
	return nil
}

// DevSet is a held-out collection for model selection: the first-stage
// (BM25) run of its judged queries, re-ranked to DevDepth.
type DevSet struct {
	Name    string
	Queries map[string]string // query id → text
	Docs    map[string]string // document id → text (at least those of Run)
	Run     corpora.Run
	Qrels   corpora.Qrels
}

// DevMeasures are reported on dev sets; the first selects the model.
var DevMeasures = []string{"nDCG@10", "RR@10"}

// Trainer trains a re-ranker. Not safe for concurrent use.
type Trainer struct {
	Model PairModel
	Opt   TrainOptions
	// Loop holds the optimiser, the step count, the best dev result and
	// the curves.
	*trainloop.Loop

	sources []splade.Source
	triples []splade.Triple
	texts   *splade.Texts
	order   trainloop.Order
	dev     []*DevSet
	ds      []float32
	// Meta is written as rerank.json beside the selected model; Trainer
	// fills Step, Steps, Loss, DevMetrics.
	Meta Meta
}

// Meta is rerank.json: what the model is and how it was trained.
type Meta struct {
	Format     int                `json:"format"`
	Kind       string             `json:"kind"`                  // "cross-encoder" or "mice"
	MICE       any                `json:"mice,omitempty"`        // the MICE options
	MatchTypes bool               `json:"match_types,omitempty"` // inputs carry exact-match token types
	Init       string             `json:"init"`
	Loss       string             `json:"loss"`
	Sources    []string           `json:"train_sets"`
	Dev        []string           `json:"dev_sets"`
	Triples    int                `json:"triples"`
	Steps      int                `json:"steps"`
	Step       int                `json:"step"`
	Options    TrainOptions       `json:"options"`
	DevMetrics map[string]float64 `json:"dev_metrics,omitempty"`
	Saved      string             `json:"saved"`
}

// NewTrainer prepares training of m on the sources (every parameter
// trains).
func NewTrainer(m PairModel, sources []splade.Source, dev []*DevSet, opt TrainOptions) (*Trainer, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	var modelMatch bool
	switch mm := m.(type) {
	case *CrossEncoder:
		modelMatch = mm.MatchTypes
	case *MICE:
		modelMatch = mm.MatchTypes
	}
	if modelMatch != opt.MatchTypes {
		return nil, fmt.Errorf("train rerank: match types %v in the options, %v in the model (SetMatchTypes): rerank.json would misrecord them", opt.MatchTypes, modelMatch)
	}
	t := &Trainer{Model: m, Opt: opt, sources: sources, dev: dev}
	t.triples, t.texts = splade.MergeSources(sources)
	if len(t.triples) == 0 {
		return nil, fmt.Errorf("train rerank: the sources hold no triples")
	}
	if opt.Loss == MarginMSE {
		for _, tr := range t.triples {
			if !tr.HasMargins() {
				return nil, fmt.Errorf("train rerank: loss marginmse needs teacher margins, and the triple of query %q has none (give --teacher files or triples with margins)", tr.QID)
			}
		}
	}
	t.order = trainloop.Order{N: len(t.triples), Seed: opt.Seed}
	base := m.Base()
	for _, p := range base.Params {
		p.Frozen = false
	}
	t.Loop = trainloop.New(base, trainloop.Options{LR: opt.LR, WeightDecay: opt.WeightDecay, MaxGradNorm: opt.MaxGradNorm,
		WarmupSteps: opt.WarmupSteps, Steps: opt.Steps, EvalEvery: opt.EvalEvery, CheckpointEvery: opt.CheckpointEvery},
		"re-ranker training", DevMeasures[0])
	t.Loop.Kind = "rerank"
	key, _ := json.Marshal(struct {
		O       TrainOptions
		Triples int
	}{withoutCadence(opt), len(t.triples)})
	h := fnv.New64a()
	h.Write(key)
	t.Loop.Key = strconv.FormatUint(h.Sum64(), 16)
	kind := "cross-encoder"
	if mm, ok := m.(*MICE); ok {
		kind, t.Meta.MICE = "mice", mm.Cfg
		mk, _ := json.Marshal(mm.Cfg)
		h.Write(mk) // another MICE shape is another trajectory
		t.Loop.Key = strconv.FormatUint(h.Sum64(), 16)
	}
	t.Meta = Meta{Format: 1, Kind: kind, MICE: t.Meta.MICE, MatchTypes: opt.MatchTypes, Loss: opt.Loss, Triples: len(t.triples), Steps: opt.Steps, Options: opt}
	for _, s := range sources {
		t.Meta.Sources = append(t.Meta.Sources, s.Name)
	}
	for _, d := range dev {
		t.Meta.Dev = append(t.Meta.Dev, d.Name)
	}
	return t, nil
}

func withoutCadence(o TrainOptions) TrainOptions {
	o.EvalEvery, o.CheckpointEvery = 0, 0
	return o
}

// NumTriples is the number of training triples over all sources.
func (t *Trainer) NumTriples() int { return len(t.triples) }

// StepStats are one step's loss and speed.
type StepStats struct {
	Step     int
	Loss     float64
	LR       float64
	GradNorm float64
	Pairs    int
	Elapsed  time.Duration
}

// Step takes one optimiser step.
func (t *Trainer) Step() (StepStats, error) {
	start := time.Now()
	o := t.Opt
	s := t.StepsDone
	rng := rand.New(rand.NewPCG(trainloop.StepSeed(o.Seed, s, "negatives"), 1))
	var qs, ds []string
	var teacher []float32
	idx := t.order.Batch(s, o.BatchSize)
	for _, i := range idx {
		tr := t.triples[i]
		q, ok := t.texts.Queries[tr.QID]
		if !ok {
			return StepStats{}, fmt.Errorf("train step %d: no text for query %q", s+1, tr.QID)
		}
		ids := []string{tr.PosID}
		for _, k := range splade.ChooseNegatives(len(tr.NegIDs), o.NNeg, rng) {
			ids = append(ids, tr.NegIDs[k])
			if o.Loss == MarginMSE {
				teacher = append(teacher, tr.Margins[k])
			}
		}
		for _, id := range ids {
			d, ok := t.texts.Docs[id]
			if !ok {
				return StepStats{}, fmt.Errorf("train step %d: no text for document %q", s+1, id)
			}
			qs, ds = append(qs, q), append(ds, d)
		}
	}
	base := t.Model.Base()
	base.Training = o.Dropout
	base.SeedDropout(trainloop.StepSeed(o.Seed, s, "dropout"))
	defer func() { base.Training = false }()
	nn.ZeroGrad(base.Params)
	scores := t.Model.Forward(qs, ds)
	t.ds = grow.To(t.ds, len(scores))
	loss, err := Loss(o.Loss, scores, len(idx), o.NNeg, teacher, t.ds)
	if err != nil {
		return StepStats{}, fmt.Errorf("train step %d: %w", s+1, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return StepStats{}, fmt.Errorf("train step %d: loss is %v (lower the learning rate)", s+1, loss)
	}
	t.Model.Backward(t.ds)
	lr, norm := t.Update()
	return StepStats{Step: t.StepsDone, Loss: loss, LR: lr, GradNorm: norm, Pairs: len(qs), Elapsed: time.Since(start)}, nil
}

// Evaluate re-ranks every dev set's run to DevDepth and returns
// DevMeasures per dev set ("<name> nDCG@10") and their means ("nDCG@10"),
// trec_eval -c semantics.
func (t *Trainer) Evaluate() (map[string]float64, error) {
	ms, err := eval.ParseMeasures(DevMeasures...)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, d := range t.dev {
		run, err := Rerank(t.Model, d.Queries, d.Docs, d.Run, t.Opt.DevDepth, nil)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", d.Name, err)
		}
		res, err := eval.Evaluate(d.Qrels, run, ms, eval.Options{AllQueries: true})
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", d.Name, err)
		}
		for i, m := range ms {
			out[d.Name+" "+m.Name()] = res.All[i]
			out[m.Name()] += res.All[i] / float64(len(t.dev))
		}
	}
	return out, nil
}

// TrainHooks observe a run; any may be nil.
type TrainHooks struct {
	OnStep func(s StepStats)
	OnEval func(step int, metrics map[string]float64, best bool)
}

// Run trains until Opt.Steps (trainloop.Loop.Run: dev selection by mean
// nDCG@10, checkpoints in workDir/state, exact resume) and returns the
// metadata of the model kept at out: the best on the dev sets, or the last
// without dev sets.
func (t *Trainer) Run(ctx context.Context, workDir, out string, resume bool, hooks TrainHooks) (*Meta, error) {
	task := &rerankTask{t: t, out: out, hooks: hooks}
	if err := t.Loop.Run(ctx, workDir, resume, task, trainloop.Hooks{OnEval: hooks.OnEval}); err != nil {
		return nil, err
	}
	m := t.meta(t.BestDev)
	if len(t.dev) > 0 {
		m.Step = t.BestAt
	}
	return &m, nil
}

func (t *Trainer) meta(dev map[string]float64) Meta {
	m := t.Meta
	m.Step, m.DevMetrics, m.Saved = t.StepsDone, dev, time.Now().UTC().Format(time.RFC3339)
	return m
}

// MetaFile is the name of the metadata file beside a trained re-ranker.
const MetaFile = "rerank.json"

type rerankTask struct {
	t     *Trainer
	out   string
	hooks TrainHooks
}

func (k *rerankTask) HasDev() bool                          { return len(k.t.dev) > 0 }
func (k *rerankTask) Evaluate() (map[string]float64, error) { return k.t.Evaluate() }
func (k *rerankTask) SaveBest(dev map[string]float64) error {
	raw, err := json.MarshalIndent(k.t.meta(dev), "", "  ")
	if err != nil {
		return err
	}
	return k.t.SaveModelDir(k.out, map[string]string{"spladapt": "rerank", "step": strconv.Itoa(k.t.StepsDone)}, func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, MetaFile), append(raw, '\n'), 0o644)
	})
}
func (k *rerankTask) Step() (map[string]float64, error) {
	st, err := k.t.Step()
	if err != nil {
		return nil, err
	}
	if k.hooks.OnStep != nil {
		k.hooks.OnStep(st)
	}
	return map[string]float64{"loss": st.Loss, "lr": st.LR, "grad_norm": st.GradNorm}, nil
}
