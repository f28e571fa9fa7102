package index

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// endDoc is the doc number of an exhausted cursor (doc numbers are < N ≤ 2³²−1).
const endDoc = math.MaxUint32

// cursor walks one term's postings in doc order, straight from the
// roaring bytes of the mapped file: array containers are indexed, bitmap
// containers scanned word by word; rank (the posting's index, which
// locates its impact) is kept up to date with popcounts. It moves forward
// only; reset starts again.
type cursor struct {
	bm   []byte // roaring portable bitmap (header checked by Open)
	imps []byte // impacts of the term, df·width bytes
	wide bool   // 2-byte impacts
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
}

func (c *cursor) init(bm, imps []byte, wide bool, df int) {
	c.bm, c.imps, c.wide, c.df = bm, imps, wide, df
	c.nc = int(binary.LittleEndian.Uint32(bm[4:]))
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
	return true
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
func (c *cursor) impact() uint64 {
	if c.wide {
		return uint64(binary.LittleEndian.Uint16(c.imps[2*c.rank:]))
	}
	return uint64(c.imps[c.rank])
}

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
		if b > c.card {
			b = c.card
		}
		for a < b {
			m := int(uint(a+b) >> 1)
			if int(binary.LittleEndian.Uint16(c.data[2*m:])) < lo {
				a = m + 1
			} else {
				b = m
			}
		}
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
	c.rank += popcount(c.data, c.i, j)
	if c.rank >= c.cstart+c.card {
		c.nextContainer()
		return
	}
	c.i = j
	c.doc = c.key | uint32(j)
}

// seekFresh positions on the first element ≥ lo of a just-loaded container.
func (c *cursor) seekFresh(lo int) {
	if !c.bitmap {
		a, b := 0, c.card
		for a < b {
			m := int(uint(a+b) >> 1)
			if int(binary.LittleEndian.Uint16(c.data[2*m:])) < lo {
				a = m + 1
			} else {
				b = m
			}
		}
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
	c.rank = c.cstart + popcount(c.data, 0, j)
	if c.rank >= c.cstart+c.card {
		c.nextContainer()
		return
	}
	c.i = j
	c.doc = c.key | uint32(j)
}

// accumulate adds q·impact of every posting with doc in [s, e) to
// acc[doc−s] and leaves the cursor on the first posting ≥ e.
func (c *cursor) accumulate(s, e uint32, acc []uint64) {
	c.advance(s)
	q := c.q
	for c.doc < e {
		if c.bitmap && c.key == s&^0xFFFF && e-1 <= c.key|0xFFFF {
			c.accumulateBitmap(s, e, acc)
			return
		}
		acc[c.doc-s] += q * c.impact()
		c.next()
	}
}

// accumulateBitmap is accumulate within one bitmap container, word by word;
// the cursor is on a doc in [s, e) of that container.
func (c *cursor) accumulateBitmap(s, e uint32, acc []uint64) {
	q := c.q
	base := c.key
	end := int(e - base) // bits [c.i, end) of this container
	rank := c.rank
	limit := c.cstart + c.card
	w := c.i >> 6
	word := binary.LittleEndian.Uint64(c.data[8*w:]) &^ (1<<(uint(c.i)&63) - 1)
	for {
		for word != 0 {
			j := w<<6 | bits.TrailingZeros64(word)
			if j >= end || rank >= limit {
				c.resume(j, rank, end)
				return
			}
			var imp uint64
			if c.wide {
				imp = uint64(binary.LittleEndian.Uint16(c.imps[2*rank:]))
			} else {
				imp = uint64(c.imps[rank])
			}
			acc[base+uint32(j)-s] += q * imp
			rank++
			word &= word - 1
		}
		w++
		if w >= 1024 || w<<6 >= end {
			c.resume(w<<6, rank, end)
			return
		}
		word = binary.LittleEndian.Uint64(c.data[8*w:])
	}
}

// resume repositions after accumulateBitmap: rank is the rank of the first
// set bit ≥ from (or the container end).
func (c *cursor) resume(from, rank, end int) {
	j := nextSet(c.data, from)
	if j >= 1<<16 || rank >= c.cstart+c.card {
		c.nextContainer()
		return
	}
	c.i, c.rank = j, rank
	c.doc = c.key | uint32(j)
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
