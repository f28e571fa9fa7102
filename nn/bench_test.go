package nn

import (
	"fmt"
	"math"
	"testing"
)

// benchShapes are the three shapes of the speed targets (vocabulary 30 522).
var benchShapes = []struct {
	name string
	cfg  Config
}{
	{"mini", BERTConfig(30522, 256, 4, 4, 1024, 512)},
	{"small", BERTConfig(30522, 512, 4, 8, 2048, 512)},
	{"distilbert-base", DistilBERTConfig(30522, 768, 6, 12, 3072, 512)},
}

// TestSpladeEncodeAgainstDense checks SpladeEncode against the dense route
// on a tiny model: full (B·T, V) logits from Model.Logits, then
// log1p(relu(·)) and a max over the real positions.
func TestSpladeEncodeAgainstDense(t *testing.T) {
	for _, cfg := range []Config{BERTConfig(1200, 16, 2, 2, 32, 32), DistilBERTConfig(700, 12, 1, 3, 20, 32)} {
		m, err := NewModel(cfg, 7)
		if err != nil {
			t.Fatal(err)
		}
		B, T, V := 3, 9, cfg.VocabSize
		b := BenchBatch(cfg, B, T, 1)
		for bi, n := range []int{9, 5, 2} { // ragged rows
			for tt := n; tt < T; tt++ {
				b.Mask[bi*T+tt] = 0
			}
		}
		out := make([]float32, B*V)
		arg := make([]int32, B*V)
		SpladeEncode(m, b, out, arg)
		// Groups of one and two sequences must give the same weights (up to
		// GEMM rounding, which may depend on the number of rows).
		for _, rows := range []int{T, 2*T + 1} {
			o2, a2 := make([]float32, B*V), make([]int32, B*V)
			spladeEncode(m, b, o2, a2, rows)
			for i := range out {
				if math.Abs(float64(o2[i]-out[i])) > 1e-6*(1+float64(out[i])) || (out[i] > 0) != (o2[i] > 0) {
					t.Fatalf("%s: groups of %d rows: w[%d] = %g (argmax %d), whole batch %g (%d)", cfg.ModelType, rows, i, o2[i], a2[i], out[i], arg[i])
				}
			}
		}

		h := m.Encode(b)
		z := m.HeadTransform(h, B*T)
		logits := make([]float32, B*T*V)
		m.Logits(logits, z, B*T)
		positive := 0
		for bi := 0; bi < B; bi++ {
			for v := 0; v < V; v++ {
				want := 0.0
				for tt := 0; tt < T; tt++ {
					if b.Mask[bi*T+tt] > 0 {
						want = math.Max(want, math.Log1p(math.Max(0, float64(logits[(bi*T+tt)*V+v]))))
					}
				}
				if got := float64(out[bi*V+v]); math.Abs(got-want) > 1e-5*(1+want) {
					t.Fatalf("%s: w[%d,%d] = %g, want %g", cfg.ModelType, bi, v, got, want)
				}
				if want > 0 {
					positive++
				}
			}
		}
		if positive == 0 {
			t.Fatalf("%s: no positive weight, test is vacuous", cfg.ModelType)
		}
	}
}

func TestMLMMask(t *testing.T) {
	cfg := BERTConfig(30522, 8, 1, 1, 8, 512)
	b := BenchBatch(cfg, 16, 128, 1)
	orig := append([]int32(nil), b.InputIDs...)
	labels, n := MLMMask(b, cfg.VocabSize, 0.15, 2)
	count, toMask := 0, 0
	for i, l := range labels {
		if l == IgnoreIndex {
			if b.InputIDs[i] != orig[i] {
				t.Fatalf("unlabelled position %d changed", i)
			}
			continue
		}
		count++
		if tt := i % b.T; tt == 0 || tt == b.T-1 {
			t.Fatalf("special position %d masked", i)
		}
		if l != orig[i] {
			t.Fatalf("label %d at %d, want the original id %d", l, i, orig[i])
		}
		if b.InputIDs[i] == benchMASK {
			toMask++
		}
	}
	// 16·126 candidates at 15%: 302 expected, σ ≈ 16.
	if count != n || n < 240 || n > 370 {
		t.Fatalf("%d labelled positions (reported %d), want about 302", count, n)
	}
	if f := float64(toMask) / float64(n); f < 0.7 || f > 0.9 {
		t.Fatalf("%.2f of masked positions are [MASK], want about 0.8", f)
	}
}

func TestFLOPCounts(t *testing.T) {
	// One layer, C=2, F=4, B=1, T=3, V=10, by hand:
	// per layer 2·3·(4·4 + 2·2·4) + 4·1·9·2 = 192 + 72 = 264.
	cfg := BERTConfig(10, 2, 1, 1, 4, 8)
	if got := EncoderFLOPs(cfg, 1, 3); got != 264 {
		t.Fatalf("EncoderFLOPs = %g, want 264", got)
	}
	// + head 2·3·4 = 24 + vocabulary 2·2·2·10 = 80 (2 real rows).
	if got := SpladeEncodeFLOPs(cfg, 1, 3, 2); got != 264+24+80 {
		t.Fatalf("SpladeEncodeFLOPs = %g, want 368", got)
	}
	// 3·(264 + 2·1·4 + 2·1·2·10) = 3·312.
	if got := MLMTrainFLOPs(cfg, 1, 3, 1); got != 936 {
		t.Fatalf("MLMTrainFLOPs = %g, want 936", got)
	}
}

// benchKernelLevels is kernelLevels (every level this CPU runs, side by
// side), or "auto" alone where there are no C kernels.
func benchKernelLevels() []string {
	if l := kernelLevels(); len(l) > 0 {
		return l
	}
	return []string{"auto"}
}

func BenchmarkEncode(b *testing.B) {
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
		out := make([]float32, B*s.cfg.VocabSize)
		for _, kl := range benchKernelLevels() {
			b.Run(fmt.Sprintf("model=%s/batch=%d/len=%d/kernels=%s", s.name, B, T, kl), func(b *testing.B) {
				c0 := processCPU()
				b.ReportAllocs()
				withKernels(b, kl, func() {
					for b.Loop() {
						SpladeEncode(m, batch, out, nil) // inference: the fused pooling
					}
				})
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(B*T/sec, "tokens/s")
				b.ReportMetric(SpladeEncodeFLOPs(s.cfg, B, T, B*T)/sec/1e9, "GFLOPS")
				reportCPU(b, c0)
			})
		}
	}
}

func BenchmarkMLMTrain(b *testing.B) {
	for _, s := range benchShapes {
		if testing.Short() && s.name != "mini" {
			continue
		}
		const B, T = 16, 128
		m, err := NewModel(s.cfg, 0)
		if err != nil {
			b.Fatal(err)
		}
		batch := BenchBatch(s.cfg, B, T, 1)
		labels, M := MLMMask(batch, s.cfg.VocabSize, 0.15, 2)
		opt := NewAdamW(m.Params, 0.01)
		for _, kl := range benchKernelLevels() {
			b.Run(fmt.Sprintf("model=%s/batch=%d/len=%d/kernels=%s", s.name, B, T, kl), func(b *testing.B) {
				c0 := processCPU()
				b.ReportAllocs()
				withKernels(b, kl, func() {
					for b.Loop() {
						MLMTrainStep(m, opt, batch, labels, 1e-4)
					}
				})
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(B*T/sec, "tokens/s")
				b.ReportMetric(MLMTrainFLOPs(s.cfg, B, T, M)/sec/1e9, "GFLOPS")
				reportCPU(b, c0)
			})
		}
	}
}
