// Command serveload measures the search server under load: it serves a
// synthetic index (internal/synth's Default collection, vocabulary
// "w<term id>") on a loopback port with index/serve and fires -clients
// concurrent clients at POST /search for -seconds, then prints the
// requests, errors, throughput and latency percentiles:
//
//	go run ./tools/serveload -docs 1000000 -seconds 20
//
// Figures it produced are in docs/performance.md with their commit.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/index/serve"
	"github.com/spladapt/spladapt/internal/synth"
)

func main() {
	docs := flag.Int("docs", 20000, "synthetic documents")
	secs := flag.Int("seconds", 2, "seconds of load")
	clients := flag.Int("clients", 16, "concurrent clients")
	k := flag.Int("k", 10, "hits per query")
	flag.Parse()
	if err := run(*docs, *secs, *clients, *k); err != nil {
		fmt.Fprintln(os.Stderr, "serveload:", err)
		os.Exit(1)
	}
}

func run(n, secs, clients, k int) error {
	tmp, err := os.MkdirTemp("", "serveload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	g := synth.New(synth.Default)
	vocab := make([]string, synth.Default.Vocab)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%d", i)
	}
	dir := filepath.Join(tmp, "idx")
	if _, err := g.WriteIndex(dir, n, nil, index.Options{Vocab: vocab, Fingerprint: "synth"}); err != nil {
		return err
	}
	r, err := index.Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	srv := serve.New(r, nil, serve.Options{MaxBodyBytes: 4096, Timeout: 5 * time.Second, MaxK: 1000, Algorithm: index.BlockMax})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.ListenAndServe(ctx, "127.0.0.1:0", srv.Handler(), 5*time.Second, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		return err
	}
	bodies := make([][]byte, 500)
	for i := range bodies {
		m := map[string]float64{}
		for _, tw := range g.Query(i) {
			m[fmt.Sprintf("w%d", tw.Term)] = float64(tw.Weight)
		}
		bodies[i], _ = json.Marshal(map[string]any{"vector": m, "k": k})
	}
	res := Load(ctx, "http://"+addr+"/search", bodies, clients, time.Duration(secs)*time.Second)
	cancel()
	if err := <-done; err != nil {
		return err
	}
	fmt.Printf("docs=%d top-%d POST /search: %v\n", n, k, res)
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed", res.Errors, res.Requests)
	}
	return nil
}

// LoadResult summarises a load test.
type LoadResult struct {
	Clients  int
	Requests int
	Errors   int
	Duration time.Duration
	QPS      float64
	P50, P99 time.Duration
}

func (r LoadResult) String() string {
	return fmt.Sprintf("clients=%d requests=%d errors=%d duration=%.1fs QPS=%.0f p50=%.3fms p99=%.3fms",
		r.Clients, r.Requests, r.Errors, r.Duration.Seconds(), r.QPS, float64(r.P50)/1e6, float64(r.P99)/1e6)
}

// Load posts bodies round-robin to url from clients concurrent clients
// for d and measures latency; any non-200 answer counts as an error.
func Load(ctx context.Context, url string, bodies [][]byte, clients int, d time.Duration) LoadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for i := c; time.Now().Before(deadline) && ctx.Err() == nil; i += clients {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					bad++
					continue
				}
				var out serve.Response
				err = json.NewDecoder(resp.Body).Decode(&out)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || len(out.Hits) == 0 {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	res := LoadResult{Clients: clients, Requests: len(lat) + errs, Errors: errs, Duration: el}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
		res.QPS = float64(len(lat)) / el.Seconds()
	}
	return res
}
