package adapt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/toyset"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

// Tests of EncodeCorpus and CheckIndex: splade's toy collection and tiny
// model (the same as splade's tests use) encoded into an index.

// The toy collection and tiny model of package toyset.
var toyDocs, toyQueries = toyset.Docs, toyset.Queries

func toyVocab() []string { return toyset.Vocab() }

func tinyModelDir(t testing.TB, seed uint64) string { return toyset.TinyModelDir(t, seed) }

// writeToyCorpus writes the toy documents as a BEIR corpus.jsonl (id
// order) with queries.jsonl and qrels/test.tsv, and returns the directory.
func writeToyCorpus(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	var c, q bytes.Buffer
	enc := json.NewEncoder(&c)
	for _, id := range slices.Sorted(maps.Keys(toyDocs)) {
		enc.Encode(map[string]string{"_id": id, "title": "", "text": toyDocs[id]})
	}
	qrels := "query-id\tcorpus-id\tscore\n"
	qe := json.NewEncoder(&q)
	for _, id := range slices.Sorted(maps.Keys(toyQueries)) {
		qe.Encode(map[string]string{"_id": id, "text": toyQueries[id].Text})
		qrels += id + "\t" + toyQueries[id].Pos + "\t1\n"
	}
	for name, data := range map[string]string{"corpus.jsonl": c.String(), "queries.jsonl": q.String(), "qrels/test.tsv": qrels, "qrels/train.tsv": qrels} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestEncodeCorpusSearch encodes the toy corpus into an index in shards of
// 3 and checks, for every toy query and for single-word queries, that the
// index's top hit is the brute-force best document over the encoded
// vectors; then the stats, the fingerprint and the vocabulary.
func TestEncodeCorpusSearch(t *testing.T) {
	dir, enc := toyEncoder(t, 21)
	corpus := writeToyCorpus(t)
	out := filepath.Join(t.TempDir(), "idx")
	fp := splade.Fingerprint(enc, dir)
	st, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{
		ShardSize: 3, Fingerprint: fp, Index: index.Options{QuantBits: 16},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Docs != 10 || st.Shards != 4 || st.EncodedDocs != 10 || st.ResumedShards != 0 || st.IndexBytes == 0 || st.EncodedTokens == 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Stat(out + ".work"); !os.IsNotExist(err) {
		t.Errorf("work directory left behind: %v", err)
	}
	r, err := index.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Meta().Fingerprint != fp || !r.HasVocab() || r.NumDocs() != 10 {
		t.Errorf("meta %+v", r.Meta())
	}
	if err := CheckIndex(enc, r); err != nil {
		t.Errorf("own index refused: %v", err)
	}
	ids := slices.Sorted(maps.Keys(toyDocs))
	var texts []string
	for _, id := range ids {
		texts = append(texts, toyDocs[id])
	}
	vecs, err := enc.EncodeDocs(texts)
	if err != nil {
		t.Fatal(err)
	}
	var postings int64
	for _, v := range vecs {
		postings += int64(len(v))
	}
	if postings != st.Postings || r.Meta().NumPostings != postings {
		t.Errorf("postings: %d encoded, stats %d, index %d", postings, st.Postings, r.Meta().NumPostings)
	}
	ix := sparse.NewExact(vecs, enc.VocabSize())
	queries := []string{}
	for _, q := range toyQueries {
		queries = append(queries, q.Text)
	}
	queries = append(queries, strings.Fields(toyDocs["star2"])...)
	for _, qt := range queries {
		q, err := enc.EncodeQuery(qt)
		if err != nil {
			t.Fatal(err)
		}
		want := ix.Search(q, 2)
		for _, alg := range []index.Algorithm{index.Exhaustive, index.MaxScore, index.BlockMax} {
			hits, err := r.Search(q, 1, alg)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				if len(hits) != 0 {
					t.Errorf("%q: %v hits, brute force none", qt, hits)
				}
				continue
			}
			// Quantisation (16 bits) may only swap documents whose exact
			// scores are within its error.
			if got := r.DocID(hits[0].Doc); got != ids[want[0].Doc] && !(len(want) > 1 && want[0].Score-want[1].Score < 1e-3*want[0].Score) {
				t.Errorf("%q (%v): index top hit %s, brute force %s (%v)", qt, alg, got, ids[want[0].Doc], want)
			}
		}
	}
}

// TestEncodeCorpusResume interrupts encoding after the first shard and
// checks that the next run encodes only the rest and writes the same index
// as an uninterrupted run; a changed setting in the same work directory is
// refused.
func TestEncodeCorpusResume(t *testing.T) {
	dir, enc := toyEncoder(t, 4)
	enc.BatchSize = 2
	corpus := writeToyCorpus(t)
	fp := splade.Fingerprint(enc, dir)
	tmp := t.TempDir()
	straight := filepath.Join(tmp, "straight")
	if _, err := EncodeCorpus(context.Background(), enc, corpus, straight, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "resumed")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := EncodeCorpus(ctx, enc, corpus, out, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp, Progress: func(n int) {
		if n >= 4 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out+".work", "shard-000000.bin")); err != nil {
		t.Fatalf("first shard not kept: %v", err)
	}
	enc.TopN = 3
	if _, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp}); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("changed top-n in the same work directory: %v", err)
	}
	enc.TopN = 0
	st, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	if st.ResumedShards != 1 || st.EncodedDocs != 6 || st.Shards != 3 {
		t.Errorf("resumed run: %+v", st)
	}
	a, _ := os.ReadFile(filepath.Join(straight, index.FileName))
	b, _ := os.ReadFile(filepath.Join(out, index.FileName))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("resumed index differs from the straight one (%d and %d bytes)", len(a), len(b))
	}
}

// TestCheckIndexVocabulary: an encoder with the same vocabulary but other
// weights is accepted; one with another vocabulary is refused, whether the
// index has a SPLADE fingerprint or only its vocabulary.
func TestCheckIndexVocabulary(t *testing.T) {
	dir, enc := toyEncoder(t, 2)
	corpus := writeToyCorpus(t)
	out := filepath.Join(t.TempDir(), "idx")
	if _, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{Fingerprint: splade.Fingerprint(enc, dir)}); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, err := splade.LoadEncoder(tinyModelDir(t, 99), 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIndex(other, r); err != nil {
		t.Errorf("same vocabulary, other weights: %v", err)
	}
	// Same size, two tokens swapped.
	v := toyVocab()
	v[10], v[11] = v[11], v[10]
	swapped := encoderWithVocab(t, v)
	if err := CheckIndex(swapped, r); err == nil || !strings.Contains(err.Error(), "another model") {
		t.Errorf("swapped vocabulary: %v", err)
	}
	grown := encoderWithVocab(t, append(toyVocab(), "extra"))
	if err := CheckIndex(grown, r); err == nil || !strings.Contains(err.Error(), "terms") {
		t.Errorf("larger vocabulary: %v", err)
	}
	// An index without fingerprint falls back to its vocabulary.
	b, _ := index.NewBuilder(index.Options{Vocab: toyVocab()})
	b.Add("d", []sparse.TermWeight{{Term: 6, Weight: 1}})
	plain := filepath.Join(t.TempDir(), "plain")
	if _, err := b.Write(plain); err != nil {
		t.Fatal(err)
	}
	pr, err := index.Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := CheckIndex(enc, pr); err != nil {
		t.Errorf("plain index with the same vocabulary: %v", err)
	}
	if err := CheckIndex(swapped, pr); err == nil || !strings.Contains(err.Error(), "another vocabulary") {
		t.Errorf("plain index, swapped vocabulary: %v", err)
	}
}

func encoderWithVocab(t *testing.T, vocab []string) *splade.Encoder {
	t.Helper()
	tok, err := tokenize.FromVocab(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.BERTConfig(len(vocab), 32, 2, 4, 64, 64), 1)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := splade.NewEncoder(m, tok, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestEncodeCorpusResumeChangedCorpus: issue 20. After an interrupted run,
// the first documents' texts change (same ids): the shards holding them
// are encoded again (the work records what each shard was made from),
// the others are resumed, a message says so, and the index is the one a
// straight run over the new corpus writes.
func TestEncodeCorpusResumeChangedCorpus(t *testing.T) {
	dir, enc := toyEncoder(t, 4)
	enc.BatchSize = 2
	corpus := writeToyCorpus(t)
	fp := splade.Fingerprint(enc, dir)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "resumed")
	if _, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp, KeepShards: true}); err != nil {
		t.Fatal(err)
	}
	// Same ids, other text for the first document (a new first line).
	path := filepath.Join(corpus, "corpus.jsonl")
	raw, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(raw), "\n")
	var d map[string]string
	json.Unmarshal([]byte(lines[0]), &d)
	d["text"] = "rivers and mountains of the north"
	first, _ := json.Marshal(d)
	lines[0] = string(first) + "\n"
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	st, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp,
		Log: func(s string) { msgs = append(msgs, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.ResumedShards != st.Shards-1 || st.EncodedDocs != 4 {
		t.Errorf("changed first shard: %+v, want it alone encoded again", st)
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "changed") {
		t.Errorf("no message about the changed corpus: %q", msgs)
	}
	straight := filepath.Join(tmp, "straight")
	if _, err := EncodeCorpus(context.Background(), enc, corpus, straight, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(straight, index.FileName))
	b, _ := os.ReadFile(filepath.Join(out, index.FileName))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("resumed index differs from a straight run over the new corpus (%d and %d bytes)", len(a), len(b))
	}
}

// A work directory that holds files encode did not write is refused: the
// work directory is removed at the end.
func TestEncodeCorpusForeignWorkDir(t *testing.T) {
	dir, enc := toyEncoder(t, 4)
	corpus := writeToyCorpus(t)
	work := t.TempDir()
	mine := filepath.Join(work, "notes.txt")
	os.WriteFile(mine, []byte("mine"), 0o644)
	_, err := EncodeCorpus(context.Background(), enc, corpus, filepath.Join(t.TempDir(), "idx"), EncodeCorpusOptions{ShardSize: 4, Fingerprint: splade.Fingerprint(enc, dir), WorkDir: work})
	if err == nil || !strings.Contains(err.Error(), work) {
		t.Errorf("foreign work directory: err = %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("file in the work directory deleted: %v", err)
	}
}

// TestEncodeCorpusShardSizeInvariant: issue 20 (the index depended on
// --shard-size: 90 325 dropped postings against 90 326). Shards change how
// documents are batched; a document padded to a longer batch partner's
// length got slightly different weights (the attention sums over the
// padded length in another order), and a weight near a quantisation
// step, or the largest weight that sets the scale, moved. Documents are
// now batched only with documents of their own length, so the index is
// the same byte for byte whatever the shard size and batch size — where
// the matrix products round a row the same whatever rows share them
// (nn.RowInvariantProducts). Where they do not (OpenBLAS on Zen 3, gonum),
// a weight can still differ in its last bit, so every posting must agree
// within one quantisation step and only postings of impact ≤ 1 may come or
// go.
func TestEncodeCorpusShardSizeInvariant(t *testing.T) {
	tok, err := tokenize.FromVocab(toyVocab(), true)
	if err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	// Head size 16: the fused attention kernel's shapes.
	m, err := nn.NewModel(nn.BERTConfig(tok.VocabSize(), 64, 2, 4, 256, 128), 3)
	if err != nil {
		t.Fatal(err)
	}
	m.TokenizerDir = tokDir
	mdir := filepath.Join(t.TempDir(), "model")
	if err := m.SaveHF(mdir, nil); err != nil {
		t.Fatal(err)
	}
	enc, err := splade.LoadEncoder(mdir, 100, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for _, w := range toyVocab() {
		if !strings.HasPrefix(w, "[") && !strings.HasPrefix(w, "#") {
			words = append(words, w)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var c bytes.Buffer
	je := json.NewEncoder(&c)
	for i := 0; i < 80; i++ {
		ws := make([]string, 3+rng.IntN(70))
		for j := range ws {
			ws[j] = words[rng.IntN(len(words))]
		}
		je.Encode(map[string]string{"_id": fmt.Sprintf("d%02d", i), "text": strings.Join(ws, " ")})
	}
	corpus := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(corpus, c.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fp := splade.Fingerprint(enc, mdir)
	exact := nn.RowInvariantProducts()
	var first []byte
	var firstPost map[string]int
	for _, c := range []struct{ shard, batch int }{{80, 32}, {7, 32}, {80, 5}, {13, 1}} {
		enc.BatchSize = c.batch
		out := filepath.Join(t.TempDir(), "idx")
		if _, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{ShardSize: c.shard, Fingerprint: fp}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(out, index.FileName))
		post := indexPostings(t, out)
		if first == nil {
			first, firstPost = got, post
			continue
		}
		if exact && !bytes.Equal(got, first) {
			t.Errorf("shard size %d, batch size %d: index differs from shard size 80, batch size 32", c.shard, c.batch)
		}
		if bad := postingsApart(firstPost, post); bad != "" {
			t.Errorf("shard size %d, batch size %d: %s (against shard size 80, batch size 32)", c.shard, c.batch, bad)
		}
	}
}

// indexPostings reads every posting of the index in dir as "doc id, term"
// → quantised impact.
func indexPostings(t *testing.T, dir string) map[string]int {
	t.Helper()
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]int{}
	var docs []uint32
	var imps []uint16
	for term := range uint32(r.NumTerms()) {
		if docs, imps, err = r.Postings(term, docs[:0], imps[:0]); err != nil {
			t.Fatal(err)
		}
		for i, d := range docs {
			out[fmt.Sprintf("%s/%d", r.DocID(d), term)] = int(imps[i])
		}
	}
	return out
}

// postingsApart describes the first posting on which a and b differ by
// more than one quantisation step (a missing posting counts as impact 0),
// or returns "".
func postingsApart(a, b map[string]int) string {
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if d := a[k] - b[k]; d > 1 || d < -1 {
			return fmt.Sprintf("posting %s has impact %d, not %d", k, b[k], a[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok && b[k] > 1 {
			return fmt.Sprintf("posting %s (impact %d) is new", k, b[k])
		}
	}
	return ""
}

// TestEncodeCorpusWritesIDF: an inference-free encoder's index holds the
// corpus's IDF as splade.IDFFile (what splade.QueriesFor reads in corpus
// mode), equal to splade.ComputeIDF over the corpus; a two-sided
// encoder's index has no such file.
func TestEncodeCorpusWritesIDF(t *testing.T) {
	dir, enc := toyEncoder(t, 21)
	corpus := writeToyCorpus(t)
	fp := splade.Fingerprint(enc, dir)
	twoSided := filepath.Join(t.TempDir(), "idx")
	if _, err := EncodeCorpus(context.Background(), enc, corpus, twoSided, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(twoSided, splade.IDFFile)); !os.IsNotExist(err) {
		t.Errorf("two-sided model's index holds %s (%v)", splade.IDFFile, err)
	}
	enc.QueryWeights = make([]float32, enc.Tok.VocabSize())
	out := filepath.Join(t.TempDir(), "idx")
	if _, err := EncodeCorpus(context.Background(), enc, corpus, out, EncodeCorpusOptions{ShardSize: 4, Fingerprint: fp}); err != nil {
		t.Fatal(err)
	}
	got, err := splade.ReadIDF(out, enc.Tok)
	if err != nil || got == nil {
		t.Fatalf("index %s: %v, %v", splade.IDFFile, got, err)
	}
	var docs []string
	for _, id := range slices.Sorted(maps.Keys(toyDocs)) {
		docs = append(docs, toyDocs[id])
	}
	want := splade.ComputeIDF(enc.Tok, docs, enc.MaxLen)
	for id := range want {
		if math.Abs(float64(got[id]-want[id])) > 1e-5 {
			t.Fatalf("idf of %q = %g, want %g", enc.Tok.Token(int32(id)), got[id], want[id])
		}
	}
}

// toyEncoder is the encoder of a tiny random model (tinyModelDir(t, seed)):
// documents at 16 tokens, queries at 8, no pruning. It returns the model's
// directory too.
func toyEncoder(t *testing.T, seed uint64) (string, *splade.Encoder) {
	t.Helper()
	dir := tinyModelDir(t, seed)
	enc, err := splade.LoadEncoder(dir, 16, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	return dir, enc
}
