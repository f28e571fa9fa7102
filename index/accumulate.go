package index

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

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

// addContainerMax adds q·impact of every posting of c's next container
// (c.c, starting at rank c.cstart) to acc[doc] and raises mx[doc/R] to the
// new acc[doc], so that mx[b] ends as the largest acc entry of block b;
// then it moves to the following container (c.doc = endDoc after the
// last). Callers go container key by container key over all their
// cursors, so that acc and mx are touched one 65 536-document range at a
// time. O(card + bitmap words).
// Its walk repeats addAll's: sharing one with mx optional costs addAll 8–18%.
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
