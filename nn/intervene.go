package nn

// Interventions on the FFN intermediate activations ("neurons"): the output
// of GELU in each layer, la.ffg, shape (N,F), the input of the FFN output
// projection (intermediate.dense → output.dense in BERT, ffn.lin1 →
// ffn.lin2 in DistilBERT). A hook installed on a Pass sees these
// activations during Encode and may overwrite them; during Backward it gets
// ∂loss/∂(the values the output projection saw). This is what neuron
// attribution (Integrated Gradients over neurons) and neuron ablation
// (pruning studies) need; the rest of the pass is unchanged, so with no hook
// a pass computes exactly what it computed before.

// FFNHook reads and overrides the FFN intermediate activations of a Pass.
type FFNHook interface {
	// FFNForward is called by Encode for every layer l in order, with act
	// (N,F), the GELU output of layer l for batch b, before the output
	// projection reads it. It may overwrite entries of act. It returns true
	// when it has replaced every entry by a value that does not depend on
	// the layer's input: the layer is then forced, and Backward sends no
	// gradient into the FFN's input side (only the residual path carries
	// gradient below it). A hook that overwrites only some entries returns
	// false and zeroes those entries' gradient in FFNBackward.
	FFNForward(l int, b Batch, act []float32) (forced bool)
	// FFNBackward is called by Backward for each layer l from the top down
	// to the lowest layer Backward reaches, with grad (N,F) = ∂loss/∂act of
	// layer l (act as the output projection saw it). grad may be modified;
	// unless layer l was forced, Backward continues with it through GELU.
	FFNBackward(l int, grad []float32)
	// GradFrom is the lowest layer whose FFNBackward the hook needs:
	// Backward goes down at least to it even when every parameter is
	// frozen. NumLayers (or more) asks for none.
	GradFrom() int
}

// ffnState is a Pass's hook and what it did in the last Encode.
type ffnState struct {
	hook   FFNHook // installed by SetFFNHook
	active FFNHook // the hook the last Encode ran with (nil for none)
	forced []bool  // (L) layers the last Encode forced
}

// SetFFNHook installs h on p; nil removes it. It takes effect at the next
// Encode; a Backward follows the hook its Encode ran with.
func (p *Pass) SetFFNHook(h FFNHook) { p.ffn.hook = h }

// SetFFNHook installs h on m's default pass, the one Model.Encode and
// SpladeEncode (hence splade.Encoder) run on; nil removes it.
func (m *Model) SetFFNHook(h FFNHook) { m.pass.SetFFNHook(h) }

// ffnForward runs the hook on layer l's activations (Encode).
func (p *Pass) ffnForward(l int, act []float32) {
	if l == 0 {
		p.ffn.active = p.ffn.hook
		if p.ffn.forced == nil {
			p.ffn.forced = make([]bool, len(p.layers))
		}
		clear(p.ffn.forced)
	}
	if p.ffn.active != nil {
		p.ffn.forced[l] = p.ffn.active.FFNForward(l, p.batch, act)
	}
}

// ffnBackward gives the hook layer l's activation gradient (Backward) and
// reports whether the layer was forced.
func (p *Pass) ffnBackward(l int, grad []float32) (forced bool) {
	if p.ffn.active == nil {
		return false
	}
	p.ffn.active.FFNBackward(l, grad)
	return p.ffn.forced[l]
}

// ffnStop lowers Backward's stopping layer to the hook's GradFrom.
func (p *Pass) ffnStop(stop int) int {
	if p.ffn.active == nil {
		return stop
	}
	if g := max(0, p.ffn.active.GradFrom()); g < stop {
		return g
	}
	return stop
}
