//go:build unix

package nn

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time (user + system, all threads) this process has
// used so far: on a loaded machine it is less disturbed than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per op since c0 as cpu-ms/op.
func reportCPU(b *testing.B, c0 time.Duration) {
	b.ReportMetric(float64(processCPU()-c0)/1e6/float64(b.N), "cpu-ms/op")
}
