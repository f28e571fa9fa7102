package neurons

import (
	"fmt"
	"math"

	"github.com/spladapt/spladapt/nn"
)

// The Piecewise rule integrates the SPLADE score's gradient across its
// kinks instead of sampling it. Write the score on the path as
//
//	f(α) = Σ_v q_v · max_t φ(z_tv(α)),   φ(z) = log1p(relu(z)),
//
// over the terms v of the fixed side's vector q (q_v ≠ 0), with z_tv the
// logit of term v at position t (bias included). Each z_tv(α) is smooth
// along the path; f has a kink wherever the argmax over t switches or the
// winning logit crosses 0. By the chain rule the integrand of an
// attributed activation x is
//
//	∂f/∂x(α) = Σ_tv s_tv(α) · ∂z_tv/∂x(α),
//	s_tv(α)  = q_v / (1 + z_tv(α)) where t wins for v and z_tv > 0, else 0:
//
// a factor s that jumps times a Jacobian that is smooth. The rule cuts
// [0,1] into panels of up to panelDegree intervals, evaluates the path at
// the Gauss–Lobatto points of each panel (both ends shared with the
// neighbouring panels), and on each panel
//
//   - interpolates every z_tv by the polynomial through the panel's
//     points, taken as linear on 4 equal pieces per interval, where the
//     upper envelope over t and its zero crossing have a closed form
//     (envelope), so s is known everywhere on the panel, kinks included;
//   - integrates s against each point's Lagrange basis polynomial L_j (the
//     Jacobian interpolated by the same polynomial), by 8-point
//     Gauss–Legendre on every piece where one line wins and is positive
//     (s is smooth and bounded there: 1/(1+z) with z ≥ 0).
//
// The results are summed into an upstream gradient for each point α_j,
//
//	D_j[t,v] = ∫ L_j(α) s_tv(α) dα   (over the panels holding α_j),
//
// and back-propagated from the logits at α_j (the backward pass is linear
// in its upstream gradient), which gives
//
//	A[x] = (a − a')[x] · Σ_j Σ_tv D_j[t,v] · ∂z_tv/∂x(α_j),
//
// the integral of s (from the interpolated logits) against the
// interpolated Jacobian. There is no O(h·jump) error per kink, as there is
// for a rule that samples the integrand: a kink is only misplaced by the
// interpolation error of the logits, and the Jacobian's interpolation
// error is that of a polynomial of degree panelDegree. What is left is the
// error of interpolating where the Jacobian varies fast.
//
// The panels are equal in u and mapped to α = u^gradePower, so they are
// narrower near the baseline, where the integrand varies most: on three
// texts of the rough random test model the largest third derivative of
// the logits along the path is 1000–7000 times larger near α = 0 than
// near α = 1 (the model's output saturates towards the input along the
// path, as Miglani et al., arXiv:2010.12697, observe for image models).
//
// Batches: a point's upstream gradient needs its whole panel's logits, so a
// batch holds whole panels, and consecutive batches share their end point
// (evaluated in both, each evaluation back-propagating the part of its
// upstream gradient from its own batch's panels). With m evaluations and P
// points per batch that leaves n = m points when the path fits one batch
// (P ≥ m), else the largest n with n + ⌈(n−1)/(P−1)⌉ − 1 ≤ m (57 at
// m = 64 for a 256-token text at the default MaxRows, P = 8).
const (
	panelDegree = 4   // intervals of a panel, the degree of its polynomial
	panelCuts   = 4   // linear pieces per interval for the logits' envelope
	gradePower  = 1.5 // panel ends at α = u^gradePower, u evenly spaced
)

// panel is a panel of the Piecewise rule: points lo … lo+deg of the grid.
type panel struct{ lo, deg int }

// piecewiseGrid lays out the Piecewise rule for at most m ≥ 2 evaluations
// with at most P points per batch (at least 2). A batch spans up to
// c = max(P−1, 1) intervals, its span cut into ⌈span/panelDegree⌉ panels
// of degrees as even as possible, and shares its first point with the
// previous batch's last; n points take n + (batches − 1) evaluations, and n is the largest
// count that fits in m. It returns the points (ascending, 0 and 1
// included), the panels in order, and the batches as inclusive ranges
// [lo, hi] of points.
func piecewiseGrid(m, P int) (alpha []float64, panels []panel, batches [][2]int) {
	c := max(P-1, 1)
	n := m
	for n > 2 && n+ceilDiv(n-1, c)-1 > m {
		n--
	}
	for lo := 0; lo < n-1; lo += c {
		span := min(c, n-1-lo)
		k := ceilDiv(span, panelDegree)
		at := lo
		for i := range k {
			deg := span / k
			if i < span%k {
				deg++
			}
			panels = append(panels, panel{at, deg})
			at += deg
		}
		batches = append(batches, [2]int{lo, lo + span})
	}
	for _, pn := range panels {
		x := gaussLobatto(pn.deg + 1)
		u0, u1 := float64(pn.lo)/float64(n-1), float64(pn.lo+pn.deg)/float64(n-1)
		a0, a1 := math.Pow(u0, gradePower), math.Pow(u1, gradePower)
		for _, xj := range x[:pn.deg] {
			alpha = append(alpha, a0+(a1-a0)*xj)
		}
	}
	return append(alpha, 1), panels, batches
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// gaussLobatto returns the k ≥ 2 Gauss–Lobatto points mapped to [0,1]
// (ascending): both ends and the roots of P′_{k−1}, by Newton's method
// from the Chebyshev–Lobatto points.
func gaussLobatto(k int) []float64 {
	n := k - 1
	x := make([]float64, k)
	for j := range k {
		xj := -math.Cos(math.Pi * float64(j) / float64(n))
		if j > 0 && j < n {
			for range 100 {
				// P_n and P_{n−1} by the recurrence, then P′_n and P″_n.
				p0, p1 := 1.0, xj
				for i := 2; i <= n; i++ {
					p0, p1 = p1, ((2*float64(i)-1)*xj*p1-(float64(i)-1)*p0)/float64(i)
				}
				d1 := float64(n) * (xj*p1 - p0) / (xj*xj - 1)
				d2 := (2*xj*d1 - float64(n*(n+1))*p1) / (1 - xj*xj)
				dx := d1 / d2
				xj -= dx
				if math.Abs(dx) < 1e-15 {
					break
				}
			}
		}
		x[j] = (xj + 1) / 2
	}
	return x
}

// panelRule integrates over panels of one degree p: points x_j (p+1, the
// Gauss–Lobatto points of [0,1], the panel coordinate u), cut into n
// linear pieces.
type panelRule struct {
	p, n int
	x    []float64   // (p+1)
	sub  [][]float64 // (n+1, p+1) L_j(k/n)
}

func newPanelRule(p int) *panelRule {
	pr := &panelRule{p: p, n: panelCuts * p, x: gaussLobatto(p + 1)}
	for k := range pr.n + 1 {
		row := make([]float64, p+1)
		for j := range row {
			row[j] = pr.basis(j, float64(k)/float64(pr.n))
		}
		pr.sub = append(pr.sub, row)
	}
	return pr
}

// basis is the Lagrange polynomial L_j(u) of the points x.
func (pr *panelRule) basis(j int, u float64) float64 {
	l := 1.0
	for i, xi := range pr.x {
		if i != j {
			l *= (u - xi) / (pr.x[j] - xi)
		}
	}
	return l
}

// gl8x and gl8w are the 8-point Gauss–Legendre nodes and weights on [0,1].
var gl8x, gl8w = func() (x, w []float64) {
	x, w = gaussLegendre(8)
	for i := range x {
		x[i], w[i] = (x[i]+1)/2, w[i]/2
	}
	return x, w
}()

// integrate adds to d[j][t] (p+1, T) the integral over one panel of width
// H of L_j · q·φ′(z_t) where position t wins, for one term of weight q
// whose logits (bias included) at the panel's points are z[j][t]
// (p+1, T): the envelope of the interpolated logits on each of the n
// pieces, 8-point Gauss–Legendre on each part of it. zl and zr (T) are
// scratch. Cost: n envelopes of T lines, 8·(p+1) basis evaluations per
// envelope piece.
func (pr *panelRule) integrate(z [][]float64, q, H float64, d [][]float64, zl, zr []float64) {
	at := func(k int, out []float64) {
		clear(out)
		for j, c := range pr.sub[k] {
			for t, v := range z[j] {
				out[t] += c * v
			}
		}
	}
	du := 1 / float64(pr.n)
	at(0, zl)
	for k := range pr.n {
		at(k+1, zr)
		u0 := float64(k) * du
		envelope(zl, zr, func(t int, a, b, v1, v2 float64) {
			w := q * H * du * (v2 - v1)
			for g, x := range gl8x {
				v := v1 + (v2-v1)*x
				s := w * gl8w[g] / (1 + a + b*v)
				u := u0 + du*v
				for j := range d {
					d[j][t] += s * pr.basis(j, u)
				}
			}
		})
		zl, zr = zr, zl
	}
}

// envelope calls piece(t, a, b, v1, v2) for every part [v1, v2] of [0,1]
// on which line t, z_t(v) = a + b·v with a = zl[t] and b = zr[t] − zl[t],
// is the upper envelope of the T = len(zl) lines and positive, in
// increasing order of v. Ties go to the larger slope, then to the first
// position. Cost: O(T·k) for an envelope of k pieces (k ≤ T).
func envelope(zl, zr []float64, piece func(t int, a, b, v1, v2 float64)) {
	cur := 0
	for t := range zl {
		if zl[t] > zl[cur] || (zl[t] == zl[cur] && zr[t]-zl[t] > zr[cur]-zl[cur]) {
			cur = t
		}
	}
	for v := 0.0; v < 1; {
		a, b := zl[cur], zr[cur]-zl[cur]
		// The next line to overtake cur: the earliest crossing among the
		// steeper lines (each step raises the slope, so at most T steps).
		next, vn := -1, 1.0
		for t := range zl {
			bt := zr[t] - zl[t]
			if bt <= b {
				continue
			}
			c := max(v, (a-zl[t])/(bt-b))
			if c < vn || (c == vn && next >= 0 && bt > zr[next]-zl[next]) {
				next, vn = t, c
			}
		}
		// The part of [v, vn] where the line is positive.
		p1, p2 := v, vn
		switch {
		case b > 0:
			p1 = max(p1, -a/b)
		case b < 0:
			p2 = min(p2, -a/b)
		case a <= 0:
			p2 = p1
		}
		if p2 > p1 {
			piece(cur, a, b, p1, p2)
		}
		if next < 0 {
			break
		}
		v, cur = vn, next
	}
}

// attributePiecewise fills h.contrib (and h.perPos) with one entry per
// evaluation of the Piecewise rule, each already weighted (their sum is
// the attribution), for f = other·w(ids), with at most per points in a
// batch. Cost: at most steps forward and backward passes of the text,
// where a forward pass stops at the logits of the terms with other ≠ 0
// (S of them: 2·T·S·C flops per point instead of the full-vocabulary
// head's 2·T·V·C), plus the envelopes, O(steps·panelCuts·S·T·k) for k
// pieces per envelope. None when other is all zero (f ≡ 0).
func (a *Attributor) attributePiecewise(ids []int32, other []float32, h *pathHook, steps, per int) error {
	if steps < 2 {
		return fmt.Errorf("piecewise rule with %d steps: want ≥ 2", steps)
	}
	m := a.Model
	C := m.Config.HiddenSize
	T := len(ids)
	var supp []int
	for v, x := range other {
		if x != 0 {
			supp = append(supp, v)
		}
	}
	S := len(supp)
	if S == 0 {
		return nil
	}
	emb, bias := m.WordEmbeddings().W, m.DecoderBias().W
	es := make([]float32, S*C) // (S, C) the embeddings of the terms
	for s, v := range supp {
		copy(es[s*C:(s+1)*C], emb[v*C:(v+1)*C])
	}
	alpha, panels, batches := piecewiseGrid(steps, per)
	pu := newPiecewiseUpstream(panels, T)
	q, b := make([]float64, S), make([]float64, S)
	for s, v := range supp {
		q[s], b[s] = float64(other[v]), float64(bias[v])
	}
	evals := 0
	for _, bt := range batches {
		lo, hi := bt[0], bt[1]
		K := hi - lo + 1
		evals += K
		h.first = len(h.contrib)
		for range K {
			h.contrib = append(h.contrib, make([]float64, len(a.Layers)*h.F))
			if a.PerPosition {
				h.perPos = append(h.perPos, make([]float32, len(a.Layers)*T*h.F))
			}
		}
		h.alpha = alpha[lo : hi+1]
		hz, err := a.head(ids, K)
		if err != nil {
			return err
		}
		logit := make([]float32, K*T*S) // (K, T, S), bias not included
		nn.Sgemm(false, true, K*T, S, C, 1, hz, C, es, C, 0, logit, S)
		up := pu.upstream(alpha, lo, hi, logit, b, q)
		dlogit := make([]float32, K*T*S)
		for i, x := range up {
			dlogit[i] = float32(x)
		}
		dz := make([]float32, K*T*C) // (K, T, C)
		nn.Sgemm(false, false, K*T, C, S, 1, dlogit, S, es, C, 0, dz, C)
		a.pass.Backward(a.pass.HeadTransformBackward(dz))
	}
	if evals > steps {
		return fmt.Errorf("piecewise rule: %d evaluations for %d steps", evals, steps)
	}
	return nil
}

// piecewiseUpstream computes the Piecewise rule's upstream gradients of
// one text (T positions), batch by batch.
type piecewiseUpstream struct {
	panels []panel
	rules  map[int]*panelRule // by degree
	zl, zr []float64          // (T) scratch
	z, d   [][]float64        // (panelDegree+1, T) scratch
}

func newPiecewiseUpstream(panels []panel, T int) *piecewiseUpstream {
	pu := &piecewiseUpstream{panels: panels, rules: map[int]*panelRule{}, zl: make([]float64, T), zr: make([]float64, T)}
	for _, pn := range panels {
		if pu.rules[pn.deg] == nil {
			pu.rules[pn.deg] = newPanelRule(pn.deg)
		}
	}
	for range panelDegree + 1 {
		pu.z, pu.d = append(pu.z, make([]float64, T)), append(pu.d, make([]float64, T))
	}
	return pu
}

// upstream returns D (K, T, S) for the K = hi−lo+1 points lo … hi of
// alpha, a batch of whole panels, given their logits (K, T, S) without
// bias, the bias b (S) and the weights q (S) of the S terms: D[k,t,s] is
// the integral of L_k · q_s·φ′(z_ts) where t wins for s over the batch's
// panels holding point lo+k.
func (pu *piecewiseUpstream) upstream(alpha []float64, lo, hi int, logit []float32, b, q []float64) []float64 {
	T, S := len(pu.zl), len(q)
	up := make([]float64, (hi-lo+1)*T*S)
	for _, pn := range pu.panels {
		if pn.lo < lo || pn.lo >= hi {
			continue // another batch's panel
		}
		pr, k := pu.rules[pn.deg], pn.lo-lo
		z, d := pu.z[:pn.deg+1], pu.d[:pn.deg+1]
		for s := range S {
			for j := range z {
				for t := range T {
					z[j][t] = float64(logit[((k+j)*T+t)*S+s]) + b[s]
				}
				clear(d[j])
			}
			pr.integrate(z, q[s], alpha[pn.lo+pn.deg]-alpha[pn.lo], d, pu.zl, pu.zr)
			for j := range d {
				for t, x := range d[j] {
					up[((k+j)*T+t)*S+s] += x
				}
			}
		}
	}
	return up
}

// head runs K copies of ids through the encoder and the head transform
// (the hook decides each copy's forced activations) and returns z (K, T, C).
func (a *Attributor) head(ids []int32, K int) ([]float32, error) {
	m := a.Model
	T := len(ids)
	b := nn.Batch{B: K, T: T, InputIDs: make([]int32, K*T), Mask: ones(K * T)}
	for k := range K {
		copy(b.InputIDs[k*T:], ids)
	}
	if err := m.ValidateBatch(b); err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	return a.pass.HeadTransform(a.pass.Encode(b), K*T), nil
}
