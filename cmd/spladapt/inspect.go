package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
)

func init() { register(newInspectCmd) }

func newInspectCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Dump model tensors for outside oracles (PyTorch/HF comparisons)",
	}
	cmd.AddCommand(newInspectForwardCmd(a), newInspectGradCmd(a))
	return cmd
}

// inspectInput is the JSON input of "inspect": rows of equal length.
type inspectInput struct {
	InputIDs      [][]int64 `json:"input_ids"`
	AttentionMask [][]int64 `json:"attention_mask"`
	TokenTypeIDs  [][]int64 `json:"token_type_ids"`
	Labels        [][]int64 `json:"labels"`
}

// readInspectInput reads path; with group g the keys are "g.input_ids",
// ... as in the oracle's inputs.json.
func readInspectInput(path, group string) (inspectInput, error) {
	var in inspectInput
	b, err := os.ReadFile(path)
	if err != nil {
		return in, fmt.Errorf("read input: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return in, fmt.Errorf("parse input %s: %w", path, err)
	}
	prefix := ""
	if group != "" {
		prefix = group + "."
	}
	for key, dst := range map[string]*[][]int64{"input_ids": &in.InputIDs, "attention_mask": &in.AttentionMask,
		"token_type_ids": &in.TokenTypeIDs, "labels": &in.Labels} {
		if v, ok := raw[prefix+key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return in, fmt.Errorf("parse input %s: key %q: %w", path, prefix+key, err)
			}
		}
	}
	if len(in.InputIDs) == 0 {
		return in, fmt.Errorf("input %s: no %q rows", path, prefix+"input_ids")
	}
	return in, nil
}

// batch turns the input into a padded batch, checking shapes and ranges
// against m.
func (in inspectInput) batch(m *nn.Model) (nn.Batch, error) {
	B, T := len(in.InputIDs), len(in.InputIDs[0])
	b := nn.Batch{B: B, T: T}
	for name, rows := range map[string][][]int64{"input_ids": in.InputIDs, "attention_mask": in.AttentionMask,
		"token_type_ids": in.TokenTypeIDs, "labels": in.Labels} {
		if rows == nil {
			continue
		}
		if len(rows) != B {
			return b, fmt.Errorf("input: %s has %d rows, input_ids %d", name, len(rows), B)
		}
		for i, r := range rows {
			if len(r) != T {
				return b, fmt.Errorf("input: %s row %d has %d entries, want %d (rows must be padded to one length)", name, i, len(r), T)
			}
		}
	}
	flat := func(rows [][]int64) []int32 {
		var out []int32
		for _, r := range rows {
			for _, v := range r {
				if v > 1<<30 || v < -(1<<30) {
					v = 1 << 30 // rejected by ValidateBatch with its place
				}
				out = append(out, int32(v))
			}
		}
		return out
	}
	b.InputIDs = flat(in.InputIDs)
	if in.TokenTypeIDs != nil {
		b.TypeIDs = flat(in.TokenTypeIDs)
	}
	b.Mask = make([]float32, B*T)
	for i := range b.Mask {
		b.Mask[i] = 1
	}
	if in.AttentionMask != nil {
		for i, v := range flat(in.AttentionMask) {
			b.Mask[i] = float32(v)
		}
	}
	if err := m.ValidateBatch(b); err != nil {
		return b, fmt.Errorf("input: %w", err)
	}
	return b, nil
}

func newInspectForwardCmd(a *app) *cobra.Command {
	var modelDir, input, out, group string
	cmd := &cobra.Command{
		Use:   "forward --model DIR --input FILE.json --out FILE.safetensors",
		Short: "Write last_hidden_state, mlm_logits and splade for a batch",
		Long: `Run the model of checkpoint DIR (HF layout: config.json, model.safetensors,
vocab.txt or tokenizer.json) in evaluation mode on the batch in FILE.json:

  {"input_ids": [[...], ...], "attention_mask": [[...], ...], "token_type_ids": [[...], ...]}

(rows padded to one length; attention_mask defaults to all ones and
token_type_ids to zeros). Writes float32 tensors last_hidden_state (B,T,C),
mlm_logits (B,T,V) at every position, and splade (B,V) = max over real
positions of log(1+ReLU(logit)) (log(1+Σ ReLU(logit)) for a model whose
config.json has splade_pooling sum). --group G reads the keys "G.input_ids", ...
(the PyTorch oracle's inputs.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, b, err := inspectSetup(a, modelDir, input, out, group)
			if err != nil {
				return err
			}
			B, T, C, V := b.B, b.T, m.Config.HiddenSize, m.Config.VocabSize
			h := m.Encode(b)
			hidden := append([]float32(nil), h...)
			z := m.HeadTransform(hidden, B*T)
			logits := make([]float32, B*T*V)
			m.Logits(logits, z, B*T)
			splade := make([]float32, B*V)
			nn.SpladeHeadForward(m.Config.SpladePooling, z, b.Mask, m.WordEmbeddings().W, m.DecoderBias().W, B, T, C, V, splade, make([]int32, B*V))
			err = safetensors.WriteFile(out, []safetensors.Named{
				{Name: "last_hidden_state", Shape: []int{B, T, C}, Data: hidden},
				{Name: "mlm_logits", Shape: []int{B, T, V}, Data: logits},
				{Name: "splade", Shape: []int{B, V}, Data: splade},
			}, map[string]string{"model": modelDir})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote last_hidden_state %v, mlm_logits %v, splade %v to %s\n",
				[]int{B, T, C}, []int{B, T, V}, []int{B, V}, out)
			return nil
		},
	}
	inspectFlags(cmd, &modelDir, &input, &out, &group)
	return cmd
}

func newInspectGradCmd(a *app) *cobra.Command {
	var modelDir, input, out, group string
	cmd := &cobra.Command{
		Use:   "grad --model DIR --input FILE.json --out FILE.safetensors",
		Short: "Write the gradient of the MLM loss for every parameter",
		Long: `Like "inspect forward", with "labels" in FILE.json (the original token id at
positions to predict, -100 elsewhere). Computes the MLM loss (mean cross
entropy over the labelled positions, evaluation mode) and writes its
gradient with respect to every parameter, one float32 tensor per parameter
under its HuggingFace name (the tied decoder's gradient is included in the
word embeddings'). The loss is printed and stored in the metadata as
"mlm_loss".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, b, err := inspectSetup(a, modelDir, input, out, group)
			if err != nil {
				return err
			}
			in, _ := readInspectInput(input, group)
			if in.Labels == nil {
				return fmt.Errorf("inspect grad: input %s has no %q", input, "labels")
			}
			labels := make([]int32, 0, b.B*b.T)
			for i, r := range in.Labels {
				for t, v := range r {
					if v != nn.IgnoreIndex && (v < 0 || v >= int64(m.Config.VocabSize)) {
						return fmt.Errorf("input: label %d at row %d position %d outside the vocabulary of %d (use -100 to ignore)", v, i, t, m.Config.VocabSize)
					}
					labels = append(labels, int32(v))
				}
			}
			nn.ZeroGrad(m.Params)
			loss, count := m.MLMLoss(b, labels)
			if count == 0 {
				return fmt.Errorf("inspect grad: no labelled position (every label is -100)")
			}
			m.MLMBackward(1)
			var ts []safetensors.Named
			for _, p := range m.Params {
				ts = append(ts, safetensors.Named{Name: p.Name, Shape: p.Shape, Data: p.G})
			}
			ls := strconv.FormatFloat(loss, 'g', -1, 64)
			if err := safetensors.WriteFile(out, ts, map[string]string{"model": modelDir, "mlm_loss": ls}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "mlm_loss %s over %d labelled positions; wrote %d gradients to %s\n", ls, count, len(ts), out)
			return nil
		},
	}
	inspectFlags(cmd, &modelDir, &input, &out, &group)
	return cmd
}

func inspectFlags(cmd *cobra.Command, modelDir, input, out, group *string) {
	cmd.Flags().StringVar(modelDir, "model", "", "checkpoint directory (HF layout)")
	cmd.Flags().StringVar(input, "input", "", "batch as JSON")
	cmd.Flags().StringVar(out, "out", "", "safetensors file to write")
	cmd.Flags().StringVar(group, "group", "", `read keys "GROUP.input_ids", ... instead of "input_ids", ...`)
}

func inspectSetup(a *app, modelDir, input, out, group string) (*nn.Model, nn.Batch, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nn.Batch{}, err
	}
	if modelDir == "" || input == "" || out == "" {
		return nil, nn.Batch{}, fmt.Errorf("inspect: --model, --input and --out are required")
	}
	if cfg.Threads > 0 {
		setThreads(cfg.Threads)
	}
	m, err := nn.LoadHF(modelDir)
	if err != nil {
		return nil, nn.Batch{}, err
	}
	in, err := readInspectInput(input, group)
	if err != nil {
		return nil, nn.Batch{}, err
	}
	b, err := in.batch(m)
	if err != nil {
		return nil, nn.Batch{}, fmt.Errorf("%s: %w", input, err)
	}
	return m, b, nil
}
