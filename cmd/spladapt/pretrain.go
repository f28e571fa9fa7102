package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/outdir"
	"github.com/spladapt/spladapt/pretrain"
)

func init() { register(newPretrainCmd) }

func newPretrainCmd(a *app) *cobra.Command {
	var o pretrain.Options
	cmd := &cobra.Command{
		Use:   "pretrain --corpus DIR [--corpus DIR]... (--init CKPT | --from-scratch) --out CKPT",
		Short: "Masked-language-model training, from scratch or continued, of all parameters or of P_domain only",
		Long: `Train a BERT-family encoder with its MLM head on unlabeled corpora (any
corpus spladapt reads: BEIR directories, JSONL, TSV, directories of text
files). Sequences of pretrain.seq_len tokens are packed from the documents
([CLS] doc [SEP] doc [SEP] ...), masked anew each epoch (15%: 80% [MASK],
10% random, 10% unchanged), and trained with AdamW, linear warm-up and decay.

--from-scratch trains a WordPiece vocabulary on the corpora (or takes
--vocab) and initialises a model of the pretrain.* shape as BERT does.
--train-params domain trains only P_domain (embeddings + the first
pretrain.domain_layers layers), task only the rest, all everything.

Every pretrain.eval_every steps the held-out loss and perplexity (every
pretrain.heldout_every-th sequence is held out) are printed; every
pretrain.checkpoint_every steps, and on Ctrl-C, a resumable checkpoint is
written to OUT.work; --resume continues it exactly. The result is an
HF-layout checkpoint with training.json and curves.csv/curves.svg.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			setThreads(cfg.NumThreads())
			o.Settings = cfg.Pretrain.Settings()
			o.CacheDir = filepath.Join(cfg.Cache(), "tokens")
			o.Progress = cfg.Progress
			o.Log = cmd.ErrOrStderr()
			skipped := 0
			o.CorpusOpts = corpora.Options{SkipInvalid: cfg.SkipInvalid, Skipped: &skipped,
				Report: func(e *corpora.ParseError) { fmt.Fprintln(cmd.ErrOrStderr(), "skipped:", e) }}
			if o.FromScratch == (o.Init != "") {
				return errors.New("give exactly one of --init CKPT and --from-scratch")
			}
			if o.WorkDir == "" {
				o.WorkDir = o.Out + ".work"
			}
			g, err := claimOutput(cmd, o.Out, true, append([]string{o.Init, o.WorkDir}, o.Corpora...)...)
			if err != nil {
				return err
			}
			defer g.Release()
			unlock, err := outdir.Lock(o.WorkDir)
			if err != nil {
				return fmt.Errorf("pretrain: work directory %w", err)
			}
			defer unlock()
			res, err := pretrain.Train(cmd.Context(), o)
			if skipped > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d invalid records skipped\n", skipped)
			}
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(res, "", "  ")
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n%s\n", o.Out, b)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Corpora, "corpus", nil, "corpus to train on (repeatable; required)")
	f.StringVar(&o.Init, "init", "", "checkpoint to continue from")
	f.BoolVar(&o.FromScratch, "from-scratch", false, "initialise a new model (pretrain.* shape) with its own vocabulary")
	f.StringVar(&o.Vocab, "vocab", "", "with --from-scratch: a vocab.txt to use instead of training one")
	f.StringVar(&o.Out, "out", "", "output checkpoint directory (required)")
	addForceFlag(cmd)
	f.StringVar(&o.WorkDir, "work-dir", "", "resumable checkpoints (default OUT.work)")
	f.BoolVar(&o.Resume, "resume", false, "continue the run whose checkpoint is in the work directory")
	f.String("train-params", "", "domain, task or all (default pretrain.train_params)")
	f.Int("domain-layers", 0, "k of P_domain (default pretrain.domain_layers)")
	f.Int("steps", 0, "optimizer steps (default pretrain.steps)")
	f.Float64("lr", 0, "peak learning rate (default pretrain.lr)")
	f.Int("batch-size", 0, "sequences per micro-batch (default pretrain.batch_size)")
	f.Int("seq-len", 0, "packed sequence length (default pretrain.seq_len)")
	for flag, key := range map[string]string{"train-params": "pretrain.train_params", "domain-layers": "pretrain.domain_layers",
		"steps": "pretrain.steps", "lr": "pretrain.lr", "batch-size": "pretrain.batch_size", "seq-len": "pretrain.seq_len"} {
		a.bind(f, flag, key)
	}
	cmd.MarkFlagRequired("corpus")
	cmd.MarkFlagRequired("out")
	cmd.AddCommand(newPretrainEvalCmd(a))
	return cmd
}

func newPretrainEvalCmd(a *app) *cobra.Command {
	var model string
	var corpus []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval --model CKPT --corpus DIR [--corpus DIR]...",
		Short: "Held-out masked-LM loss and perplexity of a checkpoint on corpora",
		Long: `Measure the MLM loss and perplexity of CKPT on the held-out sequences of
each corpus: the same packing, split (every pretrain.heldout_every-th
sequence, at most pretrain.heldout_max) and fixed masking that a pretrain
run on that corpus holds out, so a model continued on the corpus is
measured on text it did not train on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			setThreads(cfg.NumThreads())
			type row struct {
				Corpus    string  `json:"corpus"`
				Loss      float64 `json:"loss"`
				PPL       float64 `json:"perplexity"`
				Positions int     `json:"masked_positions"`
			}
			var rows []row
			for _, c := range corpus {
				loss, ppl, n, err := pretrain.EvalCorpus(cmd.Context(), model, []string{c}, cfg.Pretrain.Settings(),
					filepath.Join(cfg.Cache(), "tokens"), corpora.Options{SkipInvalid: cfg.SkipInvalid})
				if err != nil {
					return err
				}
				rows = append(rows, row{c, loss, ppl, n})
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			for _, r := range rows {
				fmt.Fprintf(w, "%s\tloss %.4f\tperplexity %.2f\t(%d masked positions)\n", r.Corpus, r.Loss, r.PPL, r.Positions)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "checkpoint directory (required)")
	cmd.Flags().StringArrayVar(&corpus, "corpus", nil, "corpus (repeatable; required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("model")
	cmd.MarkFlagRequired("corpus")
	return cmd
}
