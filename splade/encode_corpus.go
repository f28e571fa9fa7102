package splade

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/sparse"
)

// Encoding a corpus into shards of sparse vectors, resumably.
//
// EncodeShards streams the corpus in shards of ShardSize documents (corpus
// order). Each shard is encoded (length-bucketed batches, see EncodeDocs)
// and written to the work directory as one file, atomically; Shards.Each
// then reads the vectors back in corpus order (adapt.EncodeCorpus builds
// an index from them). A restarted run with the same model,
// corpus path and settings (manifest.json) skips the shards already written
// whose content still matches the corpus: the same document ids and the
// same SHA-256 of the documents' ids and texts, so an edited document is
// encoded again however its file's size and time look. The manifest also
// records the corpus files' sizes and times; when they changed, a message
// says so (Log) before the shards are checked.
//
// Shard file shard-NNNNNN.bin, little-endian:
//
//	magic   "SPLSHRD2"                     8 bytes
//	first   uint64  corpus position of the shard's first document
//	count   uint32  documents in the shard
//	tokens  uint64  real tokens encoded (for throughput statistics)
//	content [32]byte SHA-256 of the documents read (docsHash)
//	count × { idLen uvarint, id bytes, nnz uvarint, nnz × (term uint32, weight float32) }
//	crc     uint32  CRC-32 (IEEE) of every byte before it
//
// Terms are increasing within a document and weights are > 0.

// ShardOptions configure EncodeShards.
type ShardOptions struct {
	// ShardSize is the number of documents per shard (default 10 000).
	ShardSize int
	// Fingerprint identifies the model (see Fingerprint); required.
	Fingerprint string
	// Corpus is passed to corpora.OpenCorpus (skipping invalid records).
	Corpus corpora.Options
	// Progress, when not nil, is called after each batch with the
	// documents encoded or skipped (resumed) so far.
	Progress func(docs int)
	// Log, when not nil, receives messages about resuming (a corpus that
	// changed since the work directory was made).
	Log func(msg string)
}

// ShardStats describe an EncodeShards run.
type ShardStats struct {
	Docs          int     `json:"docs"`
	Shards        int     `json:"shards"`
	ResumedShards int     `json:"resumed_shards"` // shards found done and not re-encoded
	StaleShards   int     `json:"stale_shards"`   // shards found but re-encoded: their documents changed
	EncodedDocs   int     `json:"encoded_docs"`   // documents encoded by this run
	EncodedTokens int64   `json:"encoded_tokens"` // their real tokens
	EncodeSeconds float64 `json:"encode_seconds"` // wall time spent encoding by this run
	DocsPerSec    float64 `json:"docs_per_sec"`
	TokensPerSec  float64 `json:"tokens_per_sec"`
}

// Shards are the shard files of an encoded corpus, in corpus order.
type Shards struct {
	Paths []string
	Stats ShardStats
	// IDF (V) is the corpus's IDF over the same tokens the model saw (each
	// document cut at enc.MaxLen), for an inference-free encoder's queries
	// (QueriesFor); nil for a two-sided encoder.
	IDF []float32
}

// Each calls fn with every document's id and vector, in corpus order,
// checking each shard's CRC; it stops at fn's first error.
func (s *Shards) Each(fn func(id string, vec []sparse.TermWeight) error) error {
	for _, path := range s.Paths {
		if err := readShard(path, fn); err != nil {
			return err
		}
	}
	return nil
}

// encodeManifest identifies what the shards of a work directory were made
// from.
type encodeManifest struct {
	Format      int    `json:"format"`
	Corpus      string `json:"corpus"`
	Fingerprint string `json:"fingerprint"`
	MaxLen      int    `json:"max_len"`
	TopN        int    `json:"top_n"`
	ShardSize   int    `json:"shard_size"`
	// CorpusFiles is the SHA-256 of the corpus files' paths, sizes and
	// modification times when the work directory was last used; a change
	// is reported, and the shards' content hashes decide what is redone.
	CorpusFiles string `json:"corpus_files"`
}

// EncodeShards encodes every document of the corpus at corpusPath
// (anything corpora.OpenCorpus reads) with enc into shard files in
// workDir. See the shard format above for resuming. A work directory made
// with other settings is an error naming it. The context is checked
// between batches; on cancellation the finished shards stay for the next
// run. Cost: one forward pass per document.
func EncodeShards(ctx context.Context, enc *Encoder, corpusPath, workDir string, opt ShardOptions) (*Shards, error) {
	if opt.ShardSize <= 0 {
		opt.ShardSize = 10000
	}
	if opt.Fingerprint == "" {
		return nil, fmt.Errorf("encode corpus: no model fingerprint")
	}
	abs, err := filepath.Abs(corpusPath)
	if err != nil {
		return nil, fmt.Errorf("encode corpus: %w", err)
	}
	files, err := corpusFiles(abs)
	if err != nil {
		return nil, fmt.Errorf("encode corpus: %w", err)
	}
	man := encodeManifest{Format: 2, Corpus: abs, Fingerprint: opt.Fingerprint, MaxLen: enc.MaxLen, TopN: enc.TopN, ShardSize: opt.ShardSize, CorpusFiles: files}
	changed, err := checkManifest(workDir, man)
	if err != nil {
		return nil, err
	}
	if tmps, err := filepath.Glob(filepath.Join(workDir, ".shard-*.tmp-*")); err == nil {
		for _, t := range tmps { // left by a killed run
			os.Remove(t)
		}
	}
	if changed && opt.Log != nil {
		opt.Log(fmt.Sprintf("corpus %s changed since work directory %s was made: shards whose documents changed are encoded again", corpusPath, workDir))
	}
	r, err := corpora.OpenCorpus(corpusPath, opt.Corpus)
	if err != nil {
		return nil, fmt.Errorf("encode corpus: %w", err)
	}
	defer r.Close()

	st := &ShardStats{}
	var df *DocFreqs // the corpus's IDF for an inference-free model's queries
	if enc.QueryWeights != nil {
		df = NewDocFreqs(enc.Tok, enc.MaxLen)
	}
	var shards []string
	done := 0
	for eof := false; !eof; {
		var ids, texts []string
		h := sha256.New()
		for len(ids) < opt.ShardSize {
			d, err := r.Next()
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				return nil, fmt.Errorf("encode corpus: %w", err)
			}
			ids = append(ids, d.ID)
			texts = append(texts, d.Content())
			hashDoc(h, d.ID, texts[len(texts)-1])
		}
		var sum [32]byte
		h.Sum(sum[:0])
		if len(ids) == 0 {
			break
		}
		if df != nil {
			df.Add(texts)
		}
		path := filepath.Join(workDir, fmt.Sprintf("shard-%06d.bin", len(shards)))
		first := st.Docs
		st.Docs += len(ids)
		shards = append(shards, path)
		have, haveSum, err := readShardIDs(path)
		if err == nil && (!slices.Equal(have, ids) || haveSum != sum) {
			st.StaleShards++
		}
		if err == nil && slices.Equal(have, ids) && haveSum == sum {
			st.ResumedShards++
			done += len(ids)
			if opt.Progress != nil {
				opt.Progress(done)
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		var tokens int64
		vecs, err := enc.EncodeDocsProgress(texts, func(n, tok int) {
			done += n
			tokens += int64(tok)
			if opt.Progress != nil {
				opt.Progress(done)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("encode corpus: shard %d (documents %d…): %w", len(shards)-1, first, err)
		}
		st.EncodeSeconds += time.Since(start).Seconds()
		st.EncodedDocs += len(ids)
		st.EncodedTokens += tokens
		if err := writeShard(path, uint64(first), tokens, sum, ids, vecs); err != nil {
			return nil, err
		}
	}
	st.Shards = len(shards)
	if st.Docs == 0 {
		return nil, fmt.Errorf("encode corpus %s: no documents", corpusPath)
	}
	if st.EncodeSeconds > 0 {
		st.DocsPerSec = float64(st.EncodedDocs) / st.EncodeSeconds
		st.TokensPerSec = float64(st.EncodedTokens) / st.EncodeSeconds
	}

	out := &Shards{Paths: shards, Stats: *st}
	if df != nil {
		out.IDF = df.IDF()
	}
	return out, nil
}

// hashDoc adds one document to a shard's content hash: id and text, each
// preceded by its length, so that no two documents hash alike by moving
// bytes between fields.
func hashDoc(h hash.Hash, id, text string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(id)))
	h.Write(n[:])
	io.WriteString(h, id)
	binary.LittleEndian.PutUint64(n[:], uint64(len(text)))
	h.Write(n[:])
	io.WriteString(h, text)
}

// corpusFiles fingerprints the files under the corpus path: SHA-256 of
// their corpora.WriteFileStamps, as the pretraining token cache keys its
// corpora. Cost: one stat per file.
func corpusFiles(abs string) (string, error) {
	h := sha256.New()
	if err := corpora.WriteFileStamps(h, abs); err != nil {
		return "", fmt.Errorf("fingerprint corpus %s: %w", abs, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkManifest creates the work directory with its manifest, or checks
// that an existing one was made with the same settings; changed reports
// that the corpus files changed since (the manifest is then updated). A
// work directory that holds files but no manifest is refused: it is
// removed when the index is built, and it is not encode's.
func checkManifest(dir string, want encodeManifest) (changed bool, err error) {
	path := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(path)
	if err == nil {
		var have encodeManifest
		if err := json.Unmarshal(raw, &have); err != nil {
			return false, fmt.Errorf("encode corpus: %s: %w (remove %s to start over)", path, err, dir)
		}
		files := have.CorpusFiles
		have.CorpusFiles = want.CorpusFiles
		if have != want {
			return false, fmt.Errorf("encode corpus: work directory %s was made with other settings (%+v, now %+v): remove it to start over, or pass another --work", dir, have, want)
		}
		if files == want.CorpusFiles {
			return false, nil
		}
		raw, _ = json.MarshalIndent(want, "", "  ")
		return true, atomicfile.WriteFile(path, append(raw, '\n'), 0o644)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("encode corpus: %w", err)
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if e.Name() != atomicfile.Manifest && !strings.HasPrefix(e.Name(), ".manifest.json.tmp-") {
				return false, fmt.Errorf("encode corpus: work directory %s holds %s but no manifest.json: it is not encode's work (it is removed when the index is built); pass another --work", dir, e.Name())
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("encode corpus: %w", err)
	}
	raw, _ = json.MarshalIndent(want, "", "  ")
	return false, atomicfile.WriteFile(path, append(raw, '\n'), 0o644)
}

const shardMagic = "SPLSHRD2"

// shardHeader is the size of a shard's fixed header.
const shardHeader = 8 + 8 + 4 + 8 + 32

// writeShard writes one shard file atomically.
func writeShard(path string, first uint64, tokens int64, sum [32]byte, ids []string, vecs [][]sparse.TermWeight) error {
	var buf bytes.Buffer
	buf.WriteString(shardMagic)
	var tmp [binary.MaxVarintLen64]byte
	buf.Write(binary.LittleEndian.AppendUint64(nil, first))
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(ids))))
	buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(tokens)))
	buf.Write(sum[:])
	for i, id := range ids {
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(id)))])
		buf.WriteString(id)
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(vecs[i])))])
		for _, tw := range vecs[i] {
			var e [8]byte
			binary.LittleEndian.PutUint32(e[:4], tw.Term)
			binary.LittleEndian.PutUint32(e[4:], math.Float32bits(tw.Weight))
			buf.Write(e[:])
		}
	}
	buf.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(buf.Bytes())))
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write shard: %w", err)
	}
	return nil
}

// readShard checks a shard file and calls fn for every document in order.
func readShard(path string, fn func(id string, vec []sparse.TermWeight) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("shard %s: %s", path, fmt.Sprintf(format, args...))
	}
	if len(data) < shardHeader+4 || string(data[:8]) != shardMagic {
		return bad("not a shard file")
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return bad("CRC mismatch")
	}
	count := int(binary.LittleEndian.Uint32(data[16:20]))
	br := bufio.NewReader(bytes.NewReader(body[shardHeader:]))
	rest := len(body) - shardHeader
	for i := 0; i < count; i++ {
		n, err := binary.ReadUvarint(br)
		if err != nil || n > uint64(rest) {
			return bad("document %d: bad id length", i)
		}
		id := make([]byte, n)
		if _, err := io.ReadFull(br, id); err != nil {
			return bad("document %d: %v", i, err)
		}
		nnz, err := binary.ReadUvarint(br)
		if err != nil || nnz > uint64(rest)/8 {
			return bad("document %d: bad vector length", i)
		}
		vec := make([]sparse.TermWeight, nnz)
		var e [8]byte
		for k := range vec {
			if _, err := io.ReadFull(br, e[:]); err != nil {
				return bad("document %d: %v", i, err)
			}
			vec[k] = sparse.TermWeight{Term: binary.LittleEndian.Uint32(e[:4]), Weight: math.Float32frombits(binary.LittleEndian.Uint32(e[4:]))}
		}
		if err := fn(string(id), vec); err != nil {
			return fmt.Errorf("shard %s: document %q: %w", path, id, err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return bad("trailing bytes after %d documents", count)
	}
	return nil
}

// readShardIDs returns the document ids and the content hash of a valid
// shard.
func readShardIDs(path string) ([]string, [32]byte, error) {
	var ids []string
	var sum [32]byte
	err := readShard(path, func(id string, _ []sparse.TermWeight) error {
		ids = append(ids, id)
		return nil
	})
	if err == nil {
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, sum, rerr
		}
		copy(sum[:], data[28:shardHeader])
	}
	return ids, sum, err
}
