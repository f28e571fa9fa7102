// Package corpora reads the collections spladapt works on: documents,
// queries, relevance judgments (qrels) and ranked runs, from BEIR
// directories, TREC files, JSONL, TSV and plain directories of documents.
//
// Readers stream: a corpus never has to fit in memory, and lines may be of
// any length. Gzip (".gz") is read transparently. Malformed input is an
// error naming the file and line (*ParseError); with Options.SkipInvalid the
// bad record is reported through Options.Report and skipped, and the count
// is kept, so nothing is ever dropped silently.
package corpora

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Doc is one document (or passage) of a corpus.
type Doc struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Content returns the text a model or BM25 sees: title and text joined by
// one space (just the text when the title is empty).
func (d Doc) Content() string {
	if d.Title == "" {
		return d.Text
	}
	if d.Text == "" {
		return d.Title
	}
	return d.Title + " " + d.Text
}

// Query is one query (topic).
type Query struct {
	ID   string `json:"_id"`
	Text string `json:"text"`
}

// Qrels maps query id → doc id → relevance grade. Grades may be zero or
// negative (judged non-relevant), as in TREC qrels.
type Qrels map[string]map[string]int

// Judged returns the queries of qs that have judgments in q, in their
// order (a new slice; nil when none is judged). Evaluation, training dev
// sets and search with qrels all search exactly these queries.
func (q Qrels) Judged(qs []Query) []Query {
	var out []Query
	for _, x := range qs {
		if _, ok := q[x.ID]; ok {
			out = append(out, x)
		}
	}
	return out
}

// Hit is one ranked result.
type Hit struct {
	DocID string
	Score float64
	Rank  int // as written in the run file; evaluation ignores it
}

// Run maps query id → its hits in file order.
type Run map[string][]Hit

// ParseError is a malformed record: where it is and what is wrong.
type ParseError struct {
	File string
	Line int // 1-based; 0 when the error concerns the whole file
	Err  error
}

func (e *ParseError) Error() string {
	msg := e.Err.Error()
	if len(msg) > 4*QuoteMax { // a cause that quoted a whole record
		cut := 4 * QuoteMax
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = fmt.Sprintf("%s… (%d bytes)", msg[:cut], len(msg))
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
	}
	return fmt.Sprintf("%s: %s", e.File, msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// QuoteMax is the most bytes of a record an error message quotes.
const QuoteMax = 200

// Quote returns s quoted (%q) when it is at most QuoteMax bytes, else its
// first QuoteMax bytes (cut at a rune boundary) quoted and followed by
// "… (N bytes)": error messages name the offending record without
// copying a 50 MB line to the terminal.
func Quote(s string) string {
	if len(s) <= QuoteMax {
		return strconv.Quote(s)
	}
	cut := QuoteMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// Options control how readers treat bad input.
type Options struct {
	// SkipInvalid skips malformed records instead of failing on the first.
	SkipInvalid bool
	// Report receives every skipped record's error (SkipInvalid only).
	// When nil, skipped records are only counted (see Skipped).
	Report func(*ParseError)
	// Skipped, when not nil, is incremented for each skipped record.
	Skipped *int
}

// Handle decides what a reader does with a bad record: it returns err when
// the reader must stop, and nil when the record is skipped (reported to
// Report and counted in Skipped). Readers outside this package (triples,
// teacher scores, vector files) use it too.
func (o Options) Handle(err *ParseError) error {
	if !o.SkipInvalid {
		return err
	}
	if o.Report != nil {
		o.Report(err)
	}
	if o.Skipped != nil {
		*o.Skipped++
	}
	return nil
}

// Errors shared by readers; match them with errors.Is.
var (
	ErrEmptyFile   = errors.New("empty file")
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	ErrMissingID   = errors.New("missing or empty id")
	ErrDuplicateID = errors.New("duplicate id")
)
