package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
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
// index r, refusing a model whose vocabulary is not the index's.
func spladeQueryEncoder(cfg config.Config, modelDir string, r *index.Reader) (index.QueryEncoder, error) {
	enc, err := loadEncoder(cfg, modelDir)
	if err != nil {
		return nil, err
	}
	if err := adapt.CheckIndex(enc, r); err != nil {
		return nil, fmt.Errorf("model %s: %w", modelDir, err)
	}
	return enc, nil
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
			if len(weights) == 0 {
				for range runs {
					weights = append(weights, 1)
				}
			}
			if len(weights) != len(runs) {
				return fmt.Errorf("fuse: %d --weight for %d --run", len(weights), len(runs))
			}
			for i, w := range weights {
				if !(w > 0) || math.IsInf(w, 0) {
					return fmt.Errorf("fuse: --weight %g of run %s must be a positive finite number", w, runs[i])
				}
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
			fused, err := FuseRuns(in, weights, method, rrfK, depth)
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

// FuseRuns fuses runs query by query (the union of their queries) as the
// fuse command describes, keeping the best depth documents per query
// (ties by docno ascending). A NaN score is an error.
func FuseRuns(runs []corpora.Run, weights []float64, method string, rrfK, depth int) (corpora.Run, error) {
	if method != "rrf" && method != "interp" {
		return nil, fmt.Errorf("fuse: method %q, want rrf or interp", method)
	}
	if rrfK < 0 || depth < 1 {
		return nil, fmt.Errorf("fuse: rrf-k %d must be ≥ 0 and depth %d ≥ 1", rrfK, depth)
	}
	qids := map[string]bool{}
	for _, r := range runs {
		for q := range r {
			qids[q] = true
		}
	}
	out := corpora.Run{}
	for q := range qids {
		score := map[string]float64{}
		for i, r := range runs {
			hits := append([]corpora.Hit(nil), r[q]...)
			for _, h := range hits {
				if math.IsNaN(h.Score) {
					return nil, fmt.Errorf("fuse: query %s, document %s: NaN score", q, h.DocID)
				}
			}
			// trec_eval's order: score descending, ties by docno descending.
			sort.SliceStable(hits, func(a, b int) bool {
				if hits[a].Score != hits[b].Score {
					return hits[a].Score > hits[b].Score
				}
				return hits[a].DocID > hits[b].DocID
			})
			if len(hits) == 0 {
				continue
			}
			lo, hi := hits[len(hits)-1].Score, hits[0].Score
			for rank, h := range hits {
				switch method {
				case "rrf":
					score[h.DocID] += weights[i] / float64(rrfK+rank+1)
				case "interp":
					n := 1.0
					if hi > lo {
						n = (h.Score - lo) / (hi - lo)
					}
					score[h.DocID] += weights[i] * n
				}
			}
		}
		hits := make([]corpora.Hit, 0, len(score))
		for d, s := range score {
			hits = append(hits, corpora.Hit{DocID: d, Score: s})
		}
		sort.Slice(hits, func(a, b int) bool {
			if hits[a].Score != hits[b].Score {
				return hits[a].Score > hits[b].Score
			}
			return hits[a].DocID < hits[b].DocID
		})
		if len(hits) > depth {
			hits = hits[:depth]
		}
		for i := range hits {
			hits[i].Rank = i + 1
		}
		out[q] = hits
	}
	return out, nil
}

func newSpladeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "splade", Short: "SPLADE results over collections"}
	cmd.AddCommand(newSpladeTableCmd(a))
	return cmd
}

func newSpladeTableCmd(a *app) *cobra.Command {
	var model, data, work, out string
	var only []string
	var rrfK int
	cmd := &cobra.Command{
		Use:   "table --model CKPT --data DIR --work DIR [--out FILE.md]",
		Short: "Encode, index, search and evaluate every collection under DIR next to BM25 and BM25+SPLADE fusion",
		Long: `For every BEIR collection under --data (test split, else dev), or those named
by --collection: BM25 (bm25.k1, bm25.b), SPLADE with --model (encoded into an
index in WORK/<name>/splade, resumable and reused when the model is the
same) and their reciprocal rank fusion (--rrf-k), each evaluated with
trec_eval -c: nDCG@10 and R@100, with SPLADE's mean non-zeros per document
and per query, index size and encoding throughput. Runs are kept in
WORK/<name>/{bm25,splade,fused}.trec for "spladapt compare". The Markdown
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
			var rows []spladeRow
			for _, dir := range dirs {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s\n", filepath.Base(dir))
				row, err := evaluateSplade(ctx, cfg, enc, model, dir, filepath.Join(work, filepath.Base(dir)), rrfK, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				rows = append(rows, row)
			}
			raw, err := json.MarshalIndent(rows, "", "  ")
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(filepath.Join(work, "table.json"), append(raw, '\n'), 0o644); err != nil {
				return err
			}
			var md strings.Builder
			writeSpladeTable(&md, rows, model, rrfK)
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
	return cmd
}

// spladeRow is one collection of the SPLADE table.
type spladeRow struct {
	Name     string             `json:"name"`
	Split    string             `json:"split"`
	Docs     int                `json:"docs"`
	Queries  int                `json:"queries"`
	BM25     map[string]float64 `json:"bm25"`
	Splade   map[string]float64 `json:"splade"`
	Fused    map[string]float64 `json:"fused"`
	NNZDoc   float64            `json:"nnz_doc"`
	NNZQuery float64            `json:"nnz_query"`
	Encode   *adapt.EncodeStats `json:"encode"`
}

// spladeTableMeasures are the table's measures (trec_eval -c).
var spladeTableMeasures = []string{"nDCG@10", "R@100"}

// evaluateSplade fills one row: BM25, SPLADE and their fusion on dir's
// test (else dev) split, with indexes and runs under work.
func evaluateSplade(ctx context.Context, cfg config.Config, enc *splade.Encoder, modelDir, dir, work string, rrfK int, stderr io.Writer) (spladeRow, error) {
	b := corpora.BEIR{Dir: dir}
	row := spladeRow{Name: filepath.Base(dir), Split: bm25.Split(b)}
	ms, err := eval.ParseMeasures(spladeTableMeasures...)
	if err != nil {
		return row, err
	}
	bm, err := bm25.EvaluateCollection(dir, bm25.TableOptions{K: cfg.BM25.Depth, Params: bm25.Params{K1: cfg.BM25.K1, B: cfg.BM25.B},
		Workers: cfg.NumThreads(), IndexDir: filepath.Join(work, "bm25"), Corpora: skipOptions(cfg, stderr)})
	if err != nil {
		return row, err
	}
	row.Docs, row.Queries = int(bm.Docs), bm.Queries
	qrels, err := b.Qrels(row.Split)
	if err != nil {
		return row, err
	}
	evalRun := func(run corpora.Run) (map[string]float64, error) {
		res, err := eval.Evaluate(qrels, run, ms, eval.Options{AllQueries: true, Workers: cfg.NumThreads()})
		if err != nil {
			return nil, err
		}
		out := map[string]float64{}
		for i, m := range ms {
			out[m.Name()] = res.All[i]
		}
		return out, nil
	}
	if row.BM25, err = evalRun(bm.Run); err != nil {
		return row, err
	}

	// SPLADE index: reused when built by this model, else (re)encoded.
	idxDir := filepath.Join(work, "splade")
	statsPath := filepath.Join(work, "encode.json")
	fp := splade.Fingerprint(enc, modelDir)
	var st adapt.EncodeStats
	reuse := false
	if r, err := index.Open(idxDir); err == nil {
		raw, rerr := os.ReadFile(statsPath)
		reuse = r.Meta().Fingerprint == fp && rerr == nil && json.Unmarshal(raw, &st) == nil
		r.Close()
	}
	if !reuse {
		total, _ := corpora.CountDocs(dir)
		bar := progress.New(stderr, progress.Enabled(cfg.Progress), "encode "+row.Name, "docs", int64(total))
		last := 0
		s, err := adapt.EncodeCorpus(ctx, enc, dir, idxDir, adapt.EncodeCorpusOptions{
			ShardSize: cfg.Splade.ShardSize, Fingerprint: fp, Corpus: skipOptions(cfg, stderr),
			Index:    index.Options{Workers: cfg.NumThreads(), QuantBits: cfg.Index.QuantBits, BlockSize: cfg.Index.BlockSize},
			Progress: func(n int) { bar.Add(int64(n - last)); last = n },
		})
		bar.Done()
		if err != nil {
			return row, err
		}
		st = *s
		raw, _ := json.MarshalIndent(st, "", "  ")
		if err := atomicfile.WriteFile(statsPath, append(raw, '\n'), 0o644); err != nil {
			return row, err
		}
	}
	row.Encode, row.NNZDoc = &st, st.MeanNNZ

	r, algo, err := openIndex(cfg, idxDir, false)
	if err != nil {
		return row, err
	}
	defer r.Close()
	all, err := b.Queries(skipOptions(cfg, stderr))
	if err != nil {
		return row, err
	}
	var queries []corpora.Query
	var texts []string
	for _, q := range all {
		if _, ok := qrels[q.ID]; ok {
			queries = append(queries, q)
			texts = append(texts, q.Text)
		}
	}
	vecs, err := enc.EncodeQueries(texts)
	if err != nil {
		return row, err
	}
	run := corpora.Run{}
	nnz := 0
	for i, q := range queries {
		nnz += len(vecs[i])
		var hits []corpora.Hit
		if len(vecs[i]) > 0 {
			found, err := r.Search(vecs[i], cfg.Index.Depth, algo)
			if err != nil {
				return row, fmt.Errorf("search %s query %s: %w", row.Name, q.ID, err)
			}
			for k, h := range found {
				hits = append(hits, corpora.Hit{DocID: r.DocID(h.Doc), Score: h.Score, Rank: k + 1})
			}
		}
		run[q.ID] = hits
	}
	if len(queries) > 0 {
		row.NNZQuery = float64(nnz) / float64(len(queries))
	}
	if row.Splade, err = evalRun(run); err != nil {
		return row, err
	}
	fused, err := FuseRuns([]corpora.Run{bm.Run, run}, []float64{1, 1}, "rrf", rrfK, cfg.Index.Depth)
	if err != nil {
		return row, err
	}
	if row.Fused, err = evalRun(fused); err != nil {
		return row, err
	}
	for name, rn := range map[string]corpora.Run{"bm25": bm.Run, "splade": run, "fused": fused} {
		if err := atomicfile.Write(filepath.Join(work, name+".trec"), 0o644, func(w io.Writer) error {
			bw := bufio.NewWriter(w)
			if err := corpora.WriteRun(bw, rn, name); err != nil {
				return err
			}
			return bw.Flush()
		}); err != nil {
			return row, err
		}
	}
	return row, nil
}

// writeSpladeTable renders the rows as a Markdown table.
func writeSpladeTable(w io.Writer, rows []spladeRow, model string, rrfK int) {
	fmt.Fprintf(w, "SPLADE model `%s`; trec_eval -c; fusion: RRF k=%d of BM25 and SPLADE.\n\n", model, rrfK)
	fmt.Fprintln(w, "| collection | split | docs | queries | BM25 nDCG@10 | BM25 R@100 | SPLADE nDCG@10 | SPLADE R@100 | RRF nDCG@10 | RRF R@100 | nnz/doc | nnz/query | index MiB | docs/s | tokens/s |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var sum [6]float64
	for _, r := range rows {
		v := [6]float64{r.BM25["nDCG@10"], r.BM25["R@100"], r.Splade["nDCG@10"], r.Splade["R@100"], r.Fused["nDCG@10"], r.Fused["R@100"]}
		for i := range v {
			sum[i] += v[i]
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.1f | %.1f | %.2f | %.0f | %.0f |\n",
			r.Name, r.Split, r.Docs, r.Queries, v[0], v[1], v[2], v[3], v[4], v[5], r.NNZDoc, r.NNZQuery,
			float64(r.Encode.IndexBytes)/(1<<20), r.Encode.DocsPerSec, r.Encode.TokensPerSec)
	}
	n := float64(len(rows))
	fmt.Fprintf(w, "| mean | | | | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | | | | | |\n",
		sum[0]/n, sum[1]/n, sum[2]/n, sum[3]/n, sum[4]/n, sum[5]/n)
}
