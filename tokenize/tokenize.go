// Package tokenize turns text into BERT WordPiece token ids, offline, with
// Hugging Face's behaviour, and trains WordPiece vocabularies for models
// trained from scratch.
//
// The WordPiece model (greedy longest-match-first with "##" continuations,
// over-long words → [UNK]) is github.com/sugarme/tokenizer's. In front of it
// this package runs its own copy of HF tokenizers' BertNormalizer and
// BertPreTokenizer, for two reasons:
//
//   - correctness: sugarme's BertNormalizer strips accents without Unicode
//     decomposition ("café" → [UNK] instead of "cafe") and only knows ASCII
//     whitespace and two of HF's control classes;
//   - speed: sugarme's NormalizedString/PreTokenizedString bookkeeping
//     (byte alignments copied for every word) costs ~7 KB of allocation per
//     token; calling its WordPiece model directly on pre-tokenised words is
//     an order of magnitude faster (BenchmarkEncode; docs/performance.md).
//
// sugarme's complete pipeline (its pre-tokenizer behind our normaliser) is
// still built, and the tests check that both paths give identical ids and
// word indices. Special tokens are added and sequences truncated here rather
// than by sugarme, so one *Tokenizer serves any maximum length concurrently.
//
// Differences from HF that remain, all deliberate: literal "[MASK]",
// "[SEP]"... inside the text are tokenised as ordinary text (HF matches them
// as special tokens), and lowercasing uses Go's simple case mapping (HF's
// full mapping differs only for a handful of characters such as 'İ').
package tokenize

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/model"
	"github.com/sugarme/tokenizer/model/wordpiece"
	"github.com/sugarme/tokenizer/pretokenizer"
)

// Special token strings of BERT vocabularies.
const (
	PadToken  = "[PAD]"
	UnkToken  = "[UNK]"
	ClsToken  = "[CLS]"
	SepToken  = "[SEP]"
	MaskToken = "[MASK]"
)

// Encoding is one encoded sequence (or pair), specials included.
type Encoding struct {
	IDs     []int32 // (T) token ids: [CLS] a… [SEP] (b… [SEP])
	TypeIDs []int32 // (T) 0 for [CLS], a and its [SEP]; 1 for b and the final [SEP]
	// WordIDs gives, per token, the index of the pre-tokenised word it
	// comes from (words are split at whitespace and around punctuation);
	// -1 for special tokens. All pieces of a word share its index, which
	// is what whole-word masking needs. In a pair, b's indices continue
	// after a's, so indices are unique within the Encoding.
	WordIDs []int32 // (T)
}

// Tokenizer is a BERT WordPiece tokenizer. It is immutable after Load or
// FromVocab and safe for concurrent use.
type Tokenizer struct {
	tk       *tokenizer.Tokenizer // sugarme's full pipeline (cross-check in tests)
	wp       wordpiece.WordPiece  // sugarme's WordPiece model
	vocab    []string             // id → token
	ids      map[string]int32     // token → id
	norm     normOptions
	maxChars int // longer words become [UNK]
	maxLen   int // model_max_length from tokenizer_config.json, 0 if unknown
	unkTok   string

	cls, sep, pad, mask, unk int32
}

// specialNames maps each role to its token string; Load may override the
// defaults from tokenizer_config.json / special_tokens_map.json.
type specialNames struct{ cls, sep, pad, mask, unk string }

var defaultSpecials = specialNames{ClsToken, SepToken, PadToken, MaskToken, UnkToken}

// FromVocab builds a tokenizer from a vocabulary (index = id) with HF's
// BERT defaults: clean text, CJK spacing, lowercasing and accent stripping
// both following lowercase (as "strip_accents": null does in HF), "##"
// continuation prefix, words over 100 characters → [UNK]. The vocabulary
// must hold [PAD], [UNK], [CLS], [SEP] and [MASK] and no duplicates.
func FromVocab(vocab []string, lowercase bool) (*Tokenizer, error) {
	return build(vocab, normOptions{cleanText: true, chinese: true, stripAccents: lowercase, lowercase: lowercase}, defaultSpecials, 100, 0)
}

func build(vocab []string, opts normOptions, sp specialNames, maxChars, maxLen int) (*Tokenizer, error) {
	t := &Tokenizer{
		vocab:    append([]string(nil), vocab...),
		ids:      make(map[string]int32, len(vocab)),
		norm:     opts,
		maxChars: maxChars,
		maxLen:   maxLen,
		unkTok:   sp.unk,
	}
	if len(vocab) == 0 {
		return nil, fmt.Errorf("empty vocabulary")
	}
	if len(vocab) > 1<<31-1 {
		return nil, fmt.Errorf("vocabulary of %d tokens is too large", len(vocab))
	}
	sv := make(model.Vocab, len(vocab))
	for i, tok := range vocab {
		if tok == "" {
			return nil, fmt.Errorf("vocabulary entry %d is empty", i)
		}
		if j, dup := t.ids[tok]; dup {
			return nil, fmt.Errorf("vocabulary lists %q twice (ids %d and %d)", tok, j, i)
		}
		t.ids[tok] = int32(i)
		sv[tok] = i
	}
	for _, s := range []struct {
		name string
		dst  *int32
	}{{sp.cls, &t.cls}, {sp.sep, &t.sep}, {sp.pad, &t.pad}, {sp.mask, &t.mask}, {sp.unk, &t.unk}} {
		id, ok := t.ids[s.name]
		if !ok {
			return nil, fmt.Errorf("vocabulary lacks the special token %s", s.name)
		}
		*s.dst = id
	}
	wp := wordpiece.NewWordPieceBuilder().
		Vocab(&sv).
		UnkToken(sp.unk).
		ContinuingSubwordPrefix("##").
		MaxInputCharsPerWord(maxChars).
		Build()
	t.wp = wp
	t.tk = tokenizer.NewTokenizer(wp)
	t.tk.WithNormalizer(sugarNormalizer{opts})
	t.tk.WithPreTokenizer(pretokenizer.NewBertPreTokenizer())
	return t, nil
}

// pieces encodes text without specials: token ids and word indices.
func (t *Tokenizer) pieces(text string) (ids, words []int32) {
	word := int32(0)
	preTokenize(t.norm.normalize(text), func(w string) {
		toks, err := t.wp.Tokenize(w)
		if err != nil {
			panic(fmt.Sprintf("tokenize: sugarme wordpiece: %v", err))
		}
		for _, tok := range toks {
			ids = append(ids, int32(tok.Id))
			words = append(words, word)
		}
		word++
	})
	return ids, words
}

// sugarPieces is pieces through sugarme's whole Tokenizer pipeline.
func (t *Tokenizer) sugarPieces(text string) (ids, words []int32) {
	en, err := t.tk.EncodeSingle(text, false)
	if err != nil {
		// sugarme fails only when [UNK] is missing, which build rules out.
		panic(fmt.Sprintf("tokenize: sugarme encode: %v", err))
	}
	ids = make([]int32, len(en.Ids))
	words = make([]int32, len(en.Ids))
	for i, id := range en.Ids {
		ids[i] = int32(id)
		words[i] = int32(en.Words[i])
	}
	return ids, words
}

// Encode tokenises text as [CLS] pieces… [SEP]. When maxLen > 0 the pieces
// are cut so the result has at most maxLen tokens ([SEP] is kept last, as
// HF's truncation does); maxLen 1 is treated as 2. maxLen <= 0 means no
// limit (see MaxLen for the model's own). Empty or all-whitespace text
// gives [CLS] [SEP]. Cost: linear in len(text) (BenchmarkEncode;
// docs/performance.md).
func (t *Tokenizer) Encode(text string, maxLen int) Encoding {
	ids, words := t.pieces(text)
	if maxLen > 0 {
		keep := max(maxLen, 2) - 2
		if len(ids) > keep {
			ids, words = ids[:keep], words[:keep]
		}
	}
	n := len(ids) + 2
	e := Encoding{IDs: make([]int32, 0, n), TypeIDs: make([]int32, n), WordIDs: make([]int32, 0, n)}
	e.IDs = append(append(append(e.IDs, t.cls), ids...), t.sep)
	e.WordIDs = append(append(append(e.WordIDs, -1), words...), -1)
	return e
}

// EncodePair tokenises a text pair as [CLS] a… [SEP] b… [SEP] with type ids
// 0 for the first part and 1 for b and its [SEP]. When maxLen > 0 the pair
// is truncated with HF's "longest_first" strategy on a budget of maxLen-3
// pieces: when the shorter side fits in half the budget only the longer one
// is cut, to what the shorter leaves; otherwise each side gets half, the
// longer one the odd token. maxLen below 3 is treated as 3.
func (t *Tokenizer) EncodePair(a, b string, maxLen int) Encoding {
	ia, wa := t.pieces(a)
	ib, wb := t.pieces(b)
	if maxLen > 0 {
		na, nb := longestFirst(len(ia), len(ib), max(maxLen, 3)-3)
		ia, wa, ib, wb = ia[:na], wa[:na], ib[:nb], wb[:nb]
	}
	shift := int32(0)
	for _, w := range wa {
		shift = max(shift, w+1)
	}
	n := len(ia) + len(ib) + 3
	e := Encoding{IDs: make([]int32, 0, n), TypeIDs: make([]int32, n), WordIDs: make([]int32, 0, n)}
	e.IDs = append(e.IDs, t.cls)
	e.IDs = append(e.IDs, ia...)
	e.IDs = append(e.IDs, t.sep)
	e.IDs = append(e.IDs, ib...)
	e.IDs = append(e.IDs, t.sep)
	e.WordIDs = append(e.WordIDs, -1)
	e.WordIDs = append(e.WordIDs, wa...)
	e.WordIDs = append(e.WordIDs, -1)
	for _, w := range wb {
		e.WordIDs = append(e.WordIDs, w+shift)
	}
	e.WordIDs = append(e.WordIDs, -1)
	for i := len(ia) + 2; i < n; i++ {
		e.TypeIDs[i] = 1
	}
	return e
}

// longestFirst returns how many tokens of each side HF keeps under the
// "longest_first" strategy for a budget of max tokens (specials excluded).
func longestFirst(n1, n2, max int) (int, int) {
	if n1+n2 <= max {
		return n1, n2
	}
	swap := n1 > n2
	if swap {
		n1, n2 = n2, n1
	}
	if n1 > max {
		n2 = n1
	} else {
		n2 = maxInt(n1, max-n1)
	}
	if n1+n2 > max {
		n1 = max / 2
		n2 = n1 + max%2
	}
	if swap {
		n1, n2 = n2, n1
	}
	return n1, n2
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// batchWorkers is EncodeBatch's goroutine count (SetThreads); 0 means
// GOMAXPROCS.
var batchWorkers atomic.Int32

// SetThreads sets how many goroutines EncodeBatch uses (the config key
// threads); values below 1 mean one per GOMAXPROCS, the default. Texts are
// independent, so the encodings do not depend on it.
func SetThreads(n int) { batchWorkers.Store(int32(max(n, 0))) }

// EncodeBatch encodes every text with Encode on SetThreads goroutines
// (texts dealt round-robin); result i belongs to texts[i].
func (t *Tokenizer) EncodeBatch(texts []string, maxLen int) []Encoding {
	out := make([]Encoding, len(texts))
	workers := int(batchWorkers.Load())
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(texts))
	if workers <= 1 {
		for i, s := range texts {
			out[i] = t.Encode(s, maxLen)
		}
		return out
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				out[i] = t.Encode(texts[i], maxLen)
			}
		}()
	}
	wg.Wait()
	return out
}

// Tokens returns the word pieces of text, without specials or truncation.
func (t *Tokenizer) Tokens(text string) []string {
	ids, _ := t.pieces(text)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.vocab[id]
	}
	return out
}

// Vocab returns a copy of the vocabulary; index = id.
func (t *Tokenizer) Vocab() []string { return append([]string(nil), t.vocab...) }

// VocabSize returns the number of tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// ID returns the id of a token and whether the vocabulary has it.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.ids[token]
	return id, ok
}

// Token returns the token of an id, or "" when the id is out of range.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.vocab) {
		return ""
	}
	return t.vocab[id]
}

// Special token ids.
func (t *Tokenizer) CLS() int32  { return t.cls }
func (t *Tokenizer) SEP() int32  { return t.sep }
func (t *Tokenizer) PAD() int32  { return t.pad }
func (t *Tokenizer) MASK() int32 { return t.mask }
func (t *Tokenizer) UNK() int32  { return t.unk }

// IsSpecial reports whether id is one of the five special tokens.
func (t *Tokenizer) IsSpecial(id int32) bool {
	return id == t.cls || id == t.sep || id == t.pad || id == t.mask || id == t.unk
}

// Lowercase reports whether the tokenizer lowercases its input.
func (t *Tokenizer) Lowercase() bool { return t.norm.lowercase }

// MaxLen returns model_max_length from tokenizer_config.json, or 0 when the
// tokenizer was built without one.
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// WithMaxLen returns a copy of t whose MaxLen is n (saved as
// model_max_length); n <= 0 means none.
func (t *Tokenizer) WithMaxLen(n int) *Tokenizer {
	c := *t
	c.maxLen = max(n, 0)
	return &c
}
