package nn

import (
	"math"

	"github.com/spladapt/spladapt/internal/grow"
)

// MICE training: a forward pass that keeps every activation and its
// backward, for all variants of MICEOptions (mid-fusion, light
// cross-attention, layer dropping). The gradient is the exact gradient of
// the MICE score, including the paths through the document's states into
// the separate layers and the embeddings (the document states are frozen
// only in the sense that the interaction layers do not update them).
//
// Shapes: B pairs, query segment Tq, document segment Td, T = Tq+Td,
// C hidden, F intermediate, NH heads of HS = C/NH.
//
// No dropout: MICETrainPass runs the model deterministically whatever
// Model.Training says (the head's dropout included), as MICEPass does.

// MICETrainPass holds the activations of one MICE forward for Backward.
// Buffers are kept and reused by the next Forward. Not safe for concurrent
// use.
type MICETrainPass struct {
	c         *Classifier
	o         MICEOptions
	B, Tq, Td int

	qEmb, dEmb miceEmbActs
	qSep, dSep []*miceLayerActs // (Fusion) the separate layers of each segment
	inter      []*miceLayerActs // (len(Interact)) the interaction layers
	xq         []float32        // (B,Tq,C) query states after the last layer
	head       clsHead
}

// miceEmbActs are one segment's embedding activations.
type miceEmbActs struct {
	ids             []int32   // (N) token ids
	types           []int32   // (N) token types, or nil: typ for every token
	pos0, typ, T    int       // first position, token type, segment length
	sum, mean, rstd []float32 // (N,C) word+position+type sums; (N) LN statistics
	out             []float32 // (N,C) embeddings after LayerNorm
}

// miceLayerActs are the activations of one layer application in which the
// U rows per sequence of xu are updated attending to the K rows per
// sequence of xkv (xkv is xu itself in an ordinary layer).
type miceLayerActs struct {
	l, B, U, K   int
	same         bool      // xkv is xu (self-attention over the updated rows)
	xu, xkv      []float32 // (B·U,C), (B·K,C) inputs, copies
	mask         []float32 // (B,K) key mask
	q            []float32 // (B·U,C)
	k, v         []float32 // (B·K,C)
	att          []float32 // (B,NH,U,K) attention probabilities
	ctx          []float32 // (B·U,C)
	res1         []float32 // (B·U,C) attention output + xu, LN1 input
	mean1, rstd1 []float32 // (B·U)
	a            []float32 // (B·U,C) LN1 output
	f1, fg       []float32 // (B·U,F) FFN pre-activation, GELU output
	res2         []float32 // (B·U,C) FFN output + a, LN2 input
	mean2, rstd2 []float32 // (B·U)
	out          []float32 // (B·U,C) layer output
}

// NewMICETrainPass returns empty training buffers for c.
func (c *Classifier) NewMICETrainPass() *MICETrainPass { return &MICETrainPass{c: c} }

// Forward scores B pairs under o — query ids (B,Tq) "[CLS] q… [SEP]"
// padded with their token types qtypes (B,Tq) (nil: all 0), document ids
// (B,Td) "d… [SEP]" padded (type 1), masks 1 for real tokens — and keeps
// the activations for Backward. It returns the B scores, valid until the
// next Forward; they equal MICEPass's up to float32 rounding. qtypes must
// stay unchanged until Backward. Cost: that of MICEPass plus the memory of
// every activation.
func (p *MICETrainPass) Forward(o MICEOptions, qids, qtypes []int32, qmask []float32, Tq int, dids []int32, dmask []float32, Td, B int) []float32 {
	C := p.c.Config.HiddenSize
	T := Tq + Td
	p.o, p.B, p.Tq, p.Td = o, B, Tq, Td
	xq := p.embed(&p.qEmb, qids, qtypes, B, Tq, 0, 0)
	xd := p.embed(&p.dEmb, dids, nil, B, Td, Tq, 1)
	p.qSep, p.dSep = slot(p.qSep, o.Fusion), slot(p.dSep, o.Fusion)
	for l := range o.Fusion {
		xq = p.layerForward(p.qSep[l], l, xq, nil, qmask, B, Tq, Tq)
		xd = p.layerForward(p.dSep[l], l, xd, nil, dmask, B, Td, Td)
	}
	mask := make([]float32, B*T)
	for b := range B {
		copy(mask[b*T:], qmask[b*Tq:(b+1)*Tq])
		copy(mask[b*T+Tq:], dmask[b*Td:(b+1)*Td])
	}
	p.inter = slot(p.inter, len(o.Interact))
	for i, l := range o.Interact {
		kv := concatSeq(xq, xd, B, Tq, Td, C)
		if o.Light {
			xq = p.layerForward(p.inter[i], l, xq, kv, mask, B, Tq, T)
			continue
		}
		out := p.layerForward(p.inter[i], l, kv, nil, mask, B, T, T)
		xq, xd = splitSeq(out, B, Tq, Td, C)
	}
	p.xq = xq
	x := p.head.gather(xq, B, Tq, C)
	training := p.c.Training
	p.c.Training = false
	defer func() { p.c.Training = training }()
	return p.c.headForward(&p.head, x, B)
}

// Backward adds the gradients of Σ_b ds[b]·score[b] (ds (B)) for the last
// Forward to every trainable parameter (frozen ones get none). Cost: about
// twice that of Forward.
func (p *MICETrainPass) Backward(ds []float32) {
	c := p.c
	C := c.Config.HiddenSize
	B, Tq, Td := p.B, p.Tq, p.Td
	o := p.o
	dx := c.headBackward(&p.head, ds)
	dxq := make([]float32, B*Tq*C) // ∂/∂ query states
	dxd := make([]float32, B*Td*C) // ∂/∂ document states
	for b := range B {
		copy(dxq[b*Tq*C:b*Tq*C+C], dx[b*C:(b+1)*C])
	}
	for i := len(o.Interact) - 1; i >= 0; i-- {
		a := p.inter[i]
		if o.Light {
			du, dkv := p.layerBackward(a, dxq)
			gq, gd := splitSeq(dkv, B, Tq, Td, C)
			addInto(du, gq)
			addInto(dxd, gd)
			dxq = du
			continue
		}
		du, _ := p.layerBackward(a, concatSeq(dxq, dxd, B, Tq, Td, C))
		dxq, dxd = splitSeq(du, B, Tq, Td, C)
	}
	for l := o.Fusion - 1; l >= 0; l-- {
		dxq, _ = p.layerBackward(p.qSep[l], dxq)
		dxd, _ = p.layerBackward(p.dSep[l], dxd)
	}
	p.embedBackward(&p.qEmb, dxq)
	p.embedBackward(&p.dEmb, dxd)
}

// slot returns s with n entries, allocating the missing ones.
func slot(s []*miceLayerActs, n int) []*miceLayerActs {
	for len(s) < n {
		s = append(s, &miceLayerActs{})
	}
	return s[:n]
}

// concatSeq returns [x; y] per sequence: x (B,U,C), y (B,V,C) → (B,U+V,C).
func concatSeq(x, y []float32, B, U, V, C int) []float32 {
	out := make([]float32, B*(U+V)*C)
	for b := range B {
		o := out[b*(U+V)*C:]
		copy(o, x[b*U*C:(b+1)*U*C])
		copy(o[U*C:], y[b*V*C:(b+1)*V*C])
	}
	return out
}

// splitSeq is the inverse of concatSeq, into new slices.
func splitSeq(z []float32, B, U, V, C int) (x, y []float32) {
	x, y = make([]float32, B*U*C), make([]float32, B*V*C)
	for b := range B {
		s := z[b*(U+V)*C:]
		copy(x[b*U*C:], s[:U*C])
		copy(y[b*V*C:], s[U*C:(U+V)*C])
	}
	return x, y
}

// embed computes LN(word + position + type) for ids (B,T) at positions
// pos0.., with token types types (B,T) or typ for all when types is nil,
// into e, and returns e.out.
func (p *MICETrainPass) embed(e *miceEmbActs, ids, types []int32, B, T, pos0, typ int) []float32 {
	m := p.c.Model
	C := m.Config.HiddenSize
	N := B * T
	e.ids, e.types, e.pos0, e.typ, e.T = ids[:N], nil, pos0, typ, T
	if types != nil {
		e.types = types[:N]
	}
	e.sum, e.out = grow.To(e.sum, N*C), grow.To(e.out, N*C)
	e.mean, e.rstd = grow.To(e.mean, N), grow.To(e.rstd, N)
	for r := range N {
		row := e.sum[r*C : (r+1)*C]
		id, t := int(ids[r]), pos0+r%T
		copy(row, m.wordEmb.W[id*C:(id+1)*C])
		addInto(row, m.posEmb.W[t*C:(t+1)*C])
		if m.typeEmb != nil {
			y := e.tokenType(r)
			addInto(row, m.typeEmb.W[y*C:(y+1)*C])
		}
	}
	LayerNormForward(e.out, e.mean, e.rstd, e.sum, m.embLNw.W, m.embLNb.W, N, C, m.Config.LayerNormEps)
	return e.out
}

// embedBackward adds the embedding gradients for dout (N,C) = ∂/∂e.out.
// The [PAD] row gets no lookup gradient (HF padding_idx).
func (p *MICETrainPass) embedBackward(e *miceEmbActs, dout []float32) {
	m := p.c.Model
	cfg := m.Config
	C := cfg.HiddenSize
	N := len(e.ids)
	de := make([]float32, N*C)
	LayerNormBackward(de, gradOf(m.embLNw), gradOf(m.embLNb), dout, e.sum, e.mean, e.rstd, m.embLNw.W, N, C)
	for r := range N {
		g := de[r*C : (r+1)*C]
		if id := int(e.ids[r]); !m.wordEmb.Frozen && id != cfg.PadTokenID {
			addInto(m.wordEmb.G[id*C:(id+1)*C], g)
		}
		if t := e.pos0 + r%e.T; !m.posEmb.Frozen {
			addInto(m.posEmb.G[t*C:(t+1)*C], g)
		}
		if m.typeEmb != nil && !m.typeEmb.Frozen {
			y := e.tokenType(r)
			addInto(m.typeEmb.G[y*C:(y+1)*C], g)
		}
	}
}

// tokenType is row r's token type.
func (e *miceEmbActs) tokenType(r int) int {
	if e.types != nil {
		return int(e.types[r])
	}
	return e.typ
}

// layerForward runs layer l on xu (B·U,C) attending to xkv (B·K,C), or to
// xu itself when xkv is nil, with key mask (B,K); it keeps the activations
// in a and returns a.out.
func (p *MICETrainPass) layerForward(a *miceLayerActs, l int, xu, xkv, mask []float32, B, U, K int) []float32 {
	m := p.c.Model
	cfg := m.Config
	lp := &m.layers[l]
	C, F, NH, HS := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads, cfg.HeadSize()
	NU, NK := B*U, B*K
	a.l, a.B, a.U, a.K, a.same = l, B, U, K, xkv == nil
	a.xu = append(a.xu[:0], xu[:NU*C]...)
	if a.same {
		a.xkv = a.xu
	} else {
		a.xkv = append(a.xkv[:0], xkv[:NK*C]...)
	}
	a.mask = append(a.mask[:0], mask[:NK]...)
	a.q, a.k, a.v, a.ctx = grow.To(a.q, NU*C), grow.To(a.k, NK*C), grow.To(a.v, NK*C), grow.To(a.ctx, NU*C)
	a.att = grow.To(a.att, B*NH*U*K)
	a.res1, a.a, a.res2, a.out = grow.To(a.res1, NU*C), grow.To(a.a, NU*C), grow.To(a.res2, NU*C), grow.To(a.out, NU*C)
	a.f1, a.fg = grow.To(a.f1, NU*F), grow.To(a.fg, NU*F)
	a.mean1, a.rstd1, a.mean2, a.rstd2 = grow.To(a.mean1, NU), grow.To(a.rstd1, NU), grow.To(a.mean2, NU), grow.To(a.rstd2, NU)
	LinearForward(a.q, a.xu, lp.qw.W, lp.qb.W, NU, C, C)
	LinearForward(a.k, a.xkv, lp.kw.W, lp.kb.W, NK, C, C)
	LinearForward(a.v, a.xkv, lp.vw.W, lp.vb.W, NK, C, C)
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelBLAS(Threads(), B*NH, func(_, lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b := bh / NH
			qo, ko := b*U*C+(bh%NH)*HS, b*K*C+(bh%NH)*HS
			S := a.att[bh*U*K : (bh+1)*U*K]
			Sgemm(false, true, U, K, HS, scale, a.q[qo:], C, a.k[ko:], C, 0, S, K)
			maskedSoftmaxRows(S, a.mask[b*K:(b+1)*K], U)
			Sgemm(false, false, U, HS, K, 1, S, K, a.v[ko:], C, 0, a.ctx[qo:], C)
		}
	})
	LinearForward(a.res1, a.ctx, lp.ow.W, lp.ob.W, NU, C, C)
	LayerNormResidualForward(a.a, a.mean1, a.rstd1, a.res1, a.xu, lp.ln1w.W, lp.ln1b.W, NU, C, cfg.LayerNormEps)
	LinearForward(a.f1, a.a, lp.iw.W, lp.ib.W, NU, C, F)
	GELU(a.fg, a.f1)
	LinearForward(a.res2, a.fg, lp.o2w.W, lp.o2b.W, NU, F, C)
	LayerNormResidualForward(a.out, a.mean2, a.rstd2, a.res2, a.a, lp.ln2w.W, lp.ln2b.W, NU, C, cfg.LayerNormEps)
	return a.out
}

// layerBackward back-propagates dout (B·U,C) = ∂/∂a.out through layer
// a.l, adds its parameter gradients, and returns new slices ∂/∂xu (B·U,C)
// and ∂/∂xkv (B·K,C); for a layer over its own rows (a.same) the first
// holds both and the second is nil.
func (p *MICETrainPass) layerBackward(a *miceLayerActs, dout []float32) (dxu, dxkv []float32) {
	m := p.c.Model
	cfg := m.Config
	lp := &m.layers[a.l]
	C, F, NH, HS := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads, cfg.HeadSize()
	B, U, K := a.B, a.U, a.K
	NU, NK := B*U, B*K
	// LN2; the FFN residual: da = dres2 + FFN backward.
	dres2 := make([]float32, NU*C)
	LayerNormBackward(dres2, gradOf(lp.ln2w), gradOf(lp.ln2b), dout, a.res2, a.mean2, a.rstd2, lp.ln2w.W, NU, C)
	da := append([]float32(nil), dres2...)
	dff := make([]float32, NU*F)
	LinearBackward(dff, gradOf(lp.o2w), gradOf(lp.o2b), dres2, a.fg, lp.o2w.W, NU, F, C)
	GELUBackward(dff, dff, a.f1)
	LinearBackward(da, gradOf(lp.iw), gradOf(lp.ib), dff, a.a, lp.iw.W, NU, C, F)
	// LN1; the attention residual: dxu starts as dres1.
	dxu = make([]float32, NU*C)
	LayerNormBackward(dxu, gradOf(lp.ln1w), gradOf(lp.ln1b), da, a.res1, a.mean1, a.rstd1, lp.ln1w.W, NU, C)
	dctx := make([]float32, NU*C)
	LinearBackward(dctx, gradOf(lp.ow), gradOf(lp.ob), dxu, a.ctx, lp.ow.W, NU, C, C)
	// Attention, head by head: dP = dctx_h·V_hᵀ, dV_h = Pᵀ·dctx_h,
	// dS = P⊙(dP − Σ_t P·dP)/√HS, dQ_h = dS·K_h, dK_h = dSᵀ·Q_h.
	dq, dk, dv := make([]float32, NU*C), make([]float32, NK*C), make([]float32, NK*C)
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelBLAS(Threads(), B*NH, func(_, lo, hi int) {
		dP := make([]float32, U*K)
		for bh := lo; bh < hi; bh++ {
			b := bh / NH
			qo, ko := b*U*C+(bh%NH)*HS, b*K*C+(bh%NH)*HS
			P := a.att[bh*U*K : (bh+1)*U*K]
			Sgemm(false, true, U, K, HS, 1, dctx[qo:], C, a.v[ko:], C, 0, dP, K)
			Sgemm(true, false, K, HS, U, 1, P, K, dctx[qo:], C, 0, dv[ko:], C)
			softmaxBackwardRows(P, dP, U, K, scale)
			Sgemm(false, false, U, HS, K, 1, dP, K, a.k[ko:], C, 0, dq[qo:], C)
			Sgemm(true, false, K, HS, U, 1, dP, K, a.q[qo:], C, 0, dk[ko:], C)
		}
	})
	LinearBackward(dxu, gradOf(lp.qw), gradOf(lp.qb), dq, a.xu, lp.qw.W, NU, C, C)
	if a.same {
		dxkv = dxu
	} else {
		dxkv = make([]float32, NK*C)
	}
	LinearBackward(dxkv, gradOf(lp.kw), gradOf(lp.kb), dk, a.xkv, lp.kw.W, NK, C, C)
	LinearBackward(dxkv, gradOf(lp.vw), gradOf(lp.vb), dv, a.xkv, lp.vw.W, NK, C, C)
	if a.same {
		return dxu, nil
	}
	return dxu, dxkv
}
