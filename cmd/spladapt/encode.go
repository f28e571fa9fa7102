package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/adapt"
	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/outdir"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/splade"
)

func init() {
	register(newEncodeCmd)
	register(newFuseCmd)
	register(newSpladeCmd)
}

// loadEncoder loads a SPLADE encoder from a checkpoint directory with the
// lengths, top-n and batch size of cfg, and sets the compute threads.
func loadEncoder(cfg config.Config, modelDir string) (*splade.Encoder, error) {
	setThreads(cfg.NumThreads())
	enc, err := splade.LoadEncoder(modelDir, cfg.Model.MaxLength, cfg.Model.QueryMaxLength, cfg.Splade.TopN)
	if err != nil {
		return nil, err
	}
	enc.BatchSize = cfg.Splade.EncodeBatchSize
	return enc, nil
}

// spladeQueryEncoder returns the text-query encoder of model modelDir for
// index r at idxDir, refusing a model whose vocabulary is not the index's;
// an inference-free model's queries are weighted as splade.query_idf says.
func spladeQueryEncoder(cfg config.Config, modelDir, idxDir string, r *index.Reader) (index.QueryEncoder, error) {
	enc, err := loadEncoder(cfg, modelDir)
	if err != nil {
		return nil, err
	}
	if err := adapt.CheckIndex(enc, r); err != nil {
		return nil, fmt.Errorf("model %s: %w", modelDir, err)
	}
	return splade.QueriesFor(enc, idxDir, cfg.Splade.QueryIDF)
}

func newEncodeCmd(a *app) *cobra.Command {
	var model, corpus, out, work, statsPath string
	var keep bool
	cmd := &cobra.Command{
		Use:   "encode --model CKPT --corpus PATH --out IDX",
		Short: "Encode a corpus with a SPLADE model into an index",
		Long: `Encode every document of --corpus (a BEIR directory, .jsonl, .tsv or a
directory of documents) with the SPLADE model --model and build the index
--out, whose vocabulary is the model's and whose fingerprint names the model
("spladapt search/serve --model" refuse a model with another vocabulary).
Documents are streamed in shards of splade.shard_size, batched by length
(splade.encode_batch_size), and each finished shard is saved in the work
directory (default IDX.work): an interrupted run resumes where it stopped.
Documents are cut to model.max_length tokens; splade.top_n > 0 keeps only the
largest weights of each vector. Prints documents, mean non-zeros per
document, index size and encoding throughput (--stats FILE: as JSON).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "top-n", "splade.top_n")
			a.bind(cmd.Flags(), "batch-size", "splade.encode_batch_size")
			a.bind(cmd.Flags(), "shard-size", "splade.shard_size")
			a.bind(cmd.Flags(), "max-length", "model.max_length")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || corpus == "" || out == "" {
				return fmt.Errorf("encode: --model, --corpus and --out are required")
			}
			if work == "" {
				work = filepath.Clean(out) + ".work"
			}
			// Two encodes on one output or work directory: the second
			// is refused while the first runs (outdir's lock).
			g, err := claimOutput(cmd, out, true, corpus, model, work)
			if err != nil {
				return err
			}
			defer g.Release()
			unlock, err := outdir.Lock(work)
			if err != nil {
				return fmt.Errorf("encode: work directory %w", err)
			}
			defer unlock()
			enc, err := loadEncoder(cfg, model)
			if err != nil {
				return err
			}
			total, _ := corpora.CountDocs(corpus)
			bar := progress.New(cmd.ErrOrStderr(), progress.Enabled(cfg.Progress), "encode", "docs", int64(total))
			last := 0
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := adapt.EncodeCorpus(ctx, enc, corpus, out, adapt.EncodeCorpusOptions{
				WorkDir:     work,
				ShardSize:   cfg.Splade.ShardSize,
				Index:       index.Options{Workers: cfg.NumThreads(), QuantBits: cfg.Index.QuantBits, BlockSize: cfg.Index.BlockSize},
				Fingerprint: splade.Fingerprint(enc, model),
				Corpus:      skipOptions(cfg, cmd.ErrOrStderr()),
				KeepShards:  keep,
				Log:         func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) },
				Progress: func(n int) {
					bar.Add(int64(n - last))
					last = n
				},
			})
			bar.Done()
			if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
				return fmt.Errorf("encode: interrupted; run the same command again to resume")
			}
			if err != nil {
				return err
			}
			stale := ""
			if st.StaleShards > 0 {
				stale = fmt.Sprintf(", %d encoded again: their documents changed", st.StaleShards)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "encoded %d documents (%d resumed shards of %d%s) → %s: %.1f non-zeros per document, index %d bytes, %.1f docs/s, %.0f tokens/s\n",
				st.Docs, st.ResumedShards, st.Shards, stale, out, st.MeanNNZ, st.IndexBytes, st.DocsPerSec, st.TokensPerSec)
			if statsPath != "" {
				raw, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				return atomicfile.WriteFile(statsPath, append(raw, '\n'), 0o644)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "SPLADE checkpoint directory")
	f.StringVar(&corpus, "corpus", "", "corpus to encode")
	f.StringVar(&out, "out", "", "index directory to write")
	f.StringVar(&work, "work", "", "directory of resumable shards (default OUT.work)")
	f.BoolVar(&keep, "keep-shards", false, "keep the work directory after the index is built")
	f.StringVar(&statsPath, "stats", "", "write the encoding statistics as JSON to this file")
	addForceFlag(cmd)
	f.Int("top-n", 0, "keep the n largest weights per document (default: config splade.top_n)")
	f.Int("batch-size", 0, "documents per forward pass (default: config splade.encode_batch_size)")
	f.Int("shard-size", 0, "documents per resumable shard (default: config splade.shard_size)")
	f.Int("max-length", 0, "document tokens (default: config model.max_length)")
	return cmd
}

func newFuseCmd(a *app) *cobra.Command {
	var runs []string
	var weights []float64
	var method, out, tag string
	var rrfK, depth int
	cmd := &cobra.Command{
		Use:   "fuse --run RUN --run RUN [--method rrf|interp] --out RUN",
		Short: "Fuse TREC runs (reciprocal rank fusion or score interpolation)",
		Long: `Fuse two or more TREC runs into one, e.g. BM25 and SPLADE.
  rrf:    score(d) = Σ_i w_i / (k + rank_i(d))        (Cormack et al. 2009; k = --rrf-k)
  interp: score(d) = Σ_i w_i · (s_i(d) − min_i)/(max_i − min_i)
          per query min-max normalised scores; a run without d adds 0.
Ranks follow trec_eval's order (score descending, ties by docno descending).
Weights (--weight, one per --run) default to 1 each. The fused run keeps the
top --depth documents per query.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			if len(runs) < 2 || out == "" {
				return fmt.Errorf("fuse: at least two --run and --out are required")
			}
			o := eval.FuseOptions{Method: method, Weights: weights, RRFK: rrfK, Depth: depth}
			if err := o.Validate(len(runs)); err != nil {
				return err
			}
			g, err := claimOutput(cmd, out, false, runs...)
			if err != nil {
				return err
			}
			defer g.Release()
			var in []corpora.Run
			for _, p := range runs {
				r, err := corpora.ReadRun(p)
				if err != nil {
					return err
				}
				in = append(in, r)
			}
			fused, err := eval.Fuse(in, o)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, 0o644, func(w io.Writer) error {
				bw := bufio.NewWriter(w)
				if err := corpora.WriteRun(bw, fused, tag); err != nil {
					return err
				}
				return bw.Flush()
			}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fused %d runs (%s) over %d queries → %s\n", len(runs), method, len(fused), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&runs, "run", nil, "TREC run to fuse (repeatable)")
	f.Float64SliceVar(&weights, "weight", nil, "weight of each run, in --run order (default 1 each)")
	f.StringVar(&method, "method", "rrf", "rrf or interp")
	f.IntVar(&rrfK, "rrf-k", 60, "k of reciprocal rank fusion")
	f.IntVar(&depth, "depth", 1000, "documents kept per query")
	f.StringVar(&out, "out", "", "fused run to write")
	f.StringVar(&tag, "tag", "fused", "run tag (last column)")
	return cmd
}

func newSpladeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "splade", Short: "SPLADE results over collections"}
	cmd.AddCommand(newSpladeTableCmd(a))
	return cmd
}

func newSpladeTableCmd(a *app) *cobra.Command {
	var model, data, work, out, rerankModel string
	var only []string
	var rrfK, rerankDepth int
	cmd := &cobra.Command{
		Use:   "table --model CKPT --data DIR --work DIR [--out FILE.md]",
		Short: "Encode, index, search and evaluate every collection under DIR next to BM25 and BM25+SPLADE fusion",
		Long: `For every BEIR collection under --data (test split, else dev), or those named
by --collection: BM25 (bm25.k1, bm25.b), SPLADE with --model (encoded into an
index in WORK/<name>/splade, resumable and reused when the model is the
same) and their reciprocal rank fusion (--rrf-k), each evaluated with
trec_eval -c: nDCG@10 and R@100, with SPLADE's mean non-zeros per document
and per query, index size and encoding throughput. Runs are kept in
WORK/<name>/{bm25,splade,fused}.trec for "spladapt compare"; --rerank MODEL
re-scores the RRF run's top --rerank-depth hits with a cross-encoder or MICE
model into reranked.trec and two more columns. The Markdown
table goes to stdout or --out, the numbers also to WORK/table.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || data == "" || work == "" {
				return fmt.Errorf("splade table: --model, --data and --work are required")
			}
			enc, err := loadEncoder(cfg, model)
			if err != nil {
				return err
			}
			dirs, err := bm25.Collections(data)
			if err != nil {
				return err
			}
			if len(only) > 0 {
				var keep []string
				for _, d := range dirs {
					if slices.Contains(only, filepath.Base(d)) {
						keep = append(keep, d)
					}
				}
				dirs = keep
			}
			if len(dirs) == 0 {
				return fmt.Errorf("splade table: no collection under %s", data)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := adapt.TableOptions{Config: cfg, Model: model, Work: work, RRFK: rrfK,
				Corpus: skipOptions(cfg, cmd.ErrOrStderr()), Log: cmd.ErrOrStderr(), RerankDepth: rerankDepth}
			if rerankModel != "" {
				if rerankDepth < 1 {
					return fmt.Errorf("splade table: --rerank-depth %d, want ≥ 1", rerankDepth)
				}
				if opts.Rerank, err = rerank.LoadScorer(rerankModel, cfg.Rerank.MaxLength, cfg.Rerank.ScoreBatchSize); err != nil {
					return fmt.Errorf("splade table: %w", err)
				}
			}
			rows, err := adapt.Table(ctx, enc, dirs, opts)
			if err != nil {
				return err
			}
			var md strings.Builder
			adapt.WriteTable(&md, rows, model, rrfK)
			if out != "" {
				return atomicfile.WriteFile(out, []byte(md.String()), 0o644)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), md.String())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "SPLADE checkpoint directory")
	f.StringVar(&data, "data", "", "directory of BEIR collections")
	f.StringVar(&work, "work", "", "directory for indexes, runs and table.json")
	f.StringVar(&out, "out", "", "Markdown table file (default stdout)")
	f.StringArrayVar(&only, "collection", nil, "evaluate only this collection (repeatable)")
	f.IntVar(&rrfK, "rrf-k", 60, "k of reciprocal rank fusion")
	f.StringVar(&rerankModel, "rerank", "", "also re-rank the RRF run's top hits with this cross-encoder or MICE model (reranked.trec, two more columns)")
	f.IntVar(&rerankDepth, "rerank-depth", 100, "hits per query re-ranked with --rerank")
	return cmd
}
