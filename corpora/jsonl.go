package corpora

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// Fields names the JSON fields a JSONL reader takes the id, title and text
// from. An empty Title means documents have no title.
type Fields struct {
	ID    string
	Title string
	Text  string
}

// BEIRFields are BEIR's field names, the default everywhere.
var BEIRFields = Fields{ID: "_id", Title: "title", Text: "text"}

// OpenJSONL opens a JSONL corpus (one JSON object per line; ".gz" is
// decompressed) whose id, title and text are in the fields f names.
//
// A record is an error (a *ParseError with the file and line) when the
// line is not a JSON object, when the id is missing, null or blank
// (ErrMissingID), when the text field is missing (ErrMissingField), when a
// title or text is not a string or null (ErrSyntax), when the id was seen
// before (ErrDuplicateID) or when the line is not UTF-8 (ErrInvalidUTF8).
// Numeric ids are accepted as their literal text ("17"). Blank lines are
// not records and are passed over; a file with no record at all is
// ErrEmptyFile. Fields other than f's are ignored.
//
// Cost: one JSON decode per line; memory is one line plus the id set.
func OpenJSONL(path string, f Fields, opts Options) (DocReader, error) {
	if f.ID == "" || f.Text == "" {
		return nil, detailf(ErrMissingField, "open %s: JSONL id and text field names must be set", path)
	}
	return openRecords(path, opts, newIDSet(), jsonParser(f))
}

// OpenTSV opens a TSV corpus, MS MARCO style: "id<TAB>text" per line, or
// "id<TAB>title<TAB>text". There is no header line and no quoting: a text
// must not contain a tab. Errors are as for OpenJSONL, plus ErrSyntax for a
// line with another number of fields.
func OpenTSV(path string, opts Options) (DocReader, error) {
	return openRecords(path, opts, newIDSet(), parseTSVDoc)
}

func jsonParser(f Fields) func(string) (Doc, error) {
	return func(line string) (Doc, error) { return parseJSONDoc(line, f) }
}

// recordReader reads one record per non-blank line through parse.
type recordReader struct {
	lr      *lineReader
	opts    Options
	parse   func(string) (Doc, error)
	ids     *idSet
	records int // non-blank lines seen, valid or not
	err     error
}

// openRecords opens path; ids is shared when several files make one corpus.
func openRecords(path string, opts Options, ids *idSet, parse func(string) (Doc, error)) (*recordReader, error) {
	lr, err := openLines(path)
	if err != nil {
		return nil, err
	}
	return &recordReader{lr: lr, opts: opts, parse: parse, ids: ids}, nil
}

func (r *recordReader) Next() (Doc, error) {
	for r.err == nil {
		line, n, err := r.lr.Next()
		if err == io.EOF {
			if r.records == 0 {
				r.err = &ParseError{File: r.lr.name, Err: ErrEmptyFile}
				return Doc{}, r.err
			}
			return Doc{}, io.EOF
		}
		if err != nil {
			pe := err.(*ParseError)
			if pe.Err == ErrInvalidUTF8 {
				r.records++
			}
			r.fail(pe)
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		r.records++
		d, err := r.parse(line)
		if err == nil {
			err = r.ids.add(d.ID, r.lr.name, n)
		}
		if err != nil {
			r.fail(&ParseError{File: r.lr.name, Line: n, Err: err})
			continue
		}
		return d, nil
	}
	return Doc{}, r.err
}

// fail records a bad record: it becomes the reader's sticky error unless
// it may be skipped and the options say to skip it.
func (r *recordReader) fail(pe *ParseError) {
	if fatal(pe) {
		r.err = pe
		return
	}
	if err := r.opts.handle(pe); err != nil {
		r.err = err
	}
}

func (r *recordReader) Close() error {
	if r.lr == nil {
		return nil
	}
	err := r.lr.Close()
	r.lr = nil
	if r.err == nil {
		r.err = errClosed
	}
	return err
}

func (r *recordReader) next() (Query, error) {
	d, err := r.Next()
	return Query{ID: d.ID, Text: d.Text}, err
}

// parseJSONDoc decodes one JSONL record.
func parseJSONDoc(line string, f Fields) (Doc, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return Doc{}, detailf(ErrSyntax, "malformed JSON: %s", jsonErrText(err))
	}
	if m == nil {
		return Doc{}, detailf(ErrSyntax, "malformed JSON: null, want an object")
	}
	var d Doc
	var err error
	raw, ok := m[f.ID]
	if !ok || isNull(raw) {
		return Doc{}, detailf(ErrMissingID, "missing %q", f.ID)
	}
	if d.ID, err = jsonID(raw, f.ID); err != nil {
		return Doc{}, err
	}
	if strings.TrimSpace(d.ID) == "" {
		return Doc{}, detailf(ErrMissingID, "empty %q", f.ID)
	}
	raw, ok = m[f.Text]
	if !ok {
		return Doc{}, detailf(ErrMissingField, "missing %q", f.Text)
	}
	if d.Text, err = jsonString(raw, f.Text); err != nil {
		return Doc{}, err
	}
	if f.Title != "" {
		if raw, ok := m[f.Title]; ok {
			if d.Title, err = jsonString(raw, f.Title); err != nil {
				return Doc{}, err
			}
		}
	}
	return d, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// jsonID accepts a string or a number (kept as written).
func jsonID(raw json.RawMessage, name string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return string(raw), nil
	}
	return jsonString(raw, name)
}

// jsonString accepts a string or null ("").
func jsonString(raw json.RawMessage, name string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", detailf(ErrSyntax, "%q is %s, want a string", name, jsonKind(raw))
	}
	return s, nil
}

func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// jsonErrText shortens encoding/json's messages for a one-line report.
func jsonErrText(err error) string {
	if e, ok := err.(*json.UnmarshalTypeError); ok {
		return "a JSON " + e.Value + ", want an object"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// parseTSVDoc parses "id<TAB>text" or "id<TAB>title<TAB>text".
func parseTSVDoc(line string) (Doc, error) {
	f := strings.Split(line, "\t")
	var d Doc
	switch len(f) {
	case 2:
		d = Doc{ID: f[0], Text: f[1]}
	case 3:
		d = Doc{ID: f[0], Title: f[1], Text: f[2]}
	default:
		return Doc{}, detailf(ErrSyntax, "%d tab-separated fields, want 2 (id, text) or 3 (id, title, text)", len(f))
	}
	if strings.TrimSpace(d.ID) == "" {
		return Doc{}, detailf(ErrMissingID, "empty id")
	}
	return d, nil
}

// parseTSVQuery parses "id<TAB>text".
func parseTSVQuery(line string) (Doc, error) {
	f := strings.Split(line, "\t")
	if len(f) != 2 {
		return Doc{}, detailf(ErrSyntax, "%d tab-separated fields, want 2 (id, text)", len(f))
	}
	if strings.TrimSpace(f[0]) == "" {
		return Doc{}, detailf(ErrMissingID, "empty id")
	}
	return Doc{ID: f[0], Text: f[1]}, nil
}

var errClosed = detailf(io.ErrClosedPipe, "reader closed")
