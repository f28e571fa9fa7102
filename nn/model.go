package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/spladapt/spladapt/internal/grow"
)

// BERT and DistilBERT encoders with their MLM heads, forward and backward by
// hand, in the style of llm.c.
//
// Shape legend:
//
//	B   batch size              T   sequence length (padded)
//	C   hidden size             V   vocabulary size
//	L   number of layers        NH  attention heads
//	HS  head size = C/NH        F   feed-forward (intermediate) size
//	N   rows = B·T              M   rows given to the MLM head (masked positions)
//
// Both architectures are post-LN and differ only in names, in the token-type
// table (BERT only) and in where hidden dropout sits (DistilBERT has none
// after the attention output projection).

// layerParams are one transformer layer's parameters. The comments give the
// BERT name / the DistilBERT name.
type layerParams struct {
	qw, qb     *Param // attention.self.query / attention.q_lin: (C,C), (C)
	kw, kb     *Param // attention.self.key / attention.k_lin
	vw, vb     *Param // attention.self.value / attention.v_lin
	ow, ob     *Param // attention.output.dense / attention.out_lin
	ln1w, ln1b *Param // attention.output.LayerNorm / sa_layer_norm: (C)
	iw, ib     *Param // intermediate.dense / ffn.lin1: (F,C), (F)
	o2w, o2b   *Param // output.dense / ffn.lin2: (C,F), (C)
	ln2w, ln2b *Param // output.LayerNorm / output_layer_norm: (C)
}

func (lp *layerParams) all() []*Param {
	return []*Param{lp.qw, lp.qb, lp.kw, lp.kb, lp.vw, lp.vb, lp.ow, lp.ob, lp.ln1w, lp.ln1b,
		lp.iw, lp.ib, lp.o2w, lp.o2b, lp.ln2w, lp.ln2b}
}

// Model is a BERT or DistilBERT masked-language model. Params lists every
// parameter once, in HuggingFace order; the MLM decoder is tied to the word
// embeddings and has no Param of its own.
//
// A Model holds one default Pass (activation buffers) used by Encode,
// Backward, HeadTransform and MLMLoss; NewPass gives more, so that several
// batches (queries and documents) can be kept for backward at once. A Model
// and its passes are not safe for concurrent use.
type Model struct {
	Config Config
	Params []*Param
	// Training turns dropout on (HiddenDropout, AttnDropout of Config).
	Training bool
	// TokenizerDir, when set (LoadHF sets it), is where SaveHF copies the
	// vocabulary and tokenizer files from.
	TokenizerDir string

	byName  map[string]*Param
	wordEmb *Param // (V,C) word embeddings, also the MLM decoder weight
	posEmb  *Param // (P,C) absolute position embeddings
	typeEmb *Param // (Y,C) token-type embeddings; nil for DistilBERT
	embLNw  *Param // (C)
	embLNb  *Param // (C)
	layers  []layerParams
	headW   *Param     // (C,C) cls.predictions.transform.dense / vocab_transform
	headB   *Param     // (C)
	headLNw *Param     // (C) cls.predictions.transform.LayerNorm / vocab_layer_norm
	headLNb *Param     // (C)
	decBias *Param     // (V) cls.predictions.bias / vocab_projector.bias
	pair    pooledHead // pooler + cls.seq_relationship (pairhead.go); zero without a pair head

	rng  *rand.Rand // dropout
	pass *Pass
}

// newModel allocates the parameters of cfg (all zero).
func newModel(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, byName: map[string]*Param{}}
	V, C, F, P := cfg.VocabSize, cfg.HiddenSize, cfg.IntermediateSize, cfg.MaxPositions
	add := func(name string, shape ...int) *Param {
		p := newParam(name, shape...)
		m.Params = append(m.Params, p)
		m.byName[name] = p
		return p
	}
	if cfg.ModelType == "bert" {
		m.wordEmb = add("bert.embeddings.word_embeddings.weight", V, C)
		m.posEmb = add("bert.embeddings.position_embeddings.weight", P, C)
		m.typeEmb = add("bert.embeddings.token_type_embeddings.weight", cfg.TypeVocabSize, C)
		m.embLNw = add("bert.embeddings.LayerNorm.weight", C)
		m.embLNb = add("bert.embeddings.LayerNorm.bias", C)
		for i := range cfg.NumLayers {
			pre := fmt.Sprintf("bert.encoder.layer.%d.", i)
			var lp layerParams
			lp.qw, lp.qb = add(pre+"attention.self.query.weight", C, C), add(pre+"attention.self.query.bias", C)
			lp.kw, lp.kb = add(pre+"attention.self.key.weight", C, C), add(pre+"attention.self.key.bias", C)
			lp.vw, lp.vb = add(pre+"attention.self.value.weight", C, C), add(pre+"attention.self.value.bias", C)
			lp.ow, lp.ob = add(pre+"attention.output.dense.weight", C, C), add(pre+"attention.output.dense.bias", C)
			lp.ln1w, lp.ln1b = add(pre+"attention.output.LayerNorm.weight", C), add(pre+"attention.output.LayerNorm.bias", C)
			lp.iw, lp.ib = add(pre+"intermediate.dense.weight", F, C), add(pre+"intermediate.dense.bias", F)
			lp.o2w, lp.o2b = add(pre+"output.dense.weight", C, F), add(pre+"output.dense.bias", C)
			lp.ln2w, lp.ln2b = add(pre+"output.LayerNorm.weight", C), add(pre+"output.LayerNorm.bias", C)
			m.layers = append(m.layers, lp)
		}
		m.decBias = add("cls.predictions.bias", V)
		m.headW, m.headB = add("cls.predictions.transform.dense.weight", C, C), add("cls.predictions.transform.dense.bias", C)
		m.headLNw, m.headLNb = add("cls.predictions.transform.LayerNorm.weight", C), add("cls.predictions.transform.LayerNorm.bias", C)
	} else {
		m.wordEmb = add("distilbert.embeddings.word_embeddings.weight", V, C)
		m.posEmb = add("distilbert.embeddings.position_embeddings.weight", P, C)
		m.embLNw = add("distilbert.embeddings.LayerNorm.weight", C)
		m.embLNb = add("distilbert.embeddings.LayerNorm.bias", C)
		for i := range cfg.NumLayers {
			pre := fmt.Sprintf("distilbert.transformer.layer.%d.", i)
			var lp layerParams
			lp.qw, lp.qb = add(pre+"attention.q_lin.weight", C, C), add(pre+"attention.q_lin.bias", C)
			lp.kw, lp.kb = add(pre+"attention.k_lin.weight", C, C), add(pre+"attention.k_lin.bias", C)
			lp.vw, lp.vb = add(pre+"attention.v_lin.weight", C, C), add(pre+"attention.v_lin.bias", C)
			lp.ow, lp.ob = add(pre+"attention.out_lin.weight", C, C), add(pre+"attention.out_lin.bias", C)
			lp.ln1w, lp.ln1b = add(pre+"sa_layer_norm.weight", C), add(pre+"sa_layer_norm.bias", C)
			lp.iw, lp.ib = add(pre+"ffn.lin1.weight", F, C), add(pre+"ffn.lin1.bias", F)
			lp.o2w, lp.o2b = add(pre+"ffn.lin2.weight", C, F), add(pre+"ffn.lin2.bias", C)
			lp.ln2w, lp.ln2b = add(pre+"output_layer_norm.weight", C), add(pre+"output_layer_norm.bias", C)
			m.layers = append(m.layers, lp)
		}
		m.headW, m.headB = add("vocab_transform.weight", C, C), add("vocab_transform.bias", C)
		m.headLNw, m.headLNb = add("vocab_layer_norm.weight", C), add("vocab_layer_norm.bias", C)
		m.decBias = add("vocab_projector.bias", V)
	}
	m.rng = rand.New(rand.NewPCG(0, 0x5eed))
	m.pass = m.NewPass()
	return m, nil
}

// NewModel returns a randomly initialised model as HuggingFace's
// _init_weights does: weights and embeddings N(0, InitializerRange), the
// [PAD] word row zero, biases zero, LayerNorm weights one. seed fixes the
// initialisation and the dropout generator (PCG).
func NewModel(cfg Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x1417))
	std := cfg.InitializerRange
	for _, p := range m.Params {
		switch {
		case p == m.embLNw || p == m.headLNw || (len(p.Shape) == 1 && isLNWeight(p.Name)):
			for i := range p.W {
				p.W[i] = 1
			}
		case len(p.Shape) == 2:
			for i := range p.W {
				p.W[i] = float32(rng.NormFloat64() * std)
			}
		}
	}
	C := cfg.HiddenSize
	clear(m.wordEmb.W[cfg.PadTokenID*C : (cfg.PadTokenID+1)*C])
	m.SeedDropout(seed)
	return m, nil
}

// LexicalInit turns a freshly initialised model into a bag-of-words
// matcher that is still a trainable masked-language model: every layer's
// attention-output and FFN-output projections (weights and biases) are
// zero, so each residual block passes its input through and the last
// hidden state is LayerNorm(word + 0.1·(position + type)); the head
// transform dense is 3·I with bias 0, and the decoder bias is
// −1.5·(C/128)·(σ/0.02) (σ = InitializerRange): −1.5 at C = 128, σ = 0.02,
// about 60% of the expected self logit C·σ at any shape. The MLM head, tied to
// the word embeddings, then predicts each input token itself: its logit is
// about |e|·|h| ≈ C·σ (2.6 at C = 128), other tokens' about ±√C·σ (±0.23),
// so a SPLADE vector max_t log1p(relu(logit)) holds the text's own tokens
// and, at C ≥ 128, nothing else. The zero projections still get gradients
// (their inputs are not zero), so training grows the layers from there, as
// ReZero and Fixup do. Cost: O(parameters).
func LexicalInit(m *Model) {
	for _, lp := range m.layers {
		for _, p := range []*Param{lp.ow, lp.ob, lp.o2w, lp.o2b} {
			clear(p.W)
		}
	}
	for _, p := range []*Param{m.posEmb, m.typeEmb} {
		if p == nil {
			continue
		}
		for i := range p.W {
			p.W[i] *= 0.1
		}
	}
	C := m.Config.HiddenSize
	clear(m.headW.W)
	for i := range C {
		m.headW.W[i*C+i] = 3
	}
	clear(m.headB.W)
	bias := float32(-1.5 * float64(C) / 128 * m.Config.InitializerRange / 0.02)
	for i := range m.decBias.W {
		m.decBias.W[i] = bias
	}
}

func isLNWeight(name string) bool {
	n := len(name)
	return n > 7 && name[n-7:] == ".weight" && (containsAny(name, "LayerNorm", "layer_norm"))
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

// SeedDropout reseeds the dropout generator.
func (m *Model) SeedDropout(seed uint64) { m.rng = rand.New(rand.NewPCG(seed, 0xd409)) }

// WordEmbeddings is the (V,C) word table, which is also the MLM decoder weight.
func (m *Model) WordEmbeddings() *Param { return m.wordEmb }

// DecoderBias is the (V) bias of the MLM decoder.
func (m *Model) DecoderBias() *Param { return m.decBias }

// Batch is a padded batch of token sequences, row-major (B,T).
type Batch struct {
	B, T     int
	InputIDs []int32   // (B,T) token ids
	TypeIDs  []int32   // (B,T) token types (BERT); nil means all 0; ignored by DistilBERT
	Mask     []float32 // (B,T) 1 for a real token, 0 for padding
}

// Validate checks the batch against the model's vocabulary, position table
// and token types; Encode panics on a batch that fails it.
func (m *Model) ValidateBatch(b Batch) error {
	cfg := m.Config
	if b.B <= 0 || b.T <= 0 {
		return fmt.Errorf("batch shape %dx%d: both must be positive", b.B, b.T)
	}
	if b.T > cfg.MaxPositions {
		return fmt.Errorf("sequence length %d exceeds max_position_embeddings %d", b.T, cfg.MaxPositions)
	}
	n := b.B * b.T
	if len(b.InputIDs) != n || len(b.Mask) != n || (b.TypeIDs != nil && len(b.TypeIDs) != n) {
		return fmt.Errorf("batch %dx%d: input_ids has %d entries, mask %d, token types %d; want %d each",
			b.B, b.T, len(b.InputIDs), len(b.Mask), len(b.TypeIDs), n)
	}
	for i, id := range b.InputIDs {
		if id < 0 || int(id) >= cfg.VocabSize {
			return fmt.Errorf("input id %d at row %d position %d outside the vocabulary of %d", id, i/b.T, i%b.T, cfg.VocabSize)
		}
	}
	if b.TypeIDs != nil && cfg.ModelType == "bert" {
		for i, id := range b.TypeIDs {
			if id < 0 || int(id) >= cfg.TypeVocabSize {
				return fmt.Errorf("token type %d at row %d position %d outside type_vocab_size %d", id, i/b.T, i%b.T, cfg.TypeVocabSize)
			}
		}
	}
	for i, v := range b.Mask {
		if v != 0 && v != 1 {
			return fmt.Errorf("attention mask %g at row %d position %d: want 0 or 1", v, i/b.T, i%b.T)
		}
	}
	return nil
}

// layerActs are one layer's activations, kept for Backward.
type layerActs struct {
	q, k, v    []float32 // (N,C) projections
	att        []float32 // (B,NH,T,T) softmax probabilities
	attD       []float32 // (B,NH,T,T) probabilities after dropout (aliases att without dropout)
	attMask    []float32 // (B,NH,T,T) dropout multipliers
	ctx        []float32 // (N,C) concatenated head outputs
	mask1      []float32 // (N,C) dropout multipliers on the attention output projection (BERT)
	res1       []float32 // (N,C) projection + residual, input of LN1
	mean1      []float32 // (N)
	rstd1      []float32 // (N)
	a          []float32 // (N,C) LN1 output
	ff1        []float32 // (N,F) pre-activation
	ffg        []float32 // (N,F) GELU output
	mask2      []float32 // (N,C) dropout multipliers on the FFN output
	res2       []float32 // (N,C) FFN output + residual, input of LN2
	mean2      []float32 // (N)
	rstd2      []float32 // (N)
	out        []float32 // (N,C) layer output
	dropHidden bool      // dropout was applied to the sublayer outputs
	dropAtt    bool
}

// headActs are the MLM head transform's activations.
type headActs struct {
	n    int
	x    []float32 // (n,C) input, owned by the caller
	h1   []float32 // (n,C) dense output
	hg   []float32 // (n,C) GELU output
	mean []float32 // (n)
	rstd []float32 // (n)
	z    []float32 // (n,C) LayerNorm output
	dx   []float32 // (n,C) gradient w.r.t. x
	dh   []float32 // (n,C) scratch
}

// Pass holds the activations of one forward pass for its backward pass.
// Buffers grow with B·T and are reused.
type Pass struct {
	m     *Model
	batch Batch

	embSum  []float32 // (N,C) word + position (+ type) embeddings
	embMean []float32 // (N)
	embRstd []float32 // (N)
	embMask []float32 // (N,C) dropout multipliers
	embDrop bool
	x0      []float32 // (N,C) embedding output, input of layer 0
	layers  []layerActs

	// backward scratch
	dA, dB     []float32   // (N,C) gradient w.r.t. the current layer's output / input
	dRes       []float32   // (N,C)
	dProj      []float32   // (N,C)
	dCtx       []float32   // (N,C)
	dQ, dK, dV []float32   // (N,C)
	dFF        []float32   // (N,F)
	dAtt       [][]float32 // per worker (T,T): one head's score gradient

	// forward attention kernel scratch and padded-key lists, one per worker
	attScr [][]float32
	attPad [][]int32

	// Attention heads run on the workers (parallelBLAS, Threads()); the
	// range functions are made once per pass so that running them
	// allocates nothing.
	attLayer    *layerActs
	attFwdRange func(w, lo, hi int)
	attBwdRange func(w, lo, hi int)

	head   headActs
	hidden []float32 // (N,C) the last Encode's output (aliases a layer's activations)
	pairSt pairState // the pair head's (pairhead.go)

	ffn ffnState // FFN activation hook (intervene.go)

	// MLM loss state
	mlmRows   []int32   // (M) row index (b·T+t) of each labelled position
	mlmLabels []int32   // (M)
	mlmX      []float32 // (M,C) gathered hidden states
	mlmLogits []float32 // (M,V) logits, then probabilities
	mlmDZ     []float32 // (M,C)
	dHidden   []float32 // (N,C)
}

// NewPass returns an empty set of activation buffers for m.
func (m *Model) NewPass() *Pass {
	return &Pass{m: m, layers: make([]layerActs, m.Config.NumLayers)}
}

// growN returns buf with at least n entries, keeping the existing ones
// (per-worker scratch).
func growN[E any](buf []E, n int) []E {
	if len(buf) < n {
		buf = append(buf, make([]E, n-len(buf))...)
	}
	return buf
}

func (p *Pass) ensure(B, T int) {
	cfg := p.m.Config
	N, C, F, NH := B*T, cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads
	A := B * NH * T * T
	p.embSum, p.embMean, p.embRstd = grow.To(p.embSum, N*C), grow.To(p.embMean, N), grow.To(p.embRstd, N)
	p.x0 = grow.To(p.x0, N*C)
	// Dropout multipliers only when dropout runs (inference saves 2·N·C
	// floats per layer and N·C for the embeddings).
	drop := p.m.Training && cfg.HiddenDropout > 0
	if drop {
		p.embMask = grow.To(p.embMask, N*C)
	}
	for i := range p.layers {
		la := &p.layers[i]
		la.q, la.k, la.v, la.ctx = grow.To(la.q, N*C), grow.To(la.k, N*C), grow.To(la.v, N*C), grow.To(la.ctx, N*C)
		la.att = grow.To(la.att, A)
		la.res1, la.a = grow.To(la.res1, N*C), grow.To(la.a, N*C)
		la.mean1, la.rstd1, la.mean2, la.rstd2 = grow.To(la.mean1, N), grow.To(la.rstd1, N), grow.To(la.mean2, N), grow.To(la.rstd2, N)
		la.ff1, la.ffg = grow.To(la.ff1, N*F), grow.To(la.ffg, N*F)
		la.res2, la.out = grow.To(la.res2, N*C), grow.To(la.out, N*C)
		if drop {
			la.mask1, la.mask2 = grow.To(la.mask1, N*C), grow.To(la.mask2, N*C)
		}
	}
}

// Encode runs the embeddings and every layer on b and returns the last
// hidden state (B,T,C), which stays valid until the next Encode on m.
// See Pass.Encode.
func (m *Model) Encode(b Batch) []float32 { return m.pass.Encode(b) }

// Backward back-propagates dh (B,T,C), the gradient w.r.t. the output of
// the last Encode, into the parameter gradients. See Pass.Backward.
func (m *Model) Backward(dh []float32) { m.pass.Backward(dh) }

// attentionHeadsBackward back-propagates p.dCtx through the attention of
// layer la for the (sequence, head) pairs lo..hi-1 (bi·NH + h) into p.dQ,
// p.dK and p.dV, with p.dAtt[w] as scratch. Its products are one OpenBLAS
// call each (sgemmSerial): the heads are the parallel unit.
func (p *Pass) attentionHeadsBackward(la *layerActs, w, lo, hi int) {
	cfg := p.m.Config
	T, C, NH, HS := p.batch.T, cfg.HiddenSize, cfg.NumHeads, cfg.HeadSize()
	scale := float32(1 / math.Sqrt(float64(HS)))
	dP := p.dAtt[w]
	for bh := lo; bh < hi; bh++ {
		bi, h := bh/NH, bh%NH
		off := bi*T*C + h*HS
		a0 := bh * T * T
		P, PD := la.att[a0:a0+T*T], la.attD[a0:a0+T*T]
		// dPD = dctx_h·V_hᵀ (T,T); dV_h = PDᵀ·dctx_h.
		sgemmSerial(false, true, T, T, HS, 1, p.dCtx[off:], C, la.v[off:], C, 0, dP, T)
		sgemmSerial(true, false, T, HS, T, 1, PD, T, p.dCtx[off:], C, 0, p.dV[off:], C)
		if la.dropAtt {
			DropoutBackward(dP, la.attMask[a0:a0+T*T])
		}
		// Softmax: dS = P⊙(dP − Σ_t P·dP), then the 1/√HS scale.
		softmaxBackwardRows(P, dP, T, T, scale)
		// dQ_h = dS·K_h; dK_h = dSᵀ·Q_h.
		sgemmSerial(false, false, T, HS, T, 1, dP, T, la.k[off:], C, 0, p.dQ[off:], C)
		sgemmSerial(true, false, T, HS, T, 1, dP, T, la.q[off:], C, 0, p.dK[off:], C)
	}
}

// HeadTransform applies the MLM head transform to n rows; see Pass.HeadTransform.
func (m *Model) HeadTransform(x []float32, n int) []float32 { return m.pass.HeadTransform(x, n) }

// HeadTransformBackward is the backward of the last HeadTransform on m.
func (m *Model) HeadTransformBackward(dz []float32) []float32 {
	return m.pass.HeadTransformBackward(dz)
}

// MLMLoss is Pass.MLMLoss on m's default pass.
func (m *Model) MLMLoss(b Batch, labels []int32) (loss float64, count int) {
	return m.pass.MLMLoss(b, labels)
}

// MLMBackward is Pass.MLMBackward on m's default pass.
func (m *Model) MLMBackward(dloss float32) { m.pass.MLMBackward(dloss) }

// Encode runs the embeddings and every layer on b and returns the last
// hidden state (B,T,C), valid until the next Encode on p. Activations are
// kept for Backward. Padded positions are computed as HuggingFace does
// (they attend to the real tokens) but no position attends to them.
// Encode panics on a batch that fails ValidateBatch. Cost: about
// 2·N·(4C² + 2CF) + 4·B·T²·C flops, one Sgemm per product.
func (p *Pass) Encode(b Batch) []float32 {
	m := p.m
	if err := m.ValidateBatch(b); err != nil {
		panic("nn: Encode: " + err.Error())
	}
	cfg := m.Config
	B, T, C, F := b.B, b.T, cfg.HiddenSize, cfg.IntermediateSize
	N := B * T
	p.ensure(B, T)
	p.batch = b
	p.head.n = 0
	p.pairSt.valid = false

	// Embeddings: e = W_word[id] + W_pos[t] (+ W_type[tt]); x0 = LN(e).
	for r := range N {
		e := p.embSum[r*C : (r+1)*C]
		id, t := int(b.InputIDs[r]), r%T
		copy(e, m.wordEmb.W[id*C:(id+1)*C])
		addInto(e, m.posEmb.W[t*C:(t+1)*C])
		if m.typeEmb != nil {
			tt := 0
			if b.TypeIDs != nil {
				tt = int(b.TypeIDs[r])
			}
			addInto(e, m.typeEmb.W[tt*C:(tt+1)*C])
		}
	}
	LayerNormForward(p.x0, p.embMean, p.embRstd, p.embSum, m.embLNw.W, m.embLNb.W, N, C, cfg.LayerNormEps)
	p.embDrop = m.Training && cfg.HiddenDropout > 0
	if p.embDrop {
		DropoutForward(p.x0, p.embMask, cfg.HiddenDropout, m.rng)
	}

	x := p.x0
	for l := range m.layers {
		lp, la := &m.layers[l], &p.layers[l]
		la.dropHidden = m.Training && cfg.HiddenDropout > 0
		la.dropAtt = m.Training && cfg.AttnDropout > 0
		LinearForward(la.q, x, lp.qw.W, lp.qb.W, N, C, C)
		LinearForward(la.k, x, lp.kw.W, lp.kb.W, N, C, C)
		LinearForward(la.v, x, lp.vw.W, lp.vb.W, N, C, C)
		p.attentionForward(la, b)
		LinearForward(la.res1, la.ctx, lp.ow.W, lp.ob.W, N, C, C)
		if la.dropHidden && cfg.ModelType == "bert" {
			DropoutForward(la.res1, la.mask1, cfg.HiddenDropout, m.rng)
		}
		LayerNormResidualForward(la.a, la.mean1, la.rstd1, la.res1, x, lp.ln1w.W, lp.ln1b.W, N, C, cfg.LayerNormEps)
		LinearForward(la.ff1, la.a, lp.iw.W, lp.ib.W, N, C, F)
		GELU(la.ffg, la.ff1)
		p.ffnForward(l, la.ffg)
		LinearForward(la.res2, la.ffg, lp.o2w.W, lp.o2b.W, N, F, C)
		if la.dropHidden {
			DropoutForward(la.res2, la.mask2, cfg.HiddenDropout, m.rng)
		}
		LayerNormResidualForward(la.out, la.mean2, la.rstd2, la.res2, la.a, lp.ln2w.W, lp.ln2b.W, N, C, cfg.LayerNormEps)
		x = la.out
	}
	p.hidden = x
	return x
}

// HiddenState returns a hidden state of the last Encode on p, (B,T,C):
// the embedding output for l = 0 (after LayerNorm, the input of layer 0),
// the output of layer l−1 for l = 1..NumLayers (so HiddenState(NumLayers)
// is what Encode returned), HuggingFace's hidden_states[l]. It aliases
// p's buffers: valid until the next Encode on p. It panics for l outside
// 0..NumLayers.
func (p *Pass) HiddenState(l int) []float32 {
	if l < 0 || l > len(p.layers) {
		panic(fmt.Sprintf("nn: HiddenState(%d) of a %d-layer model", l, len(p.layers)))
	}
	n := p.batch.B * p.batch.T * p.m.Config.HiddenSize
	if l == 0 {
		return p.x0[:n]
	}
	return p.layers[l-1].out[:n]
}

// HiddenState is Pass.HiddenState on m's default pass (Model.Encode's).
func (m *Model) HiddenState(l int) []float32 { return m.pass.HiddenState(l) }

// attentionForward computes la.ctx from la.q, la.k, la.v head by head:
// P = softmax(Q_h·K_hᵀ/√HS with padded keys at −∞), ctx_h = P·V_h.
func (p *Pass) attentionForward(la *layerActs, b Batch) {
	if la.dropAtt {
		// Dropout draws from m.rng in a fixed order: stay sequential.
		la.attD = grow.To(la.attD, len(la.att))
		la.attMask = grow.To(la.attMask, len(la.att))
		p.attScr, p.attPad = growN(p.attScr, 1), growN(p.attPad, 1)
		p.attentionHeads(la, b, 0, 0, b.B*p.m.Config.NumHeads, Sgemm)
		return
	}
	la.attD = la.att
	if p.attFwdRange == nil {
		p.attFwdRange = func(w, lo, hi int) { p.attentionHeads(p.attLayer, p.batch, w, lo, hi, sgemmSerial) }
	}
	p.attLayer = la
	nw := Threads()
	p.attScr, p.attPad = growN(p.attScr, nw), growN(p.attPad, nw)
	parallelBLAS(nw, b.B*p.m.Config.NumHeads, p.attFwdRange)
}

// attentionHeads runs attentionForward for the (sequence, head) pairs
// lo..hi-1, numbered bi·NH + h, as worker w (its scratch p.attScr[w],
// p.attPad[w]), with products by mm: sgemmSerial when the heads are the
// parallel unit, Sgemm (split by rows) on the sequential dropout path.
func (p *Pass) attentionHeads(la *layerActs, b Batch, w, lo, hi int, mm func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) {
	cfg := p.m.Config
	T, C, NH, HS := b.T, cfg.HiddenSize, cfg.NumHeads, cfg.HeadSize()
	scale := float32(1 / math.Sqrt(float64(HS)))
	for bh := lo; bh < hi; bh++ {
		bi, h := bh/NH, bh%NH
		mask := b.Mask[bi*T : (bi+1)*T]
		off := bi*T*C + h*HS
		S := la.att[bh*T*T : (bh+1)*T*T] // (T,T)
		if !la.dropAtt {
			// The fused kernel (cgo, AVX2, HS a multiple of 16).
			pad := p.attPad[w][:0]
			for t, mv := range mask {
				if mv == 0 {
					pad = append(pad, int32(t))
				}
			}
			p.attPad[w] = pad
			p.attScr[w] = grow.To(p.attScr[w], attnScratch(T, HS))
			if attnHeadKernel(la.q[off:], la.k[off:], la.v[off:], C, T, HS, scale, pad, S, la.ctx[off:], p.attScr[w]) {
				continue
			}
		}
		mm(false, true, T, T, HS, scale, la.q[off:], C, la.k[off:], C, 0, S, T)
		maskedSoftmaxRows(S, mask, T)
		PD := S
		if la.dropAtt {
			PD = la.attD[bh*T*T : (bh+1)*T*T]
			copy(PD, S)
			DropoutForward(PD, la.attMask[bh*T*T:(bh+1)*T*T], cfg.AttnDropout, p.m.rng)
		}
		mm(false, false, T, HS, T, 1, PD, T, la.v[off:], C, 0, la.ctx[off:], C)
	}
}

// lowestTrainable returns the lowest layer index whose parameters (or, as
// -1, the embeddings) need a gradient, or L when nothing below the head does.
func (m *Model) lowestTrainable() int {
	for _, p := range []*Param{m.wordEmb, m.posEmb, m.typeEmb, m.embLNw, m.embLNb} {
		if p != nil && !p.Frozen {
			return -1
		}
	}
	for l := range m.layers {
		for _, p := range m.layers[l].all() {
			if !p.Frozen {
				return l
			}
		}
	}
	return len(m.layers)
}

func gradOf(p *Param) []float32 {
	if p == nil || p.Frozen {
		return nil
	}
	return p.G
}

// Backward adds to the parameter gradients the back-propagation of dh
// (B,T,C), the gradient of a loss w.r.t. the hidden state returned by the
// last Encode on p. dh is not modified. Frozen parameters get no gradient,
// and the pass stops below the lowest layer that has a trainable parameter.
// The [PAD] row of the word table gets no lookup gradient (HF padding_idx).
// Cost: about twice that of Encode.
func (p *Pass) Backward(dh []float32) {
	m := p.m
	cfg := m.Config
	b := p.batch
	B, T, C, F, NH := b.B, b.T, cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads
	N := B * T
	paramStop := m.lowestTrainable()
	stop := p.ffnStop(paramStop) // an FFN hook may need gradients below the parameters
	if stop >= len(m.layers) {
		return
	}
	p.dA, p.dB, p.dRes, p.dProj = grow.To(p.dA, N*C), grow.To(p.dB, N*C), grow.To(p.dRes, N*C), grow.To(p.dProj, N*C)
	p.dCtx, p.dQ, p.dK, p.dV = grow.To(p.dCtx, N*C), grow.To(p.dQ, N*C), grow.To(p.dK, N*C), grow.To(p.dV, N*C)
	p.dFF = grow.To(p.dFF, N*F)
	nw := Threads()
	p.dAtt = growN(p.dAtt, nw)
	for w := range nw {
		p.dAtt[w] = grow.To(p.dAtt[w], T*T)
	}
	// dout and spare take turns as ∂/∂(layer output) and ∂/∂(layer input);
	// the swap stays local so that p.dA and p.dB remain two buffers.
	dout, spare := p.dA, p.dB
	copy(dout, dh[:N*C])

	for l := len(m.layers) - 1; l >= 0 && l >= stop; l-- {
		lp, la := &m.layers[l], &p.layers[l]
		x := p.x0
		if l > 0 {
			x = p.layers[l-1].out
		}
		dx := spare
		needDx := l > stop

		// LN2 and the FFN residual: dRes = ∂/∂res2; da starts as dRes.
		clear(p.dRes)
		LayerNormBackward(p.dRes, gradOf(lp.ln2w), gradOf(lp.ln2b), dout, la.res2, la.mean2, la.rstd2, lp.ln2w.W, N, C)
		da := dout // reuse: dout is no longer needed
		copy(da, p.dRes)
		dproj := p.dRes
		if la.dropHidden {
			DropoutBackward(dproj, la.mask2)
		}
		clear(p.dFF)
		LinearBackward(p.dFF, gradOf(lp.o2w), gradOf(lp.o2b), dproj, la.ffg, lp.o2w.W, N, F, C)
		forced := p.ffnBackward(l, p.dFF)
		if l == stop && l < paramStop {
			break // only the FFN hook needed this layer
		}
		if !forced { // a forced layer's activations do not depend on its input
			GELUBackward(p.dFF, p.dFF, la.ff1)
			LinearBackward(da, gradOf(lp.iw), gradOf(lp.ib), p.dFF, la.a, lp.iw.W, N, C, F)
		}

		// LN1 and the attention residual: dx starts as ∂/∂res1.
		clear(dx)
		LayerNormBackward(dx, gradOf(lp.ln1w), gradOf(lp.ln1b), da, la.res1, la.mean1, la.rstd1, lp.ln1w.W, N, C)
		copy(p.dProj, dx)
		if la.dropHidden && cfg.ModelType == "bert" {
			DropoutBackward(p.dProj, la.mask1)
		}
		clear(p.dCtx)
		LinearBackward(p.dCtx, gradOf(lp.ow), gradOf(lp.ob), p.dProj, la.ctx, lp.ow.W, N, C, C)

		// Attention, head by head, on the workers.
		if p.attBwdRange == nil {
			p.attBwdRange = func(w, lo, hi int) { p.attentionHeadsBackward(p.attLayer, w, lo, hi) }
		}
		p.attLayer = la
		parallelBLAS(nw, B*NH, p.attBwdRange)
		var dxArg []float32 // nil: nothing below needs ∂/∂x
		if needDx {
			dxArg = dx
		}
		LinearBackward(dxArg, gradOf(lp.qw), gradOf(lp.qb), p.dQ, x, lp.qw.W, N, C, C)
		LinearBackward(dxArg, gradOf(lp.kw), gradOf(lp.kb), p.dK, x, lp.kw.W, N, C, C)
		LinearBackward(dxArg, gradOf(lp.vw), gradOf(lp.vb), p.dV, x, lp.vw.W, N, C, C)
		dout, spare = dx, dout
	}
	if stop >= 0 {
		return
	}

	// Embeddings: dout is ∂/∂x0.
	if p.embDrop {
		DropoutBackward(dout, p.embMask)
	}
	de := spare
	clear(de)
	LayerNormBackward(de, gradOf(m.embLNw), gradOf(m.embLNb), dout, p.embSum, p.embMean, p.embRstd, m.embLNw.W, N, C)
	for r := range N {
		g := de[r*C : (r+1)*C]
		if id := int(b.InputIDs[r]); !m.wordEmb.Frozen && id != cfg.PadTokenID {
			addInto(m.wordEmb.G[id*C:(id+1)*C], g)
		}
		if t := r % T; !m.posEmb.Frozen {
			addInto(m.posEmb.G[t*C:(t+1)*C], g)
		}
		if m.typeEmb != nil && !m.typeEmb.Frozen {
			tt := 0
			if b.TypeIDs != nil {
				tt = int(b.TypeIDs[r])
			}
			addInto(m.typeEmb.G[tt*C:(tt+1)*C], g)
		}
	}
}

// HeadTransform applies the MLM head transform — dense, GELU, LayerNorm
// (cls.predictions.transform / vocab_transform + vocab_layer_norm) — to n
// rows x (n,C) and returns z (n,C), valid until the next HeadTransform on
// p. x must stay unchanged until HeadTransformBackward. The vocabulary
// projection z·W_wordᵀ + bias is left to the caller (Logits, MLMLoss,
// SPLADE pooling).
func (p *Pass) HeadTransform(x []float32, n int) []float32 {
	m := p.m
	C := m.Config.HiddenSize
	h := &p.head
	h.n, h.x = n, x[:n*C]
	h.h1, h.hg, h.z = grow.To(h.h1, n*C), grow.To(h.hg, n*C), grow.To(h.z, n*C)
	h.mean, h.rstd = grow.To(h.mean, n), grow.To(h.rstd, n)
	LinearForward(h.h1, h.x, m.headW.W, m.headB.W, n, C, C)
	GELU(h.hg, h.h1)
	LayerNormForward(h.z, h.mean, h.rstd, h.hg, m.headLNw.W, m.headLNb.W, n, C, m.Config.LayerNormEps)
	return h.z
}

// HeadTransformBackward adds the head transform's parameter gradients for
// dz (n,C) and returns ∂/∂x (n,C), valid until the next call on p.
func (p *Pass) HeadTransformBackward(dz []float32) []float32 {
	m := p.m
	C := m.Config.HiddenSize
	h := &p.head
	n := h.n
	h.dx, h.dh = grow.To(h.dx, n*C), grow.To(h.dh, n*C)
	clear(h.dh)
	LayerNormBackward(h.dh, gradOf(m.headLNw), gradOf(m.headLNb), dz, h.hg, h.mean, h.rstd, m.headLNw.W, n, C)
	GELUBackward(h.dh, h.dh, h.h1)
	clear(h.dx)
	LinearBackward(h.dx, gradOf(m.headW), gradOf(m.headB), h.dh, h.x, m.headW.W, n, C, C)
	return h.dx
}

// Logits sets out (n,V) = z·W_wordᵀ + bias for head-transform outputs z
// (n,C). Cost: 2·n·V·C flops.
func (m *Model) Logits(out, z []float32, n int) {
	LinearForward(out, z, m.wordEmb.W, m.decBias.W, n, m.Config.HiddenSize, m.Config.VocabSize)
}

// LogitsBackward adds dlogits·W_word to dz (n,C) and the decoder's
// gradients to the word table and the bias (unless frozen).
func (m *Model) LogitsBackward(dz, dlogits, z []float32, n int) {
	LinearBackward(dz, gradOf(m.wordEmb), gradOf(m.decBias), dlogits, z, m.wordEmb.W, n, m.Config.HiddenSize, m.Config.VocabSize)
}

// IgnoreIndex marks a position without an MLM label.
const IgnoreIndex = -100

// MLMLoss runs Encode on b and returns the masked-language-model loss: the
// mean over labelled positions (labels (B,T), IgnoreIndex elsewhere) of
// logsumexp_v logits − logits[label], with count = the number of labelled
// positions. The vocabulary projection is computed only at those
// positions. With no labelled position the loss is 0 and MLMBackward does
// nothing. Labels outside the vocabulary are an error.
func (p *Pass) MLMLoss(b Batch, labels []int32) (loss float64, count int) {
	m := p.m
	C, V := m.Config.HiddenSize, m.Config.VocabSize
	if len(labels) != b.B*b.T {
		panic(fmt.Sprintf("nn: MLMLoss: %d labels for a %dx%d batch", len(labels), b.B, b.T))
	}
	hidden := p.Encode(b)
	p.mlmRows, p.mlmLabels = p.mlmRows[:0], p.mlmLabels[:0]
	for r, lab := range labels {
		if lab == IgnoreIndex {
			continue
		}
		if lab < 0 || int(lab) >= V {
			panic(fmt.Sprintf("nn: MLMLoss: label %d at row %d position %d outside the vocabulary of %d", lab, r/b.T, r%b.T, V))
		}
		p.mlmRows = append(p.mlmRows, int32(r))
		p.mlmLabels = append(p.mlmLabels, lab)
	}
	M := len(p.mlmRows)
	if M == 0 {
		return 0, 0
	}
	p.mlmX = grow.To(p.mlmX, M*C)
	for i, r := range p.mlmRows {
		copy(p.mlmX[i*C:(i+1)*C], hidden[int(r)*C:int(r+1)*C])
	}
	z := p.HeadTransform(p.mlmX, M)
	p.mlmLogits = grow.To(p.mlmLogits, M*V)
	m.Logits(p.mlmLogits, z, M)
	var sum float64
	for i, lab := range p.mlmLabels {
		row := p.mlmLogits[i*V : (i+1)*V]
		sum += SoftmaxCrossEntropy(row, int(lab))
	}
	return sum / float64(M), M
}

// MLMBackward back-propagates dloss·∂(MLM loss) from the last MLMLoss on p
// into every trainable parameter (dloss = 1 for the plain loss, 1/k to
// average over k accumulated micro-batches). Call it at most once per
// MLMLoss: it turns the stored probabilities into logit gradients in place.
func (p *Pass) MLMBackward(dloss float32) { p.PretrainBackward(dloss, 0) }

// mlmGrad sets p.dHidden (N,C) to dloss·∂(MLM loss)/∂hidden of the last
// MLMLoss, adding the MLM head's parameter gradients on the way, and
// reports whether there was a labelled position (else p.dHidden is not
// touched).
func (p *Pass) mlmGrad(dloss float32) bool {
	m := p.m
	C, V := m.Config.HiddenSize, m.Config.VocabSize
	M := len(p.mlmRows)
	if M == 0 {
		return false
	}
	// dlogits = dloss·(softmax − onehot)/M, in place over the probabilities.
	s := dloss / float32(M)
	for i, lab := range p.mlmLabels {
		row := p.mlmLogits[i*V : (i+1)*V]
		row[lab] -= 1
		for j := range row {
			row[j] *= s
		}
	}
	p.mlmDZ = grow.To(p.mlmDZ, M*C)
	clear(p.mlmDZ)
	m.LogitsBackward(p.mlmDZ, p.mlmLogits[:M*V], p.head.z, M)
	dx := p.HeadTransformBackward(p.mlmDZ)
	N := p.batch.B * p.batch.T
	p.dHidden = grow.To(p.dHidden, N*C)
	clear(p.dHidden)
	for i, r := range p.mlmRows {
		copy(p.dHidden[int(r)*C:int(r+1)*C], dx[i*C:(i+1)*C])
	}
	return true
}
