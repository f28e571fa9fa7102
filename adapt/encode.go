package adapt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/splade"
)

// Where splade meets index: a corpus encoded into an index, and the check
// that an encoder may search an index. (splade emits sparse vectors and
// index stores them; neither imports the other.)

// EncodeCorpusOptions configure EncodeCorpus.
type EncodeCorpusOptions struct {
	// WorkDir holds the shards and manifest.json; "" means Out+".work".
	WorkDir string
	// ShardSize is the number of documents per shard (default 10 000).
	ShardSize int
	// Index configures the builder (QuantBits, BlockSize, MaxWeight).
	// NumTerms, Vocab and Fingerprint are set by EncodeCorpus.
	Index index.Options
	// Fingerprint is recorded in the index (see splade.Fingerprint); required.
	Fingerprint string
	// Corpus is passed to corpora.OpenCorpus (skipping invalid records).
	Corpus corpora.Options
	// KeepShards keeps the work directory after the index is written.
	KeepShards bool
	// Progress, when not nil, is called after each batch with the
	// documents encoded or skipped (resumed) so far.
	Progress func(docs int)
	// Log, when not nil, receives messages about resuming (a corpus that
	// changed since the work directory was made).
	Log func(msg string)
}

// EncodeStats describe an EncodeCorpus run: the encoding's, then the
// index's.
type EncodeStats struct {
	splade.ShardStats
	MaxLength    int         `json:"max_length"`   // document tokens the encoder kept (Encoder.MaxLen)
	TopN         int         `json:"top_n"`        // weights kept per document (Encoder.TopN; 0: all)
	Postings     int64       `json:"postings"`     // non-zeros over all documents
	MeanNNZ      float64     `json:"mean_nnz_doc"` // Postings / Docs
	IndexBytes   int64       `json:"index_bytes"`  // files of the index directory
	BuildSeconds float64     `json:"build_seconds"`
	Meta         *index.Meta `json:"meta"`
}

// EncodeCorpus encodes every document of the corpus at corpusPath
// (anything corpora.OpenCorpus reads) with enc, resumably
// (splade.EncodeShards), and writes an index directory at out whose
// vocabulary is the tokenizer's and whose fingerprint is opt.Fingerprint;
// for an inference-free encoder it also writes the corpus's IDF there as
// splade.IDFFile (splade.QueriesFor reads it). The shards are removed afterwards unless opt.KeepShards. Cost: one
// forward pass per document, then one pass over the shards to build the
// index (memory: 8 bytes per posting).
func EncodeCorpus(ctx context.Context, enc *splade.Encoder, corpusPath, out string, opt EncodeCorpusOptions) (*EncodeStats, error) {
	if opt.WorkDir == "" {
		opt.WorkDir = filepath.Clean(out) + ".work"
	}
	shards, err := splade.EncodeShards(ctx, enc, corpusPath, opt.WorkDir, splade.ShardOptions{ShardSize: opt.ShardSize,
		Fingerprint: opt.Fingerprint, Corpus: opt.Corpus, Progress: opt.Progress, Log: opt.Log})
	if err != nil {
		return nil, err
	}
	st := &EncodeStats{ShardStats: shards.Stats, MaxLength: enc.MaxLen, TopN: enc.TopN}
	start := time.Now()
	iopt := opt.Index
	iopt.Vocab = enc.Tok.Vocab()
	iopt.NumTerms = len(iopt.Vocab)
	iopt.Fingerprint = opt.Fingerprint
	b, err := index.NewBuilder(iopt)
	if err != nil {
		return nil, fmt.Errorf("encode corpus: %w", err)
	}
	err = shards.Each(func(id string, vec []sparse.TermWeight) error {
		st.Postings += int64(len(vec))
		_, err := b.Add(id, vec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("encode corpus: build index: %w", err)
	}
	meta, err := b.Write(out)
	if err != nil {
		return nil, err
	}
	if shards.IDF != nil {
		if err := splade.WriteIDF(out, enc.Tok, shards.IDF); err != nil {
			return nil, fmt.Errorf("encode corpus: %w", err)
		}
	}
	st.Meta = meta
	st.BuildSeconds = time.Since(start).Seconds()
	st.MeanNNZ = float64(st.Postings) / float64(st.Docs)
	st.IndexBytes = dirSize(out)
	if !opt.KeepShards {
		if err := os.RemoveAll(opt.WorkDir); err != nil {
			return nil, fmt.Errorf("encode corpus: remove work directory: %w", err)
		}
	}
	return st, nil
}

func dirSize(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !fi.IsDir() {
			n += fi.Size()
		}
	}
	return n
}

// CheckIndex reports whether e may encode queries for index r: the
// vocabulary recorded in the index's fingerprint, or failing that the
// index's own vocabulary, must equal the encoder's, and the index's term
// count must be the encoder's vocabulary size. The error names both sides.
func CheckIndex(e *splade.Encoder, r *index.Reader) error {
	m := r.Meta()
	if m.NumTerms != e.VocabSize() {
		return fmt.Errorf("index has %d terms but the model's vocabulary has %d tokens: it was built with another model (fingerprint %q)", m.NumTerms, e.VocabSize(), m.Fingerprint)
	}
	mine := splade.VocabHash(e.Tok.Vocab())
	if vocab, _, ok := splade.ParseFingerprint(m.Fingerprint); ok {
		if vocab != mine {
			return fmt.Errorf("index vocabulary sha256:%.12s… differs from the model's sha256:%.12s…: it was built with another model (%s)", vocab, mine, m.Fingerprint)
		}
		return nil
	}
	if r.HasVocab() {
		vocab := e.Tok.Vocab()
		for t := range vocab {
			tok, _ := r.Token(uint32(t))
			if tok != vocab[t] {
				return fmt.Errorf("index term %d is %q but the model's token %d is %q: it was built with another vocabulary", t, tok, t, vocab[t])
			}
		}
		return nil
	}
	return fmt.Errorf("index records no vocabulary (fingerprint %q): cannot check it against the model; rebuild it with \"spladapt encode\"", m.Fingerprint)
}
