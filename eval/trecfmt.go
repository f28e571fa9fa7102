package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// WriteTrec prints results in trec_eval's format, one value per line:
//
//	measure<TAB>qid<TAB>value
//
// the measure name left-justified in 22 columns, values with 4 decimals and
// counts as integers (trec_eval's "%-22s\t%s\t%6.4f"). With perQuery every
// evaluated query's lines come first, in Results order (num_q has no
// per-query line, as in trec_eval); with summary the "all" lines follow.
// Measures print in r.Measures order: sort them with TrecOrder for output
// that diffs cleanly against trec_eval's.
func (r *Results) WriteTrec(w io.Writer, perQuery, summary bool) error {
	bw := bufio.NewWriter(w)
	line := func(m Measure, qid string, v float64) {
		if m.IsCount() {
			fmt.Fprintf(bw, "%-22s\t%s\t%d\n", m.Name(), qid, int64(v))
		} else {
			fmt.Fprintf(bw, "%-22s\t%s\t%6.4f\n", m.Name(), qid, v)
		}
	}
	if perQuery {
		for _, q := range r.Queries {
			for j, m := range r.Measures {
				if m.Kind == NumQ {
					continue
				}
				line(m, q.QID, q.Values[j])
			}
		}
	}
	if summary {
		for j, m := range r.Measures {
			line(m, "all", r.All[j])
		}
	}
	return bw.Flush()
}

// jsonResults is the JSON form of Results.
type jsonResults struct {
	Measures []string           `json:"measures"`
	All      map[string]float64 `json:"all"`
	Queries  []jsonQuery        `json:"queries,omitempty"`
}

type jsonQuery struct {
	QID    string             `json:"qid"`
	Values map[string]float64 `json:"values"`
}

// WriteJSON prints results as one JSON object: "measures" (names in
// order), "all" (name → aggregate) and, with perQuery, "queries" (a list
// of {"qid", "values": name → value} in Results order).
func (r *Results) WriteJSON(w io.Writer, perQuery bool) error {
	out := jsonResults{All: map[string]float64{}}
	for j, m := range r.Measures {
		out.Measures = append(out.Measures, m.Name())
		out.All[m.Name()] = r.All[j]
	}
	if perQuery {
		for _, q := range r.Queries {
			jq := jsonQuery{QID: q.QID, Values: map[string]float64{}}
			for j, m := range r.Measures {
				if m.Kind != NumQ {
					jq.Values[m.Name()] = q.Values[j]
				}
			}
			out.Queries = append(out.Queries, jq)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
