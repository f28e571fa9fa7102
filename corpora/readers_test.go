package corpora

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestJSONLFieldsAndValues(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("word ", 400_000) // a 2 MB line, far past any buffer
	path := put(t, dir, "c.jsonl", strings.Join([]string{
		`{"_id":"a","title":"T","text":"x","extra":{"k":[1,2]}}`,
		`{"_id":17,"title":null,"text":"numeric id"}`,
		`{"_id":"c","text":"` + long + `"}`,
		`{"_id":"d","title":"é \u00e9 \"q\"","text":""}`,
	}, "\n")) // no final newline
	r, err := OpenCorpus(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []Doc{{"a", "T", "x"}, {"17", "", "numeric id"}, {"c", "", long}, {"d", `é é "q"`, ""}}
	if !reflect.DeepEqual(docs, want) {
		t.Errorf("got %d docs, ids %v; want %v", len(docs), ids(docs), ids(want))
	}

	// Other field names.
	path = put(t, dir, "other.jsonl", `{"docid":"p1","head":"H","body":"B","_id":"ignored"}`+"\n")
	r, err = OpenJSONL(path, Fields{ID: "docid", Title: "head", Text: "body"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs, err = drain(r)
	if err != nil || !reflect.DeepEqual(docs, []Doc{{"p1", "H", "B"}}) {
		t.Errorf("custom fields: %v, %v", docs, err)
	}
	r, err = OpenJSONL(path, Fields{ID: "docid", Text: "text"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain(r); !errors.Is(err, ErrMissingField) || !strings.HasSuffix(err.Error(), `other.jsonl:1: missing "text"`) {
		t.Errorf("wrong text field name: %v", err)
	}
}

func TestStripHTML(t *testing.T) {
	cases := []struct{ in, title, text string }{
		{`<html><head><title>A &amp; B</title><style>p{color:red}</style>
<script type="text/javascript">if (a < b && c > d) { x = "</p>"; }</script></head>
<body><h1>Head</h1><p>One&nbsp;two &lt;three&gt; caf&eacute; &#233;&#x41;</p><!-- a <p>comment</p> --><div>four</div></body></html>`,
			"A & B", "Head One two <three> café éA four"},
		{`<p title="a > b">x</p><p>y</p>`, "", "x y"},
		{`a < b and c<d`, "", "a < b and c<d"},
		{`<b>bold</b>face and <i>it</i>alic`, "", "boldface and italic"},
		{`<!DOCTYPE html><?xml version="1.0"?><SCRIPT>hidden()</SCRIPT >shown<br/>next`, "", "shown next"},
		{`<script>never closed`, "", ""},
		{`text <!-- unclosed comment`, "", "text"},
		{`<scripts>kept</scripts>`, "", "kept"},
	}
	for _, c := range cases {
		title, text := StripHTML(c.in)
		if title != c.title || text != c.text {
			t.Errorf("StripHTML(%q) = %q, %q; want %q, %q", c.in, title, text, c.title, c.text)
		}
	}
}

func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	put(t, dir, "a.txt", "\ufeffplain text\r\nsecond line\r\n")
	put(t, dir, "b/c.md", "# Title\n\nmarkdown body\n")
	put(t, dir, "b/d.html", "<html><title>Page</title><body><p>Hello&amp;bye</p><script>x()</script></body></html>")
	put(t, dir, "b/e.jsonl", `{"_id":"r1","title":"t1","text":"one"}`+"\n"+`{"_id":"r2","text":"two"}`+"\n")
	put(t, dir, "b/f/g.txt.gz", "zipped text")
	put(t, dir, "h.HTM", "<p>upper-case extension</p>")
	put(t, dir, ".hidden/x.txt", "hidden")
	put(t, dir, ".y.txt", "hidden file")
	put(t, dir, "notes.pdf", "%PDF")
	put(t, dir, "data.jsonl.gz", `{"_id":"z1","text":"gz record"}`+"\n")

	r, err := OpenCorpus(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dr := r.(*DirReader)
	docs, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []Doc{
		{ID: "a.txt", Text: "plain text\nsecond line\n"},
		{ID: "b/c.md", Text: "# Title\n\nmarkdown body\n"},
		{ID: "b/d.html", Title: "Page", Text: "Hello&bye"},
		{ID: "r1", Title: "t1", Text: "one"},
		{ID: "r2", Text: "two"},
		{ID: "b/f/g.txt.gz", Text: "zipped text"},
		{ID: "z1", Text: "gz record"},
		{ID: "h.HTM", Text: "upper-case extension"},
	}
	if !reflect.DeepEqual(docs, want) {
		t.Errorf("docs\n%q\nwant\n%q", docs, want)
	}
	if dr.Ignored() != 1 {
		t.Errorf("Ignored() = %d, want 1 (notes.pdf)", dr.Ignored())
	}
	n, err := CountDocs(dir)
	if err != nil || n != len(want) {
		t.Errorf("CountDocs = %d, %v; want %d", n, err, len(want))
	}
}

func TestOpenDirBadFiles(t *testing.T) {
	dir := t.TempDir()
	put(t, dir, "a.txt", "fine")
	put(t, dir, "b.txt", "   \n")
	put(t, dir, "c.txt", "line one\nbad \xff byte\n")
	put(t, dir, "d.jsonl", `{"_id":"a.txt","text":"clashes with the file id"}`+"\n"+`{"_id":"k","text":"ok"}`+"\n"+"{oops\n")
	put(t, dir, "e.jsonl", "")
	put(t, dir, "f.md", "last")

	r, err := OpenCorpus(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = drain(r)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != filepath.Join(dir, "b.txt") || !errors.Is(err, ErrEmptyFile) {
		t.Fatalf("strict: %v, want b.txt empty", err)
	}

	opts, reported, skipped := collect()
	r, err = OpenCorpus(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(docs), []string{"a.txt", "k", "f.md"}; !reflect.DeepEqual(got, want) {
		t.Errorf("docs %v, want %v", got, want)
	}
	type place struct {
		file string
		line int
		kind error
	}
	want := []place{
		{"b.txt", 0, ErrEmptyFile},
		{"c.txt", 2, ErrInvalidUTF8},
		{"d.jsonl", 1, ErrDuplicateID},
		{"d.jsonl", 3, ErrSyntax},
		{"e.jsonl", 0, ErrEmptyFile},
	}
	if *skipped != len(want) || len(*reported) != len(want) {
		t.Fatalf("skipped %d, reported %v; want %d", *skipped, *reported, len(want))
	}
	for i, w := range want {
		e := (*reported)[i]
		if filepath.Base(e.File) != w.file || e.Line != w.line || !errors.Is(e, w.kind) {
			t.Errorf("report %d: %v, want %s:%d %v", i, e, w.file, w.line, w.kind)
		}
	}
	if msg := (*reported)[2].Error(); !strings.HasSuffix(msg, `d.jsonl:1: duplicate id "a.txt" (first in `+filepath.Join(dir, "a.txt")+`:1)`) {
		t.Errorf("duplicate across files: %q", msg)
	}

	empty := t.TempDir()
	put(t, empty, "x.pdf", "not a document")
	r, err = OpenCorpus(empty, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drain(r); !errors.Is(err, ErrEmptyFile) {
		t.Errorf("directory without documents: %v, want ErrEmptyFile", err)
	}
}

func TestBEIR(t *testing.T) {
	dir := t.TempDir()
	put(t, dir, "corpus.jsonl.gz", `{"_id":"d1","title":"T1","text":"one"}`+"\n"+`{"_id":"d2","title":"","text":"two"}`+"\n")
	put(t, dir, "queries.jsonl", `{"_id":"q1","text":"first?","metadata":{}}`+"\n"+`{"_id":"q2","text":"second?"}`+"\n")
	put(t, dir, "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td2\t2\n")
	put(t, dir, "qrels/train.tsv.gz", "query-id\tcorpus-id\tscore\r\nq2\td1\t-1\r\n")
	put(t, dir, "qrels/README", "not a split")

	b := BEIR{Dir: dir}
	if !IsBEIR(dir) {
		t.Fatal("IsBEIR = false")
	}
	if got := b.Splits(); !reflect.DeepEqual(got, []string{"test", "train"}) {
		t.Errorf("Splits() = %v", got)
	}
	if !b.HasQrels("train") || b.HasQrels("dev") {
		t.Errorf("HasQrels(train)=%v HasQrels(dev)=%v", b.HasQrels("train"), b.HasQrels("dev"))
	}
	qr, err := b.Qrels("test")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Qrels{"q1": {"d1": 1, "d2": 0}, "q2": {"d2": 2}}); !reflect.DeepEqual(qr, want) {
		t.Errorf("Qrels(test) = %v, want %v", qr, want)
	}
	qr, err = b.Qrels("train")
	if err != nil || !reflect.DeepEqual(qr, Qrels{"q2": {"d1": -1}}) {
		t.Errorf("Qrels(train) = %v, %v", qr, err)
	}
	if _, err := b.Qrels("dev"); err == nil || !strings.Contains(err.Error(), "have test, train") {
		t.Errorf("Qrels(dev) error %v, want one listing the splits", err)
	}
	qs, err := b.Queries(Options{})
	if err != nil || !reflect.DeepEqual(qs, []Query{{"q1", "first?"}, {"q2", "second?"}}) {
		t.Errorf("Queries = %v, %v", qs, err)
	}
	qs2, err := ReadQueries(dir, Options{})
	if err != nil || !reflect.DeepEqual(qs, qs2) {
		t.Errorf("ReadQueries(dir) = %v, %v", qs2, err)
	}
	for _, r := range []func() (DocReader, error){
		func() (DocReader, error) { return b.Corpus(Options{}) },
		func() (DocReader, error) { return OpenCorpus(dir, Options{}) },
	} {
		cr, err := r()
		if err != nil {
			t.Fatal(err)
		}
		docs, err := drain(cr)
		if err != nil || !reflect.DeepEqual(docs, []Doc{{"d1", "T1", "one"}, {"d2", "", "two"}}) {
			t.Errorf("corpus = %v, %v", docs, err)
		}
	}
	if n, err := CountDocs(dir); n != 2 || err != nil {
		t.Errorf("CountDocs = %d, %v", n, err)
	}
	jq, judged, err := b.Judged("train", Options{})
	if err != nil || !reflect.DeepEqual(jq, Qrels{"q2": {"d1": -1}}) || !reflect.DeepEqual(judged, []Query{{"q2", "second?"}}) {
		t.Errorf("Judged(train) = %v, %v, %v; want the train qrels and query q2", jq, judged, err)
	}
	if _, _, err := b.Judged("dev", Options{}); err == nil {
		t.Error("Judged(dev): no error for a missing split")
	}
	for _, c := range []struct {
		need map[string]bool
		want map[string]string
	}{
		{map[string]bool{"d2": true, "d9": true}, map[string]string{"d2": "two"}},
		{nil, map[string]string{"d1": "T1 one", "d2": "two"}},
	} {
		cr, err := b.Corpus(Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadTexts(cr, c.need)
		cr.Close()
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ReadTexts(need %v) = %v, %v; want %v", c.need, got, err, c.want)
		}
	}
}

func TestReadQrelsTSVErrors(t *testing.T) {
	cases := []struct {
		name, content string
		line          int
		kind          error
	}{
		{"fields", "query-id\tcorpus-id\tscore\nq1\td1\n", 2, ErrSyntax},
		{"score", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t1.5\n", 3, ErrSyntax},
		{"empty id", "q1\t\t1\n", 1, ErrMissingID},
		{"duplicate", "q1\td1\t1\nq1\td1\t0\n", 2, ErrDuplicateID},
		{"utf8", "q1\td1\t1\nq\xff\td1\t1\n", 2, ErrInvalidUTF8},
		{"header only", "query-id\tcorpus-id\tscore\n", 0, ErrEmptyFile},
		{"empty", "", 0, ErrEmptyFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := put(t, t.TempDir(), "test.tsv", c.content)
			_, err := ReadQrelsTSV(path)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != path || pe.Line != c.line || !errors.Is(err, c.kind) {
				t.Errorf("error %v, want %s:%d %v", err, path, c.line, c.kind)
			}
		})
	}
	// No header at all is fine too.
	path := put(t, t.TempDir(), "test.tsv", "q1\td1\t3\n")
	if q, err := ReadQrelsTSV(path); err != nil || q["q1"]["d1"] != 3 {
		t.Errorf("headerless: %v, %v", q, err)
	}
}

func TestReadQueriesFormats(t *testing.T) {
	dir := t.TempDir()
	want := []Query{{"1", "what is x"}, {"2", "why y"}}
	files := map[string]string{
		"q.jsonl":    `{"_id":"1","text":"what is x"}` + "\n" + `{"_id":"2","text":"why y"}` + "\n",
		"q.tsv.gz":   "1\twhat is x\n2\twhy y\n",
		"topics.txt": "<top>\n<num> Number: 1\n<title> what is x\n</top>\n<top>\n<num> Number: 2\n<title> why y\n</top>\n",
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		path := put(t, dir, name, files[name])
		got, err := ReadQueries(path, Options{})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	path := put(t, dir, "dup.tsv", "1\ta\n1\tb\n")
	if _, err := ReadQueries(path, Options{}); !errors.Is(err, ErrDuplicateID) || !strings.HasSuffix(err.Error(), `dup.tsv:2: duplicate id "1" (first on line 1)`) {
		t.Errorf("duplicate query id: %v", err)
	}
	opts, _, skipped := collect()
	path = put(t, dir, "bad.jsonl", `{"_id":"1","text":"a"}`+"\n"+`{"_id":"2"}`+"\n")
	if got, err := ReadQueries(path, opts); err != nil || len(got) != 1 || *skipped != 1 {
		t.Errorf("SkipInvalid queries: %v, %v, skipped %d", got, err, *skipped)
	}
}

func TestOpenCorpusUnknownFormat(t *testing.T) {
	path := put(t, t.TempDir(), "c.csv", "a,b\n")
	if _, err := OpenCorpus(path, Options{}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("error %v", err)
	}
	if _, err := OpenCorpus(filepath.Join(t.TempDir(), "missing.jsonl"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestStripHTMLLinear: pathological inputs (many unclosed '<', many script
// elements) take time linear in their size, not quadratic.
func TestStripHTMLLinear(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("<a", 200_000),
		strings.Repeat("<script>x</script>", 50_000),
		strings.Repeat("<p title='x>y", 20_000),
	} {
		start := time.Now()
		StripHTML(in)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("StripHTML on %d bytes (%q...) took %v", len(in), in[:12], el)
		}
	}
}

// TestWriteFileStamps: one line per file, in lexical order, directories
// left out; a file whose size or time changes changes its line.
func TestWriteFileStamps(t *testing.T) {
	dir := t.TempDir()
	a := put(t, dir, "b/a.jsonl", "x")
	put(t, dir, "a.tsv", "yy")
	stamp := time.Unix(1700000000, 5)
	if err := os.Chtimes(a, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteFileStamps(&sb, dir); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n")
	want := `"` + a + `" 1 1700000000000000005`
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `"`+filepath.Join(dir, "a.tsv")+`" 2 `) || lines[1] != want {
		t.Fatalf("stamps %q, want a.tsv (size 2) then %s", lines, want)
	}
	if err := os.WriteFile(a, []byte("xz"), 0o644); err != nil {
		t.Fatal(err)
	}
	var again strings.Builder
	if err := WriteFileStamps(&again, dir); err != nil || again.String() == sb.String() {
		t.Fatalf("stamps unchanged after a file changed (err %v)", err)
	}
	if err := WriteFileStamps(&again, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("no error for a missing path")
	}
}
