package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

func init() { register(newBenchCmd) }

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure speed",
	}
	cmd.AddCommand(newBenchModelCmd(a))
	return cmd
}

// benchModelOpts are the flags of "bench model".
type benchModelOpts struct {
	arch                      string
	layers, hidden, heads, ff int
	vocab                     int
	task                      string
	batch, seqLen             int
	runs, warmup              int
	seed                      uint64
	jsonOut                   bool
	peak                      bool
	corpus, tokenizer         string
	maxDocs                   int
	order                     string
	kernels                   string
}

// benchModelResult is the JSON object "bench model --json" prints.
type benchModelResult struct {
	Arch        string    `json:"arch"`
	Task        string    `json:"task"`
	Layers      int       `json:"layers"`
	Hidden      int       `json:"hidden"`
	Heads       int       `json:"heads"`
	FF          int       `json:"ff"`
	Vocab       int       `json:"vocab"`
	Batch       int       `json:"batch"`
	Len         int       `json:"len"`
	Threads     int       `json:"threads"`
	Backend     string    `json:"backend"`
	Kernels     string    `json:"kernels"`
	TokensPerS  float64   `json:"tokens_per_s"`
	GFLOPS      float64   `json:"gflops"`
	PeakGFLOPS  float64   `json:"peak_gflops"`
	PeakSource  string    `json:"peak_source"`
	PctPeak     float64   `json:"pct_peak"`
	MsPerBatch  float64   `json:"ms_per_batch"`
	MsRuns      []float64 `json:"ms_runs"`
	CPUMsRuns   []float64 `json:"cpu_ms_runs,omitempty"`
	Runs        int       `json:"runs"`
	RSSMB       float64   `json:"rss_mb"`
	Masked      int       `json:"masked,omitempty"`
	Loss        float64   `json:"loss,omitempty"`
	Corpus      string    `json:"corpus,omitempty"`
	Order       string    `json:"order,omitempty"`
	Docs        int       `json:"docs,omitempty"`
	Batches     int       `json:"batches,omitempty"`
	RealTokens  int       `json:"real_tokens,omitempty"`
	PadTokens   int       `json:"padded_tokens,omitempty"`
	TokenizeSec float64   `json:"tokenize_s,omitempty"`
	// ByKernels has one entry per --kernels level when there are several,
	// their runs alternating; the fields above are the first level's.
	ByKernels []benchLevel `json:"by_kernels,omitempty"`
}

// benchLevel is one kernel level's runs in a side-by-side measurement.
type benchLevel struct {
	Kernels    string    `json:"kernels"`
	MsRuns     []float64 `json:"ms_runs"`
	CPUMsRuns  []float64 `json:"cpu_ms_runs,omitempty"` // process CPU time (all threads) per run
	MsPerBatch float64   `json:"ms_per_batch"`
	TokensPerS float64   `json:"tokens_per_s"`
	GFLOPS     float64   `json:"gflops"`
}

func newBenchModelCmd(a *app) *cobra.Command {
	var o benchModelOpts
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Time SPLADE encoding or one MLM training step of a randomly initialised model",
		Long: `Time SPLADE encoding (--task encode: encoder + MLM head transform + max
pooling, default batch 32 x 256 tokens) or one MLM training step (--task
mlm-train: forward, backward and AdamW, 15% of positions masked as in
../shared/tools/oracle/bench.py, default batch 16 x 128) on a model with
random weights of the given shape, on --threads threads (config threads).
It reports the median of --runs timed runs after --warmup untimed ones:
tokens/s (batch x len / median), GFLOPS (matrix products only: see
nn.SpladeEncodeFLOPs and nn.MLMTrainFLOPs) against the peak, measured in the
same process as a 1024^3 Sgemm before and after the runs (the better of the
two medians), and the peak resident memory (VmHWM).

With --corpus DIR (a BEIR directory or any corpus "spladapt corpus"
reads), --task encode instead encodes the first --max-docs documents of
the corpus, tokenised with --tokenizer DIR or, without it, a WordPiece
vocabulary of --vocab entries trained on those documents, truncated to
--len tokens, and tokens/s counts real tokens only. --order length sorts
documents by length and packs batches of at most --batch x --len tokens
(no padding beyond the batch's longest); --order arrival takes --batch
documents at a time in corpus order, padded to the longest.

--kernels chooses the level of nn's fused C kernels (SPLADAPT_KERNELS
otherwise): auto, avx2 or avx512; several, comma-separated (avx2,avx512),
time each level on the same model and batch with their runs alternating,
for a side-by-side ratio in one process (synthetic batches only). Each run
also records the process CPU time, less disturbed than wall time on a
loaded machine.

Shapes of the speed targets: bert-mini --layers 4 --hidden 256 --heads 4
--ff 1024; bert-small 4/512/8/2048; distilbert-base --arch distilbert 6/768/12/3072.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			threads := cfg.NumThreads()
			nn.SetThreads(threads)
			res, err := runBenchModel(o, threads, progress.Enabled(cfg.Progress))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.jsonOut {
				b, err := json.Marshal(res)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(w, "%s\n", b)
				return err
			}
			_, err = fmt.Fprintf(w, "%s %s L%d H%d A%d F%d V%d batch %dx%d, %d threads (%s, kernels %s): %.0f tokens/s, %.1f GFLOPS = %.0f%% of %.1f (%s), %.1f ms/batch (median of %d), rss %.0f MB\n",
				res.Arch, res.Task, res.Layers, res.Hidden, res.Heads, res.FF, res.Vocab, res.Batch, res.Len, res.Threads, res.Backend, res.Kernels,
				res.TokensPerS, res.GFLOPS, res.PctPeak, res.PeakGFLOPS, res.PeakSource, res.MsPerBatch, res.Runs, res.RSSMB)
			for _, l := range res.ByKernels {
				if err != nil {
					break
				}
				_, err = fmt.Fprintf(w, "  kernels %s: %.0f tokens/s, %.1f ms/batch (%.2fx the first), CPU %.1f ms/batch (median)\n",
					l.Kernels, l.TokensPerS, l.MsPerBatch, res.ByKernels[0].MsPerBatch/l.MsPerBatch, median(l.CPUMsRuns))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.arch, "arch", "bert", "bert or distilbert")
	f.IntVar(&o.layers, "layers", 4, "transformer layers L")
	f.IntVar(&o.hidden, "hidden", 256, "hidden size H")
	f.IntVar(&o.heads, "heads", 4, "attention heads A")
	f.IntVar(&o.ff, "ff", 1024, "feed-forward size F")
	f.IntVar(&o.vocab, "vocab", 30522, "vocabulary size V")
	f.StringVar(&o.task, "task", "encode", "encode or mlm-train")
	f.IntVar(&o.batch, "batch", 0, "batch size (default 32 for encode, 16 for mlm-train)")
	f.IntVar(&o.seqLen, "len", 0, "sequence length (default 256 for encode, 128 for mlm-train)")
	f.IntVar(&o.runs, "runs", 5, "timed runs (the median is reported)")
	f.IntVar(&o.warmup, "warmup", 2, "untimed warm-up runs")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the random weights")
	f.BoolVar(&o.jsonOut, "json", false, "print one JSON object")
	f.BoolVar(&o.peak, "peak", true, "measure the Sgemm peak (1024^3) first; without it the reference 318 GFLOPS is used")
	f.StringVar(&o.corpus, "corpus", "", "encode this corpus instead of synthetic batches (tokens/s over real tokens)")
	f.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer directory for --corpus (default: train a WordPiece vocabulary on the documents)")
	f.IntVar(&o.maxDocs, "max-docs", 2000, "documents of --corpus to encode")
	f.StringVar(&o.order, "order", "length", "--corpus batching: length (sorted, packed) or arrival (corpus order, padded)")
	f.StringVar(&o.kernels, "kernels", "", "fused C kernel level: auto, avx2 or avx512; several, comma-separated, are timed side by side (default: SPLADAPT_KERNELS, else auto)")
	return cmd
}

// referencePeak is the OpenBLAS 1024^3 Sgemm GFLOPS measured on 2 threads of
// the Intel machine where the peer numbers in ../shared/tools were taken.
const referencePeak = 318

func runBenchModel(o benchModelOpts, threads int, showProgress bool) (benchModelResult, error) {
	var mc nn.Config
	switch o.arch {
	case "bert":
		mc = nn.BERTConfig(o.vocab, o.hidden, o.layers, o.heads, o.ff, 512)
	case "distilbert":
		mc = nn.DistilBERTConfig(o.vocab, o.hidden, o.layers, o.heads, o.ff, 512)
	default:
		return benchModelResult{}, fmt.Errorf("--arch %q: want bert or distilbert", o.arch)
	}
	if o.runs < 1 || o.warmup < 0 {
		return benchModelResult{}, fmt.Errorf("--runs %d, --warmup %d: want runs >= 1 and warmup >= 0", o.runs, o.warmup)
	}
	switch o.task {
	case "encode":
		o.batch, o.seqLen = cmp0(o.batch, 32), cmp0(o.seqLen, 256)
	case "mlm-train":
		o.batch, o.seqLen = cmp0(o.batch, 16), cmp0(o.seqLen, 128)
		if o.corpus != "" {
			return benchModelResult{}, errors.New("--corpus works with --task encode only")
		}
	default:
		return benchModelResult{}, fmt.Errorf("--task %q: want encode or mlm-train", o.task)
	}
	if o.batch < 1 || o.seqLen < 2 || o.seqLen > mc.MaxPositions {
		return benchModelResult{}, fmt.Errorf("--batch %d --len %d: want batch >= 1 and 2 <= len <= %d", o.batch, o.seqLen, mc.MaxPositions)
	}
	if err := mc.Validate(); err != nil {
		return benchModelResult{}, fmt.Errorf("model shape: %w", err)
	}
	levels := []string{nn.Kernels()}
	if o.kernels != "" {
		levels = strings.Split(o.kernels, ",")
		for _, l := range levels {
			if err := nn.SetKernels(l); err != nil {
				return benchModelResult{}, fmt.Errorf("--kernels: %w", err)
			}
		}
		if len(levels) > 1 && o.corpus != "" {
			return benchModelResult{}, errors.New("--kernels with several levels works with synthetic batches only (not --corpus)")
		}
		if err := nn.SetKernels(levels[0]); err != nil {
			return benchModelResult{}, err
		}
	}
	o.kernels = strings.Join(levels, ",")
	res := benchModelResult{Arch: o.arch, Task: o.task, Layers: o.layers, Hidden: o.hidden, Heads: o.heads, FF: o.ff,
		Vocab: o.vocab, Batch: o.batch, Len: o.seqLen, Threads: threads, Backend: nn.Backend, Kernels: nn.Kernels(), Runs: o.runs,
		PeakGFLOPS: referencePeak, PeakSource: "reference: OpenBLAS 1024^3 on the Intel peer machine"}
	if o.peak {
		res.PeakGFLOPS, res.PeakSource = measurePeak(), "measured: Sgemm 1024^3 in this process, the better of the medians of 5 before and 5 after the runs"
	}
	m, err := nn.NewModel(mc, o.seed)
	if err != nil {
		return res, err
	}
	if o.corpus != "" {
		err = benchCorpus(&res, o, m, showProgress)
	} else if o.task == "encode" {
		err = benchEncode(&res, o, m)
	} else {
		err = benchMLM(&res, o, m)
	}
	if err != nil {
		return res, err
	}
	if o.peak { // on a shared machine the attainable peak drifts: keep the better
		res.PeakGFLOPS = max(res.PeakGFLOPS, measurePeak())
	}
	res.PctPeak = 100 * res.GFLOPS / res.PeakGFLOPS
	res.RSSMB = peakRSSMB()
	return res, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// timeLevels is timeRuns for each kernel level of levels (comma-separated)
// side by side: warm-up runs for each level, then the timed runs of the
// levels alternating, so that a drifting machine load spreads over all of
// them. It also records each run's process CPU time, and leaves the first
// level in force.
func timeLevels(levels string, warmup, runs int, f func()) []benchLevel {
	names := strings.Split(levels, ",")
	out := make([]benchLevel, len(names))
	set := func(i int) {
		if len(names) > 1 {
			_ = nn.SetKernels(names[i]) // checked by runBenchModel
		}
	}
	for i, n := range names {
		out[i].Kernels = n
		set(i)
		for range warmup {
			f()
		}
	}
	for range runs {
		for i := range out {
			set(i)
			c0, st := processCPU(), time.Now()
			f()
			out[i].MsRuns = append(out[i].MsRuns, float64(time.Since(st).Microseconds())/1e3)
			out[i].CPUMsRuns = append(out[i].CPUMsRuns, (processCPU()-c0).Seconds()*1e3)
		}
	}
	set(0)
	for i := range out {
		out[i].MsPerBatch = median(out[i].MsRuns)
	}
	return out
}

// fillLevels sets each level's tokens/s and GFLOPS for B·T tokens and
// flops per batch, and res's timing fields from the first level.
func fillLevels(res *benchModelResult, lv []benchLevel, tokens int, flops float64) {
	for i := range lv {
		lv[i].TokensPerS = float64(tokens) / (lv[i].MsPerBatch / 1e3)
		lv[i].GFLOPS = flops / (lv[i].MsPerBatch / 1e3) / 1e9
	}
	res.MsRuns, res.CPUMsRuns, res.MsPerBatch = lv[0].MsRuns, lv[0].CPUMsRuns, lv[0].MsPerBatch
	res.TokensPerS, res.GFLOPS = lv[0].TokensPerS, lv[0].GFLOPS
	if len(lv) > 1 {
		res.ByKernels = lv
	}
}

// timeRuns runs f warmup times untimed, then runs times, and returns the
// durations in ms.
func timeRuns(warmup, runs int, f func()) []float64 {
	for range warmup {
		f()
	}
	ms := make([]float64, runs)
	for i := range ms {
		st := time.Now()
		f()
		ms[i] = float64(time.Since(st).Microseconds()) / 1e3
	}
	return ms
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchEncode(res *benchModelResult, o benchModelOpts, m *nn.Model) error {
	B, T, V := o.batch, o.seqLen, m.Config.VocabSize
	b := nn.BenchBatch(m.Config, B, T, o.seed+1)
	out := make([]float32, B*V)
	lv := timeLevels(o.kernels, o.warmup, o.runs, func() { nn.SpladeEncode(m, b, out, nil) })
	fillLevels(res, lv, B*T, nn.SpladeEncodeFLOPs(m.Config, B, T, B*T))
	return nil
}

func benchMLM(res *benchModelResult, o benchModelOpts, m *nn.Model) error {
	B, T := o.batch, o.seqLen
	b := nn.BenchBatch(m.Config, B, T, o.seed+2)
	labels, M := nn.MLMMask(b, m.Config.VocabSize, 0.15, o.seed+3)
	opt := nn.NewAdamW(m.Params, 0.01)
	lv := timeLevels(o.kernels, o.warmup, o.runs, func() { res.Loss = nn.MLMTrainStep(m, opt, b, labels, 1e-4) })
	res.Masked = M
	fillLevels(res, lv, B*T, nn.MLMTrainFLOPs(m.Config, B, T, M))
	return nil
}

// benchCorpus encodes the first o.maxDocs documents of o.corpus in batches
// (see the command's help for --order) and reports real tokens/s over the
// whole pass; each run encodes every batch once.
func benchCorpus(res *benchModelResult, o benchModelOpts, m *nn.Model, showProgress bool) error {
	texts, err := readTexts(o.corpus, o.maxDocs)
	if err != nil {
		return err
	}
	st := time.Now()
	var tok *tokenize.Tokenizer
	if o.tokenizer != "" {
		tok, err = tokenize.Load(o.tokenizer)
	} else {
		var vocab []string
		vocab, err = tokenize.TrainWordPiece(slices.Values(texts), m.Config.VocabSize, 2, true)
		if err == nil {
			tok, err = tokenize.FromVocab(vocab, true)
		}
	}
	if err != nil {
		return fmt.Errorf("tokenizer for %s: %w", o.corpus, err)
	}
	seqs := make([][]int32, len(texts))
	for i, t := range texts {
		seqs[i] = tok.Encode(t, o.seqLen).IDs
		for _, id := range seqs[i] {
			if int(id) >= m.Config.VocabSize {
				return fmt.Errorf("token id %d of document %d outside the model vocabulary of %d (use --vocab)", id, i, m.Config.VocabSize)
			}
		}
	}
	res.TokenizeSec = time.Since(st).Seconds()
	batches := packBatches(seqs, o.batch, o.seqLen, o.order, m.Config.ModelType == "bert")
	if batches == nil {
		return fmt.Errorf("--order %q: want length or arrival", o.order)
	}
	res.Corpus, res.Order, res.Docs, res.Batches = o.corpus, o.order, len(texts), len(batches)
	flops := 0.0
	for _, b := range batches {
		real := 0
		for _, v := range b.Mask {
			real += int(v)
		}
		res.RealTokens += real
		res.PadTokens += b.B*b.T - real
		flops += nn.SpladeEncodeFLOPs(m.Config, b.B, b.T, real)
	}
	V := m.Config.VocabSize
	out := make([]float32, 0)
	pass := func() {
		bar := progress.New(os.Stderr, showProgress, "encode "+o.order, "docs", int64(len(texts)))
		for _, b := range batches {
			if n := b.B * V; cap(out) < n {
				out = make([]float32, n)
			}
			nn.SpladeEncode(m, b, out[:b.B*V], nil)
			bar.Add(int64(b.B))
		}
		bar.Done()
	}
	res.MsRuns = timeRuns(min(o.warmup, 1), o.runs, pass)
	res.MsPerBatch = median(res.MsRuns) / float64(len(batches))
	sec := median(res.MsRuns) / 1e3
	res.TokensPerS = float64(res.RealTokens) / sec
	res.GFLOPS = flops / sec / 1e9
	return nil
}

// packBatches groups token sequences into padded batches. "length": sorted
// by length, each batch as many sequences as fit in batch·maxLen tokens
// when padded to its longest (so short documents make tall batches);
// "arrival": batch sequences at a time in input order, padded to the
// longest. It returns nil for an unknown order.
func packBatches(seqs [][]int32, batch, maxLen int, order string, typeIDs bool) []nn.Batch {
	idx := make([]int, len(seqs))
	for i := range idx {
		idx[i] = i
	}
	var groups [][]int
	switch order {
	case "length":
		slices.SortStableFunc(idx, func(a, b int) int { return len(seqs[a]) - len(seqs[b]) })
		budget := batch * maxLen
		for lo := 0; lo < len(idx); {
			hi := lo + 1
			// Sorted ascending: the batch's longest is its last.
			for hi < len(idx) && (hi-lo+1)*len(seqs[idx[hi]]) <= budget {
				hi++
			}
			groups = append(groups, idx[lo:hi])
			lo = hi
		}
	case "arrival":
		for lo := 0; lo < len(idx); lo += batch {
			groups = append(groups, idx[lo:min(lo+batch, len(idx))])
		}
	default:
		return nil
	}
	out := make([]nn.Batch, len(groups))
	for gi, g := range groups {
		T := 0
		for _, i := range g {
			T = max(T, len(seqs[i]))
		}
		b := nn.Batch{B: len(g), T: T, InputIDs: make([]int32, len(g)*T), Mask: make([]float32, len(g)*T)}
		if typeIDs {
			b.TypeIDs = make([]int32, len(g)*T)
		}
		for r, i := range g {
			copy(b.InputIDs[r*T:], seqs[i])
			for t := range seqs[i] {
				b.Mask[r*T+t] = 1
			}
		}
		out[gi] = b
	}
	return out
}

// readTexts returns the Content of the first max documents of a corpus.
func readTexts(path string, max int) ([]string, error) {
	r, err := corpora.OpenCorpus(path, corpora.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var texts []string
	for len(texts) < max {
		d, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		texts = append(texts, d.Content())
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("corpus %s: no documents", path)
	}
	return texts, nil
}

// measurePeak returns the median GFLOPS of five 1024^3 Sgemm calls (after
// one warm-up) with the current thread setting.
func measurePeak() float64 {
	const n = 1024
	rng := rand.New(rand.NewPCG(1, 2))
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	ms := timeRuns(1, 5, func() { nn.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) })
	return 2 * n * n * n / (median(ms) / 1e3) / 1e9
}

// peakRSSMB returns this process's peak resident set size (VmHWM) in MB, or
// 0 where /proc/self/status is unavailable.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
