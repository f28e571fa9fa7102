package rerank

import (
	"fmt"
	"slices"
	"sort"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// Scorer scores query–document pairs: the cross-encoder, or MICE.
type Scorer interface {
	// ScorePairs returns the score of every pair (qs[i], ds[i]). progress,
	// when not nil, is called with the number of pairs just scored.
	ScorePairs(qs, ds []string, progress func(n int)) ([]float32, error)
}

// CrossEncoder scores "[CLS] query [SEP] document [SEP]" (token types 0
// then 1, longest-first truncation to MaxLength) with a classifier.
// Not safe for concurrent use.
type CrossEncoder struct {
	Model     *nn.Classifier
	Tok       *tokenize.Tokenizer
	MaxLength int // tokens per pair, specials included
	BatchSize int // pairs per forward pass in ScorePairs
	// MatchTypes marks exact matches in the token types (see MarkMatches);
	// the model needs type_vocab_size ≥ NumMatchTypes.
	MatchTypes bool

	pass *nn.ScorePass
}

// NewCrossEncoder wraps a classifier and its tokenizer. maxLength is
// capped at the model's position table.
func NewCrossEncoder(m *nn.Classifier, tok *tokenize.Tokenizer, maxLength, batchSize int) (*CrossEncoder, error) {
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("cross-encoder: tokenizer has %d tokens, model vocab_size is %d", tok.VocabSize(), m.Config.VocabSize)
	}
	return &CrossEncoder{Model: m, Tok: tok, MaxLength: min(maxLength, m.Config.MaxPositions), BatchSize: max(batchSize, 1)}, nil
}

// SetMatchTypes turns exact-match token types on or off; on needs a BERT
// model with type_vocab_size ≥ NumMatchTypes.
func (e *CrossEncoder) SetMatchTypes(on bool) error {
	if on {
		if err := checkMatchTypes("cross-encoder", e.Model); err != nil {
			return err
		}
	}
	e.MatchTypes = on
	return nil
}

// Pass is the encoder's activation buffers, made on first use.
func (e *CrossEncoder) Pass() *nn.ScorePass {
	if e.pass == nil {
		e.pass = e.Model.NewScorePass()
	}
	return e.pass
}

// encode tokenises the pairs.
func (e *CrossEncoder) encode(qs, ds []string) []tokenize.Encoding {
	encs := make([]tokenize.Encoding, len(qs))
	for i := range qs {
		encs[i] = e.Tok.EncodePair(qs[i], ds[i], e.MaxLength)
		if e.MatchTypes {
			MarkMatches(encs[i], e.Tok.IsSpecial)
		}
	}
	return encs
}

// Token types of a pair with exact-match marking (MarkMatches).
const (
	TypeQueryMatched = 2 // a query piece that also occurs in the document
	TypeDocMatched   = 3 // a document piece that also occurs in the query
	NumMatchTypes    = 4
)

// MarkMatches rewrites the token types of a pair encoding (types 0 for
// "[CLS] q [SEP]", then 1 for "d [SEP]", as EncodePair gives them) so that
// every non-special query piece whose id also occurs among the (kept)
// document pieces gets TypeQueryMatched, and every such document piece
// TypeDocMatched — the exact-match signal of DrQA's features and
// MarkedBERT's markers, given as token types so that the sequence and the
// vocabulary stay as they are. A cross-encoder reads it in its first layer
// instead of having to learn a two-layer match-then-gather circuit first.
// MICE marks the query side only (MICE.MatchTypes), with the same rule.
// Cost: 2·|q|·|d| id comparisons, no allocation (queries are tens of
// pieces).
func MarkMatches(e tokenize.Encoding, special func(int32) bool) {
	k := 0
	for k < len(e.TypeIDs) && e.TypeIDs[k] == 0 {
		k++
	}
	q, d := e.IDs[:k], e.IDs[k:]
	markFound(q, e.TypeIDs[:k], d, special, TypeQueryMatched)
	markFound(d, e.TypeIDs[k:], q, special, TypeDocMatched)
}

// markFound gives token type typ to every non-special piece of ids (types
// beside it) whose id also occurs in other: the one marking rule of the
// cross-encoder's MarkMatches and MICE's query marks. other needs no
// filtering: a piece equal to a non-special piece is not special, and
// padding is. Cost: len(ids)·len(other) comparisons, no allocation.
func markFound(ids, types, other []int32, special func(int32) bool, typ int32) {
	for i, id := range ids {
		if !special(id) && slices.Contains(other, id) {
			types[i] = typ
		}
	}
}

// checkMatchTypes reports whether model c can take match types.
func checkMatchTypes(kind string, c *nn.Classifier) error {
	if c.Config.TypeVocabSize < NumMatchTypes {
		return fmt.Errorf("%s: match types need %d token types, the model has %d", kind, NumMatchTypes, c.Config.TypeVocabSize)
	}
	return nil
}

// PairBatch pads encodings (ids and token types) into one batch.
func PairBatch(encs []tokenize.Encoding, pad int32) nn.Batch {
	T := 0
	for _, en := range encs {
		T = max(T, len(en.IDs))
	}
	B := len(encs)
	b := nn.Batch{B: B, T: T, InputIDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i, en := range encs {
		for j := range T {
			b.InputIDs[i*T+j] = pad
		}
		copy(b.InputIDs[i*T:], en.IDs)
		copy(b.TypeIDs[i*T:], en.TypeIDs)
		for j := range en.IDs {
			b.Mask[i*T+j] = 1
		}
	}
	return b
}

// Forward scores the pairs in one batch, kept for Backward (training).
func (e *CrossEncoder) Forward(qs, ds []string) []float32 {
	return e.Pass().Score(PairBatch(e.encode(qs, ds), e.Tok.PAD()))
}

// Backward adds the gradient of Σ dscores·scores of the last Forward to
// the model's parameters.
func (e *CrossEncoder) Backward(dscores []float32) { e.Pass().Backward(dscores) }

// Base is the model whose parameters train.
func (e *CrossEncoder) Base() *nn.Model { return e.Model.Model }

// ScorePairs scores the pairs in batches of BatchSize pairs of similar
// length (sorted by token count, so little is spent on padding).
func (e *CrossEncoder) ScorePairs(qs, ds []string, progress func(n int)) ([]float32, error) {
	if len(qs) != len(ds) {
		return nil, fmt.Errorf("score pairs: %d queries for %d documents", len(qs), len(ds))
	}
	encs := e.encode(qs, ds)
	order := make([]int, len(encs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(encs[order[a]].IDs) < len(encs[order[b]].IDs) })
	out := make([]float32, len(encs))
	batch := make([]tokenize.Encoding, 0, e.BatchSize)
	for lo := 0; lo < len(order); lo += e.BatchSize {
		idx := order[lo:min(lo+e.BatchSize, len(order))]
		batch = batch[:0]
		for _, i := range idx {
			batch = append(batch, encs[i])
		}
		s := e.Pass().Score(PairBatch(batch, e.Tok.PAD()))
		for k, i := range idx {
			out[i] = s[k]
		}
		if progress != nil {
			progress(len(idx))
		}
	}
	return out, nil
}

// Rerank re-scores the top depth hits of every query of run (by score,
// ties by document id descending, as trec_eval orders them) with s and
// returns them ordered by the new score, ranks 1…; hits below depth are
// dropped. Every query of run needs its text in queries and every re-ranked
// document its text in docs. progress counts the pairs scored.
func Rerank(s Scorer, queries, docs map[string]string, run corpora.Run, depth int, progress func(n int)) (corpora.Run, error) {
	var qs, ds []string
	type ref struct {
		qid, doc string
	}
	var refs []ref
	qids := make([]string, 0, len(run))
	for qid := range run {
		qids = append(qids, qid)
	}
	sort.Strings(qids)
	for _, qid := range qids {
		qt, ok := queries[qid]
		if !ok {
			return nil, fmt.Errorf("rerank: no text for query %q of the run", qid)
		}
		for _, h := range TopHits(run[qid], depth) {
			dt, ok := docs[h.DocID]
			if !ok {
				return nil, fmt.Errorf("rerank: no text for document %q (query %q) in the corpus", h.DocID, qid)
			}
			qs, ds = append(qs, qt), append(ds, dt)
			refs = append(refs, ref{qid, h.DocID})
		}
	}
	scores, err := s.ScorePairs(qs, ds, progress)
	if err != nil {
		return nil, err
	}
	out := corpora.Run{}
	for _, qid := range qids {
		out[qid] = []corpora.Hit{}
	}
	for i, r := range refs {
		out[r.qid] = append(out[r.qid], corpora.Hit{DocID: r.doc, Score: float64(scores[i])})
	}
	for _, hits := range out {
		SortHits(hits)
		for i := range hits {
			hits[i].Rank = i + 1
		}
	}
	return out, nil
}

// SortHits orders hits by score descending, ties by document id
// descending (trec_eval's order).
func SortHits(hits []corpora.Hit) {
	sort.SliceStable(hits, func(a, b int) bool {
		if hits[a].Score != hits[b].Score {
			return hits[a].Score > hits[b].Score
		}
		return hits[a].DocID > hits[b].DocID
	})
}

// TopHits returns the first depth hits in trec_eval's order (a sorted copy).
func TopHits(hits []corpora.Hit, depth int) []corpora.Hit {
	h := append([]corpora.Hit(nil), hits...)
	SortHits(h)
	return h[:min(depth, len(h))]
}
