package corpora

import (
	"errors"
	"io"
	"strings"
)

// Stats is what ReadStats measures of a corpus.
type Stats struct {
	Docs    int   // documents read
	Empty   int   // documents without a whitespace token
	Skipped int   // malformed records skipped (Options.SkipInvalid)
	Ignored int   // files of a document directory that are not documents
	Tokens  int64 // whitespace tokens of Doc.Content (title + " " + text)
}

// MeanTokens is Tokens per document (0 without documents).
func (s Stats) MeanTokens() float64 {
	if s.Docs == 0 {
		return 0
	}
	return float64(s.Tokens) / float64(s.Docs)
}

// ReadStats reads every document of the corpus at path with fields f and
// counts documents, empty ones and whitespace tokens; opts.Skipped is
// replaced by the count in Stats.Skipped. progress, when not nil, is
// called after each document. Cost: one pass over the corpus.
func ReadStats(path string, f Fields, opts Options, progress func()) (Stats, error) {
	var st Stats
	opts.Skipped = &st.Skipped
	r, err := OpenCorpusFields(path, f, opts)
	if err != nil {
		return st, err
	}
	defer r.Close()
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		n := len(strings.Fields(d.Content()))
		st.Docs++
		st.Tokens += int64(n)
		if n == 0 {
			st.Empty++
		}
		if progress != nil {
			progress()
		}
	}
	if dr, ok := r.(*DirReader); ok {
		st.Ignored = dr.Ignored()
	}
	return st, nil
}
