package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPhases times the phases of SpladeEncode one by one for each
// benchmark shape: the encoder, the MLM head transform, the pooling with
// argmax (training's SpladePoolForward) and the fused inference pooling
// (SpladePoolInfer).
//
//	go test ./nn -run '^$' -bench Phases -count 3
func BenchmarkPhases(b *testing.B) {
	for _, s := range benchShapes {
		if testing.Short() && s.name != "mini" {
			continue
		}
		const B, T = 32, 256
		m, err := NewModel(s.cfg, 0)
		if err != nil {
			b.Fatal(err)
		}
		batch := BenchBatch(s.cfg, B, T, 1)
		V, C := s.cfg.VocabSize, s.cfg.HiddenSize
		out := make([]float32, B*V)
		arg := make([]int32, B*V)
		h := m.Encode(batch)
		z := append([]float32(nil), m.HeadTransform(h, B*T)...)
		pool := 2 * float64(B*T*C) * float64(V)
		for _, ph := range []struct {
			name  string
			flops float64
			run   func()
		}{
			{"encode", EncoderFLOPs(s.cfg, B, T), func() { m.Encode(batch) }},
			{"head", 0, func() { m.HeadTransform(h, B*T) }},
			{"pool", pool, func() { SpladePoolForward(z, batch.Mask, m.wordEmb.W, m.decBias.W, B, T, C, V, out, arg) }},
			{"fused-pool", pool, func() { SpladePoolInfer(z, batch.Mask, m.wordEmb.W, m.decBias.W, B, T, C, V, out) }},
		} {
			b.Run(fmt.Sprintf("model=%s/phase=%s/batch=%d/len=%d/kernels=%s", s.name, ph.name, B, T, Kernels()), func(b *testing.B) {
				for b.Loop() {
					ph.run()
				}
				if ph.flops > 0 {
					b.ReportMetric(ph.flops/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOPS")
				}
			})
		}
	}
}

// BenchmarkSpladeTiling compares tile shapes and worker counts of the
// pooling forward (workers=1 keeps OpenBLAS multi-threaded).
func BenchmarkSpladeTiling(b *testing.B) {
	const B, T, V = 8, 256, 30522
	for _, C := range []int{256, 768} {
		rng := newBenchRNG()
		lens := make([]int, B)
		for i := range lens {
			lens[i] = T
		}
		z, mask, emb, bias := spladeCase(rng, B, T, C, V, lens, false)
		out := make([]float32, B*V)
		arg := make([]int32, B*V)
		for _, tl := range []spladeTiling{{256, 512, 2}, {128, 1024, 2}, {512, 256, 2}, {256, 1024, 2}, {512, 512, 2}, {1024, 1024, 1}, {2048, 4096, 1}} {
			b.Run(fmt.Sprintf("hidden=%d/rows=%d/cols=%d/workers=%d", C, tl.rows, tl.cols, tl.workers), func(b *testing.B) {
				for b.Loop() {
					spladePool(z, mask, emb, bias, B, T, C, V, out, arg, tl)
				}
				b.ReportMetric(2*float64(B*T*C*V)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}

func newBenchRNG() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
