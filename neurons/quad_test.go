package neurons

import (
	"math"
	"testing"
)

// TestNodes checks each rule's weights sum to 1 and that Gauss–Legendre
// integrates polynomials of degree 2m−1 exactly and the other rules
// converge at O(m⁻²) on a smooth function.
func TestNodes(t *testing.T) {
	for _, m := range []int{1, 2, 5, 64} {
		a, w, err := GaussLegendre.Nodes(m)
		if err != nil {
			t.Fatal(err)
		}
		var s, p float64
		for k := range a {
			s += w[k]
			p += w[k] * math.Pow(a[k], float64(2*m-1))
		}
		if math.Abs(s-1) > 1e-13 || math.Abs(p-1/float64(2*m)) > 1e-12 {
			t.Errorf("gauss m=%d: Σw = %v, ∫α^(2m−1) = %v, want 1 and %v", m, s, p, 1/float64(2*m))
		}
	}
	for _, r := range []Rule{Midpoint, Trapezoid} {
		a, w, _ := r.Nodes(64)
		var s, e float64
		for k := range a {
			s += w[k]
			e += w[k] * math.Exp(a[k])
		}
		if math.Abs(s-1) > 1e-13 || math.Abs(e-(math.E-1)) > 1e-4 {
			t.Errorf("%s: Σw = %v, ∫exp = %v, want 1 and %v", r, s, e, math.E-1)
		}
	}
	if _, err := ParseRule("simpson"); err == nil {
		t.Error("ParseRule(simpson): no error")
	}
}
