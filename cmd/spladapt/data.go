package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/datasets"
	"github.com/spladapt/spladapt/internal/progress"
)

func init() { register(newDataCmd) }

func newDataCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "data", Short: "Download BEIR datasets"}
	cmd.AddCommand(newDataListCmd(a), newDataPullCmd(a))
	return cmd
}

func newDataListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the dataset names spladapt knows, with their published md5",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tMD5\tNOTE")
			for _, d := range datasets.Known() {
				sum := d.MD5
				if sum == "" {
					sum = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", d.Name, sum, d.Note)
			}
			return w.Flush()
		},
	}
}

func newDataPullCmd(a *app) *cobra.Command {
	var out, sha string
	var force bool
	cmd := &cobra.Command{
		Use:   "pull NAME [--out DIR]",
		Short: "Download, verify and unpack a BEIR dataset into DIR/NAME",
		Long: `Download <data.base_url>/NAME.zip, check it against the md5 BEIR publishes
(or --sha256), and unpack it into DIR/NAME in BEIR layout (corpus.jsonl,
queries.jsonl, qrels/<split>.tsv). An interrupted download is kept as
DIR/NAME.zip.part and resumed by running the same command again. A name
without a known checksum is downloaded with a warning giving its sha256.
"spladapt data list" shows the known names.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			name := args[0]
			stderr := cmd.ErrOrStderr()
			if _, ok := datasets.Lookup(name); !ok && sha == "" {
				fmt.Fprintf(stderr, "warning: %q is not a known dataset name (see \"spladapt data list\"); trying %s/%s.zip\n", name, cfg.Data.BaseURL, name)
			}
			res, err := datasets.Pull(cmd.Context(), name, datasets.Options{
				BaseURL: cfg.Data.BaseURL,
				Out:     out,
				SHA256:  sha,
				Force:   force,
				NewBar: func(total int64) datasets.Bar {
					return progress.New(os.Stderr, progress.Enabled(cfg.Progress), "download "+name, "bytes", total)
				},
				Warn: func(msg string) { fmt.Fprintln(stderr, "warning:", msg) },
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if res.AlreadyPresent {
				fmt.Fprintf(w, "%s is already there (use --force to download it again)\n", res.Dir)
				return nil
			}
			verified := "unverified"
			if res.Verified != "" {
				verified = res.Verified + " ok"
			}
			resumed := ""
			if res.Resumed {
				resumed = ", resumed"
			}
			fmt.Fprintf(w, "%s: %d files from %d bytes (%s%s), sha256 %s\n", res.Dir, res.Files, res.Bytes, verified, resumed, res.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "datasets", "parent directory: the dataset goes to DIR/NAME")
	cmd.Flags().StringVar(&sha, "sha256", "", "expected sha256 of NAME.zip (instead of the known md5)")
	cmd.Flags().BoolVar(&force, "force", false, "download and unpack again when DIR/NAME exists")
	cmd.Flags().String("base-url", "", "where NAME.zip is fetched from (default: config data.base_url)")
	a.bind(cmd.Flags(), "base-url", "data.base_url")
	return cmd
}
