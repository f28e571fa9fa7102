package nn

import "math"

// Test-only reference SPLADE losses (package splade has the production ones),
// used to build the oracle's weighted total for gradient parity. Each
// returns the loss (accumulated in float64) and, when the gradient slices
// are non-nil, adds scale·∂loss/∂input into them, so that weighted terms
// sum into one gradient. Definitions follow the oracle in
// ../shared/tools/oracle (README §4.4).

// refInfoNCE is the contrastive loss with in-batch negatives of SPLADE
// training (van den Oord et al., arXiv:1807.03748; Formal et al. SPLADE v2,
// arXiv:2109.10086), temperature 1:
// s[i,k] = q_i·d_k for the B queries q (B,V) and ND documents d (ND,V);
// L = (1/B) Σ_i [logsumexp_k s[i,k] − s[i,i]], query i's positive being
// d_i (typically d = [pos_0..pos_{B−1}, neg_0..neg_{B−1}], ND = 2B).
// scores (B,ND) receives s when non-nil. Cost: 2·B·ND·V flops (one Sgemm).
func refInfoNCE(q, d []float32, B, ND, V int, scale float32, dq, dd, scores []float32) float64 {
	s := scores
	if s == nil {
		s = make([]float32, B*ND)
	}
	Sgemm(false, true, B, ND, V, 1, q, V, d, V, 0, s, ND)
	var loss float64
	ds := make([]float32, B*ND) // (B,ND) ∂L/∂s
	for i := range B {
		row := s[i*ND : (i+1)*ND]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v - mx))
		}
		loss += math.Log(z) + float64(mx) - float64(row[i])
		for k, v := range row {
			ds[i*ND+k] = float32(math.Exp(float64(v-mx))/z) * scale / float32(B)
		}
		ds[i*ND+i] -= scale / float32(B)
	}
	if dq != nil {
		Sgemm(false, false, B, V, ND, 1, ds, ND, d, V, 1, dq, V)
	}
	if dd != nil {
		Sgemm(true, false, ND, V, B, 1, ds, ND, q, V, 1, dd, V)
	}
	return loss / float64(B)
}

// refMarginMSE is the distillation loss of Hofstätter et al. (arXiv:2010.02666):
// m_i = q_i·pos_i − q_i·neg_i, L = (1/B) Σ_i (m_i − teacher_i)². margins
// (B) receives m when non-nil. Cost: 4·B·V flops.
func refMarginMSE(q, pos, neg []float32, teacher []float32, B, V int, scale float32, dq, dpos, dneg, margins []float32) float64 {
	var loss float64
	for i := range B {
		qi, pi, ni := q[i*V:(i+1)*V], pos[i*V:(i+1)*V], neg[i*V:(i+1)*V]
		var m float64
		for j := range V {
			m += float64(qi[j]) * float64(pi[j]-ni[j])
		}
		if margins != nil {
			margins[i] = float32(m)
		}
		e := m - float64(teacher[i])
		loss += e * e
		g := float32(2*e/float64(B)) * scale
		for j := range V {
			if dq != nil {
				dq[i*V+j] += g * (pi[j] - ni[j])
			}
			if dpos != nil {
				dpos[i*V+j] += g * qi[j]
			}
			if dneg != nil {
				dneg[i*V+j] -= g * qi[j]
			}
		}
	}
	return loss / float64(B)
}

// refFLOPS is the regulariser of Paria et al. (arXiv:2004.05665) on N rows
// w (N,V): Σ_j ((1/N) Σ_i |w_ij|)². Its gradient is 2·mean_j·sign(w_ij)/N
// (0 at w_ij = 0, as torch's). Cost: O(N·V).
func refFLOPS(w []float32, N, V int, scale float32, dw []float32) float64 {
	mean := make([]float64, V)
	for i := range N {
		for j, v := range w[i*V : (i+1)*V] {
			mean[j] += math.Abs(float64(v))
		}
	}
	var loss float64
	for j := range mean {
		mean[j] /= float64(N)
		loss += mean[j] * mean[j]
	}
	if dw != nil {
		for i := range N {
			for j, v := range w[i*V : (i+1)*V] {
				dw[i*V+j] += float32(2*mean[j]/float64(N)) * sign32(v) * scale
			}
		}
	}
	return loss
}

// refL1 is the mean over N rows of the L1 norm of w (N,V):
// (1/N) Σ_i Σ_j |w_ij|, gradient sign(w_ij)/N. Cost: O(N·V).
func refL1(w []float32, N, V int, scale float32, dw []float32) float64 {
	var loss float64
	for i, v := range w[:N*V] {
		loss += math.Abs(float64(v))
		if dw != nil {
			dw[i] += sign32(v) * scale / float32(N)
		}
	}
	return loss / float64(N)
}

func sign32(v float32) float32 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
