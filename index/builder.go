package index

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/sparse"
)

// TermWeight is one non-zero entry of a sparse vector (the type package
// sparse defines for every producer and consumer of vectors).
type TermWeight = sparse.TermWeight

// Options configure a Builder.
type Options struct {
	// NumTerms is the vocabulary size V; terms must be < V. 0 means
	// len(Vocab) when a vocabulary is given, else one more than the
	// largest term added, which must then be < MaxTerms.
	NumTerms int
	// MaxTerms bounds the term ids when neither NumTerms nor Vocab does
	// (the term table is sized by the largest id: one line naming term
	// 999 999 999 would otherwise take gigabytes). 0 means
	// DefaultMaxTerms.
	MaxTerms int
	// Vocab optionally names every term (unique strings), so that vectors
	// and queries may use tokens instead of ids.
	Vocab []string
	// QuantBits is the impact width, 1..16 (default 8).
	QuantBits int
	// BlockSize is the number of documents per block of the block-max
	// maxima (default DefaultBlockSize).
	BlockSize int
	// MaxWeight, when > 0, fixes the quantisation scale to
	// MaxWeight/(2^QuantBits−1); larger weights are clipped (and counted).
	// 0 means the largest weight added.
	MaxWeight float64
	// Fingerprint is an opaque model/vocabulary identity stored in META.
	Fingerprint string
	// Workers is how many goroutines quantise and encode the postings
	// when the index is written (the config key threads); values below 1
	// mean 1. The file does not depend on it: each worker encodes a
	// contiguous range of terms into its own buffers, which are written in
	// term order. Adding documents and writing the file stay serial.
	Workers int
}

// DefaultBlockSize is the block size of the block-max maxima when Options
// leave it 0: small blocks keep the bounds of BlockMax tight on
// collections whose documents are not clustered (tools/pruning measures
// the share of blocks that can reach the k-th score by block size;
// docs/performance.md).
const DefaultBlockSize = 8

// DefaultMaxTerms bounds term ids without a vocabulary: 2^20, over 30
// times BERT's 30 522 WordPiece ids; a term table this size takes about
// 100 MB while the index is built.
const DefaultMaxTerms = 1 << 20

// Builder accumulates documents in memory and writes an index directory.
// Memory: 8 bytes per posting (doc number and float32 weight) plus the ids.
// A Builder is not safe for concurrent use.
type Builder struct {
	opts    Options
	ids     []string
	seen    map[string]uint32
	docs    [][]uint32  // term → doc numbers, increasing
	weights [][]float32 // term → weights beside docs
	maxW    float64
	dropped int64
	vocab   map[string]uint32
}

// NewBuilder checks opts and returns an empty Builder.
func NewBuilder(opts Options) (*Builder, error) {
	if opts.QuantBits == 0 {
		opts.QuantBits = 8
	}
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.QuantBits < 1 || opts.QuantBits > 16 {
		return nil, fmt.Errorf("new index builder: quant bits %d not in 1..16", opts.QuantBits)
	}
	if opts.BlockSize < 1 {
		return nil, fmt.Errorf("new index builder: block size %d < 1", opts.BlockSize)
	}
	if opts.MaxWeight < 0 || math.IsNaN(opts.MaxWeight) || math.IsInf(opts.MaxWeight, 0) {
		return nil, fmt.Errorf("new index builder: max weight %v not finite and ≥ 0", opts.MaxWeight)
	}
	if len(opts.Vocab) > 0 {
		if opts.NumTerms == 0 {
			opts.NumTerms = len(opts.Vocab)
		}
		if opts.NumTerms != len(opts.Vocab) {
			return nil, fmt.Errorf("new index builder: %d vocabulary tokens for %d terms", len(opts.Vocab), opts.NumTerms)
		}
	}
	if opts.NumTerms < 0 || opts.NumTerms > math.MaxUint32 {
		return nil, fmt.Errorf("new index builder: num terms %d out of range", opts.NumTerms)
	}
	if opts.MaxTerms == 0 {
		opts.MaxTerms = DefaultMaxTerms
	}
	if opts.MaxTerms < 0 || opts.MaxTerms > math.MaxUint32 {
		return nil, fmt.Errorf("new index builder: max terms %d out of range", opts.MaxTerms)
	}
	b := &Builder{opts: opts, seen: make(map[string]uint32)}
	if len(opts.Vocab) > 0 {
		b.vocab = make(map[string]uint32, len(opts.Vocab))
		for i, tok := range opts.Vocab {
			if tok == "" || !utf8.ValidString(tok) {
				return nil, fmt.Errorf("new index builder: vocabulary token %d is empty or not UTF-8", i)
			}
			if j, dup := b.vocab[tok]; dup {
				return nil, fmt.Errorf("new index builder: vocabulary token %q at %d and %d", tok, j, i)
			}
			b.vocab[tok] = uint32(i)
		}
	}
	b.docs = make([][]uint32, opts.NumTerms)
	b.weights = make([][]float32, opts.NumTerms)
	return b, nil
}

// Term returns the id of vocabulary token tok (false without a vocabulary
// or for an unknown token).
func (b *Builder) Term(tok string) (uint32, bool) {
	t, ok := b.vocab[tok]
	return t, ok
}

// NumDocs returns the number of documents added so far.
func (b *Builder) NumDocs() int { return len(b.ids) }

// Add appends document id with vector vec and returns its doc number
// (0, 1, … in the order added). Entries with weight 0 store nothing.
// It is an error for id to be empty, invalid UTF-8 or already added, for a
// term to repeat or be outside the vocabulary (or ≥ MaxTerms without one),
// or for a weight to be negative, NaN or infinite.
func (b *Builder) Add(id string, vec []TermWeight) (uint32, error) {
	if id == "" || !utf8.ValidString(id) {
		return 0, fmt.Errorf("add doc %q: id empty or not UTF-8", id)
	}
	if d, dup := b.seen[id]; dup {
		return 0, fmt.Errorf("add doc %q: duplicate id (doc %d)", id, d)
	}
	if len(b.ids) == math.MaxUint32 {
		return 0, fmt.Errorf("add doc %q: too many documents", id)
	}
	d := uint32(len(b.ids))
	// Validate first so that a rejected document leaves no posting behind.
	for i, tw := range vec {
		if math.IsNaN(float64(tw.Weight)) || math.IsInf(float64(tw.Weight), 0) {
			return 0, fmt.Errorf("add doc %q: term %d has weight %v", id, tw.Term, tw.Weight)
		}
		if tw.Weight < 0 {
			return 0, fmt.Errorf("add doc %q: term %d has negative weight %v (weights are ≥ 0)", id, tw.Term, tw.Weight)
		}
		if b.opts.NumTerms > 0 && int64(tw.Term) >= int64(b.opts.NumTerms) {
			return 0, fmt.Errorf("add doc %q: term %d outside vocabulary of %d", id, tw.Term, b.opts.NumTerms)
		}
		if b.opts.NumTerms == 0 && int64(tw.Term) >= int64(b.opts.MaxTerms) {
			return 0, fmt.Errorf("add doc %q: term %d ≥ the maximum of %d term ids (give the vocabulary, or raise the maximum: --max-terms)", id, tw.Term, b.opts.MaxTerms)
		}
		for _, prev := range vec[:i] { // vectors are short: quadratic is cheaper than a map
			if prev.Term == tw.Term {
				return 0, fmt.Errorf("add doc %q: term %d twice", id, tw.Term)
			}
		}
	}
	for _, tw := range vec {
		if tw.Weight <= 0 {
			b.dropped++
			continue
		}
		if int(tw.Term) >= len(b.docs) {
			n := int(tw.Term) + 1
			b.docs = append(b.docs, make([][]uint32, n-len(b.docs))...)
			b.weights = append(b.weights, make([][]float32, n-len(b.weights))...)
		}
		b.docs[tw.Term] = append(b.docs[tw.Term], d)
		b.weights[tw.Term] = append(b.weights[tw.Term], tw.Weight)
		if w := float64(tw.Weight); w > b.maxW {
			b.maxW = w
		}
	}
	b.ids = append(b.ids, id)
	b.seen[id] = d
	return d, nil
}

// quantize maps weight w to an impact with the global scale: round half
// away from zero, clipped to maxImp. clipped reports clipping.
func quantize(w float32, scale float64, maxImp int) (imp int, clipped bool) {
	x := math.Round(float64(w) / scale)
	if x > float64(maxImp) {
		return maxImp, true
	}
	if x < 0 {
		return 0, false
	}
	return int(x), false
}

// termPlan is pass one of writing: what each term will occupy.
type termPlan struct {
	df, maxImp     int
	docOff, docLen int // its roaring bitmap in the DOCS buffer
	impOff, impLen int // its impacts in the IMPS buffer
	dense          uint32
}

// Write writes the index directory dir (index.spl and meta.json) through a
// temporary directory and a rename. The Builder may be written again.
func (b *Builder) Write(dir string) (*Meta, error) {
	var meta *Meta
	err := atomicfile.Dir(dir, func(tmp string) error {
		m, err := b.writeFile(filepath.Join(tmp, FileName))
		if err != nil {
			return err
		}
		meta = m
		return os.WriteFile(filepath.Join(tmp, MetaFileName), encodeMeta(m), 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("write index %s: %w", dir, err)
	}
	return meta, nil
}

func (b *Builder) writeFile(path string) (*Meta, error) {
	o := b.opts
	V := len(b.docs)
	if o.NumTerms > V {
		V = o.NumTerms
	}
	N := len(b.ids)
	m := &Meta{
		Format: Version, NumDocs: N, NumTerms: V, QuantBits: o.QuantBits,
		BlockSize: o.BlockSize, NumBlocks: (N + o.BlockSize - 1) / o.BlockSize,
		Fingerprint: o.Fingerprint, DroppedPostings: b.dropped,
	}
	maxImp := m.maxImpact()
	maxW := b.maxW
	if o.MaxWeight > 0 {
		maxW = o.MaxWeight
	}
	m.Scale = 1
	if maxW > 0 {
		m.Scale = maxW / float64(maxImp)
	}
	width := m.impactWidth()

	// Pass one: quantise and encode every term's postings (kept in memory,
	// ≈ 2 bytes per posting); df, max impact and dense rank per term.
	// Workers take contiguous term ranges (about equal in postings), each
	// with its own buffers; offsets are made global afterwards.
	plans := make([]termPlan, V)
	parts := b.encodeTerms(plans, m.Scale, maxImp, width, max(o.Workers, 1))
	var docsLen, impsLen int
	for i := range parts {
		pt := &parts[i]
		if pt.err != nil {
			return nil, pt.err
		}
		for t := pt.lo; t < pt.hi; t++ {
			plans[t].docOff += docsLen
			plans[t].impOff += impsLen
		}
		docsLen += len(pt.docs)
		impsLen += len(pt.imps)
		m.ClippedPostings += pt.clipped
		m.DroppedPostings += pt.dropped
		m.NumPostings += pt.postings
	}
	for t := range plans {
		plans[t].dense = noDense
		if plans[t].df > 0 && plans[t].df >= m.NumBlocks {
			plans[t].dense = uint32(m.DenseTerms)
			m.DenseTerms++
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	secs := make([]section, numSections)
	for i := range secs {
		secs[i].tag = sectionTags[i]
	}
	hdrLen := len(encodeHeader(secs))
	w := &secWriter{bw: bufio.NewWriterSize(f, 1<<20), crc: crc32.NewIEEE()}
	w.pad(hdrLen)

	// META
	w.begin()
	w.write(encodeMeta(m))
	secs[secMeta] = w.end(secs[secMeta])

	// TERM
	w.begin()
	var ent [termSize]byte
	for t := range plans {
		p := plans[t]
		clear(ent[:])
		binary.LittleEndian.PutUint64(ent[0:], uint64(p.docOff))
		binary.LittleEndian.PutUint32(ent[8:], uint32(p.docLen))
		binary.LittleEndian.PutUint32(ent[12:], uint32(p.df))
		binary.LittleEndian.PutUint64(ent[16:], uint64(p.impOff))
		binary.LittleEndian.PutUint32(ent[24:], p.dense)
		binary.LittleEndian.PutUint16(ent[28:], uint16(p.maxImp))
		w.write(ent[:])
	}
	secs[secTerm] = w.end(secs[secTerm])

	// DOCS
	w.begin()
	for _, pt := range parts {
		w.write(pt.docs)
	}
	secs[secDocs] = w.end(secs[secDocs])

	// IMPS
	w.begin()
	for _, pt := range parts {
		w.write(pt.imps)
	}
	secs[secImps] = w.end(secs[secImps])

	// RMAX
	w.begin()
	row := make([]byte, m.NumBlocks*width)
	for t := 0; t < len(b.docs); t++ {
		if plans[t].dense == noDense {
			continue
		}
		clear(row)
		for i, d := range b.docs[t] {
			imp, _ := quantize(b.weights[t][i], m.Scale, maxImp)
			blk := int(d) / m.BlockSize
			if width == 1 {
				row[blk] = max(row[blk], byte(imp))
			} else if uint16(imp) > binary.LittleEndian.Uint16(row[2*blk:]) {
				binary.LittleEndian.PutUint16(row[2*blk:], uint16(imp))
			}
		}
		w.write(row)
	}
	secs[secRmax] = w.end(secs[secRmax])

	// DIDS
	w.begin()
	var off [8]byte
	total := uint64(0)
	for i := 0; i <= N; i++ {
		binary.LittleEndian.PutUint64(off[:], total)
		w.write(off[:])
		if i < N {
			total += uint64(len(b.ids[i]))
		}
	}
	for _, id := range b.ids {
		w.write([]byte(id))
	}
	secs[secDids] = w.end(secs[secDids])

	// VOCB
	w.begin()
	vocab := o.Vocab
	binary.LittleEndian.PutUint32(off[:], uint32(len(vocab)))
	w.write(off[:4])
	if len(vocab) > 0 {
		total := uint32(0)
		for i := 0; i <= len(vocab); i++ {
			binary.LittleEndian.PutUint32(off[:], total)
			w.write(off[:4])
			if i < len(vocab) {
				total += uint32(len(vocab[i]))
			}
		}
		for _, tok := range vocab {
			w.write([]byte(tok))
		}
	}
	secs[secVocb] = w.end(secs[secVocb])

	if w.err != nil {
		return nil, w.err
	}
	if err := w.bw.Flush(); err != nil {
		return nil, err
	}
	hdr := encodeHeader(secs)
	for i := range secs {
		if got := w.offsets[i]; got != secs[i].offset {
			return nil, fmt.Errorf("section %s written at %d, header says %d (bug)", secs[i].tag, got, secs[i].offset)
		}
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return m, f.Close()
}

// termPart is one worker's share of pass one: terms lo..hi−1, their
// encoded postings and counts (offsets in plans are local to docs, imps).
type termPart struct {
	lo, hi                     int
	docs, imps                 []byte
	clipped, dropped, postings int64
	err                        error
}

// encodeMinPostings is the share of postings below which another worker
// does not pay for its goroutine (a variable so that tests can split small
// indexes).
var encodeMinPostings int64 = 1 << 16

// encodeTerms runs pass one of writeFile over the terms with postings,
// split into at most nw contiguous ranges of about equal postings.
func (b *Builder) encodeTerms(plans []termPlan, scale float64, maxImp, width, nw int) []termPart {
	T := len(b.docs)
	var total int64
	for _, d := range b.docs {
		total += int64(len(d))
	}
	nw = max(1, min(nw, T, int(total/encodeMinPostings)))
	parts := make([]termPart, 0, nw)
	lo := 0
	var acc int64
	for t := range T {
		acc += int64(len(b.docs[t]))
		if len(parts) < nw-1 && acc*int64(nw) >= total*int64(len(parts)+1) {
			parts = append(parts, termPart{lo: lo, hi: t + 1})
			lo = t + 1
		}
	}
	parts = append(parts, termPart{lo: lo, hi: T})
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() { b.encodeRange(&parts[i], plans, scale, maxImp, width) })
	}
	wg.Wait()
	return parts
}

// encodeRange quantises and encodes the postings of terms pt.lo..pt.hi−1.
func (b *Builder) encodeRange(pt *termPart, plans []termPlan, scale float64, maxImp, width int) {
	keptDocs := make([]uint32, 0, 1024)
	keptImps := make([]uint16, 0, 1024)
	for t := pt.lo; t < pt.hi; t++ {
		p := &plans[t]
		keptDocs, keptImps = keptDocs[:0], keptImps[:0]
		for i, d := range b.docs[t] {
			imp, clipped := quantize(b.weights[t][i], scale, maxImp)
			if clipped {
				pt.clipped++
			}
			if imp == 0 {
				pt.dropped++
				continue
			}
			keptDocs = append(keptDocs, d)
			keptImps = append(keptImps, uint16(imp))
			p.maxImp = max(p.maxImp, imp)
		}
		p.df = len(keptDocs)
		p.docOff, p.impOff = len(pt.docs), len(pt.imps)
		if p.df > 0 {
			pt.docs = appendBitmap(pt.docs, keptDocs)
			pt.imps = appendImpacts(pt.imps, keptImps, width)
		}
		p.docLen, p.impLen = len(pt.docs)-p.docOff, len(pt.imps)-p.impOff
		if p.docLen > math.MaxUint32 {
			pt.err = fmt.Errorf("term %d: roaring bitmap of %d bytes exceeds 4 GiB", t, p.docLen)
			return
		}
		pt.postings += int64(p.df)
	}
}

// secWriter writes sections one after another, 8-aligned, with a CRC each.
type secWriter struct {
	bw      *bufio.Writer
	crc     hash.Hash32
	pos     uint64
	start   uint64
	offsets []uint64
	err     error
}

var _ io.Writer = (*secWriter)(nil)

func (w *secWriter) Write(p []byte) (int, error) {
	w.write(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *secWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	_, w.err = w.bw.Write(p)
	w.crc.Write(p)
	w.pos += uint64(len(p))
}

func (w *secWriter) pad(n int) {
	if w.err == nil {
		_, w.err = w.bw.Write(make([]byte, n))
	}
	w.pos += uint64(n)
}

func (w *secWriter) begin() {
	w.pad(int(align8(w.pos) - w.pos))
	w.start = w.pos
	w.offsets = append(w.offsets, w.pos)
	w.crc.Reset()
}

func (w *secWriter) end(s section) section {
	s.length = w.pos - w.start
	s.crc = w.crc.Sum32()
	return s
}
