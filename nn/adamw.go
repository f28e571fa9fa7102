package nn

import (
	"fmt"
	"math"
)

// AdamW is torch.optim.AdamW (Loshchilov & Hutter, arXiv:1711.05101;
// amsgrad off) over a list of parameters. For every trainable parameter
// with gradient g, at step t (1-based) with learning rate lr:
//
//	p ← p·(1 − lr·wd)            (decoupled decay; skipped when p.NoDecay)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps)
//
// Frozen parameters are skipped entirely (their moments stay as they are).
// The update is computed in float64 per element and rounded once.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64

	params []*Param
	m, v   [][]float32 // first and second moments, one per param
	step   int
}

// NewAdamW returns an optimiser over params with PyTorch's defaults
// (β = 0.9, 0.999; eps 1e-8) and the given weight decay.
func NewAdamW(params []*Param, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, params: params}
	o.m = make([][]float32, len(params))
	o.v = make([][]float32, len(params))
	for i, p := range params {
		o.m[i] = make([]float32, len(p.W))
		o.v[i] = make([]float32, len(p.W))
	}
	return o
}

// StepCount is the number of steps taken (restored by Load).
func (o *AdamW) StepCount() int { return o.step }

// Step applies one update with learning rate lr using the gradients in
// the parameters (which it leaves unchanged). Cost: O(number of trainable
// scalars).
func (o *AdamW) Step(lr float64) {
	o.step++
	t := float64(o.step)
	b1, b2 := o.Beta1, o.Beta2
	stepSize := lr / (1 - math.Pow(b1, t))
	bc2 := math.Sqrt(1 - math.Pow(b2, t))
	for i, p := range o.params {
		if p.Frozen {
			continue
		}
		decay := 1.0
		if !p.NoDecay {
			decay = 1 - lr*o.WeightDecay
		}
		split(ewJob{op: opAdamW, n: len(p.G), adam: adamArgs{p.W, p.G, o.m[i], o.v[i], b1, b2, stepSize, bc2, o.Eps, decay}})
	}
}

// adamArgs are one parameter's AdamW update; elements split between workers.
type adamArgs struct {
	w, g, m, v                        []float32
	b1, b2, stepSize, bc2, eps, decay float64
}

func (a *adamArgs) run(lo, hi int) {
	adamwKernel(a.w[lo:hi], a.g[lo:hi], a.m[lo:hi], a.v[lo:hi], a.b1, a.b2, a.stepSize, a.bc2, a.eps, a.decay)
}

// adamwGo is the update of AdamW.Step for one parameter, in float64 per
// element, rounded once.
func adamwGo(w, g, m, v []float32, b1, b2, stepSize, bc2, eps, decay float64) {
	for j, g32 := range g {
		gj := float64(g32)
		mj := b1*float64(m[j]) + (1-b1)*gj
		vj := b2*float64(v[j]) + (1-b2)*gj*gj
		m[j], v[j] = float32(mj), float32(vj)
		wj := float64(w[j]) * decay
		w[j] = float32(wj - stepSize*mj/(math.Sqrt(vj)/bc2+eps))
	}
}

// AdamWState is the resumable state of an AdamW: the step count and both
// moments keyed by parameter name.
type AdamWState struct {
	Step int
	M, V map[string][]float32
}

// State returns a copy of the optimiser state.
func (o *AdamW) State() AdamWState {
	s := AdamWState{Step: o.step, M: map[string][]float32{}, V: map[string][]float32{}}
	for i, p := range o.params {
		s.M[p.Name] = append([]float32(nil), o.m[i]...)
		s.V[p.Name] = append([]float32(nil), o.v[i]...)
	}
	return s
}

// Load restores a state saved by State. Every parameter must have both
// moments of the right length.
func (o *AdamW) Load(s AdamWState) error {
	if s.Step < 0 {
		return fmt.Errorf("load optimiser state: negative step %d", s.Step)
	}
	for _, p := range o.params {
		m, okm := s.M[p.Name]
		v, okv := s.V[p.Name]
		if !okm || !okv {
			return fmt.Errorf("load optimiser state: no moments for %s", p.Name)
		}
		if len(m) != len(p.W) || len(v) != len(p.W) {
			return fmt.Errorf("load optimiser state: %s has moments of %d and %d elements, want %d", p.Name, len(m), len(v), len(p.W))
		}
	}
	for i, p := range o.params {
		copy(o.m[i], s.M[p.Name])
		copy(o.v[i], s.V[p.Name])
	}
	o.step = s.Step
	return nil
}

// LinearSchedule is HuggingFace's get_linear_schedule_with_warmup: the
// multiplier of the base learning rate at 0-based optimiser step k is
// k/max(1,W) during the W warm-up steps, then max(0, (N−k)/max(1, N−W)).
// The first step has multiplier 0 when W > 0.
type LinearSchedule struct {
	Warmup, Total int
}

// Factor is the learning-rate multiplier at step k.
func (s LinearSchedule) Factor(k int) float64 {
	if k < s.Warmup {
		return float64(k) / float64(max(1, s.Warmup))
	}
	return max(0, float64(s.Total-k)/float64(max(1, s.Total-s.Warmup)))
}

// ClipGradNorm scales the gradients of the trainable parameters so that
// their global L2 norm is at most maxNorm, as torch.nn.utils.clip_grad_norm_
// (factor maxNorm/(norm+1e-6) when that is below 1). It returns the norm
// before clipping. maxNorm <= 0 only measures.
func ClipGradNorm(params []*Param, maxNorm float64) float64 {
	var ss float64
	for _, p := range params {
		if p.Frozen {
			continue
		}
		for _, g := range p.G {
			ss += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(ss)
	if coef := maxNorm / (norm + 1e-6); maxNorm > 0 && coef < 1 {
		ScaleGrads(params, float32(coef))
	}
	return norm
}
