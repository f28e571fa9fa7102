package splade

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/tokenize"
)

// Inference-free (document-only) SPLADE: only documents go through the
// model; a query is its own word pieces, each once, weighted by a fixed
// per-token weight — the IDF of the token in the training corpora — so
// that no model runs at query time (the "doc-only" models of OpenSearch's
// neural sparse search, SPLADE-v3-Doc). The weights travel with the
// checkpoint as IDFFile, a JSON object token → weight, the layout
// OpenSearch's doc-only models ship; a checkpoint that has the file is an
// inference-free model wherever it is loaded (LoadEncoder).

// IDFFile is the name of the query-weight file in a checkpoint directory.
const IDFFile = "idf.json"

// Query encoders: how a model's queries are encoded (splade.query_encoder).
const (
	QueryEncoderModel = "model" // queries go through the model, as documents do
	QueryEncoderIDF   = "idf"   // queries are their tokens weighted by IDF (inference-free)
)

// ComputeIDF returns BM25's IDF of every token of tok's vocabulary over
// the documents: ln(1 + (N − df + 0.5)/(df + 0.5)), df the number of
// documents whose first maxLen tokens contain the token, N the number of
// documents. Special tokens get 0. Cost: tokenising every document once.
func ComputeIDF(tok *tokenize.Tokenizer, docs []string, maxLen int) []float32 {
	V := tok.VocabSize()
	df := make([]int, V)
	seen := make([]int, V) // last document (1-based) that counted each token
	for lo := 0; lo < len(docs); lo += 1024 {
		encs := tok.EncodeBatch(docs[lo:min(lo+1024, len(docs))], maxLen)
		for k, e := range encs {
			d := lo + k + 1
			for _, id := range e.IDs {
				if seen[id] != d {
					seen[id] = d
					df[id]++
				}
			}
		}
	}
	N := float64(len(docs))
	w := make([]float32, V)
	for id := range w {
		if tok.IsSpecial(int32(id)) {
			continue
		}
		f := float64(df[id])
		w[id] = float32(math.Log(1 + (N-f+0.5)/(f+0.5)))
	}
	return w
}

// CorpusIDF reads every document of the corpora (anything
// corpora.OpenCorpus reads) and returns ComputeIDF over all of them.
func CorpusIDF(tok *tokenize.Tokenizer, paths []string, maxLen int, opts corpora.Options) ([]float32, error) {
	ds, err := corpora.ReadDocs(paths, opts)
	if err != nil {
		return nil, fmt.Errorf("idf: %w", err)
	}
	if len(ds) == 0 {
		return nil, errors.New("idf: the corpora hold no document")
	}
	docs := make([]string, len(ds))
	for i, d := range ds {
		docs[i] = d.Content()
	}
	return ComputeIDF(tok, docs, maxLen), nil
}

// WriteIDF writes the non-zero weights as IDFFile in dir (token → weight,
// keys sorted), atomically.
func WriteIDF(dir string, tok *tokenize.Tokenizer, w []float32) error {
	if len(w) != tok.VocabSize() {
		return fmt.Errorf("write %s: %d weights for a vocabulary of %d", IDFFile, len(w), tok.VocabSize())
	}
	m := make(map[string]float32, len(w))
	for id, x := range w {
		if x != 0 {
			m[tok.Token(int32(id))] = x
		}
	}
	b, err := json.Marshal(m) // encoding/json sorts map keys
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, IDFFile), append(b, '\n'), 0o644)
}

// ReadIDF reads IDFFile from dir into a (V) weight vector over tok's
// vocabulary. It returns (nil, nil) when the file is absent (a two-sided
// model). A token of the file that the vocabulary lacks, or a weight that
// is negative or not finite, is an error naming it; a non-special
// vocabulary token that the file lacks gets weight 1 (OpenSearch's rule).
func ReadIDF(dir string, tok *tokenize.Tokenizer) ([]float32, error) {
	path := filepath.Join(dir, IDFFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read query weights: %w", err)
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read query weights %s: %w", path, err)
	}
	w := make([]float32, tok.VocabSize())
	for id := range w {
		if !tok.IsSpecial(int32(id)) {
			w[id] = 1
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x := m[k]
		id, ok := tok.ID(k)
		if !ok {
			return nil, fmt.Errorf("read query weights %s: token %q is not in the model's vocabulary", path, k)
		}
		if !(x >= 0) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("read query weights %s: token %q has weight %v, want a finite value ≥ 0", path, k, x)
		}
		if !tok.IsSpecial(id) {
			w[id] = float32(x)
		}
	}
	return w, nil
}

// WeightedTokens is the inference-free vector of a token sequence: each
// distinct token once with weight w[id], specials and zero weights left
// out, sorted by term.
func WeightedTokens(ids []int32, w []float32) []sparse.TermWeight {
	out := make([]sparse.TermWeight, 0, len(ids))
	for _, id := range ids {
		if int(id) < len(w) && w[id] > 0 {
			out = append(out, sparse.TermWeight{Term: uint32(id), Weight: w[id]})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Term < out[b].Term })
	k := 0
	for i, tw := range out {
		if i == 0 || tw.Term != out[k-1].Term {
			out[k] = tw
			k++
		}
	}
	return out[:k]
}
