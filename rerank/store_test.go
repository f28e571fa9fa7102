package rerank

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

func buildToyStore(t *testing.T, m *MICE) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docs.mice")
	var n int
	if err := BuildStore(m, toyDocs, path, "toy", func(k int) { n += k }); err != nil {
		t.Fatal(err)
	}
	if n != len(toyDocs) {
		t.Errorf("progress counted %d documents, want %d", n, len(toyDocs))
	}
	return path
}

// A store reads back what was written: every document's rows bit for bit
// (DocStates of the document alone) and its token ids, the meta data, and
// no temporary file is left beside it.
func TestStoreRoundTrip(t *testing.T) {
	m := loadMICE(t, toyCrossEncoder(t, 3), toyMICECfg)
	path := buildToyStore(t, m)
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != len(toyDocs) || st.C != 32 || st.Meta.Fingerprint != m.Fingerprint() || st.Meta.Model != "toy" || st.Meta.Format != 2 || !st.HasTokens() {
		t.Fatalf("store of %d documents, C %d, meta %+v", st.Len(), st.C, st.Meta)
	}
	if fmt.Sprint(st.Meta.MICE) != fmt.Sprint(toyMICECfg) {
		t.Errorf("meta MICE %+v, want %+v", st.Meta.MICE, toyMICECfg)
	}
	for id, text := range toyDocs {
		got, ok := st.States(id)
		if !ok {
			t.Fatalf("document %s missing", id)
		}
		ids := m.DocIDs(text)
		if toks, ok := st.Tokens(id); !ok || !slices.Equal(toks, ids) {
			t.Errorf("%s: stored token ids %v, want %v", id, toks, ids)
		}
		ones := make([]float32, len(ids))
		for i := range ones {
			ones[i] = 1
		}
		want := m.pass.DocStates(m.Cfg.MICEOptions, ids, ones, 1, len(ids), m.Cfg.QueryLength)
		if len(got) != len(want) {
			t.Fatalf("%s: %d floats, want %d", id, len(got), len(want))
		}
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
				t.Fatalf("%s[%d]: stored %g, computed alone %g", id, i, got[i], want[i])
			}
		}
	}
	if _, ok := st.States("nope"); ok {
		t.Error("unknown document found")
	}
	if _, ok := st.Tokens("nope"); ok {
		t.Error("unknown document's tokens found")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporaries left: %v", left)
	}
}

// Every single-byte change in any section, the header or the footer, and
// every truncation, is detected (an error wrapping ErrStoreCorrupt), in a
// store of format 2 and of format 1.
func TestStoreCorruption(t *testing.T) {
	m := loadMICE(t, toyCrossEncoder(t, 3), toyMICECfg)
	path := buildToyStore(t, m)
	raw2, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for v, raw := range map[int][]byte{2: raw2, 1: storeV1(t, raw2)} {
		t.Run(fmt.Sprintf("format=%d", v), func(t *testing.T) { checkCorruption(t, raw) })
	}
	// A CRC error names the section, TOKENS included.
	le := binary.LittleEndian
	f := raw2[len(raw2)-112:]
	for i, name := range []string{"STATES", "IDS", "OFFS", "TOKENS", "META"} {
		bad := slices.Clone(raw2)
		off, n := le.Uint64(f[16+16*i:]), le.Uint64(f[24+16*i:])
		bad[off+n/2] ^= 1
		if _, err := decodeStore(bad); err == nil || !strings.Contains(err.Error(), "section "+name+": CRC") {
			t.Errorf("flipped a byte of %s: %v", name, err)
		}
	}
}

func checkCorruption(t *testing.T, raw []byte) {
	if _, err := decodeStore(raw); err != nil {
		t.Fatal(err)
	}
	step := max(1, len(raw)/500)
	var crcs int
	for i := 0; i < len(raw); i += step {
		bad := slices.Clone(raw)
		bad[i] ^= 0x10
		_, err := decodeStore(bad)
		if !errors.Is(err, ErrStoreCorrupt) {
			t.Fatalf("byte %d of %d flipped: err %v", i, len(raw), err)
		}
		if strings.Contains(err.Error(), "CRC") {
			crcs++
		}
	}
	if crcs == 0 {
		t.Error("no change was caught by a CRC")
	}
	for _, n := range []int{0, 10, 100, len(raw) / 2, len(raw) - 1} {
		if _, err := decodeStore(raw[:n]); !errors.Is(err, ErrStoreCorrupt) {
			t.Errorf("truncated to %d bytes: err %v", n, err)
		}
	}
	bad := slices.Clone(raw)
	bad[20] ^= 1
	if _, err := decodeStore(bad); err == nil || !strings.Contains(err.Error(), "section STATES: CRC") {
		t.Errorf("flipped state byte: %v", err)
	}
}

// storeV1 lays the sections of a format-2 store out as format 1 (no
// TOKENS, a 96-byte footer, META saying format 1), written from
// docs/format/mice-store.md rather than by the package's writer, which
// writes format 2 only.
func storeV1(t testing.TB, raw []byte) []byte {
	t.Helper()
	le := binary.LittleEndian
	f := raw[len(raw)-112:]
	sec := func(i int) []byte {
		off, n := le.Uint64(f[16+16*i:]), le.Uint64(f[24+16*i:])
		return raw[off : off+n]
	}
	var meta map[string]any
	if err := json.Unmarshal(sec(4), &meta); err != nil {
		t.Fatal(err)
	}
	meta["format"] = 1
	mj, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte("SPLMICES"), 1, 0, 0, 0, 1, 0, 0, 0)
	footer := make([]byte, 96)
	copy(footer, f[:16]) // N, C, reserved
	// STATES, IDS, OFFS and META, each followed by its CRC
	for i, data := range [][]byte{sec(0), sec(1), sec(2), mj} {
		le.PutUint64(footer[16+16*i:], uint64(len(out)))
		le.PutUint64(footer[24+16*i:], uint64(len(data)))
		out = append(out, data...)
		out = le.AppendUint32(out, crc32.ChecksumIEEE(data))
	}
	le.PutUint32(footer[80:], crc32.ChecksumIEEE(footer[:80]))
	copy(footer[88:], "SPLMICEF")
	return append(out, footer...)
}

// A store of format 1 (no token ids) still opens with the same states and
// serves MICE without match types as format 2 does; MICE with match types
// refuses it, saying to rebuild it.
func TestStoreFormat1(t *testing.T) {
	dir := toyCrossEncoderInit(t, 4, 0.3)
	m := toyMatchMICE(t, dir, toyMICECfg)
	path2 := buildToyStore(t, m)
	raw2, err := os.ReadFile(path2)
	if err != nil {
		t.Fatal(err)
	}
	path1 := filepath.Join(t.TempDir(), "v1.mice")
	if err := os.WriteFile(path1, storeV1(t, raw2), 0o644); err != nil {
		t.Fatal(err)
	}
	st1, err := OpenStore(path1)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := OpenStore(path2)
	if err != nil {
		t.Fatal(err)
	}
	if st1.Meta.Format != 1 || st1.HasTokens() || st1.Len() != st2.Len() {
		t.Fatalf("format-1 store: format %d, tokens %v, %d documents", st1.Meta.Format, st1.HasTokens(), st1.Len())
	}
	for id := range toyDocs {
		a, _ := st1.States(id)
		b, _ := st2.States(id)
		if !slices.Equal(a, b) {
			t.Errorf("%s: format-1 states differ", id)
		}
		if _, ok := st1.Tokens(id); ok {
			t.Errorf("%s: token ids in a format-1 store", id)
		}
	}
	_, dev := toyData()
	if _, err := RerankStore(m, st1, dev.Queries, dev.Run, 5, nil); err == nil || !strings.Contains(err.Error(), "no document token ids") || !strings.Contains(err.Error(), "rebuild") {
		t.Errorf("MICE with match types on a format-1 store: %v", err)
	}
	m.MatchTypes = false
	r1, err := RerankStore(m, st1, dev.Queries, dev.Run, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := RerankStore(m, st2, dev.Queries, dev.Run, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r1) != fmt.Sprint(r2) {
		t.Errorf("format 1 re-ranks %v, format 2 %v", r1, r2)
	}
}

// The worked example of docs/format/mice-store.md: two documents d1 (3
// rows) and doc2 (2 rows), C = 2, at the offsets the specification gives.
func TestStoreFormatExample(t *testing.T) {
	var buf bytes.Buffer
	sw := newStoreWriter(&buf, 2)
	if err := sw.add("d1", make([]float32, 6), []int32{7, 8, 3}); err != nil {
		t.Fatal(err)
	}
	if err := sw.add("doc2", make([]float32, 4), []int32{9, 3}); err != nil {
		t.Fatal(err)
	}
	if err := sw.add("bad", make([]float32, 4), []int32{9}); err == nil {
		t.Error("a document with fewer token ids than rows was accepted")
	}
	meta := StoreMeta{Format: 2, MICE: toyMICECfg, Fingerprint: "0", Documents: 2}
	if err := sw.finish(meta); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	mj, _ := json.Marshal(meta)
	M := uint64(len(mj))
	if uint64(len(raw)) != 246+M {
		t.Fatalf("%d bytes, want 246 + M = %d", len(raw), 246+M)
	}
	le := binary.LittleEndian
	f := raw[134+M:]
	want := []uint64{16, 40, 60, 14, 78, 24, 106, 20, 130, M}
	for i, w := range want {
		if got := le.Uint64(f[16+8*i:]); got != w {
			t.Errorf("footer slot %d: %d, want %d", i, got, w)
		}
	}
	if le.Uint64(f) != 2 || le.Uint32(f[8:]) != 2 || string(f[104:]) != "SPLMICEF" || string(raw[:8]) != "SPLMICES" || le.Uint32(raw[8:]) != 2 {
		t.Errorf("header or footer: % x … % x", raw[:16], f)
	}
	if toks := raw[106:126]; fmt.Sprint(toks) != fmt.Sprint([]byte{7, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0}) {
		t.Errorf("TOKENS % x", toks)
	}
	st, err := decodeStore(raw)
	if err != nil {
		t.Fatal(err)
	}
	if toks, _ := st.Tokens("doc2"); !slices.Equal(toks, []int32{9, 3}) {
		t.Errorf("doc2 tokens %v", toks)
	}
}

// Re-ranking from stored states gives the scores of MICE computed on the
// fly, and the same order; a store made by another model is refused.
func TestRerankStoreEqualsOnTheFly(t *testing.T) {
	dir := toyCrossEncoderInit(t, 4, 0.3)
	for _, cfg := range []MICEConfig{toyMICECfg, {MICEOptions: toyMICECfg.MICEOptions, QueryLength: 6, DocLength: 5}} {
		m := loadMICE(t, dir, cfg)
		m.BatchSize = 3
		st, err := OpenStore(buildToyStore(t, m))
		if err != nil {
			t.Fatal(err)
		}
		_, dev := toyData()
		got, err := RerankStore(m, st, dev.Queries, dev.Run, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Rerank(m, dev.Queries, dev.Docs, dev.Run, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for _, qid := range slices.Sorted(maps.Keys(want)) {
			w, g := want[qid], got[qid]
			if len(g) != len(w) {
				t.Fatalf("query %s: %d hits, want %d", qid, len(g), len(w))
			}
			gs := map[string]float64{}
			for _, h := range g {
				gs[h.DocID] = h.Score
			}
			for _, h := range w {
				worst = max(worst, math.Abs(gs[h.DocID]-h.Score))
			}
		}
		t.Logf("query length %d, document length %d: max |stored − on the fly| = %.3g", cfg.QueryLength, cfg.DocLength, worst)
		if worst > 1e-5 {
			t.Errorf("stored and on-the-fly scores differ by %g", worst)
		}
		// The same model with other weights below the fusion layer.
		other := loadMICE(t, dir, cfg)
		other.Model.Params[0].W[40] += 0.5
		if _, err := RerankStore(other, st, dev.Queries, dev.Run, 7, nil); err == nil || !strings.Contains(err.Error(), "another model") {
			t.Errorf("store of another model: err %v", err)
		}
		if _, err := RerankStore(m, st, dev.Queries, corpora.Run{"q1": {{DocID: "missing"}}}, 7, nil); err == nil {
			t.Error("document missing from the store: no error")
		}
	}
}

// FuzzOpenStore: any bytes give an error or a store whose every document
// can be read; never a panic.
func FuzzOpenStore(f *testing.F) {
	m := loadMICE(f, toyCrossEncoder(f, 3), toyMICECfg)
	path := filepath.Join(f.TempDir(), "docs.mice")
	if err := BuildStore(m, map[string]string{"a": "cat", "b": "the ship sailed"}, path, "", nil); err != nil {
		f.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add(storeV1(f, raw))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeStore(b)
		if err != nil {
			if !errors.Is(err, ErrStoreCorrupt) {
				t.Fatalf("error %v does not wrap ErrStoreCorrupt", err)
			}
			return
		}
		for id := range st.ids {
			s, ok := st.States(id)
			if !ok || len(s) == 0 || len(s)%st.C != 0 {
				t.Fatalf("document %q: %d floats", id, len(s))
			}
			if toks, ok := st.Tokens(id); ok != st.HasTokens() || ok && len(toks) != len(s)/st.C {
				t.Fatalf("document %q: %d token ids for %d rows (has tokens %v)", id, len(toks), len(s)/st.C, st.HasTokens())
			}
		}
	})
}
