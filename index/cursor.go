package index

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync/atomic"
)

// endDoc is the doc number of an exhausted cursor (doc numbers are < N ≤ 2³²−1).
const endDoc = math.MaxUint32

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

// nextKey returns the key of c's current container (shifted, as doc
// numbers), or endDoc when c is exhausted.
func (c *cursor) nextKey() uint32 {
	if c.c >= c.nc {
		return endDoc
	}
	return c.key
}
