package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
)

func init() { register(newCompareCmd) }

func newCompareCmd(a *app) *cobra.Command {
	var (
		qrelsPath, baseline, out, title string
		names                           []string
		level, depth                    int
		judgedOnly                      bool
	)
	cmd := &cobra.Command{
		Use:   "compare --qrels QRELS --baseline RUN RUN... [-m MEASURE]... --out DIR",
		Short: "Compare runs with a baseline: deltas, 95% CIs, paired t tests (Holm), wins/ties/losses",
		Long: `Evaluate the baseline and every other RUN against QRELS and write
DIR/report.md, DIR/report.json and a self-contained DIR/report.html (inline
CSS and SVG plots). For each measure: the mean of every run; for every other
run the mean per-query difference from the baseline with its 95% confidence
interval (paired, Student t), the two-sided paired t test p-value, Holm-
adjusted across the compared runs, and per-query wins, ties and losses.

Runs are paired on every judged query, a query missing from a run scoring 0
(trec_eval -c); with --intersect only on the judged queries every run
retrieved for. Measures default to config eval.measures; names as in
"spladapt eval". Run names are the file names without extension, or --name
(once per run, baseline first). DIR is replaced as a whole.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if qrelsPath == "" || baseline == "" || out == "" {
				return fmt.Errorf("compare: --qrels, --baseline and --out are required")
			}
			g, err := claimOutput(cmd, out, true, append([]string{qrelsPath, baseline}, args...)...)
			if err != nil {
				return err
			}
			defer g.Release()
			if level < 1 || depth < 0 {
				return fmt.Errorf("compare: -l must be >= 1 and -M >= 0, got %d and %d", level, depth)
			}
			ms, err := eval.ParseMeasures(cfg.Eval.Measures...)
			if err != nil {
				return fmt.Errorf("compare: %w", err)
			}
			paths := append([]string{baseline}, args...)
			if len(names) > 0 && len(names) != len(paths) {
				return fmt.Errorf("compare: %d --name for %d runs (baseline first)", len(names), len(paths))
			}
			if len(names) == 0 {
				names = runNames(paths)
			}
			qrels, err := corpora.ReadQrels(qrelsPath)
			if err != nil {
				return err
			}
			runs := make([]eval.NamedRun, len(paths))
			for i, p := range paths {
				r, err := corpora.ReadRun(p)
				if err != nil {
					return err
				}
				runs[i] = eval.NamedRun{Name: names[i], Run: r}
			}
			c, err := eval.Compare(qrels, runs[0], runs[1:], ms, eval.Options{AllQueries: !judgedOnly, RelThreshold: level, Depth: depth, Workers: cfg.NumThreads()})
			if err != nil {
				return err
			}
			c.Title, c.Qrels = title, qrelsPath
			if err := c.WriteDir(out); err != nil {
				return fmt.Errorf("compare: write report %s: %w", out, err)
			}
			if err := c.WriteMarkdown(cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s\n", strings.Join([]string{filepath.Join(out, "report.md"), filepath.Join(out, "report.json"), filepath.Join(out, "report.html")}, ", "))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&qrelsPath, "qrels", "", "judgments: TREC qrels or BEIR qrels .tsv")
	fl.StringVar(&baseline, "baseline", "", "the baseline run (TREC format)")
	fl.StringVar(&out, "out", "", "report directory to write (replaced as a whole)")
	addForceFlag(cmd)
	fl.StringVar(&title, "title", "", "report title, e.g. the collection")
	fl.StringArrayVar(&names, "name", nil, "run name shown in the report; once per run, baseline first (default: file names)")
	fl.StringArrayP("measure", "m", nil, "measure; repeatable (default: config eval.measures)")
	fl.IntVarP(&level, "level", "l", 1, "lowest grade that counts as relevant for binary measures (trec_eval -l)")
	fl.IntVarP(&depth, "max-retrieved", "M", 0, "evaluate only the first N hits of each query; 0 = all (trec_eval -M)")
	fl.BoolVar(&judgedOnly, "intersect", false, "pair runs only on the queries every run retrieved for, instead of every judged query")
	a.bind(fl, "measure", "eval.measures")
	return cmd
}

// runNames derives distinct report names from run file names: the base
// name without ".gz" and one more extension; repeats get "-2", "-3"...
func runNames(paths []string) []string {
	out := make([]string, len(paths))
	used := map[string]int{}
	for i, p := range paths {
		n := strings.TrimSuffix(filepath.Base(p), ".gz")
		if ext := filepath.Ext(n); ext != "" && ext != n {
			n = strings.TrimSuffix(n, ext)
		}
		used[n]++
		if used[n] > 1 {
			n = fmt.Sprintf("%s-%d", n, used[n])
		}
		out[i] = n
	}
	return out
}
