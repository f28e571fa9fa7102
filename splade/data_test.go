package splade

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/corpora"
)

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if strings.HasSuffix(name, ".gz") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(content))
		zw.Close()
		content = b.String()
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadTriples(t *testing.T) {
	cases := []struct {
		name, content string
		want          []Triple
	}{
		{"plain.tsv", "q1\td1\td2\nq1\td1\td3\nq2\td4\td1\n", []Triple{
			{QID: "q1", PosID: "d1", NegIDs: []string{"d2", "d3"}},
			{QID: "q2", PosID: "d4", NegIDs: []string{"d1"}},
		}},
		// BOM, CRLF, blank lines, no final newline; a repeated pair that is
		// not consecutive starts a new triple.
		{"crlf.tsv", "\uFEFFq1\td1\td2\t1.5\r\n\r\nq2\td1\td9\t-2e-1\r\nq1\td1\td3\t0", []Triple{
			{QID: "q1", PosID: "d1", NegIDs: []string{"d2"}, Margins: []float32{1.5}},
			{QID: "q2", PosID: "d1", NegIDs: []string{"d9"}, Margins: []float32{-0.2}},
			{QID: "q1", PosID: "d1", NegIDs: []string{"d3"}, Margins: []float32{0}},
		}},
		{"gz.tsv.gz", "7\t17\t27\t3\n7\t17\t28\t4\n", []Triple{
			{QID: "7", PosID: "17", NegIDs: []string{"27", "28"}, Margins: []float32{3, 4}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadTriples(writeTemp(t, c.name, c.content), corpora.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestReadTriplesErrors(t *testing.T) {
	cases := []struct {
		content string
		line    int
		kind    error
		text    string
	}{
		{"q1\td1\n", 1, corpora.ErrSyntax, "2 tab-separated fields"},
		{"q1\td1\td2\td3\td4\n", 1, corpora.ErrSyntax, "5 tab-separated fields"},
		{"q1\td1\td2\nq1\td1\td3\t0.5\n", 2, corpora.ErrSyntax, "line 1 has 3"},
		{"q1\td1\td2\tabc\n", 1, corpora.ErrSyntax, `"abc" is not a finite number`},
		{"q1\td1\td2\tNaN\n", 1, corpora.ErrSyntax, "finite"},
		{"q1\td1\td2\t1e39\n", 1, corpora.ErrSyntax, "finite"},
		{"\nq1\t\td2\n", 2, corpora.ErrMissingID, "empty"},
		{"q1\td1\td1\n", 1, corpora.ErrSyntax, "equals the positive"},
		{"q1\td1\td2\nq1\td\r1\td2\r\n", 2, corpora.ErrSyntax, "carriage return"},
		{"q1\td1\td2\nq\xff\td1\td2\n", 2, corpora.ErrInvalidUTF8, "UTF-8"},
		{"", 0, corpora.ErrEmptyFile, "no triples"},
		{"\n\n", 0, corpora.ErrEmptyFile, "no triples"},
	}
	for i, c := range cases {
		p := writeTemp(t, fmt.Sprintf("bad%d.tsv", i), c.content)
		_, err := ReadTriples(p, corpora.Options{})
		var pe *corpora.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("case %d: error %v, want a *corpora.ParseError", i, err)
			continue
		}
		if pe.File != p || pe.Line != c.line || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("case %d: %v (line %d), want line %d, %v, containing %q", i, err, pe.Line, c.line, c.kind, c.text)
		}
	}
	// SkipInvalid: bad lines are reported and counted, good ones kept.
	p := writeTemp(t, "mixed.tsv", "q1\td1\td2\nq1\td1\nq2\td3\td3\nq3\td4\td5\n")
	var reported []int
	skipped := 0
	got, err := ReadTriples(p, corpora.Options{SkipInvalid: true, Skipped: &skipped,
		Report: func(pe *corpora.ParseError) { reported = append(reported, pe.Line) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].QID != "q1" || got[1].QID != "q3" || skipped != 2 || !reflect.DeepEqual(reported, []int{2, 3}) {
		t.Errorf("SkipInvalid: triples %+v, skipped %d, reported lines %v", got, skipped, reported)
	}
	if _, err := ReadTriples(filepath.Join(t.TempDir(), "absent.tsv"), corpora.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWriteTriplesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, ts := range [][]Triple{
		{{QID: "q1", PosID: "d1", NegIDs: []string{"d2", "d3"}}, {QID: "q 2", PosID: "d1", NegIDs: []string{"d4"}}},
		{{QID: "q1", PosID: "d1", NegIDs: []string{"d2", "d3"}, Margins: []float32{1.25, -3.0000002}},
			{QID: "q2", PosID: "d9", NegIDs: []string{"d1"}, Margins: []float32{1e-7}}},
	} {
		p := filepath.Join(dir, "t.tsv")
		if err := WriteTriples(p, ts); err != nil {
			t.Fatal(err)
		}
		got, err := ReadTriples(p, corpora.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ts) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, ts)
		}
	}
	for i, bad := range [][]Triple{
		{{QID: "q1", PosID: "d1", NegIDs: []string{"d2"}, Margins: []float32{1}}, {QID: "q2", PosID: "d1", NegIDs: []string{"d2"}}},
		{{QID: "q1", PosID: "d1"}},
		{{QID: "q1", PosID: "d1", NegIDs: []string{"d2", "d3"}, Margins: []float32{1}}},
		{{QID: "q\t1", PosID: "d1", NegIDs: []string{"d2"}}},
		{{QID: "q1", PosID: "d1", NegIDs: []string{""}}},
		{{QID: "q1", PosID: " d1", NegIDs: []string{"d2"}}},
	} {
		if err := WriteTriples(filepath.Join(dir, "bad.tsv"), bad); err == nil {
			t.Errorf("bad triples %d written without error", i)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.tsv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected write left a file: %v", err)
	}
}

func TestTeacherScores(t *testing.T) {
	p := writeTemp(t, "scores.tsv", "q1\td1\t10.5\nq1\td2\t4\nq1\td3\t-1.5\nq2\td9\t2\nq2\td1\t3\n")
	ts, err := ReadTeacherScores(p, corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []Triple{
		{QID: "q1", PosID: "d1", NegIDs: []string{"d2", "d7", "d3"}, Margins: []float32{99, 99, 99}},
		{QID: "q2", PosID: "d9", NegIDs: []string{"d4"}}, // no scored negative
		{QID: "q3", PosID: "d1", NegIDs: []string{"d2"}}, // unknown query
		{QID: "q2", PosID: "d1", NegIDs: []string{"d9"}},
	}
	got, st := ts.Apply(in)
	want := []Triple{
		{QID: "q1", PosID: "d1", NegIDs: []string{"d2", "d3"}, PosScore: 10.5, NegScores: []float32{4, -1.5}, Margins: []float32{6.5, 12}},
		{QID: "q2", PosID: "d1", NegIDs: []string{"d9"}, PosScore: 3, NegScores: []float32{2}, Margins: []float32{1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Apply:\n got %+v\nwant %+v", got, want)
	}
	if st != (ApplyStats{Triples: 2, DroppedTriples: 2, DroppedNegs: 1, FirstMissingQID: "q1", FirstMissingDoc: "d7"}) {
		t.Errorf("stats %+v", st)
	}
	if in[0].Margins[0] != 99 {
		t.Error("Apply modified its input")
	}

	for i, c := range []struct {
		content string
		line    int
		kind    error
	}{
		{"q1\td1\n", 1, corpora.ErrSyntax},
		{"q1\td1\t1\nq1\td1\t2\n", 2, corpora.ErrDuplicateID},
		{"q1\td1\tx\n", 1, corpora.ErrSyntax},
		{"q1\t \t1\n", 1, corpora.ErrMissingID},
		{"\n", 0, corpora.ErrEmptyFile},
	} {
		_, err := ReadTeacherScores(writeTemp(t, fmt.Sprintf("s%d.tsv", i), c.content), corpora.Options{})
		var pe *corpora.ParseError
		if !errors.As(err, &pe) || pe.Line != c.line || !errors.Is(err, c.kind) {
			t.Errorf("case %d: %v, want line %d %v", i, err, c.line, c.kind)
		}
	}
}

// fakeSearcher ranks the documents given per query text and counts calls.
type fakeSearcher struct {
	ranked map[string][]string
	calls  int
	fail   string
}

func (f *fakeSearcher) Search(q string, k int) ([]corpora.Hit, error) {
	f.calls++
	if q == f.fail {
		return nil, errors.New("index closed")
	}
	var hits []corpora.Hit
	for i, d := range f.ranked[q] {
		if i == k {
			break
		}
		hits = append(hits, corpora.Hit{DocID: d, Score: float64(100 - i), Rank: i + 1})
	}
	return hits, nil
}

// miningFixture: six queries exercising every rule.
func miningFixture() ([]corpora.Query, corpora.Qrels, func(string) bool, *fakeSearcher) {
	queries := []corpora.Query{
		{ID: "q1", Text: "alpha"}, // two positives, d0 judged non-relevant
		{ID: "q2", Text: "beta"},  // positive not in the corpus
		{ID: "q3", Text: "gamma"}, // only positives among the hits
		{ID: "q4", Text: "delta"}, // fewer candidates than asked
		{ID: "q5", Text: "eps"},   // not judged
	}
	qrels := corpora.Qrels{
		"q1": {"d1": 1, "d5": 2, "d0": 0},
		"q2": {"dX": 1},
		"q3": {"d3": 1},
		"q4": {"d4": 1, "d8": -1},
		"q9": {"d1": 1}, // not in queries.jsonl
		"q8": {"d2": 0}, // no positive at all: not a training query
	}
	inCorpus := func(id string) bool { return id != "dX" }
	s := &fakeSearcher{ranked: map[string][]string{
		"alpha": {"d5", "d0", "d2", "d1", "d3", "d6", "d7", "d8", "d9", "d10"},
		"beta":  {"d1", "d2"},
		"gamma": {"d3"},
		"delta": {"d8", "d4", "d8"},
		"eps":   {"d1"},
	}}
	return queries, qrels, inCorpus, s
}

func TestMineNegatives(t *testing.T) {
	queries, qrels, inCorpus, s := miningFixture()
	var st MineStats
	reports := map[string]error{}
	opt := MineOptions{RankOrder: true, Stats: &st, Report: func(q string, why error) { reports[q] = why }}
	got, err := MineNegatives(context.Background(), queries, qrels, inCorpus, s, 3, 6, 1, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []Triple{
		{QID: "q1", PosID: "d1", NegIDs: []string{"d0", "d2", "d3"}},
		{QID: "q1", PosID: "d5", NegIDs: []string{"d0", "d2", "d3"}},
		{QID: "q4", PosID: "d4", NegIDs: []string{"d8"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rank order:\n got %+v\nwant %+v", got, want)
	}
	wantSt := MineStats{Queries: 5, Triples: 3, NoPositive: 1, MissingQuery: 1, NoNegatives: 1, FewNegatives: 1, PosNotInCorpus: 1}
	if st != wantSt {
		t.Errorf("stats %+v, want %+v", st, wantSt)
	}
	wantRep := map[string]error{"q2": ErrNoPositive, "q9": ErrMissingQuery, "q3": ErrNoNegatives}
	if !reflect.DeepEqual(reports, wantRep) {
		t.Errorf("reports %v, want %v", reports, wantRep)
	}

	// Sampling: negatives are distinct non-positive documents of the top
	// depth, in rank order, reproducible for a seed, different across
	// seeds for some triple.
	topDepth := map[string]bool{"d0": true, "d2": true, "d3": true, "d6": true} // top 6 of alpha minus d1, d5
	sample := func(seed uint64) []Triple {
		ts, err := MineNegatives(context.Background(), queries, qrels, inCorpus, s, 2, 6, seed, MineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	a := sample(1)
	if !reflect.DeepEqual(a, sample(1)) {
		t.Error("same seed, different triples")
	}
	differs := false
	for seed := uint64(2); seed < 12; seed++ {
		b := sample(seed)
		if !reflect.DeepEqual(a, b) {
			differs = true
		}
		for _, tr := range b[:2] {
			if len(tr.NegIDs) != 2 || tr.NegIDs[0] == tr.NegIDs[1] || !topDepth[tr.NegIDs[0]] || !topDepth[tr.NegIDs[1]] {
				t.Errorf("seed %d: negatives %v not 2 distinct of %v", seed, tr.NegIDs, topDepth)
			}
			rank := map[string]int{"d0": 1, "d2": 2, "d3": 4, "d6": 5}
			if rank[tr.NegIDs[0]] > rank[tr.NegIDs[1]] {
				t.Errorf("seed %d: negatives %v not in rank order", seed, tr.NegIDs)
			}
		}
	}
	if !differs {
		t.Error("10 seeds all gave the same negatives")
	}

	if _, err := MineNegatives(context.Background(), queries, qrels, inCorpus, s, 3, 2, 1, MineOptions{}); err == nil {
		t.Error("depth < negatives: no error")
	}
	s.fail = "delta"
	if _, err := MineNegatives(context.Background(), queries, qrels, inCorpus, s, 1, 5, 1, MineOptions{}); err == nil || !strings.Contains(err.Error(), `"q4"`) {
		t.Errorf("search failure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := MineNegatives(ctx, queries, qrels, inCorpus, s, 1, 5, 1, MineOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// writeBEIR writes a small BEIR directory.
func writeBEIR(t *testing.T, docs []corpora.Doc, queries []corpora.Query, qrels string) string {
	t.Helper()
	dir := t.TempDir()
	var c, q strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&c, "{\"_id\": %q, \"title\": %q, \"text\": %q}\n", d.ID, d.Title, d.Text)
	}
	for _, x := range queries {
		fmt.Fprintf(&q, "{\"_id\": %q, \"text\": %q}\n", x.ID, x.Text)
	}
	os.MkdirAll(filepath.Join(dir, "qrels"), 0o755)
	for name, s := range map[string]string{"corpus.jsonl": c.String(), "queries.jsonl": q.String(), "qrels/train.tsv": qrels} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMineCachedAndLoadTexts(t *testing.T) {
	queries, _, _, s := miningFixture()
	var docs []corpora.Doc
	for i := 0; i <= 10; i++ {
		docs = append(docs, corpora.Doc{ID: fmt.Sprintf("d%d", i), Title: fmt.Sprintf("T%d", i), Text: fmt.Sprintf("text %d", i)})
	}
	dir := writeBEIR(t, docs, queries, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td5\t2\nq1\td0\t0\nq2\tdX\t1\nq3\td3\t1\nq4\td4\t1\nq4\td8\t-1\nq9\td1\t1\n")
	cache := filepath.Join(t.TempDir(), "mined.tsv")
	var st MineStats
	ts, hit, err := MineCached(context.Background(), cache, "fake", dir, "train", s, 2, 6, 7, MineOptions{Stats: &st})
	if err != nil || hit {
		t.Fatalf("first run: hit %v, err %v", hit, err)
	}
	calls := s.calls
	if calls != 3 || st.Triples != 3 || st.NoPositive != 1 || st.MissingQuery != 1 {
		t.Errorf("first run: %d searches, stats %+v", calls, st)
	}
	var st2 MineStats
	ts2, hit, err := MineCached(context.Background(), cache, "fake", dir, "train", s, 2, 6, 7, MineOptions{Stats: &st2})
	if err != nil || !hit || s.calls != calls {
		t.Fatalf("second run: hit %v, err %v, %d new searches", hit, err, s.calls-calls)
	}
	if !reflect.DeepEqual(ts, ts2) || st2 != st {
		t.Errorf("cached triples or stats differ:\n%+v %+v\n%+v %+v", ts, st, ts2, st2)
	}
	// Another seed is another cache key.
	if _, hit, err := MineCached(context.Background(), cache, "fake", dir, "train", s, 2, 6, 8, MineOptions{}); err != nil || hit {
		t.Errorf("new seed: hit %v, err %v", hit, err)
	}
	if _, hit, err := MineCached(context.Background(), cache, "fake k1=2", dir, "train", s, 2, 6, 8, MineOptions{}); err != nil || hit {
		t.Errorf("new searcher: hit %v, err %v", hit, err)
	}

	tx, err := LoadTexts(dir, ts, corpora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tx.Queries["q1"] != "alpha" || tx.Docs["d5"] != "T5 text 5" || len(tx.Queries) != 2 {
		t.Errorf("texts: %v %v", tx.Queries, tx.Docs)
	}
	needD := map[string]bool{}
	for _, tr := range ts {
		needD[tr.PosID] = true
		for _, n := range tr.NegIDs {
			needD[n] = true
		}
	}
	if len(tx.Docs) != len(needD) {
		t.Errorf("kept %d documents, triples name %d", len(tx.Docs), len(needD))
	}
	_, err = LoadTexts(dir, []Triple{{QID: "q1", PosID: "nope", NegIDs: []string{"d1"}}}, corpora.Options{})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing doc: %v", err)
	}
}

// FuzzReadTriples: any input ends in an error or in triples that satisfy
// the format's invariants, and those survive a write/read round trip.
func FuzzReadTriples(f *testing.F) {
	for _, s := range []string{"q1\td1\td2\n", "q\td\tn\t1.5\r\nq\td\tm\t2\n", "\uFEFFa\tb\tc", "a\tb\n", "a\ta\ta\n", "x\ty\tz\t1e400\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "in.tsv")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		ts, err := ReadTriples(p, corpora.Options{})
		if err != nil {
			var pe *corpora.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *corpora.ParseError", err)
			}
			return
		}
		for _, tr := range ts {
			if tr.QID == "" || tr.PosID == "" || len(tr.NegIDs) == 0 {
				t.Fatalf("invalid triple %+v", tr)
			}
			for _, n := range tr.NegIDs {
				if n == "" || n == tr.PosID {
					t.Fatalf("invalid negative in %+v", tr)
				}
			}
			if tr.Margins != nil && len(tr.Margins) != len(tr.NegIDs) {
				t.Fatalf("margins %+v", tr)
			}
		}
		out := filepath.Join(dir, "out.tsv")
		if err := WriteTriples(out, ts); err != nil {
			t.Fatalf("write what was read: %v", err)
		}
		back, err := ReadTriples(out, corpora.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Reading merges consecutive lines of one (qid, pos): compare the
		// flattened lines.
		flat := func(ts []Triple) []string {
			var l []string
			for _, tr := range ts {
				for k, n := range tr.NegIDs {
					m := ""
					if tr.Margins != nil {
						m = fmt.Sprint(tr.Margins[k])
					}
					l = append(l, tr.QID+"|"+tr.PosID+"|"+n+"|"+m)
				}
			}
			return l
		}
		if a, b := flat(ts), flat(back); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip: %v != %v", a, b)
		}
	})
}

func TestMineNegativesWithMargins(t *testing.T) {
	queries, qrels, inCorpus, s := miningFixture()
	var st MineStats
	opt := MineOptions{RankOrder: true, Margins: true, Stats: &st}
	got, err := MineNegatives(context.Background(), queries, qrels, inCorpus, s, 3, 6, 1, opt)
	if err != nil {
		t.Fatal(err)
	}
	// fakeSearcher scores rank i as 100 − i; a repeated hit keeps its first score.
	want := []Triple{
		{QID: "q1", PosID: "d1", NegIDs: []string{"d0", "d2", "d3"}, Margins: []float32{-2, -1, 1}},
		{QID: "q1", PosID: "d5", NegIDs: []string{"d0", "d2", "d3"}, Margins: []float32{1, 2, 4}},
		{QID: "q4", PosID: "d4", NegIDs: []string{"d8"}, Margins: []float32{-1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("margins:\n got %+v\nwant %+v", got, want)
	}
	if st.PosNotRetrieved != 0 {
		t.Errorf("PosNotRetrieved %d, want 0", st.PosNotRetrieved)
	}
	// Depth 3: alpha's positive d1 (rank 4) has no score, so its triple goes.
	got, err = MineNegatives(context.Background(), queries, qrels, inCorpus, s, 3, 3, 1, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].PosID != "d5" || got[1].PosID != "d4" || st.PosNotRetrieved != 1 || st.Triples != 2 {
		t.Errorf("depth 3: got %+v, stats %+v; want the triples of d5 and d4 and one positive not retrieved", got, st)
	}
	// The cache keeps margins apart from plain mining and round-trips them.
	var docs []corpora.Doc
	for i := 0; i <= 10; i++ {
		docs = append(docs, corpora.Doc{ID: fmt.Sprintf("d%d", i), Text: fmt.Sprintf("text %d", i)})
	}
	dir := writeBEIR(t, docs, queries, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td5\t2\nq4\td4\t1\n")
	path := filepath.Join(t.TempDir(), "m.tsv")
	a, hit, err := MineCached(context.Background(), path, "fake", dir, "train", s, 3, 6, 1, MineOptions{RankOrder: true, Margins: true})
	if err != nil || hit || len(a) != 3 || !a[0].HasMargins() {
		t.Fatalf("first margins run: hit %v, err %v, triples %+v", hit, err, a)
	}
	b, hit, err := MineCached(context.Background(), path, "fake", dir, "train", s, 3, 6, 1, MineOptions{RankOrder: true, Margins: true})
	if err != nil || !hit || !reflect.DeepEqual(a, b) {
		t.Errorf("cached margins: hit %v err %v\n got %+v\nwant %+v", hit, err, b, a)
	}
	if _, hit, _ := MineCached(context.Background(), path, "fake", dir, "train", s, 3, 6, 1, MineOptions{RankOrder: true}); hit {
		t.Error("mining without margins reused the cache written with margins")
	}
}
