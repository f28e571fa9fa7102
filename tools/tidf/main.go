// Command tidf copies a checkpoint directory (as symlinks) with its idf.json
// replaced by the IDF of another corpus, so that any command that loads the
// checkpoint weighs an inference-free model's queries by that corpus's
// statistics — the probe that decided splade.query_idf
// (docs/experiments.md, session 6):
//
//	go run ./tools/tidf -model M -corpus C -out DIR [-max-length 256]
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

func main() {
	model := flag.String("model", "", "")
	corpus := flag.String("corpus", "", "")
	out := flag.String("out", "", "")
	maxLen := flag.Int("max-length", 256, "")
	flag.Parse()
	os.MkdirAll(*out, 0o755)
	ents, _ := os.ReadDir(*model)
	for _, e := range ents {
		if e.Name() == splade.IDFFile || e.IsDir() {
			continue
		}
		src, _ := filepath.Abs(filepath.Join(*model, e.Name()))
		os.Remove(filepath.Join(*out, e.Name()))
		if err := os.Symlink(src, filepath.Join(*out, e.Name())); err != nil {
			log.Fatal(err)
		}
	}
	tok, err := tokenize.Load(*model)
	if err != nil {
		log.Fatal(err)
	}
	w, err := splade.CorpusIDF(tok, []string{*corpus}, *maxLen, corpora.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := splade.WriteIDF(*out, tok, w); err != nil {
		log.Fatal(err)
	}
}
