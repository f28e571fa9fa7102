// Command mlmcurve writes the packed MLM training sequences of a corpus as
// JSON ({"seqs": [[ids]], "mask": id, "vocab": n}) so that
// pytorch_mlm.py can train the PyTorch oracle's BERT on exactly the
// sequences spladapt trains on, for a learning-curve comparison:
//
//	spladapt --config tools/mlmcurve/tiny.yaml pretrain --from-scratch --corpus SMALL.jsonl --out /tmp/ovf
//	go run ./tools/mlmcurve /tmp/ovf SMALL.jsonl > /tmp/seqs.json
//	/usr/bin/python3 tools/mlmcurve/pytorch_mlm.py /tmp/seqs.json 400 5e-4
//
// (SMALL.jsonl: the first 60 lines of squad-v1.1-dev/corpus.jsonl.) Compare
// the loss column with /tmp/ovf/curves.csv.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spladapt/spladapt/pretrain"
	"github.com/spladapt/spladapt/tokenize"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mlmcurve MODEL_DIR CORPUS")
		os.Exit(2)
	}
	tok, err := tokenize.Load(os.Args[1])
	if err != nil {
		panic(err)
	}
	s, err := pretrain.TokenizeCorpus(context.Background(), []string{os.Args[2]}, tok, "", pretrain.DataOptions{Progress: "off"})
	if err != nil {
		panic(err)
	}
	p, err := pretrain.Pack(s, 128, int32(tok.CLS()), int32(tok.SEP()))
	if err != nil {
		panic(err)
	}
	var out [][]int32
	for i := range p.Len() {
		ids, _ := p.Seq(i)
		out = append(out, ids)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"seqs": out, "mask": tok.MASK(), "vocab": len(tok.Vocab())})
}
