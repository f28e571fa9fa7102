package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// NamedRun is a run with the name a report shows for it.
type NamedRun struct {
	Name string
	Run  corpora.Run
}

// Level is the confidence level of the intervals in comparisons.
const Level = 0.95

// Comparison is the paired comparison of runs against a baseline: for each
// measure the mean of every run and, for every other run, the mean
// per-query difference with its 95% confidence interval, a paired
// two-sided t test with Holm–Bonferroni adjustment across the compared
// runs, and per-query wins, ties and losses.
type Comparison struct {
	// Title heads the report (e.g. the collection); optional.
	Title string `json:"title,omitempty"`
	// Qrels names the judgments file; optional, shown in the report.
	Qrels    string   `json:"qrels,omitempty"`
	Baseline string   `json:"baseline"`
	Runs     []string `json:"runs"` // baseline first
	Options  Options  `json:"options"`
	// Queries are the paired queries, in qid order: those every run is
	// evaluated on (all judged queries with Options.AllQueries).
	Queries  []string            `json:"queries"`
	Measures []MeasureComparison `json:"measures"`
}

// MeasureComparison is one measure's row group.
type MeasureComparison struct {
	Measure string    `json:"measure"`
	Means   []float64 `json:"means"`  // per run, parallel to Comparison.Runs
	Deltas  []Delta   `json:"deltas"` // per compared run (Runs[1:])
}

// Delta compares one run with the baseline on one measure.
type Delta struct {
	Run    string  `json:"run"`
	Mean   float64 `json:"delta"` // mean of run − baseline over the paired queries
	CILo   Number  `json:"ci_lo"` // 95% confidence interval of Mean (null with < 2 queries)
	CIHi   Number  `json:"ci_hi"`
	T      Number  `json:"t"`
	P      Number  `json:"p"`      // paired two-sided t test
	PHolm  Number  `json:"p_holm"` // Holm-adjusted across the compared runs
	Wins   int     `json:"wins"`   // queries where the run beats the baseline
	Ties   int     `json:"ties"`
	Losses int     `json:"losses"`
	// PerQuery holds run − baseline for each of Comparison.Queries.
	PerQuery []float64 `json:"per_query"`
}

// Number is a float64 that encodes NaN and ±Inf as JSON null.
type Number float64

// MarshalJSON writes null for NaN and infinities.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

// tieEps is the largest per-query difference counted as a tie.
const tieEps = 1e-12

// Compare evaluates baseline and others with the measures and options
// (set opts.AllQueries, as the CLI does, so that every run is paired on
// the same judged queries) and compares each other run with the baseline.
// Run names must be distinct and non-empty. Cost: one Evaluate per run,
// then O(runs·measures·queries).
func Compare(qrels corpora.Qrels, baseline NamedRun, others []NamedRun, measures []Measure, opts Options) (*Comparison, error) {
	runs := append([]NamedRun{baseline}, others...)
	if len(others) == 0 {
		return nil, fmt.Errorf("compare: no run to compare with the baseline %s", baseline.Name)
	}
	seen := map[string]bool{}
	for _, r := range runs {
		if r.Name == "" || seen[r.Name] {
			return nil, fmt.Errorf("compare: run names must be distinct and non-empty, got %q twice or empty", r.Name)
		}
		seen[r.Name] = true
	}
	results := make([]*Results, len(runs))
	for i, r := range runs {
		res, err := Evaluate(qrels, r.Run, measures, opts)
		if err != nil {
			return nil, fmt.Errorf("compare: run %s: %w", r.Name, err)
		}
		results[i] = res
	}
	// Pair on the queries every run was evaluated on.
	count := map[string]int{}
	for _, res := range results {
		for _, q := range res.Queries {
			count[q.QID]++
		}
	}
	var qids []string
	for qid, n := range count {
		if n == len(runs) {
			qids = append(qids, qid)
		}
	}
	slices.Sort(qids)
	if len(qids) == 0 {
		return nil, fmt.Errorf("compare: no query is evaluated in every run")
	}
	// values[r][m][q]: run r, measure m, paired query q.
	values := make([][][]float64, len(runs))
	for r, res := range results {
		pos := make(map[string]int, len(res.Queries))
		for i, q := range res.Queries {
			pos[q.QID] = i
		}
		values[r] = make([][]float64, len(measures))
		for m := range measures {
			v := make([]float64, len(qids))
			for i, qid := range qids {
				v[i] = res.Queries[pos[qid]].Values[m]
			}
			values[r][m] = v
		}
	}
	c := &Comparison{Baseline: baseline.Name, Options: opts, Queries: qids}
	for _, r := range runs {
		c.Runs = append(c.Runs, r.Name)
	}
	for m, meas := range measures {
		mc := MeasureComparison{Measure: meas.Name()}
		for r := range runs {
			mc.Means = append(mc.Means, mean(values[r][m]))
		}
		ps := make([]float64, len(others))
		for o := range others {
			d := make([]float64, len(qids))
			dl := Delta{Run: others[o].Name, PerQuery: d}
			for i := range qids {
				d[i] = values[o+1][m][i] - values[0][m][i]
				switch {
				case d[i] > tieEps:
					dl.Wins++
				case d[i] < -tieEps:
					dl.Losses++
				default:
					dl.Ties++
				}
			}
			t := PairedTTest(d, Level)
			dl.Mean, dl.CILo, dl.CIHi, dl.T, dl.P = t.Mean, Number(t.Lo), Number(t.Hi), Number(t.T), Number(t.P)
			ps[o] = t.P
			mc.Deltas = append(mc.Deltas, dl)
		}
		for o, p := range Holm(ps) {
			mc.Deltas[o].PHolm = Number(p)
		}
		c.Measures = append(c.Measures, mc)
	}
	return c, nil
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// WriteDir writes report.md, report.json and report.html into dir,
// atomically: the directory is built beside dir and renamed into place, so
// a reader sees the old reports or the new ones, never a mix. Other files
// already in dir are lost, so dir should be the report's own directory.
func (c *Comparison) WriteDir(dir string) error {
	return atomicfile.Dir(dir, func(tmp string) error {
		for _, f := range []struct {
			name  string
			write func(io.Writer) error
		}{{"report.md", c.WriteMarkdown}, {"report.json", c.WriteJSON}, {"report.html", c.WriteHTML}} {
			var b bytes.Buffer
			if err := f.write(&b); err != nil {
				return fmt.Errorf("write %s: %w", f.name, err)
			}
			if err := os.WriteFile(filepath.Join(tmp, f.name), b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		}
		return nil
	})
}

// WriteJSON writes the comparison as indented JSON (NaN and infinities as
// null).
func (c *Comparison) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// describe is the sentence every report format opens with.
func (c *Comparison) describe() string {
	qs := "queries evaluated in every run"
	if c.Options.AllQueries {
		qs = "judged queries; a query missing from a run scores 0 (trec_eval -c)"
	}
	runs := "the compared run"
	if n := len(c.Runs) - 1; n != 1 {
		runs = fmt.Sprintf("the %d compared runs", n)
	}
	return fmt.Sprintf("%d %s. Δ is the mean per-query difference from the baseline %s, with its %d%% confidence interval (paired, Student t); p is the two-sided paired t test, and p (Holm) is adjusted with Holm–Bonferroni across %s of each measure. W/T/L counts the queries where the run wins, ties and loses against the baseline.",
		len(c.Queries), qs, c.Baseline, int(Level*100), runs)
}

// WriteMarkdown writes one table per measure.
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	title := "Run comparison"
	if c.Title != "" {
		title += ": " + c.Title
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	if c.Qrels != "" {
		fmt.Fprintf(&b, "Judgments: `%s`. ", c.Qrels)
	}
	fmt.Fprintf(&b, "%s\n", c.describe())
	for _, mc := range c.Measures {
		fmt.Fprintf(&b, "\n## %s\n\n", mc.Measure)
		b.WriteString("| run | mean | Δ | 95% CI | p | p (Holm) | W/T/L |\n|---|---:|---:|---|---:|---:|---|\n")
		fmt.Fprintf(&b, "| %s (baseline) | %.4f | | | | | |\n", mdEscape(c.Runs[0]), mc.Means[0])
		for o, d := range mc.Deltas {
			fmt.Fprintf(&b, "| %s | %.4f | %+.4f | %s | %s | %s | %d/%d/%d |\n", mdEscape(d.Run), mc.Means[o+1], d.Mean,
				fmtCI(d), fmtP(float64(d.P)), fmtP(float64(d.PHolm)), d.Wins, d.Ties, d.Losses)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }

func fmtCI(d Delta) string {
	if math.IsNaN(float64(d.CILo)) {
		return "n/a"
	}
	return fmt.Sprintf("[%+.4f, %+.4f]", float64(d.CILo), float64(d.CIHi))
}

func fmtP(p float64) string {
	switch {
	case math.IsNaN(p):
		return "n/a"
	case p < 0.0001:
		return "<0.0001"
	}
	return fmt.Sprintf("%.4f", p)
}
