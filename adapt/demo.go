package adapt

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// DemoSpec describes one synthetic domain of the built-in demo.
//
// The generator: a domain has Topics topics, each with Concepts concepts;
// every concept has two surface forms (synonyms), pseudo-words built from
// syllables. A document belongs to one topic, uses DocConcepts of its
// topic's concepts and is DocLen tokens long: about 40% shared English
// function words, 45% its concepts (in the form the document prefers,
// the other form 15% of the time, so that the corpus shows which forms
// co-occur), and 15% words of other topics. A query is written for one
// document from 3–4 of its concepts, each in the form the document does
// NOT prefer with probability SynonymRate, so that exact matching often
// fails and a model must have learnt from the corpus which forms belong
// together. The one relevant document of a query is its source document
// (grade 1).
//
// The source's words have two syllables and the target's three, from one
// syllable inventory, so the target's vocabulary never appears in the
// source data (its words split into pieces the source vocabulary knows):
// exactly what continued pretraining on the target has to learn.
type DemoSpec struct {
	Name      string
	Seed      uint64
	Syllables []string
	// WordSyllables is the number of syllables of a concept word. The demo
	// domains share one syllable inventory but not word lengths (2 in the
	// source, 3 in the target), so no target word occurs in the source
	// while its pieces do, as domain terms split into known word pieces.
	WordSyllables int
	Topics        int
	Concepts      int
	DocConcepts   int
	Docs          int
	DocLen        int
	SynonymRate   float64
	// Splits maps a qrels split name to its number of queries.
	Splits map[string]int
}

var functionWords = strings.Fields("the of and a to in is was for on that with as by at from it an be this which or are were has had its into than also but not been other more such these their can may most over some just quite very zero yet major equal size any each however often")

// DemoSource and DemoTarget are the two domains of "spladapt demo".
func DemoSource() DemoSpec {
	return DemoSpec{Name: "demo-source", Seed: 20240601, Syllables: syllables("bdfgklmnprstvz", "aeiou"), WordSyllables: 2,
		Topics: 40, Concepts: 30, DocConcepts: 6, Docs: 2000, DocLen: 48, SynonymRate: 0.5,
		Splits: map[string]int{"train": 3000, "dev": 200}}
}

// DemoTarget uses syllables disjoint from DemoSource's.
func DemoTarget() DemoSpec {
	return DemoSpec{Name: "demo-target", Seed: 20240602, Syllables: syllables("bdfgklmnprstvz", "aeiou"), WordSyllables: 3,
		Topics: 40, Concepts: 30, DocConcepts: 6, Docs: 2000, DocLen: 48, SynonymRate: 0.5,
		Splits: map[string]int{"test": 300}}
}

func syllables(consonants, vowels string) []string {
	var out []string
	for _, c := range consonants {
		for _, v := range vowels {
			out = append(out, string(c)+string(v))
		}
	}
	return out
}

type demoDoc struct {
	topic    int
	concepts []int // the concepts of its topic it uses
	prefer   []int // per concept of the topic: preferred form 0 or 1
	words    []string
}

// GenerateDemo writes spec as a BEIR directory at dir (corpus.jsonl,
// queries.jsonl, qrels/<split>.tsv), atomically. The same spec always gives
// the same files.
func GenerateDemo(dir string, spec DemoSpec) error {
	rng := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15))
	// concept[t][c][form] is a pseudo-word, unique in the domain.
	seen := map[string]bool{}
	for _, w := range functionWords {
		seen[w] = true
	}
	word := func() string {
		for {
			n := spec.WordSyllables
			var b strings.Builder
			for i := 0; i < n; i++ {
				b.WriteString(spec.Syllables[rng.IntN(len(spec.Syllables))])
			}
			if w := b.String(); !seen[w] {
				seen[w] = true
				return w
			}
		}
	}
	concept := make([][][2]string, spec.Topics)
	for t := range concept {
		concept[t] = make([][2]string, spec.Concepts)
		for c := range concept[t] {
			concept[t][c] = [2]string{word(), word()}
		}
	}
	docs := make([]demoDoc, spec.Docs)
	for i := range docs {
		d := demoDoc{topic: rng.IntN(spec.Topics), prefer: make([]int, spec.Concepts)}
		for c := range d.prefer {
			d.prefer[c] = rng.IntN(2)
		}
		d.concepts = rng.Perm(spec.Concepts)[:spec.DocConcepts]
		for len(d.words) < spec.DocLen {
			switch r := rng.Float64(); {
			case r < 0.40:
				d.words = append(d.words, functionWords[rng.IntN(len(functionWords))])
			case r < 0.85:
				c := d.concepts[rng.IntN(len(d.concepts))]
				form := d.prefer[c]
				if rng.Float64() < 0.15 { // the other form, now and then: co-occurrence to learn from
					form = 1 - form
				}
				d.words = append(d.words, concept[d.topic][c][form])
			default:
				t := rng.IntN(spec.Topics)
				d.words = append(d.words, concept[t][rng.IntN(spec.Concepts)][rng.IntN(2)])
			}
		}
		docs[i] = d
	}
	return atomicfile.Dir(dir, func(tmp string) error {
		if err := os.MkdirAll(filepath.Join(tmp, "qrels"), 0o755); err != nil {
			return err
		}
		if err := writeJSONL(filepath.Join(tmp, "corpus.jsonl"), len(docs), func(i int) any {
			return map[string]string{"_id": fmt.Sprintf("d%d", i), "title": "", "text": strings.Join(docs[i].words, " ")}
		}); err != nil {
			return err
		}
		type query struct{ id, text, doc string }
		var queries []query
		splits := sortedKeys(spec.Splits)
		for _, split := range splits {
			var rows []string
			for i := 0; i < spec.Splits[split]; i++ {
				di := rng.IntN(len(docs))
				d := docs[di]
				cs := append([]int(nil), d.concepts...)
				rng.Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
				n := min(len(cs), 3+rng.IntN(2))
				var q []string
				for _, c := range cs[:n] {
					form := d.prefer[c]
					if rng.Float64() < spec.SynonymRate {
						form = 1 - form
					}
					q = append(q, concept[d.topic][c][form])
				}
				id := fmt.Sprintf("%s-q%d", split, i)
				queries = append(queries, query{id, strings.Join(q, " "), fmt.Sprintf("d%d", di)})
				rows = append(rows, fmt.Sprintf("%s\td%d\t1", id, di))
			}
			err := atomicfile.Write(filepath.Join(tmp, "qrels", split+".tsv"), 0o644, func(w io.Writer) error {
				bw := bufio.NewWriter(w)
				fmt.Fprintln(bw, "query-id\tcorpus-id\tscore")
				for _, r := range rows {
					fmt.Fprintln(bw, r)
				}
				return bw.Flush()
			})
			if err != nil {
				return err
			}
		}
		return writeJSONL(filepath.Join(tmp, "queries.jsonl"), len(queries), func(i int) any {
			return map[string]string{"_id": queries[i].id, "text": queries[i].text}
		})
	})
}

func writeJSONL(path string, n int, rec func(i int) any) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for i := 0; i < n; i++ {
			if err := enc.Encode(rec(i)); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

// DemoConfig returns the settings of "spladapt demo": cfg with a tiny
// BERT (2 layers, hidden 64) and short runs, source and target set to the
// two demo collections, and the full continued-pretraining baseline on.
// cache_dir, threads and progress are kept from cfg.
func DemoConfig(cfg config.Config, source, target string) config.Config {
	d := config.Default()
	d.CacheDir, d.Threads, d.Progress, d.SkipInvalid = cfg.CacheDir, cfg.Threads, cfg.Progress, cfg.SkipInvalid
	p := &d.Pretrain
	p.Layers, p.Hidden, p.Heads, p.FF, p.MaxPositions = 4, 64, 2, 256, 128
	p.VocabSize, p.SeqLen, p.BatchSize = 3000, 64, 32
	p.Steps, p.LR, p.WarmupSteps = 400, 2e-3, 40
	p.EvalEvery, p.CheckpointEvery, p.HeldoutEvery, p.HeldoutMax = 100, 100, 20, 0
	p.Init, p.CopyProb = "lexical", 0.15
	s := &d.Splade
	s.Steps, s.BatchSize, s.LR, s.WarmupSteps = 300, 32, 5e-4, 30
	s.LambdaD, s.LambdaQ, s.LambdaWarmupSteps = 1e-3, 1e-3, 100
	s.EvalEvery, s.CheckpointEvery, s.MineNegatives, s.MineDepth = 100, 100, 4, 30
	s.QueryEncoder = "idf"
	// Documents at up to 128 tokens: the target's three-syllable words cut
	// into two or three pieces make its 48-word documents 100–150 tokens, so
	// 64 (the MLM sequence length) would drop half of each target document
	// that BM25 sees whole.
	d.Model.MaxLength, d.Model.QueryMaxLength = 128, 16
	d.Adapt.Source, d.Adapt.Dev = []string{source}, []string{source}
	d.Adapt.Targets = []string{target}
	d.Adapt.TargetMLMSteps, d.Adapt.MLMLR = 200, 2e-4
	// Full continued pretraining for the perplexity comparison; its SPLADE
	// baseline (adapt.full_baseline: a second SPLADE training, a third of
	// the demo's time) is left out to keep the demo within three minutes.
	d.Adapt.FullMLM = true
	return d
}

// WriteDemoVerdict reads the demo run's summary (summary.json in
// summaryDir) and writes what the demo shows, in words, with its numbers:
// whether the zero-shot model is competent (at least half of BM25's
// nDCG@10), the adapted − zero-shot difference and its Holm-adjusted
// paired test, and what the toy can and cannot demonstrate.
func WriteDemoVerdict(w io.Writer, summaryDir string) error {
	raw, err := os.ReadFile(filepath.Join(summaryDir, "summary.json"))
	if err != nil {
		return err
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(summaryDir, "summary.json"), err)
	}
	rows := s.Rows["nDCG@10"]
	if len(rows) != 1 {
		return fmt.Errorf("demo summary: %d nDCG@10 rows, want 1", len(rows))
	}
	r := rows[0]
	bm, zs, ad := r.Means["bm25"], r.Means[SysZeroShot], r.Means[SysAdapted]
	fmt.Fprintf(w, "\n## What this demo shows\n\n")
	comp := "competent"
	if zs < bm/2 {
		comp = "below half of BM25, so not yet competent"
	}
	fmt.Fprintf(w, "- The zero-shot SPLADE model reaches nDCG@10 %.3f on the target, %.0f%% of BM25's %.3f: %s.\n", zs, 100*zs/bm, bm, comp)
	verdict := "not significantly"
	if float64(r.PHolm) < 0.05 {
		verdict = "significantly (Holm-adjusted paired t-test p < 0.05)"
	}
	dir := "helps"
	if r.Delta < 0 {
		dir = "hurts"
	}
	fmt.Fprintf(w, "- Swapping in P_domain(target) %s: adapted %.3f, Δ %+.3f, %s.\n", dir, ad, float64(r.Delta), verdict)
	if ppl := s.Perplexity[r.Target]; ppl != nil {
		fmt.Fprintf(w, "- Target MLM of P_domain alone lowers the target's held-out perplexity from %.0f to %.0f.\n", ppl["source-mlm"], ppl["target-mlm"])
	}
	fmt.Fprintf(w, "- The data are synthetic and built for the mechanism: the target's words never occur in the source,\n"+
		"  and queries use synonyms that only the target corpus shows together, which P_domain(target) learns\n"+
		"  by MLM and the document encoder then expands to. It does not show that the method helps on real\n"+
		"  collections; docs/experiments.md has the measurements on the shared data.\n")
	return nil
}
