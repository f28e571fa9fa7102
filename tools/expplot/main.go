// Command expplot draws the learning curves of several training runs in
// one self-contained SVG, one panel per (series, x axis), one line per run,
// for docs/experiments.md:
//
//	go run ./tools/expplot -out docs/experiments/splade-lexical.svg \
//	    -series "dev nDCG@10,loss,dev squad-v1.1-dev/dev nnz_d" -x step,seconds \
//	    idf=/work/runs/splade-idf/curves.csv two-sided=/work/runs/splade-model/curves.csv
//
// Each argument is LABEL=PATH to a curves.csv written by a training run
// (pretrain or train splade). Points where a run did not log a series are
// skipped; "seconds" is the run's wall-clock time.
package main

import (
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"strings"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/curves"
)

type run struct {
	label string
	log   *curves.Log
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

func main() {
	out := flag.String("out", "", "SVG file to write")
	series := flag.String("series", "dev nDCG@10,loss", "comma-separated series to draw")
	xs := flag.String("x", "step,seconds", "comma-separated x axes: step and/or seconds")
	title := flag.String("title", "", "title of the figure")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: expplot -out FILE.svg [-series S1,S2] [-x step,seconds] LABEL=curves.csv ...")
		os.Exit(2)
	}
	var runs []run
	for _, a := range flag.Args() {
		label, path, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "expplot: %q is not LABEL=PATH\n", a)
			os.Exit(2)
		}
		l, err := curves.ReadCSV(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "expplot: %v\n", err)
			os.Exit(1)
		}
		runs = append(runs, run{label, l})
	}
	var b strings.Builder
	draw(&b, runs, strings.Split(*series, ","), strings.Split(*xs, ","), *title)
	if err := atomicfile.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "expplot: %v\n", err)
		os.Exit(1)
	}
}

const panelW, panelH, padL, padB, padT = 340, 200, 58, 36, 26

func draw(b *strings.Builder, runs []run, series, xs []string, title string) {
	cols := len(xs)
	rows := len(series)
	W := max(cols*panelW+20, 20+7*len(title))
	H := rows*panelH + 40 + 18*len(runs)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", W, H)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="16" font-size="13">%s</text>`+"\n", html.EscapeString(title))
	for r, s := range series {
		for c, x := range xs {
			panel(b, runs, s, x, 10+c*panelW, 24+r*panelH)
		}
	}
	for i, rn := range runs {
		y := 24 + rows*panelH + 14 + 18*i
		fmt.Fprintf(b, `<line x1="20" y1="%d" x2="44" y2="%d" stroke="%s" stroke-width="2"/><text x="50" y="%d">%s</text>`+"\n",
			y-4, y-4, palette[i%len(palette)], y, html.EscapeString(rn.label))
	}
	b.WriteString("</svg>\n")
}

func panel(b *strings.Builder, runs []run, series, xname string, ox, oy int) {
	type pt struct{ x, y float64 }
	lines := make([][]pt, len(runs))
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for i, rn := range runs {
		for _, p := range rn.log.Points {
			y, ok := p.Values[series]
			if !ok || math.IsNaN(y) {
				continue
			}
			x := float64(p.Step)
			if xname != "step" {
				if x, ok = p.Values[xname]; !ok {
					continue
				}
			}
			lines[i] = append(lines[i], pt{x, y})
			x0, x1, y0, y1 = math.Min(x0, x), math.Max(x1, x), math.Min(y0, y), math.Max(y1, y)
		}
	}
	pw, ph := panelW-padL-10, panelH-padB-padT
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12">%s vs %s</text>`+"\n", ox+padL, oy+14, html.EscapeString(series), xname)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", ox+padL, oy+padT, pw, ph)
	if math.IsInf(x0, 1) {
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="#999">no data</text>`+"\n", ox+padL+10, oy+padT+20)
		return
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y1 = y0 + 1
	}
	X := func(x float64) float64 { return float64(ox+padL) + (x-x0)/(x1-x0)*float64(pw) }
	Y := func(y float64) float64 { return float64(oy+padT+ph) - (y-y0)/(y1-y0)*float64(ph) }
	for k := 0; k <= 4; k++ {
		yv := y0 + (y1-y0)*float64(k)/4
		xv := x0 + (x1-x0)*float64(k)/4
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", ox+padL-4, Y(yv)+4, num(yv))
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", X(xv), oy+padT+ph+14, num(xv))
	}
	for i, l := range lines {
		if len(l) == 0 {
			continue
		}
		var d strings.Builder
		for k, p := range l {
			cmd := "L"
			if k == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f,%.1f ", cmd, X(p.x), Y(p.y))
		}
		col := palette[i%len(palette)]
		fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", d.String(), col)
		if len(l) <= 40 {
			for _, p := range l {
				fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>`+"\n", X(p.x), Y(p.y), col)
			}
		}
	}
}

func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.1e", v)
}
