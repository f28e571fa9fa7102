package pretrain

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Pairs cuts a token stream into sentence-pair examples for BERT's
// next-sentence task (Devlin et al., 2019), trained jointly with MLM
// (Settings.PairTask "nsp"). Every document of at least 2 tokens is cut
// into pieces of equal length (±1) of at most T-3 tokens; piece i is
// example i. Drawn in an epoch, the example is
//
//	[CLS] A [SEP] B [SEP] [PAD]…     token types 0 for [CLS] A [SEP], 1 for B [SEP]
//
// where A is the piece up to a split point (a word start when the piece
// has one after its first token) and B is, with probability 1/2, the rest
// of the piece — the text that follows A in its document (label 0, HF's
// "is next") — or otherwise as many tokens (fewer when that document is
// shorter) from a word start of another document chosen uniformly (label
// 1, "random"); never from A's document. The split, the label and B are a
// pure function of (seed, epoch, example), so a resumed run sees the
// examples it would have seen, and epoch -1 is the fixed held-out draw.
// Random B's come from every document, held-out pieces included (held-out
// measures are on held-out pieces' A and B; a training negative may show
// a span of a held-out piece as an unrelated B).
//
// Cost: 24 bytes per piece beside the stream; drawing an example is O(T).
type Pairs struct {
	T    int
	s    *TokenStream
	segs []pairSeg
	docs []int32 // documents with at least one token, for random B's
	seed uint64

	cls, sep, pad int32
}

// pairSeg is a piece of document docs[doc]: stream tokens [lo, hi).
type pairSeg struct {
	lo, hi int64
	doc    int32 // index into Pairs.docs
}

// PairExample is one drawn example, padded to T.
type PairExample struct {
	IDs       []int32   // (T)
	WordStart []bool    // (T) for whole-word masking; true on specials
	Types     []int32   // (T) token types
	Mask      []float32 // (T) 1 for a real token, 0 for padding
	Next      int32     // 0: B follows A in its document; 1: B is from another document
	DocA      int       // the stream's document of A
	DocB      int       // the stream's document of B
	ALen      int       // tokens of A
	BLo       int64     // B is stream tokens [BLo, BLo+BLen)
	BLen      int
}

// NewPairs builds the pair examples of s for sequences of T tokens (T >= 5:
// three specials and at least two text tokens). cls, sep and pad are the
// tokenizer's special ids; seed fixes every draw. It is an error when s
// has fewer than two non-empty documents (no random B) or no document of
// two tokens (no example).
func NewPairs(s *TokenStream, T int, cls, sep, pad int32, seed uint64) (*Pairs, error) {
	if T < 5 {
		return nil, fmt.Errorf("sequence length %d, want at least 5 for a sentence pair", T)
	}
	L := int64(T - 3)
	p := &Pairs{T: T, s: s, seed: seed, cls: cls, sep: sep, pad: pad}
	for d := range s.Docs() {
		a, b := s.DocStart[d], s.DocStart[d+1]
		if b == a {
			continue
		}
		di := int32(len(p.docs))
		p.docs = append(p.docs, int32(d))
		m := b - a
		if m < 2 {
			continue
		}
		q := (m + L - 1) / L // pieces, each of m/q tokens (±1) ≤ L, ≥ 2
		for k := range q {
			p.segs = append(p.segs, pairSeg{lo: a + k*m/q, hi: a + (k+1)*m/q, doc: di})
		}
	}
	if len(p.docs) < 2 {
		return nil, errors.New("the sentence-pair task needs at least two non-empty documents")
	}
	if len(p.segs) == 0 {
		return nil, errors.New("the sentence-pair task needs a document of at least two tokens")
	}
	return p, nil
}

// Len returns the number of examples.
func (p *Pairs) Len() int { return len(p.segs) }

// Split holds out every every-th example, as Packed.Split does.
func (p *Pairs) Split(every int) (train, heldOut []int) { return splitIndices(p.Len(), every) }

// rng is the random stream of example i in epoch, apart from the masker's.
func (p *Pairs) rng(epoch, i int) *rand.Rand {
	return rand.New(rand.NewPCG(mix(p.seed^0x7061697273, uint64(epoch)), mix(p.seed^0x6e737021, uint64(i))))
}

// wordStartIn returns a uniformly drawn k in [lo, hi] with WordStart at
// base+k, or a uniform k in [lo, hi] when there is none.
func (p *Pairs) wordStartIn(rng *rand.Rand, base int64, lo, hi int) int {
	n := 0
	for k := lo; k <= hi; k++ {
		if p.s.WordStart[base+int64(k)] {
			n++
		}
	}
	if n == 0 {
		return lo + rng.IntN(hi-lo+1)
	}
	j := rng.IntN(n)
	for k := lo; k <= hi; k++ {
		if p.s.WordStart[base+int64(k)] {
			if j == 0 {
				return k
			}
			j--
		}
	}
	panic("unreachable")
}

// Pair draws example i of epoch (see Pairs), freshly allocated. It panics
// when i is out of range.
func (p *Pairs) Pair(i, epoch int) PairExample {
	if i < 0 || i >= len(p.segs) {
		panic(fmt.Sprintf("pretrain: pair example %d of %d", i, len(p.segs)))
	}
	sg := p.segs[i]
	rng := p.rng(epoch, i)
	n := int(sg.hi - sg.lo)
	a := p.wordStartIn(rng, sg.lo, 1, n-1)
	ex := PairExample{DocA: int(p.docs[sg.doc]), ALen: a, BLo: sg.lo + int64(a), BLen: n - a, DocB: int(p.docs[sg.doc])}
	if rng.IntN(2) == 1 {
		ex.Next = 1
		j := int32(rng.IntN(len(p.docs) - 1))
		if j >= sg.doc {
			j++ // skip A's document
		}
		d := p.docs[j]
		lo, hi := p.s.DocStart[d], p.s.DocStart[d+1]
		m := int(hi - lo)
		ex.DocB, ex.BLen, ex.BLo = int(d), min(ex.BLen, m), lo
		if m > ex.BLen {
			ex.BLo = lo + int64(p.wordStartIn(rng, lo, 0, m-ex.BLen))
		}
	}
	T := p.T
	ex.IDs, ex.WordStart = make([]int32, T), make([]bool, T)
	ex.Types, ex.Mask = make([]int32, T), make([]float32, T)
	t := 0
	put := func(id int32, ws bool, typ int32) {
		ex.IDs[t], ex.WordStart[t], ex.Types[t], ex.Mask[t] = id, ws, typ, 1
		t++
	}
	put(p.cls, true, 0)
	for k := sg.lo; k < sg.lo+int64(a); k++ {
		put(p.s.IDs[k], p.s.WordStart[k], 0)
	}
	put(p.sep, true, 0)
	for k := ex.BLo; k < ex.BLo+int64(ex.BLen); k++ {
		put(p.s.IDs[k], p.s.WordStart[k], 1)
	}
	put(p.sep, true, 1)
	for ; t < T; t++ {
		ex.IDs[t], ex.WordStart[t] = p.pad, true
	}
	return ex
}

// Sequences are what the MLM trainer draws batches from: Packed (MLM
// alone) or Pairs (MLM and the sentence-pair task).
type Sequences interface {
	Len() int
	Split(every int) (train, heldOut []int)
	// batch returns sequences idx as drawn in epoch.
	batch(idx []int, epoch int) seqBatch
}

// seqBatch is a batch of unmasked sequences of one length T.
type seqBatch struct {
	T     int
	ids   [][]int32 // B × (T)
	ws    [][]bool  // B × (T) word starts
	types []int32   // (B,T) token types; nil: all 0
	mask  []float32 // (B,T) attention mask
	next  []int32   // (B) pair labels; nil without the pair task
}

func (p *Packed) batch(idx []int, _ int) seqBatch {
	sb := seqBatch{T: p.T, ids: make([][]int32, len(idx)), ws: make([][]bool, len(idx)), mask: make([]float32, len(idx)*p.T)}
	for i, j := range idx {
		sb.ids[i], sb.ws[i] = p.Seq(j)
	}
	for i := range sb.mask {
		sb.mask[i] = 1
	}
	return sb
}

func (p *Pairs) batch(idx []int, epoch int) seqBatch {
	B, T := len(idx), p.T
	sb := seqBatch{T: T, ids: make([][]int32, B), ws: make([][]bool, B),
		types: make([]int32, 0, B*T), mask: make([]float32, 0, B*T), next: make([]int32, B)}
	for i, j := range idx {
		ex := p.Pair(j, epoch)
		sb.ids[i], sb.ws[i], sb.next[i] = ex.IDs, ex.WordStart, ex.Next
		sb.types = append(sb.types, ex.Types...)
		sb.mask = append(sb.mask, ex.Mask...)
	}
	return sb
}
