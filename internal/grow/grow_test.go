package grow

import "testing"

func TestTo(t *testing.T) {
	b := make([]float32, 3, 8)
	b[0] = 7
	g := To(b, 6)
	if len(g) != 6 || &g[0] != &b[0] || g[0] != 7 {
		t.Fatalf("To within capacity: len %d, same array %v, g[0] %g; want 6, true, 7", len(g), &g[0] == &b[0], g[0])
	}
	g = To(b, 9)
	if len(g) != 9 || g[0] != 0 {
		t.Fatalf("To beyond capacity: len %d, g[0] %g; want 9, 0 (a new zeroed slice)", len(g), g[0])
	}
	if g := To([]int32(nil), 0); len(g) != 0 {
		t.Fatalf("To(nil, 0): len %d, want 0", len(g))
	}
}
