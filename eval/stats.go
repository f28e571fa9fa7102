package eval

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// PairedT is a paired two-sided Student t test of the per-query
// differences d_i = x_i − y_i, with a confidence interval for their mean.
type PairedT struct {
	N      int     // number of pairs
	Mean   float64 // mean difference
	SD     float64 // sample standard deviation of the differences (n−1)
	T      float64 // t statistic Mean / (SD/√N); ±Inf when SD = 0 and Mean ≠ 0
	DF     int     // degrees of freedom, N−1
	P      float64 // two-sided p-value; NaN when N < 2
	Lo, Hi float64 // confidence interval for Mean; NaN when N < 2
}

// PairedTTest tests whether the mean of the paired differences d is zero:
// t = mean(d)/(sd(d)/√n) with n−1 degrees of freedom, p = 2·P(T > |t|),
// and the two-sided confidence interval mean ± t_{(1+level)/2, n−1}·sd/√n
// (level 0.95 for a 95% interval). With fewer than two pairs P, Lo and Hi
// are NaN. When every difference is equal (sd = 0) the interval is that
// single value and P is 1 when it is 0, else 0.
func PairedTTest(d []float64, level float64) PairedT {
	r := PairedT{N: len(d), DF: len(d) - 1, P: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	if r.N == 0 {
		r.Mean = math.NaN()
		return r
	}
	sum := 0.0
	for _, v := range d {
		sum += v
	}
	r.Mean = sum / float64(r.N)
	if r.N < 2 {
		return r
	}
	ss := 0.0
	for _, v := range d {
		ss += (v - r.Mean) * (v - r.Mean)
	}
	r.SD = math.Sqrt(ss / float64(r.N-1))
	se := r.SD / math.Sqrt(float64(r.N))
	// Differences of means of values printed to 1e-15 are noise: treat a
	// spread that small as none, so identical runs give p = 1 exactly.
	if se <= 1e-12*max(1, math.Abs(r.Mean)) {
		r.SD, r.Lo, r.Hi = 0, r.Mean, r.Mean
		if math.Abs(r.Mean) <= 1e-12 {
			r.T, r.P = 0, 1
		} else {
			r.T, r.P = math.Copysign(math.Inf(1), r.Mean), 0
		}
		return r
	}
	r.T = r.Mean / se
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(r.DF)}
	r.P = min(1, 2*dist.Survival(math.Abs(r.T)))
	q := dist.Quantile((1 + level) / 2)
	r.Lo, r.Hi = r.Mean-q*se, r.Mean+q*se
	return r
}

// Holm returns Holm–Bonferroni adjusted p-values (Holm 1979, "A simple
// sequentially rejective multiple test procedure"): with the m defined
// p-values sorted ascending p_(1) ≤ … ≤ p_(m),
// adj_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)), returned in the input
// order. NaN inputs stay NaN and do not count in m.
func Holm(p []float64) []float64 {
	out := make([]float64, len(p))
	var idx []int
	for i, v := range p {
		out[i] = math.NaN()
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	m := len(idx)
	running := 0.0
	for j, i := range idx {
		running = max(running, min(1, float64(m-j)*p[i]))
		out[i] = running
	}
	return out
}
