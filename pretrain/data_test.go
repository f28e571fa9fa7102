package pretrain

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spladapt/spladapt/tokenize"
)

var dataTestVocab = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"the", "cat", "sat", "on", "mat", "dog", "run", "##s", "##ning", ".", ","}

// writeJSONL writes docs as a BEIR-style corpus.jsonl file.
func writeJSONL(t *testing.T, path string, docs []string) {
	t.Helper()
	var b strings.Builder
	for i, d := range docs {
		line, _ := json.Marshal(map[string]string{"_id": fmt.Sprint("d", i), "title": "", "text": d})
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomDocs(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 2))
	words := []string{"the", "cat", "cats", "sat", "on", "mat", "dog", "dogs", "running", "runs", "zebra", ".", ","}
	docs := make([]string, n)
	for i := range docs {
		var b strings.Builder
		for range rng.IntN(30) {
			b.WriteString(words[rng.IntN(len(words))] + " ")
		}
		docs[i] = b.String()
	}
	return docs
}

func TestTokenizeCorpusAndCache(t *testing.T) {
	tok, err := tokenize.FromVocab(dataTestVocab, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	docsA, docsB := randomDocs(700, 1), randomDocs(50, 2) // > one 512-doc batch
	writeJSONL(t, a, docsA)
	writeJSONL(t, b, docsB)
	cache := filepath.Join(dir, "cache")
	ctx := context.Background()
	opts := DataOptions{Progress: "off"}

	s, err := TokenizeCorpus(ctx, []string{a, b}, tok, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reused {
		t.Error("first run reports a reused cache")
	}
	// Oracle: every document encoded on its own.
	all := append(slices.Clone(docsA), docsB...)
	if s.Docs() != len(all) {
		t.Fatalf("%d docs, want %d", s.Docs(), len(all))
	}
	for d, text := range all {
		e := tok.Encode(text, 0)
		want := e.IDs[1 : len(e.IDs)-1]
		got := s.IDs[s.DocStart[d]:s.DocStart[d+1]]
		if !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("doc %d: %v, want %v", d, got, want)
		}
		for i := range got {
			wantStart := i == 0 || e.WordIDs[i+1] != e.WordIDs[i]
			if s.WordStart[int(s.DocStart[d])+i] != wantStart {
				t.Fatalf("doc %d token %d: word start %v, want %v", d, i, !wantStart, wantStart)
			}
		}
	}
	// "runs" → run ##s: the piece is not a word start.
	if !slices.Contains(s.WordStart, false) {
		t.Error("no continuation pieces in the stream")
	}

	// Second run: from the cache, identical.
	s2, err := TokenizeCorpus(ctx, []string{a, b}, tok, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Reused || s2.CachePath != s.CachePath {
		t.Errorf("second run: Reused=%v path %q, want reuse of %q", s2.Reused, s2.CachePath, s.CachePath)
	}
	if !reflect.DeepEqual(s2.IDs, s.IDs) || !reflect.DeepEqual(s2.WordStart, s.WordStart) || !reflect.DeepEqual(s2.DocStart, s.DocStart) || s2.VocabSize != s.VocabSize {
		t.Error("cached stream differs from the tokenised one")
	}

	// Other order of the corpora, other tokenizer, or a changed file: new key.
	s3, _ := TokenizeCorpus(ctx, []string{b, a}, tok, cache, opts)
	cased, _ := tokenize.FromVocab(dataTestVocab, false)
	s4, _ := TokenizeCorpus(ctx, []string{a, b}, cased, cache, opts)
	if s3.Reused || s4.Reused {
		t.Errorf("reused a cache for other inputs: order %v, tokenizer %v", s3.Reused, s4.Reused)
	}
	writeJSONL(t, b, docsB[:49])
	os.Chtimes(b, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	s5, err := TokenizeCorpus(ctx, []string{a, b}, tok, cache, opts)
	if err != nil || s5.Reused || s5.Docs() != len(all)-1 {
		t.Errorf("after editing a corpus: Reused=%v docs %d err %v, want a fresh run of %d docs", s5.Reused, s5.Docs(), err, len(all)-1)
	}

	// A corrupt cache file is ignored and rewritten.
	raw, _ := os.ReadFile(s5.CachePath)
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(s5.CachePath, raw, 0o644)
	s6, err := TokenizeCorpus(ctx, []string{a, b}, tok, cache, opts)
	if err != nil || s6.Reused || !reflect.DeepEqual(s6.IDs, s5.IDs) {
		t.Errorf("corrupt cache: Reused=%v err %v", s6.Reused, err)
	}
	s7, _ := TokenizeCorpus(ctx, []string{a, b}, tok, cache, opts)
	if !s7.Reused {
		t.Error("rewritten cache not reused")
	}

	// No cache directory: always tokenise.
	s8, err := TokenizeCorpus(ctx, []string{a}, tok, "", opts)
	if err != nil || s8.Reused || s8.CachePath != "" || s8.Docs() != len(docsA) {
		t.Errorf("without cache: %v %v %q", err, s8.Reused, s8.CachePath)
	}
	if _, err := TokenizeCorpus(ctx, []string{filepath.Join(dir, "missing.jsonl")}, tok, cache, opts); err == nil {
		t.Error("missing corpus: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := TokenizeCorpus(cctx, []string{a}, tok, "", opts); err == nil {
		t.Error("cancelled context: no error")
	}
}

// TestCacheWide covers 4-byte ids (vocabulary above 65536).
func TestCacheWide(t *testing.T) {
	s := &TokenStream{IDs: []int32{0, 70000, 5, 99999}, WordStart: []bool{true, false, true, true}, DocStart: []int64{0, 1, 1, 4}, VocabSize: 100000}
	path := filepath.Join(t.TempDir(), "c.bin")
	var key [32]byte
	key[0] = 7
	if err := writeCache(path, key, s); err != nil {
		t.Fatal(err)
	}
	got, err := readCache(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.IDs, s.IDs) || !reflect.DeepEqual(got.WordStart, s.WordStart) || !reflect.DeepEqual(got.DocStart, s.DocStart) {
		t.Errorf("wide cache round trip: %+v", got)
	}
	key[0] = 8
	if _, err := readCache(path, key); err == nil {
		t.Error("other key accepted")
	}
	raw, _ := os.ReadFile(path)
	for _, cut := range []int{0, 10, len(raw) - 1} {
		os.WriteFile(path, raw[:cut], 0o644)
		key[0] = 7
		if _, err := readCache(path, key); err == nil {
			t.Errorf("truncated to %d: accepted", cut)
		}
	}
}

func TestPack(t *testing.T) {
	s := &TokenStream{
		IDs:       []int32{10, 11, 12, 20, 30, 31, 32, 33, 34},
		WordStart: []bool{true, false, true, true, true, true, false, false, true},
		DocStart:  []int64{0, 3, 4, 4, 9}, // doc 2 is empty
	}
	p, err := Pack(s, 4, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	// flat: 10 11 12 3 20 3 30 31 32 33 34 3 (12 tokens) → 4 chunks of 3.
	want := [][]int32{{2, 10, 11, 12}, {2, 3, 20, 3}, {2, 30, 31, 32}, {2, 33, 34, 3}}
	if p.Len() != len(want) {
		t.Fatalf("Len %d, want %d", p.Len(), len(want))
	}
	for i, w := range want {
		ids, ws := p.Seq(i)
		if !reflect.DeepEqual(ids, w) {
			t.Errorf("seq %d: %v, want %v", i, ids, w)
		}
		if !ws[0] {
			t.Errorf("seq %d: [CLS] not a word start", i)
		}
	}
	_, ws := p.Seq(3)
	if want := []bool{true, false, true, true}; !reflect.DeepEqual(ws, want) {
		t.Errorf("word starts of seq 3: %v, want %v", ws, want)
	}
	// Property: sequences tile the flat stream; lengths are exact; the
	// dropped tail is shorter than T-1.
	docs := randomDocs(200, 5)
	tok, _ := tokenize.FromVocab(dataTestVocab, true)
	st := &TokenStream{DocStart: []int64{0}}
	for _, d := range docs {
		e := tok.Encode(d, 0)
		for i := 1; i < len(e.IDs)-1; i++ {
			st.IDs = append(st.IDs, e.IDs[i])
			st.WordStart = append(st.WordStart, true)
		}
		st.DocStart = append(st.DocStart, int64(len(st.IDs)))
	}
	nonEmpty := 0
	for d := range st.Docs() {
		if st.DocStart[d+1] > st.DocStart[d] {
			nonEmpty++
		}
	}
	for _, T := range []int{2, 3, 16, 128} {
		p, _ := Pack(st, T, 2, 3)
		total := len(st.IDs) + nonEmpty
		if p.Len() != total/(T-1) {
			t.Errorf("T=%d: %d sequences, want %d", T, p.Len(), total/(T-1))
		}
		var cat []int32
		for i := range p.Len() {
			ids, _ := p.Seq(i)
			if len(ids) != T || ids[0] != 2 {
				t.Fatalf("T=%d seq %d: %v", T, i, ids)
			}
			cat = append(cat, ids[1:]...)
		}
		var flat []int32
		for d := range st.Docs() {
			if a, b := st.DocStart[d], st.DocStart[d+1]; b > a {
				flat = append(append(flat, st.IDs[a:b]...), 3)
			}
		}
		if !reflect.DeepEqual(cat, flat[:len(cat)]) || len(flat)-len(cat) >= T-1 {
			t.Errorf("T=%d: sequences do not tile the stream (%d of %d tokens)", T, len(cat), len(flat))
		}
	}
	if _, err := Pack(st, 1, 2, 3); err == nil {
		t.Error("T=1: no error")
	}
}

func TestSplit(t *testing.T) {
	p := &Packed{T: 2, flat: make([]int32, 250)}
	train, held := p.Split(100)
	if !reflect.DeepEqual(held, []int{99, 199}) || len(train) != 248 {
		t.Errorf("held %v, %d train", held, len(train))
	}
	small := &Packed{T: 2, flat: make([]int32, 5)}
	train, held = small.Split(100)
	if !reflect.DeepEqual(held, []int{4}) || !reflect.DeepEqual(train, []int{0, 1, 2, 3}) {
		t.Errorf("small: train %v held %v", train, held)
	}
	train, held = small.Split(0)
	if len(held) != 0 || len(train) != 5 {
		t.Errorf("every=0: train %v held %v", train, held)
	}
}

func TestLoader(t *testing.T) {
	idx := make([]int, 103)
	for i := range idx {
		idx[i] = 1000 + i
	}
	l, err := NewLoader(idx, 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	if l.StepsPerEpoch() != 11 {
		t.Fatalf("StepsPerEpoch %d, want 11", l.StepsPerEpoch())
	}
	var pos Position
	var run [][]int
	epochs := map[int][]int{}
	for range 3 * 11 {
		e := pos.Epoch
		b := l.Next(&pos)
		run = append(run, b)
		epochs[e] = append(epochs[e], b...)
	}
	if pos != (Position{3, 0}) {
		t.Errorf("position after 3 epochs %+v", pos)
	}
	for e, seen := range epochs {
		s := slices.Sorted(slices.Values(seen))
		if !reflect.DeepEqual(s, idx) {
			t.Errorf("epoch %d does not visit every sequence once", e)
		}
	}
	if reflect.DeepEqual(epochs[0], epochs[1]) || reflect.DeepEqual(epochs[0], idx) {
		t.Error("epochs are not shuffled afresh")
	}
	if len(run[10]) != 3 {
		t.Errorf("last batch of an epoch has %d sequences, want 3", len(run[10]))
	}
	// Resume from a saved position in a new loader: identical batches.
	l2, _ := NewLoader(idx, 10, 5)
	pos2 := Position{Epoch: 1, Step: 4}
	for i := 11 + 4; i < len(run); i++ {
		if b := l2.Next(&pos2); !reflect.DeepEqual(b, run[i]) {
			t.Fatalf("resumed batch %d = %v, want %v", i, b, run[i])
		}
	}
	l3, _ := NewLoader(idx, 10, 6)
	if reflect.DeepEqual(l3.Batch(0, 0), run[0]) {
		t.Error("another seed gives the same order")
	}
	if _, err := NewLoader(nil, 10, 1); err == nil {
		t.Error("empty loader: no error")
	}
	if _, err := NewLoader(idx, 0, 1); err == nil {
		t.Error("batch 0: no error")
	}
}

// TestTokenizeTextDir reads a plain directory of text files, one document
// per file, in lexical order.
func TestTokenizeTextDir(t *testing.T) {
	tok, _ := tokenize.FromVocab(dataTestVocab, true)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("The cat sat on the mat."), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("Dogs\r\nrunning"), 0o644)
	s, err := TokenizeCorpus(context.Background(), []string{dir}, tok, t.TempDir(), DataOptions{Progress: "off"})
	if err != nil {
		t.Fatal(err)
	}
	// the cat sat on the mat . | dog ##s run ##ning
	want := []int32{5, 6, 7, 8, 5, 9, 14, 10, 12, 11, 13}
	if !reflect.DeepEqual(s.IDs, want) || !reflect.DeepEqual(s.DocStart, []int64{0, 7, 11}) {
		t.Errorf("ids %v docs %v, want %v [0 7 11]", s.IDs, s.DocStart, want)
	}
	if want := []bool{true, true, true, true, true, true, true, true, false, true, false}; !reflect.DeepEqual(s.WordStart, want) {
		t.Errorf("word starts %v, want %v", s.WordStart, want)
	}
}
