// Package neurons attributes a SPLADE score to the neurons of the encoder
// — the FFN intermediate activations after GELU of each layer — by
// Integrated Gradients, finds the neurons whose attribution separates
// relevant from non-relevant pairs, ablates neurons for a pruning study and
// explains single matches.
//
// # Integrated Gradients over neurons
//
// The score of a (query, document) pair is f = q·d with d the SPLADE vector
// of the document (max over positions of log1p(relu(logits)))). For the
// document side, q is held at its actual value (the model's query vector,
// or the IDF-weighted tokens of an inference-free model) and the neurons are
// those of the document's forward pass; the query side is the mirror image
// (d held fixed, the query's forward pass).
//
// The path is defined by intervention. Let a_l (T,F) be the clean
// activations of attributed layer l and a'_l its baseline (zero, or the
// mean activation of each neuron). At α ∈ [0,1] every attributed layer's
// activations are forced to a'_l + α(a_l − a'_l) and everything downstream
// is recomputed, so f(1) = f(x) and f(0) = f with every attributed neuron
// at baseline. Forced layers do not depend on the layers below them, so
// ∂f/∂(forced value) flows only through the layers above and the residual
// stream. The attribution of neuron j of layer l at position t is
//
//	A[l,t,j] = (a − a')[l,t,j] · ∫₀¹ ∂f/∂x[l,t,j](α) dα
//
// and by the fundamental theorem of calculus along the path
// (completeness) Σ A = f(1) − f(0) up to the quadrature error. Per-neuron
// attributions sum A over positions. The integral is a quadrature rule
// (Rule) over m path points, each one copy of the text in a batched
// forward and backward pass (groups of at most MaxRows positions).
//
// The integrand g(α) = df/dα = Σ (a − a')·∂f/∂x is smooth except where the
// SPLADE head's max pooling switches its argmax position or a ReLU of
// log1p(relu(·)) switches on or off for a term of the other side's vector:
// there f has a kink and g jumps. A rule that samples g has an O(h·jump)
// error per jump, which is large against f(1) − f(0) when the score barely
// moves (a term that switches on mid-path and off again) or when the path
// crosses dozens of kinks. The default rule, Piecewise, does not sample
// across the kinks: it finds them from the logits of the other side's
// terms at the evaluated points (smooth between them, interpolated by
// polynomials over panels of points) and integrates the jumping factor
// q/(1+z) of the chain rule across them against the interpolated Jacobian,
// back-propagating the result from each point (see piecewise.go). Adaptive
// (a trapezoid rule that refines where its exact interval error is
// largest), Midpoint, GaussLegendre and Trapezoid remain selectable. Check
// CompletenessError.
package neurons

import (
	"fmt"
	"slices"

	"github.com/spladapt/spladapt/nn"
)

// Attributor computes Integrated Gradients over the FFN neurons of one
// model. It is not safe for concurrent use (it owns a forward pass).
type Attributor struct {
	Model  *nn.Model
	Layers []int // attributed layers, ascending, each in [0, L)
	// Steps is m, the number of path points evaluated by a forward and a
	// backward pass (default 64): exactly m for Midpoint, GaussLegendre
	// and Adaptive, m+1 for Trapezoid, at most m for Piecewise.
	Steps int
	Rule  Rule // default Piecewise
	// Baseline, when set, is a' per attributed layer: Baseline[i] (F) for
	// Layers[i], the same at every position. nil means zero.
	Baseline [][]float32
	// MaxRows bounds the positions of one batched forward pass (path
	// points × tokens); default 2048, at least one path point per pass
	// (two for Piecewise).
	MaxRows int
	// PerPosition keeps A[l,t,j] in Result.PerPos.
	PerPosition bool

	pass *nn.Pass
	// trace, when set (tests), sees every batch of path points with f and
	// g = df/dα at each.
	trace func(alpha, f, g []float64)
}

// Result is the attribution of one text's neurons.
type Result struct {
	Score         float64     // f(1): f at the actual activations
	BaselineScore float64     // f(0): every attributed neuron at baseline
	Attr          [][]float64 // (len(Layers), F) attribution per neuron, summed over positions
	Sum           float64     // Σ Attr
	// PerPos, with PerPosition, is (len(Layers), T, F) attribution per
	// position.
	PerPos [][]float32
}

// CompletenessError is |Sum − (Score − BaselineScore)| / |Score −
// BaselineScore| (0 when both are 0).
func (r *Result) CompletenessError() float64 {
	d := r.Score - r.BaselineScore
	e := r.Sum - d
	if e < 0 {
		e = -e
	}
	if d < 0 {
		d = -d
	}
	if d == 0 {
		if e == 0 {
			return 0
		}
		return e / 1e-30
	}
	return e / d
}

func (a *Attributor) check() error {
	L, F := a.Model.Config.NumLayers, a.Model.Config.IntermediateSize
	if a.Model.Config.SpladePooling != nn.PoolMax {
		return fmt.Errorf("attribute: the model pools with %q; attribution follows the max pooling's argmax and supports max-pooled models only", a.Model.Config.SpladePooling)
	}
	if len(a.Layers) == 0 {
		return fmt.Errorf("attribute: no layers chosen")
	}
	for i, l := range a.Layers {
		if l < 0 || l >= L {
			return fmt.Errorf("attribute: layer %d outside the model's %d layers", l, L)
		}
		if i > 0 && l <= a.Layers[i-1] {
			return fmt.Errorf("attribute: layers %v must be ascending and distinct", a.Layers)
		}
	}
	if a.Baseline != nil {
		if len(a.Baseline) != len(a.Layers) {
			return fmt.Errorf("attribute: %d baselines for %d layers", len(a.Baseline), len(a.Layers))
		}
		for i, b := range a.Baseline {
			if len(b) != F {
				return fmt.Errorf("attribute: baseline of layer %d has %d neurons, the model %d", a.Layers[i], len(b), F)
			}
		}
	}
	return nil
}

// freeze marks every parameter frozen (no parameter gradients are
// accumulated) and returns a function that restores the flags.
func freeze(m *nn.Model) func() {
	was := make([]bool, len(m.Params))
	for i, p := range m.Params {
		was[i], p.Frozen = p.Frozen, true
	}
	return func() {
		for i, p := range m.Params {
			p.Frozen = was[i]
		}
	}
}

// pathHook forces the attributed layers of a batch of path points: row
// block k (one copy of the text) of layer Layers[i] gets base + α_k·diff.
// With record set it records the clean activations instead. In Backward it
// keeps each path point's contribution (a − a')·∂f/∂x per neuron (summed
// over positions) and, with perPos, per position.
type pathHook struct {
	layers []int
	pos    map[int]int // layer → index in layers
	T, F   int
	clean  [][]float32 // (T,F) per attributed layer
	base   [][]float32 // (F) per attributed layer; nil = zero
	alpha  []float64   // per row block of the current batch
	record bool
	// contrib[first+k] (len(layers)·F) receives Σ_t (a − a')[l,t,j]·∂f_k/∂x[l,t,j]
	// of row block k; perPos[first+k] (len(layers)·T·F), when perPos is
	// set, the same per position. grad, when set, (T,F) per layer, receives
	// the raw Σ_k ∂f_k/∂x instead (ForcedGradient).
	contrib [][]float64
	perPos  [][]float32
	keepPos bool
	first   int
	grad    [][]float64
}

func (h *pathHook) FFNForward(l int, b nn.Batch, act []float32) bool {
	i, ok := h.pos[l]
	if !ok {
		return false
	}
	if h.record {
		copy(h.clean[i], act[:len(h.clean[i])])
		return false
	}
	F := len(act) / (b.B * b.T)
	for k, al := range h.alpha {
		for t := range h.T {
			row := act[(k*h.T+t)*F : (k*h.T+t+1)*F]
			c := h.clean[i][t*F : (t+1)*F]
			for j := range row {
				row[j] = float32(h.baseAt(i, j) + al*(float64(c[j])-h.baseAt(i, j)))
			}
		}
	}
	return true
}

func (h *pathHook) baseAt(i, j int) float64 {
	if h.base == nil {
		return 0
	}
	return float64(h.base[i][j])
}

func (h *pathHook) FFNBackward(l int, grad []float32) {
	i, ok := h.pos[l]
	if !ok {
		return
	}
	n := h.T * h.F
	if h.grad != nil {
		for k := range h.alpha {
			for x, v := range grad[k*n : (k+1)*n] {
				h.grad[i][x] += float64(v)
			}
		}
		return
	}
	for k := range h.alpha {
		c := h.contrib[h.first+k][i*h.F : (i+1)*h.F]
		var pp []float32
		if h.keepPos {
			pp = h.perPos[h.first+k][i*n : (i+1)*n]
		}
		g := grad[k*n : (k+1)*n]
		for t := range h.T {
			for j := range h.F {
				x := t*h.F + j
				v := (float64(h.clean[i][x]) - h.baseAt(i, j)) * float64(g[x])
				c[j] += v
				if pp != nil {
					pp[x] = float32(v)
				}
			}
		}
	}
}

func (h *pathHook) GradFrom() int { return h.layers[0] }

// Attribute returns the Integrated-Gradients attribution of the neurons of
// ids (one text, specials included, no padding) for f = other·w(ids), where
// w is the SPLADE vector of ids and other (V) the fixed vector of the other
// side. Cost: Steps forward and backward passes of the text (the path
// points batched: all at once for a fixed rule, one batch per refinement
// round for Adaptive; for Piecewise at most Steps, batches of whole panels,
// and each forward pass stops at the logits of other's non-zero terms
// instead of the full-vocabulary head), plus 2 forward passes for f(1) and
// f(0). Memory: len(Layers)·F float64 per path point, and with PerPosition
// len(Layers)·T·F float32 per path point.
func (a *Attributor) Attribute(ids []int32, other []float32) (*Result, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	m := a.Model
	V, F := m.Config.VocabSize, m.Config.IntermediateSize
	if len(other) != V {
		return nil, fmt.Errorf("attribute: other-side vector has %d entries, vocabulary %d", len(other), V)
	}
	T := len(ids)
	if T == 0 {
		return nil, fmt.Errorf("attribute: empty text")
	}
	steps := a.Steps
	if steps == 0 {
		steps = 64
	}
	if a.pass == nil {
		a.pass = m.NewPass()
	}
	defer freeze(m)()
	defer a.pass.SetFFNHook(nil)

	h := &pathHook{layers: a.Layers, pos: map[int]int{}, T: T, F: F, base: a.Baseline, keepPos: a.PerPosition}
	for i, l := range a.Layers {
		h.pos[l] = i
		h.clean = append(h.clean, make([]float32, T*F))
	}
	a.pass.SetFFNHook(h)
	// Clean pass: record a_l and f(1).
	h.record = true
	score, err := a.scores(ids, 1, other, nil)
	if err != nil {
		return nil, err
	}
	h.record = false
	// Baseline: every attributed neuron at a'.
	h.alpha = []float64{0}
	base, err := a.scores(ids, 1, other, nil)
	if err != nil {
		return nil, err
	}
	// eval runs the path points alphas (in groups of at most MaxRows
	// positions) and returns f and g = df/dα = Σ (a − a')·∂f/∂x at each.
	maxRows := a.MaxRows
	if maxRows <= 0 {
		maxRows = 2048
	}
	per := max(1, maxRows/T)
	eval := func(alphas []float64) (f, g []float64, err error) {
		for k0 := 0; k0 < len(alphas); k0 += per {
			k1 := min(k0+per, len(alphas))
			h.first = len(h.contrib)
			for range k1 - k0 {
				h.contrib = append(h.contrib, make([]float64, len(a.Layers)*F))
				if a.PerPosition {
					h.perPos = append(h.perPos, make([]float32, len(a.Layers)*T*F))
				}
			}
			h.alpha = alphas[k0:k1]
			fk, err := a.scores(ids, k1-k0, other, h)
			if err != nil {
				return nil, nil, err
			}
			f = append(f, fk...)
			for _, c := range h.contrib[h.first:] {
				var s float64
				for _, v := range c {
					s += v
				}
				g = append(g, s)
			}
		}
		if a.trace != nil {
			a.trace(alphas, f, g)
		}
		return f, g, nil
	}
	var weights []float64
	switch a.Rule {
	case Piecewise, "":
		if err = a.attributePiecewise(ids, other, h, steps, per); err == nil {
			weights = make([]float64, len(h.contrib))
			for k := range weights {
				weights[k] = 1 // each evaluation's contribution is weighted already
			}
		}
	case Adaptive:
		_, weights, err = adaptiveTrapezoid(steps, eval)
	default:
		var alphas []float64
		alphas, weights, err = a.Rule.Nodes(steps)
		if err == nil {
			_, _, err = eval(alphas)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	res := &Result{Score: score[0], BaselineScore: base[0], Attr: make([][]float64, len(a.Layers))}
	for i := range a.Layers {
		res.Attr[i] = make([]float64, F)
		for k, w := range weights {
			for j, v := range h.contrib[k][i*F : (i+1)*F] {
				res.Attr[i][j] += w * v
			}
		}
		for _, v := range res.Attr[i] {
			res.Sum += v
		}
		if a.PerPosition {
			pp := make([]float64, T*F)
			for k, w := range weights {
				for x, v := range h.perPos[k][i*T*F : (i+1)*T*F] {
					pp[x] += w * float64(v)
				}
			}
			res.PerPos = append(res.PerPos, float32s(pp))
		}
	}
	return res, nil
}

func float32s(x []float64) []float32 {
	o := make([]float32, len(x))
	for i, v := range x {
		o[i] = float32(v)
	}
	return o
}

// scores runs K copies of ids through the model (the hook decides each
// copy's forced activations) and returns f_k = other·w(copy k); with back
// set it also back-propagates Σ_k f_k into the hook (the copies are
// independent, so the hook sees each copy's own gradient).
func (a *Attributor) scores(ids []int32, K int, other []float32, back *pathHook) ([]float64, error) {
	m := a.Model
	C, V := m.Config.HiddenSize, m.Config.VocabSize
	T := len(ids)
	z, err := a.head(ids, K)
	if err != nil {
		return nil, err
	}
	out := make([]float32, K*V)
	argmax := make([]int32, K*V)
	emb, bias := m.WordEmbeddings().W, m.DecoderBias().W
	nn.SpladePoolForward(z, ones(K*T), emb, bias, K, T, C, V, out, argmax)
	f := make([]float64, K)
	for k := range K {
		f[k] = dot(other, out[k*V:(k+1)*V])
	}
	if back == nil {
		return f, nil
	}
	dout := make([]float32, K*V)
	for k := range K {
		for v, o := range other {
			dout[k*V+v] = o
		}
	}
	dz := make([]float32, K*T*C)
	nn.SpladePoolBackward(dout, z, emb, bias, argmax, out, K, T, C, V, dz, nil, nil)
	dh := a.pass.HeadTransformBackward(dz)
	a.pass.Backward(dh)
	return f, nil
}

func dot(a, b []float32) float64 {
	var s float64
	for i, x := range a {
		if x != 0 {
			s += float64(x) * float64(b[i])
		}
	}
	return s
}

// ForcedGradient returns f = other·w(ids) with the attributed layers'
// activations forced to forced[i] (T,F) for Layers[i], and ∂f/∂forced.
// It is the building block of Attribute, exposed for checks (finite
// differences, the PyTorch oracle).
func (a *Attributor) ForcedGradient(ids []int32, other []float32, forced [][]float32) (float64, [][]float64, error) {
	if err := a.check(); err != nil {
		return 0, nil, err
	}
	T, F := len(ids), a.Model.Config.IntermediateSize
	if len(forced) != len(a.Layers) {
		return 0, nil, fmt.Errorf("forced gradient: %d forced layers, %d attributed", len(forced), len(a.Layers))
	}
	if a.pass == nil {
		a.pass = a.Model.NewPass()
	}
	defer freeze(a.Model)()
	defer a.pass.SetFFNHook(nil)
	h := &pathHook{layers: a.Layers, pos: map[int]int{}, T: T, F: F, alpha: []float64{1}}
	for i, l := range a.Layers {
		if len(forced[i]) != T*F {
			return 0, nil, fmt.Errorf("forced gradient: layer %d has %d values, want T·F = %d", l, len(forced[i]), T*F)
		}
		h.pos[l] = i
		h.clean = append(h.clean, slices.Clone(forced[i]))
		h.grad = append(h.grad, make([]float64, T*F))
	}
	a.pass.SetFFNHook(h)
	f, err := a.scores(ids, 1, other, h)
	if err != nil {
		return 0, nil, err
	}
	return f[0], h.grad, nil
}

// ones returns n ones (a mask without padding).
func ones(n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}
