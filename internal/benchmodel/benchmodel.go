// Package benchmodel times the transformer core the way "spladapt bench
// model" reports it: SPLADE encoding or one MLM training step of a model
// with random weights of a given shape, on synthetic batches or on a
// corpus's documents, against the Sgemm peak measured in the same process.
package benchmodel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/progress"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// Options are the shape, task and measurement settings (the flags of
// "spladapt bench model").
type Options struct {
	Arch                      string // bert or distilbert
	Layers, Hidden, Heads, FF int
	Vocab                     int
	Task                      string // encode or mlm-train
	Batch, SeqLen             int    // 0: 32×256 for encode, 16×128 for mlm-train
	Runs, Warmup              int
	Seed                      uint64
	Peak                      bool // measure the Sgemm peak; else ReferencePeak
	// Corpus, when set, makes the encode task encode the first MaxDocs
	// documents of this corpus, tokenised with Tokenizer (a directory) or
	// a WordPiece vocabulary of Vocab entries trained on them; tokens/s
	// then counts real tokens only. Order "length" sorts the documents by
	// length and packs batches of at most Batch×SeqLen tokens; "arrival"
	// takes Batch documents at a time in corpus order, padded to the
	// longest.
	Corpus, Tokenizer string
	MaxDocs           int
	Order             string
	// Kernels is the level of nn's fused C kernels (auto, avx2, avx512);
	// several, comma-separated, are timed side by side (synthetic batches
	// only). Empty: the level in force.
	Kernels string
}

// Result is what Run measured (the JSON object "bench model --json"
// prints).
type Result struct {
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
	// ByKernels has one entry per Options.Kernels level when there are
	// several, their runs alternating; the fields above are the first
	// level's.
	ByKernels []Level `json:"by_kernels,omitempty"`
}

// ReferencePeak is the OpenBLAS 1024^3 Sgemm GFLOPS measured on 2 threads of
// the Intel machine where the peer numbers in ../shared/tools were taken.
const ReferencePeak = 318

// Run times the task of o on a model with random weights of o's shape and
// reports the median of o.Runs timed runs after o.Warmup untimed ones (see
// Options). threads is the compute threads the caller set (nn.SetThreads),
// recorded in the result; showProgress draws a bar on stderr for corpus
// runs.
func Run(o Options, threads int, showProgress bool) (Result, error) {
	var mc nn.Config
	switch o.Arch {
	case "bert":
		mc = nn.BERTConfig(o.Vocab, o.Hidden, o.Layers, o.Heads, o.FF, 512)
	case "distilbert":
		mc = nn.DistilBERTConfig(o.Vocab, o.Hidden, o.Layers, o.Heads, o.FF, 512)
	default:
		return Result{}, fmt.Errorf("--arch %q: want bert or distilbert", o.Arch)
	}
	if o.Runs < 1 || o.Warmup < 0 {
		return Result{}, fmt.Errorf("--runs %d, --warmup %d: want runs >= 1 and warmup >= 0", o.Runs, o.Warmup)
	}
	switch o.Task {
	case "encode":
		o.Batch, o.SeqLen = cmp0(o.Batch, 32), cmp0(o.SeqLen, 256)
	case "mlm-train":
		o.Batch, o.SeqLen = cmp0(o.Batch, 16), cmp0(o.SeqLen, 128)
		if o.Corpus != "" {
			return Result{}, errors.New("--corpus works with --task encode only")
		}
	default:
		return Result{}, fmt.Errorf("--task %q: want encode or mlm-train", o.Task)
	}
	if o.Batch < 1 || o.SeqLen < 2 || o.SeqLen > mc.MaxPositions {
		return Result{}, fmt.Errorf("--batch %d --len %d: want batch >= 1 and 2 <= len <= %d", o.Batch, o.SeqLen, mc.MaxPositions)
	}
	if err := mc.Validate(); err != nil {
		return Result{}, fmt.Errorf("model shape: %w", err)
	}
	levels := []string{nn.Kernels()}
	if o.Kernels != "" {
		levels = strings.Split(o.Kernels, ",")
		for _, l := range levels {
			if err := nn.SetKernels(l); err != nil {
				return Result{}, fmt.Errorf("--kernels: %w", err)
			}
		}
		if len(levels) > 1 && o.Corpus != "" {
			return Result{}, errors.New("--kernels with several levels works with synthetic batches only (not --corpus)")
		}
		if err := nn.SetKernels(levels[0]); err != nil {
			return Result{}, err
		}
	}
	o.Kernels = strings.Join(levels, ",")
	res := Result{Arch: o.Arch, Task: o.Task, Layers: o.Layers, Hidden: o.Hidden, Heads: o.Heads, FF: o.FF,
		Vocab: o.Vocab, Batch: o.Batch, Len: o.SeqLen, Threads: threads, Backend: nn.Backend, Kernels: nn.Kernels(), Runs: o.Runs,
		PeakGFLOPS: ReferencePeak, PeakSource: "reference: OpenBLAS 1024^3 on the Intel peer machine"}
	if o.Peak {
		res.PeakGFLOPS, res.PeakSource = measurePeak(), "measured: Sgemm 1024^3 in this process, the better of the medians of 5 before and 5 after the runs"
	}
	m, err := nn.NewModel(mc, o.Seed)
	if err != nil {
		return res, err
	}
	if o.Corpus != "" {
		err = benchCorpus(&res, o, m, showProgress)
	} else if o.Task == "encode" {
		err = benchEncode(&res, o, m)
	} else {
		err = benchMLM(&res, o, m)
	}
	if err != nil {
		return res, err
	}
	if o.Peak { // on a shared machine the attainable peak drifts: keep the better
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

// Level is one kernel level's runs in a side-by-side measurement.
type Level struct {
	Kernels    string    `json:"kernels"`
	MsRuns     []float64 `json:"ms_runs"`
	CPUMsRuns  []float64 `json:"cpu_ms_runs,omitempty"` // process CPU time (all threads) per run
	MsPerBatch float64   `json:"ms_per_batch"`
	TokensPerS float64   `json:"tokens_per_s"`
	GFLOPS     float64   `json:"gflops"`
}

// timeLevels is timeRuns for each kernel level of levels (comma-separated)
// side by side: warm-up runs for each level, then the timed runs of the
// levels alternating, so that a drifting machine load spreads over all of
// them. It also records each run's process CPU time, and leaves the first
// level in force.
func timeLevels(levels string, warmup, runs int, f func()) []Level {
	names := strings.Split(levels, ",")
	out := make([]Level, len(names))
	set := func(i int) {
		if len(names) > 1 {
			_ = nn.SetKernels(names[i]) // checked by Run
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

// fillLevels sets each level's tokens/s and GFLOPS for the tokens and
// flops of one batch, and res's timing fields from the first level.
func fillLevels(res *Result, lv []Level, tokens int, flops float64) {
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

// Median is the median of xs (0 for none).
func Median(xs []float64) float64 { return median(xs) }

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

func benchEncode(res *Result, o Options, m *nn.Model) error {
	B, T, V := o.Batch, o.SeqLen, m.Config.VocabSize
	b := nn.BenchBatch(m.Config, B, T, o.Seed+1)
	out := make([]float32, B*V)
	lv := timeLevels(o.Kernels, o.Warmup, o.Runs, func() { nn.SpladeEncode(m, b, out, nil) })
	fillLevels(res, lv, B*T, nn.SpladeEncodeFLOPs(m.Config, B, T, B*T))
	return nil
}

func benchMLM(res *Result, o Options, m *nn.Model) error {
	B, T := o.Batch, o.SeqLen
	b := nn.BenchBatch(m.Config, B, T, o.Seed+2)
	labels, M := nn.MLMMask(b, m.Config.VocabSize, 0.15, o.Seed+3)
	opt := nn.NewAdamW(m.Params, 0.01)
	lv := timeLevels(o.Kernels, o.Warmup, o.Runs, func() { res.Loss = nn.MLMTrainStep(m, opt, b, labels, 1e-4) })
	res.Masked = M
	fillLevels(res, lv, B*T, nn.MLMTrainFLOPs(m.Config, B, T, M))
	return nil
}

// benchCorpus encodes the first o.MaxDocs documents of o.Corpus in batches
// (see Options.Order) and reports real tokens/s over the whole pass; each
// run encodes every batch once.
func benchCorpus(res *Result, o Options, m *nn.Model, showProgress bool) error {
	texts, err := readTexts(o.Corpus, o.MaxDocs)
	if err != nil {
		return err
	}
	st := time.Now()
	var tok *tokenize.Tokenizer
	if o.Tokenizer != "" {
		tok, err = tokenize.Load(o.Tokenizer)
	} else {
		var vocab []string
		vocab, err = tokenize.TrainWordPiece(slices.Values(texts), m.Config.VocabSize, 2, true)
		if err == nil {
			tok, err = tokenize.FromVocab(vocab, true)
		}
	}
	if err != nil {
		return fmt.Errorf("tokenizer for %s: %w", o.Corpus, err)
	}
	seqs := make([][]int32, len(texts))
	for i, t := range texts {
		seqs[i] = tok.Encode(t, o.SeqLen).IDs
		for _, id := range seqs[i] {
			if int(id) >= m.Config.VocabSize {
				return fmt.Errorf("token id %d of document %d outside the model vocabulary of %d (use --vocab)", id, i, m.Config.VocabSize)
			}
		}
	}
	res.TokenizeSec = time.Since(st).Seconds()
	batches := packBatches(seqs, o.Batch, o.SeqLen, o.Order, m.Config.ModelType == "bert")
	if batches == nil {
		return fmt.Errorf("--order %q: want length or arrival", o.Order)
	}
	res.Corpus, res.Order, res.Docs, res.Batches = o.Corpus, o.Order, len(texts), len(batches)
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
		bar := progress.New(os.Stderr, showProgress, "encode "+o.Order, "docs", int64(len(texts)))
		for _, b := range batches {
			if n := b.B * V; cap(out) < n {
				out = make([]float32, n)
			}
			nn.SpladeEncode(m, b, out[:b.B*V], nil)
			bar.Add(int64(b.B))
		}
		bar.Done()
	}
	res.MsRuns = timeRuns(min(o.Warmup, 1), o.Runs, pass)
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
