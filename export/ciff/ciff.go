// Package ciff reads and writes the Common Index File Format (CIFF,
// github.com/osirrc/ciff, formerly lintool/ciff), through which PISA,
// Anserini, Terrier and others import inverted indexes, and exports a
// spladapt index as CIFF.
//
// A CIFF file is a sequence of protobuf messages, each prefixed with its
// size as a varint (Java's writeDelimitedTo): one Header, then exactly
// Header.NumPostingsLists PostingsList messages, then exactly
// Header.NumDocs DocRecord messages. The messages (package io.osirrc.ciff,
// proto3) are encoded here field by field with protowire, following the
// published CommonIndexFileFormat.proto:
//
//	Header       1 version int32, 2 num_postings_lists int32, 3 num_docs int32,
//	             4 total_postings_lists int32, 5 total_docs int32,
//	             6 total_terms_in_collection int64, 7 average_doclength double,
//	             8 description string
//	PostingsList 1 term string, 2 df int64, 3 cf int64, 4 postings repeated Posting
//	Posting      1 docid int32 (gap from the previous posting's docid), 2 tf int32
//	DocRecord    1 docid int32, 2 collection_docid string, 3 doclength int32
//
// Fields equal to their zero value are omitted, as proto3 writers do, so a
// file is byte-identical to what protobuf's own encoder would produce from
// the same values. In this package's types Posting.DocID is always the
// absolute doc id: the gaps exist only on the wire.
package ciff

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Version is the CIFF version written in Header.Version.
const Version = 1

// Header is CIFF's first message.
type Header struct {
	Version                int32
	NumPostingsLists       int32 // PostingsList messages that follow
	NumDocs                int32 // DocRecord messages that follow them
	TotalPostingsLists     int32 // vocabulary size
	TotalDocs              int32
	TotalTermsInCollection int64 // Σ doc lengths
	AverageDocLength       float64
	Description            string
}

// Posting is one (doc, term frequency) pair; DocID is absolute.
type Posting struct {
	DocID int32
	TF    int32
}

// PostingsList is one term's postings, in increasing DocID order.
type PostingsList struct {
	Term     string
	DF       int64 // len(Postings)
	CF       int64 // Σ TF
	Postings []Posting
}

// DocRecord maps a CIFF doc id to the collection's id and gives its length.
type DocRecord struct {
	DocID           int32
	CollectionDocID string
	DocLength       int32
}

// Writer writes CIFF messages in order: one Header, then postings lists,
// then doc records. Errors are sticky: after the first, every call returns
// it. Counts are checked against the header by Close.
type Writer struct {
	w         *bufio.Writer
	buf       []byte
	hdr       Header
	lists     int
	docs      int
	lastDocID int32
	err       error
}

// NewWriter returns a Writer on w (buffered; Close flushes).
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 1<<20)} }

func (w *Writer) emit(msg []byte) error {
	if w.err != nil {
		return w.err
	}
	var pre [binary.MaxVarintLen64]byte
	if _, err := w.w.Write(protowire.AppendVarint(pre[:0], uint64(len(msg)))); err != nil {
		w.err = fmt.Errorf("write ciff: %w", err)
		return w.err
	}
	if _, err := w.w.Write(msg); err != nil {
		w.err = fmt.Errorf("write ciff: %w", err)
	}
	return w.err
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v)) // int32/int64: two's complement, sign-extended
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// WriteHeader writes h; it must be the first call.
func (w *Writer) WriteHeader(h Header) error {
	if w.err == nil && (w.hdr != Header{} || w.lists > 0 || w.docs > 0) {
		w.err = errors.New("write ciff: header written twice or after records")
	}
	if w.err == nil && (h.NumPostingsLists < 0 || h.NumDocs < 0) {
		w.err = fmt.Errorf("write ciff: header counts %d postings lists, %d docs: negative", h.NumPostingsLists, h.NumDocs)
	}
	w.hdr = h
	b := w.buf[:0]
	b = appendInt(b, 1, int64(h.Version))
	b = appendInt(b, 2, int64(h.NumPostingsLists))
	b = appendInt(b, 3, int64(h.NumDocs))
	b = appendInt(b, 4, int64(h.TotalPostingsLists))
	b = appendInt(b, 5, int64(h.TotalDocs))
	b = appendInt(b, 6, h.TotalTermsInCollection)
	if h.AverageDocLength != 0 {
		b = protowire.AppendTag(b, 7, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(h.AverageDocLength))
	}
	b = appendString(b, 8, h.Description)
	w.buf = b
	return w.emit(b)
}

// WritePostingsList writes pl, gap-coding its doc ids. Doc ids must be
// ≥ 0 and strictly increasing, DF must equal len(Postings) and CF the sum
// of the TFs.
func (w *Writer) WritePostingsList(pl PostingsList) error {
	if w.err != nil {
		return w.err
	}
	if w.docs > 0 || w.lists >= int(w.hdr.NumPostingsLists) {
		w.err = fmt.Errorf("write ciff: postings list %d (%q) beyond the header's %d or after doc records", w.lists, pl.Term, w.hdr.NumPostingsLists)
		return w.err
	}
	if pl.DF != int64(len(pl.Postings)) {
		w.err = fmt.Errorf("write ciff: term %q: df %d, %d postings", pl.Term, pl.DF, len(pl.Postings))
		return w.err
	}
	b := w.buf[:0]
	b = appendString(b, 1, pl.Term)
	b = appendInt(b, 2, pl.DF)
	b = appendInt(b, 3, pl.CF)
	var prev int32 = 0
	var cf int64
	var p []byte
	for i, ps := range pl.Postings {
		if ps.DocID < 0 || (i > 0 && ps.DocID <= prev) {
			w.err = fmt.Errorf("write ciff: term %q: doc %d after doc %d", pl.Term, ps.DocID, prev)
			return w.err
		}
		p = appendInt(p[:0], 1, int64(ps.DocID-prev))
		p = appendInt(p, 2, int64(ps.TF))
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
		prev = ps.DocID
		cf += int64(ps.TF)
	}
	if cf != pl.CF {
		w.err = fmt.Errorf("write ciff: term %q: cf %d, postings sum to %d", pl.Term, pl.CF, cf)
		return w.err
	}
	w.buf = b
	w.lists++
	return w.emit(b)
}

// WriteDocRecord writes d; all postings lists must have been written.
func (w *Writer) WriteDocRecord(d DocRecord) error {
	if w.err != nil {
		return w.err
	}
	if w.lists != int(w.hdr.NumPostingsLists) || w.docs >= int(w.hdr.NumDocs) {
		w.err = fmt.Errorf("write ciff: doc record %d after %d of %d postings lists, header has %d docs", w.docs, w.lists, w.hdr.NumPostingsLists, w.hdr.NumDocs)
		return w.err
	}
	b := w.buf[:0]
	b = appendInt(b, 1, int64(d.DocID))
	b = appendString(b, 2, d.CollectionDocID)
	b = appendInt(b, 3, int64(d.DocLength))
	w.buf = b
	w.docs++
	return w.emit(b)
}

// Close checks that the header's counts were written and flushes. It does
// not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.lists != int(w.hdr.NumPostingsLists) || w.docs != int(w.hdr.NumDocs) {
		w.err = fmt.Errorf("write ciff: wrote %d postings lists and %d doc records, header says %d and %d",
			w.lists, w.docs, w.hdr.NumPostingsLists, w.hdr.NumDocs)
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("write ciff: %w", err)
	}
	return w.err
}

// ErrFormat is wrapped by every error about malformed CIFF bytes.
var ErrFormat = errors.New("malformed ciff")

// Reader decodes a CIFF stream: ReadHeader, then NextPostingsList until it
// returns false, then NextDocRecord until it returns false, then Err.
// Errors are sticky and name the message that failed.
type Reader struct {
	r     *bufio.Reader
	hdr   Header
	lists int
	docs  int
	msg   []byte
	err   error
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 1<<20)} }

// Err is the first error met, nil at a clean end.
func (r *Reader) Err() error { return r.err }

func (r *Reader) fail(what string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("read ciff: %s: %w", what, err)
	}
}

// next reads one size-prefixed message into r.msg.
func (r *Reader) next(what string) bool {
	if r.err != nil {
		return false
	}
	var size uint64
	for shift := 0; ; shift += 7 {
		c, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			r.fail(what, err)
			return false
		}
		if shift == 63 && c > 1 {
			r.fail(what, fmt.Errorf("size varint overflows: %w", ErrFormat))
			return false
		}
		size |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if size > 1<<31 {
		r.fail(what, fmt.Errorf("message of %d bytes: %w", size, ErrFormat))
		return false
	}
	if uint64(cap(r.msg)) < size {
		r.msg = make([]byte, size)
	}
	r.msg = r.msg[:size]
	if _, err := io.ReadFull(r.r, r.msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.fail(what, err)
		return false
	}
	return true
}

// fields calls fn for every field of msg; fn returns false on a field it
// cannot accept (wrong wire type).
func fields(msg []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, b []byte) bool) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("tag: %w: %w", protowire.ParseError(n), ErrFormat)
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(msg)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(msg)
			v = uint64(v32)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w: %w", num, protowire.ParseError(n), ErrFormat)
		}
		msg = msg[n:]
		if !fn(num, typ, v, b) {
			return fmt.Errorf("field %d has wire type %d: %w", num, typ, ErrFormat)
		}
	}
	return nil
}

// int32 fields are sign-extended 64-bit varints on the wire.
func asInt32(v uint64) (int32, bool) {
	x := int64(v)
	return int32(x), x >= math.MinInt32 && x <= math.MaxInt32
}

// ReadHeader reads the Header; it must be called first.
func (r *Reader) ReadHeader() (Header, error) {
	if !r.next("header") {
		return Header{}, r.err
	}
	var h Header
	ok32 := true
	set32 := func(dst *int32, v uint64) {
		x, ok := asInt32(v)
		ok32 = ok32 && ok
		*dst = x
	}
	err := fields(r.msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) bool {
		switch num {
		case 1, 2, 3, 4, 5, 6:
			if typ != protowire.VarintType {
				return false
			}
			switch num {
			case 1:
				set32(&h.Version, v)
			case 2:
				set32(&h.NumPostingsLists, v)
			case 3:
				set32(&h.NumDocs, v)
			case 4:
				set32(&h.TotalPostingsLists, v)
			case 5:
				set32(&h.TotalDocs, v)
			case 6:
				h.TotalTermsInCollection = int64(v)
			}
		case 7:
			if typ != protowire.Fixed64Type {
				return false
			}
			h.AverageDocLength = math.Float64frombits(v)
		case 8:
			if typ != protowire.BytesType {
				return false
			}
			h.Description = string(b)
		}
		return true // unknown fields are skipped
	})
	if err == nil && (!ok32 || h.NumPostingsLists < 0 || h.NumDocs < 0) {
		err = fmt.Errorf("counts %d postings lists, %d docs out of range: %w", h.NumPostingsLists, h.NumDocs, ErrFormat)
	}
	if err != nil {
		r.fail("header", err)
		return Header{}, r.err
	}
	r.hdr = h
	return h, nil
}

// NextPostingsList decodes the next postings list into pl (its Postings
// slice reused), turning gaps back into doc ids. It returns false after
// the header's count of lists or on an error (see Err). Doc ids must come
// out strictly increasing and DF must equal the number of postings.
func (r *Reader) NextPostingsList(pl *PostingsList) bool {
	if r.err != nil || r.lists >= int(r.hdr.NumPostingsLists) {
		return false
	}
	what := fmt.Sprintf("postings list %d", r.lists)
	if !r.next(what) {
		return false
	}
	*pl = PostingsList{Postings: pl.Postings[:0]}
	var prev int64
	var perr error
	err := fields(r.msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) bool {
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return false
			}
			pl.Term = string(b)
		case 2, 3:
			if typ != protowire.VarintType {
				return false
			}
			if num == 2 {
				pl.DF = int64(v)
			} else {
				pl.CF = int64(v)
			}
		case 4:
			if typ != protowire.BytesType {
				return false
			}
			var gap, tf int64
			if e := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) bool {
				if num == 1 || num == 2 {
					if typ != protowire.VarintType {
						return false
					}
					if num == 1 {
						gap = int64(v)
					} else {
						tf = int64(v)
					}
				}
				return true
			}); e != nil && perr == nil {
				perr = e
			}
			doc := prev + gap
			if perr == nil && ((len(pl.Postings) > 0 && gap <= 0) || gap < 0 || doc > math.MaxInt32 || tf < math.MinInt32 || tf > math.MaxInt32) {
				perr = fmt.Errorf("posting %d: gap %d after doc %d, tf %d: %w", len(pl.Postings), gap, prev, tf, ErrFormat)
			}
			pl.Postings = append(pl.Postings, Posting{DocID: int32(doc), TF: int32(tf)})
			prev = doc
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err == nil && pl.DF != int64(len(pl.Postings)) {
		err = fmt.Errorf("term %q: df %d, %d postings: %w", pl.Term, pl.DF, len(pl.Postings), ErrFormat)
	}
	if err != nil {
		r.fail(what, err)
		return false
	}
	r.lists++
	return true
}

// NextDocRecord decodes the next doc record into d. It returns false after
// the header's count of records or on an error (see Err); reading a doc
// record before every postings list has been read is an error, and so are
// bytes after the last record.
func (r *Reader) NextDocRecord(d *DocRecord) bool {
	if r.err != nil {
		return false
	}
	if r.docs >= int(r.hdr.NumDocs) {
		if _, err := r.r.ReadByte(); err != io.EOF {
			r.fail("end", fmt.Errorf("data after the last doc record: %w", ErrFormat))
		}
		return false
	}
	what := fmt.Sprintf("doc record %d", r.docs)
	if r.lists != int(r.hdr.NumPostingsLists) {
		r.fail(what, fmt.Errorf("only %d of %d postings lists read", r.lists, r.hdr.NumPostingsLists))
		return false
	}
	if !r.next(what) {
		return false
	}
	*d = DocRecord{}
	ok32 := true
	err := fields(r.msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) bool {
		switch num {
		case 1, 3:
			if typ != protowire.VarintType {
				return false
			}
			x, ok := asInt32(v)
			ok32 = ok32 && ok
			if num == 1 {
				d.DocID = x
			} else {
				d.DocLength = x
			}
		case 2:
			if typ != protowire.BytesType {
				return false
			}
			d.CollectionDocID = string(b)
		}
		return true
	})
	if err == nil && !ok32 {
		err = fmt.Errorf("int32 field out of range: %w", ErrFormat)
	}
	if err != nil {
		r.fail(what, err)
		return false
	}
	r.docs++
	return true
}
