package index

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
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

	// chunkOff holds, for every term in order, the offset of each impact
	// chunk's data within the term's IMPS bytes (4 bytes per 128
	// postings, built by Open from the chunk headers it checks);
	// chunk0[t] is where term t's entries start (V+1 entries).
	chunkOff []uint32
	chunk0   []uint64
	ranks    *rankIndex // O(1) ranks in bitmap containers

	vocabOnce sync.Once
	vocab     map[string]uint32
	docsOnce  sync.Once
	docs      map[string]uint32 // external id → doc number, built by DocNum
	pool      sync.Pool         // *scratch
}

// termInfo is one decoded TERM entry.
type termInfo struct {
	term           uint32
	docOff, impOff uint64 // start of the term's bytes in DOCS and IMPS
	docLen         uint32
	df             uint32
	dense          uint32
	maxImp         uint16
	impLen         uint64 // IMPS bytes: up to the next term's impOff (not stored)
}

// Open maps dir/index.spl, verifies the CRC-32 of every section and checks
// the structure: header, TOC, META, section sizes, every term's TERM entry,
// roaring header and impact chunk headers (O(V + containers + P/128)).
// Searches use every section, so every CRC is checked: one pass over the
// file at hash/crc32's speed (PCLMUL: 18 GB/s measured on this project's
// 2-core machine, so about 25 ms for the 427 MB 1M-document index when it
// is in the page cache; from a cold disk, the time to read the file, which
// searching would read anyway). Posting contents are not decoded: Validate
// checks every invariant. OpenWith can skip the CRCs.
func Open(dir string) (*Reader, error) { return OpenWith(dir, OpenOptions{}) }

// OpenOptions configure OpenWith.
type OpenOptions struct {
	// NoVerify skips the CRC check (for inspecting a damaged file, or
	// start-up time on a trusted file).
	NoVerify bool
}

// OpenWith is Open with options.
func OpenWith(dir string, o OpenOptions) (*Reader, error) {
	path := filepath.Join(dir, FileName)
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	if !o.NoVerify {
		if err := verifyCRCs(data); err != nil {
			release()
			return nil, fmt.Errorf("open index %s: %w (--no-validate reads it anyway)", dir, err)
		}
	}
	r, err := newReader(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	r.path, r.release = path, release
	return r, nil
}

// verifyCRCs checks the header and then every section's CRC-32.
func verifyCRCs(data []byte) error {
	secs, err := decodeHeader(data)
	if err != nil {
		return err
	}
	for _, s := range secs {
		if got := crc32.ChecksumIEEE(data[s.offset : s.offset+s.length]); got != s.crc {
			return secErr(s.tag, "CRC %08x, stored %08x: %w", got, s.crc, ErrCorrupt)
		}
	}
	return nil
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
	var docOff, impOff, total uint64
	dense := uint32(0)
	// Every chunk has a header of ≥ 2 bytes, so IMPS bounds the directory
	// whatever META claims.
	chunkOff := make([]uint32, 0, min((m.NumPostings+chunkSize-1)/chunkSize, int64(len(r.sec[secImps])/2)))
	chunk0 := make([]uint64, m.NumTerms+1)
	ranks := newRankIndex(len(r.sec[secDocs]))
	for t := 0; t < m.NumTerms; t++ {
		chunk0[t] = uint64(len(chunkOff))
		ti := r.termInfo(uint32(t))
		if ti.docOff != docOff || ti.impOff != impOff {
			return nil, secErr("TERM", "term %d: docs offset %d impacts offset %d, want %d and %d: %w", t, ti.docOff, ti.impOff, docOff, impOff, ErrCorrupt)
		}
		if uint64(ti.docLen) > uint64(len(r.sec[secDocs]))-docOff || ti.impOff > uint64(len(r.sec[secImps])) {
			return nil, secErr("TERM", "term %d: postings beyond the DOCS or IMPS section: %w", t, ErrCorrupt)
		}
		docOff += uint64(ti.docLen)
		impOff += ti.impLen
		total += uint64(ti.df)
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
			if ti.docLen != 0 || ti.impLen != 0 {
				return nil, secErr("TERM", "term %d: %d bitmap bytes and %d impact bytes without postings: %w", t, ti.docLen, ti.impLen, ErrCorrupt)
			}
			continue
		}
		if err := checkBitmapHeader(r.bitmap(ti), int(ti.df), m.NumDocs); err != nil {
			return nil, secErr("DOCS", "term %d: %v: %w", t, err, ErrCorrupt)
		}
		ranks.add(r.bitmap(ti), ti.docOff)
		l := r.impLayout(ti)
		if chunkOff, err = l.check(m.QuantBits, chunkOff); err != nil {
			return nil, secErr("IMPS", "term %d: %v: %w", t, err, ErrCorrupt)
		}
	}
	chunk0[m.NumTerms] = uint64(len(chunkOff))
	if docOff != uint64(len(r.sec[secDocs])) || impOff != uint64(len(r.sec[secImps])) || total != uint64(m.NumPostings) || int(dense) != m.DenseTerms {
		return nil, secErr("TERM", "terms cover %d DOCS bytes, %d IMPS bytes, %d postings, %d dense terms; want %d, %d, %d, %d: %w",
			docOff, impOff, total, dense, len(r.sec[secDocs]), len(r.sec[secImps]), m.NumPostings, m.DenseTerms, ErrCorrupt)
	}
	r.chunkOff, r.chunk0, r.ranks = chunkOff, chunk0, ranks
	return r, nil
}

func (r *Reader) bitmap(ti termInfo) []byte {
	return r.sec[secDocs][ti.docOff : ti.docOff+uint64(ti.docLen)]
}

func (r *Reader) impLayout(ti termInfo) impLayout {
	l := newImpLayout(r.sec[secImps][ti.impOff:ti.impOff+ti.impLen], int(ti.df), r.width)
	if r.chunk0 != nil {
		l.off = r.chunkOff[r.chunk0[ti.term]:r.chunk0[ti.term+1]]
	}
	return l
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

// termInfo decodes TERM entry t. The IMPS length is the distance to the
// next term's impacts offset (the section end for the last term), 0 when
// that is not after this one (Open rejects such a file).
func (r *Reader) termInfo(t uint32) termInfo {
	e := r.sec[secTerm][int(t)*termSize:]
	ti := termInfo{
		term:   t,
		docOff: binary.LittleEndian.Uint64(e[0:]),
		docLen: binary.LittleEndian.Uint32(e[8:]),
		df:     binary.LittleEndian.Uint32(e[12:]),
		impOff: binary.LittleEndian.Uint64(e[16:]),
		dense:  binary.LittleEndian.Uint32(e[24:]),
		maxImp: binary.LittleEndian.Uint16(e[28:]),
	}
	end := uint64(len(r.sec[secImps]))
	if int(t)+1 < r.meta.NumTerms {
		end = binary.LittleEndian.Uint64(r.sec[secTerm][(int(t)+1)*termSize+16:])
	}
	if end > ti.impOff && end <= uint64(len(r.sec[secImps])) {
		ti.impLen = end - ti.impOff
	}
	return ti
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
		imps, err := decodeImpacts(r.impLayout(ti))
		if err != nil {
			return secErr("IMPS", "term %d: %v: %w", t, err, ErrCorrupt)
		}
		best := 0
		clear(row)
		for i, d := range docs {
			imp := int(imps[i])
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

// Postings returns term t's postings in doc order: its doc numbers and
// their quantised impacts (1..2^quant_bits−1), appended to docs[:0] and
// imps[:0]. An unknown term or one without postings gives empty slices.
// Bytes that do not decode (non-increasing or out-of-range doc numbers,
// a bad impact frame, an impact out of range) are errors wrapping
// ErrCorrupt; other corruption is only found by Validate (CRCs). Cost:
// O(df), the whole posting list decoded at once.
func (r *Reader) Postings(t uint32, docs []uint32, imps []uint16) ([]uint32, []uint16, error) {
	docs, imps = docs[:0], imps[:0]
	if int64(t) >= int64(r.meta.NumTerms) {
		return docs, imps, nil
	}
	ti := r.termInfo(t)
	if ti.df == 0 {
		return docs, imps, nil
	}
	d, err := decodeBitmap(r.bitmap(ti), int(ti.df), r.meta.NumDocs)
	if err != nil {
		return docs, imps, secErr("DOCS", "term %d: %v: %w", t, err, ErrCorrupt)
	}
	im, err := decodeImpacts(r.impLayout(ti))
	if err != nil {
		return docs, imps, secErr("IMPS", "term %d: %v: %w", t, err, ErrCorrupt)
	}
	maxImp := uint16(r.meta.maxImpact())
	for i, v := range im {
		if v < 1 || v > maxImp {
			return docs, imps, secErr("IMPS", "term %d posting %d: impact %d not in 1..%d: %w", t, i, v, maxImp, ErrCorrupt)
		}
	}
	return append(docs, d...), append(imps, im...), nil
}
