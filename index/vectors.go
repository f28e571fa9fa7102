package index

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spladapt/spladapt/corpora"
)

// QueryEncoder turns query text into a sparse vector. A SPLADE model
// implements it; TokenEncoder is the model-free one.
type QueryEncoder interface {
	Encode(text string) ([]TermWeight, error)
}

// TermResolver maps a vector key ("<term id>" or "<token>") to a term.
type TermResolver func(key string) (uint32, error)

// IDResolver reads keys as decimal term ids.
func IDResolver(key string) (uint32, error) {
	t, err := strconv.ParseUint(key, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("key %s is not a term id (give a vocabulary to use tokens)", corpora.Quote(key))
	}
	return uint32(t), nil
}

// VocabResolver reads keys as tokens of a vocabulary.
func VocabResolver(lookup func(string) (uint32, bool)) TermResolver {
	return func(key string) (uint32, error) {
		if t, ok := lookup(key); ok {
			return t, nil
		}
		return 0, fmt.Errorf("token %s not in the vocabulary", corpora.Quote(key))
	}
}

// ReaderResolver resolves keys for r: tokens when r has a vocabulary,
// term ids otherwise.
func ReaderResolver(r *Reader) TermResolver {
	if r.HasVocab() {
		return VocabResolver(r.Term)
	}
	return IDResolver
}

// TokenEncoder encodes text as a bag of vocabulary tokens: words split on
// white space, each of weight 1 (repeats add up), or "token:weight".
type TokenEncoder struct{ Resolve TermResolver }

// Encode implements QueryEncoder. Unknown tokens are an error.
func (e TokenEncoder) Encode(text string) ([]TermWeight, error) {
	var out []TermWeight
	for _, f := range strings.Fields(text) {
		w := float32(1)
		if i := strings.LastIndexByte(f, ':'); i > 0 && i < len(f)-1 {
			if x, err := strconv.ParseFloat(f[i+1:], 32); err == nil {
				f, w = f[:i], float32(x)
			}
		}
		t, err := e.Resolve(f)
		if err != nil {
			return nil, err
		}
		out = append(out, TermWeight{Term: t, Weight: w})
	}
	if len(out) == 0 {
		return nil, errors.New("empty query")
	}
	return out, nil
}

type vectorLine struct {
	ID     string             `json:"id"`
	Vector map[string]float64 `json:"vector"`
}

// ParseVector decodes a vector object {"<key>": weight, …} with resolve,
// sorted by term; repeated terms are an error.
func ParseVector(m map[string]float64, resolve TermResolver) ([]TermWeight, error) {
	out := make([]TermWeight, 0, len(m))
	for k, w := range m {
		t, err := resolve(k)
		if err != nil {
			return nil, err
		}
		out = append(out, TermWeight{Term: t, Weight: float32(w)})
	}
	slices.SortFunc(out, func(a, b TermWeight) int { return int(a.Term) - int(b.Term) })
	for i := 1; i < len(out); i++ {
		if out[i].Term == out[i-1].Term {
			return nil, fmt.Errorf("term %d given twice", out[i].Term)
		}
	}
	return out, nil
}

// ReadVectors streams a JSONL file (".gz" read transparently) of lines
// {"id": "...", "vector": {"<key>": weight, ...}} to fn. Malformed lines
// are *corpora.ParseError (file:line); with opts.SkipInvalid they are
// reported and skipped. Blank lines are ignored.
func ReadVectors(path string, resolve TermResolver, opts corpora.Options, fn func(id string, vec []TermWeight) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read vectors: %w", err)
	}
	defer f.Close()
	var in io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return &corpora.ParseError{File: path, Err: err}
		}
		defer gz.Close()
		in = gz
	}
	br := bufio.NewReaderSize(in, 1<<20)
	bad := func(line int, err error) error {
		return opts.Handle(&corpora.ParseError{File: path, Line: line, Err: err})
	}
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return &corpora.ParseError{File: path, Line: line, Err: rerr}
		}
		b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
		if len(b) > 0 {
			var vl vectorLine
			var vec []TermWeight
			err := json.Unmarshal(b, &vl)
			switch {
			case !utf8.Valid(b):
				err = corpora.ErrInvalidUTF8
			case err != nil:
			case vl.ID == "":
				err = corpora.ErrMissingID
			case vl.Vector == nil:
				err = errors.New(`missing "vector"`)
			default:
				vec, err = ParseVector(vl.Vector, resolve)
			}
			if err != nil {
				if e := bad(line, err); e != nil {
					return e
				}
			} else if err := fn(vl.ID, vec); err != nil {
				return &corpora.ParseError{File: path, Line: line, Err: err}
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// BuildVectors writes the index dir of the document vectors at path
// (ReadVectors, with reader options co): keys are tokens of the vocabulary
// file vocabPath (which becomes the index vocabulary) when it is given,
// term ids otherwise. progress, when not nil, is called after each
// document. Errors reading the vectors name the file and line; nothing is
// written unless every document was added.
func BuildVectors(dir, path, vocabPath string, opts Options, co corpora.Options, progress func()) (*Meta, error) {
	if vocabPath != "" {
		v, err := ReadVocab(vocabPath)
		if err != nil {
			return nil, err
		}
		opts.Vocab = v
	}
	b, err := NewBuilder(opts)
	if err != nil {
		return nil, err
	}
	resolve := IDResolver
	if vocabPath != "" {
		resolve = VocabResolver(b.Term)
	}
	err = ReadVectors(path, resolve, co, func(id string, vec []TermWeight) error {
		_, err := b.Add(id, vec)
		if progress != nil {
			progress()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read vectors: %w", err)
	}
	return b.Write(dir)
}

// ReadVocab reads a vocab.txt: one token per line, line i naming term i−1.
func ReadVocab(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	s := strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if s == "" {
		return nil, &corpora.ParseError{File: path, Err: corpora.ErrEmptyFile}
	}
	return strings.Split(s, "\n"), nil
}
