package adapt

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// SummaryRow is one target's line of the summary for one measure.
type SummaryRow struct {
	Target string             `json:"target"`
	Means  map[string]float64 `json:"means"` // system → mean
	// Delta is adapted − zero-shot with its Holm-adjusted p-value; NaN
	// (JSON null) where there is no such run.
	Delta  eval.Number `json:"delta"`
	PHolm  eval.Number `json:"p_holm"`
	DeltaF eval.Number `json:"delta_full"` // full-mlm − zero-shot
	PHolmF eval.Number `json:"p_holm_full"`
	// DeltaR is adapted+rerank − zero-shot+rerank with its Holm-adjusted
	// p-value (the rerank stage's comparison); absent (nil) without
	// adapt.rerank, NaN where there is no such comparison.
	DeltaR *eval.Number `json:"delta_rerank,omitempty"`
	PHolmR *eval.Number `json:"p_holm_rerank,omitempty"`
}

// Summary is the table over targets.
type Summary struct {
	Systems    []string                      `json:"systems"`
	Measures   []string                      `json:"measures"`
	Rows       map[string][]SummaryRow       `json:"rows"` // measure → rows
	Mean       map[string]map[string]float64 `json:"mean"` // measure → system → mean over targets
	MeanDelta  map[string]float64            `json:"mean_delta"`
	Perplexity map[string]map[string]float64 `json:"perplexity"` // target → model → perplexity
	Stages     []StageTime                   `json:"stages"`
	NoQrels    []string                      `json:"no_qrels,omitempty"`
	// Reranker is adapt.rerank, and MeanDeltaR the mean of DeltaR per
	// measure; both absent without re-ranking. Systems then include each
	// system's re-ranked run, named with RerankSuffix.
	Reranker   string             `json:"reranker,omitempty"`
	MeanDeltaR map[string]float64 `json:"mean_delta_rerank,omitempty"`
}

// buildSummary gathers the evaluated targets.
func buildSummary(trs []*TargetResult, cfg config.Config, times []StageTime) *Summary {
	s := &Summary{Rows: map[string][]SummaryRow{}, Mean: map[string]map[string]float64{},
		MeanDelta: map[string]float64{}, Perplexity: map[string]map[string]float64{}, Stages: times}
	s.Systems = []string{SysBM25, SysZeroShot, SysAdapted}
	if cfg.Adapt.FullBaseline {
		s.Systems = append(s.Systems, SysFull)
	}
	if s.Reranker = cfg.Adapt.Rerank; s.Reranker != "" {
		for _, sys := range s.Systems {
			s.Systems = append(s.Systems, sys+RerankSuffix)
		}
		s.MeanDeltaR = map[string]float64{}
	}
	for _, tr := range trs {
		if !tr.Evaluated {
			s.NoQrels = append(s.NoQrels, tr.Name)
			continue
		}
		s.Perplexity[tr.Name] = tr.Perplexity
		for _, mc := range tr.Comparison.Measures {
			if !contains(s.Measures, mc.Measure) {
				s.Measures = append(s.Measures, mc.Measure)
			}
			nan := eval.Number(math.NaN())
			row := SummaryRow{Target: tr.Name, Delta: nan, PHolm: nan, DeltaF: nan, PHolmF: nan}
			row.Means = map[string]float64{}
			for _, sys := range s.Systems {
				if m, ok := tr.Means[sys]; ok {
					row.Means[sys] = m[mc.Measure]
				}
			}
			for _, d := range mc.Deltas {
				switch d.Run {
				case SysAdapted:
					row.Delta, row.PHolm = eval.Number(d.Mean), d.PHolm
				case SysFull:
					row.DeltaF, row.PHolmF = eval.Number(d.Mean), d.PHolm
				}
			}
			if s.Reranker != "" {
				d, p := nan, nan
				if tr.RerankComparison != nil {
					for _, rc := range tr.RerankComparison.Measures {
						for _, dd := range rc.Deltas {
							if rc.Measure == mc.Measure && dd.Run == SysAdapted+RerankSuffix {
								d, p = eval.Number(dd.Mean), dd.PHolm
							}
						}
					}
				}
				row.DeltaR, row.PHolmR = &d, &p
			}
			s.Rows[mc.Measure] = append(s.Rows[mc.Measure], row)
		}
	}
	for _, m := range s.Measures {
		s.Mean[m] = map[string]float64{}
		rows := s.Rows[m]
		for _, sys := range s.Systems {
			var sum float64
			for _, r := range rows {
				sum += r.Means[sys]
			}
			s.Mean[m][sys] = sum / float64(max(1, len(rows)))
		}
		var sum, sumR float64
		for _, r := range rows {
			sum += float64(r.Delta)
			if r.DeltaR != nil {
				sumR += float64(*r.DeltaR)
			}
		}
		s.MeanDelta[m] = sum / float64(max(1, len(rows)))
		if s.Reranker != "" {
			s.MeanDeltaR[m] = sumR / float64(max(1, len(rows)))
		}
	}
	return s
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// sig marks a Holm-adjusted p-value below 0.05.
func sig(p eval.Number) string {
	if !math.IsNaN(float64(p)) && p < 0.05 {
		return "†"
	}
	return ""
}

func writeSummary(dir string, trs []*TargetResult, cfg config.Config, times []StageTime) error {
	s := buildSummary(trs, cfg, times)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "summary.md"), 0o644, s.writeMarkdown); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "summary.html"), 0o644, s.writeHTML)
}

// writeMarkdown writes one table per measure, the perplexities and the
// stage times.
func (s *Summary) writeMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "# spladapt: zero-shot vs adapted\n\n")
	fmt.Fprintf(w, "Δ = adapted − zero-shot (paired over each target's judged queries); † = Holm-adjusted paired t-test p < 0.05 against zero-shot.\n\n")
	rr := s.Reranker != ""
	if rr {
		fmt.Fprintf(w, "+rerank: the system's run re-ranked by `%s`; Δ adapted+rerank = adapted+rerank − zero-shot+rerank, † against zero-shot+rerank.\n\n", s.Reranker)
	}
	for _, m := range s.Measures {
		fmt.Fprintf(w, "## %s\n\n| target |", m)
		for _, sys := range s.Systems {
			fmt.Fprintf(w, " %s |", sys)
		}
		fmt.Fprintf(w, " Δ adapted |")
		if contains(s.Systems, SysFull) {
			fmt.Fprintf(w, " Δ full-mlm |")
		}
		if rr {
			fmt.Fprintf(w, " Δ adapted+rerank |")
		}
		fmt.Fprintf(w, "\n|---|")
		for range s.Systems {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintf(w, "---:|")
		if contains(s.Systems, SysFull) {
			fmt.Fprintf(w, "---:|")
		}
		if rr {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, r := range s.Rows[m] {
			fmt.Fprintf(w, "| %s |", r.Target)
			for _, sys := range s.Systems {
				fmt.Fprintf(w, " %.4f |", r.Means[sys])
			}
			fmt.Fprintf(w, " %+.4f%s |", float64(r.Delta), sig(r.PHolm))
			if contains(s.Systems, SysFull) {
				fmt.Fprintf(w, " %+.4f%s |", float64(r.DeltaF), sig(r.PHolmF))
			}
			if rr {
				fmt.Fprintf(w, " %+.4f%s |", float64(*r.DeltaR), sig(*r.PHolmR))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "| **mean** |")
		for _, sys := range s.Systems {
			fmt.Fprintf(w, " %.4f |", s.Mean[m][sys])
		}
		fmt.Fprintf(w, " %+.4f |", s.MeanDelta[m])
		if contains(s.Systems, SysFull) {
			fmt.Fprintf(w, " %+.4f |", s.Mean[m][SysFull]-s.Mean[m][SysZeroShot])
		}
		if rr {
			fmt.Fprintf(w, " %+.4f |", s.MeanDeltaR[m])
		}
		fmt.Fprintf(w, "\n\n")
	}
	if len(s.Perplexity) > 0 {
		fmt.Fprintf(w, "## Held-out MLM perplexity on each target\n\n| target | P_domain(source) | P_domain(target) |")
		hasFull := false
		for _, pp := range s.Perplexity {
			_, ok := pp["full-mlm"]
			hasFull = hasFull || ok
		}
		if hasFull {
			fmt.Fprintf(w, " full continued |")
		}
		fmt.Fprintf(w, "\n|---|---:|---:|")
		if hasFull {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, r := range s.Rows[s.Measures[0]] {
			pp := s.Perplexity[r.Target]
			fmt.Fprintf(w, "| %s | %.2f | %.2f |", r.Target, pp["source-mlm"], pp["target-mlm"])
			if hasFull {
				fmt.Fprintf(w, " %.2f |", pp["full-mlm"])
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	if len(s.NoQrels) > 0 {
		fmt.Fprintf(w, "Targets without queries and qrels (indexed, not evaluated): %s\n\n", strings.Join(s.NoQrels, ", "))
	}
	fmt.Fprintf(w, "## Wall-clock time per stage\n\n| stage | seconds |\n|---|---:|\n")
	var total float64
	for _, st := range s.Stages {
		fmt.Fprintf(w, "| %s | %.1f |\n", st.Stage, st.Seconds)
		total += st.Seconds
	}
	_, err := fmt.Fprintf(w, "| **total** | %.1f |\n", total)
	return err
}

// writeHTML is the same tables plus an SVG bar chart of Δ per target.
func (s *Summary) writeHTML(w io.Writer) error {
	var md strings.Builder
	if err := s.writeMarkdown(&md); err != nil {
		return err
	}
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>spladapt summary</title>"+
		"<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>\n")
	fmt.Fprintf(w, "<h1>spladapt: zero-shot vs adapted</h1>\n<p>Δ = adapted − zero-shot; † = Holm-adjusted paired t-test p &lt; 0.05.</p>\n")
	rr := s.Reranker != ""
	if rr {
		fmt.Fprintf(w, "<p>+rerank: the system's run re-ranked by <code>%s</code>; Δ adapted+rerank = adapted+rerank − zero-shot+rerank.</p>\n", html.EscapeString(s.Reranker))
	}
	for _, m := range s.Measures {
		fmt.Fprintf(w, "<h2>%s</h2>\n<table><tr><th>target</th>", html.EscapeString(m))
		for _, sys := range s.Systems {
			fmt.Fprintf(w, "<th>%s</th>", sys)
		}
		fmt.Fprintf(w, "<th>Δ adapted</th>")
		if rr {
			fmt.Fprintf(w, "<th>Δ adapted+rerank</th>")
		}
		fmt.Fprintf(w, "</tr>\n")
		for _, r := range s.Rows[m] {
			fmt.Fprintf(w, "<tr><td>%s</td>", html.EscapeString(r.Target))
			for _, sys := range s.Systems {
				fmt.Fprintf(w, "<td>%.4f</td>", r.Means[sys])
			}
			fmt.Fprintf(w, "<td>%+.4f%s</td>", float64(r.Delta), sig(r.PHolm))
			if rr {
				fmt.Fprintf(w, "<td>%+.4f%s</td>", float64(*r.DeltaR), sig(*r.PHolmR))
			}
			fmt.Fprintf(w, "</tr>\n")
		}
		fmt.Fprintf(w, "<tr><th>mean</th>")
		for _, sys := range s.Systems {
			fmt.Fprintf(w, "<th>%.4f</th>", s.Mean[m][sys])
		}
		fmt.Fprintf(w, "<th>%+.4f</th>", s.MeanDelta[m])
		if rr {
			fmt.Fprintf(w, "<th>%+.4f</th>", s.MeanDeltaR[m])
		}
		fmt.Fprintf(w, "</tr></table>\n")
		s.deltaSVG(w, m)
	}
	fmt.Fprintf(w, "<h2>Details</h2><pre>%s</pre></body></html>\n", html.EscapeString(md.String()))
	return nil
}

// deltaSVG draws Δ adapted − zero-shot per target as horizontal bars.
func (s *Summary) deltaSVG(w io.Writer, m string) {
	rows := s.Rows[m]
	if len(rows) == 0 {
		return
	}
	maxAbs := 1e-9
	for _, r := range rows {
		if d := float64(r.Delta); !math.IsNaN(d) {
			maxAbs = math.Max(maxAbs, math.Abs(d))
		}
	}
	const W, rowH, left = 520.0, 20.0, 180.0
	H := rowH*float64(len(rows)) + 20
	mid := left + (W-left)/2
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-size="11" font-family="sans-serif">`, W, H)
	fmt.Fprintf(w, `<line x1="%.1f" y1="0" x2="%.1f" y2="%.1f" stroke="#888"/>`, mid, mid, H)
	for i, r := range rows {
		y := float64(i)*rowH + 4
		d := float64(r.Delta)
		if math.IsNaN(d) {
			d = 0
		}
		bw := math.Abs(d) / maxAbs * (W - left) / 2 * 0.95
		x, color := mid, "#2ca02c"
		if d < 0 {
			x, color = mid-bw, "#d62728"
		}
		fmt.Fprintf(w, `<text x="4" y="%.1f">%s</text><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%+.4f</title></rect>`,
			y+12, html.EscapeString(r.Target), x, y, math.Max(bw, 0.5), rowH-6, color, float64(r.Delta))
	}
	fmt.Fprintf(w, "</svg>\n")
}
