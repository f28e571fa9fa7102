package nn

import (
	"math/rand/v2"
)

// Helpers shared by the model benchmarks (bench_test.go) and
// "spladapt bench model": synthetic batches in the protocol of the PyTorch
// peer (../shared/tools/oracle/bench.py) and the FLOP counts behind the
// reported GFLOPS.
//
// FLOPs count matrix products only (2·m·n·k each), as a GEMM-bound workload
// is usually reported; element-wise work, LayerNorm and softmax are left out.
// With N = B·T positions, C hidden, F feed-forward, V vocabulary, L layers:
//
//	encoder       L·(2·N·(4·C² + 2·C·F) + 4·B·T²·C)   Q,K,V,O; FFN in and out; QKᵀ and P·V
//	head          2·n·C²                             MLM head transform over n rows
//	vocabulary    2·r·C·V                            tied decoder over r rows
//
// SPLADE encoding: n = N, r = real (unpadded) positions. One MLM training
// step: 3× the forward count (backward costs two products per forward one),
// with n = r = M masked positions, because spladapt applies the head to the
// masked positions only.

// Token ids the synthetic batches use (BERT's uncased vocabulary).
const (
	benchCLS  = 101
	benchSEP  = 102
	benchMASK = 103
)

// EncoderFLOPs is the GEMM flop count of one Encode of a B×T batch.
func EncoderFLOPs(cfg Config, B, T int) float64 {
	N, C, F := float64(B*T), float64(cfg.HiddenSize), float64(cfg.IntermediateSize)
	perLayer := 2*N*(4*C*C+2*C*F) + 4*float64(B)*float64(T)*float64(T)*C
	return float64(cfg.NumLayers) * perLayer
}

// SpladeEncodeFLOPs is the GEMM flop count of SpladeEncode on a B×T batch
// with real unpadded positions.
func SpladeEncodeFLOPs(cfg Config, B, T, real int) float64 {
	C, V := float64(cfg.HiddenSize), float64(cfg.VocabSize)
	return EncoderFLOPs(cfg, B, T) + 2*float64(B*T)*C*C + 2*float64(real)*C*V
}

// MLMTrainFLOPs is the GEMM flop count of one MLM training step (forward and
// backward) on a B×T batch with M masked positions.
func MLMTrainFLOPs(cfg Config, B, T, M int) float64 {
	C, V := float64(cfg.HiddenSize), float64(cfg.VocabSize)
	return 3 * (EncoderFLOPs(cfg, B, T) + 2*float64(M)*C*C + 2*float64(M)*C*V)
}

// BenchBatch returns a B×T batch without padding: random ids in [5, V),
// [CLS] first and [SEP] last, as bench.py's rand_ids.
func BenchBatch(cfg Config, B, T int, seed uint64) Batch {
	rng := rand.New(rand.NewPCG(seed, 0xbe))
	b := Batch{B: B, T: T, InputIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i := range b.InputIDs {
		b.InputIDs[i] = int32(5 + rng.IntN(cfg.VocabSize-5))
		b.Mask[i] = 1
	}
	if cfg.VocabSize > benchSEP {
		for r := 0; r < B; r++ {
			b.InputIDs[r*T], b.InputIDs[r*T+T-1] = benchCLS, benchSEP
		}
	}
	if cfg.ModelType == "bert" {
		b.TypeIDs = make([]int32, B*T)
	}
	return b
}

// MLMMask masks b in place as bench.py does and returns the labels (B,T):
// each position but the first and last of a row is selected with
// probability frac; a selected position keeps its id as label and becomes
// [MASK] (80%), a random id (10%) or itself (10%); other labels are
// IgnoreIndex. It also returns the number of selected positions.
func MLMMask(b Batch, V int, frac float64, seed uint64) (labels []int32, masked int) {
	rng := rand.New(rand.NewPCG(seed, 0x3d))
	labels = make([]int32, len(b.InputIDs))
	for i := range labels {
		labels[i] = IgnoreIndex
		t := i % b.T
		if t == 0 || t == b.T-1 || b.Mask[i] == 0 || rng.Float64() >= frac {
			continue
		}
		labels[i] = b.InputIDs[i]
		masked++
		switch r := rng.Float64(); {
		case r < 0.8:
			b.InputIDs[i] = benchMASK % int32(V)
		case r < 0.9:
			b.InputIDs[i] = int32(5 + rng.IntN(V-5))
		}
	}
	return labels, masked
}

// MLMTrainStep runs one MLM training step as bench.py times it: zero the
// gradients, MLMLoss, MLMBackward, AdamW step. It returns the loss.
func MLMTrainStep(m *Model, opt *AdamW, b Batch, labels []int32, lr float64) float64 {
	ZeroGrad(m.Params)
	loss, _ := m.MLMLoss(b, labels)
	m.MLMBackward(1)
	opt.Step(lr)
	return loss
}
