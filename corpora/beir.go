package corpora

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// BEIR is a dataset directory in BEIR's layout:
//
//	corpus.jsonl       {"_id", "title", "text"} per line
//	queries.jsonl      {"_id", "text"} per line
//	qrels/<split>.tsv  "query-id<TAB>corpus-id<TAB>score", after a header line
//
// Each file may instead be gzipped (corpus.jsonl.gz, ...); the plain file
// wins when both exist.
type BEIR struct{ Dir string }

// IsBEIR reports whether dir has a corpus.jsonl or corpus.jsonl.gz.
func IsBEIR(dir string) bool {
	_, ok := existing(filepath.Join(dir, "corpus.jsonl"))
	return ok
}

// existing returns name or name+".gz", whichever exists (name first).
func existing(name string) (string, bool) {
	for _, n := range []string{name, name + ".gz"} {
		if fi, err := os.Stat(n); err == nil && !fi.IsDir() {
			return n, true
		}
	}
	return name, false
}

func (b BEIR) corpusFile() string {
	n, _ := existing(filepath.Join(b.Dir, "corpus.jsonl"))
	return n
}

// Corpus opens the corpus for streaming (see OpenJSONL for what is an
// error).
func (b BEIR) Corpus(opts Options) (DocReader, error) { return b.corpus(BEIRFields, opts) }

func (b BEIR) corpus(f Fields, opts Options) (DocReader, error) {
	n, ok := existing(filepath.Join(b.Dir, "corpus.jsonl"))
	if !ok {
		return nil, fmt.Errorf("open BEIR corpus: no corpus.jsonl or corpus.jsonl.gz in %s", b.Dir)
	}
	return OpenJSONL(n, f, opts)
}

// Queries reads queries.jsonl[.gz] whole, in file order.
func (b BEIR) Queries(opts Options) ([]Query, error) {
	n, ok := existing(filepath.Join(b.Dir, "queries.jsonl"))
	if !ok {
		return nil, fmt.Errorf("read BEIR queries: no queries.jsonl or queries.jsonl.gz in %s", b.Dir)
	}
	return readQueriesJSONL(n, opts)
}

func (b BEIR) qrelsFile(split string) (string, bool) {
	return existing(filepath.Join(b.Dir, "qrels", split+".tsv"))
}

// HasQrels reports whether qrels/<split>.tsv[.gz] exists.
func (b BEIR) HasQrels(split string) bool {
	_, ok := b.qrelsFile(split)
	return ok
}

// Qrels reads qrels/<split>.tsv[.gz] (see ReadQrelsTSV).
func (b BEIR) Qrels(split string) (Qrels, error) {
	n, ok := b.qrelsFile(split)
	if !ok {
		have := b.Splits()
		return nil, fmt.Errorf("read BEIR qrels: no split %q in %s (have %s)", split, b.Dir, strings.Join(have, ", "))
	}
	return ReadQrelsTSV(n)
}

// Judged reads qrels/<split>.tsv[.gz] and queries.jsonl[.gz] and returns
// the qrels and the queries they judge, in file order (Qrels.Judged); a
// judged query missing from queries.jsonl is not an error here.
func (b BEIR) Judged(split string, opts Options) (Qrels, []Query, error) {
	qrels, err := b.Qrels(split)
	if err != nil {
		return nil, nil, err
	}
	qs, err := b.Queries(opts)
	if err != nil {
		return nil, nil, err
	}
	return qrels, qrels.Judged(qs), nil
}

// Splits lists the splits that have qrels (the names of qrels/*.tsv[.gz]),
// sorted.
func (b BEIR) Splits() []string {
	entries, err := os.ReadDir(filepath.Join(b.Dir, "qrels"))
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".gz")
		if e.IsDir() || !strings.HasSuffix(name, ".tsv") {
			continue
		}
		s := strings.TrimSuffix(name, ".tsv")
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ReadQrelsTSV reads BEIR qrels: "query-id<TAB>corpus-id<TAB>score" rows
// after an optional header line (a first line whose score field is not a
// number, like BEIR's "query-id corpus-id score"). Scores are integers and
// may be zero or negative. Every malformed row is an error naming the file
// and line: a wrong number of fields or a non-integer score (ErrSyntax), an
// empty query or doc id (ErrMissingID), the same (query, doc) pair twice
// (ErrDuplicateID), invalid UTF-8; a file without any judgment is
// ErrEmptyFile. Blank lines are passed over.
func ReadQrelsTSV(path string) (Qrels, error) {
	lr, err := openLines(path)
	if err != nil {
		return nil, err
	}
	defer lr.Close()
	q := Qrels{}
	rows := 0
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, &ParseError{File: path, Line: n, Err: detailf(ErrSyntax, "%d tab-separated fields, want 3 (query-id, corpus-id, score)", len(f))}
		}
		score, err := strconv.Atoi(strings.TrimSpace(f[2]))
		if err != nil {
			if n == 1 && rows == 0 {
				continue // header
			}
			return nil, &ParseError{File: path, Line: n, Err: detailf(ErrSyntax, "score %s is not an integer", Quote(f[2]))}
		}
		qid, did := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if qid == "" || did == "" {
			return nil, &ParseError{File: path, Line: n, Err: detailf(ErrMissingID, "empty query or corpus id")}
		}
		docs := q[qid]
		if docs == nil {
			docs = map[string]int{}
			q[qid] = docs
		}
		if _, dup := docs[did]; dup {
			return nil, &ParseError{File: path, Line: n, Err: detailf(ErrDuplicateID, "duplicate judgment for query %s, doc %s", Quote(qid), Quote(did))}
		}
		docs[did] = score
		rows++
	}
	if rows == 0 {
		return nil, &ParseError{File: path, Err: detailf(ErrEmptyFile, "no judgments")}
	}
	return q, nil
}
