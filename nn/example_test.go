package nn_test

import (
	"fmt"

	"github.com/spladapt/spladapt/nn"
)

// One MLM training step on a tiny random BERT: forward with the loss at the
// labelled positions only, backward, clipping and an AdamW update, with the
// embeddings and layer 0 (P_domain for k=1) frozen.
func Example() {
	m, err := nn.NewModel(nn.BERTConfig(50, 16, 2, 2, 32, 8), 1)
	if err != nil {
		panic(err)
	}
	if _, err := nn.SetFrozen(m.Params, true, m.DomainParamNames(1)...); err != nil {
		panic(err)
	}
	b := nn.Batch{B: 1, T: 6,
		InputIDs: []int32{2, 11, 4, 13, 3, 0},
		Mask:     []float32{1, 1, 1, 1, 1, 0}}
	labels := []int32{-100, -100, 12, -100, -100, -100}
	opt := nn.NewAdamW(m.Params, 0.01)
	for step := range 3 {
		nn.ZeroGrad(m.Params)
		loss, n := m.MLMLoss(b, labels)
		m.MLMBackward(1)
		nn.ClipGradNorm(m.Params, 1)
		opt.Step(1e-2)
		fmt.Printf("step %d: loss %.2f over %d position(s)\n", step, loss, n)
	}
	// Output:
	// step 0: loss 3.89 over 1 position(s)
	// step 1: loss 3.71 over 1 position(s)
	// step 2: loss 3.64 over 1 position(s)
}
