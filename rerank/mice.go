package rerank

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spladapt/spladapt/internal/grow"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// MICEConfig is a MICE re-ranker's shape beyond its weights: the variant
// and the segment lengths. The document segment starts at position
// QueryLength whatever the query, so that stored document states fit every
// query; a MICE model is a cross-encoder checkpoint whose rerank.json has
// kind "mice" and this under "mice".
type MICEConfig struct {
	nn.MICEOptions
	QueryLength int `json:"query_length"` // Tq: "[CLS] q [SEP]" padded to it
	DocLength   int `json:"doc_length"`   // Td at most: "d [SEP]"
}

// Validate checks c against model m.
func (c MICEConfig) Validate(m *nn.Classifier) error {
	if err := c.MICEOptions.Validate(m.Config.NumLayers); err != nil {
		return err
	}
	if c.QueryLength < 2 || c.DocLength < 1 || c.QueryLength+c.DocLength > m.Config.MaxPositions {
		return fmt.Errorf("mice: query length %d (≥ 2) + document length %d (≥ 1) must fit the %d positions of the model",
			c.QueryLength, c.DocLength, m.Config.MaxPositions)
	}
	return nil
}

// MICE scores pairs with a minimal-interaction cross-encoder (nn/mice.go)
// and trains it (PairModel). Not safe for concurrent use.
type MICE struct {
	Model     *nn.Classifier
	Tok       *tokenize.Tokenizer
	Cfg       MICEConfig
	BatchSize int // pairs per forward pass in ScorePairs and RerankStore
	// MatchTypes marks exact matches on the query side only: a query piece
	// found among the document's kept pieces gets TypeQueryMatched (the
	// rule of MarkMatches), the rest of the query 0; the document keeps
	// type 1, so that its states stay query-independent and storable. The
	// model needs type_vocab_size ≥ NumMatchTypes. Cost: the query's
	// layers below the fusion point run per pair instead of once per query
	// (queries are short), and a store must hold the documents' token ids
	// (format 2).
	MatchTypes bool

	pass  *nn.MICEPass
	train *nn.MICETrainPass
	qb    []int32 // (B,Tq) query ids of a batch of pairs (RerankStore)
	qt    []int32 // (B,Tq) their token types (ScorePairs, RerankStore)
}

// NewMICE wraps a classifier as MICE of shape cfg.
func NewMICE(m *nn.Classifier, tok *tokenize.Tokenizer, cfg MICEConfig, batchSize int) (*MICE, error) {
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("mice: tokenizer has %d tokens, model vocab_size is %d", tok.VocabSize(), m.Config.VocabSize)
	}
	if err := cfg.Validate(m); err != nil {
		return nil, err
	}
	return &MICE{Model: m, Tok: tok, Cfg: cfg, BatchSize: max(batchSize, 1), pass: m.NewMICEPass(), train: m.NewMICETrainPass()}, nil
}

// SetMatchTypes turns the query's exact-match token types on or off; on
// needs a BERT model with type_vocab_size ≥ NumMatchTypes.
func (m *MICE) SetMatchTypes(on bool) error {
	if on {
		if err := checkMatchTypes("mice", m.Model); err != nil {
			return err
		}
	}
	m.MatchTypes = on
	return nil
}

// markQuery writes the token types of query pieces q against document
// pieces d into types[:len(q)]: TypeQueryMatched for a non-special piece
// found in d, else 0. Cost: |q|·|d| comparisons, no allocation.
func (m *MICE) markQuery(types, q, d []int32) {
	clear(types[:len(q)])
	markFound(q, types, d, m.Tok.IsSpecial, TypeQueryMatched)
}

// queryTypes returns the token types (B,Tq) of the query rows qr (padding
// type 0) against the document rows dr, in buf grown — nil without
// MatchTypes.
func (m *MICE) queryTypes(buf []int32, qr, dr [][]int32, Tq int) []int32 {
	if !m.MatchTypes {
		return nil
	}
	buf = grow.To(buf, len(qr)*Tq)
	clear(buf)
	for i := range qr {
		m.markQuery(buf[i*Tq:], qr[i], dr[i])
	}
	return buf
}

// modelKind is what a loader needs from rerank.json: the kind, MICE's
// options and whether inputs carry match types. A directory without
// rerank.json (a user's HF cross-encoder) is a plain cross-encoder.
type modelKind struct {
	Kind       string          `json:"kind"`
	MICE       json.RawMessage `json:"mice"`
	MatchTypes bool            `json:"match_types"`
}

func readModelKind(dir string) (modelKind, error) {
	var m modelKind
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read %s: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("read %s: %w", filepath.Join(dir, MetaFile), err)
	}
	return m, nil
}

// ReadMICEConfig returns the MICE configuration in dir's rerank.json, or
// ok false when dir holds no MICE model (no rerank.json, or another kind).
// Whether its inputs carry match types is rerank.json's match_types
// (LoadScorer reads both).
func ReadMICEConfig(dir string) (cfg MICEConfig, ok bool, err error) {
	m, err := readModelKind(dir)
	if err != nil || m.Kind != "mice" {
		return cfg, false, err
	}
	cfg, err = m.miceConfig(dir)
	return cfg, err == nil, err
}

// miceConfig decodes the "mice" object of dir's rerank.json.
func (k modelKind) miceConfig(dir string) (cfg MICEConfig, err error) {
	if err := json.Unmarshal(k.MICE, &cfg); err != nil {
		return cfg, fmt.Errorf("read %s: mice: %w", filepath.Join(dir, MetaFile), err)
	}
	return cfg, nil
}

// WriteMICEConfig writes a rerank.json of kind "mice" with cfg and
// matchTypes (MICE.MatchTypes) into dir, so that a cross-encoder
// checkpoint loads as MICE without training.
func WriteMICEConfig(dir string, cfg MICEConfig, matchTypes bool) error {
	raw, err := json.MarshalIndent(Meta{Format: 1, Kind: "mice", MICE: cfg, MatchTypes: matchTypes}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, MetaFile), append(raw, '\n'), 0o644)
}

// QueryIDs are "[CLS] q… [SEP]" of at most QueryLength tokens.
func (m *MICE) QueryIDs(q string) []int32 { return m.Tok.Encode(q, m.Cfg.QueryLength).IDs }

// DocIDs are "d… [SEP]" of at most DocLength tokens.
func (m *MICE) DocIDs(d string) []int32 { return m.Tok.Encode(d, m.Cfg.DocLength+1).IDs[1:] }

// pad lays rows out as (B,T) ids and mask, T the longest row or minT.
func pad(rows [][]int32, minT int, padID int32) (ids []int32, mask []float32, T int) {
	T = minT
	for _, r := range rows {
		T = max(T, len(r))
	}
	ids, mask = make([]int32, len(rows)*T), make([]float32, len(rows)*T)
	for i, r := range rows {
		for j := range T {
			ids[i*T+j] = padID
		}
		copy(ids[i*T:], r)
		for j := range r {
			mask[i*T+j] = 1
		}
	}
	return ids, mask, T
}

// Forward scores the pairs as one batch, kept for Backward (training; no
// dropout, see nn.MICETrainPass), the queries marked when MatchTypes.
func (m *MICE) Forward(qs, ds []string) []float32 {
	qr, dr := make([][]int32, len(qs)), make([][]int32, len(ds))
	for i := range qs {
		qr[i], dr[i] = m.QueryIDs(qs[i]), m.DocIDs(ds[i])
	}
	qids, qmask, Tq := pad(qr, m.Cfg.QueryLength, m.Tok.PAD())
	dids, dmask, Td := pad(dr, 1, m.Tok.PAD())
	qtypes := m.queryTypes(nil, qr, dr, Tq) // new: the pass keeps it until Backward
	return m.train.Forward(m.Cfg.MICEOptions, qids, qtypes, qmask, Tq, dids, dmask, Td, len(qs))
}

// Backward adds the gradient of Σ dscores·scores of the last Forward.
func (m *MICE) Backward(dscores []float32) { m.train.Backward(dscores) }

// Base is the model whose parameters train.
func (m *MICE) Base() *nn.Model { return m.Model.Model }

// ScorePairs scores the pairs on the fly (document states computed, not
// read from a store) in batches of BatchSize pairs of similar document
// length.
func (m *MICE) ScorePairs(qs, ds []string, progress func(n int)) ([]float32, error) {
	if len(qs) != len(ds) {
		return nil, fmt.Errorf("score pairs: %d queries for %d documents", len(qs), len(ds))
	}
	dr := make([][]int32, len(ds))
	for i := range ds {
		dr[i] = m.DocIDs(ds[i])
	}
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(dr[order[a]]) < len(dr[order[b]]) })
	out := make([]float32, len(qs))
	o, Tq := m.Cfg.MICEOptions, m.Cfg.QueryLength
	for lo := 0; lo < len(order); lo += m.BatchSize {
		idx := order[lo:min(lo+m.BatchSize, len(order))]
		qb, db := make([][]int32, len(idx)), make([][]int32, len(idx))
		for k, i := range idx {
			qb[k], db[k] = m.QueryIDs(qs[i]), dr[i]
		}
		qids, qmask, _ := pad(qb, Tq, m.Tok.PAD())
		dids, dmask, Td := pad(db, 1, m.Tok.PAD())
		B := len(idx)
		qtypes := m.queryTypes(m.qt, qb, db, Tq)
		if qtypes != nil {
			m.qt = qtypes
		}
		xd := m.pass.DocStates(o, dids, dmask, B, Td, Tq)
		xq := m.pass.QueryStates(o, qids, qtypes, qmask, B, Tq)
		s := m.pass.Score(o, xq, qmask, Tq, xd, dmask, Td, B)
		for k, i := range idx {
			out[i] = s[k]
		}
		if progress != nil {
			progress(B)
		}
	}
	return out, nil
}

// LoadScorer loads the re-ranker in dir: MICE when its rerank.json says
// so, else a cross-encoder; either with the match types rerank.json
// records. maxLen bounds a cross-encoder's pairs.
func LoadScorer(dir string, maxLen, batch int) (Scorer, error) {
	c, tok, err := loadClassifier(dir)
	if err != nil {
		return nil, err
	}
	k, err := readModelKind(dir)
	if err != nil {
		return nil, err
	}
	if k.Kind != "mice" {
		return newCrossEncoderIn(k, c, tok, maxLen, batch)
	}
	cfg, err := k.miceConfig(dir)
	if err != nil {
		return nil, err
	}
	m, err := NewMICE(c, tok, cfg, batch)
	if err == nil {
		err = m.SetMatchTypes(k.MatchTypes)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return m, nil
}

// newCrossEncoderIn is NewCrossEncoder with the match types k (a
// directory's rerank.json) records.
func newCrossEncoderIn(k modelKind, c *nn.Classifier, tok *tokenize.Tokenizer, maxLen, batch int) (*CrossEncoder, error) {
	e, err := NewCrossEncoder(c, tok, maxLen, batch)
	if err != nil {
		return nil, err
	}
	if err := e.SetMatchTypes(k.MatchTypes); err != nil {
		return nil, err
	}
	return e, nil
}

// LoadCrossEncoder loads the checkpoint in dir as a cross-encoder, whatever
// its rerank.json says; maxLen bounds its pairs.
func LoadCrossEncoder(dir string, maxLen, batch int) (*CrossEncoder, error) {
	c, tok, err := loadClassifier(dir)
	if err != nil {
		return nil, err
	}
	k, err := readModelKind(dir)
	if err != nil {
		return nil, err
	}
	return newCrossEncoderIn(k, c, tok, maxLen, batch)
}

// loadClassifier loads dir's classifier (its head required) and tokenizer.
func loadClassifier(dir string) (*nn.Classifier, *tokenize.Tokenizer, error) {
	c, err := nn.LoadClassifier(dir, false, 0)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return c, tok, nil
}
