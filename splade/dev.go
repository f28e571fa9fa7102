package splade

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/sparse"
)

// Dev evaluation: model selection during training encodes each dev set's
// corpus and queries as the model will be deployed and searches them
// exactly (sparse.Exact).

// DevSet is a held-out collection for model selection: the whole corpus is
// encoded and every judged query searched exactly.
type DevSet struct {
	Name    string
	DocIDs  []string
	Docs    []string // texts, parallel to DocIDs
	Queries []corpora.Query
	Qrels   corpora.Qrels
}

// LoadDevSet reads a BEIR directory's corpus and the queries judged in
// qrels/<split>.tsv.
func LoadDevSet(dir, split string, opts corpora.Options) (*DevSet, error) {
	b := corpora.BEIR{Dir: dir}
	qrels, judged, err := b.Judged(split, opts)
	if err != nil {
		return nil, fmt.Errorf("load dev set: %w", err)
	}
	d := &DevSet{Name: filepath.Base(filepath.Clean(dir)) + "/" + split, Qrels: qrels, Queries: judged}
	if len(d.Queries) == 0 {
		return nil, fmt.Errorf("load dev set %s: no query of queries.jsonl is judged in split %q", dir, split)
	}
	r, err := b.Corpus(opts)
	if err != nil {
		return nil, fmt.Errorf("load dev set: %w", err)
	}
	defer r.Close()
	for {
		doc, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load dev set: %w", err)
		}
		d.DocIDs = append(d.DocIDs, doc.ID)
		d.Docs = append(d.Docs, doc.Content())
	}
	return d, nil
}

// DevMeasures are the measures reported on dev sets; the first selects
// the best checkpoint (mean over dev sets). Evaluate also reports each dev
// set's VectorStats ("<name> nnz_d", "nnz_q", "own_share", "top20_share",
// "cosine"), computed with DevTopN.
var DevMeasures = []string{"nDCG@10", "RR@10", "R@100"}

// DevTopN caps the non-zeros of each dev-set vector during training-time
// evaluation, so that memory stays bounded (8 bytes per posting) while the
// vectors are still dense early in training; once the regulariser has made
// them sparse (typically tens to hundreds of non-zeros) it changes nothing.
const DevTopN = 1024

// Evaluate encodes every dev set with the current weights (documents at
// Opt.DevDocMaxLen, queries at QueryMaxLen, at most Opt.DevTopN and
// DevTopN weights), retrieves the top
// EvalDepth documents of each query exactly, and returns each measure of
// DevMeasures per dev set ("<name> nDCG@10") and their mean over dev sets
// ("nDCG@10"), trec_eval -c semantics.
func (t *Trainer) Evaluate() (map[string]float64, error) {
	maxLen, topN := t.Opt.DocMaxLen, DevTopN
	if t.Opt.DevDocMaxLen > 0 {
		maxLen = min(t.Opt.DevDocMaxLen, t.Model.Config.MaxPositions)
	}
	if t.Opt.DevTopN > 0 {
		topN = min(topN, t.Opt.DevTopN)
	}
	enc := &Encoder{Model: t.Model, Tok: t.Tok, MaxLen: maxLen, QueryMaxLen: t.Opt.QueryMaxLen, BatchSize: t.Opt.EncodeBatch, TopN: topN,
		QueryWeights: t.QueryWeights}
	ms, err := eval.ParseMeasures(DevMeasures...)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, d := range t.dev {
		res, vs, err := evaluateDev(enc, d, ms, t.Opt.EvalDepth)
		if err != nil {
			return nil, err
		}
		for i, m := range ms {
			out[d.Name+" "+m.Name()] = res.All[i]
			out[m.Name()] += res.All[i] / float64(len(t.dev))
		}
		for k, v := range map[string]float64{"nnz_d": vs.NNZDoc, "nnz_q": vs.NNZQuery, "own_share": vs.OwnShare,
			"top20_share": vs.Top20Share, "cosine": vs.MeanCosine} {
			out[d.Name+" "+k] = v
		}
	}
	return out, nil
}

// EvaluateDev encodes a dev set with enc, retrieves the top depth
// documents of each query by exact sparse dot products and evaluates them
// with trec_eval -c semantics. Documents are encoded in chunks and only
// their postings are kept (8 bytes each).
func EvaluateDev(enc *Encoder, d *DevSet, ms []eval.Measure, depth int) (*eval.Results, error) {
	res, _, err := evaluateDev(enc, d, ms, depth)
	return res, err
}

func evaluateDev(enc *Encoder, d *DevSet, ms []eval.Measure, depth int) (*eval.Results, VectorStats, error) {
	ix := sparse.NewExact(nil, enc.VocabSize())
	var acc vectorStatsAcc
	const chunk = 4096
	for lo := 0; lo < len(d.Docs); lo += chunk {
		texts := d.Docs[lo:min(lo+chunk, len(d.Docs))]
		docs, err := enc.EncodeDocs(texts)
		if err != nil {
			return nil, VectorStats{}, fmt.Errorf("evaluate %s: %w", d.Name, err)
		}
		ix.Add(docs)
		encs := enc.Tok.EncodeBatch(texts, enc.MaxLen)
		for i, v := range docs {
			acc.addDoc(v, encs[i].IDs)
		}
	}
	texts := make([]string, len(d.Queries))
	for i, q := range d.Queries {
		texts[i] = q.Text
	}
	qs, err := enc.EncodeQueries(texts)
	if err != nil {
		return nil, VectorStats{}, fmt.Errorf("evaluate %s: %w", d.Name, err)
	}
	run := corpora.Run{}
	for i, q := range d.Queries {
		acc.addQuery(qs[i])
		var hits []corpora.Hit
		for r, h := range ix.Search(qs[i], depth) {
			hits = append(hits, corpora.Hit{DocID: d.DocIDs[h.Doc], Score: h.Score, Rank: r + 1})
		}
		run[q.ID] = hits
	}
	res, err := eval.Evaluate(d.Qrels, run, ms, eval.Options{AllQueries: true})
	if err != nil {
		return nil, VectorStats{}, fmt.Errorf("evaluate %s: %w", d.Name, err)
	}
	return res, acc.stats(), nil
}

// VectorStats describe a set of document vectors, to tell term matching
// from a collapsed or dense-like code during training:
//
//	NNZDoc, NNZQuery  mean non-zeros per document and per query vector
//	OwnShare   Σ weight on tokens that occur in the document's own (truncated)
//	           text / Σ weight, over all documents: 1 for a bag of its own
//	           words, near 0 for a code that ignores the text's tokens
//	Top20Share Σ weight on the 20 terms with the largest total weight /
//	           Σ weight: near 1 when every document is the same few terms
//	MeanCosine mean cosine between consecutive documents' vectors (d_i,
//	           d_{i+1}): near 1 when the vectors are input-independent
type VectorStats struct {
	NNZDoc, NNZQuery, OwnShare, Top20Share, MeanCosine float64
}

type vectorStatsAcc struct {
	docs, queries int
	nnzD, nnzQ    int
	own, total    float64
	cosSum        float64
	cosN          int
	prev          []sparse.TermWeight
	termTotal     map[uint32]float64
}

func (a *vectorStatsAcc) addDoc(v []sparse.TermWeight, ids []int32) {
	if a.termTotal == nil {
		a.termTotal = map[uint32]float64{}
	}
	a.docs++
	a.nnzD += len(v)
	in := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		in[uint32(id)] = true
	}
	for _, tw := range v {
		w := float64(tw.Weight)
		a.total += w
		a.termTotal[tw.Term] += w
		if in[tw.Term] {
			a.own += w
		}
	}
	if a.prev != nil {
		a.cosSum += cosine(a.prev, v)
		a.cosN++
	}
	a.prev = v
}

func (a *vectorStatsAcc) addQuery(v []sparse.TermWeight) {
	a.queries++
	a.nnzQ += len(v)
}

func (a *vectorStatsAcc) stats() VectorStats {
	var s VectorStats
	if a.docs > 0 {
		s.NNZDoc = float64(a.nnzD) / float64(a.docs)
	}
	if a.queries > 0 {
		s.NNZQuery = float64(a.nnzQ) / float64(a.queries)
	}
	if a.total > 0 {
		s.OwnShare = a.own / a.total
		tot := make([]float64, 0, len(a.termTotal))
		for _, w := range a.termTotal {
			tot = append(tot, w)
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(tot)))
		var top float64
		for _, w := range tot[:min(20, len(tot))] {
			top += w
		}
		s.Top20Share = top / a.total
	}
	if a.cosN > 0 {
		s.MeanCosine = a.cosSum / float64(a.cosN)
	}
	return s
}

// cosine of two term-sorted sparse vectors (0 when either is empty).
func cosine(a, b []sparse.TermWeight) float64 {
	var dot, na, nb float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Term < b[j].Term:
			i++
		case a[i].Term > b[j].Term:
			j++
		default:
			dot += float64(a[i].Weight) * float64(b[j].Weight)
			i++
			j++
		}
	}
	for _, x := range a {
		na += float64(x.Weight) * float64(x.Weight)
	}
	for _, x := range b {
		nb += float64(x.Weight) * float64(x.Weight)
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
