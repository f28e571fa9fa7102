package index

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
	for _, u := range s.ub {
		if u > 0 {
			candidates++
		}
	}
	th, _ = s.top.threshold()
	return s.scored, candidates, th
}
