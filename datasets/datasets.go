// Package datasets downloads BEIR datasets: NAME.zip from a base URL,
// resumable (HTTP Range on a ".part" file), checked against a known or given
// checksum, and unpacked into BEIR layout (DIR/NAME/corpus.jsonl, ...)
// through a temporary directory and a rename, so DIR/NAME is either
// complete or absent.
package datasets

import (
	"archive/zip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/download"
)

// Dataset is a BEIR dataset spladapt knows by name.
type Dataset struct {
	Name string
	// MD5 is the md5 of NAME.zip as published in the BEIR repository's
	// README (github.com/beir-cellar/beir, "Available Datasets" table);
	// empty when there is no trustworthy published sum.
	MD5  string
	Note string
}

// known is BEIR's table of public datasets and their published md5 sums.
// msmarco has none: BEIR's README gives 444067daf65d982533ea17ebd59501e4
// and other listings 244067daf65d982533ea17ebd59501e4; without a way to
// tell which is right, a download is not verified (and says so).
var known = []Dataset{
	{Name: "arguana", MD5: "8ad3e3c2a5867cdced806d6503f29b99", Note: "argument retrieval, 8.67K docs"},
	{Name: "climate-fever", MD5: "8b66f0a9126c521bae2bde127b4dc99d", Note: "fact checking, 5.42M docs"},
	{Name: "cqadupstack", MD5: "4e41456d7df8ee7760a7f866133bda78", Note: "duplicate questions, 457K docs; one BEIR directory per subforum"},
	{Name: "dbpedia-entity", MD5: "c2a39eb420a3164af735795df012ac2c", Note: "entity retrieval, 4.63M docs"},
	{Name: "fever", MD5: "5a818580227bfb4b35bb6fa46d9b6c03", Note: "fact checking, 5.42M docs"},
	{Name: "fiqa", MD5: "17918ed23cd04fb15047f73e6c3bd9d9", Note: "financial QA, 57K docs"},
	{Name: "hotpotqa", MD5: "f412724f78b0d91183a0e86805e16114", Note: "multi-hop QA, 5.23M docs"},
	{Name: "msmarco", Note: "web passages, 8.84M docs; published md5 sums disagree, so unverified"},
	{Name: "nfcorpus", MD5: "a89dba18a62ef92f7d323ec890a0d38d", Note: "bio-medical, 3.6K docs"},
	{Name: "nq", MD5: "d4d3d2e48787a744b6f6e691ff534307", Note: "Wikipedia QA, 2.68M docs"},
	{Name: "quora", MD5: "18fb154900ba42a600f84b839c173167", Note: "duplicate questions, 523K docs"},
	{Name: "scidocs", MD5: "38121350fc3a4d2f48850f6aff52e4a9", Note: "citation prediction, 25K docs"},
	{Name: "scifact", MD5: "5f7d1de60b170fc8027bb7898e2efca1", Note: "scientific claims, 5K docs"},
	{Name: "trec-covid", MD5: "ce62140cb23feb9becf6270d0d1fe6d1", Note: "bio-medical, 171K docs"},
	{Name: "webis-touche2020", MD5: "46f650ba5a527fc69e0a6521c5a23563", Note: "argument retrieval, 382K docs"},
}

// Known returns the datasets with a known name, sorted by name.
func Known() []Dataset { return append([]Dataset(nil), known...) }

// Lookup returns the known dataset called name.
func Lookup(name string) (Dataset, bool) {
	for _, d := range known {
		if d.Name == name {
			return d, true
		}
	}
	return Dataset{}, false
}

// ErrChecksum is a download whose checksum is not the expected one.
var ErrChecksum = errors.New("checksum mismatch")

// Bar shows download progress (*progress.Bar is one).
type Bar = download.Bar

// Options configure Pull.
type Options struct {
	// BaseURL is where NAME.zip is fetched from: BaseURL + "/" + NAME + ".zip".
	BaseURL string
	// Out is the parent directory: the dataset is unpacked into Out/NAME,
	// and the download goes to Out/NAME.zip.part meanwhile.
	Out string
	// MD5 and SHA256 are the expected checksums (hex). When both are empty,
	// the md5 of Known is used; when there is none either, the download is
	// not verified and Warn says so, with its sha256.
	MD5, SHA256 string
	// Force downloads and unpacks again when Out/NAME already exists.
	Force bool
	// Client does the HTTP requests (http.DefaultClient when nil).
	Client *http.Client
	// NewBar, when not nil, makes a progress bar for a download of total
	// bytes (total includes bytes already downloaded; 0 if unknown).
	NewBar func(total int64) Bar
	// Warn, when not nil, receives warnings (unverified download, server
	// without Range support, a layout that is not BEIR's).
	Warn func(msg string)
}

// Result says what Pull did.
type Result struct {
	Dir            string // Out/NAME
	AlreadyPresent bool   // Out/NAME existed; nothing was downloaded
	Resumed        bool   // a partial download was continued with a Range request
	Bytes          int64  // size of the zip
	MD5, SHA256    string // of the zip, hex
	Verified       string // "md5", "sha256", "md5+sha256", or "" when unverified
	Files          int    // files unpacked
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Pull downloads NAME.zip, verifies it and unpacks it into Out/NAME.
//
// An interrupted download leaves Out/NAME.zip.part; the next Pull asks the
// server for the rest (Range: bytes=N-) and appends it when the answer is
// 206 Partial Content starting at N; any other answer restarts from zero
// (with a warning when the server ignored the Range). A checksum mismatch
// deletes the .part file (resuming it could never succeed) and is an error
// matching ErrChecksum. Unpacking goes through a temporary directory beside
// Out/NAME renamed into place; the zip's top-level NAME/ folder is removed,
// entries with absolute or ".." paths are refused. On success the .part
// file is removed. Cost: one pass over the network, one more over the file
// to hash it, one to unpack.
func Pull(ctx context.Context, name string, o Options) (Result, error) {
	if !validName.MatchString(name) {
		return Result{}, fmt.Errorf("pull dataset %q: a name is lower-case letters, digits, '.', '_' and '-'", name)
	}
	if o.Out == "" {
		o.Out = "."
	}
	res := Result{Dir: filepath.Join(o.Out, name)}
	if _, err := os.Stat(res.Dir); err == nil && !o.Force {
		res.AlreadyPresent = true
		return res, nil
	}
	if o.MD5 == "" && o.SHA256 == "" {
		if d, ok := Lookup(name); ok {
			o.MD5 = d.MD5
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return res, fmt.Errorf("pull %s: %w", name, err)
	}
	url := strings.TrimSuffix(o.BaseURL, "/") + "/" + name + ".zip"
	part := res.Dir + ".zip.part"
	dl, err := download.Resume(ctx, url, part, download.Options{Client: o.Client, NewBar: o.NewBar, Warn: o.Warn})
	res.Resumed = dl.Resumed
	if err != nil {
		return res, err
	}

	// Verify.
	res.Bytes, res.MD5, res.SHA256, err = hashFile(part)
	if err != nil {
		return res, err
	}
	var verified []string
	for _, c := range []struct{ kind, want, got string }{{"md5", o.MD5, res.MD5}, {"sha256", o.SHA256, res.SHA256}} {
		if c.want == "" {
			continue
		}
		if !strings.EqualFold(c.want, c.got) {
			os.Remove(part)
			return res, fmt.Errorf("pull %s: %w: %s of %s is %s, want %s (the download was deleted; try again, or check the expected sum)", name, ErrChecksum, c.kind, url, c.got, strings.ToLower(c.want))
		}
		verified = append(verified, c.kind)
	}
	res.Verified = strings.Join(verified, "+")
	if res.Verified == "" {
		o.warn(fmt.Sprintf("%s: no known checksum, the download is not verified; its sha256 is %s (pass it with --sha256 to check later downloads)", name, res.SHA256))
	}

	// Unpack.
	err = atomicfile.Dir(res.Dir, func(tmp string) error {
		n, err := unzip(part, tmp, name)
		res.Files = n
		return err
	})
	if err != nil {
		os.Remove(part)
		return res, fmt.Errorf("unpack %s: %w (the download was deleted)", part, err)
	}
	if !corpora.IsBEIR(res.Dir) {
		o.warn(fmt.Sprintf("%s: no corpus.jsonl at the top of %s; the archive holds %d files in another layout", name, res.Dir, res.Files))
	}
	if err := os.Remove(part); err != nil {
		return res, fmt.Errorf("remove %s: %w", part, err)
	}
	return res, nil
}

func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

func hashFile(name string) (size int64, md5hex, sha256hex string, err error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, "", "", fmt.Errorf("hash %s: %w", name, err)
	}
	defer f.Close()
	m, s := md5.New(), sha256.New()
	size, err = io.Copy(io.MultiWriter(m, s), f)
	if err != nil {
		return 0, "", "", fmt.Errorf("hash %s: %w", name, err)
	}
	return size, hex.EncodeToString(m.Sum(nil)), hex.EncodeToString(s.Sum(nil)), nil
}

// unzip extracts archive into dir, dropping a top-level "name/" folder
// when every entry is inside it, and "__MACOSX/" metadata. It refuses
// entries that would land outside dir and entries that are not regular
// files or directories. It returns the number of files written.
func unzip(archive, dir, name string) (int, error) {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	prefix := name + "/"
	strip := true
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "__MACOSX/") && !strings.HasPrefix(f.Name, prefix) && f.Name != prefix {
			strip = false
		}
	}
	files := 0
	for _, f := range zr.File {
		if strings.HasPrefix(f.Name, "__MACOSX/") {
			continue
		}
		rel := f.Name
		if strip {
			rel = strings.TrimPrefix(rel, prefix)
		}
		if rel == "" {
			continue
		}
		if strings.Contains(rel, `\`) || path.IsAbs(rel) {
			return files, fmt.Errorf("entry %q: absolute or backslashed path refused", f.Name)
		}
		clean := path.Clean(rel)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return files, fmt.Errorf("entry %q: path outside the dataset directory refused", f.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(clean))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return files, err
			}
			continue
		case !mode.IsRegular():
			return files, fmt.Errorf("entry %q: %v is not a regular file", f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return files, err
		}
		if err := extract(f, target); err != nil {
			return files, fmt.Errorf("entry %q: %w", f.Name, err)
		}
		files++
	}
	return files, nil
}

func extract(f *zip.File, target string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
