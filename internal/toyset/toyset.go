// Package toyset is the toy collection and tiny model that the tests of
// splade and adapt share: ten documents on five topics, ten queries with a
// relevant and a non-relevant document each, their vocabulary, and a
// randomly initialised tiny BERT over it saved as an HF checkpoint.
package toyset

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// Docs is a toy collection: five topics, each with a few documents that
// share its words. Queries name a topic in different words of it, so a
// trained model can rank the right documents first.
var Docs = map[string]string{
	"cat1":   "the cat sat on the warm mat and purred",
	"cat2":   "a small cat chased a mouse around the house",
	"ship1":  "the ship sailed across the cold ocean with its crew",
	"ship2":  "a large ship carried cargo over the sea",
	"bread1": "fresh bread is baked in a hot oven every morning",
	"bread2": "the baker sold warm bread and butter rolls",
	"star1":  "a bright star shines in the night sky above the hills",
	"star2":  "astronomers watched the distant star through a telescope",
	"rain1":  "heavy rain fell on the city and flooded the streets",
	"rain2":  "the storm brought rain and wind to the valley",
}

// Query is a toy query: its text, its relevant document and a non-relevant
// one.
type Query struct{ Text, Pos, Neg string }

// Queries are the toy queries by id.
var Queries = map[string]Query{
	"q1":  {"cat mouse", "cat2", "ship1"},
	"q2":  {"cat purred mat", "cat1", "bread2"},
	"q3":  {"ship ocean crew", "ship1", "rain1"},
	"q4":  {"ship cargo sea", "ship2", "star1"},
	"q5":  {"bread oven", "bread1", "cat1"},
	"q6":  {"baker butter", "bread2", "ship2"},
	"q7":  {"star night sky", "star1", "rain2"},
	"q8":  {"star telescope", "star2", "bread1"},
	"q9":  {"rain flooded streets", "rain1", "star2"},
	"q10": {"storm rain wind", "rain2", "cat2"},
}

// Vocab is the five specials and every lower-cased word of the toy
// collection, sorted.
func Vocab() []string {
	seen := map[string]bool{}
	for _, d := range Docs {
		for _, w := range strings.Fields(d) {
			seen[w] = true
		}
	}
	for _, q := range Queries {
		for _, w := range strings.Fields(q.Text) {
			seen[w] = true
		}
	}
	words := make([]string, 0, len(seen))
	for w := range seen {
		words = append(words, w)
	}
	sort.Strings(words)
	return append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, words...)
}

// TinyModelDir writes a randomly initialised tiny BERT (H 32, 2 layers, 4
// heads) with the toy vocabulary to an HF checkpoint directory and returns
// it.
func TinyModelDir(t testing.TB, seed uint64) string {
	t.Helper()
	tok, err := tokenize.FromVocab(Vocab(), true)
	if err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.BERTConfig(tok.VocabSize(), 32, 2, 4, 64, 64), seed)
	if err != nil {
		t.Fatal(err)
	}
	m.TokenizerDir = tokDir
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}
