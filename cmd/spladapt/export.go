package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/export/elastic"
	"github.com/spladapt/spladapt/export/onnx"
	"github.com/spladapt/spladapt/nn"
)

func init() { register(newExportCmd) }

func newExportCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Hand models and indexes to other systems (ONNX, CIFF, OpenSearch, Elasticsearch)",
	}
	cmd.AddCommand(newExportONNXCmd(a), newExportCIFFCmd(a),
		newExportEngineCmd(a, elastic.OpenSearch), newExportEngineCmd(a, elastic.Elasticsearch))
	return cmd
}

func newExportONNXCmd(a *app) *cobra.Command {
	var model, out string
	cmd := &cobra.Command{
		Use:   "onnx --model CKPT --out DIR",
		Short: "Write a checkpoint's SPLADE encoder as DIR/model.onnx with its tokenizer files",
		Long: `Write the SPLADE encoder of checkpoint CKPT (BERT or DistilBERT, HF layout) as
an ONNX graph (opset 17, float32) to DIR/model.onnx, and copy config.json and
the tokenizer files beside it. Inputs: input_ids, attention_mask and, for
BERT, token_type_ids, all int64 [batch, seq]; output: splade [batch, vocab]
= max over real positions of log(1+ReLU(MLM logits)), the vectors of
"spladapt inspect forward". DIR is replaced as a whole.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			m, err := nn.LoadHF(model)
			if err != nil {
				return err
			}
			if err := onnx.Export(m, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, %d layers, vocabulary %d, opset %d)\n",
				filepath.Join(out, onnx.FileName), m.Config.ModelType, m.Config.NumLayers, m.Config.VocabSize, onnx.Opset)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "checkpoint directory (required)")
	f.StringVar(&out, "out", "", "output directory (required)")
	cmd.MarkFlagRequired("model")
	cmd.MarkFlagRequired("out")
	return cmd
}
