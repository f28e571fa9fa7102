package nn

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/safetensors"
)

// SaveHF then LoadHF gives back every parameter bit for bit, the config,
// and the tokenizer files; the written file holds exactly the canonical
// names in F32 (no tied decoder, as save_pretrained).
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, arch := range []string{"bert", "distilbert"} {
		t.Run(arch, func(t *testing.T) {
			src := filepath.Join(oracleRoot, arch+"-tiny", "model")
			m, err := LoadHF(src)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "ckpt")
			if err := m.SaveHF(dir, map[string]string{"spladapt.stage": "test"}); err != nil {
				t.Fatal(err)
			}
			m2, err := LoadHF(dir)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range m.Params {
				if !slices.Equal(p.W, m2.Params[i].W) || p.Name != m2.Params[i].Name {
					t.Fatalf("%s changed in the round trip", p.Name)
				}
			}
			if marshalHF(t, m2.Config) != marshalHF(t, m.Config) {
				t.Error("config changed in the round trip")
			}
			f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range m.Params {
				names = append(names, p.Name)
				if info, _ := f.Tensor(p.Name); info.DType != "F32" {
					t.Errorf("%s stored as %s", p.Name, info.DType)
				}
			}
			slices.Sort(names)
			if !slices.Equal(f.Names(), names) {
				t.Errorf("stored names %v\nwant %v", f.Names(), names)
			}
			if md := f.Metadata(); md["format"] != "pt" || md["spladapt.stage"] != "test" {
				t.Errorf("metadata %v", md)
			}
			for _, name := range []string{"vocab.txt", "tokenizer.json"} {
				a, _ := os.ReadFile(filepath.Join(src, name))
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || string(a) != string(b) {
					t.Errorf("%s not copied: %v", name, err)
				}
			}
			// Keys spladapt does not interpret are kept (HF reads them).
			var raw map[string]any
			cb, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			if err := json.Unmarshal(cb, &raw); err != nil {
				t.Fatal(err)
			}
			if _, ok := raw["initializer_range"]; !ok || raw["model_type"] != arch {
				t.Errorf("config.json lost keys: %v", raw)
			}
		})
	}
}

func marshalHF(t *testing.T, c Config) string {
	b, err := c.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyCase copies a case's model directory so a test can break it.
func copyCase(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join(oracleRoot, name, "model")
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := atomicfile.CopyFile(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestLoadHFErrors(t *testing.T) {
	expect := func(t *testing.T, dir string, wants ...string) {
		t.Helper()
		_, err := LoadHF(dir)
		if err == nil {
			t.Fatalf("no error, want %q", wants)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	rewrite := func(t *testing.T, dir string, edit func(map[string]safetensors.Named) []safetensors.Named) {
		f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		ts := map[string]safetensors.Named{}
		for _, n := range f.Names() {
			d, s, err := f.Float32(n)
			if err != nil {
				continue // integer extras
			}
			ts[n] = safetensors.Named{Name: n, Shape: s, Data: d}
		}
		if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), edit(ts), nil); err != nil {
			t.Fatal(err)
		}
	}
	values := func(m map[string]safetensors.Named) []safetensors.Named {
		var out []safetensors.Named
		for _, v := range m {
			out = append(out, v)
		}
		return out
	}

	t.Run("missing tensor", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		rewrite(t, dir, func(m map[string]safetensors.Named) []safetensors.Named {
			delete(m, "bert.encoder.layer.1.output.dense.weight")
			return values(m)
		})
		expect(t, dir, `missing tensor "bert.encoder.layer.1.output.dense.weight"`, "[32 64]")
	})
	t.Run("missing word embeddings and no tied alias", func(t *testing.T) {
		dir := copyCase(t, "distilbert-tiny")
		rewrite(t, dir, func(m map[string]safetensors.Named) []safetensors.Named {
			delete(m, "distilbert.embeddings.word_embeddings.weight")
			return values(m)
		})
		expect(t, dir, "distilbert.embeddings.word_embeddings.weight", "vocab_projector.weight")
	})
	t.Run("shape mismatch", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		rewrite(t, dir, func(m map[string]safetensors.Named) []safetensors.Named {
			p := m["cls.predictions.bias"]
			p.Shape, p.Data = []int{99}, p.Data[:99]
			m[p.Name] = p
			return values(m)
		})
		expect(t, dir, `"cls.predictions.bias"`, "[99]", "[100]")
	})
	t.Run("unsupported model type", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), `"bert"`, `"roberta"`, 1)), 0o644)
		expect(t, dir, `unsupported model_type "roberta"`)
	})
	t.Run("relative positions", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), `"absolute"`, `"relative_key"`, 1)), 0o644)
		expect(t, dir, "position_embedding_type", "relative_key")
	})
	t.Run("truncated file", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		p := filepath.Join(dir, "model.safetensors")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)-100], 0o644)
		expect(t, dir, "model.safetensors")
	})
	t.Run("no vocabulary", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		os.Remove(filepath.Join(dir, "vocab.txt"))
		os.Remove(filepath.Join(dir, "tokenizer.json"))
		expect(t, dir, "vocab.txt", "tokenizer.json")
	})
	t.Run("no config", func(t *testing.T) {
		dir := copyCase(t, "bert-tiny")
		os.Remove(filepath.Join(dir, "config.json"))
		expect(t, dir, "config.json")
	})
}

// A BertModel-style file (keys without the "bert." prefix) plus the head
// loads, and the tied alias is used when the word table is absent.
func TestLoadHFAliases(t *testing.T) {
	dir := copyCase(t, "bert-tiny")
	ref, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Named
	for _, p := range ref.Params {
		name := strings.TrimPrefix(p.Name, "bert.")
		if p == ref.wordEmb {
			name = "cls.predictions.decoder.weight"
		}
		ts = append(ts, safetensors.Named{Name: name, Shape: p.Shape, Data: p.W})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	m, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params {
		if !slices.Equal(p.W, ref.Params[i].W) {
			t.Errorf("%s differs", p.Name)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type":"distilbert","vocab_size":50,"dim":16,"n_layers":3,"n_heads":2,"hidden_dim":40,
		"max_position_embeddings":20,"activation":"gelu","dropout":0.2,"attention_dropout":0.3,"sinusoidal_pos_embds":false,"qa_dropout":0.1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{ModelType: "distilbert", VocabSize: 50, HiddenSize: 16, NumLayers: 3, NumHeads: 2, IntermediateSize: 40,
		MaxPositions: 20, LayerNormEps: 1e-12, HiddenAct: "gelu", HiddenDropout: 0.2, AttnDropout: 0.3, InitializerRange: 0.02}
	c.raw = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	for _, bad := range []string{
		`{"model_type":"bert","hidden_act":"gelu_new"}`,
		`{"model_type":"bert","hidden_size":30,"num_attention_heads":4}`,
		`{"vocab_size":5}`,
		`{"model_type":"bert","vocab_size":"many"}`,
		`{"model_type":"bert","num_hidden_layers":2.5}`,
		`[1]`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
