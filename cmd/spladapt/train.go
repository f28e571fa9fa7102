package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spladapt/spladapt/internal/outdir"
	"github.com/spladapt/spladapt/splade"
)

func init() { register(newTrainCmd) }

func newTrainCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "train", Short: "Train models (SPLADE, cross-encoder re-rankers)"}
	cmd.AddCommand(newTrainSpladeCmd(a))
	cmd.AddCommand(newTrainRerankCmd(a))
	return cmd
}

func newTrainSpladeCmd(a *app) *cobra.Command {
	var (
		train, triples, teacher, dev, unsup []string
		split, devSplit, initDir            string
		out, work                           string
		resume                              bool
	)
	cmd := &cobra.Command{
		Use:   "splade --train DIR [--train DIR]... --init CKPT --out CKPT [--dev DIR]...",
		Short: "Train a SPLADE model on BEIR training data (mined BM25 negatives or triples)",
		Long: `Fine-tune an MLM checkpoint (--init, HF layout) into a SPLADE retriever.

Training data, per --train DIR (a BEIR directory; several are mixed):
  qrels/<--split>.tsv with BM25 hard negatives mined from the top
  splade.mine_depth hits (judged positives excluded), cached in the work
  directory; or, with as many --triples FILE as --train DIR, triples files
  ("qid pos neg [margin]", docs/format/training-data.md) whose ids are that
  directory's. --teacher FILE (one per --train) adds teacher scores for
  MarginMSE (splade.margin_mse).
Loss: InfoNCE with in-batch and hard negatives + lambda_d FLOPS(docs) +
  lambda_q FLOPS or L1 (queries), warmed up (config section splade).
--train-params task trains only P_task (layers >= splade.domain_layers and
  the MLM head), the adaptation method's fine-tuning step; domain or all.
--dev DIR (repeatable): every splade.eval_every steps the dev corpus and the
  queries of qrels/<--dev-split>.tsv are encoded and searched exactly;
  nDCG@10 (mean over dev sets) selects the model kept at --out, with
  splade.json (settings, data, best dev metrics) and curves.csv/.svg.
  Without --dev the last step's model is kept.
State for --resume (weights, AdamW moments, step, curves) is saved to the
work directory (default OUT.work) every splade.checkpoint_every steps;
a resumed run repeats exactly what an uninterrupted one would do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for flag, key := range map[string]string{
				"steps": "splade.steps", "batch-size": "splade.batch_size", "lr": "splade.lr",
				"n-neg": "splade.n_neg", "train-params": "splade.train_params", "domain-layers": "splade.domain_layers",
				"eval-every": "splade.eval_every", "checkpoint-every": "splade.checkpoint_every",
				"lambda-d": "splade.lambda_d", "lambda-q": "splade.lambda_q", "seed": "splade.seed",
				"max-length": "model.max_length", "query-max-length": "model.query_max_length",
			} {
				a.bind(cmd.Flags(), flag, key)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if len(train) == 0 || initDir == "" || out == "" {
				return fmt.Errorf("train splade: --train, --init and --out are required")
			}
			if len(triples) > 0 && len(triples) != len(train) {
				return fmt.Errorf("train splade: %d --triples for %d --train directories (give one per directory, in order)", len(triples), len(train))
			}
			if len(teacher) > 0 && len(teacher) != len(train) {
				return fmt.Errorf("train splade: %d --teacher for %d --train directories (give one per directory, in order)", len(teacher), len(train))
			}
			if work == "" {
				work = filepath.Clean(out) + ".work"
			}
			inputs := append(append(append([]string{initDir, work}, train...), triples...), teacher...)
			g, err := claimOutput(cmd, out, true, append(inputs, dev...)...)
			if err != nil {
				return err
			}
			defer g.Release()
			unlock, err := outdir.Lock(work)
			if err != nil {
				return fmt.Errorf("train splade: work directory %w", err)
			}
			defer unlock()
			setThreads(cfg.NumThreads())
			stderr := cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			set, err := cfg.SpladeJob()
			if err != nil {
				return err
			}
			meta, err := splade.TrainJob{Init: initDir, Out: out, WorkDir: work, Resume: resume,
				Train: train, Split: split, Triples: triples, Teacher: teacher, Dev: dev, DevSplit: devSplit, Unsup: unsup,
				Settings: set, CorpusOpts: skipOptions(cfg, stderr), Log: stderr, Progress: cfg.Progress}.Run(ctx)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return errors.Unwrap(err)
				}
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "trained %d steps (%s parameters) → %s (model of step %d)\n", meta.Steps, meta.TrainParams, out, meta.Step)
			if len(dev) > 0 {
				fmt.Fprintf(w, "best dev: %s\n", splade.FormatMetrics(meta.DevMetrics))
			}
			return nil
		},
	}
	f := cmd.Flags()
	addTrainingDataFlags(f, &train, &triples, &teacher, &dev, &split, &devSplit)
	f.StringArrayVar(&unsup, "train-unsup", nil, "corpus for unsupervised inverse-cloze pairs with BM25 negatives, mixed in (repeatable; splade.unsup_pairs per corpus; its and the dev sets' queries never become training queries)")
	f.StringVar(&initDir, "init", "", "initial checkpoint (HF directory with tokenizer files)")
	f.StringVar(&out, "out", "", "directory for the best model")
	addForceFlag(cmd)
	f.StringVar(&work, "work", "", "directory for resumable state and mined negatives (default OUT.work)")
	f.BoolVar(&resume, "resume", false, "continue from the state in the work directory")
	f.Int("steps", 0, "optimiser steps (default: config splade.steps)")
	f.Int("batch-size", 0, "triples per step (default: config splade.batch_size)")
	f.Float64("lr", 0, "peak learning rate (default: config splade.lr)")
	f.Int("n-neg", 0, "hard negatives per triple (default: config splade.n_neg)")
	f.String("train-params", "", "all, task or domain (default: config splade.train_params)")
	f.Int("domain-layers", 0, "k: P_domain = embeddings + the first k layers (default: config splade.domain_layers)")
	f.Int("eval-every", 0, "dev evaluation every N steps (default: config splade.eval_every)")
	f.Int("checkpoint-every", 0, "checkpoint every N steps (default: config splade.checkpoint_every)")
	f.Float64("lambda-d", 0, "FLOPS weight of documents (default: config splade.lambda_d)")
	f.Float64("lambda-q", 0, "regularisation weight of queries (default: config splade.lambda_q)")
	f.Uint64("seed", 0, "seed (default: config splade.seed)")
	f.Int("max-length", 0, "document tokens (default: config model.max_length)")
	f.Int("query-max-length", 0, "query tokens (default: config model.query_max_length)")
	return cmd
}

// addTrainingDataFlags registers the flags that name a training run's data,
// shared by "train splade" and "train rerank": --train, --split, --triples,
// --teacher, --dev and --dev-split.
func addTrainingDataFlags(f *pflag.FlagSet, train, triples, teacher, dev *[]string, split, devSplit *string) {
	f.StringArrayVar(train, "train", nil, "BEIR directory with training qrels (repeatable)")
	f.StringVar(split, "split", "train", "qrels split to train on")
	f.StringArrayVar(triples, "triples", nil, "triples file instead of mined negatives, one per --train (repeatable)")
	f.StringArrayVar(teacher, "teacher", nil, "teacher-score file for MarginMSE, one per --train (repeatable)")
	f.StringArrayVar(dev, "dev", nil, "BEIR directory for model selection (repeatable)")
	f.StringVar(devSplit, "dev-split", "dev", "qrels split of the dev sets")
}
