package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/pretrain"
)

func newAdaptDriftCmd(a *app) *cobra.Command {
	var modelA, modelB string
	var corpus []string
	var n, maxLen, batch int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "drift --a MODEL --b MODEL --corpus DIR [--corpus DIR]... [--n 200]",
		Short: "How far model B's hidden states are from model A's on the same text: linear CKA and cosine per layer",
		Long: `Encode --n documents of the corpora (evenly spaced, in corpus order) with
both checkpoints and compare, at every hidden state (the embedding output and
each layer's output), the two models' token vectors by linear CKA (Kornblith
et al. 2019: 1 = the same up to rotation and scale) and by the mean per-token
cosine. Every real position counts, [CLS] and [SEP] included. For the
adaptation method, A = P_domain(source) + P_task (runs' splade-source/model)
and B = P_domain(target) + P_task (adapted-T/model) on source text: the
hidden states up to k (pretrain.domain_layers) are P_domain's alone, the ones
above P_task's response to it. The checkpoints must share shapes and
vocabulary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			setThreads(cfg.NumThreads())
			if maxLen == 0 {
				maxLen = cfg.Model.MaxLength
			}
			res, err := pretrain.Drift(cmd.Context(), modelA, modelB, corpus, pretrain.DriftOptions{
				N: n, MaxLength: maxLen, BatchSize: batch, Corpus: skipOptions(cfg, cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "a %s\nb %s\n%d documents, %d tokens\n", res.A, res.B, res.Docs, res.Tokens)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HIDDEN STATE\tCKA\tCOSINE")
			for _, l := range res.Layers {
				fmt.Fprintf(tw, "%d %s\t%.4f\t%.4f\n", l.Layer, l.Name, l.CKA, l.Cosine)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelA, "a", "", "reference checkpoint (P_domain(source) + P_task)")
	f.StringVar(&modelB, "b", "", "compared checkpoint (P_domain(target) + P_task)")
	f.StringArrayVar(&corpus, "corpus", nil, "corpus the text comes from (repeatable; anything \"spladapt encode\" reads)")
	f.IntVar(&n, "n", 200, "documents, evenly spaced over the corpora (0: all)")
	f.IntVar(&maxLen, "max-length", 0, "tokens per document (default: model.max_length)")
	f.IntVar(&batch, "batch", 16, "documents per forward pass")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("a")
	cmd.MarkFlagRequired("b")
	cmd.MarkFlagRequired("corpus")
	return cmd
}
