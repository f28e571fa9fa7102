package tokenize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Load reads a tokenizer from a model directory, offline: tokenizer.json
// (HF tokenizers format, BertNormalizer + BertPreTokenizer + WordPiece) when
// present, else vocab.txt (one token per line, line index = id) with
// tokenizer_config.json for do_lower_case (default true), strip_accents
// (null or absent: follow lowercasing), tokenize_chinese_chars and the
// special token names. model_max_length is read from tokenizer_config.json
// in both cases (sentinels above 1e9 mean "none", as in HF).
func Load(dir string) (*Tokenizer, error) {
	cfg, err := readConfig(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	sp := defaultSpecials
	for _, s := range []struct {
		v   *string
		dst *string
	}{{cfg.Cls.v, &sp.cls}, {cfg.Sep.v, &sp.sep}, {cfg.Pad.v, &sp.pad}, {cfg.Mask.v, &sp.mask}, {cfg.Unk.v, &sp.unk}} {
		if s.v != nil && *s.v != "" {
			*s.dst = *s.v
		}
	}
	maxLen := 0
	if cfg.ModelMaxLength != nil && *cfg.ModelMaxLength > 0 && *cfg.ModelMaxLength < 1e9 {
		maxLen = int(*cfg.ModelMaxLength)
	}
	tjPath := filepath.Join(dir, "tokenizer.json")
	if b, err := os.ReadFile(tjPath); err == nil {
		t, err := fromTokenizerJSON(b, sp, maxLen)
		if err != nil {
			return nil, fmt.Errorf("load tokenizer %s: %w", tjPath, err)
		}
		return t, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	vPath := filepath.Join(dir, "vocab.txt")
	vocab, err := ReadVocab(vPath)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s (no tokenizer.json either): %w", dir, err)
	}
	lower := true
	if cfg.DoLowerCase != nil {
		lower = *cfg.DoLowerCase
	}
	opts := normOptions{cleanText: true, chinese: true, lowercase: lower, stripAccents: lower}
	if cfg.StripAccents != nil {
		opts.stripAccents = *cfg.StripAccents
	}
	if cfg.TokenizeChinese != nil {
		opts.chinese = *cfg.TokenizeChinese
	}
	t, err := build(vocab, opts, sp, 100, maxLen)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", vPath, err)
	}
	return t, nil
}

// ReadVocab reads a vocab.txt: one token per line, line index = id. A final
// newline is optional; "\r\n" line ends are accepted.
func ReadVocab(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, fmt.Errorf("%s: empty vocabulary", path)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
		if lines[i] == "" {
			return nil, fmt.Errorf("%s:%d: empty token", path, i+1)
		}
	}
	return lines, nil
}

// tokenString accepts a special token given as a string or as an
// AddedToken object {"content": ...} (both occur in HF configs).
type tokenString struct{ v *string }

func (t *tokenString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		t.v = &s
		return nil
	}
	var o struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("special token: want a string or {\"content\": ...}, got %s", b)
	}
	t.v = &o.Content
	return nil
}

type tokenizerConfig struct {
	DoLowerCase     *bool       `json:"do_lower_case"`
	StripAccents    *bool       `json:"strip_accents"`
	TokenizeChinese *bool       `json:"tokenize_chinese_chars"`
	ModelMaxLength  *float64    `json:"model_max_length"`
	Cls             tokenString `json:"cls_token"`
	Sep             tokenString `json:"sep_token"`
	Pad             tokenString `json:"pad_token"`
	Mask            tokenString `json:"mask_token"`
	Unk             tokenString `json:"unk_token"`
}

func readConfig(path string) (tokenizerConfig, error) {
	var c tokenizerConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("load tokenizer: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("load tokenizer config %s: %w", path, err)
	}
	return c, nil
}

// tokenizerJSON is the part of HF's tokenizer.json that a BERT WordPiece
// tokenizer uses.
type tokenizerJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          *bool  `json:"clean_text"`
		HandleChineseChars *bool  `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          *bool  `json:"lowercase"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	Model struct {
		Type                    string         `json:"type"`
		UnkToken                string         `json:"unk_token"`
		ContinuingSubwordPrefix *string        `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int           `json:"max_input_chars_per_word"`
		Vocab                   map[string]int `json:"vocab"`
	} `json:"model"`
}

func fromTokenizerJSON(b []byte, sp specialNames, maxLen int) (*Tokenizer, error) {
	var tj tokenizerJSON
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, err
	}
	if tj.Model.Type != "WordPiece" {
		return nil, fmt.Errorf("model type %q, only WordPiece is supported", tj.Model.Type)
	}
	if p := tj.Model.ContinuingSubwordPrefix; p != nil && *p != "##" {
		return nil, fmt.Errorf("continuing_subword_prefix %q, only \"##\" is supported", *p)
	}
	if tj.PreTokenizer == nil || tj.PreTokenizer.Type != "BertPreTokenizer" {
		return nil, errors.New("pre_tokenizer is not BertPreTokenizer, the only one supported")
	}
	opts := normOptions{}
	if n := tj.Normalizer; n != nil {
		if n.Type != "BertNormalizer" {
			return nil, fmt.Errorf("normalizer type %q, only BertNormalizer is supported", n.Type)
		}
		opts = normOptions{cleanText: true, chinese: true, lowercase: true}
		if n.CleanText != nil {
			opts.cleanText = *n.CleanText
		}
		if n.HandleChineseChars != nil {
			opts.chinese = *n.HandleChineseChars
		}
		if n.Lowercase != nil {
			opts.lowercase = *n.Lowercase
		}
		opts.stripAccents = opts.lowercase // null: follow lowercase
		if n.StripAccents != nil {
			opts.stripAccents = *n.StripAccents
		}
	}
	vocab := make([]string, len(tj.Model.Vocab))
	for tok, id := range tj.Model.Vocab {
		if id < 0 || id >= len(vocab) {
			return nil, fmt.Errorf("token %q has id %d outside [0, %d): ids must be dense", tok, id, len(vocab))
		}
		if vocab[id] != "" {
			return nil, fmt.Errorf("id %d given to both %q and %q", id, vocab[id], tok)
		}
		vocab[id] = tok
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 || a.ID >= len(vocab) || vocab[a.ID] != a.Content {
			return nil, fmt.Errorf("added token %q (id %d) is not in the model vocabulary at that id", a.Content, a.ID)
		}
	}
	if tj.Model.UnkToken != "" {
		sp.unk = tj.Model.UnkToken
	}
	maxChars := 100
	if m := tj.Model.MaxInputCharsPerWord; m != nil && *m > 0 {
		maxChars = *m
	}
	return build(vocab, opts, sp, maxChars, maxLen)
}

// Save writes the tokenizer to dir (created if needed; other files are left
// alone) in HF's layout: vocab.txt, tokenizer.json, tokenizer_config.json
// and special_tokens_map.json, each written atomically. Load(dir) gives back
// an equivalent tokenizer, and HF's BertTokenizer(Fast) can read the files.
func (t *Tokenizer) Save(dir string) error {
	var v bytes.Buffer
	for _, tok := range t.vocab {
		v.WriteString(tok)
		v.WriteByte('\n')
	}
	specials := map[string]string{
		"cls_token": t.vocab[t.cls], "sep_token": t.vocab[t.sep], "pad_token": t.vocab[t.pad],
		"mask_token": t.vocab[t.mask], "unk_token": t.vocab[t.unk],
	}
	cfg := map[string]any{
		"clean_up_tokenization_spaces": true,
		"do_lower_case":                t.norm.lowercase,
		"strip_accents":                t.stripAccentsJSON(),
		"tokenize_chinese_chars":       t.norm.chinese,
		"tokenizer_class":              "BertTokenizer",
	}
	if t.maxLen > 0 {
		cfg["model_max_length"] = t.maxLen
	}
	for k, s := range specials {
		cfg[k] = s
	}
	files := []struct {
		name string
		data []byte
	}{
		{"vocab.txt", v.Bytes()},
		{"tokenizer.json", t.tokenizerJSON()},
		{"tokenizer_config.json", indentJSON(cfg)},
		{"special_tokens_map.json", indentJSON(specials)},
	}
	for _, f := range files {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("save tokenizer: %w", err)
		}
	}
	return nil
}

// stripAccentsJSON is null when accent stripping follows lowercasing (HF's
// default), else the explicit setting.
func (t *Tokenizer) stripAccentsJSON() any {
	if t.norm.stripAccents == t.norm.lowercase {
		return nil
	}
	return t.norm.stripAccents
}

func indentJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(err) // maps of strings, bools and ints always encode
	}
	return b.Bytes()
}

// tokenizerJSON renders HF tokenizers' JSON for this tokenizer, in the
// layout BertTokenizerFast saves (and the oracle writes).
func (t *Tokenizer) tokenizerJSON() []byte {
	type added struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var addedTokens []added
	for id := range t.vocab {
		if t.IsSpecial(int32(id)) {
			addedTokens = append(addedTokens, added{ID: int32(id), Content: t.vocab[id], Special: true})
		}
	}
	cls, sep := t.vocab[t.cls], t.vocab[t.sep]
	special := func(id string, typ int) map[string]any {
		return map[string]any{"SpecialToken": map[string]any{"id": id, "type_id": typ}}
	}
	seq := func(id string, typ int) map[string]any {
		return map[string]any{"Sequence": map[string]any{"id": id, "type_id": typ}}
	}
	// json.Marshal sorts map keys; the vocabulary must keep id order to be
	// readable, so it is spliced in by hand below.
	doc := map[string]any{
		"version":      "1.0",
		"truncation":   nil,
		"padding":      nil,
		"added_tokens": addedTokens,
		"normalizer": map[string]any{
			"type": "BertNormalizer", "clean_text": t.norm.cleanText, "handle_chinese_chars": t.norm.chinese,
			"strip_accents": t.stripAccentsJSON(), "lowercase": t.norm.lowercase,
		},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{special(cls, 0), seq("A", 0), special(sep, 0)},
			"pair":   []any{special(cls, 0), seq("A", 0), special(sep, 0), seq("B", 1), special(sep, 1)},
			"special_tokens": map[string]any{
				cls: map[string]any{"id": cls, "ids": []int32{t.cls}, "tokens": []string{cls}},
				sep: map[string]any{"id": sep, "ids": []int32{t.sep}, "tokens": []string{sep}},
			},
		},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model": map[string]any{
			"type": "WordPiece", "unk_token": t.unkTok, "continuing_subword_prefix": "##",
			"max_input_chars_per_word": t.maxChars, "vocab": "@VOCAB@",
		},
	}
	out := indentJSON(doc)
	var v bytes.Buffer
	v.WriteString("{\n")
	for id, tok := range t.vocab {
		kb, _ := json.Marshal(tok)
		fmt.Fprintf(&v, "        %s: %d", kb, id)
		if id < len(t.vocab)-1 {
			v.WriteByte(',')
		}
		v.WriteByte('\n')
	}
	v.WriteString("      }")
	return bytes.Replace(out, []byte(`"@VOCAB@"`), v.Bytes(), 1)
}
