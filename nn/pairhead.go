package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/spladapt/spladapt/internal/grow"
)

// The sentence-pair (next-sentence) head of HuggingFace's
// BertForPreTraining, trained jointly with the MLM head:
//
//	input   [CLS] A [SEP] B [SEP], token types 0…0 1…1
//	h = Encode(input)                     (B,T,C)
//	x = h[:, 0]                           (B,C) the [CLS] state
//	p = tanh(x·W_poolᵀ + b_pool)          (B,C) bert.pooler.dense
//	y = p·W_relᵀ + b_rel                  (B,2) cls.seq_relationship
//	loss = mean_b CE(y_b, next_b)         next 0: B follows A, 1: B is random
//
// There is no dropout on the pooled state (BertPreTrainingHeads has none).
// The pooler is the one BertForSequenceClassification reads, so a
// cross-encoder started from such a checkpoint begins with a pooler trained
// to summarise a pair (LoadClassifier keeps it).

// PairHeadNames are the parameters of the pair head, in the order they
// follow the masked-LM parameters in Model.Params.
var PairHeadNames = []string{"bert.pooler.dense.weight", "bert.pooler.dense.bias",
	"cls.seq_relationship.weight", "cls.seq_relationship.bias"}

// PreTrainingArchitecture is the HF class a model with a pair head is
// written as.
const PreTrainingArchitecture = "BertForPreTraining"

// pairState is a pass's pair-head activations and loss, valid for the last
// Encode.
type pairState struct {
	head  clsHead
	valid bool      // PairLoss ran since the last Encode
	next  []int32   // (B) labels
	prob  []float32 // (B,2) softmax of the logits
}

// HasPairHead reports whether m has the pair head (AddPairHead or a
// checkpoint that holds it, read by LoadPreTraining).
func (m *Model) HasPairHead() bool { return m.pair.poolW != nil }

// AddPairHead gives a BERT model the pair head, initialised as HF's
// _init_weights does (weights N(0, InitializerRange) drawn from seed,
// biases 0), and makes PreTrainingArchitecture its HF class. It is an
// error on DistilBERT (no pooler, no token types) or when m has one.
func (m *Model) AddPairHead(seed uint64) error {
	if err := m.addPairHead(); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 0x4e5b))
	std := m.Config.InitializerRange
	for _, p := range []*Param{m.pair.poolW, m.pair.outW} {
		for i := range p.W {
			p.W[i] = float32(rng.NormFloat64() * std)
		}
	}
	return nil
}

// addPairHead appends the pair head's parameters (zero).
func (m *Model) addPairHead() error {
	if m.Config.ModelType != "bert" {
		return fmt.Errorf("a sentence-pair head needs a BERT model, not %s (no pooler, no token types)", m.Config.ModelType)
	}
	if m.HasPairHead() {
		return errors.New("the model already has a sentence-pair head")
	}
	C := m.Config.HiddenSize
	shapes := [][]int{{C, C}, {C}, {2, C}, {2}}
	ps := make([]*Param, len(PairHeadNames))
	for i, name := range PairHeadNames {
		ps[i] = newParam(name, shapes[i]...)
		m.Params = append(m.Params, ps[i])
		m.byName[name] = ps[i]
	}
	m.pair = pooledHead{poolW: ps[0], poolB: ps[1], outW: ps[2], outB: ps[3], tanh: true}
	m.Config.Architecture = PreTrainingArchitecture
	return nil
}

// LoadPreTraining reads a checkpoint as LoadHF does and, when it holds the
// pair head (all of PairHeadNames, e.g. a BertForPreTraining checkpoint or
// one "spladapt pretrain" wrote with a pair task), loads that head too. A
// checkpoint with only some of the four tensors is an error naming the
// missing ones. Without the head the model is exactly LoadHF's.
func LoadPreTraining(dir string) (*Model, error) {
	m, f, err := readHF(dir)
	if err != nil {
		return nil, err
	}
	if err := m.loadParams(f, m.Params); err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", f.Path(), err)
	}
	var have, missing []string
	for _, name := range PairHeadNames {
		if hasAnyKey(f, m.candidateKeys(name)) {
			have = append(have, name)
		} else {
			missing = append(missing, name)
		}
	}
	switch {
	case len(have) == len(PairHeadNames):
		if err := m.addPairHead(); err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %w", dir, err)
		}
		if err := m.loadParams(f, m.Params[len(m.Params)-len(PairHeadNames):]); err != nil {
			return nil, fmt.Errorf("load checkpoint %s: %w", f.Path(), err)
		}
	case len(have) > 0:
		return nil, fmt.Errorf("load checkpoint %s: the sentence-pair head is incomplete: it has %s but not %s",
			f.Path(), strings.Join(have, ", "), strings.Join(missing, ", "))
	}
	m.TokenizerDir = dir
	return m, nil
}

// PairLoss is Pass.PairLoss on m's default pass.
func (m *Model) PairLoss(next []int32) (loss float64, correct int) { return m.pass.PairLoss(next) }

// PretrainBackward is Pass.PretrainBackward on m's default pass.
func (m *Model) PretrainBackward(dMLM, dPair float32) { m.pass.PretrainBackward(dMLM, dPair) }

// PairLoss runs the pair head on the [CLS] states of the last Encode on p
// (MLMLoss runs one) and returns the mean cross-entropy over the B
// sequences of the label next (B: 0 = B follows A, 1 = B is random, HF's
// next_sentence_label) and the number of sequences whose argmax is the
// label (ties count as 0). It panics without a pair head or on a label
// other than 0 or 1. Cost: 2·B·C·(C+2) flops.
func (p *Pass) PairLoss(next []int32) (loss float64, correct int) {
	m := p.m
	if !m.HasPairHead() {
		panic("nn: PairLoss on a model without a pair head")
	}
	B, T, C := p.batch.B, p.batch.T, m.Config.HiddenSize
	if len(next) != B {
		panic(fmt.Sprintf("nn: PairLoss: %d labels for a batch of %d", len(next), B))
	}
	st := &p.pairSt
	x := st.head.gather(p.hidden, B, T, C)
	y := m.pair.forward(&st.head, x, B, C, 0, nil) // (B,2)
	st.prob = grow.To(st.prob, 2*B)
	st.next = append(st.next[:0], next...)
	var sum float64
	for b, lab := range next {
		if lab != 0 && lab != 1 {
			panic(fmt.Sprintf("nn: PairLoss: label %d of sequence %d, want 0 or 1", lab, b))
		}
		row := y[2*b : 2*b+2]
		if (lab == 0 && row[0] > row[1]) || (lab == 1 && row[1] > row[0]) {
			correct++
		}
		copy(st.prob[2*b:2*b+2], row)
		sum += SoftmaxCrossEntropy(st.prob[2*b:2*b+2], int(lab))
	}
	st.valid = true
	return sum / math.Max(float64(B), 1), correct
}

// PretrainBackward back-propagates dMLM·(MLM loss) + dPair·(pair loss) of
// the last MLMLoss and PairLoss on p into every trainable parameter, with
// one pass through the encoder. dPair must be 0 when PairLoss did not run
// on the last Encode. MLMBackward(d) is PretrainBackward(d, 0). Call it at
// most once per MLMLoss.
func (p *Pass) PretrainBackward(dMLM, dPair float32) {
	if dPair != 0 && !p.pairSt.valid {
		panic("nn: PretrainBackward with a pair weight but no PairLoss on the last Encode")
	}
	mlm := p.mlmGrad(dMLM)
	if dPair == 0 {
		if mlm {
			p.Backward(p.dHidden)
		}
		return
	}
	m := p.m
	B, T, C := p.batch.B, p.batch.T, m.Config.HiddenSize
	if !mlm {
		p.dHidden = grow.To(p.dHidden, B*T*C)
		clear(p.dHidden)
	}
	// dy = dPair·(softmax − onehot)/B, in place over the probabilities.
	st := &p.pairSt
	s := dPair / float32(B)
	for b, lab := range st.next {
		row := st.prob[2*b : 2*b+2]
		row[lab] -= 1
		row[0] *= s
		row[1] *= s
	}
	dx := m.pair.backward(&st.head, st.prob, C) // (B,C)
	for b := range B {
		addInto(p.dHidden[b*T*C:b*T*C+C], dx[b*C:(b+1)*C])
	}
	st.valid = false
	p.Backward(p.dHidden)
}
