package curves

import (
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
