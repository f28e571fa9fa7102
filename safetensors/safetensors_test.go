package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// oracleCase is the PyTorch oracle's tiny BERT case, found relative to the
// repository root (../shared from the repo, ../../shared from here).
const oracleCase = "../../shared/tools/oracle/cases/bert-tiny"

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	nan := math.Float32frombits(0x7fc01234)
	f32 := []Named{
		{Name: "w", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), nan, float32(math.Copysign(0, -1))}},
		{Name: "b", Shape: []int{3}, Data: []float32{0.1, 0.2, 0.3}},
		{Name: "scalar", Shape: nil, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: nil},
	}
	i64 := []NamedInt64{{Name: "ids", Shape: []int{2, 2}, Data: []int64{math.MinInt64, -100, 0, math.MaxInt64}}}
	meta := map[string]string{"format": "pt", "note": `quotes " and <html> & ünïcode`}
	if err := WriteFileMixed(path, f32, i64, meta); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Names(), []string{"b", "empty", "ids", "scalar", "w"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if got := f.Metadata(); !reflect.DeepEqual(got, meta) {
		t.Errorf("Metadata = %v, want %v", got, meta)
	}
	for _, n := range f32 {
		got, shape, err := f.Float32(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Shape) == 0 && len(shape) != 0 || len(n.Shape) > 0 && !reflect.DeepEqual(shape, n.Shape) {
			t.Errorf("%s: shape %v, want %v", n.Name, shape, n.Shape)
		}
		if len(got) != len(n.Data) {
			t.Fatalf("%s: %d values, want %d", n.Name, len(got), len(n.Data))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(n.Data[i]) {
				t.Errorf("%s[%d] = %v (%#x), want %v", n.Name, i, got[i], math.Float32bits(got[i]), n.Data[i])
			}
		}
	}
	ids, shape, err := f.Int64("ids")
	if err != nil || !reflect.DeepEqual(ids, i64[0].Data) || !reflect.DeepEqual(shape, []int{2, 2}) {
		t.Errorf("Int64(ids) = %v %v %v, want %v [2 2]", ids, shape, err, i64[0].Data)
	}
	if info, ok := f.Tensor("w"); !ok || info.DType != "F32" || !reflect.DeepEqual(info.Shape, []int{2, 3}) {
		t.Errorf("Tensor(w) = %+v %v", info, ok)
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor(nope) found")
	}
	if _, _, err := f.Float32("ids"); err == nil || !strings.Contains(err.Error(), `"ids"`) {
		t.Errorf("Float32 of an I64 tensor: err = %v", err)
	}
	if _, _, err := f.Int64("w"); err == nil {
		t.Error("Int64 of an F32 tensor: no error")
	}
	if _, _, err := f.Float32("nope"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Float32 of a missing tensor: err = %v, want it to name the file", err)
	}

	// Layout: 8-byte aligned header, I64 (8-byte elements) before F32,
	// names ascending within a size, tensors tiling the buffer.
	b, _ := os.ReadFile(path)
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Errorf("8+N = %d, not a multiple of 8", 8+n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	type off struct {
		name  string
		begin int
	}
	var offs []off
	for k, v := range hdr {
		if k == "__metadata__" {
			continue
		}
		var e struct {
			DataOffsets []int `json:"data_offsets"`
		}
		json.Unmarshal(v, &e)
		offs = append(offs, off{k, e.DataOffsets[0]})
	}
	sort.Slice(offs, func(i, j int) bool {
		if offs[i].begin != offs[j].begin {
			return offs[i].begin < offs[j].begin
		}
		return offs[i].name < offs[j].name
	})
	var order []string
	for _, o := range offs {
		order = append(order, o.name)
	}
	// "empty" has zero bytes and shares its offset with "scalar".
	if want := []string{"ids", "b", "empty", "scalar", "w"}; !reflect.DeepEqual(order, want) {
		t.Errorf("storage order %v, want %v", order, want)
	}
}

// TestEncodeExactBytes pins the writer's bytes for a small file, written
// out by hand following the official format (compact JSON, __metadata__
// first, space padding).
func TestEncodeExactBytes(t *testing.T) {
	var buf bytes.Buffer
	err := Encode(&buf, []Raw{{Name: "a", DType: "F32", Shape: []int{2}, Data: f32Bytes([]float32{1, 2})}}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	hdr := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	for (8+len(hdr))%8 != 0 {
		hdr += " "
	}
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	want = append(want, hdr...)
	want = append(want, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Encode =\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]Named{
		"short data":     {{Name: "a", Shape: []int{3}, Data: []float32{1}}},
		"duplicate":      {{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}},
		"metadata name":  {{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}},
		"empty name":     {{Name: "", Shape: []int{1}, Data: []float32{1}}},
		"negative shape": {{Name: "a", Shape: []int{-1}, Data: nil}},
	}
	for name, ts := range cases {
		p := filepath.Join(dir, "x.safetensors")
		if err := WriteFile(p, ts, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: file written despite the error", name)
		}
	}
}

// TestF16Exhaustive checks every one of the 65536 half-precision bit
// patterns against the value the IEEE 754 definition gives, computed in
// float64, and that rounding back to half is the identity.
func TestF16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		exp, mant := (h>>10)&0x1f, h&0x3ff
		got := F16ToF32(uint16(h))
		var want float64
		switch {
		case exp == 0x1f && mant != 0:
			if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (sign < 0) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN with sign %v", h, got, sign)
			}
			if back := F32ToF16(got); back != uint16(h)|0x0200 {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want quiet NaN %#04x", h, back, uint16(h)|0x0200)
			}
			continue
		case exp == 0x1f:
			want = sign * math.Inf(1)
		case exp == 0:
			want = sign * math.Ldexp(float64(mant), -24)
		default:
			want = sign * math.Ldexp(1+float64(mant)/1024, exp-15)
		}
		if float64(got) != want || math.Signbit(float64(got)) != (sign < 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
		if back := F32ToF16(got); back != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

// TestF32ToF16Rounding compares rounding with a brute-force search for the
// nearest half value (ties to the even bit pattern; values at or past the
// midpoint between 65504 and 65536 go to Inf).
func TestF32ToF16Rounding(t *testing.T) {
	// Positive finite halves and their values, ascending; 0x7c00 stands in
	// for the next step after 65504 (2^16) so overflow rounds as IEEE says.
	vals := make([]float64, 0x7c01)
	for h := range vals {
		vals[h] = float64(F16ToF32(uint16(h)))
	}
	vals[0x7c00] = 65536
	ref := func(x float32) uint16 {
		a := math.Abs(float64(x))
		sign := uint16(0)
		if math.Signbit(float64(x)) {
			sign = 0x8000
		}
		if a >= 65536 {
			return sign | 0x7c00
		}
		i := sort.SearchFloat64s(vals, a) // first with vals[i] >= a
		if vals[i] == a {
			return sign | uint16(i)
		}
		lo, hi := i-1, i
		dl, dh := a-vals[lo], vals[hi]-a
		switch {
		case dl < dh:
			return sign | uint16(lo)
		case dh < dl:
			return sign | uint16(hi)
		case lo%2 == 0:
			return sign | uint16(lo)
		default:
			return sign | uint16(hi)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(x float32) {
		if got, want := F32ToF16(x), ref(x); got != want {
			t.Fatalf("F32ToF16(%g = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
	// Exact midpoints (ties) and their neighbours across the whole range.
	for h := 0; h < 0x7c00; h++ {
		mid := float32((vals[h] + vals[h+1]) / 2)
		check(mid)
		check(math.Nextafter32(mid, 0))
		check(math.Nextafter32(mid, 1e9))
		check(-mid)
	}
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for range n {
		// Exponents spanning underflow to overflow of half.
		x := float32(math.Ldexp(rng.Float64()+0.5, rng.IntN(50)-30))
		if rng.IntN(2) == 0 {
			x = -x
		}
		check(x)
	}
	check(1e-30)
	check(float32(math.Inf(1)))
	check(float32(math.Inf(-1)))
}

func TestBF16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		got := BF16ToF32(uint16(h))
		if math.Float32bits(got) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) bits %#08x", h, math.Float32bits(got))
		}
		back := F32ToBF16(got)
		if got != got {
			if back != uint16(h)|0x40 {
				t.Fatalf("F32ToBF16(NaN %#04x) = %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, back)
		}
	}
	// Rounding: a float32 lies between truncation t and t+1 (in bits);
	// pick the nearer, ties to even, by exact float64 arithmetic.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 100000 {
		u := rng.Uint32()
		if i%3 == 0 {
			u = u&^0xffff | 0x8000 // exact tie
		}
		x := math.Float32frombits(u)
		if x != x || math.IsInf(float64(x), 0) {
			continue
		}
		lo := uint16(u >> 16)
		hi := lo + 1
		vl, vh := float64(BF16ToF32(lo)), float64(BF16ToF32(hi))
		if math.IsInf(vh, 0) { // next step after the largest finite bf16
			vh = math.Copysign(math.Ldexp(1, 128), vh)
		}
		dl, dh := math.Abs(float64(x)-vl), math.Abs(vh-float64(x))
		want := lo
		if dh < dl || dh == dl && lo%2 == 1 {
			want = hi
		}
		if got := F32ToBF16(x); got != want {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", u, got, want)
		}
	}
}

// TestOracleWriterFile reads a file written by the oracle's independent
// Python writer (testdata/make_mixed.py) with F16, BF16, F64, I32, U8, a
// scalar and metadata, and compares with the values numpy produced.
// Re-encoding the tensors must reproduce the file byte for byte.
func TestOracleWriterFile(t *testing.T) {
	f, err := ReadFile("testdata/mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		DType  string            `json:"dtype"`
		Shape  []int             `json:"shape"`
		Values []json.RawMessage `json:"values"`
	}
	b, err := os.ReadFile("testdata/mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(f.Names()) {
		t.Errorf("%d tensors, want %d", len(f.Names()), len(want))
	}
	for name, w := range want {
		info, ok := f.Tensor(name)
		if !ok || info.DType != w.DType || len(info.Shape) != len(w.Shape) || (len(w.Shape) > 0 && !reflect.DeepEqual(info.Shape, w.Shape)) {
			t.Errorf("%s: info %+v, want %s %v", name, info, w.DType, w.Shape)
			continue
		}
		if strings.HasPrefix(w.DType, "F") || w.DType == "BF16" {
			got, _, err := f.Float32(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, raw := range w.Values {
				var s string
				json.Unmarshal(raw, &s)
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatalf("%s[%d]: %v", name, i, err)
				}
				if float64(got[i]) != v || math.Signbit(float64(got[i])) != math.Signbit(v) {
					t.Errorf("%s[%d] = %v, want %v", name, i, got[i], v)
				}
			}
		} else {
			got, _, err := f.Int64(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, raw := range w.Values {
				v, _ := strconv.ParseInt(string(raw), 10, 64)
				if got[i] != v {
					t.Errorf("%s[%d] = %d, want %d", name, i, got[i], v)
				}
			}
		}
	}
	if got := f.Metadata(); got["made_by"] != "make_mixed.py" || len(got) != 1 {
		t.Errorf("metadata %v", got)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, rawTensors(t, f), f.Metadata()); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile("testdata/mixed.safetensors")
	if !bytes.Equal(buf.Bytes(), orig) {
		t.Errorf("re-encoded file differs from the oracle writer's (%d vs %d bytes)", buf.Len(), len(orig))
	}
}

func rawTensors(t testing.TB, f *File) []Raw {
	var raws []Raw
	for _, name := range f.Names() {
		b, info, err := f.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, Raw{Name: name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	return raws
}

// TestOracleCase reads the PyTorch oracle's checkpoint and golden files and
// cross-checks them with config.json and inputs.json.
func TestOracleCase(t *testing.T) {
	if _, err := os.Stat(oracleCase); err != nil {
		t.Skipf("oracle case %s not found: %v", oracleCase, err)
	}
	model, err := ReadFile(filepath.Join(oracleCase, "model/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Hidden int `json:"hidden_size"`
		Vocab  int `json:"vocab_size"`
		MaxPos int `json:"max_position_embeddings"`
		Layers int `json:"num_hidden_layers"`
		FF     int `json:"intermediate_size"`
	}
	readJSON(t, filepath.Join(oracleCase, "model/config.json"), &cfg)
	shapes := map[string][]int{
		"bert.embeddings.word_embeddings.weight":             {cfg.Vocab, cfg.Hidden},
		"bert.embeddings.position_embeddings.weight":         {cfg.MaxPos, cfg.Hidden},
		"bert.encoder.layer.0.intermediate.dense.weight":     {cfg.FF, cfg.Hidden},
		"bert.encoder.layer.1.attention.self.query.bias":     {cfg.Hidden},
		"bert.encoder.layer.1.output.LayerNorm.weight":       {cfg.Hidden},
		"bert.embeddings.token_type_embeddings.weight":       {2, cfg.Hidden},
		"bert.encoder.layer.0.attention.output.dense.weight": {cfg.Hidden, cfg.Hidden},
	}
	for name, want := range shapes {
		v, shape, err := model.Float32(name)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if !reflect.DeepEqual(shape, want) || len(v) != prod(want) {
			t.Errorf("%s: shape %v (%d values), want %v", name, shape, len(v), want)
		}
	}
	// The checkpoint and params0 (the same initial parameters) must agree
	// bit for bit on every name they share.
	params0, err := ReadFile(filepath.Join(oracleCase, "golden/params0.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	for _, name := range params0.Names() {
		if _, ok := model.Tensor(name); !ok {
			continue
		}
		shared++
		a, _, err1 := model.Float32(name)
		b, _, err2 := params0.Float32(name)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs between model.safetensors and params0.safetensors (%v, %v)", name, err1, err2)
		}
	}
	if shared < 10 {
		t.Errorf("only %d tensor names shared by model and params0", shared)
	}
	if model.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v, want format=pt", model.Metadata())
	}
	goldens, _ := filepath.Glob(filepath.Join(oracleCase, "golden/*.safetensors"))
	if len(goldens) < 5 {
		t.Fatalf("only %d golden files in %s", len(goldens), oracleCase)
	}
	for _, g := range append(goldens, filepath.Join(oracleCase, "model/model.safetensors")) {
		f, err := ReadFile(g)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		// Our writer reproduces the oracle's files byte for byte.
		var buf bytes.Buffer
		if err := Encode(&buf, rawTensors(t, f), f.Metadata()); err != nil {
			t.Fatal(err)
		}
		if orig, _ := os.ReadFile(g); !bytes.Equal(orig, buf.Bytes()) {
			t.Errorf("%s: re-encoding does not reproduce the file", g)
		}
		for _, name := range f.Names() {
			info, _ := f.Tensor(name)
			if info.DType == "I64" {
				if _, _, err := f.Int64(name); err != nil {
					t.Error(err)
				}
			} else if _, _, err := f.Float32(name); err != nil {
				t.Error(err)
			}
		}
	}

	in, err := ReadFile(filepath.Join(oracleCase, "golden/inputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]json.RawMessage
	readJSON(t, filepath.Join(oracleCase, "golden/inputs.json"), &js)
	if len(js) != len(in.Names()) {
		t.Errorf("inputs.json has %d arrays, inputs.safetensors %d tensors", len(js), len(in.Names()))
	}
	for name, raw := range js {
		var nested any
		if err := json.Unmarshal(raw, &nested); err != nil {
			t.Fatal(err)
		}
		var flat []float64
		shape := flatten(nested, 0, nil, &flat)
		info, ok := in.Tensor(name)
		if !ok {
			t.Errorf("inputs.safetensors lacks %q", name)
			continue
		}
		if !reflect.DeepEqual(info.Shape, shape) {
			t.Errorf("%s: shape %v, JSON %v", name, info.Shape, shape)
		}
		switch info.DType {
		case "I64":
			got, _, _ := in.Int64(name)
			for i := range flat {
				if float64(got[i]) != flat[i] {
					t.Errorf("%s[%d] = %d, JSON %v", name, i, got[i], flat[i])
					break
				}
			}
		case "F32":
			got, _, _ := in.Float32(name)
			for i := range flat {
				if got[i] != float32(flat[i]) {
					t.Errorf("%s[%d] = %v, JSON %v", name, i, got[i], flat[i])
					break
				}
			}
		default:
			t.Errorf("%s: unexpected dtype %s", name, info.DType)
		}
	}
	ids, _, err := in.Int64("mlm.input_ids")
	if err != nil || len(ids) < 2 || ids[0] != 2 {
		t.Errorf("mlm.input_ids starts %v (%v), want [CLS]=2 first", ids[:min(len(ids), 4)], err)
	}
}

func flatten(v any, depth int, shape []int, out *[]float64) []int {
	switch x := v.(type) {
	case []any:
		if len(shape) == depth {
			shape = append(shape, len(x))
		}
		for _, e := range x {
			shape = flatten(e, depth+1, shape, out)
		}
	case float64:
		*out = append(*out, x)
	}
	return shape
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
