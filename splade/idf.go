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

// Where an inference-free model's query weights come from at search time
// (splade.query_idf).
const (
	// QueryIDFCorpus: the IDF of the searched corpus, which EncodeCorpus
	// writes into the index directory as IDFFile (as BM25 uses the
	// statistics of the collection it ranks).
	QueryIDFCorpus = "corpus"
	// QueryIDFTraining: the checkpoint's IDFFile, the IDF of the training
	// corpora.
	QueryIDFTraining = "training"
)

// Queries encodes query texts: an Encoder, or IDFQueries.
type Queries interface {
	// Encode encodes one query (index.QueryEncoder's method).
	Encode(text string) ([]sparse.TermWeight, error)
	// EncodeQueries encodes several; out[i] belongs to texts[i].
	EncodeQueries(texts []string) ([][]sparse.TermWeight, error)
}

// IDFQueries is an inference-free query encoder: a query is all its word
// pieces, each once, weighted Weights[id] (WeightedTokens). With no model
// to run there is no length limit: a long query keeps every word, as BM25
// sees it (model.query_max_length bounds the query encoder of a two-sided
// model and training's queries only). Safe for concurrent use.
type IDFQueries struct {
	Tok     *tokenize.Tokenizer
	Weights []float32 // (V)
}

// Encode implements Queries. Cost: tokenisation.
func (q *IDFQueries) Encode(text string) ([]sparse.TermWeight, error) {
	return WeightedTokens(q.Tok.Encode(text, 0).IDs, q.Weights), nil
}

// EncodeQueries implements Queries.
func (q *IDFQueries) EncodeQueries(texts []string) ([][]sparse.TermWeight, error) {
	out := make([][]sparse.TermWeight, len(texts))
	for i, en := range q.Tok.EncodeBatch(texts, 0) {
		out[i] = WeightedTokens(en.IDs, q.Weights)
	}
	return out, nil
}

// QueriesFor returns the query encoder of e for searching the index at
// indexDir. A two-sided e, or mode QueryIDFTraining, gives e itself; an
// inference-free e with mode QueryIDFCorpus gives IDFQueries weighted by
// the index's IDFFile, the IDF of the corpus it holds (an index encoded
// before that file existed is an error that says how to proceed).
func QueriesFor(e *Encoder, indexDir, mode string) (Queries, error) {
	switch mode {
	case QueryIDFTraining:
		return e, nil
	case QueryIDFCorpus:
	default:
		return nil, fmt.Errorf("query idf %q: want %s or %s", mode, QueryIDFCorpus, QueryIDFTraining)
	}
	if e.QueryWeights == nil {
		return e, nil
	}
	w, err := ReadIDF(indexDir, e.Tok)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, fmt.Errorf("index %s has no %s, the IDF of its corpus that encode writes for an inference-free model: encode the corpus again, or set splade.query_idf: %s to weigh queries by the training corpora's IDF", indexDir, IDFFile, QueryIDFTraining)
	}
	return &IDFQueries{Tok: e.Tok, Weights: w}, nil
}

// ComputeIDF returns BM25's IDF of every token of tok's vocabulary over
// the documents: ln(1 + (N − df + 0.5)/(df + 0.5)), df the number of
// documents whose first maxLen tokens contain the token, N the number of
// documents. Special tokens get 0. Cost: tokenising every document once.
func ComputeIDF(tok *tokenize.Tokenizer, docs []string, maxLen int) []float32 {
	c := NewDocFreqs(tok, maxLen)
	c.Add(docs)
	return c.IDF()
}

// DocFreqs counts, over the documents added, how many contain each token
// of a vocabulary within their first maxLen tokens: the statistics of
// ComputeIDF gathered a batch at a time (EncodeCorpus counts a corpus while
// it encodes it). Not safe for concurrent use.
type DocFreqs struct {
	tok    *tokenize.Tokenizer
	maxLen int
	df     []int // (V) documents containing each token
	seen   []int // (V) last document (1-based) that counted each token
	n      int   // documents added
}

// NewDocFreqs returns an empty count over tok's vocabulary.
func NewDocFreqs(tok *tokenize.Tokenizer, maxLen int) *DocFreqs {
	V := tok.VocabSize()
	return &DocFreqs{tok: tok, maxLen: maxLen, df: make([]int, V), seen: make([]int, V)}
}

// Add counts the documents. Cost: tokenising each once.
func (c *DocFreqs) Add(docs []string) {
	for lo := 0; lo < len(docs); lo += 1024 {
		for _, e := range c.tok.EncodeBatch(docs[lo:min(lo+1024, len(docs))], c.maxLen) {
			c.n++
			for _, id := range e.IDs {
				if c.seen[id] != c.n {
					c.seen[id] = c.n
					c.df[id]++
				}
			}
		}
	}
}

// IDF returns the (V) IDF weights of the documents added so far (see
// ComputeIDF).
func (c *DocFreqs) IDF() []float32 {
	N := float64(c.n)
	w := make([]float32, len(c.df))
	for id := range w {
		if c.tok.IsSpecial(int32(id)) {
			continue
		}
		f := float64(c.df[id])
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
