package adapt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/pretrain"
	"github.com/spladapt/spladapt/rerank"
	"github.com/spladapt/spladapt/splade"
)

// Plan is what one adapt run does: the settings and the targets. It is
// saved as RUNDIR/plan.json so that "spladapt adapt status" can rebuild the
// stage list.
type Plan struct {
	Config  config.Config `json:"config"`
	Targets []string      `json:"targets"`
}

// System names in runs and reports.
const (
	SysBM25     = "bm25"
	SysZeroShot = "zero-shot"
	SysAdapted  = "adapted"
	SysFull     = "full-mlm"
)

// RerankSuffix marks a system's run re-ranked by adapt.rerank in the
// rerank-T stage's runs and report and in the summary: "adapted+rerank".
const RerankSuffix = "+rerank"

// Pipeline runs a Plan in a run directory.
type Pipeline struct {
	Plan   Plan
	Runner *Runner
	Log    io.Writer
	// CorpusOpts is how corpora treat bad records.
	CorpusOpts corpora.Options
}

// TargetResult is what the pipeline produced for one target.
type TargetResult struct {
	Target     string                        `json:"target"`
	Name       string                        `json:"name"`
	Index      map[string]string             `json:"index"`     // system → index directory
	Evaluated  bool                          `json:"evaluated"` // false: no queries/qrels, stopped at the index
	Report     string                        `json:"report"`    // comparison report directory
	Means      map[string]map[string]float64 `json:"means"`     // system → measure → mean (re-ranked systems included)
	Deltas     map[string]eval.Delta         `json:"-"`
	Comparison *eval.Comparison              `json:"-"`
	Perplexity map[string]float64            `json:"perplexity"` // model → held-out perplexity on the target
	// RerankReport is the rerank-T stage's comparison report directory
	// and RerankComparison its comparison (baseline zero-shot+rerank);
	// empty and nil without adapt.rerank.
	RerankReport     string           `json:"rerank_report,omitempty"`
	RerankComparison *eval.Comparison `json:"-"`
}

// Result of a whole run.
type Result struct {
	RunDir  string          `json:"run_dir"`
	Targets []*TargetResult `json:"targets"`
	Summary string          `json:"summary"` // summary directory
}

func (p *Pipeline) logf(format string, args ...any) {
	if p.Log != nil {
		fmt.Fprintf(p.Log, format+"\n", args...)
	}
}

// targetName is a stage-safe name for a target directory.
func targetName(dir string) string {
	n := filepath.Base(filepath.Clean(dir))
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, n)
}

// Stages lists every stage of the plan in order (for status and for Run).
func (p *Pipeline) Stages() []Stage {
	var ss []Stage
	ss = append(ss, p.baseStage(), p.sourceMLMStage(), p.spladeSourceStage())
	for _, t := range p.Plan.Targets {
		ss = append(ss, p.targetStages(t)...)
	}
	ss = append(ss, p.summaryStage())
	return ss
}

// Run executes the plan: shared source stages, then each target's stages,
// then the summary over targets.
func (p *Pipeline) Run(ctx context.Context) (*Result, error) {
	if err := os.MkdirAll(p.Runner.Dir, 0o755); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(p.Plan, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(p.Runner.Dir, "plan.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	for _, s := range p.Stages() {
		if _, err := p.Runner.Run(ctx, s); err != nil {
			return nil, err
		}
	}
	res := &Result{RunDir: p.Runner.Dir, Summary: p.Runner.Path("summary")}
	for _, t := range p.Plan.Targets {
		tr, err := p.readTarget(t, p.cfg().Adapt.Rerank != "")
		if err != nil {
			return nil, err
		}
		res.Targets = append(res.Targets, tr)
	}
	return res, nil
}

func (p *Pipeline) cfg() config.Config { return p.Plan.Config }

// model is the checkpoint a model stage leaves in its directory.
func (p *Pipeline) model(stage string) string { return filepath.Join(p.Runner.Path(stage), "model") }

// index is the index an encoding stage leaves in its directory.
func (p *Pipeline) index(stage string) string { return filepath.Join(p.Runner.Path(stage), "index") }

// --- source stages -----------------------------------------------------

// baseStage is the starting checkpoint: adapt.base as given, or a model
// trained from scratch (MLM, all parameters) on the source corpora.
func (p *Pipeline) baseStage() Stage {
	if p.cfg().Adapt.Base != "" {
		s, key := settings(p.cfg(), "adapt.base")
		return Stage{Name: "base", Config: key, Inputs: []string{s.Adapt.Base},
			Run: func(ctx context.Context, out, work string, notes map[string]any) error {
				return copyDir(s.Adapt.Base, filepath.Join(out, "model"))
			}}
	}
	s, key := settings(p.cfg(), "pretrain", "adapt.source")
	key["from_scratch"] = true
	return Stage{Name: "base", Config: key, Inputs: s.Adapt.Source,
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			pc := s.Pretrain
			pc.TrainParams = "all"
			return p.trainMLM(ctx, s, pc, pretrain.Options{Corpora: s.Adapt.Source, FromScratch: true}, out, work, notes)
		}}
}

// trainMLM runs pretrain.Train on o (its corpora and its start, Init or
// FromScratch) with settings pc, resumably in work, notes the result and
// moves the model to out/model. s is the stage's settings (cache,
// progress).
func (p *Pipeline) trainMLM(ctx context.Context, s config.Config, pc config.Pretrain, o pretrain.Options, out, work string, notes map[string]any) error {
	o.Out, o.WorkDir, o.Resume = filepath.Join(work, "model"), filepath.Join(work, "train"), true
	o.CacheDir, o.Settings, o.Progress, o.Log, o.CorpusOpts = filepath.Join(s.Cache(), "tokens"), pc.Settings(), s.Progress, p.Log, p.CorpusOpts
	res, err := pretrain.Train(ctx, o)
	if err != nil {
		return err
	}
	notes["pretrain"] = res
	return moveDir(filepath.Join(work, "model"), filepath.Join(out, "model"))
}

// mlmStage continues MLM of init on corpora, training trainParams for the
// number of steps of the setting stepsSetting (adapt.source_mlm_steps or
// adapt.target_mlm_steps) at the peak learning rate adapt.mlm_lr.
func (p *Pipeline) mlmStage(name, init string, corpora []string, trainParams, stepsSetting string) Stage {
	s, key := settings(p.cfg(), "pretrain", "adapt.mlm_lr", stepsSetting)
	key["corpora"], key["train_params"] = corpora, trainParams
	return Stage{Name: name, Config: key, Inputs: append([]string{init}, corpora...),
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			steps := s.Adapt.TargetMLMSteps
			if stepsSetting == "adapt.source_mlm_steps" {
				steps = s.Adapt.SourceMLMSteps
			}
			pc := s.Pretrain
			pc.TrainParams, pc.Steps, pc.LR = trainParams, steps, s.Adapt.MLMLR
			pc.WarmupSteps = min(pc.WarmupSteps, steps/10)
			return p.trainMLM(ctx, s, pc, pretrain.Options{Corpora: corpora, Init: init}, out, work, notes)
		}}
}

// sourceMLMStage is step (1) of the method: MLM of P_domain on the source
// corpus, P_task frozen. A base trained from scratch on the source corpora
// already is P_domain(source): the stage then passes it through.
func (p *Pipeline) sourceMLMStage() Stage {
	c := p.cfg()
	base := p.model("base")
	if c.Adapt.Base == "" || c.Adapt.SourceMLMSteps == 0 {
		return Stage{Name: "source-mlm", Config: map[string]any{"pass_through": true}, Inputs: []string{base},
			Run: func(ctx context.Context, out, work string, notes map[string]any) error {
				notes["pass_through"] = "base trained on the source corpora (or adapt.source_mlm_steps = 0)"
				return copyDir(base, filepath.Join(out, "model"))
			}}
	}
	return p.mlmStage("source-mlm", base, c.Adapt.Source, "domain", "adapt.source_mlm_steps")
}

// spladeStage fine-tunes init into SPLADE on the source training data,
// training trainParams.
func (p *Pipeline) spladeStage(name, init, trainParams string) Stage {
	s, key := settings(p.cfg(), "splade", "model", "bm25", "pretrain.domain_layers",
		"adapt.source", "adapt.source_split", "adapt.dev", "adapt.dev_split")
	key["train_params"] = trainParams
	return Stage{Name: name, Config: key, Inputs: append(append([]string{init}, s.Adapt.Source...), s.Adapt.Dev...),
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			sc := s
			sc.Splade.TrainParams = trainParams
			sc.Splade.DomainLayers = s.Pretrain.DomainLayers
			set, err := sc.SpladeJob()
			if err != nil {
				return err
			}
			meta, err := splade.TrainJob{Init: init, Out: filepath.Join(work, "model"), WorkDir: filepath.Join(work, "train"),
				Resume: true, Train: s.Adapt.Source, Split: s.Adapt.SourceSplit, Dev: s.Adapt.Dev, DevSplit: s.Adapt.DevSplit,
				Settings: set, CorpusOpts: p.CorpusOpts, Log: p.Log, Progress: s.Progress}.Run(ctx)
			if err != nil {
				return err
			}
			notes["splade"] = meta
			return moveDir(filepath.Join(work, "model"), filepath.Join(out, "model"))
		}}
}

// spladeSourceStage is step (3): SPLADE fine-tuning of P_task on the
// source data with P_domain(source) frozen. Its model is the zero-shot
// model P_domain(source) + P_task.
func (p *Pipeline) spladeSourceStage() Stage {
	return p.spladeStage("splade-source", p.model("source-mlm"), "task")
}

// --- per-target stages -------------------------------------------------

func (p *Pipeline) targetStages(target string) []Stage {
	c := p.cfg()
	n := targetName(target)
	zeroShot := p.model("splade-source")
	var ss []Stage
	// (2) MLM of P_domain on the target, P_task frozen.
	ss = append(ss, p.mlmStage("target-mlm-"+n, p.model("source-mlm"), []string{target}, "domain", "adapt.target_mlm_steps"))
	// (4) adapted = P_domain(target) + P_task.
	tm := p.model("target-mlm-" + n)
	s, key := settings(c, "pretrain.domain_layers")
	ss = append(ss, Stage{Name: "adapted-" + n, Config: key,
		Inputs: []string{p.Runner.Path("target-mlm-" + n), p.Runner.Path("splade-source")},
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			return pretrain.Swap(tm, zeroShot, filepath.Join(out, "model"), s.Pretrain.DomainLayers)
		}})
	models := map[string]string{SysZeroShot: zeroShot, SysAdapted: p.model("adapted-" + n)}
	if c.Adapt.FullBaseline || c.Adapt.FullMLM {
		// Continued pretraining of the whole encoder on the target ...
		ss = append(ss, p.mlmStage("full-mlm-"+n, p.model("base"), []string{target}, "all", "adapt.target_mlm_steps"))
	}
	if c.Adapt.FullBaseline {
		// ... then, for the "MLM" baseline, SPLADE fine-tuning of everything on the source.
		ss = append(ss, p.spladeStage("splade-full-"+n, p.model("full-mlm-"+n), "all"))
		models[SysFull] = p.model("splade-full-" + n)
	}
	for _, sys := range slices.Sorted(maps.Keys(models)) {
		ss = append(ss, p.encodeStage("index-"+sys+"-"+n, models[sys], target))
	}
	ss = append(ss, p.bm25Stage(target))
	ss = append(ss, p.evalStage(target, models))
	if c.Adapt.Rerank != "" {
		ss = append(ss, p.rerankStage(target))
	}
	return ss
}

// encodeStage encodes target's corpus with model into an index.
func (p *Pipeline) encodeStage(name, model, target string) Stage {
	s, key := settings(p.cfg(), "model.max_length", "splade.top_n", "splade.shard_size", "index.quant_bits", "index.block_size")
	return Stage{Name: name, Config: key, Inputs: []string{model, target},
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			// No query is encoded here: the query length is the document length.
			enc, err := splade.LoadEncoder(model, s.Model.MaxLength, s.Model.MaxLength, s.Splade.TopN)
			if err != nil {
				return err
			}
			idx := filepath.Join(work, "index")
			st, err := EncodeCorpus(ctx, enc, target, idx, EncodeCorpusOptions{
				WorkDir: filepath.Join(work, "shards"), ShardSize: s.Splade.ShardSize,
				Index:       index.Options{Workers: s.NumThreads(), QuantBits: s.Index.QuantBits, BlockSize: s.Index.BlockSize},
				Fingerprint: splade.Fingerprint(enc, model), Corpus: p.CorpusOpts})
			if err != nil {
				return err
			}
			notes["encode"] = st
			p.logf("%s: %d documents, %.0f docs/s, %.1f non-zeros per document, index %d bytes", name, st.Docs, st.DocsPerSec, st.MeanNNZ, st.IndexBytes)
			return moveDir(idx, filepath.Join(out, "index"))
		}}
}

// bm25Stage builds target's BM25 index, which no setting changes (k1 and
// b are chosen at search time).
func (p *Pipeline) bm25Stage(target string) Stage {
	_, key := settings(p.cfg())
	return Stage{Name: "bm25-" + targetName(target), Config: key, Inputs: []string{target},
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			m, err := bm25.BuildCorpus(filepath.Join(work, "bm25"), target, p.CorpusOpts, nil)
			if err != nil {
				return err
			}
			notes["docs"] = m
			return moveDir(filepath.Join(work, "bm25"), filepath.Join(out, "bm25"))
		}}
}

// hasQrels reports whether target is a BEIR directory with queries and
// split's judgments.
func hasQrels(target, split string) bool {
	b := corpora.BEIR{Dir: target}
	if !corpora.IsBEIR(target) || !b.HasQrels(split) {
		return false
	}
	_, err := os.Stat(filepath.Join(target, "queries.jsonl"))
	return err == nil
}

// evalStage searches every index with the target's queries, evaluates,
// and writes the comparison report (baseline: zero-shot), with the
// held-out perplexity of the MLM models on the target. For a target
// without queries and qrels it records that the pipeline stopped at the
// indexes.
func (p *Pipeline) evalStage(target string, models map[string]string) Stage {
	s, key := settings(p.cfg(), "eval.measures", "index.depth", "index.algorithm", "adapt.target_split",
		"bm25.k1", "bm25.b", "model", "splade.top_n", "splade.query_idf", "pretrain", "adapt.full_mlm", "adapt.full_baseline")
	n := targetName(target)
	full := s.Adapt.FullBaseline || s.Adapt.FullMLM
	inputs := []string{p.Runner.Path("bm25-" + n)}
	for sys := range models {
		inputs = append(inputs, p.Runner.Path("index-"+sys+"-"+n), filepath.Dir(models[sys]))
	}
	if full {
		inputs = append(inputs, p.Runner.Path("full-mlm-"+n))
	}
	slices.Sort(inputs)
	return Stage{Name: "eval-" + n, Config: key, Inputs: append(inputs, target),
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			split := s.Adapt.TargetSplit
			if !hasQrels(target, split) {
				notes["evaluated"] = false
				p.logf("%s has no queries.jsonl and qrels/%s.tsv: the pipeline stops at the adapted index (%s)",
					target, split, p.index("index-"+SysAdapted+"-"+n))
				return nil
			}
			qrels, queries, err := corpora.BEIR{Dir: target}.Judged(split, p.CorpusOpts)
			if err != nil {
				return err
			}
			runs := map[string]corpora.Run{}
			bx, err := bm25.Open(filepath.Join(p.Runner.Path("bm25-"+n), "bm25"))
			if err != nil {
				return err
			}
			runs[SysBM25], err = bx.SearchAll(queries, bm25.SearchOptions{K: s.Index.Depth, Params: bm25.Params{K1: s.BM25.K1, B: s.BM25.B}, Workers: s.NumThreads()})
			bx.Close()
			if err != nil {
				return err
			}
			alg, err := index.ParseAlgorithm(s.Index.Algorithm)
			if err != nil {
				return err
			}
			for sys, model := range models {
				run, err := searchText(model, p.index("index-"+sys+"-"+n), queries, s, alg)
				if err != nil {
					return fmt.Errorf("%s: %w", sys, err)
				}
				runs[sys] = run
			}
			title := fmt.Sprintf("%s (%s split): adapted vs zero-shot", n, split)
			if err := writeRunsAndReport(out, runs, "", qrels, s, title); err != nil {
				return err
			}
			notes["evaluated"] = true
			notes["queries"] = len(queries)
			// Held-out perplexity on the target before and after MLM on it.
			ppl := map[string]float64{}
			for label, dir := range map[string]string{"source-mlm": p.model("source-mlm"), "target-mlm": p.model("target-mlm-" + n)} {
				_, pp, _, err := pretrain.EvalCorpus(ctx, dir, []string{target}, s.Pretrain.Settings(), filepath.Join(s.Cache(), "tokens"), p.CorpusOpts)
				if err != nil {
					return err
				}
				ppl[label] = pp
			}
			if full {
				_, pp, _, err := pretrain.EvalCorpus(ctx, p.model("full-mlm-"+n), []string{target}, s.Pretrain.Settings(), filepath.Join(s.Cache(), "tokens"), p.CorpusOpts)
				if err != nil {
					return err
				}
				ppl["full-mlm"] = pp
			}
			notes["perplexity"] = ppl
			return nil
		}}
}

// writeRunsAndReport writes each system's run as out/runs/<sys><suffix>.trec
// and the comparison of zero-shot with the adapted, full-mlm and bm25 runs
// present (eval.measures, Holm-corrected paired tests, every query) to
// out/report, systems named with suffix. runs is keyed by system name
// without the suffix and must hold zero-shot.
func writeRunsAndReport(out string, runs map[string]corpora.Run, suffix string, qrels corpora.Qrels, s config.Config, title string) error {
	for sys, run := range runs {
		name := sys + suffix
		err := atomicfile.Write(filepath.Join(out, "runs", name+".trec"), 0o644, func(w io.Writer) error {
			return corpora.WriteRun(w, run, "spladapt-"+name)
		})
		if err != nil {
			return err
		}
	}
	ms, err := eval.ParseMeasures(s.Eval.Measures...)
	if err != nil {
		return err
	}
	var others []eval.NamedRun
	for _, sys := range []string{SysAdapted, SysFull, SysBM25} {
		if run, ok := runs[sys]; ok {
			others = append(others, eval.NamedRun{Name: sys + suffix, Run: run})
		}
	}
	cmp, err := eval.Compare(qrels, eval.NamedRun{Name: SysZeroShot + suffix, Run: runs[SysZeroShot]}, others, ms,
		eval.Options{AllQueries: true, RelThreshold: 1, Workers: s.NumThreads()})
	if err != nil {
		return err
	}
	cmp.Title = title
	return cmp.WriteDir(filepath.Join(out, "report"))
}

// searchText encodes queries with the model and searches the index.
func searchText(model, idxDir string, queries []corpora.Query, c config.Config, alg index.Algorithm) (corpora.Run, error) {
	enc, err := splade.LoadEncoder(model, c.Model.MaxLength, c.Model.QueryMaxLength, c.Splade.TopN)
	if err != nil {
		return nil, err
	}
	run, _, err := searchSplade(enc, idxDir, queries, c.Index.Depth, alg, c.Splade.QueryIDF)
	return run, err
}

// searchSplade searches the SPLADE index idxDir for enc's vectors of the
// queries (an inference-free model's weighted as queryIDF says, see
// splade.QueriesFor), refusing an index of another vocabulary, and returns
// the run and the mean non-zeros of the query vectors.
func searchSplade(enc *splade.Encoder, idxDir string, queries []corpora.Query, depth int, alg index.Algorithm, queryIDF string) (corpora.Run, float64, error) {
	r, err := index.Open(idxDir)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	if err := CheckIndex(enc, r); err != nil {
		return nil, 0, err
	}
	qenc, err := splade.QueriesFor(enc, idxDir, queryIDF)
	if err != nil {
		return nil, 0, err
	}
	vecs, err := index.EncodeQueries(qenc, queries)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, len(queries))
	nnz := 0
	for i, q := range queries {
		ids[i] = q.ID
		nnz += len(vecs[i])
	}
	run, err := r.SearchRun(ids, vecs, depth, alg)
	if err != nil {
		return nil, 0, err
	}
	return run, float64(nnz) / float64(max(len(queries), 1)), nil
}

// rerankStage re-scores the top adapt.rerank_depth hits of every run of
// the target's eval stage (bm25, zero-shot, adapted and full-mlm, those it
// wrote) with the re-ranker adapt.rerank (rerank.LoadScorer at
// rerank.max_length, rerank.score_batch_size pairs per pass), writes them
// as runs/<sys>+rerank.trec and compares them in report/ (baseline
// zero-shot+rerank, Holm-corrected as in the eval stage). A query keeps
// only its re-scored hits. For a target the eval stage did not evaluate
// (no queries and qrels) it records that nothing was re-ranked.
func (p *Pipeline) rerankStage(target string) Stage {
	s, key := settings(p.cfg(), "adapt.rerank", "adapt.rerank_depth", "rerank.max_length", "rerank.score_batch_size",
		"eval.measures", "adapt.target_split")
	n := targetName(target)
	name, evalDir := "rerank-"+n, p.Runner.Path("eval-"+n)
	return Stage{Name: name, Config: key, Inputs: []string{evalDir, s.Adapt.Rerank, target},
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			m, err := ReadMeta(evalDir)
			if err != nil {
				return err
			}
			if ev, _ := m.Notes["evaluated"].(bool); !ev {
				notes["evaluated"] = false
				p.logf("%s: %s has no queries and qrels: nothing to re-rank", name, target)
				return nil
			}
			split, depth := s.Adapt.TargetSplit, s.Adapt.RerankDepth
			qrels, queries, err := corpora.BEIR{Dir: target}.Judged(split, p.CorpusOpts)
			if err != nil {
				return err
			}
			var systems []string
			var runs []corpora.Run
			for _, sys := range []string{SysZeroShot, SysAdapted, SysFull, SysBM25} {
				path := filepath.Join(evalDir, "runs", sys+".trec")
				if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && sys != SysZeroShot {
					continue // full-mlm without adapt.full_baseline
				}
				run, err := corpora.ReadRun(path)
				if err != nil {
					return err
				}
				systems, runs = append(systems, sys), append(runs, run)
			}
			sc, err := rerank.LoadScorer(s.Adapt.Rerank, s.Rerank.MaxLength, s.Rerank.ScoreBatchSize)
			if err != nil {
				return fmt.Errorf("load re-ranker %s: %w", s.Adapt.Rerank, err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			pairs := rerankPairs(runs, depth)
			log := p.Log
			if log == nil {
				log = io.Discard
			}
			bar := progress.New(log, progress.Enabled(s.Progress), name, "pairs", int64(pairs))
			start := time.Now()
			reranked, err := rerankRuns(sc, target, queries, runs, depth, p.CorpusOpts, func(k int) { bar.Add(int64(k)) })
			bar.Done()
			if err != nil {
				return err
			}
			secs := time.Since(start).Seconds()
			named := map[string]corpora.Run{}
			for i, sys := range systems {
				named[sys] = reranked[i]
			}
			title := fmt.Sprintf("%s (%s split), top %d re-ranked by %s: adapted vs zero-shot", n, split, depth, s.Adapt.Rerank)
			if err := writeRunsAndReport(out, named, RerankSuffix, qrels, s, title); err != nil {
				return err
			}
			notes["evaluated"] = true
			notes["queries"] = len(queries)
			notes["systems"] = systems
			notes["pairs"] = pairs
			notes["pairs_per_sec"] = float64(pairs) / max(secs, 1e-9)
			p.logf("%s: %d runs × %d queries, top %d re-ranked: %d pairs, %.0f pairs/s", name, len(runs), len(queries), depth, pairs, float64(pairs)/max(secs, 1e-9))
			return nil
		}}
}

// --- summary -----------------------------------------------------------

// summaryStage writes the table over targets from their eval stages and,
// with adapt.rerank, their rerank stages.
func (p *Pipeline) summaryStage() Stage {
	// adapt.rerank is keyed only when set, so that a run without
	// re-ranking keeps the key (and the summary) it had before the
	// setting existed.
	paths := []string{"adapt.full_baseline"}
	rerankOn := p.cfg().Adapt.Rerank != ""
	if rerankOn {
		paths = append(paths, "adapt.rerank")
	}
	s, key := settings(p.cfg(), paths...)
	key["targets"] = p.Plan.Targets
	var inputs []string
	for _, t := range p.Plan.Targets {
		inputs = append(inputs, p.Runner.Path("eval-"+targetName(t)))
		if rerankOn {
			inputs = append(inputs, p.Runner.Path("rerank-"+targetName(t)))
		}
	}
	return Stage{Name: "summary", Config: key, Inputs: inputs,
		Run: func(ctx context.Context, out, work string, notes map[string]any) error {
			var trs []*TargetResult
			for _, t := range p.Plan.Targets {
				tr, err := p.readTarget(t, s.Adapt.Rerank != "")
				if err != nil {
					return err
				}
				trs = append(trs, tr)
			}
			return writeSummary(out, trs, s, p.stageTimes())
		}}
}

// stageTimes reads each finished stage's wall time.
func (p *Pipeline) stageTimes() []StageTime {
	var out []StageTime
	for _, s := range p.Stages() {
		if s.Name == "summary" {
			continue
		}
		if m, err := ReadMeta(p.Runner.Path(s.Name)); err == nil {
			out = append(out, StageTime{Stage: s.Name, Seconds: m.Seconds})
		}
	}
	return out
}

// StageTime is one stage's wall-clock time.
type StageTime struct {
	Stage   string  `json:"stage"`
	Seconds float64 `json:"seconds"`
}

// readTarget collects a target's results from its finished stages: the
// eval stage's and, when reranked, the rerank stage's.
func (p *Pipeline) readTarget(target string, reranked bool) (*TargetResult, error) {
	n := targetName(target)
	tr := &TargetResult{Target: target, Name: n, Index: map[string]string{}}
	for _, sys := range []string{SysZeroShot, SysAdapted, SysFull} {
		d := p.index("index-" + sys + "-" + n)
		if _, err := os.Stat(d); err == nil {
			tr.Index[sys] = d
		}
	}
	evalDir := p.Runner.Path("eval-" + n)
	m, err := ReadMeta(evalDir)
	if err != nil {
		return nil, err
	}
	if ev, _ := m.Notes["evaluated"].(bool); !ev {
		return tr, nil
	}
	tr.Evaluated = true
	tr.Report = filepath.Join(evalDir, "report")
	tr.Means = map[string]map[string]float64{}
	if tr.Comparison, err = readComparison(tr.Report, tr.Means); err != nil {
		return nil, err
	}
	if pp, ok := m.Notes["perplexity"].(map[string]any); ok {
		tr.Perplexity = map[string]float64{}
		for k, v := range pp {
			if f, ok := v.(float64); ok {
				tr.Perplexity[k] = f
			}
		}
	}
	if reranked {
		rrDir := p.Runner.Path("rerank-" + n)
		rm, err := ReadMeta(rrDir)
		if err != nil {
			return nil, err
		}
		if ev, _ := rm.Notes["evaluated"].(bool); !ev {
			return nil, fmt.Errorf("%s: evaluated by %s but not re-ranked", rrDir, evalDir)
		}
		tr.RerankReport = filepath.Join(rrDir, "report")
		if tr.RerankComparison, err = readComparison(tr.RerankReport, tr.Means); err != nil {
			return nil, err
		}
	}
	return tr, nil
}

// readComparison reads the comparison report.json in report and adds
// each run's mean of each measure to means (run → measure → mean).
func readComparison(report string, means map[string]map[string]float64) (*eval.Comparison, error) {
	path := filepath.Join(report, "report.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cmp eval.Comparison
	if err := json.Unmarshal(b, &cmp); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, mc := range cmp.Measures {
		for i, run := range cmp.Runs {
			if means[run] == nil {
				means[run] = map[string]float64{}
			}
			means[run][mc.Measure] = mc.Means[i]
		}
	}
	return &cmp, nil
}

// --- helpers -----------------------------------------------------------

// moveDir renames src to dst (dst must not exist; Runner gives an empty
// temporary out directory, which is replaced).
func moveDir(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return os.Rename(src, dst)
}

// copyDir copies the regular files of src (one level deep plus
// subdirectories) into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		outF, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(outF, in); err != nil {
			outF.Close()
			return err
		}
		return outF.Close()
	})
}

var errNoTargets = errors.New("adapt: no target given (--target DIR or adapt.targets)")

// Validate checks the plan before anything runs.
func (p *Pipeline) Validate() error {
	c := p.cfg()
	if len(p.Plan.Targets) == 0 {
		return errNoTargets
	}
	if len(c.Adapt.Source) == 0 {
		return errors.New("adapt: no source collection (adapt.source)")
	}
	seen := map[string]string{}
	for _, t := range p.Plan.Targets {
		if _, err := os.Stat(t); err != nil {
			return fmt.Errorf("adapt: target %s: %w", t, err)
		}
		n := targetName(t)
		if prev, dup := seen[n]; dup {
			return fmt.Errorf("adapt: targets %s and %s have the same name %q", prev, t, n)
		}
		seen[n] = t
	}
	for _, s := range c.Adapt.Source {
		if !corpora.IsBEIR(s) {
			return fmt.Errorf("adapt: source %s is not a BEIR directory (corpus.jsonl, queries.jsonl, qrels/)", s)
		}
	}
	if c.Adapt.Rerank != "" {
		return checkReranker(c)
	}
	return nil
}

// checkReranker loads the re-ranker adapt.rerank once, as the rerank
// stages will, so that a path that is not a re-ranker is refused before
// hours of training rather than after. Cost: reading its weights.
func checkReranker(c config.Config) error {
	dir := c.Adapt.Rerank
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("adapt: re-ranker adapt.rerank = %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("adapt: re-ranker adapt.rerank = %s is not a model directory", dir)
	}
	if _, err := rerank.LoadScorer(dir, c.Rerank.MaxLength, c.Rerank.ScoreBatchSize); err != nil {
		return fmt.Errorf("adapt: re-ranker adapt.rerank = %s does not load as a cross-encoder or MICE model: %w", dir, err)
	}
	return nil
}
