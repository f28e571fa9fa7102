package neurons

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/splade"
)

// TestSelectDisjoint checks the three selections: sizes, top and least at
// the ends of the ranking, random inside the middle without repeats,
// pairwise disjoint, reproducible per seed and different across seeds, and
// the 3n ≤ N bound.
func TestSelectDisjoint(t *testing.T) {
	const N = 64
	ranking := make([]NeuronRelevance, N)
	for i := range ranking {
		ranking[i] = NeuronRelevance{Layer: i % 2, Neuron: i / 2, Delta: 1 - 2*float64(i)/N}
	}
	key := func(r NeuronRelevance) [2]int { return [2]int{r.Layer, r.Neuron} }
	for _, n := range []int{0, 1, 5, 21} {
		top, least, random, err := Select(ranking, n, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(top) != n || len(least) != n || len(random) != 3 {
			t.Fatalf("n=%d: %d top, %d least, %d random draws", n, len(top), len(least), len(random))
		}
		if !slices.Equal(top, ranking[:n]) || !slices.Equal(least, ranking[N-n:]) {
			t.Errorf("n=%d: top or least is not the end of the ranking", n)
		}
		ends := map[[2]int]bool{}
		for _, r := range append(slices.Clone(top), least...) {
			if ends[key(r)] {
				t.Errorf("n=%d: %v in top and least", n, key(r))
			}
			ends[key(r)] = true
		}
		for s, rs := range random {
			if len(rs) != n {
				t.Fatalf("n=%d seed %d: %d random neurons", n, s, len(rs))
			}
			seen := map[[2]int]bool{}
			for _, r := range rs {
				if ends[key(r)] {
					t.Errorf("n=%d seed %d: random neuron %v is top or least", n, s, key(r))
				}
				if seen[key(r)] {
					t.Errorf("n=%d seed %d: neuron %v drawn twice", n, s, key(r))
				}
				seen[key(r)] = true
			}
		}
		_, _, again, _ := Select(ranking, n, 3)
		for s := range random {
			if !slices.Equal(random[s], again[s]) {
				t.Errorf("n=%d seed %d: not reproducible", n, s)
			}
		}
		if n >= 5 && slices.Equal(random[0], random[1]) {
			t.Errorf("n=%d: seeds 0 and 1 drew the same neurons", n)
		}
	}
	if _, _, _, err := Select(ranking, 22, 1); err == nil {
		t.Error("3n > N accepted")
	}
	if _, _, _, err := Select(ranking, -1, 1); err == nil {
		t.Error("n < 0 accepted")
	}
}

// pruneFixture is the bert-tiny test checkpoint as an encoder, a toy
// collection of word documents with one relevant document per query, and
// synthetic attributions over both layers with a non-zero baseline.
func pruneFixture(t *testing.T) (*splade.Encoder, *splade.DevSet, *Attributions) {
	t.Helper()
	enc, err := splade.LoadEncoder(filepath.Join("..", "testdata", "oracle", "bert-tiny", "model"), 32, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields("the of and to in is it that was for on are")
	rng := rand.New(rand.NewPCG(5, 6))
	dev := &splade.DevSet{Name: "toy/test", Qrels: corpora.Qrels{}}
	for i := range 12 {
		var w []string
		for range 6 + rng.IntN(8) {
			w = append(w, words[rng.IntN(len(words))], string(rune('a'+rng.IntN(26))))
		}
		id := "d" + string(rune('a'+i))
		dev.DocIDs, dev.Docs = append(dev.DocIDs, id), append(dev.Docs, strings.Join(w, " "))
		if i%2 == 0 {
			qid := "q" + id
			dev.Queries = append(dev.Queries, corpora.Query{ID: qid, Text: strings.Join(w[:4], " ")})
			dev.Qrels[qid] = map[string]int{id: 1}
		}
	}
	L, F := enc.Model.Config.NumLayers, enc.Model.Config.IntermediateSize
	a := &Attributions{Layers: allLayers(enc.Model), Neurons: F, Sides: []string{SideDoc}, Baseline: "test",
		Attr: map[string][]float32{}, BaseVals: map[string][][]float32{}}
	const P = 8
	for p := range P {
		a.Pairs = append(a.Pairs, PairResult{Label: p % 2})
	}
	attr := make([]float32, P*L*F)
	for i := range attr {
		attr[i] = float32(rng.NormFloat64())
	}
	a.Attr[SideDoc] = attr
	for range L {
		b := make([]float32, F)
		for j := range b {
			b[j] = float32(rng.NormFloat64())
		}
		a.BaseVals[SideDoc] = append(a.BaseVals[SideDoc], b)
	}
	return enc, dev, a
}

// TestPruneZeroIsUnablated checks that ablating no neuron reproduces the
// unablated nDCG@10 exactly (and that equals splade.EvaluateDev with no
// hook), that the study's points are in [0, 1] and that Prune removes its
// hook.
func TestPruneZeroIsUnablated(t *testing.T) {
	enc, dev, a := pruneFixture(t)
	ms, _ := eval.ParseMeasures("ndcg_cut.10")
	ref, err := splade.EvaluateDev(enc, dev, ms, 100)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := enc.EncodeDocs(dev.Docs)
	st, err := Prune(enc, a, dev, PruneOptions{Ns: []int{0, 40}, Seeds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Unablated != ref.All[0] {
		t.Errorf("unablated %v, EvaluateDev %v", st.Unablated, ref.All[0])
	}
	p0 := st.Points[0]
	if p0.N != 0 || p0.Top != ref.All[0] || p0.Least != ref.All[0] || p0.Random != ref.All[0] {
		t.Errorf("n=0: %+v, want every value %v", p0, ref.All[0])
	}
	p := st.Points[1]
	for _, v := range append([]float64{p.Top, p.Least}, p.RandomPerSeed...) {
		if v < 0 || v > 1 || math.IsNaN(v) {
			t.Errorf("n=40: nDCG %v", v)
		}
	}
	if len(p.RandomPerSeed) != 2 || math.Abs(p.Random-(p.RandomPerSeed[0]+p.RandomPerSeed[1])/2) > 1e-12 {
		t.Errorf("random mean %v of %v", p.Random, p.RandomPerSeed)
	}
	after, _ := enc.EncodeDocs(dev.Docs)
	if !equalVectors(before, after) {
		t.Error("Prune left its hook installed: vectors changed")
	}
	var svg, page strings.Builder
	st.WriteSVG(&svg)
	st.WriteHTML(&page)
	if strings.Count(svg.String(), `class="line"`) != 3 || !strings.Contains(page.String(), "<svg") {
		t.Error("report lacks the three curves")
	}
	dir := filepath.Join(t.TempDir(), "rep")
	if err := st.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPruneStudy(filepath.Join(dir, "prune.json"))
	if err != nil || back.Unablated != st.Unablated || len(back.Points) != 2 || back.Points[1].Top != p.Top {
		t.Errorf("prune.json round trip: %+v, %v", back, err)
	}
}

// TestAblationChangesVectors checks the hook on the encoder: an empty
// ablation leaves every document vector bit-identical; ablating some
// neurons changes them; ablating every neuron of every layer to the zero
// baseline gives q·d = the Attributor's f(0) (its path at α = 0), an
// independent computation; the queries of an inference-free encoder are
// unchanged by any ablation.
func TestAblationChangesVectors(t *testing.T) {
	enc, dev, a := pruneFixture(t)
	ref, _ := enc.EncodeDocs(dev.Docs)
	rank, err := a.Relevance(SideDoc)
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := NewAblation(a, SideDoc, nil)
	enc.Model.SetFFNHook(empty)
	got, _ := enc.EncodeDocs(dev.Docs)
	if !equalVectors(ref, got) {
		t.Error("empty ablation changed the vectors")
	}
	some, _ := NewAblation(a, SideDoc, rank[:20])
	enc.Model.SetFFNHook(some)
	got, _ = enc.EncodeDocs(dev.Docs)
	changed := 0
	for i := range ref {
		if !equalVectors(ref[i:i+1], got[i:i+1]) {
			changed++
		}
	}
	if changed != len(ref) {
		t.Errorf("ablating 20 neurons changed %d of %d document vectors", changed, len(ref))
	}
	// Inference-free queries: idf weights, no forward pass.
	enc.QueryWeights = make([]float32, enc.VocabSize())
	for i := range enc.QueryWeights {
		enc.QueryWeights[i] = 1 + float32(i%7)
	}
	texts := []string{dev.Queries[0].Text, dev.Queries[1].Text}
	qa, _ := enc.EncodeQueries(texts)
	enc.Model.SetFFNHook(nil)
	qb, _ := enc.EncodeQueries(texts)
	if !equalVectors(qa, qb) {
		t.Error("ablation changed inference-free query vectors")
	}
	enc.QueryWeights = nil

	// Every neuron at zero against the Attributor's baseline score.
	zero := *a
	zero.BaseVals = map[string][][]float32{}
	for range a.Layers {
		zero.BaseVals[SideDoc] = append(zero.BaseVals[SideDoc], make([]float32, a.Neurons))
	}
	all, _ := NewAblation(&zero, SideDoc, rank)
	enc.Model.SetFFNHook(all)
	docs, _ := enc.EncodeDocs(dev.Docs[:3])
	enc.Model.SetFFNHook(nil)
	rng := rand.New(rand.NewPCG(9, 9))
	other := make([]float32, enc.VocabSize())
	for range 40 {
		other[5+rng.IntN(len(other)-5)] = float32(0.5 + rng.Float64())
	}
	for i, text := range dev.Docs[:3] {
		ids := enc.Tok.EncodeBatch([]string{text}, enc.MaxLen)[0].IDs
		r, err := (&Attributor{Model: enc.Model, Layers: a.Layers, Steps: 2}).Attribute(ids, other)
		if err != nil {
			t.Fatal(err)
		}
		var dot float64
		for _, tw := range docs[i] {
			dot += float64(other[tw.Term]) * float64(tw.Weight)
		}
		if math.Abs(dot-r.BaselineScore) > 1e-4*(1+math.Abs(dot)) {
			t.Errorf("doc %d: q·d with every neuron ablated %g, Attributor f(0) %g", i, dot, r.BaselineScore)
		}
	}
}

func equalVectors(a, b [][]index.TermWeight) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
