package eval_test

import (
	"fmt"
	"os"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
)

func ExampleEvaluate() {
	qrels := corpora.Qrels{"q1": {"d1": 2, "d2": 1}, "q2": {"d9": 1}}
	run := corpora.Run{"q1": {
		{DocID: "d3", Score: 3},
		{DocID: "d1", Score: 2},
		{DocID: "d2", Score: 2}, // ties with d1: "d2" > "d1", so d2 ranks first
	}}
	ms, _ := eval.ParseMeasures("ndcg_cut.10", "map", "RR@1", "num_q")
	eval.TrecOrder(ms)
	res, _ := eval.Evaluate(qrels, run, ms, eval.Options{AllQueries: true})
	res.WriteTrec(os.Stdout, false, true)
	fmt.Printf("q1 AP = %.4f\n", res.Queries[0].Values[res.Index("map")])
	// Output:
	// num_q                 	all	2
	// map                   	all	0.2917
	// RR@1                  	all	0.0000
	// ndcg_cut_10           	all	0.3100
	// q1 AP = 0.5833
}
