package main

import (
	"fmt"
	"io"
	"os"
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
				if err := beirStats(w, corpora.BEIR{Dir: path}, skipOptions(cfg, cmd.ErrOrStderr())); err != nil {
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

// readCorpusStats reads the corpus at path with a progress bar.
func readCorpusStats(cfg config.Config, path string, f corpora.Fields, stderr io.Writer) (corpora.Stats, error) {
	total, err := corpora.CountDocs(path)
	if err != nil {
		total = 0 // the reader reports the real problem
	}
	bar := progress.New(os.Stderr, progress.Enabled(cfg.Progress), "corpus stats", "docs", int64(total))
	defer bar.Done()
	return corpora.ReadStats(path, f, skipOptions(cfg, stderr), func() { bar.Add(1) })
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
