// Package outdir guards what a command writes, so that a command never
// deletes what it did not create:
//
//   - an output directory that exists, is not empty and holds no manifest
//     (atomicfile.Manifest) naming the same command is refused unless
//     Force: it is someone's data, not a previous output;
//   - an output can never be, or contain, one of the command's inputs,
//     whatever Force says;
//   - one process at a time writes a path: a lock file beside it holds the
//     writer's PID, and a second writer is refused while that process
//     lives (a lock left by a dead process is taken over);
//   - temporaries of the path that a killed run left behind
//     (atomicfile.Temporaries) are removed once the lock is held.
//
// A command calls Claim before reading its inputs and Release when it
// ends (deferred; it is idempotent). The manifest is written into the
// output directory at Claim, and atomicfile.Dir carries it over when the
// directory is replaced, so that the output is recognisable however the
// command stopped.
package outdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Options describe one output of a command.
type Options struct {
	// Command names the command ("index build"); a directory is a previous
	// output of the command when its manifest names the same command.
	Command string
	// Dir is true for an output directory, false for an output file.
	Dir bool
	// Force allows replacing an existing directory that is not a previous
	// output of Command (never one that is or holds an input).
	Force bool
	// Inputs are the paths the command reads ("" entries are ignored).
	Inputs []string
}

// manifest is the content of atomicfile.Manifest.
type manifest struct {
	Command string    `json:"command"`
	Created time.Time `json:"created"`
}

// Guard is a claimed output; Release gives it up.
type Guard struct {
	path    string
	unlock  func()
	created bool // Claim made the directory
}

// ErrInUse is wrapped by the error of a Claim or Lock refused because
// another live process holds the path.
var ErrInUse = errors.New("in use by another process")

// ErrNotOurs is wrapped by the error of a Claim refused because the output
// directory holds data the command did not write.
var ErrNotOurs = errors.New("not a previous output of this command")

// Claim checks and locks path as an output of o.Command (see the package
// comment). Cost: a stat per input, one directory listing of path.
func Claim(path string, o Options) (*Guard, error) {
	if path == "" {
		return nil, errors.New("claim output: empty path")
	}
	out, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("claim output %s: %w", path, err)
	}
	for _, in := range o.Inputs {
		if in == "" {
			continue
		}
		rin, err := resolve(in)
		if err != nil {
			return nil, fmt.Errorf("claim output %s: %w", path, err)
		}
		if within(rin, out) {
			what := "is"
			if rin != out {
				what = "contains"
			}
			return nil, fmt.Errorf("output %s %s the input %s: choose another output", path, what, in)
		}
	}
	unlock, err := Lock(path)
	if err != nil {
		return nil, err
	}
	g := &Guard{path: path, unlock: unlock}
	fail := func(err error) (*Guard, error) {
		g.Release()
		return nil, err
	}
	tmps, err := atomicfile.Temporaries(path)
	if err != nil {
		return fail(fmt.Errorf("claim output %s: %w", path, err))
	}
	for _, t := range tmps {
		if err := os.RemoveAll(t); err != nil {
			return fail(fmt.Errorf("remove temporary %s left by an earlier run: %w", t, err))
		}
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !o.Dir {
			return g, nil
		}
		if err := os.MkdirAll(path, 0o755); err != nil {
			return fail(fmt.Errorf("create output directory %s: %w", path, err))
		}
		g.created = true
		if err := writeManifest(path, o.Command); err != nil {
			return fail(err)
		}
		return g, nil
	case err != nil:
		return fail(fmt.Errorf("claim output %s: %w", path, err))
	}
	if !o.Dir {
		if fi.IsDir() {
			return fail(fmt.Errorf("output file %s is a directory: choose another path", path))
		}
		return g, nil
	}
	if !fi.IsDir() {
		if o.Force {
			return g, nil
		}
		return fail(fmt.Errorf("output directory %s is an existing file: %w (pass --force to replace it, or choose another path)", path, ErrNotOurs))
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return fail(fmt.Errorf("claim output %s: %w", path, err))
	}
	if len(ents) > 0 && !o.Force {
		raw, rerr := os.ReadFile(filepath.Join(path, atomicfile.Manifest))
		var m manifest
		if rerr != nil || json.Unmarshal(raw, &m) != nil || m.Command != o.Command {
			who := "it has no " + atomicfile.Manifest
			if rerr == nil && m.Command != "" {
				who = fmt.Sprintf("it was written by %q", "spladapt "+m.Command)
			}
			return fail(fmt.Errorf("output directory %s exists and is %w %q (%s): pass --force to replace it, or choose another directory",
				path, ErrNotOurs, "spladapt "+o.Command, who))
		}
		return g, nil
	}
	if err := writeManifest(path, o.Command); err != nil {
		return fail(err)
	}
	return g, nil
}

func writeManifest(dir, command string) error {
	raw, _ := json.MarshalIndent(manifest{Command: command, Created: time.Now().UTC()}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, atomicfile.Manifest), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("mark output directory %s: %w", dir, err)
	}
	return nil
}

// Release removes the lock and, when Claim created the output directory
// and it still holds nothing but the manifest (the command failed before
// writing), the directory. It is safe to call more than once.
func (g *Guard) Release() {
	if g == nil || g.unlock == nil {
		return
	}
	if g.created {
		if ents, err := os.ReadDir(g.path); err == nil && len(ents) == 1 && ents[0].Name() == atomicfile.Manifest {
			os.RemoveAll(g.path)
		}
	}
	g.unlock()
	g.unlock = nil
}

// LockPath is the lock file of path: a hidden sibling.
func LockPath(path string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(path)), "."+filepath.Base(filepath.Clean(path))+".lock")
}

// Lock takes the lock of path (LockPath, holding this process's PID) and
// returns the function that gives it up. A lock held by a live process is
// an error wrapping ErrInUse that names the process; a lock left by a
// process that is gone is taken over.
func Lock(path string) (unlock func(), err error) {
	lp := LockPath(path)
	if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	pid := strconv.Itoa(os.Getpid())
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := f.WriteString(pid + "\n")
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(lp)
				return nil, fmt.Errorf("lock %s: %w", path, werr)
			}
			return func() { os.Remove(lp) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		raw, rerr := os.ReadFile(lp)
		other, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
		if rerr == nil && perr != nil {
			// A lock being written this instant, or garbage: only
			// take it over once it is old.
			if fi, serr := os.Stat(lp); serr == nil && time.Since(fi.ModTime()) < 10*time.Second {
				return nil, fmt.Errorf("%s is %w (lock file %s is being written)", path, ErrInUse, lp)
			}
		}
		if rerr == nil && perr == nil && alive(other) {
			return nil, fmt.Errorf("%s is %w: process %d holds %s; wait for it to finish (or remove the lock file if that process is not spladapt)", path, ErrInUse, other, lp)
		}
		if attempt > 0 {
			return nil, fmt.Errorf("lock %s: stale lock %s could not be taken over", path, lp)
		}
		if err := os.Remove(lp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("lock %s: remove stale lock: %w", path, err)
		}
	}
}

// resolve returns path absolute and clean, with the symbolic links of its
// longest existing prefix resolved, so that two spellings of one place
// compare equal.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for p := abs; ; {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
