//go:build !cgo

package nn

const cgoKernels = false

// cpuKernelLevel: without cgo there are no C kernels.
func cpuKernelLevel() int { return levelScalar }
