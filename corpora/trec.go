package corpora

// TREC file formats: qrels ("qid iter docno rel"), runs ("qid Q0 docno rank
// score tag") and <top> topic files. The readers follow trec_eval's
// conventions (fields separated by any run of ASCII white space, blank
// lines ignored) but are stricter about malformed lines: trec_eval reads
// numbers with atol/atof and silently turns garbage into 0, these readers
// report the file and line instead.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Errors of the TREC readers; match them with errors.Is.
var (
	ErrFieldCount   = errors.New("wrong number of fields")
	ErrBadNumber    = errors.New("not a number")
	ErrDuplicateDoc = errors.New("duplicate document for this query")
)

// beirQrelsHeader is the first line of a BEIR qrels .tsv file.
const beirQrelsHeader = "query-id\tcorpus-id\tscore"

// ReadQrels reads relevance judgments in TREC format, one judgment per line:
//
//	qid iter docno rel
//
// (iter is ignored; rel is an integer grade, possibly 0 or negative). A file
// whose first line is the BEIR header "query-id\tcorpus-id\tscore" is read
// as BEIR qrels instead: three columns qid, docno, grade. Blank lines are
// skipped. A (qid, docno) pair judged twice is an error, as in trec_eval.
// Errors are *ParseError naming the file and line. Gzip (".gz") is read
// transparently. Cost: one pass, one map entry per judgment.
func ReadQrels(path string) (Qrels, error) {
	lr, err := openLines(path)
	if err != nil {
		return nil, fmt.Errorf("read qrels: %w", err)
	}
	defer lr.Close()
	qrels := Qrels{}
	nfields := 4
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n == 1 && strings.TrimRight(line, " \t") == beirQrelsHeader {
			nfields = 3
			continue
		}
		var f [4]string
		k, extra := trecFields(line, f[:nfields])
		if k == 0 {
			continue // blank line
		}
		if k < nfields || extra {
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: want %d (%s), got %s", ErrFieldCount, nfields, qrelsLayout(nfields), Quote(line))}
		}
		qid, docno, relField := f[0], f[2], f[3]
		if nfields == 3 {
			docno, relField = f[1], f[2]
		}
		rel, err := parseGrade(relField)
		if err != nil {
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: relevance %s", ErrBadNumber, Quote(relField))}
		}
		docs := qrels[qid]
		if docs == nil {
			docs = map[string]int{}
			qrels[qid] = docs
		}
		if _, dup := docs[docno]; dup {
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: query %s judges document %s twice", ErrDuplicateID, qid, docno)}
		}
		docs[docno] = rel
	}
	if lr.Empty() {
		return nil, &ParseError{File: path, Err: ErrEmptyFile}
	}
	return qrels, nil
}

func qrelsLayout(n int) string {
	if n == 3 {
		return "query-id corpus-id score"
	}
	return "qid iter docno rel"
}

// parseGrade reads an integer grade; "1.0"-style integral decimals (seen in
// some BEIR exports) are accepted too.
func parseGrade(s string) (int, error) {
	if v, err := strconv.Atoi(s); err == nil {
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != math.Trunc(v) || math.Abs(v) > 1<<31 {
		return 0, ErrBadNumber
	}
	return int(v), nil
}

// ReadRun reads a TREC run, one retrieved document per line:
//
//	qid Q0 docno rank score tag
//
// Hits keep file order (evaluation re-sorts them by score; the rank column
// is kept in Hit.Rank but means nothing to trec_eval). Exactly six fields
// are required; rank must be an integer and score a finite or infinite
// number (not NaN). A docno appearing twice for one query is an error
// naming both lines, as trec_eval refuses such runs (trec_eval only looks
// at the hits kept by its -M depth; this reader checks them all). Blank lines are
// skipped. Errors are *ParseError naming the file and line.
//
// Cost: one pass with no per-field allocation beyond the line itself; a
// 1M-line run reads in a few hundred milliseconds (BenchmarkReadRun).
func ReadRun(path string) (Run, error) {
	lr, err := openLines(path)
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	defer lr.Close()
	run := Run{}
	// Per query: line numbers of its docnos, to report duplicates. Runs
	// are nearly always grouped by query, so one set is reused and only
	// rebuilt when a query's lines are interleaved with another's.
	seen := map[string]int{}
	var curQID string
	var cur []Hit
	lastLen := 0
	flush := func() {
		if cur != nil {
			run[curQID] = cur
			lastLen = len(cur)
		}
	}
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		var f [6]string
		k, extra := trecFields(line, f[:])
		if k == 0 {
			continue
		}
		if k < 6 || extra {
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: want 6 (qid Q0 docno rank score tag), got %s", ErrFieldCount, Quote(line))}
		}
		rank, err := strconv.Atoi(f[3])
		if err != nil {
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: rank %s", ErrBadNumber, Quote(f[3]))}
		}
		score, err := parseScore(f[4])
		if err != nil {
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: %w", ErrBadNumber, err)}
		}
		if f[0] != curQID || cur == nil {
			flush()
			curQID = strings.Clone(f[0])
			cur = run[curQID]
			clear(seen)
			for _, h := range cur { // interleaved query: rebuild its set
				seen[h.DocID] = 0 // line not kept
			}
			if cur == nil {
				// Runs usually retrieve the same depth for every query:
				// size for the previous query's hits to avoid regrowth.
				cur = make([]Hit, 0, max(16, lastLen))
			}
		}
		docno := f[2]
		if prev, dup := seen[docno]; dup {
			where := "earlier"
			if prev > 0 {
				where = fmt.Sprintf("at line %d", prev)
			}
			return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("%w: query %s retrieves %s again (first %s)", ErrDuplicateDoc, curQID, Quote(docno), where)}
		}
		seen[docno] = n
		cur = append(cur, Hit{DocID: docno, Score: score, Rank: rank})
	}
	flush()
	if lr.Empty() {
		return nil, &ParseError{File: path, Err: ErrEmptyFile}
	}
	return run, nil
}

// parseScore reads a run score as trec_eval does (C's atof) or refuses it:
// atof reads the longest prefix that is a number and ignores the rest
// ("1_000" is 1, "2abc" is 2, "abc" is 0), and accepts hex floats, where
// strconv.ParseFloat reads "1_000" as 1000. So only plain decimal numbers,
// on which both agree, are accepted: [+-] digits [. digits] [e [+-] digits]
// (or "inf"/"infinity", not "nan"), and anything else is an error saying
// what trec_eval would have read.
func parseScore(s string) (float64, error) {
	if n := decimalPrefix(s); n == len(s) && n > 0 {
		v, err := strconv.ParseFloat(s, 64)
		if err == nil {
			return v, nil
		}
		return 0, fmt.Errorf("score %s out of range", Quote(s))
	}
	if t := strings.TrimLeft(s, "+-"); len(s)-len(t) <= 1 && (strings.EqualFold(t, "inf") || strings.EqualFold(t, "infinity")) {
		v, _ := strconv.ParseFloat(s, 64)
		return v, nil
	}
	lt := strings.ToLower(strings.TrimLeft(s, "+-"))
	if strings.HasPrefix(lt, "0x") || strings.HasPrefix(lt, "nan") || strings.HasPrefix(lt, "inf") {
		return 0, fmt.Errorf("score %s is not a decimal number", Quote(s))
	}
	atof := 0.0
	if n := decimalPrefix(s); n > 0 {
		atof, _ = strconv.ParseFloat(s[:n], 64)
	}
	return 0, fmt.Errorf("score %s is not a decimal number (trec_eval would read it as %g)", Quote(s), atof)
}

// decimalPrefix returns the length of the longest prefix of s of the form
// [+-] digits [. digits] [(e|E) [+-] digits] with at least one digit
// before the exponent (0 when there is none).
func decimalPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

// trecFields splits line at runs of ASCII white space into dst, without
// allocating (the fields are substrings of line). It returns how many
// fields it found (at most len(dst)) and whether more fields follow.
func trecFields(line string, dst []string) (n int, extra bool) {
	i := 0
	for {
		for i < len(line) && isTrecSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return n, false
		}
		if n == len(dst) {
			return n, true
		}
		j := i
		for j < len(line) && !isTrecSpace(line[j]) {
			j++
		}
		dst[n] = line[i:j]
		n++
		i = j
	}
}

// trecSpace marks the ASCII white space bytes that separate fields (C's
// isspace, as trec_eval uses).
var trecSpace = [256]bool{' ': true, '\t': true, '\r': true, '\v': true, '\f': true, '\n': true}

func isTrecSpace(c byte) bool { return trecSpace[c] }

// WriteRun writes run in TREC format ("qid Q0 docno rank score tag"),
// queries in ascending qid order (string order), each query's hits in the
// order given with ranks 1..n; Hit.Rank is ignored. Scores are written in
// the shortest form that reads back to the same float64. tag must be a
// non-empty word without white space, and ids must be non-empty and
// without white space, or the run could not be read back: such a run is an
// error and nothing is written for it.
func WriteRun(w io.Writer, run Run, tag string) error {
	if tag == "" || strings.IndexFunc(tag, isSpaceRune) >= 0 {
		return fmt.Errorf("write run: tag %q must be one non-empty word", tag)
	}
	qids := make([]string, 0, len(run))
	for qid, hits := range run {
		if !ValidRunID(qid) {
			return fmt.Errorf("write run: query id %s is empty or has white space", Quote(qid))
		}
		for _, h := range hits {
			if !ValidRunID(h.DocID) {
				return fmt.Errorf("write run: query %s: document id %s is empty or has white space", qid, Quote(h.DocID))
			}
			if math.IsNaN(h.Score) {
				return fmt.Errorf("write run: query %s: document %s has a NaN score", qid, h.DocID)
			}
		}
		qids = append(qids, qid)
	}
	slices.Sort(qids)
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf []byte
	for _, qid := range qids {
		for i, h := range run[qid] {
			buf = buf[:0]
			buf = append(buf, qid...)
			buf = append(buf, " Q0 "...)
			buf = append(buf, h.DocID...)
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, int64(i+1), 10)
			buf = append(buf, ' ')
			buf = strconv.AppendFloat(buf, h.Score, 'g', -1, 64)
			buf = append(buf, ' ')
			buf = append(buf, tag...)
			buf = append(buf, '\n')
			if _, err := bw.Write(buf); err != nil {
				return fmt.Errorf("write run: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	return nil
}

// ValidRunID reports whether id can be a query or document id of a TREC
// run or qrels file: non-empty, without white space (ASCII or Unicode).
func ValidRunID(id string) bool {
	return id != "" && strings.IndexFunc(id, isSpaceRune) < 0
}

func isSpaceRune(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0 || r == 0x2028 || r == 0x2029
}

// TopicFields chooses which parts of a TREC topic make up the query text.
type TopicFields uint8

const (
	TopicTitle TopicFields = 1 << iota // <title>
	TopicDesc                          // <desc>
	TopicNarr                          // <narr>

	TopicTitleDesc = TopicTitle | TopicDesc
)

// ReadTopics reads TREC topics (<top> ... </top> blocks with <num>,
// <title>, <desc>, <narr>) and returns one Query per topic, in file order,
// whose text is the title. See ReadTopicsFields.
func ReadTopics(path string, opts Options) ([]Query, error) {
	return ReadTopicsFields(path, TopicTitle, opts)
}

// ReadTopicsFields reads TREC topics like ReadTopics, the query text being
// the chosen fields joined by one space (in title, desc, narr order), with
// white space collapsed. The labels older files put after the tags
// ("Number:", "Topic:", "Description:", "Narrative:") are dropped, and
// closing tags (</title>) are accepted. A field runs from its tag to the
// next tag, over any number of lines; tags other than top, num, title,
// desc and narr (e.g. <con>, <fac>) end the current field and are ignored.
//
// Errors (*ParseError with the line): a topic without a one-word <num> or
// with empty text in the chosen fields, a duplicate number, a <top> inside
// a topic, a topic never closed, text outside <top> blocks, invalid UTF-8.
// With opts.SkipInvalid a bad topic (or stray line) is reported and
// skipped instead; structural errors (nesting, unclosed topic) still stop
// the reader.
func ReadTopicsFields(path string, fields TopicFields, opts Options) ([]Query, error) {
	if fields == 0 || fields&^(TopicTitle|TopicDesc|TopicNarr) != 0 {
		return nil, fmt.Errorf("read topics %s: invalid field selection %d", path, fields)
	}
	lr, err := openLines(path)
	if err != nil {
		return nil, fmt.Errorf("read topics: %w", err)
	}
	defer lr.Close()
	var (
		out    []Query
		seen   = map[string]int{}
		t      *topicState // nil outside <top>
		lastLn int
	)
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			break
		}
		lastLn = n
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidUTF8) {
				return nil, err
			}
			if t != nil {
				if t.bad == nil {
					t.bad = pe
				}
				continue
			}
			if err := opts.Handle(pe); err != nil {
				return nil, err
			}
			continue
		}
		rest := strings.TrimSpace(line)
		for rest != "" {
			tag, after, isTag := cutTopicTag(rest)
			if !isTag {
				text := rest
				rest = ""
				if i := nextKnownTag(text); i > 0 {
					text, rest = strings.TrimSpace(text[:i]), text[i:]
				}
				if t == nil {
					if err := opts.Handle(&ParseError{File: path, Line: n, Err: fmt.Errorf("text outside <top>: %s", Quote(text))}); err != nil {
						return nil, err
					}
					break
				}
				if t.field != "" {
					t.parts[t.field] = append(t.parts[t.field], text)
				}
				continue
			}
			rest = strings.TrimSpace(after)
			switch tag {
			case "top":
				if t != nil {
					return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("<top> inside the topic opened at line %d", t.start)}
				}
				t = &topicState{start: n, numLine: n, parts: map[string][]string{}}
			case "/top":
				if t == nil {
					return nil, &ParseError{File: path, Line: n, Err: errors.New("</top> without <top>")}
				}
				q, pe := t.query(path, fields, seen)
				t = nil
				if pe != nil {
					if err := opts.Handle(pe); err != nil {
						return nil, err
					}
					continue
				}
				out = append(out, q)
			case "num", "title", "desc", "narr":
				if t == nil {
					return nil, &ParseError{File: path, Line: n, Err: fmt.Errorf("<%s> outside <top>", tag)}
				}
				t.field = tag
				if tag == "num" {
					t.numLine = n
				}
			default:
				// Closing tags and unknown tags end the current field.
				if t != nil {
					t.field = ""
				}
			}
		}
	}
	if t != nil {
		return nil, &ParseError{File: path, Line: lastLn, Err: fmt.Errorf("topic opened at line %d is never closed with </top>", t.start)}
	}
	if lr.Empty() {
		return nil, &ParseError{File: path, Err: ErrEmptyFile}
	}
	return out, nil
}

// topicState is a topic being read.
type topicState struct {
	start, numLine int
	field          string              // tag whose text is being collected
	parts          map[string][]string // tag → text pieces
	bad            *ParseError         // first invalid line inside the topic
}

// query builds the finished topic, or the reason it is invalid.
func (t *topicState) query(path string, fields TopicFields, seen map[string]int) (Query, *ParseError) {
	if t.bad != nil {
		return Query{}, t.bad
	}
	num := strings.TrimSpace(strings.Join(t.parts["num"], " "))
	num = strings.TrimSpace(strings.TrimPrefix(num, "Number:"))
	if num == "" || strings.ContainsAny(num, " \t") {
		return Query{}, &ParseError{File: path, Line: t.start, Err: fmt.Errorf("%w: topic without a one-word <num>", ErrMissingID)}
	}
	var texts []string
	for _, k := range []struct {
		bit        TopicFields
		tag, label string
	}{{TopicTitle, "title", "Topic:"}, {TopicDesc, "desc", "Description:"}, {TopicNarr, "narr", "Narrative:"}} {
		if fields&k.bit == 0 {
			continue
		}
		s := strings.Join(strings.Fields(strings.Join(t.parts[k.tag], " ")), " ")
		s = strings.TrimSpace(strings.TrimPrefix(s, k.label))
		if s != "" {
			texts = append(texts, s)
		}
	}
	if len(texts) == 0 {
		return Query{}, &ParseError{File: path, Line: t.start, Err: fmt.Errorf("topic %s: empty query text", num)}
	}
	if prev, dup := seen[num]; dup {
		return Query{}, &ParseError{File: path, Line: t.numLine, Err: fmt.Errorf("%w: topic %s (first at line %d)", ErrDuplicateID, num, prev)}
	}
	seen[num] = t.numLine
	return Query{ID: num, Text: strings.Join(texts, " ")}, nil
}

// cutTopicTag splits a leading "<tag>" off s, lowercasing the tag name.
func cutTopicTag(s string) (tag, after string, isTag bool) {
	if !strings.HasPrefix(s, "<") {
		return "", s, false
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", s, false
	}
	name := strings.ToLower(strings.TrimSpace(s[1:end]))
	if name == "" || strings.ContainsAny(name, " \t<") {
		return "", s, false
	}
	return name, s[end+1:], true
}

// nextKnownTag returns the index in text of the first tag of the topic
// format (<top>, </title>, ...), or -1. Other '<' characters are text.
func nextKnownTag(text string) int {
	for i := 0; i < len(text); i++ {
		if text[i] != '<' {
			continue
		}
		tag, _, ok := cutTopicTag(text[i:])
		if !ok {
			continue
		}
		switch strings.TrimPrefix(tag, "/") {
		case "top", "num", "title", "desc", "narr":
			return i
		}
	}
	return -1
}
