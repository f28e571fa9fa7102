package datasets

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spladapt/spladapt/corpora"
)

// testZip builds a small BEIR dataset zip with a top-level name/ folder,
// padded with a large incompressible-ish file so transfers take many
// writes.
func testZip(t *testing.T, name string, extra map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	files := map[string]string{
		name + "/corpus.jsonl":     `{"_id":"d1","title":"T","text":"one"}` + "\n" + `{"_id":"d2","title":"","text":"two"}` + "\n",
		name + "/queries.jsonl":    `{"_id":"q1","text":"what?"}` + "\n",
		name + "/qrels/test.tsv":   "query-id\tcorpus-id\tscore\nq1\td2\t1\n",
		name + "/padding/blob.txt": pseudoRandom(200_000),
	}
	for k, v := range extra {
		files[k] = v
	}
	if _, err := w.Create(name + "/"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name + "/corpus.jsonl", name + "/queries.jsonl", name + "/qrels/test.tsv", name + "/padding/blob.txt"} {
		writeEntry(t, w, n, files[n])
		delete(files, n)
	}
	for n, v := range files {
		writeEntry(t, w, n, v)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeEntry(t *testing.T, w *zip.Writer, name, content string) {
	t.Helper()
	f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
}

func pseudoRandom(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return string(b)
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// server serves name.zip = data at /name.zip with Range support
// (http.ServeContent), recording the Range header of every request.
// interruptFirst cuts the first full transfer after half the bytes.
type server struct {
	*httptest.Server
	mu             sync.Mutex
	ranges         []string
	statuses       []int
	interruptFirst bool
	ignoreRange    bool
}

func newServer(t *testing.T, name string, data []byte) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+name+".zip" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		first := len(s.ranges) == 1
		s.mu.Unlock()
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		defer func() {
			s.mu.Lock()
			s.statuses = append(s.statuses, rec.status)
			s.mu.Unlock()
		}()
		if s.interruptFirst && first {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-transfer
		}
		if s.ignoreRange {
			r.Header.Del("Range")
		}
		http.ServeContent(rec, r, name+".zip", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(s.Close)
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

type countingBar struct {
	mu          sync.Mutex
	total, done int64
	finished    bool
}

func (b *countingBar) Add(n int64) { b.mu.Lock(); b.done += n; b.mu.Unlock() }
func (b *countingBar) Done()       { b.finished = true }

func checkDataset(t *testing.T, dir string) {
	t.Helper()
	b := corpora.BEIR{Dir: dir}
	r, err := b.Corpus(corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.Next()
	if err != nil || d.ID != "d1" || d.Text != "one" {
		t.Errorf("first doc %+v, %v", d, err)
	}
	q, err := b.Qrels("test")
	if err != nil || q["q1"]["d2"] != 1 {
		t.Errorf("qrels %v, %v", q, err)
	}
	blob, err := os.ReadFile(filepath.Join(dir, "padding", "blob.txt"))
	if err != nil || string(blob) != pseudoRandom(200_000) {
		t.Errorf("padding/blob.txt differs (%d bytes, %v)", len(blob), err)
	}
}

func TestPullFresh(t *testing.T) {
	data := testZip(t, "toy", nil)
	s := newServer(t, "toy", data)
	out := t.TempDir()
	var bars []*countingBar
	res, err := Pull(context.Background(), "toy", Options{
		BaseURL: s.URL + "/", Out: out, SHA256: sha(data),
		NewBar: func(total int64) Bar { b := &countingBar{total: total}; bars = append(bars, b); return b },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != "sha256" || res.Resumed || res.Bytes != int64(len(data)) || res.Files != 4 || res.SHA256 != sha(data) {
		t.Errorf("result %+v", res)
	}
	checkDataset(t, filepath.Join(out, "toy"))
	if len(bars) != 1 || bars[0].total != int64(len(data)) || bars[0].done != int64(len(data)) || !bars[0].finished {
		t.Errorf("progress: %d bars, first %+v; want total = done = %d", len(bars), bars[0], len(data))
	}
	if _, err := os.Stat(filepath.Join(out, "toy.zip.part")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".part left behind: %v", err)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("out dir holds %d entries, want only toy/", len(entries))
	}

	// A second pull finds it there and downloads nothing.
	res, err = Pull(context.Background(), "toy", Options{BaseURL: s.URL, Out: out})
	if err != nil || !res.AlreadyPresent || len(s.ranges) != 1 {
		t.Errorf("second pull: %+v, %v, %d requests", res, err, len(s.ranges))
	}
}

// TestPullResume interrupts the first transfer half way; the second Pull
// must continue it with a Range request answered 206 and end with the
// same bytes.
func TestPullResume(t *testing.T) {
	data := testZip(t, "toy", nil)
	s := newServer(t, "toy", data)
	s.interruptFirst = true
	out := t.TempDir()
	o := Options{BaseURL: s.URL, Out: out, SHA256: sha(data)}
	_, err := Pull(context.Background(), "toy", o)
	if err == nil || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("interrupted pull: error %v", err)
	}
	part := filepath.Join(out, "toy.zip.part")
	fi, err := os.Stat(part)
	if err != nil || fi.Size() == 0 || fi.Size() > int64(len(data)/2) {
		t.Fatalf("partial file: %v, %v; want 1..%d bytes", fi, err, len(data)/2)
	}
	if _, err := os.Stat(filepath.Join(out, "toy")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dataset dir exists after a failed pull: %v", err)
	}
	have := fi.Size()

	res, err := Pull(context.Background(), "toy", o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Verified != "sha256" {
		t.Errorf("result %+v, want resumed and verified", res)
	}
	if want := []string{"", fmt.Sprintf("bytes=%d-", have)}; fmt.Sprint(s.ranges) != fmt.Sprint(want) {
		t.Errorf("Range headers %q, want %q", s.ranges, want)
	}
	if s.statuses[len(s.statuses)-1] != http.StatusPartialContent {
		t.Errorf("statuses %v, want the resume answered 206", s.statuses)
	}
	checkDataset(t, filepath.Join(out, "toy"))
}

// TestPullServerIgnoresRange: a server answering 200 to a Range request
// makes Pull start again from zero, with a warning, and still succeed.
func TestPullServerIgnoresRange(t *testing.T) {
	data := testZip(t, "toy", nil)
	s := newServer(t, "toy", data)
	s.ignoreRange = true
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "toy.zip.part"), []byte("stale bytes from another file"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	res, err := Pull(context.Background(), "toy", Options{BaseURL: s.URL, Out: out, SHA256: sha(data), Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || res.Bytes != int64(len(data)) {
		t.Errorf("result %+v", res)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "does not resume") {
		t.Errorf("warnings %q", warnings)
	}
	if s.ranges[0] == "" || s.statuses[0] != http.StatusOK {
		t.Errorf("ranges %q statuses %v", s.ranges, s.statuses)
	}
	checkDataset(t, filepath.Join(out, "toy"))
}

// TestPullCompletePart: a .part that is already whole gets 416 with
// "bytes */N" = its size and is used without downloading again.
func TestPullCompletePart(t *testing.T) {
	data := testZip(t, "toy", nil)
	s := newServer(t, "toy", data)
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "toy.zip.part"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Pull(context.Background(), "toy", Options{BaseURL: s.URL, Out: out, SHA256: sha(data)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || s.statuses[0] != http.StatusRequestedRangeNotSatisfiable || len(s.ranges) != 1 {
		t.Errorf("result %+v, statuses %v", res, s.statuses)
	}
	checkDataset(t, filepath.Join(out, "toy"))
}

func TestPullChecksumMismatch(t *testing.T) {
	// A known name: its published md5 cannot match the test zip.
	data := testZip(t, "scifact", nil)
	s := newServer(t, "scifact", data)
	out := t.TempDir()
	_, err := Pull(context.Background(), "scifact", Options{BaseURL: s.URL, Out: out})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "want 5f7d1de60b170fc8027bb7898e2efca1") {
		t.Fatalf("error %v, want ErrChecksum against the known md5", err)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 0 {
		t.Errorf("out dir holds %v after a mismatch, want nothing", entries)
	}

	// A given sha256.
	_, err = Pull(context.Background(), "scifact", Options{BaseURL: s.URL, Out: out, SHA256: strings.Repeat("ab", 32)})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), sha(data)) {
		t.Fatalf("error %v, want ErrChecksum naming the actual sha256", err)
	}
}

func TestPullUnknownUnverified(t *testing.T) {
	data := testZip(t, "mine", nil)
	s := newServer(t, "mine", data)
	var warnings []string
	res, err := Pull(context.Background(), "mine", Options{BaseURL: s.URL, Out: t.TempDir(), Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != "" || len(warnings) != 1 || !strings.Contains(warnings[0], "not verified") || !strings.Contains(warnings[0], sha(data)) {
		t.Errorf("result %+v, warnings %q", res, warnings)
	}
}

func TestPullErrors(t *testing.T) {
	data := testZip(t, "toy", nil)
	s := newServer(t, "toy", data)
	out := t.TempDir()
	if _, err := Pull(context.Background(), "nope", Options{BaseURL: s.URL, Out: out}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing dataset: %v", err)
	}
	for _, bad := range []string{"../x", "a/b", "", "UPPER"} {
		if _, err := Pull(context.Background(), bad, Options{BaseURL: s.URL, Out: out}); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	evil := testZip(t, "evil", map[string]string{"evil/../../escape.txt": "x"})
	s2 := newServer(t, "evil", evil)
	_, err := Pull(context.Background(), "evil", Options{BaseURL: s2.URL, Out: out, SHA256: sha(evil)})
	if err == nil || !strings.Contains(err.Error(), "outside the dataset directory") {
		t.Errorf("zip slip: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "escape.txt")); err == nil {
		t.Error("zip slip wrote outside the output directory")
	}
	if _, err := os.Stat(filepath.Join(out, "evil")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("evil/ exists after a refused archive: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Pull(ctx, "toy", Options{BaseURL: s.URL, Out: out}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestKnown(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for _, d := range Known() {
		if !validName.MatchString(d.Name) || seen[d.Name] || d.Name <= prev {
			t.Errorf("known dataset %q: invalid, duplicate or out of order", d.Name)
		}
		if d.MD5 != "" && len(d.MD5) != 32 {
			t.Errorf("%s: md5 %q is not 32 hex digits", d.Name, d.MD5)
		}
		if _, err := hex.DecodeString(d.MD5); err != nil {
			t.Errorf("%s: md5 %q: %v", d.Name, d.MD5, err)
		}
		seen[d.Name], prev = true, d.Name
	}
	for _, n := range []string{"scifact", "nfcorpus", "fiqa", "arguana", "scidocs", "trec-covid", "webis-touche2020", "quora"} {
		if d, ok := Lookup(n); !ok || d.MD5 == "" {
			t.Errorf("Lookup(%q) = %+v, %v; want a known md5", n, d, ok)
		}
	}
}
