package tokenize

import (
	"container/heap"
	"fmt"
	"iter"
	"sort"
	"strings"
	"unicode/utf8"
)

// SpecialTokens are the first ids of every vocabulary TrainWordPiece
// builds: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4. (bert-base puts
// them at 0, 100, 101, 102, 103; models trained from scratch use their own
// vocabulary, so the compact layout costs nothing.)
var SpecialTokens = []string{PadToken, UnkToken, ClsToken, SepToken, MaskToken}

// Training limits. Words are counted in a map; when it holds more than
// maxDistinctWords entries the rarest words are pruned (their counts are
// lost, which only affects words too rare to shape merges). Alphabet
// characters beyond the alphaLimit most frequent are dropped from words,
// as HF's BertWordPieceTokenizer (limit_alphabet=1000) does.
const (
	maxDistinctWords = 2_000_000
	alphaLimit       = 1000
	maxWordChars     = 100 // longer words encode to [UNK]; not trained on
)

// TrainWordPiece learns a WordPiece vocabulary of (at most) vocabSize
// tokens from texts, the way HF tokenizers' WordPieceTrainer does: texts
// are normalised (BERT normaliser; lowercasing and accent stripping when
// lowercase) and pre-tokenised (whitespace, punctuation); every word starts
// as characters, continuation characters prefixed "##"; then the most
// frequent adjacent pair is merged repeatedly (ties: the pair of smaller
// ids) — a merge of "x" and "##y" yields "xy", of "##x" and "##y" "##xy" —
// until the vocabulary is full or no pair occurs minFreq times.
//
// The vocabulary is SpecialTokens, then the alphabet (characters sorted by
// code point), then "##c" continuation characters in order of first use,
// then merged tokens in merge order. Every character seen in training (up
// to the 1000 most frequent) is in it both as a word start and, if it was
// seen inside a word, with "##", so training text never encodes to [UNK]
// because of an unseen character. The alphabet is kept whole even when it
// makes the vocabulary exceed vocabSize.
//
// Cost: one pass over the texts with a word-count map, then the merges with
// incremental pair counts and a lazy max-heap: each merge touches only the
// words that contain the merged pair.
func TrainWordPiece(texts iter.Seq[string], vocabSize int, minFreq int, lowercase bool) ([]string, error) {
	if vocabSize < len(SpecialTokens) {
		return nil, fmt.Errorf("vocabulary size %d is below the %d special tokens", vocabSize, len(SpecialTokens))
	}
	opts := normOptions{cleanText: true, chinese: true, lowercase: lowercase, stripAccents: lowercase}
	counts := map[string]int64{}
	pruneBelow := int64(2)
	for text := range texts {
		preTokenize(opts.normalize(text), func(w string) {
			if n, ok := counts[w]; ok {
				counts[w] = n + 1
			} else if utf8.RuneCountInString(w) <= maxWordChars {
				counts[strings.Clone(w)] = 1
			}
		})
		for len(counts) > maxDistinctWords {
			for w, n := range counts {
				if n < pruneBelow {
					delete(counts, w)
				}
			}
			if len(counts) > maxDistinctWords/2 {
				pruneBelow *= 2
			}
		}
	}
	tr := newTrainer(counts)
	tr.merge(vocabSize, minFreq)
	return tr.vocab, nil
}

// trainer holds the state of the merge loop.
type trainer struct {
	vocab []string
	ids   map[string]int32
	words [][]int32 // symbols of each distinct word
	freq  []int64   // count of each word
}

// newTrainer builds the vocabulary's specials and alphabet and splits every
// word into symbols.
func newTrainer(counts map[string]int64) *trainer {
	tr := &trainer{ids: map[string]int32{}}
	for _, s := range SpecialTokens {
		tr.add(s)
	}
	charFreq := map[rune]int64{}
	for w, n := range counts {
		for _, r := range w {
			charFreq[r] += n
		}
	}
	alpha := make([]rune, 0, len(charFreq))
	for r := range charFreq {
		alpha = append(alpha, r)
	}
	if len(alpha) > alphaLimit {
		sort.Slice(alpha, func(i, j int) bool {
			if charFreq[alpha[i]] != charFreq[alpha[j]] {
				return charFreq[alpha[i]] > charFreq[alpha[j]]
			}
			return alpha[i] < alpha[j]
		})
		alpha = alpha[:alphaLimit]
	}
	sort.Slice(alpha, func(i, j int) bool { return alpha[i] < alpha[j] })
	inAlpha := make(map[rune]bool, len(alpha))
	for _, r := range alpha {
		inAlpha[r] = true
		tr.add(string(r))
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Strings(words) // deterministic ids for "##c" and merge ties
	for _, w := range words {
		var syms []int32
		first := true
		for _, r := range w {
			if !inAlpha[r] {
				continue
			}
			s := string(r)
			if !first {
				s = "##" + s
			}
			first = false
			syms = append(syms, tr.add(s))
		}
		if len(syms) > 0 {
			tr.words = append(tr.words, syms)
			tr.freq = append(tr.freq, counts[w])
		}
	}
	return tr
}

func (tr *trainer) add(tok string) int32 {
	if id, ok := tr.ids[tok]; ok {
		return id
	}
	id := int32(len(tr.vocab))
	tr.vocab = append(tr.vocab, tok)
	tr.ids[tok] = id
	return id
}

// mergedToken is the token a merge of ids a and b produces.
func (tr *trainer) mergedToken(a, b int32) string {
	return tr.vocab[a] + strings.TrimPrefix(tr.vocab[b], "##")
}

func pairKey(a, b int32) uint64      { return uint64(uint32(a))<<32 | uint64(uint32(b)) }
func pairOf(k uint64) (int32, int32) { return int32(uint32(k >> 32)), int32(uint32(k)) }

type pairEntry struct {
	key   uint64
	count int64
}

// pairHeap is a max-heap by count, ties to the smaller pair (a, b).
type pairHeap []pairEntry

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	return h[i].key < h[j].key
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairEntry)) }
func (h *pairHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// merge runs merges until the vocabulary has vocabSize tokens or the best
// pair occurs fewer than minFreq times.
func (tr *trainer) merge(vocabSize, minFreq int) {
	minFreq = max(minFreq, 1)
	counts := map[uint64]int64{}
	where := map[uint64][]int32{} // pair → words that may contain it (duplicates and stale entries allowed)
	for wi, syms := range tr.words {
		for i := 0; i+1 < len(syms); i++ {
			k := pairKey(syms[i], syms[i+1])
			counts[k] += tr.freq[wi]
			if ws := where[k]; len(ws) == 0 || ws[len(ws)-1] != int32(wi) {
				where[k] = append(ws, int32(wi))
			}
		}
	}
	h := make(pairHeap, 0, len(counts))
	for k, c := range counts {
		h = append(h, pairEntry{k, c})
	}
	heap.Init(&h)
	stamp := make([]int32, len(tr.words)) // last merge step that visited each word
	touched := map[uint64]bool{}
	step := int32(0)
	for len(tr.vocab) < vocabSize && h.Len() > 0 {
		top := heap.Pop(&h).(pairEntry)
		cur := counts[top.key]
		if top.count != cur {
			if cur > 0 {
				heap.Push(&h, pairEntry{top.key, cur})
			}
			continue
		}
		if cur < int64(minFreq) {
			break
		}
		step++
		a, b := pairOf(top.key)
		n := tr.add(tr.mergedToken(a, b))
		clear(touched)
		for _, wi := range where[top.key] {
			if stamp[wi] == step {
				continue
			}
			stamp[wi] = step
			f := tr.freq[wi]
			tr.words[wi] = mergeWord(tr.words[wi], a, b, n, func(k uint64, d int64) {
				counts[k] += d * f
				if d > 0 {
					touched[k] = true
					if ws := where[k]; len(ws) == 0 || ws[len(ws)-1] != wi {
						where[k] = append(ws, wi)
					}
				}
			})
		}
		delete(where, top.key)
		delete(counts, top.key)
		for k := range touched {
			if c := counts[k]; c > 0 {
				heap.Push(&h, pairEntry{k, c})
			}
		}
	}
}

// mergeWord replaces, left to right, every non-overlapping occurrence of
// the pair (a, b) in syms by n, in place, and reports each change of an
// adjacent pair's occurrence count (the merged pair itself excluded).
func mergeWord(syms []int32, a, b, n int32, change func(k uint64, d int64)) []int32 {
	out := syms[:0]
	for i := 0; i < len(syms); {
		if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
			if len(out) > 0 {
				prev := out[len(out)-1]
				change(pairKey(prev, a), -1)
				change(pairKey(prev, n), +1)
			}
			if i+2 < len(syms) {
				next := syms[i+2]
				change(pairKey(b, next), -1)
				change(pairKey(n, next), +1)
			}
			out = append(out, n)
			i += 2
			continue
		}
		out = append(out, syms[i])
		i++
	}
	return out
}
