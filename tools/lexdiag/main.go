// Command lexdiag asks how far a purely lexical document weighting over a
// model's word pieces goes on a collection, with the inference-free query
// (the query's pieces weighted by the searched corpus's IDF) that the
// recipe deploys: documents as binary bags of their pieces, as BM25 term
// weights over pieces, and as the model's own SPLADE vectors, whole or
// cut to the document's own pieces. It separates what the tokenizer
// allows from what training learned.
//
//	go run ./tools/lexdiag -model RUNS/tiny/splade -data ../shared/data -sets squad-v1.1-dev:dev,scifact:train
//
// Cost: tokenising each corpus, and encoding it once with the model.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"path/filepath"
	"strings"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/eval"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/sparse"
	"github.com/spladapt/spladapt/splade"
)

func main() {
	model := flag.String("model", "", "SPLADE checkpoint directory (inference-free)")
	data := flag.String("data", "../shared/data", "directory of BEIR collections")
	sets := flag.String("sets", "squad-v1.1-dev:dev,scifact:train", "collection:split, comma-separated")
	maxLen := flag.Int("max-length", 256, "document tokens")
	topN := flag.Int("top-n", 256, "model vector non-zeros kept")
	k1 := flag.Float64("k1", 0.9, "BM25 k1 over pieces")
	b := flag.Float64("b", 0.4, "BM25 b over pieces")
	pooling := flag.String("pooling", "", "override the model's SPLADE pooling (max or sum)")
	flag.Parse()
	enc, err := splade.LoadEncoder(*model, *maxLen, 32, *topN)
	if err != nil {
		log.Fatal(err)
	}
	switch *pooling {
	case "":
	case "max":
		enc.Model.Config.SpladePooling = nn.PoolMax
	default:
		enc.Model.Config.SpladePooling = *pooling
	}
	ms, err := eval.ParseMeasures("nDCG@10", "R@100")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("| collection | split | binary | log(1+tf) | BM25 pieces b=0 | BM25 pieces | BM25 pieces, query tf | model | model, own pieces | model, expansion only |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, cs := range strings.Split(*sets, ",") {
		name, split, _ := strings.Cut(cs, ":")
		d, err := splade.LoadDevSet(filepath.Join(*data, name), split, corpora.Options{})
		if err != nil {
			log.Fatal(err)
		}
		idf := splade.ComputeIDF(enc.Tok, d.Docs, *maxLen)
		encs := enc.Tok.EncodeBatch(d.Docs, *maxLen)
		V := enc.VocabSize()
		var avgdl float64
		for _, e := range encs {
			avgdl += float64(len(e.IDs))
		}
		avgdl /= float64(len(encs))
		binary := make([][]sparse.TermWeight, len(encs))
		bm := make([][]sparse.TermWeight, len(encs))
		bm0 := make([][]sparse.TermWeight, len(encs))
		logtf := make([][]sparse.TermWeight, len(encs))
		own := make([]map[uint32]bool, len(encs))
		for i, e := range encs {
			tf := map[uint32]int{}
			for _, id := range e.IDs {
				if !enc.Tok.IsSpecial(id) {
					tf[uint32(id)]++
				}
			}
			own[i] = map[uint32]bool{}
			dl := float64(len(e.IDs))
			for t, n := range tf {
				own[i][t] = true
				binary[i] = append(binary[i], sparse.TermWeight{Term: t, Weight: 1})
				f := float64(n)
				// BM25's tf term, without the constant k1+1
				bm[i] = append(bm[i], sparse.TermWeight{Term: t, Weight: float32(f / (f + bm25.Norm(*k1, *b, dl, avgdl)))})
				bm0[i] = append(bm0[i], sparse.TermWeight{Term: t, Weight: float32(f / (f + bm25.Norm(*k1, 0, dl, avgdl)))})
				logtf[i] = append(logtf[i], sparse.TermWeight{Term: t, Weight: float32(math.Log1p(f))})
			}
		}
		vecs, err := enc.EncodeDocs(d.Docs)
		if err != nil {
			log.Fatal(err)
		}
		ownV := make([][]sparse.TermWeight, len(vecs))
		expV := make([][]sparse.TermWeight, len(vecs))
		for i, v := range vecs {
			for _, tw := range v {
				if own[i][tw.Term] {
					ownV[i] = append(ownV[i], tw)
				} else {
					expV[i] = append(expV[i], tw)
				}
			}
		}
		queries := make([][]sparse.TermWeight, len(d.Queries))
		queriesTF := make([][]sparse.TermWeight, len(d.Queries))
		for i, q := range d.Queries {
			ids := enc.Tok.Encode(q.Text, 0).IDs
			queries[i] = splade.WeightedTokens(ids, idf)
			n := map[uint32]float32{}
			for _, id := range ids {
				n[uint32(id)]++
			}
			for _, tw := range queries[i] {
				queriesTF[i] = append(queriesTF[i], sparse.TermWeight{Term: tw.Term, Weight: tw.Weight * n[tw.Term]})
			}
		}
		score := func(docs [][]sparse.TermWeight, qs [][]sparse.TermWeight) string {
			ix := sparse.NewExact(docs, V)
			run := corpora.Run{}
			for i, q := range d.Queries {
				var hits []corpora.Hit
				for r, h := range ix.Search(qs[i], 1000) {
					hits = append(hits, corpora.Hit{DocID: d.DocIDs[h.Doc], Score: h.Score, Rank: r + 1})
				}
				run[q.ID] = hits
			}
			res, err := eval.Evaluate(d.Qrels, run, ms, eval.Options{AllQueries: true})
			if err != nil {
				log.Fatal(err)
			}
			return fmt.Sprintf("%.4f (%.3f)", res.All[0], res.All[1])
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, split, score(binary, queries), score(logtf, queries), score(bm0, queries), score(bm, queries), score(bm, queriesTF),
			score(vecs, queries), score(ownV, queries), score(expV, queries))
	}
}
