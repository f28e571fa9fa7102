package eval

import (
	"math"
	"testing"
)

// TestPairedTTestSleep checks the paired t test on Student's sleep data,
// the example of R's t.test documentation: t.test(extra ~ group, data =
// sleep, paired = TRUE) gives t = -4.0621, df = 9, p-value = 0.002833,
// 95% CI [-2.4598858, -0.7001142], mean difference -1.58.
func TestPairedTTestSleep(t *testing.T) {
	g1 := []float64{0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0}
	g2 := []float64{1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4}
	d := make([]float64, len(g1))
	for i := range d {
		d[i] = g1[i] - g2[i]
	}
	r := PairedTTest(d, 0.95)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"mean", r.Mean, -1.58, 1e-12},
		{"t", r.T, -4.0621, 5e-5},
		{"p", r.P, 0.002833, 5e-7},
		{"lo", r.Lo, -2.4598858, 5e-8},
		{"hi", r.Hi, -0.7001142, 5e-8},
	} {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s = %.8f, want %.8f", c.name, c.got, c.want)
		}
	}
	if r.DF != 9 || r.N != 10 {
		t.Errorf("df %d n %d", r.DF, r.N)
	}
}

// TestStudentTClosedForms checks p-values where the t distribution has a
// closed form: df = 1 is Cauchy, P(|T| > t) = 1 − 2·atan(t)/π; df = 2 has
// P(|T| > t) = 1 − t/√(t²+2). Differences are built to give the wanted t.
func TestStudentTClosedForms(t *testing.T) {
	for _, tv := range []float64{0.3, 1, 2.5, 7} {
		// Two pairs: d = (a+b, a−b) → mean a, sd b·√2, se b, t = a/b.
		r := PairedTTest([]float64{tv + 1, tv - 1}, 0.95)
		want := 1 - 2*math.Atan(tv)/math.Pi
		if math.Abs(r.T-tv) > 1e-12 || math.Abs(r.P-want) > 1e-10 {
			t.Errorf("df=1 t=%v: got t=%v p=%v, want p=%v", tv, r.T, r.P, want)
		}
		// Three pairs: d = (a−b, a, a+b) → sd b, se b/√3, t = a√3/b.
		b := math.Sqrt(3) / tv * 1.0
		r = PairedTTest([]float64{1 - b, 1, 1 + b}, 0.95)
		want = 1 - tv/math.Sqrt(tv*tv+2)
		if math.Abs(r.T-tv) > 1e-9 || math.Abs(r.P-want) > 1e-10 {
			t.Errorf("df=2 t=%v: got t=%v p=%v, want p=%v", tv, r.T, r.P, want)
		}
	}
	// 97.5% quantiles from printed t tables, through the interval width:
	// with sd = √n the standard error is 1, so hi − mean is the quantile.
	for df, q := range map[int]float64{1: 12.706, 4: 2.776, 9: 2.262, 29: 2.045} {
		n := df + 1
		d := make([]float64, n)
		for i := range d { // mean 0, sample sd √n
			d[i] = float64(i) - float64(n-1)/2
		}
		sd := PairedTTest(d, 0.95).SD
		for i := range d {
			d[i] *= math.Sqrt(float64(n)) / sd
		}
		r := PairedTTest(d, 0.95)
		if math.Abs(r.Hi-q) > 5e-4 || math.Abs(r.Lo+q) > 5e-4 {
			t.Errorf("df=%d: interval [%v, %v], want ±%v", df, r.Lo, r.Hi, q)
		}
	}
}

func TestPairedTTestDegenerate(t *testing.T) {
	if r := PairedTTest([]float64{0, 0, 0}, 0.95); r.P != 1 || r.Lo != 0 || r.Hi != 0 {
		t.Errorf("identical runs: %+v", r)
	}
	if r := PairedTTest([]float64{0.1, 0.1, 0.1}, 0.95); r.P != 0 || !math.IsInf(r.T, 1) || math.Abs(r.Lo-0.1) > 1e-15 {
		t.Errorf("constant difference: %+v", r)
	}
	if r := PairedTTest([]float64{0.3}, 0.95); !math.IsNaN(r.P) || r.Mean != 0.3 {
		t.Errorf("one pair: %+v", r)
	}
	if r := PairedTTest(nil, 0.95); !math.IsNaN(r.P) || !math.IsNaN(r.Mean) {
		t.Errorf("no pairs: %+v", r)
	}
}

// TestHolm checks a hand-worked example: p = (0.01, 0.04, 0.03, 0.005).
// Sorted: 0.005·4 = 0.02; 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 = 0.04,
// raised to the running maximum 0.06. NaN is left out of the family.
func TestHolm(t *testing.T) {
	got := Holm([]float64{0.01, 0.04, math.NaN(), 0.03, 0.005})
	want := []float64{0.03, 0.06, math.NaN(), 0.06, 0.02}
	for i := range want {
		if math.IsNaN(want[i]) != math.IsNaN(got[i]) || (!math.IsNaN(want[i]) && math.Abs(got[i]-want[i]) > 1e-15) {
			t.Errorf("Holm = %v, want %v", got, want)
			break
		}
	}
	if got := Holm([]float64{0.5, 0.6}); got[0] != 1 || got[1] != 1 {
		t.Errorf("capped at 1: %v", got)
	}
}
