package corpora

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzJSONL: any bytes given to the JSONL reader end in documents or a
// *ParseError, never a panic. Strictly, the documents returned have
// distinct, non-blank, valid UTF-8 ids. With SkipInvalid, every non-blank
// line is either a document or a reported, counted skip: nothing is lost.
func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"_id":"a","title":"t","text":"x"}` + "\n" + `{"_id":"b","text":"y"}`,
		"\ufeff" + `{"_id":1,"text":"x"}` + "\r\n",
		`{"_id":"a","text":"x"}` + "\n" + `{"_id":"a","text":"x"}`,
		`{"_id":"","text":5}`,
		"[1,2]\nnull\n{\"_id\":\"\xff\",\"text\":\"\"}\n",
		"\n\n   \n",
		"",
		`{"_id":{"x":1},"text":"y"}`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenCorpus(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		docs, err := drain(r)
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v (%T), want *ParseError", err, err)
		}
		seen := map[string]bool{}
		for _, d := range docs {
			if d.ID == "" || seen[d.ID] || !utf8.ValidString(d.ID) || !utf8.ValidString(d.Text) || !utf8.ValidString(d.Title) {
				t.Fatalf("bad document %q", d)
			}
			seen[d.ID] = true
		}

		opts, reported, skipped := collect()
		r, err = OpenCorpus(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		docs2, err := drain(r)
		lines, cerr := CountDocs(path)
		if cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			if !errors.Is(err, ErrEmptyFile) || lines != 0 {
				t.Fatalf("SkipInvalid: error %v with %d non-blank lines", err, lines)
			}
			return
		}
		if len(docs2)+*skipped != lines || len(*reported) != *skipped {
			t.Fatalf("%d docs + %d skipped (%d reported) != %d non-blank lines", len(docs2), *skipped, len(*reported), lines)
		}
		if len(docs) > len(docs2) {
			t.Fatalf("strict read returned %d docs, SkipInvalid only %d", len(docs), len(docs2))
		}
	})
}

// FuzzJSONDocFastPath: the fast JSONL record parser agrees with the
// map-based reference on every UTF-8 line, for BEIR's and for query field
// names: the same document, or the same error.
func FuzzJSONDocFastPath(f *testing.F) {
	for _, s := range []string{
		`{"_id":"a","title":"t","text":"x"}`,
		`{"_id":1.5e3,"title":null,"text":"a\"b\\c\u00e9\ud800"}`,
		` { "text" : "x" , "_id" : "a" , "_id" : "b" , "x" : [1,{"_id":"no"}] } `,
		`{"\u005fid":"esc","text":"k"}`,
		`{"_id":"a","text":{"x":"}"}}`,
		`{}`, `[]`, `null`, `"s"`, `{"_id":"a"`, `{"_id":"","text":""}`, `{"_id":true,"text":"x"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if !utf8.ValidString(line) || strings.ContainsAny(line, "\n") {
			return
		}
		for _, fields := range []Fields{BEIRFields, queryFields, {ID: "k", Title: "k", Text: "k"}} {
			fast, ferr := parseJSONDoc(line, fields)
			ref, rerr := parseJSONDocMap(line, fields)
			if fast != ref || fmt.Sprint(ferr) != fmt.Sprint(rerr) {
				t.Fatalf("fields %v, line %q:\nfast %q, %v\nref  %q, %v", fields, line, fast, ferr, ref, rerr)
			}
		}
	})
}
