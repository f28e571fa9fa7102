// Package bm25 is spladapt's lexical baseline: an Okapi BM25 ranker over a
// bleve v2 scorch index with bleve's English analysis ("en": Unicode word
// tokens, possessive 's stripped, lower case, English stop words removed,
// Porter stemming). Every model is compared against its numbers.
//
// Bleve stores the index (one analysed field, "text" = corpora.Doc.Content(),
// plus the document id) and analyses the queries; this package scores the
// postings itself with the textbook formula, because bleve's own "bm25"
// scoring model is not the BM25 of the literature (see Scoring and
// SearchBleve). For a query q and document d:
//
//	score(q, d) = Σ_{t ∈ q} qtf(t) · idf(t) · tf / (tf + k1 · (1 − b + b · dl/avgdl))
//	idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//
// where tf is the frequency of t in d, dl the number of indexed tokens of d
// (after stop-word removal), avgdl the mean of dl over all N documents,
// df(t) the number of documents containing t, and qtf(t) the number of times
// t occurs in the analysed query (a repeated query word counts once per
// occurrence). This is Lucene's BM25Similarity (as used by Anserini and
// Pyserini) except that dl is exact where Lucene rounds it to one byte.
//
// An index directory holds:
//
//	meta.json  format version, document and token counts, analysis (Meta)
//	bleve/     the bleve scorch index
package bm25

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// FormatVersion is the version of the index directory layout written by
// Build. Open refuses any other.
const FormatVersion = 1

// Field is the name of the single analysed field.
const Field = "text"

// Analyzer is the bleve analyzer applied to documents and queries.
const Analyzer = en.AnalyzerName

const (
	metaFile = "meta.json"
	bleveDir = "bleve"
)

// Params are the BM25 parameters, chosen at search time (the index does not
// depend on them). BEIR's and Pyserini's defaults are K1 0.9, B 0.4.
type Params struct {
	K1 float64 // term-frequency saturation, >= 0
	B  float64 // length normalisation, in [0, 1]
}

// Validate checks the ranges above.
func (p Params) Validate() error {
	if !(p.K1 >= 0) || math.IsInf(p.K1, 0) {
		return fmt.Errorf("bm25 k1 must be a finite number >= 0, got %g", p.K1)
	}
	if !(p.B >= 0 && p.B <= 1) {
		return fmt.Errorf("bm25 b must be in [0,1], got %g", p.B)
	}
	return nil
}

// Meta describes an index directory; it is meta.json.
type Meta struct {
	Format   int     `json:"format"`
	Analyzer string  `json:"analyzer"`
	Field    string  `json:"field"`
	Docs     int64   `json:"docs"`   // N
	Tokens   int64   `json:"tokens"` // Σ dl over all documents
	AvgDL    float64 `json:"avgdl"`  // Tokens / Docs
	Terms    int64   `json:"terms"`  // distinct indexed terms
	Corpus   string  `json:"corpus,omitempty"`
	Skipped  int     `json:"skipped"` // malformed records skipped by the reader
	Built    string  `json:"built"`   // RFC 3339
	Seconds  float64 `json:"seconds"` // build wall time
}

// BuildOptions tune Build.
type BuildOptions struct {
	// BatchSize is the number of documents per bleve batch (default 1000).
	BatchSize int
	// Progress, when not nil, is called with the number of documents
	// added after each batch.
	Progress func(n int)
	// Corpus and Skipped are recorded in meta.json for provenance.
	Corpus  string
	Skipped func() int
}

// Build indexes the documents next yields (until io.EOF) into a new index
// directory at dir, replacing any existing one only when the build succeeds
// (temporary directory + rename). Documents with an empty id, a repeated
// id, or no documents at all are errors. A document whose content analyses
// to no tokens is kept (it counts in N and avgdl but matches no query).
// Cost: one pass of bleve analysis and indexing, then one pass over all
// postings to count tokens; memory holds the set of ids seen.
func Build(dir string, next func() (corpora.Doc, error), opt BuildOptions) (Meta, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 1000
	}
	start := time.Now()
	var meta Meta
	err := atomicfile.Dir(dir, func(tmp string) error {
		m, err := build(filepath.Join(tmp, bleveDir), next, opt)
		if err != nil {
			return err
		}
		m.Corpus = opt.Corpus
		if opt.Skipped != nil {
			m.Skipped = opt.Skipped()
		}
		m.Built = start.UTC().Format(time.RFC3339)
		m.Seconds = time.Since(start).Seconds()
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		meta = m
		return atomicfile.WriteFile(filepath.Join(tmp, metaFile), append(b, '\n'), 0o644)
	})
	if err != nil {
		return Meta{}, fmt.Errorf("build bm25 index %s: %w", dir, err)
	}
	return meta, nil
}

// newMapping is the index mapping: one analysed, unstored field without
// term vectors, bleve's scoring model set to "bm25" (used only by
// SearchBleve), dynamic mapping and the _all field off.
func newMapping() *mapping.IndexMappingImpl {
	f := mapping.NewTextFieldMapping()
	f.Analyzer = Analyzer
	f.Store = false
	f.IncludeTermVectors = false
	f.IncludeInAll = false
	f.DocValues = false

	dm := mapping.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt(Field, f)

	m := bleve.NewIndexMapping()
	m.DefaultMapping = dm
	m.DefaultAnalyzer = Analyzer
	m.DefaultField = Field
	m.ScoringModel = index.BM25Scoring
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m
}

func build(path string, next func() (corpora.Doc, error), opt BuildOptions) (meta Meta, err error) {
	idx, err := bleve.New(path, newMapping())
	if err != nil {
		return meta, fmt.Errorf("create bleve index: %w", err)
	}
	defer func() {
		if cerr := idx.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close bleve index: %w", cerr)
		}
	}()
	seen := make(map[string]struct{})
	batch := idx.NewBatch()
	n := 0
	flush := func() error {
		if batch.Size() == 0 {
			return nil
		}
		if err := idx.Batch(batch); err != nil {
			return fmt.Errorf("index batch ending at document %d: %w", n, err)
		}
		batch.Reset()
		if opt.Progress != nil {
			opt.Progress(n)
		}
		return nil
	}
	for {
		d, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return meta, err
		}
		if d.ID == "" {
			return meta, fmt.Errorf("document %d: %w", n+1, corpora.ErrMissingID)
		}
		if _, dup := seen[d.ID]; dup {
			return meta, fmt.Errorf("document %q: %w", d.ID, corpora.ErrDuplicateID)
		}
		seen[d.ID] = struct{}{}
		if err := batch.Index(d.ID, map[string]any{Field: d.Content()}); err != nil {
			return meta, fmt.Errorf("index document %q: %w", d.ID, err)
		}
		n++
		if batch.Size() >= opt.BatchSize {
			if err := flush(); err != nil {
				return meta, err
			}
		}
	}
	if err := flush(); err != nil {
		return meta, err
	}
	if n == 0 {
		return meta, errors.New("corpus has no documents")
	}
	return countTokens(idx, n)
}

// countTokens walks every posting of Field once to sum the term
// frequencies, which is Σ dl (bleve's field length is the number of
// analysed tokens, and their frequencies sum to it).
func countTokens(idx bleve.Index, added int) (Meta, error) {
	adv, err := idx.Advanced()
	if err != nil {
		return Meta{}, err
	}
	r, err := adv.Reader()
	if err != nil {
		return Meta{}, fmt.Errorf("open bleve reader: %w", err)
	}
	defer r.Close()
	docs, err := r.DocCount()
	if err != nil {
		return Meta{}, err
	}
	if docs != uint64(added) {
		return Meta{}, fmt.Errorf("bleve holds %d documents after %d were added", docs, added)
	}
	dict, err := r.FieldDict(Field)
	if err != nil {
		return Meta{}, fmt.Errorf("read dictionary of field %s: %w", Field, err)
	}
	defer dict.Close()
	var tokens, terms int64
	var tfd index.TermFieldDoc
	for {
		e, err := dict.Next()
		if err != nil {
			return Meta{}, fmt.Errorf("read dictionary of field %s: %w", Field, err)
		}
		if e == nil {
			break
		}
		terms++
		tfr, err := r.TermFieldReader(nil, []byte(e.Term), Field, true, false, false)
		if err != nil {
			return Meta{}, fmt.Errorf("read postings of %q: %w", e.Term, err)
		}
		for {
			p, err := tfr.Next(&tfd)
			if err != nil {
				tfr.Close()
				return Meta{}, fmt.Errorf("read postings of %q: %w", e.Term, err)
			}
			if p == nil {
				break
			}
			tokens += int64(p.Freq)
		}
		if err := tfr.Close(); err != nil {
			return Meta{}, err
		}
	}
	return Meta{
		Format:   FormatVersion,
		Analyzer: Analyzer,
		Field:    Field,
		Docs:     int64(docs),
		Tokens:   tokens,
		AvgDL:    float64(tokens) / float64(docs),
		Terms:    terms,
	}, nil
}

// ReadMeta reads and checks an index directory's meta.json.
func ReadMeta(dir string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return m, fmt.Errorf("open bm25 index %s: %w (build it with \"spladapt bm25 index\")", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("open bm25 index %s: %s: %w", dir, metaFile, err)
	}
	switch {
	case m.Format != FormatVersion:
		return m, fmt.Errorf("open bm25 index %s: format %d, want %d (re-run \"spladapt bm25 index\")", dir, m.Format, FormatVersion)
	case m.Analyzer != Analyzer || m.Field != Field:
		return m, fmt.Errorf("open bm25 index %s: analyzer %q field %q, want %q %q (re-run \"spladapt bm25 index\")", dir, m.Analyzer, m.Field, Analyzer, Field)
	case m.Docs < 1 || m.Tokens < 0 || !(m.AvgDL >= 0):
		return m, fmt.Errorf("open bm25 index %s: %s: invalid counts docs=%d tokens=%d avgdl=%g", dir, metaFile, m.Docs, m.Tokens, m.AvgDL)
	}
	return m, nil
}

// BuildCorpus indexes the corpus at path (anything corpora.OpenCorpus
// reads) into dir, as Build. Malformed records follow opts; the number
// skipped is recorded in meta.json. progress, when not nil, receives the
// number of documents indexed so far.
func BuildCorpus(dir, path string, opts corpora.Options, progress func(n int)) (Meta, error) {
	skipped := 0
	if opts.Skipped == nil {
		opts.Skipped = &skipped
	}
	r, err := corpora.OpenCorpus(path, opts)
	if err != nil {
		return Meta{}, err
	}
	defer r.Close()
	return Build(dir, r.Next, BuildOptions{
		Progress: progress,
		Corpus:   path,
		Skipped:  func() int { return *opts.Skipped },
	})
}
