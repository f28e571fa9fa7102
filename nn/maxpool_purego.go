//go:build !cgo

package nn

// The fused SPLADE inference kernel is C (maxpool_cgo.go); without cgo
// SpladePoolInfer runs SpladePoolForward instead.
const fusedMaxPool = false

func packPanels(dst, src []float32, ld, n, c int) { panic("nn: packPanels needs cgo") }

func maxPoolRange(pa []float32, poff []int64, pn []int32, emb []float32, c, v0, v1 int, mx []float32, am []int32, ldm int) bool {
	panic("nn: maxPoolRange needs cgo")
}

func fusedArgmax() bool { return false }
