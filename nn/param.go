package nn

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Param is one parameter tensor under its canonical HuggingFace name
// (".weight"/".bias" even when loaded from legacy "gamma"/"beta").
// Linear weights use torch's (out, in) layout: y = x·Wᵀ + b.
type Param struct {
	Name    string
	Shape   []int
	W       []float32 // values, row-major
	G       []float32 // gradient, same length; Backward adds into it
	Frozen  bool      // excluded from gradients, clipping and updates
	NoDecay bool      // AdamW applies no weight decay (biases, LayerNorm weights)
}

func newParam(name string, shape ...int) *Param {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &Param{Name: name, Shape: shape, W: make([]float32, n), G: make([]float32, n),
		NoDecay: strings.HasSuffix(name, ".bias") || strings.Contains(name, "LayerNorm") || strings.Contains(name, "layer_norm")}
}

// trainable reports whether gradients of p are wanted.
func (p *Param) trainable() bool { return !p.Frozen }

// ZeroGrad clears the gradient of every parameter.
func ZeroGrad(params []*Param) {
	for _, p := range params {
		clear(p.G)
	}
}

// ScaleGrads multiplies every trainable gradient by s (for example 1/n after
// accumulating n micro-batches).
func ScaleGrads(params []*Param, s float32) {
	for _, p := range params {
		if p.Frozen {
			continue
		}
		for i := range p.G {
			p.G[i] *= s
		}
	}
}

// NameMatcher returns a predicate on parameter names. A pattern starting
// with "re:" is a regular expression matched against the whole name;
// anything else is a path.Match glob ("*" matches dots too, since names
// contain no slashes): "bert.embeddings.*", "bert.encoder.layer.[01].*".
func NameMatcher(pattern string) (func(string) bool, error) {
	if rx, ok := strings.CutPrefix(pattern, "re:"); ok {
		re, err := regexp.Compile("^(?:" + rx + ")$")
		if err != nil {
			return nil, fmt.Errorf("parameter pattern %q: %w", pattern, err)
		}
		return re.MatchString, nil
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("parameter pattern %q: %w", pattern, err)
	}
	return func(name string) bool {
		ok, _ := path.Match(pattern, name)
		return ok
	}, nil
}

// SetFrozen sets Frozen = frozen on every parameter whose name matches one
// of the patterns (see NameMatcher) and returns how many matched. A pattern
// matching nothing is an error, so that a typo cannot silently train
// everything.
func SetFrozen(params []*Param, frozen bool, patterns ...string) (int, error) {
	total := 0
	for _, pat := range patterns {
		match, err := NameMatcher(pat)
		if err != nil {
			return total, err
		}
		n := 0
		for _, p := range params {
			if match(p.Name) {
				p.Frozen = frozen
				n++
			}
		}
		if n == 0 {
			return total, fmt.Errorf("parameter pattern %q matches no parameter", pat)
		}
		total += n
	}
	return total, nil
}

// IsDomainParam reports whether the parameter called name belongs to
// P_domain for k lower layers: the embeddings (word, position, type and
// their LayerNorm; the tied MLM decoder is the word table) and layers 0..k-1.
// Everything else — upper layers, the MLM head transform, the decoder
// bias, and the pooler and cls.seq_relationship of a pair head — is P_task. Names of both architectures are recognised.
func IsDomainParam(name string, k int) bool {
	for _, prefix := range []string{"bert.embeddings.", "distilbert.embeddings."} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	for _, prefix := range []string{"bert.encoder.layer.", "distilbert.transformer.layer."} {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		return err == nil && i < k
	}
	return false
}

// DomainParamNames lists, in model order, the P_domain parameters of m for
// k lower layers (see IsDomainParam).
func (m *Model) DomainParamNames(k int) []string {
	var names []string
	for _, p := range m.Params {
		if IsDomainParam(p.Name, k) {
			names = append(names, p.Name)
		}
	}
	return names
}

// Param returns the parameter called name, or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

// NumParams is the number of scalar parameters (the tied decoder counted once).
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.Params {
		n += len(p.W)
	}
	return n
}
