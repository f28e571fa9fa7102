package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// endDoc is the doc number of an exhausted cursor (doc numbers are < N ≤ 2³²−1).
const endDoc = math.MaxUint32

// chunkSize is the number of postings per chunk (the last chunk of a term
// may hold fewer).
const chunkSize = 128

// skipEntrySize is the size of one chunk directory entry: last doc
// (uint32) and the chunk's data offset (uint32).
const skipEntrySize = 8

// maxRiceK bounds the Rice parameter: gaps are < 2³², so larger k never helps.
const maxRiceK = 31

// numChunks returns ⌈df / chunkSize⌉.
func numChunks(df int) int { return (df + chunkSize - 1) / chunkSize }

// bitWriter appends bits least-significant first.
type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) write(v uint64, n uint) { // n ≤ 32
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

// zeros writes n zero bits.
func (w *bitWriter) zeros(n uint64) {
	for n > 0 {
		m := min(n, 32)
		w.write(0, uint(m))
		n -= m
	}
}

func (w *bitWriter) flush() {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
}

// riceCost returns the bits of Rice-coding gaps (summing to sum) with k.
func riceCost(gaps []uint32, k uint) uint64 {
	c := uint64(len(gaps)) * uint64(k+1)
	for _, g := range gaps {
		c += uint64(g >> k)
	}
	return c
}

// bestRice picks the Rice parameter of gaps: the best of the three values
// around log2(mean·ln 2), the optimum for geometric gaps.
func bestRice(gaps []uint32) uint {
	var sum uint64
	for _, g := range gaps {
		sum += uint64(g)
	}
	k0 := 0
	if m := float64(sum) / float64(len(gaps)) * math.Ln2; m >= 1 {
		k0 = int(math.Log2(m))
	}
	best, bestK := uint64(math.MaxUint64), uint(0)
	for k := max(0, k0-1); k <= min(maxRiceK, k0+1); k++ {
		if c := riceCost(gaps, uint(k)); c < best {
			best, bestK = c, uint(k)
		}
	}
	return bestK
}

// appendTerm appends the encoding of one term's postings (docs strictly
// increasing, impacts in 1..maxImpact beside them) to out: the chunk
// directory, then each chunk (see docs/format/index.md). It returns the
// extended slice, or an error when a chunk offset overflows uint32.
func appendTerm(out []byte, docs []uint32, imps []uint16, width int) ([]byte, error) {
	start := len(out)
	nc := numChunks(len(docs))
	out = append(out, make([]byte, skipEntrySize*nc)...)
	dataStart := len(out)
	gaps := make([]uint32, 0, chunkSize)
	var bw bitWriter
	prev := int64(-1)
	for c := 0; c < nc; c++ {
		lo, hi := c*chunkSize, min(len(docs), (c+1)*chunkSize)
		off := len(out) - dataStart
		if off > math.MaxUint32 {
			return nil, fmt.Errorf("postings of a term exceed 4 GiB")
		}
		binary.LittleEndian.PutUint32(out[start+skipEntrySize*c:], docs[hi-1])
		binary.LittleEndian.PutUint32(out[start+skipEntrySize*c+4:], uint32(off))
		gaps = gaps[:0]
		for _, d := range docs[lo:hi] {
			gaps = append(gaps, uint32(int64(d)-prev-1))
			prev = int64(d)
		}
		k := bestRice(gaps)
		out = append(out, byte(k))
		for _, imp := range imps[lo:hi] {
			if width == 1 {
				out = append(out, byte(imp))
			} else {
				out = binary.LittleEndian.AppendUint16(out, imp)
			}
		}
		bw.buf = out
		for _, g := range gaps {
			bw.zeros(uint64(g >> k))
			bw.write(1, 1)
			bw.write(uint64(g)&(1<<k-1), k)
		}
		bw.flush()
		out = bw.buf
	}
	return out, nil
}

// termPostings is one term's encoded postings inside the mapped file.
type termPostings struct {
	dir   []byte // chunk directory, nc entries
	data  []byte // chunk data
	nc    int
	df    int
	width int
}

func (p *termPostings) lastDoc(c int) uint32 {
	return binary.LittleEndian.Uint32(p.dir[skipEntrySize*c:])
}

func (p *termPostings) chunkOff(c int) int {
	return int(binary.LittleEndian.Uint32(p.dir[skipEntrySize*c+4:]))
}

// chunk returns chunk c's bytes and its number of postings.
func (p *termPostings) chunk(c int) ([]byte, int) {
	end := len(p.data)
	if c+1 < p.nc {
		end = p.chunkOff(c + 1)
	}
	n := chunkSize
	if c == p.nc-1 {
		n = p.df - c*chunkSize
	}
	return p.data[p.chunkOff(c):end], n
}

// firstDocBase returns the doc before chunk c's first (−1 for chunk 0).
func (p *termPostings) base(c int) int64 {
	if c == 0 {
		return -1
	}
	return int64(p.lastDoc(c - 1))
}

// decodeChunk decodes chunk c into docs and imps (len ≥ n) and returns n.
// The last doc decoded must be the directory's. With strict it also
// checks what Validate needs: the stream ends in the chunk's last byte with
// zero padding, the Rice parameter is ≤ 31. A corrupt chunk yields an
// error, never an out-of-range read.
func (p *termPostings) decodeChunk(c int, docs []uint32, imps []uint16, strict bool) (int, error) {
	b, n := p.chunk(c)
	if len(b) < 1+n*p.width {
		return 0, fmt.Errorf("chunk %d: %d bytes, too short for %d impacts", c, len(b), n)
	}
	k := uint(b[0])
	if k > maxRiceK {
		return 0, fmt.Errorf("chunk %d: Rice parameter %d > %d", c, k, maxRiceK)
	}
	if p.width == 1 {
		for i, v := range b[1 : 1+n] {
			imps[i] = uint16(v)
		}
	} else {
		for i := range n {
			imps[i] = binary.LittleEndian.Uint16(b[1+2*i:])
		}
	}
	s := b[1+n*p.width:]
	nbits := uint64(len(s)) * 8
	pos := uint64(0)
	prev := p.base(c)
	mask := uint64(1)<<k - 1
	for i := range n {
		// unary part: zeros up to a one bit
		var q uint64
		for {
			if pos >= nbits {
				return 0, fmt.Errorf("chunk %d: bit stream ends inside posting %d", c, i)
			}
			w, valid := peek(s, pos)
			if w == 0 {
				q += uint64(valid)
				pos += uint64(valid)
				continue
			}
			tz := uint64(bits.TrailingZeros64(w))
			q += tz
			pos += tz + 1
			break
		}
		if q > math.MaxUint32 {
			return 0, fmt.Errorf("chunk %d: gap overflow at posting %d", c, i)
		}
		var low uint64
		if k > 0 {
			if pos+uint64(k) > nbits {
				return 0, fmt.Errorf("chunk %d: bit stream ends inside posting %d", c, i)
			}
			w, _ := peek(s, pos)
			low = w & mask
			pos += uint64(k)
		}
		d := prev + 1 + int64(q<<k|low)
		if d > int64(p.lastDoc(c)) {
			return 0, fmt.Errorf("chunk %d: doc %d after last doc %d", c, d, p.lastDoc(c))
		}
		docs[i] = uint32(d)
		prev = d
	}
	if prev != int64(p.lastDoc(c)) {
		return 0, fmt.Errorf("chunk %d: last doc %d, directory says %d", c, prev, p.lastDoc(c))
	}
	if strict {
		if (pos+7)/8 != uint64(len(s)) {
			return 0, fmt.Errorf("chunk %d: stream of %d bits in %d bytes", c, pos, len(s))
		}
		if pos%8 != 0 && s[len(s)-1]>>(pos%8) != 0 {
			return 0, fmt.Errorf("chunk %d: non-zero padding bits", c)
		}
	}
	return n, nil
}

// peek returns up to 64 bits of s from bit pos (LSB first) and how many of
// them are real (the rest are zero).
func peek(s []byte, pos uint64) (uint64, uint) {
	i, sh := pos>>3, uint(pos&7)
	if i+8 <= uint64(len(s)) {
		return binary.LittleEndian.Uint64(s[i:]) >> sh, 64 - sh
	}
	var w uint64
	for j := i; j < uint64(len(s)); j++ {
		w |= uint64(s[j]) << (8 * (j - i))
	}
	return w >> sh, uint(8*(uint64(len(s))-i)) - sh
}

// cursor walks one term's postings in doc order, one decoded chunk at a
// time. It moves forward with next/advance; seek may also move backward
// (block-max scoring visits blocks out of order). A corrupt chunk panics
// with the decoding error; SearchPrepared turns that into ErrCorrupt.
type cursor struct {
	p    termPostings
	q    uint64 // quantised query weight
	ub   uint64 // q · max impact of the term
	rmax []byte // block maxima row (dense terms), else nil

	c    int // decoded chunk, −1 none
	n    int // postings in it
	i    int // position in it
	doc  uint32
	docs [chunkSize]uint32
	imps [chunkSize]uint16
}

func (c *cursor) init(p termPostings) {
	c.p = p
	c.reset()
}

// reset positions the cursor on the first posting.
func (c *cursor) reset() {
	c.c = -1
	c.load(0)
}

// load decodes chunk ch and positions on its first posting (endDoc past
// the last chunk).
func (c *cursor) load(ch int) {
	if ch >= c.p.nc {
		c.c, c.n, c.i, c.doc = c.p.nc, 0, 0, endDoc
		return
	}
	if ch != c.c {
		n, err := c.p.decodeChunk(ch, c.docs[:], c.imps[:], false)
		if err != nil {
			panic(err)
		}
		c.c, c.n = ch, n
	}
	c.i = 0
	c.doc = c.docs[0]
}

// impact returns the impact of the current posting.
func (c *cursor) impact() uint64 { return uint64(c.imps[c.i]) }

// next moves to the next posting.
func (c *cursor) next() {
	if c.doc == endDoc {
		return
	}
	c.i++
	if c.i < c.n {
		c.doc = c.docs[c.i]
		return
	}
	c.load(c.c + 1)
}

// advance moves to the first posting with doc ≥ target (no move when the
// current doc already is).
func (c *cursor) advance(target uint32) {
	if c.doc >= target {
		return
	}
	if target > c.p.lastDoc(c.c) {
		// gallop over the directory, then binary search
		lo, step := c.c+1, 1
		hi := lo
		for hi < c.p.nc && c.p.lastDoc(hi) < target {
			lo = hi + 1
			hi += step
			step <<= 1
		}
		hi = min(hi, c.p.nc)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if c.p.lastDoc(m) < target {
				lo = m + 1
			} else {
				hi = m
			}
		}
		c.load(lo)
		if c.doc >= target {
			return
		}
	}
	c.within(target)
}

// within moves inside the decoded chunk to the first doc ≥ target, which
// the chunk holds (target ≤ its last doc).
func (c *cursor) within(target uint32) {
	i := c.i
	for c.docs[i] < target {
		i++
	}
	c.i, c.doc = i, c.docs[i]
}

// seek positions on the first posting with doc ≥ target, forward or
// backward.
func (c *cursor) seek(target uint32) {
	if c.c < c.p.nc && c.c >= 0 && target <= c.p.lastDoc(c.c) && (c.c == 0 || target > c.p.lastDoc(c.c-1)) {
		if target < c.doc {
			c.i = 0
			c.doc = c.docs[0]
		}
		if c.doc < target {
			c.within(target)
		}
		return
	}
	lo, hi := 0, c.p.nc
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.p.lastDoc(m) < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	c.load(lo)
	if c.doc < target {
		c.within(target)
	}
}

// accumulate adds q·impact of every posting with doc in [s, e) to
// acc[doc−s]; the cursor may be anywhere before and ends on the first
// posting ≥ e.
func (c *cursor) accumulate(s, e uint32, acc []uint64) {
	c.seek(s)
	q := c.q
	for c.doc < e {
		// the rest of this chunk, without per-posting bookkeeping
		docs, imps := c.docs[c.i:c.n], c.imps[c.i:c.n]
		j := 0
		for ; j < len(docs) && docs[j] < e; j++ {
			acc[docs[j]-s] += q * uint64(imps[j])
		}
		if j < len(docs) {
			c.i += j
			c.doc = c.docs[c.i]
			return
		}
		c.load(c.c + 1)
	}
}
