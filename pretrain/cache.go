package pretrain

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/tokenize"
)

// Token cache file, version 1 (all integers little-endian):
//
//	[0, 8)    magic "SPLTOKC1"
//	[8, 40)   key: SHA-256 of the inputs (see cacheKey)
//	u32       width W of a token id in bytes: 2 when the vocabulary has at
//	          most 65536 tokens, else 4
//	u64       vocabulary size
//	u64       N, number of tokens
//	u64       D, number of documents
//	N × W     token ids
//	⌈N/8⌉     word-start bits, token i in bit i%8 of byte i/8
//	(D+1)×u64 document start offsets (0 first, N last)
//	u32       CRC-32 (IEEE) of every byte before it
//
// The file is named tokens-<first 16 hex digits of the key>.bin and written
// atomically; the full key inside guards against prefix collisions.
const cacheMagic = "SPLTOKC1"

const cacheVersion = 1

// cacheKey hashes everything the token stream depends on.
func cacheKey(paths []string, tok *tokenize.Tokenizer, skipInvalid bool) ([32]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "spladapt token cache v%d\nlowercase=%v skipInvalid=%v\n", cacheVersion, tok.Lowercase(), skipInvalid)
	for _, t := range tok.Vocab() {
		io.WriteString(h, t)
		h.Write([]byte{0})
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return [32]byte{}, fmt.Errorf("fingerprint corpus %s: %w", p, err)
		}
		fmt.Fprintf(h, "corpus %q\n", abs)
		if err := corpora.WriteFileStamps(h, abs); err != nil {
			return [32]byte{}, fmt.Errorf("fingerprint corpus %s: %w", p, err)
		}
	}
	var k [32]byte
	h.Sum(k[:0])
	return k, nil
}

func cacheFile(dir string, key [32]byte) string {
	return filepath.Join(dir, "tokens-"+hex.EncodeToString(key[:8])+".bin")
}

func writeCache(path string, key [32]byte, s *TokenStream) error {
	width := 2
	if s.VocabSize > 1<<16 {
		width = 4
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		crc := crc32.NewIEEE()
		bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
		var b8 [8]byte
		u64 := func(v uint64) { binary.LittleEndian.PutUint64(b8[:], v); bw.Write(b8[:]) }
		bw.WriteString(cacheMagic)
		bw.Write(key[:])
		binary.LittleEndian.PutUint32(b8[:4], uint32(width))
		bw.Write(b8[:4])
		u64(uint64(s.VocabSize))
		u64(uint64(len(s.IDs)))
		u64(uint64(s.Docs()))
		for _, id := range s.IDs {
			if width == 2 {
				binary.LittleEndian.PutUint16(b8[:2], uint16(id))
				bw.Write(b8[:2])
			} else {
				binary.LittleEndian.PutUint32(b8[:4], uint32(id))
				bw.Write(b8[:4])
			}
		}
		bits := make([]byte, (len(s.WordStart)+7)/8)
		for i, ws := range s.WordStart {
			if ws {
				bits[i/8] |= 1 << (i % 8)
			}
		}
		bw.Write(bits)
		for _, o := range s.DocStart {
			u64(uint64(o))
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b8[:4], crc.Sum32())
		_, err := w.Write(b8[:4])
		return err
	})
}

var errCacheMiss = errors.New("cache miss")

// readCache reads and fully validates a cache file; any problem (absent,
// other key, corrupt) is an error and the caller re-tokenises.
func readCache(path string, key [32]byte) (*TokenStream, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	const head = 8 + 32 + 4 + 8 + 8 + 8
	if len(b) < head+4 || string(b[:8]) != cacheMagic {
		return nil, fmt.Errorf("%s: not a token cache: %w", path, errCacheMiss)
	}
	if !bytes.Equal(b[8:40], key[:]) {
		return nil, fmt.Errorf("%s: other key: %w", path, errCacheMiss)
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%s: checksum mismatch: %w", path, errCacheMiss)
	}
	le := binary.LittleEndian
	width := int(le.Uint32(b[40:]))
	vocab, n, d := le.Uint64(b[44:]), le.Uint64(b[52:]), le.Uint64(b[60:])
	if width != 2 && width != 4 || n > uint64(len(b)) || d > uint64(len(b)) ||
		uint64(len(b)) != head+n*uint64(width)+(n+7)/8+(d+1)*8+4 {
		return nil, fmt.Errorf("%s: inconsistent sizes: %w", path, errCacheMiss)
	}
	s := &TokenStream{IDs: make([]int32, n), WordStart: make([]bool, n), DocStart: make([]int64, d+1), VocabSize: int(vocab)}
	p := b[head:]
	for i := range s.IDs {
		if width == 2 {
			s.IDs[i] = int32(le.Uint16(p[2*i:]))
		} else {
			s.IDs[i] = int32(le.Uint32(p[4*i:]))
		}
		if uint64(s.IDs[i]) >= vocab {
			return nil, fmt.Errorf("%s: token id %d beyond vocabulary %d: %w", path, s.IDs[i], vocab, errCacheMiss)
		}
	}
	p = p[int(n)*width:]
	for i := range s.WordStart {
		s.WordStart[i] = p[i/8]&(1<<(i%8)) != 0
	}
	p = p[(n+7)/8:]
	for i := range s.DocStart {
		s.DocStart[i] = int64(le.Uint64(p[8*i:]))
		if s.DocStart[i] > int64(n) || i > 0 && s.DocStart[i] < s.DocStart[i-1] || i == 0 && s.DocStart[0] != 0 {
			return nil, fmt.Errorf("%s: bad document offset %d: %w", path, i, errCacheMiss)
		}
	}
	if s.DocStart[d] != int64(n) {
		return nil, fmt.Errorf("%s: documents end at %d, not %s: %w", path, s.DocStart[d], strconv.FormatUint(n, 10), errCacheMiss)
	}
	return s, nil
}
