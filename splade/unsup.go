package splade

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
)

// Unsupervised training pairs from an unlabeled corpus: the inverse cloze
// task (Lee et al., ACL 2019). One sentence of a document is the query;
// the document without that sentence is the positive (with probability
// KeepProb the sentence stays, so that exact matches are not unlearned);
// BM25 over the same corpus, queried with the sentence, gives the hard
// negatives (the source document excluded).

// ICTOptions configure ICTPairs.
type ICTOptions struct {
	// MaxPairs caps the pairs (documents are visited in a seeded random
	// order); 0 takes one pair from every eligible document.
	MaxPairs int
	// KeepProb is the share of positives that keep the query sentence
	// (0.1 in Lee et al.).
	KeepProb float64
	// MinWords and MaxWords bound a query sentence's length in words
	// (defaults 5 and 40); a document needs at least three sentences.
	MinWords, MaxWords int
	Seed               uint64
	// Exclude are texts (test queries) that no generated query may equal
	// or contain, compared lowercased with whitespace collapsed: a pair
	// built from a sentence that holds a test query is dropped, so that
	// training never sees it.
	Exclude []string
}

// ICTSet is a set of generated pairs: queries, the qrels that make each
// query's source document its positive, and the positives' texts (the
// document without the sentence) under their own ids (PositiveID).
type ICTSet struct {
	Queries   []corpora.Query
	Qrels     corpora.Qrels     // qid → {source doc id: 1}
	Positives map[string]string // PositiveID(doc id) → text without the query sentence
	Excluded  int               // pairs dropped because the sentence held an excluded text
}

// PositiveID is the id under which a document's ICT positive text is kept,
// apart from its full text (which may be another pair's negative).
func PositiveID(docID string) string { return docID + "\x01ict" }

var sentenceEnd = regexp.MustCompile(`[.!?]["')\]]?\s+`)

// splitSentences cuts text after ., ! or ? (optionally closed by a quote
// or bracket) followed by white space.
func splitSentences(text string) []string {
	var out []string
	last := 0
	for _, loc := range sentenceEnd.FindAllStringIndex(text, -1) {
		if s := strings.TrimSpace(text[last:loc[1]]); s != "" {
			out = append(out, s)
		}
		last = loc[1]
	}
	if s := strings.TrimSpace(text[last:]); s != "" {
		out = append(out, s)
	}
	return out
}

func normText(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// ICTPairs draws one (sentence, rest of the document) pair from each
// eligible document, in a seeded random order, up to MaxPairs. Query ids
// are "ict-<doc id>". Cost: O(corpus text).
func ICTPairs(docs []corpora.Doc, opt ICTOptions) *ICTSet {
	if opt.MinWords <= 0 {
		opt.MinWords = 5
	}
	if opt.MaxWords <= 0 {
		opt.MaxWords = 40
	}
	var exclude []string
	for _, e := range opt.Exclude {
		if n := normText(e); n != "" {
			exclude = append(exclude, n)
		}
	}
	set := &ICTSet{Qrels: corpora.Qrels{}, Positives: map[string]string{}}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x1c7))
	for _, i := range rng.Perm(len(docs)) {
		if opt.MaxPairs > 0 && len(set.Queries) >= opt.MaxPairs {
			break
		}
		d := docs[i]
		sents := splitSentences(d.Text)
		if len(sents) < 3 {
			continue
		}
		var cand []int
		for k, s := range sents {
			if n := len(strings.Fields(s)); n >= opt.MinWords && n <= opt.MaxWords {
				cand = append(cand, k)
			}
		}
		if len(cand) == 0 {
			continue
		}
		k := cand[rng.IntN(len(cand))]
		q := sents[k]
		nq := normText(q)
		leak := false
		for _, e := range exclude {
			if strings.Contains(nq, e) {
				leak = true
				break
			}
		}
		keep := rng.Float64() < opt.KeepProb
		if leak {
			set.Excluded++
			continue
		}
		rest := make([]string, 0, len(sents))
		for j, s := range sents {
			if j != k || keep {
				rest = append(rest, s)
			}
		}
		pos := strings.Join(rest, " ")
		if d.Title != "" {
			pos = d.Title + " " + pos
		}
		qid := "ict-" + d.ID
		set.Queries = append(set.Queries, corpora.Query{ID: qid, Text: q})
		set.Qrels[qid] = map[string]int{d.ID: 1}
		set.Positives[PositiveID(d.ID)] = pos
	}
	return set
}

// UnsupSource builds a training source of ICT pairs from the corpus at dir
// (a BEIR directory or anything corpora.OpenCorpus reads): mo.UnsupPairs
// pairs, BM25 hard negatives (mo.K1, mo.B; mo.Negatives from the top
// mo.Depth) from an index cached under cache. Every query
// of every BEIR directory in exclude (and of dir itself when it has
// queries.jsonl) is excluded from the generated queries.
func UnsupSource(ctx context.Context, mo Mining, dir string, exclude []string, cache string, opts corpora.Options, log io.Writer) (Source, error) {
	fail := func(err error) (Source, error) {
		return Source{}, fmt.Errorf("unsupervised pairs from %s: %w", dir, err)
	}
	docs, err := corpora.ReadDocs([]string{dir}, opts)
	if err != nil {
		return fail(err)
	}
	var excl []string
	for _, e := range append([]string{dir}, exclude...) {
		qs, err := (corpora.BEIR{Dir: e}).Queries(opts)
		if err != nil {
			if e == dir {
				continue // a plain corpus without queries
			}
			return fail(err)
		}
		for _, q := range qs {
			excl = append(excl, q.Text)
		}
	}
	set := ICTPairs(docs, ICTOptions{MaxPairs: mo.UnsupPairs, KeepProb: 0.1, Seed: mo.Seed, Exclude: excl})
	idxDir := filepath.Join(cache, "bm25")
	if _, err := bm25.ReadMeta(idxDir); err != nil {
		fmt.Fprintf(log, "%s: building the BM25 index for negative mining\n", dir)
		if _, err := bm25.BuildCorpus(idxDir, dir, opts, nil); err != nil {
			return fail(err)
		}
	}
	idx, err := bm25.Open(idxDir)
	if err != nil {
		return fail(err)
	}
	defer idx.Close()
	s, err := idx.NewSearcher(bm25.Params{K1: mo.K1, B: mo.B})
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	ids := make(map[string]bool, len(docs))
	for _, d := range docs {
		ids[d.ID] = true
	}
	var st MineStats
	ts, err := MineNegatives(ctx, set.Queries, set.Qrels, func(id string) bool { return ids[id] }, s,
		mo.Negatives, mo.Depth, mo.Seed, MineOptions{Stats: &st})
	if err != nil {
		return fail(err)
	}
	texts := &Texts{Queries: map[string]string{}, Docs: map[string]string{}}
	for _, q := range set.Queries {
		texts.Queries[q.ID] = q.Text
	}
	need := map[string]bool{}
	for i := range ts {
		ts[i].PosID = PositiveID(ts[i].PosID)
		texts.Docs[ts[i].PosID] = set.Positives[ts[i].PosID]
		for _, n := range ts[i].NegIDs {
			need[n] = true
		}
	}
	for _, d := range docs {
		if need[d.ID] {
			texts.Docs[d.ID] = d.Content()
		}
	}
	fmt.Fprintf(log, "%s: %d unsupervised (inverse cloze) pairs, %d triples with BM25 negatives; %d sentences dropped as holding a test query\n",
		dir, len(set.Queries), len(ts), set.Excluded)
	return Source{Name: filepath.Base(filepath.Clean(dir)) + "/ict", Triples: ts, Texts: texts}, nil
}
