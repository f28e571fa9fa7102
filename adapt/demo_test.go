package adapt

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/tokenize"
)

func readWords(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	words := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]string
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		for _, w := range strings.Fields(rec["text"]) {
			words[w] = true
		}
	}
	return words
}

func TestDemoDomainsAreDisjointAndReproducible(t *testing.T) {
	dir := t.TempDir()
	src, tgt := DemoSource(), DemoTarget()
	src.Docs, tgt.Docs = 300, 300
	src.Splits = map[string]int{"train": 100, "dev": 20}
	tgt.Splits = map[string]int{"test": 50}
	for _, s := range []DemoSpec{src, tgt} {
		if err := GenerateDemo(filepath.Join(dir, s.Name), s); err != nil {
			t.Fatal(err)
		}
	}
	sw := readWords(t, filepath.Join(dir, src.Name, "corpus.jsonl"))
	tw := readWords(t, filepath.Join(dir, tgt.Name, "corpus.jsonl"))
	shared := 0
	for w := range tw {
		if sw[w] {
			shared++
			found := false
			for _, f := range functionWords {
				found = found || f == w
			}
			if !found {
				t.Errorf("target word %q appears in the source corpus", w)
			}
		}
	}
	if shared == 0 {
		t.Error("domains share no function words")
	}
	// Same spec, same bytes.
	again := filepath.Join(dir, "again")
	if err := GenerateDemo(again, tgt); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"} {
		a, _ := os.ReadFile(filepath.Join(dir, tgt.Name, f))
		b, _ := os.ReadFile(filepath.Join(again, f))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s differs between two generations (%d vs %d bytes)", f, len(a), len(b))
		}
	}
	q, _ := os.ReadFile(filepath.Join(dir, tgt.Name, "qrels/test.tsv"))
	if n := strings.Count(string(q), "\n"); n != 51 {
		t.Errorf("test qrels has %d lines, want header + 50", n)
	}
}

// A vocabulary trained on the source alone covers the target's letters:
// target words split into pieces, never into [UNK].
func TestDemoTargetTokenisesWithoutUnknowns(t *testing.T) {
	dir := t.TempDir()
	src, tgt := DemoSource(), DemoTarget()
	src.Docs, tgt.Docs = 300, 100
	src.Splits, tgt.Splits = map[string]int{"train": 10}, map[string]int{"test": 10}
	for _, s := range []DemoSpec{src, tgt} {
		if err := GenerateDemo(filepath.Join(dir, s.Name), s); err != nil {
			t.Fatal(err)
		}
	}
	var texts []string
	for w := range readWords(t, filepath.Join(dir, src.Name, "corpus.jsonl")) {
		texts = append(texts, w)
	}
	vocab, err := tokenize.TrainWordPiece(slices.Values(texts), 500, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	multi := 0
	n := 0
	for w := range readWords(t, filepath.Join(dir, tgt.Name, "corpus.jsonl")) {
		pieces := tok.Tokens(w)
		for _, piece := range pieces {
			if piece == "[UNK]" {
				t.Fatalf("target word %q tokenises to %v", w, pieces)
			}
		}
		if len(w) > 4 {
			n++
			if len(pieces) <= 3 {
				multi++ // split into syllable-sized pieces, not letters
			}
		}
	}
	if multi*2 < n {
		t.Errorf("only %d of %d target words split into at most 3 pieces", multi, n)
	}
}

// TestWriteDemoVerdict: the verdict follows the numbers — competence
// against half of BM25, the sign of Δ and its test.
func TestWriteDemoVerdict(t *testing.T) {
	for _, c := range []struct {
		zs, ad, p float64
		want      []string
	}{
		{0.40, 0.58, 1e-9, []string{"56% of BM25's 0.710: competent", "helps: adapted 0.580, Δ +0.180, significantly", "from 11408 to 574"}},
		{0.30, 0.29, 0.4, []string{"below half of BM25", "hurts: adapted 0.290, Δ -0.010, not significantly"}},
	} {
		dir := t.TempDir()
		s := Summary{Rows: map[string][]SummaryRow{"nDCG@10": {{Target: "demo-target",
			Means: map[string]float64{"bm25": 0.71, SysZeroShot: c.zs, SysAdapted: c.ad},
			Delta: eval.Number(c.ad - c.zs), PHolm: eval.Number(c.p)}}},
			Perplexity: map[string]map[string]float64{"demo-target": {"source-mlm": 11408, "target-mlm": 574}}}
		raw, _ := json.Marshal(s)
		if err := os.WriteFile(filepath.Join(dir, "summary.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := WriteDemoVerdict(&b, dir); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("verdict lacks %q:\n%s", w, b.String())
			}
		}
	}
	if err := WriteDemoVerdict(io.Discard, t.TempDir()); err == nil {
		t.Error("no summary.json: no error")
	}
}
