package corpora

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// LineReader is lineReader for other packages' line formats (triples,
// teacher scores): open one with OpenLines.
type LineReader = lineReader

// OpenLines opens name for reading line by line (see lineReader).
func OpenLines(name string) (*LineReader, error) { return openLines(name) }

// lineReader reads a text file line by line, of any line length, through
// gzip when the name ends in ".gz". It strips a leading UTF-8 BOM and the
// "\r" of CRLF line ends, and reports invalid UTF-8 and a truncated gzip
// stream as *ParseError with the line number.
type lineReader struct {
	name string
	f    *os.File
	gz   *gzip.Reader
	br   *bufio.Reader
	line int
	any  bool // at least one byte was read
}

// openLines opens name for line reading.
func openLines(name string) (*lineReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	lr := &lineReader{name: name, f: f}
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
		if err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return nil, &ParseError{File: name, Err: ErrEmptyFile}
			}
			return nil, &ParseError{File: name, Err: fmt.Errorf("%w: gzip: %w", ErrTruncated, err)}
		}
		lr.gz = gz
		r = gz
	}
	lr.br = bufio.NewReaderSize(r, 1<<16)
	return lr, nil
}

// Next returns the next line without its end-of-line bytes, and its
// 1-based number. At the end it returns io.EOF. Lines are returned even when
// their content is invalid UTF-8: the error then is a *ParseError wrapping
// ErrInvalidUTF8 and the line may be skipped by the caller.
func (lr *lineReader) Next() (string, int, error) {
	b, err := lr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A long line: accumulate.
		buf := append([]byte(nil), b...)
		for err == bufio.ErrBufferFull {
			b, err = lr.br.ReadSlice('\n')
			buf = append(buf, b...)
		}
		b = buf
	}
	if err != nil && err != io.EOF {
		lr.line++
		return "", lr.line, &ParseError{File: lr.name, Line: lr.line, Err: describeReadErr(err)}
	}
	if len(b) == 0 && err == io.EOF {
		return "", lr.line, io.EOF
	}
	lr.line++
	if !lr.any {
		lr.any = true
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	s := string(b)
	if !utf8.ValidString(s) {
		return s, lr.line, &ParseError{File: lr.name, Line: lr.line, Err: ErrInvalidUTF8}
	}
	return s, lr.line, nil
}

// Empty reports whether the file had no bytes at all (after Next has
// returned io.EOF).
func (lr *lineReader) Empty() bool { return !lr.any }

// describeReadErr turns a failed read into an error matching ErrTruncated
// (and still the cause, e.g. io.ErrUnexpectedEOF or gzip.ErrChecksum).
func describeReadErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: gzip stream ends early (%w)", ErrTruncated, err)
	}
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		return fmt.Errorf("%w: corrupt gzip stream (%w)", ErrTruncated, err)
	}
	return fmt.Errorf("%w: %w", ErrTruncated, err)
}

func (lr *lineReader) Close() error {
	if lr.gz != nil {
		lr.gz.Close()
	}
	return lr.f.Close()
}
