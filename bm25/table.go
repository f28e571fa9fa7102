package bm25

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
)

// TableMeasures are the measures of the baseline table, in ir_measures
// names: trec_eval's ndcg_cut.10, recall.100 and map, evaluated with -c.
var TableMeasures = []string{"nDCG@10", "R@100", "AP"}

// Row is one collection's baseline result.
type Row struct {
	Name    string
	Split   string    // "test", or "dev" when there is no test split
	Docs    int64     // documents indexed
	Queries int       // judged queries of Split (all are searched and averaged)
	Values  []float64 // parallel to TableMeasures
	Run     corpora.Run
	Index   time.Duration // build time
	Search  time.Duration // time to search every query
}

// TableOptions control EvaluateCollection.
type TableOptions struct {
	K        int    // hits per query
	Params   Params // k1, b
	Workers  int    // search goroutines
	IndexDir string // where the collection's index is built (replaced)
	Corpora  corpora.Options
	Progress func(stage string, n int) // optional: "index" docs so far, "search" queries so far
}

// Split returns the split a collection is evaluated on: "test" when the
// BEIR directory has test qrels, else "dev", else "".
func Split(b corpora.BEIR) string {
	for _, s := range []string{"test", "dev"} {
		if b.HasQrels(s) {
			return s
		}
	}
	return ""
}

// EvaluateCollection builds a BM25 index of the BEIR collection in dir (at
// o.IndexDir), searches every query judged in its Split, and evaluates the
// run with trec_eval -c semantics (a judged query without hits counts 0).
func EvaluateCollection(dir string, o TableOptions) (Row, error) {
	b := corpora.BEIR{Dir: dir}
	row := Row{Name: filepath.Base(dir), Split: Split(b)}
	if row.Split == "" {
		return row, fmt.Errorf("evaluate %s: no qrels/test.tsv or qrels/dev.tsv", dir)
	}
	qrels, queries, err := b.Judged(row.Split, o.Corpora)
	if err != nil {
		return row, err
	}
	if len(queries) != len(qrels) {
		return row, fmt.Errorf("evaluate %s: %d queries judged in split %s, %d of them in queries.jsonl", dir, len(qrels), row.Split, len(queries))
	}
	row.Queries = len(queries)
	progress := func(stage string) func(int) {
		if o.Progress == nil {
			return nil
		}
		return func(n int) { o.Progress(stage, n) }
	}

	start := time.Now()
	meta, err := BuildCorpus(o.IndexDir, dir, o.Corpora, progress("index"))
	if err != nil {
		return row, err
	}
	row.Docs, row.Index = meta.Docs, time.Since(start)

	x, err := Open(o.IndexDir)
	if err != nil {
		return row, err
	}
	defer x.Close()
	start = time.Now()
	var done func()
	if p := progress("search"); p != nil {
		n := 0
		ch := make(chan struct{}, 1)
		done = func() { ch <- struct{}{}; n++; p(n); <-ch }
	}
	row.Run, err = x.SearchAll(queries, SearchOptions{K: o.K, Params: o.Params, Workers: o.Workers, Done: done})
	if err != nil {
		return row, fmt.Errorf("search %s: %w", dir, err)
	}
	row.Search = time.Since(start)

	ms := make([]eval.Measure, len(TableMeasures))
	for i, name := range TableMeasures {
		if ms[i], err = eval.ParseMeasure(name); err != nil {
			return row, err
		}
	}
	res, err := eval.Evaluate(qrels, row.Run, ms, eval.Options{AllQueries: true})
	if err != nil {
		return row, fmt.Errorf("evaluate %s: %w", dir, err)
	}
	row.Values = res.All
	return row, nil
}

// Collections lists the BEIR collections (directories with a corpus and
// test or dev qrels) directly under data, sorted by name.
func Collections(data string) ([]string, error) {
	entries, err := os.ReadDir(data)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	var out []string
	for _, e := range entries {
		dir := filepath.Join(data, e.Name())
		if e.IsDir() && corpora.IsBEIR(dir) && Split(corpora.BEIR{Dir: dir}) != "" {
			out = append(out, dir)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("list collections: no BEIR collection with test or dev qrels in %s", data)
	}
	return out, nil
}

// WriteTable writes rows as a Markdown table, one row per collection,
// values to 4 decimals, after a line stating the settings.
func WriteTable(w io.Writer, rows []Row, p Params, k int) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "BM25 (bleve %q analyzer, k1 %g, b %g, top %d; trec_eval -c: ndcg_cut.10, recall.100, map)\n\n", Analyzer, p.K1, p.B, k)
	sb.WriteString("| collection | split | docs | queries |")
	for _, m := range TableMeasures {
		name := m
		if m == "AP" {
			name = "MAP"
		}
		sb.WriteString(" " + name + " |")
	}
	sb.WriteString("\n|---|---|---:|---:|")
	sb.WriteString(strings.Repeat("---:|", len(TableMeasures)))
	sb.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| `%s` | %s | %d | %d |", r.Name, r.Split, r.Docs, r.Queries)
		for _, v := range r.Values {
			fmt.Fprintf(&sb, " %.4f |", v)
		}
		sb.WriteString("\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
