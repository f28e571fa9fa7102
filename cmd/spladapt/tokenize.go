package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/tokenize"
)

func init() { register(newTokenizeCmd) }

func newTokenizeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Train WordPiece vocabularies and inspect tokenisation",
	}
	cmd.AddCommand(newTokenizeTrainCmd(a), newTokenizeEncodeCmd(a))
	return cmd
}

func newTokenizeTrainCmd(a *app) *cobra.Command {
	var (
		paths     []string
		vocabSize int
		minFreq   int
		cased     bool
		maxLen    int
		out       string
	)
	cmd := &cobra.Command{
		Use:   "train --corpus PATH [--corpus PATH]... --vocab-size N --out DIR",
		Short: "Train a WordPiece vocabulary on corpora and save it as a tokenizer directory",
		Long: `Train a BERT WordPiece vocabulary (HF WordPieceTrainer semantics) on the
documents (title + text) of every --corpus, which may be anything the corpus
readers accept: a BEIR directory, a .jsonl or .tsv file, or a directory of
text files. The tokenizer is written to --out in HF's layout (vocab.txt,
tokenizer.json, tokenizer_config.json, special_tokens_map.json), with
[PAD] [UNK] [CLS] [SEP] [MASK] as ids 0-4.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if len(paths) == 0 || out == "" {
				return errors.New("tokenize train needs at least one --corpus and --out")
			}
			g, err := claimOutput(cmd, out, true, paths...)
			if err != nil {
				return err
			}
			defer g.Release()
			stderr := cmd.ErrOrStderr()
			skipped := 0
			opts := skipOptions(cfg, stderr)
			opts.Skipped = &skipped
			bar := progress.New(os.Stderr, progress.Enabled(cfg.Progress), "read", "docs", 0)
			var readErr error
			docs := 0
			texts := func(yield func(string) bool) {
				for _, p := range paths {
					r, err := corpora.OpenCorpus(p, opts)
					if err != nil {
						readErr = err
						return
					}
					for {
						d, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							r.Close()
							readErr = fmt.Errorf("read corpus %s: %w", p, err)
							return
						}
						docs++
						bar.Add(1)
						if !yield(d.Content()) {
							r.Close()
							return
						}
					}
					r.Close()
				}
			}
			vocab, err := tokenize.TrainWordPiece(texts, vocabSize, minFreq, !cased)
			bar.Done()
			if readErr != nil {
				return readErr
			}
			if err != nil {
				return err
			}
			tok, err := tokenize.FromVocab(vocab, !cased)
			if err != nil {
				return err
			}
			if err := tok.WithMaxLen(maxLen).Save(out); err != nil {
				return err
			}
			if skipped > 0 {
				fmt.Fprintf(stderr, "%d malformed records skipped\n", skipped)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trained %d tokens on %d documents, saved to %s\n", len(vocab), docs, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&paths, "corpus", nil, "corpus to train on (repeatable)")
	f.IntVar(&vocabSize, "vocab-size", 30522, "vocabulary size, special tokens included")
	f.IntVar(&minFreq, "min-freq", 2, "stop merging when the best pair occurs fewer times")
	f.BoolVar(&cased, "cased", false, "keep case and accents (default: lowercase and strip accents)")
	f.IntVar(&maxLen, "max-len", 512, "model_max_length to record in tokenizer_config.json")
	f.StringVar(&out, "out", "", "output directory")
	addForceFlag(cmd)
	return cmd
}

func newTokenizeEncodeCmd(a *app) *cobra.Command {
	var (
		model  string
		maxLen int
	)
	cmd := &cobra.Command{
		Use:   "encode --model DIR TEXT...",
		Short: "Print the tokens and ids of each TEXT",
		Long: `Tokenise each TEXT with the tokenizer in --model (tokenizer.json, or
vocab.txt + tokenizer_config.json) and print, per text, its tokens and their
ids, [CLS] and [SEP] included. --max-len 0 (the default) uses the model's
model_max_length when it has one.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			if model == "" {
				return errors.New("tokenize encode needs --model")
			}
			tok, err := tokenize.Load(model)
			if err != nil {
				return err
			}
			if maxLen <= 0 {
				maxLen = tok.MaxLen()
			}
			w := cmd.OutOrStdout()
			for _, text := range args {
				e := tok.Encode(text, maxLen)
				toks := make([]string, len(e.IDs))
				ids := make([]string, len(e.IDs))
				for i, id := range e.IDs {
					toks[i] = tok.Token(id)
					ids[i] = fmt.Sprint(id)
				}
				fmt.Fprintf(w, "text:   %s\ntokens: %s\nids:    %s\n", text, strings.Join(toks, " "), strings.Join(ids, " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model or tokenizer directory")
	cmd.Flags().IntVar(&maxLen, "max-len", 0, "truncate to this many tokens (0: the model's maximum, if any)")
	return cmd
}
