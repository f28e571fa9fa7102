package main

// Issue 20: a command never deletes what it did not create, refuses to
// write where another run writes, verifies what it reads, and refuses
// input it would turn into a wrong result.

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/outdir"
)

// copyTiny copies bm25/testdata/tiny (a BEIR collection) into a fresh
// directory and returns it.
func copyTiny(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "bm25", "testdata", "tiny")
	dst := filepath.Join(t.TempDir(), "tiny")
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func mustExist(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was deleted: %v", p, err)
		}
	}
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// An output that is, or contains, an input is refused, --force or not.
func TestOutputNeverAnInput(t *testing.T) {
	d2 := copyTiny(t)
	corpus := filepath.Join(d2, "corpus.jsonl")
	for _, args := range [][]string{
		{"bm25", "index", "--corpus", d2, "--out", d2},
		{"bm25", "index", "--corpus", d2, "--out", d2, "--force"},
		{"index", "build-bm25", "--corpus", corpus, "--out", d2},
	} {
		_, _, err := bm25CLI(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "input") {
			t.Errorf("%v: err = %v, want a refusal naming the input", args, err)
		}
		mustExist(t, corpus, filepath.Join(d2, "queries.jsonl"), filepath.Join(d2, "qrels", "test.tsv"))
	}

	dir := t.TempDir()
	qrels := writeFile(t, filepath.Join(dir, "qrels.trec"), "q1 0 a 1\n")
	base := writeFile(t, filepath.Join(dir, "a.trec"), "q1 Q0 a 1 2 t\n")
	other := writeFile(t, filepath.Join(dir, "b.trec"), "q1 Q0 b 1 2 t\n")
	_, _, err := bm25CLI(t, nil, "compare", "--qrels", qrels, "--baseline", base, other, "-m", "RR", "--out", dir)
	if err == nil || !strings.Contains(err.Error(), "input") {
		t.Errorf("compare --out over its runs: err = %v", err)
	}
	mustExist(t, qrels, base, other)

	vecs := writeFile(t, filepath.Join(dir, "v", "vectors.jsonl"), `{"id":"a","vector":{"1":1}}`+"\n")
	_, _, err = bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", filepath.Dir(vecs))
	if err == nil || !strings.Contains(err.Error(), "input") {
		t.Errorf("index build --out over its vectors: err = %v", err)
	}
	mustExist(t, vecs)
	_, _, err = bm25CLI(t, nil, "fuse", "--run", base, "--run", other, "--out", base)
	if err == nil || !strings.Contains(err.Error(), "input") {
		t.Errorf("fuse --out over one of its runs: err = %v", err)
	}
}

// An existing non-empty directory that is not a previous output of the
// same command is refused unless --force; the command's own previous
// output is replaced.
func TestOutputForeignDirectoryRefused(t *testing.T) {
	tiny := copyTiny(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	mine := writeFile(t, filepath.Join(out, "thesis.tex"), "years of work")
	_, _, err := bm25CLI(t, nil, "bm25", "index", "--corpus", tiny, "--out", out)
	if err == nil || !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("foreign directory: err = %v, want it named with --force", err)
	}
	mustExist(t, mine)

	vecs := writeFile(t, filepath.Join(dir, "vectors.jsonl"), `{"id":"a","vector":{"1":1}}`+"\n")
	idx := filepath.Join(dir, "idx")
	for i := 0; i < 2; i++ { // the second run replaces the first's output
		if _, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	// Another command's output is not this command's.
	_, _, err = bm25CLI(t, nil, "index", "build-bm25", "--corpus", tiny, "--out", idx)
	if err == nil || !strings.Contains(err.Error(), "index build") {
		t.Errorf("index build output reused by build-bm25: err = %v", err)
	}
	if _, _, err := bm25CLI(t, nil, "bm25", "index", "--corpus", tiny, "--out", out, "--force"); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, err := os.Stat(mine); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--force kept the old directory's files: %v", err)
	}
}

// A second run on an output locked by a live process is refused, naming
// the process; a lock left by a dead process is taken over; a temporary
// file a killed run left is removed by the next run.
func TestOutputLockAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	vecs := writeFile(t, filepath.Join(dir, "vectors.jsonl"), `{"id":"a","vector":{"1":1}}`+"\n")
	idx := filepath.Join(dir, "idx")
	lock := outdir.LockPath(idx)
	live := os.Getppid()
	writeFile(t, lock, strconv.Itoa(live)+"\n")
	_, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(live)) {
		t.Fatalf("locked output: err = %v, want the holder's pid %d", err, live)
	}
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	writeFile(t, lock, strconv.Itoa(c.Process.Pid)+"\n")
	leftover := writeFile(t, filepath.Join(dir, ".idx.tmp-123", "index.spl"), "half")
	if _, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx); err != nil {
		t.Fatalf("stale lock: %v", err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock left after the run: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(leftover)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory of a killed run kept: %v", err)
	}

	// search: the hidden temporary file a killed search leaves.
	run := filepath.Join(dir, "run.trec")
	tmp := writeFile(t, filepath.Join(dir, ".run.trec.tmp-999"), strings.Repeat("x", 1000))
	qv := writeFile(t, filepath.Join(dir, "q.jsonl"), `{"id":"q1","vector":{"1":1}}`+"\n")
	if _, _, err := bm25CLI(t, nil, "search", "--index", idx, "--query-vectors", qv, "--run", run); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("search kept a killed search's temporary file: %v", err)
	}
}

// search verifies the CRCs of the index sections (one flipped byte in the
// impacts or the doc-id map is an error), unless --no-validate.
func TestSearchVerifiesChecksums(t *testing.T) {
	dir := t.TempDir()
	vecs := writeFile(t, filepath.Join(dir, "vectors.jsonl"), `{"id":"doc-a","vector":{"1":1,"2":0.5}}`+"\n"+`{"id":"doc-b","vector":{"1":0.25}}`+"\n")
	qv := writeFile(t, filepath.Join(dir, "q.jsonl"), `{"id":"q1","vector":{"1":1}}`+"\n")
	for _, tag := range []string{"IMPS", "DIDS"} {
		idx := filepath.Join(dir, "idx-"+tag)
		if _, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx); err != nil {
			t.Fatal(err)
		}
		r, err := index.Open(idx)
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		for _, s := range r.Sections() {
			if s.Tag == tag {
				off = int64(s.Offset + s.Length - 1)
			}
		}
		r.Close()
		path := filepath.Join(idx, index.FileName)
		raw, _ := os.ReadFile(path)
		raw[off] ^= 0x01
		os.WriteFile(path, raw, 0o644)
		run := filepath.Join(dir, "run-"+tag)
		_, _, err = bm25CLI(t, nil, "search", "--index", idx, "--query-vectors", qv, "--run", run)
		if err == nil || !strings.Contains(err.Error(), "CRC") || !strings.Contains(err.Error(), tag) {
			t.Errorf("%s flipped: err = %v, want a CRC error naming the section", tag, err)
		}
		if _, _, err := bm25CLI(t, nil, "search", "--index", idx, "--query-vectors", qv, "--run", run, "--no-validate"); err != nil && !errors.Is(err, index.ErrCorrupt) {
			t.Errorf("%s flipped, --no-validate: %v", tag, err)
		}
	}
}

// Document and query ids with white space are refused before a run is
// written (eval could not read it back).
func TestSearchRefusesWhitespaceIDs(t *testing.T) {
	dir := t.TempDir()
	vecs := writeFile(t, filepath.Join(dir, "vectors.jsonl"), `{"id":"doc a","vector":{"1":1}}`+"\n")
	idx := filepath.Join(dir, "idx")
	if _, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx); err != nil {
		t.Fatal(err)
	}
	qv := writeFile(t, filepath.Join(dir, "q.jsonl"), `{"id":"q1","vector":{"1":1}}`+"\n")
	run := filepath.Join(dir, "run.trec")
	_, _, err := bm25CLI(t, nil, "search", "--index", idx, "--query-vectors", qv, "--run", run)
	if err == nil || !strings.Contains(err.Error(), "white space") || !strings.Contains(err.Error(), `"doc a"`) {
		t.Errorf("doc id with a space: err = %v", err)
	}
	if _, err := os.Stat(run); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run was written: %v", err)
	}
}

// Term ids are bounded: one line cannot make the builder allocate
// gigabytes; negative weights are errors at build and at query time;
// fuse weights must be positive numbers.
func TestBoundsAndSigns(t *testing.T) {
	dir := t.TempDir()
	huge := writeFile(t, filepath.Join(dir, "huge.jsonl"), `{"id":"a","vector":{"999999999":1}}`+"\n")
	_, _, err := bm25CLI(t, nil, "index", "build", "--vectors", huge, "--out", filepath.Join(dir, "huge"))
	if err == nil || !strings.Contains(err.Error(), "999999999") || !strings.Contains(err.Error(), "--max-terms") {
		t.Errorf("term id 999999999: err = %v, want a bound naming --max-terms", err)
	}
	if tmps, _ := atomicfile.Temporaries(filepath.Join(dir, "huge")); len(tmps) > 0 {
		t.Errorf("temporaries left: %v", tmps)
	}
	neg := writeFile(t, filepath.Join(dir, "neg.jsonl"), `{"id":"a","vector":{"1":1,"2":-0.5}}`+"\n")
	_, _, err = bm25CLI(t, nil, "index", "build", "--vectors", neg, "--out", filepath.Join(dir, "neg"))
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative document weight: err = %v", err)
	}
	vecs := writeFile(t, filepath.Join(dir, "vectors.jsonl"), `{"id":"a","vector":{"1":1}}`+"\n")
	idx := filepath.Join(dir, "idx")
	if _, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx); err != nil {
		t.Fatal(err)
	}
	qv := writeFile(t, filepath.Join(dir, "q.jsonl"), `{"id":"q1","vector":{"1":-1}}`+"\n")
	_, _, err = bm25CLI(t, nil, "search", "--index", idx, "--query-vectors", qv, "--run", filepath.Join(dir, "run"))
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative query weight: err = %v", err)
	}
	r1 := writeFile(t, filepath.Join(dir, "r1"), "q1 Q0 a 1 2 t\n")
	r2 := writeFile(t, filepath.Join(dir, "r2"), "q1 Q0 b 1 2 t\n")
	for _, w := range []string{"NaN", "Inf", "0", "-1"} {
		_, _, err := bm25CLI(t, nil, "fuse", "--run", r1, "--run", r2, "--weight", w, "--weight", "1", "--out", filepath.Join(dir, "fused"))
		if err == nil || !strings.Contains(err.Error(), "weight") {
			t.Errorf("--weight %s: err = %v", w, err)
		}
	}
	_, _, err = bm25CLI(t, nil, "pretrain", "--corpus", vecs, "--out", filepath.Join(dir, "m"), "--from-scratch", "--lr", "NaN")
	if err == nil || !strings.Contains(err.Error(), "pretrain.lr") {
		t.Errorf("--lr NaN: err = %v", err)
	}
}

// An index file with bytes after its last section is corrupt.
func TestTrailingBytesCorrupt(t *testing.T) {
	dir := t.TempDir()
	vecs := writeFile(t, filepath.Join(dir, "vectors.jsonl"), `{"id":"a","vector":{"1":1}}`+"\n")
	idx := filepath.Join(dir, "idx")
	if _, _, err := bm25CLI(t, nil, "index", "build", "--vectors", vecs, "--out", idx); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(idx, index.FileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(binary.LittleEndian.AppendUint64(nil, 0xdeadbeef))
	f.Close()
	_, _, err = bm25CLI(t, nil, "index", "inspect", "--validate", idx)
	if err == nil || !errors.Is(err, index.ErrCorrupt) {
		t.Errorf("junk after the last section: err = %v, want ErrCorrupt", err)
	}
}

// Two encodes with the same arguments: the second is refused while the
// first runs (it used to fail on a shard file the first had removed); a
// run afterwards succeeds and resumes nothing stale. Run in goroutines of
// this process: both hold this PID, which is alive, as a real second
// process would see the first's.
func TestEncodeConcurrentRefused(t *testing.T) {
	toy := writeSpladeToy(t)
	model := writeTinyModel(t, 7)
	idx := filepath.Join(t.TempDir(), "idx")
	args := []string{"--config", "", "--progress", "off", "encode", "--model", model, "--corpus", toy, "--out", idx, "--shard-size", "2", "--max-length", "16"}
	// A live holder of the work directory's lock refuses the run too.
	lock := outdir.LockPath(idx + ".work")
	writeFile(t, lock, strconv.Itoa(os.Getppid())+"\n")
	if _, _, err := runRoot(args); err == nil || !strings.Contains(err.Error(), "work directory") || !strings.Contains(err.Error(), strconv.Itoa(os.Getppid())) {
		t.Errorf("locked work directory: err = %v", err)
	}
	os.Remove(lock)
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, _, err := runRoot(args)
			errs <- err
		}()
	}
	ok := 0
	for i := 0; i < 2; i++ {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, outdir.ErrInUse):
		default:
			t.Errorf("concurrent encode: %v", err)
		}
	}
	if ok == 0 {
		t.Fatal("neither encode succeeded")
	}
	out, _, err := runRoot(args)
	if err != nil || !strings.HasPrefix(out, "encoded 10 documents") {
		t.Errorf("encode after the concurrent ones: %q %v", out, err)
	}
	r, err := index.Open(idx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Validate(); err != nil || r.NumDocs() != 10 {
		t.Errorf("index: %d docs, %v", r.NumDocs(), err)
	}
}

// runRoot runs one command tree with args, safe to call from goroutines.
func runRoot(args []string) (string, string, error) {
	root := NewRootCommand()
	var out, errb strings.Builder
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

// Training never writes over its own starting checkpoint or data.
func TestTrainingOutputNeverAnInput(t *testing.T) {
	toy := writeSpladeToy(t)
	model := writeTinyModel(t, 3)
	for _, args := range [][]string{
		{"pretrain", "--corpus", toy, "--init", model, "--out", model, "--steps", "1"},
		{"train", "splade", "--train", toy, "--init", model, "--out", toy, "--steps", "1"},
	} {
		_, _, err := bm25CLI(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "input") {
			t.Errorf("%v: err = %v, want a refusal naming the input", args, err)
		}
	}
	mustExist(t, filepath.Join(model, "config.json"), filepath.Join(toy, "corpus.jsonl"), filepath.Join(toy, "qrels", "train.tsv"))
}

// model swap and tokenize train refuse a directory holding someone else's
// files (they used to replace it), and replace their own previous output.
func TestSwapAndTokenizerOutputsGuarded(t *testing.T) {
	tiny := copyTiny(t)
	ckpt := filepath.Join("..", "..", "testdata", "oracle", "bert-tiny", "model")
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args func(out string) []string
	}{
		{"model swap", func(out string) []string {
			return []string{"model", "swap", "--domain", ckpt, "--task", ckpt, "--domain-layers", "1", "--out", out}
		}},
		{"tokenize train", func(out string) []string {
			return []string{"tokenize", "train", "--corpus", tiny, "--vocab-size", "200", "--out", out}
		}},
	} {
		out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		mine := writeFile(t, filepath.Join(out, "notes.txt"), "mine")
		if _, _, err := bm25CLI(t, nil, c.args(out)...); err == nil || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s into a foreign directory: err = %v, want a refusal naming --force", c.name, err)
		}
		mustExist(t, mine)
		os.RemoveAll(out)
		for i := 0; i < 2; i++ {
			if _, _, err := bm25CLI(t, nil, c.args(out)...); err != nil {
				t.Fatalf("%s, run %d: %v", c.name, i+1, err)
			}
		}
	}
}
