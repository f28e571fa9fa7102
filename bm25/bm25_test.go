package bm25

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/registry"

	"github.com/spladapt/spladapt/corpora"
)

var defaults = Params{K1: 0.9, B: 0.4}

// docsOf yields docs then io.EOF.
func docsOf(docs []corpora.Doc) func() (corpora.Doc, error) {
	i := 0
	return func() (corpora.Doc, error) {
		if i == len(docs) {
			return corpora.Doc{}, io.EOF
		}
		i++
		return docs[i-1], nil
	}
}

func buildIndex(t testing.TB, docs []corpora.Doc, batch int) *Index {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := Build(dir, docsOf(docs), BuildOptions{BatchSize: batch}); err != nil {
		t.Fatal(err)
	}
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func searchQ(t testing.TB, x *Index, q string, k int) []corpora.Hit {
	t.Helper()
	s, err := x.NewSearcher(defaults)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hits, err := s.Search(q, k)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func ids(hits []corpora.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.DocID
	}
	return out
}

// tiny has analysed forms "appl banana", "appl appl cherri", "banana":
// N = 3, dl = 2, 3, 1, avgdl = 2; df(appl) = 2, df(banana) = 2, df(cherri) = 1.
var tiny = []corpora.Doc{
	{ID: "d1", Title: "Apple", Text: "banana"},
	{ID: "d2", Text: "apples, the apple and a cherry"}, // "the", "and", "a" are stop words
	{ID: "d3", Title: "Bananas"},
}

func TestMetaCounts(t *testing.T) {
	x := buildIndex(t, tiny, 1000)
	m := x.Meta()
	if m.Docs != 3 || m.Tokens != 6 || m.AvgDL != 2 || m.Terms != 3 {
		t.Fatalf("meta = %+v, want docs 3 tokens 6 avgdl 2 terms 3", m)
	}
	want := []TermCount{{"appl", 2}, {"cherri", 1}}
	if got := x.Terms("The apple's apples and cherries"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Terms = %v, want %v", got, want)
	}
}

// TestHandComputed checks scores against BM25 worked out by hand for tiny
// with k1 = 0.9, b = 0.4.
func TestHandComputed(t *testing.T) {
	x := buildIndex(t, tiny, 1000)
	idf2 := math.Log(1 + (3-2+0.5)/(2+0.5)) // ln 1.6, df = 2
	idf1 := math.Log(1 + (3-1+0.5)/(1+0.5)) // ln(8/3), df = 1
	// length norms 1 − b + b·dl/avgdl for dl = 1, 2, 3
	n1, n2, n3 := 0.8, 1.0, 1.2
	cases := []struct {
		query string
		want  map[string]float64
		order []string
	}{
		{"apple", map[string]float64{
			"d1": idf2 * 1 / (1 + 0.9*n2),
			"d2": idf2 * 2 / (2 + 0.9*n3),
		}, []string{"d2", "d1"}},
		{"banana cherry", map[string]float64{
			"d1": idf2 * 1 / (1 + 0.9*n2),
			"d2": idf1 * 1 / (1 + 0.9*n3),
			"d3": idf2 * 1 / (1 + 0.9*n1),
		}, []string{"d2", "d3", "d1"}},
		// a repeated query word counts twice
		{"banana banana", map[string]float64{
			"d1": 2 * idf2 * 1 / (1 + 0.9*n2),
			"d3": 2 * idf2 * 1 / (1 + 0.9*n1),
		}, []string{"d3", "d1"}},
	}
	for _, c := range cases {
		hits := searchQ(t, x, c.query, 10)
		if got := ids(hits); !reflect.DeepEqual(got, c.order) {
			t.Errorf("%q: ranking %v, want %v", c.query, got, c.order)
		}
		for i, h := range hits {
			if math.Abs(h.Score-c.want[h.DocID]) > 1e-12 {
				t.Errorf("%q: %s score %.15g, want %.15g", c.query, h.DocID, h.Score, c.want[h.DocID])
			}
			if h.Rank != i+1 {
				t.Errorf("%q: hit %d has rank %d", c.query, i, h.Rank)
			}
		}
	}
	if hits := searchQ(t, x, "apple", 1); len(hits) != 1 || hits[0].DocID != "d2" {
		t.Errorf("k=1: %v, want [d2]", ids(hits))
	}
	if hits := searchQ(t, x, "the and of a", 10); len(hits) != 0 {
		t.Errorf("stop-word query: %v, want no hits", ids(hits))
	}
	if hits := searchQ(t, x, "zebra", 10); len(hits) != 0 {
		t.Errorf("unknown word: %v, want no hits", ids(hits))
	}
}

// TestRankingHandMade checks that stemming, possessives and length
// normalisation rank a hand-made corpus as a reader would.
func TestRankingHandMade(t *testing.T) {
	docs := []corpora.Doc{
		{ID: "cats", Title: "Cats", Text: "Cats sleep most of the day and hunt mice at night."},
		{ID: "dogs", Title: "Dogs", Text: "A dog's nose is its best tool; dogs were running across the field."},
		{ID: "runner", Title: "Marathon", Text: "The runner runs a marathon. Running long distances needs training."},
		{ID: "long", Title: "Zoo", Text: "Many animals live in the zoo: lions, tigers, bears, elephants, giraffes, " +
			"zebras, monkeys, penguins, seals, wolves, foxes and one dog that guards the gate at night."},
		{ID: "empty"},
	}
	x := buildIndex(t, docs, 2)
	cases := []struct{ query, want string }{
		{"which dog ran", "dogs"},           // dog's → dog, dogs → dog
		{"running", "runner"},               // runs, running → run
		{"what do cats hunt", "cats"},       // hunt occurs once, in cats
		{"dog", "dogs"},                     // tf 2 in a short doc beats tf 1 in the long zoo doc
		{"dog at night", "long"},            // the only document with both terms
		{"marathon training run", "runner"}, // all three terms
	}
	for _, c := range cases {
		hits := searchQ(t, x, c.query, 10)
		if len(hits) == 0 || hits[0].DocID != c.want {
			t.Errorf("%q: got %v, want %s first", c.query, ids(hits), c.want)
		}
		for _, h := range hits {
			if h.DocID == "empty" {
				t.Errorf("%q: the empty document matched", c.query)
			}
		}
	}
	if m := x.Meta(); m.Docs != 5 {
		t.Errorf("docs = %d, want 5 (the empty document counts)", m.Docs)
	}
}

// oracle scores every document by brute force from the analysed tokens.
func oracle(docs []corpora.Doc, query string, p Params, an analysis.Analyzer) map[string]float64 {
	tf := make([]map[string]int, len(docs))
	df := map[string]int{}
	total := 0
	dl := make([]int, len(docs))
	for i, d := range docs {
		tf[i] = map[string]int{}
		toks := an.Analyze([]byte(d.Content()))
		dl[i] = len(toks)
		total += len(toks)
		for _, tok := range toks {
			if tf[i][string(tok.Term)] == 0 {
				df[string(tok.Term)]++
			}
			tf[i][string(tok.Term)]++
		}
	}
	n := float64(len(docs))
	avgdl := float64(total) / n
	out := map[string]float64{}
	for _, qt := range an.Analyze([]byte(query)) {
		t := string(qt.Term)
		idf := math.Log(1 + (n-float64(df[t])+0.5)/(float64(df[t])+0.5))
		for i, d := range docs {
			if f := float64(tf[i][t]); f > 0 {
				out[d.ID] += idf * f / (f + p.K1*(1-p.B+p.B*float64(dl[i])/avgdl))
			}
		}
	}
	return out
}

func enAnalyzer(t testing.TB) analysis.Analyzer {
	an, err := registry.NewCache().AnalyzerNamed(Analyzer)
	if err != nil {
		t.Fatal(err)
	}
	return an
}

// TestOracle compares Search with brute-force BM25 on random corpora with
// several segments, for several k1, b and k.
func TestOracle(t *testing.T) {
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon the of and")
	an := enAnalyzer(t)
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(n int) string {
		w := make([]string, n)
		for i := range w {
			// Zipf-like: early words are frequent
			w[i] = words[int(float64(len(words))*math.Pow(rng.Float64(), 2))]
		}
		return strings.Join(w, " ")
	}
	for r := 0; r < rounds; r++ {
		docs := make([]corpora.Doc, 1+rng.IntN(60))
		for i := range docs {
			docs[i] = corpora.Doc{ID: fmt.Sprintf("r%d-d%d", r, i), Title: text(rng.IntN(3)), Text: text(rng.IntN(40))}
		}
		x := buildIndex(t, docs, 1+rng.IntN(20))
		for q := 0; q < 5; q++ {
			query := text(1 + rng.IntN(6))
			p := Params{K1: 2 * rng.Float64(), B: rng.Float64()}
			want := oracle(docs, query, p, an)
			k := 1 + rng.IntN(len(docs)+2)
			s, err := x.NewSearcher(p)
			if err != nil {
				t.Fatal(err)
			}
			hits, err := s.Search(query, k)
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			checkAgainst(t, fmt.Sprintf("round %d query %q %+v k=%d", r, query, p, k), hits, want, k)
		}
	}
}

// checkAgainst asserts hits are the k best of want (scores within 1e-9),
// best first.
func checkAgainst(t *testing.T, what string, hits []corpora.Hit, want map[string]float64, k int) {
	t.Helper()
	if len(hits) != min(k, len(want)) {
		t.Fatalf("%s: %d hits, want %d", what, len(hits), min(k, len(want)))
	}
	scores := make([]float64, 0, len(want))
	for _, v := range want {
		scores = append(scores, v)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(scores)))
	for i, h := range hits {
		w, ok := want[h.DocID]
		if !ok {
			t.Fatalf("%s: hit %s does not contain a query term", what, h.DocID)
		}
		if math.Abs(h.Score-w) > 1e-9*max(1, math.Abs(w)) {
			t.Fatalf("%s: %s score %.15g, oracle %.15g", what, h.DocID, h.Score, w)
		}
		if math.Abs(h.Score-scores[i]) > 1e-9*max(1, math.Abs(w)) {
			t.Fatalf("%s: rank %d score %.15g, oracle's rank %d score %.15g", what, i+1, h.Score, i+1, scores[i])
		}
	}
}

// TestBleveScoringFormula proves bleve's own scoring on this index is its
// BM25 model (not TF-IDF), and pins the formula the Bleve doc comment
// gives, so a bleve upgrade that changes it fails here.
func TestBleveScoringFormula(t *testing.T) {
	x := buildIndex(t, tiny, 1000) // one batch: one segment of 3 distinct terms
	p := Params{K1: 1.1, B: 0.3}
	// bleve's avgdl: ⌈distinct terms / N⌉ = ⌈3/3⌉ = 1.
	const bleveAvgDL = 1.0
	sat := func(tf, dl float64) float64 {
		s := math.Sqrt(tf)
		return s * p.K1 / (s + p.K1*(1-p.B+p.B*dl/bleveAvgDL))
	}
	idf2 := math.Log(1 + (3-2+0.5)/(2+0.5))
	idf1 := math.Log(1 + (3-1+0.5)/(1+0.5))

	// One term: idf · sat.
	hits, err := x.SearchBleve("apple", 10, p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"d1": idf2 * sat(1, 2), "d2": idf2 * sat(2, 3)}
	tfidf := map[string]float64{ // bleve's TF-IDF for the same postings
		"d1": math.Sqrt(1) / math.Sqrt(2) * (1 + math.Log(3.0/3)),
		"d2": math.Sqrt(2) / math.Sqrt(3) * (1 + math.Log(3.0/3)),
	}
	// bleve recovers dl as 1/norm² from a float32 norm without rounding,
	// so its scores agree to about 1e-8 only.
	const tol = 1e-7
	if len(hits) != 2 {
		t.Fatalf("apple: %v, want d1 and d2", ids(hits))
	}
	for _, h := range hits {
		if math.Abs(h.Score-want[h.DocID]) > tol {
			t.Errorf("apple: %s bleve score %.12g, want bleve-bm25 %.12g (tf-idf would be %.12g)", h.DocID, h.Score, want[h.DocID], tfidf[h.DocID])
		}
		if math.Abs(h.Score-tfidf[h.DocID]) < 1e-6 {
			t.Errorf("apple: %s scored as TF-IDF", h.DocID)
		}
	}

	// Two terms: coord · queryNorm · Σ idf² · sat, queryNorm = 1/√Σ idf².
	hits, err = x.SearchBleve("banana cherry", 10, p)
	if err != nil {
		t.Fatal(err)
	}
	qn := 1 / math.Sqrt(idf2*idf2+idf1*idf1)
	want = map[string]float64{
		"d1": 0.5 * qn * idf2 * idf2 * sat(1, 2),
		"d2": 0.5 * qn * idf1 * idf1 * sat(1, 3),
		"d3": 0.5 * qn * idf2 * idf2 * sat(1, 1),
	}
	if len(hits) != 3 {
		t.Fatalf("banana cherry: %v, want 3 hits", ids(hits))
	}
	for _, h := range hits {
		if math.Abs(h.Score-want[h.DocID]) > tol {
			t.Errorf("banana cherry: %s bleve score %.12g, want %.12g", h.DocID, h.Score, want[h.DocID])
		}
	}

	// The global parameters were set for the search.
	if got := bleveK1B(); got != p {
		t.Errorf("bleve globals %+v, want %+v", got, p)
	}
}

// TestTiesBreakByID: equal scores rank by document id whatever the
// indexing order and batching, including at the k cut.
func TestTiesBreakByID(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 4; round++ {
		var docs []corpora.Doc
		for _, i := range rng.Perm(30) {
			docs = append(docs, corpora.Doc{ID: fmt.Sprintf("t%02d", i), Text: "alpha beta words"})
		}
		docs = append(docs, corpora.Doc{ID: "z-best", Text: "words"}) // shorter: scores higher
		x := buildIndex(t, docs, 1+rng.IntN(12))
		got := ids(searchQ(t, x, "words", 5))
		want := []string{"z-best", "t00", "t01", "t02", "t03"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: %v, want %v", round, got, want)
		}
	}
}

func TestSearchAllMatchesSearch(t *testing.T) {
	docs := make([]corpora.Doc, 200)
	rng := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields("red green blue cyan magenta yellow black white grey brown pink")
	for i := range docs {
		w := make([]string, 5+rng.IntN(20))
		for j := range w {
			w[j] = words[rng.IntN(len(words))]
		}
		docs[i] = corpora.Doc{ID: fmt.Sprintf("d%03d", i), Text: strings.Join(w, " ")}
	}
	x := buildIndex(t, docs, 64)
	var qs []corpora.Query
	for i := 0; i < 50; i++ {
		qs = append(qs, corpora.Query{ID: fmt.Sprintf("q%d", i), Text: words[rng.IntN(len(words))] + " " + words[rng.IntN(len(words))]})
	}
	qs = append(qs, corpora.Query{ID: "stop", Text: "the of"})
	for _, workers := range []int{1, 2, 7} {
		var done int
		var mu = make(chan struct{}, 1)
		run, err := x.SearchAll(qs, SearchOptions{K: 10, Params: defaults, Workers: workers, Done: func() {
			mu <- struct{}{}
			done++
			<-mu
		}})
		if err != nil {
			t.Fatal(err)
		}
		if done != len(qs) || len(run) != len(qs) {
			t.Fatalf("workers=%d: %d done, %d queries in run, want %d", workers, done, len(run), len(qs))
		}
		for _, q := range qs {
			want := searchQ(t, x, q.Text, 10)
			if !reflect.DeepEqual(run[q.ID], want) {
				t.Fatalf("workers=%d query %s: %v, want %v", workers, q.ID, run[q.ID], want)
			}
		}
		if len(run["stop"]) != 0 {
			t.Errorf("stop-word query has hits %v", run["stop"])
		}
	}
	// bleve scoring through SearchAll gives bleve's hits
	run, err := x.SearchAll(qs[:3], SearchOptions{K: 5, Params: defaults, Scoring: Bleve, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs[:3] {
		want, err := x.SearchBleve(q.Text, 5, defaults)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(run[q.ID], want) {
			t.Errorf("bleve scoring %s: %v, want %v", q.ID, run[q.ID], want)
		}
	}
	if _, err := x.SearchAll([]corpora.Query{{ID: "a"}, {ID: "a"}}, SearchOptions{K: 1}); !errors.Is(err, corpora.ErrDuplicateID) {
		t.Errorf("duplicate query ids: err %v, want ErrDuplicateID", err)
	}
	if _, err := x.SearchAll(qs, SearchOptions{K: 0}); err == nil {
		t.Error("k=0: no error")
	}
	if _, err := x.SearchAll(qs, SearchOptions{K: 1, Scoring: "tfidf"}); err == nil {
		t.Error("scoring tfidf: no error")
	}
}

func TestBuildErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := Build(dir, docsOf(nil), BuildOptions{}); err == nil || !strings.Contains(err.Error(), "no documents") {
		t.Errorf("empty corpus: err %v", err)
	}
	if _, err := Build(dir, docsOf([]corpora.Doc{{ID: "a"}, {ID: "b"}, {ID: "a"}}), BuildOptions{}); !errors.Is(err, corpora.ErrDuplicateID) {
		t.Errorf("duplicate ids: err %v, want ErrDuplicateID", err)
	}
	if _, err := Build(dir, docsOf([]corpora.Doc{{Text: "x"}}), BuildOptions{}); !errors.Is(err, corpora.ErrMissingID) {
		t.Errorf("empty id: err %v, want ErrMissingID", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "spladapt bm25 index") {
		t.Errorf("failed builds left something openable, or the error gives no fix: %v", err)
	}

	// A good build, then a failing rebuild: the old index survives.
	var progress []int
	if _, err := Build(dir, docsOf(tiny), BuildOptions{BatchSize: 2, Progress: func(n int) { progress = append(progress, n) }}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(progress, []int{2, 3}) {
		t.Errorf("progress calls %v, want [2 3]", progress)
	}
	boom := errors.New("boom")
	i := 0
	_, err := Build(dir, func() (corpora.Doc, error) {
		if i++; i > 2 {
			return corpora.Doc{}, boom
		}
		return corpora.Doc{ID: fmt.Sprint(i), Text: "new"}, nil
	}, BuildOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("failing reader: err %v, want boom", err)
	}
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Meta().Docs != 3 {
		t.Errorf("after a failed rebuild the index has %d docs, want the old 3", x.Meta().Docs)
	}
	s, err := x.NewSearcher(Params{K1: -1, B: 0.4})
	if err == nil {
		s.Close()
		t.Error("k1 = -1 accepted")
	}
	if _, err := x.NewSearcher(Params{K1: 1, B: 1.5}); err == nil {
		t.Error("b = 1.5 accepted")
	}
	if s, err = x.NewSearcher(defaults); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Search("apple", 0); err == nil {
		t.Error("k = 0 accepted")
	}
}

func TestOpenRejectsOtherFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := Build(dir, docsOf(tiny), BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, metaFile)
	b := readFile(t, path)
	writeFile(t, path, strings.Replace(b, `"format": 1`, `"format": 99`, 1))
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "format 99, want 1") {
		t.Errorf("format 99: err %v", err)
	}
	writeFile(t, path, strings.Replace(b, `"docs": 3`, `"docs": 4`, 1))
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "bleve holds 3 documents") {
		t.Errorf("docs mismatch: err %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
