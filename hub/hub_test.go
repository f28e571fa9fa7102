package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

const (
	testRepo   = "org/tiny"
	testCommit = "0123456789abcdef0123456789abcdef01234567"
	testToken  = "hf_SECRETtoken123"
)

// fakeHub serves one repository the way the hub does: the listing at
// /api/models/REPO/revision/main?blobs=true (LFS sha256 for
// model.safetensors, git blob ids for the rest) and the files at
// /REPO/resolve/COMMIT/FILE with Range support, ETag and X-Linked-Etag.
// It records every request.
type fakeHub struct {
	*httptest.Server
	files map[string][]byte

	mu       sync.Mutex
	requests []string // "METHOD PATH RANGE"
	auths    []string // Authorization header of each request
	// interruptFirst drops the connection half way through the first full
	// transfer of that file; corrupt serves that file with a byte flipped.
	interruptFirst, corrupt string
	interrupted             bool
	requireToken            bool
}

func gitID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func isLFS(name string) bool {
	return strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin")
}

func (h *fakeHub) id(name string) string {
	if isLFS(name) {
		return sha(h.files[name])
	}
	return gitID(h.files[name])
}

func newFakeHub(t *testing.T, files map[string][]byte) *fakeHub {
	h := &fakeHub{files: files}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	h.auths = append(h.auths, r.Header.Get("Authorization"))
	h.mu.Unlock()
	if h.requireToken && r.Header.Get("Authorization") != "Bearer "+testToken {
		http.Error(w, "Invalid credentials", http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/api/models/"+testRepo+"/revision/main" {
		if r.URL.Query().Get("blobs") != "true" {
			http.Error(w, "want blobs=true", http.StatusBadRequest)
			return
		}
		var sibs []map[string]any
		for name, b := range h.files {
			s := map[string]any{"rfilename": name, "size": len(b), "blobId": gitID(b)}
			if isLFS(name) {
				s["lfs"] = map[string]any{"sha256": sha(b), "size": len(b), "pointerSize": 134}
			}
			sibs = append(sibs, s)
		}
		json.NewEncoder(w).Encode(map[string]any{"id": testRepo, "sha": testCommit, "siblings": sibs})
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/"+testRepo+"/resolve/"+testCommit+"/")
	data, found := h.files[name]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	if isLFS(name) {
		w.Header().Set("X-Linked-Etag", `"`+h.id(name)+`"`)
	}
	w.Header().Set("ETag", `"`+gitID(data)+`"`)
	w.Header().Set("X-Repo-Commit", testCommit)
	if name == h.corrupt {
		data = bytes.Clone(data)
		data[len(data)/3] ^= 0xff
	}
	h.mu.Lock()
	cut := name == h.interruptFirst && !h.interrupted && r.Header.Get("Range") == ""
	if cut {
		h.interrupted = true
	}
	h.mu.Unlock()
	if cut {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-transfer
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func (h *fakeHub) fileRequests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.requests {
		if strings.Contains(r, "/resolve/") {
			out = append(out, r)
		}
	}
	return out
}

// tinyCheckpoint saves a random tiny BERT with its tokenizer and returns
// its files by name.
func tinyCheckpoint(t *testing.T) (map[string][]byte, *nn.Model) {
	t.Helper()
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "apple", "banana", "cherry", "##s"}
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.BERTConfig(len(vocab), 16, 1, 2, 32, 16), 7)
	if err != nil {
		t.Fatal(err)
	}
	m.TokenizerDir = tokDir
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	if files["model.safetensors"] == nil || files["config.json"] == nil {
		t.Fatalf("SaveHF wrote %v", slices.Sorted(func(yield func(string) bool) {
			for k := range files {
				if !yield(k) {
					return
				}
			}
		}))
	}
	// Something the default set does not take.
	files["README.md"] = []byte("# tiny\n")
	return files, m
}

func opts(h *fakeHub, cache string) Options {
	return Options{Endpoint: h.URL, Cache: cache, Token: testToken}
}

// TestPull: a fresh pull lays out the cache as the hub's tools do (blobs
// named by hash, relative snapshot links, refs/main), takes the default
// files only, sends the token on every request, and --out gives a
// directory nn.LoadHF and tokenize.Load read, with the same parameters.
// A second pull downloads nothing.
func TestPull(t *testing.T) {
	files, model := tinyCheckpoint(t)
	h := newFakeHub(t, files)
	h.requireToken = true
	cache := t.TempDir()
	snap, err := Pull(context.Background(), testRepo, opts(h, cache))
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(cache, "models--org--tiny")
	if snap.Commit != testCommit || snap.Dir != filepath.Join(repoDir, "snapshots", testCommit) || snap.Offline || snap.Resumed != 0 {
		t.Errorf("snapshot %+v", snap)
	}
	var want []string
	for _, f := range DefaultFiles {
		if files[f] != nil {
			want = append(want, f)
		}
	}
	slices.Sort(want)
	if !slices.Equal(snap.Files, want) || snap.Downloaded != len(want) {
		t.Errorf("files %v (%d downloaded), want %v", snap.Files, snap.Downloaded, want)
	}
	for _, f := range want {
		p := filepath.Join(snap.Dir, f)
		target, err := os.Readlink(p)
		if err != nil || target != "../../blobs/"+h.id(f) {
			t.Errorf("%s links to %q (%v), want ../../blobs/%s", f, target, err, h.id(f))
		}
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, files[f]) {
			t.Errorf("%s: content differs (%v)", f, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err != nil || string(b) != testCommit {
		t.Errorf("refs/main = %q, %v", b, err)
	}
	for i, a := range h.auths {
		if a != "Bearer "+testToken {
			t.Errorf("request %d (%s): Authorization %q", i, h.requests[i], a)
		}
	}

	out := filepath.Join(t.TempDir(), "ckpt")
	if err := Materialize(snap, out, false); err != nil {
		t.Fatal(err)
	}
	got, err := nn.LoadHF(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Params) != len(model.Params) {
		t.Fatalf("%d parameters, want %d", len(got.Params), len(model.Params))
	}
	for i, p := range model.Params {
		if got.Params[i].Name != p.Name || !slices.Equal(got.Params[i].W, p.W) {
			t.Errorf("parameter %s differs after the pull", p.Name)
		}
	}
	tok, err := tokenize.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if toks := tok.Tokens("Cherrys apple"); !slices.Equal(toks, []string{"cherry", "##s", "apple"}) {
		t.Errorf("tokens %v", toks)
	}
	if fi, err := os.Lstat(filepath.Join(out, "config.json")); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Errorf("out/config.json: %v, mode %v; want a copy", err, fi.Mode())
	}
	if err := Materialize(snap, out, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("materialize over an existing dir: %v", err)
	}

	n := len(h.fileRequests())
	snap, err = Pull(context.Background(), testRepo, opts(h, cache))
	if err != nil || snap.Downloaded != 0 || len(h.fileRequests()) != n || len(snap.Files) != len(want) {
		t.Errorf("second pull: %+v, %v; %d file requests, want %d", snap, err, len(h.fileRequests()), n)
	}
}

// TestPullResume: the hub drops the connection half way through
// model.safetensors; the pull fails and keeps blobs/SHA.incomplete, and
// the next pull asks for the rest with a Range request and verifies the
// joined file.
func TestPullResume(t *testing.T) {
	files, _ := tinyCheckpoint(t)
	h := newFakeHub(t, files)
	h.interruptFirst = "model.safetensors"
	cache := t.TempDir()
	_, err := Pull(context.Background(), testRepo, opts(h, cache))
	if err == nil || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("interrupted pull: %v", err)
	}
	part := filepath.Join(cache, "models--org--tiny", "blobs", h.id("model.safetensors")+".incomplete")
	fi, err := os.Stat(part)
	if err != nil || fi.Size() == 0 || fi.Size() >= int64(len(files["model.safetensors"])) {
		t.Fatalf("partial download: %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(cache, "models--org--tiny", "snapshots")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshots/ exists after a failed pull: %v", err)
	}
	snap, err := Pull(context.Background(), testRepo, opts(h, cache))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Resumed != 1 {
		t.Errorf("resumed %d files, want 1", snap.Resumed)
	}
	wantRange := fmt.Sprintf("GET /%s/resolve/%s/model.safetensors bytes=%d-", testRepo, testCommit, fi.Size())
	if !slices.Contains(h.fileRequests(), wantRange) {
		t.Errorf("requests %q: no %q", h.fileRequests(), wantRange)
	}
	if b, err := os.ReadFile(filepath.Join(snap.Dir, "model.safetensors")); err != nil || !bytes.Equal(b, files["model.safetensors"]) {
		t.Errorf("resumed file differs (%v)", err)
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".incomplete left behind: %v", err)
	}
}

// TestPullCorrupt: a file whose bytes are not its hash is an ErrChecksum
// error, for an LFS file (sha256) and a git file (blob id); the download
// is deleted and nothing is linked into the snapshot, nor any ref written.
func TestPullCorrupt(t *testing.T) {
	for _, bad := range []string{"model.safetensors", "vocab.txt"} {
		t.Run(bad, func(t *testing.T) {
			files, _ := tinyCheckpoint(t)
			h := newFakeHub(t, files)
			h.corrupt = bad
			cache := t.TempDir()
			_, err := Pull(context.Background(), testRepo, opts(h, cache))
			if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), bad) {
				t.Fatalf("corrupt %s: %v", bad, err)
			}
			repoDir := filepath.Join(cache, "models--org--tiny")
			for _, p := range []string{"snapshots", "refs", filepath.Join("blobs", h.id(bad)), filepath.Join("blobs", h.id(bad)+".incomplete")} {
				if _, err := os.Stat(filepath.Join(repoDir, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a corrupt download: %v", p, err)
				}
			}
			// The hub fixed: the next pull completes.
			h.corrupt = ""
			if _, err := Pull(context.Background(), testRepo, opts(h, cache)); err != nil {
				t.Errorf("pull after the fix: %v", err)
			}
		})
	}
}

// TestPullOffline: once cached, a pull works with HF_HUB_OFFLINE (no
// request at all) and when the hub is unreachable (with a warning), by
// branch or by commit; an uncached revision is ErrNotCached.
func TestPullOffline(t *testing.T) {
	files, _ := tinyCheckpoint(t)
	h := newFakeHub(t, files)
	cache := t.TempDir()
	first, err := Pull(context.Background(), testRepo, opts(h, cache))
	if err != nil {
		t.Fatal(err)
	}
	n := len(h.requests)
	o := opts(h, cache)
	o.Offline = true
	snap, err := Pull(context.Background(), testRepo, o)
	if err != nil || !snap.Offline || snap.Commit != testCommit || !slices.Equal(snap.Files, first.Files) || len(h.requests) != n {
		t.Errorf("offline: %+v, %v, %d requests after %d", snap, err, len(h.requests), n)
	}
	o.Revision = testCommit
	if snap, err := Pull(context.Background(), testRepo, o); err != nil || snap.Dir != first.Dir {
		t.Errorf("offline by commit: %+v, %v", snap, err)
	}
	o.Revision = "v2"
	if _, err := Pull(context.Background(), testRepo, o); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("offline, uncached revision: %v", err)
	}
	if _, err := Pull(context.Background(), "org/other", Options{Cache: cache, Offline: true}); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline, uncached repo: %v", err)
	}

	h.Close() // the hub goes away
	var warnings []string
	o = opts(h, cache)
	o.Warn = func(m string) { warnings = append(warnings, m) }
	snap, err = Pull(context.Background(), testRepo, o)
	if err != nil || !snap.Offline || snap.Commit != testCommit {
		t.Errorf("hub unreachable: %+v, %v", snap, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "unreachable") {
		t.Errorf("warnings %q", warnings)
	}
	if _, err := Pull(context.Background(), "org/other", opts(h, cache)); err == nil || errors.Is(err, ErrNotCached) {
		t.Errorf("hub unreachable, nothing cached: %v, want the network error", err)
	}
}

// TestTokenNeverShown: without a token a gated repository's error says to
// set HF_TOKEN; a wrong token says it was not accepted; neither the token
// nor its header appears in any error, warning or cached file.
func TestTokenNeverShown(t *testing.T) {
	files, _ := tinyCheckpoint(t)
	h := newFakeHub(t, files)
	h.requireToken = true
	cache := t.TempDir()
	o := opts(h, cache)
	o.Token = ""
	_, err := Pull(context.Background(), testRepo, o)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	o.Token = "hf_wrongSECRET"
	_, err = Pull(context.Background(), testRepo, o)
	if err == nil || !strings.Contains(err.Error(), "not accepted") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("wrong token: %v", err)
	}
	// A failing download with the right token: errors and warnings carry
	// URLs and statuses, never the token.
	var said []string
	o = opts(h, cache)
	o.Warn = func(m string) { said = append(said, m) }
	h.corrupt = "config.json"
	_, err = Pull(context.Background(), testRepo, o)
	if err == nil {
		t.Fatal("corrupt pull succeeded")
	}
	said = append(said, err.Error())
	h.corrupt = ""
	if _, err := Pull(context.Background(), testRepo, o); err != nil {
		t.Fatal(err)
	}
	for _, s := range said {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "Bearer") {
			t.Errorf("token shown: %q", s)
		}
	}
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("SECRET")) {
				t.Errorf("%s holds the token", p)
			}
		}
		return nil
	})
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		repo, rev string
		ok        bool
	}{
		{"org/name", "main", true}, {"bert-base-uncased", "v1.0", true}, {"org/name", "refs/pr/1", true},
		{"org/name/x", "main", false}, {"../x", "main", false}, {"org/..", "main", false},
		{"org/name", "../../etc", false}, {"org/name", "/abs", false}, {"", "main", false},
	} {
		_, err := Pull(context.Background(), c.repo, Options{Revision: c.rev, Cache: t.TempDir(), Offline: true})
		if bad := err != nil && !errors.Is(err, ErrNotCached); bad == c.ok {
			t.Errorf("%q @ %q: %v, want ok=%v", c.repo, c.rev, err, c.ok)
		}
	}
	o := FromEnv(func(k string) string {
		return map[string]string{"HF_HOME": "/h", "HF_TOKEN": "t", "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://x"}[k]
	})
	if o.Cache != filepath.Join("/h", "hub") || o.Token != "t" || !o.Offline || o.Endpoint != "http://x" {
		t.Errorf("FromEnv: %+v", o)
	}
}
