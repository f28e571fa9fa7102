package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
)

func init() { register(newEvalCmd) }

// evalFlags are trec_eval's flags.
type evalFlags struct {
	perQuery, complete, noSummary, json bool
	level, depth                        int
	measures                            []string
	workers                             int // the config key threads
}

func newEvalCmd(a *app) *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval [-q] [-c] [-n] [-l N] [-M N] [-m MEASURE]... QRELS RUN",
		Short: "Evaluate a TREC run exactly as trec_eval does",
		Long: `Evaluate the TREC run RUN ("qid Q0 docno rank score tag") against the
judgments QRELS (TREC "qid iter docno rel", or a BEIR qrels .tsv), with
trec_eval 10's semantics and output: hits re-sorted by score with ties broken
by docno in descending order, "measure<TAB>qid|all<TAB>value" lines, measures
in trec_eval's order. The output diffs cleanly against trec_eval's.

Measures take trec_eval names (ndcg_cut.5,10  map  map_cut.100  recip_rank
recall.100  P.10  Rprec  ndcg  num_q  num_ret  num_rel  num_rel_ret; a bare
P, recall, ndcg_cut or map_cut means trec_eval's default cutoffs) or
ir_measures names (nDCG@10  AP  AP@100  RR  RR@10  R@100  P@10  Rprec
Judged@10  NumQ  NumRet  NumRel  NumRelRet; AP(rel=2) for a threshold).
Without -m: the measures of config eval.measures.

One difference from trec_eval 10: without -c, a judged query missing from the
run is skipped (trec_eval 10.0 stops with an error; trec_eval 9 skipped it).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			f.workers = cfg.NumThreads()
			names := f.measures
			if len(names) == 0 {
				names = cfg.Eval.Measures
			}
			res, err := runEval(args[0], args[1], names, f)
			if err != nil {
				return err
			}
			if f.json {
				return res.WriteJSON(cmd.OutOrStdout(), f.perQuery)
			}
			return res.WriteTrec(cmd.OutOrStdout(), f.perQuery, !f.noSummary)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.perQuery, "query", "q", false, "print each query's values too, not only the summary (trec_eval -q)")
	fl.BoolVarP(&f.complete, "complete", "c", false, "average over every judged query; a query missing from the run scores 0 (trec_eval -c)")
	fl.BoolVarP(&f.noSummary, "nosummary", "n", false, "omit the summary (\"all\") lines (trec_eval -n)")
	fl.IntVarP(&f.level, "level", "l", 1, "lowest grade that counts as relevant for binary measures (trec_eval -l)")
	fl.IntVarP(&f.depth, "max-retrieved", "M", 0, "evaluate only the first N hits of each query after sorting; 0 = all (trec_eval -M)")
	fl.StringArrayVarP(&f.measures, "measure", "m", nil, "measure to compute; repeatable; comma lists as in trec_eval (-m ndcg_cut.5,10)")
	fl.BoolVar(&f.json, "json", false, "print the same values as JSON")
	return cmd
}

// runEval reads the files and evaluates: everything the command does but
// printing.
func runEval(qrelsPath, runPath string, names []string, f evalFlags) (*eval.Results, error) {
	if f.level < 1 {
		return nil, fmt.Errorf("eval: -l %d: the relevance level must be at least 1", f.level)
	}
	if f.depth < 0 {
		return nil, fmt.Errorf("eval: -M %d must be >= 0", f.depth)
	}
	ms, err := eval.ParseMeasures(names...)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	eval.TrecOrder(ms)
	qrels, err := corpora.ReadQrels(qrelsPath)
	if err != nil {
		return nil, err
	}
	run, err := corpora.ReadRun(runPath)
	if err != nil {
		return nil, err
	}
	res, err := eval.Evaluate(qrels, run, ms, eval.Options{AllQueries: f.complete, RelThreshold: f.level, Depth: f.depth, Workers: f.workers})
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", runPath, err)
	}
	return res, nil
}
