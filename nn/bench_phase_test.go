package nn

import (
	"fmt"
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
		var te, th, tp []float64
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
		}
		for _, x := range [][]float64{te, th, tp} {
			slices.Sort(x)
		}
		fe := EncoderFLOPs(s.cfg, B, T)
		fp := 2 * float64(B*T*C) * float64(V)
		fmt.Printf("%s: encode %.3fs (%.1f GF) head %.3fs pool %.3fs (%.1f GF)\n", s.name, te[1], fe/te[1]/1e9, th[1], tp[1], fp/tp[1]/1e9)
	}
}
