// Command vocabshift measures how far a target corpus's vocabulary is from
// the source's, as a model's WordPiece tokenizer sees it — the vocabulary
// shift the adaptation study sets against adapted − zero-shot (issue 14):
//
//	go run ./tools/vocabshift -model M -source S [-source S2] -target T [-target T2 ...]
//
// A word is a word piece that does not start with "##" together with the
// "##" pieces after it (the tokenizer's own pre-tokenisation: punctuation
// and digits split, lower case when the model is uncased). Per target it
// prints, over word occurrences: the share cut into ≥ 2 and ≥ 3 pieces,
// and the share whose word never occurs in the source corpora; and, over
// distinct words, the share unseen in the source. Cost: tokenising every
// document of every corpus once.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/tokenize"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// words calls fn with every word of text and its number of pieces.
func words(tok *tokenize.Tokenizer, text string, fn func(w string, pieces int)) {
	var cur strings.Builder
	n := 0
	flush := func() {
		if n > 0 {
			fn(cur.String(), n)
		}
		cur.Reset()
		n = 0
	}
	for _, p := range tok.Tokens(text) {
		if rest, ok := strings.CutPrefix(p, "##"); ok && n > 0 {
			cur.WriteString(rest)
			n++
			continue
		}
		flush()
		cur.WriteString(p)
		n = 1
	}
	flush()
}

func main() {
	var sources, targets multi
	model := flag.String("model", "", "model or tokenizer directory")
	flag.Var(&sources, "source", "source corpus (repeatable)")
	flag.Var(&targets, "target", "target corpus (repeatable)")
	flag.Parse()
	if *model == "" || len(sources) == 0 || len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "usage: vocabshift -model M -source S... -target T...")
		os.Exit(2)
	}
	if err := run(*model, sources, targets); err != nil {
		fmt.Fprintln(os.Stderr, "vocabshift:", err)
		os.Exit(1)
	}
}

func run(model string, sources, targets []string) error {
	tok, err := tokenize.Load(model)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	docs, err := corpora.ReadDocs(sources, corpora.Options{})
	if err != nil {
		return err
	}
	for _, d := range docs {
		words(tok, d.Content(), func(w string, _ int) { seen[w] = true })
	}
	fmt.Printf("Source: %s (%d documents, %d distinct words); tokenizer of %s.\n\n", strings.Join(sources, ", "), len(docs), len(seen), model)
	fmt.Println("| target | documents | word occurrences | ≥ 2 pieces | ≥ 3 pieces | unseen in source (occurrences) | unseen in source (distinct words) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, t := range targets {
		ds, err := corpora.ReadDocs([]string{t}, corpora.Options{})
		if err != nil {
			return err
		}
		var occ, two, three, unseen int
		types := map[string]bool{}
		for _, d := range ds {
			words(tok, d.Content(), func(w string, pieces int) {
				occ++
				if pieces >= 2 {
					two++
				}
				if pieces >= 3 {
					three++
				}
				if !seen[w] {
					unseen++
				}
				types[w] = true
			})
		}
		newTypes := 0
		for w := range types {
			if !seen[w] {
				newTypes++
			}
		}
		pct := func(a, b int) float64 { return 100 * float64(a) / float64(max(b, 1)) }
		fmt.Printf("| %s | %d | %d | %.1f %% | %.1f %% | %.1f %% | %.1f %% |\n", filepath.Base(t), len(ds), occ,
			pct(two, occ), pct(three, occ), pct(unseen, occ), pct(newTypes, len(types)))
	}
	return nil
}
