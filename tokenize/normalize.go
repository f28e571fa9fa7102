package tokenize

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sugarme/tokenizer/normalizer"
	"golang.org/x/text/unicode/norm"
)

// normOptions are the settings of HF's BertNormalizer.
type normOptions struct {
	cleanText    bool // drop control characters, map every whitespace to ' '
	chinese      bool // put spaces around CJK ideographs
	stripAccents bool // NFD, then drop nonspacing marks (Mn)
	lowercase    bool
}

// normalize applies HF tokenizers' BertNormalizer to s, in its order:
// clean text, space CJK characters, strip accents (NFD + drop Mn),
// lowercase. Unlike sugarme's BertNormalizer it decomposes before dropping
// marks (so "café" → "cafe", not "caf"), treats all Unicode White_Space as
// whitespace and drops the same control classes as HF (Cc, Cf, Co, Cs and
// unassigned code points, except \t \n \r). Cost: O(len(s)), one or two
// passes, allocation-free for clean ASCII input that needs no lowercasing.
func (o normOptions) normalize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD") // then dropped by cleanText, as in HF (lossy decode)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	changed := false
	for _, r := range s {
		if o.cleanText {
			if r == 0 || r == 0xFFFD || isControl(r) {
				changed = true
				continue
			}
			if r != ' ' && isWhitespace(r) {
				r = ' '
				changed = true
			}
		}
		if o.chinese && isChinese(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			changed = true
			continue
		}
		b.WriteRune(r)
	}
	if changed {
		s = b.String()
	}
	if o.stripAccents && !isASCII(s) {
		d := norm.NFD.String(s)
		var c strings.Builder
		c.Grow(len(d))
		for _, r := range d {
			if !unicode.Is(unicode.Mn, r) {
				c.WriteRune(r)
			}
		}
		s = c.String()
	}
	if o.lowercase {
		s = strings.ToLower(s)
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isWhitespace is HF's BERT whitespace: \t \n \r and Unicode White_Space.
func isWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// isControl is HF's BERT control class: Unicode "Other" (Cc, Cf, Cs, Co,
// Cn) except \t \n \r, which count as whitespace.
func isControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	if r < 0x20 || r == 0x7f {
		return true
	}
	if r < 0x80 {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C)
}

// isChinese reports whether r is a CJK Unified Ideograph as BERT defines
// it (the blocks listed in HF tokenizers' is_chinese_char).
func isChinese(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF ||
		r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF ||
		r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F ||
		r >= 0x2B920 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF ||
		r >= 0x2F800 && r <= 0x2FA1F
}

// isPunct is BERT's punctuation: ASCII punctuation or Unicode P*.
func isPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~'
	}
	return unicode.IsPunct(r)
}

// preTokenize splits normalized text as HF's BertPreTokenizer does: on
// whitespace (removed) and around every punctuation character (kept as a
// word of its own). It calls fn with each word, in order.
func preTokenize(s string, fn func(word string)) {
	start := -1
	for i, r := range s {
		switch {
		case isWhitespace(r):
			if start >= 0 {
				fn(s[start:i])
				start = -1
			}
		case isPunct(r):
			if start >= 0 {
				fn(s[start:i])
				start = -1
			}
			fn(s[i : i+utf8.RuneLen(r)])
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		fn(s[start:])
	}
}

// sugarNormalizer plugs normalize into sugarme's pipeline. It discards the
// alignment between original and normalized text (spladapt never maps
// tokens back to character offsets), which also avoids the cost of
// sugarme's per-rune alignment bookkeeping.
type sugarNormalizer struct{ opts normOptions }

func (n sugarNormalizer) Normalize(s *normalizer.NormalizedString) (*normalizer.NormalizedString, error) {
	return normalizer.NewNormalizedFrom(n.opts.normalize(s.GetNormalized())), nil
}
