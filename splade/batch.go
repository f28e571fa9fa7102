package splade

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/spladapt/spladapt/nn"
)

// LengthBatches groups items for encoding so that each batch holds items of
// similar token length and little padding is computed. Items are taken in
// their original order in windows of `window` items (rounded up to a
// multiple of batchSize; window ≤ 0 means all items in one window); each
// window is sorted by length (ties by original index) and cut into
// consecutive batches of batchSize, the last batch of a window possibly
// smaller. A batch lists the original indices of its items, so results are
// put back in order with out[idx] = result. The order is deterministic.
//
// Windows bound what a streaming caller must hold and keep the batches
// of a window together; a larger window pads less. Within a window the
// padding is at most (batchSize−1)·(longest − shortest) tokens, because
// the batches are contiguous runs of the sorted lengths. Cost:
// O(n·log window).
func LengthBatches(lengths []int, batchSize, window int) ([][]int, error) {
	return lengthBatches(lengths, batchSize, window)
}

// SameLengthBatches groups items so that each batch holds items of one
// token length only: no padding is computed, and an item's result does not
// depend on the others, which LengthBatches cannot promise: a sequence
// padded to a longer partner's length gets slightly different weights
// (the attention sums over the padded length in another order; the GEMMs
// are row-independent, so the batch size does not matter). Lengths are
// taken in increasing order, each length's items in their original order,
// cut into batches of batchSize. Cost: O(n·log n); at most one more batch
// per distinct length than LengthBatches makes.
func SameLengthBatches(lengths []int, batchSize int) ([][]int, error) {
	if batchSize < 1 {
		return nil, fmt.Errorf("same-length batches: batch size %d, want ≥ 1", batchSize)
	}
	idx := make([]int, len(lengths))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lengths[idx[a]] < lengths[idx[b]] })
	var out [][]int
	for start := 0; start < len(idx); {
		end := start
		for end < len(idx) && end-start < batchSize && lengths[idx[end]] == lengths[idx[start]] {
			end++
		}
		out = append(out, idx[start:end:end])
		start = end
	}
	return out, nil
}

func lengthBatches(lengths []int, batchSize, window int) ([][]int, error) {
	if batchSize < 1 {
		return nil, fmt.Errorf("length batches: batch size %d, want ≥ 1", batchSize)
	}
	n := len(lengths)
	if window <= 0 || window > n {
		window = n
	}
	window = (window + batchSize - 1) / batchSize * batchSize
	var out [][]int
	for start := 0; start < n; start += window {
		end := min(start+window, n)
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		sort.SliceStable(idx, func(a, b int) bool { return lengths[idx[a]] < lengths[idx[b]] })
		for b := 0; b < len(idx); b += batchSize {
			out = append(out, idx[b:min(b+batchSize, len(idx))])
		}
	}
	return out, nil
}

// Padding returns the number of real tokens and of token slots computed
// when every batch is padded to its longest item.
func Padding(lengths []int, batches [][]int) (tokens, slots int) {
	for _, b := range batches {
		mx := 0
		for _, i := range b {
			tokens += lengths[i]
			mx = max(mx, lengths[i])
		}
		slots += mx * len(b)
	}
	return tokens, slots
}

// PaddingRatio returns the fraction of computed token slots that are
// padding: 1 − tokens/slots (0 when there are no slots).
func PaddingRatio(lengths []int, batches [][]int) float64 {
	tokens, slots := Padding(lengths, batches)
	if slots == 0 {
		return 0
	}
	return 1 - float64(tokens)/float64(slots)
}

// Pad builds a right-padded (B,T) batch from token sequences: T is the
// longest sequence, ids past a sequence's end are padID and their mask is
// 0. TypeIDs is nil (all segment 0). A batch of no sequences, or with an
// empty sequence, is an error.
func Pad(seqs [][]int32, padID int32) (nn.Batch, error) {
	if len(seqs) == 0 {
		return nn.Batch{}, fmt.Errorf("pad: no sequences")
	}
	T := 0
	for i, s := range seqs {
		if len(s) == 0 {
			return nn.Batch{}, fmt.Errorf("pad: sequence %d is empty", i)
		}
		T = max(T, len(s))
	}
	b := nn.Batch{
		B:        len(seqs),
		T:        T,
		InputIDs: make([]int32, len(seqs)*T),   // (B,T)
		Mask:     make([]float32, len(seqs)*T), // (B,T)
	}
	for i, s := range seqs {
		row := b.InputIDs[i*T : (i+1)*T]
		copy(row, s)
		for t := len(s); t < T; t++ {
			row[t] = padID
		}
		m := b.Mask[i*T : (i+1)*T]
		for t := range s {
			m[t] = 1
		}
	}
	return b, nil
}

// TrainBatchOptions configure BuildTrainBatch.
type TrainBatchOptions struct {
	QueryMaxLen int   // tokens per query, [CLS] and [SEP] included
	DocMaxLen   int   // tokens per document, [CLS] and [SEP] included
	NNeg        int   // hard negatives per query (≥ 1)
	PadID       int32 // the [PAD] id (0 for BERT vocabularies)
	// Rand picks NNeg negatives uniformly without replacement when a triple
	// has more; nil takes the first NNeg.
	Rand *rand.Rand
}

// TrainBatch is one training step's input: the padded token batches of
// the queries, their positives and their hard negatives, laid out as Batch
// (the SPLADE vectors) expects them, and the teacher margins.
type TrainBatch struct {
	Q       nn.Batch  // (B, Tq) queries
	P       nn.Batch  // (B, Tp) positives, row i for query i
	N       nn.Batch  // (B·NNeg, Tn) negatives, rows i·NNeg … i·NNeg+NNeg−1 for query i
	NNeg    int       //
	Teacher []float32 // (B·NNeg) teacher margins in N's row order; nil unless every triple has margins
	NegIDs  []string  // (B·NNeg) the document id of each row of N
}

// BuildTrainBatch tokenises the triples triples[idx[0]], triples[idx[1]], …
// and pads them into a TrainBatch. tokenize(text, maxLen) must return the
// ids of text with [CLS] and [SEP] added, at most maxLen of them; texts
// gives the query and document texts (see LoadTexts).
//
// A triple with fewer than opt.NNeg negatives repeats them cyclically; one
// with more uses opt.Rand to choose (or the first NNeg). Teacher margins
// follow the chosen negatives. A missing text, an empty or too long
// tokenisation, or an index out of range is an error naming the id.
func BuildTrainBatch(triples []Triple, idx []int, texts *Texts, tokenize func(text string, maxLen int) []int32, opt TrainBatchOptions) (*TrainBatch, error) {
	if len(idx) == 0 {
		return nil, fmt.Errorf("build train batch: no triples")
	}
	if opt.NNeg < 1 || opt.QueryMaxLen < 2 || opt.DocMaxLen < 2 {
		return nil, fmt.Errorf("build train batch: negatives %d, query max length %d, document max length %d: want ≥ 1, ≥ 2, ≥ 2",
			opt.NNeg, opt.QueryMaxLen, opt.DocMaxLen)
	}
	tok := func(kind, id string, m map[string]string, maxLen int) ([]int32, error) {
		text, ok := m[id]
		if !ok {
			return nil, fmt.Errorf("build train batch: no text for %s %q", kind, id)
		}
		ids := tokenize(text, maxLen)
		if len(ids) == 0 || len(ids) > maxLen {
			return nil, fmt.Errorf("build train batch: %s %q tokenised to %d ids, want 1..%d", kind, id, len(ids), maxLen)
		}
		return ids, nil
	}
	withMargins := true
	for _, i := range idx {
		if i < 0 || i >= len(triples) {
			return nil, fmt.Errorf("build train batch: triple index %d out of range [0,%d)", i, len(triples))
		}
		t := triples[i]
		if len(t.NegIDs) == 0 {
			return nil, fmt.Errorf("build train batch: triple %d (query %q) has no negatives", i, t.QID)
		}
		if t.HasMargins() && len(t.Margins) != len(t.NegIDs) {
			return nil, fmt.Errorf("build train batch: triple %d (query %q) has %d margins for %d negatives", i, t.QID, len(t.Margins), len(t.NegIDs))
		}
		withMargins = withMargins && t.HasMargins()
	}
	tb := &TrainBatch{NNeg: opt.NNeg}
	var qs, ps, ns [][]int32
	for _, i := range idx {
		t := triples[i]
		q, err := tok("query", t.QID, texts.Queries, opt.QueryMaxLen)
		if err != nil {
			return nil, err
		}
		p, err := tok("document", t.PosID, texts.Docs, opt.DocMaxLen)
		if err != nil {
			return nil, err
		}
		qs, ps = append(qs, q), append(ps, p)
		for _, k := range ChooseNegatives(len(t.NegIDs), opt.NNeg, opt.Rand) {
			n, err := tok("document", t.NegIDs[k], texts.Docs, opt.DocMaxLen)
			if err != nil {
				return nil, err
			}
			ns = append(ns, n)
			tb.NegIDs = append(tb.NegIDs, t.NegIDs[k])
			if withMargins {
				tb.Teacher = append(tb.Teacher, t.Margins[k])
			}
		}
	}
	var err error
	if tb.Q, err = Pad(qs, opt.PadID); err != nil {
		return nil, err
	}
	if tb.P, err = Pad(ps, opt.PadID); err != nil {
		return nil, err
	}
	if tb.N, err = Pad(ns, opt.PadID); err != nil {
		return nil, err
	}
	return tb, nil
}

// ChooseNegatives returns n indices into a triple's have negatives: all of
// them cyclically when have < n, else n drawn without replacement by r (the
// first n when r is nil).
func ChooseNegatives(have, n int, r *rand.Rand) []int {
	out := make([]int, n)
	switch {
	case have < n:
		for k := range out {
			out[k] = k % have
		}
	case r != nil:
		copy(out, r.Perm(have)[:n])
	default:
		for k := range out {
			out[k] = k
		}
	}
	return out
}
