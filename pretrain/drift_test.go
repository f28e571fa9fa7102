package pretrain

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randMatrix(rng *rand.Rand, n, p int, scale float64) []float32 {
	x := make([]float32, n*p)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

// matMul is x (n,p) times w (p,q), in float64, rounded to float32.
func matMul(x []float32, w []float64, n, p, q int) []float32 {
	out := make([]float32, n*q)
	for i := range n {
		for j := range q {
			s := 0.0
			for k := range p {
				s += float64(x[i*p+k]) * w[k*q+j]
			}
			out[i*q+j] = float32(s)
		}
	}
	return out
}

// orthogonal is a random p×p orthogonal matrix (Gram–Schmidt on Gaussian
// columns).
func orthogonal(rng *rand.Rand, p int) []float64 {
	q := make([]float64, p*p)
	for j := range p {
		col := make([]float64, p)
		for i := range col {
			col[i] = rng.NormFloat64()
		}
		for k := range j {
			d := 0.0
			for i := range p {
				d += col[i] * q[i*p+k]
			}
			for i := range p {
				col[i] -= d * q[i*p+k]
			}
		}
		norm := 0.0
		for _, v := range col {
			norm += v * v
		}
		for i := range p {
			q[i*p+j] = col[i] / math.Sqrt(norm)
		}
	}
	return q
}

// bruteCKA is the paper's definition through n×n kernel matrices:
// HSIC(K, L) = tr(K H L H)/(n−1)², CKA = HSIC(K,L)/√(HSIC(K,K)·HSIC(L,L)),
// K = X Xᵀ, L = Y Yᵀ, H = I − 11ᵀ/n — a different computation from
// LinearCKA's feature-space sums.
func bruteCKA(x, y []float32, n, p, q int) float64 {
	gram := func(a []float32, d int) [][]float64 {
		k := make([][]float64, n)
		for i := range n {
			k[i] = make([]float64, n)
			for j := range n {
				for c := range d {
					k[i][j] += float64(a[i*d+c]) * float64(a[j*d+c])
				}
			}
		}
		return k
	}
	center := func(k [][]float64) [][]float64 { // H K H
		out := make([][]float64, n)
		row, col, all := make([]float64, n), make([]float64, n), 0.0
		for i := range n {
			for j := range n {
				row[i] += k[i][j] / float64(n)
				col[j] += k[i][j] / float64(n)
				all += k[i][j] / float64(n*n)
			}
		}
		for i := range n {
			out[i] = make([]float64, n)
			for j := range n {
				out[i][j] = k[i][j] - row[i] - col[j] + all
			}
		}
		return out
	}
	hsic := func(a, b [][]float64) float64 { // tr(Ã B̃) for symmetric centred matrices
		s := 0.0
		for i := range n {
			for j := range n {
				s += a[i][j] * b[j][i]
			}
		}
		return s / float64((n-1)*(n-1))
	}
	k, l := center(gram(x, p)), center(gram(y, q))
	return hsic(k, l) / math.Sqrt(hsic(k, k)*hsic(l, l))
}

func TestLinearCKAMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, p, q int }{{2, 1, 1}, {7, 5, 3}, {40, 8, 8}, {25, 3, 12}} {
		x := randMatrix(rng, c.n, c.p, 1)
		// y shares a part of x, so CKA is neither 0 nor 1.
		y := matMul(x, func() []float64 {
			w := make([]float64, c.p*c.q)
			for i := range w {
				w[i] = rng.NormFloat64()
			}
			return w
		}(), c.n, c.p, c.q)
		for i := range y {
			y[i] += float32(rng.NormFloat64())
		}
		got, want := LinearCKA(x, y, c.n, c.p, c.q), bruteCKA(x, y, c.n, c.p, c.q)
		if math.Abs(got-want) > 1e-9 || math.IsNaN(got) {
			t.Errorf("n=%d p=%d q=%d: LinearCKA %.12f, brute force %.12f", c.n, c.p, c.q, got, want)
		}
	}
}

func TestLinearCKAInvariances(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n, p, q := 60, 6, 4
	x := randMatrix(rng, n, p, 1)
	y := randMatrix(rng, n, q, 1)
	for i := range n { // y correlated with x's first columns
		for j := range q {
			y[i*q+j] += x[i*p+j]
		}
	}
	base := LinearCKA(x, y, n, p, q)
	if !(base > 0.1 && base < 0.9) {
		t.Fatalf("CKA(x, y) = %g: the fixture should be partly similar", base)
	}
	if got := LinearCKA(x, x, n, p, p); math.Abs(got-1) > 1e-12 {
		t.Errorf("CKA(x, x) = %.15f, want 1", got)
	}
	// Translation, by offsets far above the spread.
	shifted := make([]float32, len(x))
	for i := range x {
		shifted[i] = x[i] + 1000 + float32(i%p)*500
	}
	if got := LinearCKA(x, shifted, n, p, p); math.Abs(got-1) > 1e-7 { // float32 rounding of x + 1000
		t.Errorf("CKA(x, x + offset) = %.15f, want 1", got)
	}
	rot := orthogonal(rng, p)
	xr := matMul(x, rot, n, p, p)
	if got := LinearCKA(x, xr, n, p, p); math.Abs(got-1) > 1e-6 {
		t.Errorf("CKA(x, xQ) = %.12f, want 1", got)
	}
	if got := LinearCKA(xr, y, n, p, q); math.Abs(got-base) > 1e-6 {
		t.Errorf("CKA(xQ, y) = %.12f, CKA(x, y) = %.12f", got, base)
	}
	scaled := make([]float32, len(y))
	for i := range y {
		scaled[i] = 3.7 * y[i]
	}
	if got := LinearCKA(x, scaled, n, p, q); math.Abs(got-base) > 1e-6 {
		t.Errorf("CKA(x, 3.7y) = %.12f, CKA(x, y) = %.12f", got, base)
	}
	// Scaling one column is not isotropic: CKA must change, or the
	// invariance checks above prove nothing.
	aniso := make([]float32, len(y))
	copy(aniso, y)
	for i := range n {
		aniso[i*q] *= 10
	}
	if got := LinearCKA(x, aniso, n, p, q); math.Abs(got-base) < 1e-3 {
		t.Errorf("CKA(x, y with one column ×10) = %.6f, unchanged from %.6f", got, base)
	}
	if got := LinearCKA(make([]float32, n*p), y, n, p, q); !math.IsNaN(got) {
		t.Errorf("CKA of a constant x = %g, want NaN", got)
	}
}

// driftCorpus writes a JSONL corpus of documents over vocab's words.
func driftCorpus(t *testing.T, vocab []string, docs int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	for i := range docs {
		var words []string
		for range 3 + rng.IntN(12) {
			words = append(words, vocab[5+rng.IntN(len(vocab)-5)])
		}
		fmt.Fprintf(&b, "{\"_id\": \"d%d\", \"text\": %q}\n", i, strings.Join(words, " "))
	}
	path := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A model that takes P_domain (embeddings + layer 0) from a and P_task from
// another model is a's at hidden states 0 and 1 and not above; a model
// against itself has CKA and cosine 1 everywhere.
func TestDriftSeparatesDomainFromTask(t *testing.T) {
	dir := t.TempDir()
	vocab := testVocab(40)
	a, b, swapped := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "swapped")
	randomCheckpoint(t, a, vocab, 2, 1, 0.5) // large enough weights that each layer visibly changes its input
	randomCheckpoint(t, b, vocab, 2, 2, 0.5)
	if err := Swap(a, b, swapped, 1); err != nil {
		t.Fatal(err)
	}
	corpus := driftCorpus(t, vocab, 30)
	ctx := context.Background()
	self, err := Drift(ctx, a, a, []string{corpus}, DriftOptions{N: 20, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if self.Docs != 20 || len(self.Layers) != 3 || self.Tokens < 20*5 {
		t.Fatalf("drift of a with itself: %d docs, %d tokens, %d layers; want 20 docs, >= 100 tokens, 3 layers", self.Docs, self.Tokens, len(self.Layers))
	}
	for _, l := range self.Layers {
		if math.Abs(l.CKA-1) > 1e-9 || math.Abs(l.Cosine-1) > 1e-9 {
			t.Errorf("a against itself at %s: CKA %.12f, cosine %.12f; want 1, 1", l.Name, l.CKA, l.Cosine)
		}
	}
	got, err := Drift(ctx, a, swapped, []string{corpus}, DriftOptions{N: 20, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens != self.Tokens {
		t.Errorf("%d tokens, %d against itself: the sample should not depend on b", got.Tokens, self.Tokens)
	}
	for _, l := range got.Layers[:2] {
		if math.Abs(l.CKA-1) > 1e-9 || math.Abs(l.Cosine-1) > 1e-9 {
			t.Errorf("P_domain(a) + P_task(b) at %s (P_domain's): CKA %.12f, cosine %.12f; want 1, 1", l.Name, l.CKA, l.Cosine)
		}
	}
	if top := got.Layers[2]; top.Name != "layer 1" || top.CKA > 0.99 || top.Cosine > 0.99 {
		t.Errorf("at %s (P_task's): CKA %.4f, cosine %.4f; want both below 0.99", top.Name, top.CKA, top.Cosine)
	}
	// The sample does not depend on the batch size; the figures do only
	// by float32 rounding (other padded lengths).
	again, err := Drift(ctx, a, swapped, []string{corpus}, DriftOptions{N: 20, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Layers {
		if math.Abs(again.Layers[i].CKA-got.Layers[i].CKA) > 1e-6 {
			t.Errorf("%s: CKA %.12f with batch 7, %.12f with batch 3", got.Layers[i].Name, got.Layers[i].CKA, again.Layers[i].CKA)
		}
	}
}

func TestDriftRefusesIncompatibleModels(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	tinyCheckpoint(t, a, testVocab(40), 2, 1)
	tinyCheckpoint(t, b, testVocab(40), 3, 2)
	_, err := Drift(context.Background(), a, b, []string{driftCorpus(t, testVocab(40), 3)}, DriftOptions{})
	if err == nil || !strings.Contains(err.Error(), "num_hidden_layers") {
		t.Fatalf("err = %v, want one naming num_hidden_layers", err)
	}
}
