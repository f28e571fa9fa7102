package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/internal/benchmodel"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
)

func init() { register(newBenchCmd) }

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure speed",
	}
	cmd.AddCommand(newBenchModelCmd(a))
	return cmd
}

func newBenchModelCmd(a *app) *cobra.Command {
	var o benchmodel.Options
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Time SPLADE encoding or one MLM training step of a randomly initialised model",
		Long: `Time SPLADE encoding (--task encode: encoder + MLM head transform + max
pooling, default batch 32 x 256 tokens) or one MLM training step (--task
mlm-train: forward, backward and AdamW, 15% of positions masked as in
../shared/tools/oracle/bench.py, default batch 16 x 128) on a model with
random weights of the given shape, on --threads threads (config threads).
It reports the median of --runs timed runs after --warmup untimed ones:
tokens/s (batch x len / median), GFLOPS (matrix products only: see
nn.SpladeEncodeFLOPs and nn.MLMTrainFLOPs) against the peak, measured in the
same process as a 1024^3 Sgemm before and after the runs (the better of the
two medians), and the peak resident memory (VmHWM).

With --corpus DIR (a BEIR directory or any corpus "spladapt corpus"
reads), --task encode instead encodes the first --max-docs documents of
the corpus, tokenised with --tokenizer DIR or, without it, a WordPiece
vocabulary of --vocab entries trained on those documents, truncated to
--len tokens, and tokens/s counts real tokens only. --order length sorts
documents by length and packs batches of at most --batch x --len tokens
(no padding beyond the batch's longest); --order arrival takes --batch
documents at a time in corpus order, padded to the longest.

--kernels chooses the level of nn's fused C kernels (SPLADAPT_KERNELS
otherwise): auto, avx2 or avx512; several, comma-separated (avx2,avx512),
time each level on the same model and batch with their runs alternating,
for a side-by-side ratio in one process (synthetic batches only). Each run
also records the process CPU time, less disturbed than wall time on a
loaded machine.

Shapes of the speed targets: bert-mini --layers 4 --hidden 256 --heads 4
--ff 1024; bert-small 4/512/8/2048; distilbert-base --arch distilbert 6/768/12/3072.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			threads := cfg.NumThreads()
			nn.SetThreads(threads)
			res, err := benchmodel.Run(o, threads, progress.Enabled(cfg.Progress))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				b, err := json.Marshal(res)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(w, "%s\n", b)
				return err
			}
			_, err = fmt.Fprintf(w, "%s %s L%d H%d A%d F%d V%d batch %dx%d, %d threads (%s, kernels %s): %.0f tokens/s, %.1f GFLOPS = %.0f%% of %.1f (%s), %.1f ms/batch (median of %d), rss %.0f MB\n",
				res.Arch, res.Task, res.Layers, res.Hidden, res.Heads, res.FF, res.Vocab, res.Batch, res.Len, res.Threads, res.Backend, res.Kernels,
				res.TokensPerS, res.GFLOPS, res.PctPeak, res.PeakGFLOPS, res.PeakSource, res.MsPerBatch, res.Runs, res.RSSMB)
			for _, l := range res.ByKernels {
				if err != nil {
					break
				}
				_, err = fmt.Fprintf(w, "  kernels %s: %.0f tokens/s, %.1f ms/batch (%.2fx the first), CPU %.1f ms/batch (median)\n",
					l.Kernels, l.TokensPerS, l.MsPerBatch, res.ByKernels[0].MsPerBatch/l.MsPerBatch, benchmodel.Median(l.CPUMsRuns))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Arch, "arch", "bert", "bert or distilbert")
	f.IntVar(&o.Layers, "layers", 4, "transformer layers L")
	f.IntVar(&o.Hidden, "hidden", 256, "hidden size H")
	f.IntVar(&o.Heads, "heads", 4, "attention heads A")
	f.IntVar(&o.FF, "ff", 1024, "feed-forward size F")
	f.IntVar(&o.Vocab, "vocab", 30522, "vocabulary size V")
	f.StringVar(&o.Task, "task", "encode", "encode or mlm-train")
	f.IntVar(&o.Batch, "batch", 0, "batch size (default 32 for encode, 16 for mlm-train)")
	f.IntVar(&o.SeqLen, "len", 0, "sequence length (default 256 for encode, 128 for mlm-train)")
	f.IntVar(&o.Runs, "runs", 5, "timed runs (the median is reported)")
	f.IntVar(&o.Warmup, "warmup", 2, "untimed warm-up runs")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the random weights")
	f.BoolVar(&jsonOut, "json", false, "print one JSON object")
	f.BoolVar(&o.Peak, "peak", true, "measure the Sgemm peak (1024^3) first; without it the reference 318 GFLOPS is used")
	f.StringVar(&o.Corpus, "corpus", "", "encode this corpus instead of synthetic batches (tokens/s over real tokens)")
	f.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer directory for --corpus (default: train a WordPiece vocabulary on the documents)")
	f.IntVar(&o.MaxDocs, "max-docs", 2000, "documents of --corpus to encode")
	f.StringVar(&o.Order, "order", "length", "--corpus batching: length (sorted, packed) or arrival (corpus order, padded)")
	f.StringVar(&o.Kernels, "kernels", "", "fused C kernel level: auto, avx2 or avx512; several, comma-separated, are timed side by side (default: SPLADAPT_KERNELS, else auto)")
	return cmd
}
