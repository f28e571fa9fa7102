package serve

// Issue 20: a slow body cannot hold a connection open, k means the same in
// GET and POST, trailing data after a JSON body and negative weights are
// errors.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spladapt/spladapt/index"
)

// serveSmall serves a two-document index with opts; it returns the base
// URL and the listening address.
func serveSmall(t *testing.T, opts Options) (string, string) {
	t.Helper()
	b, err := index.NewBuilder(index.Options{Vocab: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	b.Add("d1", []index.TermWeight{{Term: 0, Weight: 1}, {Term: 1, Weight: 0.5}})
	b.Add("d2", []index.TermWeight{{Term: 1, Weight: 1}})
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := New(r, nil, opts)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, "127.0.0.1:0", srv.Handler(), time.Second, func(a string) { addrc <- a })
	}()
	addr := <-addrc
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + addr, addr
}

// A POST announcing 1 000 bytes and sending 10 is cut off by the read
// deadline (here the 300 ms time limit), not left open.
func TestSlowBodyCutOff(t *testing.T) {
	_, addr := serveSmall(t, Options{Timeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"q\": \"a\",")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The server must also close the connection.
		_, err = c.Read(make([]byte, 1))
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s: no read deadline on the body", time.Since(start).Round(time.Millisecond))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("cut off after %s, want about the 300 ms limit", el)
	}
}

func TestRequestRules(t *testing.T) {
	base, _ := serveSmall(t, Options{Timeout: 5 * time.Second, MaxK: 100})
	post := func(body string) (int, string) {
		resp, err := http.Post(base+"/search", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(q string) (int, string) {
		resp, err := http.Get(base + "/search?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		name   string
		code   int
		body   string
		get    bool
		errHas string
	}{
		{"GET k=0", 400, "q=a&k=0", true, "k = 0"},
		{"POST k:0", 400, `{"q":"a","k":0}`, false, "k = 0"},
		{"POST no k", 200, `{"q":"a"}`, false, ""},
		{"POST trailing", 400, `{"q":"a"} {"q":"b"}`, false, "after"},
		{"POST trailing junk", 400, `{"q":"a"}xyz`, false, "after"},
		{"POST trailing space", 200, "{\"q\":\"a\"}\n \n", false, ""},
		{"GET negative", 400, "q=a:-1", true, "negative"},
		{"POST negative", 400, `{"vector":{"a":-1}}`, false, "negative"},
	} {
		var code int
		var body string
		if c.get {
			code, body = get(c.body)
		} else {
			code, body = post(c.body)
		}
		if code != c.code || !strings.Contains(body, c.errHas) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, strings.TrimSpace(body), c.code, c.errHas)
		}
	}
}
