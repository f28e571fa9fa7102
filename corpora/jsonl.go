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
	if err := r.opts.Handle(pe); err != nil {
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

// parseJSONDoc decodes one JSONL record. Valid lines take a fast path:
// json.Valid, then one scan over the top-level object that slices out the
// three values wanted (decoding only strings with escapes), last duplicate
// key winning as in encoding/json. Invalid lines and non-objects go through
// parseJSONDocMap, which words the error. The two agree on every input
// (FuzzJSONDocFastPath).
func parseJSONDoc(line string, f Fields) (Doc, error) {
	b := []byte(line)
	if !json.Valid(b) {
		return parseJSONDocMap(line, f)
	}
	vals, ok := topLevel(line, f)
	if !ok {
		return parseJSONDocMap(line, f)
	}
	var d Doc
	var err error
	if vals[0] == "" || vals[0] == "null" {
		return Doc{}, detailf(ErrMissingID, "missing %q", f.ID)
	}
	if d.ID, err = jsonID(json.RawMessage(vals[0]), f.ID); err != nil {
		return Doc{}, err
	}
	if strings.TrimSpace(d.ID) == "" {
		return Doc{}, detailf(ErrMissingID, "empty %q", f.ID)
	}
	if vals[2] == "" {
		return Doc{}, detailf(ErrMissingField, "missing %q", f.Text)
	}
	if d.Text, err = fastString(vals[2], f.Text); err != nil {
		return Doc{}, err
	}
	if f.Title != "" && vals[1] != "" {
		if d.Title, err = fastString(vals[1], f.Title); err != nil {
			return Doc{}, err
		}
	}
	return d, nil
}

// fastString decodes a JSON string or null; a string without escapes is
// its bytes between the quotes (the line is already known valid UTF-8).
func fastString(v, name string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && strings.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	return jsonString(json.RawMessage(v), name)
}

// topLevel returns the raw values of f.ID, f.Title and f.Text in the JSON
// object line ("" when absent), which must be valid JSON. ok is false when
// the value is not an object.
func topLevel(line string, f Fields) (vals [3]string, ok bool) {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return vals, false
	}
	i = skipWS(line, i+1)
	if line[i] == '}' {
		return vals, true
	}
	for {
		kEnd := stringEnd(line, i)
		key := line[i+1 : kEnd-1]
		if strings.IndexByte(key, '\\') >= 0 {
			var k string
			if json.Unmarshal([]byte(line[i:kEnd]), &k) != nil {
				return vals, false
			}
			key = k
		}
		i = skipWS(line, kEnd)
		i = skipWS(line, i+1) // past ':'
		vEnd := valueEnd(line, i)
		v := line[i:vEnd]
		if key == f.ID {
			vals[0] = v
		}
		if key == f.Title {
			vals[1] = v
		}
		if key == f.Text {
			vals[2] = v
		}
		i = skipWS(line, vEnd)
		if line[i] == '}' {
			return vals, true
		}
		i = skipWS(line, i+1) // past ','
	}
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at s[i] == '"'.
func stringEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

// valueEnd returns the index just past the JSON value starting at s[i].
func valueEnd(s string, i int) int {
	switch s[i] {
	case '"':
		return stringEnd(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				j = stringEnd(s, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(s)
	}
	j := i
	for j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r' {
		j++
	}
	return j
}

// parseJSONDocMap decodes one JSONL record through a map: the reference
// implementation, and the path that words errors for malformed lines.
func parseJSONDocMap(line string, f Fields) (Doc, error) {
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
