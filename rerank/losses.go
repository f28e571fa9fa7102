// Package rerank re-ranks a first-stage run with a cross-encoder (HF
// BertForSequenceClassification / DistilBertForSequenceClassification with
// one label, nn.Classifier) or with MICE, the minimal-interaction
// cross-encoder; it trains both with pointwise, MarginMSE or InfoNCE
// objectives on the training sources of package splade.
package rerank

import (
	"fmt"
	"math"
)

// Shape legend:
//
//	G     queries in a training step
//	NNeg  hard negatives per query
//	n     scored pairs = G·(1+NNeg), laid out per query as [pos, neg_1 … neg_NNeg]

// Objectives of "train rerank --loss".
const (
	Pointwise = "pointwise"
	MarginMSE = "marginmse"
	InfoNCE   = "infonce"
)

// Loss evaluates objective name on the scores s (n) of G groups
// [pos, neg_1 … neg_NNeg], writes ∂loss/∂s into ds (n) and returns the
// loss. Sums are taken in float64.
//
//	pointwise  (1/n) Σ_k softplus(s_k) − y_k·s_k, y = 1 for the positive,
//	           0 for negatives: binary cross-entropy on the logit (monoBERT,
//	           Nogueira & Cho, arXiv:1901.04085)
//	marginmse  (1/(G·NNeg)) Σ_{i,j} (s_pos(i) − s_neg(i,j) − t_ij)², with the
//	           teacher margins t (G·NNeg) in negative order (Hofstätter et al.,
//	           arXiv:2010.02666)
//	infonce    (1/G) Σ_i logsumexp(s_group(i)) − s_pos(i): softmax
//	           cross-entropy over each query's own positive and negatives
//	           (localised contrastive estimation, Gao et al., arXiv:2101.08751)
func Loss(name string, s []float32, G, NNeg int, teacher []float32, ds []float32) (float64, error) {
	K := 1 + NNeg
	n := G * K
	if len(s) != n || len(ds) != n {
		return 0, fmt.Errorf("loss %s: %d scores and %d gradients for %d groups of %d", name, len(s), len(ds), G, K)
	}
	var loss float64
	switch name {
	case Pointwise:
		for k, x := range s {
			v := float64(x)
			y := 0.0
			if k%K == 0 {
				y = 1
			}
			// softplus(v) = max(v,0) + log1p(exp(−|v|)), stable.
			loss += max(v, 0) + math.Log1p(math.Exp(-math.Abs(v))) - y*v
			ds[k] = float32((sigmoid(v) - y) / float64(n))
		}
		return loss / float64(n), nil
	case MarginMSE:
		if len(teacher) != G*NNeg {
			return 0, fmt.Errorf("loss marginmse: %d teacher margins for %d negatives (train with --teacher, or triples that carry margins)", len(teacher), G*NNeg)
		}
		clear(ds)
		R := float64(G * NNeg)
		for i := range G {
			pos := float64(s[i*K])
			for j := range NNeg {
				d := pos - float64(s[i*K+1+j]) - float64(teacher[i*NNeg+j])
				loss += d * d
				g := float32(2 * d / R)
				ds[i*K] += g
				ds[i*K+1+j] -= g
			}
		}
		return loss / R, nil
	case InfoNCE:
		for i := range G {
			row := s[i*K : (i+1)*K]
			mx := math.Inf(-1)
			for _, x := range row {
				mx = max(mx, float64(x))
			}
			var z float64
			for _, x := range row {
				z += math.Exp(float64(x) - mx)
			}
			lse := mx + math.Log(z)
			loss += lse - float64(row[0])
			for k, x := range row {
				g := math.Exp(float64(x) - lse)
				if k == 0 {
					g--
				}
				ds[i*K+k] = float32(g / float64(G))
			}
		}
		return loss / float64(G), nil
	}
	return 0, fmt.Errorf("loss %q: want %s, %s or %s", name, Pointwise, MarginMSE, InfoNCE)
}

func sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}
