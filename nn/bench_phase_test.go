package nn

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

// TestPhaseBreakdown (opt-in: SPLADAPT_BENCH_PHASES=1) times the phases of
// SpladeEncode for each benchmark shape, interleaved, medians of 3.
func TestPhaseBreakdown(t *testing.T) {
	if os.Getenv("SPLADAPT_BENCH_PHASES") == "" {
		t.Skip("set SPLADAPT_BENCH_PHASES=1 to run")
	}
	for _, s := range benchShapes {
		if s.name != os.Getenv("SPLADAPT_BENCH_SHAPE") && os.Getenv("SPLADAPT_BENCH_SHAPE") != "" {
			continue
		}
		const B, T = 32, 256
		m, _ := NewModel(s.cfg, 0)
		b := BenchBatch(s.cfg, B, T, 1)
		V, C := s.cfg.VocabSize, s.cfg.HiddenSize
		out := make([]float32, B*V)
		arg := make([]int32, B*V)
		var te, th, tp, ti []float64
		for range 3 {
			st := time.Now()
			h := m.Encode(b)
			te = append(te, time.Since(st).Seconds())
			st = time.Now()
			z := m.HeadTransform(h, B*T)
			th = append(th, time.Since(st).Seconds())
			st = time.Now()
			SpladePoolForward(z, b.Mask, m.wordEmb.W, m.decBias.W, B, T, C, V, out, arg)
			tp = append(tp, time.Since(st).Seconds())
			st = time.Now()
			SpladePoolInfer(z, b.Mask, m.wordEmb.W, m.decBias.W, B, T, C, V, out)
			ti = append(ti, time.Since(st).Seconds())
		}
		for _, x := range [][]float64{te, th, tp, ti} {
			slices.Sort(x)
		}
		fe := EncoderFLOPs(s.cfg, B, T)
		fp := 2 * float64(B*T*C) * float64(V)
		fmt.Printf("%s (kernels %s): encode %.3fs (%.1f GF) head %.3fs pool %.3fs (%.1f GF) fused pool %.3fs (%.1f GF)\n",
			s.name, Kernels(), te[1], fe/te[1]/1e9, th[1], tp[1], fp/tp[1]/1e9, ti[1], fp/ti[1]/1e9)
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
