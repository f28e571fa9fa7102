// Package config holds spladapt's settings: one typed Config, loaded through
// viper with the precedence flag > SPLADAPT_* environment > config.yaml >
// default. Unknown keys and invalid values are errors that name the key.
//
// Every key has a default in Default() and a documented line in the
// repository's config.yaml; a test keeps the two in step.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/viper"

	"github.com/spladapt/spladapt/eval"
)

// Config is every setting of spladapt. The mapstructure tags are the keys of
// config.yaml; nested structs are sections ("bm25.k1").
type Config struct {
	// CacheDir holds trained models, tokenised caches and indexes.
	// Empty means $XDG_CACHE_HOME/spladapt (or ~/.cache/spladapt).
	CacheDir string `mapstructure:"cache_dir"`
	// Threads is the number of workers of every parallel part: the model
	// code (nn.SetThreads: matrix products cut into row chunks, each on
	// single-threaded OpenBLAS; element-wise kernels, attention heads,
	// SPLADE pooling), tokenisation (tokenize.SetThreads), index building
	// (index.Options.Workers), BM25 search and evaluation
	// (eval.Options.Workers). Results do not depend on it. 0 means one per
	// CPU.
	Threads int `mapstructure:"threads"`
	// Kernels is the level of nn's fused C kernels (nn.SetKernels): "auto"
	// (the best this CPU and OS run), "avx2" or "avx512". The levels give
	// the same results bit for bit; forcing one is for measuring them side
	// by side.
	Kernels string `mapstructure:"kernels"`
	// SkipInvalid skips malformed input records (each reported with file and
	// line, and counted) instead of stopping at the first one.
	SkipInvalid bool `mapstructure:"skip_invalid"`
	// Progress is "auto" (on when stderr is a terminal), "on" or "off".
	Progress string `mapstructure:"progress"`

	BM25  BM25  `mapstructure:"bm25"`
	Index Index `mapstructure:"index"`
	Serve Serve `mapstructure:"serve"`
	Eval  Eval  `mapstructure:"eval"`
	Data  Data  `mapstructure:"data"`
	Model Model `mapstructure:"model"`

	Pretrain Pretrain `mapstructure:"pretrain"`
	Adapt    Adapt    `mapstructure:"adapt"`
	Splade   Splade   `mapstructure:"splade"`
	Rerank   Rerank   `mapstructure:"rerank"`
}

// BM25 configures the bleve BM25 baseline.
type BM25 struct {
	K1 float64 `mapstructure:"k1"`
	B  float64 `mapstructure:"b"`
	// Depth is the number of hits retrieved per query.
	Depth int `mapstructure:"depth"`
}

// Index configures the sparse inverted index.
type Index struct {
	// QuantBits is the impact width in bits (1..16); weights are quantised
	// with one global scale.
	QuantBits int `mapstructure:"quant_bits"`
	// BlockSize is the number of documents per block of the block-max
	// maxima (8: see index.DefaultBlockSize).
	BlockSize int `mapstructure:"block_size"`
	// Algorithm is the default top-k method: exhaustive, maxscore,
	// blockmax, taat or auto (blockmax, or taat when k ≥ N/500).
	Algorithm string `mapstructure:"algorithm"`
	// Depth is the number of hits retrieved per query.
	Depth int `mapstructure:"depth"`
}

// Serve configures the HTTP search server.
type Serve struct {
	Addr string `mapstructure:"addr"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// TimeoutMS bounds the time to answer one request.
	TimeoutMS int `mapstructure:"timeout_ms"`
	// MaxK bounds the k a client may ask for.
	MaxK int `mapstructure:"max_k"`
}

// Eval configures evaluation and comparison reports.
type Eval struct {
	// Measures are the measures a comparison report shows by default.
	Measures []string `mapstructure:"measures"`
}

// Data configures dataset downloads.
type Data struct {
	// BaseURL is where "spladapt data pull NAME" fetches NAME.zip from.
	BaseURL string `mapstructure:"base_url"`
}

// Model configures model shapes and encoding.
type Model struct {
	// MaxLength is the maximum number of tokens of a document.
	MaxLength int `mapstructure:"max_length"`
	// QueryMaxLength is the maximum number of tokens of a query.
	QueryMaxLength int `mapstructure:"query_max_length"`
}

// Pretrain configures MLM pretraining (from scratch or continued).
type Pretrain struct {
	// Arch, Layers, Hidden, Heads, FF and MaxPositions shape a model
	// trained from scratch (ignored with --init).
	Arch         string `mapstructure:"arch"`
	Layers       int    `mapstructure:"layers"`
	Hidden       int    `mapstructure:"hidden"`
	Heads        int    `mapstructure:"heads"`
	FF           int    `mapstructure:"ff"`
	MaxPositions int    `mapstructure:"max_positions"`
	// VocabSize is the WordPiece vocabulary trained for a model from scratch.
	VocabSize int `mapstructure:"vocab_size"`
	// SeqLen is the length of the packed training sequences.
	SeqLen int `mapstructure:"seq_len"`
	// BatchSize is sequences per micro-batch; GradAccum micro-batches make a step.
	BatchSize int `mapstructure:"batch_size"`
	GradAccum int `mapstructure:"grad_accum"`
	// Steps is the number of optimizer steps.
	Steps       int     `mapstructure:"steps"`
	LR          float64 `mapstructure:"lr"`
	WarmupSteps int     `mapstructure:"warmup_steps"`
	WeightDecay float64 `mapstructure:"weight_decay"`
	MaxGradNorm float64 `mapstructure:"max_grad_norm"`
	// MaskProb is the share of tokens selected for the MLM loss.
	MaskProb  float64 `mapstructure:"mask_prob"`
	WholeWord bool    `mapstructure:"whole_word"`
	// CopyProb labels this share of the unselected tokens with their own
	// id (a reconstruction loss on unmasked positions; 0 = BERT's MLM).
	CopyProb float64 `mapstructure:"copy_prob"`
	// Init is how a model from scratch starts: bert (N(0, 0.02)) or
	// lexical (nn.LexicalInit: the MLM head copies its input at step 0).
	Init string `mapstructure:"init"`
	// HeldoutEvery holds out every N-th packed sequence for evaluation.
	HeldoutEvery int `mapstructure:"heldout_every"`
	// HeldoutMax caps the held-out sequences evaluated (0 = all).
	HeldoutMax int `mapstructure:"heldout_max"`
	// EvalEvery and CheckpointEvery are in optimizer steps.
	EvalEvery       int `mapstructure:"eval_every"`
	CheckpointEvery int `mapstructure:"checkpoint_every"`
	// TrainParams is domain (P_domain only), task (P_task only) or all.
	TrainParams string `mapstructure:"train_params"`
	// DomainLayers is k: P_domain = embeddings + the first k layers.
	DomainLayers int    `mapstructure:"domain_layers"`
	Seed         uint64 `mapstructure:"seed"`
	// PairTask is the sentence-pair objective trained with MLM: none, or
	// nsp (next-sentence prediction on the pooled [CLS] state, BERT only:
	// sequences [CLS] A [SEP] B [SEP], B the continuation of A or a span of
	// another document); PairWeight scales its loss (used with nsp only).
	PairTask   string  `mapstructure:"pair_task"`
	PairWeight float64 `mapstructure:"pair_weight"`
}

// MarshalJSON is encoding/json's form of the section, without PairTask and
// PairWeight when pair_task is none: a stage keyed by the section (package
// adapt hashes its JSON) keeps the key it had before the pair task existed.
func (p Pretrain) MarshalJSON() ([]byte, error) {
	type plain Pretrain
	if p.PairTask != "none" {
		return json.Marshal(plain(p))
	}
	return json.Marshal(struct {
		plain
		PairTask   *struct{} `json:",omitempty"` // shadows plain's: omitted
		PairWeight *struct{} `json:",omitempty"`
	}{plain: plain(p)})
}

// Rerank configures cross-encoder and MICE training ("spladapt train
// rerank") and re-ranking ("spladapt rerank"). Training data comes as for
// SPLADE (BM25 negatives mined with splade.mine_negatives and
// splade.mine_depth, or triples files).
type Rerank struct {
	// Loss is pointwise (binary cross-entropy, positive 1, negatives 0),
	// marginmse (needs teacher scores) or infonce (softmax over the
	// positive and its NNeg negatives).
	Loss        string  `mapstructure:"loss"`
	LR          float64 `mapstructure:"lr"`
	WeightDecay float64 `mapstructure:"weight_decay"`
	MaxGradNorm float64 `mapstructure:"max_grad_norm"`
	WarmupSteps int     `mapstructure:"warmup_steps"`
	Steps       int     `mapstructure:"steps"`
	// BatchSize is queries per step, each with its positive and NNeg
	// negatives: BatchSize·(1+NNeg) pairs.
	BatchSize       int    `mapstructure:"batch_size"`
	NNeg            int    `mapstructure:"n_neg"`
	Dropout         bool   `mapstructure:"dropout"`
	EvalEvery       int    `mapstructure:"eval_every"`
	CheckpointEvery int    `mapstructure:"checkpoint_every"`
	Seed            uint64 `mapstructure:"seed"`
	// MaxLength bounds a query-document pair in tokens (cross-encoder);
	// MICE uses model.query_max_length for the query and MaxLength for
	// the document.
	MaxLength int `mapstructure:"max_length"`
	// DevDepth is how many BM25 hits per dev query are re-ranked for model
	// selection (nDCG@10).
	DevDepth int `mapstructure:"dev_depth"`
	// ScoreBatchSize is pairs per forward pass when scoring.
	ScoreBatchSize int `mapstructure:"score_batch_size"`
	// MatchTypes trains a re-ranker whose inputs mark exact matches in the
	// token types (rerank.MarkMatches; MICE on the query side only,
	// rerank.MICE.MatchTypes); the model records it.
	MatchTypes bool `mapstructure:"match_types"`
}

// Splade configures SPLADE training ("spladapt train splade") and corpus
// encoding ("spladapt encode"); maximum lengths are model.max_length and
// model.query_max_length.
type Splade struct {
	// LambdaD and LambdaQ weigh the FLOPS regulariser of documents and the
	// query regulariser (QueryReg: flops or l1), warmed up quadratically
	// over LambdaWarmupSteps steps.
	LambdaD           float64 `mapstructure:"lambda_d"`
	LambdaQ           float64 `mapstructure:"lambda_q"`
	QueryReg          string  `mapstructure:"query_reg"`
	LambdaWarmupSteps int     `mapstructure:"lambda_warmup_steps"`
	// MarginMSE weighs MarginMSE when the triples carry teacher margins.
	MarginMSE   float64 `mapstructure:"margin_mse"`
	LR          float64 `mapstructure:"lr"`
	WeightDecay float64 `mapstructure:"weight_decay"`
	MaxGradNorm float64 `mapstructure:"max_grad_norm"`
	WarmupSteps int     `mapstructure:"warmup_steps"`
	Steps       int     `mapstructure:"steps"`
	// BatchSize is triples per step; NNeg hard negatives per triple.
	BatchSize int  `mapstructure:"batch_size"`
	NNeg      int  `mapstructure:"n_neg"`
	Dropout   bool `mapstructure:"dropout"`
	// TrainParams is all, task (P_task only) or domain; DomainLayers is k.
	TrainParams     string `mapstructure:"train_params"`
	DomainLayers    int    `mapstructure:"domain_layers"`
	EvalEvery       int    `mapstructure:"eval_every"`
	CheckpointEvery int    `mapstructure:"checkpoint_every"`
	Seed            uint64 `mapstructure:"seed"`
	// MineNegatives BM25 negatives are kept per (query, positive) from the
	// top MineDepth hits, when training from BEIR qrels.
	MineNegatives int `mapstructure:"mine_negatives"`
	MineDepth     int `mapstructure:"mine_depth"`
	// MineMargins attaches BM25 margins score(pos) − score(neg) to the
	// mined triples: with MarginMSE > 0 the model is distilled from BM25.
	MineMargins bool `mapstructure:"mine_margins"`
	// QueryEncoder is model (queries go through the model, as documents
	// do) or idf (inference-free: a query is its tokens weighted by IDF over
	// the training corpora; recorded in the checkpoint as idf.json).
	QueryEncoder string `mapstructure:"query_encoder"`
	// Pooling is the SPLADE head's pooling of a text's positions, set on
	// the model before training and saved in its config.json: max (SPLADE
	// v2), sum (log1p of the summed ReLU logits: a term's weight grows,
	// saturating, with its occurrences), or "" to keep the checkpoint's.
	Pooling string `mapstructure:"pooling"`
	// QueryIDF is where an inference-free model's query weights come from
	// when searching: corpus (the IDF of the searched corpus, stored in its
	// index) or training (the checkpoint's idf.json).
	QueryIDF string `mapstructure:"query_idf"`
	// TrainMaxLength is the document length in training batches (0:
	// model.max_length, which dev evaluation and encoding use).
	TrainMaxLength int `mapstructure:"train_max_length"`
	// UnsupPairs caps the inverse-cloze pairs drawn from each unsupervised
	// training corpus (--train-unsup); 0 draws one per eligible document.
	UnsupPairs int `mapstructure:"unsup_pairs"`
	// TopN prunes each encoded vector to its TopN largest weights (0: off).
	TopN int `mapstructure:"top_n"`
	// EncodeBatchSize is texts per forward pass when encoding; ShardSize
	// documents per resumable shard of "spladapt encode".
	EncodeBatchSize int `mapstructure:"encode_batch_size"`
	ShardSize       int `mapstructure:"shard_size"`
}

// Adapt configures the adaptation pipeline ("spladapt adapt").
type Adapt struct {
	// Source are the source-domain BEIR collections: their corpora are the
	// source MLM corpus, their SourceSplit qrels the SPLADE training data.
	Source      []string `mapstructure:"source"`
	SourceSplit string   `mapstructure:"source_split"`
	// Dev are BEIR collections for SPLADE model selection (DevSplit qrels).
	Dev      []string `mapstructure:"dev"`
	DevSplit string   `mapstructure:"dev_split"`
	// Targets are the target collections (--target adds to them);
	// TargetSplit is the qrels split evaluated when a target has one.
	Targets     []string `mapstructure:"targets"`
	TargetSplit string   `mapstructure:"target_split"`
	// Base is the starting checkpoint; empty trains one from scratch on
	// the source corpora with the pretrain.* settings.
	Base string `mapstructure:"base"`
	// SourceMLMSteps and TargetMLMSteps are the MLM steps of P_domain on
	// the source (skipped for a base trained on the source) and on each
	// target.
	SourceMLMSteps int `mapstructure:"source_mlm_steps"`
	TargetMLMSteps int `mapstructure:"target_mlm_steps"`
	// MLMLR is the peak learning rate of the continued MLM stages (source,
	// target, full); lower than from-scratch pretraining so that
	// P_domain(target) stays compatible with the frozen P_task.
	MLMLR float64 `mapstructure:"mlm_lr"`
	// FullMLM adds full continued pretraining (all parameters) on each
	// target, for the perplexity comparison; FullBaseline implies it and
	// adds SPLADE fine-tuning of the whole model and its evaluation.
	FullMLM      bool `mapstructure:"full_mlm"`
	FullBaseline bool `mapstructure:"full_baseline"`
	// Rerank is a re-ranker model directory (a cross-encoder or MICE model,
	// anything rerank.LoadScorer loads); when set, each evaluated target's
	// runs are re-ranked (the rerank-T stage). Empty: no re-ranking.
	Rerank string `mapstructure:"rerank"`
	// RerankDepth is the number of hits per query re-scored by Rerank.
	RerankDepth int `mapstructure:"rerank_depth"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		CacheDir:    "",
		Threads:     0,
		Kernels:     "auto",
		SkipInvalid: false,
		Progress:    "auto",
		BM25:        BM25{K1: 0.9, B: 0.4, Depth: 1000},
		Index:       Index{QuantBits: 8, BlockSize: 8, Algorithm: "auto", Depth: 1000},
		Serve:       Serve{Addr: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, TimeoutMS: 2000, MaxK: 1000},
		Eval:        Eval{Measures: []string{"nDCG@10", "R@100", "AP", "RR@10"}},
		Data:        Data{BaseURL: "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"},
		Model:       Model{MaxLength: 256, QueryMaxLength: 64},
		Pretrain: Pretrain{Arch: "bert", Layers: 4, Hidden: 256, Heads: 4, FF: 1024, MaxPositions: 512,
			VocabSize: 30522, SeqLen: 128, BatchSize: 32, GradAccum: 1, Steps: 10000, LR: 5e-4,
			WarmupSteps: 500, WeightDecay: 0.01, MaxGradNorm: 1.0, MaskProb: 0.15, WholeWord: false, CopyProb: 0, Init: "bert",
			HeldoutEvery: 100, HeldoutMax: 512, EvalEvery: 500, CheckpointEvery: 500,
			TrainParams: "all", DomainLayers: 2, Seed: 1, PairTask: "none", PairWeight: 1},
		Adapt: Adapt{Source: []string{}, SourceSplit: "train", Dev: []string{}, DevSplit: "dev", Targets: []string{},
			TargetSplit: "test", Base: "", SourceMLMSteps: 1000, TargetMLMSteps: 1000, MLMLR: 1e-4, FullMLM: false, FullBaseline: false,
			Rerank: "", RerankDepth: 100},
		Splade: Splade{LambdaD: 0.008, LambdaQ: 0.01, QueryReg: "flops", LambdaWarmupSteps: 2000,
			MarginMSE: 0, LR: 5e-5, WeightDecay: 0.01, MaxGradNorm: 1.0, WarmupSteps: 500, Steps: 10000,
			BatchSize: 32, NNeg: 1, Dropout: true, TrainParams: "all", DomainLayers: 2,
			EvalEvery: 1000, CheckpointEvery: 500, Seed: 1, MineNegatives: 8, MineDepth: 100,
			QueryEncoder: "model", QueryIDF: "corpus", TrainMaxLength: 0, UnsupPairs: 10000, TopN: 0, EncodeBatchSize: 32, ShardSize: 10000},
		Rerank: Rerank{Loss: "infonce", LR: 2e-5, WeightDecay: 0.01, MaxGradNorm: 1.0, WarmupSteps: 500, Steps: 10000,
			BatchSize: 8, NNeg: 7, Dropout: true, EvalEvery: 1000, CheckpointEvery: 500, Seed: 1,
			MaxLength: 256, DevDepth: 100, ScoreBatchSize: 32},
	}
}

// Validate checks values and cross-field rules, naming the key at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		from := ""
		if _, ok := os.LookupEnv(EnvVar(key)); ok {
			from = " (set by environment variable " + EnvVar(key) + ")"
		}
		errs = append(errs, fmt.Errorf("config key %q%s: %s", key, from, fmt.Sprintf(format, args...)))
	}
	// Every rate, weight and size must be a number: NaN compares false
	// with every bound below, so it is refused here first, with ±Inf.
	vals := map[string]any{}
	flatten("", reflect.ValueOf(*c), vals)
	for _, k := range sortedKeys(vals) {
		if f, ok := vals[k].(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			bad(k, "must be a finite number, got %g", f)
		}
	}
	if c.Threads < 0 {
		bad("threads", "must be >= 0 (0 = one per CPU), got %d", c.Threads)
	}
	switch c.Kernels {
	case "auto", "avx2", "avx512":
	default:
		bad("kernels", "must be auto, avx2 or avx512, got %q", c.Kernels)
	}
	switch c.Progress {
	case "auto", "on", "off":
	default:
		bad("progress", "must be auto, on or off, got %q", c.Progress)
	}
	if c.BM25.K1 < 0 {
		bad("bm25.k1", "must be >= 0, got %g", c.BM25.K1)
	}
	if c.BM25.B < 0 || c.BM25.B > 1 {
		bad("bm25.b", "must be in [0,1], got %g", c.BM25.B)
	}
	if c.BM25.Depth < 1 {
		bad("bm25.depth", "must be at least 1, got %d", c.BM25.Depth)
	}
	if c.Index.QuantBits < 1 || c.Index.QuantBits > 16 {
		bad("index.quant_bits", "must be in 1..16, got %d", c.Index.QuantBits)
	}
	if c.Index.BlockSize < 1 {
		bad("index.block_size", "must be at least 1, got %d", c.Index.BlockSize)
	}
	switch c.Index.Algorithm {
	case "exhaustive", "maxscore", "blockmax", "taat", "auto":
	default:
		bad("index.algorithm", "must be exhaustive, maxscore, blockmax, taat or auto, got %q", c.Index.Algorithm)
	}
	if c.Index.Depth < 1 {
		bad("index.depth", "must be at least 1, got %d", c.Index.Depth)
	}
	if c.Serve.MaxBodyBytes < 1 {
		bad("serve.max_body_bytes", "must be positive, got %d", c.Serve.MaxBodyBytes)
	}
	if c.Serve.TimeoutMS < 1 {
		bad("serve.timeout_ms", "must be positive, got %d", c.Serve.TimeoutMS)
	}
	if c.Serve.MaxK < 1 {
		bad("serve.max_k", "must be positive, got %d", c.Serve.MaxK)
	}
	if c.Model.MaxLength < 2 {
		bad("model.max_length", "must be at least 2, got %d", c.Model.MaxLength)
	}
	if c.Model.QueryMaxLength < 2 {
		bad("model.query_max_length", "must be at least 2, got %d", c.Model.QueryMaxLength)
	}
	p := c.Pretrain
	if p.Arch != "bert" && p.Arch != "distilbert" {
		bad("pretrain.arch", "must be bert or distilbert, got %q", p.Arch)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"pretrain.layers", p.Layers}, {"pretrain.hidden", p.Hidden}, {"pretrain.heads", p.Heads},
		{"pretrain.ff", p.FF}, {"pretrain.batch_size", p.BatchSize}, {"pretrain.grad_accum", p.GradAccum},
		{"pretrain.steps", p.Steps}, {"pretrain.eval_every", p.EvalEvery}, {"pretrain.checkpoint_every", p.CheckpointEvery}} {
		if f.v < 1 {
			bad(f.key, "must be at least 1, got %d", f.v)
		}
	}
	if p.Heads >= 1 && p.Hidden%p.Heads != 0 {
		bad("pretrain.heads", "must divide pretrain.hidden (%d), got %d", p.Hidden, p.Heads)
	}
	if p.SeqLen < 8 || p.SeqLen > p.MaxPositions {
		bad("pretrain.seq_len", "must be in 8..pretrain.max_positions (%d), got %d", p.MaxPositions, p.SeqLen)
	}
	if p.MaxPositions < 1 {
		bad("pretrain.max_positions", "must be at least 1, got %d", p.MaxPositions)
	}
	if p.VocabSize < 100 {
		bad("pretrain.vocab_size", "must be at least 100, got %d", p.VocabSize)
	}
	if p.LR <= 0 {
		bad("pretrain.lr", "must be positive, got %g", p.LR)
	}
	if p.WarmupSteps < 0 || p.WeightDecay < 0 || p.MaxGradNorm < 0 || p.HeldoutMax < 0 || p.HeldoutEvery < 0 {
		bad("pretrain", "warmup_steps, weight_decay, max_grad_norm, heldout_every and heldout_max must be >= 0")
	}
	if p.MaskProb <= 0 || p.MaskProb >= 1 {
		bad("pretrain.mask_prob", "must be in (0, 1), got %g", p.MaskProb)
	}
	if !(p.CopyProb >= 0 && p.CopyProb <= 1) {
		bad("pretrain.copy_prob", "must be in [0, 1], got %g", p.CopyProb)
	}
	switch p.PairTask {
	case "none":
	case "nsp":
		if p.Arch != "bert" {
			bad("pretrain.pair_task", "nsp needs pretrain.arch bert (DistilBERT has no pooler nor token types), got arch %q", p.Arch)
		}
	default:
		bad("pretrain.pair_task", "must be none or nsp, got %q", p.PairTask)
	}
	if !(p.PairWeight > 0) || math.IsInf(p.PairWeight, 0) {
		bad("pretrain.pair_weight", "must be positive and finite, got %g", p.PairWeight)
	}
	if p.Init != "bert" && p.Init != "lexical" {
		bad("pretrain.init", "must be bert or lexical, got %q", p.Init)
	}
	switch p.TrainParams {
	case "domain", "task", "all":
	default:
		bad("pretrain.train_params", "must be domain, task or all, got %q", p.TrainParams)
	}
	if c.Adapt.SourceMLMSteps < 0 {
		bad("adapt.source_mlm_steps", "must be >= 0, got %d", c.Adapt.SourceMLMSteps)
	}
	if c.Adapt.MLMLR <= 0 {
		bad("adapt.mlm_lr", "must be positive, got %g", c.Adapt.MLMLR)
	}
	if c.Adapt.TargetMLMSteps < 1 {
		bad("adapt.target_mlm_steps", "must be at least 1, got %d", c.Adapt.TargetMLMSteps)
	}
	if c.Adapt.Rerank != "" && c.Adapt.RerankDepth < 1 {
		bad("adapt.rerank_depth", "must be at least 1 when adapt.rerank is set, got %d", c.Adapt.RerankDepth)
	}
	if p.DomainLayers < 0 {
		bad("pretrain.domain_layers", "must be >= 0, got %d", p.DomainLayers)
	}
	rr := c.Rerank
	switch rr.Loss {
	case "pointwise", "marginmse", "infonce":
	default:
		bad("rerank.loss", "must be pointwise, marginmse or infonce, got %q", rr.Loss)
	}
	if !(rr.LR > 0) || rr.WeightDecay < 0 || rr.MaxGradNorm < 0 || rr.WarmupSteps < 0 || rr.EvalEvery < 0 || rr.CheckpointEvery < 0 {
		bad("rerank", "lr must be positive; weight_decay, max_grad_norm, warmup_steps, eval_every and checkpoint_every >= 0")
	}
	if rr.Steps < 1 || rr.BatchSize < 1 || rr.NNeg < 1 || rr.DevDepth < 1 || rr.ScoreBatchSize < 1 || rr.MaxLength < 4 {
		bad("rerank", "steps, batch_size, n_neg, dev_depth and score_batch_size must be >= 1 and max_length >= 4")
	}
	sp := c.Splade
	if sp.LambdaD < 0 || sp.LambdaQ < 0 || sp.MarginMSE < 0 || sp.WeightDecay < 0 || sp.MaxGradNorm < 0 ||
		sp.LambdaWarmupSteps < 0 || sp.WarmupSteps < 0 || sp.EvalEvery < 0 || sp.CheckpointEvery < 0 || sp.TopN < 0 || sp.DomainLayers < 0 || sp.UnsupPairs < 0 || sp.TrainMaxLength < 0 {
		bad("splade", "lambda_d, lambda_q, margin_mse, weight_decay, max_grad_norm, lambda_warmup_steps, warmup_steps, eval_every, checkpoint_every, top_n, domain_layers, unsup_pairs and train_max_length must be >= 0")
	}
	if sp.TrainMaxLength == 1 {
		bad("splade.train_max_length", "must be 0 (model.max_length) or at least 2, got 1")
	}
	if sp.QueryIDF != "corpus" && sp.QueryIDF != "training" {
		bad("splade.query_idf", "must be corpus or training, got %q", sp.QueryIDF)
	}
	if sp.Pooling != "" && sp.Pooling != "max" && sp.Pooling != "sum" {
		bad("splade.pooling", "must be max, sum or empty (keep the checkpoint's), got %q", sp.Pooling)
	}
	if sp.QueryEncoder != "model" && sp.QueryEncoder != "idf" {
		bad("splade.query_encoder", "must be model or idf, got %q", sp.QueryEncoder)
	}
	if sp.QueryReg != "flops" && sp.QueryReg != "l1" {
		bad("splade.query_reg", "must be flops or l1, got %q", sp.QueryReg)
	}
	if !(sp.LR > 0) {
		bad("splade.lr", "must be positive, got %g", sp.LR)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"splade.steps", sp.Steps}, {"splade.batch_size", sp.BatchSize}, {"splade.n_neg", sp.NNeg},
		{"splade.mine_negatives", sp.MineNegatives}, {"splade.encode_batch_size", sp.EncodeBatchSize}, {"splade.shard_size", sp.ShardSize}} {
		if f.v < 1 {
			bad(f.key, "must be at least 1, got %d", f.v)
		}
	}
	if sp.MineDepth < sp.MineNegatives {
		bad("splade.mine_depth", "must be at least splade.mine_negatives (%d), got %d", sp.MineNegatives, sp.MineDepth)
	}
	switch sp.TrainParams {
	case "domain", "task", "all":
	default:
		bad("splade.train_params", "must be domain, task or all, got %q", sp.TrainParams)
	}
	if _, err := eval.ParseMeasures(c.Eval.Measures...); err != nil {
		bad("eval.measures", "%v", err)
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EnvVar returns the environment variable that sets key
// ("bm25.k1" → "SPLADAPT_BM25_K1").
func EnvVar(key string) string {
	return "SPLADAPT_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// testEnvPrefixes are SPLADAPT_* variables read by Go tests and
// benchmarks (SPLADAPT_BENCH_DOCS, ...), not settings: CheckEnv allows them.
var testEnvPrefixes = []string{"SPLADAPT_BENCH_", "SPLADAPT_ANALYSIS_", "SPLADAPT_LOADTEST_", "SPLADAPT_COMPARE"}

// CheckEnv returns an error naming every SPLADAPT_* environment variable
// that sets no key, as ReadFile does for unknown keys of a file: a
// misspelled variable would otherwise be ignored without a word.
func CheckEnv() error {
	known := map[string]bool{}
	for k := range Keys() {
		known[EnvVar(k)] = true
	}
	var errs []error
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "SPLADAPT_") || known[name] {
			continue
		}
		test := false
		for _, p := range testEnvPrefixes {
			test = test || strings.HasPrefix(name, p)
		}
		if test {
			continue
		}
		hint := ""
		for k := range known {
			if strings.HasPrefix(k, name) || strings.HasPrefix(name, k) {
				hint = fmt.Sprintf("; did you mean %s?", k)
				break
			}
		}
		errs = append(errs, fmt.Errorf("environment variable %s sets no config key (valid names are SPLADAPT_ and a key of config.yaml in upper case with _ for .%s)", name, hint))
	}
	return errors.Join(errs...)
}

// NumThreads resolves Threads: 0 means one per CPU.
func (c *Config) NumThreads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.NumCPU()
}

// Cache returns the cache directory, resolving the empty default.
func (c *Config) Cache() string {
	if c.CacheDir != "" {
		return c.CacheDir
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "spladapt")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "spladapt")
	}
	return filepath.Join(os.TempDir(), "spladapt-cache")
}

// Keys lists every valid key ("bm25.k1", ...) with its default value.
func Keys() map[string]any {
	out := map[string]any{}
	flatten("", reflect.ValueOf(Default()), out)
	return out
}

func flatten(prefix string, v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("mapstructure")
		if key == "" {
			continue
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		if f.Type.Kind() == reflect.Struct {
			flatten(key, v.Field(i), out)
			continue
		}
		out[key] = v.Field(i).Interface()
	}
}

// New returns a viper instance with every default set and SPLADAPT_*
// environment variables bound (bm25.k1 ← SPLADAPT_BM25_K1).
func New() *viper.Viper {
	v := viper.New()
	for k, d := range Keys() {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("SPLADAPT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	return v
}

// ReadFile merges the YAML file at path into v. A missing file is an error
// only when required is true. Keys the file has that Config does not are
// rejected with the file and key named.
func ReadFile(v *viper.Viper, path string, required bool) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read config %s: %w", path, err)
	}
	fv := viper.New()
	fv.SetConfigFile(path)
	fv.SetConfigType("yaml")
	if err := fv.ReadInConfig(); err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	known := Keys()
	var unknown []string
	for _, k := range fv.AllKeys() {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config %s: unknown key %q (valid keys are listed in the repository's config.yaml)", path, unknown[0])
	}
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	return nil
}

// Decode unmarshals v into a Config and validates it. Values of the wrong
// type are errors naming the key; unknown SPLADAPT_* variables are errors
// naming the variable (CheckEnv).
func Decode(v *viper.Viper) (Config, error) {
	var c Config
	if err := CheckEnv(); err != nil {
		return c, err
	}
	if err := v.UnmarshalExact(&c); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}
