package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/spladapt/spladapt/internal/grow"
	"github.com/spladapt/spladapt/safetensors"
)

// Cross-encoders: HuggingFace's BertForSequenceClassification and
// DistilBertForSequenceClassification with one label, the layout of the
// MS MARCO re-rankers (cross-encoder/ms-marco-MiniLM-L-6-v2 and kin).
//
//	input   [CLS] query [SEP] document [SEP], token types 0…0 1…1 (BERT)
//	h = Encode(input)                     (B,T,C)
//	x = h[:, 0]                           (B,C) the [CLS] state
//	BERT:       p = tanh(x·W_poolᵀ + b_pool)     bert.pooler.dense
//	DistilBERT: p = relu(x·W_preᵀ + b_pre)       pre_classifier
//	p = dropout(p)                        (training only)
//	s = p·w_clsᵀ + b_cls                  (B) classifier, one label
//
// The classifier has no MLM head: the masked-LM parameters
// (cls.predictions.* / vocab_transform, vocab_layer_norm, vocab_projector)
// are not among its Params, and the MLM methods of its Model (HeadTransform,
// MLMLoss, Logits, SPLADE pooling) must not be called on it.

// Classifier is a cross-encoder: an encoder (the embedded Model, whose
// Params end with the four head parameters) and a one-label head on the
// [CLS] state. Not safe for concurrent use; NewScorePass gives independent
// activation buffers.
type Classifier struct {
	*Model
	poolW, poolB *Param // (C,C), (C) bert.pooler.dense / pre_classifier
	clsW, clsB   *Param // (1,C), (1) classifier
	// HeadDropout is the dropout rate on the pooled state in training:
	// classifier_dropout (else hidden_dropout_prob) for BERT,
	// seq_classif_dropout (default 0.2) for DistilBERT.
	HeadDropout float64
	// NewHead lists the head parameters that the checkpoint did not hold
	// and that were initialised as HF does (weights N(0, initializer_range),
	// biases 0): a cross-encoder started from a masked-LM checkpoint.
	NewHead []string
}

// ClassifierArchitecture is the HF class name written to config.json.
func classifierArchitecture(modelType string) string {
	if modelType == "distilbert" {
		return "DistilBertForSequenceClassification"
	}
	return "BertForSequenceClassification"
}

// newClassifier turns a freshly built model into a classifier: the MLM
// head goes, the sequence-classification head (zeros) comes.
func newClassifier(m *Model) *Classifier {
	head := map[*Param]bool{m.headW: true, m.headB: true, m.headLNw: true, m.headLNb: true, m.decBias: true}
	m.Params = slices.DeleteFunc(m.Params, func(p *Param) bool {
		if head[p] {
			delete(m.byName, p.Name)
			return true
		}
		return false
	})
	m.headW, m.headB, m.headLNw, m.headLNb, m.decBias = nil, nil, nil, nil, nil
	C := m.Config.HiddenSize
	add := func(name string, shape ...int) *Param {
		p := newParam(name, shape...)
		m.Params = append(m.Params, p)
		m.byName[name] = p
		return p
	}
	c := &Classifier{Model: m}
	if m.Config.ModelType == "bert" {
		c.poolW, c.poolB = add("bert.pooler.dense.weight", C, C), add("bert.pooler.dense.bias", C)
	} else {
		c.poolW, c.poolB = add("pre_classifier.weight", C, C), add("pre_classifier.bias", C)
	}
	c.clsW, c.clsB = add("classifier.weight", 1, C), add("classifier.bias", 1)
	c.HeadDropout = headDropout(m.Config)
	m.Config.Architecture = classifierArchitecture(m.Config.ModelType)
	if m.Config.raw == nil {
		m.Config.raw = map[string]any{}
	}
	m.Config.raw["id2label"] = map[string]any{"0": "LABEL_0"}
	m.Config.raw["label2id"] = map[string]any{"LABEL_0": 0}
	return c
}

func headDropout(cfg Config) float64 {
	num := func(key string) (float64, bool) {
		f, ok := cfg.raw[key].(float64)
		return f, ok
	}
	if cfg.ModelType == "distilbert" {
		if f, ok := num("seq_classif_dropout"); ok {
			return f
		}
		return 0.2
	}
	if f, ok := num("classifier_dropout"); ok {
		return f
	}
	return cfg.HiddenDropout
}

// NewClassifier returns a randomly initialised cross-encoder of shape cfg:
// the encoder as NewModel, the head as HF's _init_weights.
func NewClassifier(cfg Config, seed uint64) (*Classifier, error) {
	m, err := NewModel(cfg, seed)
	if err != nil {
		return nil, err
	}
	c := newClassifier(m)
	c.initHead(rand.New(rand.NewPCG(seed, 0xc1a5)), c.headParams())
	return c, nil
}

func (c *Classifier) headParams() []*Param { return []*Param{c.poolW, c.poolB, c.clsW, c.clsB} }

// initHead initialises ps as HF's _init_weights: weights N(0, σ), biases 0.
func (c *Classifier) initHead(rng *rand.Rand, ps []*Param) {
	std := c.Config.InitializerRange
	for _, p := range ps {
		if p == c.poolB || p == c.clsB {
			clear(p.W)
			continue
		}
		for i := range p.W {
			p.W[i] = float32(rng.NormFloat64() * std)
		}
	}
}

// LoadClassifier reads a cross-encoder from an HF checkpoint directory
// (see LoadHF for the files, dtypes and key aliases). The encoder tensors
// must all be present; the MLM head's are ignored when present. The head —
// bert.pooler.dense.* and classifier.* (BERT), pre_classifier.* and
// classifier.* (DistilBERT) — is loaded when the checkpoint holds it; when
// it holds none of it and initHead is true (a masked-LM checkpoint as the
// starting point of training), the head is initialised from seed as HF
// does and listed in NewHead. When it holds the pooler but no classifier
// and initHead is true (a BertForPreTraining checkpoint, whose pooler the
// next-sentence task trained), the pooler is kept and only classifier.* is
// initialised and listed in NewHead. Any other partial head, or a
// classifier with other than one label, is an error.
func LoadClassifier(dir string, initHead bool, seed uint64) (*Classifier, error) {
	m, f, err := readHF(dir)
	if err != nil {
		return nil, err
	}
	c := newClassifier(m)
	path := filepath.Join(dir, "model.safetensors")
	head := c.headParams()
	enc := m.Params[:len(m.Params)-len(head)]
	if err := m.loadParams(f, enc); err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	var missing []*Param
	for _, p := range head {
		if !hasAnyKey(f, m.candidateKeys(p.Name)) {
			missing = append(missing, p)
		}
	}
	switch {
	case len(missing) == 0:
		if info, _ := f.Tensor(firstKey(f, m.candidateKeys(c.clsW.Name))); len(info.Shape) == 2 && info.Shape[0] != 1 {
			return nil, fmt.Errorf("load checkpoint %s: classifier.weight has %d labels, want 1 (a re-ranker scores with one logit)", path, info.Shape[0])
		}
		if err := m.loadParams(f, head); err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
	case len(missing) == len(head) && initHead:
		c.initHead(rand.New(rand.NewPCG(seed, 0xc1a5)), head)
		for _, p := range head {
			c.NewHead = append(c.NewHead, p.Name)
		}
	case initHead && len(missing) == 2 && missing[0] == c.clsW && missing[1] == c.clsB:
		// A pretraining checkpoint with a trained pooler
		// (BertForPreTraining): keep it, start the classifier.
		if err := m.loadParams(f, head[:2]); err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
		c.initHead(rand.New(rand.NewPCG(seed, 0xc1a5)), missing)
		for _, p := range missing {
			c.NewHead = append(c.NewHead, p.Name)
		}
	case len(missing) == len(head):
		return nil, fmt.Errorf("load checkpoint %s: no sequence-classification head (%s, classifier.*): it is not a cross-encoder; start training from it instead", dir, c.poolW.Name)
	default:
		names := make([]string, len(missing))
		for i, p := range missing {
			names[i] = p.Name
		}
		return nil, fmt.Errorf("load checkpoint %s: the classification head is incomplete: missing %v", path, names)
	}
	m.TokenizerDir = dir
	return c, nil
}

func hasAnyKey(f *safetensors.File, keys []string) bool { return firstKey(f, keys) != "" }

func firstKey(f *safetensors.File, keys []string) string {
	for _, k := range keys {
		if _, ok := f.Tensor(k); ok {
			return k
		}
	}
	return ""
}

// ScorePass holds a classifier's activations for one batch of pairs: the
// encoder's Pass and the head's. Buffers grow and are reused.
type ScorePass struct {
	c    *Classifier
	Enc  *Pass
	head clsHead
	dh   []float32 // (B,T,C) gradient w.r.t. the last hidden state
	b    Batch
}

// NewScorePass returns empty activation buffers for c.
func (c *Classifier) NewScorePass() *ScorePass { return &ScorePass{c: c, Enc: c.Model.NewPass()} }

// Score runs the encoder and the head on b and returns the B scores, valid
// until the next Score on p. Cost: that of Encode plus 2·B·C·(C+1) flops.
func (p *ScorePass) Score(b Batch) []float32 {
	h := p.Enc.Encode(b)
	p.b = b
	C := p.c.Config.HiddenSize
	x := p.head.gather(h, b.B, b.T, C)
	return p.c.headForward(&p.head, x, b.B)
}

// Backward adds the gradients of Σ_b ds[b]·score[b] (ds (B)) for the last
// Score to every trainable parameter.
func (p *ScorePass) Backward(ds []float32) {
	b := p.b
	C := p.c.Config.HiddenSize
	dx := p.c.headBackward(&p.head, ds)
	p.dh = grow.To(p.dh, b.B*b.T*C)
	clear(p.dh)
	for i := range b.B {
		copy(p.dh[i*b.T*C:i*b.T*C+C], dx[i*C:(i+1)*C])
	}
	p.Enc.Backward(p.dh)
}

// clsHead are a pooled head's activations for n rows.
type clsHead struct {
	n      int
	x      []float32 // (n,C) [CLS] states
	pre    []float32 // (n,C) pooler pre-activation
	pooled []float32 // (n,C) tanh / relu output, after dropout
	mask   []float32 // (n,C) dropout multipliers
	drop   bool
	scores []float32 // (n,K) outputs
	dp, dx []float32 // (n,C)
}

// gather copies row 0 of each of n sequences of h (n,T,C) into x.
func (hd *clsHead) gather(h []float32, n, T, C int) []float32 {
	hd.x = grow.To(hd.x, n*C)
	for i := range n {
		copy(hd.x[i*C:(i+1)*C], h[i*T*C:i*T*C+C])
	}
	return hd.x
}

// pooledHead names the parameters of a head on the [CLS] state: a pooler
// then a linear layer with K outputs, the layout of the cross-encoder's
// head (K = 1) and of BertForPreTraining's next-sentence head (K = 2):
//
//	p = act(x·W_poolᵀ + b_pool)   (n,C) act = tanh (BERT) or relu (DistilBERT)
//	p = dropout(p)                (n,C) only with a dropout rate > 0
//	y = p·W_outᵀ + b_out          (n,K)
type pooledHead struct {
	poolW, poolB *Param // (C,C), (C)
	outW, outB   *Param // (K,C), (K)
	tanh         bool
}

// forward computes y (n,K) for the [CLS] states x (n,C), kept by hd for
// backward; dropout (rate drop, drawn from rng) applies to the pooled state
// when drop > 0. Cost: 2·n·C·(C+K) flops.
func (h pooledHead) forward(hd *clsHead, x []float32, n, C int, drop float64, rng *rand.Rand) []float32 {
	K := h.outW.Shape[0]
	hd.n, hd.x = n, x[:n*C]
	hd.pre, hd.pooled = grow.To(hd.pre, n*C), grow.To(hd.pooled, n*C)
	LinearForward(hd.pre, hd.x, h.poolW.W, h.poolB.W, n, C, C)
	for i, v := range hd.pre {
		if h.tanh {
			hd.pooled[i] = float32(math.Tanh(float64(v)))
		} else {
			hd.pooled[i] = max(v, 0)
		}
	}
	hd.drop = drop > 0
	if hd.drop {
		hd.mask = grow.To(hd.mask, n*C)
		DropoutForward(hd.pooled, hd.mask, drop, rng)
	}
	hd.scores = grow.To(hd.scores, n*K)
	LinearForward(hd.scores, hd.pooled, h.outW.W, h.outB.W, n, C, K)
	return hd.scores
}

// backward adds the head's parameter gradients (frozen ones excepted) for
// dy (n,K) and returns ∂/∂x (n,C), valid until the next call with hd.
func (h pooledHead) backward(hd *clsHead, dy []float32, C int) []float32 {
	K, n := h.outW.Shape[0], hd.n
	hd.dp, hd.dx = grow.To(hd.dp, n*C), grow.To(hd.dx, n*C)
	clear(hd.dp)
	LinearBackward(hd.dp, gradOf(h.outW), gradOf(h.outB), dy[:n*K], hd.pooled, h.outW.W, n, C, K)
	if hd.drop {
		DropoutBackward(hd.dp, hd.mask)
	}
	for i, g := range hd.dp {
		if h.tanh {
			t := math.Tanh(float64(hd.pre[i]))
			hd.dp[i] = float32(float64(g) * (1 - t*t))
		} else if hd.pre[i] <= 0 {
			hd.dp[i] = 0
		}
	}
	clear(hd.dx)
	LinearBackward(hd.dx, gradOf(h.poolW), gradOf(h.poolB), hd.dp, hd.x, h.poolW.W, n, C, C)
	return hd.dx
}

func (c *Classifier) head() pooledHead {
	return pooledHead{c.poolW, c.poolB, c.clsW, c.clsB, c.Config.ModelType == "bert"}
}

// headForward scores x (n,C), the [CLS] states, kept by hd for backward.
func (c *Classifier) headForward(hd *clsHead, x []float32, n int) []float32 {
	drop := 0.0
	if c.Training {
		drop = c.HeadDropout
	}
	return c.head().forward(hd, x, n, c.Config.HiddenSize, drop, c.rng)
}

// headBackward adds the head's parameter gradients for ds (n) and returns
// ∂/∂x (n,C), valid until the next call with hd.
func (c *Classifier) headBackward(hd *clsHead, ds []float32) []float32 {
	return c.head().backward(hd, ds, c.Config.HiddenSize)
}

// GrowTokenTypes widens a BERT model's token-type table to n rows: rows
// already there are kept, each new row k is row k mod the old count plus
// N(0, initializer_range) noise, so a new type starts as an old one, told
// apart. It is how a re-ranker with exact-match types (rerank.MatchTypes)
// starts from a checkpoint with the usual two. n at most the current size
// is a no-op; DistilBERT has no token types and is an error. Cost: O(n·C).
func (m *Model) GrowTokenTypes(n int, seed uint64) error {
	if m.typeEmb == nil {
		return fmt.Errorf("%s has no token types", m.Config.ModelType)
	}
	old := m.Config.TypeVocabSize
	if n <= old {
		return nil
	}
	C := m.Config.HiddenSize
	rng := rand.New(rand.NewPCG(seed, 0x7e5))
	w := make([]float32, n*C)
	copy(w, m.typeEmb.W)
	for k := old; k < n; k++ {
		src := m.typeEmb.W[(k%old)*C : (k%old+1)*C]
		for j := range C {
			w[k*C+j] = src[j] + float32(rng.NormFloat64()*m.Config.InitializerRange)
		}
	}
	m.typeEmb.W, m.typeEmb.G, m.typeEmb.Shape = w, make([]float32, n*C), []int{n, C}
	m.Config.TypeVocabSize = n
	return nil
}
