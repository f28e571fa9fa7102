package eval

import (
	"math"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestFuse checks both fusion methods on a hand-worked example.
func TestFuse(t *testing.T) {
	a := corpora.Run{"q": {{DocID: "d1", Score: 3}, {DocID: "d2", Score: 2}, {DocID: "d3", Score: 1}}}
	b := corpora.Run{"q": {{DocID: "d3", Score: 10}, {DocID: "d1", Score: 5}}, "r": {{DocID: "x", Score: 1}}}
	// RRF, k = 0: d1 = 1/1 + 1/2 = 1.5, d3 = 1/3 + 1/1 = 1.333, d2 = 1/2.
	got, err := Fuse([]corpora.Run{a, b}, FuseOptions{Method: FuseRRF, RRFK: 0, Depth: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []corpora.Hit{{DocID: "d1", Score: 1.5, Rank: 1}, {DocID: "d3", Score: 4.0 / 3, Rank: 2}, {DocID: "d2", Score: 0.5, Rank: 3}}
	if !hitsClose(got["q"], want) || len(got["r"]) != 1 {
		t.Errorf("rrf: %v, want %v", got, want)
	}
	// Interpolation, weights 1 and 0.5: a normalised d1 1, d2 0.5, d3 0;
	// b normalised d3 1, d1 0 → d1 1, d2 0.5, d3 0.5 (tie: docno ascending).
	got, err = Fuse([]corpora.Run{a, b}, FuseOptions{Method: FuseInterp, Weights: []float64{1, 0.5}, RRFK: 60, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	want = []corpora.Hit{{DocID: "d1", Score: 1, Rank: 1}, {DocID: "d2", Score: 0.5, Rank: 2}}
	if !hitsClose(got["q"], want) {
		t.Errorf("interp: %v, want %v", got["q"], want)
	}
	for _, c := range []struct {
		o    FuseOptions
		want string
	}{
		{FuseOptions{Method: "max", Depth: 10}, "method"},
		{FuseOptions{Method: FuseRRF, Depth: 0}, "depth"},
		{FuseOptions{Method: FuseRRF, Depth: 1, Weights: []float64{1}}, "1 weights for 2 runs"},
		{FuseOptions{Method: FuseRRF, Depth: 1, Weights: []float64{1, math.NaN()}}, "weight NaN"},
		{FuseOptions{Method: FuseRRF, Depth: 1, Weights: []float64{0, 1}}, "weight 0"},
	} {
		if _, err := Fuse([]corpora.Run{a, b}, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Fuse(%+v): err = %v, want one naming %q", c.o, err, c.want)
		}
	}
	nan := corpora.Run{"q": {{DocID: "d", Score: math.NaN()}}}
	if _, err := Fuse([]corpora.Run{a, nan}, FuseOptions{Method: FuseRRF, Depth: 1}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN score: err = %v", err)
	}
}

func hitsClose(a, b []corpora.Hit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].DocID != b[i].DocID || a[i].Rank != b[i].Rank || math.Abs(a[i].Score-b[i].Score) > 1e-12 {
			return false
		}
	}
	return true
}
