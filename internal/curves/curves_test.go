package curves

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestCSVRoundTripAndSVG(t *testing.T) {
	var l Log
	l.Add(1, map[string]float64{"loss": 3.5})
	l.Add(2, map[string]float64{"loss": 3.0, "heldout_ppl": 20})
	l.Add(3, map[string]float64{"loss": 2.5})
	base := filepath.Join(t.TempDir(), "train")
	if err := l.Save(base, "MLM"); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(base + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Points) != 3 || got.Points[1].Values["heldout_ppl"] != 20 || got.Points[2].Values["loss"] != 2.5 {
		t.Fatalf("round trip: %+v", got.Points)
	}
	if _, ok := got.Points[0].Values["heldout_ppl"]; ok {
		t.Error("missing value read back as present")
	}
	got.Truncate(2)
	if len(got.Points) != 2 {
		t.Errorf("Truncate(2) kept %d points", len(got.Points))
	}
	var sb strings.Builder
	if err := l.SVG(&sb, "MLM"); err != nil {
		t.Fatal(err)
	}
	svg := sb.String()
	if strings.Count(svg, `class="panel"`) != 2 || !strings.Contains(svg, "M") || !strings.Contains(svg, "heldout_ppl") {
		t.Errorf("SVG lacks panels or paths:\n%s", svg)
	}
}

// TestLines checks a Lines chart has one path per line, through every
// finite point, with each line in the legend.
func TestLines(t *testing.T) {
	var sb strings.Builder
	err := Lines(&sb, "pruning", "n", "nDCG@10", []Line{
		{Name: "top", Color: "#d62728", X: []float64{0, 10, 50}, Y: []float64{0.5, 0.4, 0.2}},
		{Name: "random", Color: "#7f7f7f", X: []float64{0, 10, 50}, Y: []float64{0.5, 0.49, math.NaN()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	svg := sb.String()
	if got := strings.Count(svg, `class="line"`); got != 2 {
		t.Errorf("%d paths, want 2", got)
	}
	if got := strings.Count(svg, "<circle"); got != 5 {
		t.Errorf("%d points, want 5 (the NaN skipped)", got)
	}
	for _, s := range []string{">top<", ">random<", "nDCG@10", "#d62728"} {
		if !strings.Contains(svg, s) {
			t.Errorf("SVG lacks %q", s)
		}
	}
}
