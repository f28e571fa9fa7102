package rerank

import (
	"errors"
	"fmt"
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
// (DocStates of the document alone), the meta data, and no temporary file
// is left beside it.
func TestStoreRoundTrip(t *testing.T) {
	m := loadMICE(t, toyCrossEncoder(t, 3), toyMICECfg)
	path := buildToyStore(t, m)
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != len(toyDocs) || st.C != 32 || st.Meta.Fingerprint != m.Fingerprint() || st.Meta.Model != "toy" {
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
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporaries left: %v", left)
	}
}

// Every single-byte change in any section, the header or the footer, and
// every truncation, is detected (an error wrapping ErrStoreCorrupt).
func TestStoreCorruption(t *testing.T) {
	m := loadMICE(t, toyCrossEncoder(t, 3), toyMICECfg)
	path := buildToyStore(t, m)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
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
	// A CRC error names the section.
	bad := slices.Clone(raw)
	bad[20] ^= 1
	if _, err := decodeStore(bad); err == nil || !strings.Contains(err.Error(), "section STATES: CRC") {
		t.Errorf("flipped state byte: %v", err)
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
		}
	})
}
