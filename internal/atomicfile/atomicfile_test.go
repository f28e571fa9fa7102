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
