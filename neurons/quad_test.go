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
	if r, err := ParseRule(""); r != Piecewise || err != nil {
		t.Errorf("ParseRule(\"\") = %q, %v; want piecewise", r, err)
	}
	for _, r := range []Rule{Adaptive, Piecewise} {
		if _, _, err := r.Nodes(8); err == nil {
			t.Errorf("%s.Nodes: no error", r)
		}
	}
	if _, err := ParseRule("simpson"); err == nil {
		t.Error("ParseRule(simpson): no error")
	}
}

// bump is a test integrand shaped like the worst med pair's (query 10,
// doc 154, docs/neurons.md): f falls slowly, a query term's ReLU switches
// on at c1 and off again at c2 (g jumps there), so f rises and falls back
// by 0.18, and f(1) − f(0) ≈ −0.06 is small against ∫|g| ≈ 0.42; plus a
// smooth wiggle.
type bump struct{ c1, c2 float64 }

func (k bump) f(a float64) float64 {
	return -0.07*a + 0.01*math.Sin(7*a) + 6*max(0, (a-k.c1)*(k.c2-a))
}

func (k bump) g(a float64) float64 {
	v := -0.07 + 0.07*math.Cos(7*a)
	if a > k.c1 && a < k.c2 {
		v += 6 * (k.c1 + k.c2 - 2*a)
	}
	return v
}

// TestAdaptiveTrapezoid checks the adaptive rule's contract (exactly m
// evaluations, distinct points in [0,1] with both ends, weights summing to
// 1, exact for linear g) and that on an integrand with jumps it meets the
// 2% completeness criterion at m = 64 where the midpoint rule does not.
func TestAdaptiveTrapezoid(t *testing.T) {
	for _, m := range []int{2, 3, 9, 64, 100} {
		calls := 0
		alpha, w, err := adaptiveTrapezoid(m, func(al []float64) (f, g []float64, err error) {
			calls += len(al)
			for _, a := range al {
				f, g = append(f, 3*a*a-a), append(g, 6*a-1)
			}
			return f, g, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var sw, q float64
		seen := map[float64]bool{}
		for k, a := range alpha {
			sw += w[k]
			q += w[k] * (6*a - 1)
			if a < 0 || a > 1 || seen[a] {
				t.Errorf("m=%d: point %v outside [0,1] or repeated", m, a)
			}
			seen[a] = true
		}
		if calls != m || len(alpha) != m || !seen[0] || !seen[1] {
			t.Errorf("m=%d: %d evaluations, %d points, ends %v %v", m, calls, len(alpha), seen[0], seen[1])
		}
		if math.Abs(sw-1) > 1e-12 || math.Abs(q-2) > 1e-12 {
			t.Errorf("m=%d: Σw = %v, ∫(6α−1) = %v, want 1 and 2", m, sw, q)
		}
	}
	if _, _, err := adaptiveTrapezoid(1, nil); err == nil {
		t.Error("adaptiveTrapezoid(1): no error")
	}
	k := bump{c1: 0.5431, c2: 0.8857}
	exact := k.f(1) - k.f(0)
	alpha, w, err := adaptiveTrapezoid(64, func(al []float64) (f, g []float64, err error) {
		for _, a := range al {
			f, g = append(f, k.f(a)), append(g, k.g(a))
		}
		return f, g, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var qa, qm float64
	for i, a := range alpha {
		qa += w[i] * k.g(a)
	}
	am, wm, _ := Midpoint.Nodes(64)
	for i, a := range am {
		qm += wm[i] * k.g(a)
	}
	ea, em := math.Abs(qa-exact)/math.Abs(exact), math.Abs(qm-exact)/math.Abs(exact)
	t.Logf("f(1) − f(0) = %.5f: adaptive %.5f (error %.3g%%), midpoint %.5f (error %.3g%%)", exact, qa, 100*ea, qm, 100*em)
	if ea > 0.02 {
		t.Errorf("adaptive rule: error %.3g%% > 2%%", 100*ea)
	}
	if em <= 0.02 {
		t.Errorf("midpoint rule: error %.3g%% ≤ 2%%: the integrand no longer tests the adaptive rule", 100*em)
	}
}
