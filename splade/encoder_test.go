package splade

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/toyset"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/sparse"
)

// The toy collection and tiny model of package toyset.
var toyDocs, toyQueries = toyset.Docs, toyset.Queries

func toyVocab() []string { return toyset.Vocab() }

func tinyModelDir(t testing.TB, seed uint64) string { return toyset.TinyModelDir(t, seed) }

// denseSplade is the naive SPLADE vector of one token sequence: every
// logit of the (T, V) matrix, then max over positions of log1p(relu(·)).
func denseSplade(m *nn.Model, ids []int32) []float64 {
	T, V := len(ids), m.Config.VocabSize
	b := nn.Batch{B: 1, T: T, InputIDs: ids, Mask: make([]float32, T)}
	for i := range b.Mask {
		b.Mask[i] = 1
	}
	h := m.Encode(b)
	z := m.HeadTransform(h, T)
	logits := make([]float32, T*V) // (T, V)
	m.Logits(logits, z, T)
	w := make([]float64, V)
	for t := 0; t < T; t++ {
		for v := 0; v < V; v++ {
			w[v] = math.Max(w[v], math.Log1p(math.Max(0, float64(logits[t*V+v]))))
		}
	}
	return w
}

// TestEncoderMatchesDense checks batched, padded, length-bucketed encoding
// against the naive dense computation of each text alone, and top-n
// pruning against sorting the dense vector.
func TestEncoderMatchesDense(t *testing.T) {
	dir := tinyModelDir(t, 7)
	enc, err := LoadEncoder(dir, 12, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc.BatchSize = 3 // batches mix lengths, so rows are padded
	var texts []string
	for _, id := range slices.Sorted(mapsKeys(toyDocs)) {
		texts = append(texts, toyDocs[id])
	}
	texts = append(texts, "cat", "")
	vecs, err := enc.EncodeDocs(texts)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got []sparse.TermWeight, want []float64, topN int) {
		t.Helper()
		// Entries > 0 of the dense vector, or its topN largest.
		type tw struct {
			v int
			w float64
		}
		var all []tw
		for v, w := range want {
			if w > 0 {
				all = append(all, tw{v, w})
			}
		}
		if topN > 0 && len(all) > topN {
			sort.SliceStable(all, func(a, b int) bool { return all[a].w > all[b].w })
			all = all[:topN]
			sort.Slice(all, func(a, b int) bool { return all[a].v < all[b].v })
		}
		if len(got) != len(all) {
			t.Fatalf("%s: %d non-zeros, dense has %d", name, len(got), len(all))
		}
		for i, x := range all {
			g := got[i]
			if int(g.Term) != x.v || math.Abs(float64(g.Weight)-x.w) > 1e-4*(1+x.w) {
				t.Fatalf("%s: entry %d = (%d, %g), dense (%d, %g)", name, i, g.Term, g.Weight, x.v, x.w)
			}
		}
	}
	nonzero := 0
	for i, text := range texts {
		ids := enc.Tok.Encode(text, 12).IDs
		want := denseSplade(enc.Model, ids)
		check(text, vecs[i], want, 0)
		nonzero += len(vecs[i])
	}
	if nonzero == 0 {
		t.Fatal("every vector is empty: the test compares nothing")
	}
	// Queries: cut at QueryMaxLen = 5 tokens.
	q, err := enc.EncodeQuery(toyDocs["ship1"])
	if err != nil {
		t.Fatal(err)
	}
	ids := enc.Tok.Encode(toyDocs["ship1"], 5).IDs
	if len(ids) != 5 {
		t.Fatalf("query tokenised to %d ids, want 5", len(ids))
	}
	check("query", q, denseSplade(enc.Model, ids), 0)
	// Top-n pruning.
	enc.TopN = 4
	vecs, err = enc.EncodeDocs(texts[:4])
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts[:4] {
		if len(vecs[i]) != 4 {
			t.Fatalf("top-4: %d entries", len(vecs[i]))
		}
		check("top4 "+text, vecs[i], denseSplade(enc.Model, enc.Tok.Encode(text, 12).IDs), 4)
	}
}

func mapsKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestSparsify checks the pruning rule on hand-made rows, ties included.
func TestSparsify(t *testing.T) {
	row := []float32{0, 0.5, -1, 2, 0.5, 0, 3, 0.5}
	got := Sparsify(row, 0)
	want := tws(1, 0.5, 3, 2, 4, 0.5, 6, 3, 7, 0.5)
	if !slices.Equal(got, want) {
		t.Errorf("all: %v, want %v", got, want)
	}
	got = Sparsify(row, 3) // 3, 2, then the first 0.5 (term 1)
	want = tws(1, 0.5, 3, 2, 6, 3)
	if !slices.Equal(got, want) {
		t.Errorf("top 3: %v, want %v", got, want)
	}
	if got := Sparsify(make([]float32, 5), 2); len(got) != 0 {
		t.Errorf("zero row: %v", got)
	}
	// Property: top-n keeps the n largest, whatever the row.
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 200; it++ {
		row := make([]float32, 1+rng.IntN(40))
		for i := range row {
			row[i] = float32(rng.IntN(7) - 3)
		}
		n := rng.IntN(6)
		got := Sparsify(row, n)
		all := Sparsify(row, 0)
		if n == 0 || len(all) <= n {
			if !slices.Equal(got, all) {
				t.Fatalf("row %v n %d: %v, want %v", row, n, got, all)
			}
			continue
		}
		var kept, min float32 = 0, math.MaxFloat32
		for _, x := range got {
			kept += x.Weight
			min = float32(math.Min(float64(min), float64(x.Weight)))
		}
		for _, x := range all {
			if x.Weight > min && !slices.Contains(got, x) {
				t.Fatalf("row %v n %d: dropped %v but kept a weight %g", row, n, x, min)
			}
		}
		if len(got) != n {
			t.Fatalf("row %v n %d: %d entries", row, n, len(got))
		}
	}
}

// tws builds a vector from (term, weight) pairs.
func tws(pairs ...float32) []sparse.TermWeight {
	var out []sparse.TermWeight
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, sparse.TermWeight{Term: uint32(pairs[i]), Weight: pairs[i+1]})
	}
	return out
}

// TestFingerprint checks the fingerprint round trip and that the
// vocabulary hash sees token boundaries and order.
func TestFingerprint(t *testing.T) {
	dir := tinyModelDir(t, 1)
	enc, err := LoadEncoder(dir, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(enc, dir)
	vocab, model, ok := ParseFingerprint(fp)
	if !ok || vocab != VocabHash(enc.Tok.Vocab()) || !strings.HasPrefix(model, "sha256:") || len(model) != 7+64 {
		t.Fatalf("fingerprint %q parsed as %q %q %v", fp, vocab, model, ok)
	}
	if _, _, ok := ParseFingerprint("something else"); ok {
		t.Error("parsed a foreign fingerprint")
	}
	if VocabHash([]string{"a", "b"}) == VocabHash([]string{"ab"}) || VocabHash([]string{"a", "b"}) == VocabHash([]string{"b", "a"}) {
		t.Error("vocabulary hash ignores boundaries or order")
	}
}
