// Package grow sizes preallocated scratch buffers: the one helper that nn's
// passes and index's searchers share.
package grow

// To returns b with length n: b resliced when its capacity allows,
// otherwise a new zeroed slice (the old contents are not kept). Cost: an
// allocation only when n exceeds cap(b).
func To[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}
