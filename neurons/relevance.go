package neurons

import (
	"fmt"
	"sort"
)

// Relevance neurons. For a side and each attributed neuron, with X its
// attributions on the relevant pairs (label > 0) and Y on the non-relevant
// ones, the statistic is Cliff's delta
//
//	δ = P(X > Y) − P(X < Y) = 2·AUC − 1 ∈ [−1, 1]
//
// (Cliff 1993; AUC = U/(|X|·|Y|) from the Mann–Whitney U statistic, ties
// counting ½). δ near 1: the neuron pushes relevant pairs' scores up more
// than non-relevant ones'. It is rank-based, so one pair with a large
// attribution cannot dominate it, and it does not depend on the scale of
// the scores. The relevance neurons are the top n by δ over all attributed
// layers (ties by the mean difference of attribution, then by layer and
// neuron). Cost: O(P log P) per neuron.

// NeuronRelevance is one neuron's separation statistics.
type NeuronRelevance struct {
	Layer    int     `json:"layer"`
	Neuron   int     `json:"neuron"`
	Delta    float64 `json:"cliffs_delta"`
	MeanDiff float64 `json:"mean_diff"` // mean over relevant − mean over non-relevant
}

// Relevance returns every neuron's statistics for side, most relevant
// first. It needs at least one relevant and one non-relevant pair.
func (a *Attributions) Relevance(side string) ([]NeuronRelevance, error) {
	attr, ok := a.Attr[side]
	if !ok {
		return nil, fmt.Errorf("relevance: side %q was not attributed (have %v)", side, a.Sides)
	}
	var rel, non []int
	for i, p := range a.Pairs {
		if p.Label > 0 {
			rel = append(rel, i)
		} else {
			non = append(non, i)
		}
	}
	if len(rel) == 0 || len(non) == 0 {
		return nil, fmt.Errorf("relevance: %d relevant and %d non-relevant pairs; need both", len(rel), len(non))
	}
	L, F := len(a.Layers), a.Neurons
	out := make([]NeuronRelevance, 0, L*F)
	type obs struct {
		v   float32
		rel bool
	}
	o := make([]obs, 0, len(a.Pairs))
	for li, l := range a.Layers {
		for j := range F {
			o = o[:0]
			var sr, sn float64
			for _, i := range rel {
				v := attr[(i*L+li)*F+j]
				o = append(o, obs{v, true})
				sr += float64(v)
			}
			for _, i := range non {
				v := attr[(i*L+li)*F+j]
				o = append(o, obs{v, false})
				sn += float64(v)
			}
			sort.Slice(o, func(x, y int) bool { return o[x].v < o[y].v })
			// Mann–Whitney U of the relevant group with mid-ranks for ties.
			var rankSum float64
			for s := 0; s < len(o); {
				e := s
				for e < len(o) && o[e].v == o[s].v {
					e++
				}
				mid := float64(s+e+1) / 2 // ranks s+1..e
				for k := s; k < e; k++ {
					if o[k].rel {
						rankSum += mid
					}
				}
				s = e
			}
			nr, nn := float64(len(rel)), float64(len(non))
			u := rankSum - nr*(nr+1)/2
			out = append(out, NeuronRelevance{Layer: l, Neuron: j, Delta: 2*u/(nr*nn) - 1, MeanDiff: sr/nr - sn/nn})
		}
	}
	sort.SliceStable(out, func(x, y int) bool {
		if out[x].Delta != out[y].Delta {
			return out[x].Delta > out[y].Delta
		}
		return out[x].MeanDiff > out[y].MeanDiff
	})
	return out, nil
}

// Overlap compares two top-n sets of neurons: their intersection, its
// size over n, and the Jaccard index, overall and per layer.
type Overlap struct {
	N        int            `json:"n"`
	Common   int            `json:"common"`
	Jaccard  float64        `json:"jaccard"`
	PerLayer map[int][2]int `json:"per_layer"` // layer → (in A's top n, in both)
	Neurons  []NeuronStat   `json:"common_neurons"`
}

// TopOverlap compares the first n of two relevance rankings.
func TopOverlap(a, b []NeuronRelevance, n int) Overlap {
	key := func(r NeuronRelevance) [2]int { return [2]int{r.Layer, r.Neuron} }
	inB := map[[2]int]bool{}
	for _, r := range b[:min(n, len(b))] {
		inB[key(r)] = true
	}
	ov := Overlap{N: n, PerLayer: map[int][2]int{}}
	for _, r := range a[:min(n, len(a))] {
		c := ov.PerLayer[r.Layer]
		c[0]++
		if inB[key(r)] {
			c[1]++
			ov.Common++
			ov.Neurons = append(ov.Neurons, NeuronStat{Layer: r.Layer, Neuron: r.Neuron, Value: r.Delta})
		}
		ov.PerLayer[r.Layer] = c
	}
	union := min(n, len(a)) + min(n, len(b)) - ov.Common
	if union > 0 {
		ov.Jaccard = float64(ov.Common) / float64(union)
	}
	return ov
}
