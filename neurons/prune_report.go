package neurons

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/spladapt/spladapt/internal/curves"
)

// The colours of the three selections (eval's report palette).
const (
	colorTop    = "#d62728"
	colorRandom = "#7f7f7f"
	colorLeast  = "#1f77b4"
)

// lines are the study's three curves, each starting at n = 0 (unablated).
func (st *PruneStudy) lines() []curves.Line {
	ls := []curves.Line{
		{Name: "top-n relevance", Color: colorTop},
		{Name: fmt.Sprintf("random (mean of %d)", st.Seeds), Color: colorRandom},
		{Name: "least relevant", Color: colorLeast},
	}
	for i := range ls {
		ls[i].X, ls[i].Y = []float64{0}, []float64{st.Unablated}
	}
	for _, p := range st.Points {
		for i, v := range []float64{p.Top, p.Random, p.Least} {
			ls[i].X = append(ls[i].X, float64(p.N))
			ls[i].Y = append(ls[i].Y, v)
		}
	}
	return ls
}

// WriteSVG writes the curves: nDCG@10 against n for the three selections.
func (st *PruneStudy) WriteSVG(w io.Writer) error {
	return curves.Lines(w, "Pruning: "+st.Data, "neurons ablated (n)", "nDCG@10", st.lines())
}

// WriteHTML writes a self-contained report: the curves inline and the table.
func (st *PruneStudy) WriteHTML(w io.Writer) error {
	var b strings.Builder
	e := html.EscapeString
	title := "Pruning study: " + st.Data
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head><body>\n", e(title), pruneCSS)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", e(title))
	fmt.Fprintf(&b, "<p class=\"note\">Model <code>%s</code>; relevance neurons from <code>%s</code> (%d pairs, %s side, Cliff's delta of attributions on relevant vs non-relevant pairs), layers %v × %d neurons. Ablated neurons are set to the attribution baseline (%s) at every token. %s over %d queries and %d documents, exact search. Random: %d draws per n among the neurons that are neither top nor least; the line is their mean.</p>\n",
		e(st.Model), e(st.Attr), st.Pairs, e(st.Side), st.Layers, st.Neurons, e(st.Baseline), e(st.Measure), st.Queries, st.Docs, st.Seeds)
	b.WriteString("<figure>")
	var svg strings.Builder
	if err := st.WriteSVG(&svg); err != nil {
		return err
	}
	b.WriteString(svg.String())
	b.WriteString("<figcaption>nDCG@10 against the number of ablated neurons; n = 0 is the unablated model.</figcaption></figure>\n")
	b.WriteString("<table><tr><th>n</th><th>top</th><th>random (mean)</th><th>random per seed</th><th>least</th><th>mean δ top</th><th>mean δ least</th></tr>\n")
	fmt.Fprintf(&b, "<tr><td>0</td><td>%.4f</td><td>%.4f</td><td></td><td>%.4f</td><td></td><td></td></tr>\n", st.Unablated, st.Unablated, st.Unablated)
	for _, p := range st.Points {
		var seeds []string
		for _, v := range p.RandomPerSeed {
			seeds = append(seeds, fmt.Sprintf("%.4f", v))
		}
		fmt.Fprintf(&b, "<tr><td>%d</td><td>%.4f</td><td>%.4f</td><td>%s</td><td>%.4f</td><td>%+.3f</td><td>%+.3f</td></tr>\n",
			p.N, p.Top, p.Random, strings.Join(seeds, " "), p.Least, p.TopDelta, p.LeastDelta)
	}
	b.WriteString("</table>\n</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

const pruneCSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}table{border-collapse:collapse;margin:.6em 0}th,td{padding:.25em .7em;border-bottom:1px solid #e4e4e4;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
svg text{font:11px system-ui,sans-serif;fill:#333}.note{color:#555}`
