// Command spladapt adapts learned sparse retrievers (SPLADE) to new domains:
// continued MLM pretraining on an unlabeled corpus, SPLADE training, a
// roaring-bitmap impact index, search (CLI and HTTP) and trec_eval-exact
// evaluation with comparison reports.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := NewRootCommand()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "spladapt:", err)
		os.Exit(1)
	}
}
