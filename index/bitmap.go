package index

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

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
