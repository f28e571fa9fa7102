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
	dbgScored = 0
	r.blockMax(s, cs, &s.top)
	for _, u := range s.ub {
		if u > 0 {
			candidates++
		}
	}
	th, _ = s.top.threshold()
	return dbgScored, candidates, th
}

// EssentialShare returns, for the final k-th score th of q, the postings
// of all query terms and of the MaxScore-essential ones (terms outside the
// longest prefix, by increasing q·max impact, whose bounds sum to ≤ th).
func EssentialShare(r *Reader, q []TermWeight, th uint64) (all, essential int) {
	pq, _ := r.Prepare(q)
	type tb struct {
		ub uint64
		df int
	}
	var ts []tb
	for _, qt := range pq.terms {
		df, mi := r.TermStats(qt.term)
		ts = append(ts, tb{qt.q * uint64(mi), df})
		all += df
	}
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if ts[j].ub < ts[i].ub {
				ts[i], ts[j] = ts[j], ts[i]
			}
		}
	}
	var sum uint64
	for _, x := range ts {
		sum += x.ub
		if sum > th {
			essential += x.df
		}
	}
	return all, essential
}
