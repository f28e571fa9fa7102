package neurons

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spladapt/spladapt/corpora"
)

// Pair is one (query, document) pair to attribute; a line of a pairs file:
//
//	{"qid": "q1", "docid": "d7", "query": "...", "doc": "...", "label": 1}
//
// label is the relevance grade (> 0 relevant, 0 non-relevant).
type Pair struct {
	QID   string `json:"qid"`
	DocID string `json:"docid"`
	Query string `json:"query"`
	Doc   string `json:"doc"`
	Label int    `json:"label"`
}

// ReadPairs reads a JSONL pairs file. Every line must hold qid, docid,
// query and doc; a malformed line is a *corpora.ParseError.
func ReadPairs(path string) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read pairs: %w", err)
	}
	defer f.Close()
	var out []Pair
	r := bufio.NewReader(f)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 && len(trimSpace(b)) > 0 {
			var p Pair
			if jerr := json.Unmarshal(b, &p); jerr != nil {
				return nil, &corpora.ParseError{File: path, Line: line, Err: jerr}
			}
			if p.QID == "" || p.DocID == "" {
				return nil, &corpora.ParseError{File: path, Line: line, Err: fmt.Errorf(`missing "qid" or "docid"`)}
			}
			out = append(out, p)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read pairs %s: %w", path, err)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read pairs %s: no pairs", path)
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

// DrawPairs draws pairs from a collection: for each query (in id order, at
// most maxQueries, 0 for all) that has a relevant document in the corpus,
// up to perQuery relevant documents (qrels grade > 0) and as many
// non-relevant ones — the highest-ranked documents of run that are not
// judged relevant (hard negatives). Queries with no non-relevant document
// in the run are skipped, so the two classes stay balanced.
func DrawPairs(queries []corpora.Query, docs map[string]string, qrels corpora.Qrels, run corpora.Run, perQuery, maxQueries int) []Pair {
	qs := append([]corpora.Query(nil), queries...)
	sort.Slice(qs, func(i, j int) bool { return qs[i].ID < qs[j].ID })
	var out []Pair
	n := 0
	for _, q := range qs {
		if maxQueries > 0 && n >= maxQueries {
			break
		}
		var rel []string
		for d, g := range qrels[q.ID] {
			if _, ok := docs[d]; ok && g > 0 {
				rel = append(rel, d)
			}
		}
		sort.Strings(rel)
		if len(rel) > perQuery {
			rel = rel[:perQuery]
		}
		var non []string
		hits := append([]corpora.Hit(nil), run[q.ID]...)
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
		for _, h := range hits {
			if len(non) == len(rel) {
				break
			}
			if _, ok := docs[h.DocID]; ok && qrels[q.ID][h.DocID] <= 0 {
				non = append(non, h.DocID)
			}
		}
		if len(rel) == 0 || len(non) == 0 {
			continue
		}
		n++
		for _, d := range rel {
			out = append(out, Pair{QID: q.ID, DocID: d, Query: q.Text, Doc: docs[d], Label: qrels[q.ID][d]})
		}
		for _, d := range non {
			out = append(out, Pair{QID: q.ID, DocID: d, Query: q.Text, Doc: docs[d], Label: max(0, qrels[q.ID][d])})
		}
	}
	return out
}
