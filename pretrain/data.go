package pretrain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/tokenize"
)

// TokenStream is a tokenised corpus: every document's word pieces, without
// special tokens, one document after another.
type TokenStream struct {
	IDs       []int32 // (N) token ids
	WordStart []bool  // (N) token begins a word (not a "##" piece)
	DocStart  []int64 // (D+1) document d is IDs[DocStart[d]:DocStart[d+1]]
	VocabSize int

	Reused    bool   // true when read from the cache, not tokenised
	CachePath string // the cache file ("" without a cache directory)
}

// Docs returns the number of documents.
func (s *TokenStream) Docs() int { return len(s.DocStart) - 1 }

// DataOptions control TokenizeCorpus.
type DataOptions struct {
	Corpora  corpora.Options // how readers treat bad records
	Progress string          // progress display: "auto", "on" or "off" (internal/progress)
}

// TokenizeCorpus tokenises the documents (Doc.Content) of every corpus in
// paths, in order, with tok. With a cacheDir, the result is stored there
// under a key made of the cache format version, tok's vocabulary and
// lowercasing, the SkipInvalid setting and each path's fingerprint (the
// name, size and modification time of every file under it); a later call
// with the same key reads the cache instead (Reused is then true). A cache
// file that is corrupt is ignored and rewritten. Documents whose content
// is empty after tokenisation are kept as empty documents.
//
// Cost: one pass over the corpora at the tokenizer's speed (two
// goroutines); the stream takes 5 bytes per token in memory.
func TokenizeCorpus(ctx context.Context, paths []string, tok *tokenize.Tokenizer, cacheDir string, opts DataOptions) (*TokenStream, error) {
	if len(paths) == 0 {
		return nil, errors.New("tokenize corpus: no corpus given")
	}
	var cachePath string
	var key [32]byte
	if cacheDir != "" {
		k, err := cacheKey(paths, tok, opts.Corpora.SkipInvalid)
		if err != nil {
			return nil, err
		}
		key = k
		cachePath = cacheFile(cacheDir, key)
		if s, err := readCache(cachePath, key); err == nil {
			s.Reused, s.CachePath = true, cachePath
			return s, nil
		}
	}
	s := &TokenStream{DocStart: []int64{0}, VocabSize: tok.VocabSize(), CachePath: cachePath}
	bar := progress.New(os.Stderr, progress.Enabled(opts.Progress), "tokenise", "docs", 0)
	defer bar.Done()
	const batchDocs = 512
	batch := make([]string, 0, batchDocs)
	flush := func() {
		for _, e := range tok.EncodeBatch(batch, 0) {
			n := len(e.IDs) - 2 // drop [CLS] and [SEP]
			for i := 1; i <= n; i++ {
				s.IDs = append(s.IDs, e.IDs[i])
				s.WordStart = append(s.WordStart, i == 1 || e.WordIDs[i] != e.WordIDs[i-1])
			}
			s.DocStart = append(s.DocStart, int64(len(s.IDs)))
		}
		bar.Add(int64(len(batch)))
		batch = batch[:0]
	}
	for _, p := range paths {
		r, err := corpora.OpenCorpus(p, opts.Corpora)
		if err != nil {
			return nil, fmt.Errorf("tokenize corpus: %w", err)
		}
		for {
			d, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("tokenize corpus %s: %w", p, err)
			}
			batch = append(batch, d.Content())
			if len(batch) == batchDocs {
				if err := ctx.Err(); err != nil {
					r.Close()
					return nil, err
				}
				flush()
			}
		}
		r.Close()
	}
	flush()
	if cachePath != "" {
		if err := writeCache(cachePath, key, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Packed cuts a token stream into training sequences of exactly T tokens
// with no padding: the documents are joined as doc1 [SEP] doc2 [SEP] …
// into one flat stream, which is cut into chunks of T-1 tokens, and each
// chunk is prefixed with [CLS]. A document may thus span two sequences (as
// in RoBERTa's FULL-SENTENCES packing). The final chunk, shorter than T-1,
// is dropped: at most T-2 tokens of the whole corpus are lost.
type Packed struct {
	T      int
	flat   []int32 // doc1 [SEP] doc2 [SEP] …
	flatWS []bool
	cls    int32
}

// Pack packs s into sequences of length T (T >= 2).
func Pack(s *TokenStream, T int, cls, sep int32) (*Packed, error) {
	if T < 2 {
		return nil, fmt.Errorf("sequence length %d, want at least 2", T)
	}
	p := &Packed{T: T, cls: cls,
		flat:   make([]int32, 0, len(s.IDs)+s.Docs()),
		flatWS: make([]bool, 0, len(s.IDs)+s.Docs())}
	for d := range s.Docs() {
		a, b := s.DocStart[d], s.DocStart[d+1]
		if a == b {
			continue // an empty document would give a lone [SEP]
		}
		p.flat = append(p.flat, s.IDs[a:b]...)
		p.flatWS = append(p.flatWS, s.WordStart[a:b]...)
		p.flat = append(p.flat, sep)
		p.flatWS = append(p.flatWS, true)
	}
	return p, nil
}

// Len returns the number of sequences.
func (p *Packed) Len() int { return len(p.flat) / (p.T - 1) }

// Seq returns sequence i: ids (T) and word starts (T), freshly allocated.
func (p *Packed) Seq(i int) ([]int32, []bool) {
	if i < 0 || i >= p.Len() {
		panic(fmt.Sprintf("pretrain: sequence %d of %d", i, p.Len()))
	}
	ids := make([]int32, p.T)
	ws := make([]bool, p.T)
	ids[0], ws[0] = p.cls, true
	lo := i * (p.T - 1)
	copy(ids[1:], p.flat[lo:lo+p.T-1])
	copy(ws[1:], p.flatWS[lo:lo+p.T-1])
	return ids, ws
}

// Split divides the sequences into training and held-out ones: every
// every-th sequence (indices every-1, 2·every-1, …) is held out, so the
// held-out set (1/every of the corpus) is spread over the whole corpus
// rather than taken from its end. When that selects nothing and there are
// at least two sequences, the last one is held out. every <= 0 holds out
// nothing.
func (p *Packed) Split(every int) (train, heldOut []int) { return splitIndices(p.Len(), every) }

// splitIndices is Split over n sequences.
func splitIndices(n, every int) (train, heldOut []int) {
	for i := range n {
		if every > 0 && (i+1)%every == 0 {
			heldOut = append(heldOut, i)
		} else {
			train = append(train, i)
		}
	}
	if every > 0 && len(heldOut) == 0 && n >= 2 {
		train, heldOut = train[:n-1], []int{n - 1}
	}
	return train, heldOut
}

// Position is where a Loader stands: the next batch is batch Step of epoch
// Epoch. A trainer saves it with its checkpoint to resume exactly.
type Position struct {
	Epoch int `json:"epoch"`
	Step  int `json:"step"`
}

// Loader yields batches of sequence indices in a fresh shuffled order each
// epoch. The order of an epoch is a pure function of (Seed, epoch), so a
// run resumed at a Position sees the same batches as an uninterrupted one.
type Loader struct {
	indices []int
	batch   int
	seed    uint64

	permEpoch int
	perm      []int
}

// NewLoader returns a loader over indices (e.g. Split's train set) with
// batches of size batch (the last batch of an epoch may be smaller).
func NewLoader(indices []int, batch int, seed uint64) (*Loader, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("batch size %d, want > 0", batch)
	}
	if len(indices) == 0 {
		return nil, errors.New("no sequences to load (corpus shorter than one sequence?)")
	}
	return &Loader{indices: append([]int(nil), indices...), batch: batch, seed: seed, permEpoch: -1}, nil
}

// StepsPerEpoch returns the number of batches in an epoch.
func (l *Loader) StepsPerEpoch() int { return (len(l.indices) + l.batch - 1) / l.batch }

// Batch returns the sequence indices of batch step of epoch (a fresh
// slice). It panics when step is out of range.
func (l *Loader) Batch(epoch, step int) []int {
	if step < 0 || step >= l.StepsPerEpoch() {
		panic(fmt.Sprintf("pretrain: step %d of an epoch of %d", step, l.StepsPerEpoch()))
	}
	if l.permEpoch != epoch {
		rng := rand.New(rand.NewPCG(mix(l.seed, uint64(epoch)), 0x5eed))
		l.perm = rng.Perm(len(l.indices))
		l.permEpoch = epoch
	}
	lo := step * l.batch
	hi := min(lo+l.batch, len(l.indices))
	out := make([]int, hi-lo)
	for i := range out {
		out[i] = l.indices[l.perm[lo+i]]
	}
	return out
}

// Next returns the batch at pos and advances pos (to the next epoch after
// its last batch).
func (l *Loader) Next(pos *Position) []int {
	b := l.Batch(pos.Epoch, pos.Step)
	pos.Step++
	if pos.Step == l.StepsPerEpoch() {
		pos.Epoch, pos.Step = pos.Epoch+1, 0
	}
	return b
}
