package splade

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spladapt/spladapt/sparse"
)

// FuzzReadShard: any bytes end in an error or in documents, never a panic;
// a shard that decodes re-encodes to a shard that decodes to the same
// documents.
func FuzzReadShard(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.bin")
	if err := writeShard(good, 3, 7, [32]byte{1, 2, 3}, []string{"a", "bb"}, [][]sparse.TermWeight{{{Term: 1, Weight: 0.5}}, nil}); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(good)
	f.Add(seed)
	f.Add([]byte(shardMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "s.bin")
		os.WriteFile(p, data, 0o644)
		var ids []string
		var vecs [][]sparse.TermWeight
		if err := readShard(p, func(id string, v []sparse.TermWeight) error {
			ids, vecs = append(ids, id), append(vecs, v)
			return nil
		}); err != nil {
			return
		}
		q := filepath.Join(t.TempDir(), "again.bin")
		first := binary.LittleEndian.Uint64(data[8:16])
		tokens := int64(binary.LittleEndian.Uint64(data[20:28]))
		var sum [32]byte
		copy(sum[:], data[28:shardHeader])
		if err := writeShard(q, first, tokens, sum, ids, vecs); err != nil {
			t.Fatal(err)
		}
		ids2, sum2, err := readShardIDs(q)
		if err != nil || !slices.Equal(ids, ids2) || sum2 != sum {
			t.Fatalf("re-encoded shard: %v, ids %q then %q", err, ids, ids2)
		}
	})
}
