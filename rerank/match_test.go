package rerank

import (
	"context"
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
	qs, ds := []string{"cat mouse", "ship ocean crew"}, []string{toyDocs["cat2"], toyDocs["cat2"]}
	want := ce.Forward(qs, ds)
	got, err := back.ScorePairs(qs, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
			t.Errorf("pair %d: reloaded score %g, trained model %g", i, got[i], want[i])
		}
	}
	back.MatchTypes = false
	plain, _ := back.ScorePairs(qs, ds, nil)
	if plain[0] == got[0] {
		t.Error("turning match types off changed no score: they are not read")
	}
}
