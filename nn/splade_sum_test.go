package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveSumSplade is the oracle of the sum pooling: float64 logits, then
// log1p(Σ_t relu(·)) over real positions, as the definition reads.
func naiveSumSplade(z, mask, emb, bias []float64, B, T, C, V int) []float64 {
	out := make([]float64, B*V)
	for b := range B {
		for v := range V {
			s := 0.0
			for t := range T {
				if mask[b*T+t] <= 0 {
					continue
				}
				x := bias[v]
				for c := range C {
					x += z[(b*T+t)*C+c] * emb[v*C+c]
				}
				s += math.Max(0, x)
			}
			out[b*V+v] = math.Log1p(s)
		}
	}
	return out
}

// TestSpladeSumPoolForwardAgainstNaive covers prefix and holed masks, an
// empty sequence, and more positions than one Sgemm group (sumPoolRows),
// so that a sequence's rows are split across groups.
func TestSpladeSumPoolForwardAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		name       string
		B, T, C, V int
		lens       []int
		holes      bool
	}{
		{"prefix", 3, 7, 8, 40, []int{7, 3, 0}, false},
		{"holes", 2, 9, 5, 33, []int{4, 9}, true},
		{"groups", 5, 300, 4, 7, []int{300, 299, 1, 250, 300}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			B, T, C, V := tc.B, tc.T, tc.C, tc.V
			z, mask, emb, bias := spladeCase(rng, B, T, C, V, tc.lens, tc.holes)
			out := make([]float32, B*V)
			for i := range out {
				out[i] = 42 // must be overwritten
			}
			SpladeSumPoolForward(z, mask, emb, bias, B, T, C, V, out)
			want := naiveSumSplade(to64(z), to64(mask), to64(emb), to64(bias), B, T, C, V)
			positive := 0
			for i := range want {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5*(1+want[i]) {
					t.Fatalf("out[b=%d,v=%d] = %g, want %g", i/V, i%V, out[i], want[i])
				}
				if want[i] > 0 {
					positive++
				}
			}
			if positive == 0 || positive == len(want) {
				t.Fatalf("degenerate case: %d of %d weights positive", positive, len(want))
			}
		})
	}
}

// TestSpladeSumPoolBackwardFiniteDifferences checks every gradient entry
// against central differences of the float64 oracle of L = Σ dout·out,
// with dout zero on some active entries (they must carry no gradient).
func TestSpladeSumPoolBackwardFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	B, T, C, V := 3, 5, 4, 9
	z, mask, emb, bias := spladeCase(rng, B, T, C, V, []int{5, 2, 0}, true)
	dout := randSlice(rng, B*V)
	for i := 0; i < len(dout); i += 4 {
		dout[i] = 0
	}
	out := make([]float32, B*V)
	SpladeSumPoolForward(z, mask, emb, bias, B, T, C, V, out)
	dz := make([]float32, B*T*C)
	demb := make([]float32, V*C)
	dbias := make([]float32, V)
	for i := range dz { // accumulation: start from a known value
		dz[i] = 0.5
	}
	SpladeSumPoolBackward(dout, z, mask, emb, bias, out, B, T, C, V, dz, demb, dbias)
	for i := range dz {
		dz[i] -= 0.5
	}
	z64, m64, e64, b64, d64 := to64(z), to64(mask), to64(emb), to64(bias), to64(dout)
	loss := func() float64 {
		var s float64
		for i, o := range naiveSumSplade(z64, m64, e64, b64, B, T, C, V) {
			s += d64[i] * o
		}
		return s
	}
	checkFiniteDifferences(t, "dz", z64, dz, loss)
	checkFiniteDifferences(t, "demb", e64, demb, loss)
	checkFiniteDifferences(t, "dbias", b64, dbias, loss)
	for i := 2 * T * C; i < 3*T*C; i++ {
		if dz[i] != 0 {
			t.Fatalf("dz[%d] = %g inside an empty sequence", i, dz[i])
		}
	}
}

// TestConfigSpladePoolingRoundTrip: the pooling travels in config.json,
// "max" reads as the default, and anything else is refused.
func TestConfigSpladePoolingRoundTrip(t *testing.T) {
	c := BERTConfig(30, 8, 1, 2, 16, 16)
	c.SpladePooling = PoolSum
	b, err := c.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.SpladePooling != PoolSum {
		t.Fatalf("pooling %q after a round trip, want %q", back.SpladePooling, PoolSum)
	}
	back.SpladePooling = PoolMax
	if b, err = back.MarshalHF(); err != nil {
		t.Fatal(err)
	}
	if again, err := ParseConfig(b); err != nil || again.SpladePooling != PoolMax {
		t.Fatalf("max pooling after a sum-pooled parse: %q, %v", again.SpladePooling, err)
	}
	for _, tc := range []struct {
		val  string
		want string
		err  bool
	}{{`"max"`, PoolMax, false}, {`"mean"`, "", true}, {`3`, "", true}} {
		js := `{"model_type":"bert","vocab_size":30,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"splade_pooling":` + tc.val + `}`
		got, err := ParseConfig([]byte(js))
		if (err != nil) != tc.err || (!tc.err && got.SpladePooling != tc.want) {
			t.Errorf("splade_pooling %s: %q, %v", tc.val, got.SpladePooling, err)
		}
	}
}
