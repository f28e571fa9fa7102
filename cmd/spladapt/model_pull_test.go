package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestModelPull runs "model pull" against a local stand-in for the hub
// (HF_ENDPOINT) serving a tiny checkpoint as LFS files: the checkpoint
// lands in HF_HOME's cache and in --out, which "model info" reads; the
// token reaches the server and never the output; HF_HUB_OFFLINE=1 then
// answers from the cache.
func TestModelPull(t *testing.T) {
	src := writeTinyModel(t, 3)
	files := map[string][]byte{}
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	const commit = "89abcdef0123456789abcdef0123456789abcdef"
	const token = "hf_cliSECRET"
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization"))
		if r.URL.Path == "/api/models/acme/tiny-splade/revision/main" {
			var sibs []map[string]any
			for name, b := range files {
				s := sha256.Sum256(b)
				sibs = append(sibs, map[string]any{"rfilename": name, "lfs": map[string]any{"sha256": hex.EncodeToString(s[:]), "size": len(b)}})
			}
			json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": sibs})
			return
		}
		name, _ := strings.CutPrefix(r.URL.Path, "/acme/tiny-splade/resolve/"+commit+"/")
		b, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	home := t.TempDir()
	out := filepath.Join(t.TempDir(), "ckpt")
	env := map[string]string{"HF_ENDPOINT": srv.URL, "HF_HOME": home, "HF_TOKEN": token, "HF_HUB_OFFLINE": ""}
	stdout, stderr, err := bm25CLI(t, env, "model", "pull", "acme/tiny-splade", "--out", out)
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, stderr)
	}
	snapDir := filepath.Join(home, "hub", "models--acme--tiny-splade", "snapshots", commit)
	if !strings.Contains(stdout, "acme/tiny-splade@main = "+commit) || !strings.Contains(stdout, snapDir) || !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("pull output %q", stdout)
	}
	if strings.Contains(stdout+stderr, "SECRET") {
		t.Errorf("token printed: %q %q", stdout, stderr)
	}
	for _, a := range auths {
		if a != "Bearer "+token {
			t.Errorf("request without the token: %q", a)
		}
	}
	info, _, err := bm25CLI(t, nil, "model", "info", out)
	if err != nil || !strings.Contains(info, "bert") {
		t.Errorf("model info of the pulled checkpoint: %v\n%s", err, info)
	}
	n := len(auths)
	env["HF_HUB_OFFLINE"] = "1"
	stdout, _, err = bm25CLI(t, env, "model", "pull", "acme/tiny-splade")
	if err != nil || !strings.Contains(stdout, "offline, from the cache") || len(auths) != n {
		t.Errorf("offline pull: %v, %q, %d requests", err, stdout, len(auths)-n)
	}
}
