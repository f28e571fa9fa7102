package neurons

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spladapt/spladapt/index"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
	"github.com/spladapt/spladapt/splade"
)

// Sides of a pair whose neurons can be attributed.
const (
	SideDoc   = "doc"   // the document's forward pass, the query vector fixed
	SideQuery = "query" // the query's forward pass (two-sided models), the document vector fixed
)

// Baselines.
const (
	BaselineZero = "zero" // a' = 0
	// BaselineMean: a'_j = the mean activation of neuron j over every real
	// token position of the attributed side's texts of the run (the
	// documents of the pairs for the doc side, the distinct queries for the
	// query side), computed by a forward pass over them before attributing.
	BaselineMean = "mean"
)

// Options configure AttributePairs.
type Options struct {
	Layers   []int    // attributed layers; nil for all
	Steps    int      // path points evaluated (default 64; see Attributor.Steps)
	Rule     Rule     // default Piecewise
	Baseline string   // BaselineZero (default) or BaselineMean
	Sides    []string // default {SideDoc}
	// Progress, when set, is called after each pair.
	Progress func(done int)
}

// PairResult is one pair's record in summary.json.
type PairResult struct {
	QID   string  `json:"qid"`
	DocID string  `json:"docid"`
	Label int     `json:"label"`
	Score float64 `json:"score"`
	// BaselineScore and AttributionSum are those of the first attributed
	// side (doc when it is attributed); Sides has every side's.
	BaselineScore  float64               `json:"baseline_score"`
	AttributionSum float64               `json:"attribution_sum"`
	Sides          map[string]SideResult `json:"sides"`
}

// SideResult is one side's completeness numbers.
type SideResult struct {
	BaselineScore  float64 `json:"baseline_score"`
	AttributionSum float64 `json:"attribution_sum"`
	// CompletenessError is |attribution_sum − (score − baseline_score)| /
	// |score − baseline_score|.
	CompletenessError float64 `json:"completeness_error"`
}

// Attributions are the per-neuron attributions of a set of pairs: for
// each side, Attr[side] (P, len(Layers), F) float32.
type Attributions struct {
	Model    string                 `json:"model"`
	Layers   []int                  `json:"layers"`
	Neurons  int                    `json:"neurons"` // F
	Steps    int                    `json:"steps"`
	Rule     Rule                   `json:"rule"`
	Baseline string                 `json:"baseline"`
	Sides    []string               `json:"sides"`
	Pairs    []PairResult           `json:"pairs"`
	Attr     map[string][]float32   `json:"-"` // side → (P, len(Layers), F)
	BaseVals map[string][][]float32 `json:"-"` // side → (len(Layers), F) baseline activations
}

// At returns the attribution of neuron j of Layers[li] for pair p on side.
func (a *Attributions) At(side string, p, li, j int) float32 {
	L, F := len(a.Layers), a.Neurons
	return a.Attr[side][(p*L+li)*F+j]
}

func denseOf(v []index.TermWeight, V int) []float32 {
	d := make([]float32, V)
	for _, tw := range v {
		d[tw.Term] = tw.Weight
	}
	return d
}

// AttributePairs attributes every pair's score to the neurons of enc's
// model (see the package doc). The fixed side is encoded as enc encodes it
// (top-n pruning included; an inference-free encoder's queries are their
// IDF-weighted tokens); the attributed side is never pruned. The query
// side needs a two-sided model. Cost per pair and side: at most Steps + 2
// forward and Steps backward passes of the text (Attributor.Attribute).
func AttributePairs(enc *splade.Encoder, modelDir string, pairs []Pair, opt Options) (*Attributions, error) {
	m := enc.Model
	L, F, V := m.Config.NumLayers, m.Config.IntermediateSize, m.Config.VocabSize
	layers := opt.Layers
	if layers == nil {
		for l := range L {
			layers = append(layers, l)
		}
	}
	sides := opt.Sides
	if len(sides) == 0 {
		sides = []string{SideDoc}
	}
	for _, s := range sides {
		if s != SideDoc && s != SideQuery {
			return nil, fmt.Errorf("attribute: side %q: want doc or query", s)
		}
		if s == SideQuery && enc.QueryWeights != nil {
			return nil, fmt.Errorf("attribute: the query side needs a two-sided model; %s is inference-free (its queries do not go through the model)", modelDir)
		}
	}
	bl := opt.Baseline
	if bl == "" {
		bl = BaselineZero
	}
	if bl != BaselineZero && bl != BaselineMean {
		return nil, fmt.Errorf("attribute: baseline %q: want zero or mean", bl)
	}
	steps := opt.Steps
	if steps == 0 {
		steps = 64
	}
	rule := opt.Rule
	if rule == "" {
		rule = Piecewise
	}
	out := &Attributions{Model: modelDir, Layers: layers, Neurons: F, Steps: steps, Rule: rule, Baseline: bl, Sides: sides,
		Attr: map[string][]float32{}, BaseVals: map[string][][]float32{}}
	// Token ids and fixed vectors.
	qIDs := make([][]int32, len(pairs))
	dIDs := make([][]int32, len(pairs))
	qTexts, dTexts := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		qIDs[i] = enc.Tok.Encode(p.Query, enc.QueryMaxLen).IDs
		dIDs[i] = enc.Tok.Encode(p.Doc, enc.MaxLen).IDs
		qTexts[i], dTexts[i] = p.Query, p.Doc
	}
	qVecs, err := enc.EncodeQueries(qTexts)
	if err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	dVecs, err := enc.EncodeDocs(dTexts)
	if err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	attrs := map[string]*Attributor{}
	for _, s := range sides {
		a := &Attributor{Model: m, Layers: layers, Steps: steps, Rule: rule}
		if bl == BaselineMean {
			seqs := dIDs
			if s == SideQuery {
				seqs = distinct(qIDs, pairs)
			}
			a.Baseline, err = MeanActivations(m, layers, seqs)
			if err != nil {
				return nil, err
			}
		} else {
			for range layers {
				a.Baseline = append(a.Baseline, make([]float32, F))
			}
		}
		out.BaseVals[s] = a.Baseline
		out.Attr[s] = make([]float32, len(pairs)*len(layers)*F)
		attrs[s] = a
	}
	for i, p := range pairs {
		pr := PairResult{QID: p.QID, DocID: p.DocID, Label: p.Label, Sides: map[string]SideResult{}}
		for si, s := range sides {
			ids, other := dIDs[i], denseOf(qVecs[i], V)
			if s == SideQuery {
				ids, other = qIDs[i], denseOf(dVecs[i], V)
			}
			r, err := attrs[s].Attribute(ids, other)
			if err != nil {
				return nil, fmt.Errorf("attribute pair %s/%s: %w", p.QID, p.DocID, err)
			}
			for li := range layers {
				dst := out.Attr[s][(i*len(layers)+li)*F:]
				for j, v := range r.Attr[li] {
					dst[j] = float32(v)
				}
			}
			sr := SideResult{BaselineScore: r.BaselineScore, AttributionSum: r.Sum, CompletenessError: r.CompletenessError()}
			pr.Sides[s] = sr
			if si == 0 {
				pr.Score, pr.BaselineScore, pr.AttributionSum = r.Score, r.BaselineScore, r.Sum
			}
		}
		out.Pairs = append(out.Pairs, pr)
		if opt.Progress != nil {
			opt.Progress(i + 1)
		}
	}
	return out, nil
}

// distinct returns the token sequences of the distinct queries (by qid).
func distinct(qIDs [][]int32, pairs []Pair) [][]int32 {
	seen := map[string]bool{}
	var out [][]int32
	for i, p := range pairs {
		if !seen[p.QID] {
			seen[p.QID] = true
			out = append(out, qIDs[i])
		}
	}
	return out
}

// recordHook sums each attributed layer's activations over the real
// positions of a batch.
type recordHook struct {
	pos map[int]int
	sum [][]float64 // (F) per attributed layer
	n   int
}

func (h *recordHook) FFNForward(l int, b nn.Batch, act []float32) bool {
	i, ok := h.pos[l]
	if !ok {
		return false
	}
	F := len(h.sum[i])
	for r, mv := range b.Mask {
		if mv == 0 {
			continue
		}
		if i == 0 {
			h.n++
		}
		for j, v := range act[r*F : (r+1)*F] {
			h.sum[i][j] += float64(v)
		}
	}
	return false
}
func (h *recordHook) FFNBackward(int, []float32) {}
func (h *recordHook) GradFrom() int              { return math.MaxInt }

// MeanActivations returns the mean activation of each neuron of the given
// layers over every position of seqs (one sequence per forward pass, no
// padding). Cost: one forward pass per sequence.
func MeanActivations(m *nn.Model, layers []int, seqs [][]int32) ([][]float32, error) {
	F := m.Config.IntermediateSize
	h := &recordHook{pos: map[int]int{}}
	for i, l := range layers {
		h.pos[l] = i
		h.sum = append(h.sum, make([]float64, F))
	}
	p := m.NewPass()
	p.SetFFNHook(h)
	for _, s := range seqs {
		b := nn.Batch{B: 1, T: len(s), InputIDs: s, Mask: make([]float32, len(s))}
		for i := range b.Mask {
			b.Mask[i] = 1
		}
		if err := m.ValidateBatch(b); err != nil {
			return nil, fmt.Errorf("mean activations: %w", err)
		}
		p.Encode(b)
	}
	if h.n == 0 {
		return nil, fmt.Errorf("mean activations: no tokens")
	}
	out := make([][]float32, len(layers))
	for i := range out {
		out[i] = make([]float32, F)
		for j, s := range h.sum[i] {
			out[i][j] = float32(s / float64(h.n))
		}
	}
	return out, nil
}

// File names in an attribution directory.
const (
	AttrFile    = "attributions.safetensors"
	SummaryFile = "summary.json"
)

// LayerStats are one layer's aggregate statistics over the pairs of one
// side (summary.json "layers").
type LayerStats struct {
	Side  string `json:"side"`
	Layer int    `json:"layer"`
	// MeanSum is the mean over pairs of Σ_j A_j; MeanAbs of Σ_j |A_j|.
	MeanSum float64 `json:"mean_sum"`
	MeanAbs float64 `json:"mean_abs"`
	// Share is the layer's part of Σ over layers of MeanAbs.
	Share float64 `json:"share"`
	// Top are the neurons with the largest mean |A| over pairs.
	Top []NeuronStat `json:"top"`
}

// NeuronStat is a neuron and a value.
type NeuronStat struct {
	Layer  int     `json:"layer"`
	Neuron int     `json:"neuron"`
	Value  float64 `json:"value"`
}

type summary struct {
	*Attributions
	MaxCompletenessError float64      `json:"max_completeness_error"`
	Layers2              []LayerStats `json:"layer_stats"`
}

// Stats computes the per-layer aggregate statistics (topK neurons each).
func (a *Attributions) Stats(topK int) []LayerStats {
	var out []LayerStats
	P, L, F := len(a.Pairs), len(a.Layers), a.Neurons
	for _, s := range a.Sides {
		start := len(out)
		var total float64
		for li, l := range a.Layers {
			st := LayerStats{Side: s, Layer: l}
			meanAbs := make([]float64, F)
			for p := range P {
				row := a.Attr[s][(p*L+li)*F : (p*L+li+1)*F]
				for j, v := range row {
					st.MeanSum += float64(v) / float64(P)
					st.MeanAbs += math.Abs(float64(v)) / float64(P)
					meanAbs[j] += math.Abs(float64(v)) / float64(P)
				}
			}
			st.Top = topNeurons(l, meanAbs, topK)
			total += st.MeanAbs
			out = append(out, st)
		}
		for i := start; i < len(out); i++ {
			if total > 0 {
				out[i].Share = out[i].MeanAbs / total
			}
		}
	}
	return out
}

func topNeurons(layer int, v []float64, k int) []NeuronStat {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(x, y int) bool { return v[idx[x]] > v[idx[y]] })
	var out []NeuronStat
	for _, j := range idx[:min(k, len(idx))] {
		out = append(out, NeuronStat{Layer: layer, Neuron: j, Value: v[j]})
	}
	return out
}

// MaxCompletenessError is the largest completeness error over pairs and sides.
func (a *Attributions) MaxCompletenessError() float64 {
	var e float64
	for _, p := range a.Pairs {
		for _, s := range p.Sides {
			e = max(e, s.CompletenessError)
		}
	}
	return e
}

// WriteDir writes dir/attributions.safetensors — a tensor per side named
// after it, (pairs, len(layers), F) float32, and "<side>.baseline"
// (len(layers), F), the baseline activations; metadata "layers" (comma
// separated), "steps", "rule", "baseline" — and dir/summary.json (the
// configuration, "pairs" and "layer_stats"), through a temporary
// directory and a rename.
func (a *Attributions) WriteDir(dir string) error {
	return atomicfile.Dir(dir, func(tmp string) error {
		var ts []safetensors.Named
		L, F := len(a.Layers), a.Neurons
		for _, s := range a.Sides {
			ts = append(ts, safetensors.Named{Name: s, Shape: []int{len(a.Pairs), L, F}, Data: a.Attr[s]})
			flat := make([]float32, 0, L*F)
			for _, b := range a.BaseVals[s] {
				flat = append(flat, b...)
			}
			ts = append(ts, safetensors.Named{Name: s + ".baseline", Shape: []int{L, F}, Data: flat})
		}
		ls := make([]string, L)
		for i, l := range a.Layers {
			ls[i] = strconv.Itoa(l)
		}
		meta := map[string]string{"layers": strings.Join(ls, ","), "steps": strconv.Itoa(a.Steps), "rule": string(a.Rule), "baseline": a.Baseline, "sides": strings.Join(a.Sides, ",")}
		if err := safetensors.WriteFile(filepath.Join(tmp, AttrFile), ts, meta); err != nil {
			return err
		}
		b, err := json.MarshalIndent(summary{a, a.MaxCompletenessError(), a.Stats(20)}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, SummaryFile), append(b, '\n'), 0o644)
	})
}

// ReadDir reads what WriteDir wrote.
func ReadDir(dir string) (*Attributions, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, fmt.Errorf("read attributions: %w", err)
	}
	var a Attributions
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("read attributions %s: %w", filepath.Join(dir, SummaryFile), err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, AttrFile))
	if err != nil {
		return nil, fmt.Errorf("read attributions: %w", err)
	}
	a.Attr, a.BaseVals = map[string][]float32{}, map[string][][]float32{}
	L, F := len(a.Layers), a.Neurons
	for _, s := range a.Sides {
		v, shape, err := f.Float32(s)
		if err != nil {
			return nil, fmt.Errorf("read attributions %s: %w", dir, err)
		}
		if len(shape) != 3 || shape[0] != len(a.Pairs) || shape[1] != L || shape[2] != F {
			return nil, fmt.Errorf("read attributions %s: tensor %s has shape %v, summary says (%d, %d, %d)", dir, s, shape, len(a.Pairs), L, F)
		}
		a.Attr[s] = v
		bv, bshape, err := f.Float32(s + ".baseline")
		if err != nil {
			return nil, fmt.Errorf("read attributions %s: %w", dir, err)
		}
		if len(bshape) != 2 || bshape[0] != L || bshape[1] != F {
			return nil, fmt.Errorf("read attributions %s: tensor %s.baseline has shape %v, want (%d, %d)", dir, s, bshape, L, F)
		}
		for li := range L {
			a.BaseVals[s] = append(a.BaseVals[s], bv[li*F:(li+1)*F])
		}
	}
	return &a, nil
}
