package index_test

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/simple"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/synth"
)

// The synthetic collection of the benchmarks and analyses:
// SPLADAPT_BENCH_SYNTH=topical selects synth.Topical (default: synth.Default,
// independent terms), and SPLADAPT_BENCH_ORDER=topic numbers the documents
// by main topic (the generator's, an ideal clustering) instead of in
// arrival order.
func benchGen(tb testing.TB) *synth.Gen {
	name := cmp.Or(os.Getenv("SPLADAPT_BENCH_SYNTH"), "independent")
	if name == "independent" && os.Getenv("SPLADAPT_BENCH_ORDER") == "topic" {
		tb.Fatal("SPLADAPT_BENCH_ORDER=topic needs SPLADAPT_BENCH_SYNTH=topical")
	}
	g, err := synth.Named(name)
	if err != nil {
		tb.Fatalf("SPLADAPT_BENCH_SYNTH: %v", err)
	}
	return g
}

// benchTag names the collection and order of benchGen in index
// fingerprints and cache directories ("" for the default).
func benchTag() string {
	tag := ""
	if v := os.Getenv("SPLADAPT_BENCH_SYNTH"); v != "" && v != "independent" {
		tag += "synth=" + v + ","
	}
	if v := os.Getenv("SPLADAPT_BENCH_ORDER"); v != "" && v != "arrival" {
		tag += "order=" + v + ","
	}
	return tag
}

// docOrder returns the order in which documents 0..n−1 of g get doc
// numbers: arrival order (nil), or by main topic with
// SPLADAPT_BENCH_ORDER=topic.
func docOrder(tb testing.TB, g *synth.Gen, n int) []int {
	switch v := os.Getenv("SPLADAPT_BENCH_ORDER"); v {
	case "", "arrival":
		return nil
	case "topic":
		return g.TopicOrder(n)
	default:
		tb.Fatalf("SPLADAPT_BENCH_ORDER=%q: want arrival or topic", v)
		return nil
	}
}

// buildSynth builds an index of n synthetic documents in dir and returns
// the build time (documents in docOrder; ids are the generator's numbers).
func buildSynth(tb testing.TB, g *synth.Gen, n, bits int, dir string) (*index.Reader, time.Duration) {
	tb.Helper()
	el, err := g.WriteIndex(dir, n, docOrder(tb, g, n), index.Options{QuantBits: bits,
		Fingerprint: "synth" + strings.TrimSuffix(","+benchTag(), ","), BlockSize: envInt("SPLADAPT_BENCH_BLOCK", 0)})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r, el
}

// cachedSynth returns the 8-bit synthetic index of n documents: opened
// from $SPLADAPT_BENCH_INDEX/<tag>docs=<n>,block=<R> when that holds a
// readable index of n documents (build time 0), else built there (or in a
// temporary directory when SPLADAPT_BENCH_INDEX is unset). A cached index
// of an older format fails to open and is rebuilt.
func cachedSynth(tb testing.TB, g *synth.Gen, n int) (*index.Reader, time.Duration) {
	tb.Helper()
	root := os.Getenv("SPLADAPT_BENCH_INDEX")
	if root == "" {
		return buildSynth(tb, g, n, 8, filepath.Join(tb.TempDir(), "idx"))
	}
	block := envInt("SPLADAPT_BENCH_BLOCK", index.DefaultBlockSize)
	dir := filepath.Join(root, fmt.Sprintf("%sdocs=%d,block=%d", benchTag(), n, block))
	fp := "synth" + strings.TrimSuffix(","+benchTag(), ",")
	if r, err := index.Open(dir); err == nil {
		if m := r.Meta(); m.NumDocs == n && m.Fingerprint == fp && m.QuantBits == 8 && m.BlockSize == block {
			tb.Logf("using the cached index %s (build time not measured)", dir)
			tb.Cleanup(func() { r.Close() })
			return r, 0
		}
		r.Close()
	}
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	return buildSynth(tb, g, n, 8, dir)
}

// synthQueries builds a synthetic index of n documents and prepares 100
// of the generator's queries on it.
func synthQueries(b *testing.B, n int) (*index.Reader, []*index.Query) {
	g := benchGen(b)
	r, _ := cachedSynth(b, g, n)
	qs := make([]*index.Query, 100)
	for i := range qs {
		q, err := r.Prepare(g.Query(i))
		if err != nil {
			b.Fatal(err)
		}
		qs[i] = q
	}
	return r, qs
}

// BenchmarkTopK: one query at a time on a synthetic collection
// (SPLADAPT_BENCH_DOCS documents, default 20 000).
//
//	go test ./index -run '^$' -bench TopK -benchtime 200x
func BenchmarkTopK(b *testing.B) {
	n := envInt("SPLADAPT_BENCH_DOCS", 20000)
	r, qs := synthQueries(b, n)
	for _, k := range []int{10, 1000} {
		for _, alg := range index.Algorithms {
			b.Run(fmt.Sprintf("alg=%v/k=%d/docs=%s", alg, k, short(n)), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := r.SearchPrepared(qs[i%len(qs)], k, alg); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkTAATAccumulator: TAAT top-10 with the 32-bit accumulator (the
// default when scores fit) against the 64-bit one, same queries, same
// process (SPLADAPT_BENCH_DOCS documents, default 20 000).
//
//	SPLADAPT_BENCH_DOCS=100000 go test ./index -run '^$' -bench TAATAccumulator -count 5
func BenchmarkTAATAccumulator(b *testing.B) {
	n := envInt("SPLADAPT_BENCH_DOCS", 20000)
	r, qs := synthQueries(b, n)
	for _, wide := range []bool{false, true} {
		name := map[bool]string{false: "32", true: "64"}[wide]
		b.Run(fmt.Sprintf("acc=%s/k=10/docs=%s", name, short(n)), func(b *testing.B) {
			b.ReportAllocs()
			s := &index.Scratch{}
			i := 0
			for b.Loop() {
				index.TAATWith(r, s, qs[i%len(qs)], 10, wide)
				i++
			}
		})
	}
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func short(n int) string {
	switch {
	case n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// BenchmarkBleve runs the queries of BenchmarkTopK on bleve v2 (scorch, in
// memory) holding the same documents (each term's token repeated 1+⌊2w⌋
// times), a query being the disjunction of its terms boosted by their
// weights. Run it with BenchmarkTopK in one process and compare as ratios
// (one thread, as docs/performance.md's tables):
//
//	SPLADAPT_BENCH_DOCS=100000 go test ./index -run '^$' -bench 'TopK|Bleve' -cpu 1 -benchtime 200x -timeout 60m
func BenchmarkBleve(b *testing.B) {
	n := envInt("SPLADAPT_BENCH_DOCS", 20000)
	g := benchGen(b)
	bi, _ := buildBleve(b, g, n)
	qs := make([]query.Query, 100)
	for i := range qs {
		qs[i] = bleveQuery(g.Query(i))
	}
	for _, k := range []int{10, 1000} {
		b.Run(fmt.Sprintf("k=%d/docs=%s", k, short(n)), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				res, err := bi.Search(bleve.NewSearchRequestOptions(qs[i%len(qs)], k, 0, false))
				if err != nil || len(res.Hits) == 0 {
					b.Fatalf("bleve query %d: %d hits, %v", i%len(qs), len(res.Hits), err)
				}
				i++
			}
		})
	}
}

// BenchmarkBuild builds the synthetic index (SPLADAPT_BENCH_DOCS
// documents, default 20 000; one builder goroutine) and reports its size
// per posting: doc ids, impacts (and their bit-packed width), the whole
// file, and the order-0 entropy of the impacts with one distribution per
// term and with one for the whole index (bits per posting).
//
//	SPLADAPT_BENCH_DOCS=100000 go test ./index -run '^$' -bench Build -benchtime 1x
func BenchmarkBuild(b *testing.B) {
	n := envInt("SPLADAPT_BENCH_DOCS", 20000)
	g := benchGen(b)
	order := docOrder(b, g, n)
	dir := filepath.Join(b.TempDir(), "idx")
	for b.Loop() {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if _, err := g.WriteIndex(dir, n, order, index.Options{Workers: 1, BlockSize: envInt("SPLADAPT_BENCH_BLOCK", 0)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	r, err := index.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ps := r.PostingSizes()
	P := float64(ps.Postings)
	b.ReportMetric(float64(ps.ArrayBytes+ps.BitmapBytes+ps.RoaringHeaders)/P, "id-B/posting")
	b.ReportMetric(float64(ps.ImpactData+ps.ImpactHeaders)/P, "impact-B/posting")
	b.ReportMetric(float64(ps.ImpactBits)/P, "impact-bits/posting")
	b.ReportMetric(float64(r.Size())/P, "file-B/posting")
	hTerm, hAll := index.ImpactEntropy(r)
	b.ReportMetric(hTerm, "H-term-bits/posting")
	b.ReportMetric(hAll, "H-index-bits/posting")
}

// TestPostingSizesAddUp: the parts PostingSizes measures add up to the
// DOCS and IMPS sections, and the containers hold every posting.
func TestPostingSizesAddUp(t *testing.T) {
	g := synth.New(synth.Default)
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := g.WriteIndex(dir, 3000, nil, index.Options{}); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	secs := map[string]uint64{}
	for _, s := range r.Sections() {
		secs[s.Tag] = s.Length
	}
	ps := r.PostingSizes()
	if got, want := ps.ArrayBytes+ps.BitmapBytes+ps.RoaringHeaders, int64(secs["DOCS"]); got != want {
		t.Errorf("doc-id parts sum to %d bytes, DOCS is %d", got, want)
	}
	if got, want := ps.ImpactData+ps.ImpactHeaders, int64(secs["IMPS"]); got != want {
		t.Errorf("impact parts sum to %d bytes, IMPS is %d", got, want)
	}
	if ps.ArrayPostings+ps.BitmapPostings != ps.Postings || ps.Postings != r.Meta().NumPostings {
		t.Errorf("containers hold %d+%d postings, want %d (meta %d)", ps.ArrayPostings, ps.BitmapPostings, ps.Postings, r.Meta().NumPostings)
	}
	if ps.ImpactBits <= 0 || ps.ImpactBits > 8*ps.ImpactData {
		t.Errorf("impact bits %d for %d data bytes: want 0 < bits ≤ 8·bytes", ps.ImpactBits, ps.ImpactData)
	}
}

func sameRaw(a, b []index.Hit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Doc != b[i].Doc || a[i].Raw != b[i].Raw {
			return false
		}
	}
	return true
}

// BenchmarkQuantization compares each impact width's top-10 with exact
// float scoring of the same synthetic documents and queries (in memory;
// SPLADAPT_BENCH_DOCS documents, default 20 000; SPLADAPT_BENCH_QBITS the
// widths, default "4,8"): nDCG@10 taking the float top-10 as the relevant
// set (gain 1), and the mean overlap of the two top-10s. The loop times
// the quantised searches.
//
//	SPLADAPT_BENCH_DOCS=100000 go test ./index -run '^$' -bench Quantization -benchtime 1x
func BenchmarkQuantization(b *testing.B) {
	n := envInt("SPLADAPT_BENCH_DOCS", 20000)
	g := benchGen(b)
	qs := make([][]index.TermWeight, 200)
	for i := range qs {
		qs[i] = g.Query(i)
	}
	type post struct {
		doc uint32
		w   float32
	}
	inv := make([][]post, synth.Default.Vocab)
	for i := range n {
		for _, tw := range g.Doc(i) {
			inv[tw.Term] = append(inv[tw.Term], post{uint32(i), tw.Weight})
		}
	}
	acc := make([]float64, n)
	floatTop := make([][]uint32, len(qs))
	for qi, q := range qs {
		clear(acc)
		for _, tw := range q {
			for _, p := range inv[tw.Term] {
				acc[p.doc] += float64(tw.Weight) * float64(p.w)
			}
		}
		idx := make([]uint32, 0, n)
		for d, s := range acc {
			if s > 0 {
				idx = append(idx, uint32(d))
			}
		}
		slices.SortFunc(idx, func(a, b uint32) int {
			if acc[a] != acc[b] {
				if acc[a] > acc[b] {
					return -1
				}
				return 1
			}
			return int(a) - int(b)
		})
		floatTop[qi] = idx[:min(10, len(idx))]
	}
	bitsList := []int{4, 8}
	if s := os.Getenv("SPLADAPT_BENCH_QBITS"); s != "" {
		bitsList = nil
		for _, f := range strings.Split(s, ",") {
			bits, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("SPLADAPT_BENCH_QBITS: %q is not a width", f)
			}
			bitsList = append(bitsList, bits)
		}
	}
	for _, bits := range bitsList {
		b.Run(fmt.Sprintf("bits=%d/docs=%s", bits, short(n)), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "idx")
			if _, err := g.WriteIndex(dir, n, nil, index.Options{QuantBits: bits}); err != nil {
				b.Fatal(err)
			}
			r, err := index.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			var ndcg, overlap float64
			for b.Loop() {
				ndcg, overlap = 0, 0
				for qi, q := range qs {
					hits, err := r.Search(q, 10, index.BlockMax)
					if err != nil {
						b.Fatal(err)
					}
					rel := map[uint32]bool{}
					for _, d := range floatTop[qi] {
						rel[d] = true
					}
					var dcg, idcg float64
					for i, h := range hits {
						// Doc numbers are the generator's: WriteIndex in arrival order.
						if rel[h.Doc] {
							dcg += 1 / math.Log2(float64(i+2))
							overlap++
						}
					}
					for i := range floatTop[qi] {
						idcg += 1 / math.Log2(float64(i+2))
					}
					ndcg += dcg / idcg
				}
			}
			b.ReportMetric(ndcg/float64(len(qs)), "nDCG@10-vs-float")
			b.ReportMetric(overlap/float64(len(qs)), "top10-overlap")
		})
	}
}

// termToken spells a term id in letters (bleve's simple analyzer keeps letters only).
func termToken(t uint32) string {
	var b []byte
	for {
		b = append(b, byte('a'+t%26))
		t /= 26
		if t == 0 {
			break
		}
	}
	return "x" + string(b)
}

// buildBleve indexes the same documents in bleve: one text field in which
// each term's token is repeated 1+⌊2w⌋ times, so term frequency follows weight.
func buildBleve(t testing.TB, g *synth.Gen, n int) (bleve.Index, time.Duration) {
	im := bleve.NewIndexMapping()
	im.DefaultAnalyzer = simple.Name
	dm := mapping.NewDocumentMapping()
	fm := mapping.NewTextFieldMapping()
	fm.Store, fm.IncludeTermVectors, fm.IncludeInAll = false, false, false
	dm.AddFieldMappingsAt("t", fm)
	im.DefaultMapping = dm
	start := time.Now()
	bi, err := bleve.NewUsing("", im, scorch.Name, scorch.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bi.Close() })
	batch := bi.NewBatch()
	var sb strings.Builder
	for i := range n {
		sb.Reset()
		for _, tw := range g.Doc(i) {
			tok := termToken(tw.Term)
			for range 1 + int(2*tw.Weight) {
				sb.WriteString(tok)
				sb.WriteByte(' ')
			}
		}
		if err := batch.Index(strconv.Itoa(i), map[string]any{"t": sb.String()}); err != nil {
			t.Fatal(err)
		}
		if batch.Size() == 1000 {
			if err := bi.Batch(batch); err != nil {
				t.Fatal(err)
			}
			batch = bi.NewBatch()
		}
	}
	if err := bi.Batch(batch); err != nil {
		t.Fatal(err)
	}
	return bi, time.Since(start)
}

// bleveQuery is a disjunction of term queries boosted by the query weights.
func bleveQuery(q []index.TermWeight) query.Query {
	var qs []query.Query
	for _, tw := range q {
		tq := bleve.NewTermQuery(termToken(tw.Term))
		tq.SetField("t")
		tq.SetBoost(float64(tw.Weight))
		qs = append(qs, tq)
	}
	return bleve.NewDisjunctionQuery(qs...)
}

// BenchmarkAutoCrossover times blockmax and TAAT on synthetic collections
// of several sizes (SPLADAPT_BENCH_GRID, default "10000,30000") for k = 10,
// 100 and 1000: the measurement behind index.AutoTAATRatio (compare the
// two algorithms' times per docs and k; the sub-benchmark names carry
// k/N).
//
//	SPLADAPT_BENCH_GRID=10000,30000,100000,300000 go test ./index -run '^$' -bench AutoCrossover -cpu 1 -timeout 30m
func BenchmarkAutoCrossover(b *testing.B) {
	g := benchGen(b)
	for _, f := range strings.Split(cmp.Or(os.Getenv("SPLADAPT_BENCH_GRID"), "10000,30000"), ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			b.Fatalf("SPLADAPT_BENCH_GRID: %q is not a document count", f)
		}
		r, _ := cachedSynth(b, g, n)
		qs := make([]*index.Query, 100)
		for i := range qs {
			if qs[i], err = r.Prepare(g.Query(i)); err != nil {
				b.Fatal(err)
			}
		}
		for _, k := range []int{10, 100, 1000} {
			for _, alg := range []index.Algorithm{index.BlockMax, index.TAAT} {
				b.Run(fmt.Sprintf("docs=%s/k=%d/N_over_k=%d/alg=%v", short(n), k, n/k, alg), func(b *testing.B) {
					i := 0
					for b.Loop() {
						if _, err := r.SearchPrepared(qs[i%len(qs)], k, alg); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		}
	}
}

// BenchmarkBlockMaxWork reports how many blocks BlockMax scores per query
// on the synthetic collection (SPLADAPT_BENCH_DOCS documents, default
// 20 000): the median and 90th percentile over the queries, against the
// number of blocks.
//
//	SPLADAPT_BENCH_DOCS=1000000 SPLADAPT_BENCH_INDEX=/work/cache/bench-index go test ./index -run '^$' -bench BlockMaxWork -benchtime 100x
func BenchmarkBlockMaxWork(b *testing.B) {
	n := envInt("SPLADAPT_BENCH_DOCS", 20000)
	g := benchGen(b)
	r, _ := cachedSynth(b, g, n)
	qs := make([][]index.TermWeight, 100)
	for i := range qs {
		qs[i] = g.Query(i)
	}
	for _, k := range []int{10, 1000} {
		b.Run(fmt.Sprintf("k=%d/docs=%s", k, short(n)), func(b *testing.B) {
			var scored []int
			i := 0
			for b.Loop() {
				s, _, _ := index.BlockStats(r, qs[i%len(qs)], k)
				scored = append(scored, s)
				i++
			}
			slices.Sort(scored)
			b.ReportMetric(float64(scored[len(scored)/2]), "blocks-scored-p50")
			b.ReportMetric(float64(scored[len(scored)*9/10]), "blocks-scored-p90")
			b.ReportMetric(float64(r.Meta().NumBlocks), "blocks")
		})
	}
}
