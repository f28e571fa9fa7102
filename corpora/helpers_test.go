package corpora

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// put writes content to dir/name (making parent directories); a name
// ending in ".gz" is gzip-compressed. It returns the full path.
func put(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte(content)
	if filepath.Ext(name) == ".gz" {
		data = gz(t, content)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t testing.TB, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// drain reads r to the end, returning the documents before the first error
// other than io.EOF.
func drain(r DocReader) ([]Doc, error) {
	defer r.Close()
	var docs []Doc
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, d)
	}
}

// collect returns Options that skip invalid records and record them.
func collect() (Options, *[]*ParseError, *int) {
	var reported []*ParseError
	skipped := new(int)
	return Options{SkipInvalid: true, Report: func(e *ParseError) { reported = append(reported, e) }, Skipped: skipped}, &reported, skipped
}

func ids(docs []Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}
