//go:build cgo

package nn

/*
#include "k6x16.h"
*/
import "C"

const cgoKernels = true

// cpuKernelLevel is the best level this CPU and OS run (k6_cpu_level).
func cpuKernelLevel() int { return int(C.k6_cpu_level()) }
