package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesOnlyOnSuccess(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "out.txt")
	if err := WriteFile(p, []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("half-written"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Fatalf("failed write changed the file to %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := WriteFile(p, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "second" {
		t.Fatalf("file = %q, want second", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestDirReplacesWholeDirectory(t *testing.T) {
	parent := t.TempDir()
	p := filepath.Join(parent, "idx")
	fill := func(name string) func(string) error {
		return func(tmp string) error { return os.WriteFile(filepath.Join(tmp, name), []byte(name), 0o644) }
	}
	if err := Dir(p, fill("a")); err != nil {
		t.Fatal(err)
	}
	if err := Dir(p, func(tmp string) error { fill("x")(tmp); return errors.New("crash") }); err == nil {
		t.Fatal("failing fill: no error")
	}
	if _, err := os.Stat(filepath.Join(p, "a")); err != nil {
		t.Fatal("a failed rebuild lost the old directory")
	}
	if err := Dir(p, fill("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "a")); !os.IsNotExist(err) {
		t.Error("old content survived a replacement")
	}
	if _, err := os.Stat(filepath.Join(p, "b")); err != nil {
		t.Error("new content missing")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("leftovers beside the directory: %v", entries)
	}
}

// TestCopyFile: the bytes arrive; an existing dst is refused and kept; a
// missing src is os.ErrNotExist.
func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(dst, src); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || string(got) != "abc" {
		t.Fatalf("copy holds %q, %v; want abc", got, err)
	}
	if err := os.WriteFile(src, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(dst, src); !errors.Is(err, os.ErrExist) {
		t.Fatalf("copy onto an existing file: %v, want os.ErrExist", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "abc" {
		t.Fatalf("existing dst changed to %q", got)
	}
	if err := CopyFile(filepath.Join(dir, "other"), filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing src: %v, want os.ErrNotExist", err)
	}
}
