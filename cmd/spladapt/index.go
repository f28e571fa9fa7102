package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/bm25/impact"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/progress"
)

func init() { register(newIndexCmd) }

func newIndexCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Build and inspect sparse (SPLADE) impact indexes",
	}
	cmd.AddCommand(newIndexBuildCmd(a), newIndexBuildBM25Cmd(a), newIndexInspectCmd(a))
	return cmd
}

// openIndex opens the index at dir, verifying its CRCs unless noVerify
// (index.Open), and resolves the configured top-k algorithm
// (index.algorithm), the two things every querying command needs.
func openIndex(cfg config.Config, dir string, noVerify bool) (*index.Reader, index.Algorithm, error) {
	algo, err := index.ParseAlgorithm(cfg.Index.Algorithm)
	if err != nil {
		return nil, algo, err
	}
	r, err := index.OpenWith(dir, index.OpenOptions{NoVerify: noVerify})
	if err != nil {
		return nil, algo, err
	}
	return r, algo, nil
}

// skipOptions turns the skip_invalid setting into reader options that
// report each skipped line on stderr.
func skipOptions(cfg config.Config, stderr io.Writer) corpora.Options {
	return corpora.Options{
		SkipInvalid: cfg.SkipInvalid,
		Report:      func(e *corpora.ParseError) { fmt.Fprintf(stderr, "skipped %s\n", e) },
	}
}

func newIndexBuildCmd(a *app) *cobra.Command {
	var vectors, out, vocabPath, fingerprint string
	var maxTerms int
	cmd := &cobra.Command{
		Use:   "build --vectors FILE.jsonl --out IDX",
		Short: "Build an index from document vectors",
		Long: `Build an index from a JSONL file of document vectors, one line per document:
{"id": "...", "vector": {"<term id or token>": weight, ...}}. Keys are tokens of
--vocab (vocab.txt, one token per line) when given, term ids otherwise. The
index directory is written through a temporary directory and a rename.
Format: docs/format/index.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "quant-bits", "index.quant_bits")
			a.bind(cmd.Flags(), "block-size", "index.block_size")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if vectors == "" || out == "" {
				return fmt.Errorf("index build: --vectors and --out are required")
			}
			if maxTerms < 1 {
				return fmt.Errorf("index build: --max-terms must be at least 1, got %d", maxTerms)
			}
			g, err := claimOutput(cmd, out, true, vectors, vocabPath)
			if err != nil {
				return err
			}
			defer g.Release()
			opts := index.Options{Workers: cfg.NumThreads(), QuantBits: cfg.Index.QuantBits, BlockSize: cfg.Index.BlockSize, Fingerprint: fingerprint, MaxTerms: maxTerms}
			start := time.Now()
			bar := progress.New(os.Stderr, progress.Enabled(cfg.Progress), "index", "docs", 0)
			skipped := 0
			co := skipOptions(cfg, cmd.ErrOrStderr())
			co.Skipped = &skipped
			m, err := index.BuildVectors(out, vectors, vocabPath, opts, co, func() { bar.Add(1) })
			bar.Done()
			if err != nil {
				return fmt.Errorf("index build: %w", err)
			}
			el := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "indexed %d documents, %d postings (%d skipped lines) in %s (%.0f docs/s) → %s\n",
				m.NumDocs, m.NumPostings, skipped, el.Round(time.Millisecond), float64(m.NumDocs)/el.Seconds(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&vectors, "vectors", "", "document vectors (JSONL, .gz read transparently)")
	f.StringVar(&out, "out", "", "index directory to write")
	f.StringVar(&vocabPath, "vocab", "", "vocab.txt naming the terms (keys are then tokens)")
	f.StringVar(&fingerprint, "fingerprint", "", "model/vocabulary fingerprint to record")
	f.IntVar(&maxTerms, "max-terms", index.DefaultMaxTerms, "without --vocab, term ids must be below this")
	addForceFlag(cmd)
	f.Int("quant-bits", 0, "impact width in bits (default: config index.quant_bits)")
	f.Int("block-size", 0, "documents per block-max block (default: config index.block_size)")
	return cmd
}

func newIndexBuildBM25Cmd(a *app) *cobra.Command {
	var corpus, out string
	cmd := &cobra.Command{
		Use:   "build-bm25 --corpus PATH --out IDX",
		Short: "Build a BM25 impact index of a corpus (BM25 through the sparse engine)",
		Long: `Analyse a corpus as "spladapt bm25 index" does (bleve's English analyzer over
title + text), make the analysed terms the index vocabulary, and store each
posting's BM25 weight idf·tf/(tf + k1·(1 − b + b·dl/avgdl)) as a quantised
impact, so every query algorithm ranks by BM25. "spladapt search --queries"
then analyses query text the same way. k1 and b are fixed at build time
(config bm25.k1 / bm25.b).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "quant-bits", "index.quant_bits")
			a.bind(cmd.Flags(), "block-size", "index.block_size")
			a.bind(cmd.Flags(), "k1", "bm25.k1")
			a.bind(cmd.Flags(), "b", "bm25.b")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if corpus == "" || out == "" {
				return fmt.Errorf("index build-bm25: --corpus and --out are required")
			}
			g, err := claimOutput(cmd, out, true, corpus)
			if err != nil {
				return err
			}
			defer g.Release()
			skipped := 0
			co := skipOptions(cfg, cmd.ErrOrStderr())
			co.Skipped = &skipped
			cr, err := corpora.OpenCorpus(corpus, co)
			if err != nil {
				return fmt.Errorf("index build-bm25: %w", err)
			}
			defer cr.Close()
			start := time.Now()
			bar := progress.New(os.Stderr, progress.Enabled(cfg.Progress), "bm25 index", "docs", 0)
			last := 0
			m, st, err := impact.Build(out, cr.Next, impact.Options{
				K1: cfg.BM25.K1, B: cfg.BM25.B, QuantBits: cfg.Index.QuantBits, BlockSize: cfg.Index.BlockSize, Workers: cfg.NumThreads(),
				Progress: func(n int) { bar.Add(int64(n - last)); last = n },
			})
			bar.Done()
			if err != nil {
				return err
			}
			el := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "indexed %d documents (%d skipped), %d terms, avgdl %.1f, %d postings, k1 %g b %g, in %s (%.0f docs/s) → %s\n",
				m.NumDocs, skipped, st.Terms, st.AvgDL, m.NumPostings, cfg.BM25.K1, cfg.BM25.B, el.Round(time.Millisecond), float64(m.NumDocs)/el.Seconds(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&corpus, "corpus", "", "corpus (BEIR directory, JSONL, TSV, TREC or plain-text directory)")
	f.StringVar(&out, "out", "", "index directory to write")
	addForceFlag(cmd)
	f.Float64("k1", 0, "BM25 k1 (default: config bm25.k1)")
	f.Float64("b", 0, "BM25 b (default: config bm25.b)")
	f.Int("quant-bits", 0, "impact width in bits (default: config index.quant_bits)")
	f.Int("block-size", 0, "documents per block-max block (default: config index.block_size)")
	return cmd
}

func newIndexInspectCmd(a *app) *cobra.Command {
	var validate bool
	var top int
	cmd := &cobra.Command{
		Use:   "inspect IDX",
		Short: "Print an index's table of contents, sizes and term statistics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// CRCs are checked by --validate: inspect shows a damaged file.
			r, err := index.OpenWith(args[0], index.OpenOptions{NoVerify: true})
			if err != nil {
				return err
			}
			defer r.Close()
			w := cmd.OutOrStdout()
			m := r.Meta()
			P := float64(max(m.NumPostings, 1))
			fmt.Fprintf(w, "index %s: format %d, %d bytes\n", args[0], m.Format, r.Size())
			fmt.Fprintf(w, "docs %d, terms %d, postings %d (%.1f per doc), dense terms %d\n",
				m.NumDocs, m.NumTerms, m.NumPostings, P/float64(max(m.NumDocs, 1)), m.DenseTerms)
			fmt.Fprintf(w, "quant_bits %d, scale %g, block_size %d (%d blocks), dropped %d, clipped %d, vocabulary %v, fingerprint %q\n",
				m.QuantBits, m.Scale, m.BlockSize, m.NumBlocks, m.DroppedPostings, m.ClippedPostings, r.HasVocab(), m.Fingerprint)
			fmt.Fprintf(w, "\n%-5s %12s %14s %10s %14s\n", "tag", "offset", "bytes", "crc32", "bytes/posting")
			for _, s := range r.Sections() {
				fmt.Fprintf(w, "%-5s %12d %14d %08x %14.3f\n", s.Tag, s.Offset, s.Length, s.CRC, float64(s.Length)/P)
			}
			fmt.Fprintf(w, "total %31d %23.3f\n", r.Size(), float64(r.Size())/P)
			ps := r.PostingSizes()
			fmt.Fprintf(w, "\npostings, bytes/posting: doc ids %.3f = array containers %.3f (%d, %d postings) + bitmap containers %.3f (%d, %d postings) + roaring headers %.3f; impacts %.3f = bit-packed %.3f (mean width %.2f bits) + chunk frames %.3f\n",
				float64(ps.ArrayBytes+ps.BitmapBytes+ps.RoaringHeaders)/P,
				float64(ps.ArrayBytes)/P, ps.ArrayContainers, ps.ArrayPostings,
				float64(ps.BitmapBytes)/P, ps.BitmapContainers, ps.BitmapPostings,
				float64(ps.RoaringHeaders)/P,
				float64(ps.ImpactData+ps.ImpactHeaders)/P, float64(ps.ImpactData)/P, float64(ps.ImpactBits)/P, float64(ps.ImpactHeaders)/P)
			type ts struct {
				t       uint32
				df, imp int
			}
			var terms []ts
			used := 0
			for t := 0; t < m.NumTerms; t++ {
				df, imp := r.TermStats(uint32(t))
				if df > 0 {
					used++
					terms = append(terms, ts{uint32(t), df, imp})
				}
			}
			sort.Slice(terms, func(i, j int) bool { return terms[i].df > terms[j].df })
			fmt.Fprintf(w, "\nterms with postings: %d of %d\n", used, m.NumTerms)
			if len(terms) > 0 {
				fmt.Fprintf(w, "df: max %d, median %d, min %d\n", terms[0].df, terms[len(terms)/2].df, terms[len(terms)-1].df)
			}
			fmt.Fprintf(w, "\n%10s %-20s %10s %10s\n", "term", "token", "df", "max imp")
			for _, x := range terms[:min(top, len(terms))] {
				tok, _ := r.Token(x.t)
				fmt.Fprintf(w, "%10d %-20s %10d %10d\n", x.t, tok, x.df, x.imp)
			}
			if validate {
				start := time.Now()
				if err := r.Validate(); err != nil {
					return fmt.Errorf("validate %s: %w", args[0], err)
				}
				fmt.Fprintf(w, "\nvalid (every CRC and invariant checked in %s)\n", time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&validate, "validate", false, "also check every CRC and invariant (reads the whole file)")
	cmd.Flags().IntVar(&top, "top", 10, "list the TOP most frequent terms")
	return cmd
}
