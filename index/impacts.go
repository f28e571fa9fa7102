package index

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// chunkSize is the number of impacts per bit-packed chunk (the last chunk
// of a term may hold fewer).
const chunkSize = 128

// numChunks returns ⌈df / chunkSize⌉.
func numChunks(df int) int { return (df + chunkSize - 1) / chunkSize }

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
