// Package onnx writes a spladapt model (BERT or DistilBERT with its MLM
// head) as an ONNX graph that computes SPLADE vectors, so that any ONNX
// runtime can encode queries and documents with it.
//
// The graph, opset 17, IR version 8:
//
//	inputs   input_ids       int64 [batch, seq]
//	         attention_mask  int64 [batch, seq]   1 = real token, 0 = padding
//	         token_type_ids  int64 [batch, seq]   BERT only
//	output   splade          float [batch, vocab]
//
// splade[b, v] = max over the positions t with attention_mask[b, t] = 1 of
// log(1 + ReLU(logit[b, t, v])), 0 for a row without real tokens — the
// vectors of nn.SpladeEncode and "spladapt inspect forward". The encoder is
// written op by op (Gather, LayerNormalization, MatMul, Softmax, Erf GELU),
// as HuggingFace computes it: padded keys get the most negative float32
// added to their attention scores; GELU is the exact 0.5·x·(1+erf(x/√2)).
// The MLM decoder is a Gemm with transB on the word-embedding initializer,
// so the tied table is stored once. Every weight is a float32 initializer
// in raw little-endian bytes; linear weights are stored transposed, (in,
// out), for MatMul.
package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/spladapt/spladapt/export/onnx/onnxpb"
	"github.com/spladapt/spladapt/internal/atomicfile"
	"github.com/spladapt/spladapt/nn"
)

// Opset is the ONNX operator set version of the graphs Build writes
// (LayerNormalization is a standard op from 17 on).
const Opset = 17

// irVersion is the ONNX IR version that goes with Opset 17.
const irVersion = 8

// FileName is the model file Export writes.
const FileName = "model.onnx"

// Build returns the ONNX model of m's SPLADE encoder (see the package
// comment). It reads m's weights and does not change m. Cost: one copy of
// every weight (O(parameters) memory).
func Build(m *nn.Model) (*onnxpb.ModelProto, error) {
	cfg := m.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("build onnx graph: %w", err)
	}
	b := &builder{m: m, g: &onnxpb.GraphProto{Name: proto.String("spladapt_splade_" + cfg.ModelType)}}
	names := paramNames(cfg)
	C, NH, HS := int64(cfg.HiddenSize), int64(cfg.NumHeads), int64(cfg.HeadSize())
	eps := float32(cfg.LayerNormEps)
	bert := cfg.ModelType == "bert"

	b.input("input_ids")
	b.input("attention_mask")
	if bert {
		b.input("token_type_ids")
	}

	// Embeddings: LN(word[ids] + pos[0:T] (+ type[tt])).
	wordEmb, err := b.weight(names.wordEmb, false)
	if err != nil {
		return nil, err
	}
	posEmb, err := b.weight(names.posEmb, false)
	if err != nil {
		return nil, err
	}
	seqLen := b.node("Shape", []string{"input_ids"}, intAttr("start", 1), intAttr("end", 2)) // [1] = T
	posRows := b.node("Slice", []string{posEmb, b.constI64("zero1", 0), seqLen, b.constI64("axis0", 0)})
	e := b.node("Add", []string{b.node("Gather", []string{wordEmb, "input_ids"}), posRows})
	if bert {
		typeEmb, err := b.weight(names.typeEmb, false)
		if err != nil {
			return nil, err
		}
		e = b.node("Add", []string{e, b.node("Gather", []string{typeEmb, "token_type_ids"})})
	}
	x, err := b.layerNorm(e, names.embLN, eps)
	if err != nil {
		return nil, err
	}

	// Attention bias (B,1,1,T): 0 on real keys, the lowest float32 on padding.
	maskF := b.node("Cast", []string{"attention_mask"}, intAttr("to", int64(onnxpb.TensorProto_FLOAT)))
	notMask := b.node("Sub", []string{b.constF32("one", 1), maskF})
	attBias := b.node("Mul", []string{notMask, b.constF32("lowest", -math.MaxFloat32)})
	attBias = b.node("Unsqueeze", []string{attBias, b.constI64("axes12", 1, 2)})

	headShape := b.constI64("head_shape", 0, 0, NH, HS)
	mergeShape := b.constI64("merge_shape", 0, 0, C)
	scale := b.constF32("scale", float32(1/math.Sqrt(float64(HS))))
	for l := range cfg.NumLayers {
		ln := names.layer(l)
		split := func(name string, perm ...int64) (string, error) {
			y, err := b.linear(x, ln[name])
			if err != nil {
				return "", err
			}
			y = b.node("Reshape", []string{y, headShape})
			return b.node("Transpose", []string{y}, intsAttr("perm", perm...)), nil
		}
		q, err := split("q", 0, 2, 1, 3) // (B,NH,T,HS)
		if err != nil {
			return nil, err
		}
		k, err := split("k", 0, 2, 3, 1) // (B,NH,HS,T)
		if err != nil {
			return nil, err
		}
		v, err := split("v", 0, 2, 1, 3) // (B,NH,T,HS)
		if err != nil {
			return nil, err
		}
		s := b.node("Mul", []string{b.node("MatMul", []string{q, k}), scale})
		p := b.node("Softmax", []string{b.node("Add", []string{s, attBias})}, intAttr("axis", -1))
		ctx := b.node("Transpose", []string{b.node("MatMul", []string{p, v})}, intsAttr("perm", 0, 2, 1, 3))
		ctx = b.node("Reshape", []string{ctx, mergeShape}) // (B,T,C)
		o, err := b.linear(ctx, ln["o"])
		if err != nil {
			return nil, err
		}
		a, err := b.layerNorm(b.node("Add", []string{o, x}), ln["ln1"], eps)
		if err != nil {
			return nil, err
		}
		f, err := b.linear(a, ln["i"])
		if err != nil {
			return nil, err
		}
		f, err = b.linear(b.gelu(f), ln["o2"])
		if err != nil {
			return nil, err
		}
		if x, err = b.layerNorm(b.node("Add", []string{f, a}), ln["ln2"], eps); err != nil {
			return nil, err
		}
	}

	// MLM head transform, then the tied decoder as Gemm(z, Wordᵀ) + bias.
	h, err := b.linear(x, names.headDense)
	if err != nil {
		return nil, err
	}
	z, err := b.layerNorm(b.gelu(h), names.headLN, eps)
	if err != nil {
		return nil, err
	}
	decBias, err := b.weight(names.decBias, false)
	if err != nil {
		return nil, err
	}
	z2 := b.node("Reshape", []string{z, b.constI64("rows_shape", -1, C)})
	logits := b.node("Gemm", []string{z2, wordEmb, decBias}, intAttr("transB", 1)) // (B·T,V)
	btv := b.node("Concat", []string{b.node("Shape", []string{"input_ids"}), b.constI64("vocab", int64(cfg.VocabSize))}, intAttr("axis", 0))
	logits = b.node("Reshape", []string{logits, btv}) // (B,T,V)

	// SPLADE pooling: every term is ≥ 0, so masking padded positions to 0
	// before the max (or the sum) excludes them exactly.
	mask3 := b.node("Unsqueeze", []string{maskF, b.constI64("axis2", 2)})
	if cfg.SpladePooling == nn.PoolSum {
		// log(1 + Σ_t relu(logit)), ReduceSum's axes an input (opset ≥ 13).
		s := b.node("ReduceSum", []string{b.node("Mul", []string{b.node("Relu", []string{logits}), mask3}), b.constI64("axis1", 1)},
			intAttr("keepdims", 0))
		b.g.Node = append(b.g.Node, &onnxpb.NodeProto{OpType: proto.String("Log"), Input: []string{b.node("Add", []string{s, b.constF32("one_b", 1)})},
			Output: []string{"splade"}, Name: proto.String("pool")})
	} else {
		w := b.node("Log", []string{b.node("Add", []string{b.node("Relu", []string{logits}), b.constF32("one_b", 1)})})
		w = b.node("Mul", []string{w, mask3})
		b.g.Node = append(b.g.Node, &onnxpb.NodeProto{OpType: proto.String("ReduceMax"), Input: []string{w},
			Output: []string{"splade"}, Name: proto.String("pool"),
			Attribute: []*onnxpb.AttributeProto{intsAttr("axes", 1), intAttr("keepdims", 0)}})
	}
	b.g.Output = append(b.g.Output, valueInfo("splade", onnxpb.TensorProto_FLOAT, dimParam("batch"), dimValue(int64(cfg.VocabSize))))

	return &onnxpb.ModelProto{
		IrVersion:       proto.Int64(irVersion),
		ProducerName:    proto.String("spladapt"),
		ProducerVersion: proto.String("1"),
		DocString:       proto.String(docString(cfg)),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		Graph:           b.g,
		MetadataProps: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("model_type"), Value: proto.String(cfg.ModelType)},
			{Key: proto.String("vocab_size"), Value: proto.String(fmt.Sprint(cfg.VocabSize))},
			{Key: proto.String("max_position_embeddings"), Value: proto.String(fmt.Sprint(cfg.MaxPositions))},
		},
	}, nil
}

// Export writes m's SPLADE encoder to dir/model.onnx (see Build) and copies
// config.json and the tokenizer files (nn.TokenizerFiles) found in
// m.TokenizerDir beside it. dir is built beside itself and renamed into
// place, replacing an existing dir. Protobuf caps a model at 2 GB, which
// BERT-base (~0.44 GB) is far below.
func Export(m *nn.Model, dir string) error {
	mp, err := Build(m)
	if err != nil {
		return fmt.Errorf("export onnx %s: %w", dir, err)
	}
	data, err := proto.Marshal(mp)
	if err != nil {
		return fmt.Errorf("export onnx %s: encode protobuf: %w", dir, err)
	}
	src := m.TokenizerDir
	if src != "" {
		if abs, err := filepath.Abs(src); err == nil {
			src = abs
		}
	}
	return atomicfile.Dir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, FileName), data, 0o644); err != nil {
			return fmt.Errorf("export onnx %s: %w", dir, err)
		}
		if src == "" {
			return nil
		}
		for _, name := range append([]string{"config.json"}, nn.TokenizerFiles...) {
			if err := atomicfile.CopyFile(filepath.Join(tmp, name), filepath.Join(src, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("export onnx %s: copy %s: %w", dir, name, err)
			}
		}
		return nil
	})
}

// names are the HuggingFace parameter names of one architecture.
type names struct {
	wordEmb, posEmb, typeEmb, decBias string
	embLN, headDense, headLN          string // prefixes: +".weight"/".bias"
	layer                             func(l int) map[string]string
}

func paramNames(cfg nn.Config) names {
	if cfg.ModelType == "bert" {
		return names{
			wordEmb: "bert.embeddings.word_embeddings.weight", posEmb: "bert.embeddings.position_embeddings.weight",
			typeEmb: "bert.embeddings.token_type_embeddings.weight", decBias: "cls.predictions.bias",
			embLN: "bert.embeddings.LayerNorm", headDense: "cls.predictions.transform.dense",
			headLN: "cls.predictions.transform.LayerNorm",
			layer: func(l int) map[string]string {
				p := fmt.Sprintf("bert.encoder.layer.%d.", l)
				return map[string]string{"q": p + "attention.self.query", "k": p + "attention.self.key",
					"v": p + "attention.self.value", "o": p + "attention.output.dense",
					"ln1": p + "attention.output.LayerNorm", "i": p + "intermediate.dense",
					"o2": p + "output.dense", "ln2": p + "output.LayerNorm"}
			},
		}
	}
	return names{
		wordEmb: "distilbert.embeddings.word_embeddings.weight", posEmb: "distilbert.embeddings.position_embeddings.weight",
		decBias: "vocab_projector.bias", embLN: "distilbert.embeddings.LayerNorm",
		headDense: "vocab_transform", headLN: "vocab_layer_norm",
		layer: func(l int) map[string]string {
			p := fmt.Sprintf("distilbert.transformer.layer.%d.", l)
			return map[string]string{"q": p + "attention.q_lin", "k": p + "attention.k_lin",
				"v": p + "attention.v_lin", "o": p + "attention.out_lin", "ln1": p + "sa_layer_norm",
				"i": p + "ffn.lin1", "o2": p + "ffn.lin2", "ln2": p + "output_layer_norm"}
		},
	}
}

// builder appends nodes and initializers to a graph; node outputs are
// numbered "t0", "t1", ….
type builder struct {
	m *nn.Model
	g *onnxpb.GraphProto
	n int
}

func (b *builder) input(name string) {
	dims := []*onnxpb.TensorShapeProto_Dimension{dimParam("batch"), dimParam("seq")}
	b.g.Input = append(b.g.Input, valueInfo(name, onnxpb.TensorProto_INT64, dims...))
}

// node appends op(inputs) with one output and returns the output's name.
func (b *builder) node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := fmt.Sprintf("t%d", b.n)
	b.n++
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: []string{out},
		Name: proto.String(fmt.Sprintf("%s_%d", op, b.n)), Attribute: attrs})
	return out
}

// weight adds parameter name as an initializer under its own name,
// transposed from torch's (out,in) to (in,out) when transpose is set.
func (b *builder) weight(name string, transpose bool) (string, error) {
	p := b.m.Param(name)
	if p == nil {
		return "", fmt.Errorf("build onnx graph: model has no parameter %q", name)
	}
	dims := make([]int64, len(p.Shape))
	for i, d := range p.Shape {
		dims[i] = int64(d)
	}
	data := p.W
	if transpose {
		if len(p.Shape) != 2 {
			return "", fmt.Errorf("build onnx graph: transpose %q of shape %v", name, p.Shape)
		}
		rows, cols := p.Shape[0], p.Shape[1]
		data = make([]float32, len(p.W))
		for r := range rows {
			for c := range cols {
				data[c*rows+r] = p.W[r*cols+c]
			}
		}
		dims[0], dims[1] = dims[1], dims[0]
		name += ".T"
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), Dims: dims,
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw})
	return name, nil
}

// linear is x·Wᵀ + b for the parameters prefix.weight (out,in) and prefix.bias.
func (b *builder) linear(x, prefix string) (string, error) {
	w, err := b.weight(prefix+".weight", true)
	if err != nil {
		return "", err
	}
	bias, err := b.weight(prefix+".bias", false)
	if err != nil {
		return "", err
	}
	return b.node("Add", []string{b.node("MatMul", []string{x, w}), bias}), nil
}

func (b *builder) layerNorm(x, prefix string, eps float32) (string, error) {
	g, err := b.weight(prefix+".weight", false)
	if err != nil {
		return "", err
	}
	beta, err := b.weight(prefix+".bias", false)
	if err != nil {
		return "", err
	}
	return b.node("LayerNormalization", []string{x, g, beta}, intAttr("axis", -1), floatAttr("epsilon", eps)), nil
}

// gelu is the exact GELU, 0.5·x·(1 + erf(x/√2)).
func (b *builder) gelu(x string) string {
	e := b.node("Erf", []string{b.node("Mul", []string{x, b.constF32("inv_sqrt2", float32(1/math.Sqrt2))})})
	y := b.node("Mul", []string{x, b.node("Add", []string{e, b.constF32("one_gelu", 1)})})
	return b.node("Mul", []string{y, b.constF32("half", 0.5)})
}

// constF32 adds a float32 scalar initializer once under name.
func (b *builder) constF32(name string, v float32) string {
	for _, t := range b.g.Initializer {
		if t.GetName() == name {
			return name
		}
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name),
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{v}})
	return name
}

// constI64 adds a 1-D int64 initializer once under name.
func (b *builder) constI64(name string, vs ...int64) string {
	for _, t := range b.g.Initializer {
		if t.GetName() == name {
			return name
		}
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), Dims: []int64{int64(len(vs))},
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: vs})
	return name
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func intsAttr(name string, vs ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: vs}
}

func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func dimParam(p string) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
}

func dimValue(v int64) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
}

func valueInfo(name string, elem onnxpb.TensorProto_DataType, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
}

func docString(cfg nn.Config) string {
	if cfg.SpladePooling == nn.PoolSum {
		return "SPLADE encoder: splade = log(1 + sum over real positions of ReLU(MLM logits))"
	}
	return "SPLADE encoder: splade = max over real positions of log(1+ReLU(MLM logits))"
}
