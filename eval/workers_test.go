package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestEvaluateWorkersIdentical evaluates a run large enough to be split
// (over 20 000 hits) at 1, 2 and 8 workers and wants the same bits for
// every query value and every aggregate.
func TestEvaluateWorkersIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	qrels, run := corpora.Qrels{}, corpora.Run{}
	for q := range 300 {
		qid := fmt.Sprintf("q%d", q)
		qrels[qid] = map[string]int{}
		for range 1 + rng.IntN(20) {
			qrels[qid][fmt.Sprintf("d%d", rng.IntN(2000))] = rng.IntN(3)
		}
		if q%7 == 0 {
			continue // judged, missing from the run
		}
		for d := range 100 {
			run[qid] = append(run[qid], corpora.Hit{DocID: fmt.Sprintf("d%d", (d*37+q)%2000), Score: rng.Float64()})
		}
	}
	ms, err := ParseMeasures("ndcg_cut.10", "map", "recip_rank", "P.5", "recall.100", "num_rel", "num_rel_ret")
	if err != nil {
		t.Fatal(err)
	}
	var want *Results
	for _, nw := range []int{1, 2, 8} {
		res, err := Evaluate(qrels, run, ms, Options{AllQueries: true, Workers: nw})
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = res
			continue
		}
		for i, v := range res.All {
			if math.Float64bits(v) != math.Float64bits(want.All[i]) {
				t.Fatalf("%d workers: %s all = %v, want %v", nw, ms[i], v, want.All[i])
			}
		}
		for i, q := range res.Queries {
			for j, v := range q.Values {
				if math.Float64bits(v) != math.Float64bits(want.Queries[i].Values[j]) {
					t.Fatalf("%d workers: query %s %s = %v, want %v", nw, q.QID, ms[j], v, want.Queries[i].Values[j])
				}
			}
		}
	}
}
