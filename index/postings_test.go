package index

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomPostings draws increasing doc numbers below n with density p per
// 65536-doc range chosen so that both array and bitmap containers occur,
// and impacts in 1..maxImp (sometimes all equal within long runs, so
// 0-bit chunks occur).
func randomPostings(rng *rand.Rand, n int, maxImp int) ([]uint32, []uint16) {
	var docs []uint32
	var imps []uint16
	for key := 0; key<<16 < n; key++ {
		p := []float64{0, 0.001, 0.05, 0.08, 0.5, 1}[rng.IntN(6)]
		for lo := 0; lo < 1<<16 && key<<16|lo < n; lo++ {
			if rng.Float64() < p {
				docs = append(docs, uint32(key<<16|lo))
			}
		}
	}
	constant := rng.IntN(3) == 0
	for range docs {
		v := 1 + rng.IntN(maxImp)
		if constant {
			v = maxImp
		}
		imps = append(imps, uint16(v))
	}
	return docs, imps
}

// TestCursorMatchesDecode: on random terms with array and bitmap
// containers and 8- or 16-bit impacts, addAll, next, advance and seek
// (backward too) agree with the plain decoding of the roaring bitmap and
// the impacts.
func TestCursorMatchesDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	n := 300000
	if testing.Short() {
		n = 140000
	}
	kinds := map[bool]int{} // bitmap container? → count
	for trial := range 12 {
		bitsQ := []int{8, 16, 3}[trial%3]
		w := 1
		if bitsQ > 8 {
			w = 2
		}
		maxImp := 1<<bitsQ - 1
		docs, imps := randomPostings(rng, n, maxImp)
		if len(docs) == 0 {
			continue
		}
		bm := appendBitmap(nil, docs)
		for k := range int(bm[4]) {
			kinds[int(bm[10+4*k])|int(bm[11+4*k])<<8 >= arrayMaxCard]++
		}
		ib := appendImpacts(nil, imps, w)
		gotDocs, err := decodeBitmap(bm, len(docs), n)
		if err != nil || !slices.Equal(gotDocs, docs) {
			t.Fatalf("trial %d: decodeBitmap: %v", trial, err)
		}
		l := newImpLayout(ib, len(docs), w)
		off, err := l.check(bitsQ, nil)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		gotImps, err := decodeImpacts(l)
		if err != nil || !slices.Equal(gotImps, imps) {
			t.Fatalf("trial %d: decodeImpacts: %v", trial, err)
		}
		// at, by walking the headers and through the offset directory
		for _, dir := range [][]uint32{nil, off} {
			la := l
			la.off = dir
			for i, v := range imps {
				if got := la.at(i); got != uint64(v) {
					t.Fatalf("trial %d: at(%d) = %d, want %d (directory %v)", trial, i, got, v, dir != nil)
				}
			}
		}
		if trial%2 == 1 { // the cursor through the directory, as a Reader gives it
			l.off = off
		}
		var c cursor
		if trial%2 == 1 { // and ranks through a rank index, as a Reader's cursors
			c.rk = newRankIndex(len(bm))
			c.rk.add(bm, 0)
		}
		c.init(bm, l, len(docs))
		c.q = 3
		// next
		for i := range docs {
			if c.doc != docs[i] || c.impact() != uint64(imps[i]) {
				t.Fatalf("trial %d: posting %d: cursor (%d, %d), want (%d, %d)", trial, i, c.doc, c.impact(), docs[i], imps[i])
			}
			c.next()
		}
		if c.doc != endDoc {
			t.Fatalf("trial %d: cursor not exhausted: %d", trial, c.doc)
		}
		// addAll
		acc := make([]uint64, n)
		c.reset()
		addAll(&c, acc)
		want := make([]uint64, n)
		for i, d := range docs {
			want[d] = 3 * uint64(imps[i])
		}
		if !slices.Equal(acc, want) {
			t.Fatalf("trial %d: addAll differs from the decoded postings", trial)
		}
		acc32 := make([]uint32, n)
		c.reset()
		addAll(&c, acc32)
		for d, v := range acc32 {
			if uint64(v) != want[d] {
				t.Fatalf("trial %d: 32-bit addAll: doc %d has %d, want %d", trial, d, v, want[d])
			}
		}
		// advance forward, seek anywhere
		c.reset()
		target := uint32(0)
		for range 200 {
			target += uint32(rng.IntN(4000))
			c.advance(target)
			checkAt(t, &c, docs, imps, target)
		}
		for range 200 {
			target = uint32(rng.IntN(n + 10))
			c.seek(target)
			checkAt(t, &c, docs, imps, target)
		}
	}
	if kinds[false] == 0 || kinds[true] == 0 {
		t.Errorf("containers drawn: %d array, %d bitmap; want both kinds", kinds[false], kinds[true])
	}
}

func checkAt(t *testing.T, c *cursor, docs []uint32, imps []uint16, target uint32) {
	t.Helper()
	i, _ := slices.BinarySearch(docs, target)
	if i == len(docs) {
		if c.doc != endDoc {
			t.Fatalf("at %d: cursor on %d, want exhausted", target, c.doc)
		}
		return
	}
	if c.doc != docs[i] || c.impact() != uint64(imps[i]) {
		t.Fatalf("at %d: cursor (%d, %d), want (%d, %d)", target, c.doc, c.impact(), docs[i], imps[i])
	}
}

// TestDecodeImpactsStrict: the decoder rejects non-zero padding and frames
// other than the writer's (base below the smallest impact, width wider than
// needed, a base + value that wraps).
func TestDecodeImpactsStrict(t *testing.T) {
	good := appendImpacts(nil, []uint16{128, 255}, 1)
	if !bytes.Equal(good, []byte{0x80, 7, 0x80, 0x3f}) {
		t.Fatalf("encoding % x", good)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		w    int
		want string
	}{
		{"padding", []byte{0x80, 7, 0x80, 0x7f}, 1, "padding"},
		{"low base", []byte{0x7f, 7, 0x01, 0x3f}, 1, "frame"}, // 127+1, 127+126
		{"wide", []byte{0x80, 8, 0x00, 0x7f}, 1, "frame"},
		{"wrap", []byte{0xff, 0xff, 1, 0x03}, 2, "frame"}, // 65535 + 1 wraps to 0
	} {
		l := newImpLayout(tc.b, 2, tc.w)
		if _, err := l.check(16, nil); err != nil {
			t.Errorf("%s: check: %v", tc.name, err)
			continue
		}
		if _, err := decodeImpacts(l); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	wide := newImpLayout([]byte{0x80, 9, 0, 0, 0}, 2, 1)
	if _, err := wide.check(8, nil); err == nil {
		t.Error("width 9 with quant_bits 8 accepted")
	}
	short := newImpLayout([]byte{0x80, 7, 0x80}, 2, 1)
	if _, err := short.check(8, nil); err == nil {
		t.Error("short chunk data accepted")
	}
}

// TestTAATWideScores: scores above 2³²−1 (16-bit impacts, three terms at
// their maxima) take the 64-bit accumulator and stay exact; the 32-bit
// one gives the same hits when scores fit.
func TestTAATWideScores(t *testing.T) {
	docs := []testDoc{
		{"a", []TermWeight{{Term: 0, Weight: 1}, {Term: 1, Weight: 1}, {Term: 2, Weight: 1}}},
		{"b", []TermWeight{{Term: 0, Weight: 0.5}, {Term: 2, Weight: 1}}},
		{"c", []TermWeight{{Term: 1, Weight: 0.25}}},
	}
	r := buildTest(t, docs, Options{QuantBits: 16})
	pq, err := r.Prepare([]TermWeight{{Term: 0, Weight: 1}, {Term: 1, Weight: 1}, {Term: 2, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := bruteForce(r, docs, pq, 3)
	if want[0].Raw != 3*65535*65535 {
		t.Fatalf("top raw score %d, want 3·65535²", want[0].Raw)
	}
	if got := mustSearch(t, r, pq, 3, TAAT); !sameHits(got, want) {
		t.Errorf("taat %v, want %v", got, want)
	}
	pq1, _ := r.Prepare([]TermWeight{{Term: 1, Weight: 1}})
	want1 := bruteForce(r, docs, pq1, 3)
	if got, wide := mustSearch(t, r, pq1, 3, TAAT), TAATWide(r, pq1, 3); !sameHits(got, want1) || !sameHits(wide, want1) {
		t.Errorf("taat %v, 64-bit %v, want %v", got, wide, want1)
	}
}

// TestAddRowsU8: the row kernel (AVX2 with cgo) equals plain adds, for
// lengths around the vector width and 1–4 rows.
func TestAddRowsU8(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{1, 7, 8, 9, 31, 1000} {
		for nrows := 1; nrows <= 4; nrows++ {
			var rows [4][]byte
			var q [4]uint32
			for i := range nrows {
				rows[i] = make([]byte, n+3) // rows may be longer than ub
				for b := range rows[i] {
					rows[i][b] = byte(rng.IntN(256))
				}
				q[i] = uint32(rng.IntN(65536))
			}
			ub := make([]uint32, n)
			want := make([]uint32, n)
			for b := range ub {
				ub[b] = uint32(rng.IntN(1 << 20))
				want[b] = ub[b]
				for i := range nrows {
					want[b] += q[i] * uint32(rows[i][b])
				}
			}
			src := slices.Clone(ub)
			addRowsU8(ub, ub, rows, q, nrows)
			if !slices.Equal(ub, want) {
				t.Fatalf("n=%d rows=%d: kernel differs from plain adds", n, nrows)
			}
			orig := slices.Clone(src)
			dst := make([]uint32, n) // from a separate source, which stays as it was
			addRowsU8(dst, src, rows, q, nrows)
			if !slices.Equal(dst, want) || !slices.Equal(src, orig) {
				t.Fatalf("n=%d rows=%d: kernel from a source differs from plain adds", n, nrows)
			}
		}
	}
}

// TestBucketsAndSelect: the bound histogram and the selection of bounds
// ≥ lo (C kernels with cgo) agree with plain loops, on lengths around the
// eight-wide vector step and thresholds near the values.
func TestBucketsAndSelect(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var scratch []int32
	for _, n := range []int{1, 7, 8, 9, 31, 1000, 5003} {
		ub := make([]uint32, n)
		for b := range ub {
			ub[b] = uint32(rng.IntN(1 << 20))
			if rng.IntN(5) == 0 {
				ub[b] = 0
			}
		}
		ub[rng.IntN(n)] = 1<<31 + 5 // the top bit set: unsigned compares
		shift := uint(21)
		hist := make([]int32, (1<<32-1)>>shift+1)
		want := make([]int32, len(hist))
		for _, u := range ub {
			want[u>>shift]++
		}
		scratch = countBuckets32(hist, ub, shift, scratch)
		if !slices.Equal(hist, want) {
			t.Fatalf("n=%d: histogram differs", n)
		}
		for _, lo := range []uint32{1, ub[0], ub[n-1] + 1, 1 << 19, 1 << 31, 1<<31 + 5, 1<<31 + 6} {
			if lo == 0 {
				continue
			}
			var wantSel []int32
			for b, u := range ub {
				if u >= lo {
					wantSel = append(wantSel, int32(b))
				}
			}
			if got := selectGE32(nil, ub, lo); !slices.Equal(got, wantSel) {
				t.Fatalf("n=%d lo=%d: selected %v, want %v", n, lo, got, wantSel)
			}
		}
	}
}

// TestBlockMaxes: the per-block maxima of a score range (AVX2 eight
// blocks at a time for blocks of 8 with cgo) raise mx to the plain loop's
// values, short last blocks and other block sizes included.
func TestBlockMaxes(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, R := range []int{8, 1, 2, 64} {
		for _, n := range []int{1, 7, 8, 63, 64, 65, 1000, 65536} {
			acc := make([]uint32, n)
			for i := range acc {
				acc[i] = uint32(rng.IntN(1 << 20))
				if rng.IntN(3) == 0 {
					acc[i] = 0
				}
			}
			acc[rng.IntN(n)] = 1<<31 + 3 // unsigned compares
			nb := (n + R - 1) / R
			mx := make([]uint32, nb+1)
			want := make([]uint32, nb+1)
			for b := range mx {
				mx[b] = uint32(rng.IntN(1 << 19))
				want[b] = mx[b]
			}
			for b := range nb {
				want[b] = max(want[b], slices.Max(acc[b*R:min(b*R+R, n)]))
			}
			blockMaxes(acc, mx, R)
			if !slices.Equal(mx, want) {
				t.Fatalf("R=%d n=%d: block maxima differ", R, n)
			}
		}
	}
}

// BenchmarkAddRows: 14 rows of 125 000 blocks (a top-10 query at 1M
// synthetic documents) through addRowsU8 and through a plain Go loop of
// four rows per pass.
func BenchmarkAddRows(b *testing.B) {
	const n, nrows = 125000, 14
	rng := rand.New(rand.NewPCG(1, 1))
	rows := make([][]byte, nrows)
	for i := range rows {
		rows[i] = make([]byte, n)
		for j := range rows[i] {
			rows[i][j] = byte(rng.IntN(256))
		}
	}
	ub := make([]uint32, n)
	b.Run("kernel=addRowsU8", func(b *testing.B) {
		for b.Loop() {
			for i := 0; i < nrows; i += 4 {
				var r [4][]byte
				var q [4]uint32
				k := min(4, nrows-i)
				for j := range k {
					r[j], q[j] = rows[i+j], 1000
				}
				addRowsU8(ub, ub, r, q, k)
			}
		}
	})
	b.Run("kernel=go", func(b *testing.B) {
		for b.Loop() {
			i := 0
			for ; i+4 <= nrows; i += 4 {
				r0, r1, r2, r3 := rows[i][:n], rows[i+1][:n], rows[i+2][:n], rows[i+3][:n]
				for j := range ub {
					ub[j] += 1000*uint32(r0[j]) + 1000*uint32(r1[j]) + 1000*uint32(r2[j]) + 1000*uint32(r3[j])
				}
			}
			for ; i < nrows; i++ {
				for j, v := range rows[i][:n] {
					ub[j] += 1000 * uint32(v)
				}
			}
		}
	})
}

// TestContainerKernels: the C kernels leave the same per-document scores
// and block maxima as addContainerMax (container by container, then
// blockMaxes), and TAAT's C whole-term add the same scores as addAll, on
// random terms with array and bitmap containers, every impact width
// (0-bit and 8-bit chunks included), a short last chunk, a document count
// that ends inside a container, several terms in one accumulator and
// several block sizes.
func TestContainerKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	n := 200003
	if testing.Short() {
		n = 140003
	}
	for trial := range 8 {
		R := []int{8, 1, 64, 8}[trial%4]
		nb := (n + R - 1) / R
		want, wantMx := make([]uint32, n), make([]uint32, nb)
		got, gotMx := make([]uint32, n), make([]uint32, nb)
		for term := range 3 {
			bitsQ := []int{8, 3, 16}[(trial+term)%3]
			w := 1
			if bitsQ > 8 {
				w = 2
			}
			docs, imps := randomPostings(rng, n, 1<<min(bitsQ, 12)-1)
			if len(docs) == 0 {
				continue
			}
			bm := appendBitmap(nil, docs)
			l := newImpLayout(appendImpacts(nil, imps, w), len(docs), w)
			off, err := l.check(bitsQ, nil)
			if err != nil {
				t.Fatal(err)
			}
			l.off = off
			var a, b cursor
			a.init(bm, l, len(docs))
			b.init(bm, l, len(docs))
			a.q, b.q = uint64(1+term), uint64(1+term)
			// TAAT's whole-term add, C against Go, on fresh accumulators
			taatGo, taatC := make([]uint32, n), make([]uint32, n)
			addAll(&a, taatGo)
			if addAllFast(&b, taatC) != cgoEnabled {
				t.Fatalf("trial %d: addAllFast ran: %v, cgo: %v", trial, !cgoEnabled, cgoEnabled)
			}
			if cgoEnabled && !slices.Equal(taatC, taatGo) {
				t.Fatalf("trial %d term %d: addAllFast differs from addAll", trial, term)
			}
			a.reset()
			b.reset()
			for a.nextKey() != endDoc {
				addContainerMax(&a, want, wantMx, R)
				if !addContainerFast(&b, got) {
					if cgoEnabled {
						t.Fatalf("trial %d: the C kernel declined", trial)
					}
					addContainerMax(&b, got, gotMx, R)
				}
			}
		}
		blockMaxes(got, gotMx, R)
		if !slices.Equal(got, want) || !slices.Equal(gotMx, wantMx) {
			t.Fatalf("trial %d (block size %d): C kernels differ from addContainerMax", trial, R)
		}
	}
}
