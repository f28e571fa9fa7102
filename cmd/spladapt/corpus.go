package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
)

func init() { register(newCorpusCmd) }

func newCorpusCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "corpus", Short: "Inspect corpora"}
	cmd.AddCommand(newCorpusStatsCmd(a))
	return cmd
}

// corpusStats is what "corpus stats" measures.
type corpusStats struct {
	Docs, Empty, Skipped, Ignored int
	Tokens                        int64 // whitespace tokens of title + " " + text
}

func (s corpusStats) MeanTokens() float64 {
	if s.Docs == 0 {
		return 0
	}
	return float64(s.Tokens) / float64(s.Docs)
}

func newCorpusStatsCmd(a *app) *cobra.Command {
	f := corpora.BEIRFields
	cmd := &cobra.Command{
		Use:   "stats PATH",
		Short: "Count documents, their mean length and the records skipped",
		Long: `Read the corpus at PATH (a BEIR directory, a directory of documents,
.jsonl[.gz] or .tsv[.gz]) and print the number of documents, how many are
empty, their mean length in whitespace tokens (title + " " + text), and the
number of malformed records skipped (with --skip-invalid; each one is
reported on stderr with its file and line). For a BEIR directory it also
counts the queries and each split's judgments.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			path := args[0]
			st, err := readCorpusStats(cfg, path, f, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "corpus\t%s\n", path)
			fmt.Fprintf(w, "documents\t%d\n", st.Docs)
			fmt.Fprintf(w, "empty documents\t%d\n", st.Empty)
			fmt.Fprintf(w, "tokens\t%d\n", st.Tokens)
			fmt.Fprintf(w, "mean tokens/doc\t%.1f\n", st.MeanTokens())
			fmt.Fprintf(w, "skipped records\t%d\n", st.Skipped)
			if st.Ignored > 0 {
				fmt.Fprintf(w, "ignored files\t%d (not .txt/.md/.html/.jsonl)\n", st.Ignored)
			}
			if corpora.IsBEIR(path) {
				if err := beirStats(w, corpora.BEIR{Dir: path}, readerOptions(cfg, cmd.ErrOrStderr(), nil)); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.ID, "id-field", f.ID, "JSONL field holding the document id")
	cmd.Flags().StringVar(&f.Title, "title-field", f.Title, "JSONL field holding the title (empty: none)")
	cmd.Flags().StringVar(&f.Text, "text-field", f.Text, "JSONL field holding the text")
	return cmd
}

// readerOptions turns the skip_invalid setting into reader options that
// report each skipped record on stderr and count them in *skipped.
func readerOptions(cfg config.Config, stderr io.Writer, skipped *int) corpora.Options {
	return corpora.Options{
		SkipInvalid: cfg.SkipInvalid,
		Report:      func(e *corpora.ParseError) { fmt.Fprintf(stderr, "skipped %s\n", e) },
		Skipped:     skipped,
	}
}

func readCorpusStats(cfg config.Config, path string, f corpora.Fields, stderr io.Writer) (corpusStats, error) {
	var st corpusStats
	total, err := corpora.CountDocs(path)
	if err != nil {
		total = 0 // the reader reports the real problem
	}
	r, err := corpora.OpenCorpusFields(path, f, readerOptions(cfg, stderr, &st.Skipped))
	if err != nil {
		return st, err
	}
	defer r.Close()
	bar := progress.New(os.Stderr, progress.Enabled(cfg.Progress), "corpus stats", "docs", int64(total))
	for {
		d, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		n := len(strings.Fields(d.Content()))
		st.Docs++
		st.Tokens += int64(n)
		if n == 0 {
			st.Empty++
		}
		bar.Add(1)
	}
	bar.Done()
	if dr, ok := r.(*corpora.DirReader); ok {
		st.Ignored = dr.Ignored()
	}
	return st, nil
}

func beirStats(w io.Writer, b corpora.BEIR, opts corpora.Options) error {
	qs, err := b.Queries(opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "queries\t%d\n", len(qs))
	for _, split := range b.Splits() {
		q, err := b.Qrels(split)
		if err != nil {
			return err
		}
		rows := 0
		for _, docs := range q {
			rows += len(docs)
		}
		fmt.Fprintf(w, "qrels %s\t%d queries, %d judgments\n", split, len(q), rows)
	}
	return nil
}
