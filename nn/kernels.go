package nn

import (
	"fmt"
	"os"
)

// The fused kernels (SPLADE pooling, attention heads; maxpool_cgo.go,
// fastmath_cgo.go) and the element-wise C kernels with an AVX-512 build
// (GELU and its backward, AdamW, column sums, LayerNorm backward, softmax
// cross-entropy) come in levels chosen at run time:
//
//	avx512  AVX-512 (avx512f, avx512bw, avx512vl, FMA, and an OS that saves zmm state)
//	avx2    AVX2 and FMA
//	scalar  cgo on a CPU without AVX2: scalar C pooling, attention through BLAS
//	go      built without cgo: the pure-Go paths
//
// Every level computes each dot product as the same chain of fused
// multiply-adds in the same order, and the element-wise builds share one
// body without reassociation, so avx512 and avx2 give the same results bit
// for bit on finite inputs (the pooling takes its maxima in another order,
// which only matters for NaN); only the speed differs. The default is the best level the
// CPU runs; the environment variable SPLADAPT_KERNELS (auto, avx2, avx512)
// read at start-up, or SetKernels, chooses another, so that the levels can
// be measured side by side in one process.
const kernelsEnv = "SPLADAPT_KERNELS"

const (
	levelScalar = 0 // the C levels match K6_SCALAR, K6_AVX2, K6_AVX512 (k6x16.h)
	levelAVX2   = 1
	levelAVX512 = 2
)

var levelNames = [...]string{levelScalar: "scalar", levelAVX2: "avx2", levelAVX512: "avx512"}

// kernelLevel is the level in force; kernelsEnvErr is why SPLADAPT_KERNELS
// was not applied at start-up (nil when it was, or is unset).
var (
	kernelLevel   = cpuKernelLevel()
	kernelsEnvErr error
)

func init() {
	if s := os.Getenv(kernelsEnv); s != "" {
		if err := SetKernels(s); err != nil {
			kernelsEnvErr = fmt.Errorf("%s: %w", kernelsEnv, err)
		}
	}
}

// Kernels names the level of the fused kernels in force: "avx512", "avx2",
// "scalar" or, without cgo, "go".
func Kernels() string {
	if !cgoKernels {
		return "go"
	}
	return levelNames[kernelLevel]
}

// SetKernels chooses the level of the fused kernels: "auto" (the best this
// CPU runs), "avx2" or "avx512". It fails, changing nothing, for another
// name or for a level this CPU (or a build without cgo) cannot run. It
// must not be called while a model computes.
func SetKernels(name string) error {
	best := cpuKernelLevel()
	want := -1
	switch name {
	case "auto":
		kernelLevel = best
		return nil
	case "avx2":
		want = levelAVX2
	case "avx512":
		want = levelAVX512
	default:
		return fmt.Errorf("unknown kernels %q (want auto, avx2 or avx512)", name)
	}
	if !cgoKernels {
		return fmt.Errorf("kernels %s need a build with cgo (this one is CGO_ENABLED=0)", name)
	}
	if want > best {
		return fmt.Errorf("kernels %s not supported by this CPU (best: %s)", name, levelNames[best])
	}
	kernelLevel = want
	return nil
}

// KernelsEnvError reports why SPLADAPT_KERNELS could not be applied at
// start-up (the kernels then stay at the default), or nil.
func KernelsEnvError() error { return kernelsEnvErr }
