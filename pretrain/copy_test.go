package pretrain

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/spladapt/spladapt/nn"
)

// TestMaskCopyProb: with CopyProb, unselected tokens are labelled with
// their own id at about that rate and keep their input; selected tokens
// are masked exactly as without it (same selection rate); specials stay
// unlabelled.
func TestMaskCopyProb(t *testing.T) {
	seqs, starts := randomSeqs(400, 128, 5)
	m := NewMasker(maskTestVocab, 4, maskTestSpecial, false, 42)
	m.CopyProb = 0.3
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	inputs := make([]int32, 128)
	labels := make([]int32, 128)
	var eligible, selected, copies, unselected int
	for s, ids := range seqs {
		m.Mask(ids, starts[s], 0, s, inputs, labels)
		for i, id := range ids {
			if maskTestSpecial(id) {
				if labels[i] != IgnoreLabel {
					t.Fatalf("special token %d labelled %d", id, labels[i])
				}
				continue
			}
			eligible++
			switch {
			case labels[i] == IgnoreLabel:
				unselected++
			case inputs[i] == id && labels[i] == id:
				// a copy target, or a selected token left unchanged (10% of 15%)
				copies++
			default:
				selected++
			}
		}
	}
	// Selected and changed: 15%·90% of eligible tokens.
	if r := float64(selected) / float64(eligible); math.Abs(r-0.135) > 0.01 {
		t.Errorf("changed share %.4f, want 0.135", r)
	}
	// Labelled with their own, unchanged input: 15%·10% + 85%·30%.
	if r := float64(copies) / float64(eligible); math.Abs(r-(0.015+0.85*0.3)) > 0.01 {
		t.Errorf("own-label share %.4f, want %.4f", r, 0.015+0.85*0.3)
	}
	m.CopyProb = 1.5
	if m.Validate() == nil {
		t.Error("Validate accepted CopyProb 1.5")
	}
}

// TestLexicalInitCopies: a model from scratch with LexicalInit predicts
// every input token itself (copy rate 1), and its SPLADE vectors are
// exactly the text's own (non-special) tokens.
func TestLexicalInitCopies(t *testing.T) {
	cfg := nn.BERTConfig(maskTestVocab, 128, 2, 4, 128, 64)
	m, err := nn.NewModel(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	seqs, starts := randomSeqs(6, 32, 9)
	_ = starts
	p := packedOf(seqs)
	if r := CopyRate(m, p, []int{0, 1, 2, 3, 4, 5}, maskTestSpecial); r > 0.2 {
		t.Errorf("BERT init: copy rate %.3f, want near 0", r)
	}
	nn.LexicalInit(m)
	if r := CopyRate(m, p, []int{0, 1, 2, 3, 4, 5}, maskTestSpecial); r != 1 {
		t.Errorf("lexical init: copy rate %.3f, want 1", r)
	}
	V := cfg.VocabSize
	out := make([]float32, V)
	ids := seqs[0]
	mask := make([]float32, len(ids))
	for i := range mask {
		mask[i] = 1
	}
	nn.SpladeEncode(m, nn.Batch{B: 1, T: len(ids), InputIDs: ids, Mask: mask}, out, nil)
	own := map[int32]bool{}
	for _, id := range ids {
		own[id] = true
	}
	for v, w := range out {
		if !maskTestSpecial(int32(v)) && (w > 0) != own[int32(v)] {
			t.Fatalf("token %d: SPLADE weight %g, in text %v", v, w, own[int32(v)])
		}
	}
}

func packedOf(seqs [][]int32) *Packed {
	p := &Packed{T: len(seqs[0])}
	for _, s := range seqs {
		p.flat = append(p.flat, s[1:]...)
		p.flatWS = append(p.flatWS, make([]bool, len(s)-1)...)
	}
	p.cls = seqs[0][0]
	return p
}

// TestTrainLexicalCopy trains the tiny model with lexical init and the
// copy loss: the run reports a copy rate that stays high, and training.json
// records it.
func TestTrainLexicalCopy(t *testing.T) {
	corpus := toyCorpus(t, 60, 1)
	out := filepath.Join(t.TempDir(), "m")
	cfg := tinyConfig()
	cfg.Init, cfg.CopyProb = "lexical", 0.15
	res, err := Train(context.Background(), Options{Corpora: []string{corpus}, FromScratch: true, Out: out, Settings: cfg, Progress: "off"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "training.json"))
	if err != nil {
		t.Fatal(err)
	}
	var saved Result
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	t.Logf("copy rate %.3f, held-out perplexity %.1f", res.CopyRate, res.HeldoutPPL)
	if res.CopyRate < 0.9 || saved.CopyRate != res.CopyRate {
		t.Errorf("copy rate %.3f (saved %.3f), want ≥ 0.9 with lexical init and copy loss", res.CopyRate, saved.CopyRate)
	}
}
