package splade

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/spladapt/spladapt/safetensors"
)

// ---- naive dense reference: O(B·V) everywhere, written from the formulas ----

// naiveTerms evaluates every term and its dense gradient (float64).
type naiveOut struct {
	nce, mmse, flopsQ, flopsD, l1Q, l1D float64
	// gradients of each term with respect to Q, P, N
	gNCE, gMMSE, gFQ, gFD, gL1Q, gL1D [3][]float64
}

func naive(q, p, n []float64, B, nn, V int, teacher []float64) naiveOut {
	var o naiveOut
	zero := func() [3][]float64 {
		return [3][]float64{make([]float64, B*V), make([]float64, B*V), make([]float64, B*nn*V)}
	}
	o.gNCE, o.gMMSE, o.gFQ, o.gFD, o.gL1Q, o.gL1D = zero(), zero(), zero(), zero(), zero(), zero()
	K := B + B*nn
	docs := make([][]float64, K)
	for k := 0; k < B; k++ {
		docs[k] = p[k*V : (k+1)*V]
	}
	for k := 0; k < B*nn; k++ {
		docs[B+k] = n[k*V : (k+1)*V]
	}
	gdoc := func(g [3][]float64, k int) []float64 {
		if k < B {
			return g[1][k*V : (k+1)*V]
		}
		return g[2][(k-B)*V : (k-B+1)*V]
	}
	dotd := func(a, b []float64) float64 {
		var s float64
		for j := range a {
			s += a[j] * b[j]
		}
		return s
	}
	// InfoNCE
	for i := 0; i < B; i++ {
		qi := q[i*V : (i+1)*V]
		s := make([]float64, K)
		var z float64
		for k := range docs {
			s[k] = dotd(qi, docs[k])
			z += math.Exp(s[k])
		}
		o.nce += (math.Log(z) - s[i]) / float64(B)
		for k := range docs {
			gs := math.Exp(s[k]) / z
			if k == i {
				gs--
			}
			gs /= float64(B)
			for j := 0; j < V; j++ {
				o.gNCE[0][i*V+j] += gs * docs[k][j]
				gdoc(o.gNCE, k)[j] += gs * qi[j]
			}
		}
	}
	// MarginMSE
	if teacher != nil {
		R := float64(B * nn)
		for i := 0; i < B; i++ {
			qi := q[i*V : (i+1)*V]
			for m := 0; m < nn; m++ {
				r := i*nn + m
				ni := n[r*V : (r+1)*V]
				d := dotd(qi, docs[i]) - dotd(qi, ni) - teacher[r]
				o.mmse += d * d / R
				for j := 0; j < V; j++ {
					o.gMMSE[0][i*V+j] += 2 * d / R * (docs[i][j] - ni[j])
					o.gMMSE[1][i*V+j] += 2 * d / R * qi[j]
					o.gMMSE[2][r*V+j] -= 2 * d / R * qi[j]
				}
			}
		}
	}
	// FLOPS and L1 over stacked rows.
	reg := func(mats [][]float64, gidx []int, gF, gL [3][]float64) (flops, l1 float64) {
		rows := 0
		for _, m := range mats {
			rows += len(m) / V
		}
		N := float64(rows)
		for j := 0; j < V; j++ {
			var c float64
			for _, m := range mats {
				for i := 0; i < len(m)/V; i++ {
					c += math.Abs(m[i*V+j])
				}
			}
			a := c / N
			flops += a * a
			for mi, m := range mats {
				for i := 0; i < len(m)/V; i++ {
					x := m[i*V+j]
					sg := 0.0
					if x > 0 {
						sg = 1
					} else if x < 0 {
						sg = -1
					}
					gF[gidx[mi]][i*V+j] += 2 * a * sg / N
					gL[gidx[mi]][i*V+j] += sg / N
					l1 += math.Abs(x) / N
				}
			}
		}
		return
	}
	o.flopsQ, o.l1Q = reg([][]float64{q}, []int{0}, o.gFQ, o.gL1Q)
	o.flopsD, o.l1D = reg([][]float64{p, n}, []int{1, 2}, o.gFD, o.gL1D)
	return o
}

// randSplade returns a (rows, V) matrix with about density non-zeros, values
// in ±[0.1, 2] (negatives only when neg is set: SPLADE vectors are ≥ 0, the
// losses must not depend on that).
func randSplade(r *rand.Rand, rows, V int, density float64, neg bool) []float64 {
	w := make([]float64, rows*V)
	for i := range w {
		if r.Float64() < density {
			w[i] = 0.1 + 1.9*r.Float64()
			if neg && r.IntN(4) == 0 {
				w[i] = -w[i]
			}
		}
	}
	return w
}

func newBatch64(q, p, n []float64, B, nn, V int) *Batch[float64] {
	return &Batch[float64]{Q: NewMat(q, B, V), P: NewMat(p, B, V), N: NewMat(n, B*nn, V)}
}

// term evaluates one named term of the sparse implementation, adding
// weight·gradient into g.
func term(t *testing.T, name string, b *Batch[float64], teacher []float64, g *Grads[float64], w float64) float64 {
	t.Helper()
	switch name {
	case "infonce":
		return InfoNCE(b, g, w)
	case "margin_mse":
		v, err := MarginMSE(b, teacher, g, w)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var gq, gp, gn []float64
	if g != nil {
		gq, gp, gn = g.Q, g.P, g.N
	}
	q := []Block[float64]{{b.Q, gq}}
	d := []Block[float64]{{b.P, gp}, {b.N, gn}}
	switch name {
	case "flops_q":
		return FLOPS(w, q...)
	case "flops_d":
		return FLOPS(w, d...)
	case "l1_q":
		return L1(w, q...)
	case "l1_d":
		return L1(w, d...)
	}
	t.Fatalf("unknown term %q", name)
	return 0
}

var termNames = []string{"infonce", "margin_mse", "flops_q", "flops_d", "l1_q", "l1_d"}

func (o naiveOut) get(name string) (float64, [3][]float64) {
	switch name {
	case "infonce":
		return o.nce, o.gNCE
	case "margin_mse":
		return o.mmse, o.gMMSE
	case "flops_q":
		return o.flopsQ, o.gFQ
	case "flops_d":
		return o.flopsD, o.gFD
	case "l1_q":
		return o.l1Q, o.gL1Q
	case "l1_d":
		return o.l1D, o.gL1D
	}
	panic(name)
}

// TestLossesAgainstNaive compares values and gradients of the sparse
// implementation with the dense reference on random batches, with one and
// several negatives per query and with signed entries.
func TestLossesAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		B, nn, V int
		density  float64
		neg      bool
	}{
		{1, 1, 5, 0.5, false},
		{3, 1, 40, 0.2, false},
		{4, 3, 60, 0.1, true},
		{5, 2, 200, 0.05, false},
		{2, 2, 30, 0, false}, // all-zero vectors: every score 0
	} {
		t.Run(fmt.Sprintf("B=%d/nneg=%d/V=%d/density=%g", tc.B, tc.nn, tc.V, tc.density), func(t *testing.T) {
			q := randSplade(r, tc.B, tc.V, tc.density, tc.neg)
			p := randSplade(r, tc.B, tc.V, tc.density, tc.neg)
			n := randSplade(r, tc.B*tc.nn, tc.V, tc.density, tc.neg)
			teacher := make([]float64, tc.B*tc.nn)
			for i := range teacher {
				teacher[i] = 3 * r.NormFloat64()
			}
			ref := naive(q, p, n, tc.B, tc.nn, tc.V, teacher)
			b := newBatch64(q, p, n, tc.B, tc.nn, tc.V)
			for _, name := range termNames {
				const w = 0.7
				g := &Grads[float64]{make([]float64, len(q)), make([]float64, len(p)), make([]float64, len(n))}
				got := term(t, name, b, teacher, g, w)
				want, wg := ref.get(name)
				if !close(got, want, 1e-12) {
					t.Errorf("%s = %.17g, naive %.17g", name, got, want)
				}
				for m, gm := range [][]float64{g.Q, g.P, g.N} {
					for j := range gm {
						if !close(gm[j], w*wg[m][j], 1e-12) {
							t.Fatalf("%s: d%s[%d] = %.17g, naive %.17g", name, "QPN"[m:m+1], j, gm[j], w*wg[m][j])
						}
					}
				}
			}
		})
	}
}

// TestLossGradientsFiniteDifferences checks every gradient element against
// central differences in float64. Entries that are 0 are perturbed too: for
// the |·| terms the central difference at 0 is 0, the subgradient PyTorch
// uses and this package returns.
func TestLossGradientsFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const B, nn, V = 3, 2, 12
	q := randSplade(r, B, V, 0.4, true)
	p := randSplade(r, B, V, 0.4, false)
	n := randSplade(r, B*nn, V, 0.4, false)
	teacher := []float64{0.5, -1, 2, 0.1, 0, 1.5}
	const h = 1e-6
	for _, name := range termNames {
		b := newBatch64(q, p, n, B, nn, V)
		g := &Grads[float64]{make([]float64, len(q)), make([]float64, len(p)), make([]float64, len(n))}
		term(t, name, b, teacher, g, 1)
		checked := 0
		for m, w := range [][]float64{q, p, n} {
			for j := range w {
				x := w[j]
				w[j] = x + h
				fp := term(t, name, newBatch64(q, p, n, B, nn, V), teacher, nil, 0)
				w[j] = x - h
				fm := term(t, name, newBatch64(q, p, n, B, nn, V), teacher, nil, 0)
				w[j] = x
				fd := (fp - fm) / (2 * h)
				an := [][]float64{g.Q, g.P, g.N}[m][j]
				if math.Abs(fd-an) > 1e-6*math.Max(1, math.Abs(an)) {
					t.Errorf("%s: d%s[%d]: analytic %.10g, finite difference %.10g", name, "QPN"[m:m+1], j, an, fd)
				}
				checked++
			}
		}
		if checked != (2*B+B*nn)*V {
			t.Fatalf("%s: checked %d elements", name, checked)
		}
	}
}

func close(a, b, rtol float64) bool {
	return math.Abs(a-b) <= rtol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// TestObjectiveWeightsAndWarmup checks that Objective's total and gradient
// are the weighted sums of the terms with the warmed-up λ.
func TestObjectiveWeightsAndWarmup(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const B, nn, V = 3, 2, 50
	q := randSplade(r, B, V, 0.2, false)
	p := randSplade(r, B, V, 0.2, false)
	n := randSplade(r, B*nn, V, 0.2, false)
	teacher := []float64{1, 2, 3, -1, 0, 0.5}
	ref := naive(q, p, n, B, nn, V, teacher)
	w := Weights{InfoNCE: 1, MarginMSE: 0.5, FLOPSQ: 0.05, FLOPSD: 0.03, L1Q: 0.01, L1D: 0.002, WarmupSteps: 10}
	for _, step := range []int{0, 3, 10, 25} {
		g := &Grads[float64]{make([]float64, len(q)), make([]float64, len(p)), make([]float64, len(n))}
		tm, err := Objective(newBatch64(q, p, n, B, nn, V), teacher, w, step, g)
		if err != nil {
			t.Fatal(err)
		}
		f := math.Min(1, float64(step)/10)
		f *= f
		coef := map[string]float64{"infonce": 1, "margin_mse": 0.5, "flops_q": 0.05 * f, "flops_d": 0.03 * f, "l1_q": 0.01 * f, "l1_d": 0.002 * f}
		var total float64
		want := [3][]float64{make([]float64, len(q)), make([]float64, len(p)), make([]float64, len(n))}
		for name, c := range coef {
			v, gr := ref.get(name)
			total += c * v
			for m := range want {
				for j := range want[m] {
					want[m][j] += c * gr[m][j]
				}
			}
		}
		if !close(tm.Total, total, 1e-12) {
			t.Errorf("step %d: total %.17g, want %.17g", step, tm.Total, total)
		}
		if !close(tm.LambdaFLOPSD, 0.03*f, 1e-15) {
			t.Errorf("step %d: λ_d %g, want %g", step, tm.LambdaFLOPSD, 0.03*f)
		}
		for m, gm := range [][]float64{g.Q, g.P, g.N} {
			for j := range gm {
				if !close(gm[j], want[m][j], 1e-12) {
					t.Fatalf("step %d: d%s[%d] = %g, want %g", step, "QPN"[m:m+1], j, gm[j], want[m][j])
				}
			}
		}
		nnzQ, nnzD := 0, 0
		for _, x := range q {
			if x != 0 {
				nnzQ++
			}
		}
		for _, x := range append(append([]float64{}, p...), n...) {
			if x != 0 {
				nnzD++
			}
		}
		if tm.MeanNNZQuery != float64(nnzQ)/B || tm.MeanNNZDoc != float64(nnzD)/(B+B*nn) {
			t.Errorf("nnz per query %g per doc %g, want %g %g", tm.MeanNNZQuery, tm.MeanNNZDoc, float64(nnzQ)/B, float64(nnzD)/(B+B*nn))
		}
	}
	if _, err := Objective(newBatch64(q, p, n, B, nn, V), nil, w, 0, nil); err == nil {
		t.Error("margin-mse weight without teacher margins: no error")
	}
	odd := &Batch[float64]{Q: NewMat(q, B, V), P: NewMat(p, B, V), N: NewMat(n[:V*(B*nn-1)], B*nn-1, V)}
	if _, err := Objective(odd, nil, Weights{InfoNCE: 1}, 0, nil); err == nil {
		t.Error("5 negatives for 3 queries: no error")
	}
}

func TestLambda(t *testing.T) {
	for _, c := range []struct {
		step, T int
		want    float64
	}{{0, 0, 2}, {5, 0, 2}, {0, 4, 0}, {1, 4, 2.0 / 16}, {2, 4, 0.5}, {4, 4, 2}, {100, 4, 2}, {-1, 4, 0}} {
		if got := Lambda(c.step, 2, c.T); got != c.want {
			t.Errorf("Lambda(%d, 2, %d) = %g, want %g", c.step, c.T, got, c.want)
		}
	}
}

// ---- PyTorch oracle goldens ----

// oracleCase finds an oracle case directory: vendored under the repository's
// testdata/oracle, else in ../shared/tools/oracle/cases.
func oracleCase(t *testing.T, name string) string {
	t.Helper()
	for _, d := range []string{
		filepath.Join("..", "testdata", "oracle", name, "golden"),
		filepath.Join("..", "..", "shared", "tools", "oracle", "cases", name, "golden"),
	} {
		if _, err := os.Stat(filepath.Join(d, "losses.json")); err == nil {
			return d
		}
	}
	t.Skipf("oracle case %s not found in ../testdata/oracle/%s/golden or ../../shared/tools/oracle/cases/%s/golden", name, name, name)
	return ""
}

// TestLossesOracle computes the six loss terms from the oracle's SPLADE
// vectors and compares them with its float64 losses.
//
// Tolerance: the golden vectors are float64 results rounded to float32
// (relative error ≤ 2⁻²⁴ ≈ 6e-8 per element), the losses are the float64
// values before rounding. Products of two rounded elements carry up to
// ~1.2e-7 relative error, and InfoNCE and MarginMSE are differences of such
// sums, which can enlarge the relative error. The observed errors are
// logged: at most 5.5e-8 on both cases. 1e-6 relative leaves 18× headroom
// and is far below the effect of any wrong formula (a 1/B for a 1/2B, a
// missing negative or a sum for a mean changes a term by ≥ 10%).
func TestLossesOracle(t *testing.T) {
	for _, c := range []string{"bert-tiny", "distilbert-tiny"} {
		t.Run(c, func(t *testing.T) {
			dir := oracleCase(t, c)
			out, err := safetensors.ReadFile(filepath.Join(dir, "outputs.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			in, err := safetensors.ReadFile(filepath.Join(dir, "inputs.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "losses.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]float64
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			mat := func(name string) *Mat[float32] {
				w, shape, err := out.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				if len(shape) != 2 {
					t.Fatalf("%s: shape %v", name, shape)
				}
				return NewMat(w, shape[0], shape[1])
			}
			b := &Batch[float32]{Q: mat("q.splade"), P: mat("pos.splade"), N: mat("neg.splade")}
			if err := b.Validate(); err != nil {
				t.Fatal(err)
			}
			teacher, _, err := in.Float32("teacher_margin")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("B=%d V=%d non-zeros per query %.1f, per doc %.1f", b.B(), b.Q.V, MeanNNZ(b.Q), MeanNNZ(b.P, b.N))
			if MeanNNZ(b.Q) == 0 || MeanNNZ(b.Q) == float64(b.Q.V) {
				t.Fatalf("degenerate golden vectors: %g non-zeros per query", MeanNNZ(b.Q))
			}

			mmse, err := MarginMSE(b, teacher, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			q := Block[float32]{M: b.Q}
			got := map[string]float64{
				"infonce":    InfoNCE(b, nil, 0),
				"margin_mse": mmse,
				"flops_q":    FLOPS(0, q),
				"flops_d":    FLOPS(0, Block[float32]{M: b.P}, Block[float32]{M: b.N}),
				"l1_q":       L1(0, q),
				"l1_d":       L1(0, Block[float32]{M: b.P}, Block[float32]{M: b.N}),
			}
			for _, name := range termNames {
				w, ok := want[name]
				if !ok {
					t.Fatalf("losses.json has no %q", name)
				}
				rel := math.Abs(got[name]-w) / math.Abs(w)
				t.Logf("%-10s go %.12g oracle %.12g rel.err %.2e", name, got[name], w, rel)
				if rel > 1e-6 {
					t.Errorf("%s = %.12g, oracle %.12g (rel. error %.2e > 1e-6)", name, got[name], w, rel)
				}
			}

			// The intermediate tensors: score matrix and student margins.
			// Both sides are float32-rounded here, so compare at 1e-5 of
			// the tensor's scale.
			cmp := func(name string, got []float64) {
				w, _, err := out.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				if len(w) != len(got) {
					t.Fatalf("%s: %d values, golden %d", name, len(got), len(w))
				}
				scale := 0.0
				for _, x := range w {
					scale = math.Max(scale, math.Abs(float64(x)))
				}
				for i := range w {
					if math.Abs(got[i]-float64(w[i])) > 1e-5*scale {
						t.Errorf("%s[%d] = %.9g, golden %.9g", name, i, got[i], w[i])
					}
				}
			}
			cmp("scores", Scores(b))
			cmp("student_margin", StudentMargins(b))

			// float32 gradients equal the float64 dense reference on the
			// same (golden) vectors.
			B, V := b.B(), b.Q.V
			to64 := func(x []float32) []float64 {
				y := make([]float64, len(x))
				for i := range x {
					y[i] = float64(x[i])
				}
				return y
			}
			t64 := to64(teacher)
			ref := naive(to64(b.Q.W), to64(b.P.W), to64(b.N.W), B, 1, V, t64)
			for _, name := range termNames {
				g := &Grads[float32]{make([]float32, B*V), make([]float32, B*V), make([]float32, B*V)}
				switch name {
				case "infonce":
					InfoNCE(b, g, 1)
				case "margin_mse":
					MarginMSE(b, teacher, g, 1)
				case "flops_q":
					FLOPS(1, Block[float32]{b.Q, g.Q})
				case "flops_d":
					FLOPS(1, Block[float32]{b.P, g.P}, Block[float32]{b.N, g.N})
				case "l1_q":
					L1(1, Block[float32]{b.Q, g.Q})
				case "l1_d":
					L1(1, Block[float32]{b.P, g.P}, Block[float32]{b.N, g.N})
				}
				_, wg := ref.get(name)
				for m, gm := range [][]float32{g.Q, g.P, g.N} {
					for j := range gm {
						if math.Abs(float64(gm[j])-wg[m][j]) > 1e-6*math.Max(1, math.Abs(wg[m][j])) {
							t.Fatalf("%s: d%s[%d] = %g, naive %g", name, "QPN"[m:m+1], j, gm[j], wg[m][j])
						}
					}
				}
			}
		})
	}
}

// BenchmarkObjective measures one step's losses and gradients at BERT's
// vocabulary size with realistic SPLADE sparsity, including the O(R·V)
// non-zero indexing of the three matrices.
func BenchmarkObjective(b *testing.B) {
	const V = 30522
	for _, c := range []struct{ B, nn, nnz int }{{32, 1, 100}, {32, 1, 400}, {16, 4, 200}} {
		b.Run(fmt.Sprintf("B=%d/nneg=%d/nnz=%d/V=%d", c.B, c.nn, c.nnz, V), func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, 8))
			gen := func(rows int) []float32 {
				w := make([]float32, rows*V)
				for i := 0; i < rows; i++ {
					for k := 0; k < c.nnz; k++ {
						w[i*V+r.IntN(V)] = float32(r.Float64())
					}
				}
				return w
			}
			q, p, n := gen(c.B), gen(c.B), gen(c.B*c.nn)
			teacher := make([]float32, c.B*c.nn)
			g := &Grads[float32]{make([]float32, len(q)), make([]float32, len(p)), make([]float32, len(n))}
			w := Weights{InfoNCE: 1, MarginMSE: 1, FLOPSQ: 0.05, FLOPSD: 0.03}
			b.ReportAllocs()
			for b.Loop() {
				bt := &Batch[float32]{Q: NewMat(q, c.B, V), P: NewMat(p, c.B, V), N: NewMat(n, c.B*c.nn, V)}
				if _, err := Objective(bt, teacher, w, 100, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
