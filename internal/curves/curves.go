// Package curves records training curves — one row of named values per
// step — and writes them as CSV and as a self-contained SVG line chart, one
// panel per series, next to a checkpoint.
package curves

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Point is the values logged at one step. A series may be missing at a
// step (e.g. held-out loss logged every N steps).
type Point struct {
	Step   int
	Values map[string]float64
}

// Log is a training curve.
type Log struct {
	Points []Point
}

// Add appends the values of step.
func (l *Log) Add(step int, values map[string]float64) {
	l.Points = append(l.Points, Point{Step: step, Values: values})
}

// Series lists the series names, sorted.
func (l *Log) Series() []string {
	seen := map[string]bool{}
	for _, p := range l.Points {
		for k := range p.Values {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// WriteCSV writes "step,<series>..." with empty cells where a series was
// not logged.
func (l *Log) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	series := l.Series()
	if err := cw.Write(append([]string{"step"}, series...)); err != nil {
		return err
	}
	for _, p := range l.Points {
		row := []string{strconv.Itoa(p.Step)}
		for _, s := range series {
			if v, ok := p.Values[s]; ok {
				row = append(row, strconv.FormatFloat(v, 'g', 8, 64))
			} else {
				row = append(row, "")
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadCSV reads what WriteCSV wrote (used to continue a curve on resume).
func ReadCSV(path string) (*Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read curve %s: %w", path, err)
	}
	l := &Log{}
	if len(rows) == 0 {
		return l, nil
	}
	head := rows[0]
	for i, r := range rows[1:] {
		step, err := strconv.Atoi(r[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad step %q", path, i+2, r[0])
		}
		vals := map[string]float64{}
		for j := 1; j < len(r) && j < len(head); j++ {
			if r[j] == "" {
				continue
			}
			v, err := strconv.ParseFloat(r[j], 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad value %q for %s", path, i+2, r[j], head[j])
			}
			vals[head[j]] = v
		}
		l.Add(step, vals)
	}
	return l, nil
}

// Truncate drops the points after step (a resumed run rewrites them).
func (l *Log) Truncate(step int) {
	n := 0
	for _, p := range l.Points {
		if p.Step <= step {
			l.Points[n] = p
			n++
		}
	}
	l.Points = l.Points[:n]
}

// SVG writes a chart with one panel per series (steps on x).
func (l *Log) SVG(w io.Writer, title string) error {
	series := l.Series()
	const pw, ph, pad = 420.0, 180.0, 46.0
	cols := 2
	rows := (len(series) + cols - 1) / cols
	if rows == 0 {
		rows = 1
	}
	W, H := cols*int(pw+pad), rows*int(ph+pad)+30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="18" font-size="14">%s</text>`+"\n", html.EscapeString(title))
	for i, s := range series {
		x0 := float64(i%cols)*(pw+pad) + pad
		y0 := float64(i/cols)*(ph+pad) + 30 + 10
		var xs, ys []float64
		for _, p := range l.Points {
			if v, ok := p.Values[s]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				xs = append(xs, float64(p.Step))
				ys = append(ys, v)
			}
		}
		fmt.Fprintf(&b, `<g class="panel"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`, x0, y0, pw-pad/2, ph-pad/2)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`, x0+4, y0-3, html.EscapeString(s))
		if len(xs) > 0 {
			xmin, xmax, ymin, ymax := extent(xs, ys)
			pwi, phi := pw-pad/2, ph-pad/2
			var path strings.Builder
			for j := range xs {
				px := x0 + (xs[j]-xmin)/(xmax-xmin)*pwi
				py := y0 + phi - (ys[j]-ymin)/(ymax-ymin)*phi
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f,%.1f", cmd, px, py)
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`, path.String())
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">%.4g</text><text x="%.1f" y="%.1f" fill="#555">%.4g</text>`,
				x0+pwi+2, y0+8, ymax, x0+pwi+2, y0+phi, ymin)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">%g</text><text x="%.1f" y="%.1f" fill="#555" text-anchor="end">step %g</text>`,
				x0, y0+phi+13, xmin, x0+pwi, y0+phi+13, xmax)
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Save writes base+".csv" and base+".svg" atomically.
func (l *Log) Save(base, title string) error {
	if err := atomicfile.Write(base+".csv", 0o644, l.WriteCSV); err != nil {
		return err
	}
	return atomicfile.Write(base+".svg", 0o644, func(w io.Writer) error { return l.SVG(w, title) })
}

// Dir is a convenience: the curve files of a checkpoint directory.
func Dir(ckpt string) string { return filepath.Join(ckpt, "curves") }

// extent is the plotted range of points (xs, ys), both non-empty: their
// minima and maxima, widened to one unit in x and in y when all points
// share a value, so that scaling never divides by zero.
func extent(xs, ys []float64) (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = slices.Min(xs), slices.Max(xs)
	ymin, ymax = slices.Min(ys), slices.Max(ys)
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax == ymin {
		ymax, ymin = ymax+0.5, ymin-0.5
	}
	return xmin, xmax, ymin, ymax
}
