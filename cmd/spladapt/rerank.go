package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/splade"
)

func init() { register(newRerankCmd) }

func newRerankCmd(a *app) *cobra.Command {
	var model, queries, corpus, runPath, out, tag, storePath string
	var depth int
	cmd := &cobra.Command{
		Use:   "rerank --model M --queries Q (--corpus C | --store STORE) --run RUN --out RUN2 [--depth 100]",
		Short: "Re-rank the top hits of a run with a cross-encoder or MICE",
		Long: `Re-score the top --depth hits of every query of a TREC run with a
cross-encoder (an HF BertForSequenceClassification / DistilBert... checkpoint
with one label, e.g. one trained by "spladapt train rerank", or an MS MARCO
MiniLM re-ranker) on "[CLS] query [SEP] document [SEP]" (rerank.max_length
tokens, longest-first truncation), and write them ordered by the new score.
Pairs are scored in batches of rerank.score_batch_size of similar length;
the matrix products use both cores (threads). Progress on stderr; the
speed (pairs/s, ms per query) is printed at the end.

A MICE model (rerank.json of kind "mice", from "train rerank --arch mice")
scores on the fly from --corpus, or with --store STORE (from "spladapt mice
store") reads each document's states below the fusion layer instead of
computing them: per query, the query is encoded once and only the
interaction layers run per document. The store must be that model's. A MICE
model with match types (rerank.json "match_types") marks the query pieces
found in each document from the store's token ids, and encodes the query
per document; a store of format 1 has none and is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "max-length", "rerank.max_length")
			a.bind(cmd.Flags(), "batch-size", "rerank.score_batch_size")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || queries == "" || (corpus == "") == (storePath == "") || runPath == "" || out == "" {
				return errors.New("rerank: --model, --queries, --run, --out and one of --corpus and --store are required")
			}
			setThreads(cfg.NumThreads())
			stderr := cmd.ErrOrStderr()
			opts := skipOptions(cfg, stderr)
			scorer, err := rerank.LoadScorer(model, cfg.Rerank.MaxLength, cfg.Rerank.ScoreBatchSize)
			if err != nil {
				return fmt.Errorf("rerank: %w", err)
			}
			mice, isMICE := scorer.(*rerank.MICE)
			if storePath != "" && !isMICE {
				return fmt.Errorf("rerank: --store needs a MICE model, and %s is a cross-encoder (train one with train rerank --arch mice)", model)
			}
			run, err := corpora.ReadRun(runPath)
			if err != nil {
				return fmt.Errorf("rerank: %w", err)
			}
			qs, err := corpora.ReadQueries(queries, opts)
			if err != nil {
				return fmt.Errorf("rerank: %w", err)
			}
			qtext := map[string]string{}
			for _, q := range qs {
				qtext[q.ID] = q.Text
			}
			need := map[string]bool{}
			pairs := 0
			for _, hits := range run {
				for _, h := range rerank.TopHits(hits, depth) {
					need[h.DocID] = true
					pairs++
				}
			}
			var docs map[string]string
			var st *rerank.Store
			if storePath != "" {
				if st, err = rerank.OpenStore(storePath); err != nil {
					return fmt.Errorf("rerank: %w", err)
				}
			} else if docs, err = rerank.DocTexts(corpus, need, opts); err != nil {
				return fmt.Errorf("rerank: %w", err)
			}
			bar := progress.New(stderr, progress.Enabled(cfg.Progress), "rerank", "pairs", int64(pairs))
			start := time.Now()
			var got corpora.Run
			if st != nil {
				got, err = rerank.RerankStore(mice, st, qtext, run, depth, func(n int) { bar.Add(int64(n)) })
			} else {
				got, err = rerank.Rerank(scorer, qtext, docs, run, depth, func(n int) { bar.Add(int64(n)) })
			}
			bar.Done()
			if err != nil {
				return err
			}
			secs := time.Since(start).Seconds()
			if err := atomicfile.Write(out, 0o644, func(w io.Writer) error { return corpora.WriteRun(w, got, tag) }); err != nil {
				return fmt.Errorf("rerank: write %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-ranked %d pairs of %d queries in %.1fs (%.1f pairs/s, %.1f ms per query) → %s\n",
				pairs, len(got), secs, float64(pairs)/max(secs, 1e-9), 1000*secs/float64(max(len(got), 1)), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "cross-encoder checkpoint (HF directory with tokenizer files)")
	f.StringVar(&queries, "queries", "", "queries (BEIR queries.jsonl, TSV or TREC topics)")
	f.StringVar(&corpus, "corpus", "", "corpus (BEIR directory or any corpus format)")
	f.StringVar(&runPath, "run", "", "TREC run to re-rank")
	f.StringVar(&out, "out", "", "re-ranked TREC run")
	f.StringVar(&tag, "tag", "rerank", "run tag")
	f.StringVar(&storePath, "store", "", "MICE document-state store (from spladapt mice store) instead of --corpus")
	f.IntVar(&depth, "depth", 100, "hits re-ranked per query")
	f.Int("max-length", 0, "tokens per pair (default: config rerank.max_length)")
	f.Int("batch-size", 0, "pairs per forward pass (default: config rerank.score_batch_size)")
	cmd.AddCommand(newRerankScoreTriplesCmd(a))
	return cmd
}

func newRerankScoreTriplesCmd(a *app) *cobra.Command {
	var model, out, split, work string
	var train, triples []string
	cmd := &cobra.Command{
		Use:   "score-triples --model M --train DIR [--triples FILE] --out TEACHER.tsv",
		Short: "Score training triples with a cross-encoder: a MarginMSE teacher for SPLADE",
		Long: `Score every (query, positive) and (query, negative) pair of the training
triples with a cross-encoder and write the teacher-score file
(docs/format/training-data.md: "qid doc_id score") that
"spladapt train splade --teacher FILE" distils with MarginMSE
(splade.margin_mse). The triples are those "train splade" would use: BM25
negatives mined from qrels/<--split>.tsv of --train DIR (cached in --work),
or a --triples file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "max-length", "rerank.max_length")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || len(train) != 1 || out == "" {
				return errors.New("rerank score-triples: --model, one --train and --out are required")
			}
			if len(triples) > 1 {
				return errors.New("rerank score-triples: at most one --triples file (for the --train directory)")
			}
			if work == "" {
				work = filepath.Clean(out) + ".work"
			}
			setThreads(cfg.NumThreads())
			stderr := cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ce, err := rerank.LoadCrossEncoder(model, cfg.Rerank.MaxLength, cfg.Rerank.ScoreBatchSize)
			if err != nil {
				return fmt.Errorf("rerank score-triples: %w", err)
			}
			srcs, err := splade.TrainJob{Train: train, Split: split, Triples: triples, WorkDir: work,
				Settings:   splade.JobSettings{Mining: cfg.SpladeMining()},
				CorpusOpts: skipOptions(cfg, stderr)}.Sources(ctx, stderr)
			if err != nil {
				return err
			}
			var n int
			bar := progress.New(stderr, progress.Enabled(cfg.Progress), "score triples", "pairs", 0)
			err = atomicfile.Write(out, 0o644, func(w io.Writer) error {
				var err error
				n, err = rerank.ScoreTriples(ce, srcs[0], w, func(k int) { bar.Add(int64(k)) })
				return err
			})
			bar.Done()
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return errors.Unwrap(err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "scored %d pairs of %d triples → %s\n", n, len(srcs[0].Triples), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "cross-encoder checkpoint")
	f.StringArrayVar(&train, "train", nil, "BEIR directory with training qrels")
	f.StringVar(&split, "split", "train", "qrels split")
	f.StringArrayVar(&triples, "triples", nil, "triples file instead of mined negatives")
	f.StringVar(&out, "out", "", "teacher-score file to write")
	f.StringVar(&work, "work", "", "directory for mined negatives (default OUT.work)")
	f.Int("max-length", 0, "tokens per pair (default: config rerank.max_length)")
	return cmd
}

func newTrainRerankCmd(a *app) *cobra.Command {
	var (
		train, triples, teacher, dev []string
		split, devSplit, initDir     string
		out, work                    string
		resume                       bool
		arch                         string
		miceFusion, miceQueryLen     int
		miceInteract                 []int
		miceLight                    bool
	)
	cmd := &cobra.Command{
		Use:   "rerank --train DIR [--train DIR]... --init CKPT --out CKPT [--loss pointwise|marginmse|infonce] [--dev DIR]...",
		Short: "Train a cross-encoder re-ranker (pointwise, MarginMSE or InfoNCE)",
		Long: `Fine-tune a cross-encoder (--init: a cross-encoder checkpoint, or a
masked-LM checkpoint whose pooler and one-label classifier are then
initialised as HF does) on the training sources of "train splade": BM25 hard
negatives mined from qrels/<--split>.tsv of each --train DIR (splade.
mine_negatives from the top splade.mine_depth), or --triples files; --teacher
files (one per --train) give the teacher scores MarginMSE needs.
Each step scores rerank.batch_size queries × (positive + rerank.n_neg
negatives) as "[CLS] q [SEP] d [SEP]" pairs; --loss is
  pointwise  binary cross-entropy (positive 1, negatives 0)
  marginmse  (s_pos − s_neg − teacher margin)²
  infonce    softmax cross-entropy over each query's positive and negatives.
--dev DIR: every rerank.eval_every steps the BM25 top rerank.dev_depth of the
judged queries of qrels/<--dev-split>.tsv are re-ranked; nDCG@10 selects the
model kept at --out (with rerank.json and curves.csv/.svg). The state for
--resume is saved to the work directory every rerank.checkpoint_every steps;
a resumed run repeats exactly what an uninterrupted one would do.

--arch mice trains a MICE re-ranker (nn/mice.go) on the weights of --init
(normally the full cross-encoder, whose "rerank score-triples" scores are
then the --teacher of --loss marginmse): layers below --mice-fusion encode
query and document apart, only the --mice-interact layers (default: all from
the fusion layer up) run after it, with --mice-light cross-attention (query
tokens attend to frozen document states). Queries are padded to
--mice-query-length (default model.query_max_length) tokens, documents cut
to rerank.max_length. MICE trains without dropout. rerank.match_types marks
the query side only: query pieces found in the document get token type 2,
the document keeps type 1 (its states must not depend on the query).

rerank.match_types decides for either architecture, whatever the --init's
rerank.json says; the token-type table grows to four rows if --init has two.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for flag, key := range map[string]string{
				"loss": "rerank.loss", "steps": "rerank.steps", "batch-size": "rerank.batch_size", "lr": "rerank.lr",
				"n-neg": "rerank.n_neg", "eval-every": "rerank.eval_every", "checkpoint-every": "rerank.checkpoint_every",
				"seed": "rerank.seed", "max-length": "rerank.max_length", "dev-depth": "rerank.dev_depth",
			} {
				a.bind(cmd.Flags(), flag, key)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			var mice *rerank.MICEConfig
			switch arch {
			case "cross-encoder":
			case "mice":
				mc, err := miceConfigFromFlags(initDir, miceFusion, miceInteract, miceLight, miceQueryLen, cfg.Model.QueryMaxLength, cfg.Rerank.MaxLength)
				if err != nil {
					return fmt.Errorf("train rerank: %w", err)
				}
				mice = &mc
			default:
				return fmt.Errorf("train rerank: --arch %q, want cross-encoder or mice", arch)
			}
			setThreads(cfg.NumThreads())
			stderr := cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			meta, err := rerank.TrainJob{Init: initDir, Out: out, WorkDir: work, Resume: resume,
				Train: train, Split: split, Triples: triples, Teacher: teacher, Dev: dev, DevSplit: devSplit,
				Settings: cfg.RerankJob(), CorpusOpts: skipOptions(cfg, stderr), Log: stderr, Progress: cfg.Progress, MICE: mice}.Run(ctx)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return errors.Unwrap(err)
				}
				return err
			}
			w := cmd.OutOrStdout()
			kind := ""
			if arch == "mice" {
				kind = ", MICE"
			}
			fmt.Fprintf(w, "trained %d steps (%s loss%s) → %s (model of step %d)\n", meta.Steps, meta.Loss, kind, out, meta.Step)
			if len(dev) > 0 {
				fmt.Fprintf(w, "best dev: %s\n", splade.FormatMetrics(meta.DevMetrics))
			}
			return nil
		},
	}
	f := cmd.Flags()
	addTrainingDataFlags(f, &train, &triples, &teacher, &dev, &split, &devSplit)
	f.StringVar(&initDir, "init", "", "initial checkpoint: a cross-encoder or a masked-LM (HF directory with tokenizer files)")
	f.StringVar(&out, "out", "", "directory for the best model")
	f.StringVar(&work, "work", "", "directory for resumable state, mined negatives and dev BM25 indexes (default OUT.work)")
	f.BoolVar(&resume, "resume", false, "continue from the state in the work directory")
	f.String("loss", "", "pointwise, marginmse or infonce (default: config rerank.loss)")
	f.Int("steps", 0, "optimiser steps (default: config rerank.steps)")
	f.Int("batch-size", 0, "queries per step (default: config rerank.batch_size)")
	f.Float64("lr", 0, "peak learning rate (default: config rerank.lr)")
	f.Int("n-neg", 0, "negatives per query (default: config rerank.n_neg)")
	f.Int("eval-every", 0, "dev evaluation every N steps (default: config rerank.eval_every)")
	f.Int("checkpoint-every", 0, "checkpoint every N steps (default: config rerank.checkpoint_every)")
	f.Uint64("seed", 0, "seed (default: config rerank.seed)")
	f.Int("max-length", 0, "tokens per pair (default: config rerank.max_length)")
	f.Int("dev-depth", 0, "BM25 hits re-ranked per dev query (default: config rerank.dev_depth)")
	f.StringVar(&arch, "arch", "cross-encoder", "cross-encoder or mice")
	f.IntVar(&miceFusion, "mice-fusion", 0, "MICE: layers that encode query and document apart")
	f.IntSliceVar(&miceInteract, "mice-interact", nil, "MICE: interaction layers, ascending (default: --mice-fusion … last)")
	f.BoolVar(&miceLight, "mice-light", false, "MICE: light cross-attention in the interaction layers")
	f.IntVar(&miceQueryLen, "mice-query-length", 0, "MICE: query segment length in tokens (default: config model.query_max_length)")
	return cmd
}

// miceConfigFromFlags builds a MICE shape for the model at dir; interact
// nil means every layer from fusion up.
func miceConfigFromFlags(dir string, fusion int, interact []int, light bool, queryLen, defQueryLen, docLen int) (rerank.MICEConfig, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return rerank.MICEConfig{}, fmt.Errorf("read the config of %s: %w", dir, err)
	}
	cfg, err := nn.ParseConfig(raw)
	if err != nil {
		return rerank.MICEConfig{}, fmt.Errorf("read the config of %s: %w", dir, err)
	}
	if interact == nil {
		for l := fusion; l < cfg.NumLayers; l++ {
			interact = append(interact, l)
		}
	}
	if queryLen <= 0 {
		queryLen = defQueryLen
	}
	docLen = min(docLen, cfg.MaxPositions-queryLen)
	mc := rerank.MICEConfig{MICEOptions: nn.MICEOptions{Fusion: fusion, Interact: interact, Light: light}, QueryLength: queryLen, DocLength: docLen}
	if err := mc.MICEOptions.Validate(cfg.NumLayers); err != nil {
		return mc, err
	}
	return mc, nil
}
