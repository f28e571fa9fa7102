package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/index/serve"
)

func serveGet(t *testing.T, base, path string, v any) int {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

// TestServeCorpus: "serve --corpus" over a BM25 index of the tiny
// collection gives hits their titles and snippets and explanations that
// know there are no expansion terms; over a SPLADE index of the toy
// collection with --model, explanations mark as expansions exactly the
// matched terms that are not word pieces of the document's text.
func TestServeCorpus(t *testing.T) {
	tiny := filepath.Join("..", "..", "bm25", "testdata", "tiny")
	dir := t.TempDir()
	bidx := filepath.Join(dir, "bm25")
	if _, _, err := bm25CLI(t, nil, "index", "build-bm25", "--corpus", tiny, "--out", bidx); err != nil {
		t.Fatal(err)
	}
	srv, r, err := buildServer(config.Default(), bidx, "", tiny, true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	if code := serveGet(t, ts.URL, "/?q=apple", nil); code != 200 {
		t.Errorf("GET /: %d", code)
	}
	var res serve.Response
	serveGet(t, ts.URL, "/search?q=apple+pie", &res)
	if len(res.Hits) != 2 || res.Hits[0].ID != "d4" || res.Hits[0].Title != "The apple pie" || res.Hits[0].Snippet != "recipe with banana" {
		t.Fatalf("bm25 hits %+v", res.Hits)
	}
	var ex serve.Explanation
	serveGet(t, ts.URL, "/explain?q=apple+pie&doc=d4", &ex)
	if !ex.ExpansionKnown || len(ex.Terms) != 2 || ex.Score != res.Hits[0].Score {
		t.Errorf("bm25 explanation %+v, want 2 terms adding up to %v", ex, res.Hits[0].Score)
	}
	for _, tm := range ex.Terms {
		if tm.Expansion == nil || *tm.Expansion {
			t.Errorf("bm25 term %s marked expansion %v", tm.Token, tm.Expansion)
		}
	}

	toy := writeSpladeToy(t)
	model := writeTinyModel(t, 5)
	sidx := filepath.Join(dir, "splade")
	if _, errOut, err := bm25CLI(t, nil, "encode", "--model", model, "--corpus", toy, "--out", sidx, "--max-length", "32"); err != nil {
		t.Fatalf("encode: %v\n%s", err, errOut)
	}
	cfg := config.Default()
	cfg.Model.MaxLength = 32
	srv, r2, err := buildServer(cfg, sidx, model, toy, true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	ts2 := httptest.NewServer(srv.Handler())
	defer ts2.Close()
	q := "cat mouse"
	res = serve.Response{}
	serveGet(t, ts2.URL, "/search?k=3&q="+url.QueryEscape(q), &res)
	if len(res.Hits) != 3 {
		t.Fatalf("splade hits %+v", res.Hits)
	}
	expansions := 0
	for _, h := range res.Hits {
		if h.Snippet != spladeToy.docs[h.ID] {
			t.Errorf("hit %s snippet %q, want %q", h.ID, h.Snippet, spladeToy.docs[h.ID])
		}
		ex = serve.Explanation{}
		serveGet(t, ts2.URL, "/explain?q="+url.QueryEscape(q)+"&doc="+h.ID, &ex)
		if !ex.ExpansionKnown || len(ex.Terms) == 0 {
			t.Fatalf("splade explanation of %s: %+v", h.ID, ex)
		}
		own := map[string]bool{"[CLS]": true, "[SEP]": true}
		for _, w := range strings.Fields(spladeToy.docs[h.ID]) {
			own[w] = true
		}
		for _, tm := range ex.Terms {
			if tm.Expansion == nil || *tm.Expansion == own[tm.Token] {
				t.Errorf("%s: term %q expansion %v, in the text: %v", h.ID, tm.Token, tm.Expansion, own[tm.Token])
			}
			if tm.Expansion != nil && *tm.Expansion {
				expansions++
			}
		}
	}
	t.Logf("%d expansion terms matched in the top 3", expansions)
	if expansions == 0 {
		t.Error("a random model's vectors matched no expansion term: the marking is not exercised")
	}
}
