package pretrain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/curves"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
	"github.com/spladapt/spladapt/tokenize"
)

// Options describe one MLM training run.
type Options struct {
	// Corpora are the paths to train on (anything corpora.OpenCorpus reads),
	// concatenated in order.
	Corpora []string
	// Init is the checkpoint to continue from; with FromScratch it is
	// ignored and a model of Config's shape is initialised as BERT does.
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
	Config   config.Pretrain
	// Progress is "auto", "on" or "off"; Log receives one line per event.
	Progress    string
	Log         io.Writer
	CorpusOpts  corpora.Options
	MaxSteps    int // stop after this many steps of this call (0 = all); for tests of resume
	stopForTest func(step int) bool
}

// Result summarises a finished run.
type Result struct {
	Steps        int      `json:"steps"`
	Tokens       int64    `json:"tokens"`
	Seconds      float64  `json:"seconds"`
	TokensPerSec float64  `json:"tokens_per_s"`
	HeldoutLoss  float64  `json:"heldout_loss"`
	HeldoutPPL   float64  `json:"heldout_ppl"`
	CopyRate     float64  `json:"copy_rate"`
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

// state is what a resumable checkpoint records besides weights and moments.
type state struct {
	Step     int             `json:"step"`
	Position Position        `json:"position"`
	Tokens   int64           `json:"tokens"`
	Seconds  float64         `json:"seconds"`
	Config   config.Pretrain `json:"config"`
}

// ErrInterrupted is returned when the context ends a run; the checkpoint
// saved at that moment lets --resume continue it.
var ErrInterrupted = errors.New("training interrupted (checkpoint saved; continue with --resume)")

// Train runs masked-language-model training (Devlin et al., 2019) on the
// corpora: packed sequences of Config.SeqLen tokens, dynamic masking, AdamW
// with linear warm-up and decay, clipping and gradient accumulation,
// held-out loss and perplexity every EvalEvery steps, and a resumable
// checkpoint every CheckpointEvery steps and on interruption. Only the
// parameters of Config.TrainParams train (see FreezeFor). A resumed run
// continues exactly: weights, moments, step, data position and the seeds
// of masking and dropout (pure functions of the step) are restored.
func Train(ctx context.Context, o Options) (*Result, error) {
	cfg := o.Config
	if o.WorkDir == "" {
		o.WorkDir = o.Out + ".work"
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	stateDir := filepath.Join(o.WorkDir, "state")
	var st state
	var model *nn.Model
	var err error
	resumed := false
	if _, statErr := os.Stat(filepath.Join(stateDir, "state.json")); statErr == nil {
		if !o.Resume {
			return nil, fmt.Errorf("pretrain: %s holds a checkpoint of an earlier run; pass --resume to continue it, or remove it", stateDir)
		}
		model, st, err = loadState(stateDir)
		if err != nil {
			return nil, err
		}
		if !resumable(st.Config, cfg) {
			return nil, fmt.Errorf("pretrain: the checkpoint in %s was made with other settings (%+v); resume with the same config (only steps, eval_every, checkpoint_every and heldout_max may change) or remove it", stateDir, st.Config)
		}
		if st.Config.Steps != cfg.Steps {
			logf("resume: steps changed from %d to %d; the learning-rate schedule decays to 0 at step %d from here on", st.Config.Steps, cfg.Steps, cfg.Steps)
		}
		st.Config = cfg
		resumed = true
		logf("resuming from step %d (%s)", st.Step, stateDir)
	} else {
		model, err = initModel(ctx, o)
		if err != nil {
			return nil, err
		}
		st.Config = cfg
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
	trainable, err := FreezeFor(model, cfg.TrainParams, cfg.DomainLayers)
	if err != nil {
		return nil, err
	}

	stream, err := TokenizeCorpus(ctx, o.Corpora, tok, o.CacheDir, DataOptions{Corpora: o.CorpusOpts, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	if stream.Reused {
		logf("tokenised corpus reused from %s", stream.CachePath)
	}
	packed, err := Pack(stream, cfg.SeqLen, tok.CLS(), tok.SEP())
	if err != nil {
		return nil, err
	}
	trainIdx, heldIdx := packed.Split(cfg.HeldoutEvery)
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

	opt := nn.NewAdamW(model.Params, cfg.WeightDecay)
	var log curves.Log
	if resumed {
		if err := loadOptimizer(filepath.Join(stateDir, "optim.safetensors"), opt, st.Step); err != nil {
			return nil, err
		}
		if l, err := curves.ReadCSV(filepath.Join(stateDir, "curves.csv")); err == nil {
			log = *l
			log.Truncate(st.Step)
		}
	}
	sched := nn.LinearSchedule{Warmup: cfg.WarmupSteps, Total: cfg.Steps}
	heldout := func() (float64, float64) {
		loss, _ := HeldoutLoss(model, packed, heldIdx, &heldMasker, cfg.BatchSize)
		return loss, math.Exp(loss)
	}
	save := func() error {
		return saveState(stateDir, model, opt, st, &log)
	}

	bar := progress.New(os.Stderr, progress.Enabled(o.Progress), "pretrain", "steps", int64(cfg.Steps))
	bar.Add(int64(st.Step))
	start := time.Now()
	prevSeconds := st.Seconds
	stepsThisCall := 0
	T := cfg.SeqLen
	for st.Step < cfg.Steps {
		if err := ctx.Err(); err != nil {
			st.Seconds = prevSeconds + time.Since(start).Seconds()
			if serr := save(); serr != nil {
				return nil, errors.Join(ErrInterrupted, serr)
			}
			bar.Done()
			return nil, ErrInterrupted
		}
		nn.ZeroGrad(model.Params)
		model.Training = true
		var stepLoss float64
		for micro := 0; micro < cfg.GradAccum; micro++ {
			epoch := st.Position.Epoch
			idx := loader.Next(&st.Position)
			seqs := make([][]int32, len(idx))
			wss := make([][]bool, len(idx))
			for i, j := range idx {
				seqs[i], wss[i] = packed.Seq(j)
			}
			inputs, labels := masker.MaskBatch(seqs, wss, epoch, idx)
			mask := make([]float32, len(inputs))
			for i := range mask {
				mask[i] = 1
			}
			model.SeedDropout(cfg.Seed*1_000_003 + uint64(st.Step*cfg.GradAccum+micro))
			b := nn.Batch{B: len(idx), T: T, InputIDs: inputs, Mask: mask}
			loss, _ := model.MLMLoss(b, labels)
			model.MLMBackward(float32(1 / float64(cfg.GradAccum)))
			stepLoss += loss / float64(cfg.GradAccum)
			st.Tokens += int64(len(inputs))
		}
		gnorm := nn.ClipGradNorm(model.Params, cfg.MaxGradNorm)
		lr := cfg.LR * sched.Factor(st.Step)
		opt.Step(lr)
		st.Step++
		stepsThisCall++
		vals := map[string]float64{"loss": stepLoss, "lr": lr, "grad_norm": gnorm}
		if st.Step%cfg.EvalEvery == 0 || st.Step == cfg.Steps {
			hl, ppl := heldout()
			cr := CopyRate(model, packed, heldIdx, tok.IsSpecial)
			vals["heldout_loss"], vals["heldout_ppl"], vals["copy_rate"] = hl, ppl, cr
			logf("step %d: loss %.4f, held-out loss %.4f, perplexity %.2f, copy rate %.3f", st.Step, stepLoss, hl, ppl, cr)
		}
		el := prevSeconds + time.Since(start).Seconds()
		vals["seconds"] = el
		log.Add(st.Step, vals)
		bar.AddNote(1, fmt.Sprintf("loss %.3f, %.0f tok/s", stepLoss, float64(st.Tokens)/max(el, 1e-9)))
		if st.Step%cfg.CheckpointEvery == 0 && st.Step < cfg.Steps {
			st.Seconds = el
			if err := save(); err != nil {
				return nil, err
			}
		}
		if (o.MaxSteps > 0 && stepsThisCall >= o.MaxSteps) || (o.stopForTest != nil && o.stopForTest(st.Step)) {
			st.Seconds = el
			if err := save(); err != nil {
				return nil, err
			}
			bar.Done()
			return nil, ErrInterrupted
		}
	}
	bar.Done()
	st.Seconds = prevSeconds + time.Since(start).Seconds()
	hl, ppl := heldout()
	res := &Result{Steps: st.Step, Tokens: st.Tokens, Seconds: st.Seconds,
		TokensPerSec: float64(st.Tokens) / max(st.Seconds, 1e-9), HeldoutLoss: hl, HeldoutPPL: ppl,
		CopyRate:    CopyRate(model, packed, heldIdx, tok.IsSpecial),
		HeldoutSeqs: len(heldIdx), TrainSeqs: len(trainIdx), Trainable: trainable, Params: model.NumParams(),
		TrainParams: cfg.TrainParams, DomainLayers: cfg.DomainLayers, Corpora: o.Corpora, Init: o.Init, Resumed: resumed}
	if o.FromScratch {
		res.Init = "scratch"
	}
	if err := writeCheckpoint(o.Out, model, res, &log); err != nil {
		return nil, err
	}
	os.RemoveAll(o.WorkDir)
	return res, nil
}

// resumable reports whether a run saved with settings a may continue with
// settings b: everything that shapes the model, the data, the masking or
// the optimizer must agree; the length of the run and how often it
// evaluates and checkpoints may change.
func resumable(a, b config.Pretrain) bool {
	a.Steps, a.EvalEvery, a.CheckpointEvery, a.HeldoutMax = b.Steps, b.EvalEvery, b.CheckpointEvery, b.HeldoutMax
	return a == b
}

// initModel loads o.Init, or builds a model from scratch with its own
// WordPiece vocabulary trained on the corpora (or o.Vocab).
func initModel(ctx context.Context, o Options) (*nn.Model, error) {
	cfg := o.Config
	if !o.FromScratch {
		if o.Init == "" {
			return nil, errors.New("pretrain: give --init CHECKPOINT or --from-scratch")
		}
		return nn.LoadHF(o.Init)
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
// packed, with a fixed masking (epoch -1 of masker), averaged over every
// masked position; dropout is off. It returns the loss and the number of
// masked positions.
func HeldoutLoss(model *nn.Model, packed *Packed, idx []int, masker *Masker, batch int) (float64, int) {
	wasTraining := model.Training
	model.Training = false
	defer func() { model.Training = wasTraining }()
	var sum float64
	var count int
	for lo := 0; lo < len(idx); lo += batch {
		part := idx[lo:min(lo+batch, len(idx))]
		seqs := make([][]int32, len(part))
		wss := make([][]bool, len(part))
		for i, j := range part {
			seqs[i], wss[i] = packed.Seq(j)
		}
		inputs, labels := masker.MaskBatch(seqs, wss, -1, part)
		mask := make([]float32, len(inputs))
		for i := range mask {
			mask[i] = 1
		}
		loss, n := model.MLMLoss(nn.Batch{B: len(part), T: packed.T, InputIDs: inputs, Mask: mask}, labels)
		sum += loss * float64(n)
		count += n
	}
	if count == 0 {
		return math.NaN(), 0
	}
	return sum / float64(count), count
}

// CopyRate is the share of the real, non-special positions of the packed
// sequences idx, fed unmasked, whose MLM argmax is the input token itself:
// 1 for a model that starts SPLADE as a bag of its own words, about 0 for
// one stuck at the unigram plateau (which predicts "the" everywhere).
// Dropout is off. Cost: one forward pass and the full vocabulary
// projection of every position, in tiles of 256 rows.
func CopyRate(model *nn.Model, packed *Packed, idx []int, isSpecial func(int32) bool) float64 {
	wasTraining := model.Training
	model.Training = false
	defer func() { model.Training = wasTraining }()
	C, V := model.Config.HiddenSize, model.Config.VocabSize
	const batch, tile = 16, 256
	logits := make([]float32, tile*V) // (tile, V)
	var hit, n int
	for lo := 0; lo < len(idx); lo += batch {
		part := idx[lo:min(lo+batch, len(idx))]
		inputs := make([]int32, 0, len(part)*packed.T)
		for _, j := range part {
			s, _ := packed.Seq(j)
			inputs = append(inputs, s...)
		}
		mask := make([]float32, len(inputs))
		for i := range mask {
			mask[i] = 1
		}
		hidden := model.Encode(nn.Batch{B: len(part), T: packed.T, InputIDs: inputs, Mask: mask}) // (B·T, C)
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

// EvalCorpus measures the held-out MLM loss and perplexity of the model in
// dir on corpus: the same packing, split and fixed masking a training run
// on that corpus with cfg holds out, so a model continued on the corpus is
// measured on text it never trained on.
func EvalCorpus(ctx context.Context, dir string, corpus []string, cfg config.Pretrain, cacheDir string, opts corpora.Options) (loss, ppl float64, n int, err error) {
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

// saveState writes a resumable checkpoint: model (HF layout with its
// tokenizer), optimizer moments, state.json and the curve so far, as one
// directory replaced atomically.
func saveState(dir string, m *nn.Model, opt *nn.AdamW, st state, log *curves.Log) error {
	return atomicfile.Dir(dir, func(tmp string) error {
		if err := m.SaveHF(filepath.Join(tmp, "model"), nil); err != nil {
			return err
		}
		os_ := opt.State()
		var ts []safetensors.Named
		for _, p := range m.Params {
			ts = append(ts, safetensors.Named{Name: "m." + p.Name, Shape: p.Shape, Data: os_.M[p.Name]},
				safetensors.Named{Name: "v." + p.Name, Shape: p.Shape, Data: os_.V[p.Name]})
		}
		if err := safetensors.WriteFile(filepath.Join(tmp, "optim.safetensors"), ts,
			map[string]string{"step": strconv.Itoa(os_.Step)}); err != nil {
			return err
		}
		if err := log.Save(filepath.Join(tmp, "curves"), "MLM training"); err != nil {
			return err
		}
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "state.json"), b, 0o644)
	})
}

func loadState(dir string) (*nn.Model, state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, st, fmt.Errorf("pretrain: resume: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, st, fmt.Errorf("pretrain: resume: %s: %w", filepath.Join(dir, "state.json"), err)
	}
	m, err := nn.LoadHF(filepath.Join(dir, "model"))
	if err != nil {
		return nil, st, fmt.Errorf("pretrain: resume: %w", err)
	}
	return m, st, nil
}

func loadOptimizer(path string, opt *nn.AdamW, step int) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pretrain: resume: %w", err)
	}
	s := nn.AdamWState{Step: step, M: map[string][]float32{}, V: map[string][]float32{}}
	for _, name := range f.Names() {
		data, _, err := f.Float32(name)
		if err != nil {
			return fmt.Errorf("pretrain: resume: %s: %w", path, err)
		}
		if p, ok := strings.CutPrefix(name, "m."); ok {
			s.M[p] = data
		} else if p, ok := strings.CutPrefix(name, "v."); ok {
			s.V[p] = data
		}
	}
	if err := opt.Load(s); err != nil {
		return fmt.Errorf("pretrain: resume: %s: %w", path, err)
	}
	return nil
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
