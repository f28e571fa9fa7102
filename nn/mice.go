package nn

import (
	"fmt"
	"math"

	"github.com/spladapt/spladapt/internal/grow"
)

// MICE, minimal-interaction cross-encoders (Vast, Morand et al.,
// arXiv:2602.16299), on a cross-encoder's weights. MICEPass is the
// inference pass; MICETrainPass (mice_train.go) keeps the activations and
// has the backward.
//
// Layout: the query segment [CLS] q [SEP] padded to Tq (positions
// 0..Tq−1, type 0 or per-token types) and the document segment d [SEP]
// padded to Td (positions Tq..Tq+Td−1, type 1), so that a document's
// states do not depend on its query's length.
//
//	(a) mid-fusion: layers 0..Fusion−1 encode each segment alone (the
//	    document's states can be computed once and stored: DocStates)
//	(b) light cross-attention (Light): in the interaction layers only the
//	    query tokens are updated; they attend to the query and to the
//	    document states, which stay as they were after layer Fusion−1
//	(c) layer dropping: only the layers listed in Interact run after the
//	    fusion point
//
// Without Light an interaction layer is an ordinary layer over [q; d].
// Fusion 0 with every layer and no Light is the cross-encoder itself on
// this layout. The score is the classification head on the first query
// token.

// MICEOptions select a MICE variant.
type MICEOptions struct {
	Fusion   int   `json:"fusion"`   // layers that encode query and document apart
	Interact []int `json:"interact"` // interaction layers, ascending, each ≥ Fusion
	Light    bool  `json:"light"`    // light cross-attention in the interaction layers
}

// Validate checks o against a model of L layers.
func (o MICEOptions) Validate(L int) error {
	if o.Fusion < 0 || o.Fusion > L {
		return fmt.Errorf("mice: fusion layer %d outside 0..%d", o.Fusion, L)
	}
	prev := o.Fusion - 1
	for _, l := range o.Interact {
		if l <= prev || l >= L {
			return fmt.Errorf("mice: interaction layers %v: want ascending layers in %d..%d", o.Interact, o.Fusion, L-1)
		}
		prev = l
	}
	if len(o.Interact) == 0 {
		return fmt.Errorf("mice: no interaction layer")
	}
	return nil
}

// MICEPass holds the buffers of MICE forward passes. Not safe for
// concurrent use.
type MICEPass struct {
	c                                        *Classifier
	x, q, k, v, ctx, res, a, f1, fg, out, kv []float32
	mean, rstd                               []float32
	mask                                     []float32
	att                                      []float32
	head                                     clsHead
}

// NewMICEPass returns empty buffers for c.
func (c *Classifier) NewMICEPass() *MICEPass { return &MICEPass{c: c} }

// Embed returns the embeddings (B,T,C) of ids (B,T) with positions
// pos0..pos0+T−1 and token types types (B,T), or typ for every token when
// types is nil, in a new slice. Types apply to BERT (DistilBERT has none)
// and must be below type_vocab_size. Per-token types cost nothing more
// than the constant type: one table row added per token either way.
func (p *MICEPass) Embed(ids, types []int32, B, T, pos0 int, typ int) []float32 {
	m := p.c.Model
	C := m.Config.HiddenSize
	N := B * T
	e := make([]float32, N*C)
	for r := range N {
		row := e[r*C : (r+1)*C]
		id, t := int(ids[r]), pos0+r%T
		copy(row, m.wordEmb.W[id*C:(id+1)*C])
		addInto(row, m.posEmb.W[t*C:(t+1)*C])
		if m.typeEmb != nil {
			y := typ
			if types != nil {
				y = int(types[r])
			}
			addInto(row, m.typeEmb.W[y*C:(y+1)*C])
		}
	}
	p.mean, p.rstd = grow.To(p.mean, N), grow.To(p.rstd, N)
	LayerNormForward(e, p.mean, p.rstd, append([]float32(nil), e...), m.embLNw.W, m.embLNb.W, N, C, m.Config.LayerNormEps)
	return e
}

// Separate runs layers 0..fusion−1 on x (B,T,C) in place, each sequence
// attending to its own real tokens (mask (B,T)).
func (p *MICEPass) Separate(x []float32, mask []float32, B, T, fusion int) {
	for l := range fusion {
		p.layer(l, x, x, mask, B, T, T, x)
	}
}

// DocStates are a document batch's states after the fusion point: ids
// (B,Td) "d… [SEP]" padded, positions from tq. The result (B,Td,C) is new.
//
// A document's states never depend on a query, so they have one token
// type, 1: a query-dependent type (an exact-match mark) would make them
// unstorable.
func (p *MICEPass) DocStates(o MICEOptions, ids []int32, mask []float32, B, Td, tq int) []float32 {
	x := p.Embed(ids, nil, B, Td, tq, 1)
	p.Separate(x, mask, B, Td, o.Fusion)
	return x
}

// QueryStates are a query batch's states after the fusion point: ids
// (B,Tq) "[CLS] q… [SEP]" padded, token types (B,Tq) or nil for all 0.
// The result (B,Tq,C) is new. Per-token types can depend on the document
// (rerank.MICE.MatchTypes marks query pieces found in it); a query's
// states are then per pair, not per query: B is the number of pairs, and
// the layers below the fusion point run once for each.
func (p *MICEPass) QueryStates(o MICEOptions, ids, types []int32, mask []float32, B, Tq int) []float32 {
	x := p.Embed(ids, types, B, Tq, 0, 0)
	p.Separate(x, mask, B, Tq, o.Fusion)
	return x
}

// Score runs the interaction layers on query states xq (B,Tq,C) (changed
// in place) and document states xd (B,Td,C) (left unchanged) and returns
// the B scores, valid until the next Score. Cost per pair and interaction
// layer: light, 2·Td·C² for the document keys and values plus a layer on
// the Tq query tokens; otherwise a layer on Tq+Td tokens.
func (p *MICEPass) Score(o MICEOptions, xq, qmask []float32, Tq int, xd, dmask []float32, Td, B int) []float32 {
	C := p.c.Config.HiddenSize
	T := Tq + Td
	p.kv = grow.To(p.kv, B*T*C)
	p.mask = grow.To(p.mask, B*T)
	for b := range B {
		copy(p.mask[b*T:], qmask[b*Tq:(b+1)*Tq])
		copy(p.mask[b*T+Tq:], dmask[b*Td:(b+1)*Td])
		copy(p.kv[b*T*C+Tq*C:(b+1)*T*C], xd[b*Td*C:(b+1)*Td*C])
	}
	for _, l := range o.Interact {
		for b := range B {
			copy(p.kv[b*T*C:b*T*C+Tq*C], xq[b*Tq*C:(b+1)*Tq*C])
		}
		if o.Light {
			p.layer(l, xq, p.kv, p.mask, B, Tq, T, xq)
			continue
		}
		p.layer(l, p.kv, p.kv, p.mask, B, T, T, p.kv)
		for b := range B {
			copy(xq[b*Tq*C:(b+1)*Tq*C], p.kv[b*T*C:b*T*C+Tq*C])
		}
	}
	x := p.head.gather(xq, B, Tq, C)
	training := p.c.Training
	p.c.Training = false
	defer func() { p.c.Training = training }()
	return p.c.headForward(&p.head, x, B)
}

// layer runs layer l for B sequences: the U rows per sequence of xu are
// updated (written to out, which may be xu), attending to the K rows per
// sequence of xkv with key mask (B,K).
func (p *MICEPass) layer(l int, xu, xkv, mask []float32, B, U, K int, out []float32) {
	m := p.c.Model
	cfg := m.Config
	lp := &m.layers[l]
	C, F, NH, HS := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads, cfg.HeadSize()
	NU, NK := B*U, B*K
	p.q, p.k, p.v, p.ctx = grow.To(p.q, NU*C), grow.To(p.k, NK*C), grow.To(p.v, NK*C), grow.To(p.ctx, NU*C)
	p.res, p.a, p.out = grow.To(p.res, NU*C), grow.To(p.a, NU*C), grow.To(p.out, NU*C)
	p.f1, p.fg = grow.To(p.f1, NU*F), grow.To(p.fg, NU*F)
	p.mean, p.rstd = grow.To(p.mean, NU), grow.To(p.rstd, NU)
	LinearForward(p.q, xu, lp.qw.W, lp.qb.W, NU, C, C)
	LinearForward(p.k, xkv, lp.kw.W, lp.kb.W, NK, C, C)
	LinearForward(p.v, xkv, lp.vw.W, lp.vb.W, NK, C, C)
	scale := float32(1 / math.Sqrt(float64(HS)))
	// Heads on the workers, one OpenBLAS call per product (sgemmSerial).
	parallelBLAS(Threads(), B*NH, func(_, lo, hi int) {
		S := make([]float32, U*K)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			qo, ko := b*U*C+h*HS, b*K*C+h*HS
			sgemmSerial(false, true, U, K, HS, scale, p.q[qo:], C, p.k[ko:], C, 0, S, K)
			maskedSoftmaxRows(S, mask[b*K:(b+1)*K], U)
			sgemmSerial(false, false, U, HS, K, 1, S, K, p.v[ko:], C, 0, p.ctx[qo:], C)
		}
	})
	LinearForward(p.res, p.ctx, lp.ow.W, lp.ob.W, NU, C, C)
	LayerNormResidualForward(p.a, p.mean, p.rstd, p.res, xu, lp.ln1w.W, lp.ln1b.W, NU, C, cfg.LayerNormEps)
	LinearForward(p.f1, p.a, lp.iw.W, lp.ib.W, NU, C, F)
	GELU(p.fg, p.f1)
	LinearForward(p.res, p.fg, lp.o2w.W, lp.o2b.W, NU, F, C)
	LayerNormResidualForward(p.out, p.mean, p.rstd, p.res, p.a, lp.ln2w.W, lp.ln2b.W, NU, C, cfg.LayerNormEps)
	copy(out[:NU*C], p.out)
}
