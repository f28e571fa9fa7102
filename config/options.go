package config

import "github.com/spladapt/spladapt/pretrain"

// The settings as the option structs of the library packages, which do
// not import this package.

// Settings is section pretrain as pretrain.Settings.
func (p Pretrain) Settings() pretrain.Settings {
	return pretrain.Settings{Arch: p.Arch, Layers: p.Layers, Hidden: p.Hidden, Heads: p.Heads, FF: p.FF,
		MaxPositions: p.MaxPositions, VocabSize: p.VocabSize, SeqLen: p.SeqLen, BatchSize: p.BatchSize,
		GradAccum: p.GradAccum, Steps: p.Steps, LR: p.LR, WarmupSteps: p.WarmupSteps, WeightDecay: p.WeightDecay,
		MaxGradNorm: p.MaxGradNorm, MaskProb: p.MaskProb, WholeWord: p.WholeWord, CopyProb: p.CopyProb, Init: p.Init,
		HeldoutEvery: p.HeldoutEvery, HeldoutMax: p.HeldoutMax, EvalEvery: p.EvalEvery, CheckpointEvery: p.CheckpointEvery,
		TrainParams: p.TrainParams, DomainLayers: p.DomainLayers, Seed: p.Seed}
}
