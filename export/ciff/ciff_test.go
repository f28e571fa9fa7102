package ciff

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/spladapt/spladapt/index"
)

// testIndex builds a random index of n documents over a vocabulary with
// tokens that need care (WordPiece "##" pieces, quotes, backslashes,
// non-ASCII); doc 0 has postings so that its zero first gap is exercised.
func testIndex(t *testing.T, n int, vocab bool, seed uint64) *index.Reader {
	t.Helper()
	toks := []string{"[PAD]", "the", "##ing", `say"hi"`, `back\slash`, "café", "東京", "a b", "z", "0", "10", "9"}
	for i := len(toks); i < 60; i++ {
		toks = append(toks, fmt.Sprintf("tok%02d", i))
	}
	opts := index.Options{NumTerms: len(toks), QuantBits: 8}
	if vocab {
		opts.Vocab = toks
	}
	b, err := index.NewBuilder(opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for d := range n {
		var vec []index.TermWeight
		for _, term := range rng.Perm(len(toks))[:1+rng.IntN(12)] {
			vec = append(vec, index.TermWeight{Term: uint32(term), Weight: rng.Float32() * 3})
		}
		if d == 0 {
			vec = append(vec[:0], index.TermWeight{Term: 5, Weight: 2})
		}
		if _, err := b.Add(fmt.Sprintf("doc-%d\t\"x\"", d), vec); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	r, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRoundTrip decodes the CIFF export of an index and checks every
// posting (doc id and impact), every doc record and the header against the
// index itself.
func TestRoundTrip(t *testing.T) {
	for _, vocab := range []bool{true, false} {
		t.Run(fmt.Sprintf("vocab=%v", vocab), func(t *testing.T) {
			r := testIndex(t, 300, vocab, 1)
			var buf bytes.Buffer
			h, err := WriteIndex(&buf, r, "test")
			if err != nil {
				t.Fatal(err)
			}
			cr := NewReader(bytes.NewReader(buf.Bytes()))
			got, err := cr.ReadHeader()
			if err != nil {
				t.Fatal(err)
			}
			if got != h || got.Version != 1 || int(got.NumDocs) != r.NumDocs() || int(got.TotalPostingsLists) != r.NumTerms() {
				t.Fatalf("header %+v, wrote %+v", got, h)
			}
			seen := map[uint32]bool{}
			lengths := make([]int64, r.NumDocs())
			var pl PostingsList
			var prevName string
			for cr.NextPostingsList(&pl) {
				if pl.Term <= prevName && prevName != "" {
					t.Errorf("term %q after %q: not in byte order", pl.Term, prevName)
				}
				prevName = pl.Term
				var term uint32
				var ok bool
				if vocab {
					term, ok = r.Term(pl.Term)
				} else {
					_, err := fmt.Sscan(pl.Term, &term)
					ok = err == nil
				}
				if !ok || seen[term] {
					t.Fatalf("term %q unknown or repeated", pl.Term)
				}
				seen[term] = true
				docs, imps, err := r.Postings(term, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(docs) != len(pl.Postings) || pl.DF != int64(len(docs)) {
					t.Fatalf("term %q: %d postings (df %d), index has %d", pl.Term, len(pl.Postings), pl.DF, len(docs))
				}
				var cf int64
				for i, p := range pl.Postings {
					if p.DocID != int32(docs[i]) || p.TF != int32(imps[i]) {
						t.Fatalf("term %q posting %d: (%d, %d), index (%d, %d)", pl.Term, i, p.DocID, p.TF, docs[i], imps[i])
					}
					cf += int64(p.TF)
					lengths[p.DocID] += int64(p.TF)
				}
				if cf != pl.CF {
					t.Errorf("term %q: cf %d, sum %d", pl.Term, pl.CF, cf)
				}
			}
			if int32(len(seen)) != got.NumPostingsLists {
				t.Errorf("%d lists read, header says %d", len(seen), got.NumPostingsLists)
			}
			for term := range uint32(r.NumTerms()) {
				if df, _ := r.TermStats(term); (df > 0) != seen[term] {
					t.Errorf("term %d: df %d, exported %v", term, df, seen[term])
				}
			}
			var d DocRecord
			n := 0
			var total int64
			for cr.NextDocRecord(&d) {
				if d.DocID != int32(n) || d.CollectionDocID != r.DocID(uint32(n)) || int64(d.DocLength) != lengths[n] {
					t.Fatalf("doc record %d: %+v, want id %q length %d", n, d, r.DocID(uint32(n)), lengths[n])
				}
				total += int64(d.DocLength)
				n++
			}
			if err := cr.Err(); err != nil {
				t.Fatal(err)
			}
			if n != r.NumDocs() || total != got.TotalTermsInCollection {
				t.Errorf("%d doc records (want %d), total length %d (header %d)", n, r.NumDocs(), total, got.TotalTermsInCollection)
			}
		})
	}
}

// publishedSchema is CIFF's CommonIndexFileFormat.proto (github.com/osirrc/ciff,
// src/main/protobuf, commit 4bfb7bc9) restated as a descriptor: the
// messages, field numbers and types as published, so that protobuf's own
// decoder, not this package's, reads the files.
func publishedSchema(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	type fld struct {
		name string
		num  int32
		typ  descriptorpb.FieldDescriptorProto_Type
		msg  string
	}
	const (
		i32 = descriptorpb.FieldDescriptorProto_TYPE_INT32
		i64 = descriptorpb.FieldDescriptorProto_TYPE_INT64
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		dbl = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	mk := func(name string, fs ...fld) *descriptorpb.DescriptorProto {
		d := &descriptorpb.DescriptorProto{Name: proto.String(name)}
		for _, f := range fs {
			fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(f.name), Number: proto.Int32(f.num),
				Type: f.typ.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
			if f.msg != "" {
				fd.TypeName = proto.String(f.msg)
				fd.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			}
			d.Field = append(d.Field, fd)
		}
		return d
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("CommonIndexFileFormat.proto"), Package: proto.String("io.osirrc.ciff"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			mk("Header", fld{"version", 1, i32, ""}, fld{"num_postings_lists", 2, i32, ""}, fld{"num_docs", 3, i32, ""},
				fld{"total_postings_lists", 4, i32, ""}, fld{"total_docs", 5, i32, ""}, fld{"total_terms_in_collection", 6, i64, ""},
				fld{"average_doclength", 7, dbl, ""}, fld{"description", 8, str, ""}),
			mk("Posting", fld{"docid", 1, i32, ""}, fld{"tf", 2, i32, ""}),
			mk("PostingsList", fld{"term", 1, str, ""}, fld{"df", 2, i64, ""}, fld{"cf", 3, i64, ""},
				fld{"postings", 4, msg, ".io.osirrc.ciff.Posting"}),
			mk("DocRecord", fld{"docid", 1, i32, ""}, fld{"collection_docid", 2, str, ""}, fld{"doclength", 3, i32, ""}),
		},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestPublishedSchema reads an export with protobuf's delimited decoder
// and the published schema: every message parses with no unknown fields,
// the values are the index's (doc ids as gaps), and protobuf's own encoder
// gives back the same bytes.
func TestPublishedSchema(t *testing.T) {
	r := testIndex(t, 200, true, 3)
	var buf bytes.Buffer
	h, err := WriteIndex(&buf, r, "")
	if err != nil {
		t.Fatal(err)
	}
	fd := publishedSchema(t)
	in := bufio.NewReader(bytes.NewReader(buf.Bytes()))
	var again bytes.Buffer
	read := func(name string) protoreflect.Message {
		m := dynamicpb.NewMessage(fd.Messages().ByName(protoreflect.Name(name)))
		if err := protodelim.UnmarshalFrom(in, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m.GetUnknown()) > 0 {
			t.Fatalf("%s: unknown fields %x", name, m.GetUnknown())
		}
		// Deterministic: field-number order (dynamicpb otherwise ranges in any order).
		if _, err := (protodelim.MarshalOptions{MarshalOptions: proto.MarshalOptions{Deterministic: true}}).MarshalTo(&again, m.Interface()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	get := func(m protoreflect.Message, f string) protoreflect.Value {
		return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(f)))
	}
	hm := read("Header")
	if get(hm, "version").Int() != 1 || get(hm, "num_postings_lists").Int() != int64(h.NumPostingsLists) ||
		get(hm, "num_docs").Int() != int64(r.NumDocs()) || get(hm, "total_terms_in_collection").Int() != h.TotalTermsInCollection ||
		get(hm, "average_doclength").Float() != h.AverageDocLength || get(hm, "description").String() != h.Description {
		t.Fatalf("header %v, wrote %+v", hm, h)
	}
	for range h.NumPostingsLists {
		pm := read("PostingsList")
		term, ok := r.Term(get(pm, "term").String())
		if !ok {
			t.Fatalf("unknown term %q", get(pm, "term").String())
		}
		docs, imps, err := r.Postings(term, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps := get(pm, "postings").List()
		if ps.Len() != len(docs) || get(pm, "df").Int() != int64(len(docs)) {
			t.Fatalf("term %d: %d postings, index %d", term, ps.Len(), len(docs))
		}
		prev := int64(0)
		for i := range ps.Len() {
			p := ps.Get(i).Message()
			doc := prev + get(p, "docid").Int()
			if doc != int64(docs[i]) || get(p, "tf").Int() != int64(imps[i]) {
				t.Fatalf("term %d posting %d: doc %d tf %d, index %d %d", term, i, doc, get(p, "tf").Int(), docs[i], imps[i])
			}
			prev = doc
		}
	}
	for d := range r.NumDocs() {
		dm := read("DocRecord")
		if get(dm, "docid").Int() != int64(d) || get(dm, "collection_docid").String() != r.DocID(uint32(d)) {
			t.Fatalf("doc record %d: %v", d, dm)
		}
	}
	if _, err := in.ReadByte(); err != io.EOF {
		t.Errorf("bytes after the last doc record")
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		i := 0
		for i < min(again.Len(), buf.Len()) && again.Bytes()[i] == buf.Bytes()[i] {
			i++
		}
		t.Errorf("protobuf re-encodes the file differently from byte %d: % x, ours % x", i, again.Bytes()[i:min(i+16, again.Len())], buf.Bytes()[i:min(i+16, buf.Len())])
	}
}

// TestMalformed: truncations, trailing bytes, decreasing doc ids and a
// header that promises more are errors wrapping ErrFormat or naming the
// unexpected end, never a panic or a silent short read.
func TestMalformed(t *testing.T) {
	r := testIndex(t, 20, true, 4)
	var buf bytes.Buffer
	if _, err := WriteIndex(&buf, r, ""); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	for _, n := range []int{1, len(full) / 3, len(full) - 1} {
		if err := readAll(full[:n]); err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated to %d of %d bytes: %v", n, len(full), err)
		}
	}
	if err := readAll(append(slices.Clip(full), 0)); !errors.Is(err, ErrFormat) {
		t.Errorf("trailing byte: %v", err)
	}
	var w bytes.Buffer
	cw := NewWriter(&w)
	cw.WriteHeader(Header{Version: 1, NumPostingsLists: 1})
	if err := cw.WritePostingsList(PostingsList{Term: "a", DF: 2, CF: 2, Postings: []Posting{{5, 1}, {5, 1}}}); err == nil {
		t.Error("repeated doc id accepted by the writer")
	}
	// A hand-made list with a zero gap after the first posting.
	msg := []byte{0x0a, 1, 'a', 0x10, 2, 0x22, 2, 0x10, 1, 0x22, 2, 0x10, 1}
	bad := append([]byte{2, 0x10, 1}, byte(len(msg)))
	bad = append(bad, msg...)
	if err := readAll(bad); !errors.Is(err, ErrFormat) {
		t.Errorf("zero gap: %v", err)
	}
}

func readAll(b []byte) error {
	cr := NewReader(bytes.NewReader(b))
	if _, err := cr.ReadHeader(); err != nil {
		return err
	}
	var pl PostingsList
	for cr.NextPostingsList(&pl) {
	}
	var d DocRecord
	for cr.NextDocRecord(&d) {
	}
	if cr.Err() == nil && cr.lists != int(cr.hdr.NumPostingsLists) {
		return errors.New("lists missing without error")
	}
	return cr.Err()
}

// FuzzReader: any input ends in an error or in a complete read whose
// postings are strictly increasing with df matching.
func FuzzReader(f *testing.F) {
	var w bytes.Buffer
	cw := NewWriter(&w)
	cw.WriteHeader(Header{Version: 1, NumPostingsLists: 1, NumDocs: 1})
	cw.WritePostingsList(PostingsList{Term: "x", DF: 2, CF: 3, Postings: []Posting{{0, 1}, {4, 2}}})
	cw.WriteDocRecord(DocRecord{DocID: 0, CollectionDocID: "d", DocLength: 1})
	cw.Close()
	f.Add(w.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := NewReader(bytes.NewReader(b))
		if _, err := cr.ReadHeader(); err != nil {
			return
		}
		var pl PostingsList
		for cr.NextPostingsList(&pl) {
			if int64(len(pl.Postings)) != pl.DF {
				t.Fatalf("df %d, %d postings", pl.DF, len(pl.Postings))
			}
			for i := 1; i < len(pl.Postings); i++ {
				if pl.Postings[i].DocID <= pl.Postings[i-1].DocID {
					t.Fatal("doc ids not increasing")
				}
			}
		}
		var d DocRecord
		for cr.NextDocRecord(&d) {
		}
	})
}
