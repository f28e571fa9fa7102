package index

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// FuzzReadVectors: any bytes given to the vectors JSONL reader end in an
// error that names the file and quotes little of the input, or in
// documents that build an index passing Validate; never a panic, and
// never a term table sized by a hostile term id (MaxTerms bounds it).
func FuzzReadVectors(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","vector":{"1":1,"7":0.5}}` + "\n" + `{"id":"b","vector":{"7":2}}`,
		`{"id":"a","vector":{"100000000":1}}`,
		`{"id":"a","vector":{"1":-1}}`,
		`{"id":"a","vector":{"1":1e39}}`,
		`{"id":"a","vector":{}}` + "\n\n" + `{"id":"a","vector":{"2":1}}`,
		`{"id":"a b","vector":{"01":1,"1":2}}`,
		"\xef\xbb\xbf" + `{"id":"x","vector":{"3":0}}`,
		`{"id":"` + strings.Repeat("z", 5000) + `", "vector": 3}`,
		"not json",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "v.jsonl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := NewBuilder(Options{MaxTerms: 1 << 12})
		if err != nil {
			t.Fatal(err)
		}
		err = ReadVectors(p, IDResolver, corpora.Options{}, func(id string, vec []TermWeight) error {
			_, err := b.Add(id, vec)
			return err
		})
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, p) || len(msg) > len(p)+1200 {
				t.Fatalf("error of %d bytes, or without the file name: %.300s", len(msg), msg)
			}
			return
		}
		out := filepath.Join(dir, "idx")
		if _, err := b.Write(out); err != nil {
			t.Fatalf("write: %v", err)
		}
		r, err := Open(out)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer r.Close()
		if err := r.Validate(); err != nil {
			t.Fatalf("validate: %v", err)
		}
	})
}
