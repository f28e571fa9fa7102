package index

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/bits"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"
)

// Reader is an open index. Postings stay in the memory-mapped file; a
// Reader is immutable and safe for concurrent queries.
type Reader struct {
	path    string
	data    []byte
	release func() error
	meta    Meta
	secs    []section
	sec     [numSections][]byte
	width   int

	vocabOnce sync.Once
	vocab     map[string]uint32
	pool      sync.Pool // *scratch
}

// termInfo is one decoded TERM entry.
type termInfo struct {
	docOff uint64
	docLen uint32
	df     uint32
	impOff uint64
	dense  uint32
	maxImp uint16
}

// Open maps dir/index.spl and checks its structure: header, TOC, META,
// section sizes and every term's bitmap header (O(V + containers)). It
// does not check CRCs or posting contents: call Validate for that before
// trusting a file of unknown origin.
func Open(dir string) (*Reader, error) {
	path := filepath.Join(dir, FileName)
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	r, err := newReader(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	r.path, r.release = path, release
	return r, nil
}

// OpenBytes reads an index from an in-memory image of index.spl.
func OpenBytes(data []byte) (*Reader, error) { return newReader(data) }

func newReader(data []byte) (*Reader, error) {
	secs, err := decodeHeader(data)
	if err != nil {
		return nil, err
	}
	r := &Reader{data: data, secs: secs}
	for i, s := range secs {
		r.sec[i] = data[s.offset : s.offset+s.length : s.offset+s.length]
	}
	if err := json.Unmarshal(r.sec[secMeta], &r.meta); err != nil {
		return nil, secErr("META", "decode: %v: %w", err, ErrCorrupt)
	}
	if err := r.meta.check(); err != nil {
		return nil, secErr("META", "%v: %w", err, ErrCorrupt)
	}
	m := &r.meta
	r.width = m.impactWidth()
	if got, want := uint64(len(r.sec[secTerm])), uint64(m.NumTerms)*termSize; got != want {
		return nil, secErr("TERM", "%d bytes, want %d for %d terms: %w", got, want, m.NumTerms, ErrCorrupt)
	}
	if got, want := uint64(len(r.sec[secImps])), uint64(m.NumPostings)*uint64(r.width); got != want {
		return nil, secErr("IMPS", "%d bytes, want %d for %d postings: %w", got, want, m.NumPostings, ErrCorrupt)
	}
	if got, want := uint64(len(r.sec[secRmax])), uint64(m.DenseTerms)*uint64(m.NumBlocks)*uint64(r.width); got != want {
		return nil, secErr("RMAX", "%d bytes, want %d for %d dense terms: %w", got, want, m.DenseTerms, ErrCorrupt)
	}
	if len(r.sec[secDids]) < 8*(m.NumDocs+1) {
		return nil, secErr("DIDS", "%d bytes, too short for %d offsets: %w", len(r.sec[secDids]), m.NumDocs+1, ErrCorrupt)
	}
	if v := r.sec[secVocb]; len(v) < 4 {
		return nil, secErr("VOCB", "%d bytes, too short: %w", len(v), ErrCorrupt)
	} else if n := binary.LittleEndian.Uint32(v); n != 0 && (int(n) != m.NumTerms || uint64(len(v)) < 4+4*(uint64(n)+1)) {
		return nil, secErr("VOCB", "%d tokens for %d terms in %d bytes: %w", n, m.NumTerms, len(v), ErrCorrupt)
	}
	var docOff, impOff uint64
	dense := uint32(0)
	for t := 0; t < m.NumTerms; t++ {
		ti := r.termInfo(uint32(t))
		if ti.docOff != docOff || ti.impOff != impOff {
			return nil, secErr("TERM", "term %d: docs offset %d impacts start %d, want %d and %d: %w", t, ti.docOff, ti.impOff, docOff, impOff, ErrCorrupt)
		}
		docOff += uint64(ti.docLen)
		impOff += uint64(ti.df)
		if docOff > uint64(len(r.sec[secDocs])) || impOff > uint64(m.NumPostings) {
			return nil, secErr("TERM", "term %d: postings beyond the DOCS or IMPS section: %w", t, ErrCorrupt)
		}
		wantDense := ti.df > 0 && int(ti.df) >= m.NumBlocks
		if wantDense != (ti.dense != noDense) || (wantDense && ti.dense != dense) {
			return nil, secErr("TERM", "term %d: dense rank %d, want %v rank %d: %w", t, ti.dense, wantDense, dense, ErrCorrupt)
		}
		if wantDense {
			dense++
		}
		if (ti.df == 0) != (ti.maxImp == 0) || int(ti.maxImp) > m.maxImpact() {
			return nil, secErr("TERM", "term %d: max impact %d with df %d: %w", t, ti.maxImp, ti.df, ErrCorrupt)
		}
		if ti.df == 0 {
			if ti.docLen != 0 {
				return nil, secErr("TERM", "term %d: %d bitmap bytes without postings: %w", t, ti.docLen, ErrCorrupt)
			}
			continue
		}
		if err := checkBitmapHeader(r.bitmap(ti), int(ti.df), m.NumDocs); err != nil {
			return nil, secErr("DOCS", "term %d: %v: %w", t, err, ErrCorrupt)
		}
	}
	if docOff != uint64(len(r.sec[secDocs])) || impOff != uint64(m.NumPostings) || int(dense) != m.DenseTerms {
		return nil, secErr("TERM", "terms cover %d DOCS bytes, %d postings, %d dense terms; want %d, %d, %d: %w",
			docOff, impOff, dense, len(r.sec[secDocs]), m.NumPostings, m.DenseTerms, ErrCorrupt)
	}
	return r, nil
}

// checkBitmapHeader checks a roaring portable bitmap's header against its
// length: cookie, container count, keys, cardinalities and offsets.
func checkBitmapHeader(bm []byte, df, numDocs int) error {
	if len(bm) < 8 {
		return fmt.Errorf("bitmap of %d bytes is too short", len(bm))
	}
	cookie := binary.LittleEndian.Uint32(bm)
	if cookie&0xFFFF == roaringCookieRuns {
		return fmt.Errorf("run containers are not supported")
	}
	if cookie != roaringCookie {
		return fmt.Errorf("bad roaring cookie %d", cookie)
	}
	nc := uint64(binary.LittleEndian.Uint32(bm[4:]))
	if nc == 0 || 8+8*nc > uint64(len(bm)) {
		return fmt.Errorf("%d containers do not fit in %d bytes", nc, len(bm))
	}
	pos := 8 + 8*nc
	total, lastKey := 0, -1
	maxKey := (numDocs - 1) >> 16
	for c := uint64(0); c < nc; c++ {
		key := int(binary.LittleEndian.Uint16(bm[8+4*c:]))
		card := int(binary.LittleEndian.Uint16(bm[10+4*c:])) + 1
		off := uint64(binary.LittleEndian.Uint32(bm[8+4*nc+4*c:]))
		if key <= lastKey || key > maxKey {
			return fmt.Errorf("container %d: key %d after %d (largest possible %d)", c, key, lastKey, maxKey)
		}
		lastKey = key
		if off != pos {
			return fmt.Errorf("container %d: offset %d, want %d", c, off, pos)
		}
		pos += uint64(containerBytes(card))
		total += card
	}
	if pos != uint64(len(bm)) {
		return fmt.Errorf("containers end at %d of %d bytes", pos, len(bm))
	}
	if total != df {
		return fmt.Errorf("cardinality %d, df %d", total, df)
	}
	return nil
}

func containerBytes(card int) int {
	if card > arrayMaxCard {
		return bitmapBytes
	}
	return 2 * card
}

// Close unmaps the file. Queries must have finished.
func (r *Reader) Close() error {
	if r.release == nil {
		return nil
	}
	err := r.release()
	r.release, r.data = nil, nil
	return err
}

// Meta returns the index's settings and counts.
func (r *Reader) Meta() Meta { return r.meta }

// NumDocs returns the number of documents.
func (r *Reader) NumDocs() int { return r.meta.NumDocs }

// NumTerms returns the vocabulary size.
func (r *Reader) NumTerms() int { return r.meta.NumTerms }

func (r *Reader) termInfo(t uint32) termInfo {
	e := r.sec[secTerm][int(t)*termSize:]
	return termInfo{
		docOff: binary.LittleEndian.Uint64(e[0:]),
		docLen: binary.LittleEndian.Uint32(e[8:]),
		df:     binary.LittleEndian.Uint32(e[12:]),
		impOff: binary.LittleEndian.Uint64(e[16:]),
		dense:  binary.LittleEndian.Uint32(e[24:]),
		maxImp: binary.LittleEndian.Uint16(e[28:]),
	}
}

func (r *Reader) bitmap(ti termInfo) []byte {
	return r.sec[secDocs][ti.docOff : ti.docOff+uint64(ti.docLen)]
}

func (r *Reader) impacts(ti termInfo) []byte {
	w := uint64(r.width)
	return r.sec[secImps][ti.impOff*w : (ti.impOff+uint64(ti.df))*w]
}

func (r *Reader) rmaxRow(ti termInfo) []byte {
	if ti.dense == noDense {
		return nil
	}
	n := uint64(r.meta.NumBlocks) * uint64(r.width)
	return r.sec[secRmax][uint64(ti.dense)*n : (uint64(ti.dense)+1)*n]
}

// TermStats returns term t's document frequency and largest impact
// (0, 0 for an unknown term).
func (r *Reader) TermStats(t uint32) (df int, maxImpact int) {
	if int64(t) >= int64(r.meta.NumTerms) {
		return 0, 0
	}
	ti := r.termInfo(t)
	return int(ti.df), int(ti.maxImp)
}

// DocID returns the external id of doc number d ("" when d is out of
// range or the DIDS section is corrupt; Validate reports the latter).
func (r *Reader) DocID(d uint32) string {
	n := r.meta.NumDocs
	if int64(d) >= int64(n) {
		return ""
	}
	s := r.sec[secDids]
	strs := s[8*(n+1):]
	a := binary.LittleEndian.Uint64(s[8*d:])
	b := binary.LittleEndian.Uint64(s[8*d+8:])
	if a > b || b > uint64(len(strs)) {
		return ""
	}
	return string(strs[a:b])
}

// HasVocab reports whether the index names its terms.
func (r *Reader) HasVocab() bool { return binary.LittleEndian.Uint32(r.sec[secVocb]) != 0 }

// Token returns the vocabulary string of term t.
func (r *Reader) Token(t uint32) (string, bool) {
	v := r.sec[secVocb]
	n := binary.LittleEndian.Uint32(v)
	if t >= n {
		return "", false
	}
	strs := v[4+4*(n+1):]
	a := binary.LittleEndian.Uint32(v[4+4*t:])
	b := binary.LittleEndian.Uint32(v[8+4*t:])
	if a > b || uint64(b) > uint64(len(strs)) {
		return "", false
	}
	return string(strs[a:b]), true
}

// Term returns the id of vocabulary token tok. The first call builds a
// map of the vocabulary (O(V) heap).
func (r *Reader) Term(tok string) (uint32, bool) {
	r.vocabOnce.Do(func() {
		n := binary.LittleEndian.Uint32(r.sec[secVocb])
		r.vocab = make(map[string]uint32, n)
		for t := uint32(0); t < n; t++ {
			if s, ok := r.Token(t); ok {
				if _, dup := r.vocab[s]; !dup {
					r.vocab[s] = t
				}
			}
		}
	})
	t, ok := r.vocab[tok]
	return t, ok
}

// SectionInfo describes one section for inspection.
type SectionInfo struct {
	Tag    string
	Offset uint64
	Length uint64
	CRC    uint32
}

// Sections returns the table of contents.
func (r *Reader) Sections() []SectionInfo {
	out := make([]SectionInfo, len(r.secs))
	for i, s := range r.secs {
		out[i] = SectionInfo{Tag: s.tag, Offset: s.offset, Length: s.length, CRC: s.crc}
	}
	return out
}

// Size returns the size of index.spl in bytes.
func (r *Reader) Size() int64 { return int64(len(r.data)) }

// Validate checks every section's CRC and every invariant of
// docs/format/index.md, reading the whole file: O(file size). The error
// names the section at fault and wraps ErrCorrupt.
func (r *Reader) Validate() error {
	for i, s := range r.secs {
		if got := crc32.ChecksumIEEE(r.sec[i]); got != s.crc {
			return secErr(s.tag, "CRC %08x, stored %08x: %w", got, s.crc, ErrCorrupt)
		}
	}
	m := &r.meta
	maxImp := m.maxImpact()
	row := make([]int, m.NumBlocks)
	for t := 0; t < m.NumTerms; t++ {
		ti := r.termInfo(uint32(t))
		if ti.df == 0 {
			continue
		}
		bm := r.bitmap(ti)
		docs, err := decodeBitmap(bm, int(ti.df), m.NumDocs)
		if err != nil {
			return secErr("DOCS", "term %d: %v: %w", t, err, ErrCorrupt)
		}
		var rb roaring.Bitmap // independent check with the roaring library
		if _, err := rb.FromBuffer(bm); err != nil {
			return secErr("DOCS", "term %d: roaring: %v: %w", t, err, ErrCorrupt)
		}
		if err := rb.Validate(); err != nil || rb.GetCardinality() != uint64(ti.df) {
			return secErr("DOCS", "term %d: roaring validation (%v) or cardinality %d ≠ df %d: %w", t, err, rb.GetCardinality(), ti.df, ErrCorrupt)
		}
		imps := r.impacts(ti)
		best := 0
		clear(row)
		for i, d := range docs {
			imp := r.impactAt(imps, i)
			if imp < 1 || imp > maxImp {
				return secErr("IMPS", "term %d posting %d: impact %d not in 1..%d: %w", t, i, imp, maxImp, ErrCorrupt)
			}
			best = max(best, imp)
			b := int(d) / m.BlockSize
			row[b] = max(row[b], imp)
		}
		if best != int(ti.maxImp) {
			return secErr("TERM", "term %d: max impact %d, postings say %d: %w", t, ti.maxImp, best, ErrCorrupt)
		}
		if rm := r.rmaxRow(ti); rm != nil {
			for b, want := range row {
				if got := r.impactAt(rm, b); got != want {
					return secErr("RMAX", "term %d block %d: max %d, postings say %d: %w", t, b, got, want, ErrCorrupt)
				}
			}
		}
	}
	if err := validateStrings(r.sec[secDids], m.NumDocs, 8, true); err != nil {
		return secErr("DIDS", "%v: %w", err, ErrCorrupt)
	}
	v := r.sec[secVocb]
	if n := int(binary.LittleEndian.Uint32(v)); n > 0 {
		if err := validateStrings(v[4:], n, 4, true); err != nil {
			return secErr("VOCB", "%v: %w", err, ErrCorrupt)
		}
	} else if len(v) != 4 {
		return secErr("VOCB", "%d bytes after an empty vocabulary: %w", len(v)-4, ErrCorrupt)
	}
	return nil
}

func (r *Reader) impactAt(imps []byte, i int) int {
	if r.width == 1 {
		return int(imps[i])
	}
	return int(binary.LittleEndian.Uint16(imps[2*i:]))
}

// validateStrings checks an offsets+bytes string table of n strings with
// offsets of width w: monotone, covering the bytes exactly, non-empty,
// UTF-8 and unique.
func validateStrings(s []byte, n, w int, unique bool) error {
	get := func(i int) uint64 {
		if w == 8 {
			return binary.LittleEndian.Uint64(s[8*i:])
		}
		return uint64(binary.LittleEndian.Uint32(s[4*i:]))
	}
	if len(s) < w*(n+1) {
		return fmt.Errorf("%d bytes, too short for %d offsets", len(s), n+1)
	}
	strs := s[w*(n+1):]
	if get(0) != 0 || get(n) != uint64(len(strs)) {
		return fmt.Errorf("offsets span %d..%d, want 0..%d", get(0), get(n), len(strs))
	}
	seen := make(map[string]int, n)
	for i := 0; i < n; i++ {
		a, b := get(i), get(i+1)
		if a >= b || b > uint64(len(strs)) {
			return fmt.Errorf("string %d: offsets %d..%d empty or out of order", i, a, b)
		}
		str := string(strs[a:b])
		if !utf8.ValidString(str) {
			return fmt.Errorf("string %d is not UTF-8", i)
		}
		if j, dup := seen[str]; dup && unique {
			return fmt.Errorf("string %d repeats string %d (%q)", i, j, str)
		}
		seen[str] = i
	}
	return nil
}

// decodeBitmap decodes a bitmap whose header passed checkBitmapHeader and
// checks its containers: arrays strictly increasing, bitmap popcounts
// equal to cardinalities, all doc numbers < numDocs.
func decodeBitmap(bm []byte, df, numDocs int) ([]uint32, error) {
	if err := checkBitmapHeader(bm, df, numDocs); err != nil {
		return nil, err
	}
	nc := int(binary.LittleEndian.Uint32(bm[4:]))
	out := make([]uint32, 0, df)
	for c := 0; c < nc; c++ {
		key := uint32(binary.LittleEndian.Uint16(bm[8+4*c:])) << 16
		card := int(binary.LittleEndian.Uint16(bm[10+4*c:])) + 1
		off := int(binary.LittleEndian.Uint32(bm[8+4*nc+4*c:]))
		data := bm[off : off+containerBytes(card)]
		n0 := len(out)
		if card <= arrayMaxCard {
			prev := -1
			for i := 0; i < card; i++ {
				lo := int(binary.LittleEndian.Uint16(data[2*i:]))
				if lo <= prev {
					return nil, fmt.Errorf("array container %d not strictly increasing at %d", c, i)
				}
				prev = lo
				out = append(out, key|uint32(lo))
			}
		} else {
			for w := 0; w < 1024; w++ {
				word := binary.LittleEndian.Uint64(data[8*w:])
				for word != 0 {
					out = append(out, key|uint32(w*64+bits.TrailingZeros64(word)))
					word &= word - 1
				}
			}
			if len(out)-n0 != card {
				return nil, fmt.Errorf("bitmap container %d has %d bits set, cardinality %d", c, len(out)-n0, card)
			}
		}
		if last := out[len(out)-1]; int64(last) >= int64(numDocs) {
			return nil, fmt.Errorf("doc %d ≥ %d documents", last, numDocs)
		}
	}
	return out, nil
}
