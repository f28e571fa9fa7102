package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

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
				var out Response
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
