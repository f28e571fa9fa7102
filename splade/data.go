package splade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Training data. The formats are specified in docs/format/training-data.md.

// Triple is one training example: a query, one positive document and one or
// more hard negatives, with optional teacher scores for MarginMSE.
type Triple struct {
	QID    string
	PosID  string
	NegIDs []string // ≥ 1 hard negatives, none equal to PosID
	// Teacher scores (optional). PosScore and NegScores are set from a
	// per-document teacher-score file (HasScores); Margins, one per
	// negative (PosScore − NegScores[k] when scores are known), are what
	// MarginMSE regresses onto. Margins is nil when the triple has no
	// teacher information.
	PosScore  float32
	NegScores []float32 // (len(NegIDs)) or nil
	Margins   []float32 // (len(NegIDs)) or nil
}

// HasScores reports whether the triple carries per-document teacher scores.
func (t Triple) HasScores() bool { return t.NegScores != nil }

// HasMargins reports whether the triple carries teacher margins.
func (t Triple) HasMargins() bool { return t.Margins != nil }

// parseScore parses a finite teacher score or margin.
func parseScore(s string) (float32, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || math.Abs(v) > math.MaxFloat32 {
		return 0, fmt.Errorf("%w: %q is not a finite number", corpora.ErrSyntax, s)
	}
	return float32(v), nil
}

// ReadTriples reads a triples file: one tab-separated line
//
//	qid <TAB> pos_id <TAB> neg_id [<TAB> teacher_margin]
//
// per (query, positive, negative). Either every line has the margin column
// or none has (the first record decides). Consecutive lines with the same
// qid and pos_id form one Triple with several negatives, in file order; the
// writer (WriteTriples) emits a multi-negative triple that way, so the two
// round-trip. Blank lines are passed over; ".gz" is read through gzip.
//
// Errors are *corpora.ParseError with the file and line: a wrong number of
// fields, a margin that is not a finite number or a carriage return inside
// the line (corpora.ErrSyntax), an
// empty id (corpora.ErrMissingID), a negative equal to the positive
// (corpora.ErrSyntax), invalid UTF-8; a file without any record is
// corpora.ErrEmptyFile. With opts.SkipInvalid bad lines are reported,
// counted and skipped instead (an empty file is still an error). Cost: one
// pass; memory is the triples.
func ReadTriples(path string, opts corpora.Options) ([]Triple, error) {
	lr, err := corpora.OpenLines(path)
	if err != nil {
		return nil, fmt.Errorf("read triples: %w", err)
	}
	defer lr.Close()
	var out []Triple
	cols, colsLine := 0, 0
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			break
		}
		bad := func(format string, kind error, args ...any) error {
			return opts.Handle(&corpora.ParseError{File: path, Line: n, Err: fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)})
		}
		if err != nil {
			if errors.Is(err, corpora.ErrInvalidUTF8) {
				if err := opts.Handle(err.(*corpora.ParseError)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("read triples: %w", err)
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 && len(f) != 4 {
			if err := bad("%d tab-separated fields, want 3 (qid, pos_id, neg_id) or 4 (… teacher_margin)", corpora.ErrSyntax, len(f)); err != nil {
				return nil, err
			}
			continue
		}
		if cols != 0 && len(f) != cols {
			if err := bad("%d fields, but line %d has %d: every line must have the margin column or none", corpora.ErrSyntax, len(f), colsLine, cols); err != nil {
				return nil, err
			}
			continue
		}
		qid, pos, neg := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])
		if qid == "" || pos == "" || neg == "" {
			if err := bad("empty qid, pos_id or neg_id", corpora.ErrMissingID); err != nil {
				return nil, err
			}
			continue
		}
		if strings.Contains(line, "\r") {
			if err := bad("carriage return inside the line", corpora.ErrSyntax); err != nil {
				return nil, err
			}
			continue
		}
		if neg == pos {
			if err := bad("negative %q equals the positive", corpora.ErrSyntax, neg); err != nil {
				return nil, err
			}
			continue
		}
		var margin float32
		if len(f) == 4 {
			m, err := parseScore(f[3])
			if err != nil {
				if err := opts.Handle(&corpora.ParseError{File: path, Line: n, Err: fmt.Errorf("teacher margin: %w", err)}); err != nil {
					return nil, err
				}
				continue
			}
			margin = m
		}
		if cols == 0 {
			cols, colsLine = len(f), n
		}
		if k := len(out) - 1; k >= 0 && out[k].QID == qid && out[k].PosID == pos {
			out[k].NegIDs = append(out[k].NegIDs, neg)
			if cols == 4 {
				out[k].Margins = append(out[k].Margins, margin)
			}
			continue
		}
		t := Triple{QID: qid, PosID: pos, NegIDs: []string{neg}}
		if cols == 4 {
			t.Margins = []float32{margin}
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, &corpora.ParseError{File: path, Err: fmt.Errorf("%w: no triples", corpora.ErrEmptyFile)}
	}
	return out, nil
}

// TeacherScores maps query id → document id → teacher score (e.g. a
// cross-encoder's logit).
type TeacherScores map[string]map[string]float32

// ReadTeacherScores reads a per-document teacher-score file: one
// tab-separated line
//
//	qid <TAB> doc_id <TAB> score
//
// per scored (query, document) pair, in any order. Blank lines are passed
// over; ".gz" is read through gzip. Errors are *corpora.ParseError with the
// file and line: a wrong number of fields or a score that is not a finite
// number (corpora.ErrSyntax), an empty id (corpora.ErrMissingID), the same
// pair twice (corpora.ErrDuplicateID), invalid UTF-8, no record at all
// (corpora.ErrEmptyFile). opts.SkipInvalid skips, reports and counts bad
// lines instead.
//
// The file carries no notion of positive or negative: Apply combines it
// with triples. It is read by its own function, never detected, because a
// triples line "q1 d1 17" and a score line "q1 d1 17" cannot be told apart
// when document ids are numbers.
func ReadTeacherScores(path string, opts corpora.Options) (TeacherScores, error) {
	lr, err := corpora.OpenLines(path)
	if err != nil {
		return nil, fmt.Errorf("read teacher scores: %w", err)
	}
	defer lr.Close()
	ts := TeacherScores{}
	rows := 0
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, corpora.ErrInvalidUTF8) {
				if err := opts.Handle(err.(*corpora.ParseError)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("read teacher scores: %w", err)
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		pe := func(err error) *corpora.ParseError { return &corpora.ParseError{File: path, Line: n, Err: err} }
		f := strings.Split(line, "\t")
		var perr *corpora.ParseError
		var qid, did string
		var score float32
		switch {
		case len(f) != 3:
			perr = pe(fmt.Errorf("%w: %d tab-separated fields, want 3 (qid, doc_id, score)", corpora.ErrSyntax, len(f)))
		default:
			qid, did = strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
			if qid == "" || did == "" {
				perr = pe(fmt.Errorf("%w: empty qid or doc_id", corpora.ErrMissingID))
				break
			}
			if strings.Contains(line, "\r") {
				perr = pe(fmt.Errorf("%w: carriage return inside the line", corpora.ErrSyntax))
				break
			}
			s, err := parseScore(f[2])
			if err != nil {
				perr = pe(fmt.Errorf("teacher score: %w", err))
				break
			}
			score = s
			if _, dup := ts[qid][did]; dup {
				perr = pe(fmt.Errorf("%w: second score for query %q, document %q", corpora.ErrDuplicateID, qid, did))
			}
		}
		if perr != nil {
			if err := opts.Handle(perr); err != nil {
				return nil, err
			}
			continue
		}
		m := ts[qid]
		if m == nil {
			m = map[string]float32{}
			ts[qid] = m
		}
		m[did] = score
		rows++
	}
	if rows == 0 {
		return nil, &corpora.ParseError{File: path, Err: fmt.Errorf("%w: no scores", corpora.ErrEmptyFile)}
	}
	return ts, nil
}

// ApplyStats counts what Apply had to drop for want of a teacher score.
type ApplyStats struct {
	Triples         int // triples returned
	DroppedTriples  int // triples without a score for the positive, or for every negative
	DroppedNegs     int // negatives without a score (of the triples kept)
	FirstMissingQID string
	FirstMissingDoc string // first (query, document) pair that had no score
}

// Apply returns copies of triples with PosScore, NegScores and Margins =
// PosScore − NegScores[k] set from the teacher scores, replacing any
// margins the triples had. Negatives without a score are dropped from their
// triple; a triple whose positive has no score, or none of whose negatives
// has, is dropped. Nothing is dropped silently: the counts are returned.
func (ts TeacherScores) Apply(triples []Triple) ([]Triple, ApplyStats) {
	var st ApplyStats
	missing := func(q, d string) {
		if st.FirstMissingQID == "" {
			st.FirstMissingQID, st.FirstMissingDoc = q, d
		}
	}
	out := make([]Triple, 0, len(triples))
	for _, t := range triples {
		sc := ts[t.QID]
		ps, ok := sc[t.PosID]
		if !ok {
			missing(t.QID, t.PosID)
			st.DroppedTriples++
			continue
		}
		nt := Triple{QID: t.QID, PosID: t.PosID, PosScore: ps}
		dropped := 0
		for _, n := range t.NegIDs {
			s, ok := sc[n]
			if !ok {
				missing(t.QID, n)
				dropped++
				continue
			}
			nt.NegIDs = append(nt.NegIDs, n)
			nt.NegScores = append(nt.NegScores, s)
			nt.Margins = append(nt.Margins, ps-s)
		}
		if len(nt.NegIDs) == 0 {
			st.DroppedTriples++
			continue
		}
		st.DroppedNegs += dropped
		out = append(out, nt)
	}
	st.Triples = len(out)
	return out, st
}

// WriteTriples writes triples in the format ReadTriples reads, one line per
// negative, atomically (temporary file and rename). The margin column is
// written when every triple has margins and omitted when none has; a mix is
// an error, as are ids that contain a tab or a line break, an empty id, a
// triple without negatives and a margins slice of the wrong length.
func WriteTriples(path string, triples []Triple) error {
	withMargins := len(triples) > 0 && triples[0].HasMargins()
	for i, t := range triples {
		if t.HasMargins() != withMargins {
			return fmt.Errorf("write triples %s: triple %d (query %q) has margins=%v, triple 0 has %v", path, i, t.QID, t.HasMargins(), withMargins)
		}
		if len(t.NegIDs) == 0 {
			return fmt.Errorf("write triples %s: triple %d (query %q) has no negatives", path, i, t.QID)
		}
		if withMargins && len(t.Margins) != len(t.NegIDs) {
			return fmt.Errorf("write triples %s: triple %d (query %q) has %d margins for %d negatives", path, i, t.QID, len(t.Margins), len(t.NegIDs))
		}
		for _, id := range append([]string{t.QID, t.PosID}, t.NegIDs...) {
			if id == "" || strings.ContainsAny(id, "\t\r\n") || strings.TrimSpace(id) != id {
				return fmt.Errorf("write triples %s: triple %d: id %q is empty, has surrounding space, a tab or a line break", path, i, id)
			}
		}
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		var line bytes.Buffer
		for _, t := range triples {
			for k, n := range t.NegIDs {
				line.Reset()
				line.WriteString(t.QID)
				line.WriteByte('\t')
				line.WriteString(t.PosID)
				line.WriteByte('\t')
				line.WriteString(n)
				if withMargins {
					line.WriteByte('\t')
					line.WriteString(strconv.FormatFloat(float64(t.Margins[k]), 'g', -1, 32))
				}
				line.WriteByte('\n')
				if _, err := bw.Write(line.Bytes()); err != nil {
					return err
				}
			}
		}
		return bw.Flush()
	})
}

// Texts holds the query and document texts a set of triples refers to.
type Texts struct {
	Queries map[string]string // query id → text
	Docs    map[string]string // doc id → Doc.Content() (title and text)
}

// LoadTexts reads from a BEIR directory the texts of every query and
// document the triples name, keeping only those. An id the triples name
// that the directory lacks is an error naming it and counting the others.
// Cost: one pass over queries.jsonl and corpus.jsonl; memory is the kept
// texts.
func LoadTexts(beirDir string, triples []Triple, opts corpora.Options) (*Texts, error) {
	b := corpora.BEIR{Dir: beirDir}
	tx := &Texts{Queries: map[string]string{}, Docs: map[string]string{}}
	needQ, needD := map[string]bool{}, map[string]bool{}
	for _, t := range triples {
		needQ[t.QID] = true
		needD[t.PosID] = true
		for _, n := range t.NegIDs {
			needD[n] = true
		}
	}
	qs, err := b.Queries(opts)
	if err != nil {
		return nil, fmt.Errorf("load training texts: %w", err)
	}
	for _, q := range qs {
		if needQ[q.ID] {
			tx.Queries[q.ID] = q.Text
		}
	}
	r, err := b.Corpus(opts)
	if err != nil {
		return nil, fmt.Errorf("load training texts: %w", err)
	}
	defer r.Close()
	if tx.Docs, err = corpora.ReadTexts(r, needD); err != nil {
		return nil, fmt.Errorf("load training texts: %w", err)
	}
	if err := missingIDs("query", needQ, tx.Queries, beirDir+"/queries.jsonl"); err != nil {
		return nil, err
	}
	if err := missingIDs("document", needD, tx.Docs, beirDir+"/corpus.jsonl"); err != nil {
		return nil, err
	}
	return tx, nil
}

func missingIDs(kind string, need map[string]bool, have map[string]string, where string) error {
	var miss []string
	for id := range need {
		if _, ok := have[id]; !ok {
			miss = append(miss, id)
		}
	}
	if len(miss) == 0 {
		return nil
	}
	sort.Strings(miss)
	return fmt.Errorf("load training texts: %d %s ids of the triples are not in %s, e.g. %q", len(miss), kind, where, miss[0])
}
