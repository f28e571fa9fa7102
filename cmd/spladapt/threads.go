package main

import (
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// setThreads applies the config key threads (cfg.NumThreads()) to the
// parallel parts that are process-wide: the model code (nn.SetThreads:
// matrix products, element-wise kernels, attention, SPLADE pooling) and
// tokenisation (tokenize.SetThreads). Index building, BM25 search and
// evaluation take the count as an option at each call instead.
func setThreads(n int) {
	nn.SetThreads(n)
	tokenize.SetThreads(n)
}
