package pretrain

import (
	"context"
	"fmt"
	"math"

	"github.com/spladapt/spladapt/corpora"
	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/tokenize"
)

// DriftOptions are the options of Drift.
type DriftOptions struct {
	// N is the number of documents, evenly spaced over the corpora in
	// their order (document ⌊i·D/N⌋ for i < N of D); all of them when
	// N <= 0 or N >= D.
	N int
	// MaxLength cuts each document to this many tokens, [CLS] and [SEP]
	// included (tokenize.Encode); <= 0 means the model's max_positions.
	MaxLength int
	// BatchSize is the number of documents per forward pass; <= 0 means 16.
	BatchSize int
	// Corpus is how the corpora treat bad records.
	Corpus corpora.Options
}

// LayerDrift is the distance between two models at one hidden state.
type LayerDrift struct {
	// Layer indexes HF's hidden_states: 0 is the embedding output, l ≥ 1
	// the output of encoder layer l−1 (nn.Pass.HiddenState).
	Layer int    `json:"layer"`
	Name  string `json:"name"` // "embeddings", "layer 0", "layer 1", ...
	// CKA is the linear CKA of the two models' token representations
	// (LinearCKA; 1: the same up to rotation, isotropic scaling and
	// translation).
	CKA float64 `json:"cka"`
	// Cosine is the mean over tokens of the cosine between a token's two
	// vectors (1: the same directions, token by token).
	Cosine float64 `json:"cosine"`
}

// DriftResult is what Drift measured.
type DriftResult struct {
	A      string       `json:"a"`
	B      string       `json:"b"`
	Corpus []string     `json:"corpus"`
	Docs   int          `json:"docs"`
	Tokens int          `json:"tokens"` // rows of the CKA: every real position, [CLS] and [SEP] included
	Layers []LayerDrift `json:"layers"`
}

// Drift measures how far checkpoint b has moved from checkpoint a on the
// same text: both encode the same documents of corpus (opts.N of them,
// evenly spaced), and at every hidden state (embedding output and each
// layer's output) Drift compares the two sets of token vectors by linear
// CKA (Kornblith et al., ICML 2019) and by the mean per-token cosine.
// Dropout is off. In the adaptation method, a = P_domain(source) + P_task
// and b = P_domain(target) + P_task: hidden states 0..k are P_domain's
// alone, the ones above are P_task's response to it.
//
// The checkpoints must have the same architecture, shapes and vocabulary
// (as for Swap); the tokenizer is a's. Cost: two forward passes over the
// sampled tokens and, per hidden state, O(tokens·C²) for the CKA sums;
// memory O(L·C²), independent of the number of tokens.
func Drift(ctx context.Context, a, b string, corpus []string, opts DriftOptions) (*DriftResult, error) {
	ma, err := nn.LoadHF(a)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	mb, err := nn.LoadHF(b)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	if err := compatible(ma, mb, a, b); err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	tok, err := tokenize.Load(a)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	docs, err := corpora.ReadDocs(corpus, opts.Corpus)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("drift: no documents in %v", corpus)
	}
	n := len(docs)
	if opts.N > 0 && opts.N < n {
		n = opts.N
	}
	texts := make([]string, n)
	for i := range n {
		texts[i] = docs[i*len(docs)/n].Content()
	}
	maxLen := opts.MaxLength
	if maxLen <= 0 || maxLen > ma.Config.MaxPositions {
		maxLen = ma.Config.MaxPositions
	}
	bs := opts.BatchSize
	if bs <= 0 {
		bs = 16
	}
	ma.Training, mb.Training = false, false
	L, C := ma.Config.NumLayers, ma.Config.HiddenSize
	sums := make([]*ckaSums, L+1)
	cos := make([]float64, L+1)
	for l := range sums {
		sums[l] = newCKASums(C, C)
	}
	res := &DriftResult{A: a, B: b, Corpus: corpus, Docs: n}
	for lo := 0; lo < n; lo += bs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		encs := tok.EncodeBatch(texts[lo:min(lo+bs, n)], maxLen)
		batch := padBatch(encs, tok.PAD())
		ma.Encode(batch)
		mb.Encode(batch)
		for l := range L + 1 {
			ha, hb := ma.HiddenState(l), mb.HiddenState(l)
			for r, v := range batch.Mask {
				if v == 0 {
					continue
				}
				x, y := ha[r*C:(r+1)*C], hb[r*C:(r+1)*C]
				sums[l].add(x, y)
				cos[l] += cosine(x, y)
			}
		}
	}
	res.Tokens = sums[0].n
	for l := range L + 1 {
		name := "embeddings"
		if l > 0 {
			name = fmt.Sprintf("layer %d", l-1)
		}
		res.Layers = append(res.Layers, LayerDrift{Layer: l, Name: name, CKA: sums[l].cka(), Cosine: cos[l] / float64(sums[l].n)})
	}
	return res, nil
}

// padBatch pads encodings to the longest one (token type 0, mask 0 at
// padding).
func padBatch(encs []tokenize.Encoding, pad int32) nn.Batch {
	T := 0
	for _, e := range encs {
		T = max(T, len(e.IDs))
	}
	b := nn.Batch{B: len(encs), T: T, InputIDs: make([]int32, len(encs)*T), Mask: make([]float32, len(encs)*T)}
	for i, e := range encs {
		for t := range T {
			b.InputIDs[i*T+t] = pad
			if t < len(e.IDs) {
				b.InputIDs[i*T+t], b.Mask[i*T+t] = e.IDs[t], 1
			}
		}
	}
	return b
}

// cosine is x·y / (‖x‖‖y‖) in float64; 0 when either vector is zero.
func cosine(x, y []float32) float64 {
	var xy, xx, yy float64
	for i := range x {
		a, b := float64(x[i]), float64(y[i])
		xy += a * b
		xx += a * a
		yy += b * b
	}
	if xx == 0 || yy == 0 {
		return 0
	}
	return xy / math.Sqrt(xx*yy)
}

// LinearCKA is the linear centered kernel alignment of Kornblith et al.
// (ICML 2019, "Similarity of Neural Network Representations Revisited") of
// x (n,p) and y (n,q), row-major, row i of each describing the same
// example:
//
//	CKA = ‖Ycᵀ Xc‖²_F / (‖Xcᵀ Xc‖_F · ‖Ycᵀ Yc‖_F),
//
// with Xc, Yc the column-centred matrices. It lies in [0, 1], is 1 for
// y = x, and is invariant to orthogonal transforms and isotropic scaling
// of either side (and to translation), not to other linear maps. It is
// NaN when either side is constant over the rows. Sums are in float64.
// Cost: O(n·(p+q)²) time, O((p+q)²) memory.
func LinearCKA(x, y []float32, n, p, q int) float64 {
	if len(x) != n*p || len(y) != n*q {
		panic(fmt.Sprintf("pretrain: LinearCKA of %d and %d values for n=%d, p=%d, q=%d", len(x), len(y), n, p, q))
	}
	s := newCKASums(p, q)
	for i := range n {
		s.add(x[i*p:(i+1)*p], y[i*q:(i+1)*q])
	}
	return s.cka()
}

// ckaSums accumulates, row by row, the sums that linear CKA needs: Σx,
// Σy, Σxxᵀ, Σyyᵀ and Σxyᵀ of the rows shifted by the first row of each
// side (centred products do not depend on the shift, and it keeps the sums
// near the data's spread rather than its mean, which float64 cancellation
// would otherwise eat).
type ckaSums struct {
	p, q          int
	n             int
	x0, y0        []float64 // (p), (q) the first rows, the shift
	xs, ys        []float64 // (p), (q) scratch: the current shifted row
	sx, sy        []float64 // (p), (q)
	sxx, syy, sxy []float64 // (p,p) upper triangle, (q,q) upper triangle, (p,q)
}

func newCKASums(p, q int) *ckaSums {
	return &ckaSums{p: p, q: q, x0: make([]float64, p), y0: make([]float64, q),
		xs: make([]float64, p), ys: make([]float64, q), sx: make([]float64, p), sy: make([]float64, q),
		sxx: make([]float64, p*p), syy: make([]float64, q*q), sxy: make([]float64, p*q)}
}

func (s *ckaSums) add(x, y []float32) {
	if s.n == 0 {
		for i, v := range x {
			s.x0[i] = float64(v)
		}
		for i, v := range y {
			s.y0[i] = float64(v)
		}
	}
	s.n++
	for i, v := range x {
		s.xs[i] = float64(v) - s.x0[i]
		s.sx[i] += s.xs[i]
	}
	for i, v := range y {
		s.ys[i] = float64(v) - s.y0[i]
		s.sy[i] += s.ys[i]
	}
	for i, a := range s.xs {
		row := s.sxx[i*s.p:]
		for j := i; j < s.p; j++ {
			row[j] += a * s.xs[j]
		}
		row = s.sxy[i*s.q : (i+1)*s.q]
		for j, b := range s.ys {
			row[j] += a * b
		}
	}
	for i, a := range s.ys {
		row := s.syy[i*s.q:]
		for j := i; j < s.q; j++ {
			row[j] += a * s.ys[j]
		}
	}
}

// cka centres the sums (C = S − s sᵀ/n) and returns linear CKA.
func (s *ckaSums) cka() float64 {
	n := float64(s.n)
	// ‖C‖²_F of a symmetric matrix from its upper triangle.
	sym := func(sum, v []float64, d int) float64 {
		f := 0.0
		for i := range d {
			for j := i; j < d; j++ {
				c := sum[i*d+j] - v[i]*v[j]/n
				if i == j {
					f += c * c
				} else {
					f += 2 * c * c
				}
			}
		}
		return f
	}
	xy := 0.0
	for i := range s.p {
		for j := range s.q {
			c := s.sxy[i*s.q+j] - s.sx[i]*s.sy[j]/n
			xy += c * c
		}
	}
	return xy / math.Sqrt(sym(s.sxx, s.sx, s.p)*sym(s.syy, s.sy, s.q))
}
