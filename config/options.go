package config

import (
	"fmt"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/pretrain"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/splade"
)

// The settings as the option structs of the library packages, which do
// not import this package.

// Settings is section pretrain as pretrain.Settings.
func (p Pretrain) Settings() pretrain.Settings {
	return p.withPair(pretrain.Settings{Arch: p.Arch, Layers: p.Layers, Hidden: p.Hidden, Heads: p.Heads, FF: p.FF,
		MaxPositions: p.MaxPositions, VocabSize: p.VocabSize, SeqLen: p.SeqLen, BatchSize: p.BatchSize,
		GradAccum: p.GradAccum, Steps: p.Steps, LR: p.LR, WarmupSteps: p.WarmupSteps, WeightDecay: p.WeightDecay,
		MaxGradNorm: p.MaxGradNorm, MaskProb: p.MaskProb, WholeWord: p.WholeWord, CopyProb: p.CopyProb, Init: p.Init,
		HeldoutEvery: p.HeldoutEvery, HeldoutMax: p.HeldoutMax, EvalEvery: p.EvalEvery, CheckpointEvery: p.CheckpointEvery,
		TrainParams: p.TrainParams, DomainLayers: p.DomainLayers, Seed: p.Seed})
}

// withPair adds the pair task to s; without one both settings stay zero,
// so that the settings (and the keys and states made from them) of runs
// without a pair task are those made before the pair task existed.
func (p Pretrain) withPair(s pretrain.Settings) pretrain.Settings {
	if p.PairTask == "nsp" {
		s.PairTask, s.PairWeight = p.PairTask, p.PairWeight
	}
	return s
}

// SpladeJob is sections splade, model and bm25 as the settings of a
// splade.TrainJob.
func (c Config) SpladeJob() (splade.JobSettings, error) {
	opt, err := c.SpladeTrainOptions()
	if err != nil {
		return splade.JobSettings{}, err
	}
	return splade.JobSettings{Options: opt, Mining: c.SpladeMining(), IDFMaxLength: c.Model.MaxLength}, nil
}

// SpladeTrainOptions is sections splade and model as splade.TrainOptions.
func (c Config) SpladeTrainOptions() (splade.TrainOptions, error) {
	sp := c.Splade
	w := splade.Weights{InfoNCE: 1, MarginMSE: sp.MarginMSE, FLOPSD: sp.LambdaD, WarmupSteps: sp.LambdaWarmupSteps}
	switch sp.QueryReg {
	case "flops":
		w.FLOPSQ = sp.LambdaQ
	case "l1":
		w.L1Q = sp.LambdaQ
	default:
		return splade.TrainOptions{}, fmt.Errorf("splade.query_reg %q: want flops or l1", sp.QueryReg)
	}
	docLen := c.Model.MaxLength
	if sp.TrainMaxLength > 0 {
		docLen = sp.TrainMaxLength
	}
	return splade.TrainOptions{
		Weights: w, LR: sp.LR, WeightDecay: sp.WeightDecay, MaxGradNorm: sp.MaxGradNorm,
		WarmupSteps: sp.WarmupSteps, Steps: sp.Steps, BatchSize: sp.BatchSize, NNeg: sp.NNeg,
		QueryMaxLen: c.Model.QueryMaxLength, DocMaxLen: docLen, DevDocMaxLen: c.Model.MaxLength, DevTopN: sp.TopN, Seed: sp.Seed,
		TrainParams: sp.TrainParams, DomainLayers: sp.DomainLayers, Dropout: sp.Dropout, QueryEncoder: sp.QueryEncoder,
		Pooling: sp.Pooling, EvalEvery: sp.EvalEvery, CheckpointEvery: sp.CheckpointEvery, EncodeBatch: sp.EncodeBatchSize,
	}, nil
}

// SpladeMining is the mining settings of section splade with bm25's k1
// and b.
func (c Config) SpladeMining() splade.Mining {
	sp := c.Splade
	return splade.Mining{K1: c.BM25.K1, B: c.BM25.B, Negatives: sp.MineNegatives, Depth: sp.MineDepth,
		Margins: sp.MineMargins, Seed: sp.Seed, UnsupPairs: sp.UnsupPairs}
}

// RerankJob is sections rerank, splade (mining) and bm25 as the settings
// of a rerank.TrainJob.
func (c Config) RerankJob() rerank.JobSettings {
	r := c.Rerank
	return rerank.JobSettings{Options: r.TrainOptions(), MaxLength: r.MaxLength, ScoreBatchSize: r.ScoreBatchSize,
		Mining: c.SpladeMining(), BM25: bm25.Params{K1: c.BM25.K1, B: c.BM25.B}}
}

// TrainOptions is section rerank as rerank.TrainOptions.
func (r Rerank) TrainOptions() rerank.TrainOptions {
	return rerank.TrainOptions{Loss: r.Loss, LR: r.LR, WeightDecay: r.WeightDecay, MaxGradNorm: r.MaxGradNorm,
		WarmupSteps: r.WarmupSteps, Steps: r.Steps, BatchSize: r.BatchSize, NNeg: r.NNeg, Dropout: r.Dropout,
		Seed: r.Seed, EvalEvery: r.EvalEvery, CheckpointEvery: r.CheckpointEvery, DevDepth: r.DevDepth,
		MatchTypes: r.MatchTypes}
}
