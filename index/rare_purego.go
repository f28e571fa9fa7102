//go:build !cgo

package index

// addContainerMaxFast reports false: without cgo addContainerMax does the
// work (rare_cgo.go has the C version).
func addContainerMaxFast(c *cursor, acc, mx []uint32, R int) bool { return false }
