package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

func init() { register(newTrainCmd) }

func newTrainCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "train", Short: "Train models (SPLADE)"}
	cmd.AddCommand(newTrainSpladeCmd(a))
	return cmd
}

func newTrainSpladeCmd(a *app) *cobra.Command {
	var (
		train, triples, teacher, dev []string
		split, devSplit, initDir     string
		out, work                    string
		resume                       bool
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
			nn.SetThreads(cfg.NumThreads())
			stderr := cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			m, err := nn.LoadHF(initDir)
			if err != nil {
				return err
			}
			tok, err := tokenize.Load(initDir)
			if err != nil {
				return fmt.Errorf("train splade: %w", err)
			}
			var sources []splade.Source
			for i, dir := range train {
				var ts []splade.Triple
				if len(triples) > 0 {
					ts, err = splade.ReadTriples(triples[i], skipOptions(cfg, stderr))
				} else {
					ts, err = mineTriples(ctx, cfg, dir, split, filepath.Join(work, fmt.Sprintf("mined-%d", i)), stderr)
				}
				if err != nil {
					return err
				}
				if len(teacher) > 0 {
					sc, err := splade.ReadTeacherScores(teacher[i], skipOptions(cfg, stderr))
					if err != nil {
						return err
					}
					var st splade.ApplyStats
					ts, st = sc.Apply(ts)
					fmt.Fprintf(stderr, "%s: teacher scores for %d triples; dropped %d triples and %d negatives without a score (first missing: query %q, document %q)\n",
						dir, st.Triples, st.DroppedTriples, st.DroppedNegs, st.FirstMissingQID, st.FirstMissingDoc)
				}
				texts, err := splade.LoadTexts(dir, ts, skipOptions(cfg, stderr))
				if err != nil {
					return err
				}
				name := filepath.Base(filepath.Clean(dir)) + "/" + split
				if len(triples) > 0 {
					name = filepath.Base(filepath.Clean(dir)) + ":" + triples[i]
				}
				sources = append(sources, splade.Source{Name: name, Triples: ts, Texts: texts})
				fmt.Fprintf(stderr, "%s: %d triples\n", name, len(ts))
			}
			var devSets []*splade.DevSet
			for _, dir := range dev {
				d, err := splade.LoadDevSet(dir, devSplit, skipOptions(cfg, stderr))
				if err != nil {
					return err
				}
				devSets = append(devSets, d)
				fmt.Fprintf(stderr, "dev %s: %d queries, %d documents\n", d.Name, len(d.Queries), len(d.Docs))
			}
			opt, err := trainOptions(cfg)
			if err != nil {
				return err
			}
			tr, err := splade.NewTrainer(m, tok, sources, devSets, opt)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "training %s: %d of %d parameters (%s), %d steps of %d triples × (1 + %d negatives)\n",
				initDir, tr.TrainableParams(), m.NumParams(), opt.TrainParams, opt.Steps, opt.BatchSize, opt.NNeg)
			bar := progress.New(stderr, progress.Enabled(cfg.Progress), "train splade", "steps", int64(opt.Steps))
			var tokens int
			var secs float64
			warned := false
			meta, err := tr.Run(ctx, splade.RunConfig{WorkDir: work, Out: out, Init: initDir, Resume: resume}, splade.TrainHooks{
				OnStep: func(s splade.StepStats) {
					tokens += s.Tokens
					secs += s.Elapsed.Seconds()
					bar.AddNote(1, fmt.Sprintf("loss %.3f nce %.3f nnz q %.0f d %.0f, %.0f tok/s",
						s.Terms.Total, s.Terms.InfoNCE, s.Terms.MeanNNZQuery, s.Terms.MeanNNZDoc, float64(tokens)/secs))
					// Collapse: the regulariser has emptied the vectors and
					// InfoNCE sits at log(B + B·NNeg); it does not recover.
					if !warned && (s.Terms.MeanNNZDoc < 1 || s.Terms.MeanNNZQuery < 1) {
						warned = true
						fmt.Fprintf(stderr, "\nwarning: step %d: vectors have collapsed (mean non-zeros: queries %.2f, documents %.2f); lower splade.lambda_q/lambda_d or raise splade.lambda_warmup_steps, or start from a better-trained MLM checkpoint\n",
							s.Step, s.Terms.MeanNNZQuery, s.Terms.MeanNNZDoc)
					}
				},
				OnEval: func(step int, ms map[string]float64, best bool) {
					mark := ""
					if best {
						mark = " (best, saved)"
					}
					fmt.Fprintf(stderr, "\nstep %d: dev %s%s\n", step, formatMetrics(ms), mark)
				},
			})
			bar.Done()
			if errors.Is(err, context.Canceled) {
				return fmt.Errorf("train splade: interrupted after step %d, state saved in %s; continue with --resume", tr.StepCount(), work)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "trained %d steps (%s parameters) → %s (model of step %d)\n", tr.StepCount(), opt.TrainParams, out, meta.Step)
			if len(devSets) > 0 {
				fmt.Fprintf(w, "best dev: %s\n", formatMetrics(meta.DevMetrics))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&train, "train", nil, "BEIR directory with training qrels (repeatable)")
	f.StringVar(&split, "split", "train", "qrels split to train on")
	f.StringArrayVar(&triples, "triples", nil, "triples file instead of mined negatives, one per --train (repeatable)")
	f.StringArrayVar(&teacher, "teacher", nil, "teacher-score file for MarginMSE, one per --train (repeatable)")
	f.StringArrayVar(&dev, "dev", nil, "BEIR directory for model selection (repeatable)")
	f.StringVar(&devSplit, "dev-split", "dev", "qrels split of the dev sets")
	f.StringVar(&initDir, "init", "", "initial checkpoint (HF directory with tokenizer files)")
	f.StringVar(&out, "out", "", "directory for the best model")
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

// trainOptions maps the config onto splade.TrainOptions.
func trainOptions(cfg config.Config) (splade.TrainOptions, error) {
	sp := cfg.Splade
	w := splade.Weights{InfoNCE: 1, MarginMSE: sp.MarginMSE, FLOPSD: sp.LambdaD, WarmupSteps: sp.LambdaWarmupSteps}
	switch sp.QueryReg {
	case "flops":
		w.FLOPSQ = sp.LambdaQ
	case "l1":
		w.L1Q = sp.LambdaQ
	default:
		return splade.TrainOptions{}, fmt.Errorf("splade.query_reg %q: want flops or l1", sp.QueryReg)
	}
	return splade.TrainOptions{
		Weights: w, LR: sp.LR, WeightDecay: sp.WeightDecay, MaxGradNorm: sp.MaxGradNorm,
		WarmupSteps: sp.WarmupSteps, Steps: sp.Steps, BatchSize: sp.BatchSize, NNeg: sp.NNeg,
		QueryMaxLen: cfg.Model.QueryMaxLength, DocMaxLen: cfg.Model.MaxLength, Seed: sp.Seed,
		TrainParams: sp.TrainParams, DomainLayers: sp.DomainLayers, Dropout: sp.Dropout,
		EvalEvery: sp.EvalEvery, CheckpointEvery: sp.CheckpointEvery, EncodeBatch: sp.EncodeBatchSize,
	}, nil
}

// mineTriples builds (or reuses) a BM25 index of dir's corpus under cache
// and mines hard negatives for split's qrels, cached beside it.
func mineTriples(ctx context.Context, cfg config.Config, dir, split, cache string, stderr io.Writer) ([]splade.Triple, error) {
	idxDir := filepath.Join(cache, "bm25")
	if _, err := bm25.ReadMeta(idxDir); err != nil {
		fmt.Fprintf(stderr, "%s: building the BM25 index for negative mining\n", dir)
		if _, err := bm25.BuildCorpus(idxDir, dir, skipOptions(cfg, stderr), nil); err != nil {
			return nil, err
		}
	}
	idx, err := bm25.Open(idxDir)
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	p := bm25.Params{K1: cfg.BM25.K1, B: cfg.BM25.B}
	s, err := idx.NewSearcher(p)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var st splade.MineStats
	sp := cfg.Splade
	ts, hit, err := splade.MineCached(ctx, filepath.Join(cache, split+".triples.tsv"), fmt.Sprintf("bm25 k1=%g b=%g", p.K1, p.B),
		dir, split, s, sp.MineNegatives, sp.MineDepth, sp.Seed, splade.MineOptions{Stats: &st})
	if err != nil {
		return nil, err
	}
	how := "mined"
	if hit {
		how = "cached"
	}
	fmt.Fprintf(stderr, "%s/%s: %s %d triples from %d judged queries (skipped: %d without positive in the corpus, %d not in queries.jsonl, %d without negatives; %d with fewer than %d negatives)\n",
		dir, split, how, st.Triples, st.Queries, st.NoPositive, st.MissingQuery, st.NoNegatives, st.FewNegatives, sp.MineNegatives)
	return ts, nil
}

// formatMetrics prints the mean measures first, then per dev set.
func formatMetrics(ms map[string]float64) string {
	keys := make([]string, 0, len(ms))
	for k := range ms {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := strings.Contains(keys[i], " "), strings.Contains(keys[j], " ")
		if ci != cj {
			return !ci
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.4f", k, ms[k])
	}
	return strings.Join(parts, ", ")
}
