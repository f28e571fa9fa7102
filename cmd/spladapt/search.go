package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/bm25/impact"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

func init() { register(newSearchCmd) }

// queryEncoderFor returns the text-query encoder of an index. A BM25
// index (index build-bm25) analyses the text as its documents were;
// otherwise, without a model, text is a bag of vocabulary tokens ("tok" or
// "tok:weight"); a SPLADE model's encoder plugs in here.
func queryEncoderFor(r *index.Reader) index.QueryEncoder {
	if impact.IsIndex(r) {
		if e, err := impact.NewQueryEncoder(r); err == nil {
			return e
		}
	}
	return index.TokenEncoder{Resolve: index.ReaderResolver(r)}
}

func newSearchCmd(a *app) *cobra.Command {
	var idx, qvecs, queries, run, tag, model, qrelsPath string
	var noValidate bool
	cmd := &cobra.Command{
		Use:   "search --index IDX (--query-vectors FILE.jsonl | --queries FILE) --run OUT",
		Short: "Retrieve the top k documents of each query into a TREC run",
		Long: `Search an index and write a TREC run ("qid Q0 docid rank score tag"; queries
in id order, scores in the shortest form that reads back exactly).
--query-vectors: JSONL lines {"id": "...", "vector": {"<term id or token>": w}}.
--queries: text queries (BEIR queries.jsonl, TREC topics or TSV) encoded as
bags of vocabulary tokens (the index needs a vocabulary), as analysed BM25
terms for an index from "index build-bm25", or with --model by that SPLADE
checkpoint (refused unless its vocabulary is the index's).
--qrels: search only the queries judged in that file (TREC or BEIR .tsv);
a BEIR queries.jsonl holds the queries of every split.
The CRC of every index section is verified first (one pass over the file)
unless --no-validate. Query and document ids with white space are refused
(a TREC run could not hold them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "k", "index.depth")
			a.bind(cmd.Flags(), "algorithm", "index.algorithm")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if idx == "" || run == "" || (qvecs == "") == (queries == "") {
				return fmt.Errorf("search: --index, --run and one of --query-vectors or --queries are required")
			}
			if tag == "" || strings.IndexFunc(tag, unicode.IsSpace) >= 0 {
				return fmt.Errorf("search: --tag %q must be one non-empty word", tag)
			}
			g, err := claimOutput(cmd, run, false, idx, qvecs, queries, qrelsPath, model)
			if err != nil {
				return err
			}
			defer g.Release()
			r, algo, err := openIndex(cfg, idx, noValidate)
			if err != nil {
				return err
			}
			defer r.Close()
			k := cfg.Index.Depth
			var judged corpora.Qrels
			if qrelsPath != "" {
				if judged, err = corpora.ReadQrels(qrelsPath); err != nil {
					return fmt.Errorf("search: %w", err)
				}
			}
			var ids []string
			var vecs [][]index.TermWeight
			if qvecs != "" {
				err = index.ReadVectors(qvecs, index.ReaderResolver(r), skipOptions(cfg, cmd.ErrOrStderr()), func(id string, vec []index.TermWeight) error {
					if _, ok := judged[id]; judged == nil || ok {
						ids, vecs = append(ids, id), append(vecs, vec)
					}
					return nil
				})
			} else {
				tq, rerr := corpora.ReadQueries(queries, skipOptions(cfg, cmd.ErrOrStderr()))
				if rerr != nil {
					return fmt.Errorf("search: %w", rerr)
				}
				if judged != nil {
					tq = judged.Judged(tq)
				}
				enc := queryEncoderFor(r)
				if model != "" {
					e, merr := spladeQueryEncoder(cfg, model, idx, r)
					if merr != nil {
						return merr
					}
					enc = e
				}
				vecs, err = index.EncodeQueries(enc, tq)
				for _, x := range tq {
					ids = append(ids, x.ID)
				}
			}
			if err != nil {
				return fmt.Errorf("search: %w", err)
			}
			start := time.Now()
			hits, err := r.SearchRun(ids, vecs, k, algo)
			if err != nil {
				return fmt.Errorf("search: %w", err)
			}
			if err := atomicfile.Write(run, 0o644, func(w io.Writer) error { return corpora.WriteRun(w, hits, tag) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d queries, top %d by %v, in %s → %s\n", len(ids), k, algo, time.Since(start).Round(time.Millisecond), run)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&idx, "index", "", "index directory")
	f.BoolVar(&noValidate, "no-validate", false, "skip the CRC check of the index sections")
	f.StringVar(&qvecs, "query-vectors", "", "query vectors (JSONL)")
	f.StringVar(&queries, "queries", "", "text queries (bags of vocabulary tokens without a model)")
	f.StringVar(&run, "run", "", "TREC run file to write")
	f.StringVar(&model, "model", "", "SPLADE checkpoint that encodes the --queries texts")
	f.StringVar(&tag, "tag", "spladapt", "run tag (last column)")
	f.StringVar(&qrelsPath, "qrels", "", "search only the queries judged in this qrels file (TREC or BEIR .tsv)")
	f.IntP("k", "k", 0, "hits per query (default: config index.depth)")
	f.String("algorithm", "", "exhaustive, maxscore, blockmax, taat or auto (default: config index.algorithm)")
	return cmd
}
