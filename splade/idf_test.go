package splade

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
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
	if want := WeightedTokens(tok.Encode(q, 0).IDs, qw); !slices.Equal(got, want) {
		t.Errorf("query %q encoded %v, want %v", q, got, want)
	}
	// No model runs on the query, so nothing cuts it at QueryMaxLen (8):
	// a long query keeps the words past the eighth piece.
	long := dev.Docs[0]
	cut, whole := WeightedTokens(tok.Encode(long, 8).IDs, qw), WeightedTokens(tok.Encode(long, 0).IDs, qw)
	if slices.Equal(cut, whole) {
		t.Fatalf("test text %q is not longer than 8 pieces in distinct weighted tokens", long)
	}
	if got, _ := enc.EncodeQuery(long); !slices.Equal(got, whole) {
		t.Errorf("long query encoded %v, want all its pieces %v", got, whole)
	}
	if got, _ := enc.EncodeQueries([]string{long}); !slices.Equal(got[0], whole) {
		t.Errorf("long query (batch) encoded %v, want all its pieces %v", got[0], whole)
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

// TestCorpusQueryIDF encodes the toy corpus with an inference-free
// encoder in shards of 3 (so the document frequencies are gathered across
// shards) and checks that EncodeShards returns ComputeIDF over the
// corpus's documents, that QueriesFor weighs queries by an index's
// IDFFile in corpus mode and by the checkpoint's weights in training mode,
// that a two-sided encoder is left alone (and gets no IDF), and that an
// index without the file is a clear error.
func TestCorpusQueryIDF(t *testing.T) {
	dir := tinyModelDir(t, 21)
	enc, err := LoadEncoder(dir, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if enc.QueryWeights != nil {
		t.Fatal("tiny model unexpectedly inference-free")
	}
	corpus := filepath.Join(t.TempDir(), "corpus.jsonl")
	var lines []string
	for _, id := range slices.Sorted(maps.Keys(toyDocs)) {
		b, _ := json.Marshal(map[string]string{"_id": id, "title": "", "text": toyDocs[id]})
		lines = append(lines, string(b))
	}
	if err := os.WriteFile(corpus, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := corporaContents(corpus)
	if err != nil {
		t.Fatal(err)
	}
	want := ComputeIDF(enc.Tok, docs, enc.MaxLen)
	train := make([]float32, enc.Tok.VocabSize())
	for i := range train {
		train[i] = 0.25 // distinct from any corpus IDF
	}
	enc.QueryWeights = train
	sh, err := EncodeShards(context.Background(), enc, corpus, t.TempDir(), ShardOptions{ShardSize: 3, Fingerprint: Fingerprint(enc, dir)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.IDF) != len(want) {
		t.Fatalf("shards' IDF has %d weights, want %d", len(sh.IDF), len(want))
	}
	for id := range want {
		if math.Abs(float64(sh.IDF[id]-want[id])) > 1e-6 {
			t.Fatalf("corpus idf of %q = %g, want %g (ComputeIDF over the corpus)", enc.Tok.Token(int32(id)), sh.IDF[id], want[id])
		}
	}
	idx := t.TempDir() // an index directory as adapt.EncodeCorpus leaves it
	if err := WriteIDF(idx, enc.Tok, sh.IDF); err != nil {
		t.Fatal(err)
	}
	const text = "cat ship star"
	ids := enc.Tok.Encode(text, 0).IDs
	for mode, w := range map[string][]float32{QueryIDFCorpus: want, QueryIDFTraining: train} {
		q, err := QueriesFor(enc, idx, mode)
		if err != nil {
			t.Fatal(err)
		}
		v, err := q.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		if exp := WeightedTokens(ids, w); !slices.EqualFunc(v, exp, func(a, b sparse.TermWeight) bool {
			return a.Term == b.Term && math.Abs(float64(a.Weight-b.Weight)) < 1e-5
		}) {
			t.Errorf("%s: query %v, want %v", mode, v, exp)
		}
	}
	if _, err := QueriesFor(enc, idx, "bm25"); err == nil {
		t.Error("QueriesFor accepted an unknown mode")
	}
	if _, err := QueriesFor(enc, t.TempDir(), QueryIDFCorpus); err == nil || !strings.Contains(err.Error(), "query_idf: training") {
		t.Errorf("index without %s: err %v, want one naming splade.query_idf: training", IDFFile, err)
	}
	enc.QueryWeights = nil
	if q, err := QueriesFor(enc, t.TempDir(), QueryIDFCorpus); err != nil || q != Queries(enc) {
		t.Errorf("two-sided encoder: %v, %v; want the encoder itself", q, err)
	}
	sh2, err := EncodeShards(context.Background(), enc, corpus, t.TempDir(), ShardOptions{ShardSize: 3, Fingerprint: Fingerprint(enc, dir)})
	if err != nil {
		t.Fatal(err)
	}
	if sh2.IDF != nil {
		t.Error("two-sided encoder's shards carry an IDF")
	}
}

// corporaContents reads every document's Content (title and text) of a
// corpus, as EncodeCorpus sees them.
func corporaContents(path string) ([]string, error) {
	ds, err := corpora.ReadDocs([]string{path}, corpora.Options{})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Content()
	}
	return out, nil
}
