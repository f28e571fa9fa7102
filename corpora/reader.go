package corpora

import (
	"errors"
	"fmt"
	"io"
)

// DocReader streams the documents of a corpus. Next returns the next
// document, or io.EOF after the last one. After any other error the reader
// is spent: Next keeps returning that error. Close releases the open file
// (calling it twice is harmless).
//
// A DocReader holds one line (or, for plain directories, one file) in
// memory plus the set of ids seen so far, used to reject duplicates.
type DocReader interface {
	Next() (Doc, error)
	Close() error
}

// More errors readers return inside a *ParseError; match with errors.Is.
var (
	// ErrSyntax is a record that is not what the format allows (malformed
	// JSON, a JSON value that is not an object, a wrong number of TSV
	// fields, a score that is not an integer).
	ErrSyntax = errors.New("malformed record")
	// ErrMissingField is a record without a required field other than the
	// id (e.g. no "text").
	ErrMissingField = errors.New("missing field")
	// ErrTruncated is a file whose compressed stream ends early, or that
	// cannot be read to its end.
	ErrTruncated = errors.New("truncated or corrupt file")
)

// detailErr is an error with its own message that still matches a
// sentinel through errors.Is (e.g. `missing "_id"` is ErrMissingID).
type detailErr struct {
	msg  string
	kind error
}

func (e *detailErr) Error() string { return e.msg }
func (e *detailErr) Unwrap() error { return e.kind }

func detailf(kind error, format string, args ...any) error {
	return &detailErr{msg: fmt.Sprintf(format, args...), kind: kind}
}

// idSet remembers every id seen and where, so that a duplicate names the
// place of the first occurrence. Memory: one map entry per document (the
// id string and two 32-bit numbers), about 60 bytes plus the id's length;
// 10M documents with short ids cost well under 1 GiB.
type idSet struct {
	seen  map[string]idPos
	files []string
}

type idPos struct{ file, line uint32 }

func newIDSet() *idSet { return &idSet{seen: map[string]idPos{}} }

// add records id at file:line. It returns a non-nil error (matching
// ErrDuplicateID) when id was seen before.
func (s *idSet) add(id, file string, line int) error {
	if p, ok := s.seen[id]; ok {
		first := s.files[p.file]
		if first == file {
			return detailf(ErrDuplicateID, "duplicate id %s (first on line %d)", Quote(id), p.line)
		}
		return detailf(ErrDuplicateID, "duplicate id %s (first in %s:%d)", Quote(id), first, p.line)
	}
	fi := len(s.files) - 1
	if fi < 0 || s.files[fi] != file {
		s.files = append(s.files, file)
		fi++
	}
	s.seen[id] = idPos{file: uint32(fi), line: uint32(line)}
	return nil
}

// fatal reports whether err stops a reader whatever the options: a read
// failure (truncated gzip, I/O error) leaves no next record to go on with.
func fatal(err *ParseError) bool {
	return errors.Is(err, ErrTruncated) || errors.Is(err, ErrEmptyFile)
}

// readAll drains r into a slice (used for queries, which are small).
func readAllQueries(r queryReader) ([]Query, error) {
	var out []Query
	for {
		q, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
}

// queryReader is the internal iterator under ReadQueries.
type queryReader interface {
	next() (Query, error)
}
