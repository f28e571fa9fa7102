package eval

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// palette colours runs in the plots; the baseline takes the first.
var palette = []string{"#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"}

func runColor(i int) string { return palette[i%len(palette)] }

const reportCSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.25em .7em;border-bottom:1px solid #e4e4e4;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}
td.win{color:#1a7f37}td.loss{color:#c62828}.sig{font-weight:600}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;vertical-align:-1px}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}svg text{font:11px system-ui,sans-serif;fill:#333}
.note{color:#555}`

// renderedScript proves the plots were laid out: it counts the SVG
// elements whose bounding boxes are non-empty and records the count on
// <body data-rendered="N"> (checked by the headless-browser test).
const renderedScript = `(function(){var n=0;var svgs=document.querySelectorAll('svg');for(var i=0;svgs.length>i;i++){var b=svgs[i].getBBox(),r=svgs[i].getBoundingClientRect();if(b.width>0&&b.height>0&&r.width>0&&r.height>0){n++;}}document.body.setAttribute('data-rendered',String(n));document.body.setAttribute('data-svgs',String(svgs.length));})();`

// WriteHTML writes a self-contained HTML report: inline CSS and SVG, one
// small inline script, no external resources. It holds a summary plot
// (mean of each run per measure, with the baseline + 95% CI of the
// difference as whiskers), then per measure the table and, per compared
// run, the per-query differences sorted from best to worst.
func (c *Comparison) WriteHTML(w io.Writer) error {
	var b strings.Builder
	e := html.EscapeString
	title := "Run comparison"
	if c.Title != "" {
		title += ": " + c.Title
	}
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head><body>\n", e(title), reportCSS)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", e(title))
	if c.Qrels != "" {
		fmt.Fprintf(&b, "<p class=\"note\">Judgments: <code>%s</code></p>\n", e(c.Qrels))
	}
	fmt.Fprintf(&b, "<p class=\"note\">%s Bold p-values are below 0.05 after adjustment.</p>\n", e(c.describe()))
	b.WriteString("<p>")
	for i, r := range c.Runs {
		label := e(r)
		if i == 0 {
			label += " (baseline)"
		}
		fmt.Fprintf(&b, "<span class=\"swatch\" style=\"background:%s\"></span>%s &nbsp; ", runColor(i), label)
	}
	b.WriteString("</p>\n<h2>Summary</h2>\n<figure>")
	c.summarySVG(&b)
	b.WriteString("<figcaption>Mean of each run per measure. Whiskers: baseline mean + the 95% confidence interval of the paired difference.</figcaption></figure>\n")
	for _, mc := range c.Measures {
		fmt.Fprintf(&b, "<h2 id=\"%s\">%s</h2>\n", e(anchor(mc.Measure)), e(mc.Measure))
		b.WriteString("<table><thead><tr><th>run</th><th>mean</th><th>Δ</th><th>95% CI</th><th>p</th><th>p (Holm)</th><th>wins</th><th>ties</th><th>losses</th></tr></thead><tbody>\n")
		fmt.Fprintf(&b, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>%s (baseline)</td><td>%.4f</td><td></td><td></td><td></td><td></td><td></td><td></td><td></td></tr>\n", runColor(0), e(c.Runs[0]), mc.Means[0])
		for o, d := range mc.Deltas {
			cls := ""
			if d.Mean > tieEps {
				cls = "win"
			} else if d.Mean < -tieEps {
				cls = "loss"
			}
			sig := ""
			if float64(d.PHolm) < 0.05 {
				sig = " class=\"sig\""
			}
			fmt.Fprintf(&b, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>%s</td><td>%.4f</td><td class=\"%s\">%+.4f</td><td>%s</td><td>%s</td><td%s>%s</td><td>%d</td><td>%d</td><td>%d</td></tr>\n",
				runColor(o+1), e(d.Run), mc.Means[o+1], cls, d.Mean, e(fmtCI(d)), e(fmtP(float64(d.P))), sig, e(fmtP(float64(d.PHolm))), d.Wins, d.Ties, d.Losses)
		}
		b.WriteString("</tbody></table>\n")
		for o, d := range mc.Deltas {
			b.WriteString("<figure>")
			deltaSVG(&b, d, runColor(o+1))
			fmt.Fprintf(&b, "<figcaption>%s − %s on %s, per query, sorted (%d queries; %d wins, %d ties, %d losses).</figcaption></figure>\n",
				e(d.Run), e(c.Baseline), e(mc.Measure), len(d.PerQuery), d.Wins, d.Ties, d.Losses)
		}
	}
	fmt.Fprintf(&b, "<script>%s</script>\n</body></html>\n", renderedScript)
	_, err := io.WriteString(w, b.String())
	return err
}

func anchor(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}

// deltaSVG draws one bar per query, the differences sorted descending,
// around a zero line.
func deltaSVG(b *strings.Builder, d Delta, color string) {
	const W, H, left, top, plotW, plotH = 720.0, 180.0, 48.0, 10.0, 660.0, 150.0
	ds := slices.Clone(d.PerQuery)
	slices.SortFunc(ds, func(x, y float64) int {
		switch {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	})
	scale := 0.0
	for _, v := range ds {
		scale = max(scale, math.Abs(v))
	}
	if scale == 0 {
		scale = 1
	}
	zero := top + plotH/2
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="per-query differences of %s">`, W, H, W, H, html.EscapeString(d.Run))
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="end">%+.3f</text>`, left-4, top+8, scale)
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="end">0</text>`, left-4, zero+4)
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="end">%+.3f</text>`, left-4, top+plotH, -scale)
	bw := plotW / float64(max(len(ds), 1))
	for i, v := range ds {
		if math.Abs(v) <= tieEps {
			continue
		}
		h := math.Abs(v) / scale * plotH / 2
		y := zero - h
		fill := "#1a7f37"
		if v < 0 {
			y, fill = zero, "#c62828"
		}
		fmt.Fprintf(b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"><title>%+.4f</title></rect>`, left+float64(i)*bw, y, max(bw*0.9, 0.6), h, fill, v)
	}
	fmt.Fprintf(b, `<path d="M%g %gH%g" stroke="#333" stroke-width="1"/>`, left, zero, left+plotW)
	fmt.Fprintf(b, `<path d="M%g %gV%g" stroke="#999" stroke-width="1"/>`, left, top, top+plotH)
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="%s" stroke-width="1"/>`, left, top, plotW, plotH, color)
	b.WriteString("</svg>")
}

// summarySVG draws grouped bars: one group per measure, one bar per run,
// with CI whiskers on the compared runs.
func (c *Comparison) summarySVG(b *strings.Builder) {
	const top, plotH, left, bottom = 14.0, 220.0, 48.0, 40.0
	nr := float64(len(c.Runs))
	groupW := max(60.0, nr*22+20)
	plotW := groupW * float64(len(c.Measures))
	W, H := left+plotW+10, top+plotH+bottom
	ymax := 0.0
	for _, mc := range c.Measures {
		for _, v := range mc.Means {
			ymax = max(ymax, v)
		}
		for _, d := range mc.Deltas {
			if hi := float64(d.CIHi); !math.IsNaN(hi) {
				ymax = max(ymax, mc.Means[0]+hi)
			}
		}
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax = math.Ceil(ymax*10) / 10
	y := func(v float64) float64 { return top + plotH - max(0, v)/ymax*plotH }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="summary">`, W, H, W, H)
	for _, t := range []float64{0, 0.5, 1} {
		v := t * ymax
		fmt.Fprintf(b, `<path d="M%g %.2fH%g" stroke="#e0e0e0"/><text x="%g" y="%.2f" text-anchor="end">%.2f</text>`, left, y(v), left+plotW, left-4, y(v)+4, v)
	}
	barW := (groupW - 20) / nr
	for m, mc := range c.Measures {
		x0 := left + float64(m)*groupW + 10
		for r, v := range mc.Means {
			x := x0 + float64(r)*barW
			fmt.Fprintf(b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"><title>%s %s: %.4f</title></rect>`,
				x, y(v), barW*0.85, y(0)-y(v), runColor(r), html.EscapeString(c.Runs[r]), html.EscapeString(mc.Measure), v)
			if r == 0 {
				continue
			}
			d := mc.Deltas[r-1]
			lo, hi := float64(d.CILo), float64(d.CIHi)
			if math.IsNaN(lo) {
				continue
			}
			cx := x + barW*0.85/2
			fmt.Fprintf(b, `<path d="M%.2f %.2fV%.2fM%.2f %.2fH%.2fM%.2f %.2fH%.2f" stroke="#111" stroke-width="1.2"/>`,
				cx, y(mc.Means[0]+lo), y(mc.Means[0]+hi), cx-3, y(mc.Means[0]+lo), cx+3, cx-3, y(mc.Means[0]+hi), cx+3)
		}
		fmt.Fprintf(b, `<text x="%.2f" y="%.2f" text-anchor="middle">%s</text>`, x0+(groupW-20)/2, top+plotH+16, html.EscapeString(mc.Measure))
	}
	fmt.Fprintf(b, `<path d="M%g %gH%g" stroke="#333"/>`, left, y(0), left+plotW)
	b.WriteString("</svg>")
}
