// Package adapt runs spladapt's main job as durable stages: MLM of P_domain
// on the source corpus, then on each target corpus, SPLADE fine-tuning of
// P_task, model swapping, encoding and indexing, search, evaluation and the
// comparison report.
//
// Each stage writes one directory under the run directory through a
// temporary path and a rename, with a meta.json recording the stage name,
// the settings it reads (its Run sees only those: settings.go), fingerprints
// of its inputs, the code version and the time taken. A stage whose key (config + inputs) is
// unchanged is reused (the code version is recorded, not keyed: a rebuild
// does not redo hours of training; use --force STAGE for that); a crashed stage restarts from the
// checkpoints it kept in its work directory.
package adapt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/splade"
)

// MetaFile is the name of the file every finished stage directory holds.
const MetaFile = "meta.json"

// Meta is what a finished stage records about itself.
type Meta struct {
	Stage       string            `json:"stage"`
	Key         string            `json:"key"`    // sha256 over stage name, config and input fingerprints
	Config      json.RawMessage   `json:"config"` // the settings that matter to this stage
	Inputs      map[string]string `json:"inputs"` // input path → fingerprint
	CodeVersion string            `json:"code_version"`
	Started     time.Time         `json:"started"`
	Seconds     float64           `json:"seconds"`
	Notes       map[string]any    `json:"notes,omitempty"` // figures the stage wants to keep
}

// Stage is one step of the pipeline.
type Stage struct {
	Name   string
	Config any      // marshalled to JSON; part of the key
	Inputs []string // files or directories whose fingerprints are part of the key
	// Run builds the stage's output in out (an empty temporary directory).
	// work is a directory that survives crashes, for checkpoints; it is
	// removed once the stage has finished. Run may add figures to notes.
	Run func(ctx context.Context, out, work string, notes map[string]any) error
}

// Runner runs stages in a run directory.
type Runner struct {
	Dir   string
	Force map[string]bool // stage names to rerun even when up to date
	Log   io.Writer       // one line per stage; nil for none
}

// State is a stage's state in a run directory.
type State string

const (
	Done    State = "done"    // finished, and its key matches
	Stale   State = "stale"   // finished, but its config or inputs changed
	Partial State = "partial" // started, with checkpoints left in its work directory
	Pending State = "pending" // never started
)

// Path is the output directory of stage name.
func (r *Runner) Path(name string) string { return filepath.Join(r.Dir, name) }

func (r *Runner) workPath(name string) string { return filepath.Join(r.Dir, "."+name+".work") }

// Run runs s unless an up-to-date result exists, and returns its directory.
func (r *Runner) Run(ctx context.Context, s Stage) (string, error) {
	out := r.Path(s.Name)
	key, cfg, inputs, err := stageKey(s)
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", s.Name, err)
	}
	if m, err := ReadMeta(out); err == nil && m.Key == key && !r.Force[s.Name] {
		r.logf("stage %-22s reused (%s)", s.Name, out)
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	work := r.workPath(s.Name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("stage %s: %w", s.Name, err)
	}
	r.logf("stage %-22s running", s.Name)
	start := time.Now()
	notes := map[string]any{}
	err = atomicfile.Dir(out, func(tmp string) error {
		if err := s.Run(ctx, tmp, work, notes); err != nil {
			return err
		}
		m := Meta{Stage: s.Name, Key: key, Config: cfg, Inputs: inputs, CodeVersion: CodeVersion(),
			Started: start.UTC(), Seconds: time.Since(start).Seconds(), Notes: notes}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(tmp, MetaFile), append(b, '\n'), 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", s.Name, err)
	}
	os.RemoveAll(work)
	r.logf("stage %-22s done in %s", s.Name, time.Since(start).Round(time.Millisecond))
	return out, nil
}

// StateOf tells the state of s in the run directory without running it.
func (r *Runner) StateOf(s Stage) (State, *Meta) {
	m, err := ReadMeta(r.Path(s.Name))
	if err == nil {
		key, _, _, kerr := stageKey(s)
		if kerr == nil && key == m.Key {
			return Done, m
		}
		return Stale, m
	}
	if _, err := os.Stat(r.workPath(s.Name)); err == nil {
		return Partial, nil
	}
	return Pending, nil
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

// ReadMeta reads the meta.json of a finished stage directory.
func ReadMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, MetaFile), err)
	}
	return &m, nil
}

func stageKey(s Stage) (key string, cfg json.RawMessage, inputs map[string]string, err error) {
	cfg, err = json.Marshal(s.Config)
	if err != nil {
		return "", nil, nil, fmt.Errorf("encode config: %w", err)
	}
	inputs = map[string]string{}
	for _, in := range s.Inputs {
		fp, err := Fingerprint(in)
		if err != nil {
			return "", nil, nil, err
		}
		inputs[in] = fp
	}
	h := sha256.New()
	fmt.Fprintf(h, "stage %s\nconfig %s\n", s.Name, cfg)
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(h, "input %s %s\n", k, inputs[k])
	}
	return hex.EncodeToString(h.Sum(nil)), cfg, inputs, nil
}

// Fingerprint identifies the content of a file or directory. A directory
// that is a finished stage, or directly inside one, is identified by the
// stage's meta.json key (so a stage depends on what built its input, not on
// re-reading it); other files by their relative path, size and the SHA-256
// of their bytes, so a corpus unpacked again in place (new modification
// times, same bytes) keeps its stages and any changed byte redoes them.
// Hidden entries (".name") are ignored. Cost: reading every input file once
// per process (memoised by path, size and modification time).
func Fingerprint(path string) (string, error) {
	if m, err := ReadMeta(path); err == nil {
		return "stage:" + m.Key, nil
	}
	if m, err := ReadMeta(filepath.Dir(path)); err == nil { // a stage's model/ or index/
		return "stage:" + m.Key + "/" + filepath.Base(path), nil
	}
	h := sha256.New()
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && len(d.Name()) > 0 && d.Name()[0] == '.' {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum, err := contentHash(p, info)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		fmt.Fprintf(h, "%s\t%d\t%s\n", filepath.ToSlash(rel), info.Size(), sum)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// fileHashes memoises contentHash: a corpus read by several stages of one
// process is hashed once. Keyed by fileStamp.
var fileHashes sync.Map

type fileStamp struct {
	path        string
	size, mtime int64
}

// contentHash is the hex SHA-256 of the file at p, whose info is given.
func contentHash(p string, info fs.FileInfo) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	stamp := fileStamp{abs, info.Size(), info.ModTime().UnixNano()}
	if v, ok := fileHashes.Load(stamp); ok {
		return v.(string), nil
	}
	sum, err := splade.FileHash(p)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", p, err)
	}
	fileHashes.Store(stamp, sum)
	return sum, nil
}

// CodeVersion identifies the build: the VCS revision (with "+dirty" when
// the tree was modified) or the module version.
func CodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return bi.Main.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
