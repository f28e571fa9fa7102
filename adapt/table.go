package adapt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/splade"
)

// TableRow is one collection of the SPLADE table ("spladapt splade
// table"): BM25, SPLADE and their reciprocal rank fusion on the
// collection's test (else dev) split.
type TableRow struct {
	Name    string             `json:"name"`
	Split   string             `json:"split"`
	Docs    int                `json:"docs"`
	Queries int                `json:"queries"`
	BM25    map[string]float64 `json:"bm25"`
	Splade  map[string]float64 `json:"splade"`
	Fused   map[string]float64 `json:"fused"`
	// Reranked is the fused run's top TableOptions.RerankDepth re-scored by
	// TableOptions.Rerank (absent without a re-ranker).
	Reranked map[string]float64 `json:"reranked,omitempty"`
	NNZDoc   float64            `json:"nnz_doc"`
	NNZQuery float64            `json:"nnz_query"`
	Encode   *EncodeStats       `json:"encode"`
}

// TableMeasures are the table's measures (trec_eval -c).
var TableMeasures = []string{"nDCG@10", "R@100"}

// TableOptions configure Table.
type TableOptions struct {
	// Config supplies bm25.{k1,b,depth}, index.{depth,algorithm,quant_bits,
	// block_size}, splade.shard_size, the threads and progress.
	Config config.Config
	Model  string // the checkpoint enc was loaded from (its fingerprint)
	Work   string // WORK/<name>/ holds each collection's indexes and runs
	RRFK   int    // k of the reciprocal rank fusion
	Corpus corpora.Options
	Log    io.Writer // collection names and progress bars; nil: none
	// Rerank, when not nil, re-scores the top RerankDepth hits of the
	// fused run (the best first stage here) into a fourth run,
	// reranked.trec: the two-stage pipeline of a cross-encoder or MICE
	// model (package rerank).
	Rerank      rerank.Scorer
	RerankDepth int
}

// Table evaluates the SPLADE encoder enc next to BM25 and their fusion on
// each BEIR collection of dirs, in order, and writes WORK/table.json. For
// a collection NAME, WORK/NAME holds the BM25 index (bm25/, rebuilt), the
// SPLADE index (splade/ with encode.json: reused when built by the same
// model at the same model.max_length and splade.top_n, else encoded again,
// resumably) and the three runs
// {bm25,splade,fused}.trec.
func Table(ctx context.Context, enc *splade.Encoder, dirs []string, o TableOptions) ([]TableRow, error) {
	var rows []TableRow
	for _, dir := range dirs {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "%s\n", filepath.Base(dir))
		}
		row, err := tableRow(ctx, enc, dir, filepath.Join(o.Work, filepath.Base(dir)), o)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	raw, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(o.Work, "table.json"), append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return rows, nil
}

// tableRow fills one row, with dir's indexes and runs under work.
func tableRow(ctx context.Context, enc *splade.Encoder, dir, work string, o TableOptions) (TableRow, error) {
	cfg := o.Config
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	b := corpora.BEIR{Dir: dir}
	row := TableRow{Name: filepath.Base(dir), Split: bm25.Split(b)}
	ms, err := eval.ParseMeasures(TableMeasures...)
	if err != nil {
		return row, err
	}
	bm, err := bm25.EvaluateCollection(dir, bm25.TableOptions{K: cfg.BM25.Depth, Params: bm25.Params{K1: cfg.BM25.K1, B: cfg.BM25.B},
		Workers: cfg.NumThreads(), IndexDir: filepath.Join(work, "bm25"), Corpora: o.Corpus})
	if err != nil {
		return row, err
	}
	row.Docs, row.Queries = int(bm.Docs), bm.Queries
	qrels, err := b.Qrels(row.Split)
	if err != nil {
		return row, err
	}
	evalRun := func(run corpora.Run) (map[string]float64, error) {
		res, err := eval.Evaluate(qrels, run, ms, eval.Options{AllQueries: true, Workers: cfg.NumThreads()})
		if err != nil {
			return nil, err
		}
		out := map[string]float64{}
		for i, m := range ms {
			out[m.Name()] = res.All[i]
		}
		return out, nil
	}
	if row.BM25, err = evalRun(bm.Run); err != nil {
		return row, err
	}

	// SPLADE index: reused when built by this model, else (re)encoded.
	idxDir := filepath.Join(work, "splade")
	statsPath := filepath.Join(work, "encode.json")
	fp := splade.Fingerprint(enc, o.Model)
	var st EncodeStats
	reuse := false
	if r, err := index.Open(idxDir); err == nil {
		raw, rerr := os.ReadFile(statsPath)
		reuse = r.Meta().Fingerprint == fp && rerr == nil && json.Unmarshal(raw, &st) == nil &&
			st.MaxLength == enc.MaxLen && st.TopN == enc.TopN // an index of other settings is encoded again
		r.Close()
		if _, err := os.Stat(filepath.Join(idxDir, splade.IDFFile)); enc.QueryWeights != nil && err != nil {
			reuse = false // encoded before indexes held their corpus's IDF
		}
	}
	if !reuse {
		total, _ := corpora.CountDocs(dir)
		bar := progress.New(log, progress.Enabled(cfg.Progress), "encode "+row.Name, "docs", int64(total))
		last := 0
		s, err := EncodeCorpus(ctx, enc, dir, idxDir, EncodeCorpusOptions{
			ShardSize: cfg.Splade.ShardSize, Fingerprint: fp, Corpus: o.Corpus,
			Index:    index.Options{Workers: cfg.NumThreads(), QuantBits: cfg.Index.QuantBits, BlockSize: cfg.Index.BlockSize},
			Progress: func(n int) { bar.Add(int64(n - last)); last = n },
		})
		bar.Done()
		if err != nil {
			return row, err
		}
		st = *s
		raw, _ := json.MarshalIndent(st, "", "  ")
		if err := atomicfile.WriteFile(statsPath, append(raw, '\n'), 0o644); err != nil {
			return row, err
		}
	}
	row.Encode, row.NNZDoc = &st, st.MeanNNZ

	alg, err := index.ParseAlgorithm(cfg.Index.Algorithm)
	if err != nil {
		return row, err
	}
	all, err := b.Queries(o.Corpus)
	if err != nil {
		return row, err
	}
	run, nnzq, err := searchSplade(enc, idxDir, qrels.Judged(all), cfg.Index.Depth, alg, cfg.Splade.QueryIDF)
	if err != nil {
		return row, fmt.Errorf("search %s: %w", row.Name, err)
	}
	row.NNZQuery = nnzq
	if row.Splade, err = evalRun(run); err != nil {
		return row, err
	}
	fused, err := eval.Fuse([]corpora.Run{bm.Run, run}, eval.FuseOptions{Method: eval.FuseRRF, RRFK: o.RRFK, Depth: cfg.Index.Depth})
	if err != nil {
		return row, err
	}
	if row.Fused, err = evalRun(fused); err != nil {
		return row, err
	}
	runs := map[string]corpora.Run{"bm25": bm.Run, "splade": run, "fused": fused}
	if o.Rerank != nil {
		rrs, err := rerankRuns(o.Rerank, dir, all, []corpora.Run{fused}, o.RerankDepth, o.Corpus, nil)
		if err != nil {
			return row, fmt.Errorf("re-rank %s: %w", row.Name, err)
		}
		rr := rrs[0]
		if row.Reranked, err = evalRun(rr); err != nil {
			return row, err
		}
		runs["reranked"] = rr
	}
	for name, rn := range runs {
		if err := atomicfile.Write(filepath.Join(work, name+".trec"), 0o644, func(w io.Writer) error {
			return corpora.WriteRun(w, rn, name)
		}); err != nil {
			return row, err
		}
	}
	return row, nil
}

// rerankRuns re-scores the top depth hits of each query of every run with
// s (rerank.Rerank, run by run, in order) and returns the re-ranked runs,
// parallel to runs. The texts of the documents re-scored are read from the
// corpus at dir once for all runs; queries must hold the text of every
// query of the runs. progress, when not nil, counts the pairs scored.
// Cost: one forward pass per pair, Σ over runs and queries of
// min(depth, hits); reading the corpus once.
func rerankRuns(s rerank.Scorer, dir string, queries []corpora.Query, runs []corpora.Run, depth int, opts corpora.Options, progress func(n int)) ([]corpora.Run, error) {
	qtext := make(map[string]string, len(queries))
	for _, q := range queries {
		qtext[q.ID] = q.Text
	}
	need := map[string]bool{}
	for _, run := range runs {
		for _, hits := range run {
			for _, h := range rerank.TopHits(hits, depth) {
				need[h.DocID] = true
			}
		}
	}
	docs, err := rerank.DocTexts(dir, need, opts)
	if err != nil {
		return nil, err
	}
	out := make([]corpora.Run, len(runs))
	for i, run := range runs {
		if out[i], err = rerank.Rerank(s, qtext, docs, run, depth, progress); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rerankPairs is the number of pairs rerankRuns scores: Σ over runs and
// queries of min(depth, hits).
func rerankPairs(runs []corpora.Run, depth int) int {
	n := 0
	for _, run := range runs {
		for _, hits := range run {
			n += min(depth, len(hits))
		}
	}
	return n
}

// WriteTable renders the rows as a Markdown table with a mean row; the
// re-ranked columns appear when the rows have them.
func WriteTable(w io.Writer, rows []TableRow, model string, rrfK int) {
	rr := len(rows) > 0 && rows[0].Reranked != nil
	fmt.Fprintf(w, "SPLADE model `%s`; trec_eval -c; fusion: RRF k=%d of BM25 and SPLADE", model, rrfK)
	if rr {
		fmt.Fprint(w, "; re-ranked: the RRF run's top hits re-scored by the re-ranker")
	}
	fmt.Fprint(w, ".\n\n| collection | split | docs | queries | BM25 nDCG@10 | BM25 R@100 | SPLADE nDCG@10 | SPLADE R@100 | RRF nDCG@10 | RRF R@100 |")
	if rr {
		fmt.Fprint(w, " re-ranked nDCG@10 | re-ranked R@100 |")
	}
	fmt.Fprint(w, " nnz/doc | nnz/query | index MiB | docs/s | tokens/s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	if rr {
		fmt.Fprint(w, "---:|---:|")
	}
	fmt.Fprintln(w, "---:|---:|---:|---:|---:|")
	nv := 6
	if rr {
		nv = 8
	}
	sum := make([]float64, nv)
	for _, r := range rows {
		v := []float64{r.BM25["nDCG@10"], r.BM25["R@100"], r.Splade["nDCG@10"], r.Splade["R@100"], r.Fused["nDCG@10"], r.Fused["R@100"]}
		if rr {
			v = append(v, r.Reranked["nDCG@10"], r.Reranked["R@100"])
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d |", r.Name, r.Split, r.Docs, r.Queries)
		for i := range v {
			sum[i] += v[i]
			fmt.Fprintf(w, " %.4f |", v[i])
		}
		fmt.Fprintf(w, " %.1f | %.1f | %.2f | %.0f | %.0f |\n", r.NNZDoc, r.NNZQuery,
			float64(r.Encode.IndexBytes)/(1<<20), r.Encode.DocsPerSec, r.Encode.TokensPerSec)
	}
	n := float64(len(rows))
	fmt.Fprint(w, "| mean | | | |")
	for i := range sum {
		fmt.Fprintf(w, " %.4f |", sum[i]/n)
	}
	fmt.Fprintln(w, " | | | | |")
}
