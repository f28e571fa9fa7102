//go:build !cgo

package index

// addRowsU8 sets ub[b] = src[b] + Σ_i q[i]·rows[i][b] for every block,
// for up to four 1-byte RMAX rows of at least len(ub) bytes (with cgo an AVX2 kernel, rows_cgo.go); src
// may be ub, len(src) ≥ len(ub). The caller guarantees that no sum
// exceeds 2³²−1.
func addRowsU8(ub, src []uint32, rows [4][]byte, q [4]uint32, nrows int) {
	copy(ub, src[:len(ub)])
	for i := range nrows {
		row, qi := rows[i][:len(ub)], q[i]
		for b, v := range row {
			ub[b] += qi * uint32(v)
		}
	}
}

// countBuckets32 adds one to hist[u>>shift] for every u of ub (a bucket
// past hist panics); scratch is returned unused.
func countBuckets32(hist []int32, ub []uint32, shift uint, scratch []int32) []int32 {
	for _, u := range ub {
		hist[u>>shift]++
	}
	return scratch
}

// selectGE32 returns the indexes b of ub with ub[b] ≥ lo, in buf's memory.
func selectGE32(buf []int32, ub []uint32, lo uint32) []int32 {
	list := buf[:0]
	for b, u := range ub {
		if u >= lo {
			list = append(list, int32(b))
		}
	}
	return list
}
