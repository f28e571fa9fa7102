package index

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// File layout constants; see docs/format/index.md.
const (
	FileName     = "index.spl"
	MetaFileName = "meta.json"
	Magic        = "SPLADIDX"
	Version      = 3

	headerSize   = 16
	tocEntrySize = 32
	termSize     = 32
	noDense      = math.MaxUint32

	roaringCookie     = 12346 // portable format, arrays and bitmaps only
	roaringCookieRuns = 12347
	arrayMaxCard      = 4096 // largest array container; larger ones are bitmaps
	bitmapBytes       = 8192 // a bitmap container: 65536 bits

	queryWeightMax     = 65535
	defaultFingerprint = ""
)

// Section tags in file order.
var sectionTags = [...]string{"META", "TERM", "DOCS", "IMPS", "RMAX", "DIDS", "VOCB"}

const (
	secMeta = iota
	secTerm
	secDocs
	secImps
	secRmax
	secDids
	secVocb
	numSections
)

// Meta is the META section: settings and counts of an index.
type Meta struct {
	Format          int     `json:"format"`
	NumDocs         int     `json:"num_docs"`
	NumTerms        int     `json:"num_terms"`
	NumPostings     int64   `json:"num_postings"`
	QuantBits       int     `json:"quant_bits"`
	Scale           float64 `json:"scale"`
	BlockSize       int     `json:"block_size"`
	NumBlocks       int     `json:"num_blocks"`
	DenseTerms      int     `json:"dense_terms"`
	DroppedPostings int64   `json:"dropped_postings"`
	ClippedPostings int64   `json:"clipped_postings"`
	Fingerprint     string  `json:"fingerprint"`
}

func (m *Meta) impactWidth() int {
	if m.QuantBits <= 8 {
		return 1
	}
	return 2
}

func (m *Meta) maxImpact() int { return 1<<m.QuantBits - 1 }

func (m *Meta) check() error {
	switch {
	case m.Format != Version:
		return fmt.Errorf("format %d, want %d (rebuild with \"spladapt index build\")", m.Format, Version)
	case m.NumDocs < 0 || m.NumDocs > math.MaxUint32:
		return fmt.Errorf("num_docs %d out of range", m.NumDocs)
	case m.NumTerms < 0 || m.NumTerms > math.MaxUint32:
		return fmt.Errorf("num_terms %d out of range", m.NumTerms)
	case m.NumPostings < 0:
		return fmt.Errorf("num_postings %d negative", m.NumPostings)
	case m.QuantBits < 1 || m.QuantBits > 16:
		return fmt.Errorf("quant_bits %d not in 1..16", m.QuantBits)
	case !(m.Scale > 0) || math.IsInf(m.Scale, 0):
		return fmt.Errorf("scale %v not positive and finite", m.Scale)
	case m.BlockSize < 1:
		return fmt.Errorf("block_size %d < 1", m.BlockSize)
	case m.NumBlocks != (m.NumDocs+m.BlockSize-1)/m.BlockSize:
		return fmt.Errorf("num_blocks %d, want ⌈%d/%d⌉", m.NumBlocks, m.NumDocs, m.BlockSize)
	case m.DenseTerms < 0 || m.DenseTerms > m.NumTerms:
		return fmt.Errorf("dense_terms %d not in 0..%d", m.DenseTerms, m.NumTerms)
	}
	return nil
}

// section is one TOC entry.
type section struct {
	tag    string
	crc    uint32
	offset uint64
	length uint64
}

// SectionError is corruption or inconsistency found in one section.
type SectionError struct {
	Section string // "header", "META", "TERM", …
	Err     error
}

func (e *SectionError) Error() string { return "section " + e.Section + ": " + e.Err.Error() }
func (e *SectionError) Unwrap() error { return e.Err }

func secErr(sec string, format string, args ...any) error {
	return &SectionError{Section: sec, Err: fmt.Errorf(format, args...)}
}

// ErrCorrupt is wrapped by every corruption error; match with errors.Is.
var ErrCorrupt = errors.New("corrupt index")

func align8(n uint64) uint64 { return (n + 7) &^ 7 }

// encodeHeader returns header+TOC+CRC bytes for sections whose lengths and
// CRCs are set; it fills in offsets.
func encodeHeader(secs []section) []byte {
	n := len(secs)
	hdr := make([]byte, headerSize+tocEntrySize*n+8)
	copy(hdr, Magic)
	binary.LittleEndian.PutUint32(hdr[8:], Version)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(n))
	off := uint64(len(hdr))
	for i := range secs {
		off = align8(off)
		secs[i].offset = off
		off += secs[i].length
		e := hdr[headerSize+tocEntrySize*i:]
		copy(e[0:4], secs[i].tag)
		binary.LittleEndian.PutUint32(e[4:], secs[i].crc)
		binary.LittleEndian.PutUint64(e[8:], secs[i].offset)
		binary.LittleEndian.PutUint64(e[16:], secs[i].length)
	}
	end := headerSize + tocEntrySize*n
	binary.LittleEndian.PutUint32(hdr[end:], crc32.ChecksumIEEE(hdr[:end]))
	return hdr
}

// decodeHeader parses and checks the header and TOC of file data.
func decodeHeader(data []byte) ([]section, error) {
	if len(data) < headerSize {
		return nil, secErr("header", "file of %d bytes is shorter than the %d-byte header: %w", len(data), headerSize, ErrCorrupt)
	}
	if string(data[:8]) != Magic {
		return nil, secErr("header", "bad magic %q, want %q: %w", data[:8], Magic, ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return nil, secErr("header", "format version %d, want %d (rebuild with \"spladapt index build\"): %w", v, Version, ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(data[12:])
	if n != numSections {
		return nil, secErr("header", "%d sections, want %d: %w", n, numSections, ErrCorrupt)
	}
	end := headerSize + tocEntrySize*int(n)
	if len(data) < end+8 {
		return nil, secErr("header", "truncated table of contents: %w", ErrCorrupt)
	}
	if got, want := crc32.ChecksumIEEE(data[:end]), binary.LittleEndian.Uint32(data[end:]); got != want {
		return nil, secErr("header", "CRC %08x, stored %08x: %w", got, want, ErrCorrupt)
	}
	secs := make([]section, n)
	prevEnd := uint64(end + 8)
	for i := range secs {
		e := data[headerSize+tocEntrySize*i:]
		s := section{
			tag:    string(e[0:4]),
			crc:    binary.LittleEndian.Uint32(e[4:]),
			offset: binary.LittleEndian.Uint64(e[8:]),
			length: binary.LittleEndian.Uint64(e[16:]),
		}
		if s.tag != sectionTags[i] {
			return nil, secErr("header", "section %d is %q, want %q: %w", i, s.tag, sectionTags[i], ErrCorrupt)
		}
		if s.offset < prevEnd || s.offset%8 != 0 || s.length > uint64(len(data)) || s.offset > uint64(len(data))-s.length {
			return nil, secErr(s.tag, "offset %d length %d outside the file of %d bytes or misplaced (truncated?): %w", s.offset, s.length, len(data), ErrCorrupt)
		}
		prevEnd = s.offset + s.length
		secs[i] = s
	}
	if prevEnd != uint64(len(data)) {
		return nil, secErr("header", "%d bytes after the last section (the file ends with it): %w", uint64(len(data))-prevEnd, ErrCorrupt)
	}
	return secs, nil
}

func encodeMeta(m *Meta) []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // Meta has only plain fields
	}
	return append(b, '\n')
}
