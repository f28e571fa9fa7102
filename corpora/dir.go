package corpora

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// OpenDir opens a plain directory of documents, walked recursively in
// lexical order:
//
//   - .txt, .text, .md and .markdown files are one document each, the file's
//     text as it is (a leading BOM removed, CRLF turned into LF);
//   - .html and .htm files are one document each, reduced by StripHTML
//     (the <title> becomes the title);
//   - .jsonl files hold many documents, read as by OpenJSONL with f;
//   - any of these may be gzipped (name + ".gz").
//
// A file document's id is its path relative to dir with forward slashes
// ("notes/a.txt"); a JSONL record keeps its own id. Ids are unique across
// the whole directory (ErrDuplicateID otherwise). Files and directories
// whose names start with "." are passed over, as are symbolic links to
// directories (no cycles); files of other types are counted, not read (see
// Ignored). An empty or all-white-space file is ErrEmptyFile and a file
// that is not UTF-8 is ErrInvalidUTF8 at the line of the first bad byte;
// both may be skipped with Options.SkipInvalid.
//
// Memory: one file at a time (a JSONL file one line at a time), the id set,
// and the names in the directories being walked.
func OpenDir(dir string, f Fields, opts Options) (*DirReader, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read corpus directory %s: %w", dir, err)
	}
	return &DirReader{
		root:   dir,
		fields: f,
		opts:   opts,
		ids:    newIDSet(),
		stack:  []dirFrame{{rel: "", entries: entries}},
	}, nil
}

// DirReader reads a plain directory of documents; see OpenDir.
type DirReader struct {
	root    string
	fields  Fields
	opts    Options
	ids     *idSet
	stack   []dirFrame
	cur     *recordReader // the JSONL file being read, if any
	docs    int
	ignored int
	err     error
}

type dirFrame struct {
	rel     string // slash-separated path below root ("" for root)
	entries []os.DirEntry
	i       int
}

// Ignored returns the number of files passed over so far because their
// type is not one OpenDir reads.
func (r *DirReader) Ignored() int { return r.ignored }

// Next returns the next document, or io.EOF after the last one. A
// directory with no documents at all is ErrEmptyFile.
func (r *DirReader) Next() (Doc, error) {
	for r.err == nil {
		if r.cur != nil {
			d, err := r.cur.Next()
			if err == nil {
				r.docs++
				return d, nil
			}
			r.cur.Close()
			r.cur = nil
			if err != io.EOF {
				r.failFile(err)
			}
			continue
		}
		rel, ok := r.nextFile()
		if !ok {
			if r.err != nil {
				break
			}
			if r.docs == 0 {
				r.err = &ParseError{File: r.root, Err: detailf(ErrEmptyFile, "no documents (.txt, .md, .html, .jsonl) in directory")}
				break
			}
			return Doc{}, io.EOF
		}
		name := filepath.Join(r.root, filepath.FromSlash(rel))
		switch kind := docKind(rel); kind {
		case "jsonl":
			cur, err := openRecords(name, r.opts, r.ids, jsonParser(r.fields))
			if err != nil {
				r.failFile(err)
				continue
			}
			r.cur = cur
		case "text", "html":
			d, err := readFileDoc(name, rel, kind == "html")
			if err == nil {
				err = r.ids.add(d.ID, name, 1)
				if err != nil {
					err = &ParseError{File: name, Err: err}
				}
			}
			if err != nil {
				r.failFile(err)
				continue
			}
			r.docs++
			return d, nil
		default:
			r.ignored++
		}
	}
	return Doc{}, r.err
}

// failFile handles an error about a whole file or from a JSONL file:
// record-level errors were already offered to Options by the JSONL reader,
// so what arrives here stops the reader unless it is an empty or non-UTF-8
// file that Options say to skip.
func (r *DirReader) failFile(err error) {
	var pe *ParseError
	if errors.As(err, &pe) && (errors.Is(pe, ErrEmptyFile) || errors.Is(pe, ErrInvalidUTF8) || errors.Is(pe, ErrDuplicateID)) {
		if r.opts.Handle(pe) == nil {
			return
		}
	}
	r.err = err
}

// nextFile advances the walk to the next regular file and returns its
// slash-separated relative path.
func (r *DirReader) nextFile() (string, bool) {
	for len(r.stack) > 0 {
		top := &r.stack[len(r.stack)-1]
		if top.i >= len(top.entries) {
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		e := top.entries[top.i]
		top.i++
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rel := path.Join(top.rel, e.Name())
		full := filepath.Join(r.root, filepath.FromSlash(rel))
		typ := e.Type()
		if typ&os.ModeSymlink != 0 {
			fi, err := os.Stat(full)
			if err != nil || fi.IsDir() {
				r.ignored++
				continue
			}
			typ = fi.Mode().Type()
		}
		if typ.IsDir() {
			entries, err := os.ReadDir(full)
			if err != nil {
				r.err = fmt.Errorf("read corpus directory %s: %w", full, err)
				return "", false
			}
			r.stack = append(r.stack, dirFrame{rel: rel, entries: entries})
			continue
		}
		if !typ.IsRegular() {
			r.ignored++
			continue
		}
		return rel, true
	}
	return "", false
}

// docKind classifies a file name: "text", "html", "jsonl" or "".
func docKind(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, ".gz"))
	switch path.Ext(name) {
	case ".txt", ".text", ".md", ".markdown":
		return "text"
	case ".html", ".htm":
		return "html"
	case ".jsonl":
		return "jsonl"
	}
	return ""
}

// readFileDoc reads one whole file as a document with id rel.
func readFileDoc(name, rel string, isHTML bool) (Doc, error) {
	f, err := os.Open(name)
	if err != nil {
		return Doc{}, err
	}
	defer f.Close()
	var rd io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Doc{}, &ParseError{File: name, Err: ErrEmptyFile}
			}
			return Doc{}, &ParseError{File: name, Err: fmt.Errorf("%w: gzip: %w", ErrTruncated, err)}
		}
		defer gz.Close()
		rd = gz
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return Doc{}, &ParseError{File: name, Err: describeReadErr(err)}
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(b) {
		return Doc{}, &ParseError{File: name, Line: firstInvalidLine(b), Err: ErrInvalidUTF8}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return Doc{}, &ParseError{File: name, Err: ErrEmptyFile}
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	d := Doc{ID: rel, Text: text}
	if isHTML {
		d.Title, d.Text = StripHTML(text)
	}
	return d, nil
}

// firstInvalidLine returns the 1-based line of the first byte of b that is
// not part of valid UTF-8.
func firstInvalidLine(b []byte) int {
	line := 1
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		b = b[size:]
	}
	return line
}

func (r *DirReader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	r.stack = nil
	if r.err == nil {
		r.err = errClosed
	}
	return nil
}
