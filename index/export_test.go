package index

import "math"

// BlockStats runs BlockMax for q and reports how many blocks it scored,
// how many blocks have a non-zero bound, and the final k-th score.
func BlockStats(r *Reader, q []TermWeight, k int) (scored, candidates int, th uint64) {
	pq, err := r.Prepare(q)
	if err != nil {
		panic(err)
	}
	s := &scratch{}
	s.top.reset(k)
	cs := r.cursors(s, pq)
	r.blockMax(s, cs, &s.top)
	for _, u := range s.ub32 {
		if u > 0 {
			candidates++
		}
	}
	for _, u := range s.ub {
		if u > 0 {
			candidates++
		}
	}
	th, _ = s.top.threshold()
	return s.scored, candidates, th
}

// ImpactEntropy decodes every impact and returns the order-0 entropy in
// bits per posting of the impacts: with one distribution per term (a
// lower bound for any per-term static code of them taken one by one) and
// with one distribution for the whole index.
func ImpactEntropy(r *Reader) (perTerm, global float64) {
	var all [1 << 16]int64
	var total int64
	var sumTerm float64
	cnt := map[uint16]int64{}
	for t := 0; t < r.meta.NumTerms; t++ {
		ti := r.termInfo(uint32(t))
		if ti.df == 0 {
			continue
		}
		imps, err := decodeImpacts(r.impLayout(ti))
		if err != nil {
			panic(err)
		}
		clear(cnt)
		for _, v := range imps {
			cnt[v]++
			all[v]++
		}
		sumTerm += entropyBits(cnt, int64(len(imps)))
		total += int64(len(imps))
	}
	g := map[uint16]int64{}
	for v, n := range all {
		if n > 0 {
			g[uint16(v)] = n
		}
	}
	return sumTerm / float64(total), entropyBits(g, total) / float64(total)
}

// entropyBits returns n·H of the counts (total bits of an ideal code).
func entropyBits(cnt map[uint16]int64, n int64) float64 {
	h := 0.0
	for _, c := range cnt {
		p := float64(c) / float64(n)
		h -= float64(c) * math.Log2(p)
	}
	return h
}

// TAATWith runs TAAT with the 64-bit accumulator (wide) or the default
// choice, on scratch s (reused across calls, as the Reader's pool does),
// for side-by-side benchmarks.
func TAATWith(r *Reader, s *Scratch, pq *Query, k int, wide bool) []Hit {
	s.wide = wide
	s.top.reset(k)
	r.taat(&s.scratch, r.cursors(&s.scratch, pq), &s.top)
	return s.top.sorted()
}

// Scratch is per-query scratch for TAATWith.
type Scratch struct{ scratch }

// TAATWide runs TAAT with the 64-bit accumulator on fresh scratch.
func TAATWide(r *Reader, pq *Query, k int) []Hit {
	return TAATWith(r, &Scratch{}, pq, k, true)
}
