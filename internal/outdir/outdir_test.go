package outdir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/atomicfile"
)

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		path, dir string
		want      bool
	}{
		{"/a/b", "/a/b", true}, {"/a/b/c", "/a/b", true}, {"/a/bc", "/a/b", false},
		{"/a", "/a/b", false}, {"/a/..b", "/a", true},
	} {
		if got := within(c.path, c.dir); got != c.want {
			t.Errorf("within(%q, %q) = %v", c.path, c.dir, got)
		}
	}
}

// An input reached through a symbolic link is still the output.
func TestClaimSeesThroughLinks(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "corpus.jsonl"), []byte("{}"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Skip(err)
	}
	if _, err := Claim(link, Options{Command: "x", Dir: true, Force: true, Inputs: []string{filepath.Join(data, "corpus.jsonl")}}); err == nil {
		t.Fatal("output linked to the input's directory accepted")
	}
}

// Claim marks a new directory as the command's, Release removes it again
// when nothing was written, a second Claim by this process is refused
// while the first holds the lock, and atomicfile.Dir keeps the mark.
func TestClaimLifecycle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	g, err := Claim(out, Options{Command: "index build", Dir: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(out, Options{Command: "index build", Dir: true}); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("second claim: %v", err)
	}
	g.Release()
	g.Release()
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty claimed directory kept: %v", err)
	}
	g, err = Claim(out, Options{Command: "index build", Dir: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Dir(out, func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "index.spl"), []byte("x"), 0o644) }); err != nil {
		t.Fatal(err)
	}
	g.Release()
	if _, err := os.Stat(filepath.Join(out, atomicfile.Manifest)); err != nil {
		t.Fatalf("mark lost when the directory was replaced: %v", err)
	}
	if _, err := Claim(out, Options{Command: "bm25 index", Dir: true}); !errors.Is(err, ErrNotOurs) {
		t.Errorf("another command's output: %v", err)
	}
	g, err = Claim(out, Options{Command: "index build", Dir: true})
	if err != nil {
		t.Fatalf("own output: %v", err)
	}
	g.Release()
}
