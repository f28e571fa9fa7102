package pretrain

import (
	"fmt"
	"math/rand/v2"
)

// IgnoreLabel marks positions that do not count in the MLM loss (as
// PyTorch's ignore_index).
const IgnoreLabel = -100

// Masker applies BERT's masked-language-model corruption (Devlin et al.,
// 2019): each non-special token is selected with probability Prob; a
// selected token becomes [MASK] with probability MaskFrac, a random
// non-special token with probability RandomFrac, and stays unchanged
// otherwise; its label is the original id. Unselected positions get
// IgnoreLabel. With WholeWord, selection is per word (a word-start token
// and the "##" pieces after it) and every piece of a selected word is
// selected; the 80/10/10 choice is still made per token, as HF's
// DataCollatorForWholeWordMask does.
//
// With CopyProb > 0, each unselected non-special token is also labelled,
// with probability CopyProb, with its own id while its input stays
// unchanged: a reconstruction (copy) target on unmasked positions, which
// teaches the MLM head to predict the input token where it sees it — the
// lexical starting point SPLADE's term matching grows from. The random
// stream draws this only when CopyProb > 0, so masks without it are those
// of BERT's recipe.
//
// Masking is dynamic but reproducible: the random stream of a sequence is
// a pure function of (Seed, epoch, sequence index), so each epoch sees new
// masks, and a resumed run re-creates exactly the masks it would have seen.
type Masker struct {
	Prob       float64 // selection probability, 0.15 in BERT
	MaskFrac   float64 // of selected: → [MASK], 0.8
	RandomFrac float64 // of selected: → random token, 0.1
	CopyProb   float64 // of unselected: labelled with their own id, input unchanged (0 in BERT)
	WholeWord  bool
	Seed       uint64

	VocabSize int                 // random replacements are drawn from [0, VocabSize)
	MaskID    int32               // id of [MASK]
	IsSpecial func(id int32) bool // never selected, never drawn as a replacement
}

// NewMasker returns BERT's defaults (15%, 80/10/10) for a vocabulary.
func NewMasker(vocabSize int, maskID int32, isSpecial func(int32) bool, wholeWord bool, seed uint64) *Masker {
	return &Masker{Prob: 0.15, MaskFrac: 0.8, RandomFrac: 0.1, WholeWord: wholeWord, Seed: seed,
		VocabSize: vocabSize, MaskID: maskID, IsSpecial: isSpecial}
}

// Validate checks the fractions and that a random replacement exists.
func (m *Masker) Validate() error {
	switch {
	case m.Prob < 0 || m.Prob > 1:
		return fmt.Errorf("mask probability %g not in [0, 1]", m.Prob)
	case m.CopyProb < 0 || m.CopyProb > 1:
		return fmt.Errorf("copy probability %g not in [0, 1]", m.CopyProb)
	case m.MaskFrac < 0 || m.RandomFrac < 0 || m.MaskFrac+m.RandomFrac > 1:
		return fmt.Errorf("mask fraction %g + random fraction %g must be non-negative and at most 1", m.MaskFrac, m.RandomFrac)
	case m.IsSpecial == nil:
		return fmt.Errorf("masker needs IsSpecial")
	}
	for id := range int32(m.VocabSize) {
		if !m.IsSpecial(id) {
			return nil
		}
	}
	return fmt.Errorf("vocabulary of %d tokens has no non-special token to draw", m.VocabSize)
}

// rng returns the random stream of one sequence in one epoch.
func (m *Masker) rng(epoch, seq int) *rand.Rand {
	return rand.New(rand.NewPCG(mix(m.Seed, uint64(epoch)), mix(m.Seed^0x9e3779b97f4a7c15, uint64(seq))))
}

// mix is splitmix64 of a combined with b: distinct (a, b) give unrelated
// seeds.
func mix(a, b uint64) uint64 {
	z := a + 0x9e3779b97f4a7c15*(b+1)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Mask corrupts one sequence. ids (T) is left untouched; inputs and labels
// (T each) receive the corrupted ids and the labels. wordStart (T) marks
// tokens that begin a word; it is needed only with WholeWord (nil treats
// every token as its own word). It returns the number of selected tokens
// (copy targets not counted).
func (m *Masker) Mask(ids []int32, wordStart []bool, epoch, seq int, inputs, labels []int32) int {
	rng := m.rng(epoch, seq)
	copy(inputs, ids)
	selected := 0
	pick := false
	for i, id := range ids {
		labels[i] = IgnoreLabel
		if m.IsSpecial(id) {
			pick = false // a special ends any word
			continue
		}
		if !m.WholeWord || wordStart == nil || wordStart[i] || i == 0 {
			pick = rng.Float64() < m.Prob
		}
		if !pick {
			if m.CopyProb > 0 && rng.Float64() < m.CopyProb {
				labels[i] = id
			}
			continue
		}
		selected++
		labels[i] = id
		switch r := rng.Float64(); {
		case r < m.MaskFrac:
			inputs[i] = m.MaskID
		case r < m.MaskFrac+m.RandomFrac:
			inputs[i] = m.randomToken(rng)
		}
	}
	return selected
}

// randomToken draws a uniformly random non-special id (rejection sampling:
// specials are a handful out of thousands).
func (m *Masker) randomToken(rng *rand.Rand) int32 {
	for {
		id := int32(rng.IntN(m.VocabSize))
		if !m.IsSpecial(id) {
			return id
		}
	}
}

// MaskBatch corrupts a batch of sequences of equal length T into flat
// (B, T) inputs and labels, sequence b being seqs[b] with index idx[b].
func (m *Masker) MaskBatch(seqs [][]int32, wordStarts [][]bool, epoch int, idx []int) (inputs, labels []int32) {
	if len(seqs) == 0 {
		return nil, nil
	}
	T := len(seqs[0])
	inputs = make([]int32, len(seqs)*T) // (B, T)
	labels = make([]int32, len(seqs)*T) // (B, T)
	for b, s := range seqs {
		var ws []bool
		if wordStarts != nil {
			ws = wordStarts[b]
		}
		m.Mask(s, ws, epoch, idx[b], inputs[b*T:(b+1)*T], labels[b*T:(b+1)*T])
	}
	return inputs, labels
}
