// Package safetensors reads and writes the safetensors tensor format used by
// Hugging Face checkpoints.
//
// Layout (all integers little-endian):
//
//	bytes [0, 8)      N = uint64 length of the JSON header
//	bytes [8, 8+N)    UTF-8 JSON object:
//	                    {"__metadata__": {str: str, ...},        (optional)
//	                     "<name>": {"dtype": "F32", "shape": [d0, d1, ...],
//	                                "data_offsets": [begin, end]}, ...}
//	                  padded with trailing spaces so that 8+N is a multiple of 8
//	bytes [8+N, EOF)  the data buffer; data_offsets are relative to its start,
//	                  end exclusive; tensors are row-major, little-endian and
//	                  tile the buffer exactly (no gap, no overlap, no tail).
//
// The reader validates all of this before handing out any tensor, so a
// *File that exists is internally consistent: every tensor's byte span lies
// inside the buffer and has exactly dtype size × Π shape bytes.
//
// The writer orders tensors as the official implementation does (element
// size descending, then name), writes "__metadata__" first and pads the
// header with spaces to 8-byte alignment; see docs in Write.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
	"unicode/utf8"
)

// MaxHeaderLen bounds the JSON header (100 MB, as the official reader does),
// so a corrupt length prefix cannot make the reader allocate gigabytes.
const MaxHeaderLen = 100_000_000

// dtypeSize gives the element size in bytes of every dtype the format
// defines that this package understands.
var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1,
	"U64": 8, "U32": 4, "U16": 2, "U8": 1,
	"BOOL": 1,
}

// DTypeSize returns the element size in bytes of a safetensors dtype name
// ("F32", "BF16", "I64", ...) and whether the dtype is known.
func DTypeSize(dtype string) (int, bool) {
	n, ok := dtypeSize[dtype]
	return n, ok
}

// Info describes one stored tensor. Shape is empty for a scalar.
type Info struct {
	DType string
	Shape []int
}

// NumElements returns Π Shape (1 for a scalar).
func (i Info) NumElements() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

type entry struct {
	Info
	begin, end int // byte span in the data buffer
}

// File is a parsed safetensors file held in memory. It is immutable and
// safe for concurrent use.
type File struct {
	path    string
	data    []byte // the data buffer (after the header)
	tensors map[string]entry
	names   []string // sorted
	meta    map[string]string
}

// ReadFile reads and validates the safetensors file at path. The whole file
// is read into memory (a bert-base checkpoint is ~440 MB in F32); tensors
// returned by Float32 and Int64 are fresh copies, so the file's bytes can be
// dropped as soon as the caller drops the *File.
//
// Errors name the file and, where it applies, the tensor: a truncated file,
// a header length beyond the file or above MaxHeaderLen, a header that is
// not a JSON object of well-formed entries, an unknown dtype, negative or
// overflowing dimensions, data_offsets that do not match dtype size × Π
// shape, or tensors that do not tile the data buffer exactly.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read safetensors: %w", err)
	}
	return Parse(path, b)
}

// Parse validates b as the content of a safetensors file; name is used in
// error messages only. The returned *File aliases b: do not modify b
// afterwards.
func Parse(name string, b []byte) (*File, error) {
	f, err := parse(name, b)
	if err != nil {
		return nil, fmt.Errorf("read safetensors %s: %w", name, err)
	}
	return f, nil
}

type rawEntry struct {
	DType       string   `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets []int64  `json:"data_offsets"`
}

func parse(name string, b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length (truncated file?)", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > MaxHeaderLen {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes (not a safetensors file?)", n, MaxHeaderLen)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated file?)", n, len(b))
	}
	hdr := b[8 : 8+n]
	if !utf8.Valid(hdr) {
		return nil, errors.New("header is not valid UTF-8")
	}
	f := &File{path: name, data: b[8+n:], tensors: map[string]entry{}}

	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("parse header JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("header is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("parse header JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("parse header JSON: unexpected %v", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("header lists %q twice", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			var meta map[string]string
			if err := dec.Decode(&meta); err != nil {
				return nil, fmt.Errorf("parse __metadata__ (want an object of strings): %w", err)
			}
			f.meta = meta
			continue
		}
		var re rawEntry
		if err := dec.Decode(&re); err != nil {
			return nil, fmt.Errorf("tensor %q: parse header entry: %w", key, err)
		}
		e, err := checkEntry(re, len(f.data))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		f.tensors[key] = e
		f.names = append(f.names, key)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, fmt.Errorf("parse header JSON: %w", err)
	}
	// Only padding may follow the object.
	if len(bytes.TrimRight(hdr[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, fmt.Errorf("header has trailing data after the JSON object")
	}
	sort.Strings(f.names)
	if f.meta == nil {
		f.meta = map[string]string{}
	}
	return f, checkTiling(f)
}

// checkEntry validates one header entry against a data buffer of size
// bufLen.
func checkEntry(re rawEntry, bufLen int) (entry, error) {
	size, ok := dtypeSize[re.DType]
	if !ok {
		if re.DType == "" {
			return entry{}, errors.New("missing dtype")
		}
		return entry{}, fmt.Errorf("unknown dtype %q", re.DType)
	}
	if re.Shape == nil {
		return entry{}, errors.New("missing shape (a scalar is written as [])")
	}
	dims := *re.Shape
	elems := uint64(1)
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return entry{}, fmt.Errorf("negative dimension %d in shape %v", d, dims)
		}
		hi, lo := bits.Mul64(elems, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return entry{}, fmt.Errorf("shape %v overflows", dims)
		}
		elems = lo
		shape[i] = int(d)
	}
	hi, want := bits.Mul64(elems, uint64(size))
	if hi != 0 || want > math.MaxInt64 {
		return entry{}, fmt.Errorf("shape %v overflows", dims)
	}
	if len(re.DataOffsets) != 2 {
		return entry{}, fmt.Errorf("data_offsets %v: want [begin, end]", re.DataOffsets)
	}
	begin, end := re.DataOffsets[0], re.DataOffsets[1]
	if begin < 0 || end < begin {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] are not an increasing pair of non-negative offsets", begin, end)
	}
	if uint64(end-begin) != want {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] span %d bytes, want %d (%s × %v)", begin, end, end-begin, want, re.DType, dims)
	}
	if end > int64(bufLen) {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] run past the %d-byte data buffer (truncated file?)", begin, end, bufLen)
	}
	return entry{Info: Info{DType: re.DType, Shape: shape}, begin: int(begin), end: int(end)}, nil
}

// checkTiling requires the tensors to cover the data buffer exactly, in
// some order, without gaps or overlaps, as the format demands.
func checkTiling(f *File) error {
	type span struct {
		name       string
		begin, end int
	}
	spans := make([]span, 0, len(f.tensors))
	for name, e := range f.tensors {
		spans = append(spans, span{name, e.begin, e.end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		if spans[i].end != spans[j].end {
			return spans[i].end < spans[j].end
		}
		return spans[i].name < spans[j].name
	})
	pos, prev := 0, ""
	for _, s := range spans {
		switch {
		case s.begin < pos:
			return fmt.Errorf("tensor %q at bytes [%d, %d) overlaps tensor %q ending at %d", s.name, s.begin, s.end, prev, pos)
		case s.begin > pos:
			return fmt.Errorf("tensor %q starts at byte %d, leaving a gap after byte %d", s.name, s.begin, pos)
		}
		pos, prev = s.end, s.name
	}
	if pos != len(f.data) {
		return fmt.Errorf("%d trailing bytes after the last tensor (data buffer is %d bytes, tensors cover %d)", len(f.data)-pos, len(f.data), pos)
	}
	return nil
}

// Path returns the name the file was read from.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in ascending byte order (a fresh slice).
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Tensor returns the dtype and shape of a tensor, and whether it exists.
// The returned Shape is a copy.
func (f *File) Tensor(name string) (Info, bool) {
	e, ok := f.tensors[name]
	if !ok {
		return Info{}, false
	}
	return Info{DType: e.DType, Shape: append([]int{}, e.Shape...)}, true
}

// Metadata returns a copy of the "__metadata__" map (empty, never nil,
// when the file has none).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

// Bytes returns a tensor's raw little-endian bytes (aliasing the file's
// memory: do not modify) with its dtype and shape.
func (f *File) Bytes(name string) ([]byte, Info, error) {
	e, ok := f.tensors[name]
	if !ok {
		return nil, Info{}, fmt.Errorf("safetensors %s: no tensor %q", f.path, name)
	}
	return f.data[e.begin:e.end:e.end], Info{DType: e.DType, Shape: append([]int{}, e.Shape...)}, nil
}

// Float32 returns a fresh float32 copy of a floating-point tensor and its
// shape. F32 is copied, F16 and BF16 are widened exactly (subnormals,
// infinities and NaN payloads included), F64 is rounded to nearest even.
// Integer and BOOL tensors are an error: converting them silently would
// hide a wrong tensor name.
func (f *File) Float32(name string) ([]float32, []int, error) {
	raw, info, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	n := info.NumElements()
	out := make([]float32, n)
	switch info.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case "F16":
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q has dtype %s, want a float dtype (F32, F16, BF16, F64)", f.path, name, info.DType)
	}
	return out, info.Shape, nil
}

// Int64 returns a fresh int64 copy of an integer tensor and its shape. I64
// is copied; the narrower integer dtypes and BOOL are widened; U64 values
// above math.MaxInt64 are an error. Float tensors are an error.
func (f *File) Int64(name string) ([]int64, []int, error) {
	raw, info, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	n := info.NumElements()
	out := make([]int64, n)
	le := binary.LittleEndian
	switch info.DType {
	case "I64":
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
	case "I32":
		for i := range out {
			out[i] = int64(int32(le.Uint32(raw[4*i:])))
		}
	case "I16":
		for i := range out {
			out[i] = int64(int16(le.Uint16(raw[2*i:])))
		}
	case "I8":
		for i := range out {
			out[i] = int64(int8(raw[i]))
		}
	case "U64":
		for i := range out {
			v := le.Uint64(raw[8*i:])
			if v > math.MaxInt64 {
				return nil, nil, fmt.Errorf("safetensors %s: tensor %q element %d = %d overflows int64", f.path, name, i, v)
			}
			out[i] = int64(v)
		}
	case "U32":
		for i := range out {
			out[i] = int64(le.Uint32(raw[4*i:]))
		}
	case "U16":
		for i := range out {
			out[i] = int64(le.Uint16(raw[2*i:]))
		}
	case "U8", "BOOL":
		for i := range out {
			out[i] = int64(raw[i])
		}
	default:
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q has dtype %s, want an integer dtype", f.path, name, info.DType)
	}
	return out, info.Shape, nil
}

// F16ToF32 widens IEEE 754 binary16 bits to float32, exactly: every half
// value, subnormals included, is representable in float32; NaN keeps its
// sign and payload (shifted into the top mantissa bits).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant × 2^-24; renormalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// F32ToF16 rounds a float32 to IEEE 754 binary16 bits, to nearest with
// ties to even; values beyond the half range become ±Inf, tiny values
// become subnormals or ±0, and NaN stays NaN (quiet, sign kept).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	// Unbiased exponent for half.
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): value = m × 2^-24 where the full
		// significand (with the implicit 1) is shifted right.
		if e < -10 {
			return sign // rounds to ±0 (even below half the smallest subnormal)
		}
		m := mant | 0x800000
		shift := uint32(14 - e) // 13 + (1 - e)
		half := uint32(1) << (shift - 1)
		q := m >> shift
		r := m & (1<<shift - 1)
		if r > half || (r == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q) // q may carry into the smallest normal: still correct
	}
	q := uint32(e)<<10 | mant>>13
	r := mant & 0x1fff
	if r > 0x1000 || (r == 0x1000 && q&1 == 1) {
		q++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(q)
}

// BF16ToF32 widens bfloat16 bits to float32 (exact: bf16 is the top half of
// a float32).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds a float32 to bfloat16 bits, to nearest with ties to
// even; NaN stays a quiet NaN with its sign.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if f != f {
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}
