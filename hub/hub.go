// Package hub pulls model repositories from the HuggingFace hub into the
// cache layout the hub's own tools use, so that a model pulled by spladapt
// is found by transformers and the other way round:
//
//	$HF_HOME/hub/models--ORG--NAME/
//	    blobs/<sha256 or git sha1>            the files' bytes, named by their hash
//	    blobs/<hash>.incomplete               a download in progress (resumed by HTTP Range)
//	    snapshots/<commit>/<file>             relative symlinks into blobs/
//	    refs/<revision>                       the commit a branch or tag pointed at
//
// The repository's file list and hashes come from
// {endpoint}/api/models/ORG/NAME/revision/REV?blobs=true; the files from
// {endpoint}/ORG/NAME/resolve/COMMIT/FILE. Every blob is verified before it
// is named: LFS files against the sha256 of their pointer, other files
// against their git blob id, both of which the hub gives in the listing and
// in the X-Linked-Etag / ETag headers. A snapshot is linked only once all
// its files are verified, so a failed pull leaves nothing new in it.
package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/download"
)

// DefaultEndpoint is the hub's address when HF_ENDPOINT is not set.
const DefaultEndpoint = "https://huggingface.co"

// DefaultFiles are the files of a checkpoint that nn.LoadHF and
// tokenize.Load read; Pull takes those the repository has.
// pytorch_model.bin is taken only when there is no model.safetensors.
var DefaultFiles = []string{
	"config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
	"tokenizer_config.json", "special_tokens_map.json",
}

// ErrChecksum is a downloaded file whose hash is not the one the hub gave.
var ErrChecksum = errors.New("checksum mismatch")

// ErrNotCached is an offline pull of a repository or revision that is not
// in the cache.
var ErrNotCached = errors.New("not in the cache")

// Options configure Pull. FromEnv fills them the way the hub's tools do.
type Options struct {
	// Endpoint is the hub's base URL (DefaultEndpoint when empty).
	Endpoint string
	// Cache is the hub cache directory, the parent of models--ORG--NAME
	// ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).
	Cache string
	// Token, when not empty, is sent as "Authorization: Bearer TOKEN". It
	// never appears in errors, warnings or files.
	Token string
	// Revision is a branch, tag or commit ("main" when empty).
	Revision string
	// Offline uses the cache only, without any request.
	Offline bool
	// Files are the files to fetch (DefaultFiles when nil, as available).
	Files []string
	// Client does the HTTP requests (http.DefaultClient when nil).
	Client *http.Client
	// NewBar, when not nil, makes a progress bar for one file's download.
	NewBar func(file string, total int64) download.Bar
	// Warn, when not nil, receives warnings (a pull served from the cache
	// because the hub was unreachable, a weights file spladapt cannot read).
	Warn func(msg string)
}

// FromEnv returns Options from the hub's environment variables: HF_ENDPOINT,
// HF_TOKEN, HF_HUB_OFFLINE (1, true, yes, on), HF_HUB_CACHE and HF_HOME.
func FromEnv(getenv func(string) string) Options {
	o := Options{Endpoint: getenv("HF_ENDPOINT"), Token: getenv("HF_TOKEN")}
	switch strings.ToLower(getenv("HF_HUB_OFFLINE")) {
	case "1", "true", "yes", "on":
		o.Offline = true
	}
	switch {
	case getenv("HF_HUB_CACHE") != "":
		o.Cache = getenv("HF_HUB_CACHE")
	case getenv("HF_HOME") != "":
		o.Cache = filepath.Join(getenv("HF_HOME"), "hub")
	default:
		home := getenv("XDG_CACHE_HOME")
		if home == "" {
			if h, err := os.UserHomeDir(); err == nil {
				home = filepath.Join(h, ".cache")
			}
		}
		o.Cache = filepath.Join(home, "huggingface", "hub")
	}
	return o
}

func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// Snapshot is a pulled revision of a repository.
type Snapshot struct {
	Repo     string
	Revision string
	Commit   string
	Dir      string   // Cache/models--ORG--NAME/snapshots/COMMIT
	Files    []string // relative to Dir, sorted
	// Downloaded files were fetched by this pull (Resumed of them continued
	// an .incomplete file); the others were already in blobs/.
	Downloaded, Resumed int
	// Offline is true when the snapshot came from the cache without asking
	// the hub (Options.Offline, or the hub was unreachable).
	Offline bool
}

var (
	validPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	validRev  = regexp.MustCompile(`^[A-Za-z0-9._-][A-Za-z0-9._/-]*$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// checkRepo accepts "ORG/NAME" or "NAME".
func checkRepo(repo string) error {
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return fmt.Errorf("repository %q: want ORG/NAME", repo)
	}
	for _, p := range parts {
		if !validPart.MatchString(p) || strings.Contains(p, "..") {
			return fmt.Errorf("repository %q: a name is letters, digits, '.', '_' and '-'", repo)
		}
	}
	return nil
}

// checkRel accepts a relative slash path without "." or ".." parts.
func checkRel(kind, p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, `\`) {
		return fmt.Errorf("%s %q: not a relative path", kind, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%s %q: empty, '.' or '..' path element", kind, p)
		}
	}
	return nil
}

// RepoDir returns the cache directory of repo: Cache/models--ORG--NAME.
func (o Options) RepoDir(repo string) string {
	return filepath.Join(o.Cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// Pull makes the snapshot of repo at o.Revision complete in the cache and
// returns it. Online, it asks the hub for the revision's commit and files,
// downloads the blobs the cache lacks (resuming .incomplete files), checks
// each against its hash, then links the snapshot and writes
// refs/REVISION. A hash mismatch deletes the download and is an error
// matching ErrChecksum. Offline (o.Offline), or when the hub cannot be
// reached, the cached snapshot of the revision is used (with a warning in
// the second case); an error matching ErrNotCached when there is none.
// Cost: one listing request, one request per missing file, one pass over
// each downloaded file to hash it.
func Pull(ctx context.Context, repo string, o Options) (Snapshot, error) {
	if err := checkRepo(repo); err != nil {
		return Snapshot{}, fmt.Errorf("pull: %w", err)
	}
	if o.Revision == "" {
		o.Revision = "main"
	}
	if err := checkRel("revision", o.Revision); err != nil {
		return Snapshot{}, fmt.Errorf("pull %s: %w", repo, err)
	}
	for _, f := range o.Files {
		if err := checkRel("file", f); err != nil {
			return Snapshot{}, fmt.Errorf("pull %s: %w", repo, err)
		}
	}
	if o.Cache == "" {
		return Snapshot{}, fmt.Errorf("pull %s: no cache directory (set HF_HOME)", repo)
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimSuffix(o.Endpoint, "/")
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Offline {
		return cached(repo, o)
	}
	info, err := o.info(ctx, repo)
	if err != nil {
		var se *download.StatusError
		if ctx.Err() == nil && !errors.As(err, &se) {
			// The hub is unreachable: a cached snapshot will do.
			if snap, cerr := cached(repo, o); cerr == nil {
				o.warn(fmt.Sprintf("%s: the hub is unreachable (%v); using the cached snapshot %s", repo, err, snap.Commit))
				return snap, nil
			}
		}
		return Snapshot{}, fmt.Errorf("pull %s: %w", repo, err)
	}
	files, err := choose(repo, info, o)
	if err != nil {
		return Snapshot{}, err
	}
	repoDir := o.RepoDir(repo)
	snap := Snapshot{Repo: repo, Revision: o.Revision, Commit: info.SHA, Dir: filepath.Join(repoDir, "snapshots", info.SHA)}
	blobs := filepath.Join(repoDir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return snap, fmt.Errorf("pull %s: %w", repo, err)
	}
	ids := make([]string, len(files))
	for i, f := range files {
		id := f.id()
		if id == "" {
			if id, err = o.etag(ctx, repo, info.SHA, f.Name); err != nil {
				return snap, fmt.Errorf("pull %s: %w", repo, err)
			}
		}
		if !isHash(id) {
			return snap, fmt.Errorf("pull %s: %s: the hub gives no sha256 or git blob id (etag %q), so it cannot be verified", repo, f.Name, id)
		}
		ids[i] = id
		blob := filepath.Join(blobs, id)
		if _, err := os.Stat(blob); err == nil {
			continue
		}
		resumed, err := o.fetch(ctx, repo, info.SHA, f.Name, id, blob)
		if err != nil {
			return snap, fmt.Errorf("pull %s: %w", repo, err)
		}
		snap.Downloaded++
		if resumed {
			snap.Resumed++
		}
	}
	// Every blob is verified: link the snapshot, then the ref.
	for i, f := range files {
		if err := link(snap.Dir, f.Name, ids[i]); err != nil {
			return snap, fmt.Errorf("pull %s: link %s: %w", repo, f.Name, err)
		}
		snap.Files = append(snap.Files, f.Name)
	}
	slices.Sort(snap.Files)
	if o.Revision != info.SHA {
		ref := filepath.Join(repoDir, "refs", filepath.FromSlash(o.Revision))
		if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
			return snap, fmt.Errorf("pull %s: %w", repo, err)
		}
		if err := atomicfile.WriteFile(ref, []byte(info.SHA), 0o644); err != nil {
			return snap, fmt.Errorf("pull %s: write ref %s: %w", repo, o.Revision, err)
		}
	}
	return snap, nil
}

// repoInfo is the part of the hub's /api/models answer Pull uses.
type repoInfo struct {
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

type sibling struct {
	Name   string `json:"rfilename"`
	BlobID string `json:"blobId"` // git blob sha1
	Size   int64  `json:"size"`
	LFS    *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

// id is the name of the file's blob: the LFS sha256, else the git blob id
// ("" when the listing has neither).
func (s sibling) id() string {
	if s.LFS != nil && s.LFS.SHA256 != "" {
		return strings.ToLower(s.LFS.SHA256)
	}
	return strings.ToLower(s.BlobID)
}

func (o Options) header() http.Header {
	h := http.Header{"User-Agent": {"spladapt"}}
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	return h
}

// request sends method to u with o's headers; a non-2xx/3xx answer is a
// *download.StatusError with a hint for the statuses that usually mean a
// token is missing or the name is wrong.
func (o Options) request(ctx context.Context, client *http.Client, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = o.header()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		resp.Body.Close()
		status := resp.Status
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			if o.Token == "" {
				status += " (a private or gated repository? set HF_TOKEN)"
			} else {
				status += " (HF_TOKEN is set but not accepted for this repository)"
			}
		case http.StatusNotFound:
			status += " (check the repository name and revision)"
		}
		return nil, &download.StatusError{URL: u, Status: status, Code: resp.StatusCode}
	}
	return resp, nil
}

func (o Options) info(ctx context.Context, repo string) (repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", o.Endpoint, repo, url.PathEscape(o.Revision))
	resp, err := o.request(ctx, o.Client, http.MethodGet, u)
	if err != nil {
		return repoInfo{}, fmt.Errorf("list files: %w", err)
	}
	defer resp.Body.Close()
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return repoInfo{}, fmt.Errorf("list files: decode %s: %w", u, err)
	}
	if !commitRE.MatchString(info.SHA) {
		return repoInfo{}, fmt.Errorf("list files: %s gives commit %q, want 40 hex digits", u, info.SHA)
	}
	for _, s := range info.Siblings {
		if err := checkRel("file", s.Name); err != nil {
			return repoInfo{}, fmt.Errorf("list files: %s: %w", u, err)
		}
	}
	return info, nil
}

// choose picks the files to fetch: o.Files (each must exist), or the
// DefaultFiles the repository has, which must include config.json and a
// weights file.
func choose(repo string, info repoInfo, o Options) ([]sibling, error) {
	byName := map[string]sibling{}
	for _, s := range info.Siblings {
		byName[s.Name] = s
	}
	var out []sibling
	if o.Files != nil {
		for _, f := range o.Files {
			s, ok := byName[f]
			if !ok {
				return nil, fmt.Errorf("pull %s: no file %s at revision %s", repo, f, o.Revision)
			}
			out = append(out, s)
		}
		return out, nil
	}
	for _, f := range DefaultFiles {
		if s, ok := byName[f]; ok {
			out = append(out, s)
		}
	}
	if _, ok := byName["model.safetensors"]; !ok {
		s, ok := byName["pytorch_model.bin"]
		if !ok {
			return nil, fmt.Errorf("pull %s: no model.safetensors or pytorch_model.bin at revision %s (%d files)", repo, o.Revision, len(info.Siblings))
		}
		o.warn(fmt.Sprintf("%s has pytorch_model.bin but no model.safetensors: spladapt reads only .safetensors (convert it, or look for a revision that has one)", repo))
		out = append(out, s)
	}
	if _, ok := byName["config.json"]; !ok {
		return nil, fmt.Errorf("pull %s: no config.json at revision %s: not a transformers checkpoint", repo, o.Revision)
	}
	return out, nil
}

func (o Options) resolveURL(repo, commit, file string) string {
	esc := strings.Split(file, "/")
	for i := range esc {
		esc[i] = url.PathEscape(esc[i])
	}
	return fmt.Sprintf("%s/%s/resolve/%s/%s", o.Endpoint, repo, commit, strings.Join(esc, "/"))
}

// etag asks the hub (HEAD, redirects not followed, as the hub's tools do)
// for a file's hash: X-Linked-Etag for LFS files, else ETag.
func (o Options) etag(ctx context.Context, repo, commit, file string) (string, error) {
	client := *o.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := o.request(ctx, &client, http.MethodHead, o.resolveURL(repo, commit, file))
	if err != nil {
		return "", fmt.Errorf("ask for the hash of %s: %w", file, err)
	}
	resp.Body.Close()
	return headerEtag(resp.Header), nil
}

// headerEtag returns X-Linked-Etag, else ETag, without quotes or W/.
func headerEtag(h http.Header) string {
	e := h.Get("X-Linked-Etag")
	if e == "" {
		e = h.Get("ETag")
	}
	e = strings.TrimPrefix(e, "W/")
	return strings.ToLower(strings.Trim(e, `"`))
}

func isHash(id string) bool {
	if len(id) != 40 && len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// fetch downloads file into blob (through blob.incomplete) and checks it
// against id: a sha256 (64 hex digits) or a git blob sha1 (40).
func (o Options) fetch(ctx context.Context, repo, commit, file, id, blob string) (resumed bool, err error) {
	part := blob + ".incomplete"
	dopts := download.Options{Client: o.Client, Header: o.header(), Warn: o.Warn}
	if o.NewBar != nil {
		dopts.NewBar = func(total int64) download.Bar { return o.NewBar(file, total) }
	}
	res, err := download.Resume(ctx, o.resolveURL(repo, commit, file), part, dopts)
	if err != nil {
		return false, err
	}
	if e := headerEtag(res.Header); isHash(e) && e != id {
		os.Remove(part)
		return res.Resumed, fmt.Errorf("%s: %w: the listing gives %s, the download's etag is %s (the download was deleted; try again)", file, ErrChecksum, id, e)
	}
	got, err := hashFile(part, len(id) == 40)
	if err != nil {
		return res.Resumed, err
	}
	if got != id {
		os.Remove(part)
		kind := "sha256"
		if len(id) == 40 {
			kind = "git blob sha1"
		}
		return res.Resumed, fmt.Errorf("%s: %w: %s is %s, want %s (the download was deleted; try again)", file, ErrChecksum, kind, got, id)
	}
	if err := os.Rename(part, blob); err != nil {
		return res.Resumed, fmt.Errorf("%s: %w", file, err)
	}
	return res.Resumed, nil
}

// hashFile returns the sha256 of name, or its git blob id
// (sha1 of "blob SIZE\x00" + bytes) when git is set.
func hashFile(name string, git bool) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	defer f.Close()
	var h hash.Hash = sha256.New()
	if git {
		fi, err := f.Stat()
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", name, err)
		}
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", fi.Size())
	}
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// link makes snapDir/file a relative symlink to ../../blobs/ID (one more
// ../ per directory in file), replacing what was there.
func link(snapDir, file, id string) error {
	target := filepath.Join(snapDir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	rel := strings.Repeat("../", strings.Count(file, "/")+2) + "blobs/" + id
	tmp := target + ".tmp-link"
	os.Remove(tmp)
	if err := os.Symlink(filepath.FromSlash(rel), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, target)
}

// cached returns the cached snapshot of o.Revision: the revision itself
// when it is a commit, else the commit refs/REVISION names. It must hold
// o.Files, or config.json and a weights file.
func cached(repo string, o Options) (Snapshot, error) {
	repoDir := o.RepoDir(repo)
	commit := o.Revision
	if !commitRE.MatchString(commit) {
		b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(o.Revision)))
		if err != nil {
			return Snapshot{}, fmt.Errorf("pull %s offline: revision %s: %w (pull it once with the hub reachable and HF_HUB_OFFLINE unset)", repo, o.Revision, ErrNotCached)
		}
		commit = strings.TrimSpace(string(b))
		if !commitRE.MatchString(commit) {
			return Snapshot{}, fmt.Errorf("pull %s offline: refs/%s holds %q, not a commit", repo, o.Revision, commit)
		}
	}
	snap := Snapshot{Repo: repo, Revision: o.Revision, Commit: commit, Dir: filepath.Join(repoDir, "snapshots", commit), Offline: true}
	err := filepath.WalkDir(snap.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".tmp-link") {
			return nil
		}
		if _, err := os.Stat(p); err != nil {
			return nil // a dangling link: the blob is gone
		}
		rel, _ := filepath.Rel(snap.Dir, p)
		snap.Files = append(snap.Files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("pull %s offline: snapshot %s: %w", repo, commit, ErrNotCached)
	}
	slices.Sort(snap.Files)
	has := func(f string) bool { _, ok := slices.BinarySearch(snap.Files, f); return ok }
	need := o.Files
	if need == nil {
		need = []string{"config.json"}
		if !has("model.safetensors") && !has("pytorch_model.bin") {
			need = append(need, "model.safetensors")
		}
	}
	for _, f := range need {
		if !has(f) {
			return Snapshot{}, fmt.Errorf("pull %s offline: snapshot %s has no %s: %w", repo, commit, f, ErrNotCached)
		}
	}
	return snap, nil
}

// Materialize copies the snapshot's files into a new directory out (a
// checkpoint directory nn.LoadHF and tokenize.Load read), through a
// temporary directory and a rename. An existing out is refused unless
// force, then replaced. Copies, not links, so that editing out never
// changes the cache.
func Materialize(snap Snapshot, out string, force bool) error {
	if _, err := os.Stat(out); err == nil && !force {
		return fmt.Errorf("write %s: it exists (remove it, or pass --force to replace it)", out)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	err := atomicfile.Dir(out, func(tmp string) error {
		for _, f := range snap.Files {
			dst := filepath.Join(tmp, filepath.FromSlash(f))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := atomicfile.CopyFile(dst, filepath.Join(snap.Dir, filepath.FromSlash(f))); err != nil {
				return fmt.Errorf("copy %s: %w", f, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// Size returns the bytes of a snapshot's files.
func (s Snapshot) Size() int64 {
	var n int64
	for _, f := range s.Files {
		if fi, err := os.Stat(filepath.Join(s.Dir, filepath.FromSlash(f))); err == nil {
			n += fi.Size()
		}
	}
	return n
}
