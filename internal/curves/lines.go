package curves

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Line is one series of a Lines chart: points (X[i], Y[i]) joined in
// order, drawn in Color (any SVG colour).
type Line struct {
	Name  string
	Color string
	X, Y  []float64
}

// Lines writes a single-panel SVG chart of several lines sharing the axes,
// with a legend, the y range padded to the data's (non-finite points are
// skipped) and each x value of the first line ticked. It is the companion
// of Log.SVG for a few series measured at the same x (a pruning curve, a
// sweep), drawn in the same style.
func Lines(w io.Writer, title, xlabel, ylabel string, lines []Line) error {
	const W, H, left, right, top, bottom = 600.0, 320.0, 56.0, 170.0, 34.0, 40.0
	pw, ph := W-left-right, H-top-bottom
	var xs, ys []float64
	for _, l := range lines {
		for i := range min(len(l.X), len(l.Y)) {
			if finite(l.X[i]) && finite(l.Y[i]) {
				xs, ys = append(xs, l.X[i]), append(ys, l.Y[i])
			}
		}
	}
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="18" font-size="14">%s</text>`+"\n", e(title))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`+"\n", left, top, pw, ph)
	if len(xs) > 0 {
		xmin, xmax, ymin, ymax := extent(xs, ys)
		padY := 0.05 * (ymax - ymin)
		ymin, ymax = ymin-padY, ymax+padY
		px := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*pw }
		py := func(y float64) float64 { return top + ph - (y-ymin)/(ymax-ymin)*ph }
		for k := 0; k <= 4; k++ { // y grid and labels
			y := ymin + float64(k)/4*(ymax-ymin)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" fill="#555" text-anchor="end">%.3f</text>`+"\n",
				left, left+pw, py(y), py(y), left-4, py(y)+4, y)
		}
		if len(lines) > 0 {
			for _, x := range lines[0].X {
				if finite(x) {
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555" text-anchor="middle">%g</text>`, px(x), top+ph+13, x)
				}
			}
			b.WriteString("\n")
		}
		for i, l := range lines {
			var path strings.Builder
			for j := range min(len(l.X), len(l.Y)) {
				if !finite(l.X[j]) || !finite(l.Y[j]) {
					continue
				}
				cmd := "L"
				if path.Len() == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f,%.1f", cmd, px(l.X[j]), py(l.Y[j]))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s: %g → %.4f</title></circle>`, px(l.X[j]), py(l.Y[j]), l.Color, e(l.Name), l.X[j], l.Y[j])
			}
			fmt.Fprintf(&b, `<path class="line" d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", path.String(), l.Color)
			ly := top + 12 + float64(i)*16
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
				left+pw+10, left+pw+28, ly-4, ly-4, l.Color, left+pw+32, ly, e(l.Name))
		}
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`, left+pw/2, H-8, e(xlabel))
	fmt.Fprintf(&b, `<text x="12" y="%.1f" text-anchor="middle" fill="#333" transform="rotate(-90 12 %.1f)">%s</text>`+"\n", top+ph/2, top+ph/2, e(ylabel))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
