// Package download fetches one URL into a local file, resumably: an
// interrupted transfer leaves a partial file, and the next call asks the
// server for the rest with an HTTP Range request. It does not verify what it
// fetched; callers (datasets, hub) hash the finished file against the sum
// they expect.
package download

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Bar shows download progress (*progress.Bar is one).
type Bar interface {
	Add(n int64)
	Done()
}

// Options configure Resume.
type Options struct {
	// Client does the HTTP requests (http.DefaultClient when nil).
	Client *http.Client
	// Header is added to every request (Authorization, User-Agent). Its
	// values never appear in errors or warnings.
	Header http.Header
	// NewBar, when not nil, makes a progress bar for a download of total
	// bytes (total includes bytes already downloaded; 0 if unknown).
	NewBar func(total int64) Bar
	// Warn, when not nil, receives warnings (a server without Range
	// support, a wrong Content-Range).
	Warn func(msg string)
}

func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// StatusError is a download answered with a status other than 200 or 206.
type StatusError struct {
	URL    string
	Status string
	Code   int
}

func (e *StatusError) Error() string { return fmt.Sprintf("download %s: %s", e.URL, e.Status) }

// Result says how Resume went.
type Result struct {
	// Resumed is true when an earlier partial file was continued (or
	// found complete).
	Resumed bool
	// Header is the final response's header (nil when the server answered
	// that the partial file was already complete).
	Header http.Header
}

// Resume fetches url into part, continuing a partial file when the server
// allows. With part already N > 0 bytes long it sends "Range: bytes=N-"
// and appends the answer when it is 206 Partial Content starting at N; a
// 416 whose Content-Range total is N means the file was complete; any
// other answer restarts from zero (with a warning when the server ignored
// the Range). Any status but 200/206/416 is a *StatusError. An error while
// receiving the body keeps part, so that the next call resumes it. Cost:
// one request, or a few when the server answers resume requests wrongly.
func Resume(ctx context.Context, url, part string, o Options) (Result, error) {
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	var res Result
	for attempt := 0; attempt < 3; attempt++ {
		var offset int64
		if fi, err := os.Stat(part); err == nil {
			offset = fi.Size()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return res, fmt.Errorf("download %s: %w", url, err)
		}
		for k, vs := range o.Header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if offset > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		resp, err := client.Do(req)
		if err != nil {
			return res, fmt.Errorf("download %s: %w", url, err)
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		start := int64(0)
		switch {
		case offset > 0 && resp.StatusCode == http.StatusPartialContent:
			first, _, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || first != offset {
				resp.Body.Close()
				o.warn(fmt.Sprintf("%s: the server answered the resume request with Content-Range %q, want bytes from %d; downloading from the start", url, resp.Header.Get("Content-Range"), offset))
				os.Remove(part)
				continue
			}
			flags, start, res.Resumed = os.O_WRONLY|os.O_APPEND, offset, true
		case offset > 0 && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			_, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
			resp.Body.Close()
			if ok && total == offset {
				res.Resumed = true
				return res, nil // the earlier download was complete
			}
			os.Remove(part)
			continue
		case resp.StatusCode == http.StatusOK:
			if offset > 0 {
				o.warn(fmt.Sprintf("%s: the server does not resume downloads (answered %s to a Range request); downloading from the start", url, resp.Status))
			}
		default:
			resp.Body.Close()
			return res, &StatusError{URL: url, Status: resp.Status, Code: resp.StatusCode}
		}
		res.Header = resp.Header
		err = receive(resp, url, part, flags, start, o)
		resp.Body.Close()
		return res, err
	}
	return res, fmt.Errorf("download %s: the server keeps answering resume requests wrongly; delete %s and try again", url, part)
}

// receive writes resp's body to part (opened with flags), start bytes
// being there already.
func receive(resp *http.Response, url, part string, flags int, start int64, o Options) error {
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("download to %s: %w", part, err)
	}
	total := int64(0)
	if resp.ContentLength >= 0 {
		total = start + resp.ContentLength
	}
	var w io.Writer = f
	var bar Bar
	if o.NewBar != nil {
		bar = o.NewBar(total)
		bar.Add(start)
		w = io.MultiWriter(f, barWriter{bar})
	}
	_, err = io.Copy(w, resp.Body)
	if bar != nil {
		bar.Done()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w (the partial download %s is kept: run the same command again to resume)", url, err, part)
	}
	return nil
}

type barWriter struct{ b Bar }

func (w barWriter) Write(p []byte) (int, error) {
	w.b.Add(int64(len(p)))
	return len(p), nil
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL" or "bytes */TOTAL"
// (first = -1); total is -1 when given as "*".
func parseContentRange(s string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total = t
	}
	if rng == "*" {
		return -1, total, true
	}
	a, _, found := strings.Cut(rng, "-")
	f, err := strconv.ParseInt(a, 10, 64)
	if !found || err != nil {
		return 0, 0, false
	}
	return f, total, true
}
