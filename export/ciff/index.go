package ciff

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/spladapt/spladapt/index"
)

// TermName is the CIFF term of index term t: its vocabulary token when the
// index names its terms, else its decimal id.
func TermName(r *index.Reader, t uint32) string {
	if r.HasVocab() {
		if tok, ok := r.Token(t); ok {
			return tok
		}
	}
	return strconv.FormatUint(uint64(t), 10)
}

// WriteIndex writes index r to w as CIFF and returns the header written:
//
//   - one PostingsList per term with postings, in increasing byte order of
//     the term string (TermName); doc ids are spladapt's doc numbers
//     (0..N−1), tf the quantised impact (1..2^quant_bits−1, see
//     docs/format/index.md), so an impact-ordered engine scores exactly the
//     integer Σ q·impact spladapt does; df = postings, cf = Σ tf;
//   - one DocRecord per document, in doc-number order, with its external
//     id and a length of Σ of its impacts (what PISA and Anserini read as
//     document length for learned-sparse indexes; impact scoring ignores it);
//   - Header.TotalPostingsLists is the index's vocabulary size (terms
//     without postings are not written), TotalTermsInCollection the sum of
//     the lengths, and Description includes the quantisation scale, so that
//     tf·scale gives back the weight.
//
// Cost: two passes over every posting list (lengths, then the lists) and
// O(N) memory for the lengths, plus one decoded posting list at a time.
func WriteIndex(w io.Writer, r *index.Reader, description string) (Header, error) {
	meta := r.Meta()
	if meta.NumDocs > math.MaxInt32 || meta.NumTerms > math.MaxInt32 {
		return Header{}, fmt.Errorf("export ciff: %d docs, %d terms: CIFF ids are int32", meta.NumDocs, meta.NumTerms)
	}
	type named struct {
		term uint32
		name string
	}
	var terms []named
	lengths := make([]int64, meta.NumDocs)
	var docs []uint32
	var imps []uint16
	var err error
	for t := range uint32(meta.NumTerms) {
		if df, _ := r.TermStats(t); df == 0 {
			continue
		}
		terms = append(terms, named{t, TermName(r, t)})
		if docs, imps, err = r.Postings(t, docs, imps); err != nil {
			return Header{}, fmt.Errorf("export ciff: %w", err)
		}
		for i, d := range docs {
			lengths[d] += int64(imps[i])
		}
	}
	slices.SortFunc(terms, func(a, b named) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return int(a.term) - int(b.term)
	})
	for i := 1; i < len(terms); i++ {
		if terms[i].name == terms[i-1].name {
			return Header{}, fmt.Errorf("export ciff: terms %d and %d are both named %q", terms[i-1].term, terms[i].term, terms[i].name)
		}
	}
	var total int64
	for d, l := range lengths {
		if l > math.MaxInt32 {
			return Header{}, fmt.Errorf("export ciff: doc %d has length %d > int32", d, l)
		}
		total += l
	}
	h := Header{
		Version: Version, NumPostingsLists: int32(len(terms)), NumDocs: int32(meta.NumDocs),
		TotalPostingsLists: int32(meta.NumTerms), TotalDocs: int32(meta.NumDocs),
		TotalTermsInCollection: total,
		Description:            fmt.Sprintf("spladapt index, tf = quantised impact (%d bits), weight = tf × %.9g", meta.QuantBits, meta.Scale),
	}
	if description != "" {
		h.Description += "; " + description
	}
	if meta.NumDocs > 0 {
		h.AverageDocLength = float64(total) / float64(meta.NumDocs)
	}
	cw := NewWriter(w)
	cw.WriteHeader(h)
	var pl PostingsList
	for _, tn := range terms {
		if docs, imps, err = r.Postings(tn.term, docs, imps); err != nil {
			return Header{}, fmt.Errorf("export ciff: %w", err)
		}
		pl.Term, pl.DF, pl.CF, pl.Postings = tn.name, int64(len(docs)), 0, pl.Postings[:0]
		for i, d := range docs {
			pl.Postings = append(pl.Postings, Posting{DocID: int32(d), TF: int32(imps[i])})
			pl.CF += int64(imps[i])
		}
		if err := cw.WritePostingsList(pl); err != nil {
			return Header{}, err
		}
	}
	for d := range uint32(meta.NumDocs) {
		if err := cw.WriteDocRecord(DocRecord{DocID: int32(d), CollectionDocID: r.DocID(d), DocLength: int32(lengths[d])}); err != nil {
			return Header{}, err
		}
	}
	return h, cw.Close()
}
