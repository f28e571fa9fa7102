package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// withKernels runs f with the kernel level name in force, restoring the
// previous level afterwards.
func withKernels(t testing.TB, name string, f func()) {
	t.Helper()
	prev := kernelLevel
	defer func() { kernelLevel = prev }()
	if err := SetKernels(name); err != nil {
		t.Fatalf("SetKernels(%q): %v", name, err)
	}
	f()
}

// needAVX512 skips the test on a CPU (or OS, or build) without the AVX-512
// kernels.
func needAVX512(t testing.TB) {
	t.Helper()
	if !cgoKernels {
		t.Skip("AVX-512 kernels need cgo: this build is CGO_ENABLED=0")
	}
	if cpuKernelLevel() < levelAVX512 {
		t.Skipf("AVX-512 kernels not runnable here (best level %s): the CPU lacks avx512f/bw/vl or the OS does not save the zmm state", levelNames[cpuKernelLevel()])
	}
}

func TestSetKernels(t *testing.T) {
	if err := KernelsEnvError(); err != nil {
		t.Fatal(err) // a benchmark run with SPLADAPT_KERNELS misspelled would measure the default
	}
	prev := kernelLevel
	defer func() { kernelLevel = prev }()
	for _, bad := range []string{"", "sse", "AVX2", "avx-512"} {
		if err := SetKernels(bad); err == nil || !strings.Contains(err.Error(), "unknown kernels") {
			t.Errorf("SetKernels(%q) = %v, want an unknown-kernels error", bad, err)
		}
	}
	if err := SetKernels("auto"); err != nil {
		t.Fatal(err)
	}
	best := Kernels()
	want := map[int]string{levelScalar: "scalar", levelAVX2: "avx2", levelAVX512: "avx512"}[cpuKernelLevel()]
	if !cgoKernels {
		want = "go"
	}
	if best != want {
		t.Fatalf("Kernels() after auto = %q, want %q", best, want)
	}
	for _, name := range []string{"avx2", "avx512"} {
		err := SetKernels(name)
		runnable := cgoKernels && map[string]int{"avx2": levelAVX2, "avx512": levelAVX512}[name] <= cpuKernelLevel()
		switch {
		case runnable && err != nil:
			t.Errorf("SetKernels(%q) on a CPU that runs it: %v", name, err)
		case runnable && Kernels() != name:
			t.Errorf("after SetKernels(%q), Kernels() = %q", name, Kernels())
		case !runnable && err == nil:
			t.Errorf("SetKernels(%q) accepted where it cannot run (best %s)", name, best)
		case !runnable && Kernels() != best:
			t.Errorf("failed SetKernels(%q) changed the kernels to %q", name, Kernels())
		}
		SetKernels("auto")
	}
}

// poolShapes are ragged cases for the pooling kernels: panel counts 1–5
// and 9 (the AVX-512 kernel's tiles of four panels and every remainder),
// hidden sizes that are not multiples of 16, vocabularies that are not
// multiples of the 6-row block, T = 1, empty sequences and masks with holes.
var poolShapes = []struct {
	name       string
	B, T, C, V int
	lens       []int
	holes      bool
}{
	{"T=1", 1, 1, 1, 1, []int{1}, false},
	{"T=1-wide", 3, 1, 33, 7, []int{1, 0, 1}, false},
	{"panels-1..5", 6, 80, 17, 6*11 + 5, []int{1, 16, 17, 33, 64, 80}, false},
	{"holes", 4, 150, 40, 101, []int{150, 0, 129, 47}, true},
	{"nine-panels", 2, 144, 3, 13, []int{144, 140}, false},
	{"hidden-768", 2, 70, 768, 25, []int{70, 5}, false},
}

// TestPoolAVX512MatchesAVX2AndOracle: on ragged shapes, the AVX-512 pooling
// kernels give the AVX2 kernels' weights and argmax bit for bit (same FMA
// chains), and both are within float32 rounding of the float64 oracle.
func TestPoolAVX512MatchesAVX2AndOracle(t *testing.T) {
	needAVX512(t)
	rng := rand.New(rand.NewPCG(19, 512))
	for _, tc := range poolShapes {
		t.Run(tc.name, func(t *testing.T) {
			B, T, C, V := tc.B, tc.T, tc.C, tc.V
			z, mask, emb, bias := spladeCase(rng, B, T, C, V, tc.lens, tc.holes)
			want, warg, gap := naiveSplade(to64(z), to64(mask), to64(emb), to64(bias), B, T, C, V)
			type result struct {
				inf, fwd []float32
				arg      []int32
			}
			run := func(name string) result {
				r := result{make([]float32, B*V), make([]float32, B*V), make([]int32, B*V)}
				for i := range r.inf {
					r.inf[i], r.fwd[i], r.arg[i] = 42, 42, 42 // must be overwritten
				}
				withKernels(t, name, func() {
					SpladePoolInfer(z, mask, emb, bias, B, T, C, V, r.inf)
					SpladePoolForward(z, mask, emb, bias, B, T, C, V, r.fwd, r.arg)
				})
				return r
			}
			a2, a5 := run("avx2"), run("avx512")
			for i := range want {
				b, v := i/V, i%V
				if math.Float32bits(a5.inf[i]) != math.Float32bits(a2.inf[i]) || math.Float32bits(a5.fwd[i]) != math.Float32bits(a2.fwd[i]) || a5.arg[i] != a2.arg[i] {
					t.Fatalf("b=%d v=%d: avx512 infer %g forward %g argmax %d, avx2 %g %g %d", b, v, a5.inf[i], a5.fwd[i], a5.arg[i], a2.inf[i], a2.fwd[i], a2.arg[i])
				}
				tol := 1e-5 * (1 + want[i]) * math.Max(1, math.Sqrt(float64(C)/64))
				if d := math.Abs(float64(a5.inf[i]) - want[i]); d > tol {
					t.Fatalf("b=%d v=%d: avx512 weight %g, oracle %g", b, v, a5.inf[i], want[i])
				}
				if warg[i] < 0 {
					if a5.arg[i] != -1 || a5.fwd[i] != 0 {
						t.Fatalf("empty sequence %d: weight %g argmax %d, want 0 and -1", b, a5.fwd[i], a5.arg[i])
					}
					continue
				}
				if gap[i] > 1e-4 && int(a5.arg[i]) != warg[i] {
					t.Fatalf("b=%d v=%d: avx512 argmax %d, oracle %d (gap %g)", b, v, a5.arg[i], warg[i], gap[i])
				}
			}
		})
	}
}

// TestAttentionAVX512MatchesAVX2AndOracle: on ragged shapes (T = 1, T not a
// multiple of 16 or 64, head sizes 16–144, padded keys, a head whose keys
// are all padded, rows at a stride wider than the head), the AVX-512
// attention kernel gives the AVX2 kernel's P and context bit for bit, and
// both are within float32 rounding of float64 attention.
func TestAttentionAVX512MatchesAVX2AndOracle(t *testing.T) {
	needAVX512(t)
	rng := rand.New(rand.NewPCG(19, 64))
	for _, tc := range []struct {
		T, d, ld int
		pad      []int32
	}{
		{1, 16, 16, nil},
		{1, 64, 192, nil},
		{5, 48, 48, []int32{0, 1, 2, 3, 4}},
		{17, 80, 96, []int32{16}},
		{37, 32, 80, []int32{3, 17, 36}},
		{65, 64, 256, []int32{0, 64}},
		{100, 144, 160, nil},
		{130, 64, 64, []int32{7, 8, 9, 128, 129}},
	} {
		t.Run(fmt.Sprintf("T=%d/d=%d", tc.T, tc.d), func(t *testing.T) {
			T, d, ld := tc.T, tc.d, tc.ld
			q, k, v := randSlice(rng, T*ld), randSlice(rng, T*ld), randSlice(rng, T*ld)
			for i := range q {
				q[i] *= 3 // peaked softmax rows
			}
			scale := float32(1 / math.Sqrt(float64(d)))
			run := func(name string) (P, ctx []float32) {
				P, ctx = make([]float32, T*T), make([]float32, T*ld)
				withKernels(t, name, func() {
					if !attnHeadKernel(q, k, v, ld, T, d, scale, tc.pad, P, ctx, make([]float32, attnScratch(T, d))) {
						t.Fatalf("attention kernel %s did not run", name)
					}
				})
				return P, ctx
			}
			P2, c2 := run("avx2")
			P5, c5 := run("avx512")
			for i := range P2 {
				if math.Float32bits(P5[i]) != math.Float32bits(P2[i]) {
					t.Fatalf("P[%d,%d]: avx512 %g, avx2 %g", i/T, i%T, P5[i], P2[i])
				}
			}
			for i := range T {
				for c := range d {
					if j := i*ld + c; math.Float32bits(c5[j]) != math.Float32bits(c2[j]) {
						t.Fatalf("ctx[%d,%d]: avx512 %g, avx2 %g", i, c, c5[j], c2[j])
					}
				}
			}
			wantP, wantCtx := naiveAttention(q, k, v, ld, T, d, scale, tc.pad)
			for i := range wantP {
				// float32 scores and expf32: a few ulps of P relative.
				if math.Abs(float64(P5[i])-wantP[i]) > 1e-6+3e-6*wantP[i] {
					t.Fatalf("P[%d,%d] = %g, oracle %g", i/T, i%T, P5[i], wantP[i])
				}
			}
			for i := range T {
				for c := range d {
					if w := wantCtx[i*d+c]; math.Abs(float64(c5[i*ld+c])-w) > 1e-5 {
						t.Fatalf("ctx[%d,%d] = %g, oracle %g", i, c, c5[i*ld+c], w)
					}
				}
			}
		})
	}
}

// naiveAttention is float64 attention: P (T,T) = softmax(scale·q·kᵀ) with
// the pad keys at −∞ (a row of zeros when every key is padded), ctx (T,d) =
// P·v; q, k, v rows of width d at stride ld.
func naiveAttention(q, k, v []float32, ld, T, d int, scale float32, pad []int32) (P, ctx []float64) {
	padded := map[int]bool{}
	for _, j := range pad {
		padded[int(j)] = true
	}
	P, ctx = make([]float64, T*T), make([]float64, T*d)
	for i := range T {
		s := P[i*T : (i+1)*T]
		mx := math.Inf(-1)
		for j := range T {
			if padded[j] {
				continue
			}
			for c := range d {
				s[j] += float64(q[i*ld+c]) * float64(k[j*ld+c])
			}
			s[j] *= float64(scale)
			mx = max(mx, s[j])
		}
		var sum float64
		for j := range T {
			if padded[j] {
				s[j] = 0
				continue
			}
			s[j] = math.Exp(s[j] - mx)
			sum += s[j]
		}
		for j := range T {
			if sum > 0 {
				s[j] /= sum
			}
			for c := range d {
				ctx[i*d+c] += s[j] * float64(v[j*ld+c])
			}
		}
	}
	return P, ctx
}

// kernelLevels lists the kernel levels this machine runs, for side-by-side
// benchmarks (run with -count N: the levels then alternate).
func kernelLevels() []string {
	var out []string
	for l, name := range levelNames {
		if l >= levelAVX2 && cgoKernels && l <= cpuKernelLevel() {
			out = append(out, name)
		}
	}
	return out
}

// BenchmarkKernels times the fused kernels at each level this CPU runs:
// the SPLADE pooling (inference and with the argmax) at hidden sizes 256
// and 768, 8×256 positions against V = 30 522, on the workers (Threads),
// and attention heads (T = 256, head size 64, 16 heads per op, on one
// thread). With each, cpu-ms/op: the process CPU time, the figure to read
// on a loaded machine.
func BenchmarkKernels(b *testing.B) {
	const V = 30522
	rng := rand.New(rand.NewPCG(1, 2))
	for _, C := range []int{256, 768} {
		const B, T = 8, 256
		lens := make([]int, B)
		for i := range lens {
			lens[i] = T
		}
		z, mask, emb, bias := spladeCase(rng, B, T, C, V, lens, false)
		out, arg := make([]float32, B*V), make([]int32, B*V)
		flops := 2 * float64(B*T) * V * float64(C)
		for _, pass := range []string{"infer", "forward"} {
			for _, k := range kernelLevels() {
				b.Run(fmt.Sprintf("op=pool-%s/hidden=%d/kernels=%s", pass, C, k), func(b *testing.B) {
					c0 := processCPU()
					withKernels(b, k, func() {
						for b.Loop() {
							if pass == "infer" {
								SpladePoolInfer(z, mask, emb, bias, B, T, C, V, out)
							} else {
								SpladePoolForward(z, mask, emb, bias, B, T, C, V, out, arg)
							}
						}
					})
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
					reportCPU(b, c0)
				})
			}
		}
	}
	const T, d, heads = 256, 64, 16
	q, k, v := randSlice(rng, heads*T*d), randSlice(rng, heads*T*d), randSlice(rng, heads*T*d)
	P, ctx := make([]float32, heads*T*T), make([]float32, heads*T*d)
	scr := make([]float32, attnScratch(T, d))
	for _, kl := range kernelLevels() {
		b.Run(fmt.Sprintf("op=attention/len=%d/head=%d/kernels=%s", T, d, kl), func(b *testing.B) {
			c0 := processCPU()
			withKernels(b, kl, func() {
				for b.Loop() {
					for h := range heads { // on one thread: the CPU time is the kernel's
						o := h * T * d
						attnHeadKernel(q[o:], k[o:], v[o:], d, T, d, 0.125, nil, P[h*T*T:], ctx[o:], scr)
					}
				}
			})
			b.ReportMetric(float64(heads)*4*T*T*d*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			reportCPU(b, c0)
		})
	}
	// GELU over one bert-mini FFN activation (32·256 × 1024) and its
	// backward; the softmax cross-entropy over 64 rows of 30 522.
	x := randSlice(rng, 32*256*1024)
	for i := range x {
		x[i] *= 4
	}
	y := make([]float32, len(x))
	rows := randSlice(rng, 64*V)
	row := make([]float32, V)
	for _, op := range []struct {
		name string
		f    func()
	}{
		{"gelu", func() { GELU(y, x) }},
		{"gelu-backward", func() { GELUBackward(y, x, x) }},
		{"softmax-xent", func() {
			for r := range 64 {
				copy(row, rows[r*V:(r+1)*V])
				softmaxXentKernel(row, r)
			}
		}},
	} {
		for _, kl := range kernelLevels() {
			b.Run(fmt.Sprintf("op=%s/kernels=%s", op.name, kl), func(b *testing.B) {
				c0 := processCPU()
				withKernels(b, kl, func() {
					for b.Loop() {
						op.f()
					}
				})
				reportCPU(b, c0)
			})
		}
	}
}

// TestElementwiseAVX512MatchesAVX2: the element-wise kernels with an
// AVX-512 build (GELU and its backward, AdamW, column sums, LayerNorm
// backward, softmax cross-entropy) give the AVX2 build's results bit for
// bit on lengths around the vector widths. Their accuracy against float64
// and the Go loops is checked at the default level by TestGELUBound,
// TestSoftmaxCrossEntropy, TestBackwardKernelsMatchGo and
// TestAdamWKernelMatchesGo (run them with SPLADAPT_KERNELS=avx2 for the
// AVX2 build).
func TestElementwiseAVX512MatchesAVX2(t *testing.T) {
	needAVX512(t)
	rng := rand.New(rand.NewPCG(19, 1))
	same := func(what string, n int, a, b []float32) {
		t.Helper()
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%s n=%d [%d]: avx512 %g, avx2 %g", what, n, i, b[i], a[i])
			}
		}
	}
	for _, n := range []int{1, 3, 7, 15, 16, 17, 31, 33, 1031} {
		x, dy := randSlice(rng, n), randSlice(rng, n)
		for i := range x {
			x[i] *= 6
		}
		// Each op writes into fresh copies of its inputs and returns what it wrote.
		ops := []struct {
			name string
			f    func() [][]float32
		}{
			{"gelu", func() [][]float32 { y := make([]float32, n); geluKernel(y, x); return [][]float32{y} }},
			{"gelu-backward", func() [][]float32 { y := make([]float32, n); geluBackwardKernel(y, dy, x); return [][]float32{y} }},
			{"adamw", func() [][]float32 {
				w, m, v := slices32(x), slices32(dy), make([]float32, n)
				for i := range v {
					v[i] = dy[i] * dy[i]
				}
				adamwKernel(w, dy, m, v, 0.9, 0.999, 1e-3/(1-0.9), math.Sqrt(1-0.999), 1e-8, 1-1e-5)
				return [][]float32{w, m, v}
			}},
			{"softmax-xent", func() [][]float32 {
				r := slices32(x)
				loss := softmaxXentKernel(r, n/2)
				return [][]float32{r, {float32(loss), float32(loss - float64(float32(loss)))}}
			}},
		}
		// (rows, columns) shapes from n for the row-wise kernels.
		rows, cols := 1+n%5, n
		xr, dr := randSlice(rng, rows*cols), randSlice(rng, rows*cols)
		gamma, mean, rstd := randSlice(rng, cols), randSlice(rng, rows), make([]float32, rows)
		for i := range rstd {
			rstd[i] = 0.5 + float32(i)
		}
		ops = append(ops,
			struct {
				name string
				f    func() [][]float32
			}{"colsum", func() [][]float32 {
				db := slices32(gamma)
				colSumKernel(db, dr, rows, cols, cols/3, cols)
				return [][]float32{db}
			}},
			struct {
				name string
				f    func() [][]float32
			}{"layernorm-backward", func() [][]float32 {
				dx, dg, db := slices32(xr), slices32(gamma), slices32(gamma)
				layerNormBackwardKernel(dx, dg, db, dr, xr, mean, rstd, gamma, rows, cols)
				return [][]float32{dx, dg, db}
			}})
		for _, op := range ops {
			var a2, a5 [][]float32
			withKernels(t, "avx2", func() { a2 = op.f() })
			withKernels(t, "avx512", func() { a5 = op.f() })
			for i := range a2 {
				same(fmt.Sprintf("%s output %d", op.name, i), n, a2[i], a5[i])
			}
		}
	}
}

func slices32(x []float32) []float32 { return append([]float32(nil), x...) }
