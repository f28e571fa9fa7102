package rerank

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
	"github.com/spladapt/spladapt/tokenize"
)

// TrainJob is one whole re-ranker training run as "spladapt train rerank"
// runs it: load the initial checkpoint (a cross-encoder, or a masked-LM
// checkpoint whose classification head is then initialised), build the
// training sources as SPLADE does (splade.TrainJob.Sources: BM25-mined
// triples from BEIR qrels, or triples files, with teacher scores), load the
// dev sets with their BM25 runs, train, and keep the best model at Out.
type TrainJob struct {
	Init    string
	Out     string
	WorkDir string // resumable state, mined negatives, dev BM25 indexes (default Out.work)
	Resume  bool

	Train    []string
	Split    string
	Triples  []string
	Teacher  []string
	Dev      []string
	DevSplit string

	Settings JobSettings // config.Config.RerankJob converts the settings
	// MICE, when set, trains a MICE re-ranker of this shape on the
	// cross-encoder's weights (--init) instead of the cross-encoder.
	MICE       *MICEConfig
	CorpusOpts corpora.Options
	Log        io.Writer
	Progress   string
}

// JobSettings are the settings of a TrainJob.
type JobSettings struct {
	Options TrainOptions // the trainer's
	// MaxLength bounds a cross-encoder's query-document pair in tokens.
	MaxLength int
	// ScoreBatchSize is the pairs (or MICE queries) one forward pass scores.
	ScoreBatchSize int
	Mining         splade.Mining // BM25 hard negatives, as SPLADE mines them
	BM25           bm25.Params   // the dev sets' first-stage BM25 runs
}

// Run executes the job. An interrupted run returns an error wrapping
// context.Canceled; its state is in WorkDir for Resume.
func (j TrainJob) Run(ctx context.Context) (*Meta, error) {
	data, err := splade.TrainJob{Init: j.Init, Out: j.Out, WorkDir: j.WorkDir, Train: j.Train, Split: j.Split,
		Triples: j.Triples, Teacher: j.Teacher, Dev: j.Dev, DevSplit: j.DevSplit,
		Settings: splade.JobSettings{Mining: j.Settings.Mining}, CorpusOpts: j.CorpusOpts, Log: j.Log}.Prepared("train rerank")
	if err != nil {
		return nil, err
	}
	j.WorkDir, j.DevSplit, j.Log = data.WorkDir, data.DevSplit, data.Log
	log := j.Log
	opt := j.Settings.Options
	c, err := nn.LoadClassifier(j.Init, true, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("train rerank: %w", err)
	}
	switch len(c.NewHead) {
	case 0:
	case 2:
		fmt.Fprintf(log, "%s has a pooler but no classifier: pooler kept, initialised %v\n", j.Init, c.NewHead)
	default:
		fmt.Fprintf(log, "%s has no classification head: initialised %v\n", j.Init, c.NewHead)
	}
	tok, err := tokenize.Load(j.Init)
	if err != nil {
		return nil, fmt.Errorf("train rerank: %w", err)
	}
	// The setting rerank.match_types decides whether the model (either
	// architecture) trains with match types, whatever the init's
	// rerank.json says; the type table grows to NumMatchTypes rows if the
	// init lacks them.
	if k, err := readModelKind(j.Init); err == nil && k.MatchTypes && !opt.MatchTypes {
		fmt.Fprintf(log, "note: %s was trained with match types, and rerank.match_types is false: training without them\n", j.Init)
	}
	if opt.MatchTypes {
		if c.Config.TypeVocabSize < NumMatchTypes {
			fmt.Fprintf(log, "match types: token types grown from %d to %d\n", c.Config.TypeVocabSize, NumMatchTypes)
		}
		if err := c.GrowTokenTypes(NumMatchTypes, opt.Seed); err != nil {
			return nil, fmt.Errorf("train rerank: match types: %w", err)
		}
	}
	var model PairModel
	arch := "a cross-encoder"
	if j.MICE != nil {
		var m *MICE
		if m, err = NewMICE(c, tok, *j.MICE, j.Settings.ScoreBatchSize); err == nil {
			err = m.SetMatchTypes(opt.MatchTypes)
		}
		model = m
		arch = fmt.Sprintf("MICE (fusion %d, interaction layers %v, light %v)", j.MICE.Fusion, j.MICE.Interact, j.MICE.Light)
	} else {
		var ce *CrossEncoder
		if ce, err = NewCrossEncoder(c, tok, j.Settings.MaxLength, j.Settings.ScoreBatchSize); err == nil {
			err = ce.SetMatchTypes(opt.MatchTypes)
		}
		model = ce
	}
	if err != nil {
		return nil, fmt.Errorf("train rerank: %w", err)
	}
	sources, err := data.Sources(ctx, log)
	if err != nil {
		return nil, err
	}
	var devSets []*DevSet
	for i, dir := range j.Dev {
		d, err := LoadDevSet(ctx, j.Settings.BM25, dir, j.DevSplit, filepath.Join(j.WorkDir, fmt.Sprintf("dev-%d", i)), opt.DevDepth, j.CorpusOpts, log)
		if err != nil {
			return nil, err
		}
		devSets = append(devSets, d)
	}
	tr, err := NewTrainer(model, sources, devSets, opt)
	if err != nil {
		return nil, err
	}
	tr.Meta.Init = j.Init
	fmt.Fprintf(log, "training %s from %s: %d parameters, %d steps of %d queries × (1 + %d negatives), loss %s\n",
		arch, j.Init, c.NumParams(), opt.Steps, opt.BatchSize, opt.NNeg, opt.Loss)
	bar := progress.New(log, progress.Enabled(j.Progress), "train rerank", "steps", int64(opt.Steps))
	var pairs int
	var secs float64
	meta, err := tr.Run(ctx, j.WorkDir, j.Out, j.Resume, TrainHooks{
		OnStep: func(s StepStats) {
			pairs += s.Pairs
			secs += s.Elapsed.Seconds()
			bar.AddNote(1, fmt.Sprintf("loss %.4f, %.1f pairs/s", s.Loss, float64(pairs)/max(secs, 1e-9)))
		},
		OnEval: func(step int, ms map[string]float64, best bool) {
			mark := ""
			if best {
				mark = " (best, saved)"
			}
			fmt.Fprintf(log, "\nstep %d: dev %s%s\n", step, splade.FormatMetrics(ms), mark)
		},
	})
	bar.Done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("train rerank: interrupted after step %d, state saved in %s; continue with --resume: %w", tr.StepsDone, j.WorkDir, err)
		}
		return nil, err
	}
	return meta, nil
}

// LoadDevSet reads a BEIR directory's queries judged in qrels/<split>.tsv,
// retrieves the top depth BM25 hits of each (the index built under cache
// and reused, BM25 parameters p), and keeps the texts of the documents
// retrieved.
func LoadDevSet(ctx context.Context, p bm25.Params, dir, split, cache string, depth int, opts corpora.Options, log io.Writer) (*DevSet, error) {
	qrels, judged, err := corpora.BEIR{Dir: dir}.Judged(split, opts)
	if err != nil {
		return nil, fmt.Errorf("load dev set: %w", err)
	}
	d := &DevSet{Name: filepath.Base(filepath.Clean(dir)) + "/" + split, Qrels: qrels, Queries: map[string]string{}, Docs: map[string]string{}}
	for _, q := range judged {
		d.Queries[q.ID] = q.Text
	}
	if len(judged) == 0 {
		return nil, fmt.Errorf("load dev set %s: no query of queries.jsonl is judged in split %q", dir, split)
	}
	idxDir := filepath.Join(cache, "bm25")
	if _, err := bm25.ReadMeta(idxDir); err != nil {
		fmt.Fprintf(log, "%s: building the BM25 index of the dev corpus\n", dir)
		if err := os.MkdirAll(cache, 0o755); err != nil {
			return nil, fmt.Errorf("load dev set: %w", err)
		}
		if _, err := bm25.BuildCorpus(idxDir, dir, opts, nil); err != nil {
			return nil, fmt.Errorf("load dev set: %w", err)
		}
	}
	idx, err := bm25.Open(idxDir)
	if err != nil {
		return nil, fmt.Errorf("load dev set: %w", err)
	}
	defer idx.Close()
	d.Run, err = idx.SearchAll(judged, bm25.SearchOptions{K: depth, Params: p})
	if err != nil {
		return nil, fmt.Errorf("load dev set %s: %w", dir, err)
	}
	need := map[string]bool{}
	for _, hits := range d.Run {
		for _, h := range hits {
			need[h.DocID] = true
		}
	}
	if d.Docs, err = DocTexts(dir, need, opts); err != nil {
		return nil, fmt.Errorf("load dev set: %w", err)
	}
	fmt.Fprintf(log, "dev %s: %d queries, BM25 top %d (%d documents)\n", d.Name, len(judged), depth, len(d.Docs))
	return d, nil
}

// DocTexts reads the texts (title and body, as SPLADE encodes them) of the
// documents of corpus path (any corpus OpenCorpus reads) in need; need nil
// keeps every document.
func DocTexts(path string, need map[string]bool, opts corpora.Options) (map[string]string, error) {
	r, err := corpora.OpenCorpus(path, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return corpora.ReadTexts(r, need)
}

// ScoreTriples writes the score s gives every (query, document) pair of
// the triples — each positive and each negative, once per pair — in the
// per-document teacher-score format of docs/format/training-data.md
// ("qid <TAB> doc_id <TAB> score", sorted by query then document), so that
// "train splade --teacher FILE" distils s into SPLADE with MarginMSE. It
// returns the number of pairs written.
func ScoreTriples(s Scorer, src splade.Source, w io.Writer, progress func(n int)) (int, error) {
	type pair struct{ q, d string }
	seen := map[pair]bool{}
	var pairs []pair
	for _, t := range src.Triples {
		for _, d := range append([]string{t.PosID}, t.NegIDs...) {
			if p := (pair{t.QID, d}); !seen[p] {
				seen[p] = true
				pairs = append(pairs, p)
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].q != pairs[j].q {
			return pairs[i].q < pairs[j].q
		}
		return pairs[i].d < pairs[j].d
	})
	qs, ds := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		var ok bool
		if qs[i], ok = src.Texts.Queries[p.q]; !ok {
			return 0, fmt.Errorf("score triples: no text for query %q", p.q)
		}
		if ds[i], ok = src.Texts.Docs[p.d]; !ok {
			return 0, fmt.Errorf("score triples: no text for document %q", p.d)
		}
	}
	scores, err := s.ScorePairs(qs, ds, progress)
	if err != nil {
		return 0, fmt.Errorf("score triples: %w", err)
	}
	bw := bufio.NewWriter(w)
	for i, p := range pairs {
		fmt.Fprintf(bw, "%s\t%s\t%s\n", p.q, p.d, strconv.FormatFloat(float64(scores[i]), 'g', -1, 32))
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("score triples: %w", err)
	}
	return len(pairs), nil
}
