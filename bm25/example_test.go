package bm25_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/spladapt/spladapt/bm25"
	"github.com/spladapt/spladapt/corpora"
)

func Example() {
	tmp, err := os.MkdirTemp("", "bm25-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	docs := []corpora.Doc{
		{ID: "d1", Title: "Apple", Text: "orchards in autumn"},
		{ID: "d2", Text: "Banana plantations in the tropics"},
		{ID: "d3", Title: "The apple pie", Text: "recipe with apples and banana"},
	}
	i := 0
	next := func() (corpora.Doc, error) {
		if i == len(docs) {
			return corpora.Doc{}, io.EOF
		}
		i++
		return docs[i-1], nil
	}
	dir := filepath.Join(tmp, "idx")
	if _, err := bm25.Build(dir, next, bm25.BuildOptions{}); err != nil {
		log.Fatal(err)
	}
	x, err := bm25.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()
	s, err := x.NewSearcher(bm25.Params{K1: 0.9, B: 0.4})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(x.Terms("The apple's apples"))
	hits, err := s.Search("apple banana", 10)
	if err != nil {
		log.Fatal(err)
	}
	// d1 and d2 tie (one matching term, same length): the smaller id first.
	for _, h := range hits {
		fmt.Printf("%d %s %.4f\n", h.Rank, h.DocID, h.Score)
	}
	// Output:
	// [{appl 2}]
	// 1 d3 0.5416
	// 2 d1 0.2562
	// 3 d2 0.2562
}
