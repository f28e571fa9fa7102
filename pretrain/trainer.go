package pretrain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/curves"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/internal/trainloop"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// Settings are the settings of an MLM run (config section pretrain;
// config.Config.PretrainSettings converts). The field names are those of
// the "config" object of a format-0 state.json, which a resumed run reads.
type Settings struct {
	// Arch, Layers, Hidden, Heads, FF and MaxPositions shape a model
	// trained from scratch (ignored with Init): arch bert or distilbert.
	Arch         string
	Layers       int
	Hidden       int
	Heads        int
	FF           int
	MaxPositions int
	// VocabSize is the WordPiece vocabulary trained for a model from scratch.
	VocabSize int
	// SeqLen is the length of the packed training sequences.
	SeqLen int
	// BatchSize is sequences per micro-batch; GradAccum micro-batches make a step.
	BatchSize   int
	GradAccum   int
	Steps       int // optimiser steps in all
	LR          float64
	WarmupSteps int
	WeightDecay float64
	MaxGradNorm float64
	// MaskProb is the share of tokens selected for the MLM loss.
	MaskProb  float64
	WholeWord bool
	// CopyProb labels this share of the unselected tokens with their own
	// id (a reconstruction loss on unmasked positions; 0 = BERT's MLM).
	CopyProb float64
	// Init is how a model from scratch starts: bert (N(0, 0.02)) or
	// lexical (nn.LexicalInit).
	Init string
	// HeldoutEvery holds out every N-th packed sequence for evaluation;
	// HeldoutMax caps the held-out sequences evaluated (0 = all).
	HeldoutEvery int
	HeldoutMax   int
	// EvalEvery and CheckpointEvery are in optimiser steps.
	EvalEvery       int
	CheckpointEvery int
	// TrainParams is domain (P_domain only), task (P_task only) or all;
	// DomainLayers is k: P_domain = embeddings + the first k layers.
	TrainParams  string
	DomainLayers int
	Seed         uint64
	// PairTask is the sentence-pair objective trained jointly with MLM:
	// "" or "none" (MLM alone on packed sequences) or "nsp" (BERT's
	// next-sentence prediction: Pairs instead of Packed, the pooler and
	// cls.seq_relationship on the [CLS] state, BERT only). PairWeight w
	// scales it: loss = MLM + w·pair. Both are left out of a state's JSON
	// when zero, so states and keys of runs without a pair task are those
	// made before these settings existed.
	PairTask   string  `json:",omitempty"`
	PairWeight float64 `json:",omitempty"`
}

// pairOn reports whether s trains a pair task.
func (s Settings) pairOn() bool { return s.PairTask == "nsp" }

// Options describe one MLM training run.
type Options struct {
	// Corpora are the paths to train on (anything corpora.OpenCorpus reads),
	// concatenated in order.
	Corpora []string
	// Init is the checkpoint to continue from; with FromScratch it is
	// ignored and a model of Settings' shape is initialised as BERT does.
	Init        string
	FromScratch bool
	// Vocab, with FromScratch, is a vocab.txt to use instead of training a
	// WordPiece vocabulary on the corpora.
	Vocab string
	// Out is the checkpoint directory written at the end (HF layout, plus
	// training.json and the training curves).
	Out string
	// WorkDir keeps resumable checkpoints; default Out + ".work".
	WorkDir string
	// Resume continues from the checkpoint in WorkDir. Without it, an
	// existing checkpoint there is an error (so that nothing is lost).
	Resume bool
	// CacheDir holds tokenised corpora ("" = no cache).
	CacheDir string
	Settings Settings
	// Progress is "auto", "on" or "off"; Log receives one line per event.
	Progress   string
	Log        io.Writer
	CorpusOpts corpora.Options
	// OnStep, when set, is called after each optimiser step with its
	// 1-based number and loss.
	OnStep func(step int, loss float64)
}

// Result summarises a finished run.
type Result struct {
	Steps        int     `json:"steps"`
	Tokens       int64   `json:"tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_s"`
	HeldoutLoss  float64 `json:"heldout_loss"`
	HeldoutPPL   float64 `json:"heldout_ppl"`
	CopyRate     float64 `json:"copy_rate"`
	// PairTask and PairAccuracy, the share of the held-out pairs whose
	// label the pair head predicts, are set with a pair task only.
	PairTask     string   `json:"pair_task,omitempty"`
	PairAccuracy *float64 `json:"pair_accuracy,omitempty"`
	HeldoutSeqs  int      `json:"heldout_sequences"`
	TrainSeqs    int      `json:"train_sequences"`
	Trainable    int      `json:"trainable_params"`
	Params       int      `json:"params"`
	TrainParams  string   `json:"train_params"`
	DomainLayers int      `json:"domain_layers"`
	Corpora      []string `json:"corpora"`
	Init         string   `json:"init"`
	Resumed      bool     `json:"resumed"`
}

// taskState is the MLM task's part of a resumable state
// (train_state.json's "task"; in format 0 the whole state.json, whose
// "step" and "seconds" are the loop's).
type taskState struct {
	Position Position `json:"position"` // the loader's next batch
	Tokens   int64    `json:"tokens"`   // tokens trained on so far
	Config   Settings `json:"config"`   // the settings the run was made with
}

// ErrInterrupted is returned when the context ends a run; the checkpoint
// saved at that moment lets --resume continue it.
var ErrInterrupted = errors.New("training interrupted (checkpoint saved; continue with --resume)")

// Train runs masked-language-model training (Devlin et al., 2019) on the
// corpora: packed sequences of Settings.SeqLen tokens, dynamic masking,
// AdamW with linear warm-up and decay, clipping and gradient accumulation,
// held-out loss and perplexity every EvalEvery steps, and a resumable
// checkpoint every CheckpointEvery steps and on interruption
// (internal/trainloop; docs/format/train-state.md). Only the parameters of
// Settings.TrainParams train (see FreezeFor). A resumed run continues
// exactly: weights, moments, step, data position and the seeds of masking
// and dropout (pure functions of the step) are restored.
//
// With Settings.PairTask "nsp" the sequences are sentence pairs (Pairs)
// and the loss is MLM + PairWeight·(next-sentence cross-entropy) on the
// pooled [CLS] state; the pair head (nn.PairHeadNames, P_task) is the
// checkpoint's when it holds one, else initialised, and is saved with the
// model (BertForPreTraining). Without a pair task, a checkpoint's pair head
// is kept unchanged (frozen) and saved again.
func Train(ctx context.Context, o Options) (*Result, error) {
	cfg := o.Settings
	switch cfg.PairTask {
	case "", "none", "nsp":
	default:
		return nil, fmt.Errorf("pretrain: pair task %q, want none or nsp", cfg.PairTask)
	}
	if o.WorkDir == "" {
		o.WorkDir = o.Out + ".work"
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	var model *nn.Model
	var err error
	resumed := trainloop.HasState(o.WorkDir)
	if resumed {
		if !o.Resume {
			return nil, fmt.Errorf("pretrain: %s holds a checkpoint of an earlier run; pass --resume to continue it, or remove it", filepath.Join(o.WorkDir, "state"))
		}
		if model, err = nn.LoadPreTraining(trainloop.StateModelDir(o.WorkDir)); err != nil {
			return nil, fmt.Errorf("pretrain: resume: %w", err)
		}
	} else if model, err = initModel(ctx, o); err != nil {
		return nil, err
	}
	tok, err := tokenize.Load(model.TokenizerDir)
	if err != nil {
		return nil, fmt.Errorf("pretrain: tokenizer: %w", err)
	}
	if tok.VocabSize() != model.Config.VocabSize {
		return nil, fmt.Errorf("pretrain: tokenizer has %d tokens but the model's vocab_size is %d", tok.VocabSize(), model.Config.VocabSize)
	}
	if cfg.SeqLen > model.Config.MaxPositions {
		return nil, fmt.Errorf("pretrain: seq_len %d exceeds the model's max_position_embeddings %d", cfg.SeqLen, model.Config.MaxPositions)
	}
	if cfg.pairOn() && !model.HasPairHead() {
		if err := model.AddPairHead(cfg.Seed); err != nil {
			return nil, fmt.Errorf("pretrain: pair task %s: %w", cfg.PairTask, err)
		}
		logf("pretrain: pair head (bert.pooler.dense, cls.seq_relationship) initialised")
	}
	trainable, err := FreezeFor(model, cfg.TrainParams, cfg.DomainLayers)
	if err != nil {
		return nil, err
	}
	if !cfg.pairOn() && model.HasPairHead() {
		// The checkpoint's pair head is kept as it is: nothing trains it.
		for _, name := range nn.PairHeadNames {
			if p := model.Param(name); !p.Frozen {
				p.Frozen = true
				trainable -= len(p.W)
			}
		}
		logf("pretrain: the checkpoint's pair head is kept frozen (no pair task)")
	}

	stream, err := TokenizeCorpus(ctx, o.Corpora, tok, o.CacheDir, DataOptions{Corpora: o.CorpusOpts, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	if stream.Reused {
		logf("tokenised corpus reused from %s", stream.CachePath)
	}
	var data Sequences
	var pairs *Pairs
	if cfg.pairOn() {
		if pairs, err = NewPairs(stream, cfg.SeqLen, tok.CLS(), tok.SEP(), tok.PAD(), cfg.Seed); err != nil {
			return nil, fmt.Errorf("pretrain: %w", err)
		}
		data = pairs
	} else if data, err = Pack(stream, cfg.SeqLen, tok.CLS(), tok.SEP()); err != nil {
		return nil, err
	}
	trainIdx, heldIdx := data.Split(cfg.HeldoutEvery)
	if cfg.HeldoutMax > 0 && len(heldIdx) > cfg.HeldoutMax {
		heldIdx = heldIdx[:cfg.HeldoutMax]
	}
	loader, err := NewLoader(trainIdx, cfg.BatchSize, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	masker := NewMasker(tok.VocabSize(), tok.MASK(), tok.IsSpecial, cfg.WholeWord, cfg.Seed)
	masker.Prob = cfg.MaskProb
	masker.CopyProb = cfg.CopyProb
	heldMasker := *masker // held-out loss and perplexity: masked positions only
	heldMasker.CopyProb = 0
	logf("pretrain: %d train and %d held-out sequences of %d tokens; %d of %d parameters trainable (%s, k=%d)",
		len(trainIdx), len(heldIdx), cfg.SeqLen, trainable, model.NumParams(), cfg.TrainParams, cfg.DomainLayers)

	loop := trainloop.New(model, trainloop.Options{LR: cfg.LR, WeightDecay: cfg.WeightDecay, MaxGradNorm: cfg.MaxGradNorm,
		WarmupSteps: cfg.WarmupSteps, Steps: cfg.Steps, GradAccum: cfg.GradAccum, EvalEvery: cfg.EvalEvery, CheckpointEvery: cfg.CheckpointEvery},
		"MLM training", "")
	loop.Kind, loop.EvalPrefix, loop.Key = "pretrain", "", settingsKey(cfg)
	task := &mlmTask{o: o, cfg: cfg, logf: logf, loop: loop, model: model, tok: tok, data: data, pairs: pairs, heldIdx: heldIdx,
		loader: loader, masker: masker, heldMasker: &heldMasker, resumed: resumed,
		bar: progress.New(os.Stderr, progress.Enabled(o.Progress), "pretrain", "steps", int64(cfg.Steps))}
	err = loop.Run(ctx, o.WorkDir, o.Resume, task, trainloop.Hooks{})
	task.bar.Done()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			if err == cerr {
				return nil, ErrInterrupted
			}
			return nil, errors.Join(ErrInterrupted, err)
		}
		return nil, err
	}
	var seconds float64
	if n := len(loop.Curves.Points); n > 0 {
		seconds = loop.Curves.Points[n-1].Values["seconds"]
	}
	hl, ppl := task.heldout()
	res := &Result{Steps: loop.StepsDone, Tokens: task.tokens, Seconds: seconds,
		TokensPerSec: float64(task.tokens) / max(seconds, 1e-9), HeldoutLoss: hl, HeldoutPPL: ppl,
		CopyRate:    CopyRate(model, data, heldIdx, tok.IsSpecial),
		HeldoutSeqs: len(heldIdx), TrainSeqs: len(trainIdx), Trainable: trainable, Params: model.NumParams(),
		TrainParams: cfg.TrainParams, DomainLayers: cfg.DomainLayers, Corpora: o.Corpora, Init: o.Init, Resumed: resumed}
	if o.FromScratch {
		res.Init = "scratch"
	}
	if pairs != nil {
		acc, _ := PairAccuracy(model, pairs, heldIdx, cfg.BatchSize)
		res.PairTask, res.PairAccuracy = cfg.PairTask, &acc
	}
	if err := writeCheckpoint(o.Out, model, res, loop.Curves); err != nil {
		return nil, err
	}
	os.RemoveAll(o.WorkDir)
	return res, nil
}

// mlmTask is MLM training's part of the run loop: the step over
// GradAccum micro-batches of dynamically masked sequences, the held-out
// evaluation, and the data position and token count as its own state.
type mlmTask struct {
	o     Options
	cfg   Settings
	logf  func(format string, args ...any)
	loop  *trainloop.Loop
	model *nn.Model
	tok   *tokenize.Tokenizer
	data  Sequences
	pairs *Pairs // data, with the pair task; else nil

	heldIdx            []int
	loader             *Loader
	masker, heldMasker *Masker
	bar                *progress.Bar

	pos      Position // the loader's next batch
	tokens   int64    // positions trained on so far (a pair's padding included)
	lastLoss float64  // the loss of the last step, for the evaluation's log line
	resumed  bool
	started  bool
	start    time.Time
	seconds0 float64 // the run's seconds before this call
}

// Step takes one optimiser step through the loop's Accumulate: GradAccum
// micro-batches (masking seeded by epoch and sequence, dropout by step and
// micro-batch), their gradients averaged, then the update.
func (k *mlmTask) Step() (map[string]float64, error) {
	cfg, model, loop := k.cfg, k.model, k.loop
	if !k.started {
		k.started, k.start = true, time.Now()
		if n := len(loop.Curves.Points); n > 0 {
			k.seconds0 = loop.Curves.Points[n-1].Values["seconds"]
		}
		if k.resumed {
			k.logf("resuming from step %d (%s)", loop.StepsDone, filepath.Join(k.o.WorkDir, "state"))
		}
		k.bar.Add(int64(loop.StepsDone))
	}
	step := loop.StepsDone
	model.Training = true
	var pairLoss float64
	stepLoss, lr, gnorm, _ := loop.Accumulate(func(micro int, scale float32) (float64, error) {
		epoch := k.pos.Epoch
		idx := k.loader.Next(&k.pos)
		sb := k.data.batch(idx, epoch)
		inputs, labels := k.masker.MaskBatch(sb.ids, sb.ws, epoch, idx)
		model.SeedDropout(cfg.Seed*1_000_003 + uint64(step*cfg.GradAccum+micro))
		b := nn.Batch{B: len(idx), T: sb.T, InputIDs: inputs, TypeIDs: sb.types, Mask: sb.mask}
		loss, _ := model.MLMLoss(b, labels)
		k.tokens += int64(len(inputs))
		if sb.next == nil {
			model.MLMBackward(scale)
			return loss, nil
		}
		pl, _ := model.PairLoss(sb.next)
		pairLoss += pl / float64(cfg.GradAccum)
		model.PretrainBackward(scale, scale*float32(cfg.PairWeight))
		return loss + cfg.PairWeight*pl, nil
	})
	k.lastLoss = stepLoss
	el := k.seconds0 + time.Since(k.start).Seconds()
	k.bar.AddNote(1, fmt.Sprintf("loss %.3f, %.0f tok/s", stepLoss, float64(k.tokens)/max(el, 1e-9)))
	if k.o.OnStep != nil {
		k.o.OnStep(loop.StepsDone, stepLoss)
	}
	out := map[string]float64{"loss": stepLoss, "lr": lr, "grad_norm": gnorm}
	if k.pairs != nil {
		out["pair_loss"] = pairLoss
	}
	return out, nil
}

// HasDev is true: the held-out sequences are the dev set (an empty one
// gives NaN measures).
func (k *mlmTask) HasDev() bool { return true }

// Evaluate measures the held-out loss, perplexity and copy rate, and with
// a pair task the held-out pair accuracy and pair loss.
func (k *mlmTask) Evaluate() (map[string]float64, error) {
	hl, ppl := k.heldout()
	cr := CopyRate(k.model, k.data, k.heldIdx, k.tok.IsSpecial)
	out := map[string]float64{"heldout_loss": hl, "heldout_ppl": ppl, "copy_rate": cr}
	if k.pairs == nil {
		k.logf("step %d: loss %.4f, held-out loss %.4f, perplexity %.2f, copy rate %.3f", k.loop.StepsDone, k.lastLoss, hl, ppl, cr)
		return out, nil
	}
	acc, pl := PairAccuracy(k.model, k.pairs, k.heldIdx, k.cfg.BatchSize)
	out["pair_acc"], out["heldout_pair_loss"] = acc, pl
	k.logf("step %d: loss %.4f, held-out loss %.4f, perplexity %.2f, copy rate %.3f, pair accuracy %.3f (pair loss %.4f)",
		k.loop.StepsDone, k.lastLoss, hl, ppl, cr, acc, pl)
	return out, nil
}

func (k *mlmTask) heldout() (float64, float64) {
	loss, _ := HeldoutLoss(k.model, k.data, k.heldIdx, k.heldMasker, k.cfg.BatchSize)
	return loss, math.Exp(loss)
}

// SaveBest does nothing: the result is the model of the last step, which
// Train writes with the final held-out measures.
func (k *mlmTask) SaveBest(map[string]float64) error { return nil }

func (k *mlmTask) SaveState() (json.RawMessage, error) {
	return json.Marshal(taskState{Position: k.pos, Tokens: k.tokens, Config: k.cfg})
}

// LoadState restores the data position and token count, and refuses a
// state made with settings that shape the model, the data, the masking or
// the optimiser differently.
func (k *mlmTask) LoadState(raw json.RawMessage) error {
	var st taskState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("pretrain state: %w", err)
	}
	if !resumable(st.Config, k.cfg) {
		return fmt.Errorf("the checkpoint was made with other settings (%+v); resume with the same config (only steps, eval_every, checkpoint_every and heldout_max may change) or remove it", st.Config)
	}
	if st.Config.Steps != k.cfg.Steps {
		k.logf("resume: steps changed from %d to %d; the learning-rate schedule decays to 0 at step %d from here on", st.Config.Steps, k.cfg.Steps, k.cfg.Steps)
	}
	k.pos, k.tokens = st.Position, st.Tokens
	return nil
}

// resumable reports whether a run saved with settings a may continue with
// settings b: everything that shapes the model, the data, the masking or
// the optimizer must agree; the length of the run and how often it
// evaluates and checkpoints may change.
func resumable(a, b Settings) bool {
	a.Steps, a.EvalEvery, a.CheckpointEvery, a.HeldoutMax = b.Steps, b.EvalEvery, b.CheckpointEvery, b.HeldoutMax
	return a == b
}

// settingsKey is the loop's key: the settings resumable compares.
func settingsKey(s Settings) string {
	s.Steps, s.EvalEvery, s.CheckpointEvery, s.HeldoutMax = 0, 0, 0, 0
	b, _ := json.Marshal(s)
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// initModel loads o.Init, or builds a model from scratch with its own
// WordPiece vocabulary trained on the corpora (or o.Vocab).
func initModel(ctx context.Context, o Options) (*nn.Model, error) {
	cfg := o.Settings
	if !o.FromScratch {
		if o.Init == "" {
			return nil, errors.New("pretrain: give --init CHECKPOINT or --from-scratch")
		}
		return nn.LoadPreTraining(o.Init)
	}
	var vocab []string
	var err error
	if o.Vocab != "" {
		vocab, err = tokenize.ReadVocab(o.Vocab)
	} else {
		vocab, err = tokenize.TrainWordPiece(corpusTexts(ctx, o.Corpora, o.CorpusOpts, &err), cfg.VocabSize, 2, true)
	}
	if err != nil {
		return nil, fmt.Errorf("pretrain: vocabulary: %w", err)
	}
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		return nil, err
	}
	tokDir := filepath.Join(o.WorkDir, "tokenizer")
	if err := tok.Save(tokDir); err != nil {
		return nil, err
	}
	var mc nn.Config
	if cfg.Arch == "distilbert" {
		mc = nn.DistilBERTConfig(len(vocab), cfg.Hidden, cfg.Layers, cfg.Heads, cfg.FF, cfg.MaxPositions)
	} else {
		mc = nn.BERTConfig(len(vocab), cfg.Hidden, cfg.Layers, cfg.Heads, cfg.FF, cfg.MaxPositions)
	}
	m, err := nn.NewModel(mc, cfg.Seed)
	if err != nil {
		return nil, err
	}
	switch cfg.Init {
	case "lexical":
		nn.LexicalInit(m)
	case "bert", "":
	default:
		return nil, fmt.Errorf("pretrain: init %q, want bert or lexical", cfg.Init)
	}
	m.TokenizerDir = tokDir
	return m, nil
}

// corpusTexts streams Doc.Content of every corpus; a read error is stored
// in *errp and ends the sequence.
func corpusTexts(ctx context.Context, paths []string, opts corpora.Options, errp *error) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, p := range paths {
			r, err := corpora.OpenCorpus(p, opts)
			if err != nil {
				*errp = err
				return
			}
			for {
				if ctx.Err() != nil {
					*errp = ctx.Err()
					r.Close()
					return
				}
				d, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					*errp = err
					r.Close()
					return
				}
				if !yield(d.Content()) {
					r.Close()
					return
				}
			}
			r.Close()
		}
	}
}

// HeldoutLoss is the MLM loss of model on the held-out sequences idx of
// seqs (Packed, or Pairs as drawn in epoch -1), with a fixed masking
// (epoch -1 of masker), averaged over every masked position; dropout is
// off. It returns the loss and the number of masked positions.
func HeldoutLoss(model *nn.Model, seqs Sequences, idx []int, masker *Masker, batch int) (float64, int) {
	wasTraining := model.Training
	model.Training = false
	defer func() { model.Training = wasTraining }()
	var sum float64
	var count int
	for lo := 0; lo < len(idx); lo += batch {
		part := idx[lo:min(lo+batch, len(idx))]
		sb := seqs.batch(part, -1)
		inputs, labels := masker.MaskBatch(sb.ids, sb.ws, -1, part)
		loss, n := model.MLMLoss(nn.Batch{B: len(part), T: sb.T, InputIDs: inputs, TypeIDs: sb.types, Mask: sb.mask}, labels)
		sum += loss * float64(n)
		count += n
	}
	if count == 0 {
		return math.NaN(), 0
	}
	return sum / float64(count), count
}

// CopyRate is the share of the real, non-special positions of the
// sequences idx of seqs (Pairs as drawn in epoch -1), fed unmasked, whose MLM argmax is the input token itself:
// 1 for a model that starts SPLADE as a bag of its own words, about 0 for
// one stuck at the unigram plateau (which predicts "the" everywhere).
// Dropout is off. Cost: one forward pass and the full vocabulary
// projection of every position, in tiles of 256 rows.
func CopyRate(model *nn.Model, seqs Sequences, idx []int, isSpecial func(int32) bool) float64 {
	wasTraining := model.Training
	model.Training = false
	defer func() { model.Training = wasTraining }()
	C, V := model.Config.HiddenSize, model.Config.VocabSize
	const batch, tile = 16, 256
	logits := make([]float32, tile*V) // (tile, V)
	var hit, n int
	for lo := 0; lo < len(idx); lo += batch {
		part := idx[lo:min(lo+batch, len(idx))]
		sb := seqs.batch(part, -1)
		inputs := make([]int32, 0, len(part)*sb.T)
		for _, s := range sb.ids {
			inputs = append(inputs, s...)
		}
		hidden := model.Encode(nn.Batch{B: len(part), T: sb.T, InputIDs: inputs, TypeIDs: sb.types, Mask: sb.mask}) // (B·T, C)
		for r0 := 0; r0 < len(inputs); r0 += tile {
			rows := min(tile, len(inputs)-r0)
			z := model.HeadTransform(hidden[r0*C:(r0+rows)*C], rows)
			model.Logits(logits[:rows*V], z, rows)
			for r := range rows {
				id := inputs[r0+r]
				if isSpecial(id) {
					continue
				}
				row := logits[r*V : (r+1)*V]
				best := 0
				for v, x := range row {
					if x > row[best] {
						best = v
					}
				}
				n++
				if int32(best) == id {
					hit++
				}
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(hit) / float64(n)
}

// PairAccuracy is the share of the pair examples idx (drawn in epoch -1,
// unmasked) whose label model's pair head predicts, and its mean pair
// loss; dropout is off. NaN for no example. Cost: one forward pass.
func PairAccuracy(model *nn.Model, pairs *Pairs, idx []int, batch int) (acc, loss float64) {
	wasTraining := model.Training
	model.Training = false
	defer func() { model.Training = wasTraining }()
	var sum float64
	var hit int
	for lo := 0; lo < len(idx); lo += batch {
		part := idx[lo:min(lo+batch, len(idx))]
		sb := pairs.batch(part, -1)
		inputs := make([]int32, 0, len(part)*sb.T)
		for _, s := range sb.ids {
			inputs = append(inputs, s...)
		}
		model.Encode(nn.Batch{B: len(part), T: sb.T, InputIDs: inputs, TypeIDs: sb.types, Mask: sb.mask})
		l, c := model.PairLoss(sb.next)
		sum += l * float64(len(part))
		hit += c
	}
	if len(idx) == 0 {
		return math.NaN(), math.NaN()
	}
	return float64(hit) / float64(len(idx)), sum / float64(len(idx))
}

// EvalCorpus measures the held-out MLM loss and perplexity of the model in
// dir on corpus: the same packing, split and fixed masking a training run
// on that corpus with cfg holds out, so a model continued on the corpus is
// measured on text it never trained on.
func EvalCorpus(ctx context.Context, dir string, corpus []string, cfg Settings, cacheDir string, opts corpora.Options) (loss, ppl float64, n int, err error) {
	model, err := nn.LoadHF(dir)
	if err != nil {
		return 0, 0, 0, err
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		return 0, 0, 0, err
	}
	stream, err := TokenizeCorpus(ctx, corpus, tok, cacheDir, DataOptions{Corpora: opts, Progress: "off"})
	if err != nil {
		return 0, 0, 0, err
	}
	packed, err := Pack(stream, cfg.SeqLen, tok.CLS(), tok.SEP())
	if err != nil {
		return 0, 0, 0, err
	}
	_, held := packed.Split(cfg.HeldoutEvery)
	if cfg.HeldoutMax > 0 && len(held) > cfg.HeldoutMax {
		held = held[:cfg.HeldoutMax]
	}
	masker := NewMasker(tok.VocabSize(), tok.MASK(), tok.IsSpecial, cfg.WholeWord, cfg.Seed)
	masker.Prob = cfg.MaskProb
	loss, n = HeldoutLoss(model, packed, held, masker, cfg.BatchSize)
	return loss, math.Exp(loss), n, nil
}

// writeCheckpoint writes the final model at out in HF layout with
// training.json and the curves (curves.csv, curves.svg), atomically.
func writeCheckpoint(out string, m *nn.Model, res *Result, log *curves.Log) error {
	meta := map[string]string{
		MetaStage:         "pretrain",
		MetaTrainedParams: res.TrainParams,
		MetaDomainLayers:  strconv.Itoa(res.DomainLayers),
	}
	return atomicfile.Dir(out, func(tmp string) error {
		if err := m.SaveHF(tmp, meta); err != nil {
			return err
		}
		if err := log.Save(filepath.Join(tmp, "curves"), "MLM training"); err != nil {
			return err
		}
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "training.json"), append(b, '\n'), 0o644)
	})
}
