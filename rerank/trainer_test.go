package rerank

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

var toyDocs = map[string]string{
	"cat1":   "the cat sat on the warm mat and purred",
	"cat2":   "a small cat chased a mouse around the house",
	"ship1":  "the ship sailed across the cold ocean with its crew",
	"ship2":  "a large ship carried cargo over the sea",
	"bread1": "fresh bread is baked in a hot oven every morning",
	"bread2": "the baker sold warm bread and butter rolls",
	"star1":  "a bright star shines in the night sky above the hills",
	"star2":  "astronomers watched the distant star through a telescope",
	"rain1":  "heavy rain fell on the city and flooded the streets",
	"rain2":  "the storm brought rain and wind to the valley",
}

var toyQueries = map[string]struct{ text, pos string }{
	"q1": {"cat mouse", "cat2"}, "q2": {"cat purred mat", "cat1"}, "q3": {"ship ocean crew", "ship1"},
	"q4": {"ship cargo sea", "ship2"}, "q5": {"bread oven", "bread1"}, "q6": {"baker butter", "bread2"},
	"q7": {"star night sky", "star1"}, "q8": {"star telescope", "star2"}, "q9": {"rain flooded streets", "rain1"},
	"q10": {"storm rain wind", "rain2"},
}

func toyTokenizer(t testing.TB) *tokenize.Tokenizer {
	t.Helper()
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	seen := map[string]bool{}
	for _, s := range append(slices.Collect(maps.Values(toyDocs)), "cat mouse purred mat ship ocean crew cargo sea bread oven baker butter star night sky telescope rain flooded streets storm wind") {
		for _, w := range strings.Fields(s) {
			if !seen[w] {
				seen[w] = true
				vocab = append(vocab, w)
			}
		}
	}
	slices.Sort(vocab[5:])
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// toyCrossEncoder is a tiny random BERT cross-encoder saved with its
// tokenizer; it returns the checkpoint directory.
func toyCrossEncoder(t testing.TB, seed uint64) string {
	t.Helper()
	tok := toyTokenizer(t)
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	c, err := nn.NewClassifier(nn.BERTConfig(tok.VocabSize(), 32, 2, 2, 64, 64), seed)
	if err != nil {
		t.Fatal(err)
	}
	c.TokenizerDir = tokDir
	dir := filepath.Join(t.TempDir(), "ce")
	if err := c.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadCE(t testing.TB, dir string) *CrossEncoder {
	t.Helper()
	c, err := nn.LoadClassifier(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenize.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := NewCrossEncoder(c, tok, 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	return ce
}

// toyData is the toy collection as a training source (each query's
// positive and three negatives from other topics, with teacher margins) and
// as a dev set whose first-stage run holds every document.
func toyData() (splade.Source, *DevSet) {
	src := splade.Source{Name: "toy", Texts: &splade.Texts{Queries: map[string]string{}, Docs: toyDocs}}
	dev := &DevSet{Name: "toy/dev", Queries: map[string]string{}, Docs: toyDocs, Run: corpora.Run{}, Qrels: corpora.Qrels{}}
	ids := slices.Sorted(maps.Keys(toyDocs))
	for qi, qid := range slices.Sorted(maps.Keys(toyQueries)) {
		q := toyQueries[qid]
		src.Texts.Queries[qid] = q.text
		var negs []string
		var margins []float32
		for k := 0; len(negs) < 3; k++ {
			d := ids[(qi*3+k)%len(ids)]
			if d[:len(d)-1] != q.pos[:len(q.pos)-1] {
				negs = append(negs, d)
				margins = append(margins, 2)
			}
		}
		src.Triples = append(src.Triples, splade.Triple{QID: qid, PosID: q.pos, NegIDs: negs, Margins: margins})
		dev.Queries[qid] = q.text
		dev.Qrels[qid] = map[string]int{q.pos: 1}
		for _, d := range ids {
			dev.Run[qid] = append(dev.Run[qid], corpora.Hit{DocID: d})
		}
	}
	return src, dev
}

func toyOptions(loss string) TrainOptions {
	return TrainOptions{Loss: loss, LR: 1e-3, WeightDecay: 0.01, MaxGradNorm: 1, WarmupSteps: 3, Steps: 40,
		BatchSize: 4, NNeg: 2, Seed: 3, DevDepth: 10}
}

// TestTrainToy trains the tiny cross-encoder on the toy triples with each
// objective: the loss falls, and with InfoNCE dev nDCG@10 rises and the
// kept model, reloaded, scores what was recorded.
func TestTrainToy(t *testing.T) {
	for _, loss := range []string{InfoNCE, Pointwise, MarginMSE} {
		t.Run(loss, func(t *testing.T) {
			dir := toyCrossEncoder(t, 5)
			ce := loadCE(t, dir)
			src, dev := toyData()
			opt := toyOptions(loss)
			opt.EvalEvery = 20
			if testing.Short() || loss != InfoNCE {
				opt.Steps = 20
			}
			tr, err := NewTrainer(ce, []splade.Source{src}, []*DevSet{dev}, opt)
			if err != nil {
				t.Fatal(err)
			}
			first, err := tr.Evaluate()
			if err != nil {
				t.Fatal(err)
			}
			var losses []float64
			out := filepath.Join(t.TempDir(), "best")
			meta, err := tr.Run(context.Background(), t.TempDir(), out, false, TrainHooks{OnStep: func(s StepStats) { losses = append(losses, s.Loss) }})
			if err != nil {
				t.Fatal(err)
			}
			n := len(losses)
			early, late := mean(losses[:5]), mean(losses[n-5:])
			t.Logf("%s: loss %.4f → %.4f; dev nDCG@10 %.3f → best %.3f at step %d", loss, early, late, first["nDCG@10"], tr.Best, tr.BestAt)
			if !(late < early) {
				t.Errorf("loss did not fall: %.4f → %.4f", early, late)
			}
			if loss == InfoNCE && !(tr.Best > first["nDCG@10"]) {
				t.Errorf("dev nDCG@10 did not rise: %.3f → %.3f", first["nDCG@10"], tr.Best)
			}
			if meta.Step != tr.BestAt || meta.Loss != loss {
				t.Errorf("meta %+v", meta)
			}
			for _, f := range []string{"config.json", "model.safetensors", "vocab.txt", MetaFile, "curves.csv", "curves.svg"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("kept model lacks %s", f)
				}
			}
			back := loadCE(t, out)
			tr2, err := NewTrainer(back, []splade.Source{src}, []*DevSet{dev}, opt)
			if err != nil {
				t.Fatal(err)
			}
			again, err := tr2.Evaluate()
			if err != nil {
				t.Fatal(err)
			}
			if again["nDCG@10"] != tr.Best {
				t.Errorf("reloaded best model: nDCG@10 %g, recorded %g", again["nDCG@10"], tr.Best)
			}
		})
	}
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// TestResumeExact interrupts a run after step 3 and resumes it: the
// weights after step 6 equal an uninterrupted run's bit for bit; a second
// run in the same work directory without resume is refused.
func TestResumeExact(t *testing.T) {
	dir := toyCrossEncoder(t, 7)
	src, _ := toyData()
	opt := toyOptions(InfoNCE)
	opt.Steps, opt.CheckpointEvery, opt.Dropout = 6, 2, true
	run := func(work string, stopAt int, resume bool) (*CrossEncoder, error) {
		ce := loadCE(t, dir)
		tr, err := NewTrainer(ce, []splade.Source{src}, nil, opt)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err = tr.Run(ctx, work, filepath.Join(work, "out"), resume, TrainHooks{OnStep: func(s StepStats) {
			if s.Step == stopAt {
				cancel()
			}
		}})
		return ce, err
	}
	full, err := run(t.TempDir(), -1, false)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if _, err := run(work, 3, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := run(work, -1, false); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second run without resume: %v", err)
	}
	resumed, err := run(work, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range full.Base().Params {
		if fmt.Sprint(p.W) != fmt.Sprint(resumed.Base().Params[i].W) {
			t.Fatalf("parameter %s differs after resuming", p.Name)
		}
	}
}

// Rerank orders each query's top hits by the scorer and drops the rest.
func TestRerankOrder(t *testing.T) {
	s := scorerFunc(func(q, d string) float32 { return float32(strings.Count(d, "a")) })
	run := corpora.Run{"q": {{DocID: "x", Score: 3}, {DocID: "y", Score: 2}, {DocID: "z", Score: 1}}}
	got, err := Rerank(s, map[string]string{"q": "?"}, map[string]string{"x": "a", "y": "aaa", "z": "aa"}, run, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got["q"]) != "[{y 3 1} {x 1 2}]" {
		t.Errorf("re-ranked %v, want y then x, z dropped", got["q"])
	}
	if _, err := Rerank(s, map[string]string{}, nil, run, 2, nil); err == nil {
		t.Error("query without text: no error")
	}
}

type scorerFunc func(q, d string) float32

func (f scorerFunc) ScorePairs(qs, ds []string, progress func(int)) ([]float32, error) {
	out := make([]float32, len(qs))
	for i := range qs {
		out[i] = f(qs[i], ds[i])
	}
	return out, nil
}

// ScorePairs (sorted by length, batched) equals scoring each pair alone.
func TestScorePairsBatched(t *testing.T) {
	ce := loadCE(t, toyCrossEncoder(t, 9))
	var qs, ds []string
	for _, qid := range slices.Sorted(maps.Keys(toyQueries)) {
		for _, d := range slices.Sorted(maps.Keys(toyDocs))[:3] {
			qs, ds = append(qs, toyQueries[qid].text), append(ds, toyDocs[d])
		}
	}
	ce.BatchSize = 7
	got, err := ce.ScorePairs(qs, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range qs {
		one := ce.Forward(qs[i:i+1], ds[i:i+1])[0]
		if d := got[i] - one; d > 1e-5 || d < -1e-5 {
			t.Errorf("pair %d: batched %g, alone %g", i, got[i], one)
		}
	}
}
