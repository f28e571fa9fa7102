package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// file builds a safetensors file from a literal header and data length.
func file(header string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestParseErrors(t *testing.T) {
	valid := file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8)
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	cases := []struct {
		name  string
		b     []byte
		wants []string // substrings of the error
	}{
		{"empty", nil, []string{"too short", "truncated"}},
		{"header past EOF", valid[:20], []string{"runs past the end", "truncated"}},
		{"huge header length", huge, []string{"exceeds the limit"}},
		{"bad JSON", file(`{"a":{"dtype":"F32",`, 0), []string{"parse header"}},
		{"not an object", file(`[1,2]`, 0), []string{"not a JSON object"}},
		{"trailing garbage", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x`, 8), []string{"trailing data"}},
		{"unknown dtype", file(`{"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}`, 2), []string{`tensor "a"`, `unknown dtype "F8"`}},
		{"missing dtype", file(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, 8), []string{`tensor "a"`, "missing dtype"}},
		{"missing shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4), []string{`tensor "a"`, "missing shape"}},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8), []string{`tensor "a"`, "negative dimension"}},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), []string{`tensor "a"`, "span 8 bytes, want 12"}},
		{"offsets past data", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), []string{`tensor "a"`, "run past"}},
		{"decreasing offsets", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, 4), []string{`tensor "a"`, "increasing"}},
		{"one offset", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0]}}`, 0), []string{`tensor "a"`, "want [begin, end]"}},
		{"overflow", file(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, 8), []string{`tensor "a"`, "overflows"}},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), []string{`"b"`, "overlaps", `"a"`}},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12), []string{`"b"`, "gap"}},
		{"trailing bytes", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), []string{"4 trailing bytes"}},
		{"duplicate name", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), []string{`"a" twice`}},
		{"bad metadata", file(`{"__metadata__":{"k":1}}`, 0), []string{"__metadata__"}},
		{"invalid UTF-8", file("{\"\xff\":1}", 0), []string{"UTF-8"}},
	}
	for _, c := range cases {
		_, err := Parse("x.safetensors", c.b)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "x.safetensors") {
			t.Errorf("%s: error %q does not name the file", c.name, msg)
		}
		for _, w := range c.wants {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q lacks %q", c.name, msg, w)
			}
		}
	}
	if _, err := Parse("ok", valid); err != nil {
		t.Errorf("valid file: %v", err)
	}
	// An empty file with no tensors is valid.
	if f, err := Parse("ok", file(`{}`, 0)); err != nil || len(f.Names()) != 0 {
		t.Errorf("empty header: %v", err)
	}
}

func TestReadFileTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.safetensors")
	if err := WriteFile(path, []Named{{Name: "w", Shape: []int{4, 4}, Data: make([]float32, 16)}}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, cut := range []int{len(b) - 1, len(b) - 60, 9, 3} {
		os.WriteFile(path, b[:cut], 0o644)
		_, err := ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut at %d of %d: err = %v, want a truncation error naming %s", cut, len(b), err, path)
		}
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// FuzzParse: any input ends in an error or in a File whose every tensor can
// be read and re-encoded into a file that parses to the same tensors.
func FuzzParse(f *testing.F) {
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(file(`{"__metadata__":{"k":"v"},"b":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},"c":{"dtype":"I64","shape":[1,1],"data_offsets":[2,10]}}`, 10))
	f.Add(file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, 0))
	if b, err := os.ReadFile("testdata/mixed.safetensors"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse("fuzz", b)
		if err != nil {
			return
		}
		raws := rawTensors(t, p)
		for _, r := range raws {
			size, _ := DTypeSize(r.DType)
			if len(r.Data) != size*prod(r.Shape) {
				t.Fatalf("%s: %d bytes for %s %v", r.Name, len(r.Data), r.DType, r.Shape)
			}
			if _, _, err := p.Float32(r.Name); err != nil && strings.HasPrefix(r.DType, "F") {
				t.Fatal(err)
			}
			p.Int64(r.Name)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, raws, p.Metadata()); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		q, err := Parse("re", buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		for _, r := range raws {
			b2, info, err := q.Bytes(r.Name)
			if err != nil || info.DType != r.DType || !bytes.Equal(b2, r.Data) {
				t.Fatalf("%s changed through re-encoding", r.Name)
			}
		}
	})
}
