package tokenize

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func seqOf(texts ...string) func(func(string) bool) {
	return slices.Values(texts)
}

func TestTrainTiny(t *testing.T) {
	// Words: ab ×3, abc ×1 → symbols a ##b / a ##b ##c. Pair counts:
	// (a,##b)=4, (##b,##c)=1 → merge "ab"; then (ab,##c)=1 → "abc".
	texts := seqOf("ab AB ab", "abc")
	got, err := TrainWordPiece(texts, 100, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##b", "##c", "ab", "abc"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vocab %q, want %q", got, want)
	}
	// minFreq 2 stops after "ab"; vocabSize 11 too.
	for _, c := range []struct{ size, minFreq int }{{100, 2}, {11, 1}} {
		got, _ = TrainWordPiece(texts, c.size, c.minFreq, true)
		if !reflect.DeepEqual(got, want[:11]) {
			t.Errorf("size %d minFreq %d: %q, want %q", c.size, c.minFreq, got, want[:11])
		}
	}
	// Continuation merges keep the prefix: "xyz" ×2 → x ##y ##z; ties
	// between (x,##y) and (##y,##z) (count 2 each) go to the smaller ids:
	// x=5 ##y=8 < ##y=8 ##z=9 → "xy", then (xy,##z) → "xyz".
	got, _ = TrainWordPiece(seqOf("xyz xyz"), 100, 1, true)
	if want := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "x", "y", "z", "##y", "##z", "xy", "xyz"}; !reflect.DeepEqual(got, want) {
		t.Errorf("xyz: %q, want %q", got, want)
	}
	// A pair of continuation pieces merges into a continuation piece.
	got, _ = TrainWordPiece(seqOf("abcbc", "bcbc", "dbc"), 13, 1, true)
	if !slices.Contains(got, "##bc") {
		t.Errorf("no ##bc in %q", got)
	}
	if _, err := TrainWordPiece(texts, 3, 1, true); err == nil {
		t.Error("vocab size below the specials: no error")
	}
}

// naiveMerge is the textbook algorithm: recount every pair before each
// merge. It starts from the same initial state as the trainer.
func naiveMerge(tr *trainer, vocabSize, minFreq int) {
	for len(tr.vocab) < vocabSize {
		counts := map[uint64]int64{}
		for wi, syms := range tr.words {
			for i := 0; i+1 < len(syms); i++ {
				counts[pairKey(syms[i], syms[i+1])] += tr.freq[wi]
			}
		}
		best, bestN := uint64(0), int64(0)
		for k, n := range counts {
			if n > bestN || n == bestN && k < best {
				best, bestN = k, n
			}
		}
		if bestN < int64(max(minFreq, 1)) {
			return
		}
		a, b := pairOf(best)
		n := tr.add(tr.mergedToken(a, b))
		for wi, syms := range tr.words {
			var out []int32
			for i := 0; i < len(syms); i++ {
				if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
					out = append(out, n)
					i++
				} else {
					out = append(out, syms[i])
				}
			}
			tr.words[wi] = out
		}
	}
}

// TestTrainAgainstNaive: the incremental trainer and the recount-everything
// trainer produce the same vocabulary on random corpora (Zipf-like word
// frequencies over small alphabets so that ties and repeats are common).
func TestTrainAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	for round := range rounds {
		alpha := []rune("abcdé"[:2+rng.IntN(4)])
		if round%3 == 0 {
			alpha = []rune("abé中")
		}
		counts := map[string]int64{}
		for range 1 + rng.IntN(60) {
			var w []rune
			for range 1 + rng.IntN(9) {
				w = append(w, alpha[rng.IntN(len(alpha))])
			}
			counts[string(w)] += int64(1 + rng.IntN(5)*rng.IntN(5))
		}
		size := 10 + rng.IntN(80)
		minFreq := 1 + rng.IntN(3)
		fast := newTrainer(counts)
		fast.merge(size, minFreq)
		slow := newTrainer(counts)
		naiveMerge(slow, size, minFreq)
		if !reflect.DeepEqual(fast.vocab, slow.vocab) {
			t.Fatalf("round %d (size %d, minFreq %d, words %v):\nincremental %q\nnaive       %q", round, size, minFreq, counts, fast.vocab, slow.vocab)
		}
		if !reflect.DeepEqual(fast.words, slow.words) {
			t.Fatalf("round %d: final segmentations differ", round)
		}
	}
}

func TestMergeWord(t *testing.T) {
	type ch struct {
		a, b int32
		d    int64
	}
	cases := []struct {
		in   []int32
		want []int32
		chs  []ch
	}{
		{[]int32{1, 2}, []int32{9}, nil},
		{[]int32{0, 1, 2, 3}, []int32{0, 9, 3}, []ch{{0, 1, -1}, {0, 9, 1}, {2, 3, -1}, {9, 3, 1}}},
		{[]int32{1, 2, 1, 2}, []int32{9, 9}, []ch{{2, 1, -1}, {9, 1, 1}, {9, 1, -1}, {9, 9, 1}}},
		{[]int32{1, 1, 1}, []int32{1, 1, 1}, nil}, // pair (1,2) absent
	}
	for _, c := range cases {
		var got []ch
		out := mergeWord(slices.Clone(c.in), 1, 2, 9, func(k uint64, d int64) {
			a, b := pairOf(k)
			got = append(got, ch{a, b, d})
		})
		if !reflect.DeepEqual(out, c.want) || !reflect.DeepEqual(got, c.chs) {
			t.Errorf("mergeWord(%v) = %v %v, want %v %v", c.in, out, got, c.want, c.chs)
		}
	}
	// (a, a) in a run of three: only the first two merge.
	if out := mergeWord([]int32{4, 4, 4}, 4, 4, 9, func(uint64, int64) {}); !reflect.DeepEqual(out, []int32{9, 4}) {
		t.Errorf("aaa → %v, want [9 4]", out)
	}
}

// TestTrainedVocabEncodes: every word of the training text encodes without
// [UNK], and frequent words become single tokens.
func TestTrainedVocabEncodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"retrieval", "sparse", "Café", "naïve", "über", "learned", "domain", "adaptation", "x-ray", "中文", "2024", "ñandú"}
	var texts []string
	for range 300 {
		var b strings.Builder
		for range 10 {
			w := words[min(rng.IntN(len(words)), rng.IntN(len(words)))] // skewed
			b.WriteString(w + " ")
		}
		b.WriteString("zyzzyva.")
		texts = append(texts, b.String())
	}
	vocab, err := TrainWordPiece(slices.Values(texts), 100, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(vocab) != 100 {
		t.Fatalf("vocab size %d, want 100", len(vocab))
	}
	for i, s := range SpecialTokens {
		if vocab[i] != s {
			t.Errorf("vocab[%d] = %q, want %q", i, vocab[i], s)
		}
	}
	tk, err := FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range texts[:50] {
		for _, tok := range tk.Tokens(text) {
			if tok == UnkToken {
				t.Fatalf("[UNK] in %q → %q", text, tk.Tokens(text))
			}
		}
	}
	for _, w := range []string{"retrieval", "sparse", "cafe", "naive"} {
		if got := tk.Tokens(w); len(got) != 1 {
			t.Errorf("frequent word %q → %q, want one token", w, got)
		}
	}
}

// TestTrainSpeed trains a 30k vocabulary on about 10 MB of real text
// (BEIR scifact) when the shared collections are present; skipped in
// -short mode. The brief asks for well under a minute.
func TestTrainSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	path := "../../shared/data/scifact/corpus.jsonl"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("collection %s not found: %v", path, err)
	}
	defer f.Close()
	var texts []string
	size := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var d struct{ Title, Text string }
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, d.Title+" "+d.Text)
		size += len(d.Title) + len(d.Text) + 1
	}
	// scifact is ~7.5 MB of text; repeat a third of it to pass 10 MB.
	for i := 0; size < 10<<20; i++ {
		texts = append(texts, texts[i])
		size += len(texts[i])
	}
	start := time.Now()
	vocab, err := TrainWordPiece(slices.Values(texts), 30000, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("trained %d tokens on %.1f MB in %v", len(vocab), float64(size)/(1<<20), el.Round(time.Millisecond))
	if len(vocab) != 30000 {
		t.Errorf("vocab size %d, want 30000", len(vocab))
	}
	if el > time.Minute {
		t.Errorf("training took %v, want under a minute", el)
	}
	tk, err := FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	unk, total := 0, 0
	for _, text := range texts[:200] {
		for _, tok := range tk.Tokens(text) {
			total++
			if tok == UnkToken {
				unk++
			}
		}
	}
	t.Logf("first 200 docs: %d tokens, %d [UNK]", total, unk)
	if unk*1000 > total {
		t.Errorf("%d [UNK] of %d tokens on training text", unk, total)
	}
	for _, w := range []string{"protein", "cells", "expression"} {
		if got := tk.Tokens(w); len(got) != 1 {
			t.Errorf("frequent word %q → %q, want one token", w, got)
		}
	}
}
