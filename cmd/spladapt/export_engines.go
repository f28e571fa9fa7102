package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/export/ciff"
	"github.com/spladapt/spladapt/export/elastic"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

func newExportCIFFCmd(a *app) *cobra.Command {
	var idx, vectors, vocabPath, out string
	cmd := &cobra.Command{
		Use:   "ciff (--index IDX | --vectors FILE.jsonl [--vocab vocab.txt]) --out FILE.ciff",
		Short: "Write an index as CIFF (Common Index File Format) for PISA, Anserini, Terrier",
		Long: `Write an index as a CIFF file (github.com/osirrc/ciff): a Header, one
PostingsList per term with postings (terms in byte order; doc ids gap-coded;
tf = the quantised impact) and one DocRecord per document (length = sum of
its impacts). Weights are impact × scale; the scale is in the header's
description. With --vectors the document vectors are first quantised into
a temporary index exactly as "spladapt index build" does (index.quant_bits).
See docs/format/ciff.md for importing the file into PISA and Anserini.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.bind(cmd.Flags(), "quant-bits", "index.quant_bits")
			cfg, err := a.config()
			if err != nil {
				return err
			}
			r, cleanup, err := exportIndex(cmd, cfg, idx, vectors, vocabPath)
			if err != nil {
				return err
			}
			defer cleanup()
			var h ciff.Header
			err = atomicfile.Write(out, 0o644, func(w io.Writer) error {
				var err error
				h, err = ciff.WriteIndex(w, r, "")
				return err
			})
			if err != nil {
				return fmt.Errorf("export ciff %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d postings lists, %d documents (%s)\n", out, h.NumPostingsLists, h.NumDocs, h.Description)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&idx, "index", "", "index directory to export")
	f.StringVar(&vectors, "vectors", "", "document vectors (JSONL) to export instead of an index")
	f.StringVar(&vocabPath, "vocab", "", "with --vectors: vocab.txt naming the terms (keys are then tokens)")
	f.StringVar(&out, "out", "", "CIFF file to write (required)")
	f.Int("quant-bits", 0, "with --vectors: impact width in bits (default: config index.quant_bits)")
	cmd.MarkFlagRequired("out")
	return cmd
}

// exportIndex opens --index, or builds a temporary index of --vectors;
// cleanup closes it and removes the temporary directory.
func exportIndex(cmd *cobra.Command, cfg config.Config, idx, vectors, vocabPath string) (*index.Reader, func(), error) {
	if (idx == "") == (vectors == "") {
		return nil, nil, fmt.Errorf("export: give exactly one of --index and --vectors")
	}
	if idx != "" {
		r, err := index.Open(idx)
		if err != nil {
			return nil, nil, err
		}
		return r, func() { r.Close() }, nil
	}
	tmp, err := os.MkdirTemp("", "spladapt-export-")
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	dir := filepath.Join(tmp, "index")
	opts := index.Options{Workers: cfg.NumThreads(), QuantBits: cfg.Index.QuantBits, BlockSize: cfg.Index.BlockSize}
	if _, err := index.BuildVectors(dir, vectors, vocabPath, opts, skipOptions(cfg, cmd.ErrOrStderr()), nil); err != nil {
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	r, err := index.Open(dir)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	return r, func() { r.Close(); os.RemoveAll(tmp) }, nil
}

func newExportEngineCmd(a *app, e elastic.Engine) *cobra.Command {
	var idx, vectors, out, field, query, style string
	var perFile, k int
	fieldType, queryForm := "rank_features", `"neural_sparse" with "query_tokens" (--query-style rank_feature: a bool "should" of linear rank_feature queries, core OpenSearch)`
	if e == elastic.Elasticsearch {
		fieldType, queryForm = "sparse_vector", `"sparse_vector" with "query_vector" (Elasticsearch ≥ 8.15)`
	}
	cmd := &cobra.Command{
		Use:   e.String() + " (--index IDX | --vectors FILE.jsonl) --out DIR | --query JSON",
		Short: "Write the mapping and bulk NDJSON of document vectors for " + e.String() + ", or a query body",
		Long: fmt.Sprintf(`Write DIR/mapping.json (field --field of type %s, and the document id as
a keyword) and the documents as bulk NDJSON, DIR/bulk-00000.ndjson, ... of at
most --docs-per-file documents: {"index":{"_id":ID}} then {"id":ID, FIELD:
{token: weight, ...}}. From --index the weights are impact × scale (the
index's quantisation, within scale/2 of the original weights) and tokens come
from the index vocabulary (term ids without one); from --vectors they are the
file's keys and weights, unchanged. Feature names escape "%%" and "." as "%%25"
and "%%2E" (the engines refuse dots); weights ≤ 0 are left out; the engines
keep 9 significant bits of each weight.

--query '{"token": weight, ...}' prints instead the search body of that query
vector (same escaping): %s, top -k.
See docs/format/ciff.md for the commands that load and query the index.`, fieldType, queryForm),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			qs := elastic.NeuralSparse
			switch style {
			case "neural_sparse":
			case "rank_feature":
				qs = elastic.RankFeature
			default:
				return fmt.Errorf("export %s: --query-style %q, want neural_sparse or rank_feature", e, style)
			}
			if query != "" {
				var m map[string]float64
				if err := json.Unmarshal([]byte(query), &m); err != nil {
					return fmt.Errorf("export %s: parse --query: %w", e, err)
				}
				var q []elastic.Term
				for tok, w := range m {
					q = append(q, elastic.Term{Token: tok, Weight: float32(w)})
				}
				sort.Slice(q, func(i, j int) bool { return q[i].Token < q[j].Token })
				body, err := elastic.Query(e, qs, field, q, k)
				if err != nil {
					return fmt.Errorf("export %s: %w", e, err)
				}
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			if out == "" {
				return fmt.Errorf("export %s: --out is required (or --query)", e)
			}
			var src elastic.Source
			switch {
			case (idx == "") == (vectors == ""):
				return fmt.Errorf("export %s: give exactly one of --index and --vectors", e)
			case idx != "":
				r, err := index.Open(idx)
				if err != nil {
					return err
				}
				defer r.Close()
				src = elastic.IndexSource(r)
			default:
				src = vectorSource(cfg, cmd, vectors)
			}
			docs, files, err := elastic.Export(out, e, field, perFile, src)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s and %d documents in %d bulk files\n", out, elastic.MappingFile, docs, files)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&idx, "index", "", "index directory to export")
	f.StringVar(&vectors, "vectors", "", "document vectors (JSONL) to export with their raw weights")
	f.StringVar(&out, "out", "", "output directory")
	f.StringVar(&field, "field", elastic.DefaultField, "name of the vector field")
	f.IntVar(&perFile, "docs-per-file", 10000, "documents per bulk file")
	f.StringVar(&query, "query", "", `print the search body of this query vector, {"token": weight, ...}`)
	f.IntVarP(&k, "k", "k", 10, "with --query: number of hits")
	if e == elastic.OpenSearch {
		f.StringVar(&style, "query-style", "neural_sparse", "with --query: neural_sparse or rank_feature")
	} else {
		style = "neural_sparse"
	}
	return cmd
}

// vectorSource streams a vectors file with its keys as tokens (in byte
// order) and its weights unchanged.
func vectorSource(cfg config.Config, cmd *cobra.Command, path string) elastic.Source {
	return func(fn func(id string, vec []elastic.Term) error) error {
		ids := map[string]uint32{}
		var names []string
		intern := func(key string) (uint32, error) {
			t, ok := ids[key]
			if !ok {
				t = uint32(len(names))
				ids[key] = t
				names = append(names, key)
			}
			return t, nil
		}
		var vec []elastic.Term
		return index.ReadVectors(path, intern, skipOptions(cfg, cmd.ErrOrStderr()), func(id string, tw []index.TermWeight) error {
			vec = vec[:0]
			for _, x := range tw {
				vec = append(vec, elastic.Term{Token: names[x.Term], Weight: x.Weight})
			}
			sort.Slice(vec, func(i, j int) bool { return vec[i].Token < vec[j].Token })
			return fn(id, vec)
		})
	}
}
