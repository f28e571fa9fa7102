package corpora

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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

// wantParseErr checks err is a *ParseError at line (0: any) matching target.
func wantParseErr(t *testing.T, err error, line int, target error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v: want *ParseError", err)
	}
	if line > 0 && pe.Line != line {
		t.Errorf("error %v: line %d, want %d", err, pe.Line, line)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v: want errors.Is %v", err, target)
	}
}

func TestReadQrels(t *testing.T) {
	p := writeTemp(t, "q.trec", "\xef\xbb\xbf1 0 d1 1\r\n1 0 d2 0\n\n  2\t0  d1  2 \n2 0 d3 -1\n")
	got, err := ReadQrels(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Qrels{"1": {"d1": 1, "d2": 0}, "2": {"d1": 2, "d3": -1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReadQrelsBEIR(t *testing.T) {
	p := writeTemp(t, "test.tsv.gz", "query-id\tcorpus-id\tscore\nq1\tdocA\t1\nq1\tdocB\t2\nq2\tdocA\t1.0\n")
	got, err := ReadQrels(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Qrels{"q1": {"docA": 1, "docB": 2}, "q2": {"docA": 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReadQrelsErrors(t *testing.T) {
	for _, c := range []struct {
		name, content string
		line          int
		err           error
	}{
		{"three fields", "1 0 d1 1\n1 0 d2\n", 2, ErrFieldCount},
		{"five fields", "1 0 d1 1 x\n", 1, ErrFieldCount},
		{"grade", "1 0 d1 one\n", 1, ErrBadNumber},
		{"fractional grade", "1 0 d1 0.5\n", 1, ErrBadNumber},
		{"duplicate", "1 0 d1 1\n2 0 d1 1\n1 0 d1 0\n", 3, ErrDuplicateID},
		{"beir four fields", "query-id\tcorpus-id\tscore\nq\td\t1\t0\n", 2, ErrFieldCount},
		{"utf8", "1 0 d\xff 1\n", 1, ErrInvalidUTF8},
		{"empty", "", 0, ErrEmptyFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadQrels(writeTemp(t, "q", c.content))
			wantParseErr(t, err, c.line, c.err)
		})
	}
	if _, err := ReadQrels(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadRun(t *testing.T) {
	p := writeTemp(t, "run.gz", "q1 Q0 d1 1 12.5 tag\nq1 Q0 d2 2 -3e2 tag\n\nq2\tQ0\td1\t1\t7\ttag\r\nq1 Q0 d3 3 1 tag\n")
	got, err := ReadRun(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Run{
		"q1": {{"d1", 12.5, 1}, {"d2", -300, 2}, {"d3", 1, 3}},
		"q2": {{"d1", 7, 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReadRunErrors(t *testing.T) {
	for _, c := range []struct {
		name, content string
		line          int
		err           error
		msg           string
	}{
		{"five fields", "q Q0 d 1 2\n", 1, ErrFieldCount, ""},
		{"seven fields", "q Q0 d 1 2 t x\n", 1, ErrFieldCount, ""},
		{"rank", "q Q0 d 1 2 t\nq Q0 e r 2 t\n", 2, ErrBadNumber, "rank"},
		{"score", "q Q0 d 1 2x t\n", 1, ErrBadNumber, "score"},
		{"nan score", "q Q0 d 1 NaN t\n", 1, ErrBadNumber, "score"},
		{"duplicate", "q Q0 d 1 2 t\nq Q0 e 2 1 t\nq Q0 d 3 0 t\n", 3, ErrDuplicateDoc, "first at line 1"},
		{"duplicate interleaved", "q Q0 d 1 2 t\nr Q0 d 1 2 t\nq Q0 d 2 1 t\n", 3, ErrDuplicateDoc, "query q"},
		{"empty", "", 0, ErrEmptyFile, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadRun(writeTemp(t, "run", c.content))
			wantParseErr(t, err, c.line, c.err)
			if err != nil && !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
		})
	}
	// The same docno under two queries is fine.
	if _, err := ReadRun(writeTemp(t, "run", "q Q0 d 1 2 t\nr Q0 d 1 2 t\n")); err != nil {
		t.Error(err)
	}
}

func TestWriteRunRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	run := Run{}
	for q := range 20 {
		var hits []Hit
		for d := range rng.IntN(30) + 1 {
			hits = append(hits, Hit{DocID: fmt.Sprintf("doc%d", d), Score: rng.NormFloat64() * 1e3})
		}
		run[fmt.Sprint(q)] = hits
	}
	run["inf"] = []Hit{{DocID: "a", Score: math.Inf(1)}, {DocID: "b", Score: 1e-300}}
	var b bytes.Buffer
	if err := WriteRun(&b, run, "mytag"); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRun(writeTemp(t, "run", b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for qid, hits := range run {
		for i := range hits {
			hits[i].Rank = i + 1
		}
		if !reflect.DeepEqual(got[qid], hits) {
			t.Fatalf("query %s: got %v, want %v", qid, got[qid], hits)
		}
	}
	if len(got) != len(run) {
		t.Errorf("%d queries back, want %d", len(got), len(run))
	}
	first := strings.SplitN(b.String(), "\n", 2)[0]
	if first != "0 Q0 "+run["0"][0].DocID+" 1 "+fmt.Sprint(run["0"][0].Score)+" mytag" {
		t.Errorf("first line %q", first)
	}
}

func TestWriteRunRejects(t *testing.T) {
	for name, c := range map[string]struct {
		run Run
		tag string
	}{
		"empty tag":   {Run{"q": {{DocID: "d"}}}, ""},
		"spaced tag":  {Run{"q": {{DocID: "d"}}}, "a b"},
		"spaced qid":  {Run{"q 1": {{DocID: "d"}}}, "t"},
		"spaced doc":  {Run{"q": {{DocID: "d\t2"}}}, "t"},
		"empty doc":   {Run{"q": {{DocID: ""}}}, "t"},
		"nan score":   {Run{"q": {{DocID: "d", Score: math.NaN()}}}, "t"},
		"nbsp in doc": {Run{"q": {{DocID: "d\u00a0e"}}}, "t"},
	} {
		var b bytes.Buffer
		if err := WriteRun(&b, c.run, c.tag); err == nil || b.Len() != 0 {
			t.Errorf("%s: err %v, wrote %q", name, err, b.String())
		}
	}
}

const topics = `<top>
<num> Number: 301
<title> International Organized Crime

<desc> Description:
Identify organizations that participate in international
criminal activity.

<narr> Narrative:
A relevant document must identify the organization.
</top>

<top>
<num>302</num>
<title>Poliomyelitis and Post-Polio</title>
<desc>Is the disease under control?</desc>
<fac> Factors: none
</top>
`

func TestReadTopics(t *testing.T) {
	p := writeTemp(t, "topics.txt", topics)
	got, err := ReadTopics(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{{"301", "International Organized Crime"}, {"302", "Poliomyelitis and Post-Polio"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("title: got %q, want %q", got, want)
	}
	got, err = ReadTopicsFields(p, TopicTitleDesc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want = []Query{
		{"301", "International Organized Crime Identify organizations that participate in international criminal activity."},
		{"302", "Poliomyelitis and Post-Polio Is the disease under control?"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("title+desc: got %q, want %q", got, want)
	}
	// 302 has no narrative: an error naming its <top> line, or a skip.
	_, err = ReadTopicsFields(p, TopicNarr, Options{})
	wantParseErr(t, err, 13, nil)
	got, err = ReadTopicsFields(p, TopicNarr, Options{SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "A relevant document must identify the organization." {
		t.Errorf("narr: got %q", got)
	}
}

func TestReadTopicsErrors(t *testing.T) {
	for _, c := range []struct {
		name, content string
		line          int
		err           error
	}{
		{"no num", "<top>\n<title> x\n</top>\n", 1, ErrMissingID},
		{"empty title", "<top>\n<num> 1\n<title>\n<desc> d\n</top>\n", 1, nil},
		{"duplicate", "<top>\n<num> 1\n<title> a\n</top>\n<top>\n<num> 1\n<title> b\n</top>\n", 6, ErrDuplicateID},
		{"nested", "<top>\n<num> 1\n<top>\n", 3, nil},
		{"unclosed", "<top>\n<num> 1\n<title> a\n", 3, nil},
		{"stray text", "hello\n", 1, nil},
		{"close without open", "</top>\n", 1, nil},
		{"utf8", "<top>\n<num> 1\n<title> \xff\n</top>\n", 3, ErrInvalidUTF8},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadTopics(writeTemp(t, "topics", c.content), Options{})
			wantParseErr(t, err, c.line, c.err)
		})
	}
}

func TestReadTopicsSkipInvalid(t *testing.T) {
	content := "<top>\n<num> 1\n<title> ok one\n</top>\nstray\n<top>\n<title> no number\n</top>\n<top>\n<num> 3\n<title> \xff\n</top>\n<top>\n<num> 4\n<title> ok four\n</top>\n"
	var reported []int
	skipped := 0
	got, err := ReadTopics(writeTemp(t, "topics", content), Options{SkipInvalid: true, Skipped: &skipped, Report: func(pe *ParseError) { reported = append(reported, pe.Line) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{{"1", "ok one"}, {"4", "ok four"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if skipped != 3 || !reflect.DeepEqual(reported, []int{5, 6, 11}) {
		t.Errorf("skipped %d, reported lines %v; want 3 at [5 6 11]", skipped, reported)
	}
}

func TestTrecFields(t *testing.T) {
	var f [3]string
	for _, c := range []struct {
		in    string
		n     int
		extra bool
	}{{"", 0, false}, {"  \t ", 0, false}, {"a", 1, false}, {" a  b\tc ", 3, false}, {"a b c d", 3, true}} {
		n, extra := trecFields(c.in, f[:])
		if n != c.n || extra != c.extra {
			t.Errorf("%q: %d %v, want %d %v", c.in, n, extra, c.n, c.extra)
		}
		if got, want := strings.Join(f[:n], "|"), strings.Join(strings.Fields(c.in), "|"); n == len(strings.Fields(c.in)) && got != want {
			t.Errorf("%q: fields %q, want %q", c.in, got, want)
		}
	}
}

func FuzzReadRun(f *testing.F) {
	f.Add("q Q0 d 1 2 t\nq Q0 e 2 1 t\n")
	f.Add("q Q0 d 1 2 t\nq Q0 d 2 1 t\n")
	f.Add("q Q0 d x 2 t\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "run")
		os.WriteFile(p, []byte(s), 0o644)
		run, err := ReadRun(p)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		for qid, hits := range run {
			seen := map[string]bool{}
			for _, h := range hits {
				if seen[h.DocID] || h.DocID == "" || qid == "" || math.IsNaN(h.Score) {
					t.Fatalf("invalid run accepted: %q %+v", qid, h)
				}
				seen[h.DocID] = true
			}
		}
	})
}

func FuzzReadQrels(f *testing.F) {
	f.Add("1 0 d 1\n")
	f.Add("query-id\tcorpus-id\tscore\nq\td\t1\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "qrels")
		os.WriteFile(p, []byte(s), 0o644)
		q, err := ReadQrels(p)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		for qid, docs := range q {
			if qid == "" || len(docs) == 0 {
				t.Fatalf("invalid qrels accepted: %q %v", qid, docs)
			}
		}
	})
}

// BenchmarkReadRun reads a 1M-line run (1000 queries x 1000 hits).
func BenchmarkReadRun(b *testing.B) {
	p := filepath.Join(b.TempDir(), "run")
	var sb strings.Builder
	rng := rand.New(rand.NewPCG(3, 4))
	for q := range 1000 {
		for r := range 1000 {
			fmt.Fprintf(&sb, "%d Q0 doc%d %d %.6f bench\n", q, rng.IntN(1_000_000)*1000+r, r+1, 100-float64(r)*0.01)
		}
	}
	os.WriteFile(p, []byte(sb.String()), 0o644)
	b.Run("lines=1M", func(b *testing.B) {
		b.SetBytes(int64(sb.Len()))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ReadRun(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzReadTopics(f *testing.F) {
	f.Add(topics)
	f.Add("<top>\n<num> 1\n<title> a <desc> b\n</top>\n")
	f.Add("<top><num>1</num><title>x</title></top>")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "topics")
		os.WriteFile(p, []byte(s), 0o644)
		for _, skip := range []bool{false, true} {
			qs, err := ReadTopicsFields(p, TopicTitleDesc, Options{SkipInvalid: skip})
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ParseError", err)
				}
				continue
			}
			seen := map[string]bool{}
			for _, q := range qs {
				if q.ID == "" || strings.TrimSpace(q.Text) == "" || seen[q.ID] || strings.ContainsAny(q.ID, " \t") {
					t.Fatalf("invalid topic accepted: %+v", q)
				}
				seen[q.ID] = true
			}
		}
	})
}

// Issue 20: scores are read as trec_eval reads them (C's atof) or
// refused: "1_000" is 1 for trec_eval and 1000 for strconv.ParseFloat.
func TestReadRunScoresLikeTrecEval(t *testing.T) {
	for _, c := range []struct {
		score string
		want  float64 // NaN: refused
		says  string  // in the error
	}{
		{"2", 2, ""}, {"-1.5", -1.5, ""}, {"+.5", 0.5, ""}, {"5.", 5, ""}, {"1e3", 1000, ""},
		{"1.5E-2", 0.015, ""}, {"Inf", math.Inf(1), ""}, {"-inf", math.Inf(-1), ""},
		{"1_000", math.NaN(), "read it as 1)"}, {"2abc", math.NaN(), "read it as 2)"},
		{"0x1p3", math.NaN(), "not a decimal"}, {"nan", math.NaN(), "not a decimal"}, {"1e", math.NaN(), "read it as 1)"},
	} {
		p := writeTemp(t, "run", "q Q0 d 1 "+c.score+" t\n")
		run, err := ReadRun(p)
		if math.IsNaN(c.want) {
			if err == nil || !errors.Is(err, ErrBadNumber) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("score %q: run %v, err %v; want an error saying %q", c.score, run, err, c.says)
			}
			continue
		}
		if err != nil || run["q"][0].Score != c.want {
			t.Errorf("score %q: run %v, err %v; want %g", c.score, run, err, c.want)
		}
	}
}

// Issue 20: an error quotes at most ~200 bytes of the offending record.
func TestParseErrorsQuoteLittle(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for name, body := range map[string]string{
		"run fields": "q Q0 d 1 2 t extra " + long + "\n",
		"run score":  "q Q0 d 1 " + long + " t\n",
		"run rank":   "q Q0 d " + long + " 2 t\n",
		"qrels":      "q 0 d " + long + "\n",
	} {
		p := writeTemp(t, "f", body)
		var err error
		if strings.HasPrefix(name, "run") {
			_, err = ReadRun(p)
		} else {
			_, err = ReadQrels(p)
		}
		if err == nil || len(err.Error()) > 600 {
			n := 0
			if err != nil {
				n = len(err.Error())
			}
			t.Errorf("%s: error of %d bytes, want an error under 600", name, n)
		}
	}
	if q := Quote(strings.Repeat("é", 300)); len(q) > QuoteMax+40 || !strings.Contains(q, "(600 bytes)") {
		t.Errorf("Quote: %q", q)
	}
}

func TestQrelsJudged(t *testing.T) {
	qrels := Qrels{"q2": {"d": 1}, "q3": {"d": 0}, "q9": {"d": 2}}
	qs := []Query{{ID: "q1"}, {ID: "q3", Text: "c"}, {ID: "q2", Text: "b"}, {ID: "q4"}}
	got := qrels.Judged(qs)
	want := []Query{{ID: "q3", Text: "c"}, {ID: "q2", Text: "b"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Judged = %v, want %v (judged queries in input order; a grade-0 judgment counts)", got, want)
	}
	if got := (Qrels{}).Judged(qs); got != nil {
		t.Fatalf("Judged with empty qrels = %v, want nil", got)
	}
}

func TestReadStats(t *testing.T) {
	p := writeTemp(t, "c.jsonl", `{"_id":"a","title":"T","text":"one two"}
{"_id":"b","text":""}
not json
{"_id":"c","text":"three"}
`)
	calls := 0
	st, err := ReadStats(p, BEIRFields, Options{SkipInvalid: true}, func() { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Docs: 3, Empty: 1, Skipped: 1, Tokens: 4}
	if st != want || calls != 3 || st.MeanTokens() != 4.0/3 {
		t.Fatalf("ReadStats = %+v (%d progress calls, mean %g), want %+v, 3 calls", st, calls, st.MeanTokens(), want)
	}
	if _, err := ReadStats(p, BEIRFields, Options{}, nil); err == nil {
		t.Error("a malformed line without SkipInvalid was not an error")
	}
}
