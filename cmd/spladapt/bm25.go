package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/progress"
)

func init() { register(newBM25Cmd) }

func newBM25Cmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bm25",
		Short: "BM25 baseline on a bleve index (English analysis with Porter stemming)",
		Long: `BM25 baseline: bleve v2 scorch index of title + " " + text with bleve's
English analyzer (possessives, lower case, stop words, Porter stemming), scored
with Lucene's BM25 formula (k1 and b from config bm25.k1, bm25.b).`,
	}
	cmd.AddCommand(newBM25IndexCmd(a), newBM25SearchCmd(a), newBM25TableCmd(a))
	return cmd
}

func newBM25IndexCmd(a *app) *cobra.Command {
	var corpus, out string
	cmd := &cobra.Command{
		Use:   "index --corpus PATH --out DIR",
		Short: "Build a BM25 index of a corpus",
		Long: `Build a BM25 index of the corpus at PATH (a BEIR directory, a directory of
documents, .jsonl[.gz] or .tsv[.gz]) in DIR. DIR is written through a temporary
directory and replaced only when the build succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if corpus == "" || out == "" {
				return fmt.Errorf("bm25 index: --corpus and --out are required")
			}
			g, err := claimOutput(cmd, out, true, corpus)
			if err != nil {
				return err
			}
			defer g.Release()
			start := time.Now()
			meta, err := buildBM25(cfg, corpus, out, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "indexed %d documents (%d tokens, %d terms, avgdl %.1f, %d skipped) in %.1fs into %s\n",
				meta.Docs, meta.Tokens, meta.Terms, meta.AvgDL, meta.Skipped, time.Since(start).Seconds(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&corpus, "corpus", "", "corpus: BEIR directory, directory of documents, .jsonl[.gz] or .tsv[.gz]")
	cmd.Flags().StringVar(&out, "out", "", "index directory to write")
	addForceFlag(cmd)
	return cmd
}

func buildBM25(cfg config.Config, corpus, out string, stderr io.Writer) (bm25.Meta, error) {
	total, err := corpora.CountDocs(corpus)
	if err != nil {
		total = 0 // the reader reports the real problem
	}
	bar := progress.New(stderr, progress.Enabled(cfg.Progress), "bm25 index", "docs", int64(total))
	last := 0
	meta, err := bm25.BuildCorpus(out, corpus, skipOptions(cfg, stderr), func(n int) {
		bar.Add(int64(n - last))
		last = n
	})
	bar.Done()
	return meta, err
}

func newBM25SearchCmd(a *app) *cobra.Command {
	var idxDir, queriesPath, runPath, qrelsPath, tag, scoring string
	cmd := &cobra.Command{
		Use:   "search --index DIR --queries PATH --run OUT",
		Short: "Rank documents for every query and write a TREC run",
		Long: `Rank the documents of a BM25 index for every query in PATH (a BEIR directory,
.jsonl[.gz], .tsv[.gz] or TREC topics) and write the top k of each to OUT as a
TREC run. With --qrels, only the queries judged there are searched (a BEIR
queries.jsonl holds every split's queries).

--scoring bleve uses bleve's own "bm25" scorer instead, for comparison only: it
is not Okapi BM25 (it uses √tf, idf², a coordination factor and a wrong average
length; see the bm25 package).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if idxDir == "" || queriesPath == "" || runPath == "" {
				return fmt.Errorf("bm25 search: --index, --queries and --run are required")
			}
			g, err := claimOutput(cmd, runPath, false, idxDir, queriesPath, qrelsPath)
			if err != nil {
				return err
			}
			defer g.Release()
			sc, err := bm25.ParseScoring(scoring)
			if err != nil {
				return err
			}
			queries, err := corpora.ReadQueries(queriesPath, skipOptions(cfg, cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			if qrelsPath != "" {
				qrels, err := corpora.ReadQrels(qrelsPath)
				if err != nil {
					return err
				}
				queries = qrels.Judged(queries)
			}
			x, err := bm25.Open(idxDir)
			if err != nil {
				return err
			}
			defer x.Close()
			start := time.Now()
			bar := progress.New(cmd.ErrOrStderr(), progress.Enabled(cfg.Progress), "bm25 search", "queries", int64(len(queries)))
			run, err := x.SearchAll(queries, bm25.SearchOptions{
				K:       cfg.BM25.Depth,
				Params:  bm25.Params{K1: cfg.BM25.K1, B: cfg.BM25.B},
				Scoring: sc,
				Workers: cfg.NumThreads(),
				Done:    func() { bar.Add(1) },
			})
			bar.Done()
			if err != nil {
				return err
			}
			if err := atomicfile.Write(runPath, 0o644, func(w io.Writer) error { return corpora.WriteRun(w, run, tag) }); err != nil {
				return err
			}
			empty := 0
			for _, hits := range run {
				if len(hits) == 0 {
					empty++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "searched %d queries (%d without any hit) in %.2fs (k1 %g, b %g, k %d, %s scoring) into %s\n",
				len(queries), empty, time.Since(start).Seconds(), cfg.BM25.K1, cfg.BM25.B, cfg.BM25.Depth, sc, runPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&idxDir, "index", "", "index directory written by \"spladapt bm25 index\"")
	f.StringVar(&queriesPath, "queries", "", "queries: BEIR directory, .jsonl[.gz], .tsv[.gz] or TREC topics")
	f.StringVar(&runPath, "run", "", "TREC run file to write")
	f.StringVar(&qrelsPath, "qrels", "", "search only the queries judged in this qrels file (TREC or BEIR .tsv)")
	f.StringVar(&tag, "tag", "bm25", "run tag (last column of the run)")
	f.StringVar(&scoring, "scoring", string(bm25.Exact), "exact (Okapi BM25) or bleve (bleve's own scorer, for comparison)")
	bm25ParamFlags(a, cmd)
	return cmd
}

func newBM25TableCmd(a *app) *cobra.Command {
	var data, out, indexDir string
	cmd := &cobra.Command{
		Use:   "table --data DIR [--out FILE]",
		Short: "Evaluate BM25 on every collection in DIR and print the baseline table",
		Long: `For every BEIR collection directly under DIR (a directory with corpus.jsonl
and qrels/test.tsv, or qrels/dev.tsv when there is no test split): build a BM25
index under --index-dir, search every judged query of that split, and evaluate
with trec_eval -c semantics (nDCG@10, R@100, MAP). Prints a Markdown table, and
writes it to --out when given. This is the command behind the README's table:

  spladapt bm25 table --data ../shared/data --out bm25.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if data == "" {
				return fmt.Errorf("bm25 table: --data is required")
			}
			if indexDir == "" {
				indexDir = filepath.Join(cfg.Cache(), "bm25")
			}
			cols, err := bm25.Collections(data)
			if err != nil {
				return err
			}
			p := bm25.Params{K1: cfg.BM25.K1, B: cfg.BM25.B}
			var rows []bm25.Row
			for _, dir := range cols {
				name := filepath.Base(dir)
				var bar *progress.Bar
				stage := ""
				row, err := bm25.EvaluateCollection(dir, bm25.TableOptions{
					K: cfg.BM25.Depth, Params: p, Workers: cfg.NumThreads(),
					IndexDir: filepath.Join(indexDir, name),
					Corpora:  skipOptions(cfg, cmd.ErrOrStderr()),
					Progress: func(s string, n int) {
						if s != stage {
							if bar != nil {
								bar.Done()
							}
							stage = s
							bar = progress.New(cmd.ErrOrStderr(), progress.Enabled(cfg.Progress), name+" "+s, "", 0)
						}
						bar.AddNote(1, fmt.Sprint(n))
					},
				})
				if bar != nil {
					bar.Done()
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d docs indexed in %.1fs, %d %s queries searched in %.2fs\n",
					name, row.Docs, row.Index.Seconds(), row.Queries, row.Split, row.Search.Seconds())
				rows = append(rows, row)
			}
			var buf bytes.Buffer
			if err := bm25.WriteTable(&buf, rows, p, cfg.BM25.Depth); err != nil {
				return err
			}
			if out != "" {
				if err := atomicfile.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "directory of BEIR collections (e.g. ../shared/data)")
	f.StringVar(&out, "out", "", "also write the Markdown table to this file")
	f.StringVar(&indexDir, "index-dir", "", "where the indexes are built, one subdirectory per collection (default: <cache_dir>/bm25)")
	bm25ParamFlags(a, cmd)
	return cmd
}

// bm25ParamFlags adds -k, --k1 and --b to cmd. They are bound to their
// config keys when cmd runs, not when it is built: viper binds a key to one
// flag, and "search" and "table" both have these flags.
func bm25ParamFlags(a *app, cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntP("k", "k", 0, "hits per query (default: config bm25.depth)")
	f.Float64("k1", 0, "BM25 k1 (default: config bm25.k1)")
	f.Float64("b", 0, "BM25 b (default: config bm25.b)")
	cmd.PreRun = func(cmd *cobra.Command, args []string) {
		a.bind(f, "k", "bm25.depth")
		a.bind(f, "k1", "bm25.k1")
		a.bind(f, "b", "bm25.b")
	}
}
