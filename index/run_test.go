package index

import (
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

// TestSearchQueries checks the run against Search query by query, the
// batch and one-by-one encoding paths, and the refusals.
func TestSearchQueries(t *testing.T) {
	docs := []testDoc{
		{"a", []TermWeight{{Term: 0, Weight: 1}, {Term: 1, Weight: 2}}},
		{"b", []TermWeight{{Term: 1, Weight: 1}}},
		{"c", []TermWeight{{Term: 2, Weight: 3}}},
	}
	r := buildTest(t, docs, Options{Vocab: []string{"x", "y", "z", "w"}})
	qs := []corpora.Query{{ID: "q1", Text: "y"}, {ID: "q2", Text: "x z:2"}, {ID: "q3", Text: "w"}}
	enc := TokenEncoder{Resolve: ReaderResolver(r)}
	for name, e := range map[string]QueryEncoder{"one by one": enc, "batch": batchEncoder{enc}} {
		run, err := r.SearchQueries(e, qs, 2, Auto)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(run) != 3 || len(run["q3"]) != 0 {
			t.Fatalf("%s: run %v, want 3 queries, q3 without hits", name, run)
		}
		for _, q := range qs[:2] {
			vec, _ := enc.Encode(q.Text)
			want, _ := r.Search(vec, 2, Exhaustive)
			got := run[q.ID]
			if len(got) != len(want) {
				t.Fatalf("%s %s: %v, want %v", name, q.ID, got, want)
			}
			for i, h := range want {
				if got[i].DocID != r.DocID(h.Doc) || got[i].Score != h.Score || got[i].Rank != i+1 {
					t.Errorf("%s %s hit %d: %+v, want %s %g rank %d", name, q.ID, i, got[i], r.DocID(h.Doc), h.Score, i+1)
				}
			}
		}
	}
	if got := r.mustRun(t, []string{"q1"}, [][]TermWeight{{{Term: 1, Weight: 1}}})["q1"]; len(got) != 2 || got[0].DocID != "a" {
		t.Errorf("SearchRun q1 = %v, want a then b", got)
	}
	if _, err := r.SearchRun([]string{"q", "q"}, [][]TermWeight{nil, nil}, 2, Auto); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate query id: err = %v", err)
	}
	if _, err := r.SearchQueries(enc, []corpora.Query{{ID: "bad", Text: "nosuch"}}, 2, Auto); err == nil || !strings.Contains(err.Error(), "query bad") {
		t.Errorf("unknown token: err = %v, want one naming the query", err)
	}
}

func (r *Reader) mustRun(t *testing.T, ids []string, vecs [][]TermWeight) corpora.Run {
	t.Helper()
	run, err := r.SearchRun(ids, vecs, 10, Auto)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// batchEncoder is a BatchQueryEncoder over a QueryEncoder.
type batchEncoder struct{ QueryEncoder }

func (b batchEncoder) EncodeQueries(texts []string) ([][]TermWeight, error) {
	out := make([][]TermWeight, len(texts))
	for i, s := range texts {
		v, err := b.Encode(s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
