// Package elastic turns sparse vectors into what OpenSearch and
// Elasticsearch need to index and query them: the index mapping, bulk
// NDJSON of the documents and the query body of a query vector.
//
// One field (default "splade") holds each document's vector as an object
// {feature: weight}:
//
//   - OpenSearch: a "rank_features" field, the field type of OpenSearch's
//     neural sparse search; the query is "neural_sparse" with
//     "query_tokens" (neural-search plugin, OpenSearch ≥ 2.11), or, with
//     core OpenSearch only, a bool "should" of linear "rank_feature"
//     queries, one per query term, whose boosts are the query weights.
//   - Elasticsearch (≥ 8.15): a "sparse_vector" field and a "sparse_vector"
//     query with "query_vector".
//
// All three queries score a document by the dot product Σ q_t·d_t.
// Both engines store feature values with 9 significant bits (a relative
// error up to 0.4 %), refuse weights ≤ 0 and refuse dots in feature names;
// Feature escapes "%" and "." (as "%25", "%2E") so that every token, "."
// and "..." included, is a legal name, and Unescape undoes it. The same
// escaping is applied to queries, so tokens match.
package elastic

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Engine is the target search engine.
type Engine int

const (
	OpenSearch Engine = iota
	Elasticsearch
)

func (e Engine) String() string {
	if e == Elasticsearch {
		return "elasticsearch"
	}
	return "opensearch"
}

// DefaultField is the name of the vector field.
const DefaultField = "splade"

// Term is one feature of a vector: its name (a token, unescaped) and weight.
type Term struct {
	Token  string
	Weight float32
}

var escaper = strings.NewReplacer("%", "%25", ".", "%2E")
var unescaper = strings.NewReplacer("%25", "%", "%2E", ".")

// Feature returns the feature name of token: "%" → "%25", "." → "%2E".
func Feature(token string) string { return escaper.Replace(token) }

// Unescape is the inverse of Feature.
func Unescape(feature string) string { return unescaper.Replace(feature) }

// Mapping returns the body of the create-index request (PUT /NAME): the
// document id as a keyword and field as the engine's sparse field type.
func Mapping(e Engine, field string) []byte {
	typ := "rank_features"
	if e == Elasticsearch {
		typ = "sparse_vector"
	}
	m := map[string]any{"mappings": map[string]any{"properties": map[string]any{
		"id":  map[string]string{"type": "keyword"},
		field: map[string]string{"type": typ},
	}}}
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// QueryStyle selects OpenSearch's query form.
type QueryStyle int

const (
	NeuralSparse QueryStyle = iota // OpenSearch "neural_sparse" with "query_tokens"
	RankFeature                    // OpenSearch bool.should of linear "rank_feature"
)

// Query returns the search body (POST /NAME/_search) for query vector q
// with k hits: Elasticsearch's sparse_vector query, or OpenSearch's
// neural_sparse or rank_feature form (style; ignored for Elasticsearch).
// Terms with weight ≤ 0 are left out; a repeated token is an error.
func Query(e Engine, style QueryStyle, field string, q []Term, k int) ([]byte, error) {
	vec := map[string]float32{}
	var feats []string
	for _, t := range q {
		if !(t.Weight > 0) || math.IsInf(float64(t.Weight), 0) {
			continue
		}
		f := Feature(t.Token)
		if _, dup := vec[f]; dup {
			return nil, fmt.Errorf("query body: token %q given twice", t.Token)
		}
		vec[f] = t.Weight
		feats = append(feats, f)
	}
	var query any
	switch {
	case e == Elasticsearch:
		query = map[string]any{"sparse_vector": map[string]any{"field": field, "query_vector": vec}}
	case style == RankFeature:
		var should []any
		for _, f := range feats {
			should = append(should, map[string]any{"rank_feature": map[string]any{
				"field": field + "." + f, "boost": vec[f], "linear": map[string]any{}}})
		}
		query = map[string]any{"bool": map[string]any{"should": should}}
	default:
		query = map[string]any{"neural_sparse": map[string]any{field: map[string]any{"query_tokens": vec}}}
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"size": k, "query": query}); err != nil {
		return nil, fmt.Errorf("query body: %w", err)
	}
	return []byte(sb.String()), nil
}

// BulkWriter writes bulk NDJSON: for each document an action line
// {"index":{"_id":ID}} and a source line {"id":ID,FIELD:{feature:weight,…}}.
// The index name is left to the request URL (POST /NAME/_bulk). Weights are
// written in the shortest form that reads back as the same float32.
type BulkWriter struct {
	w     *bufio.Writer
	field string
	buf   []byte
	n     int
}

// NewBulkWriter returns a BulkWriter on w for vector field field.
func NewBulkWriter(w io.Writer, field string) *BulkWriter {
	return &BulkWriter{w: bufio.NewWriterSize(w, 1<<20), field: field}
}

// Docs is the number of documents written.
func (b *BulkWriter) Docs() int { return b.n }

// Add writes document id with vector vec. Weights ≤ 0 are left out (the
// engines refuse them; they add nothing to a dot product); NaN or
// infinite weights, a repeated token, or an id or token that is not UTF-8
// are errors.
func (b *BulkWriter) Add(id string, vec []Term) error {
	if !utf8.ValidString(id) || id == "" {
		return fmt.Errorf("bulk doc %q: id empty or not UTF-8", id)
	}
	s := b.buf[:0]
	s = append(s, `{"index":{"_id":`...)
	s = appendString(s, id)
	s = append(s, "}}\n{\"id\":"...)
	s = appendString(s, id)
	s = append(s, ',')
	s = appendString(s, b.field)
	s = append(s, ":{"...)
	first := true
	seen := make(map[string]bool, len(vec))
	for _, t := range vec {
		w := float64(t.Weight)
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("bulk doc %q: token %q has weight %v", id, t.Token, t.Weight)
		}
		if !utf8.ValidString(t.Token) || t.Token == "" {
			return fmt.Errorf("bulk doc %q: token %q empty or not UTF-8", id, t.Token)
		}
		if seen[t.Token] {
			return fmt.Errorf("bulk doc %q: token %q twice", id, t.Token)
		}
		seen[t.Token] = true
		if w <= 0 {
			continue
		}
		if !first {
			s = append(s, ',')
		}
		first = false
		s = appendString(s, Feature(t.Token))
		s = append(s, ':')
		s = strconv.AppendFloat(s, w, 'g', -1, 32)
	}
	s = append(s, "}}\n"...)
	b.buf = s
	if _, err := b.w.Write(s); err != nil {
		return fmt.Errorf("write bulk: %w", err)
	}
	b.n++
	return nil
}

// Flush writes buffered data to the underlying writer.
func (b *BulkWriter) Flush() error {
	if err := b.w.Flush(); err != nil {
		return fmt.Errorf("write bulk: %w", err)
	}
	return nil
}

// appendString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else (valid UTF-8) as is.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
