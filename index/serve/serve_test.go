package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/synth"
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// start builds a synthetic index of n docs with a vocabulary "w<id>" and
// serves it on a loopback port.
func start(t *testing.T, n int) (*index.Reader, *synth.Gen, string, func() error) {
	t.Helper()
	g := synth.New(synth.Default)
	vocab := make([]string, synth.Default.Vocab)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%d", i)
	}
	b, err := index.NewBuilder(index.Options{Vocab: vocab, Fingerprint: "synth"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := b.Add("doc"+strconv.Itoa(i), g.Doc(i)); err != nil {
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
	srv := New(r, nil, Options{MaxBodyBytes: 4096, Timeout: 5 * time.Second, MaxK: 100, Algorithm: index.BlockMax})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, "127.0.0.1:0", srv.Handler(), 5*time.Second, func(a string) { addrc <- a })
	}()
	addr := <-addrc
	return r, g, "http://" + addr, func() error { cancel(); return <-done }
}

func vectorBody(q []index.TermWeight, k int) []byte {
	m := map[string]float64{}
	for _, tw := range q {
		m[fmt.Sprintf("w%d", tw.Term)] = float64(tw.Weight)
	}
	b, _ := json.Marshal(map[string]any{"vector": m, "k": k})
	return b
}

func TestAPI(t *testing.T) {
	r, g, base, stop := start(t, 3000)
	q := g.Query(0)
	want, err := r.Search(q, 10, index.Exhaustive)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/search", "application/json", bytes.NewReader(vectorBody(q, 10)))
	if err != nil {
		t.Fatal(err)
	}
	var got Response
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got.Hits) != len(want) {
		t.Fatalf("POST /search: status %d, %d hits, want %d", resp.StatusCode, len(got.Hits), len(want))
	}
	for i, h := range want {
		if got.Hits[i].ID != r.DocID(h.Doc) || got.Hits[i].Score != h.Score {
			t.Errorf("hit %d: %+v, want %s %v", i, got.Hits[i], r.DocID(h.Doc), h.Score)
		}
	}
	// GET with a bag of tokens equals POST of the same vector.
	words := []string{}
	for _, tw := range q[:5] {
		words = append(words, fmt.Sprintf("w%d:%g", tw.Term, tw.Weight))
	}
	want5, _ := r.Search(q[:5], 3, index.Exhaustive)
	resp, err = http.Get(base + "/search?k=3&q=" + strings.Join(words, "+"))
	if err != nil {
		t.Fatal(err)
	}
	got = Response{}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got.Hits) != 3 || got.Hits[0].ID != r.DocID(want5[0].Doc) || got.Hits[2].ID != r.DocID(want5[2].Doc) {
		t.Errorf("GET /search: %+v, want docs %v", got.Hits, want5)
	}

	for _, c := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/search?q=w1&k=0", "", 400, "k = 0"},
		{"GET", "/search?q=w1&k=101", "", 400, "want 1..100"},
		{"GET", "/search?q=w1&k=x", "", 400, "not an integer"},
		{"GET", "/search?q=nosuch", "", 400, "not in the vocabulary"},
		{"GET", "/search", "", 400, "missing query"},
		{"POST", "/search", `{"vector": {"w1": 1}, "q": "w2"}`, 400, "not both"},
		{"POST", "/search", `{"vector": `, 400, "decode request"},
		{"POST", "/search", `{"vektor": {}}`, 400, "unknown field"},
		{"POST", "/search", `{"q": "` + strings.Repeat("w1 ", 3000) + `"}`, 413, "over 4096 bytes"},
		{"DELETE", "/search", "", 405, "not allowed"},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]string
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(e["error"], c.msg) {
			t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.path, resp.StatusCode, e["error"], c.code, c.msg)
		}
	}
	resp, err = http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st["num_docs"] != float64(3000) || st["queries"] != float64(2) || st["errors"] != float64(10) {
		t.Errorf("stats %v: want 3000 docs, 2 queries, 10 errors", st)
	}
	if err := stop(); err != nil {
		t.Errorf("graceful shutdown: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

// TestConcurrentClients: 16 clients searching at once all get their
// answers, each equal to the index's own top-10.
// (tools/serveload measures the server's throughput and latency.)
func TestConcurrentClients(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 3000
	}
	r, g, base, stop := start(t, n)
	defer stop()
	const clients, perClient = 16, 20
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			for i := range perClient {
				q := g.Query(c*perClient + i)
				resp, err := http.Post(base+"/search", "application/json", bytes.NewReader(vectorBody(q, 10)))
				if err != nil {
					errs <- err
					return
				}
				var out Response
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("query %d: status %d, %v", c*perClient+i, resp.StatusCode, err)
					return
				}
				want, err := r.Search(q, 10, index.Exhaustive)
				if err != nil {
					errs <- err
					return
				}
				if len(out.Hits) != len(want) {
					errs <- fmt.Errorf("query %d: %d hits, want %d", c*perClient+i, len(out.Hits), len(want))
					return
				}
				for j, h := range want {
					if out.Hits[j].ID != r.DocID(h.Doc) {
						errs <- fmt.Errorf("query %d hit %d: %s, want %s", c*perClient+i, j, out.Hits[j].ID, r.DocID(h.Doc))
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
