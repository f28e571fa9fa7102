// Command reportsum puts several "spladapt compare" reports (one per
// collection) into one Markdown table: per collection and on the mean, each
// run's mean of the measure and, for every run but the baseline, its
// difference from the baseline marked † when the Holm-adjusted paired t
// test of that report gives p < 0.05.
//
//	go run ./tools/reportsum -m nDCG@10 [-m R@100] NAME=DIR/report.json ...
//
// The mean row averages the per-collection means (each collection weighs
// the same, as BEIR's mean does); it carries no test.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type report struct {
	Baseline string    `json:"baseline"`
	Runs     []string  `json:"runs"`
	Queries  []string  `json:"queries"`
	Measures []measure `json:"measures"`
}

type measure struct {
	Measure string    `json:"measure"`
	Means   []float64 `json:"means"`
	Deltas  []struct {
		Run   string  `json:"run"`
		Delta float64 `json:"delta"`
		PHolm float64 `json:"p_holm"`
	} `json:"deltas"`
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	var measures multiFlag
	flag.Var(&measures, "m", "measure (repeatable; default nDCG@10)")
	alpha := flag.Float64("alpha", 0.05, "significance level of the † mark")
	flag.Parse()
	if len(measures) == 0 {
		measures = multiFlag{"nDCG@10"}
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: reportsum [-m MEASURE]... NAME=report.json...")
		os.Exit(2)
	}
	if err := run(os.Stdout, flag.Args(), measures, *alpha); err != nil {
		fmt.Fprintln(os.Stderr, "reportsum:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, args []string, measures []string, alpha float64) error {
	var names []string
	var reps []report
	for _, a := range args {
		name, path, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("argument %q: want NAME=report.json", a)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(reps) > 0 && strings.Join(r.Runs, ",") != strings.Join(reps[0].Runs, ",") {
			return fmt.Errorf("%s: runs %v differ from the first report's %v", path, r.Runs, reps[0].Runs)
		}
		names, reps = append(names, name), append(reps, r)
	}
	runs := reps[0].Runs
	for _, m := range measures {
		fmt.Fprintf(w, "%s (baseline %s; Δ against it, † Holm-adjusted p < %g)\n\n", m, reps[0].Baseline, alpha)
		fmt.Fprint(w, "| collection | queries |")
		for i, r := range runs {
			fmt.Fprintf(w, " %s |", r)
			if i > 0 {
				fmt.Fprintf(w, " Δ %s |", r)
			}
		}
		fmt.Fprint(w, "\n|---|---:|")
		for i := range runs {
			fmt.Fprint(w, "---:|")
			if i > 0 {
				fmt.Fprint(w, "---:|")
			}
		}
		fmt.Fprintln(w)
		sum := make([]float64, len(runs))
		for k, r := range reps {
			var ms *measure
			for i := range r.Measures {
				if r.Measures[i].Measure == m {
					ms = &r.Measures[i]
				}
			}
			if ms == nil {
				return fmt.Errorf("report %s has no measure %s", names[k], m)
			}
			fmt.Fprintf(w, "| %s | %d |", names[k], len(r.Queries))
			for i := range runs {
				sum[i] += ms.Means[i]
				fmt.Fprintf(w, " %.4f |", ms.Means[i])
				if i > 0 {
					d := ms.Deltas[i-1]
					mark := ""
					if d.PHolm < alpha {
						mark = "†"
					}
					fmt.Fprintf(w, " %+.4f%s |", d.Delta, mark)
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "| mean | |")
		n := float64(len(reps))
		for i := range runs {
			fmt.Fprintf(w, " %.4f |", sum[i]/n)
			if i > 0 {
				fmt.Fprintf(w, " %+.4f |", (sum[i]-sum[0])/n)
			}
		}
		fmt.Fprint(w, "\n\n")
	}
	return nil
}
