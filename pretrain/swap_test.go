package pretrain

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// tinyCheckpoint writes a random BERT checkpoint with vocabulary vocab.
func tinyCheckpoint(t *testing.T, dir string, vocab []string, layers int, seed uint64) {
	t.Helper()
	randomCheckpoint(t, dir, vocab, layers, seed, nn.BERTConfig(len(vocab), 16, layers, 2, 32, 32).InitializerRange)
}

// randomCheckpoint is tinyCheckpoint with weights drawn N(0, initRange).
func randomCheckpoint(t *testing.T, dir string, vocab []string, layers int, seed uint64, initRange float64) {
	t.Helper()
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	cfg := nn.BERTConfig(len(vocab), 16, layers, 2, 32, 32)
	cfg.InitializerRange = initRange
	m, err := nn.NewModel(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	m.TokenizerDir = tokDir
	if err := m.SaveHF(dir, nil); err != nil {
		t.Fatal(err)
	}
}

func testVocab(n int) []string {
	v := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for i := len(v); i < n; i++ {
		v = append(v, fmt.Sprintf("w%d", i))
	}
	return v
}

func TestSwapTakesDomainFromOneAndTaskFromTheOther(t *testing.T) {
	dir := t.TempDir()
	a, b, out := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "out")
	tinyCheckpoint(t, a, testVocab(40), 3, 1)
	tinyCheckpoint(t, b, testVocab(40), 3, 2)
	if err := Swap(a, b, out, 2); err != nil {
		t.Fatal(err)
	}
	ma, _ := nn.LoadHF(a)
	mb, _ := nn.LoadHF(b)
	mo, err := nn.LoadHF(out)
	if err != nil {
		t.Fatal(err)
	}
	nDom := 0
	for _, p := range mo.Params {
		want := mb.Param(p.Name).W
		if nn.IsDomainParam(p.Name, 2) {
			want = ma.Param(p.Name).W
			nDom++
		}
		for i := range want {
			if p.W[i] != want[i] {
				t.Fatalf("%s[%d] = %g, want %g (domain=%v)", p.Name, i, p.W[i], want[i], nn.IsDomainParam(p.Name, 2))
			}
		}
	}
	// embeddings (word, position, type, LN w/b) + 2 layers × 16 tensors
	if nDom != 5+2*16 {
		t.Errorf("%d P_domain tensors, want %d", nDom, 5+2*16)
	}
	meta, err := ReadMeta(out)
	if err != nil || meta[MetaSwapDomain] != a || meta[MetaSwapTask] != b || meta[MetaDomainLayers] != "2" {
		t.Errorf("swap metadata = %v, %v", meta, err)
	}
}

func TestSwapRefusesIncompatible(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	tinyCheckpoint(t, a, testVocab(40), 3, 1)
	otherVocab := testVocab(40)
	otherVocab[7] = "zzz"
	for _, tc := range []struct {
		name, want string
		vocab      []string
		layers     int
	}{
		{"layers", "num_hidden_layers is 3", testVocab(40), 2},
		{"vocab size", "vocab_size is 40", testVocab(41), 3},
		{"vocab tokens", `token 7 is "w7"`, otherVocab, 3},
	} {
		b := filepath.Join(dir, tc.name)
		tinyCheckpoint(t, b, tc.vocab, tc.layers, 2)
		err := Swap(a, b, filepath.Join(dir, "out-"+tc.name), 2)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
	}
}

func TestFreezeFor(t *testing.T) {
	m, err := nn.NewModel(nn.BERTConfig(40, 16, 3, 2, 32, 32), 1)
	if err != nil {
		t.Fatal(err)
	}
	total := m.NumParams()
	nd, err := FreezeFor(m, "domain", 2)
	if err != nil {
		t.Fatal(err)
	}
	nt, _ := FreezeFor(m, "task", 2)
	na, _ := FreezeFor(m, "all", 2)
	if nd+nt != total || na != total || nd == 0 || nt == 0 {
		t.Errorf("domain %d + task %d != total %d (all %d)", nd, nt, total, na)
	}
	if m.Param("cls.predictions.bias").Frozen {
		t.Error("after all: decoder bias frozen")
	}
	FreezeFor(m, "domain", 2)
	if !m.Param("cls.predictions.bias").Frozen || m.Param("bert.embeddings.word_embeddings.weight").Frozen {
		t.Error("domain: decoder bias must be frozen (P_task), word embeddings trainable")
	}
	if _, err := FreezeFor(m, "head", 2); err == nil {
		t.Error("unknown train-params: no error")
	}
}
