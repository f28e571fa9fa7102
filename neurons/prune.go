package neurons

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/splade"
)

// The pruning study validates relevance neurons by ablation: set a chosen
// set of neurons to their baseline activation a′ (the one their attributions
// were computed against, stored in the attribution directory) at every token
// position of every text the model encodes, and measure retrieval quality.
// If the top-n relevance neurons matter, ablating them hurts more than
// ablating n random neurons or the n least relevant ones.
//
// Selections, for a ranking R of all N attributed neurons by Cliff's delta
// (Relevance, most relevant first) and a size n with 3n ≤ N:
//
//	top     R[0:n]
//	least   R[N−n:N]
//	random  n neurons drawn uniformly without replacement from R[n:N−n],
//	        one draw per seed (seed s uses PCG(s, 0x9e3779b9))
//
// so the three are disjoint: a "random" set never contains a top or a
// least-relevant neuron, and the curves compare three different sets.
//
// Only the model is ablated. For an inference-free model (queries encoded
// by idf weights, splade/idf.go) the query vectors are unchanged and only
// the documents see the ablation; for a two-sided model the query encoder
// is the same model, so queries are ablated too.

// Ablation is an nn.FFNHook that sets chosen FFN neurons to fixed values
// in every row of their layer's activations (N,F). It never asks for
// gradients; a Backward through it zeroes the ablated neurons' gradient.
type Ablation struct {
	set map[int][]ablated // layer → neurons and their values
	F   map[int]int       // layer → neurons per row
}

type ablated struct {
	j int
	v float32
}

// NewAblation ablates neurons sel (layers and indices as in a's Layers)
// to a's baseline values of side.
func NewAblation(a *Attributions, side string, sel []NeuronRelevance) (*Ablation, error) {
	bv, ok := a.BaseVals[side]
	if !ok {
		return nil, fmt.Errorf("ablation: side %q was not attributed (have %v)", side, a.Sides)
	}
	pos := map[int]int{}
	for li, l := range a.Layers {
		pos[l] = li
	}
	h := &Ablation{set: map[int][]ablated{}, F: map[int]int{}}
	for _, s := range sel {
		li, ok := pos[s.Layer]
		if !ok {
			return nil, fmt.Errorf("ablation: layer %d was not attributed (have %v)", s.Layer, a.Layers)
		}
		if s.Neuron < 0 || s.Neuron >= a.Neurons {
			return nil, fmt.Errorf("ablation: neuron %d of layer %d out of range [0, %d)", s.Neuron, s.Layer, a.Neurons)
		}
		h.set[s.Layer] = append(h.set[s.Layer], ablated{s.Neuron, bv[li][s.Neuron]})
		h.F[s.Layer] = a.Neurons
	}
	return h, nil
}

// FFNForward overwrites the ablated neurons of layer l in every row.
func (h *Ablation) FFNForward(l int, _ nn.Batch, act []float32) bool {
	set := h.set[l]
	if len(set) == 0 {
		return false
	}
	F := h.F[l]
	for r := 0; r+F <= len(act); r += F {
		row := act[r : r+F]
		for _, s := range set {
			row[s.j] = s.v
		}
	}
	// Every entry forced only when the whole layer is ablated (neurons
	// are distinct within a selection).
	return len(set) == F
}

// FFNBackward zeroes the gradient of the ablated neurons: their values do
// not depend on the layer's input.
func (h *Ablation) FFNBackward(l int, grad []float32) {
	set := h.set[l]
	F := h.F[l]
	if len(set) == 0 || F == 0 {
		return
	}
	for r := 0; r+F <= len(grad); r += F {
		for _, s := range set {
			grad[r+s.j] = 0
		}
	}
}

// GradFrom asks for no gradient.
func (h *Ablation) GradFrom() int { return 1 << 30 }

// Selection names.
const (
	SelectTop    = "top"
	SelectRandom = "random"
	SelectLeast  = "least"
)

// Select returns the top, least and (per seed) random selections of size
// n from ranking (most relevant first), as documented above. It needs
// 0 ≤ n and 3n ≤ len(ranking).
func Select(ranking []NeuronRelevance, n, seeds int) (top, least []NeuronRelevance, random [][]NeuronRelevance, err error) {
	N := len(ranking)
	if n < 0 || 3*n > N {
		return nil, nil, nil, fmt.Errorf("select %d neurons: need 0 ≤ n and 3n ≤ %d (the attributed neurons), so that top, random and least are disjoint", n, N)
	}
	top = ranking[:n]
	least = ranking[N-n:]
	middle := ranking[n : N-n]
	for s := range seeds {
		rng := rand.New(rand.NewPCG(uint64(s), 0x9e3779b9))
		idx := rng.Perm(len(middle))[:n]
		slices.Sort(idx)
		r := make([]NeuronRelevance, n)
		for i, k := range idx {
			r[i] = middle[k]
		}
		random = append(random, r)
	}
	return top, least, random, nil
}

// PruneOptions configure Prune.
type PruneOptions struct {
	Ns    []int  // selection sizes, each with 3n ≤ attributed neurons
	Seeds int    // random selections per n (default 3)
	Side  string // ranked and ablated side (default SideDoc)
	Depth int    // retrieval depth (default 100)
	// Progress, when set, is called before each evaluation with what it is.
	Progress func(what string)
	// Ctx, when set, is checked before each evaluation: a cancelled study
	// returns its error (an evaluation under way runs to its end).
	Ctx context.Context
}

// PrunePoint is the nDCG@10 of each selection at one n.
type PrunePoint struct {
	N             int       `json:"n"`
	Top           float64   `json:"top"`
	Random        float64   `json:"random"` // mean over seeds
	RandomPerSeed []float64 `json:"random_per_seed"`
	Least         float64   `json:"least"`
	// TopDelta and LeastDelta are the mean Cliff's delta of the selection.
	TopDelta   float64 `json:"top_mean_delta"`
	LeastDelta float64 `json:"least_mean_delta"`
}

// PruneStudy is prune.json.
type PruneStudy struct {
	Model     string       `json:"model"`
	Attr      string       `json:"attr"`
	Data      string       `json:"data"`
	Side      string       `json:"side"`
	Baseline  string       `json:"baseline"`
	Layers    []int        `json:"layers"`
	Neurons   int          `json:"neurons_per_layer"`
	Pairs     int          `json:"attributed_pairs"`
	Queries   int          `json:"queries"`
	Docs      int          `json:"docs"`
	Measure   string       `json:"measure"`
	Seeds     int          `json:"random_seeds"`
	Unablated float64      `json:"unablated"`
	Points    []PrunePoint `json:"points"`
	Seconds   float64      `json:"seconds,omitempty"`
}

// Prune runs the pruning study: nDCG@10 of enc on dev, exactly evaluated
// (splade.EvaluateDev: every document encoded and scored), unablated and
// with each selection of each n ablated through enc.Model's FFN hook. The
// hook is removed before Prune returns. Cost: (1 + len(Ns)·(2 + Seeds))
// encodings of dev's corpus.
func Prune(enc *splade.Encoder, a *Attributions, dev *splade.DevSet, opt PruneOptions) (*PruneStudy, error) {
	if opt.Side == "" {
		opt.Side = SideDoc
	}
	if opt.Seeds <= 0 {
		opt.Seeds = 3
	}
	if opt.Depth <= 0 {
		opt.Depth = 100
	}
	if a.Neurons != enc.Model.Config.IntermediateSize {
		return nil, fmt.Errorf("prune: attributions have %d neurons per layer, model has %d (attributed with another model?)", a.Neurons, enc.Model.Config.IntermediateSize)
	}
	for _, l := range a.Layers {
		if l < 0 || l >= enc.Model.Config.NumLayers {
			return nil, fmt.Errorf("prune: attributed layer %d, model has %d layers", l, enc.Model.Config.NumLayers)
		}
	}
	ranking, err := a.Relevance(opt.Side)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, n := range opt.Ns {
		if _, _, _, err := Select(ranking, n, 0); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	ms, err := eval.ParseMeasures("ndcg_cut.10")
	if err != nil {
		return nil, err
	}
	defer enc.Model.SetFFNHook(nil)
	score := func(what string, sel []NeuronRelevance) (float64, error) {
		if opt.Ctx != nil && opt.Ctx.Err() != nil {
			return 0, fmt.Errorf("prune (%s): %w", what, opt.Ctx.Err())
		}
		if opt.Progress != nil {
			opt.Progress(what)
		}
		h, err := NewAblation(a, opt.Side, sel)
		if err != nil {
			return 0, err
		}
		enc.Model.SetFFNHook(h)
		res, err := splade.EvaluateDev(enc, dev, ms, opt.Depth)
		if err != nil {
			return 0, fmt.Errorf("prune (%s): %w", what, err)
		}
		return res.All[0], nil
	}
	st := &PruneStudy{Model: a.Model, Side: opt.Side, Baseline: a.Baseline, Layers: a.Layers, Neurons: a.Neurons,
		Pairs: len(a.Pairs), Queries: len(dev.Queries), Docs: len(dev.Docs), Measure: ms[0].Name(), Seeds: opt.Seeds, Data: dev.Name}
	if st.Unablated, err = score("unablated", nil); err != nil {
		return nil, err
	}
	meanDelta := func(s []NeuronRelevance) float64 {
		var t float64
		for _, r := range s {
			t += r.Delta
		}
		return t / float64(max(1, len(s)))
	}
	for _, n := range opt.Ns {
		top, least, random, err := Select(ranking, n, opt.Seeds)
		if err != nil {
			return nil, err
		}
		p := PrunePoint{N: n, TopDelta: meanDelta(top), LeastDelta: meanDelta(least)}
		if p.Top, err = score(fmt.Sprintf("top %d", n), top); err != nil {
			return nil, err
		}
		if p.Least, err = score(fmt.Sprintf("least %d", n), least); err != nil {
			return nil, err
		}
		for s, r := range random {
			v, err := score(fmt.Sprintf("random %d (seed %d)", n, s), r)
			if err != nil {
				return nil, err
			}
			p.RandomPerSeed = append(p.RandomPerSeed, v)
			p.Random += v / float64(len(random))
		}
		st.Points = append(st.Points, p)
	}
	return st, nil
}

// WriteDir writes prune.json, prune.svg (the curves) and prune.html (the
// report with the curves inline) into dir, atomically.
func (st *PruneStudy) WriteDir(dir string) error {
	return atomicfile.Dir(dir, func(tmp string) error {
		for _, f := range []struct {
			name  string
			write func(io.Writer) error
		}{{"prune.json", st.WriteJSON}, {"prune.svg", st.WriteSVG}, {"prune.html", st.WriteHTML}} {
			var b bytes.Buffer
			if err := f.write(&b); err != nil {
				return fmt.Errorf("write %s: %w", f.name, err)
			}
			if err := os.WriteFile(filepath.Join(tmp, f.name), b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("write pruning report: %w", err)
			}
		}
		return nil
	})
}

// WriteJSON writes the study as indented JSON.
func (st *PruneStudy) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(st)
}

// ReadPruneStudy reads a prune.json.
func ReadPruneStudy(path string) (*PruneStudy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pruning study: %w", err)
	}
	var st PruneStudy
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read pruning study %s: %w", path, err)
	}
	return &st, nil
}
