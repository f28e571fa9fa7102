package benchmodel

import "testing"

func TestPackBatches(t *testing.T) {
	lens := []int{5, 2, 9, 3, 3, 8, 1}
	seqs := make([][]int32, len(lens))
	for i, n := range lens {
		for j := range n {
			seqs[i] = append(seqs[i], int32(10*i+j+1))
		}
	}
	for _, order := range []string{"length", "arrival"} {
		bs := packBatches(seqs, 2, 9, order, false)
		seen, prevT := map[int32]bool{}, 0
		for _, b := range bs {
			if order == "length" {
				if b.B*b.T > 2*9 {
					t.Fatalf("length: batch %dx%d over the 18-token budget", b.B, b.T)
				}
				if b.T < prevT {
					t.Fatalf("length: batches not in increasing length")
				}
				prevT = b.T
			} else if b.B > 2 {
				t.Fatalf("arrival: batch of %d rows", b.B)
			}
			for r := 0; r < b.B; r++ {
				n := 0
				for tt := 0; tt < b.T; tt++ {
					if b.Mask[r*b.T+tt] == 1 {
						n++
						seen[b.InputIDs[r*b.T+tt]] = true
					} else if b.InputIDs[r*b.T+tt] != 0 {
						t.Fatalf("%s: padded position holds id %d", order, b.InputIDs[r*b.T+tt])
					}
				}
				if n == 0 {
					t.Fatalf("%s: empty row", order)
				}
			}
		}
		if len(seen) != 31 { // every token of every sequence exactly once
			t.Fatalf("%s: %d distinct tokens placed, want 31", order, len(seen))
		}
	}
	// length order packs: 1,2,3,3 (4×3=12), then 5 (2×8=16 with 8), 9 alone.
	if bs := packBatches(seqs, 2, 9, "length", false); len(bs) != 3 || bs[0].B != 4 || bs[1].B != 2 || bs[2].B != 1 {
		t.Fatalf("length packing: %d batches", len(bs))
	}
}
