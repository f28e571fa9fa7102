package elastic

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/index"
)

var awkward = []string{"[PAD]", ".", "...", "%", "%2E", "a.b", `say"hi"`, `back\slash`, "tab\there", "café", "東京", "##ing", "<b>&"}

func testIndex(t *testing.T, n int) *index.Reader {
	t.Helper()
	toks := append([]string(nil), awkward...)
	for i := len(toks); i < 40; i++ {
		toks = append(toks, fmt.Sprintf("tok%02d", i))
	}
	b, err := index.NewBuilder(index.Options{Vocab: toks, QuantBits: 8})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for d := range n {
		var vec []index.TermWeight
		for _, term := range rng.Perm(len(toks))[:rng.IntN(10)] { // some documents are empty
			vec = append(vec, index.TermWeight{Term: uint32(term), Weight: rng.Float32() * 2})
		}
		if _, err := b.Add(fmt.Sprintf("d%d \"q\"", d), vec); err != nil {
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
	return r
}

func TestFeatureEscaping(t *testing.T) {
	for _, tok := range append(awkward, "%252E", "..%..", "") {
		f := Feature(tok)
		if strings.Contains(f, ".") {
			t.Errorf("Feature(%q) = %q contains a dot", tok, f)
		}
		if got := Unescape(f); got != tok {
			t.Errorf("Unescape(Feature(%q)) = %q", tok, got)
		}
	}
}

func TestMapping(t *testing.T) {
	for e, want := range map[Engine]string{OpenSearch: "rank_features", Elasticsearch: "sparse_vector"} {
		var m struct {
			Mappings struct {
				Properties map[string]struct {
					Type string `json:"type"`
				} `json:"properties"`
			} `json:"mappings"`
		}
		if err := json.Unmarshal(Mapping(e, "vec"), &m); err != nil {
			t.Fatal(err)
		}
		p := m.Mappings.Properties
		if len(p) != 2 || p["vec"].Type != want || p["id"].Type != "keyword" {
			t.Errorf("%s mapping %+v, want vec: %s, id: keyword", e, p, want)
		}
	}
}

// TestBulkRoundTrip exports an index in several bulk files and reads
// every line back: action and source ids, escaped features, and weights
// equal to impact × scale as float32, for every posting of the index.
func TestBulkRoundTrip(t *testing.T) {
	r := testIndex(t, 50)
	dir := filepath.Join(t.TempDir(), "os")
	docs, files, err := Export(dir, OpenSearch, DefaultField, 7, IndexSource(r))
	if err != nil {
		t.Fatal(err)
	}
	if docs != 50 || files != 8 {
		t.Fatalf("%d docs in %d files, want 50 in 8", docs, files)
	}
	got := map[string]map[string]float32{} // doc id → token → weight
	var order []string
	for i := range files {
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf(BulkPattern, i)))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var action struct {
				Index struct {
					ID string `json:"_id"`
				} `json:"index"`
			}
			if err := json.Unmarshal(sc.Bytes(), &action); err != nil || action.Index.ID == "" {
				t.Fatalf("action line %q: %v", sc.Text(), err)
			}
			if !sc.Scan() {
				t.Fatal("action without a source line")
			}
			var src struct {
				ID  string             `json:"id"`
				Vec map[string]float32 `json:"splade"`
			}
			if err := json.Unmarshal(sc.Bytes(), &src); err != nil || src.ID != action.Index.ID {
				t.Fatalf("source line %q (action id %q): %v", sc.Text(), action.Index.ID, err)
			}
			vec := map[string]float32{}
			for f, w := range src.Vec {
				if strings.Contains(f, ".") {
					t.Errorf("feature %q has a dot", f)
				}
				vec[Unescape(f)] = w
			}
			got[src.ID] = vec
			order = append(order, src.ID)
		}
		f.Close()
	}
	want := map[string]map[string]float32{}
	for d := range uint32(r.NumDocs()) {
		want[r.DocID(d)] = map[string]float32{}
		if order[d] != r.DocID(d) {
			t.Errorf("document %d is %q, want %q", d, order[d], r.DocID(d))
		}
	}
	scale := r.Meta().Scale
	for term := range uint32(r.NumTerms()) {
		docs, imps, err := r.Postings(term, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := r.Token(term)
		for i, d := range docs {
			want[r.DocID(d)][tok] = float32(float64(imps[i]) * scale)
		}
	}
	n := 0
	for id, wv := range want {
		gv := got[id]
		if len(gv) != len(wv) {
			t.Errorf("doc %q: %d features, want %d", id, len(gv), len(wv))
		}
		for tok, w := range wv {
			if gv[tok] != w {
				t.Errorf("doc %q token %q: %g, want %g", id, tok, gv[tok], w)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("the index has no postings")
	}
}

func TestQueryBodies(t *testing.T) {
	q := []Term{{"a.b", 1.5}, {`say"hi"`, 0.25}, {"zero", 0}, {"neg", -1}}
	want := map[string]float32{"a%2Eb": 1.5, `say"hi"`: 0.25}
	for _, c := range []struct {
		e     Engine
		style QueryStyle
	}{{Elasticsearch, NeuralSparse}, {OpenSearch, NeuralSparse}, {OpenSearch, RankFeature}} {
		b, err := Query(c.e, c.style, "vec", q, 10)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Size  int `json:"size"`
			Query struct {
				SparseVector struct {
					Field       string             `json:"field"`
					QueryVector map[string]float32 `json:"query_vector"`
				} `json:"sparse_vector"`
				NeuralSparse map[string]struct {
					QueryTokens map[string]float32 `json:"query_tokens"`
				} `json:"neural_sparse"`
				Bool struct {
					Should []struct {
						RankFeature struct {
							Field  string          `json:"field"`
							Boost  float32         `json:"boost"`
							Linear json.RawMessage `json:"linear"`
						} `json:"rank_feature"`
					} `json:"should"`
				} `json:"bool"`
			} `json:"query"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("%s: %v\n%s", c.e, err, b)
		}
		got := map[string]float32{}
		switch {
		case c.e == Elasticsearch:
			if body.Query.SparseVector.Field != "vec" {
				t.Errorf("elasticsearch field %q", body.Query.SparseVector.Field)
			}
			got = body.Query.SparseVector.QueryVector
		case c.style == NeuralSparse:
			got = body.Query.NeuralSparse["vec"].QueryTokens
		default:
			for _, s := range body.Query.Bool.Should {
				f, ok := strings.CutPrefix(s.RankFeature.Field, "vec.")
				if !ok || string(s.RankFeature.Linear) != "{}" {
					t.Errorf("rank_feature clause %+v", s.RankFeature)
				}
				got[f] = s.RankFeature.Boost
			}
		}
		if body.Size != 10 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s style %d: size %d, vector %v, want %v\n%s", c.e, c.style, body.Size, got, want, b)
		}
	}
	if _, err := Query(OpenSearch, NeuralSparse, "vec", []Term{{"x", 1}, {"x", 2}}, 10); err == nil {
		t.Error("repeated token accepted")
	}
}
