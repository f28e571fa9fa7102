package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/pretrain"
)

func init() { register(newModelCmd) }

func newModelCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Inspect, combine and download model checkpoints",
	}
	cmd.AddCommand(newModelInfoCmd(a), newModelSwapCmd(a), newModelPullCmd(a))
	return cmd
}

func newModelSwapCmd(a *app) *cobra.Command {
	var domain, task, out string
	var k int
	cmd := &cobra.Command{
		Use:   "swap --domain CKPT_A --task CKPT_B --out CKPT",
		Short: "Build a model from P_domain of one checkpoint and P_task of another",
		Long: `Build the model P_domain(CKPT_A) + P_task(CKPT_B) (Vast et al., ECIR 2024):
P_domain is the embeddings (the tied MLM decoder included) and the first k
layers, P_task the other layers and the MLM head. The checkpoints must have
the same architecture, shapes and vocabulary. k defaults to
pretrain.domain_layers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("domain-layers") {
				k = cfg.Pretrain.DomainLayers
			}
			g, err := claimOutput(cmd, out, true, domain, task)
			if err != nil {
				return err
			}
			defer g.Release()
			if err := pretrain.Swap(domain, task, out, k); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: P_domain (embeddings + %d layers) from %s, P_task from %s\n", out, k, domain, task)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&domain, "domain", "", "checkpoint whose P_domain is taken (required)")
	f.StringVar(&task, "task", "", "checkpoint whose P_task is taken (required)")
	f.StringVar(&out, "out", "", "output checkpoint directory (required)")
	f.IntVar(&k, "domain-layers", 2, "k: P_domain = embeddings + the first k layers (default pretrain.domain_layers)")
	for _, n := range []string{"domain", "task", "out"} {
		cmd.MarkFlagRequired(n)
	}
	addForceFlag(cmd)
	return cmd
}

func newModelInfoCmd(a *app) *cobra.Command {
	var k int
	var freeze []string
	cmd := &cobra.Command{
		Use:   "info DIR",
		Short: "Print a checkpoint's config, parameter count and parameter groups",
		Long: `Print the config of the HF checkpoint in DIR, its parameter count, and one
line per parameter: name, shape, size, its group for the adaptation method
(P_domain = embeddings + the first --domain-layers layers, the tied decoder
included; P_task = the rest) and whether it is trainable after freezing
the --freeze patterns (globs on HF names such as "bert.encoder.layer.[01].*",
or "re:REGEXP"; "domain" and "task" freeze a whole group).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			m, err := nn.LoadHF(args[0])
			if err != nil {
				return err
			}
			for _, pat := range freeze {
				switch pat {
				case "domain", "task":
					for _, p := range m.Params {
						if nn.IsDomainParam(p.Name, k) == (pat == "domain") {
							p.Frozen = true
						}
					}
				default:
					if _, err := nn.SetFrozen(m.Params, true, pat); err != nil {
						return err
					}
				}
			}
			c := m.Config
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "model_type %s: vocab %d, hidden %d, layers %d, heads %d (size %d), intermediate %d, max positions %d",
				c.ModelType, c.VocabSize, c.HiddenSize, c.NumLayers, c.NumHeads, c.HeadSize(), c.IntermediateSize, c.MaxPositions)
			if c.ModelType == "bert" {
				fmt.Fprintf(w, ", token types %d", c.TypeVocabSize)
			}
			fmt.Fprintf(w, "\nactivation %s, layer norm eps %g, pad id %d, dropout %g (attention %g)\n",
				c.HiddenAct, c.LayerNormEps, c.PadTokenID, c.HiddenDropout, c.AttnDropout)
			var domain, trainable int
			tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "name\tshape\tsize\tgroup\ttrainable")
			for _, p := range m.Params {
				group := "task"
				if nn.IsDomainParam(p.Name, k) {
					group = "domain"
					domain += len(p.W)
				}
				if !p.Frozen {
					trainable += len(p.W)
				}
				fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%v\n", p.Name, p.Shape, len(p.W), group, !p.Frozen)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "parameters %d (tied decoder counted once): P_domain(k=%d) %d, P_task %d; trainable %d\n",
				m.NumParams(), k, domain, m.NumParams()-domain, trainable)
			return nil
		},
	}
	cmd.Flags().IntVar(&k, "domain-layers", 2, "k: layers in P_domain besides the embeddings")
	cmd.Flags().StringSliceVar(&freeze, "freeze", nil, `parameter patterns to freeze (glob, "re:REGEXP", "domain" or "task"); repeatable`)
	return cmd
}
