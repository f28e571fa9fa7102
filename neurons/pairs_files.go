package neurons

import (
	"fmt"
	"io"
	"strings"

	"github.com/spladapt/spladapt/corpora"
)

// DrawPairsFrom reads the queries, qrels (TREC, or BEIR with a .tsv
// name), run and corpus at these paths and draws pairs as DrawPairs does,
// keeping in memory only the documents that the queries' judgments and
// run hits name. No pair at all is an error.
func DrawPairsFrom(queriesPath, corpusPath, qrelsPath, runPath string, perQuery, maxQueries int, opts corpora.Options) ([]Pair, error) {
	qs, err := corpora.ReadQueries(queriesPath, opts)
	if err != nil {
		return nil, err
	}
	var qr corpora.Qrels
	if strings.HasSuffix(qrelsPath, ".tsv") {
		qr, err = corpora.ReadQrelsTSV(qrelsPath)
	} else {
		qr, err = corpora.ReadQrels(qrelsPath)
	}
	if err != nil {
		return nil, err
	}
	rn, err := corpora.ReadRun(runPath)
	if err != nil {
		return nil, err
	}
	need := map[string]bool{}
	for _, q := range qs {
		for d := range qr[q.ID] {
			need[d] = true
		}
		for _, h := range rn[q.ID] {
			need[h.DocID] = true
		}
	}
	r, err := corpora.OpenCorpus(corpusPath, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	docs, err := corpora.ReadTexts(r, need)
	if err != nil {
		return nil, err
	}
	pairs := DrawPairs(qs, docs, qr, rn, perQuery, maxQueries)
	if len(pairs) == 0 {
		return nil, fmt.Errorf("draw pairs: no query has both a relevant document in the corpus and a non-relevant one in the run")
	}
	return pairs, nil
}

// LookupPair returns the text of query qid and the content of document
// docid of the BEIR directory dir (one pass over the corpus, stopping at
// docid).
func LookupPair(dir, qid, docid string, opts corpora.Options) (string, string, error) {
	if qid == "" || docid == "" {
		return "", "", fmt.Errorf("explain: --data needs --qid and --docid")
	}
	qs, err := corpora.ReadQueries(dir+"/queries.jsonl", opts)
	if err != nil {
		return "", "", err
	}
	var query string
	for _, q := range qs {
		if q.ID == qid {
			query = q.Text
		}
	}
	if query == "" {
		return "", "", fmt.Errorf("explain: query %q not in %s", qid, dir)
	}
	r, err := corpora.OpenCorpus(dir, opts)
	if err != nil {
		return "", "", err
	}
	defer r.Close()
	for {
		d, err := r.Next()
		if err == io.EOF {
			return "", "", fmt.Errorf("explain: document %q not in %s", docid, dir)
		}
		if err != nil {
			return "", "", err
		}
		if d.ID == docid {
			return query, d.Content(), nil
		}
	}
}
