package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// goldenDir holds trec_eval 10.0-rc3 outputs (see its README): run,
// case.json with the qrels (relative to sharedData) and the flags, and
// expected.txt.
const (
	goldenDir  = "../../shared/golden/trec_eval"
	sharedData = "../../shared/data"
)

type goldenCase struct {
	Qrels string   `json:"qrels"`
	Flags []string `json:"trec_eval_flags"`
}

// goldenCases lists the case directories, skipping the test when the
// golden files or the collections are absent.
func goldenCases(t *testing.T) []string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(goldenDir, "*", "case.json"))
	if len(dirs) == 0 {
		t.Skipf("no trec_eval golden cases in %s (relative to the package directory)", goldenDir)
	}
	if _, err := os.Stat(sharedData); err != nil {
		t.Skipf("collections directory %s missing: %v", sharedData, err)
	}
	for i := range dirs {
		dirs[i] = filepath.Dir(dirs[i])
	}
	return dirs
}

// trecArgs interprets the trec_eval flags the golden cases use (-q -c -l
// -M -m); the CLI test in cmd/spladapt runs the same cases through the
// command's own flag parsing.
func trecArgs(t *testing.T, flags []string) (ms []Measure, opts Options, perQuery bool) {
	t.Helper()
	var names []string
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case "-q":
			perQuery = true
		case "-c":
			opts.AllQueries = true
		case "-m", "-l", "-M":
			i++
			switch flags[i-1] {
			case "-m":
				names = append(names, flags[i])
			case "-l":
				opts.RelThreshold, _ = strconv.Atoi(flags[i])
			case "-M":
				opts.Depth, _ = strconv.Atoi(flags[i])
			}
		default:
			t.Fatalf("flag %q not handled by the test", flags[i])
		}
	}
	ms, err := ParseMeasures(names...)
	if err != nil {
		t.Fatal(err)
	}
	TrecOrder(ms)
	return ms, opts, perQuery
}

// compareTrecOutput checks got against trec_eval's expected output: the
// same lines in the same order, names and qids equal, values equal to the
// printed 4 decimals. It returns a description of each difference.
func compareTrecOutput(got, want string) []string {
	g := strings.Split(strings.TrimRight(got, "\n"), "\n")
	w := strings.Split(strings.TrimRight(want, "\n"), "\n")
	var diffs []string
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			diffs = append(diffs, fmt.Sprintf("line %d: got %q, want %q", i+1, gl, wl))
		}
	}
	return diffs
}

func TestGoldenTrecEval(t *testing.T) {
	for _, dir := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var c goldenCase
			b, err := os.ReadFile(filepath.Join(dir, "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			ms, opts, perQuery := trecArgs(t, c.Flags)
			qrels, err := corpora.ReadQrels(filepath.Join(sharedData, c.Qrels))
			if err != nil {
				t.Fatal(err)
			}
			run, err := corpora.ReadRun(filepath.Join(dir, "run"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Evaluate(qrels, run, ms, opts)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := res.WriteTrec(&out, perQuery, true); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			diffs := compareTrecOutput(out.String(), string(want))
			for i, d := range diffs {
				if i == 10 {
					t.Errorf("... %d differences in all", len(diffs))
					break
				}
				t.Error(d)
			}
			if n := strings.Count(string(want), "\n"); n < 100 {
				t.Errorf("expected.txt has only %d lines", n)
			}
		})
	}
}

// TestGoldenTrecEvalLocal checks the small cases of testdata/trec_eval
// (see its README; qrels beside the run), made with trec_eval 10.0-rc3:
// every line, the summary ("all") lines included, must be trec_eval's.
func TestGoldenTrecEvalLocal(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "trec_eval", "*", "case.json"))
	if len(dirs) == 0 {
		t.Fatal("no cases in testdata/trec_eval")
	}
	for _, cj := range dirs {
		dir := filepath.Dir(cj)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var c goldenCase
			b, err := os.ReadFile(cj)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			ms, opts, perQuery := trecArgs(t, c.Flags)
			qrels, err := corpora.ReadQrels(filepath.Join(dir, c.Qrels))
			if err != nil {
				t.Fatal(err)
			}
			run, err := corpora.ReadRun(filepath.Join(dir, "run"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Evaluate(qrels, run, ms, opts)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := res.WriteTrec(&out, perQuery, true); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(want), "\tall\t") {
				t.Fatal("expected.txt has no summary line")
			}
			for _, d := range compareTrecOutput(out.String(), string(want)) {
				t.Error(d)
			}
			if t.Failed() {
				os.WriteFile(filepath.Join(dir, "expected.txt.got"), out.Bytes(), 0o644)
			}
		})
	}
}
