package splade

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestLengthBatchesProperties checks, on random lengths, every batch
// invariant and the padding bound: within a window, padding ≤
// (batchSize−1)·(longest − shortest).
func TestLengthBatchesProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 20000
	if testing.Short() {
		n = 3000
	}
	for _, c := range []struct {
		n, bs, window int
		dist          string
	}{
		{0, 4, 10, "uniform"},
		{1, 4, 10, "uniform"},
		{37, 4, 10, "uniform"},
		{n, 32, 3200, "uniform"},
		{n, 32, 3200, "lognormal"},
		{n, 7, 0, "lognormal"},
		{n, 1, 50, "uniform"},
		{n, 64, 64, "uniform"},
	} {
		t.Run(fmt.Sprintf("n=%d/batch=%d/window=%d/%s", c.n, c.bs, c.window, c.dist), func(t *testing.T) {
			lengths := make([]int, c.n)
			for i := range lengths {
				if c.dist == "uniform" {
					lengths[i] = 1 + r.IntN(256)
				} else {
					lengths[i] = min(512, 3+int(20*r.ExpFloat64()*r.ExpFloat64()))
				}
			}
			batches, err := LengthBatches(lengths, c.bs, c.window)
			if err != nil {
				t.Fatal(err)
			}
			W := c.window
			if W <= 0 || W > c.n {
				W = c.n
			}
			W = (W + c.bs - 1) / c.bs * c.bs
			seen := make([]int, c.n)
			pad := map[int]int{} // window → padding tokens
			lo, hi := map[int]int{}, map[int]int{}
			for bi, b := range batches {
				if len(b) == 0 || len(b) > c.bs {
					t.Fatalf("batch %d has %d items", bi, len(b))
				}
				w := b[0] / W
				mx := 0
				for _, i := range b {
					seen[i]++
					if i/W != w {
						t.Fatalf("batch %d mixes windows %d and %d", bi, w, i/W)
					}
					mx = max(mx, lengths[i])
				}
				for _, i := range b {
					pad[w] += mx - lengths[i]
				}
				if len(b) < c.bs && (bi+1 < len(batches) && batches[bi+1][0]/W == w) {
					t.Fatalf("batch %d is short (%d) but not the last of window %d", bi, len(b), w)
				}
			}
			for i, k := range seen {
				if k != 1 {
					t.Fatalf("item %d appears %d times", i, k)
				}
			}
			for i, l := range lengths {
				w := i / W
				if _, ok := lo[w]; !ok || l < lo[w] {
					lo[w] = l
				}
				hi[w] = max(hi[w], l)
			}
			for w, p := range pad {
				if bound := (c.bs - 1) * (hi[w] - lo[w]); p > bound {
					t.Errorf("window %d: %d padding tokens > bound %d", w, p, bound)
				}
			}
			if c.n < 1000 {
				return
			}
			// Against batches in the original order: bucketing must pad a
			// small fraction of it.
			var plain [][]int
			for s := 0; s < c.n; s += c.bs {
				var b []int
				for i := s; i < min(s+c.bs, c.n); i++ {
					b = append(b, i)
				}
				plain = append(plain, b)
			}
			got, base := PaddingRatio(lengths, batches), PaddingRatio(lengths, plain)
			t.Logf("padding ratio %.4f bucketed, %.4f in input order", got, base)
			if c.window >= 10*c.bs && got > base/5 {
				t.Errorf("padding ratio %.4f, not below a fifth of the unbucketed %.4f", got, base)
			}
		})
	}
	if _, err := LengthBatches([]int{1}, 0, 5); err == nil {
		t.Error("batch size 0: no error")
	}
}

// TestLengthBatchesGlobal: one window equals sorting all lengths and
// cutting the sorted list (brute force), and Padding counts as defined.
func TestLengthBatchesGlobal(t *testing.T) {
	lengths := []int{5, 1, 9, 3, 3, 7, 2, 8}
	got, err := LengthBatches(lengths, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{1, 6, 3}, {4, 0, 5}, {7, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	tokens, slots := Padding(lengths, got)
	if tokens != 38 || slots != 3*3+3*7+2*9 {
		t.Errorf("padding: %d tokens, %d slots", tokens, slots)
	}
	if r := PaddingRatio(lengths, got); math.Abs(r-10.0/48) > 1e-15 {
		t.Errorf("ratio %g", r)
	}
	if PaddingRatio(nil, nil) != 0 {
		t.Error("empty ratio")
	}
}

func TestPad(t *testing.T) {
	b, err := Pad([][]int32{{2, 7, 3}, {2, 3}, {2, 9, 9, 9, 3}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.B != 3 || b.T != 5 {
		t.Fatalf("shape %dx%d", b.B, b.T)
	}
	wantIDs := []int32{2, 7, 3, 0, 0, 2, 3, 0, 0, 0, 2, 9, 9, 9, 3}
	wantMask := []float32{1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1}
	if !reflect.DeepEqual(b.InputIDs, wantIDs) || !reflect.DeepEqual(b.Mask, wantMask) || b.TypeIDs != nil {
		t.Errorf("ids %v mask %v types %v", b.InputIDs, b.Mask, b.TypeIDs)
	}
	if _, err := Pad(nil, 0); err == nil {
		t.Error("no sequences: no error")
	}
	if _, err := Pad([][]int32{{2, 3}, {}}, 0); err == nil {
		t.Error("empty sequence: no error")
	}
}

// fakeTokenize maps each word to an id in [5, 1000) by hash, with [CLS]=2
// and [SEP]=3, truncating to maxLen.
func fakeTokenize(text string, maxLen int) []int32 {
	ids := []int32{2}
	for _, w := range strings.Fields(text) {
		if len(ids) == maxLen-1 {
			break
		}
		h := fnv.New32a()
		h.Write([]byte(w))
		ids = append(ids, int32(5+h.Sum32()%995))
	}
	return append(ids, 3)
}

func TestBuildTrainBatch(t *testing.T) {
	texts := &Texts{
		Queries: map[string]string{"q1": "what is a cat", "q2": "dogs"},
		Docs: map[string]string{
			"d1": "a cat is a small carnivorous mammal of the family felidae",
			"d2": "dogs bark", "d3": "fish swim in water", "d4": "birds", "d5": "x y",
		},
	}
	triples := []Triple{
		{QID: "q1", PosID: "d1", NegIDs: []string{"d3", "d4", "d5"}, Margins: []float32{1, 2, 3}},
		{QID: "q2", PosID: "d2", NegIDs: []string{"d1"}, Margins: []float32{4}},
		{QID: "q2", PosID: "d2", NegIDs: []string{"d3", "d4"}},
	}
	opt := TrainBatchOptions{QueryMaxLen: 4, DocMaxLen: 6, NNeg: 2}
	tb, err := BuildTrainBatch(triples, []int{1, 0}, texts, fakeTokenize, opt)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Q.B != 2 || tb.Q.T != 4 || tb.P.B != 2 || tb.P.T != 6 || tb.N.B != 4 || tb.N.T != 6 {
		t.Fatalf("shapes Q %dx%d P %dx%d N %dx%d", tb.Q.B, tb.Q.T, tb.P.B, tb.P.T, tb.N.B, tb.N.T)
	}
	// Row by row: the ids are the tokenisation, right-padded with 0.
	rowsOf := func(ids []int32, mask []float32, B, T int) [][]int32 {
		var out [][]int32
		for i := 0; i < B; i++ {
			var r []int32
			for t := 0; t < T; t++ {
				if mask[i*T+t] == 1 {
					r = append(r, ids[i*T+t])
				} else if ids[i*T+t] != 0 {
					panic("non-pad id under mask 0")
				}
			}
			out = append(out, r)
		}
		return out
	}
	wantQ := [][]int32{fakeTokenize("dogs", 4), fakeTokenize("what is a cat", 4)}
	wantP := [][]int32{fakeTokenize("dogs bark", 6), fakeTokenize(texts.Docs["d1"], 6)}
	wantN := [][]int32{fakeTokenize(texts.Docs["d1"], 6), fakeTokenize(texts.Docs["d1"], 6),
		fakeTokenize(texts.Docs["d3"], 6), fakeTokenize(texts.Docs["d4"], 6)}
	if got := rowsOf(tb.Q.InputIDs, tb.Q.Mask, tb.Q.B, tb.Q.T); !reflect.DeepEqual(got, wantQ) {
		t.Errorf("Q rows %v, want %v", got, wantQ)
	}
	if got := rowsOf(tb.P.InputIDs, tb.P.Mask, tb.P.B, tb.P.T); !reflect.DeepEqual(got, wantP) {
		t.Errorf("P rows %v, want %v", got, wantP)
	}
	if got := rowsOf(tb.N.InputIDs, tb.N.Mask, tb.N.B, tb.N.T); !reflect.DeepEqual(got, wantN) {
		t.Errorf("N rows %v, want %v", got, wantN)
	}
	if !reflect.DeepEqual(tb.NegIDs, []string{"d1", "d1", "d3", "d4"}) || !reflect.DeepEqual(tb.Teacher, []float32{4, 4, 1, 2}) {
		t.Errorf("negatives %v teacher %v", tb.NegIDs, tb.Teacher)
	}
	if len(wantQ[1]) != 4 || wantQ[1][3] != 3 {
		t.Fatalf("fake tokenizer does not truncate: %v", wantQ[1])
	}

	// Sampling negatives: distinct, from the triple, margins follow.
	r := rand.New(rand.NewPCG(1, 1))
	seen := map[string]bool{}
	for k := 0; k < 50; k++ {
		o := opt
		o.Rand = r
		tb, err := BuildTrainBatch(triples, []int{0}, texts, fakeTokenize, o)
		if err != nil {
			t.Fatal(err)
		}
		if tb.NegIDs[0] == tb.NegIDs[1] {
			t.Fatalf("repeated negative %v", tb.NegIDs)
		}
		for j, id := range tb.NegIDs {
			seen[id] = true
			want := map[string]float32{"d3": 1, "d4": 2, "d5": 3}[id]
			if tb.Teacher[j] != want {
				t.Fatalf("negative %s with margin %g", id, tb.Teacher[j])
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("50 samples used negatives %v", seen)
	}

	// A triple without margins in the batch: no teacher.
	tb, err = BuildTrainBatch(triples, []int{0, 2}, texts, fakeTokenize, opt)
	if err != nil || tb.Teacher != nil {
		t.Errorf("mixed margins: teacher %v, err %v", tb.Teacher, err)
	}

	for name, c := range map[string]struct {
		ts  []Triple
		idx []int
		tok func(string, int) []int32
	}{
		"missing text": {[]Triple{{QID: "q1", PosID: "zz", NegIDs: []string{"d1"}}}, []int{0}, fakeTokenize},
		"bad index":    {triples, []int{3}, fakeTokenize},
		"no index":     {triples, nil, fakeTokenize},
		"no negatives": {[]Triple{{QID: "q1", PosID: "d1"}}, []int{0}, fakeTokenize},
		"too long":     {triples, []int{0}, func(s string, n int) []int32 { return make([]int32, n+1) }},
		"empty":        {triples, []int{0}, func(s string, n int) []int32 { return nil }},
		"margins":      {[]Triple{{QID: "q1", PosID: "d1", NegIDs: []string{"d2"}, Margins: []float32{1, 2}}}, []int{0}, fakeTokenize},
	} {
		if _, err := BuildTrainBatch(c.ts, c.idx, texts, c.tok, opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// BenchmarkLengthBatches: bucketing a corpus-sized list of lengths.
func BenchmarkLengthBatches(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := make([]int, 1_000_000)
	for i := range lengths {
		lengths[i] = 1 + r.IntN(256)
	}
	b.Run("batch=32/window=3200/items=1M", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LengthBatches(lengths, 32, 3200); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestSameLengthBatches(t *testing.T) {
	got, err := SameLengthBatches([]int{5, 3, 5, 5, 3, 9, 5}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{1, 4}, {0, 2}, {3, 6}, {5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := SameLengthBatches([]int{1}, 0); err == nil {
		t.Error("batch size 0 accepted")
	}
}
