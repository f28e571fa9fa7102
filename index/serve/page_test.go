package serve

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
)

// tinyCorpus is the bm25 package's four-document BEIR fixture.
var tinyCorpus = filepath.Join("..", "..", "bm25", "testdata", "tiny")

// expansions are the terms each fixture document gets on top of its own
// words, as a SPLADE model would add them (weight 0.5).
var expansions = map[string][]string{
	"d1": {"fruit", "tree"}, "d2": {"fruit"}, "d3": {"flower", "tree"}, "d4": {"dessert", "fruit"},
}

// words are a text's own tokens: lower-cased, split at anything that is
// not a letter.
func words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return r < 'a' || r > 'z' })
}

// pageServer builds an index of the tiny corpus (each word of title and
// text weight 1 per occurrence, plus the expansion terms) with the
// corpus's texts, and serves it.
func pageServer(t testing.TB) (*httptest.Server, *index.Reader) {
	t.Helper()
	src, err := corpora.BEIR{Dir: tinyCorpus}.Corpus(corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []corpora.Doc
	for {
		d, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	src.Close()
	vocabSet := map[string]bool{}
	for _, d := range docs {
		for _, w := range append(words(d.Content()), expansions[d.ID]...) {
			vocabSet[w] = true
		}
	}
	vocab := slices.Sorted(func(yield func(string) bool) {
		for w := range vocabSet {
			if !yield(w) {
				return
			}
		}
	})
	b, err := index.NewBuilder(index.Options{Vocab: vocab, Fingerprint: "page-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		weights := map[string]float32{}
		for _, w := range words(d.Content()) {
			weights[w]++
		}
		for _, w := range expansions[d.ID] {
			weights[w] += 0.5
		}
		var vec []index.TermWeight
		for w, x := range weights {
			tm, _ := b.Term(w)
			vec = append(vec, index.TermWeight{Term: tm, Weight: x})
		}
		if _, err := b.Add(d.ID, vec); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	next := func() (corpora.Doc, error) {
		if len(docs) == 0 {
			return corpora.Doc{}, io.EOF
		}
		d := docs[0]
		docs = docs[1:]
		return d, nil
	}
	texts, err := LoadDocs(next, func(id string) bool { _, ok := r.DocNum(id); return ok })
	if err != nil {
		t.Fatal(err)
	}
	enc := index.TokenEncoder{Resolve: index.ReaderResolver(r)}
	srv := New(r, wordEncoder{enc}, Options{Docs: texts, Analyze: func(text string) []uint32 {
		var out []uint32
		for _, w := range words(text) {
			if tm, ok := r.Term(w); ok {
				out = append(out, tm)
			}
		}
		return out
	}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, r
}

// wordEncoder lower-cases the query and drops unknown words, as a model's
// tokenizer would not fail on them.
type wordEncoder struct{ index.TokenEncoder }

func (e wordEncoder) Encode(text string) ([]index.TermWeight, error) {
	var known []string
	for _, w := range strings.Fields(strings.ToLower(text)) {
		if _, err := e.Resolve(strings.SplitN(w, ":", 2)[0]); err == nil {
			known = append(known, w)
		}
	}
	return e.TokenEncoder.Encode(strings.Join(known, " "))
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", u, err)
	}
	return resp.StatusCode
}

// TestExplainEndpoint: /search hits carry title and snippet from the
// corpus; /explain of each hit lists the matched terms by decreasing
// q_t·d_t, adding up to the hit's score, with the expansion terms (not
// among the text's own words) marked; bad requests are 4xx with a message.
func TestExplainEndpoint(t *testing.T) {
	ts, _ := pageServer(t)
	q := "apple fruit"
	var res Response
	if code := getJSON(t, ts.URL+"/search?q="+url.QueryEscape(q), &res); code != 200 || len(res.Hits) != 3 {
		t.Fatalf("search %q: %d, %+v", q, code, res)
	}
	// d1 "Apple / orchards in autumn" and d4 "The apple pie / recipe with
	// banana" have apple 1 + fruit 0.5; d2 (banana) fruit only.
	if res.Hits[2].ID != "d2" || res.Hits[0].Title != "Apple" || res.Hits[0].Snippet != "orchards in autumn" {
		t.Errorf("hits %+v", res.Hits)
	}
	for _, h := range res.Hits {
		var ex Explanation
		if code := getJSON(t, ts.URL+"/explain?q="+url.QueryEscape(q)+"&doc="+h.ID, &ex); code != 200 {
			t.Fatalf("explain %s: %d", h.ID, code)
		}
		if ex.Doc != h.ID || ex.Score != h.Score || ex.QueryTerms != 2 || !ex.ExpansionKnown {
			t.Errorf("explain %s: %+v, want score %v", h.ID, ex, h.Score)
		}
		sum := 0.0
		for i, tm := range ex.Terms {
			sum += tm.Product
			if math.Abs(tm.Product-tm.Query*tm.Doc) > 1e-12 || (i > 0 && tm.Product > ex.Terms[i-1].Product) {
				t.Errorf("explain %s: term %+v (products must be q·d, by decreasing value)", h.ID, tm)
			}
			wantExp := tm.Token == "fruit"
			if tm.Expansion == nil || *tm.Expansion != wantExp {
				t.Errorf("explain %s: %s expansion %v, want %v", h.ID, tm.Token, tm.Expansion, wantExp)
			}
		}
		if math.Abs(sum-h.Score) > 1e-9 {
			t.Errorf("explain %s: products add up to %v, score %v", h.ID, sum, h.Score)
		}
	}
	var ex Explanation
	getJSON(t, ts.URL+"/explain?q=apple+fruit&doc=d2", &ex)
	if len(ex.Terms) != 1 || ex.Terms[0].Token != "fruit" || math.Abs(ex.Terms[0].Doc-0.5) > 0.01 || ex.Terms[0].Query != 1 {
		t.Errorf("explain d2: %+v", ex.Terms)
	}
	getJSON(t, ts.URL+"/explain?q=cherry&doc=d2", &ex)
	if len(ex.Terms) != 0 || ex.Score != 0 {
		t.Errorf("explain of a document the query does not match: %+v", ex)
	}
	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{"/explain?q=apple", 400, "missing doc"},
		{"/explain?q=apple&doc=nosuch", 404, "not in the index"},
		{"/explain?doc=d1", 400, "missing query"},
		{"/nosuch", 404, "no page"},
	} {
		var e map[string]string
		if code := getJSON(t, ts.URL+c.path, &e); code != c.code || !strings.Contains(e["error"], c.msg) {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, code, e["error"], c.code, c.msg)
		}
	}
}

// TestPageServed: GET / is the embedded page with a policy that allows no
// external asset, its script and style are served, and neither the page
// nor its assets name another host.
func TestPageServed(t *testing.T) {
	ts, _ := pageServer(t)
	for _, c := range []struct{ path, ctype, has string }{
		{"/", "text/html", `id="q"`}, {"/?q=apple", "text/html", `src="/page/page.js"`},
		{"/page/page.js", "javascript", "/explain?q="}, {"/page/page.css", "text/css", "details.explain"},
	} {
		resp, err := http.Get(ts.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(string(b), c.has) {
			t.Errorf("GET %s: %d %s, body has %q: %v", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.has, strings.Contains(string(b), c.has))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("GET %s names an external address", c.path)
		}
	}
	entries, _ := os.ReadDir("page")
	if len(entries) != 3 {
		t.Errorf("page/ holds %d files, the test checks 3", len(entries))
	}
}
