package neurons

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPiecewiseGrid checks the layout's contract for a range of budgets m
// and batch sizes P: points ascending from 0 to 1, panels of at most
// panelDegree intervals covering them in order, batches of whole panels
// of at most max(P, 2) points sharing their end points, at most m
// evaluations, all m points when P ≥ m, and no room for one more point.
func TestPiecewiseGrid(t *testing.T) {
	for _, m := range []int{2, 3, 4, 5, 6, 9, 16, 63, 64, 65, 100, 257} {
		for _, P := range []int{1, 2, 5, 6, 9, 13, 64, 1000} {
			alpha, panels, batches := piecewiseGrid(m, P)
			n := len(alpha)
			if alpha[0] != 0 || alpha[n-1] != 1 {
				t.Fatalf("m=%d P=%d: ends %v %v", m, P, alpha[0], alpha[n-1])
			}
			for i := 1; i < n; i++ {
				if !(alpha[i] > alpha[i-1]) {
					t.Fatalf("m=%d P=%d: points %d, %d not ascending: %v %v", m, P, i-1, i, alpha[i-1], alpha[i])
				}
			}
			next := 0
			for _, pn := range panels {
				if pn.lo != next || pn.deg < 1 || pn.deg > panelDegree {
					t.Fatalf("m=%d P=%d: panel %+v after point %d", m, P, pn, next)
				}
				next = pn.lo + pn.deg
			}
			if next != n-1 {
				t.Fatalf("m=%d P=%d: panels end at %d of %d points", m, P, next, n)
			}
			ends := map[int]bool{0: true}
			for _, pn := range panels {
				ends[pn.lo+pn.deg] = true
			}
			evals, prev := 0, 0
			for _, b := range batches {
				if b[0] != prev || !ends[b[1]] || b[1] <= b[0] {
					t.Fatalf("m=%d P=%d: batch %v after point %d", m, P, b, prev)
				}
				if b[1]-b[0]+1 > max(P, 2) {
					t.Errorf("m=%d P=%d: batch %v holds more than P points", m, P, b)
				}
				evals += b[1] - b[0] + 1
				prev = b[1]
			}
			if prev != n-1 || evals > m {
				t.Errorf("m=%d P=%d: batches end at %d of %d points, %d evaluations", m, P, prev, n, evals)
			}
			if P >= m && (n != m || len(batches) != 1) {
				t.Errorf("m=%d P=%d: %d points in %d batches, want %d in one", m, P, n, len(batches), m)
			}
			if more, _, mb := piecewiseGrid(m+1, P); len(more) > n && evals+(len(more)-n)+(len(mb)-len(batches)) <= m {
				t.Errorf("m=%d P=%d: %d points, but %d fit", m, P, n, len(more))
			}
		}
	}
}

// TestEnvelope checks envelope against brute force: on random lines, every
// piece's line is the largest and positive inside it, and the pieces'
// total length is the measure of {max_t z_t > 0}.
func TestEnvelope(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		T := 1 + rng.IntN(12)
		zl, zr := make([]float64, T), make([]float64, T)
		for i := range zl {
			zl[i], zr[i] = 2*rng.Float64()-0.7, 2*rng.Float64()-0.7
		}
		if trial%10 == 0 { // ties at the left end
			zl[T-1] = zl[0]
		}
		var covered, last float64
		envelope(zl, zr, func(tt int, a, b, v1, v2 float64) {
			if v1 < last-1e-12 || v2 <= v1 || v1 < 0 || v2 > 1 {
				t.Fatalf("trial %d: piece [%v, %v] after %v", trial, v1, v2, last)
			}
			last = v2
			covered += v2 - v1
			if a != zl[tt] || b != zr[tt]-zl[tt] {
				t.Fatalf("trial %d: piece of line %d with a=%v b=%v", trial, tt, a, b)
			}
			for _, x := range []float64{0.01, 0.5, 0.99} {
				v := v1 + (v2-v1)*x
				zt := a + b*v
				for i := range zl {
					if zi := zl[i] + (zr[i]-zl[i])*v; zi > zt+1e-9 {
						t.Fatalf("trial %d: at v=%v line %d (%v) above the piece's line %d (%v)", trial, v, i, zi, tt, zt)
					}
				}
				if zt < -1e-9 {
					t.Fatalf("trial %d: piece's line negative (%v) at v=%v", trial, zt, v)
				}
			}
		})
		const N = 20000
		var pos float64
		for k := range N {
			v, best := (float64(k)+0.5)/N, math.Inf(-1)
			for i := range zl {
				best = max(best, zl[i]+(zr[i]-zl[i])*v)
			}
			if best > 0 {
				pos += 1.0 / N
			}
		}
		if math.Abs(pos-covered) > 2.0/N {
			t.Errorf("trial %d: pieces cover %v, positive max on %v", trial, covered, pos)
		}
	}
}

// synthLogits is a synthetic path: z_ts(α) = A + B·α + C·sin(W·α + P) for
// T positions and S terms, with weights q, an integrand with dozens of
// argmax switches and zero crossings whose exact integral is known:
// Σ_s q_s·(φ(max_t z_ts(1)) − φ(max_t z_ts(0))).
type synthLogits struct {
	T, S          int
	A, B, C, W, P []float64 // (T·S)
	q             []float64 // (S)
}

func newSynthLogits(seed uint64, T, S int) *synthLogits {
	rng := rand.New(rand.NewPCG(seed, 5))
	s := &synthLogits{T: T, S: S}
	for range T * S {
		s.A = append(s.A, 2*rng.Float64()-0.8)
		s.B = append(s.B, 3*rng.Float64()-1.5)
		s.C = append(s.C, rng.Float64())
		s.W = append(s.W, 3+12*rng.Float64())
		s.P = append(s.P, 2*math.Pi*rng.Float64())
	}
	for range S {
		s.q = append(s.q, 0.5+rng.Float64())
	}
	return s
}

func (s *synthLogits) z(i int, a float64) float64 {
	return s.A[i] + s.B[i]*a + s.C[i]*math.Sin(s.W[i]*a+s.P[i])
}

func (s *synthLogits) zdot(i int, a float64) float64 {
	return s.B[i] + s.C[i]*s.W[i]*math.Cos(s.W[i]*a+s.P[i])
}

// f returns f(α) and g(α) = df/dα.
func (s *synthLogits) f(a float64) (f, g float64) {
	for v := range s.S {
		best := 0
		for t := range s.T {
			if s.z(t*s.S+v, a) > s.z(best*s.S+v, a) {
				best = t
			}
		}
		if z := s.z(best*s.S+v, a); z > 0 {
			f += s.q[v] * math.Log1p(z)
			g += s.q[v] / (1 + z) * s.zdot(best*s.S+v, a)
		}
	}
	return f, g
}

// TestPiecewiseSynthetic checks the Piecewise rule's integral on synthetic
// logits with many kinks: Σ_j Σ_ts D_j[t,s]·ż_ts(α_j), the sum of the
// attributions it would give, against the exact f(1) − f(0), at 64
// evaluations in one batch and in batches of 10 points. The midpoint and
// adaptive rules, sampling g, must do worse on the same paths (they
// exceed 2% on some).
func TestPiecewiseSynthetic(t *testing.T) {
	var worstMid, worstAd float64
	for seed := uint64(1); seed <= 10; seed++ {
		sy := newSynthLogits(seed, 8, 6)
		f0, _ := sy.f(0)
		f1, _ := sy.f(1)
		exact := f1 - f0
		kinks, prev := 0, ""
		for k := range 4097 {
			a := float64(k) / 4096
			key := ""
			for v := range sy.S {
				best := 0
				for tt := range sy.T {
					if sy.z(tt*sy.S+v, a) > sy.z(best*sy.S+v, a) {
						best = tt
					}
				}
				key += string(rune('a' + best))
				if sy.z(best*sy.S+v, a) <= 0 {
					key += "-"
				}
			}
			if k > 0 && key != prev {
				kinks++
			}
			prev = key
		}
		for _, P := range []int{1000, 10} {
			alpha, panels, batches := piecewiseGrid(64, P)
			pu := newPiecewiseUpstream(panels, sy.T)
			b := make([]float64, sy.S)
			var sum float64
			for _, bt := range batches {
				lo, hi := bt[0], bt[1]
				logit := make([]float32, (hi-lo+1)*sy.T*sy.S)
				for k := range hi - lo + 1 {
					for i := range sy.T * sy.S {
						logit[k*sy.T*sy.S+i] = float32(sy.z(i, alpha[lo+k]))
					}
				}
				up := pu.upstream(alpha, lo, hi, logit, b, sy.q)
				for k := range hi - lo + 1 {
					for i := range sy.T * sy.S {
						sum += up[k*sy.T*sy.S+i] * sy.zdot(i, alpha[lo+k])
					}
				}
			}
			e := math.Abs(sum-exact) / math.Abs(exact)
			t.Logf("seed %d, P %d: %d kinks, f(1) − f(0) = %.5f, piecewise %.5f (error %.3g%%)", seed, P, kinks, exact, sum, 100*e)
			if e > 0.002 {
				t.Errorf("seed %d, P %d: piecewise error %.3g%% > 0.2%%", seed, P, 100*e)
			}
		}
		am, wm, _ := Midpoint.Nodes(64)
		var qm float64
		for i, a := range am {
			_, g := sy.f(a)
			qm += wm[i] * g
		}
		alpha, w, err := adaptiveTrapezoid(64, func(al []float64) (f, g []float64, err error) {
			for _, a := range al {
				fa, ga := sy.f(a)
				f, g = append(f, fa), append(g, ga)
			}
			return f, g, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var qa float64
		for i, a := range alpha {
			_, g := sy.f(a)
			qa += w[i] * g
		}
		em, ea := math.Abs(qm-exact)/math.Abs(exact), math.Abs(qa-exact)/math.Abs(exact)
		worstMid, worstAd = max(worstMid, em), max(worstAd, ea)
		t.Logf("seed %d: midpoint error %.3g%%, adaptive %.3g%%", seed, 100*em, 100*ea)
	}
	if worstMid <= 0.02 || worstAd <= 0.02 {
		t.Errorf("midpoint (worst %.3g%%) or adaptive (worst %.3g%%) within 2%% on every path: the paths no longer test the piecewise rule", 100*worstMid, 100*worstAd)
	}
}
