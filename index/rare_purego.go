//go:build !cgo

package index

// addContainerMaxFast reports false: without cgo addContainerMax does the
// work (rare_cgo.go has the C version).
func addContainerMaxFast(c *cursor, acc, mx []uint32, R int) bool { return false }

// addAllFast reports false: without cgo addAll does the work.
func addAllFast(c *cursor, acc []uint32) bool { return false }
