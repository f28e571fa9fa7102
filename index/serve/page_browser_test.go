package serve

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromium returns the browser to drive: $SPLADAPT_CHROMIUM, else
// chromium or google-chrome on PATH; the test skips without one.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SPLADAPT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (install it with \"make setup\", or point SPLADAPT_CHROMIUM at a Chrome binary)")
	return ""
}

// TestPageInChromium drives the search page in headless Chromium over the
// DevTools protocol: the page loads with the box focused; a query typed
// and Enter gives results with title, document id, score and snippet, and
// puts the query in the URL; Tab reaches the first result's explanation
// and Enter opens it, showing the matched terms by q·d with the expansion
// term marked; a bookmarked /?q= URL loads its results directly. On
// failure the page's screenshot is saved (path in the log;
// SPLADAPT_SCREENSHOT_DIR chooses the directory).
func TestPageInChromium(t *testing.T) {
	exe := chromium(t)
	ts, _ := pageServer(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1000, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelC := chromedp.NewContext(actx)
	defer cancelC()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	defer func() {
		if !t.Failed() {
			return
		}
		dir := os.Getenv("SPLADAPT_SCREENSHOT_DIR")
		if dir == "" {
			dir = os.TempDir()
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		path := filepath.Join(dir, "spladapt-"+t.Name()+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Logf("save screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the failing page: %s", path)
	}()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// The page loads, the box has the focus; typing and Enter searches.
	must("load", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.ID("q"))))
	active, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	must("focus", err)
	if active != "q" {
		t.Errorf("focused element %q after load, want the query box", active)
	}
	must("search", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "apple fruit"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#results li.hit")),
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	must("location", err)
	if u, err := url.Parse(loc); err != nil || u.Query().Get("q") != "apple fruit" {
		t.Errorf("location %q: the query is not in the URL", loc)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	must("status", err)
	nHits, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#results li.hit').length`))
	must("count hits", err)
	if nHits != 3 || !strings.HasPrefix(status, "3 results in ") || !strings.Contains(status, " ms") {
		t.Errorf("%d hits, status %q; want 3 results with the latency", nHits, status)
	}
	type shown struct{ Title, ID, Score, Snippet string }
	first, err := chromedp.Run(ctx, chromedp.Evaluate[shown](`(() => { const h = document.querySelector('#results li.hit');
		return {Title: h.querySelector('h2').textContent, ID: h.querySelector('.docid').textContent,
		        Score: h.querySelector('.score').textContent, Snippet: h.querySelector('.snippet').textContent}; })()`))
	must("read the first result", err)
	if first.Title != "1.Apple" || first.ID != "d1" || first.Score == "" || first.Snippet != "orchards in autumn" {
		t.Errorf("first result %+v", first)
	}

	// Keyboard only: from the box, Tab (the button), Tab (the first
	// result's explanation), Enter opens it.
	must("tab", chromedp.Do(ctx, chromedp.Focus(chromedp.ID("q")), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab)))
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.activeElement.tagName + ' ' + (document.activeElement.closest('li') || {dataset: {}}).dataset.doc`))
	must("focused", err)
	if focused != "SUMMARY d1" {
		t.Errorf("two Tabs from the box focus %q, want the first result's SUMMARY", focused)
	}
	must("open the explanation", chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#results li.hit details[open] table tbody tr`)),
	))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](
		`[...document.querySelectorAll('#results li.hit details[open] tbody tr')].map(tr =>
			[tr.querySelector('td.term').firstChild.textContent, tr.className, tr.querySelector('td.qd').textContent])`))
	must("read the explanation", err)
	// d1: apple (q 1, d 1) then fruit (q 1, d 0.5), an expansion.
	if len(rows) != 2 || rows[0][0] != "apple" || rows[0][1] != "" || rows[1][0] != "fruit" || rows[1][1] != "expansion" {
		t.Errorf("explanation rows %q, want apple then fruit (expansion)", rows)
	}
	note, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#results li.hit details[open] .note`)))
	must("read the note", err)
	if !strings.Contains(note, "2 of 2 query terms") || !strings.Contains(note, "1 matched term is an expansion") {
		t.Errorf("explanation note %q", note)
	}
	if dir := os.Getenv("SPLADAPT_SCREENSHOT_DIR"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(filepath.Join(dir, "spladapt-page-explained.png"), png, 0o644)
		}
	}
	// Space closes it again.
	must("space", chromedp.Do(ctx, chromedp.KeyEvent(" "), chromedp.Sleep(100*time.Millisecond)))
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#results li.hit details').open`))
	if err != nil || open {
		t.Errorf("Space on the open explanation: open=%v, %v", open, err)
	}

	// A bookmarked results page loads its results.
	must("bookmark", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?q=banana"), chromedp.WaitVisible(chromedp.CSS("#results li.hit"))))
	doc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#results li.hit .docid').textContent`))
	must("bookmarked hit", err)
	boxValue, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("q")))
	must("box value", err)
	if boxValue != "banana" || (doc != "d2" && doc != "d4") {
		t.Errorf("/?q=banana: box %q, first doc %q", boxValue, doc)
	}
}
