//go:build !cgo

package index

import "slices"

// addAllFast reports false: without cgo addAll does the work.
func addAllFast(c *cursor, acc []uint32) bool { return false }

// addContainerFast reports false: without cgo addContainerMax does the work.
func addContainerFast(c *cursor, acc []uint32) bool { return false }

// blockMaxes raises mx[b] to the largest of acc[b·R : b·R+R] for every
// block of acc (the last one may be short).
func blockMaxes(acc, mx []uint32, R int) {
	for b := 0; b*R < len(acc); b++ {
		mx[b] = max(mx[b], slices.Max(acc[b*R:min(b*R+R, len(acc))]))
	}
}
