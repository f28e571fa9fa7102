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
	storeVersion     = 2 // the version BuildStore writes; OpenStore reads 1 too
	storeFloat32     = 1
	storeHeaderLen   = 16
)

// storeSections are the sections of each store version, in file order;
// the footer has one (offset, length) slot per section.
var storeSections = map[uint32][]string{
	1: {"STATES", "IDS", "OFFS", "META"},
	2: {"STATES", "IDS", "OFFS", "TOKENS", "META"},
}

// storeFooterLen is the footer's length in version v: N, C, reserved, the
// section slots, CRC, reserved, magic.
func storeFooterLen(v uint32) int { return 16 + 16*len(storeSections[v]) + 16 }

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
// (temp + fsync + rename) in format 2, with each document's token ids
// beside its states (what MICE.MatchTypes marks queries against).
// progress, when not nil, counts documents.
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
				if err := sw.add(id, xd[i*Td*C:(i*Td+len(rows[i]))*C], rows[i]); err != nil {
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

// storeWriter streams a store (format 2): STATES as documents come, then
// the rest; TOKENS waits in memory (4 bytes a row, 1/C of STATES).
type storeWriter struct {
	w    *bufio.Writer
	err  error
	pos  uint64
	C    int
	crc  uint32
	ids  []string
	offs []uint64
	toks []byte // TOKENS so far
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

// add appends one document's rows (n,C), n ≥ 1, and its n token ids.
func (sw *storeWriter) add(id string, states []float32, tokens []int32) error {
	n := len(states) / sw.C
	if n == 0 || n*sw.C != len(states) {
		return fmt.Errorf("mice store: document %q has %d floats, want a positive multiple of %d", id, len(states), sw.C)
	}
	if len(tokens) != n {
		return fmt.Errorf("mice store: document %q has %d rows and %d token ids, want one id a row", id, n, len(tokens))
	}
	for _, t := range tokens {
		sw.toks = binary.LittleEndian.AppendUint32(sw.toks, uint32(t))
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

// finish writes the CRC of STATES, then IDS, OFFS, TOKENS and META each
// with its CRC, and the footer (docs/format/mice-store.md, format 2).
func (sw *storeWriter) finish(meta StoreMeta) error {
	le := binary.LittleEndian
	fl := storeFooterLen(storeVersion)
	footer := make([]byte, fl)
	le.PutUint64(footer[0:], uint64(len(sw.ids)))
	le.PutUint32(footer[8:], uint32(sw.C))
	slot := func(i int, off, n uint64) { // section i's (offset, length)
		le.PutUint64(footer[16+16*i:], off)
		le.PutUint64(footer[24+16*i:], n)
	}
	writeCRC := func(crc uint32) {
		var c [4]byte
		le.PutUint32(c[:], crc)
		sw.write(c[:])
	}
	slot(0, storeHeaderLen, sw.pos-storeHeaderLen)
	writeCRC(sw.crc)
	var ids []byte
	for _, id := range sw.ids {
		ids = le.AppendUint32(ids, uint32(len(id)))
		ids = append(ids, id...)
	}
	offs := make([]byte, 0, 8*len(sw.offs))
	for _, o := range sw.offs {
		offs = le.AppendUint64(offs, o)
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	for i, data := range [][]byte{ids, offs, sw.toks, mj} { // IDS, OFFS, TOKENS, META
		slot(i+1, sw.pos, uint64(len(data)))
		sw.write(data)
		writeCRC(crc32.ChecksumIEEE(data))
	}
	le.PutUint32(footer[fl-16:], crc32.ChecksumIEEE(footer[:fl-16]))
	copy(footer[fl-8:], storeFooterMagic)
	sw.write(footer)
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
	tokens []int32   // (rows) token ids; nil in a format-1 store
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

// Tokens returns document id's token ids "d… [SEP]", one per row of its
// states, a view into the store; false when the store does not hold the
// document or is of format 1, which has no token ids (HasTokens).
func (s *Store) Tokens(id string) ([]int32, bool) {
	i, ok := s.ids[id]
	if !ok || s.tokens == nil {
		return nil, false
	}
	return s.tokens[s.offs[i]:s.offs[i+1]], true
}

// HasTokens reports whether the store holds its documents' token ids
// (format 2 on).
func (s *Store) HasTokens() bool { return s.tokens != nil }

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
	if size < storeHeaderLen {
		return nil, corrupt("%d bytes: too short for a store", size)
	}
	if string(raw[:8]) != storeMagic {
		return nil, corrupt("bad magic %q, want %q (not a MICE store)", raw[:8], storeMagic)
	}
	version := le.Uint32(raw[8:])
	names, ok := storeSections[version]
	if !ok {
		return nil, corrupt("format version %d, want 1 or %d (rebuild it with spladapt mice store)", version, storeVersion)
	}
	if t := le.Uint32(raw[12:]); t != storeFloat32 {
		return nil, corrupt("element type %d, want %d (float32)", t, storeFloat32)
	}
	fl := uint64(storeFooterLen(version))
	nsec := len(names)
	if size < storeHeaderLen+fl+4*uint64(nsec) {
		return nil, corrupt("%d bytes: too short for a store of format %d", size, version)
	}
	f := raw[size-fl:]
	if string(f[fl-8:]) != storeFooterMagic {
		return nil, corrupt("no footer (truncated file?)")
	}
	if got, want := crc32.ChecksumIEEE(f[:fl-16]), le.Uint32(f[fl-16:]); got != want {
		return nil, corrupt("footer CRC %08x, stored %08x", got, want)
	}
	N, C := le.Uint64(f[0:]), uint64(le.Uint32(f[8:]))
	if C == 0 || C > 1<<20 || N > size/8 {
		return nil, corrupt("hidden size %d, %d documents: impossible for a file of %d bytes", C, N, size)
	}
	sec := map[string][]byte{}
	next := uint64(storeHeaderLen)
	for i, name := range names {
		off, n := le.Uint64(f[16+16*i:]), le.Uint64(f[24+16*i:])
		if off != next || n > size || off+n+4 > size-fl {
			return nil, corrupt("section %s at %d length %d: want it at %d, inside the file", name, off, n, next)
		}
		sec[name] = raw[off : off+n]
		if got, want := crc32.ChecksumIEEE(sec[name]), le.Uint32(raw[off+n:]); got != want {
			return nil, corrupt("section %s: CRC %08x, stored %08x", name, got, want)
		}
		next = off + n + 4
	}
	if next != size-fl {
		return nil, corrupt("%d bytes between the last section and the footer", size-fl-next)
	}
	if uint64(len(sec["OFFS"])) != 8*(N+1) {
		return nil, corrupt("OFFS holds %d bytes, want %d for %d documents", len(sec["OFFS"]), 8*(N+1), N)
	}
	s := &Store{C: int(C), ids: make(map[string]int, N), offs: make([]uint64, N+1)}
	for i := range s.offs {
		s.offs[i] = le.Uint64(sec["OFFS"][8*i:])
		if i == 0 && s.offs[0] != 0 || i > 0 && s.offs[i] <= s.offs[i-1] {
			return nil, corrupt("row offsets of document %d: %d after %d, want 0 first and strictly increasing", i, s.offs[i], s.offs[max(i-1, 0)])
		}
	}
	rows := s.offs[N]
	if uint64(len(sec["STATES"])) != rows*C*4 {
		return nil, corrupt("STATES holds %d bytes, want %d for %d rows of %d floats", len(sec["STATES"]), rows*C*4, rows, C)
	}
	if toks, ok := sec["TOKENS"]; ok {
		if uint64(len(toks)) != rows*4 {
			return nil, corrupt("TOKENS holds %d bytes, want %d for %d rows", len(toks), rows*4, rows)
		}
		s.tokens = make([]int32, rows)
		for i := range s.tokens {
			s.tokens[i] = int32(le.Uint32(toks[4*i:]))
		}
	}
	ids := sec["IDS"]
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
	if err := json.Unmarshal(sec["META"], &s.Meta); err != nil {
		return nil, corrupt("META: %v", err)
	}
	if s.Meta.Documents != int(N) || s.Meta.Format != int(version) {
		return nil, corrupt("META says %d documents, format %d; the footer %d, the header format %d", s.Meta.Documents, s.Meta.Format, N, version)
	}
	if err := s.Meta.MICE.MICEOptions.Validate(1 << 20); err != nil {
		return nil, corrupt("META: %v", err)
	}
	s.states = make([]float32, len(sec["STATES"])/4)
	for i := range s.states {
		s.states[i] = math.Float32frombits(le.Uint32(sec["STATES"][4*i:]))
	}
	return s, nil
}

// Check reports whether s was made by m (same MICE shape and fingerprint)
// and can serve it: a MICE with match types needs the documents' token ids
// (format 2).
func (s *Store) Check(m *MICE) error {
	a, _ := json.Marshal(s.Meta.MICE)
	b, _ := json.Marshal(m.Cfg)
	if string(a) != string(b) || s.C != m.Model.Config.HiddenSize {
		return fmt.Errorf("store made for MICE %s (hidden %d), the model is %s (hidden %d): rebuild it with spladapt mice store", a, s.C, b, m.Model.Config.HiddenSize)
	}
	if fp := m.Fingerprint(); fp != s.Meta.Fingerprint {
		return fmt.Errorf("store made by another model (fingerprint %s, model %s %s): rebuild it with spladapt mice store", s.Meta.Fingerprint, m.Fingerprint(), s.Meta.Model)
	}
	if m.MatchTypes && !s.HasTokens() {
		return fmt.Errorf("store of format %d has no document token ids, which a MICE model with match types needs to mark its queries: rebuild it with spladapt mice store", s.Meta.Format)
	}
	return nil
}

// RerankStore re-ranks the top depth hits of every query of run as Rerank
// does, reading the document states from st instead of computing them:
// per query, the query's states once, then the interaction layers on
// batches of m.BatchSize documents. With m.MatchTypes the query is marked
// against each document's stored token ids and its states are computed
// per pair, in the same batches: the layers below the fusion point then
// cost Tq tokens more per pair (no more allocation per pair: the batch's
// buffers are reused). Every re-ranked document must be in the store.
// progress counts pairs.
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
		qr := m.QueryIDs(qt)
		qids1, qmask1, _ := pad([][]int32{qr}, Tq, m.Tok.PAD())
		var q []float32 // (Tq,C) the query's states, once (without match types)
		if !m.MatchTypes {
			q = append([]float32(nil), m.pass.QueryStates(o, qids1, nil, qmask1, 1, Tq)...)
		}
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
			qm = grow.To(qm, B*Tq)
			for i, s := range states {
				copy(xd[i*Td*C:], s)
				for j := range len(s) / C {
					dmask[i*Td+j] = 1
				}
				copy(qm[i*Tq:], qmask1)
			}
			var x []float32 // (B,Tq,C) query states, changed by Score
			if !m.MatchTypes {
				xq = grow.To(xq, B*Tq*C)
				for i := range B {
					copy(xq[i*Tq*C:], q)
				}
				x = xq
			} else {
				m.qb, m.qt = grow.To(m.qb, B*Tq), grow.To(m.qt, B*Tq)
				clear(m.qt)
				for i, h := range batch {
					copy(m.qb[i*Tq:], qids1)
					toks, _ := st.Tokens(h.DocID) // Check: the store has them
					m.markQuery(m.qt[i*Tq:], qr, toks)
				}
				x = m.pass.QueryStates(o, m.qb, m.qt, qm, B, Tq)
			}
			scores := m.pass.Score(o, x, qm, Tq, xd, dmask, Td, B)
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
