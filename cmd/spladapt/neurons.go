package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/neurons"
	"github.com/spladapt/spladapt/splade"
)

func init() {
	register(newNeuronsCmd)
	register(newExplainCmd)
}

// parseLayers reads "0,2,5" or "" (all).
func parseLayers(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("parse --layers %q: %w", s, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func newNeuronsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "neurons", Short: "Attribute SPLADE scores to FFN neurons (Integrated Gradients); relevance neurons"}
	cmd.AddCommand(newNeuronsAttributeCmd(a), newNeuronsRelevantCmd(a), newNeuronsPruneCmd(a))
	return cmd
}

func newNeuronsAttributeCmd(a *app) *cobra.Command {
	var model, pairsPath, out, layers, baseline, side, rule string
	var queries, corpus, qrels, run string
	var steps, perQuery, maxQueries int
	cmd := &cobra.Command{
		Use:   "attribute --model M (--pairs PAIRS | --queries Q --corpus C --qrels R --run RUN) --out DIR",
		Short: "Integrated Gradients over the FFN neurons of (query, document) pairs",
		Long: `Attribute the SPLADE score q·d of each pair to the FFN intermediate
neurons (after GELU) of every layer (--layers 0,3,5 for some) by Integrated
Gradients along the straight path from a baseline (--baseline zero, or mean:
each neuron's mean activation over the attributed texts' tokens) to the
actual activations. --steps is the number of path points evaluated by a
forward and a backward pass, batched. --rule piecewise (the default)
evaluates at most that many, in panels of 4 intervals that are narrower
near the baseline, and integrates across the kinks of the score (an argmax
or ReLU switch of the SPLADE head along the path) instead of sampling
them: it finds them from the logits of the other side's terms,
interpolated between the points, and back-propagates from each point the
exact integral of the jumping factor against its interpolation weight. A
long text whose points do not all fit in one batch (2048 positions) loses
a point per further batch (57 points at 64 steps for 256 tokens).
--rule adaptive spends exactly --steps points where the integrand jumps
(a uniform grid of steps/8+1 points, then 12 rounds that cut the intervals
whose exact trapezoid error is largest); midpoint, gauss and trapezoid are
the fixed rules. --side doc (default) attributes the
document's forward pass with the query vector fixed; query and both need a
two-sided model.

Pairs come from --pairs (JSONL {"qid","docid","query","doc","label"}) or
from a collection: --queries, --corpus, --qrels and a --run, taking for each
query up to --per-query relevant documents and as many top-ranked unjudged
or non-relevant documents of the run (--max-queries caps the queries).

Writes DIR/attributions.safetensors (a tensor per side, pairs × layers ×
neurons, and its baseline) and DIR/summary.json ("pairs": qid, docid, label,
score, baseline_score, attribution_sum; per-layer statistics). Prints the
worst completeness error |Σ attributions − (score − baseline_score)| /
|score − baseline_score|; raise --steps when it is above 2%.
Cost per pair: about 3·steps forward-pass equivalents of the document (with
piecewise, forward passes without the full-vocabulary SPLADE head).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || out == "" {
				return fmt.Errorf("neurons attribute: --model and --out are required")
			}
			ls, err := parseLayers(layers)
			if err != nil {
				return err
			}
			r, err := neurons.ParseRule(rule)
			if err != nil {
				return err
			}
			sides := []string{side}
			if side == "both" {
				sides = []string{neurons.SideDoc, neurons.SideQuery}
			}
			var pairs []neurons.Pair
			switch {
			case pairsPath != "":
				if pairs, err = neurons.ReadPairs(pairsPath); err != nil {
					return err
				}
			case queries != "" && corpus != "" && qrels != "" && run != "":
				if pairs, err = neurons.DrawPairsFrom(queries, corpus, qrels, run, perQuery, maxQueries, skipOptions(cfg, cmd.ErrOrStderr())); err != nil {
					return err
				}
			default:
				return fmt.Errorf("neurons attribute: give --pairs, or --queries, --corpus, --qrels and --run")
			}
			enc, err := loadEncoder(cfg, model)
			if err != nil {
				return err
			}
			bar := progress.New(cmd.ErrOrStderr(), progress.Enabled(cfg.Progress), "attribute", "pairs", int64(len(pairs)))
			last := 0
			res, err := neurons.AttributePairs(enc, model, pairs, neurons.Options{Layers: ls, Steps: steps, Rule: r, Baseline: baseline, Sides: sides,
				Progress: func(n int) { bar.Add(int64(n - last)); last = n }})
			bar.Done()
			if err != nil {
				return err
			}
			if err := res.WriteDir(out); err != nil {
				return fmt.Errorf("neurons attribute: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "attributed %d pairs (%s side, layers %v, %d %s steps, %s baseline) → %s; worst completeness error %.3g%%\n",
				len(pairs), strings.Join(res.Sides, "+"), res.Layers, res.Steps, res.Rule, res.Baseline, out, 100*res.MaxCompletenessError())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "SPLADE checkpoint directory")
	f.StringVar(&pairsPath, "pairs", "", `JSONL pairs {"qid","docid","query","doc","label"}`)
	f.StringVar(&queries, "queries", "", "queries (BEIR queries.jsonl, TSV or TREC topics)")
	f.StringVar(&corpus, "corpus", "", "corpus (BEIR dir or corpus file)")
	f.StringVar(&qrels, "qrels", "", "qrels (TREC or BEIR TSV)")
	f.StringVar(&run, "run", "", "TREC run: where the non-relevant documents are drawn from")
	f.IntVar(&perQuery, "per-query", 1, "relevant (and as many non-relevant) documents per query")
	f.IntVar(&maxQueries, "max-queries", 100, "queries to draw pairs from (0: all)")
	f.StringVar(&out, "out", "", "output directory")
	f.StringVar(&layers, "layers", "", "attributed layers, comma separated (default all)")
	f.IntVar(&steps, "steps", 64, "path points evaluated by a forward and a backward pass (at most, for piecewise)")
	f.StringVar(&rule, "rule", "piecewise", "quadrature rule: piecewise, adaptive, midpoint, gauss or trapezoid")
	f.StringVar(&baseline, "baseline", "zero", "baseline activations: zero or mean")
	f.StringVar(&side, "side", "doc", "attributed forward pass: doc, query or both")
	return cmd
}

func newNeuronsRelevantCmd(a *app) *cobra.Command {
	var dirs []string
	var top int
	var side string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "relevant --attr DIR [--attr DIR2] [--top n]",
		Short: "Neurons whose attribution separates relevant from non-relevant pairs, and overlaps",
		Long: `Rank the neurons of each attribution directory (from "neurons attribute") by
Cliff's delta between their attributions on relevant (label > 0) and
non-relevant pairs, δ = P(X > Y) − P(X < Y) = 2·AUC − 1, and print the top n
with the count per layer. With two or more --attr, print the overlap of each
later directory's top n with the first one's (common neurons, Jaccard, per
layer): in-domain vs out-of-domain pairs with one model, or the same pairs
under P_domain(source) and P_domain(target) models.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(dirs) == 0 {
				return fmt.Errorf("neurons relevant: --attr is required")
			}
			type report struct {
				Dir     string                    `json:"dir"`
				Top     []neurons.NeuronRelevance `json:"top"`
				Overlap *neurons.Overlap          `json:"overlap_with_first,omitempty"`
			}
			var reps []report
			var first []neurons.NeuronRelevance
			w := cmd.OutOrStdout()
			for i, d := range dirs {
				at, err := neurons.ReadDir(d)
				if err != nil {
					return err
				}
				rel, err := at.Relevance(side)
				if err != nil {
					return fmt.Errorf("neurons relevant %s: %w", d, err)
				}
				rep := report{Dir: d, Top: rel[:min(top, len(rel))]}
				if i == 0 {
					first = rel
				} else {
					ov := neurons.TopOverlap(first, rel, top)
					rep.Overlap = &ov
				}
				reps = append(reps, rep)
				if asJSON {
					continue
				}
				fmt.Fprintf(w, "%s: top %d of %d neurons by Cliff's delta (%s side)\n", d, len(rep.Top), len(rel), side)
				perLayer := map[int]int{}
				for _, r := range rep.Top {
					perLayer[r.Layer]++
				}
				for _, l := range at.Layers {
					fmt.Fprintf(w, "  layer %2d: %d\n", l, perLayer[l])
				}
				for _, r := range rep.Top {
					fmt.Fprintf(w, "  layer %2d neuron %5d  δ %+.3f  mean diff %+.5f\n", r.Layer, r.Neuron, r.Delta, r.MeanDiff)
				}
				if rep.Overlap != nil {
					fmt.Fprintf(w, "  overlap with %s: %d of %d common, Jaccard %.3f\n", dirs[0], rep.Overlap.Common, top, rep.Overlap.Jaccard)
				}
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(reps)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&dirs, "attr", nil, "attribution directory (repeat to compare)")
	cmd.Flags().IntVar(&top, "top", 100, "relevance neurons to keep")
	cmd.Flags().StringVar(&side, "side", "doc", "side whose neurons to rank")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newNeuronsPruneCmd(a *app) *cobra.Command {
	var model, attr, data, split, ns, out, side string
	var seeds, depth int
	cmd := &cobra.Command{
		Use:   "prune --model M --attr DIR --data BEIRDIR --n 10,50,100,200 --out REPORTDIR",
		Short: "Pruning study: nDCG@10 with the top-n relevance neurons ablated, against random and least-relevant ones",
		Long: `Rank the attributed neurons of --attr (from "neurons attribute" with the same
--model) by Cliff's delta as "neurons relevant" does, and for each n of --n
ablate (set to the baseline activation stored in --attr, at every token) the
top n, n random ones (--random-seeds draws, averaged) and the n least
relevant, then evaluate nDCG@10 on the BEIR collection --data (queries judged
in qrels/--split.tsv) by exact search over its whole corpus. The three
selections are disjoint: random neurons are drawn from those that are neither
among the top n nor the n least relevant, so 3n must not exceed the number of
attributed neurons. For an inference-free model only the documents see the
ablation; a two-sided model's queries are ablated too.

Writes REPORTDIR/prune.json, prune.svg (the three curves, n = 0 the unablated
model) and prune.html. Cost: 1 + len(n)·(2 + seeds) encodings of the corpus.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" || attr == "" || data == "" || out == "" {
				return fmt.Errorf("neurons prune: --model, --attr, --data and --out are required")
			}
			g, err := claimOutput(cmd, out, true, model, attr, data)
			if err != nil {
				return err
			}
			defer g.Release()
			var sizes []int
			for _, f := range strings.Split(ns, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < 0 {
					return fmt.Errorf("neurons prune: parse --n %q: want sizes ≥ 0 separated by commas", ns)
				}
				sizes = append(sizes, n)
			}
			at, err := neurons.ReadDir(attr)
			if err != nil {
				return err
			}
			dev, err := splade.LoadDevSet(data, split, skipOptions(cfg, cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			enc, err := loadEncoder(cfg, model)
			if err != nil {
				return err
			}
			start := time.Now()
			bar := progress.New(cmd.ErrOrStderr(), progress.Enabled(cfg.Progress), "prune", "evaluations", int64(1+len(sizes)*(2+max(seeds, 1))))
			st, err := neurons.Prune(enc, at, dev, neurons.PruneOptions{Ns: sizes, Seeds: seeds, Side: side, Depth: depth,
				Progress: func(string) { bar.Add(1) }, Ctx: cmd.Context()})
			bar.Done()
			if err != nil {
				return err
			}
			st.Model, st.Attr, st.Data = model, attr, data+" ("+split+")"
			st.Seconds = time.Since(start).Seconds()
			if err := st.WriteDir(out); err != nil {
				return fmt.Errorf("neurons prune: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s on %s: unablated %.4f (%d queries, %d docs; %d neurons ranked from %d pairs)\n", st.Measure, st.Data, st.Unablated, st.Queries, st.Docs, len(st.Layers)*st.Neurons, st.Pairs)
			fmt.Fprintf(w, "%6s %8s %8s %8s\n", "n", "top", "random", "least")
			for _, p := range st.Points {
				fmt.Fprintf(w, "%6d %8.4f %8.4f %8.4f\n", p.N, p.Top, p.Random, p.Least)
			}
			fmt.Fprintf(w, "→ %s (%.0f s)\n", filepath.Join(out, "prune.html"), st.Seconds)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "SPLADE checkpoint directory (the attributed model)")
	f.StringVar(&attr, "attr", "", `attribution directory from "neurons attribute"`)
	f.StringVar(&data, "data", "", "BEIR collection directory to evaluate on")
	f.StringVar(&split, "split", "test", "qrels split (qrels/SPLIT.tsv)")
	f.StringVar(&ns, "n", "10,50,100,200", "numbers of neurons to ablate, comma separated")
	f.IntVar(&seeds, "random-seeds", 3, "random selections per n (averaged)")
	f.StringVar(&side, "side", "doc", "side whose neurons to rank and baseline to use")
	f.IntVar(&depth, "depth", 100, "retrieval depth")
	f.StringVar(&out, "out", "", "report directory")
	addForceFlag(cmd)
	return cmd
}

func newExplainCmd(a *app) *cobra.Command {
	var model, query, doc, data, qid, docid, layers string
	var asJSON, asHTML bool
	var steps, top int
	cmd := &cobra.Command{
		Use:   "explain --model M (--query Q --doc D | --data DIR --qid Q --docid D)",
		Short: "Why does this document match this query? Per-term contributions and top neurons",
		Long: `Encode a query and a document with a SPLADE model and decompose their score
into per-term contributions q_t·d_t (largest first; they sum to the score),
marking the expansion terms (not among the document's own word pieces), and
list the --top-neurons document neurons with the largest |attribution|
(Integrated Gradients, --steps path points of the piecewise rule, zero
baseline; 0 skips it).
--data DIR (BEIR) with --qid and --docid reads the texts from a collection.
Text by default, --json, or --html: a self-contained fragment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if model == "" {
				return fmt.Errorf("explain: --model is required")
			}
			if data != "" {
				if query, doc, err = neurons.LookupPair(data, qid, docid, skipOptions(cfg, cmd.ErrOrStderr())); err != nil {
					return err
				}
			}
			if query == "" || doc == "" {
				return fmt.Errorf("explain: give --query and --doc, or --data with --qid and --docid")
			}
			ls, err := parseLayers(layers)
			if err != nil {
				return err
			}
			enc, err := loadEncoder(cfg, model)
			if err != nil {
				return err
			}
			ex, err := neurons.Explain(enc, query, doc, neurons.ExplainOptions{TopNeurons: top, Steps: steps, Layers: ls})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case asJSON:
				e := json.NewEncoder(w)
				e.SetIndent("", "  ")
				return e.Encode(ex)
			case asHTML:
				return ex.WriteHTML(w)
			}
			return ex.WriteText(w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "SPLADE checkpoint directory")
	f.StringVar(&query, "query", "", "query text")
	f.StringVar(&doc, "doc", "", "document text")
	f.StringVar(&data, "data", "", "BEIR collection directory (with --qid, --docid)")
	f.StringVar(&qid, "qid", "", "query id in --data")
	f.StringVar(&docid, "docid", "", "document id in --data")
	f.IntVar(&top, "top-neurons", 10, "document neurons to list (0: no attribution)")
	f.IntVar(&steps, "steps", 64, "Integrated Gradients path points (forward and backward passes)")
	f.StringVar(&layers, "layers", "", "attributed layers, comma separated (default all)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&asHTML, "html", false, "print an HTML fragment")
	return cmd
}
