//go:build !cgo

package index

// addRowsU8 adds Σ_i q[i]·rows[i][b] to ub[b] for every block, for up to
// four 1-byte RMAX rows of len(ub) bytes. The caller guarantees that no
// sum exceeds 2³²−1. (With cgo this is an AVX2 kernel, rows_cgo.go.)
func addRowsU8(ub []uint32, rows [4][]byte, q [4]uint32, nrows int) {
	for i := range nrows {
		row, qi := rows[i][:len(ub)], q[i]
		for b, v := range row {
			ub[b] += qi * uint32(v)
		}
	}
}
