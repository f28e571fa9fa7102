package corpora

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkReadCorpus reads a synthetic BEIR-style corpus of 10k documents
// (about 1.3 KB each, like SciFact abstracts), plain and gzipped.
func BenchmarkReadCorpus(b *testing.B) {
	dir := b.TempDir()
	var sb strings.Builder
	const docs = 10_000
	for i := range docs {
		fmt.Fprintf(&sb, `{"_id":"%d","title":"Title of document %d","text":"%s","metadata":{}}`+"\n", i, i, strings.Repeat("lorem ipsum dolor sit amet \u00e9 ", 45))
	}
	for _, name := range []string{"corpus.jsonl", "corpus.jsonl.gz", "corpus.tsv"} {
		content := sb.String()
		if strings.HasPrefix(filepath.Ext(strings.TrimSuffix(name, ".gz")), ".tsv") {
			var tb strings.Builder
			for i := range docs {
				fmt.Fprintf(&tb, "%d\tTitle of document %d\t%s\n", i, i, strings.Repeat("lorem ipsum dolor sit amet \u00e9 ", 45))
			}
			content = tb.String()
		}
		path := put(b, dir, name, content)
		b.Run(fmt.Sprintf("format=%s/docs=10k", name), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				r, err := OpenCorpus(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				r.Close()
				if n != docs {
					b.Fatalf("%d docs", n)
				}
			}
		})
	}
}

// BenchmarkParseJSONDoc compares the fast record parser with the
// map-based reference on one SciFact-sized record, in the same run.
func BenchmarkParseJSONDoc(b *testing.B) {
	line := fmt.Sprintf(`{"_id":"4983","title":"Microstructural development of human newborn cerebral white matter","text":"%s","metadata":{"k":[1,2,"x"]}}`, strings.Repeat("Alterations of the architecture \u00e9 ", 40))
	for _, impl := range []struct {
		name  string
		parse func(string, Fields) (Doc, error)
	}{{"fast", parseJSONDoc}, {"map", parseJSONDocMap}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := impl.parse(line, BEIRFields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
