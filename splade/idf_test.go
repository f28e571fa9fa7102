package splade

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/tokenize"
)

func TestComputeIDF(t *testing.T) {
	tok, err := tokenize.FromVocab(toyVocab(), true)
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"cat cat ship", "ship", "star"}
	w := ComputeIDF(tok, docs, 16)
	idf := func(df float64) float32 { return float32(math.Log(1 + (3-df+0.5)/(df+0.5))) }
	for _, c := range []struct {
		token string
		df    float64
	}{{"cat", 1}, {"ship", 2}, {"star", 1}, {"rain", 0}} {
		id, ok := tok.ID(c.token)
		if !ok {
			t.Fatalf("toy vocabulary lacks %q", c.token)
		}
		if got, want := w[id], idf(c.df); math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("idf(%s) = %g, want %g (df %g of 3)", c.token, got, want, c.df)
		}
	}
	if w[tok.CLS()] != 0 || w[tok.SEP()] != 0 {
		t.Errorf("special tokens weighted: [CLS] %g [SEP] %g", w[tok.CLS()], w[tok.SEP()])
	}
}

func TestWeightedTokens(t *testing.T) {
	w := []float32{0, 0.5, 2, 0, 3}
	got := WeightedTokens([]int32{4, 1, 3, 4, 0, 2, 1}, w)
	want := []sparse.TermWeight{{Term: 1, Weight: 0.5}, {Term: 2, Weight: 2}, {Term: 4, Weight: 3}}
	if !slices.Equal(got, want) {
		t.Errorf("WeightedTokens = %v, want %v (each token once, zero weights dropped, by term)", got, want)
	}
}

func TestIDFFileRoundTrip(t *testing.T) {
	tok, err := tokenize.FromVocab(toyVocab(), true)
	if err != nil {
		t.Fatal(err)
	}
	w := ComputeIDF(tok, []string{"cat ship", "ship rain"}, 16)
	dir := t.TempDir()
	if got, err := ReadIDF(dir, tok); got != nil || err != nil {
		t.Fatalf("ReadIDF without the file = %v, %v; want nil, nil", got, err)
	}
	if err := WriteIDF(dir, tok, w); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIDF(dir, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, w) {
		t.Errorf("round trip changed the weights:\n got %v\nwant %v", got, w)
	}
	for name, body := range map[string]string{
		"unknown token": `{"zzzunknown": 1}`,
		"negative":      `{"cat": -1}`,
		"not json":      `{"cat": 1`,
	} {
		if err := os.WriteFile(filepath.Join(dir, IDFFile), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadIDF(dir, tok); err == nil {
			t.Errorf("%s: ReadIDF accepted %s", name, body)
		}
	}
	// A token the file lacks gets weight 1.
	if err := os.WriteFile(filepath.Join(dir, IDFFile), []byte(`{"cat": 4}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadIDF(dir, tok)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := tok.ID("cat")
	ship, _ := tok.ID("ship")
	if got[cat] != 4 || got[ship] != 1 || got[tok.CLS()] != 0 {
		t.Errorf("partial file: cat %g ship %g [CLS] %g, want 4, 1, 0", got[cat], got[ship], got[tok.CLS()])
	}
}

// TestTrainInferenceFree trains the toy model with IDF queries: queries
// never run through the model (their rows are the weights), training still
// learns, the saved model carries idf.json, and loading it gives an
// encoder whose queries are exactly WeightedTokens of their ids.
func TestTrainInferenceFree(t *testing.T) {
	dir := tinyModelDir(t, 11)
	m, tok := loadTiny(t, dir)
	src, dev := toySource()
	qw := ComputeIDF(tok, dev.Docs, 16)
	opt := toyOptions()
	opt.QueryEncoder = QueryEncoderIDF
	opt.EvalEvery = 10
	if _, err := NewTrainer(m, tok, []Source{src}, []*DevSet{dev}, opt, nil); err == nil {
		t.Fatal("NewTrainer accepted an idf run without query weights")
	}
	tr, err := NewTrainer(m, tok, []Source{src}, []*DevSet{dev}, opt, qw)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Opt.Weights.FLOPSQ != 0 {
		t.Errorf("query FLOPS weight %g kept for fixed query vectors", tr.Opt.Weights.FLOPSQ)
	}
	first, err := tr.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "best")
	if _, err := tr.Run(context.Background(), RunConfig{WorkDir: t.TempDir(), Out: out, Init: dir}, TrainHooks{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("dev nDCG@10 %.3f → best %.3f at step %d", first["nDCG@10"], tr.Best, tr.BestAt)
	if !(tr.Best > first["nDCG@10"]) {
		t.Errorf("dev nDCG@10 did not improve: %.3f → %.3f", first["nDCG@10"], tr.Best)
	}
	enc, err := LoadEncoder(out, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if enc.QueryEncoder() != QueryEncoderIDF || !slices.Equal(enc.QueryWeights, qw) {
		t.Fatalf("reloaded encoder is %s with weights equal %v", enc.QueryEncoder(), slices.Equal(enc.QueryWeights, qw))
	}
	q := dev.Queries[0].Text
	got, _ := enc.EncodeQuery(q)
	if want := WeightedTokens(tok.Encode(q, 8).IDs, qw); !slices.Equal(got, want) {
		t.Errorf("query %q encoded %v, want %v", q, got, want)
	}
	// A model saved again (a P_domain swap, say) keeps the query weights.
	m2, err := nn.LoadHF(out)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again")
	if err := m2.SaveHF(again, nil); err != nil {
		t.Fatal(err)
	}
	if w, err := ReadIDF(again, tok); err != nil || !slices.Equal(w, qw) {
		t.Errorf("re-saved checkpoint lost its query weights (%v)", err)
	}
}

func TestVectorStats(t *testing.T) {
	var a vectorStatsAcc
	// doc 1 text {1,2}: weights 1 on 1 (own), 3 on 7 (expansion);
	// doc 2 text {2}: weight 2 on 2 (own), 3 on 7.
	a.addDoc([]sparse.TermWeight{{Term: 1, Weight: 1}, {Term: 7, Weight: 3}}, []int32{1, 2})
	a.addDoc([]sparse.TermWeight{{Term: 2, Weight: 2}, {Term: 7, Weight: 3}}, []int32{2})
	a.addQuery([]sparse.TermWeight{{Term: 1, Weight: 1}})
	s := a.stats()
	cos := 9 / math.Sqrt(10*13)
	want := VectorStats{NNZDoc: 2, NNZQuery: 1, OwnShare: 3.0 / 9, Top20Share: 1, MeanCosine: cos}
	if math.Abs(s.OwnShare-want.OwnShare) > 1e-12 || math.Abs(s.MeanCosine-want.MeanCosine) > 1e-12 ||
		s.NNZDoc != want.NNZDoc || s.NNZQuery != want.NNZQuery || s.Top20Share != want.Top20Share {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}
