package nn

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// MICE scores match tools/ceoracle's plain-torch MICE for every variant of
// testdata/ceoracle/mice-bert: full (= the cross-encoder on the MICE
// layout), mid-fusion, light cross-attention, light with a dropped layer.
func TestMICEOracleParity(t *testing.T) {
	dir := filepath.Join(ceOracleRoot, "mice-bert")
	c, err := LoadClassifier(filepath.Join(dir, "model"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cj struct {
		Variants map[string]MICEOptions `json:"variants"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "golden/case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cj); err != nil {
		t.Fatal(err)
	}
	if len(cj.Variants) != 4 {
		t.Fatalf("%d variants, want 4", len(cj.Variants))
	}
	g := readGolden(t, dir)
	qids, qs := g.ints(t, "query_ids")
	qm, _ := g.ints(t, "query_mask")
	dids, ds := g.ints(t, "doc_ids")
	dm, _ := g.ints(t, "doc_mask")
	B, Tq, Td := qs[0], qs[1], ds[1]
	p := c.NewMICEPass()
	for name, o := range cj.Variants {
		if err := o.Validate(c.Config.NumLayers); err != nil {
			t.Fatal(err)
		}
		xd := p.DocStates(o, dids, maskOf(dm), B, Td, Tq)
		xq := p.QueryStates(o, qids, nil, maskOf(qm), B, Tq)
		s := p.Score(o, xq, maskOf(qm), Tq, xd, maskOf(dm), Td, B)
		checkTensor(t, "scores "+name, f64(s), f64(g.floats(t, g.scores, "scores."+name)), defaultTol, true, true, 0)
	}
	for _, bad := range []MICEOptions{{Fusion: 4, Interact: []int{1}}, {Fusion: 1, Interact: []int{0}}, {Fusion: 1}, {Fusion: 0, Interact: []int{2, 1}}} {
		if bad.Validate(3) == nil {
			t.Errorf("options %+v accepted", bad)
		}
	}
}
