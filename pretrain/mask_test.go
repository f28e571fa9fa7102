package pretrain

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

const maskTestVocab = 1000

func maskTestSpecial(id int32) bool { return id < 5 } // [PAD] [UNK] [CLS] [SEP] [MASK]

// randomSeqs makes n sequences of length T with ~5% special tokens and
// words of 1-4 pieces.
func randomSeqs(n, T int, seed uint64) ([][]int32, [][]bool) {
	rng := rand.New(rand.NewPCG(seed, 1))
	seqs := make([][]int32, n)
	starts := make([][]bool, n)
	for s := range seqs {
		ids := make([]int32, T)
		ws := make([]bool, T)
		ids[0], ws[0] = 2, true // [CLS]
		left := 0
		for i := 1; i < T; i++ {
			if rng.IntN(20) == 0 {
				ids[i], ws[i], left = 3, true, 0 // [SEP]
				continue
			}
			ids[i] = int32(5 + rng.IntN(maskTestVocab-5))
			if left == 0 {
				ws[i], left = true, rng.IntN(4)
			} else {
				left--
			}
		}
		seqs[s], starts[s] = ids, ws
	}
	return seqs, starts
}

func TestMaskStatistics(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	seqs, starts := randomSeqs(n, 128, 1)
	for _, whole := range []bool{false, true} {
		m := NewMasker(maskTestVocab, 4, maskTestSpecial, whole, 42)
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		var eligible, selected, masked, random, kept, words, wordsSel int
		inputs := make([]int32, 128)
		labels := make([]int32, 128)
		for s, ids := range seqs {
			got := m.Mask(ids, starts[s], 3, s, inputs, labels)
			cnt := 0
			for i, id := range ids {
				if maskTestSpecial(id) {
					if labels[i] != IgnoreLabel || inputs[i] != id {
						t.Fatalf("special token %d at %d touched: input %d label %d", id, i, inputs[i], labels[i])
					}
					continue
				}
				eligible++
				if starts[s][i] {
					words++
					if labels[i] != IgnoreLabel {
						wordsSel++
					}
				}
				if labels[i] == IgnoreLabel {
					if inputs[i] != id {
						t.Fatalf("unselected token changed at %d", i)
					}
					continue
				}
				if labels[i] != id {
					t.Fatalf("label %d, want the original %d", labels[i], id)
				}
				cnt++
				switch {
				case inputs[i] == 4:
					masked++
				case inputs[i] == id:
					kept++
				default:
					random++
					if maskTestSpecial(inputs[i]) || inputs[i] >= maskTestVocab {
						t.Fatalf("random replacement %d is special or out of range", inputs[i])
					}
				}
			}
			if cnt != got {
				t.Fatalf("Mask returned %d, %d labels set", got, cnt)
			}
			selected += cnt
		}
		// Tolerances are ~6 standard deviations of the binomial counts
		// (tokens of a word are correlated under whole-word masking:
		// there the per-word rate is the binomial one).
		within := func(name string, got, want float64, trials int) {
			sd := math.Sqrt(want * (1 - want) / float64(trials))
			if math.Abs(got-want) > 6*sd+1e-9 {
				t.Errorf("whole=%v %s = %.4f, want %.4f ± %.4f", whole, name, got, want, 6*sd)
			}
		}
		within("word selection rate", float64(wordsSel)/float64(words), 0.15, words)
		if !whole {
			within("token selection rate", float64(selected)/float64(eligible), 0.15, eligible)
		}
		within("[MASK] share", float64(masked)/float64(selected), 0.8, selected)
		// A random draw equal to the original counts as kept.
		within("random share", float64(random)/float64(selected), 0.1*(1-1.0/995), selected)
		within("unchanged share", float64(kept)/float64(selected), 0.1+0.1/995, selected)
		t.Logf("whole=%v: %d eligible, %.4f selected; mask %.4f random %.4f kept %.4f", whole, eligible,
			float64(selected)/float64(eligible), float64(masked)/float64(selected), float64(random)/float64(selected), float64(kept)/float64(selected))
	}
}

func TestWholeWordMasking(t *testing.T) {
	seqs, starts := randomSeqs(300, 64, 2)
	m := NewMasker(maskTestVocab, 4, maskTestSpecial, true, 7)
	m.Prob = 0.3
	inputs := make([]int32, 64)
	labels := make([]int32, 64)
	multi := 0
	for s, ids := range seqs {
		m.Mask(ids, starts[s], 0, s, inputs, labels)
		for i := 1; i < len(ids); i++ {
			if starts[s][i] || maskTestSpecial(ids[i]) || maskTestSpecial(ids[i-1]) {
				continue
			}
			// ids[i] continues the word of ids[i-1]: same selection.
			if (labels[i] == IgnoreLabel) != (labels[i-1] == IgnoreLabel) {
				t.Fatalf("seq %d: pieces %d and %d of one word selected differently", s, i-1, i)
			}
			if labels[i] != IgnoreLabel {
				multi++
			}
		}
	}
	if multi < 100 {
		t.Errorf("only %d continuation pieces selected: the test does not exercise whole words", multi)
	}
}

func TestMaskDeterminism(t *testing.T) {
	seqs, starts := randomSeqs(8, 64, 3)
	m := NewMasker(maskTestVocab, 4, maskTestSpecial, false, 9)
	idx := []int{10, 11, 12, 13, 14, 15, 16, 17}
	in1, lab1 := m.MaskBatch(seqs, starts, 2, idx)
	in2, lab2 := m.MaskBatch(seqs, starts, 2, idx)
	if !reflect.DeepEqual(in1, in2) || !reflect.DeepEqual(lab1, lab2) {
		t.Fatal("same (seed, epoch, index) gave different masks")
	}
	// A sequence's mask does not depend on its batch or position in it.
	in := make([]int32, 64)
	lab := make([]int32, 64)
	m.Mask(seqs[5], starts[5], 2, 15, in, lab)
	if !reflect.DeepEqual(in, in1[5*64:6*64]) || !reflect.DeepEqual(lab, lab1[5*64:6*64]) {
		t.Error("masking depends on the batch")
	}
	// Another epoch, index or seed gives other masks.
	in3, _ := m.MaskBatch(seqs, starts, 3, idx)
	m2 := *m
	m2.Seed = 10
	in4, _ := m2.MaskBatch(seqs, starts, 2, idx)
	in5, _ := m.MaskBatch(seqs, starts, 2, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if reflect.DeepEqual(in1, in3) || reflect.DeepEqual(in1, in4) || reflect.DeepEqual(in1, in5) {
		t.Error("masks repeat across epochs, seeds or sequence indices")
	}
}

func TestMaskerValidate(t *testing.T) {
	bad := []*Masker{
		{Prob: 1.5, MaskFrac: 0.8, RandomFrac: 0.1, VocabSize: 10, IsSpecial: maskTestSpecial},
		{Prob: 0.15, MaskFrac: 0.8, RandomFrac: 0.3, VocabSize: 10, IsSpecial: maskTestSpecial},
		{Prob: 0.15, MaskFrac: 0.8, RandomFrac: 0.1, VocabSize: 5, IsSpecial: maskTestSpecial},
		{Prob: 0.15, MaskFrac: 0.8, RandomFrac: 0.1, VocabSize: 10},
	}
	for i, m := range bad {
		if err := m.Validate(); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}
