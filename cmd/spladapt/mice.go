package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/rerank"
)

func init() { register(newMICECmd) }

func newMICECmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mice",
		Short: "MICE re-rankers: precomputed document states",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newMICEStoreCmd(a))
	return cmd
}

func newMICEStoreCmd(a *app) *cobra.Command {
	var model, corpus, out string
	cmd := &cobra.Command{
		Use:   "store --model M --corpus C --out STORE",
		Short: "Compute and store the document states of a MICE model for a corpus",
		Long: `Encode every document of --corpus ("d… [SEP]", the model's MICE
document length) through the layers below the MICE model's fusion layer and
write the states to --out in the format of docs/format/mice-store.md
(version 2: float32 states and each document's token ids, which a MICE
model with match types marks its queries against; a CRC-32 per section,
written to a temporary file and renamed).
"spladapt rerank --model M --store STORE" then re-ranks without encoding
documents. Documents are batched by length, rerank.score_batch_size at a
time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "batch-size", "rerank.score_batch_size")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || corpus == "" || out == "" {
				return errors.New("mice store: --model, --corpus and --out are required")
			}
			setThreads(cfg.NumThreads())
			stderr := cmd.ErrOrStderr()
			sc, err := rerank.LoadScorer(model, cfg.Rerank.MaxLength, cfg.Rerank.ScoreBatchSize)
			if err != nil {
				return fmt.Errorf("mice store: %w", err)
			}
			m, ok := sc.(*rerank.MICE)
			if !ok {
				return fmt.Errorf("mice store: %s is a cross-encoder, not a MICE model (train one with train rerank --arch mice)", model)
			}
			docs, err := rerank.DocTexts(corpus, nil, skipOptions(cfg, stderr))
			if err != nil {
				return fmt.Errorf("mice store: %w", err)
			}
			bar := progress.New(stderr, progress.Enabled(cfg.Progress), "mice store", "docs", int64(len(docs)))
			start := time.Now()
			err = rerank.BuildStore(m, docs, out, model, func(n int) { bar.Add(int64(n)) })
			bar.Done()
			if err != nil {
				return fmt.Errorf("mice store: %w", err)
			}
			secs := time.Since(start).Seconds()
			fmt.Fprintf(cmd.OutOrStdout(), "stored the states of %d documents (fusion layer %d) in %.1fs (%.1f docs/s) → %s\n",
				len(docs), m.Cfg.Fusion, secs, float64(len(docs))/max(secs, 1e-9), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "MICE model (from train rerank --arch mice)")
	f.StringVar(&corpus, "corpus", "", "corpus (BEIR directory or any corpus format)")
	f.StringVar(&out, "out", "", "store file to write")
	f.Int("batch-size", 0, "documents per forward pass (default: config rerank.score_batch_size)")
	return cmd
}
