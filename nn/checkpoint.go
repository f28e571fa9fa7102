package nn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/safetensors"
)

// HuggingFace checkpoint directories: config.json + model.safetensors, with
// the tokenizer files beside them.

// TokenizerFiles are the files SaveHF copies from Model.TokenizerDir when
// they exist there: the tokenizer's, and idf.json, the query-token weights
// of an inference-free SPLADE model (package splade), which belong to the
// text-to-terms side of a checkpoint as the vocabulary does.
var TokenizerFiles = []string{"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "idf.json"}

// LoadHF reads a HuggingFace BERT or DistilBERT masked-LM checkpoint from
// dir: config.json (model_type bert or distilbert), model.safetensors (F32,
// F16 or BF16, converted to float32) and vocab.txt or tokenizer.json (only
// checked for presence; tokenisation is package tokenize's).
//
// Keys are mapped to canonical names as HuggingFace does: legacy
// LayerNorm.gamma/beta are accepted, keys saved without the "bert."/
// "distilbert." prefix (from a bare encoder) are accepted, the tied decoder
// aliases (cls.predictions.decoder.weight/.bias, vocab_projector.weight)
// are used only when the real tensor is absent, and every other key
// (position_ids, pooler, seq_relationship) is ignored; LoadClassifier
// reads a cross-encoder's pooler and classifier, LoadPreTraining the
// pooler and seq_relationship of a sentence-pair head. Errors name the
// tensor and both shapes on a mismatch, and the missing tensor otherwise.
// The model starts in evaluation mode (no dropout).
func LoadHF(dir string) (*Model, error) {
	m, f, err := readHF(dir)
	if err != nil {
		return nil, err
	}
	if err := m.loadParams(f, m.Params); err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", f.Path(), err)
	}
	m.TokenizerDir = dir
	return m, nil
}

// readHF reads dir's config.json, checks for the vocabulary, builds the
// (zero) masked-LM model of that config and opens model.safetensors.
func readHF(dir string) (*Model, *safetensors.File, error) {
	cfgBytes, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint %s: %w", dir, err)
	}
	cfg, err := ParseConfig(cfgBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint %s: %w", dir, err)
	}
	hasVocab := false
	for _, name := range []string{"vocab.txt", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			hasVocab = true
		}
	}
	if !hasVocab {
		return nil, nil, fmt.Errorf("load checkpoint %s: neither vocab.txt nor tokenizer.json is present", dir)
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint %s: %w", dir, err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint %s: %w", dir, err)
	}
	return m, f, nil
}

// candidateKeys lists the checkpoint keys that may hold canonical
// parameter name, best first.
func (m *Model) candidateKeys(name string) []string {
	keys := []string{name}
	legacy := strings.NewReplacer("LayerNorm.weight", "LayerNorm.gamma", "LayerNorm.bias", "LayerNorm.beta").Replace(name)
	if legacy != name {
		keys = append(keys, legacy)
	}
	for _, k := range append([]string(nil), keys...) {
		for _, pre := range []string{"bert.", "distilbert."} {
			if s, ok := strings.CutPrefix(k, pre); ok {
				keys = append(keys, s)
			}
		}
	}
	switch name {
	case "bert.embeddings.word_embeddings.weight":
		keys = append(keys, "cls.predictions.decoder.weight")
	case "cls.predictions.bias":
		keys = append(keys, "cls.predictions.decoder.bias")
	case "distilbert.embeddings.word_embeddings.weight":
		keys = append(keys, "vocab_projector.weight")
	}
	return keys
}

// loadParams fills ps from f, each from the first of its candidate keys
// present, and joins an error per missing or misshapen tensor.
func (m *Model) loadParams(f *safetensors.File, ps []*Param) error {
	var errs []error
	for _, p := range ps {
		var key string
		for _, k := range m.candidateKeys(p.Name) {
			if _, ok := f.Tensor(k); ok {
				key = k
				break
			}
		}
		if key == "" {
			errs = append(errs, fmt.Errorf("missing tensor %q with shape %v (also looked for %s)",
				p.Name, p.Shape, strings.Join(m.candidateKeys(p.Name)[1:], ", ")))
			continue
		}
		data, shape, err := f.Float32(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Equal(shape, p.Shape) {
			errs = append(errs, fmt.Errorf("tensor %q has shape %v, want %v for %s", key, shape, p.Shape, p.Name))
			continue
		}
		copy(p.W, data)
	}
	return errors.Join(errs...)
}

// SaveHF writes m to dir as a HuggingFace checkpoint that transformers
// loads with from_pretrained: config.json and model.safetensors (every
// parameter in F32 under its canonical name, tied decoder omitted as
// save_pretrained does, extraMeta in the safetensors metadata next to
// "format": "pt"), plus the tokenizer files found in m.TokenizerDir. The
// directory is built beside dir and renamed into place, replacing any
// existing dir.
func (m *Model) SaveHF(dir string, extraMeta map[string]string) error {
	cfgBytes, err := m.Config.MarshalHF()
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	meta := map[string]string{"format": "pt"}
	for k, v := range extraMeta {
		meta[k] = v
	}
	tensors := make([]safetensors.Named, len(m.Params))
	for i, p := range m.Params {
		tensors[i] = safetensors.Named{Name: p.Name, Shape: p.Shape, Data: p.W}
	}
	src := m.TokenizerDir
	if src != "" {
		if abs, err := filepath.Abs(src); err == nil {
			src = abs
		}
	}
	return atomicfile.Dir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "config.json"), cfgBytes, 0o644); err != nil {
			return fmt.Errorf("save checkpoint %s: %w", dir, err)
		}
		if err := safetensors.WriteFile(filepath.Join(tmp, "model.safetensors"), tensors, meta); err != nil {
			return fmt.Errorf("save checkpoint %s: %w", dir, err)
		}
		if src == "" {
			return nil
		}
		for _, name := range TokenizerFiles {
			if err := atomicfile.CopyFile(filepath.Join(tmp, name), filepath.Join(src, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("save checkpoint %s: copy %s: %w", dir, name, err)
			}
		}
		return nil
	})
}
