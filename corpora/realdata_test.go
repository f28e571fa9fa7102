package corpora

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sharedData is where the real collections live, relative to this package
// (the repository root's ../shared/data).
var sharedData = filepath.Join("..", "..", "shared", "data")

// readmeFacts is what the collections' README states about one collection.
type readmeFacts struct {
	docs, empty, queries int
	judged, rows         map[string]int // per split
	meanDoc, meanQuery   string         // one decimal, as printed
}

// parseDataREADME reads the summary table and the "Counts:" lines of
// shared/data/README.md; the README is the oracle, so the test follows it
// when collections are added.
func parseDataREADME(t *testing.T, path string) map[string]*readmeFacts {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer f.Close()
	num := func(s string) int {
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(s), ",", ""))
		if err != nil {
			t.Fatalf("%s: number %q: %v", path, s, err)
		}
		return n
	}
	perSplit := func(s string) map[string]int { // "train 10,070, dev 500"
		out := map[string]int{}
		for _, m := range regexp.MustCompile(`([a-z]+) ([\d,]+)`).FindAllStringSubmatch(s, -1) {
			out[m[1]] = num(m[2])
		}
		return out
	}
	facts := map[string]*readmeFacts{}
	section := ""
	countsRe := regexp.MustCompile(`^Counts: ([\d,]+) docs \(([\d,]+) empty\); queries written ([\d,]+)`)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if c := strings.Split(line, "|"); strings.HasPrefix(line, "| `") && len(c) >= 12 { // the summary table
			name := strings.Trim(strings.TrimSpace(c[1]), "`")
			facts[name] = &readmeFacts{
				docs: num(c[3]), judged: perSplit(c[4]), rows: perSplit(c[5]),
				meanDoc: strings.TrimSpace(c[6]), meanQuery: strings.TrimSpace(c[7]),
			}
		}
		if strings.HasPrefix(line, "## `") {
			section = strings.Trim(strings.TrimPrefix(line, "## "), "`")
		}
		if m := countsRe.FindStringSubmatch(line); m != nil {
			fa := facts[section]
			if fa == nil {
				t.Fatalf("%s: Counts line for %q, which the summary table lacks", path, section)
			}
			if num(m[1]) != fa.docs {
				t.Fatalf("%s: %s: README disagrees with itself on the doc count", path, section)
			}
			fa.empty, fa.queries = num(m[2]), num(m[3])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return facts
}

// TestRealCollections reads every collection in ../shared/data with the
// readers and checks the counts and mean lengths the README gives.
func TestRealCollections(t *testing.T) {
	readme := filepath.Join(sharedData, "README.md")
	if _, err := os.Stat(readme); err != nil {
		t.Skipf("no real collections: %s not found (%v)", sharedData, err)
	}
	facts := parseDataREADME(t, readme)
	entries, err := os.ReadDir(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		fa := facts[name]
		if fa == nil {
			t.Errorf("%s is not described in %s", name, readme)
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(sharedData, name)
			if !IsBEIR(dir) {
				t.Fatalf("%s: no corpus.jsonl", dir)
			}
			b := BEIR{Dir: dir}
			r, err := OpenCorpus(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			docIDs := map[string]bool{}
			tokens, empty := 0, 0
			for {
				d, err := r.Next()
				if err != nil {
					if err != io.EOF {
						t.Fatal(err)
					}
					break
				}
				docIDs[d.ID] = true
				n := len(strings.Fields(d.Content()))
				tokens += n
				if n == 0 {
					empty++
				}
			}
			r.Close()
			if len(docIDs) != fa.docs || empty != fa.empty {
				t.Errorf("%d docs (%d empty), README says %d (%d empty)", len(docIDs), empty, fa.docs, fa.empty)
			}
			if got := fmt.Sprintf("%.1f", float64(tokens)/float64(len(docIDs))); got != fa.meanDoc {
				t.Errorf("mean doc length %s tokens, README says %s", got, fa.meanDoc)
			}
			if n, err := CountDocs(dir); err != nil || n != fa.docs {
				t.Errorf("CountDocs = %d, %v; want %d", n, err, fa.docs)
			}

			qs, err := b.Queries(Options{})
			if err != nil {
				t.Fatal(err)
			}
			qIDs := map[string]bool{}
			qTokens := 0
			for _, q := range qs {
				qIDs[q.ID] = true
				qTokens += len(strings.Fields(q.Text))
			}
			if len(qs) != fa.queries {
				t.Errorf("%d queries, README says %d", len(qs), fa.queries)
			}
			if got := fmt.Sprintf("%.1f", float64(qTokens)/float64(len(qs))); got != fa.meanQuery {
				t.Errorf("mean query length %s tokens, README says %s", got, fa.meanQuery)
			}

			var splits []string
			for s := range fa.rows {
				splits = append(splits, s)
			}
			sort.Strings(splits)
			if got := b.Splits(); !reflect.DeepEqual(got, splits) {
				t.Errorf("Splits() = %v, README lists %v", got, splits)
			}
			for _, split := range splits {
				qrels, err := b.Qrels(split)
				if err != nil {
					t.Fatal(err)
				}
				rows := 0
				for qid, docs := range qrels {
					if !qIDs[qid] {
						t.Errorf("%s: query %q not in queries.jsonl", split, qid)
					}
					for did := range docs {
						if !docIDs[did] {
							t.Errorf("%s: doc %q not in the corpus", split, did)
						}
					}
					rows += len(docs)
				}
				if len(qrels) != fa.judged[split] || rows != fa.rows[split] {
					t.Errorf("%s: %d queries / %d rows, README says %d / %d", split, len(qrels), rows, fa.judged[split], fa.rows[split])
				}
			}
		})
	}
	if seen == 0 {
		t.Errorf("no collection directories in %s", sharedData)
	}
}
