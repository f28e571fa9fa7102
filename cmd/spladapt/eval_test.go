package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// evalCLI runs the command tree with args (no config file, no progress).
func evalCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRootCommand()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--config", "", "--progress", "off"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

const (
	evalGoldenDir = "../../../shared/golden/trec_eval"
	evalDataDir   = "../../../shared/data"
)

// TestEvalGoldenCLI runs every trec_eval golden case through "spladapt
// eval" with the case's own trec_eval flags and compares every output line
// with trec_eval's (names, qids and values to the 4 printed decimals; the
// format is the same, so the lines must be identical).
func TestEvalGoldenCLI(t *testing.T) {
	cases, _ := filepath.Glob(filepath.Join(evalGoldenDir, "*", "case.json"))
	if len(cases) == 0 {
		t.Skipf("no trec_eval golden cases in %s", evalGoldenDir)
	}
	if _, err := os.Stat(evalDataDir); err != nil {
		t.Skipf("collections directory %s missing: %v", evalDataDir, err)
	}
	for _, cj := range cases {
		dir := filepath.Dir(cj)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var c struct {
				Qrels string   `json:"qrels"`
				Flags []string `json:"trec_eval_flags"`
			}
			b, err := os.ReadFile(cj)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"eval"}, c.Flags...)
			args = append(args, filepath.Join(evalDataDir, c.Qrels), filepath.Join(dir, "run"))
			got, err := evalCLI(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "expected.txt"))
			if err != nil {
				t.Fatal(err)
			}
			g := strings.Split(strings.TrimRight(got, "\n"), "\n")
			w := strings.Split(strings.TrimRight(string(want), "\n"), "\n")
			if len(g) != len(w) {
				t.Errorf("%d lines, trec_eval printed %d", len(g), len(w))
			}
			bad := 0
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					if bad++; bad <= 10 {
						t.Errorf("line %d: got %q, want %q", i+1, g[i], w[i])
					}
				}
			}
			if bad > 10 {
				t.Errorf("%d lines differ in all", bad)
			}
		})
	}
}

func writeEvalFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalFlags checks -l, -M, -n, --json and errors on a tiny example
// whose values are worked by hand: ranking d3 (grade 2), d1 (unjudged),
// d2 (grade 1); q2 is judged but absent from the run.
func TestEvalFlags(t *testing.T) {
	dir := t.TempDir()
	qrels := writeEvalFile(t, dir, "qrels", "q1 0 d2 1\nq1 0 d3 2\nq2 0 d9 1\n")
	run := writeEvalFile(t, dir, "run", "q1 Q0 d1 1 5 t\nq1 Q0 d2 2 4 t\nq1 Q0 d3 3 5 t\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		// AP = (1/1 + 2/3)/2; with -l 2 only d3: 1/1; with -M 1 = 1/2.
		{[]string{"-m", "map", "-m", "num_q"}, "num_q                 \tall\t1\nmap                   \tall\t0.8333\n"},
		{[]string{"-l", "2", "-m", "map"}, "map                   \tall\t1.0000\n"},
		{[]string{"-M", "1", "-m", "map"}, "map                   \tall\t0.5000\n"},
		{[]string{"-c", "-m", "map"}, "map                   \tall\t0.4167\n"},
		{[]string{"-c", "-q", "-n", "-m", "num_rel"}, "num_rel               \tq1\t2\nnum_rel               \tq2\t1\n"},
		{[]string{"-m", "AP(rel=2)", "-m", "RR@1"}, "AP(rel=2)             \tall\t1.0000\nRR@1                  \tall\t1.0000\n"},
	} {
		got, err := evalCLI(t, append(append([]string{"eval"}, c.args...), qrels, run)...)
		if err != nil || got != c.want {
			t.Errorf("eval %v:\n%q, %v\nwant %q", c.args, got, err, c.want)
		}
	}
	got, err := evalCLI(t, "eval", "--json", "-q", "-m", "P.2", qrels, run)
	if err != nil || !strings.Contains(got, `"P_2": 0.5`) || !strings.Contains(got, `"qid": "q1"`) {
		t.Errorf("--json: %s %v", got, err)
	}
	// Default measures come from config eval.measures (env overrides).
	t.Setenv("SPLADAPT_EVAL_MEASURES", "P@1")
	if got, err := evalCLI(t, "eval", qrels, run); err != nil || got != "P@1                   \tall\t1.0000\n" {
		t.Errorf("default measures from the environment: %q %v", got, err)
	}
	for _, bad := range [][]string{{"-m", "nope"}, {"-l", "0"}, {"-M", "-1"}} {
		if _, err := evalCLI(t, append(append([]string{"eval"}, bad...), qrels, run)...); err == nil {
			t.Errorf("eval %v accepted", bad)
		}
	}
	dup := writeEvalFile(t, dir, "dup", "q1 Q0 d1 1 5 t\nq1 Q0 d1 2 4 t\n")
	if _, err := evalCLI(t, "eval", "-m", "map", qrels, dup); err == nil || !strings.Contains(err.Error(), "dup:2:") {
		t.Errorf("duplicate docno: %v (want the file and line)", err)
	}
}

// TestCompareCLI writes a report for two runs against a baseline and
// checks the three files and the names and numbers in them.
func TestCompareCLI(t *testing.T) {
	dir := t.TempDir()
	qrels := writeEvalFile(t, dir, "qrels.trec", "q1 0 a 1\nq2 0 b 1\nq3 0 c 1\n")
	base := writeEvalFile(t, dir, "bm25.trec", "q1 Q0 x 1 2 t\nq1 Q0 a 2 1 t\nq2 Q0 b 1 2 t\nq3 Q0 x 1 2 t\nq3 Q0 c 2 1 t\n")
	better := writeEvalFile(t, dir, "splade.run", "q1 Q0 a 1 2 t\nq2 Q0 b 1 2 t\nq3 Q0 c 1 2 t\n")
	other := writeEvalFile(t, dir, "other", "q1 Q0 a 1 2 t\n")
	out := filepath.Join(dir, "report")
	got, err := evalCLI(t, "compare", "--qrels", qrels, "--baseline", base, better, other, "-m", "RR", "-m", "P@1", "--out", out, "--title", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	// RR: bm25 (0.5+1+0.5)/3, splade 1, other 1/3 (q2, q3 missing → 0).
	for _, want := range []string{"# Run comparison: tiny", "## RR", "| bm25 (baseline) | 0.6667 |", "| splade | 1.0000 | +0.3333 |", "| other | 0.3333 | -0.3333 |", "| 2/1/0 |", "## P@1", "wrote "} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, f := range []string{"report.md", "report.json", "report.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := evalCLI(t, "compare", "--qrels", qrels, "--baseline", base, "--out", out); err == nil {
		t.Error("compare without runs accepted")
	}
	if _, err := evalCLI(t, "compare", "--qrels", qrels, "--baseline", base, better, "--name", "a", "--out", out); err == nil {
		t.Error("wrong number of --name accepted")
	}
}
