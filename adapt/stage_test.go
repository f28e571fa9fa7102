package adapt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type counter struct{ runs map[string]int }

func (c *counter) stage(name string, cfg any, inputs []string, fail *bool) Stage {
	return Stage{Name: name, Config: cfg, Inputs: inputs,
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			c.runs[name]++
			// A checkpoint that a crashed run leaves behind.
			if err := os.WriteFile(filepath.Join(work, "ckpt"), []byte("x"), 0o644); err != nil {
				return err
			}
			if fail != nil && *fail {
				return errors.New("killed")
			}
			notes["n"] = c.runs[name]
			return os.WriteFile(filepath.Join(out, "result"), []byte(name), 0o644)
		}}
}

func TestStagesReuseRedoAndForce(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	os.WriteFile(corpus, []byte("hello"), 0o644)
	r := &Runner{Dir: filepath.Join(dir, "run")}
	c := &counter{runs: map[string]int{}}
	ctx := context.Background()

	run := func(cfgA int) {
		t.Helper()
		a, err := r.Run(ctx, c.stage("a", map[string]int{"x": cfgA}, []string{corpus}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(ctx, c.stage("b", nil, []string{a}, nil)); err != nil {
			t.Fatal(err)
		}
	}
	run(1)
	run(1)
	if c.runs["a"] != 1 || c.runs["b"] != 1 {
		t.Fatalf("second identical run redid stages: %v", c.runs)
	}
	run(2) // config of a changes: a and, through its key, b are redone
	if c.runs["a"] != 2 || c.runs["b"] != 2 {
		t.Fatalf("config change: runs %v, want a=2 b=2", c.runs)
	}
	os.WriteFile(corpus, []byte("hello, changed"), 0o644)
	run(2)
	if c.runs["a"] != 3 || c.runs["b"] != 3 {
		t.Fatalf("input change: runs %v, want a=3 b=3", c.runs)
	}
	r.Force = map[string]bool{"b": true}
	run(2)
	if c.runs["a"] != 3 || c.runs["b"] != 4 {
		t.Fatalf("--force b: runs %v, want a=3 b=4", c.runs)
	}
	m, err := ReadMeta(r.Path("b"))
	if err != nil || m.Stage != "b" || m.Notes["n"].(float64) != 4 {
		t.Fatalf("meta = %+v, %v", m, err)
	}
	if _, err := os.Stat(r.workPath("b")); !os.IsNotExist(err) {
		t.Errorf("work directory of a finished stage left behind: %v", err)
	}
}

// TestFingerprintByContent: a corpus unpacked again (same bytes, new
// modification times) keeps its fingerprint; one changed byte of the same
// size and modification time changes it (in a new process: within one, the
// hashes are memoised by path, size and time).
func TestFingerprintByContent(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "corpus.jsonl"), []byte(`{"_id":"d1","text":"hello"}`+"\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "qrels"), 0o755)
	os.WriteFile(filepath.Join(dir, "qrels", "test.tsv"), []byte("query-id\tcorpus-id\tscore\nq1\td1\t1\n"), 0o644)
	before, err := Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	for _, f := range []string{"corpus.jsonl", filepath.Join("qrels", "test.tsv")} {
		raw, _ := os.ReadFile(filepath.Join(dir, f))
		os.Remove(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(dir, f), raw, 0o644)
		os.Chtimes(filepath.Join(dir, f), later, later)
	}
	if again, err := Fingerprint(dir); err != nil || again != before {
		t.Errorf("same bytes, new times: fingerprint %s, was %s (%v)", again, before, err)
	}
	os.WriteFile(filepath.Join(dir, "corpus.jsonl"), []byte(`{"_id":"d1","text":"hellO"}`+"\n"), 0o644)
	os.Chtimes(filepath.Join(dir, "corpus.jsonl"), later, later) // same size and time: only the bytes differ
	fileHashes.Clear()                                           // as a new process sees it
	if changed, err := Fingerprint(dir); err != nil || changed == before {
		t.Errorf("one byte changed, same size and time: fingerprint %s unchanged (%v)", changed, err)
	}
}

func TestCrashedStageLeavesNoOutput(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{Dir: dir}
	c := &counter{runs: map[string]int{}}
	fail := true
	s := c.stage("train", 1, nil, &fail)
	if _, err := r.Run(context.Background(), s); err == nil {
		t.Fatal("failing stage: no error")
	}
	if st, _ := r.StateOf(s); st != Partial {
		t.Fatalf("state after crash = %s, want partial", st)
	}
	if _, err := os.Stat(r.Path("train")); !os.IsNotExist(err) {
		t.Fatalf("crashed stage left an output directory")
	}
	if _, err := os.Stat(filepath.Join(r.workPath("train"), "ckpt")); err != nil {
		t.Fatalf("crashed stage lost its checkpoint: %v", err)
	}
	fail = false
	if _, err := r.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.StateOf(s); st != Done {
		t.Fatalf("state after rerun = %s, want done", st)
	}
	if st, _ := r.StateOf(c.stage("train", 2, nil, nil)); st != Stale {
		t.Fatalf("state with another config = %s, want stale", st)
	}
}
