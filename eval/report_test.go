package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spladapt/spladapt/corpora"
)

// comparisonFixture builds qrels for 40 queries (one relevant document
// each) and three runs: the baseline ranks the relevant document 2nd,
// "better" ranks it 1st on the first 30 queries (2nd elsewhere), "same"
// is the baseline itself, "worse" misses it on 10 queries.
func comparisonFixture() (corpora.Qrels, NamedRun, []NamedRun) {
	qrels := corpora.Qrels{}
	base, better, same, worse := corpora.Run{}, corpora.Run{}, corpora.Run{}, corpora.Run{}
	for q := range 40 {
		qid := fmt.Sprintf("q%02d", q)
		qrels[qid] = map[string]int{"rel": 1}
		second := []corpora.Hit{hit("x", 2), hit("rel", 1), hit("y", 0)}
		base[qid], same[qid] = second, second
		if q < 30 {
			better[qid] = []corpora.Hit{hit("rel", 2), hit("x", 1)}
		} else {
			better[qid] = second
		}
		if q%4 == 0 {
			worse[qid] = []corpora.Hit{hit("x", 2), hit("y", 1)}
		} else {
			worse[qid] = second
		}
	}
	delete(worse, "q39") // missing query: scores 0 with AllQueries
	return qrels, NamedRun{"base", base}, []NamedRun{{"better", better}, {"same", same}, {"worse", worse}}
}

func TestCompare(t *testing.T) {
	qrels, base, others := comparisonFixture()
	ms := mustParse(t, "RR", "P@1", "AP")
	c, err := Compare(qrels, base, others, ms, Options{AllQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Queries) != 40 || c.Runs[0] != "base" || len(c.Measures) != 3 {
		t.Fatalf("comparison shape: %d queries, runs %v, %d measures", len(c.Queries), c.Runs, len(c.Measures))
	}
	rr := c.Measures[0]
	// Means by hand: base 0.5; better 30 queries at 1 and 10 at 0.5;
	// worse 0 on q00,q04,...,q36 (10 queries) and q39, 0.5 on the 29 others.
	wantMeans := []float64{0.5, (30 + 5) / 40.0, 0.5, 29 * 0.5 / 40}
	for i, w := range wantMeans {
		if math.Abs(rr.Means[i]-w) > 1e-12 {
			t.Errorf("RR mean of %s = %v, want %v", c.Runs[i], rr.Means[i], w)
		}
	}
	b, s, w := rr.Deltas[0], rr.Deltas[1], rr.Deltas[2]
	if b.Wins != 30 || b.Ties != 10 || b.Losses != 0 || s.Ties != 40 || w.Losses != 11 || w.Ties != 29 {
		t.Errorf("W/T/L better %d/%d/%d same %d/%d/%d worse %d/%d/%d", b.Wins, b.Ties, b.Losses, s.Wins, s.Ties, s.Losses, w.Wins, w.Ties, w.Losses)
	}
	if math.Abs(b.Mean-0.375) > 1e-12 || s.Mean != 0 || float64(s.P) != 1 {
		t.Errorf("better Δ %v, same Δ %v p %v", b.Mean, s.Mean, s.P)
	}
	// The test and the adjustment are PairedTTest and Holm on the
	// per-query differences of independent evaluations.
	eb, _ := Evaluate(qrels, base.Run, ms[:1], Options{AllQueries: true})
	ew, _ := Evaluate(qrels, others[2].Run, ms[:1], Options{AllQueries: true})
	d := make([]float64, 40)
	for i := range d {
		d[i] = ew.Queries[i].Values[0] - eb.Queries[i].Values[0]
	}
	tt := PairedTTest(d, 0.95)
	if float64(w.P) != tt.P || float64(w.CILo) != tt.Lo || float64(w.CIHi) != tt.Hi {
		t.Errorf("worse: p %v CI [%v %v], want %v [%v %v]", w.P, w.CILo, w.CIHi, tt.P, tt.Lo, tt.Hi)
	}
	holm := Holm([]float64{float64(b.P), float64(s.P), float64(w.P)})
	for i, dl := range rr.Deltas {
		if float64(dl.PHolm) != holm[i] {
			t.Errorf("%s p_holm %v, want %v", dl.Run, dl.PHolm, holm[i])
		}
	}
	if !(float64(b.CILo) > 0 && float64(w.CIHi) < 0) {
		t.Errorf("CI of better [%v,%v] should be > 0, of worse [%v,%v] < 0", b.CILo, b.CIHi, w.CILo, w.CIHi)
	}

	if _, err := Compare(qrels, base, nil, ms, Options{}); err == nil {
		t.Error("no other run accepted")
	}
	if _, err := Compare(qrels, base, []NamedRun{{"base", base.Run}}, ms, Options{}); err == nil {
		t.Error("duplicate names accepted")
	}
}

// writeFixtureReport writes the fixture's report with 100 queries of
// random differences for realistic plots.
func writeFixtureReport(t *testing.T) (string, *Comparison) {
	t.Helper()
	qrels, base, others := comparisonFixture()
	rng := rand.New(rand.NewPCG(5, 6))
	noisy := corpora.Run{}
	for qid := range qrels {
		noisy[qid] = []corpora.Hit{hit("rel", rng.Float64()), hit("x", rng.Float64()), hit("y", rng.Float64())}
	}
	others = append(others, NamedRun{"noisy <&>", noisy})
	c, err := Compare(qrels, base, others, mustParse(t, "nDCG@10", "RR@10", "P@1"), Options{AllQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Title, c.Qrels = "fixture", "qrels.trec"
	dir := filepath.Join(t.TempDir(), "report")
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir, c
}

func TestWriteDir(t *testing.T) {
	dir, c := writeFixtureReport(t)
	var back Comparison
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Measures[1].Deltas[0].Mean != c.Measures[1].Deltas[0].Mean || len(back.Queries) != 40 {
		t.Errorf("report.json does not round-trip")
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"## nDCG@10", "| base (baseline) | 0.6309 |", "| better | 0.9077 | +0.2768 |", "| 30/10/0 |", "noisy <&>"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	h, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	hs := string(h)
	for _, bad := range []string{"<link", " src=", "@import", "url(", "https://"} {
		if strings.Contains(hs, bad) {
			t.Errorf("report.html is not self-contained: has %q", bad)
		}
	}
	if strings.Count(hs, "http://") != strings.Count(hs, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("report.html references http:// beyond the SVG namespace")
	}
	if !strings.Contains(hs, "noisy &lt;&amp;&gt;") || strings.Contains(hs, "noisy <&>") {
		t.Error("run names are not escaped in report.html")
	}
	// One summary plot plus one per measure and compared run.
	if got, want := strings.Count(hs, "<svg"), 1+3*4; got != want {
		t.Errorf("%d <svg> elements, want %d", got, want)
	}
	// Replacing the directory leaves only the new reports.
	os.WriteFile(filepath.Join(dir, "stale"), nil, 0o644)
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !os.IsNotExist(err) {
		t.Error("WriteDir kept a stale file")
	}
}

const chromium = "/usr/bin/chromium"

// TestReportRendersInChromium loads report.html in headless Chromium and
// checks the table rows are in the DOM and every SVG plot was laid out
// with a non-empty bounding box (the report's inline script records the
// count on <body data-rendered>).
func TestReportRendersInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found (Debian package chromium): %v", chromium, err)
	}
	dir, c := writeFixtureReport(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+filepath.Join(dir, "report.html"))
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	dom := string(out)
	m := regexp.MustCompile(`data-rendered="(\d+)" data-svgs="(\d+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the inline script did not run: no data-rendered attribute in the DOM:\n%.2000s", dom)
	}
	rendered, _ := strconv.Atoi(m[1])
	svgs, _ := strconv.Atoi(m[2])
	if want := 1 + len(c.Measures)*(len(c.Runs)-1); svgs != want || rendered != want {
		t.Errorf("%d of %d SVG plots rendered, want %d of %d", rendered, svgs, want, want)
	}
	if n := strings.Count(dom, "<tr>"); n != len(c.Measures)*(1+len(c.Runs)) {
		t.Errorf("%d table rows in the DOM, want %d", n, len(c.Measures)*(1+len(c.Runs)))
	}
	if !strings.Contains(dom, "<rect") || !strings.Contains(dom, "<path") {
		t.Error("SVG plots have no rect/path children")
	}
}
