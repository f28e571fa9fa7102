package rerank

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
)

// TestMarkMatches: query pieces found in the (kept) document get type 2,
// document pieces found in the query type 3, specials and unmatched pieces
// keep 0 and 1; a piece cut off by truncation matches nothing.
func TestMarkMatches(t *testing.T) {
	tok := toyTokenizer(t)
	types := func(q, d string, maxLen int) string {
		e := tok.EncodePair(q, d, maxLen)
		MarkMatches(e, tok.IsSpecial)
		var b strings.Builder
		for _, y := range e.TypeIDs {
			b.WriteByte('0' + byte(y))
		}
		return b.String()
	}
	// [CLS] cat mouse sky [SEP] the cat chased a mouse [SEP]
	if got, want := types("cat mouse sky", "the cat chased a mouse", 0), "02200131131"; got != want {
		t.Errorf("types %s, want %s", got, want)
	}
	// truncated to "[CLS] cat mouse [SEP] the cat chased [SEP]": mouse no longer matches
	if got, want := types("cat mouse sky", "the cat chased a mouse", 8), "02001311"; got != want {
		t.Errorf("truncated: types %s, want %s", got, want)
	}
	if got, want := types("cat cat", "cat", 0), "022031"; got != want {
		t.Errorf("repeated piece: types %s, want %s", got, want)
	}
}

// TestGrowTokenTypes: the old rows are kept, the new ones start near the
// old ones but differ, the config and a saved checkpoint follow, and
// DistilBERT is refused.
func TestGrowTokenTypes(t *testing.T) {
	c, err := nn.NewClassifier(nn.BERTConfig(40, 16, 1, 2, 32, 16), 3)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Model
	var typeEmb *nn.Param
	for _, p := range m.Params {
		if p.Name == "bert.embeddings.token_type_embeddings.weight" {
			typeEmb = p
		}
	}
	old := slices.Clone(typeEmb.W)
	if err := m.GrowTokenTypes(NumMatchTypes, 7); err != nil {
		t.Fatal(err)
	}
	C := 16
	if m.Config.TypeVocabSize != 4 || len(typeEmb.W) != 4*C || len(typeEmb.G) != 4*C || typeEmb.Shape[0] != 4 {
		t.Fatalf("grown table: config %d types, %d values, shape %v", m.Config.TypeVocabSize, len(typeEmb.W), typeEmb.Shape)
	}
	if !slices.Equal(typeEmb.W[:2*C], old) {
		t.Error("the two existing rows changed")
	}
	for k := 2; k < 4; k++ {
		var d2 float64
		for j := range C {
			d := float64(typeEmb.W[k*C+j] - old[(k%2)*C+j])
			d2 += d * d
		}
		if d2 == 0 || d2 > float64(16*C)*0.02*0.02 {
			t.Errorf("row %d: squared distance %g from row %d, want small and not 0", k, d2, k%2)
		}
	}
	if err := m.GrowTokenTypes(3, 7); err != nil || m.Config.TypeVocabSize != 4 {
		t.Errorf("shrinking: err %v, %d types", err, m.Config.TypeVocabSize)
	}
	d, err := nn.NewClassifier(nn.DistilBERTConfig(40, 16, 1, 2, 32, 16), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Model.GrowTokenTypes(4, 1); err == nil {
		t.Error("DistilBERT grew token types")
	}
}

// TestTrainMatchTypes trains the toy cross-encoder with match types: the
// token types grow to four, rerank.json records match_types, and the
// reloaded scorer marks matches and scores what the trained model scored.
func TestTrainMatchTypes(t *testing.T) {
	dir := toyCrossEncoder(t, 5)
	ce := loadCE(t, dir)
	if err := ce.SetMatchTypes(true); err == nil {
		t.Fatal("match types accepted on a model with two token types")
	}
	if err := ce.Model.GrowTokenTypes(NumMatchTypes, 1); err != nil {
		t.Fatal(err)
	}
	if err := ce.SetMatchTypes(true); err != nil {
		t.Fatal(err)
	}
	src, _ := toyData()
	opt := toyOptions(InfoNCE)
	opt.Steps, opt.MatchTypes = 10, true
	tr, err := NewTrainer(ce, []splade.Source{src}, nil, opt) // no dev: the last model is kept
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "best")
	if _, err := tr.Run(context.Background(), t.TempDir(), out, false, TrainHooks{}); err != nil {
		t.Fatal(err)
	}
	s, err := LoadScorer(out, 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	back, ok := s.(*CrossEncoder)
	if !ok || !back.MatchTypes || back.Model.Config.TypeVocabSize != NumMatchTypes {
		t.Fatalf("reloaded %T, match types %v", s, ok && back.MatchTypes)
	}
	checkReloadedMatchScores(t, back, func(qs, ds []string) []float32 { return ce.Forward(qs, ds) }, func() { back.MatchTypes = false })
}

// toyMatchMICE is MICE of shape cfg on the toy cross-encoder in dir with
// its type table grown to NumMatchTypes and match types on.
func toyMatchMICE(t testing.TB, dir string, cfg MICEConfig) *MICE {
	t.Helper()
	m := loadMICE(t, dir, cfg)
	if err := m.SetMatchTypes(true); err == nil {
		t.Fatal("MICE match types accepted on a model with two token types")
	}
	if err := m.Model.GrowTokenTypes(NumMatchTypes, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.SetMatchTypes(true); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMICEQueryMarks: with match types, a query piece present in the
// (kept) document gets type 2 and one absent stays 0, as do [CLS], [SEP]
// and padding; a piece cut off the document by DocLength matches nothing;
// and the marks are the query half of the cross-encoder's MarkMatches for
// every toy query and document (nothing truncated there).
func TestMICEQueryMarks(t *testing.T) {
	m := toyMatchMICE(t, toyCrossEncoder(t, 3), toyMICECfg)
	types := func(q, d string) string {
		qr, dr := m.QueryIDs(q), m.DocIDs(d)
		var b strings.Builder
		for _, y := range m.queryTypes(nil, [][]int32{qr}, [][]int32{dr}, m.Cfg.QueryLength) {
			b.WriteByte('0' + byte(y))
		}
		return b.String()
	}
	// [CLS] cat mouse sky [SEP] [PAD]×3 against "the cat chased a mouse"
	if got, want := types("cat mouse sky", "the cat chased a mouse"), "02200000"; got != want {
		t.Errorf("types %s, want %s", got, want)
	}
	short := toyMICECfg
	short.DocLength = 3 // "the cat [SEP]": mouse is cut off
	ms := toyMatchMICE(t, toyCrossEncoder(t, 3), short)
	qr, dr := ms.QueryIDs("cat mouse sky"), ms.DocIDs("the cat chased a mouse")
	if got := fmt.Sprint(ms.queryTypes(nil, [][]int32{qr}, [][]int32{dr}, 8)); got != "[0 2 0 0 0 0 0 0]" {
		t.Errorf("truncated document: types %s, want [0 2 0 0 0 0 0 0]", got)
	}
	for _, q := range toyQueries {
		for _, d := range toyDocs {
			e := m.Tok.EncodePair(q.text, d, 0)
			MarkMatches(e, m.Tok.IsSpecial)
			nq := len(m.QueryIDs(q.text))
			var want strings.Builder
			for _, y := range e.TypeIDs[:nq] {
				want.WriteByte('0' + byte(y))
			}
			if got := types(q.text, d)[:nq]; got != want.String() {
				t.Errorf("%q × %q: MICE query types %s, MarkMatches %s", q.text, d, got, want.String())
			}
		}
	}
	m.MatchTypes = false
	if got := m.queryTypes(nil, [][]int32{qr}, [][]int32{dr}, 8); got != nil {
		t.Errorf("types without MatchTypes: %v, want nil", got)
	}
}

// TestMICEMatchTypesStoreEqualsOnTheFly: MICE with match types re-ranks
// from a store (queries marked against the stored token ids) as it scores
// on the fly from the texts, for light, mid-fusion and fusion-0 variants;
// and the marks are read: turning them off changes the scores.
func TestMICEMatchTypesStoreEqualsOnTheFly(t *testing.T) {
	dir := toyCrossEncoderInit(t, 4, 0.3)
	_, dev := toyData()
	for _, o := range []nn.MICEOptions{toyMICECfg.MICEOptions, {Fusion: 1, Interact: []int{1}}, {Fusion: 0, Interact: []int{0, 1}, Light: true}} {
		cfg := MICEConfig{MICEOptions: o, QueryLength: 6, DocLength: 9}
		m := toyMatchMICE(t, dir, cfg)
		m.BatchSize = 3
		st, err := OpenStore(buildToyStore(t, m))
		if err != nil {
			t.Fatal(err)
		}
		got, err := RerankStore(m, st, dev.Queries, dev.Run, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Rerank(m, dev.Queries, dev.Docs, dev.Run, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.MatchTypes = false
		plain, err := Rerank(m, dev.Queries, dev.Docs, dev.Run, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		var worst, moved float64
		for qid, w := range want {
			gs, ps := map[string]float64{}, map[string]float64{}
			for _, h := range got[qid] {
				gs[h.DocID] = h.Score
			}
			for _, h := range plain[qid] {
				ps[h.DocID] = h.Score
			}
			if len(got[qid]) != len(w) {
				t.Fatalf("query %s: %d hits from the store, %d on the fly", qid, len(got[qid]), len(w))
			}
			for _, h := range w {
				worst = max(worst, math.Abs(gs[h.DocID]-h.Score))
				moved = max(moved, math.Abs(ps[h.DocID]-h.Score))
			}
		}
		t.Logf("%+v: max |stored − on the fly| = %.3g, |marked − unmarked| up to %.3g", o, worst, moved)
		if worst > 1e-5 {
			t.Errorf("%+v: stored and on-the-fly scores differ by %g", o, worst)
		}
		if moved < 1e-4 {
			t.Errorf("%+v: match types changed the scores by %g at most: they are not read", o, moved)
		}
	}
}

// TestTrainMICEMatchTypes trains MICE with match types a few steps: the
// kept model's rerank.json records them, it reloads as MICE with them (and
// four token types), and its scores are those of the trained model; a
// model and options that disagree on match types are refused.
func TestTrainMICEMatchTypes(t *testing.T) {
	m := toyMatchMICE(t, toyCrossEncoder(t, 5), toyMICECfg)
	src, _ := toyData()
	opt := toyOptions(InfoNCE)
	opt.Steps = 10
	if _, err := NewTrainer(m, []splade.Source{src}, nil, opt); err == nil || !strings.Contains(err.Error(), "match types") {
		t.Errorf("options without match types for a model with them: %v", err)
	}
	opt.MatchTypes = true
	tr, err := NewTrainer(m, []splade.Source{src}, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "best")
	if _, err := tr.Run(context.Background(), t.TempDir(), out, false, TrainHooks{}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, MetaFile))
	if err != nil || !strings.Contains(string(raw), `"match_types": true`) || !strings.Contains(string(raw), `"kind": "mice"`) {
		t.Errorf("rerank.json %s, %v", raw, err)
	}
	s, err := LoadScorer(out, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	back, ok := s.(*MICE)
	if !ok || !back.MatchTypes || back.Model.Config.TypeVocabSize != NumMatchTypes {
		t.Fatalf("reloaded %T, match types %v", s, ok && back.MatchTypes)
	}
	checkReloadedMatchScores(t, back, func(qs, ds []string) []float32 { return append([]float32(nil), m.Forward(qs, ds)...) },
		func() { back.MatchTypes = false })
	// WriteMICEConfig records them for a checkpoint made MICE by hand.
	if err := WriteMICEConfig(out, toyMICECfg, false); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadScorer(out, 32, 4); err != nil || s.(*MICE).MatchTypes {
		t.Errorf("after WriteMICEConfig without match types: %v", err)
	}
	if err := WriteMICEConfig(out, toyMICECfg, true); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadScorer(out, 32, 4); err != nil || !s.(*MICE).MatchTypes {
		t.Errorf("after WriteMICEConfig with match types: %v", err)
	}
}

// checkReloadedMatchScores: a model trained with match types and reloaded
// (back) scores two toy pairs as the trained model does (trained, within
// 1e-5), and scores differently once off turns its match types off.
func checkReloadedMatchScores(t *testing.T, back Scorer, trained func(qs, ds []string) []float32, off func()) {
	t.Helper()
	qs, ds := []string{"cat mouse", "ship ocean crew"}, []string{toyDocs["cat2"], toyDocs["cat2"]}
	want := trained(qs, ds)
	got, err := back.ScorePairs(qs, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
			t.Errorf("pair %d: reloaded score %g, trained model %g", i, got[i], want[i])
		}
	}
	off()
	plain, _ := back.ScorePairs(qs, ds, nil)
	if plain[0] == got[0] {
		t.Error("turning match types off changed no score: they are not read")
	}
}
