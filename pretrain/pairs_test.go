package pretrain

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/curves"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
)

const (
	testCLS, testSEP, testPAD = 2, 3, 0
)

// pairStream is a token stream of n documents of 0…59 tokens (ids 10 +
// document·100 + position, so every token names its document and place),
// with about one token in three a "##" piece.
func pairStream(n int, seed uint64) *TokenStream {
	rng := rand.New(rand.NewPCG(seed, 5))
	s := &TokenStream{DocStart: []int64{0}, VocabSize: 10 + 100*n}
	for d := range n {
		m := rng.IntN(60)
		if d < 2 {
			m = 30 // at least two non-empty documents
		}
		for k := range m {
			s.IDs = append(s.IDs, int32(10+100*d+k))
			s.WordStart = append(s.WordStart, k == 0 || rng.IntN(3) != 0)
		}
		s.DocStart = append(s.DocStart, int64(len(s.IDs)))
	}
	return s
}

func docOf(s *TokenStream, pos int64) int {
	d, _ := slices.BinarySearch(s.DocStart, pos+1)
	return d - 1
}

// Every example is [CLS] A [SEP] B [SEP] padding with the right types and
// mask; a positive's B is the text right after A in A's document, a
// negative's B is a span of another document; labels are balanced; the
// draw is a function of (seed, epoch, example) and changes with either.
func TestPairsExamples(t *testing.T) {
	s := pairStream(300, 1)
	const T = 24
	p, err := NewPairs(s, T, testCLS, testSEP, testPAD, 7)
	if err != nil {
		t.Fatal(err)
	}
	var pos, neg, bAtWordStart, splits int
	for epoch := -1; epoch < 4; epoch++ {
		for i := range p.Len() {
			ex := p.Pair(i, epoch)
			n := ex.ALen + ex.BLen + 3
			if ex.ALen < 1 || ex.BLen < 1 || n > T {
				t.Fatalf("example %d: A %d, B %d tokens for T=%d", i, ex.ALen, ex.BLen, T)
			}
			if ex.IDs[0] != testCLS || ex.IDs[1+ex.ALen] != testSEP || ex.IDs[n-1] != testSEP {
				t.Fatalf("example %d: specials misplaced: %v", i, ex.IDs)
			}
			for k := range T {
				wantType, wantMask := int32(0), float32(1)
				if k >= 2+ex.ALen && k < n {
					wantType = 1
				}
				if k >= n {
					wantMask = 0
					if ex.IDs[k] != testPAD {
						t.Fatalf("example %d: position %d is %d, want padding", i, k, ex.IDs[k])
					}
				}
				if ex.Types[k] != wantType || ex.Mask[k] != wantMask {
					t.Fatalf("example %d position %d: type %d mask %g, want %d %g", i, k, ex.Types[k], ex.Mask[k], wantType, wantMask)
				}
			}
			a0 := int64(ex.IDs[1]-10) % 100 // A's first token's place in its document
			aLo := s.DocStart[ex.DocA] + a0
			if !slices.Equal(ex.IDs[1:1+ex.ALen], s.IDs[aLo:aLo+int64(ex.ALen)]) || docOf(s, aLo) != ex.DocA {
				t.Fatalf("example %d: A is not a span of document %d", i, ex.DocA)
			}
			b := ex.IDs[2+ex.ALen : n-1]
			if !slices.Equal(b, s.IDs[ex.BLo:ex.BLo+int64(ex.BLen)]) || docOf(s, ex.BLo) != ex.DocB ||
				docOf(s, ex.BLo+int64(ex.BLen)-1) != ex.DocB {
				t.Fatalf("example %d: B is not stream tokens [%d, +%d) of document %d", i, ex.BLo, ex.BLen, ex.DocB)
			}
			switch ex.Next {
			case 0:
				pos++
				if ex.DocB != ex.DocA || ex.BLo != aLo+int64(ex.ALen) {
					t.Fatalf("example %d: positive B at %d (document %d), want right after A at %d (document %d)",
						i, ex.BLo, ex.DocB, aLo+int64(ex.ALen), ex.DocA)
				}
				splits++
				if s.WordStart[ex.BLo] {
					bAtWordStart++
				}
			case 1:
				neg++
				if ex.DocB == ex.DocA {
					t.Fatalf("example %d: negative B from A's own document %d", i, ex.DocA)
				}
			default:
				t.Fatalf("example %d: label %d", i, ex.Next)
			}
			if again := p.Pair(i, epoch); !slices.Equal(again.IDs, ex.IDs) || again.Next != ex.Next {
				t.Fatalf("example %d epoch %d drawn twice differently", i, epoch)
			}
		}
	}
	if share := float64(neg) / float64(pos+neg); math.Abs(share-0.5) > 0.03 {
		t.Errorf("%d positives, %d negatives: share of negatives %.3f, want 0.5 ± 0.03", pos, neg, share)
	}
	// A split inside a word is taken only when the piece has no other
	// word start; here about two tokens in three start a word.
	if float64(bAtWordStart) < 0.97*float64(splits) {
		t.Errorf("only %d of %d positive B's start at a word", bAtWordStart, splits)
	}

	other, _ := NewPairs(s, T, testCLS, testSEP, testPAD, 8)
	var sameSeed, sameEpoch int
	for i := range p.Len() {
		a, b, c := p.Pair(i, 0), other.Pair(i, 0), p.Pair(i, 1)
		if slices.Equal(a.IDs, b.IDs) {
			sameSeed++
		}
		if slices.Equal(a.IDs, c.IDs) {
			sameEpoch++
		}
	}
	if sameSeed > p.Len()/3 || sameEpoch > p.Len()/3 {
		t.Errorf("of %d examples, %d equal under another seed and %d in another epoch", p.Len(), sameSeed, sameEpoch)
	}
}

// Every document of at least two tokens is cut into pieces of at most
// T-3 tokens that cover it exactly.
func TestPairsCoverDocuments(t *testing.T) {
	s := pairStream(50, 2)
	const T = 12
	p, err := NewPairs(s, T, testCLS, testSEP, testPAD, 1)
	if err != nil {
		t.Fatal(err)
	}
	covered := make([]bool, len(s.IDs))
	for _, sg := range p.segs {
		if n := sg.hi - sg.lo; n < 2 || n > T-3 {
			t.Fatalf("piece of %d tokens", n)
		}
		for k := sg.lo; k < sg.hi; k++ {
			covered[k] = true
		}
	}
	for d := range s.Docs() {
		lo, hi := s.DocStart[d], s.DocStart[d+1]
		for k := lo; k < hi; k++ {
			if covered[k] != (hi-lo >= 2) {
				t.Fatalf("document %d (%d tokens): token %d covered %v", d, hi-lo, k, covered[k])
			}
		}
	}
	train, held := p.Split(10)
	if len(train)+len(held) != p.Len() || len(held) != p.Len()/10 || held[0] != 9 {
		t.Errorf("split: %d train, %d held out (first %d) of %d", len(train), len(held), held[0], p.Len())
	}
}

func TestPairsErrors(t *testing.T) {
	one := &TokenStream{IDs: []int32{10, 11, 12}, WordStart: []bool{true, true, true}, DocStart: []int64{0, 3}}
	if _, err := NewPairs(one, 16, testCLS, testSEP, testPAD, 1); err == nil || !strings.Contains(err.Error(), "two non-empty documents") {
		t.Errorf("one document: %v", err)
	}
	if _, err := NewPairs(pairStream(5, 1), 4, testCLS, testSEP, testPAD, 1); err == nil {
		t.Error("T=4: no error")
	}
}

// A short run with the pair task: the pair head trains and is saved (with
// the pooler, as BertForPreTraining), the curves and training.json carry
// the held-out pair accuracy, a cross-encoder started from the result keeps
// the pooler, and the pair head is P_task (frozen with train_params domain).
func TestTrainPairTask(t *testing.T) {
	corpus := toyCorpus(t, 120, 3)
	dir := t.TempDir()
	cfg := tinyConfig()
	cfg.PairTask, cfg.PairWeight = "nsp", 1
	o := Options{Corpora: []string{corpus}, FromScratch: true, Settings: cfg, Progress: "off",
		CacheDir: filepath.Join(dir, "cache"), Out: filepath.Join(dir, "nsp")}
	res, err := Train(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.PairTask != "nsp" || res.PairAccuracy == nil || !(*res.PairAccuracy >= 0 && *res.PairAccuracy <= 1) {
		t.Fatalf("result: pair task %q, accuracy %v", res.PairTask, res.PairAccuracy)
	}
	var tj map[string]any
	b, _ := os.ReadFile(filepath.Join(o.Out, "training.json"))
	if err := json.Unmarshal(b, &tj); err != nil {
		t.Fatal(err)
	}
	if tj["pair_accuracy"] != *res.PairAccuracy {
		t.Errorf("training.json pair_accuracy %v, want %v", tj["pair_accuracy"], *res.PairAccuracy)
	}
	l, err := curves.ReadCSV(filepath.Join(o.Out, "curves.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var evals int
	for _, pt := range l.Points {
		if _, ok := pt.Values["pair_loss"]; !ok {
			t.Fatalf("step %d: no pair_loss in the curves", pt.Step)
		}
		if acc, ok := pt.Values["pair_acc"]; ok && !math.IsNaN(acc) {
			evals++
		}
	}
	if evals == 0 {
		t.Error("no pair_acc in the curves")
	}
	m, err := nn.LoadPreTraining(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasPairHead() || m.Config.Architecture != nn.PreTrainingArchitecture {
		t.Fatalf("saved model: pair head %v, architecture %q", m.HasPairHead(), m.Config.Architecture)
	}
	fresh, _ := nn.NewModel(m.Config, cfg.Seed)
	fresh.AddPairHead(cfg.Seed)
	for _, name := range nn.PairHeadNames {
		if slices.Equal(m.Param(name).W, fresh.Param(name).W) {
			t.Errorf("%s did not train", name)
		}
	}
	c, err := nn.LoadClassifier(o.Out, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.NewHead, []string{"classifier.weight", "classifier.bias"}) ||
		!slices.Equal(c.Param("bert.pooler.dense.weight").W, m.Param("bert.pooler.dense.weight").W) {
		t.Errorf("cross-encoder from the pair checkpoint: new head %v, pooler kept %v", c.NewHead,
			slices.Equal(c.Param("bert.pooler.dense.weight").W, m.Param("bert.pooler.dense.weight").W))
	}

	// MLM alone from that checkpoint keeps the pair head as it was.
	cont := o
	cont.FromScratch, cont.Init, cont.Out = false, o.Out, filepath.Join(dir, "mlm")
	cont.Settings = tinyConfig()
	cont.Settings.Steps = 4
	if _, err := Train(context.Background(), cont); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(cont.Out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range nn.PairHeadNames {
		got, _, err := f.Float32(name)
		if err != nil || !slices.Equal(got, m.Param(name).W) {
			t.Errorf("%s changed by MLM alone (%v)", name, err)
		}
	}

	// The pooler and the pair head are P_task.
	for _, name := range nn.PairHeadNames {
		if nn.IsDomainParam(name, 2) {
			t.Errorf("%s counted in P_domain", name)
		}
	}
	dom := o
	dom.FromScratch, dom.Init, dom.Out = false, o.Out, filepath.Join(dir, "dom")
	dom.Settings.TrainParams, dom.Settings.Steps = "domain", 4
	if _, err := Train(context.Background(), dom); err != nil {
		t.Fatal(err)
	}
	d, err := nn.LoadPreTraining(dom.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range nn.PairHeadNames {
		if !slices.Equal(d.Param(name).W, m.Param(name).W) {
			t.Errorf("%s trained with train_params domain", name)
		}
	}
}

// The pair task refuses DistilBERT, naming the setting.
func TestTrainPairTaskDistilBERT(t *testing.T) {
	cfg := tinyConfig()
	cfg.Arch, cfg.PairTask, cfg.PairWeight = "distilbert", "nsp", 1
	o := Options{Corpora: []string{toyCorpus(t, 20, 4)}, FromScratch: true, Settings: cfg, Progress: "off",
		Out: filepath.Join(t.TempDir(), "out")}
	if _, err := Train(context.Background(), o); err == nil || !strings.Contains(err.Error(), "pair task") {
		t.Errorf("distilbert with nsp: %v", err)
	}
}

// The pair task learns where the pair carries a cue: documents use words
// of one of two sets, so B from the same document shares A's set while a
// random B does so half the time; the best rule (same set → "is next")
// is right on 3/4 of the pairs, a constant answer on about half. The
// [CLS] state must compare the two segments (an XOR of their sets), which
// a small model reaches after a plateau of about 250 steps at batch 32
// (0.78 at step 600).
func TestTrainPairTaskLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("600 training steps")
	}
	rng := rand.New(rand.NewPCG(9, 1))
	sets := [2][]string{strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"),
		strings.Fields("nu xi omicron pi rho sigma tau upsilon phi chi psi omega")}
	var b strings.Builder
	for i := range 300 {
		var doc []string
		for range 40 {
			doc = append(doc, sets[i%2][rng.IntN(12)])
		}
		fmt.Fprintf(&b, `{"_id": "d%d", "title": "", "text": %q}`+"\n", i, strings.Join(doc, " "))
	}
	corpus := filepath.Join(t.TempDir(), "sets.jsonl")
	if err := os.WriteFile(corpus, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.PairTask, cfg.PairWeight, cfg.LR = "nsp", 1, 1e-3
	cfg.Steps, cfg.EvalEvery, cfg.CheckpointEvery, cfg.WarmupSteps, cfg.BatchSize = 600, 600, 600, 20, 32
	res, err := Train(context.Background(), Options{Corpora: []string{corpus}, FromScratch: true, Settings: cfg,
		Progress: "off", Out: filepath.Join(t.TempDir(), "out")})
	if err != nil {
		t.Fatal(err)
	}
	if acc := *res.PairAccuracy; acc < 0.65 {
		t.Errorf("held-out pair accuracy %.3f after %d steps, want >= 0.65 (3/4 is the best rule, 1/2 chance)", acc, res.Steps)
	}
}
