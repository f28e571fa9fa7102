package nn

import (
	"encoding/json"
	"fmt"
	"math"
)

// Config is the shape of a BERT or DistilBERT masked-language model, read
// from and written to a HuggingFace config.json. Field names follow BERT;
// DistilBERT's keys (dim, n_layers, n_heads, hidden_dim, activation,
// dropout, attention_dropout) map onto the same fields.
type Config struct {
	ModelType        string  // "bert" or "distilbert"
	VocabSize        int     // V
	HiddenSize       int     // C
	NumLayers        int     // L
	NumHeads         int     // NH; head size HS = C/NH
	IntermediateSize int     // F
	MaxPositions     int     // rows of the position table; bounds T
	TypeVocabSize    int     // BERT token types; 0 for DistilBERT
	LayerNormEps     float64 // 1e-12 for both (fixed for DistilBERT)
	HiddenAct        string  // only "gelu" (exact erf) is supported
	PadTokenID       int     // row of the word table that receives no lookup gradient
	HiddenDropout    float64 // dropout on embeddings and sublayer outputs (training only)
	AttnDropout      float64 // dropout on attention probabilities (training only)
	InitializerRange float64 // std of the N(0, std) init of NewModel
	// Architecture, when set, is the class MarshalHF writes as
	// "architectures" (the cross-encoder's *ForSequenceClassification,
	// BertForPreTraining with a pair head); empty means the masked-LM class.
	Architecture string
	// SpladePooling is how the SPLADE head pools a text's positions into
	// one weight per term: PoolMax ("", max pooling, SPLADE v2) or PoolSum
	// (log1p of the summed ReLU logits, splade_sum.go). It is the
	// config.json key "splade_pooling", absent for max pooling, so that
	// every loader of the checkpoint encodes as it was trained.
	SpladePooling string

	// raw keeps every key of the config.json it was read from, so SaveHF
	// writes back the keys spladapt does not interpret.
	raw map[string]any
}

// SPLADE poolings (Config.SpladePooling).
const (
	PoolMax = ""    // w[v] = max_t log1p(relu(logit[t,v]))
	PoolSum = "sum" // w[v] = log1p(Σ_t relu(logit[t,v]))
)

// ParsePooling maps a pooling's name (splade.pooling, config.json's
// splade_pooling) to its Config.SpladePooling value: "max" and "" to
// PoolMax, "sum" to PoolSum; anything else is an error.
func ParsePooling(name string) (string, error) {
	switch name {
	case "", "max":
		return PoolMax, nil
	case PoolSum:
		return PoolSum, nil
	}
	return "", fmt.Errorf("splade pooling %q: want max or sum", name)
}

// BERTConfig returns a BERT config with HuggingFace's defaults for
// everything but the given sizes.
func BERTConfig(vocab, hidden, layers, heads, ff, maxPos int) Config {
	return Config{ModelType: "bert", VocabSize: vocab, HiddenSize: hidden, NumLayers: layers,
		NumHeads: heads, IntermediateSize: ff, MaxPositions: maxPos, TypeVocabSize: 2,
		LayerNormEps: 1e-12, HiddenAct: "gelu", HiddenDropout: 0.1, AttnDropout: 0.1,
		InitializerRange: 0.02}
}

// DistilBERTConfig returns a DistilBERT config with HuggingFace's defaults
// for everything but the given sizes.
func DistilBERTConfig(vocab, hidden, layers, heads, ff, maxPos int) Config {
	c := BERTConfig(vocab, hidden, layers, heads, ff, maxPos)
	c.ModelType = "distilbert"
	c.TypeVocabSize = 0
	return c
}

// HeadSize is C/NH.
func (c Config) HeadSize() int { return c.HiddenSize / c.NumHeads }

// Validate reports the first inconsistent field.
func (c Config) Validate() error {
	switch c.ModelType {
	case "bert", "distilbert":
	default:
		return fmt.Errorf("unsupported model_type %q (want bert or distilbert)", c.ModelType)
	}
	if c.HiddenAct != "gelu" {
		return fmt.Errorf("unsupported activation %q (only the exact erf \"gelu\" is implemented)", c.HiddenAct)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumLayers},
		{"num_attention_heads", c.NumHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositions}} {
		if f.v <= 0 {
			return fmt.Errorf("config %s must be positive, got %d", f.name, f.v)
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return fmt.Errorf("hidden size %d is not a multiple of %d heads", c.HiddenSize, c.NumHeads)
	}
	if c.ModelType == "bert" && c.TypeVocabSize <= 0 {
		return fmt.Errorf("config type_vocab_size must be positive for bert, got %d", c.TypeVocabSize)
	}
	if c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize {
		return fmt.Errorf("pad_token_id %d outside the vocabulary of %d", c.PadTokenID, c.VocabSize)
	}
	if !(c.LayerNormEps > 0) {
		return fmt.Errorf("layer_norm_eps must be positive, got %g", c.LayerNormEps)
	}
	if p, err := ParsePooling(c.SpladePooling); err != nil || p != c.SpladePooling {
		return fmt.Errorf("splade_pooling %q: want %q (max pooling) or %q", c.SpladePooling, PoolMax, PoolSum)
	}
	if c.HiddenDropout < 0 || c.HiddenDropout >= 1 || c.AttnDropout < 0 || c.AttnDropout >= 1 {
		return fmt.Errorf("dropout must be in [0,1), got hidden %g attention %g", c.HiddenDropout, c.AttnDropout)
	}
	return nil
}

// ParseConfig decodes a HuggingFace config.json of model_type bert or
// distilbert. Missing optional keys take HuggingFace's defaults;
// position_embedding_type other than "absolute" is an error.
func ParseConfig(data []byte) (Config, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w", err)
	}
	num := func(key string, def float64) (float64, error) {
		v, ok := raw[key]
		if !ok || v == nil {
			return def, nil
		}
		f, ok := v.(float64)
		if !ok {
			return 0, fmt.Errorf("config.json key %q: want a number, got %v", key, v)
		}
		return f, nil
	}
	str := func(key, def string) (string, error) {
		v, ok := raw[key]
		if !ok || v == nil {
			return def, nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("config.json key %q: want a string, got %v", key, v)
		}
		return s, nil
	}
	var c Config
	var err error
	intKey := func(key string, def int) int {
		if err != nil {
			return 0
		}
		var f float64
		f, err = num(key, float64(def))
		if err == nil && (f != math.Trunc(f) || math.Abs(f) > 1<<31) {
			err = fmt.Errorf("config.json key %q: want an integer, got %v", key, f)
		}
		return int(f)
	}
	floatKey := func(key string, def float64) float64 {
		if err != nil {
			return 0
		}
		var f float64
		f, err = num(key, def)
		return f
	}
	strKey := func(key, def string) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = str(key, def)
		return s
	}
	c.ModelType = strKey("model_type", "")
	switch c.ModelType {
	case "bert":
		c.VocabSize = intKey("vocab_size", 30522)
		c.HiddenSize = intKey("hidden_size", 768)
		c.NumLayers = intKey("num_hidden_layers", 12)
		c.NumHeads = intKey("num_attention_heads", 12)
		c.IntermediateSize = intKey("intermediate_size", 3072)
		c.MaxPositions = intKey("max_position_embeddings", 512)
		c.TypeVocabSize = intKey("type_vocab_size", 2)
		c.LayerNormEps = floatKey("layer_norm_eps", 1e-12)
		c.HiddenAct = strKey("hidden_act", "gelu")
		c.PadTokenID = intKey("pad_token_id", 0)
		c.HiddenDropout = floatKey("hidden_dropout_prob", 0.1)
		c.AttnDropout = floatKey("attention_probs_dropout_prob", 0.1)
		c.InitializerRange = floatKey("initializer_range", 0.02)
		if pe := strKey("position_embedding_type", "absolute"); err == nil && pe != "absolute" {
			return Config{}, fmt.Errorf("config.json: position_embedding_type %q is not supported (only \"absolute\")", pe)
		}
	case "distilbert":
		c.VocabSize = intKey("vocab_size", 30522)
		c.HiddenSize = intKey("dim", 768)
		c.NumLayers = intKey("n_layers", 6)
		c.NumHeads = intKey("n_heads", 12)
		c.IntermediateSize = intKey("hidden_dim", 3072)
		c.MaxPositions = intKey("max_position_embeddings", 512)
		c.LayerNormEps = 1e-12 // hard-coded in HF's modeling_distilbert
		c.HiddenAct = strKey("activation", "gelu")
		c.PadTokenID = intKey("pad_token_id", 0)
		c.HiddenDropout = floatKey("dropout", 0.1)
		c.AttnDropout = floatKey("attention_dropout", 0.1)
		c.InitializerRange = floatKey("initializer_range", 0.02)
	case "":
		return Config{}, fmt.Errorf("config.json has no model_type (want bert or distilbert)")
	default:
		return Config{}, fmt.Errorf("config.json: unsupported model_type %q (want bert or distilbert)", c.ModelType)
	}
	pooling := strKey("splade_pooling", "")
	if err != nil {
		return Config{}, err
	}
	if c.SpladePooling, err = ParsePooling(pooling); err != nil {
		return Config{}, fmt.Errorf("config.json: %w", err)
	}
	c.raw = raw
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config.json: %w", err)
	}
	return c, nil
}

// MarshalHF encodes c as a HuggingFace config.json (indented), keeping the
// uninterpreted keys of the file c was parsed from.
func (c Config) MarshalHF() ([]byte, error) {
	out := map[string]any{}
	for k, v := range c.raw {
		out[k] = v
	}
	out["model_type"] = c.ModelType
	out["vocab_size"] = c.VocabSize
	out["max_position_embeddings"] = c.MaxPositions
	out["pad_token_id"] = c.PadTokenID
	out["initializer_range"] = c.InitializerRange
	out["torch_dtype"] = "float32"
	switch c.ModelType {
	case "bert":
		out["architectures"] = []string{"BertForMaskedLM"}
		out["hidden_size"] = c.HiddenSize
		out["num_hidden_layers"] = c.NumLayers
		out["num_attention_heads"] = c.NumHeads
		out["intermediate_size"] = c.IntermediateSize
		out["type_vocab_size"] = c.TypeVocabSize
		out["layer_norm_eps"] = c.LayerNormEps
		out["hidden_act"] = c.HiddenAct
		out["hidden_dropout_prob"] = c.HiddenDropout
		out["attention_probs_dropout_prob"] = c.AttnDropout
		out["position_embedding_type"] = "absolute"
	case "distilbert":
		out["architectures"] = []string{"DistilBertForMaskedLM"}
		out["dim"] = c.HiddenSize
		out["n_layers"] = c.NumLayers
		out["n_heads"] = c.NumHeads
		out["hidden_dim"] = c.IntermediateSize
		out["activation"] = c.HiddenAct
		out["dropout"] = c.HiddenDropout
		out["attention_dropout"] = c.AttnDropout
		if _, ok := out["sinusoidal_pos_embds"]; !ok {
			out["sinusoidal_pos_embds"] = false
		}
		if _, ok := out["tie_weights_"]; !ok {
			out["tie_weights_"] = true
		}
	default:
		return nil, fmt.Errorf("unsupported model_type %q", c.ModelType)
	}
	delete(out, "splade_pooling")
	if c.SpladePooling != PoolMax {
		out["splade_pooling"] = c.SpladePooling
	}
	if c.Architecture != "" {
		out["architectures"] = []string{c.Architecture}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode config.json: %w", err)
	}
	return append(b, '\n'), nil
}
