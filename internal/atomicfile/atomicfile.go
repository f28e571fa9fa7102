// Package atomicfile writes files and directories so that a reader never
// sees a half-written result: output goes to a temporary sibling, is synced,
// and is renamed into place. A crash leaves either the old result or none.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// WriteFile writes data to path through a temporary file and a rename.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write calls fill with a temporary file in path's directory, then syncs it
// and renames it to path. On any error the temporary file is removed and
// path is left untouched.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(dir)
}

// Manifest is the file in which internal/outdir records which command made
// a directory. Dir carries it over from the directory it replaces, so that
// a command's output stays recognisable as its own however often it is
// rewritten.
const Manifest = ".spladapt-output.json"

// Dir builds a directory at path: fill receives an empty temporary
// directory beside path; when fill succeeds the temporary directory replaces
// path (an existing path is moved aside under a temporary name, then
// removed; its Manifest is carried over when fill wrote none). On error the
// temporary directory is removed and path is untouched. Temporaries are
// named "."+base(path)+".tmp-*" (see Temporaries).
func Dir(path string, fill func(tmpDir string) error) (err error) {
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary directory for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = syncDir(tmp); err != nil {
		return err
	}
	if _, statErr := os.Stat(path); statErr == nil {
		if raw, rerr := os.ReadFile(filepath.Join(path, Manifest)); rerr == nil {
			if _, serr := os.Stat(filepath.Join(tmp, Manifest)); errors.Is(serr, os.ErrNotExist) {
				if err = os.WriteFile(filepath.Join(tmp, Manifest), raw, 0o644); err != nil {
					return fmt.Errorf("carry over %s: %w", Manifest, err)
				}
			}
		}
		// Aside under a temporary name (never path+".old", which may be
		// someone's file): a crash here leaves a temporary that the next
		// run's Temporaries finds.
		old := tmp + ".old"
		if err = os.Rename(path, old); err != nil {
			return fmt.Errorf("move aside %s: %w", path, err)
		}
		defer os.RemoveAll(old)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(parent)
}

// CopyFile copies the file src to dst, which must not exist: the way to
// put an existing file into the temporary directory of Dir (which syncs
// it). Errors are os's, unwrapped, so errors.Is(err, os.ErrNotExist)
// tells a missing src. Cost: one pass through the file.
func CopyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Temporaries lists the temporary files and directories that Write and
// Dir make for path and that a killed process may have left behind.
func Temporaries(path string) ([]string, error) {
	return filepath.Glob(filepath.Join(filepath.Dir(path), "."+globEscape(filepath.Base(path))+".tmp-*"))
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
