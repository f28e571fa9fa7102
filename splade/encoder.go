package splade

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/spladapt/spladapt/internal/grow"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/tokenize"
)

// Encoder turns texts into SPLADE vectors with one model whose weights are
// shared by queries and documents:
//
//	w[v] = max_t log1p(relu(z_t·E[v] + bias[v]))
//
// over the text's tokens t, z the MLM head transform of the last hidden
// state and E the tied decoder (nn.SpladeEncode: the vocabulary projection
// is computed tile by tile, never as a whole (T, V) matrix). Documents are
// cut to MaxLen tokens and queries to QueryMaxLen, [CLS] and [SEP]
// included. A vector keeps the entries with w > 0, sorted by term; with
// TopN > 0 only the TopN largest (ties toward the smaller term).
//
// An Encoder is safe for concurrent use: calls are serialised, because the
// model's forward pass is single-pass (its parallelism is inside: OpenBLAS
// threads and nn's two-worker head).
type Encoder struct {
	Model       *nn.Model
	Tok         *tokenize.Tokenizer
	MaxLen      int // document tokens, [CLS] and [SEP] included (≥ 2)
	QueryMaxLen int // query tokens (≥ 2) of a two-sided model; inference-free queries are whole (IDFQueries)
	TopN        int // keep the TopN largest weights per vector; 0 keeps all
	// BatchSize is the number of documents per forward pass in EncodeDocs
	// (default 32).
	BatchSize int
	// QueryWeights (V), when set, makes the encoder inference-free: a
	// query is not run through the model but is its tokens, each once,
	// weighted QueryWeights[id] (WeightedTokens); documents are encoded as
	// always. LoadEncoder sets it from the checkpoint's IDFFile.
	QueryWeights []float32

	mu  sync.Mutex
	out []float32 // (B, V) pooled weights of the last batch
}

// LoadEncoder loads the model and its tokenizer from an HF checkpoint
// directory (nn.LoadHF, tokenize.Load) and checks that they agree on the
// vocabulary size. Maximum lengths are capped by the model's position
// table.
func LoadEncoder(dir string, maxLen, queryMaxLen, topN int) (*Encoder, error) {
	m, err := nn.LoadHF(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load encoder %s: %w", dir, err)
	}
	e, err := NewEncoder(m, tok, maxLen, queryMaxLen, topN)
	if err != nil {
		return nil, err
	}
	if e.QueryWeights, err = ReadIDF(dir, tok); err != nil {
		return nil, fmt.Errorf("load encoder %s: %w", dir, err)
	}
	return e, nil
}

// QueryEncoder names how e encodes queries: QueryEncoderIDF or
// QueryEncoderModel.
func (e *Encoder) QueryEncoder() string {
	if e.QueryWeights != nil {
		return QueryEncoderIDF
	}
	return QueryEncoderModel
}

// NewEncoder checks that the model and the tokenizer share a vocabulary
// size and the lengths are usable, capping them at the model's position
// table.
func NewEncoder(m *nn.Model, tok *tokenize.Tokenizer, maxLen, queryMaxLen, topN int) (*Encoder, error) {
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("new encoder: tokenizer has %d tokens, model vocab_size is %d", tok.VocabSize(), m.Config.VocabSize)
	}
	if maxLen < 2 || queryMaxLen < 2 {
		return nil, fmt.Errorf("new encoder: max lengths %d (documents) and %d (queries) must be ≥ 2", maxLen, queryMaxLen)
	}
	if topN < 0 {
		return nil, fmt.Errorf("new encoder: top-n %d, want ≥ 0 (0 keeps every weight)", topN)
	}
	P := m.Config.MaxPositions
	return &Encoder{Model: m, Tok: tok, MaxLen: min(maxLen, P), QueryMaxLen: min(queryMaxLen, P), TopN: topN}, nil
}

// VocabSize is V, the width of every vector.
func (e *Encoder) VocabSize() int { return e.Model.Config.VocabSize }

// Encode encodes text as a query; it implements index.QueryEncoder. Text
// without any word still encodes ([CLS] [SEP]) and may give an empty
// vector, which is not an error here (the index returns no hits).
func (e *Encoder) Encode(text string) ([]sparse.TermWeight, error) {
	return e.EncodeQuery(text)
}

// EncodeQuery returns the SPLADE vector of a query (at most QueryMaxLen
// tokens; the whole query for an inference-free encoder). Cost: one forward pass of batch 1, or only tokenisation for an
// inference-free encoder.
func (e *Encoder) EncodeQuery(text string) ([]sparse.TermWeight, error) {
	if e.QueryWeights != nil {
		return e.idfQueries().Encode(text)
	}
	ids := e.Tok.Encode(text, e.QueryMaxLen).IDs
	vecs, err := e.encodeIDs([][]int32{ids}, nil)
	if err != nil {
		return nil, err
	}
	return vecs[0], nil
}

// EncodeQueries encodes several queries in batches of one length each
// (SameLengthBatches), so each result is independent of the others; out[i]
// belongs to texts[i].
func (e *Encoder) EncodeQueries(texts []string) ([][]sparse.TermWeight, error) {
	if e.QueryWeights != nil {
		return e.idfQueries().EncodeQueries(texts)
	}
	return e.encodeTexts(texts, e.QueryMaxLen, nil)
}

// idfQueries is the query side of an inference-free encoder.
func (e *Encoder) idfQueries() *IDFQueries {
	return &IDFQueries{Tok: e.Tok, Weights: e.QueryWeights}
}

// EncodeDocs encodes documents (at most MaxLen tokens each) in batches of
// at most BatchSize texts of one token length (SameLengthBatches), so that
// no padding is computed and out[i], which belongs to texts[i], does not
// depend on the other texts, bit for bit: an index encoded in shards of
// any size, or with any batch size, is the same.
// Tokenisation runs on tokenize.SetThreads goroutines. Cost: dominated by
// the model's forward pass, see nn.SpladeEncodeFLOPs.
func (e *Encoder) EncodeDocs(texts []string) ([][]sparse.TermWeight, error) {
	return e.encodeTexts(texts, e.MaxLen, nil)
}

// EncodeDocsProgress is EncodeDocs calling progress(n, tokens) after each
// batch with the number of documents and real tokens it held.
func (e *Encoder) EncodeDocsProgress(texts []string, progress func(docs, tokens int)) ([][]sparse.TermWeight, error) {
	return e.encodeTexts(texts, e.MaxLen, progress)
}

func (e *Encoder) encodeTexts(texts []string, maxLen int, progress func(docs, tokens int)) ([][]sparse.TermWeight, error) {
	encs := e.Tok.EncodeBatch(texts, maxLen)
	seqs := make([][]int32, len(encs))
	for i, en := range encs {
		seqs[i] = en.IDs
	}
	return e.encodeIDs(seqs, progress)
}

// encodeIDs encodes token sequences (specials included) in batches of one
// length each (SameLengthBatches).
func (e *Encoder) encodeIDs(seqs [][]int32, progress func(docs, tokens int)) ([][]sparse.TermWeight, error) {
	out := make([][]sparse.TermWeight, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	bs := e.BatchSize
	if bs <= 0 {
		bs = 32
	}
	lengths := make([]int, len(seqs))
	for i, s := range seqs {
		lengths[i] = len(s)
	}
	batches, err := SameLengthBatches(lengths, bs)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	V := e.VocabSize()
	for _, idx := range batches {
		part := make([][]int32, len(idx))
		for k, i := range idx {
			part[k] = seqs[i]
		}
		b, err := Pad(part, e.Tok.PAD())
		if err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		if err := e.Model.ValidateBatch(b); err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		e.out = grow.To(e.out, b.B*V)
		nn.SpladeEncode(e.Model, b, e.out, nil)
		tokens := 0
		for k, i := range idx {
			out[i] = Sparsify(e.out[k*V:(k+1)*V], e.TopN)
			tokens += len(seqs[i])
		}
		if progress != nil {
			progress(len(idx), tokens)
		}
	}
	return out, nil
}

// Sparsify returns the entries of a dense vector with weight > 0, sorted by
// term. With topN > 0 it keeps only the topN largest weights (ties toward
// the smaller term), still sorted by term. Cost: O(V + nnz·log nnz).
func Sparsify(row []float32, topN int) []sparse.TermWeight {
	n := 0
	for _, w := range row {
		if w > 0 {
			n++
		}
	}
	out := make([]sparse.TermWeight, 0, n)
	for v, w := range row {
		if w > 0 {
			out = append(out, sparse.TermWeight{Term: uint32(v), Weight: w})
		}
	}
	if topN > 0 && len(out) > topN {
		slices.SortStableFunc(out, func(a, b sparse.TermWeight) int {
			switch {
			case a.Weight > b.Weight:
				return -1
			case a.Weight < b.Weight:
				return 1
			}
			return 0
		})
		out = out[:topN]
		slices.SortFunc(out, func(a, b sparse.TermWeight) int { return int(a.Term) - int(b.Term) })
	}
	return out
}

// Fingerprints. An index built by adapt.EncodeCorpus records in its META
// fingerprint which model built it:
//
//	splade vocab=sha256:<64 hex> model=sha256:<64 hex>
//
// vocab is VocabHash of the tokenizer's vocabulary, model the SHA-256 of
// the checkpoint's model.safetensors (or "-" when unknown). A query
// encoder is accepted for an index when the vocabulary hashes agree
// (adapt.CheckIndex): a model fine-tuned further on the same vocabulary still
// produces vectors in the index's term space.

// VocabHash is the SHA-256 of the vocabulary, tokens joined by "\n" in id
// order, in hex.
func VocabHash(vocab []string) string {
	h := sha256.New()
	for i, t := range vocab {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(t))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FileHash is the SHA-256 of a file in hex.
func FileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Fingerprint returns the index fingerprint of encoder e whose model was
// loaded from modelDir ("" when not from a directory).
func Fingerprint(e *Encoder, modelDir string) string {
	model := "-"
	if modelDir != "" {
		if h, err := FileHash(filepath.Join(modelDir, "model.safetensors")); err == nil {
			model = "sha256:" + h
		}
	}
	return "splade vocab=sha256:" + VocabHash(e.Tok.Vocab()) + " model=" + model
}

// ParseFingerprint returns the vocabulary and model hashes of a fingerprint
// written by Fingerprint; ok is false for any other string.
func ParseFingerprint(fp string) (vocab, model string, ok bool) {
	f := strings.Fields(fp)
	if len(f) != 3 || f[0] != "splade" {
		return "", "", false
	}
	vocab, ok1 := strings.CutPrefix(f[1], "vocab=sha256:")
	model, ok2 := strings.CutPrefix(f[2], "model=")
	return vocab, model, ok1 && ok2 && vocab != ""
}
