package index

import "encoding/binary"

// PostingSizes breaks the postings of an index down by part, in bytes (and
// the postings held by each kind of roaring container).
type PostingSizes struct {
	Postings int64

	ArrayContainers, BitmapContainers int64 // containers of each kind
	ArrayPostings, BitmapPostings     int64 // postings held by them
	ArrayBytes, BitmapBytes           int64 // their data: 2 per posting; 8192 per container
	RoaringHeaders                    int64 // cookie, count, keys, cardinalities, offsets: 8 + 8 per container

	ImpactHeaders int64 // chunk frames: (w+1) bytes per 128 postings
	ImpactData    int64 // bit-packed impact − base
	ImpactBits    int64 // Σ chunk bit width × chunk length (= 8·ImpactData minus padding)

	Term, Rmax int64 // TERM and RMAX sections
}

// PostingSizes measures the DOCS, IMPS, TERM and RMAX sections part by
// part. It reads only headers: O(V + containers + P/128).
func (r *Reader) PostingSizes() PostingSizes {
	var s PostingSizes
	s.Postings = r.meta.NumPostings
	s.Term, s.Rmax = int64(len(r.sec[secTerm])), int64(len(r.sec[secRmax]))
	for t := 0; t < r.meta.NumTerms; t++ {
		ti := r.termInfo(uint32(t))
		if ti.df == 0 {
			continue
		}
		bm := r.bitmap(ti)
		nc := int(binary.LittleEndian.Uint32(bm[4:]))
		s.RoaringHeaders += int64(8 + 8*nc)
		for c := 0; c < nc; c++ {
			card := int64(binary.LittleEndian.Uint16(bm[10+4*c:])) + 1
			if card > arrayMaxCard {
				s.BitmapContainers++
				s.BitmapPostings += card
				s.BitmapBytes += bitmapBytes
			} else {
				s.ArrayContainers++
				s.ArrayPostings += card
				s.ArrayBytes += 2 * card
			}
		}
		l := r.impLayout(ti)
		s.ImpactHeaders += int64(l.hdata)
		for c := 0; c < l.nc; c++ {
			_, w := l.head(c)
			s.ImpactData += int64(l.dataLen(c))
			s.ImpactBits += int64(w) * int64(l.chunkLen(c))
		}
	}
	return s
}
