package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/spladapt/spladapt/internal/atomicfile"
)

// Named is a float32 tensor to write, row-major with the given shape
// (empty shape = scalar, one element).
type Named struct {
	Name  string
	Shape []int
	Data  []float32
}

// NamedInt64 is an int64 tensor to write (stored as I64).
type NamedInt64 struct {
	Name  string
	Shape []int
	Data  []int64
}

// Raw is a tensor already in its stored form: Data holds the little-endian
// bytes of DType elements, row-major.
type Raw struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// WriteFile writes float32 tensors as F32 to path, atomically (temporary
// file, fsync, rename). metadata may be nil. Names must be unique, non-empty
// and not "__metadata__"; len(Data) must equal Π Shape.
func WriteFile(path string, tensors []Named, metadata map[string]string) error {
	raws := make([]Raw, len(tensors))
	for i, t := range tensors {
		raws[i] = Raw{Name: t.Name, DType: "F32", Shape: t.Shape, Data: f32Bytes(t.Data)}
	}
	return WriteRaw(path, raws, metadata)
}

// WriteFileMixed writes float32 tensors as F32 and int64 tensors as I64 in
// one file (golden inputs hold token ids as I64 next to float tensors).
func WriteFileMixed(path string, f32 []Named, i64 []NamedInt64, metadata map[string]string) error {
	raws := make([]Raw, 0, len(f32)+len(i64))
	for _, t := range f32 {
		raws = append(raws, Raw{Name: t.Name, DType: "F32", Shape: t.Shape, Data: f32Bytes(t.Data)})
	}
	for _, t := range i64 {
		b := make([]byte, 8*len(t.Data))
		for i, v := range t.Data {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		raws = append(raws, Raw{Name: t.Name, DType: "I64", Shape: t.Shape, Data: b})
	}
	return WriteRaw(path, raws, metadata)
}

// WriteRaw writes tensors in their stored form to path, atomically.
func WriteRaw(path string, tensors []Raw, metadata map[string]string) error {
	if err := checkRaw(tensors); err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return Encode(w, tensors, metadata)
	})
}

func f32Bytes(d []float32) []byte {
	b := make([]byte, 4*len(d))
	for i, v := range d {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func checkRaw(tensors []Raw) error {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if t.Name == "" || t.Name == "__metadata__" {
			return fmt.Errorf("invalid tensor name %q", t.Name)
		}
		if !utf8.ValidString(t.Name) {
			return fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		size, ok := dtypeSize[t.DType]
		if !ok {
			return fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if len(t.Data) != n*size {
			return fmt.Errorf("tensor %q: %d bytes of data, want %d (%s × %v)", t.Name, len(t.Data), n*size, t.DType, t.Shape)
		}
	}
	return nil
}

// Encode writes a safetensors file to w. Tensors are stored in the order of
// the official writer — element size descending, then name — so files are
// byte-for-byte reproducible whatever order the caller gives. The header is
// compact JSON with "__metadata__" first (omitted when metadata is empty),
// padded with spaces so the data buffer starts at a multiple of 8.
func Encode(w io.Writer, tensors []Raw, metadata map[string]string) error {
	if err := checkRaw(tensors); err != nil {
		return err
	}
	order := make([]Raw, len(tensors))
	copy(order, tensors)
	sort.Slice(order, func(i, j int) bool {
		si, sj := dtypeSize[order[i].DType], dtypeSize[order[j].DType]
		if si != sj {
			return si > sj
		}
		return order[i].Name < order[j].Name
	})
	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		comma()
		h.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	off := 0
	for _, t := range order {
		comma()
		writeJSONString(&h, t.Name)
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, t.DType)
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			fmt.Fprintf(&h, "%d", d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+len(t.Data))
		off += len(t.Data)
	}
	h.WriteByte('}')
	for (8+h.Len())%8 != 0 {
		h.WriteByte(' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(h.Len()))
	bw.Write(n[:])
	bw.Write(h.Bytes())
	for _, t := range order {
		bw.Write(t.Data)
	}
	return bw.Flush()
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // cannot fail for a string
	b.Truncate(b.Len() - 1)
}
