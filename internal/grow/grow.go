// Package grow sizes preallocated scratch buffers: the one helper that nn's
// passes, index's searchers and the encoders and trainers of splade and
// rerank share.
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
