package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/index/serve"
)

func init() { register(newServeCmd) }

func newServeCmd(a *app) *cobra.Command {
	var idx, model string
	var noValidate bool
	cmd := &cobra.Command{
		Use:   "serve --index IDX [--addr 127.0.0.1:8080]",
		Short: "Answer searches over HTTP (JSON API)",
		Long: `Serve an index over HTTP until SIGINT or SIGTERM, then shut down gracefully.
  GET  /search?q=TEXT&k=K   text as a bag of vocabulary tokens ("tok" or "tok:weight"),
                            or encoded by the SPLADE checkpoint --model (its
                            vocabulary must be the index's)
  POST /search              {"vector": {"<term id or token>": weight}, "k": K} or {"q": TEXT, "k": K}
  GET  /healthz, GET /stats
Limits from config serve.max_body_bytes, serve.timeout_ms and serve.max_k.
The index is validated at start (CRCs and invariants) unless --no-validate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "addr", "serve.addr")
			a.bind(cmd.Flags(), "algorithm", "index.algorithm")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if idx == "" {
				return fmt.Errorf("serve: --index is required")
			}
			r, algo, err := openIndex(cfg, idx, noValidate)
			if err != nil {
				return err
			}
			defer r.Close()
			if !noValidate {
				if err := r.Validate(); err != nil {
					return fmt.Errorf("serve: validate %s: %w", idx, err)
				}
			}
			enc := queryEncoderFor(r)
			if model != "" {
				if enc, err = spladeQueryEncoder(cfg, model, r); err != nil {
					return err
				}
			}
			srv := serve.New(r, enc, serve.Options{
				MaxBodyBytes: cfg.Serve.MaxBodyBytes,
				Timeout:      time.Duration(cfg.Serve.TimeoutMS) * time.Millisecond,
				MaxK:         cfg.Serve.MaxK,
				Algorithm:    algo,
			})
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve.ListenAndServe(ctx, cfg.Serve.Addr, srv.Handler(), 10*time.Second, func(addr string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "serving %s (%d docs, %v) on http://%s\n", idx, r.NumDocs(), algo, addr)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&idx, "index", "", "index directory")
	f.StringVar(&model, "model", "", "SPLADE checkpoint that encodes text queries")
	f.BoolVar(&noValidate, "no-validate", false, "skip the CRC check and the full validation at start")
	f.String("addr", "", "listen address (default: config serve.addr)")
	f.String("algorithm", "", "exhaustive, maxscore, blockmax, taat or auto (default: config index.algorithm)")
	return cmd
}
