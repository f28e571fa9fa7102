package index

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

type testDoc struct {
	id  string
	vec []TermWeight
}

// randomCorpus draws n docs over v terms; term popularity is skewed so
// that some terms are dense (bitmap containers when n > 65536·(4096/65536)).
func randomCorpus(rng *rand.Rand, n, v, maxLen int) []testDoc {
	docs := make([]testDoc, n)
	for d := range docs {
		l := rng.IntN(maxLen + 1)
		seen := map[uint32]bool{}
		var vec []TermWeight
		for len(vec) < l {
			t := uint32(float64(v) * rng.Float64() * rng.Float64() * rng.Float64())
			if seen[t] {
				continue
			}
			seen[t] = true
			w := float32(rng.ExpFloat64())
			if rng.IntN(10) == 0 {
				w = float32(rng.IntN(4)) // coarse weights make ties
			}
			vec = append(vec, TermWeight{Term: t, Weight: w})
		}
		docs[d] = testDoc{id: fmt.Sprintf("doc%d", d), vec: vec}
	}
	return docs
}

func buildTest(t testing.TB, docs []testDoc, opts Options) *Reader {
	t.Helper()
	b, err := NewBuilder(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if _, err := b.Add(d.id, d.vec); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

// bruteForce scores every document from the source vectors, quantised
// with the index's scale, and returns the top k (score desc, doc asc).
func bruteForce(r *Reader, docs []testDoc, pq *Query, k int) []Hit {
	m := r.Meta()
	q := map[uint32]uint64{}
	for _, qt := range pq.terms {
		q[qt.term] = qt.q
	}
	var all []Hit
	for d, doc := range docs {
		var s uint64
		for _, tw := range doc.vec {
			if tw.Weight <= 0 {
				continue
			}
			imp, _ := quantize(tw.Weight, m.Scale, m.maxImpact())
			s += q[tw.Term] * uint64(imp)
		}
		if s > 0 {
			all = append(all, Hit{Doc: uint32(d), Raw: s})
		}
	}
	slices.SortFunc(all, func(a, b Hit) int {
		if a.Raw != b.Raw {
			if a.Raw > b.Raw {
				return -1
			}
			return 1
		}
		return int(a.Doc) - int(b.Doc)
	})
	if len(all) > k {
		all = all[:k]
	}
	return all
}

func randomQuery(rng *rand.Rand, v, n int) []TermWeight {
	var q []TermWeight
	for range n {
		t := uint32(float64(v) * rng.Float64() * rng.Float64())
		w := float32(rng.ExpFloat64() * rng.ExpFloat64())
		if rng.IntN(8) == 0 {
			w = 1
		}
		q = append(q, TermWeight{Term: t, Weight: w}) // duplicates allowed: summed
	}
	return q
}

func sameHits(a, b []Hit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Doc != b[i].Doc || a[i].Raw != b[i].Raw {
			return false
		}
	}
	return true
}

// TestSearchMatchesBruteForce: every algorithm equals brute-force scoring
// of every document, for random corpora (sizes across container and block
// boundaries, 8- and 16-bit impacts, odd block sizes) and random queries.
func TestSearchMatchesBruteForce(t *testing.T) {
	type cfg struct {
		n, v, maxLen, bits, block int
	}
	cfgs := []cfg{
		{1, 5, 3, 8, 64}, {50, 20, 6, 8, 7}, {700, 300, 20, 8, 64}, {2000, 50, 10, 4, 1},
		{3000, 1000, 40, 16, 100}, {3000, 300, 30, 8, 8}, {70000, 200, 6, 8, 8}, {140000, 60, 4, 12, 4096},
	}
	if testing.Short() {
		cfgs = cfgs[:6]
	}
	for ci, c := range cfgs {
		t.Run(fmt.Sprintf("docs=%d/terms=%d/bits=%d/block=%d", c.n, c.v, c.bits, c.block), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 7))
			docs := randomCorpus(rng, c.n, c.v, c.maxLen)
			r := buildTest(t, docs, Options{QuantBits: c.bits, BlockSize: c.block, NumTerms: c.v})
			for qi := range 40 {
				q := randomQuery(rng, c.v, 1+rng.IntN(30))
				k := []int{1, 3, 10, 100, 1000}[qi%5]
				pq, err := r.Prepare(q)
				if err != nil {
					t.Fatal(err)
				}
				want := bruteForce(r, docs, pq, k)
				for _, alg := range Algorithms {
					got, err := r.SearchPrepared(pq, k, alg)
					if err != nil {
						t.Fatal(err)
					}
					if !sameHits(got, want) {
						t.Fatalf("query %d k=%d %v:\n got %v\nwant %v\nquery %v", qi, k, alg, head(got), head(want), q)
					}
				}
			}
		})
	}
}

func head(h []Hit) []Hit {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// TestSearchTies: many equal scores; the smaller doc number must win.
func TestSearchTies(t *testing.T) {
	var docs []testDoc
	for d := range 500 {
		docs = append(docs, testDoc{fmt.Sprint(d), []TermWeight{{Term: uint32(d % 3), Weight: 1}, {Term: 3, Weight: float32(d%2) + 1}}})
	}
	r := buildTest(t, docs, Options{BlockSize: 16})
	q := []TermWeight{{Term: 0, Weight: 1}, {Term: 3, Weight: 1}}
	for _, alg := range Algorithms {
		got, err := r.Search(q, 5, alg)
		if err != nil {
			t.Fatal(err)
		}
		// Best: doc%3==0 and odd (weights 1+2): 3, 9, 15, 21, 27.
		var docsGot []uint32
		for _, h := range got {
			docsGot = append(docsGot, h.Doc)
		}
		if want := []uint32{3, 9, 15, 21, 27}; !slices.Equal(docsGot, want) {
			t.Errorf("%v: docs %v, want %v", alg, docsGot, want)
		}
		if got[0].Score < 2.99 || got[0].Score > 3.01 {
			t.Errorf("%v: score %v, want ≈3", alg, got[0].Score)
		}
	}
}

func TestSearchConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	docs := randomCorpus(rng, 3000, 400, 30)
	r := buildTest(t, docs, Options{BlockSize: 32})
	var qs [][]TermWeight
	var want [][]Hit
	for range 20 {
		q := randomQuery(rng, 400, 20)
		pq, _ := r.Prepare(q)
		qs = append(qs, q)
		want = append(want, bruteForce(r, docs, pq, 10))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				qi := (i + g) % len(qs)
				got, err := r.Search(qs[qi], 10, Algorithms[i%3])
				if err != nil || !sameHits(got, want[qi]) {
					errs <- fmt.Errorf("goroutine %d query %d: %v %v", g, qi, err, head(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestBuilderErrors(t *testing.T) {
	b, err := NewBuilder(Options{NumTerms: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add("a", []TermWeight{{Term: 1, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		vec  []TermWeight
		want string
	}{
		{"a", nil, "duplicate id"},
		{"", nil, "id empty"},
		{"b", []TermWeight{{Term: 4, Weight: 1}}, "outside vocabulary"},
		{"c", []TermWeight{{Term: 1, Weight: 1}, {Term: 1, Weight: 2}}, "twice"},
	} {
		if _, err := b.Add(c.id, c.vec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%q, %v) = %v, want error containing %q", c.id, c.vec, err, c.want)
		}
	}
	if b.NumDocs() != 1 {
		t.Errorf("NumDocs = %d after rejected adds, want 1", b.NumDocs())
	}
}

func workedExample(t testing.TB) []byte {
	b, err := NewBuilder(Options{Vocab: []string{"a", "b", "c", "d"}, BlockSize: 2, Fingerprint: "ex"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []testDoc{
		{"d0", []TermWeight{{Term: 1, Weight: 1.0}, {Term: 3, Weight: 0.5}}},
		{"d1", []TermWeight{{Term: 1, Weight: 2.0}}},
		{"d2", []TermWeight{{Term: 0, Weight: 0.25}, {Term: 3, Weight: 2.0}}},
	} {
		if _, err := b.Add(d.id, d.vec); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "ex")
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestWorkedExample pins the bytes of the example in docs/format/index.md.
func TestWorkedExample(t *testing.T) {
	data := workedExample(t)
	golden := filepath.Join("testdata", "worked_example.hex")
	dump := hex.Dump(data)
	if *update {
		if err := os.WriteFile(golden, []byte(dump), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if dump != string(want) {
		os.WriteFile(golden+".got", []byte(dump), 0o644)
		t.Fatalf("index bytes differ from %s (see %s.got; -update rewrites)", golden, golden)
	}
	r, err := OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	// The values the format document states.
	sizes := map[string]uint64{}
	for _, s := range r.Sections() {
		sizes[s.Tag] = s.Length
	}
	for tag, n := range map[string]uint64{"TERM": 128, "DOCS": 58, "IMPS": 10, "RMAX": 4, "DIDS": 38, "VOCB": 28} {
		if sizes[tag] != n {
			t.Errorf("section %s: %d bytes, document says %d", tag, sizes[tag], n)
		}
	}
	if got := r.sec[secRmax]; !bytes.Equal(got, []byte{0xff, 0x00, 0x40, 0xff}) {
		t.Errorf("RMAX = % x", got)
	}
	ti := r.termInfo(1)
	wantD := []byte{0x3a, 0x30, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 16, 0, 0, 0, 0, 0, 1, 0}
	if got := r.bitmap(ti); !bytes.Equal(got, wantD) {
		t.Errorf("roaring bitmap of b = % x, want % x", got, wantD)
	}
	wantI := []byte{0x80, 7, 0x80, 0x3f}
	if got := r.impLayout(ti).b; !bytes.Equal(got, wantI) {
		t.Errorf("impacts of b = % x, want % x", got, wantI)
	}
	for term, want := range map[uint32][]byte{0: {0x20, 0}, 2: {}, 3: {0x40, 8, 0, 0xbf}} {
		if got := r.impLayout(r.termInfo(term)).b; !bytes.Equal(got, want) {
			t.Errorf("impacts of term %d = % x, want % x", term, got, want)
		}
	}
	if tok, _ := r.Token(3); tok != "d" || r.DocID(2) != "d2" {
		t.Errorf("Token(3) = %q, DocID(2) = %q", tok, r.DocID(2))
	}
	hits, err := r.Search([]TermWeight{{Term: 3, Weight: 1}, {Term: 1, Weight: 0.5}}, 10, BlockMax)
	if err != nil {
		t.Fatal(err)
	}
	// d2: 255·65535; d0: 64·65535 + 128·32768; d1: 255·32768.
	wantH := []Hit{{Doc: 2, Raw: 255 * 65535}, {Doc: 0, Raw: 64*65535 + 128*32768}, {Doc: 1, Raw: 255 * 32768}}
	if !sameHits(hits, wantH) {
		t.Errorf("hits %v, want %v", hits, wantH)
	}
}

// TestValidateDetectsCorruption flips a byte in every section and
// truncates the file: Open or Validate must fail, naming the section.
func TestValidateDetectsCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	docs := randomCorpus(rng, 300, 50, 10)
	r := buildTest(t, docs, Options{BlockSize: 16, Vocab: vocab(50)})
	data := slices.Clone(r.data)
	check := func(name string, bad []byte, wantSec string) {
		t.Helper()
		r2, err := OpenBytes(bad)
		if err == nil {
			err = r2.Validate()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
		var se *SectionError
		if !errors.As(err, &se) || (wantSec != "" && se.Section != wantSec) {
			t.Errorf("%s: error %v, want one naming section %s", name, err, wantSec)
		}
	}
	for _, s := range r.Sections() {
		for _, at := range []uint64{0, s.Length / 2, s.Length - 1} {
			bad := slices.Clone(data)
			bad[s.Offset+at] ^= 0x5a
			check(fmt.Sprintf("flip %s+%d", s.Tag, at), bad, "")
		}
		// CRC-only detection names the section itself: flip a byte and
		// check that some error names s.Tag when structure survives.
		bad := slices.Clone(data)
		bad[s.Offset+s.Length-1] ^= 0x01
		if r2, err := OpenBytes(bad); err == nil {
			err = r2.Validate()
			var se *SectionError
			if !errors.As(err, &se) || se.Section != s.Tag {
				t.Errorf("flip last byte of %s: error %v, want section %s", s.Tag, err, s.Tag)
			}
		}
	}
	for _, n := range []int{0, 7, 15, 100, len(data) / 2, len(data) - 1} {
		check(fmt.Sprintf("truncate to %d", n), data[:n], "")
	}
	bad := slices.Clone(data)
	bad[20] ^= 1 // TOC
	check("flip TOC", bad, "header")
}

func vocab(n int) []string {
	v := make([]string, n)
	for i := range v {
		v[i] = fmt.Sprintf("tok%d", i)
	}
	return v
}

// FuzzOpen: any input ends in an error or in an index that passes
// Validate and answers queries; never a panic.
func FuzzOpen(f *testing.F) {
	f.Add(workedExample(f))
	rng := rand.New(rand.NewPCG(5, 5))
	r := buildTest(f, randomCorpus(rng, 100, 30, 8), Options{BlockSize: 8})
	f.Add(slices.Clone(r.data))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := OpenBytes(data)
		if err != nil {
			return
		}
		r.DocID(0)
		r.Token(0)
		q := []TermWeight{{Term: 0, Weight: 1}, {Term: 1, Weight: 0.5}, {Term: 2, Weight: 2}}
		if r.NumTerms() < 3 {
			q = q[:r.NumTerms()]
		}
		hits := make([][]Hit, len(Algorithms))
		for i, alg := range Algorithms {
			hits[i], _ = r.Search(q, 5, alg) // corrupt postings may give an error, never a panic
		}
		if err := r.Validate(); err != nil {
			return
		}
		for i := range hits {
			if !sameHits(hits[i], hits[0]) {
				t.Fatalf("valid index: %v gives %v, exhaustive %v", Algorithms[i], hits[i], hits[0])
			}
		}
	})
}

// TestFullContainer is the frozen failure of the first 100k-document
// benchmark of format 1 (roaring bitmaps: a full 65536-doc container,
// which the roaring library would write as a run container): a term in
// every document beside a sparser one.
func TestFullContainer(t *testing.T) {
	var docs []testDoc
	for d := range 70000 {
		vec := []TermWeight{{Term: 0, Weight: 1}}
		if d%5 == 0 {
			vec = append(vec, TermWeight{Term: 1, Weight: float32(d%7) + 1})
		}
		docs = append(docs, testDoc{strconv.Itoa(d), vec})
	}
	r := buildTest(t, docs, Options{}) // buildTest validates with the roaring library too
	if df, _ := r.TermStats(0); df != 70000 {
		t.Fatalf("df = %d, want 70000", df)
	}
	q := []TermWeight{{Term: 0, Weight: 0.1}, {Term: 1, Weight: 1}}
	pq, _ := r.Prepare(q)
	want := bruteForce(r, docs, pq, 20)
	for _, alg := range Algorithms {
		if got, _ := r.SearchPrepared(pq, 20, alg); !sameHits(got, want) {
			t.Errorf("%v: %v, want %v", alg, head(got), head(want))
		}
	}
}

// TestBlockMaxPrunes: on a collection whose terms cluster by doc range
// (block j's documents use terms 3j..3j+2 plus one term common to all),
// a query on one block's terms scores only blocks whose bound can beat
// the k-th score — here just that block — and still equals brute force.
// (BlockMax scores a first batch of up to 4·(32 + k/2) blocks of the
// highest bounds before it has a threshold, so the collection has more
// blocks than that.)
func TestBlockMaxPrunes(t *testing.T) {
	const R, blocks = 16, 400
	var docs []testDoc
	for d := range R * blocks {
		j := uint32(d / R)
		vec := []TermWeight{{Term: 0, Weight: 0.1}, {Term: 1 + 3*j + uint32(d%3), Weight: 1 + float32(d%5)}}
		docs = append(docs, testDoc{strconv.Itoa(d), vec})
	}
	r := buildTest(t, docs, Options{BlockSize: R})
	q := []TermWeight{{Term: 0, Weight: 1}, {Term: 1 + 3*7, Weight: 1}, {Term: 1 + 3*7 + 1, Weight: 1}, {Term: 1 + 3*7 + 2, Weight: 1}}
	scored, candidates, _ := BlockStats(r, q, 5)
	if candidates != blocks || scored != 1 {
		t.Errorf("scored %d of %d candidate blocks, want 1 of %d", scored, candidates, blocks)
	}
	pq, _ := r.Prepare(q)
	if got, want := head(mustSearch(t, r, pq, 5, BlockMax)), head(bruteForce(r, docs, pq, 5)); !sameHits(got, want) {
		t.Errorf("blockmax %v, brute force %v", got, want)
	}
}

func mustSearch(t *testing.T, r *Reader, pq *Query, k int, alg Algorithm) []Hit {
	t.Helper()
	h, err := r.SearchPrepared(pq, k, alg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAutoResolves: Auto is BlockMax below k = N/AutoTAATRatio and TAAT
// from there; the other algorithms resolve to themselves.
func TestAutoResolves(t *testing.T) {
	b, err := NewBuilder(Options{NumTerms: 4})
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * AutoTAATRatio
	for i := range n {
		if _, err := b.Add(fmt.Sprint(i), []TermWeight{{Term: uint32(i % 4), Weight: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, c := range []struct {
		k    int
		want Algorithm
	}{{1, BlockMax}, {2, BlockMax}, {3, TAAT}, {1000, TAAT}} {
		if got := r.Resolve(Auto, c.k); got != c.want {
			t.Errorf("N=%d k=%d: auto runs %v, want %v", n, c.k, got, c.want)
		}
	}
	for _, a := range []Algorithm{Exhaustive, MaxScore, BlockMax, TAAT} {
		if got := r.Resolve(a, 1000); got != a {
			t.Errorf("%v resolves to %v", a, got)
		}
	}
	if a, err := ParseAlgorithm("auto"); err != nil || a != Auto || a.String() != "auto" {
		t.Errorf("ParseAlgorithm(auto) = %v, %v", a, err)
	}
}
