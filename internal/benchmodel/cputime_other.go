//go:build !unix

package benchmodel

import "time"

// processCPU is not measured here: CPU times read as zero.
func processCPU() time.Duration { return 0 }
