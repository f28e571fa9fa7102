package tokenize

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// oracleModel is the PyTorch oracle's tiny BERT checkpoint directory, found
// relative to the repository root (../shared), i.e. ../../shared from here.
const oracleModel = "../../shared/tools/oracle/cases/bert-tiny/model"

func needOracle(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(oracleModel); err != nil {
		t.Skipf("oracle model directory %s not found: %v", oracleModel, err)
	}
}

// --- reference: HF's BertTokenizer algorithm, written plainly ---------------

// refTokens follows transformers' (slow) BasicTokenizer + WordpieceTokenizer
// step by step: clean text, space CJK, split on whitespace, per word
// lowercase + NFD/drop-Mn, split punctuation, greedy longest-match-first.
func refTokens(vocab map[string]bool, lower bool, text string) []string {
	var clean []rune
	for _, r := range text {
		if r == 0 || r == 0xFFFD || refIsControl(r) {
			continue
		}
		if r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.White_Space, r) {
			clean = append(clean, ' ')
			continue
		}
		if refIsCJK(r) {
			clean = append(clean, ' ', r, ' ')
			continue
		}
		clean = append(clean, r)
	}
	var out []string
	for _, w := range strings.FieldsFunc(string(clean), func(r rune) bool { return r == ' ' }) {
		if lower {
			w = strings.ToLower(w)
			var b strings.Builder
			for _, r := range norm.NFD.String(w) {
				if !unicode.Is(unicode.Mn, r) {
					b.WriteRune(r)
				}
			}
			w = b.String()
		}
		// split on punctuation
		var words []string
		cur := []rune{}
		for _, r := range w {
			if r < 128 && (r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126) || unicode.IsPunct(r) {
				if len(cur) > 0 {
					words = append(words, string(cur))
					cur = []rune{}
				}
				words = append(words, string(r))
				continue
			}
			cur = append(cur, r)
		}
		if len(cur) > 0 {
			words = append(words, string(cur))
		}
		for _, word := range words {
			out = append(out, refWordPiece(vocab, word)...)
		}
	}
	return out
}

func refWordPiece(vocab map[string]bool, word string) []string {
	chars := []rune(word)
	if len(chars) > 100 {
		return []string{"[UNK]"}
	}
	var pieces []string
	for start := 0; start < len(chars); {
		end := len(chars)
		found := ""
		for ; start < end; end-- {
			s := string(chars[start:end])
			if start > 0 {
				s = "##" + s
			}
			if vocab[s] {
				found = s
				break
			}
		}
		if found == "" {
			return []string{"[UNK]"}
		}
		pieces = append(pieces, found)
		start = end
	}
	return pieces
}

func refIsControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) {
		return true
	}
	for _, tab := range unicode.Categories {
		if unicode.Is(tab, r) {
			return false
		}
	}
	return true // unassigned (Cn)
}

func refIsCJK(r rune) bool {
	ranges := [][2]rune{{0x4E00, 0x9FFF}, {0x3400, 0x4DBF}, {0x20000, 0x2A6DF}, {0x2A700, 0x2B73F},
		{0x2B740, 0x2B81F}, {0x2B920, 0x2CEAF}, {0xF900, 0xFAFF}, {0x2F800, 0x2FA1F}}
	for _, rg := range ranges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

// --- tests -----------------------------------------------------------------

func oracleVocab(t *testing.T) []string {
	needOracle(t)
	v, err := ReadVocab(filepath.Join(oracleModel, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOracleHandDerived checks tokenisation with the oracle's vocabulary
// against expectations worked out by hand from the vocabulary (specials,
// punctuation, a-z, 0-9, ##a-##z, ##0-##9, a few common words, ##ing...).
func TestOracleHandDerived(t *testing.T) {
	needOracle(t)
	for _, src := range []string{"tokenizer.json", "vocab.txt"} {
		dir := oracleModel
		if src == "vocab.txt" { // the same model without tokenizer.json
			dir = t.TempDir()
			for _, f := range []string{"vocab.txt", "tokenizer_config.json"} {
				b, err := os.ReadFile(filepath.Join(oracleModel, f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
		}
		tk, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if tk.VocabSize() != 100 || tk.PAD() != 0 || tk.UNK() != 1 || tk.CLS() != 2 || tk.SEP() != 3 || tk.MASK() != 4 || tk.MaxLen() != 32 || !tk.Lowercase() {
			t.Errorf("%s: size %d specials %d %d %d %d %d maxLen %d lower %v", src, tk.VocabSize(), tk.PAD(), tk.UNK(), tk.CLS(), tk.SEP(), tk.MASK(), tk.MaxLen(), tk.Lowercase())
		}
		cases := []struct{ text, want string }{
			{"The cat is on the mat, isn't it?", "the c ##a ##t is on the m ##a ##t , is ##n ' t it ?"},
			{"Café NAÏVE", "c ##a ##f ##e n ##a ##i ##v ##e"},
			{"testing 123 (was)", "t ##e ##s ##t ##i ##n ##g 1 ##2 ##3 ( was )"},
			{"x\u00a0y\u3000z\u2028w", "x y z w"},       // Unicode whitespace splits words
			{"he\u200bllo\x00!", "h ##e ##l ##l ##o !"}, // Cf and NUL are dropped
			{"中文 ok", "[UNK] [UNK] o ##k"},              // CJK spaced; not in vocab
			{"ǆ ß €", "[UNK] [UNK] [UNK]"},              // not in vocab
			{"", ""},
			{" \t\n ", ""},
		}
		for _, c := range cases {
			got := strings.Join(tk.Tokens(c.text), " ")
			if got != c.want {
				t.Errorf("%s: Tokens(%q) = %q, want %q", src, c.text, got, c.want)
			}
		}
		e := tk.Encode("The cat.", 0)
		// [CLS]=2 the=88 c=18 ##a=52 ##t=71 .=5 [SEP]=3 (line numbers in vocab.txt, 0-based)
		if want := []int32{2, 88, 18, 52, 71, 5, 3}; !reflect.DeepEqual(e.IDs, want) {
			t.Errorf("%s: Encode ids %v, want %v", src, e.IDs, want)
		}
		if want := []int32{-1, 0, 1, 1, 1, 2, -1}; !reflect.DeepEqual(e.WordIDs, want) {
			t.Errorf("%s: word ids %v, want %v", src, e.WordIDs, want)
		}
		if want := make([]int32, 7); !reflect.DeepEqual(e.TypeIDs, want) {
			t.Errorf("%s: type ids %v", src, e.TypeIDs)
		}
	}
}

// TestAgainstReference compares the sugarme-based encoder with the plain
// re-implementation of HF's algorithm on random text mixing ASCII,
// accented letters (precomposed and combining), CJK, punctuation, every
// kind of whitespace and control characters.
func TestAgainstReference(t *testing.T) {
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "naive", "resume", "the", "##s", "##e", "e", "a", "##a", "b", "##b", "ab", "##ab", "é", "##é", "中", "ß", "##ß", "ǆ", "!", ",", "¿", "«", "-", "x", "##x", "xx", "##xx"}
	set := map[string]bool{}
	for _, v := range vocab {
		set[v] = true
	}
	pieces := []string{"a", "b", "e", "x", "A", "B", "É", "é", "e\u0301", "ß", "ǅ", "ǆ", "中", "日", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009",
		"!", ",", "¿", "«", "-", "\u200b", "\x01", "\x7f", "\ufeff", "\ue000", "cafe", "Café", "NAÏVE", "résumé", "the", "THEs", "xx", "\u0301", "\U0001F600", "\u0378"}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, lower := range []bool{true, false} {
		tk, err := FromVocab(vocab, lower)
		if err != nil {
			t.Fatal(err)
		}
		n := 3000
		if testing.Short() {
			n = 300
		}
		for range n {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			text := b.String()
			got := tk.Tokens(text)
			want := refTokens(set, lower, text)
			// sugarme's own pipeline (pre-tokenizer included) must agree
			// with the direct path.
			ids, words := tk.pieces(text)
			sids, swords := tk.sugarPieces(text)
			if len(ids)+len(sids) > 0 && (!reflect.DeepEqual(ids, sids) || !reflect.DeepEqual(words, swords)) {
				t.Fatalf("lower=%v %q: direct path %v %v, sugarme pipeline %v %v", lower, text, ids, words, sids, swords)
			}
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("lower=%v Tokens(%q) = %q, reference %q", lower, text, got, want)
			}
		}
	}
}

func TestAccents(t *testing.T) {
	tk, err := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "naive", "resume"}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"Café naïve résumé", "Cafe\u0301 nai\u0308ve re\u0301sume\u0301", "CAFÉ NAÏVE RÉSUMÉ"} {
		if got := strings.Join(tk.Tokens(text), " "); got != "cafe naive resume" {
			t.Errorf("Tokens(%q) = %q, want %q", text, got, "cafe naive resume")
		}
	}
	// A cased vocabulary keeps accents and case: NFC "Café" is found as is.
	cased, err := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Café", "cafe"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cased.Tokens("Café CAFE cafe"), " "); got != "Café [UNK] cafe" {
		t.Errorf("cased: %q", got)
	}
}

func TestLongWord(t *testing.T) {
	tk, _ := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##a"}, true)
	if got := tk.Tokens(strings.Repeat("a", 100)); len(got) != 100 || got[0] != "a" || got[99] != "##a" {
		t.Errorf("100 chars: %d pieces %v...", len(got), got[:min(3, len(got))])
	}
	if got := tk.Tokens(strings.Repeat("a", 101)); !reflect.DeepEqual(got, []string{"[UNK]"}) {
		t.Errorf("101 chars: %v, want [UNK]", got)
	}
}

func TestTruncation(t *testing.T) {
	tk, _ := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##b"}, true)
	text := "a bb a bb a" // a b ##b a b ##b a: 7 pieces
	full := tk.Encode(text, 0)
	if len(full.IDs) != 9 {
		t.Fatalf("untruncated length %d, want 9", len(full.IDs))
	}
	for _, maxLen := range []int{1, 2, 3, 5, 8, 9, 10, 100} {
		e := tk.Encode(text, maxLen)
		want := min(max(maxLen, 2), 9)
		if len(e.IDs) != want || len(e.TypeIDs) != want || len(e.WordIDs) != want {
			t.Errorf("maxLen %d: lengths %d/%d/%d, want %d", maxLen, len(e.IDs), len(e.TypeIDs), len(e.WordIDs), want)
			continue
		}
		if e.IDs[0] != tk.CLS() || e.IDs[want-1] != tk.SEP() || !reflect.DeepEqual(e.IDs[1:want-1], full.IDs[1:want-1]) {
			t.Errorf("maxLen %d: %v, want a prefix of %v closed by [SEP]", maxLen, e.IDs, full.IDs)
		}
	}
}

func TestLongestFirst(t *testing.T) {
	cases := []struct{ n1, n2, max, w1, w2 int }{
		{3, 4, 9, 3, 4},   // fits
		{10, 3, 9, 6, 3},  // only the longer is cut
		{3, 10, 9, 3, 6},  // same, other side
		{10, 10, 9, 4, 5}, // both cut; the odd token to the second when equal
		{12, 7, 9, 5, 4},  // both cut; the longer (first) gets the odd token
		{5, 5, 10, 5, 5},  // exact fit
		{20, 1, 0, 0, 0},  // no budget
		{6, 4, 9, 5, 4},   // shorter fits in half: longer gets the rest
	}
	for _, c := range cases {
		if g1, g2 := longestFirst(c.n1, c.n2, c.max); g1 != c.w1 || g2 != c.w2 {
			t.Errorf("longestFirst(%d, %d, %d) = %d, %d, want %d, %d", c.n1, c.n2, c.max, g1, g2, c.w1, c.w2)
		}
	}
}

func TestEncodePair(t *testing.T) {
	tk, _ := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##b", "c"}, true)
	e := tk.EncodePair("a bb", "c, a", 0)
	// [CLS] a b ##b [SEP] c [UNK] a [SEP]  (',' is not in the vocab)
	if want := []int32{2, 5, 6, 7, 3, 8, 1, 5, 3}; !reflect.DeepEqual(e.IDs, want) {
		t.Errorf("ids %v, want %v", e.IDs, want)
	}
	if want := []int32{0, 0, 0, 0, 0, 1, 1, 1, 1}; !reflect.DeepEqual(e.TypeIDs, want) {
		t.Errorf("type ids %v, want %v", e.TypeIDs, want)
	}
	if want := []int32{-1, 0, 1, 1, -1, 2, 3, 4, -1}; !reflect.DeepEqual(e.WordIDs, want) {
		t.Errorf("word ids %v, want %v", e.WordIDs, want)
	}
	// 3 + 3 pieces in a budget of 7-3 = 4: 2 and 2.
	e = tk.EncodePair("a bb", "c, a", 7)
	if want := []int32{2, 5, 6, 3, 8, 1, 3}; !reflect.DeepEqual(e.IDs, want) {
		t.Errorf("truncated ids %v, want %v", e.IDs, want)
	}
}

func TestEncodeBatch(t *testing.T) {
	tk, _ := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##b", "c"}, true)
	rng := rand.New(rand.NewPCG(1, 1))
	texts := make([]string, 101)
	for i := range texts {
		var b strings.Builder
		for range rng.IntN(20) {
			b.WriteString([]string{"a ", "bb ", "c", "x", ", "}[rng.IntN(5)])
		}
		texts[i] = b.String()
	}
	got := tk.EncodeBatch(texts, 8)
	for i, s := range texts {
		if want := tk.Encode(s, 8); !reflect.DeepEqual(got[i], want) {
			t.Fatalf("batch[%d] = %v, want %v", i, got[i], want)
		}
	}
	if len(tk.EncodeBatch(nil, 8)) != 0 {
		t.Error("empty batch")
	}
}

func TestFromVocabErrors(t *testing.T) {
	for name, v := range map[string][]string{
		"missing mask": {"[PAD]", "[UNK]", "[CLS]", "[SEP]"},
		"duplicate":    {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"},
		"empty token":  {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ""},
		"empty":        nil,
	} {
		if _, err := FromVocab(v, true); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAccessors(t *testing.T) {
	tk, _ := FromVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"}, true)
	if id, ok := tk.ID("a"); !ok || id != 5 || tk.Token(5) != "a" || tk.Token(6) != "" || tk.Token(-1) != "" {
		t.Errorf("ID/Token wrong: %d %v", id, ok)
	}
	if _, ok := tk.ID("zz"); ok {
		t.Error("ID(zz) found")
	}
	v := tk.Vocab()
	v[5] = "changed"
	if tk.Token(5) != "a" {
		t.Error("Vocab returned the internal slice")
	}
	for id := int32(0); id < 6; id++ {
		if tk.IsSpecial(id) != (id < 5) {
			t.Errorf("IsSpecial(%d) = %v", id, tk.IsSpecial(id))
		}
	}
}

// TestSaveMatchesOracle loads the oracle's tokenizer, saves it and compares
// the written JSON files with the oracle's (as parsed JSON: the same
// documents, whatever the formatting), and checks Load(Save(t)) == t.
func TestSaveMatchesOracle(t *testing.T) {
	needOracle(t)
	tk, err := Load(oracleModel)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tk.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		var want, got any
		readJSON(t, filepath.Join(oracleModel, f), &want)
		readJSON(t, filepath.Join(dir, f), &got)
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Errorf("%s differs from the oracle's:\n got %.400s\nwant %.400s", f, gb, wb)
		}
	}
	a, _ := os.ReadFile(filepath.Join(oracleModel, "vocab.txt"))
	b, _ := os.ReadFile(filepath.Join(dir, "vocab.txt"))
	if string(a) != string(b) {
		t.Error("vocab.txt differs from the oracle's")
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Vocab(), tk.Vocab()) || back.MaxLen() != tk.MaxLen() || back.norm != tk.norm {
		t.Error("Load(Save(t)) differs from t")
	}
	// A cased tokenizer with explicit strip_accents survives the trip too.
	cased, _ := FromVocab(tk.Vocab(), false)
	cased.norm.stripAccents = true
	d2 := t.TempDir()
	if err := cased.WithMaxLen(64).Save(d2); err != nil {
		t.Fatal(err)
	}
	back, err = Load(d2)
	if err != nil {
		t.Fatal(err)
	}
	if back.norm != cased.norm || back.MaxLen() != 64 {
		t.Errorf("cased round trip: %+v maxLen %d, want %+v 64", back.norm, back.MaxLen(), cased.norm)
	}
	os.Remove(filepath.Join(d2, "tokenizer.json")) // vocab.txt + config path
	back, err = Load(d2)
	if err != nil || back.norm != cased.norm || back.MaxLen() != 64 {
		t.Errorf("cased round trip via vocab.txt: %+v %v", back, err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "vocab.txt") {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"BPE"}}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "BPE") {
		t.Errorf("BPE model: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"type":"WordPiece","vocab":{"[PAD]":0,"[UNK]":5}}}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "dense") {
		t.Errorf("sparse ids: %v", err)
	}
	os.Remove(filepath.Join(dir, "tokenizer.json"))
	os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte("[PAD]\n\n[UNK]\n"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), ":2: empty token") {
		t.Errorf("blank line: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nok"), 0o644)
	if tk, err := Load(dir); err != nil || tk.VocabSize() != 6 || tk.Token(5) != "ok" {
		t.Errorf("CRLF vocab without final newline: %v", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
