package corpora

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBadInput runs every kind of bad input through OpenCorpus twice:
// strict, where the first bad record must be an error naming the file and
// line with the right kind, and with SkipInvalid, where every bad record
// must be reported (file and line), counted, and the good ones returned.
func TestBadInput(t *testing.T) {
	type bad struct {
		line int
		kind error
		msg  string // exact message after "file:line: " ("" = do not check)
	}
	cases := []struct {
		name    string
		file    string
		content string
		raw     []byte // file bytes instead of content (no gzip applied)
		bad     []bad  // in file order
		good    []string
		fatal   bool // SkipInvalid does not help (whole-file error)
	}{
		{
			name: "malformed JSON", file: "c.jsonl",
			content: `{"_id":"a","text":"x"}` + "\n" + `{"_id":"b","text":"y"` + "\n" + `{"_id":"c","text":"z"}` + "\n",
			bad:     []bad{{2, ErrSyntax, "malformed JSON: unexpected end of JSON input"}},
			good:    []string{"a", "c"},
		},
		{
			name: "not an object", file: "c.jsonl",
			content: `["a","x"]` + "\n" + `{"_id":"b","text":"y"}` + "\n" + "null\n",
			bad:     []bad{{1, ErrSyntax, "malformed JSON: a JSON array, want an object"}, {3, ErrSyntax, "malformed JSON: null, want an object"}},
			good:    []string{"b"},
		},
		{
			name: "missing id", file: "corpus.jsonl",
			content: `{"_id":"a","text":"x"}` + "\n\n" + `{"title":"t","text":"y"}` + "\n" + `{"_id":null,"text":"y"}` + "\n",
			bad:     []bad{{3, ErrMissingID, `missing "_id"`}, {4, ErrMissingID, `missing "_id"`}},
			good:    []string{"a"},
		},
		{
			name: "empty id", file: "c.jsonl",
			content: `{"_id":"","text":"x"}` + "\n" + `{"_id":"  ","text":"x"}` + "\n" + `{"_id":"b","text":"y"}` + "\n",
			bad:     []bad{{1, ErrMissingID, `empty "_id"`}, {2, ErrMissingID, `empty "_id"`}},
			good:    []string{"b"},
		},
		{
			name: "missing text", file: "c.jsonl",
			content: `{"_id":"a","title":"x"}` + "\n" + `{"_id":"b","text":"y"}` + "\n",
			bad:     []bad{{1, ErrMissingField, `missing "text"`}},
			good:    []string{"b"},
		},
		{
			name: "wrong field type", file: "c.jsonl",
			content: `{"_id":"a","text":5}` + "\n" + `{"_id":"b","title":["t"],"text":"y"}` + "\n" + `{"_id":"c","text":"z"}` + "\n",
			bad:     []bad{{1, ErrSyntax, `"text" is a number, want a string`}, {2, ErrSyntax, `"title" is an array, want a string`}},
			good:    []string{"c"},
		},
		{
			name: "duplicate id", file: "c.jsonl",
			content: `{"_id":"a","text":"x"}` + "\n" + `{"_id":"b","text":"y"}` + "\n" + `{"_id":"a","text":"z"}` + "\n",
			bad:     []bad{{3, ErrDuplicateID, `duplicate id "a" (first on line 1)`}},
			good:    []string{"a", "b"},
		},
		{
			name: "invalid UTF-8", file: "c.jsonl",
			content: `{"_id":"a","text":"x"}` + "\n" + "{\"_id\":\"b\",\"text\":\"\xff\xfe\"}\n" + `{"_id":"c","text":"z"}` + "\n",
			bad:     []bad{{2, ErrInvalidUTF8, "invalid UTF-8"}},
			good:    []string{"a", "c"},
		},
		{
			name: "invalid UTF-8 gzip", file: "c.jsonl.gz",
			content: "{\"_id\":\"\xc3\",\"text\":\"x\"}\n" + `{"_id":"c","text":"z"}` + "\n",
			bad:     []bad{{1, ErrInvalidUTF8, "invalid UTF-8"}},
			good:    []string{"c"},
		},
		{
			name: "empty file", file: "c.jsonl", content: "",
			bad: []bad{{0, ErrEmptyFile, "empty file"}}, fatal: true,
		},
		{
			name: "blank lines only", file: "c.jsonl", content: "\n  \r\n\n",
			bad: []bad{{0, ErrEmptyFile, "empty file"}}, fatal: true,
		},
		{
			name: "empty gzip member", file: "c.jsonl.gz", content: "",
			bad: []bad{{0, ErrEmptyFile, "empty file"}}, fatal: true,
		},
		{
			name: "zero-byte gz file", file: "c.jsonl.gz", raw: []byte{},
			bad: []bad{{0, ErrEmptyFile, "empty file"}}, fatal: true,
		},
		{
			name: "not gzip", file: "c.jsonl.gz", raw: []byte(`{"_id":"a","text":"x"}` + "\n"),
			bad: []bad{{0, ErrTruncated, "truncated or corrupt file: gzip: gzip: invalid header"}}, fatal: true,
		},
		{
			name: "truncated gzip trailer", file: "c.jsonl.gz",
			raw:  truncate(gz(t, `{"_id":"a","text":"x"}`+"\n"+`{"_id":"b","text":"y"}`+"\n"), 8),
			bad:  []bad{{3, ErrTruncated, "truncated or corrupt file: gzip stream ends early (unexpected EOF)"}},
			good: []string{"a", "b"}, fatal: true,
		},
		{
			name: "TSV field count", file: "c.tsv",
			content: "a\tx\nb\n" + "c\tt\tz\n" + "d\t1\t2\t3\n",
			bad:     []bad{{2, ErrSyntax, "1 tab-separated fields, want 2 (id, text) or 3 (id, title, text)"}, {4, ErrSyntax, "4 tab-separated fields, want 2 (id, text) or 3 (id, title, text)"}},
			good:    []string{"a", "c"},
		},
		{
			name: "TSV empty id and duplicate", file: "c.tsv.gz",
			content: "\tx\na\ty\na\tz\n",
			bad:     []bad{{1, ErrMissingID, "empty id"}, {3, ErrDuplicateID, `duplicate id "a" (first on line 2)`}},
			good:    []string{"a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			if tc.raw != nil {
				if err := os.WriteFile(path, tc.raw, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				put(t, dir, tc.file, tc.content)
			}
			check := func(t *testing.T, err error, b bad) {
				t.Helper()
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v (%T), want a *ParseError", err, err)
				}
				if pe.File != path || pe.Line != b.line {
					t.Errorf("error at %s:%d, want %s:%d", pe.File, pe.Line, path, b.line)
				}
				if !errors.Is(err, b.kind) {
					t.Errorf("error %q is not %v", err, b.kind)
				}
				want := path + ":" + fmt.Sprint(b.line) + ": " + b.msg
				if b.line == 0 {
					want = path + ": " + b.msg
				}
				if b.msg != "" && err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
			}

			// Strict: stop at the first bad record.
			r, err := OpenCorpus(path, Options{})
			if err == nil {
				var docs []Doc
				docs, err = drain(r)
				if err == nil {
					t.Fatalf("no error; docs %v", ids(docs))
				}
			}
			check(t, err, tc.bad[0])

			// SkipInvalid: every bad record reported, counted and passed over.
			opts, reported, skipped := collect()
			var docs []Doc
			r, err = OpenCorpus(path, opts)
			if err == nil {
				docs, err = drain(r)
			}
			if tc.fatal {
				check(t, err, tc.bad[len(tc.bad)-1])
				if len(*reported) != 0 || *skipped != 0 {
					t.Errorf("a whole-file error was reported as %d skipped records", *skipped)
				}
			} else {
				if err != nil {
					t.Fatalf("SkipInvalid: %v", err)
				}
				if *skipped != len(tc.bad) || len(*reported) != len(tc.bad) {
					t.Fatalf("skipped %d, reported %d, want %d", *skipped, len(*reported), len(tc.bad))
				}
				for i, b := range tc.bad {
					check(t, (*reported)[i], b)
				}
			}
			if got := ids(docs); !reflect.DeepEqual(got, tc.good) && !(len(got) == 0 && len(tc.good) == 0) {
				t.Errorf("docs %v, want %v", got, tc.good)
			}
		})
	}
}

func truncate(b []byte, n int) []byte { return b[:len(b)-n] }

// TestTruncatedGzipMidStream cuts a gzip stream in the middle: the reader
// returns whole, valid documents up to the cut, then ErrTruncated (also
// io.ErrUnexpectedEOF) at the line being read, never a half document.
func TestTruncatedGzipMidStream(t *testing.T) {
	var b strings.Builder
	const n = 5000
	for i := range n {
		fmt.Fprintf(&b, `{"_id":"d%d","text":"document number %d with some words %d"}`+"\n", i, i, i*7919%1000)
	}
	full := gz(t, b.String())
	path := filepath.Join(t.TempDir(), "c.jsonl.gz")
	if err := os.WriteFile(path, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenCorpus(path, Options{SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := drain(r)
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want ErrTruncated wrapping io.ErrUnexpectedEOF", err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != len(docs)+1 {
		t.Errorf("error %v, want it at line %d (after %d whole documents)", err, len(docs)+1, len(docs))
	}
	if len(docs) == 0 || len(docs) >= n {
		t.Fatalf("%d documents before the cut, want some but not all %d", len(docs), n)
	}
	for i, d := range docs {
		if want := fmt.Sprintf("d%d", i); d.ID != want || !strings.HasPrefix(d.Text, "document number ") {
			t.Fatalf("doc %d = %+v", i, d)
		}
	}
}

// TestBOMAndCRLF: a UTF-8 BOM at the start of the file and CRLF line ends
// are accepted, and neither leaks into ids or texts; a BOM in the middle of
// a file is not silently accepted.
func TestBOMAndCRLF(t *testing.T) {
	for _, file := range []string{"c.jsonl", "c.jsonl.gz", "c.tsv", "c.tsv.gz"} {
		t.Run(file, func(t *testing.T) {
			var content string
			if strings.Contains(file, "jsonl") {
				content = "\ufeff" + `{"_id":"a","title":"T","text":"x y"}` + "\r\n" + `{"_id":"b","text":"z"}` + "\r\n"
			} else {
				content = "\ufeffa\tT\tx y\r\nb\tz\r\n"
			}
			path := put(t, t.TempDir(), file, content)
			r, err := OpenCorpus(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			docs, err := drain(r)
			if err != nil {
				t.Fatal(err)
			}
			want := []Doc{{ID: "a", Title: "T", Text: "x y"}, {ID: "b", Text: "z"}}
			if !reflect.DeepEqual(docs, want) {
				t.Errorf("docs %q, want %q", docs, want)
			}
		})
	}
	path := put(t, t.TempDir(), "c.jsonl", `{"_id":"a","text":"x"}`+"\n\ufeff"+`{"_id":"b","text":"z"}`+"\n")
	r, err := OpenCorpus(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain(r); !errors.Is(err, ErrSyntax) {
		t.Errorf("BOM on line 2: error %v, want ErrSyntax", err)
	}
}

// TestErrorIsSticky: after an error, Next keeps returning it; after Close,
// Next is an error, not a panic, and Close may be called again.
func TestErrorIsSticky(t *testing.T) {
	path := put(t, t.TempDir(), "c.jsonl", "{bad\n"+`{"_id":"a","text":"x"}`+"\n")
	r, err := OpenCorpus(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Errorf("errors %v then %v, want the same error twice", err1, err2)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close: %v, want an error", err)
	}
}
