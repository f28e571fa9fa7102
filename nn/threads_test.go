package nn

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The worker counts whose results must agree bit for bit (threads.go).
var threadCounts = []int{1, 2, 8}

// withThreads runs f with SetThreads(n), restoring the previous count.
func withThreads(t *testing.T, n int, f func()) {
	t.Helper()
	old := Threads()
	SetThreads(n)
	defer SetThreads(old)
	f()
}

// digest accumulates float32s bit for bit, labelled, so that a mismatch
// names the first tensor that differs.
type digest struct {
	names []string
	sums  [][32]byte
}

func (d *digest) add(name string, x []float32) {
	h := sha256.New()
	var b [4]byte
	for _, v := range x {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	d.names = append(d.names, name)
	d.sums = append(d.sums, [32]byte(h.Sum(nil)))
}

func (d *digest) addInt(name string, x []int32) {
	f := make([]float32, len(x))
	for i, v := range x {
		f[i] = math.Float32frombits(uint32(v))
	}
	d.add(name, f)
}

// same fails at the first entry of got that differs from want.
func (d *digest) same(t *testing.T, want *digest, label string) {
	t.Helper()
	if len(d.sums) != len(want.sums) {
		t.Fatalf("%s: %d tensors, want %d", label, len(d.sums), len(want.sums))
	}
	for i := range d.sums {
		if d.sums[i] != want.sums[i] {
			t.Fatalf("%s: %s differs from the 1-worker result", label, d.names[i])
		}
	}
}

// threadModel is a model just large enough that every parallel path
// splits: 256 positions of width 128 (LayerNorm in 4 blocks), FFN and
// vocabulary products over the GEMM thresholds, GELU over parallelMin,
// head size 16 (the fused attention kernel under cgo), V = 512.
func threadModel(t *testing.T, arch string) (*Model, Batch) {
	t.Helper()
	cfg := BERTConfig(512, 128, 2, 8, 256, 64)
	if arch == "distilbert" {
		cfg = DistilBERTConfig(512, 128, 2, 8, 256, 64)
	}
	m, err := NewModel(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, p := range m.Params {
		if len(p.Shape) == 1 {
			for i := range p.W {
				p.W[i] += float32(rng.NormFloat64() * 0.2)
			}
		}
	}
	b := tinyBatch(rng, cfg, 4, 64)
	if arch == "distilbert" {
		b.TypeIDs = nil
	}
	return m, b
}

// TestThreadsSplitHappens guards the other tests: with 8 workers the shapes
// of threadModel really are split, so agreement is not trivial.
func TestThreadsSplitHappens(t *testing.T) {
	N, C, F, V := 256, 128, 256, 512
	if Backend == "openblas" {
		for _, s := range [][3]int{{N, F, C}, {F, C, N}, {N, V, C}} {
			if p := gemmChunks(s[0], s[1], s[2]); p < 2 {
				t.Errorf("product %v runs as %d chunk, want a split", s, p)
			}
		}
	}
	if p, _ := (ewJob{op: opGELU, a: make([]float32, N*F)}).parts(8); p != 8 {
		t.Errorf("GELU over %d elements in %d parts at 8 workers, want 8", N*F, p)
	}
	if k := lnbBlocks(N, C); k < 4 {
		t.Errorf("LayerNormBackward over %d×%d in %d blocks, want ≥ 4", N, C, k)
	}
}

// TestThreadsIdenticalResults runs the forward pass, SPLADE encoding (both
// poolings), one training step (MLM and SPLADE losses through every
// parameter's gradient, with dropout) and an AdamW update at 1, 2 and 8
// workers, and wants the same bytes.
func TestThreadsIdenticalResults(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		t.Run(arch, func(t *testing.T) {
			var want *digest
			for _, nw := range threadCounts {
				var d digest
				withThreads(t, nw, func() { d = threadRun(t, arch) })
				if want == nil {
					want = &d
					continue
				}
				d.same(t, want, fmt.Sprintf("%d workers", nw))
			}
		})
	}
}

func threadRun(t *testing.T, arch string) digest {
	m, b := threadModel(t, arch)
	cfg := m.Config
	B, T, C, V := b.B, b.T, cfg.HiddenSize, cfg.VocabSize
	var d digest

	// Inference: hidden states and SPLADE vectors.
	d.add("encode", m.Encode(b))
	out := make([]float32, B*V)
	SpladeEncode(m, b, out, nil)
	d.add("splade infer", out)
	am := make([]int32, B*V)
	SpladeEncode(m, b, out, am)
	d.add("splade forward", out)
	d.addInt("splade argmax", am)

	// One training step with dropout: MLM loss, then a SPLADE loss.
	m.Training = true
	m.SeedDropout(9)
	ZeroGrad(m.Params)
	rng := rand.New(rand.NewPCG(7, 8))
	labels := make([]int32, B*T)
	for i := range labels {
		labels[i] = IgnoreIndex
		if b.Mask[i] > 0 && rng.IntN(4) == 0 {
			labels[i] = int32(rng.IntN(V))
		}
	}
	loss, _ := m.MLMLoss(b, labels)
	d.add("mlm loss", []float32{float32(loss)})
	m.MLMBackward(1)

	h := m.Encode(b)
	z := m.HeadTransform(h, B*T)
	SpladePoolForward(z, b.Mask, m.wordEmb.W, m.decBias.W, B, T, C, V, out, am)
	d.add("splade train", out)
	dout := make([]float32, B*V)
	for i := range dout {
		dout[i] = float32(rng.NormFloat64())
	}
	dz := make([]float32, B*T*C)
	SpladePoolBackward(dout, z, m.wordEmb.W, m.decBias.W, am, out, B, T, C, V, dz, m.wordEmb.G, m.decBias.G)
	d.add("dz", dz)
	m.Backward(m.HeadTransformBackward(dz))
	for _, p := range m.Params {
		d.add("grad "+p.Name, p.G)
	}
	NewAdamW(m.Params, 0.01).Step(1e-3)
	for _, p := range m.Params {
		d.add("step "+p.Name, p.W)
	}
	return d
}

// TestSgemmChunksIdentical checks products at shapes where OpenBLAS rounds
// a row differently depending on the rows around it in a call: the chunks
// are fixed by the shape, so 1, 2 and 8 workers, and a caller that finds
// the workers busy, agree.
func TestSgemmChunksIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][3]int{{200, 48, 1000}, {64, 768, 768}, {96, 300, 700}, {40, 64, 1700}, {1000, 40, 200}} {
		m, n, k := s[0], s[1], s[2]
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			a, b := gaussSlice(rng, m*k, 1), gaussSlice(rng, k*n, 1)
			c0 := gaussSlice(rng, m*n, 1)
			lda, ldb := k, n
			if tr[0] {
				lda = m
			}
			if tr[1] {
				ldb = k
			}
			run := func() []float32 {
				c := append([]float32(nil), c0...)
				Sgemm(tr[0], tr[1], m, n, k, 0.7, a, lda, b, ldb, 0.5, c, n)
				return c
			}
			var want digest
			withThreads(t, 1, func() { want.add("C", run()) })
			for _, nw := range threadCounts[1:] {
				var got digest
				withThreads(t, nw, func() { got.add("C", run()) })
				got.same(t, &want, fmt.Sprintf("%v trans %v, %d workers", s, tr, nw))
			}
			var got digest
			withThreads(t, 8, func() {
				ewMu.Lock() // busy helpers: the call runs inline
				got.add("C", run())
				ewMu.Unlock()
			})
			got.same(t, &want, fmt.Sprintf("%v trans %v, inline", s, tr))
		}
	}
}

// TestKernelsIdenticalAcrossThreads covers the element-wise kernels at
// lengths that are not multiples of the split alignment.
func TestKernelsIdenticalAcrossThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, c = 517, 131
	x, dy := gaussSlice(rng, n*c, 2), gaussSlice(rng, n*c, 1)
	gamma, beta := gaussSlice(rng, c, 1), gaussSlice(rng, c, 1)
	run := func() digest {
		var d digest
		y := make([]float32, n*c)
		GELU(y, x)
		d.add("gelu", y)
		GELUBackward(y, dy, x)
		d.add("gelu backward", y)
		out, mean, rstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
		LayerNormForward(out, mean, rstd, x, gamma, beta, n, c, 1e-12)
		d.add("layernorm", out)
		dx, dg, db := make([]float32, n*c), make([]float32, c), make([]float32, c)
		LayerNormBackward(dx, dg, db, dy, x, mean, rstd, gamma, n, c)
		d.add("layernorm dx", dx)
		d.add("layernorm dgamma", dg)
		d.add("layernorm dbeta", db)
		dbias := make([]float32, c)
		LinearBackward(nil, nil, dbias, dy, nil, nil, n, c, c)
		d.add("bias grad", dbias)
		return d
	}
	var want digest
	withThreads(t, 1, func() { want = run() })
	for _, nw := range threadCounts[1:] {
		var got digest
		withThreads(t, nw, func() { got = run() })
		got.same(t, &want, fmt.Sprintf("%d workers", nw))
	}
}

// TestThreadsConcurrentModels runs two models at once at 8 workers: one
// finds the helpers busy and runs its parts inline, and both must still
// equal a run on one worker.
func TestThreadsConcurrentModels(t *testing.T) {
	// models are made on the test goroutine (threadModel may call t.Fatal)
	encode := func(m *Model, b Batch) digest {
		var d digest
		d.add("encode", m.Encode(b))
		out := make([]float32, b.B*m.Config.VocabSize)
		SpladeEncode(m, b, out, nil)
		d.add("splade infer", out)
		return d
	}
	var want digest
	withThreads(t, 1, func() { want = encode(threadModel(t, "bert")) })
	withThreads(t, 8, func() {
		var got [4]digest
		done := make(chan int)
		for i := range got {
			m, b := threadModel(t, "bert")
			go func() { got[i] = encode(m, b); done <- i }()
		}
		for range got {
			<-done
		}
		for i := range got {
			got[i].same(t, &want, fmt.Sprintf("concurrent model %d", i))
		}
	})
}
