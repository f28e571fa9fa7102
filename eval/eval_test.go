package eval

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

func hit(doc string, score float64) corpora.Hit { return corpora.Hit{DocID: doc, Score: score} }

func mustParse(t testing.TB, names ...string) []Measure {
	t.Helper()
	ms, err := ParseMeasures(names...)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestParseMeasure(t *testing.T) {
	for name, want := range map[string]Measure{
		"map":           {Kind: AP},
		"map_cut.100":   {Kind: AP, Cutoff: 100},
		"ndcg_cut_10":   {Kind: NDCG, Cutoff: 10},
		"ndcg":          {Kind: NDCG},
		"P.5":           {Kind: P, Cutoff: 5},
		"recall.100":    {Kind: Recall, Cutoff: 100},
		"recip_rank":    {Kind: RR},
		"Rprec":         {Kind: Rprec},
		"num_rel_ret":   {Kind: NumRelRet},
		"nDCG@10":       {Kind: NDCG, Cutoff: 10, IR: true},
		"AP":            {Kind: AP, IR: true},
		"AP@100":        {Kind: AP, Cutoff: 100, IR: true},
		"AP(rel=2)":     {Kind: AP, Rel: 2, IR: true},
		"P(rel=2)@10":   {Kind: P, Cutoff: 10, Rel: 2, IR: true},
		"RR@10":         {Kind: RR, Cutoff: 10, IR: true},
		"R@100":         {Kind: Recall, Cutoff: 100, IR: true},
		"Judged@10":     {Kind: Judged, Cutoff: 10, IR: true},
		"NumQ":          {Kind: NumQ, IR: true},
		"Rprec(rel=3)":  {Kind: Rprec, Rel: 3, IR: true},
		"NumRel(rel=2)": {Kind: NumRel, Rel: 2, IR: true},
	} {
		got, err := ParseMeasure(name)
		if err != nil || got != want {
			t.Errorf("ParseMeasure(%q) = %+v, %v; want %+v", name, got, err, want)
			continue
		}
		// The printed name parses back to the same measure.
		if back, err := ParseMeasure(got.Name()); err != nil || back != got {
			t.Errorf("%q prints as %q which parses to %+v, %v", name, got.Name(), back, err)
		}
	}
	for _, bad := range []string{"", "ndcg_cut.0", "P.x", "P@0", "P", "R", "Judged", "nDCG(rel=2)@10", "RR(rel=0)", "AP(foo=1)",
		"bpref", "map.5", "ndcg_cut.5,10", "num_q@5", "Rprec@10", "P@10(rel=2", "ndcg_cut.5,5"} {
		if m, err := ParseMeasure(bad); !errors.Is(err, ErrMeasure) {
			t.Errorf("ParseMeasure(%q) = %+v, %v; want ErrMeasure", bad, m, err)
		}
	}
}

func TestParseMeasuresListsAndOrder(t *testing.T) {
	ms := mustParse(t, "ndcg_cut.20,5", "map", "P", "map", "nDCG@10", "num_q")
	var names []string
	for _, m := range ms {
		names = append(names, m.Name())
	}
	want := "ndcg_cut_5 ndcg_cut_20 map P_5 P_10 P_15 P_20 P_30 P_100 P_200 P_500 P_1000 nDCG@10 num_q"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("parsed %s\nwant   %s", got, want)
	}
	TrecOrder(ms)
	names = names[:0]
	for _, m := range ms {
		names = append(names, m.Name())
	}
	want = "num_q map P_5 P_10 P_15 P_20 P_30 P_100 P_200 P_500 P_1000 ndcg_cut_5 nDCG@10 ndcg_cut_20"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("trec order %s\nwant       %s", got, want)
	}
}

// handQrels and handRun are a worked example; every expected value below is
// computed by hand from this ranking (ties: docno descending, so dA, then
// d2 at score 5):
//
//	rank: 1   2   3   4   5   6
//	doc:  dA  d2  d1  d3  d5  d4
//	rel:  -   1   2   0   -1  1     ("-": not judged)
var (
	handQrels = corpora.Qrels{"q1": {"d1": 2, "d2": 1, "d3": 0, "d4": 1, "d5": -1, "d9": 1}, "q2": {"x": 1}}
	handRun   = corpora.Run{"q1": {hit("d4", 1), hit("d3", 3), hit("d2", 5), hit("d1", 4), hit("dA", 5), hit("d5", 2)}, "q9": {hit("x", 1)}}
)

func TestHandExample(t *testing.T) {
	l := math.Log2
	idcg := 2 + 1/l(3) + 1/l(4) + 1/l(5) // ideal grades 2 1 1 1 0
	cases := []struct {
		measure string
		opts    Options
		want    float64
	}{
		{"num_ret", Options{}, 6},
		{"num_rel", Options{}, 4},
		{"num_rel_ret", Options{}, 3},
		{"map", Options{}, (1.0/2 + 2.0/3 + 3.0/6) / 4},
		{"map_cut.2", Options{}, (1.0 / 2) / 4},
		{"recip_rank", Options{}, 0.5},
		{"RR@1", Options{}, 0},
		{"P.5", Options{}, 2.0 / 5},
		{"P.10", Options{}, 3.0 / 10},
		{"Rprec", Options{}, 2.0 / 4},
		{"recall.2", Options{}, 1.0 / 4},
		{"recall.1000", Options{}, 3.0 / 4},
		{"ndcg_cut.3", Options{}, (1/l(3) + 2/l(4)) / (2 + 1/l(3) + 1/l(4))},
		{"ndcg", Options{}, (1/l(3) + 2/l(4) + 1/l(7)) / idcg},
		{"Judged@2", Options{}, 0.5},
		{"Judged@10", Options{}, 5.0 / 6},
		// -l 2: only d1 is relevant.
		{"map", Options{RelThreshold: 2}, 1.0 / 3},
		{"P.5", Options{RelThreshold: 2}, 1.0 / 5},
		{"num_rel", Options{RelThreshold: 2}, 1},
		{"AP(rel=2)", Options{}, 1.0 / 3},
		{"ndcg_cut.3", Options{RelThreshold: 2}, (1/l(3) + 2/l(4)) / (2 + 1/l(3) + 1/l(4))}, // gains ignore -l
		// -M 2: only dA and d2 count.
		{"map", Options{Depth: 2}, (1.0 / 2) / 4},
		{"num_ret", Options{Depth: 2}, 2},
		{"ndcg", Options{Depth: 2}, (1 / l(3)) / idcg},
		{"recip_rank", Options{Depth: 1}, 0},
		{"Rprec", Options{Depth: 3}, 2.0 / 4},
	}
	for _, c := range cases {
		ms := mustParse(t, c.measure)
		res, err := Evaluate(handQrels, handRun, ms, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Queries) != 1 || res.Queries[0].QID != "q1" {
			t.Fatalf("queries %+v: want only q1 (q2 has no results, q9 no judgments)", res.Queries)
		}
		if got := res.Queries[0].Values[0]; math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s %+v = %.6f, want %.6f", c.measure, c.opts, got, c.want)
		}
	}
}

func TestAllQueries(t *testing.T) {
	ms := mustParse(t, "num_q", "num_ret", "num_rel", "map", "ndcg_cut.10", "Rprec")
	part, err := Evaluate(handQrels, handRun, ms, Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := Evaluate(handQrels, handRun, ms, Options{AllQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Queries) != 2 || all.Queries[1].QID != "q2" {
		t.Fatalf("with -c queries %+v, want q1 q2", all.Queries)
	}
	for j, m := range ms {
		switch m.Kind {
		case NumQ:
			if part.All[j] != 1 || all.All[j] != 2 {
				t.Errorf("num_q %v / %v, want 1 / 2", part.All[j], all.All[j])
			}
		case NumRet:
			if all.All[j] != 6 || all.Queries[1].Values[j] != 0 {
				t.Errorf("num_ret all %v, q2 %v; want 6, 0", all.All[j], all.Queries[1].Values[j])
			}
		case NumRel: // q2's judgment counts with -c
			if part.All[j] != 4 || all.All[j] != 5 {
				t.Errorf("num_rel %v / %v, want 4 / 5", part.All[j], all.All[j])
			}
		default: // q2 scores 0, so the mean halves
			if all.Queries[1].Values[j] != 0 || math.Abs(all.All[j]-part.All[j]/2) > 1e-15 {
				t.Errorf("%s: -c mean %v, without %v", m.Name(), all.All[j], part.All[j])
			}
		}
	}
	if _, err := Evaluate(corpora.Qrels{"a": {"d": 1}}, handRun, ms, Options{}); !errors.Is(err, ErrNoQueries) {
		t.Errorf("no common query: %v", err)
	}
}

func TestEvaluateErrors(t *testing.T) {
	ms := mustParse(t, "map")
	dup := corpora.Run{"q1": {hit("d1", 1), hit("d2", 3), hit("d1", 2)}}
	if _, err := Evaluate(handQrels, dup, ms, Options{}); err == nil || !strings.Contains(err.Error(), "duplicate document d1") {
		t.Errorf("duplicate: %v", err)
	}
	// As trec_eval, a duplicate beyond the depth is not seen.
	if _, err := Evaluate(handQrels, dup, ms, Options{Depth: 2}); err != nil {
		t.Errorf("duplicate beyond -M: %v", err)
	}
	nan := corpora.Run{"q1": {hit("d1", math.NaN())}}
	if _, err := Evaluate(handQrels, nan, ms, Options{}); err == nil {
		t.Error("NaN score accepted")
	}
	if _, err := Evaluate(handQrels, handRun, nil, Options{}); err == nil {
		t.Error("no measures accepted")
	}
	if _, err := Evaluate(handQrels, handRun, []Measure{{Kind: P}}, Options{}); err == nil {
		t.Error("P without cutoff accepted")
	}
}

func TestWriteTrecFormat(t *testing.T) {
	ms := mustParse(t, "P.5", "num_q", "map", "num_ret")
	TrecOrder(ms)
	res, err := Evaluate(handQrels, handRun, ms, Options{AllQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	res.WriteTrec(&b, true, true)
	want := "num_ret               \tq1\t6\n" +
		"map                   \tq1\t0.4167\n" +
		"P_5                   \tq1\t0.4000\n" +
		"num_ret               \tq2\t0\n" +
		"map                   \tq2\t0.0000\n" +
		"P_5                   \tq2\t0.0000\n" +
		"num_q                 \tall\t2\n" +
		"num_ret               \tall\t6\n" +
		"map                   \tall\t0.2083\n" +
		"P_5                   \tall\t0.2000\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	res.WriteJSON(&b, true)
	for _, s := range []string{`"measures": [`, `"num_q": 2`, `"qid": "q2"`, `"map": 0.41666666666666663`} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("JSON lacks %s:\n%s", s, b.String())
		}
	}
}

// naiveRanking sorts a query's hits independently of the package: by a
// string key that orders score descending and docno descending.
func naiveRanking(hits []corpora.Hit) []string {
	type kv struct {
		doc   string
		score float64
	}
	var xs []kv
	for _, h := range hits {
		xs = append(xs, kv{h.DocID, h.Score})
	}
	sort.SliceStable(xs, func(i, j int) bool {
		if xs[i].score != xs[j].score {
			return xs[i].score > xs[j].score
		}
		return xs[i].doc > xs[j].doc
	})
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.doc
	}
	return out
}

// naiveAP is average precision by definition: the mean over relevant
// documents of the precision at their rank (0 when not retrieved).
func naiveAP(ranked []string, judged map[string]int, t int) float64 {
	var rels []string
	for d, g := range judged {
		if g >= t {
			rels = append(rels, d)
		}
	}
	if len(rels) == 0 {
		return 0
	}
	sum := 0.0
	for _, d := range rels {
		r := slices.Index(ranked, d)
		if r < 0 {
			continue
		}
		above := 0
		for _, e := range ranked[:r+1] {
			if judged[e] >= t && e != "" {
				if _, ok := judged[e]; ok {
					above++
				}
			}
		}
		sum += float64(above) / float64(r+1)
	}
	return sum / float64(len(rels))
}

// naiveNDCG is nDCG@k by definition (k <= 0: whole ranking).
func naiveNDCG(ranked []string, judged map[string]int, k int) float64 {
	if k <= 0 {
		k = math.MaxInt
	}
	dcg := 0.0
	for i, d := range ranked {
		if i < k && judged[d] > 0 {
			dcg += float64(judged[d]) / math.Log2(float64(i)+2)
		}
	}
	var ideal []int
	for _, g := range judged {
		ideal = append(ideal, max(g, 0))
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ideal)))
	idcg := 0.0
	for i, g := range ideal {
		if i < k {
			idcg += float64(g) / math.Log2(float64(i)+2)
		}
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

func randomCollection(rng *rand.Rand, nq int) (corpora.Qrels, corpora.Run) {
	qrels, run := corpora.Qrels{}, corpora.Run{}
	for q := range nq {
		qid := fmt.Sprint("q", q)
		ndocs := 5 + rng.IntN(60)
		if rng.IntN(5) > 0 {
			judged := map[string]int{}
			for range rng.IntN(25) + 1 {
				judged[fmt.Sprint("d", rng.IntN(ndocs))] = rng.IntN(5) - 1 // -1..3
			}
			qrels[qid] = judged
		}
		if rng.IntN(6) > 0 {
			var hits []corpora.Hit
			for _, d := range rng.Perm(ndocs)[:rng.IntN(ndocs)] {
				// Coarse scores make many ties.
				hits = append(hits, corpora.Hit{DocID: fmt.Sprint("d", d), Score: float64(rng.IntN(8)), Rank: rng.IntN(100)})
			}
			run[qid] = hits
		}
	}
	return qrels, run
}

func TestProperties(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	rng := rand.New(rand.NewPCG(7, 8))
	ms := mustParse(t, "map", "ndcg", "ndcg_cut.5,10", "P.5,10", "recall.10", "Rprec", "recip_rank", "num_rel_ret", "num_ret", "Judged@10", "AP(rel=2)")
	for iter := range n {
		qrels, run := randomCollection(rng, 1+rng.IntN(8))
		opts := Options{AllQueries: rng.IntN(2) == 0, Depth: []int{0, 0, 3, 20}[rng.IntN(4)]}
		res, err := Evaluate(qrels, run, ms, opts)
		if errors.Is(err, ErrNoQueries) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range res.Queries {
			ranked := naiveRanking(run[q.QID])
			if opts.Depth > 0 && len(ranked) > opts.Depth {
				ranked = ranked[:opts.Depth]
			}
			judged := qrels[q.QID]
			relAt := func(k int) int {
				c := 0
				for _, d := range ranked[:min(k, len(ranked))] {
					if g, ok := judged[d]; ok && g >= 1 {
						c++
					}
				}
				return c
			}
			for j, m := range ms {
				v := q.Values[j]
				if !m.IsCount() && (v < 0 || v > 1+1e-12) {
					t.Fatalf("iter %d query %s: %s = %v outside [0,1]", iter, q.QID, m.Name(), v)
				}
				var want float64
				check := true
				switch {
				case m.Kind == AP && m.Cutoff == 0:
					want = naiveAP(ranked, judged, max(m.Rel, 1))
				case m.Kind == NDCG:
					want = naiveNDCG(ranked, judged, m.Cutoff)
				case m.Kind == P:
					// P@k·k is the number of relevant documents in the top k.
					if got := math.Round(v * float64(m.Cutoff)); got != float64(relAt(m.Cutoff)) {
						t.Fatalf("iter %d query %s: P@%d·%d = %v, want %d relevant", iter, q.QID, m.Cutoff, m.Cutoff, got, relAt(m.Cutoff))
					}
					check = false
				case m.Kind == NumRelRet:
					want = float64(relAt(len(ranked)))
				case m.Kind == NumRet:
					want = float64(len(ranked))
				default:
					check = false
				}
				if check && math.Abs(v-want) > 1e-9 {
					t.Fatalf("iter %d query %s: %s = %v, naive %v (ranking %v, qrels %v)", iter, q.QID, m.Name(), v, want, ranked, judged)
				}
			}
		}
		// Hit order and the rank column do not matter.
		shuffled := corpora.Run{}
		for qid, hits := range run {
			h := slices.Clone(hits)
			rng.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
			for i := range h {
				h[i].Rank = i
			}
			shuffled[qid] = h
		}
		res2, err := Evaluate(qrels, shuffled, ms, opts)
		if err != nil {
			t.Fatal(err)
		}
		for j := range res.All {
			if res.All[j] != res2.All[j] {
				t.Fatalf("iter %d: %s changes with hit order: %v vs %v", iter, ms[j].Name(), res.All[j], res2.All[j])
			}
		}
	}
}

// writeBenchRun writes a 1M-line run (1000 queries x 1000 hits) and qrels
// with 20 judgments per query.
func writeBenchRun(tb testing.TB) (qrelsPath, runPath string) {
	dir := tb.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	var run, qrels strings.Builder
	for q := range 1000 {
		for r := range 1000 {
			fmt.Fprintf(&run, "%d Q0 doc%d %d %.4f bench\n", q, r*7919%100000, r+1, 50-float64(r)*0.03+float64(rng.IntN(3))*0.01)
		}
		for j := range 20 {
			fmt.Fprintf(&qrels, "%d 0 doc%d %d\n", q, rng.IntN(100000)+j*0, 1+rng.IntN(2))
		}
	}
	qrelsPath, runPath = filepath.Join(dir, "qrels"), filepath.Join(dir, "run")
	os.WriteFile(runPath, []byte(run.String()), 0o644)
	os.WriteFile(qrelsPath, []byte(dedupQrels(qrels.String())), 0o644)
	return qrelsPath, runPath
}

func dedupQrels(s string) string {
	seen := map[string]bool{}
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && !seen[f[0]+" "+f[2]] {
			seen[f[0]+" "+f[2]] = true
			b.WriteString(l)
		}
	}
	return b.String()
}

// BenchmarkEvalRun is the end-to-end cost of evaluating a 1M-line run:
// read the run file, sort, and compute the usual measures.
func BenchmarkEvalRun(b *testing.B) {
	qp, rp := writeBenchRun(b)
	qrels, err := corpora.ReadQrels(qp)
	if err != nil {
		b.Fatal(err)
	}
	ms := mustParse(b, "ndcg_cut.10", "map", "recall.100", "recip_rank", "P.10", "num_ret", "num_rel_ret")
	b.Run("lines=1M", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run, err := corpora.ReadRun(rp)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Evaluate(qrels, run, ms, Options{AllQueries: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	run, _ := corpora.ReadRun(rp)
	b.Run("lines=1M/evaluate-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Evaluate(qrels, run, ms, Options{AllQueries: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzParseMeasure(f *testing.F) {
	for _, s := range []string{"map", "ndcg_cut.10", "P_5", "nDCG@10", "AP(rel=2)@100", "RR@1", "Judged@10", "recall.5,10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMeasure(s)
		if err != nil {
			if !errors.Is(err, ErrMeasure) {
				t.Fatalf("error %v does not wrap ErrMeasure", err)
			}
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("%q parsed to invalid %+v: %v", s, m, err)
		}
		if back, err := ParseMeasure(m.Name()); err != nil || back != m {
			t.Fatalf("%q → %+v prints %q → %+v, %v", s, m, m.Name(), back, err)
		}
	})
}
