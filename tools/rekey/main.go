// Command rekey re-keys finished stages of a copied adapt run whose input
// files were re-created with the same content but new modification times,
// so that "spladapt adapt" reuses them instead of redoing hours of
// training:
//
//	go run ./tools/rekey -run RUNDIR [-accept PATH]... STAGE [STAGE ...]
//
// A stage's key hashes the fingerprints of its inputs, and a plain file's
// fingerprint is its path, size and modification time (adapt.Fingerprint):
// a data directory unpacked again (same bytes, new times) makes every stage
// that reads it stale. For each STAGE, in the order given (upstream first),
// rekey
//
//   - recomputes the recorded key from the recorded config and input
//     fingerprints and refuses the stage if that does not reproduce it
//     (another key algorithm);
//   - fingerprints each input now: an input that is a finished stage may
//     have a new key (it was re-keyed before it); any other input whose
//     fingerprint changed must be named by -accept, the caller's statement
//     that its content is unchanged (check it, e.g. against published
//     checksums), else rekey stops naming it;
//   - writes meta.json with the new key and fingerprints, atomically, and
//     notes the old key and the accepted inputs under notes.rekeyed.
//
// Input paths are taken literally, as the keys hold them: run rekey where
// those paths resolve to the copy (the same mount namespace as the adapt
// run that will reuse it). It reads no model and trains nothing; cost: one
// fingerprint per input.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spladapt/spladapt/adapt"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// key is adapt's stage key: sha256 over the stage name, the compact config
// and the sorted "input PATH FINGERPRINT" lines.
func key(stage string, cfg []byte, inputs map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "stage %s\nconfig %s\n", stage, cfg)
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(h, "input %s %s\n", k, inputs[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func rekey(dir string, accept map[string]bool) error {
	path := filepath.Join(dir, adapt.MetaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m adapt.Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var cfg bytes.Buffer
	if err := json.Compact(&cfg, m.Config); err != nil {
		return fmt.Errorf("read %s: config: %w", path, err)
	}
	if k := key(m.Stage, cfg.Bytes(), m.Inputs); k != m.Key {
		return fmt.Errorf("%s: recorded key %s, recomputed %s: not adapt's key algorithm", path, m.Key, k)
	}
	now := map[string]string{}
	accepted := map[string]any{}
	for in, old := range m.Inputs {
		fp, err := adapt.Fingerprint(in)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		now[in] = fp
		switch {
		case fp == old:
		case strings.HasPrefix(old, "stage:") && strings.HasPrefix(fp, "stage:"):
		case accept[in]:
			accepted[in] = map[string]string{"from": old, "to": fp}
		default:
			return fmt.Errorf("%s: input %s has fingerprint %s, recorded %s (pass -accept %s once its content is checked)", path, in, fp, old, in)
		}
	}
	k := key(m.Stage, cfg.Bytes(), now)
	if k == m.Key {
		fmt.Printf("%-28s key unchanged\n", m.Stage)
		return nil
	}
	// Every other field is kept as recorded, byte for byte.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	notes := map[string]json.RawMessage{}
	if n, ok := raw["notes"]; ok {
		if err := json.Unmarshal(n, &notes); err != nil {
			return fmt.Errorf("read %s: notes: %w", path, err)
		}
	}
	var set error
	put := func(m map[string]json.RawMessage, name string, v any) {
		b, err := json.Marshal(v)
		if err != nil && set == nil {
			set = err
		}
		m[name] = b
	}
	put(notes, "rekeyed", map[string]any{"from_key": m.Key, "accepted_inputs": accepted})
	put(raw, "notes", notes)
	put(raw, "key", k)
	put(raw, "inputs", now)
	if set != nil {
		return set
	}
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("%-28s re-keyed %.12s -> %.12s\n", m.Stage, m.Key, k)
	return nil
}

func main() {
	run := flag.String("run", "", "the adapt run directory")
	var acc multi
	flag.Var(&acc, "accept", "an input path whose content is known unchanged (repeatable)")
	flag.Parse()
	if *run == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rekey -run RUNDIR [-accept PATH]... STAGE [STAGE ...]")
		os.Exit(2)
	}
	accept := map[string]bool{}
	for _, a := range acc {
		accept[a] = true
	}
	for _, s := range flag.Args() {
		if err := rekey(filepath.Join(*run, s), accept); err != nil {
			fmt.Fprintln(os.Stderr, "rekey:", err)
			os.Exit(1)
		}
	}
}
