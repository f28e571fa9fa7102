package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
)

// endDoc is the doc number of an exhausted cursor (doc numbers are < N ≤ 2³²−1).
const endDoc = math.MaxUint32

// chunkSize is the number of impacts per bit-packed chunk (the last chunk
// of a term may hold fewer).
const chunkSize = 128

// numChunks returns ⌈df / chunkSize⌉.
func numChunks(df int) int { return (df + chunkSize - 1) / chunkSize }

// ---- DOCS: roaring portable bitmaps ----

// appendBitmap appends the increasing doc numbers docs in the roaring
// portable format without run containers (cookie 12346): an array
// container for up to 4096 values, else a bitmap container. (The roaring
// library turns full containers into run containers, which the format
// excludes, so the writer is ours; Validate reads the result back with the
// library.)
func appendBitmap(out []byte, docs []uint32) []byte {
	type ctr struct{ key, lo, hi int }
	var cs []ctr
	for i := 0; i < len(docs); {
		key := int(docs[i] >> 16)
		j := i
		for j < len(docs) && int(docs[j]>>16) == key {
			j++
		}
		cs = append(cs, ctr{key, i, j})
		i = j
	}
	start := len(out)
	out = binary.LittleEndian.AppendUint32(out, roaringCookie)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(cs)))
	for _, c := range cs {
		out = binary.LittleEndian.AppendUint16(out, uint16(c.key))
		out = binary.LittleEndian.AppendUint16(out, uint16(c.hi-c.lo-1))
	}
	off := 8 + 8*len(cs)
	for _, c := range cs {
		out = binary.LittleEndian.AppendUint32(out, uint32(off))
		off += containerBytes(c.hi - c.lo)
	}
	for _, c := range cs {
		part := docs[c.lo:c.hi]
		if len(part) <= arrayMaxCard {
			for _, d := range part {
				out = binary.LittleEndian.AppendUint16(out, uint16(d))
			}
			continue
		}
		at := len(out)
		out = append(out, make([]byte, bitmapBytes)...)
		bm := out[at:]
		for _, d := range part {
			lo := d & 0xFFFF
			bm[lo>>3] |= 1 << (lo & 7)
		}
	}
	if len(out)-start != off {
		panic(fmt.Sprintf("roaring bitmap of %d bytes, planned %d", len(out)-start, off)) // bug
	}
	return out
}

func containerBytes(card int) int {
	if card > arrayMaxCard {
		return bitmapBytes
	}
	return 2 * card
}

// checkBitmapHeader checks a roaring portable bitmap's header against its
// length: cookie, container count, keys, cardinalities and offsets.
// O(containers).
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

// ---- IMPS: impacts in doc order, bit-packed per 128-posting chunk ----

// impLayout describes one term's IMPS bytes: c chunk headers of hw bytes
// (base: w bytes; bit width: 1 byte), then the chunks' packed data.
type impLayout struct {
	b     []byte // the term's IMPS bytes
	w     int    // base width: 1 (quant_bits ≤ 8) or 2
	nc    int    // chunks
	df    int
	hdata int      // offset of the packed data (= nc·(w+1))
	off   []uint32 // (nc) offset of each chunk's data in b, from the Reader's directory; nil: walk the headers
}

func newImpLayout(b []byte, df, w int) impLayout {
	nc := numChunks(df)
	return impLayout{b: b, w: w, nc: nc, df: df, hdata: nc * (w + 1)}
}

// head returns chunk c's base and bit width.
func (l *impLayout) head(c int) (base uint16, width uint) {
	h := l.b[c*(l.w+1):]
	if l.w == 1 {
		return uint16(h[0]), uint(h[1])
	}
	return binary.LittleEndian.Uint16(h), uint(h[2])
}

// chunkLen returns the number of impacts in chunk c.
func (l *impLayout) chunkLen(c int) int {
	if c == l.nc-1 {
		return l.df - c*chunkSize
	}
	return chunkSize
}

// dataLen returns the bytes of chunk c's packed data: ⌈n·width/8⌉.
func (l *impLayout) dataLen(c int) int {
	_, width := l.head(c)
	return (l.chunkLen(c)*int(width) + 7) / 8
}

// check checks that the headers fit, every width is ≤ quantBits and the
// packed data fills the term's bytes exactly, and appends the offset of
// each chunk's data (relative to l.b) to off. O(chunks).
func (l *impLayout) check(quantBits int, off []uint32) ([]uint32, error) {
	if l.hdata > len(l.b) {
		return off, fmt.Errorf("%d chunk headers do not fit in %d bytes", l.nc, len(l.b))
	}
	n := l.hdata
	for c := 0; c < l.nc; c++ {
		if _, width := l.head(c); int(width) > quantBits {
			return off, fmt.Errorf("chunk %d: bit width %d > quant_bits %d", c, width, quantBits)
		}
		off = append(off, uint32(n))
		n += l.dataLen(c)
	}
	if n != len(l.b) {
		return off, fmt.Errorf("chunks need %d bytes, term has %d", n, len(l.b))
	}
	return off, nil
}

// at returns impact i (< df) straight from the packed bytes, without
// decoding its chunk: O(1) with the offset directory, else a walk over
// the chunk headers before it.
func (l *impLayout) at(i int) uint64 {
	c := i >> 7
	var p int
	if l.off != nil {
		p = int(l.off[c])
	} else {
		p = l.hdata
		for j := 0; j < c; j++ {
			p += l.dataLen(j)
		}
	}
	base, width := l.head(c)
	if width == 0 {
		return uint64(base)
	}
	bit := uint(i&(chunkSize-1)) * width
	p += int(bit >> 3)
	var v uint32
	if p+4 <= len(l.b) {
		v = binary.LittleEndian.Uint32(l.b[p:])
	} else {
		for j := 0; p+j < len(l.b) && j < 3; j++ {
			v |= uint32(l.b[p+j]) << (8 * j)
		}
	}
	return uint64(base) + uint64(v>>(bit&7)&(1<<width-1))
}

// chunkFrame returns the frame of reference of one chunk: its smallest
// impact and the bits of (largest − smallest).
func chunkFrame(imps []uint16) (base uint16, width uint) {
	lo, hi := imps[0], imps[0]
	for _, v := range imps[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, uint(bits.Len16(hi - lo))
}

// appendImpacts appends one term's IMPS bytes: the chunk headers (base =
// the chunk's smallest impact, w bytes; bit width of largest − smallest,
// 1 byte), then each chunk's impact − base packed in that many bits,
// least significant bit first, zero-padded to a whole byte.
func appendImpacts(out []byte, imps []uint16, w int) []byte {
	for lo := 0; lo < len(imps); lo += chunkSize {
		base, width := chunkFrame(imps[lo:min(len(imps), lo+chunkSize)])
		if w == 1 {
			out = append(out, byte(base))
		} else {
			out = binary.LittleEndian.AppendUint16(out, base)
		}
		out = append(out, byte(width))
	}
	for lo := 0; lo < len(imps); lo += chunkSize {
		ch := imps[lo:min(len(imps), lo+chunkSize)]
		base, width := chunkFrame(ch)
		var acc uint64
		var nacc uint
		for _, v := range ch {
			acc |= uint64(v-base) << nacc
			nacc += width
			for nacc >= 8 {
				out = append(out, byte(acc))
				acc >>= 8
				nacc -= 8
			}
		}
		if nacc > 0 {
			out = append(out, byte(acc))
		}
	}
	return out
}

// unpack decodes n values of width bits (LSB first) from data, adding base,
// into out[:n]. data holds at least ⌈n·width/8⌉ bytes (checked by Open).
// It returns the padding bits after the last value (for Validate).
func unpack(out []uint16, data []byte, n int, base uint16, width uint) (pad uint64) {
	if width == 0 {
		for i := range out[:n] {
			out[i] = base
		}
		return 0
	}
	mask := uint64(1)<<width - 1
	var acc uint64
	var nacc uint
	p := 0
	for i := range out[:n] {
		for nacc < width {
			acc |= uint64(data[p]) << nacc
			p++
			nacc += 8
		}
		out[i] = base + uint16(acc&mask)
		acc >>= width
		nacc -= width
	}
	return acc
}

// unpackFast is unpack without the padding bits: a byte copy for width 8,
// else one 64-bit load per value while 8 bytes remain in data.
func unpackFast(out []uint16, data []byte, n int, base uint16, width uint) {
	out = out[:n]
	switch width {
	case 0:
		for i := range out {
			out[i] = base
		}
		return
	case 8:
		for i, v := range data[:n] {
			out[i] = base + uint16(v)
		}
		return
	}
	mask := uint64(1)<<width - 1
	i := 0
	for ; i < n; i++ {
		bit := uint(i) * width
		p := int(bit >> 3)
		if p+8 > len(data) {
			break
		}
		out[i] = base + uint16(binary.LittleEndian.Uint64(data[p:])>>(bit&7)&mask)
	}
	for ; i < n; i++ {
		bit := uint(i) * width
		p := int(bit >> 3)
		var v uint64
		for j := 0; j < 3 && p+j < len(data); j++ {
			v |= uint64(data[p+j]) << (8 * j)
		}
		out[i] = base + uint16(v>>(bit&7)&mask)
	}
}

// impCursor decodes one term's impacts a chunk at a time, moving forward
// cheaply (a running data offset) and backward by rescanning the headers.
type impCursor struct {
	l    impLayout
	c    int // decoded chunk, −1 none
	hc   int // chunk whose data starts at hoff
	hoff int
	imps [chunkSize]uint16
}

func (ic *impCursor) init(l impLayout) {
	ic.l, ic.c, ic.hc, ic.hoff = l, -1, 0, l.hdata
}

// load decodes chunk c (< nc) into ic.imps.
func (ic *impCursor) load(c int) {
	if c == ic.c {
		return
	}
	l := &ic.l
	if l.off != nil {
		ic.hc, ic.hoff = c, int(l.off[c])
	}
	if c < ic.hc {
		ic.hc, ic.hoff = 0, l.hdata
	}
	for ic.hc < c {
		ic.hoff += l.dataLen(ic.hc)
		ic.hc++
	}
	base, width := l.head(c)
	unpackFast(ic.imps[:], l.b[ic.hoff:], l.chunkLen(c), base, width)
	ic.c = c
}

// at returns the impact of posting rank.
func (ic *impCursor) at(rank int) uint64 {
	if rank>>7 != ic.c {
		ic.load(rank >> 7)
	}
	return uint64(ic.imps[rank&(chunkSize-1)])
}

// decodeImpacts decodes all of a term's impacts strictly: each chunk's
// padding bits are zero and its frame is the one the writer picks (base =
// smallest impact, width = bits of largest − smallest; a sum base + value
// that wraps past 65535 breaks the first).
func decodeImpacts(l impLayout) ([]uint16, error) {
	out := make([]uint16, l.nc*chunkSize)
	off := l.hdata
	for c := 0; c < l.nc; c++ {
		base, width := l.head(c)
		n := l.chunkLen(c)
		if pad := unpack(out[c*chunkSize:], l.b[off:], n, base, width); pad != 0 {
			return nil, fmt.Errorf("chunk %d: non-zero padding bits", c)
		}
		if b, w := chunkFrame(out[c*chunkSize : c*chunkSize+n]); b != base || w != width {
			return nil, fmt.Errorf("chunk %d: frame base %d width %d, impacts need base %d width %d", c, base, width, b, w)
		}
		off += l.dataLen(c)
	}
	return out[:l.df], nil
}

// ---- cursor: doc numbers from the roaring bytes, impacts beside them ----

// cursor walks one term's postings in doc order, straight from the
// roaring bytes of the mapped file: array containers are indexed, bitmap
// containers scanned word by word; rank (the posting's index, which
// locates its impact) is kept up to date with popcounts. It moves forward
// with next/advance; seek may also move backward (block-max scoring visits
// blocks out of order). Corrupt bytes of an unvalidated file may make it
// panic with an index error; SearchPrepared turns that into ErrCorrupt.
type cursor struct {
	bm   []byte // roaring portable bitmap (header checked by Open)
	q    uint64 // quantised query weight
	ub   uint64 // q · max impact of the term
	rmax []byte // block maxima row (dense terms), else nil
	df   int

	nc     int    // containers
	c      int    // current container
	key    uint32 // its high bits, shifted
	card   int
	data   []byte // its data
	bitmap bool
	cstart int    // rank of its first element
	i      int    // array: index; bitmap: bit of the current doc
	rank   int    // rank of the current doc
	doc    uint32 // current doc, endDoc when exhausted

	imp impCursor

	rk    *rankIndex  // the Reader's rank index, or nil
	bmOff uint64      // offset of bm in DOCS (for rk)
	doff  uint64      // offset of the loaded container's data in DOCS
	dir   *[64]uint16 // its rank directory once fetched
}

func (c *cursor) init(bm []byte, imps impLayout, df int) {
	c.bm, c.df = bm, df
	c.nc = int(binary.LittleEndian.Uint32(bm[4:]))
	c.imp.init(imps)
	c.reset()
}

// reset positions the cursor on the first posting.
func (c *cursor) reset() {
	c.c, c.cstart = 0, 0
	c.load()
	c.first()
}

// load reads container c.c's header; false when past the last one.
func (c *cursor) load() bool {
	if c.c >= c.nc {
		c.doc = endDoc
		c.card = 0
		return false
	}
	h := 8 + 4*c.c
	c.key = uint32(binary.LittleEndian.Uint16(c.bm[h:])) << 16
	c.card = int(binary.LittleEndian.Uint16(c.bm[h+2:])) + 1
	off := int(binary.LittleEndian.Uint32(c.bm[8+4*c.nc+4*c.c:]))
	c.bitmap = c.card > arrayMaxCard
	c.data = c.bm[off : off+containerBytes(c.card)]
	c.dir, c.doff = nil, c.bmOff+uint64(off)
	return true
}

// rankBefore returns the number of docs of the loaded bitmap container
// below low bits j: through the Reader's rank index when the cursor has
// one (at most 16 words counted), else by counting from the start.
func (c *cursor) rankBefore(j int) int {
	if c.rk == nil {
		return popcount(c.data, 0, j)
	}
	if c.dir == nil {
		c.dir = c.rk.dir(c.doff, c.data)
	}
	g := j >> 10
	return int(c.dir[g]) + popcount(c.data, g<<10, j)
}

// rankIndex gives O(1) ranks in the bitmap containers of DOCS. A bitmap
// container is found by its data's offset in DOCS >> 13 (unique: bitmap
// containers are 8192 bytes long); its directory, the number of set bits
// before each 1024-bit group, is computed on first use (so Open reads
// only headers) and published atomically (racing queries compute equal
// directories). Memory: 4 bytes per 8 KiB of DOCS, plus 128 bytes per
// bitmap container used.
type rankIndex struct {
	slot []int32 // DOCS offset >> 13 → bitmap container number, −1 none
	dirs []atomic.Pointer[[64]uint16]
}

func newRankIndex(docsLen int) *rankIndex {
	x := &rankIndex{slot: make([]int32, docsLen>>13+1)}
	for i := range x.slot {
		x.slot[i] = -1
	}
	return x
}

// add registers the bitmap containers of the roaring bitmap bm (header
// checked) that starts at offset bmOff of DOCS.
func (x *rankIndex) add(bm []byte, bmOff uint64) {
	nc := int(binary.LittleEndian.Uint32(bm[4:]))
	for c := 0; c < nc; c++ {
		if int(binary.LittleEndian.Uint16(bm[10+4*c:]))+1 > arrayMaxCard {
			off := bmOff + uint64(binary.LittleEndian.Uint32(bm[8+4*nc+4*c:]))
			x.slot[off>>13] = int32(len(x.dirs))
			x.dirs = append(x.dirs, atomic.Pointer[[64]uint16]{})
		}
	}
}

func (x *rankIndex) dir(off uint64, data []byte) *[64]uint16 {
	p := &x.dirs[x.slot[off>>13]]
	if d := p.Load(); d != nil {
		return d
	}
	d := new([64]uint16)
	n := 0
	for g := range d {
		d[g] = uint16(n)
		for w := g * 16; w < g*16+16; w++ {
			n += bits.OnesCount64(binary.LittleEndian.Uint64(data[8*w:]))
		}
	}
	p.Store(d)
	return d
}

// first positions on the first element of the loaded container.
func (c *cursor) first() {
	if c.c >= c.nc {
		c.doc = endDoc
		return
	}
	c.rank = c.cstart
	if !c.bitmap {
		c.i = 0
		c.doc = c.key | uint32(binary.LittleEndian.Uint16(c.data))
		return
	}
	j := nextSet(c.data, 0)
	if j >= 1<<16 {
		c.nextContainer()
		return
	}
	c.i = j
	c.doc = c.key | uint32(j)
}

func (c *cursor) nextContainer() {
	c.cstart += c.card
	c.c++
	if c.load() {
		c.first()
	}
}

// impact returns the impact of the current posting.
func (c *cursor) impact() uint64 { return c.imp.at(c.rank) }

// next moves to the next posting.
func (c *cursor) next() {
	if c.doc == endDoc {
		return
	}
	if !c.bitmap {
		c.i++
		if c.i < c.card {
			c.rank++
			c.doc = c.key | uint32(binary.LittleEndian.Uint16(c.data[2*c.i:]))
			return
		}
		c.nextContainer()
		return
	}
	j := nextSet(c.data, c.i+1)
	if j < 1<<16 && c.rank+1 < c.cstart+c.card {
		c.i = j
		c.rank++
		c.doc = c.key | uint32(j)
		return
	}
	c.nextContainer()
}

// advance moves to the first posting with doc ≥ target (no move when the
// current doc already is).
func (c *cursor) advance(target uint32) {
	if c.doc >= target {
		return
	}
	tk := target &^ 0xFFFF
	if c.key != tk {
		c.cstart += c.card
		c.c++
		for c.c < c.nc && uint32(binary.LittleEndian.Uint16(c.bm[8+4*c.c:]))<<16 < tk {
			c.cstart += int(binary.LittleEndian.Uint16(c.bm[10+4*c.c:])) + 1
			c.c++
		}
		if !c.load() {
			return
		}
		if c.key != tk {
			c.first()
			return
		}
		c.seekFresh(int(target & 0xFFFF))
		return
	}
	lo := int(target & 0xFFFF)
	if !c.bitmap {
		// galloping then binary search in (c.i, card)
		a, step := c.i+1, 1
		b := a
		for b < c.card && int(binary.LittleEndian.Uint16(c.data[2*b:])) < lo {
			a = b + 1
			b += step
			step <<= 1
		}
		a = lowerBound16(c.data, a, min(b, c.card), lo)
		if a >= c.card {
			c.nextContainer()
			return
		}
		c.rank += a - c.i
		c.i = a
		c.doc = c.key | uint32(binary.LittleEndian.Uint16(c.data[2*a:]))
		return
	}
	j := nextSet(c.data, lo)
	if j >= 1<<16 {
		c.nextContainer()
		return
	}
	if j-c.i > 1024 {
		c.rank = c.cstart + c.rankBefore(j)
	} else {
		c.rank += popcount(c.data, c.i, j)
	}
	if c.rank >= c.cstart+c.card {
		c.nextContainer()
		return
	}
	c.i = j
	c.doc = c.key | uint32(j)
}

// seek positions on the first posting with doc ≥ target, forward or
// backward.
func (c *cursor) seek(target uint32) {
	if target < c.doc {
		c.reset()
	}
	c.advance(target)
}

// lowerBound16 returns the first index in [a, b) of the little-endian
// uint16 array data whose value is ≥ lo, or b.
func lowerBound16(data []byte, a, b, lo int) int {
	for a < b {
		m := int(uint(a+b) >> 1)
		if int(binary.LittleEndian.Uint16(data[2*m:])) < lo {
			a = m + 1
		} else {
			b = m
		}
	}
	return a
}

// seekFresh positions on the first element ≥ lo of a just-loaded container.
func (c *cursor) seekFresh(lo int) {
	if !c.bitmap {
		a := lowerBound16(c.data, 0, c.card, lo)
		if a >= c.card {
			c.nextContainer()
			return
		}
		c.i, c.rank = a, c.cstart+a
		c.doc = c.key | uint32(binary.LittleEndian.Uint16(c.data[2*a:]))
		return
	}
	j := nextSet(c.data, lo)
	if j >= 1<<16 {
		c.nextContainer()
		return
	}
	c.rank = c.cstart + c.rankBefore(j)
	if c.rank >= c.cstart+c.card {
		c.nextContainer()
		return
	}
	c.i = j
	c.doc = c.key | uint32(j)
}

// accumulate adds q·impact of every posting with doc in [s, e) to
// acc[doc−s]; the cursor may be anywhere before and ends on the first
// posting ≥ e.
func (c *cursor) accumulate(s, e uint32, acc []uint64) {
	c.seek(s)
	q := c.q
	for c.doc < e {
		acc[c.doc-s] += q * c.impact()
		c.next()
	}
}

// addAll adds q·impact of every posting of c to acc[doc], container by
// container: array containers as runs of uint16s, bitmap containers word
// by word, impacts a decoded chunk at a time. The caller guarantees that
// the sums fit in A. It leaves the cursor exhausted. O(df + bitmap words).
func addAll[A uint32 | uint64](c *cursor, acc []A) {
	q := A(c.q)
	ic := &c.imp
	rank := 0
	for ; c.c < c.nc; c.c++ {
		c.load()
		key := c.key
		if !c.bitmap {
			data := c.data[:2*c.card]
			for len(data) > 0 {
				ic.load(rank >> 7)
				imps := ic.imps[rank&(chunkSize-1) : ic.l.chunkLen(ic.c)]
				m := min(len(imps), len(data)/2)
				if m == 0 { // only if cardinalities exceed df (Open rejects that)
					panic(fmt.Sprintf("array container %d: posting %d beyond df %d", c.c, rank, c.df))
				}
				for j, v := range imps[:m] {
					acc[key|uint32(binary.LittleEndian.Uint16(data[2*j:]))] += q * A(v)
				}
				data = data[2*m:]
				rank += m
			}
			continue
		}
		end := rank + c.card
		ic.load(rank >> 7)
		for w := 0; w < 1024; w++ {
			word := binary.LittleEndian.Uint64(c.data[8*w:])
			base := key | uint32(w<<6)
			for word != 0 {
				if rank&(chunkSize-1) == 0 {
					if rank >= end {
						panic(fmt.Sprintf("bitmap container %d has more bits than its cardinality %d", c.c, c.card))
					}
					ic.load(rank >> 7)
				}
				acc[base+uint32(bits.TrailingZeros64(word))] += q * A(ic.imps[rank&(chunkSize-1)])
				rank++
				word &= word - 1
			}
		}
		if rank != end {
			panic(fmt.Sprintf("bitmap container %d has %d bits, cardinality %d", c.c, rank-end+c.card, c.card))
		}
	}
	c.doc = endDoc
}

// impactAt returns the impact of the current posting, from the decoded
// chunk when it is the current one, else straight from the packed bytes
// (cheaper when only a few postings of a chunk are needed).
func (c *cursor) impactAt() uint64 {
	ic := &c.imp
	if c.rank>>7 == ic.c {
		return uint64(ic.imps[c.rank&(chunkSize-1)])
	}
	return ic.l.at(c.rank)
}

// addContainerMax adds q·impact of every posting of c's next container
// (c.c, starting at rank c.cstart) to acc[doc] and raises mx[doc/R] to the
// new acc[doc], so that mx[b] ends as the largest acc entry of block b;
// then it moves to the following container (c.doc = endDoc after the
// last). Callers go container key by container key over all their
// cursors, so that acc and mx are touched one 65 536-document range at a
// time. O(card + bitmap words).
func addContainerMax[A uint32 | uint64](c *cursor, acc, mx []A, R int) {
	q := A(c.q)
	ic := &c.imp
	rank := c.cstart
	pow2 := R&(R-1) == 0
	sh := uint(bits.TrailingZeros(uint(R)))
	r32 := uint32(R)
	add := func(d uint32, v uint16) {
		s := acc[d] + q*A(v)
		acc[d] = s
		var b uint32
		if pow2 {
			b = d >> sh
		} else {
			b = d / r32
		}
		mx[b] = max(mx[b], s)
	}
	c.load()
	key := c.key
	if !c.bitmap {
		data := c.data[:2*c.card]
		for len(data) > 0 {
			ic.load(rank >> 7)
			imps := ic.imps[rank&(chunkSize-1) : ic.l.chunkLen(ic.c)]
			m := min(len(imps), len(data)/2)
			if m == 0 { // only if cardinalities exceed df (Open rejects that)
				panic(fmt.Sprintf("array container %d: posting %d beyond df %d", c.c, rank, c.df))
			}
			if pow2 { // the common case, without the call
				for j, v := range imps[:m] {
					d := key | uint32(binary.LittleEndian.Uint16(data[2*j:]))
					s := acc[d] + q*A(v)
					acc[d] = s
					b := d >> sh
					mx[b] = max(mx[b], s)
				}
			} else {
				for j, v := range imps[:m] {
					add(key|uint32(binary.LittleEndian.Uint16(data[2*j:])), v)
				}
			}
			data = data[2*m:]
			rank += m
		}
	} else {
		end := rank + c.card
		ic.load(rank >> 7)
		for w := 0; w < 1024; w++ {
			word := binary.LittleEndian.Uint64(c.data[8*w:])
			base := key | uint32(w<<6)
			for word != 0 {
				if rank&(chunkSize-1) == 0 {
					if rank >= end {
						panic(fmt.Sprintf("bitmap container %d has more bits than its cardinality %d", c.c, c.card))
					}
					ic.load(rank >> 7)
				}
				add(base+uint32(bits.TrailingZeros64(word)), ic.imps[rank&(chunkSize-1)])
				rank++
				word &= word - 1
			}
		}
		if rank != end {
			panic(fmt.Sprintf("bitmap container %d has %d bits, cardinality %d", c.c, rank-end+c.card, c.card))
		}
	}
	c.nextContainer()
}

// nextKey returns the key of c's current container (shifted, as doc
// numbers), or endDoc when c is exhausted.
func (c *cursor) nextKey() uint32 {
	if c.c >= c.nc {
		return endDoc
	}
	return c.key
}

// nextSet returns the first set bit ≥ from in a 65536-bit container, or 65536.
func nextSet(data []byte, from int) int {
	if from >= 1<<16 {
		return 1 << 16
	}
	w := from >> 6
	word := binary.LittleEndian.Uint64(data[8*w:]) >> (uint(from) & 63)
	if word != 0 {
		return from + bits.TrailingZeros64(word)
	}
	for w++; w < 1024; w++ {
		if word = binary.LittleEndian.Uint64(data[8*w:]); word != 0 {
			return w<<6 | bits.TrailingZeros64(word)
		}
	}
	return 1 << 16
}

// popcount counts set bits in [a, b) of a 65536-bit container.
func popcount(data []byte, a, b int) int {
	if a >= b {
		return 0
	}
	wa, wb := a>>6, b>>6
	if wa == wb {
		word := binary.LittleEndian.Uint64(data[8*wa:])
		return bits.OnesCount64(word >> (uint(a) & 63) & (1<<(uint(b-a)) - 1))
	}
	n := bits.OnesCount64(binary.LittleEndian.Uint64(data[8*wa:]) >> (uint(a) & 63))
	for w := wa + 1; w < wb; w++ {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(data[8*w:]))
	}
	if wb < 1024 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(data[8*wb:]) & (1<<(uint(b)&63) - 1))
	}
	return n
}
