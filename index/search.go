package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/spladapt/spladapt/internal/grow"
)

// Algorithm is a top-k query processing method. All return the same hits.
type Algorithm int

const (
	// Exhaustive is document-at-a-time over every posting of every query term.
	Exhaustive Algorithm = iota
	// MaxScore is document-at-a-time MaxScore (Turtle & Flood 1995): terms
	// whose summed maxima cannot lift a document into the top k are only
	// probed for documents found through the other ("essential") terms.
	MaxScore
	// BlockMax is block-max pruning over doc-number ranges, after BMP
	// (Mallia, Suel, Tonellotto, SIGIR 2024): terms without an RMAX row
	// are scored exhaustively into a per-document array, every block of R
	// documents gets the bound max(those scores) + Σ q·RMAX row of the
	// dense terms, and blocks are scored (dense terms only, in decreasing
	// q, each block dropped once it cannot reach the k-th score) in
	// decreasing order of bound until the next bound is below the k-th
	// score. Fastest for small k (docs/performance.md); needs small blocks
	// (default 8) when documents are not clustered by doc number.
	BlockMax
	// TAAT is exhaustive term-at-a-time scoring: each query term's postings
	// are added container by container (roaring arrays as uint16 runs,
	// bitmaps word by word; impacts a 128-posting chunk at a time) into a
	// dense accumulator of N scores (4·N bytes of pooled scratch when
	// Σ q·max impact < 2³², else 8·N), then the top k are selected in one
	// pass over it. O(Σ df + N).
	TAAT
	// Auto is BlockMax, or TAAT when k ≥ N/AutoTAATRatio: block-max
	// pruning gains little when a large share of the documents must be
	// returned, and TAAT's one sequential pass is then faster.
	Auto
)

// AutoTAATRatio sets Auto's switch to TAAT: k·AutoTAATRatio ≥ N, the k/N
// where BlockMax stops being faster than TAAT on the synthetic collections
// (BenchmarkAutoCrossover; the figures are in docs/performance.md).
const AutoTAATRatio = 500

var algNames = [...]string{"exhaustive", "maxscore", "blockmax", "taat", "auto"}

func (a Algorithm) String() string {
	if a >= 0 && int(a) < len(algNames) {
		return algNames[a]
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// ParseAlgorithm maps "exhaustive", "maxscore", "blockmax", "taat" or
// "auto" to its Algorithm.
func ParseAlgorithm(s string) (Algorithm, error) {
	for i, n := range algNames {
		if n == s {
			return Algorithm(i), nil
		}
	}
	return 0, fmt.Errorf("unknown query algorithm %q (want exhaustive, maxscore, blockmax, taat or auto)", s)
}

// Algorithms lists every algorithm.
var Algorithms = []Algorithm{Exhaustive, MaxScore, BlockMax, TAAT, Auto}

// Resolve returns the algorithm Auto runs for top-k on r (a itself when
// a is not Auto).
func (r *Reader) Resolve(a Algorithm, k int) Algorithm {
	if a != Auto {
		return a
	}
	if int64(k)*AutoTAATRatio >= int64(r.meta.NumDocs) {
		return TAAT
	}
	return BlockMax
}

// Hit is one result: doc number, exact integer score (Σ q·impact) and
// the score in weight units (Raw · Factor of the query).
type Hit struct {
	Doc   uint32
	Raw   uint64
	Score float64
}

// qterm is a quantised query term.
type qterm struct {
	term uint32
	q    uint64
}

// Query is a query quantised for this index (see docs/format/index.md).
type Query struct {
	terms  []qterm
	factor float64 // score per raw unit
}

// Len returns the number of query terms that can match.
func (q *Query) Len() int { return len(q.terms) }

// Terms returns the query's terms in term order and their quantised
// weights (1..65535), the integers every algorithm scores with
// (Hit.Raw = Σ weight · impact). The slices are new.
func (q *Query) Terms() (terms []uint32, weights []uint64) {
	for _, qt := range q.terms {
		terms, weights = append(terms, qt.term), append(weights, qt.q)
	}
	return terms, weights
}

// Prepare quantises q: duplicate terms are summed, terms with weight ≤ 0
// or no postings are dropped, weights become integers in 1..65535 relative
// to the largest. Terms outside the vocabulary and non-finite weights are
// errors.
func (r *Reader) Prepare(q []TermWeight) (*Query, error) {
	sum := make(map[uint32]float64, len(q))
	for _, tw := range q {
		if math.IsNaN(float64(tw.Weight)) || math.IsInf(float64(tw.Weight), 0) {
			return nil, fmt.Errorf("query term %d has weight %v", tw.Term, tw.Weight)
		}
		if tw.Weight < 0 {
			return nil, fmt.Errorf("query term %d has negative weight %v (weights are ≥ 0)", tw.Term, tw.Weight)
		}
		if int64(tw.Term) >= int64(r.meta.NumTerms) {
			return nil, fmt.Errorf("query term %d outside vocabulary of %d", tw.Term, r.meta.NumTerms)
		}
		sum[tw.Term] += float64(tw.Weight)
	}
	qmax := 0.0
	for t, w := range sum {
		if df, _ := r.TermStats(t); df == 0 || w <= 0 {
			delete(sum, t)
			continue
		}
		qmax = max(qmax, w)
	}
	out := &Query{}
	for t, w := range sum {
		if qi := math.Round(w / qmax * queryWeightMax); qi >= 1 {
			out.terms = append(out.terms, qterm{term: t, q: uint64(qi)})
		}
	}
	slices.SortFunc(out.terms, func(a, b qterm) int { return int(a.term) - int(b.term) })
	out.factor = qmax / queryWeightMax * r.meta.Scale
	return out, nil
}

// Search returns the k documents with the highest score for q, best first;
// ties break toward the smaller doc number. Only documents sharing a term
// with q are returned, so there may be fewer than k. Every algorithm
// returns the same hits; they differ in speed (Algorithm). Cost: Exhaustive O(Σ df·|q|);
// TAAT O(Σ df + N); MaxScore may skip postings; BlockMax O(Σ df of the
// sparse terms + |q|·N/R) for the bounds plus the dense terms' postings in
// the blocks it scores.
func (r *Reader) Search(q []TermWeight, k int, alg Algorithm) ([]Hit, error) {
	pq, err := r.Prepare(q)
	if err != nil {
		return nil, err
	}
	return r.SearchPrepared(pq, k, alg)
}

// SearchPrepared is Search for a prepared query.
func (r *Reader) SearchPrepared(pq *Query, k int, alg Algorithm) (hits []Hit, err error) {
	if k < 1 {
		return nil, fmt.Errorf("search: k = %d, want ≥ 1", k)
	}
	if len(pq.terms) == 0 {
		return nil, nil
	}
	s, _ := r.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	defer func() {
		if p := recover(); p != nil { // only reachable on a corrupt, unvalidated file
			hits, err = nil, fmt.Errorf("search: %v (run Validate): %w", p, ErrCorrupt)
			return // s may be dirty (TAAT accumulator): not pooled
		}
		r.pool.Put(s)
	}()
	s.top.reset(k)
	cs := r.cursors(s, pq)
	switch r.Resolve(alg, k) {
	case Exhaustive:
		exhaustive(cs, &s.top)
	case MaxScore:
		maxScore(cs, &s.top)
	case BlockMax:
		r.blockMax(s, cs, &s.top)
	case TAAT:
		r.taat(s, cs, &s.top)
	default:
		return nil, fmt.Errorf("search: unknown algorithm %d", alg)
	}
	hits = s.top.sorted()
	for i := range hits {
		hits[i].Score = float64(hits[i].Raw) * pq.factor
	}
	return hits, nil
}

// scratch is per-query memory, pooled.
type scratch struct {
	cs       []cursor
	ub       []uint64  // (num blocks) BlockMax block upper bounds
	ub32     []uint32  // (num blocks) narrow block upper bounds
	acc      []uint64  // (batchBlocks · block size) BlockMax scores of a batch of blocks
	acc32    []uint32  // (batchBlocks · block size) narrow batch scores
	sub      []uint64  // (num blocks) BlockMax: best sparse-term score per block, zero between queries
	sub32    []uint32  // (num blocks) narrow sub
	hist     []int32   // (≤ 2^histBits) BlockMax bound histogram
	hist3    []int32   // (3 · len(hist)) scratch of countBuckets32
	batch    []int32   // (≤ batchBlocks) blocks being scored
	rem      []uint64  // (≤ batchBlocks) dense-term bound still to add per block of the batch
	alive    []int32   // batch positions of the blocks still scored
	denseCs  []*cursor // BlockMax: cursors of the dense terms, by decreasing q
	sparseCs []*cursor // BlockMax: cursors of the other terms
	dense    []uint64  // (num docs) TAAT accumulator / BlockMax sparse-term scores, zero between queries
	dense32  []uint32  // (num docs) narrow dense
	wide     bool      // force the 64-bit TAAT accumulator (benchmarks)
	scored   int       // blocks scored by the last BlockMax query
	sel      []int32   // BlockMax candidate blocks
	top      topK
}

func (r *Reader) cursors(s *scratch, pq *Query) []cursor {
	s.cs = slices.Grow(s.cs[:0], len(pq.terms))[:len(pq.terms)]
	for i, qt := range pq.terms {
		ti := r.termInfo(qt.term)
		c := &s.cs[i]
		*c = cursor{}
		c.rk, c.bmOff = r.ranks, ti.docOff
		c.init(r.bitmap(ti), r.impLayout(ti), int(ti.df)) // headers checked by Open
		c.q = qt.q
		c.ub = qt.q * uint64(ti.maxImp)
		c.rmax = r.rmaxRow(ti)
	}
	return s.cs
}

func exhaustive(cs []cursor, top *topK) {
	for {
		d := uint32(endDoc)
		for i := range cs {
			d = min(d, cs[i].doc)
		}
		if d == endDoc {
			return
		}
		var score uint64
		for i := range cs {
			if c := &cs[i]; c.doc == d {
				score += c.q * c.impact()
				c.next()
			}
		}
		top.push(d, score)
	}
}

func maxScore(cs []cursor, top *topK) {
	slices.SortFunc(cs, func(a, b cursor) int {
		if a.ub != b.ub {
			if a.ub < b.ub {
				return -1
			}
			return 1
		}
		return 0
	})
	n := len(cs)
	prefix := make([]uint64, n) // prefix[i] = Σ ub of cs[0..i]
	var sum uint64
	for i := range cs {
		sum += cs[i].ub
		prefix[i] = sum
	}
	ess := 0
	update := func() {
		// Docs arrive in increasing order, so a later doc can only enter
		// with a score strictly above the k-th.
		if th, full := top.threshold(); full {
			for ess < n && prefix[ess] <= th {
				ess++
			}
		}
	}
	for ess < n {
		d := uint32(endDoc)
		for i := ess; i < n; i++ {
			d = min(d, cs[i].doc)
		}
		if d == endDoc {
			return
		}
		var score uint64
		for i := ess; i < n; i++ {
			if c := &cs[i]; c.doc == d {
				score += c.q * c.impact()
				c.next()
			}
		}
		th, full := top.threshold()
		for i := ess - 1; i >= 0; i-- {
			if full && score+prefix[i] <= th {
				score = 0
				break
			}
			c := &cs[i]
			c.advance(d)
			if c.doc == d {
				score += c.q * c.impact()
			}
		}
		if score > 0 && top.push(d, score) {
			update()
		}
	}
}

// blockMax runs BlockMax with 32-bit bounds and scores when no score can
// exceed 2³²−1, else 64-bit ones.
func (r *Reader) blockMax(s *scratch, cs []cursor, top *topK) {
	n, nb := r.meta.NumDocs, r.meta.NumBlocks
	W := min(batchBlocks, nb) * r.stride() // batch accumulator
	var bound uint64
	for i := range cs {
		bound += cs[i].ub
	}
	if bound <= math.MaxUint32 && !s.wide {
		s.ub32, s.sub32, s.acc32 = grow.To(s.ub32, nb), grow.To(s.sub32, nb), grow.To(s.acc32, W)
		if cap(s.dense32) < n {
			s.dense32 = make([]uint32, n)
		}
		blockMaxWith(r, s, bmBufs[uint32]{s.dense32[:n], s.ub32[:nb], s.sub32[:nb], s.acc32[:W]}, cs, top, bound)
		return
	}
	s.ub, s.sub, s.acc = grow.To(s.ub, nb), grow.To(s.sub, nb), grow.To(s.acc, W)
	if cap(s.dense) < n {
		s.dense = make([]uint64, n)
	}
	blockMaxWith(r, s, bmBufs[uint64]{s.dense[:n], s.ub[:nb], s.sub[:nb], s.acc[:W]}, cs, top, bound)
}

// bmBufs is BlockMax's scratch, of the score type A.
type bmBufs[A uint32 | uint64] struct {
	docs []A // (N) exact scores from the sparse terms; zero between queries
	ub   []A // (num blocks) block upper bounds
	sub  []A // (num blocks) largest docs entry of each block; zero between queries
	acc  []A // (batchBlocks · stride) scores of a batch of blocks
}

const (
	histBits    = 11 // bounds are bucketed on their top histBits bits
	batchBlocks = 64 // blocks scored together, term at a time
)

// blockMaxWith is BlockMax on buffers of the score type A, which holds
// bound = Σ q·max impact.
//
//  1. Sparse terms (df < number of blocks, no RMAX row) are scored
//     exhaustively into the per-document array f.docs, and sub[b] is the
//     largest f.docs entry of block b. Bounds: ub[b] = sub[b] + Σ over the
//     dense terms of q·RMAX(t, b) — a dense add per term.
//  2. Bounds are bucketed on their top bits. The blocks of the top buckets
//     (about 32 + k/2 of them) are scored first, which sets a k-th score θ;
//     then, in doc order, every other block whose bound is ≥ θ (θ grows as
//     blocks are scored). A block whose bound is below θ holds no document
//     of the top k, so the result is exact.
//  3. A batch of up to batchBlocks blocks starts from the sparse scores and
//     adds the dense terms in decreasing order of q with forward-only
//     cursors (restarted for each of the at most three passes). A block
//     leaves the batch as soon as its best partial score plus the RMAX
//     bounds of the dense terms still to come is below θ.
func blockMaxWith[A uint32 | uint64](r *Reader, s *scratch, f bmBufs[A], cs []cursor, top *topK, bound uint64) {
	R, N := r.meta.BlockSize, r.meta.NumDocs
	ub, sub := f.ub, f.sub
	s.denseCs, s.sparseCs = s.denseCs[:0], s.sparseCs[:0]
	sparsePostings := 0
	for i := range cs {
		if c := &cs[i]; c.rmax == nil {
			s.sparseCs = append(s.sparseCs, c)
			sparsePostings += c.df
		} else {
			s.denseCs = append(s.denseCs, c)
		}
	}
	d32, narrow := any(f.docs).([]uint32)
	sub32, _ := any(sub).([]uint32)
	// With 32-bit scores and blocks that tile the 65 536-doc ranges, the
	// C kernel adds the postings and one pass per range takes the block
	// maxima (8-9% faster per query at 1M than raising sub at every
	// posting, alternated in one process); else addContainerMax does both.
	fast := narrow && R&(R-1) == 0 && R <= 1<<16
	for key := uint32(0); key != endDoc; { // container key by key: one 65 536-doc range of docs and sub at a time
		next := uint32(endDoc)
		added := false
		for _, c := range s.sparseCs {
			if c.nextKey() == key {
				if fast && addContainerFast(c, d32) {
					added = true
				} else {
					addContainerMax(c, f.docs, sub, R)
				}
			}
			next = min(next, c.nextKey())
		}
		if added { // the C adds left sub alone: one pass over the range's blocks
			blockMaxes(d32[key:min(int(key)+1<<16, N)], sub32[int(key)/R:], R)
		}
		key = next
	}
	addRows(ub, sub, s.denseCs, r.width)
	slices.SortFunc(s.denseCs, func(a, b *cursor) int { return cmpDesc(a.q, b.q) })
	defer func() { // leave docs and sub zero
		if sparsePostings > len(sub)/8 { // they touch many blocks: clear all at memory speed
			clear(f.docs)
		} else {
			for b, u := range sub {
				if u > 0 {
					clear(f.docs[b*R : min(b*R+R, N)])
				}
			}
		}
		clear(sub)
	}()

	shift := uint(max(0, bits.Len64(bound)-histBits))
	nbk := int(bound>>shift) + 1
	s.hist = grow.To(s.hist, nbk)
	hist := s.hist
	clear(hist)
	if u32, ok := any(ub).([]uint32); ok {
		s.hist3 = countBuckets32(hist, u32, shift, s.hist3)
	} else {
		for _, u := range ub {
			hist[u>>shift]++
		}
	}
	// Buckets ≥ h1 are scored first: from the top, until they hold ≥ first
	// blocks, but never a bucket that would bring them past 4·first (a
	// crowd of equal bounds is left to the threshold). Buckets ≥ h2 (≤ h1)
	// are listed: as many as fit in budget blocks. Bucket 0 (which holds
	// the blocks without postings) is never listed.
	first := 32 + top.k/2
	budget := max(4096, 8*first)
	h1, cnt := nbk, 0
	for h := nbk - 1; h >= 1 && cnt < first; h-- {
		n := int(hist[h])
		if n == 0 {
			continue
		}
		if cnt > 0 && cnt+n > 4*first {
			break
		}
		cnt += n
		h1 = h
	}
	h2 := h1
	for h := h1 - 1; h >= 1; h-- {
		n := int(hist[h])
		if cnt+n > budget {
			break
		}
		cnt += n
		h2 = h
	}
	list := s.sel[:0]
	lo := A(h2) << shift
	if u32, ok := any(ub).([]uint32); ok {
		list = selectGE32(list, u32, uint32(max(lo, 1)))
	} else {
		for b, u := range ub {
			if u >= lo && u > 0 {
				list = append(list, int32(b))
			}
		}
	}
	s.sel = list

	s.scored = 0
	batch := s.batch[:0]
	flush := func() {
		if len(batch) > 0 {
			scoreBatch(r, s, f, batch, top)
			s.scored += len(batch)
			batch = batch[:0]
		}
	}
	mid := A(h1) << shift
	for _, b := range list { // pass 1: the top buckets
		if ub[b] >= mid {
			if batch = append(batch, b); len(batch) == batchBlocks {
				flush()
			}
		}
	}
	flush()
	resetAll(s.denseCs)
	for _, b := range list { // pass 2: the rest of the list
		if u := ub[b]; u < mid {
			if th, full := top.threshold(); !full || uint64(u) >= th {
				if batch = append(batch, b); len(batch) == batchBlocks {
					flush()
				}
			}
		}
	}
	flush()
	if th, full := top.threshold(); h2 > 0 && (!full || th < uint64(lo)) {
		resetAll(s.denseCs) // pass 3: blocks below the list whose bound reaches θ
		for b, u := range ub {
			if u > 0 && u < lo {
				if th, full := top.threshold(); !full || uint64(u) >= th {
					if batch = append(batch, int32(b)); len(batch) == batchBlocks {
						flush()
					}
				}
			}
		}
		flush()
	}
	s.batch = batch
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func resetAll(cs []*cursor) {
	for _, c := range cs {
		c.reset()
	}
}

// addRows sets ub[b] = src[b] + Σ q·RMAX(t, b) over the dense terms t:
// four 1-byte rows at a time (one pass over ub per four terms; addRowsU8
// for 32-bit bounds, whose first pass reads src instead of a copy of it),
// then one at a time.
func addRows[A uint32 | uint64](ub, src []A, cs []*cursor, width int) {
	if u32, ok := any(ub).([]uint32); ok && width == 1 {
		from := any(src).([]uint32)
		if len(cs) == 0 {
			copy(u32, from)
		}
		for len(cs) > 0 {
			var rows [4][]byte
			var q [4]uint32
			n := min(4, len(cs))
			for i, c := range cs[:n] {
				rows[i], q[i] = c.rmax, uint32(c.q)
			}
			addRowsU8(u32, from, rows, q, n)
			from = u32
			cs = cs[n:]
		}
		return
	}
	copy(ub, src)
	if width == 1 {
		for len(cs) >= 4 {
			q0, q1, q2, q3 := A(cs[0].q), A(cs[1].q), A(cs[2].q), A(cs[3].q)
			r0, r1, r2, r3 := cs[0].rmax[:len(ub)], cs[1].rmax[:len(ub)], cs[2].rmax[:len(ub)], cs[3].rmax[:len(ub)]
			for b := range ub {
				ub[b] += q0*A(r0[b]) + q1*A(r1[b]) + q2*A(r2[b]) + q3*A(r3[b])
			}
			cs = cs[4:]
		}
	}
	for _, c := range cs {
		addRow(ub, c.rmax, c.q, width)
	}
}

// addRow adds q·row[b] to ub[b] for every block: row is a dense term's
// RMAX row of impacts of width bytes.
func addRow[A uint32 | uint64](ub []A, row []byte, q uint64, width int) {
	qa := A(q)
	if width == 1 {
		row = row[:len(ub)]
		for b, v := range row {
			ub[b] += qa * A(v)
		}
		return
	}
	row = row[:2*len(ub)]
	for b := range ub {
		ub[b] += qa * A(binary.LittleEndian.Uint16(row[2*b:]))
	}
}

// stride returns the number of documents of the widest block: block_size,
// or N when that is smaller (a fuzzed block_size may be huge).
func (r *Reader) stride() int { return min(r.meta.BlockSize, r.meta.NumDocs) }

// scoreBatch scores the blocks of batch (increasing; the dense cursors
// positioned at or before the first): each block's scores start from the
// sparse terms' f.docs, then the dense terms s.denseCs are added in their
// order; after each, blocks that cannot reach the k-th score leave. The
// documents of the remaining blocks are offered to top.
func scoreBatch[A uint32 | uint64](r *Reader, s *scratch, f bmBufs[A], batch []int32, top *topK) {
	R := uint32(r.meta.BlockSize)
	N := uint32(r.meta.NumDocs)
	S := r.stride()
	acc := f.acc[:len(batch)*S]
	s.rem = grow.To(s.rem, len(batch))
	rem := s.rem // RMAX bound of the dense terms still to add, per block
	alive := s.alive[:0]
	for j, b := range batch {
		start := uint32(b) * R
		end := min(start+R, N)
		a := acc[j*S : (j+1)*S]
		clear(a[copy(a, f.docs[start:end]):])
		rem[j] = uint64(f.ub[b] - f.sub[b])
		alive = append(alive, int32(j))
	}
	for _, c := range s.denseCs {
		q := A(c.q)
		for _, j := range alive {
			start := uint32(batch[j]) * R
			end := min(start+R, N)
			c.advance(start)
			a := acc[int(j)*S:]
			var mx uint64
			for c.doc < end {
				imp := c.impactAt()
				a[c.doc-start] += q * A(imp)
				mx = max(mx, imp)
				c.next()
			}
			rem[j] -= c.q * mx
		}
		if th, full := top.threshold(); full {
			keep := alive[:0]
			for _, j := range alive {
				if uint64(slices.Max(acc[int(j)*S:(int(j)+1)*S]))+rem[j] >= th {
					keep = append(keep, j)
				}
			}
			alive = keep
		}
	}
	s.alive = alive
	th, full := top.threshold()
	for _, j := range alive {
		start := uint32(batch[j]) * R
		for i, v := range acc[int(j)*S : (int(j)+1)*S] {
			if v > 0 && (!full || uint64(v) >= th) {
				top.push(start+uint32(i), uint64(v))
				th, full = top.threshold()
			}
		}
	}
}

// taat scores term at a time into a dense accumulator of N scores: 32-bit
// when no score can exceed 2³²−1 (Σ q·max impact, so always for fewer than
// 258 terms with 8-bit impacts), else 64-bit. The narrow accumulator
// halves the memory the adds and the final scan touch.
func (r *Reader) taat(s *scratch, cs []cursor, top *topK) {
	n := r.meta.NumDocs
	var bound uint64
	for i := range cs {
		bound += cs[i].ub
	}
	if bound <= math.MaxUint32 && !s.wide {
		if cap(s.dense32) < n {
			s.dense32 = make([]uint32, n)
		}
		taatInto(s.dense32[:n], cs, top)
		return
	}
	if cap(s.dense) < n {
		s.dense = make([]uint64, n)
	}
	taatInto(s.dense[:n], cs, top)
}

// taatInto adds every cursor's postings into acc (all zero on entry and
// on return) and pushes the non-zero scores into top.
func taatInto[A uint32 | uint64](acc []A, cs []cursor, top *topK) {
	a32, narrow := any(acc).([]uint32)
	for i := range cs {
		if !narrow || !addAllFast(&cs[i], a32) {
			addAll(&cs[i], acc)
		}
	}
	th, full := top.threshold()
	for d, v := range acc {
		if v > 0 {
			if !full || uint64(v) >= th {
				top.push(uint32(d), uint64(v))
				th, full = top.threshold()
			}
			acc[d] = 0
		}
	}
}

// topK keeps the k best (score, doc) pairs: higher score first, then
// smaller doc. h is a min-heap on that order (worst at h[0]).
type topK struct {
	k int
	h []Hit
}

func (t *topK) reset(k int) {
	t.k = k
	t.h = t.h[:0]
}

func worse(a, b Hit) bool { return a.Raw < b.Raw || (a.Raw == b.Raw && a.Doc > b.Doc) }

// threshold returns the k-th score and whether k hits are held.
func (t *topK) threshold() (uint64, bool) {
	if len(t.h) < t.k {
		return 0, false
	}
	return t.h[0].Raw, true
}

// push offers (doc, raw) and reports whether it entered the top k.
func (t *topK) push(doc uint32, raw uint64) bool {
	x := Hit{Doc: doc, Raw: raw}
	h := t.h
	if len(h) < t.k {
		h = append(h, x)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !worse(h[i], h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		t.h = h
		return true
	}
	if !worse(h[0], x) {
		return false
	}
	h[0] = x
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		if r := l + 1; r < len(h) && worse(h[r], h[l]) {
			l = r
		}
		if !worse(h[l], h[i]) {
			break
		}
		h[i], h[l] = h[l], h[i]
		i = l
	}
	return true
}

// sorted returns a copy of the hits, best first.
func (t *topK) sorted() []Hit {
	out := slices.Clone(t.h)
	slices.SortFunc(out, func(a, b Hit) int {
		switch {
		case worse(b, a):
			return -1
		case worse(a, b):
			return 1
		}
		return 0
	})
	return out
}
