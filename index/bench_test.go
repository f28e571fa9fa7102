package index_test

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
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
	switch v := os.Getenv("SPLADAPT_BENCH_SYNTH"); v {
	case "", "independent":
		if os.Getenv("SPLADAPT_BENCH_ORDER") == "topic" {
			tb.Fatal("SPLADAPT_BENCH_ORDER=topic needs SPLADAPT_BENCH_SYNTH=topical")
		}
		return synth.New(synth.Default)
	case "topical":
		return synth.New(synth.Topical)
	default:
		tb.Fatalf("SPLADAPT_BENCH_SYNTH=%q: want independent or topical", v)
		return nil
	}
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
// numbers: arrival order, or by main topic (stable) with
// SPLADAPT_BENCH_ORDER=topic.
func docOrder(tb testing.TB, g *synth.Gen, n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	switch v := os.Getenv("SPLADAPT_BENCH_ORDER"); v {
	case "", "arrival":
	case "topic":
		topic := make([]int, n)
		for i := range topic {
			topic[i] = g.Topic(i)
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(topic[a], topic[b]) })
	default:
		tb.Fatalf("SPLADAPT_BENCH_ORDER=%q: want arrival or topic", v)
	}
	return order
}

// buildSynth builds an index of n synthetic documents in dir and returns
// the build time (documents in docOrder; ids are the generator's numbers).
func buildSynth(tb testing.TB, g *synth.Gen, n, bits int, dir string) (*index.Reader, time.Duration) {
	tb.Helper()
	order := docOrder(tb, g, n)
	start := time.Now()
	b, err := index.NewBuilder(index.Options{NumTerms: synth.Default.Vocab, QuantBits: bits, Fingerprint: "synth" + strings.TrimSuffix(","+benchTag(), ","),
		BlockSize: envInt("SPLADAPT_BENCH_BLOCK", 0)})
	if err != nil {
		tb.Fatal(err)
	}
	for _, i := range order {
		if _, err := b.Add(strconv.Itoa(i), g.Doc(i)); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := b.Write(dir); err != nil {
		tb.Fatal(err)
	}
	el := time.Since(start)
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

// taatSideBySide times TAAT top-10 with the 32-bit and the 64-bit
// accumulator alternately on each query (so both see the same load) and
// logs the medians and the median per-query ratio.
func taatSideBySide(t *testing.T, r *index.Reader, qs [][]index.TermWeight) {
	var narrow, wide []time.Duration
	var ratio []float64
	s := &index.Scratch{}
	for rep := range 3 {
		for i, q := range qs {
			pq, err := r.Prepare(q)
			if err != nil {
				t.Fatal(err)
			}
			var d [2]time.Duration
			var h [2][]index.Hit
			for j, w := range []bool{rep%2 == 1, rep%2 == 0} { // alternate which goes first
				start := time.Now()
				h[j] = index.TAATWith(r, s, pq, 10, w)
				d[j] = time.Since(start)
			}
			if !sameRaw(h[0], h[1]) {
				t.Fatalf("query %d: 32- and 64-bit TAAT differ", i)
			}
			if rep%2 == 0 { // order was narrow, wide
				narrow, wide = append(narrow, d[0]), append(wide, d[1])
				ratio = append(ratio, float64(d[1])/float64(d[0]))
			} else {
				narrow, wide = append(narrow, d[1]), append(wide, d[0])
				ratio = append(ratio, float64(d[0])/float64(d[1]))
			}
		}
	}
	n50, _ := percentiles(narrow)
	w50, _ := percentiles(wide)
	slices.Sort(ratio)
	t.Logf("TAAT top-10 accumulator, %d query runs alternated: 32-bit p50 %s ms, 64-bit p50 %s ms, median per-query 64/32 time ratio %.2f", len(narrow), ms(n50), ms(w50), ratio[len(ratio)/2])
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

// TestBenchTable prints the benchmark table of the issue: our algorithms,
// bleve and exhaustive scoring on the same queries, one thread, each of
// our algorithms after one untimed pass over the queries; bytes per
// posting; build rate; the nDCG@10 cost of quantisation. Opt-in:
//
//	SPLADAPT_BENCH_DOCS=100000 go test ./index -run BenchTable -v -timeout 60m
//
// SPLADAPT_BENCH_QUERIES (default 200), SPLADAPT_BENCH_BLEVE=0 skips bleve,
// SPLADAPT_BENCH_QBITS (default "8") lists impact widths for the
// quantisation measurement (float scoring is exact, in memory, ≤ 200k docs),
// SPLADAPT_BENCH_INDEX=DIR keeps the built index in DIR/docs=N,block=R and
// reuses it on later runs (outside the repository, e.g.
// /work/cache/bench-index), SPLADAPT_BENCH_BLOCK sets the block size R,
// SPLADAPT_BENCH_ALGS (e.g. "taat,blockmax") the algorithms, the first
// being the reference the others must equal.
func TestBenchTable(t *testing.T) {
	n := envInt("SPLADAPT_BENCH_DOCS", 0)
	if n == 0 {
		t.Skip("set SPLADAPT_BENCH_DOCS (e.g. 100000) to run the benchmark table")
	}
	nq := envInt("SPLADAPT_BENCH_QUERIES", 200)
	g := benchGen(t)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	r, buildTime := cachedSynth(t, g, n)
	m := r.Meta()
	secs := map[string]uint64{}
	for _, s := range r.Sections() {
		secs[s.Tag] = s.Length
	}
	P := float64(m.NumPostings)
	t.Logf("collection: %s", cmp.Or(strings.TrimSuffix(benchTag(), ","), "synth=independent,order=arrival"))
	t.Logf("docs=%d postings=%d (%.1f/doc) dense_terms=%d file=%d bytes", n, m.NumPostings, P/float64(n), m.DenseTerms, r.Size())
	ps := r.PostingSizes()
	per := func(n int64) float64 { return float64(n) / P }
	t.Logf("bytes/posting: doc ids %.3f (array containers %.3f for %.1f%% of postings in %d containers = %.2f B/id; bitmap containers %.3f for %.1f%% in %d = %.2f B/id; roaring headers %.3f) + impacts %.3f (bit-packed data %.3f, mean width %.2f bits; chunk frames %.3f) + TERM %.3f + RMAX (block maxima) %.3f = %.3f; + DIDS (doc-id map) %.3f + rest = whole file %.3f",
		per(ps.ArrayBytes+ps.BitmapBytes+ps.RoaringHeaders),
		per(ps.ArrayBytes), 100*per(ps.ArrayPostings), ps.ArrayContainers, float64(ps.ArrayBytes)/max(1, float64(ps.ArrayPostings)),
		per(ps.BitmapBytes), 100*per(ps.BitmapPostings), ps.BitmapContainers, float64(ps.BitmapBytes)/max(1, float64(ps.BitmapPostings)),
		per(ps.RoaringHeaders),
		per(ps.ImpactData+ps.ImpactHeaders), per(ps.ImpactData), float64(ps.ImpactBits)/P, per(ps.ImpactHeaders),
		per(ps.Term), per(ps.Rmax), float64(secs["DOCS"]+secs["IMPS"]+secs["TERM"]+secs["RMAX"])/P,
		float64(secs["DIDS"])/P, float64(r.Size())/P)
	hTerm, hAll := index.ImpactEntropy(r)
	t.Logf("impact entropy (order 0): %.2f bits/posting with one distribution per term, %.2f for the whole index; bit-packed width %.2f", hTerm, hAll, float64(ps.ImpactBits)/P)
	if got, want := ps.ArrayBytes+ps.BitmapBytes+ps.RoaringHeaders, int64(secs["DOCS"]); got != want {
		t.Errorf("doc-id parts sum to %d bytes, DOCS is %d", got, want)
	}
	if got, want := ps.ImpactData+ps.ImpactHeaders, int64(secs["IMPS"]); got != want {
		t.Errorf("impact parts sum to %d bytes, IMPS is %d", got, want)
	}
	if buildTime > 0 {
		t.Logf("build: %.1f s, %.0f docs/s, %.2f M postings/s (one builder goroutine)", buildTime.Seconds(), float64(n)/buildTime.Seconds(), P/buildTime.Seconds()/1e6)
	}

	qs := make([][]index.TermWeight, nq)
	for i := range qs {
		qs[i] = g.Query(i)
	}
	type row struct {
		name     string
		p50, p99 [2]time.Duration
	}
	var rows []row
	ks := []int{10, 1000}
	var ref [2][][]index.Hit
	algs := []index.Algorithm{index.BlockMax, index.MaxScore, index.Exhaustive, index.TAAT}
	if v := os.Getenv("SPLADAPT_BENCH_ALGS"); v != "" {
		algs = nil
		for _, name := range strings.Split(v, ",") {
			a, err := index.ParseAlgorithm(name)
			if err != nil {
				t.Fatal(err)
			}
			algs = append(algs, a)
		}
	}
	for ai, alg := range algs {
		rw := row{name: "spladapt " + alg.String()}
		for _, q := range qs { // warm-up, untimed: lazily built rank directories, caches
			if _, err := r.Search(q, 10, alg); err != nil {
				t.Fatal(err)
			}
		}
		for ki, k := range ks {
			lat := make([]time.Duration, nq)
			for i, q := range qs {
				start := time.Now()
				hits, err := r.Search(q, k, alg)
				lat[i] = time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if ai == 0 {
					ref[ki] = append(ref[ki], hits)
				} else if !sameRaw(hits, ref[ki][i]) {
					t.Fatalf("%v query %d k=%d differs from %v", alg, i, k, algs[0])
				}
			}
			rw.p50[ki], rw.p99[ki] = percentiles(lat)
		}
		rows = append(rows, rw)
	}
	if os.Getenv("SPLADAPT_BENCH_BLEVE") != "0" {
		bi, bt := buildBleve(t, g, n)
		t.Logf("bleve build: %.1f s, %.0f docs/s", bt.Seconds(), float64(n)/bt.Seconds())
		rw := row{name: "bleve v2.6.3 (scorch, in memory)"}
		for ki, k := range ks {
			lat := make([]time.Duration, nq)
			for i, q := range qs {
				req := bleve.NewSearchRequestOptions(bleveQuery(q), k, 0, false)
				start := time.Now()
				res, err := bi.Search(req)
				lat[i] = time.Since(start)
				if err != nil || len(res.Hits) == 0 {
					t.Fatalf("bleve query %d: %v", i, err)
				}
			}
			rw.p50[ki], rw.p99[ki] = percentiles(lat)
		}
		rows = append(rows, rw)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| method (docs=%d, %d queries, 1 thread) | top-10 p50 ms | top-10 p99 ms | top-1000 p50 ms | top-1000 p99 ms |\n|---|---|---|---|---|\n", n, nq)
	for _, rw := range rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", rw.name, ms(rw.p50[0]), ms(rw.p99[0]), ms(rw.p50[1]), ms(rw.p99[1]))
	}
	if last := rows[len(rows)-1]; strings.HasPrefix(last.name, "bleve") {
		fmt.Fprintf(&sb, "\np50 speed-up over %s (same queries, same run):\n", last.name)
		for _, rw := range rows[:len(rows)-1] {
			fmt.Fprintf(&sb, "- %s: top-10 %.1f×, top-1000 %.1f×\n", rw.name,
				float64(last.p50[0])/float64(rw.p50[0]), float64(last.p50[1])/float64(rw.p50[1]))
		}
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&sb, "\nload average at the end: %s", la)
	}
	t.Log(sb.String())

	taatSideBySide(t, r, qs)

	if n <= 200000 {
		bitsList := []int{8}
		if s := os.Getenv("SPLADAPT_BENCH_QBITS"); s != "" {
			bitsList = nil
			for _, f := range strings.Split(s, ",") {
				b, _ := strconv.Atoi(f)
				bitsList = append(bitsList, b)
			}
		}
		quantCost(t, g, n, qs, bitsList)
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

// quantCost compares each quantised index's top-10 with exact float
// scoring: nDCG@10 taking the float top-10 as the relevant set (gain 1),
// and the mean overlap of the two top-10s.
func quantCost(t *testing.T, g *synth.Gen, n int, qs [][]index.TermWeight, bitsList []int) {
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
	for _, bits := range bitsList {
		r, _ := buildSynth(t, g, n, bits, filepath.Join(t.TempDir(), fmt.Sprintf("q%d", bits)))
		var ndcg, overlap float64
		for qi, q := range qs {
			hits, err := r.Search(q, 10, index.BlockMax)
			if err != nil {
				t.Fatal(err)
			}
			rel := map[uint32]bool{}
			for _, d := range floatTop[qi] {
				rel[d] = true
			}
			var dcg, idcg float64
			for i, h := range hits {
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
		t.Logf("quant_bits=%d: nDCG@10 vs float top-10 = %.4f, top-10 overlap = %.2f/10 (%d queries, %d docs)",
			bits, ndcg/float64(len(qs)), overlap/float64(len(qs)), len(qs), n)
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
func buildBleve(t *testing.T, g *synth.Gen, n int) (bleve.Index, time.Duration) {
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

// TestCompareIndexes times the same queries on several indexes of the
// synthetic collection (SPLADAPT_COMPARE: directories
// separated by ":" as in PATH, e.g. two block sizes), one query on each in turn with the order
// rotating, so that all see the same load; it logs p50 / p99 per index and
// the median per-query time ratio to the first, and checks equal hits.
// SPLADAPT_COMPARE_ALG (default blockmax), SPLADAPT_BENCH_QUERIES (200).
func TestCompareIndexes(t *testing.T) {
	dirs := os.Getenv("SPLADAPT_COMPARE")
	if dirs == "" {
		t.Skip("set SPLADAPT_COMPARE=dir1:dir2:… to compare indexes side by side")
	}
	alg, err := index.ParseAlgorithm(cmp.Or(os.Getenv("SPLADAPT_COMPARE_ALG"), "blockmax"))
	if err != nil {
		t.Fatal(err)
	}
	nq := envInt("SPLADAPT_BENCH_QUERIES", 200)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	var rs []*index.Reader
	for _, d := range filepath.SplitList(dirs) {
		r, err := index.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs = append(rs, r)
	}
	g := benchGen(t)
	for _, k := range []int{10, 1000} {
		lat := make([][]time.Duration, len(rs))
		ratio := make([][]float64, len(rs))
		for rep := range 3 {
			for qi := range nq {
				q := g.Query(qi)
				var d = make([]time.Duration, len(rs))
				var h = make([][]index.Hit, len(rs))
				for j := range rs {
					i := (j + rep + qi) % len(rs)
					start := time.Now()
					h[i], err = rs[i].Search(q, k, alg)
					d[i] = time.Since(start)
					if err != nil {
						t.Fatal(err)
					}
				}
				for i := range rs {
					if !sameRaw(h[i], h[0]) {
						t.Fatalf("query %d k=%d: index %d differs from index 0", qi, k, i)
					}
					lat[i] = append(lat[i], d[i])
					ratio[i] = append(ratio[i], float64(d[i])/float64(d[0]))
				}
			}
		}
		for i, r := range rs {
			p50, p99 := percentiles(lat[i])
			slices.Sort(ratio[i])
			t.Logf("k=%d %s (block_size %d, %d dense terms): p50 %s ms p99 %s ms, median time ratio to the first %.2f",
				k, alg, r.Meta().BlockSize, r.Meta().DenseTerms, ms(p50), ms(p99), ratio[i][len(ratio[i])/2])
		}
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("load average: %s", la)
	}
}

// TestAutoCrossover times blockmax and TAAT alternately, query by query,
// on synthetic collections of several sizes for k = 10, 100 and 1000, and
// logs the p50 time ratio by k/N: the measurement behind
// index.AutoTAATRatio. Opt-in:
//
//	SPLADAPT_BENCH_GRID=10000,30000,100000,300000 go test ./index -run AutoCrossover -v -timeout 30m
func TestAutoCrossover(t *testing.T) {
	grid := os.Getenv("SPLADAPT_BENCH_GRID")
	if grid == "" {
		t.Skip("set SPLADAPT_BENCH_GRID (e.g. 10000,30000,100000,300000) to time blockmax against TAAT")
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	g := benchGen(t)
	nq := envInt("SPLADAPT_BENCH_QUERIES", 100)
	for _, f := range strings.Split(grid, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			t.Fatalf("SPLADAPT_BENCH_GRID: %q is not a document count", f)
		}
		r, _ := cachedSynth(t, g, n)
		qs := make([]*index.Query, nq)
		for i := range qs {
			if qs[i], err = r.Prepare(g.Query(i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []int{10, 100, 1000} {
			algs := []index.Algorithm{index.BlockMax, index.TAAT}
			var lat [2][]time.Duration
			for rep := range 3 { // the first round is untimed
				for qi, q := range qs {
					var hits [2][]index.Hit
					for j := range 2 {
						v := (j + rep + qi) % 2
						start := time.Now()
						hits[v], err = r.SearchPrepared(q, k, algs[v])
						if rep > 0 {
							lat[v] = append(lat[v], time.Since(start))
						}
						if err != nil {
							t.Fatal(err)
						}
					}
					if !sameRaw(hits[0], hits[1]) {
						t.Fatalf("N=%d k=%d query %d: blockmax and TAAT differ", n, k, qi)
					}
				}
			}
			bm, _ := percentiles(lat[0])
			ta, _ := percentiles(lat[1])
			t.Logf("N=%d k=%d (k/N = 1/%d): blockmax p50 %s ms, taat p50 %s ms, ratio %.2f; auto runs %v",
				n, k, n/k, ms(bm), ms(ta), float64(bm)/float64(ta), r.Resolve(index.Auto, k))
		}
	}
}
