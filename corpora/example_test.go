package corpora_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spladapt/spladapt/corpora"
)

func ExampleStripHTML() {
	title, text := corpora.StripHTML(`<html><head><title>Caf&eacute;</title><script>track()</script></head>
<body><h1>Menu</h1><p>Tea &amp; coffee</p></body></html>`)
	fmt.Printf("%q\n%q\n", title, text)
	// Output:
	// "Café"
	// "Menu Tea & coffee"
}

func ExampleOpenCorpus() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "corpus.jsonl")
	os.WriteFile(path, []byte(`{"_id":"d1","title":"A","text":"first"}
{"_id":"d1","text":"a duplicate"}
{"_id":"d2","text":"second"}
`), 0o644)

	skipped := 0
	r, err := corpora.OpenCorpus(path, corpora.Options{
		SkipInvalid: true,
		Report:      func(e *corpora.ParseError) { fmt.Println("skipped line", e.Line, "-", e.Err) },
		Skipped:     &skipped,
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for {
		d, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %q\n", d.ID, d.Content())
	}
	fmt.Println(skipped, "skipped")
	// Output:
	// d1: "A first"
	// skipped line 2 - duplicate id "d1" (first on line 1)
	// d2: "second"
	// 1 skipped
}
