package splade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// TrainJob is one whole SPLADE training run as "spladapt train splade"
// and the adapt pipeline run it: load the initial checkpoint, build the
// training sources (BM25-mined triples from BEIR qrels, or triples files,
// optionally with teacher scores), load the dev sets, train, and keep the
// best model at Out.
type TrainJob struct {
	Init    string // initial checkpoint (HF layout with tokenizer files)
	Out     string // best model
	WorkDir string // resumable state and mined negatives (default Out.work)
	Resume  bool

	Train    []string // BEIR directories with training qrels
	Split    string   // qrels split to train on
	Triples  []string // triples files instead of mining, one per Train dir
	Teacher  []string // teacher-score files, one per Train dir
	Unsup    []string // corpora for unsupervised (inverse cloze) pairs, mixed in
	Dev      []string // BEIR directories for model selection
	DevSplit string

	Settings   JobSettings     // config.Config.SpladeJob converts the settings
	CorpusOpts corpora.Options // bad-record handling
	Log        io.Writer       // progress lines (nil: none)
	Progress   string          // progress bar mode: auto, on, off
}

// JobSettings are the settings of a TrainJob.
type JobSettings struct {
	Options TrainOptions // the trainer's
	Mining  Mining       // hard negatives and unsupervised pairs
	// IDFMaxLength is the tokens of each document that the IDF of an
	// inference-free run (Options.QueryEncoder idf) counts.
	IDFMaxLength int
}

// Mining are the settings of BM25 hard-negative mining (MineSource) and of
// unsupervised pairs (UnsupSource).
type Mining struct {
	K1, B     float64 // BM25's parameters
	Negatives int     // negatives per query
	Depth     int     // drawn from this many top hits
	Margins   bool    // attach BM25 margins (MineOptions.Margins)
	Seed      uint64
	// UnsupPairs is the number of inverse-cloze pairs per unsupervised
	// corpus.
	UnsupPairs int
}

// Run executes the job. An interrupted run returns an error wrapping
// context.Canceled; its state is in WorkDir for Resume.
func (j TrainJob) Run(ctx context.Context) (*TrainMeta, error) {
	j, err := j.Prepared("train splade")
	if err != nil {
		return nil, err
	}
	log := j.Log
	m, err := nn.LoadHF(j.Init)
	if err != nil {
		return nil, err
	}
	tok, err := tokenize.Load(j.Init)
	if err != nil {
		return nil, fmt.Errorf("train splade: %w", err)
	}
	sources, err := j.Sources(ctx, log)
	if err != nil {
		return nil, err
	}
	var devSets []*DevSet
	for _, dir := range j.Dev {
		d, err := LoadDevSet(dir, j.DevSplit, j.CorpusOpts)
		if err != nil {
			return nil, err
		}
		devSets = append(devSets, d)
		fmt.Fprintf(log, "dev %s: %d queries, %d documents\n", d.Name, len(d.Queries), len(d.Docs))
	}
	opt := j.Settings.Options
	var qw []float32
	if opt.QueryEncoder == QueryEncoderIDF {
		if qw, err = CorpusIDF(tok, append(append([]string(nil), j.Train...), j.Unsup...), j.Settings.IDFMaxLength, j.CorpusOpts); err != nil {
			return nil, fmt.Errorf("train splade: %w", err)
		}
		fmt.Fprintf(log, "inference-free: queries are their tokens weighted by IDF over the corpora of %s\n", strings.Join(append(append([]string(nil), j.Train...), j.Unsup...), ", "))
	}
	tr, err := NewTrainer(m, tok, sources, devSets, opt, qw)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "training %s: %d of %d parameters (%s), %d steps of %d triples × (1 + %d negatives)\n",
		j.Init, tr.TrainableParams(), m.NumParams(), opt.TrainParams, opt.Steps, opt.BatchSize, opt.NNeg)
	bar := progress.New(log, progress.Enabled(j.Progress), "train splade", "steps", int64(opt.Steps))
	var tokens int
	var secs float64
	warned := false
	meta, err := tr.Run(ctx, RunConfig{WorkDir: j.WorkDir, Out: j.Out, Init: j.Init, Resume: j.Resume}, TrainHooks{
		OnStep: func(s StepStats) {
			tokens += s.Tokens
			secs += s.Elapsed.Seconds()
			bar.AddNote(1, fmt.Sprintf("loss %.3f nce %.3f nnz q %.0f d %.0f, %.0f tok/s",
				s.Terms.Total, s.Terms.InfoNCE, s.Terms.MeanNNZQuery, s.Terms.MeanNNZDoc, float64(tokens)/max(secs, 1e-9)))
			// Collapse: the regulariser has emptied the vectors and
			// InfoNCE sits at log(B + B·NNeg); it does not recover.
			if !warned && (s.Terms.MeanNNZDoc < 1 || s.Terms.MeanNNZQuery < 1) {
				warned = true
				fmt.Fprintf(log, "\nwarning: step %d: vectors have collapsed (mean non-zeros: queries %.2f, documents %.2f); lower splade.lambda_q/lambda_d or raise splade.lambda_warmup_steps, or start from a better-trained MLM checkpoint\n",
					s.Step, s.Terms.MeanNNZQuery, s.Terms.MeanNNZDoc)
			}
		},
		OnEval: func(step int, ms map[string]float64, best bool) {
			mark := ""
			if best {
				mark = " (best, saved)"
			}
			fmt.Fprintf(log, "\nstep %d: dev %s%s\n", step, FormatMetrics(ms), mark)
		},
	})
	bar.Done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("train splade: interrupted after step %d, state saved in %s; continue with --resume: %w", tr.StepCount(), j.WorkDir, err)
		}
		return nil, err
	}
	return meta, nil
}

// Prepared checks that the job names its training data (one Triples and
// one Teacher file per Train directory when given), initial checkpoint and
// output, and returns it with the defaults filled: WorkDir Out.work, Split
// train, DevSplit dev, Log io.Discard. cmd ("train splade") starts its
// errors. rerank.TrainJob prepares its data through it too.
func (j TrainJob) Prepared(cmd string) (TrainJob, error) {
	if len(j.Train)+len(j.Unsup) == 0 || j.Init == "" || j.Out == "" {
		return j, fmt.Errorf("%s: training directories, initial checkpoint and output are required", cmd)
	}
	if len(j.Triples) > 0 && len(j.Triples) != len(j.Train) {
		return j, fmt.Errorf("%s: %d triples files for %d training directories (give one per directory, in order)", cmd, len(j.Triples), len(j.Train))
	}
	if len(j.Teacher) > 0 && len(j.Teacher) != len(j.Train) {
		return j, fmt.Errorf("%s: %d teacher files for %d training directories (give one per directory, in order)", cmd, len(j.Teacher), len(j.Train))
	}
	if j.WorkDir == "" {
		j.WorkDir = filepath.Clean(j.Out) + ".work"
	}
	if j.Split == "" {
		j.Split = "train"
	}
	if j.DevSplit == "" {
		j.DevSplit = "dev"
	}
	if j.Log == nil {
		j.Log = io.Discard
	}
	return j, nil
}

// MineSource builds (or reuses) a BM25 index of dir's corpus under cache
// and mines hard negatives for split's qrels (judged positives excluded),
// cached beside it.
func MineSource(ctx context.Context, mo Mining, dir, split, cache string, opts corpora.Options, log io.Writer) ([]Triple, error) {
	idxDir := filepath.Join(cache, "bm25")
	if _, err := bm25.ReadMeta(idxDir); err != nil {
		fmt.Fprintf(log, "%s: building the BM25 index for negative mining\n", dir)
		if _, err := bm25.BuildCorpus(idxDir, dir, opts, nil); err != nil {
			return nil, err
		}
	}
	idx, err := bm25.Open(idxDir)
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	p := bm25.Params{K1: mo.K1, B: mo.B}
	s, err := idx.NewSearcher(p)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var st MineStats
	name := split + ".triples.tsv"
	if mo.Margins {
		name = split + ".margins.triples.tsv"
	}
	ts, hit, err := MineCached(ctx, filepath.Join(cache, name), fmt.Sprintf("bm25 k1=%g b=%g", p.K1, p.B),
		dir, split, s, mo.Negatives, mo.Depth, mo.Seed, MineOptions{Stats: &st, Margins: mo.Margins})
	if err != nil {
		return nil, err
	}
	how := "mined"
	if hit {
		how = "cached"
	}
	fmt.Fprintf(log, "%s/%s: %s %d triples from %d judged queries (skipped: %d without positive in the corpus, %d not in queries.jsonl, %d without negatives; %d with fewer than %d negatives)\n",
		dir, split, how, st.Triples, st.Queries, st.NoPositive, st.MissingQuery, st.NoNegatives, st.FewNegatives, mo.Negatives)
	if mo.Margins {
		fmt.Fprintf(log, "%s/%s: BM25 margins attached; %d positives outside the top %d hits skipped\n", dir, split, st.PosNotRetrieved, mo.Depth)
	}
	return ts, nil
}

// FormatMetrics prints dev metrics: the means over dev sets first, then
// per dev set ("name measure").
func FormatMetrics(ms map[string]float64) string {
	keys := make([]string, 0, len(ms))
	for k := range ms {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := strings.Contains(keys[i], " "), strings.Contains(keys[j], " ")
		if ci != cj {
			return !ci
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.4f", k, ms[k])
	}
	return strings.Join(parts, ", ")
}

// Sources builds the job's training sources: per Train directory its
// triples (BM25-mined from qrels/<Split>.tsv and cached in WorkDir, or read
// from the Triples file), with teacher scores applied when Teacher files
// are given, and their texts; then the unsupervised pairs of each Unsup
// corpus. The re-ranker's trainer (package rerank) uses it too.
func (j TrainJob) Sources(ctx context.Context, log io.Writer) ([]Source, error) {
	mo := j.Settings.Mining
	var err error
	var sources []Source
	for i, dir := range j.Train {
		var ts []Triple
		if len(j.Triples) > 0 {
			ts, err = ReadTriples(j.Triples[i], j.CorpusOpts)
		} else {
			ts, err = MineSource(ctx, mo, dir, j.Split, filepath.Join(j.WorkDir, fmt.Sprintf("mined-%d", i)), j.CorpusOpts, log)
		}
		if err != nil {
			return nil, err
		}
		if len(j.Teacher) > 0 {
			sc, err := ReadTeacherScores(j.Teacher[i], j.CorpusOpts)
			if err != nil {
				return nil, err
			}
			var st ApplyStats
			ts, st = sc.Apply(ts)
			fmt.Fprintf(log, "%s: teacher scores for %d triples; dropped %d triples and %d negatives without a score (first missing: query %q, document %q)\n",
				dir, st.Triples, st.DroppedTriples, st.DroppedNegs, st.FirstMissingQID, st.FirstMissingDoc)
		}
		texts, err := LoadTexts(dir, ts, j.CorpusOpts)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(filepath.Clean(dir)) + "/" + j.Split
		if len(j.Triples) > 0 {
			name = filepath.Base(filepath.Clean(dir)) + ":" + j.Triples[i]
		}
		sources = append(sources, Source{Name: name, Triples: ts, Texts: texts})
		fmt.Fprintf(log, "%s: %d triples\n", name, len(ts))
	}
	for i, dir := range j.Unsup {
		src, err := UnsupSource(ctx, mo, dir, j.Dev, filepath.Join(j.WorkDir, fmt.Sprintf("unsup-%d", i)), j.CorpusOpts, log)
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	return sources, nil
}
