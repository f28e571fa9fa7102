package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/bm25/impact"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/index/serve"
	"github.com/spladapt/spladapt/splade"
)

func init() { register(newServeCmd) }

func newServeCmd(a *app) *cobra.Command {
	var idx, model, corpus string
	var noValidate bool
	cmd := &cobra.Command{
		Use:   "serve --index IDX [--model CKPT] [--corpus PATH] [--addr 127.0.0.1:8080]",
		Short: "Answer searches over HTTP: a search page and a JSON API",
		Long: `Serve an index over HTTP until SIGINT or SIGTERM, then shut down gracefully.
  GET  /                    the search page (/?q=TEXT is a results page to link or
                            bookmark): results with title, snippet, score and doc id,
                            and per result the matched terms with q_t, d_t and q_t·d_t
  GET  /search?q=TEXT&k=K   text as a bag of vocabulary tokens ("tok" or "tok:weight"),
                            or encoded by the SPLADE checkpoint --model (its
                            vocabulary must be the index's)
  POST /search              {"vector": {"<term id or token>": weight}, "k": K} or {"q": TEXT, "k": K}
  GET  /explain?q=TEXT&doc=ID   one document's matched terms, from its stored impacts
  GET  /healthz, GET /stats
--corpus (the collection's BEIR directory or corpus file) gives hits their title
and snippet, and lets explanations mark expansion terms (terms not among the
tokens of the document's own text, as --model's tokenizer or the BM25 analyzer
sees it); its texts are held in memory.
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
			srv, r, err := buildServer(cfg, idx, model, corpus, !noValidate, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer r.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve.ListenAndServe(ctx, cfg.Serve.Addr, srv.Handler(), 10*time.Second, func(addr string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "serving %s (%d docs, %s) on http://%s/\n", idx, r.NumDocs(), cfg.Index.Algorithm, addr)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&idx, "index", "", "index directory")
	f.StringVar(&model, "model", "", "SPLADE checkpoint that encodes text queries")
	f.StringVar(&corpus, "corpus", "", "the collection (BEIR dir or corpus file): titles, snippets and expansion marks")
	f.BoolVar(&noValidate, "no-validate", false, "skip the CRC check and the full validation at start")
	f.String("addr", "", "listen address (default: config serve.addr)")
	f.String("algorithm", "", "exhaustive, maxscore, blockmax, taat or auto (default: config index.algorithm)")
	return cmd
}

// buildServer opens index idx (validated when validate), its query
// encoder (the SPLADE checkpoint model, else the BM25 analyzer or a bag
// of tokens) and, with corpus, the texts of its documents and the
// analyzer that finds a text's own terms. The caller closes the Reader.
func buildServer(cfg config.Config, idx, model, corpus string, validate bool, stderr io.Writer) (*serve.Server, *index.Reader, error) {
	r, algo, err := openIndex(cfg, idx, !validate)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*serve.Server, *index.Reader, error) { r.Close(); return nil, nil, err }
	if validate {
		if err := r.Validate(); err != nil {
			return fail(fmt.Errorf("serve: validate %s: %w", idx, err))
		}
	}
	enc := queryEncoderFor(r)
	if model != "" {
		if enc, err = spladeQueryEncoder(cfg, model, idx, r); err != nil {
			return fail(err)
		}
	}
	opts := serve.Options{
		MaxBodyBytes: cfg.Serve.MaxBodyBytes,
		Timeout:      time.Duration(cfg.Serve.TimeoutMS) * time.Millisecond,
		MaxK:         cfg.Serve.MaxK,
		Algorithm:    algo,
	}
	if corpus != "" {
		cr, err := corpora.OpenCorpus(corpus, skipOptions(cfg, stderr))
		if err != nil {
			return fail(fmt.Errorf("serve: %w", err))
		}
		opts.Docs, err = serve.LoadDocs(cr.Next, func(id string) bool { _, ok := r.DocNum(id); return ok })
		cr.Close()
		if err != nil {
			return fail(fmt.Errorf("serve: read %s: %w", corpus, err))
		}
		if len(opts.Docs) < r.NumDocs() {
			fmt.Fprintf(stderr, "warning: %s has the text of %d of the index's %d documents\n", corpus, len(opts.Docs), r.NumDocs())
		}
		opts.Analyze = textTerms(enc, r)
	}
	return serve.New(r, enc, opts), r, nil
}

// textTerms returns the function that gives the index terms of a text's
// own tokens, as enc sees the text: a SPLADE model's word pieces (within
// its document length), the BM25 analyzer's terms; nil when enc has no
// tokenizer (a bag of tokens), and expansion terms stay unmarked.
func textTerms(enc index.QueryEncoder, r *index.Reader) func(string) []uint32 {
	switch e := enc.(type) {
	case *splade.Encoder:
		return func(text string) []uint32 {
			var out []uint32
			for _, id := range e.Tok.Encode(text, e.MaxLen).IDs {
				if t, ok := r.Term(e.Tok.Token(id)); ok {
					out = append(out, t)
				}
			}
			return out
		}
	case *impact.QueryEncoder:
		return func(text string) []uint32 {
			v, _ := e.Encode(text)
			out := make([]uint32, len(v))
			for i, tw := range v {
				out[i] = tw.Term
			}
			return out
		}
	}
	return nil
}
