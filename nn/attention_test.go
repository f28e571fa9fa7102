package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionHeadKernel checks the fused attention kernel (cgo, AVX2)
// against float64 attention: query blocks of 6 and key panels of 16 with
// ragged ends, padded keys, a sequence whose keys are all padded, rows at a
// stride wider than the head.
func TestAttentionHeadKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		T, d, ld int
		pad      []int32
	}{
		{1, 16, 16, nil},
		{37, 32, 80, []int32{3, 17, 36}},
		{64, 64, 256, nil},
		{5, 16, 48, []int32{0, 1, 2, 3, 4}},
	} {
		T, d, ld := tc.T, tc.d, tc.ld
		q, k, v := randSlice(rng, T*ld), randSlice(rng, T*ld), randSlice(rng, T*ld)
		for i := range q {
			q[i] *= 3 // peaked softmax rows
		}
		P := make([]float32, T*T)
		ctx := make([]float32, T*ld)
		scale := float32(1 / math.Sqrt(float64(d)))
		if !attnHeadKernel(q, k, v, ld, T, d, scale, tc.pad, P, ctx, make([]float32, attnScratch(T, d))) {
			t.Skipf("fused attention kernel not available (backend %s)", Backend)
		}
		padded := map[int]bool{}
		for _, j := range tc.pad {
			padded[int(j)] = true
		}
		for i := range T {
			s := make([]float64, T)
			mx := math.Inf(-1)
			for j := range T {
				if padded[j] {
					continue
				}
				for c := range d {
					s[j] += float64(q[i*ld+c]) * float64(k[j*ld+c])
				}
				s[j] *= float64(scale)
				mx = max(mx, s[j])
			}
			var sum float64
			for j := range T {
				if !padded[j] {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
			}
			for j := range T {
				want := 0.0
				if !padded[j] {
					want = s[j] / sum
				}
				if math.Abs(float64(P[i*T+j])-want) > 1e-6 {
					t.Fatalf("T=%d d=%d: P[%d,%d] = %g, want %g", T, d, i, j, P[i*T+j], want)
				}
			}
			for c := range d {
				want := 0.0
				for j := range T {
					if !padded[j] {
						want += s[j] / sum * float64(v[j*ld+c])
					}
				}
				if math.Abs(float64(ctx[i*ld+c])-want) > 1e-5 {
					t.Fatalf("T=%d d=%d: ctx[%d,%d] = %g, want %g", T, d, i, c, ctx[i*ld+c], want)
				}
			}
		}
	}
}
