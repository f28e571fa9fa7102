package rerank

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/internal/grow"
)

// The MICE document-state store: docs/format/mice-store.md.

const (
	storeMagic       = "SPLMICES"
	storeFooterMagic = "SPLMICEF"
	storeVersion     = 1
	storeFloat32     = 1
	storeFooterLen   = 96
	storeHeaderLen   = 16
)

// ErrStoreCorrupt is wrapped by every error about a store's bytes.
var ErrStoreCorrupt = errors.New("corrupt MICE store")

// StoreMeta is a store's META section.
type StoreMeta struct {
	Format      int        `json:"format"`
	MICE        MICEConfig `json:"mice"`
	Fingerprint string     `json:"fingerprint"`
	Model       string     `json:"model,omitempty"`
	Documents   int        `json:"documents"`
}

var layerRe = regexp.MustCompile(`layer\.(\d+)\.`)

// Fingerprint is FNV-64a over the names and float32 bits of the parameters
// the document states depend on: the embeddings and layers below the
// fusion layer.
func (m *MICE) Fingerprint() string {
	h := fnv.New64a()
	var b [4]byte
	for _, p := range m.Model.Params {
		if sm := layerRe.FindStringSubmatch(p.Name); sm != nil {
			if l, _ := strconv.Atoi(sm[1]); l >= m.Cfg.Fusion {
				continue
			}
		} else if !strings.Contains(p.Name, "embeddings") {
			continue
		}
		h.Write([]byte(p.Name))
		for _, v := range p.W {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// BuildStore computes the states of docs (id → text) with m in batches of
// m.BatchSize documents of similar length and writes them to path
// (temp + fsync + rename). progress, when not nil, counts documents.
func BuildStore(m *MICE, docs map[string]string, path, model string, progress func(n int)) error {
	ids := make([]string, 0, len(docs))
	toks := map[string][]int32{}
	for id, text := range docs {
		ids = append(ids, id)
		toks[id] = m.DocIDs(text)
	}
	sort.Slice(ids, func(a, b int) bool {
		if la, lb := len(toks[ids[a]]), len(toks[ids[b]]); la != lb {
			return la < lb
		}
		return ids[a] < ids[b]
	})
	meta := StoreMeta{Format: storeVersion, MICE: m.Cfg, Fingerprint: m.Fingerprint(), Model: model, Documents: len(ids)}
	C := m.Model.Config.HiddenSize
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		sw := newStoreWriter(w, C)
		for lo := 0; lo < len(ids); lo += m.BatchSize {
			batch := ids[lo:min(lo+m.BatchSize, len(ids))]
			rows := make([][]int32, len(batch))
			for i, id := range batch {
				rows[i] = toks[id]
			}
			dids, dmask, Td := pad(rows, 1, m.Tok.PAD())
			xd := m.pass.DocStates(m.Cfg.MICEOptions, dids, dmask, len(batch), Td, m.Cfg.QueryLength)
			for i, id := range batch {
				if err := sw.add(id, xd[i*Td*C:(i*Td+len(rows[i]))*C]); err != nil {
					return err
				}
			}
			if progress != nil {
				progress(len(batch))
			}
		}
		return sw.finish(meta)
	})
}

// storeWriter streams a store: STATES as documents come, then the rest.
type storeWriter struct {
	w    *bufio.Writer
	err  error
	pos  uint64
	C    int
	crc  uint32
	ids  []string
	offs []uint64
	buf  []byte
}

func newStoreWriter(w io.Writer, C int) *storeWriter {
	sw := &storeWriter{w: bufio.NewWriterSize(w, 1<<20), C: C, offs: []uint64{0}}
	var h [storeHeaderLen]byte
	copy(h[:], storeMagic)
	binary.LittleEndian.PutUint32(h[8:], storeVersion)
	binary.LittleEndian.PutUint32(h[12:], storeFloat32)
	sw.write(h[:])
	return sw
}

func (sw *storeWriter) write(b []byte) {
	if sw.err != nil {
		return
	}
	_, sw.err = sw.w.Write(b)
	sw.pos += uint64(len(b))
}

// add appends one document's rows (n,C), n ≥ 1.
func (sw *storeWriter) add(id string, states []float32) error {
	n := len(states) / sw.C
	if n == 0 || n*sw.C != len(states) {
		return fmt.Errorf("mice store: document %q has %d floats, want a positive multiple of %d", id, len(states), sw.C)
	}
	sw.buf = slices.Grow(sw.buf[:0], 4*len(states))[:4*len(states)]
	for i, v := range states {
		binary.LittleEndian.PutUint32(sw.buf[4*i:], math.Float32bits(v))
	}
	sw.crc = crc32.Update(sw.crc, crc32.IEEETable, sw.buf)
	sw.write(sw.buf)
	sw.ids = append(sw.ids, id)
	sw.offs = append(sw.offs, sw.offs[len(sw.offs)-1]+uint64(n))
	return sw.err
}

// finish writes the CRC of STATES, IDS, OFFS, META and the footer.
func (sw *storeWriter) finish(meta StoreMeta) error {
	var footer [storeFooterLen]byte
	le := binary.LittleEndian
	le.PutUint64(footer[0:], uint64(len(sw.ids)))
	le.PutUint32(footer[8:], uint32(sw.C))
	section := func(slot int, off uint64, data []byte, crc uint32) {
		le.PutUint64(footer[slot:], off)
		le.PutUint64(footer[slot+8:], uint64(len(data)))
		if data != nil {
			sw.write(data)
		}
		var c [4]byte
		le.PutUint32(c[:], crc)
		sw.write(c[:])
	}
	statesLen := sw.pos - storeHeaderLen
	le.PutUint64(footer[16:], storeHeaderLen)
	le.PutUint64(footer[24:], statesLen)
	var c [4]byte
	le.PutUint32(c[:], sw.crc)
	sw.write(c[:])
	var ids []byte
	for _, id := range sw.ids {
		ids = le.AppendUint32(ids, uint32(len(id)))
		ids = append(ids, id...)
	}
	section(32, sw.pos, ids, crc32.ChecksumIEEE(ids))
	offs := make([]byte, 0, 8*len(sw.offs))
	for _, o := range sw.offs {
		offs = le.AppendUint64(offs, o)
	}
	section(48, sw.pos, offs, crc32.ChecksumIEEE(offs))
	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	section(64, sw.pos, mj, crc32.ChecksumIEEE(mj))
	le.PutUint32(footer[80:], crc32.ChecksumIEEE(footer[:80]))
	copy(footer[88:], storeFooterMagic)
	sw.write(footer[:])
	if sw.err != nil {
		return sw.err
	}
	return sw.w.Flush()
}

// Store is a MICE document-state store in memory.
type Store struct {
	Meta   StoreMeta
	C      int
	ids    map[string]int
	offs   []uint64  // (N+1)
	states []float32 // (rows,C)
}

// Len is the number of documents.
func (s *Store) Len() int { return len(s.offs) - 1 }

// States returns document id's rows (n,C), a view into the store, or
// false when the store does not hold it.
func (s *Store) States(id string) ([]float32, bool) {
	i, ok := s.ids[id]
	if !ok {
		return nil, false
	}
	return s.states[s.offs[i]*uint64(s.C) : s.offs[i+1]*uint64(s.C)], true
}

// OpenStore reads the store at path into memory and checks every
// invariant of docs/format/mice-store.md; errors about the bytes wrap
// ErrStoreCorrupt. Cost: one read of the file and one CRC pass over it.
func OpenStore(path string) (*Store, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open MICE store: %w", err)
	}
	s, err := decodeStore(raw)
	if err != nil {
		return nil, fmt.Errorf("open MICE store %s: %w", path, err)
	}
	return s, nil
}

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrStoreCorrupt, fmt.Sprintf(format, a...))
}

// decodeStore parses and validates a whole store.
func decodeStore(raw []byte) (*Store, error) {
	le := binary.LittleEndian
	size := uint64(len(raw))
	if size < storeHeaderLen+storeFooterLen+16 {
		return nil, corrupt("%d bytes: too short for a store", size)
	}
	if string(raw[:8]) != storeMagic {
		return nil, corrupt("bad magic %q, want %q (not a MICE store)", raw[:8], storeMagic)
	}
	if v := le.Uint32(raw[8:]); v != storeVersion {
		return nil, corrupt("format version %d, want %d (rebuild it with spladapt mice store)", v, storeVersion)
	}
	if t := le.Uint32(raw[12:]); t != storeFloat32 {
		return nil, corrupt("element type %d, want %d (float32)", t, storeFloat32)
	}
	f := raw[size-storeFooterLen:]
	if string(f[88:96]) != storeFooterMagic {
		return nil, corrupt("no footer (truncated file?)")
	}
	if got, want := crc32.ChecksumIEEE(f[:80]), le.Uint32(f[80:]); got != want {
		return nil, corrupt("footer CRC %08x, stored %08x", got, want)
	}
	N, C := le.Uint64(f[0:]), uint64(le.Uint32(f[8:]))
	if C == 0 || C > 1<<20 || N > size/8 {
		return nil, corrupt("hidden size %d, %d documents: impossible for a file of %d bytes", C, N, size)
	}
	names := []string{"STATES", "IDS", "OFFS", "META"}
	secs := make([][]byte, 4)
	next := uint64(storeHeaderLen)
	for i := range 4 {
		off, n := le.Uint64(f[16+16*i:]), le.Uint64(f[24+16*i:])
		if off != next || n > size || off+n+4 > size-storeFooterLen {
			return nil, corrupt("section %s at %d length %d: want it at %d, inside the file", names[i], off, n, next)
		}
		secs[i] = raw[off : off+n]
		if got, want := crc32.ChecksumIEEE(secs[i]), le.Uint32(raw[off+n:]); got != want {
			return nil, corrupt("section %s: CRC %08x, stored %08x", names[i], got, want)
		}
		next = off + n + 4
	}
	if next != size-storeFooterLen {
		return nil, corrupt("%d bytes between the last section and the footer", size-storeFooterLen-next)
	}
	if uint64(len(secs[2])) != 8*(N+1) {
		return nil, corrupt("OFFS holds %d bytes, want %d for %d documents", len(secs[2]), 8*(N+1), N)
	}
	s := &Store{C: int(C), ids: make(map[string]int, N), offs: make([]uint64, N+1)}
	for i := range s.offs {
		s.offs[i] = le.Uint64(secs[2][8*i:])
		if i == 0 && s.offs[0] != 0 || i > 0 && s.offs[i] <= s.offs[i-1] {
			return nil, corrupt("row offsets of document %d: %d after %d, want 0 first and strictly increasing", i, s.offs[i], s.offs[max(i-1, 0)])
		}
	}
	if rows := s.offs[N]; uint64(len(secs[0])) != rows*C*4 {
		return nil, corrupt("STATES holds %d bytes, want %d for %d rows of %d floats", len(secs[0]), rows*C*4, rows, C)
	}
	ids := secs[1]
	for i := range N {
		if len(ids) < 4 || uint64(len(ids)-4) < uint64(le.Uint32(ids)) {
			return nil, corrupt("IDS ends inside document %d", i)
		}
		n := le.Uint32(ids)
		id := string(ids[4 : 4+n])
		if _, dup := s.ids[id]; dup {
			return nil, corrupt("document id %q twice", id)
		}
		s.ids[id] = int(i)
		ids = ids[4+n:]
	}
	if len(ids) != 0 {
		return nil, corrupt("%d bytes after the %d ids", len(ids), N)
	}
	if err := json.Unmarshal(secs[3], &s.Meta); err != nil {
		return nil, corrupt("META: %v", err)
	}
	if s.Meta.Documents != int(N) || s.Meta.Format != storeVersion {
		return nil, corrupt("META says %d documents, format %d; the footer %d, format %d", s.Meta.Documents, s.Meta.Format, N, storeVersion)
	}
	if err := s.Meta.MICE.MICEOptions.Validate(1 << 20); err != nil {
		return nil, corrupt("META: %v", err)
	}
	s.states = make([]float32, len(secs[0])/4)
	for i := range s.states {
		s.states[i] = math.Float32frombits(le.Uint32(secs[0][4*i:]))
	}
	return s, nil
}

// Check reports whether s was made by m: same MICE shape and fingerprint.
func (s *Store) Check(m *MICE) error {
	a, _ := json.Marshal(s.Meta.MICE)
	b, _ := json.Marshal(m.Cfg)
	if string(a) != string(b) || s.C != m.Model.Config.HiddenSize {
		return fmt.Errorf("store made for MICE %s (hidden %d), the model is %s (hidden %d): rebuild it with spladapt mice store", a, s.C, b, m.Model.Config.HiddenSize)
	}
	if fp := m.Fingerprint(); fp != s.Meta.Fingerprint {
		return fmt.Errorf("store made by another model (fingerprint %s, model %s %s): rebuild it with spladapt mice store", s.Meta.Fingerprint, m.Fingerprint(), s.Meta.Model)
	}
	return nil
}

// RerankStore re-ranks the top depth hits of every query of run as Rerank
// does, reading the document states from st instead of computing them:
// per query, the query's states once, then the interaction layers on
// batches of m.BatchSize documents. Every re-ranked document must be in
// the store. progress counts pairs.
func RerankStore(m *MICE, st *Store, queries map[string]string, run corpora.Run, depth int, progress func(n int)) (corpora.Run, error) {
	if err := st.Check(m); err != nil {
		return nil, fmt.Errorf("rerank: %w", err)
	}
	o, Tq, C := m.Cfg.MICEOptions, m.Cfg.QueryLength, st.C
	qids := make([]string, 0, len(run))
	for qid := range run {
		qids = append(qids, qid)
	}
	sort.Strings(qids)
	out := corpora.Run{}
	var xq, xd, dmask, qm []float32
	for _, qid := range qids {
		qt, ok := queries[qid]
		if !ok {
			return nil, fmt.Errorf("rerank: no text for query %q of the run", qid)
		}
		qids1, qmask1, _ := pad([][]int32{m.QueryIDs(qt)}, Tq, m.Tok.PAD())
		q := append([]float32(nil), m.pass.QueryStates(o, qids1, nil, qmask1, 1, Tq)...)
		hits := TopHits(run[qid], depth)
		res := make([]corpora.Hit, 0, len(hits))
		for lo := 0; lo < len(hits); lo += m.BatchSize {
			batch := hits[lo:min(lo+m.BatchSize, len(hits))]
			B := len(batch)
			states := make([][]float32, B)
			Td := 0
			for i, h := range batch {
				if states[i], ok = st.States(h.DocID); !ok {
					return nil, fmt.Errorf("rerank: document %q (query %q) is not in the store", h.DocID, qid)
				}
				Td = max(Td, len(states[i])/C)
			}
			xd, dmask = grow.To(xd, B*Td*C), grow.To(dmask, B*Td)
			clear(xd)
			clear(dmask)
			xq, qm = grow.To(xq, B*Tq*C), grow.To(qm, B*Tq)
			for i, s := range states {
				copy(xd[i*Td*C:], s)
				for j := range len(s) / C {
					dmask[i*Td+j] = 1
				}
				copy(xq[i*Tq*C:], q)
				copy(qm[i*Tq:], qmask1)
			}
			scores := m.pass.Score(o, xq, qm, Tq, xd, dmask, Td, B)
			for i, h := range batch {
				res = append(res, corpora.Hit{DocID: h.DocID, Score: float64(scores[i])})
			}
			if progress != nil {
				progress(B)
			}
		}
		SortHits(res)
		for i := range res {
			res[i].Rank = i + 1
		}
		out[qid] = res
	}
	return out, nil
}
