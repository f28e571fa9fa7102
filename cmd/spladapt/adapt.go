package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/adapt"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
)

func init() {
	register(newAdaptCmd)
	register(newDemoCmd)
}

func newAdaptCmd(a *app) *cobra.Command {
	var targets, force []string
	var out string
	cmd := &cobra.Command{
		Use:   "adapt --target DIR [--target DIR]... [--out RUNDIR]",
		Short: "Adapt a SPLADE retriever to target corpora and compare zero-shot with adapted",
		Long: `Run the adaptation pipeline (Vast et al., ECIR 2024) as durable stages in
RUNDIR (default <cache_dir>/adapt/<targets>):

  base            the starting checkpoint (adapt.base), or an MLM model trained
                  from scratch on the source corpora (pretrain.*)
  source-mlm      MLM of P_domain on the source corpora, P_task frozen
                  (passed through for a base trained on the source)
  splade-source   SPLADE fine-tuning of P_task on the source training data
                  (adapt.source, BM25 hard negatives), P_domain(source) frozen:
                  the zero-shot model
  per target T:
  target-mlm-T    MLM of P_domain on T's corpus, P_task frozen
  adapted-T       P_domain(T) + P_task
  full-mlm-T, splade-full-T   (adapt.full_baseline) full continued
                  pretraining on T, then SPLADE fine-tuning of everything
  index-*-T       T's corpus encoded and indexed with each model
  bm25-T          BM25 index of T
  eval-T          when T has queries and qrels (adapt.target_split): runs,
                  report.md/json/html (baseline: zero-shot), and the held-out
                  perplexity on T before and after MLM on T; otherwise the
                  pipeline stops at the adapted index and says so
  rerank-T        (--rerank MODEL, adapt.rerank) every run of eval-T with its
                  top --rerank-depth hits re-scored by a cross-encoder or MICE
                  model: runs/<system>+rerank.trec and their report
                  (baseline: zero-shot+rerank)
  summary         table over targets (per target and mean, adapted − zero-shot,
                  Holm-corrected paired t tests; with re-ranking also the
                  re-ranked systems and adapted+rerank − zero-shot+rerank) and
                  the time of every stage

Each stage writes its directory through a temporary path and a rename, with
meta.json (config, input fingerprints, code version, time). Re-running
reuses every stage whose config and inputs are unchanged and resumes a
stage that was interrupted from its checkpoints; --force STAGE reruns one.
Ctrl-C stops cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			cfg.Adapt.Targets = append(append([]string{}, cfg.Adapt.Targets...), targets...)
			if out == "" {
				var names []string
				for _, t := range cfg.Adapt.Targets {
					names = append(names, filepath.Base(filepath.Clean(t)))
				}
				out = filepath.Join(cfg.Cache(), "adapt", strings.Join(names, "+"))
			}
			return runAdapt(cmd, cfg, out, force)
		},
	}
	cmd.Flags().StringArrayVar(&targets, "target", nil, "target collection or corpus directory (repeatable; adds to adapt.targets)")
	cmd.Flags().StringVar(&out, "out", "", "run directory (default <cache_dir>/adapt/<target names>)")
	cmd.Flags().StringArrayVar(&force, "force", nil, "rerun this stage even when it is up to date (repeatable)")
	cmd.Flags().String("rerank", "", "re-rank every target's runs with this cross-encoder or MICE model directory (default: config adapt.rerank; empty: off)")
	cmd.Flags().Int("rerank-depth", 0, "hits per query re-ranked with --rerank (default: config adapt.rerank_depth)")
	a.bind(cmd.Flags(), "rerank", "adapt.rerank")
	a.bind(cmd.Flags(), "rerank-depth", "adapt.rerank_depth")
	cmd.AddCommand(newAdaptStatusCmd(a), newAdaptDriftCmd(a))
	return cmd
}

// runAdapt runs the pipeline of cfg in out and prints where the results are.
func runAdapt(cmd *cobra.Command, cfg config.Config, out string, force []string) error {
	setThreads(cfg.NumThreads())
	stderr := cmd.ErrOrStderr()
	skipped := 0
	p := &adapt.Pipeline{
		Plan:   adapt.Plan{Config: cfg, Targets: cfg.Adapt.Targets},
		Runner: &adapt.Runner{Dir: out, Force: map[string]bool{}, Log: stderr},
		Log:    stderr,
		CorpusOpts: corpora.Options{SkipInvalid: cfg.SkipInvalid, Skipped: &skipped,
			Report: func(e *corpora.ParseError) { fmt.Fprintln(stderr, "skipped:", e) }},
	}
	if err := p.Validate(); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, s := range p.Stages() {
		names[s.Name] = true
	}
	for _, f := range force {
		if !names[f] {
			return fmt.Errorf("--force %s: no such stage (see \"spladapt adapt status %s\")", f, out)
		}
		p.Runner.Force[f] = true
	}
	start := time.Now()
	res, err := p.Run(cmd.Context())
	if skipped > 0 {
		fmt.Fprintf(stderr, "%d invalid records skipped\n", skipped)
	}
	if err != nil {
		if errors.Is(err, cmd.Context().Err()) && cmd.Context().Err() != nil {
			return fmt.Errorf("adapt: stopped; finished stages are kept, run the same command again to continue (%w)", err)
		}
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "adapt finished in %s; run directory %s\n", time.Since(start).Round(time.Second), res.RunDir)
	for _, t := range res.Targets {
		if !t.Evaluated {
			fmt.Fprintf(w, "%s: no queries and qrels; stopped at the adapted index %s\n", t.Name, t.Index[adapt.SysAdapted])
			continue
		}
		fmt.Fprintf(w, "%s: report %s\n", t.Name, filepath.Join(t.Report, "report.html"))
		if t.RerankReport != "" {
			fmt.Fprintf(w, "%s: re-ranked report %s\n", t.Name, filepath.Join(t.RerankReport, "report.html"))
		}
	}
	fmt.Fprintf(w, "summary: %s\n", filepath.Join(res.Summary, "summary.md"))
	if b, err := os.ReadFile(filepath.Join(res.Summary, "summary.md")); err == nil {
		fmt.Fprintf(w, "\n%s", b)
	}
	return nil
}

func newAdaptStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status RUNDIR",
		Short: "Show the state of every stage of an adapt run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			b, err := os.ReadFile(filepath.Join(dir, "plan.json"))
			if err != nil {
				return fmt.Errorf("adapt status: %s is not an adapt run directory: %w", dir, err)
			}
			var plan adapt.Plan
			if err := json.Unmarshal(b, &plan); err != nil {
				return fmt.Errorf("adapt status: %s: %w", filepath.Join(dir, "plan.json"), err)
			}
			p := &adapt.Pipeline{Plan: plan, Runner: &adapt.Runner{Dir: dir}}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STAGE\tSTATE\tSECONDS\tFINISHED")
			for _, s := range p.Stages() {
				st, m := p.Runner.StateOf(s)
				secs, when := "", ""
				if m != nil {
					secs = fmt.Sprintf("%.1f", m.Seconds)
					when = m.Started.Add(time.Duration(m.Seconds * float64(time.Second))).Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, st, secs, when)
			}
			return tw.Flush()
		},
	}
}

func newDemoCmd(a *app) *cobra.Command {
	var out string
	var force []string
	cmd := &cobra.Command{
		Use:   "demo [--out DIR]",
		Short: "Run the whole pipeline on a built-in synthetic source/target pair (a few minutes)",
		Long: `Generate a small synthetic source domain (training and dev queries) and a
target domain (test queries) whose vocabulary the source never shows
(adapt.DemoSource, adapt.DemoTarget: fixed seeds; queries use synonyms of
their documents' words, learnable only from each domain's own corpus), then
run "spladapt adapt" on them with a tiny model, and print where the report
is. Settings of the demo are built in (small model, few steps); the config
file's cache_dir, threads and progress apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(cfg.Cache(), "demo")
			}
			data := filepath.Join(out, "data")
			src, tgt := adapt.DemoSource(), adapt.DemoTarget()
			for _, spec := range []adapt.DemoSpec{src, tgt} {
				dir := filepath.Join(data, spec.Name)
				if _, err := os.Stat(filepath.Join(dir, "corpus.jsonl")); err == nil {
					continue
				}
				if err := adapt.GenerateDemo(dir, spec); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "demo data in %s\n", data)
			dc := adapt.DemoConfig(cfg, filepath.Join(data, src.Name), filepath.Join(data, tgt.Name))
			run := filepath.Join(out, "run")
			if err := runAdapt(cmd, dc, run, force); err != nil {
				return err
			}
			return adapt.WriteDemoVerdict(cmd.OutOrStdout(), filepath.Join(run, "summary"))
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "demo directory (default <cache_dir>/demo)")
	cmd.Flags().StringArrayVar(&force, "force", nil, "rerun this stage (repeatable)")
	return cmd
}
