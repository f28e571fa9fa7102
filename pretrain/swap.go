package pretrain

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/spladapt/spladapt/nn"
	"github.com/spladapt/spladapt/safetensors"
	"github.com/spladapt/spladapt/tokenize"
)

// Safetensors metadata keys with which spladapt checkpoints record how
// they were made. They travel inside model.safetensors, so a checkpoint
// copied anywhere keeps them.
const (
	MetaTrainedParams = "spladapt.trained_params" // "domain", "task" or "all"
	MetaDomainLayers  = "spladapt.domain_layers"  // k of P_domain
	MetaSwapDomain    = "spladapt.swap.domain"    // checkpoint P_domain came from
	MetaSwapTask      = "spladapt.swap.task"      // checkpoint P_task came from
	MetaStage         = "spladapt.stage"          // "pretrain", "splade", "swap"
)

// ReadMeta returns the safetensors metadata of the checkpoint in dir.
func ReadMeta(dir string) (map[string]string, error) {
	f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	return f.Metadata(), nil
}

// Swap builds the model P_domain(domainDir) + P_task(taskDir) and writes it
// to out (Vast et al., ECIR 2024: zero-shot keeps P_domain(source); the
// adapted model swaps in P_domain(target)). P_domain is the embeddings
// (with the tied decoder) and the first k layers, see nn.IsDomainParam.
//
// The two checkpoints must have the same architecture, shapes and
// vocabulary; anything else is an error naming the difference. The
// tokenizer files of taskDir are copied.
func Swap(domainDir, taskDir, out string, k int) error {
	dom, err := nn.LoadHF(domainDir)
	if err != nil {
		return fmt.Errorf("swap: domain checkpoint: %w", err)
	}
	task, err := nn.LoadHF(taskDir)
	if err != nil {
		return fmt.Errorf("swap: task checkpoint: %w", err)
	}
	if err := compatible(dom, task, domainDir, taskDir); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	if k < 0 || k > task.Config.NumLayers {
		return fmt.Errorf("swap: domain layers k=%d outside 0..%d", k, task.Config.NumLayers)
	}
	for _, name := range task.DomainParamNames(k) {
		copy(task.Param(name).W, dom.Param(name).W)
	}
	meta := map[string]string{
		MetaStage:        "swap",
		MetaDomainLayers: strconv.Itoa(k),
		MetaSwapDomain:   domainDir,
		MetaSwapTask:     taskDir,
	}
	if err := task.SaveHF(out, meta); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	return nil
}

// compatible checks that two models can exchange parameters.
func compatible(a, b *nn.Model, aDir, bDir string) error {
	ca, cb := a.Config, b.Config
	type field struct {
		name   string
		va, vb any
	}
	for _, f := range []field{
		{"model_type", ca.ModelType, cb.ModelType},
		{"vocab_size", ca.VocabSize, cb.VocabSize},
		{"hidden_size", ca.HiddenSize, cb.HiddenSize},
		{"num_hidden_layers", ca.NumLayers, cb.NumLayers},
		{"num_attention_heads", ca.NumHeads, cb.NumHeads},
		{"intermediate_size", ca.IntermediateSize, cb.IntermediateSize},
		{"max_position_embeddings", ca.MaxPositions, cb.MaxPositions},
		{"type_vocab_size", ca.TypeVocabSize, cb.TypeVocabSize},
	} {
		if f.va != f.vb {
			return fmt.Errorf("incompatible checkpoints: %s is %v in %s but %v in %s", f.name, f.va, aDir, f.vb, bDir)
		}
	}
	ta, err := tokenize.Load(aDir)
	if err != nil {
		return err
	}
	tb, err := tokenize.Load(bDir)
	if err != nil {
		return err
	}
	va, vb := ta.Vocab(), tb.Vocab()
	if !slices.Equal(va, vb) {
		for i := range min(len(va), len(vb)) {
			if va[i] != vb[i] {
				return fmt.Errorf("incompatible vocabularies: token %d is %q in %s but %q in %s", i, va[i], aDir, vb[i], bDir)
			}
		}
		return fmt.Errorf("incompatible vocabularies: %d tokens in %s, %d in %s", len(va), aDir, len(vb), bDir)
	}
	return nil
}

// ErrTrainParams is returned for a --train-params value other than
// domain, task or all.
var ErrTrainParams = errors.New(`train-params must be "domain", "task" or "all"`)

// FreezeFor freezes the parameters that a run with trainParams must not
// change: "domain" trains only P_domain (embeddings + first k layers),
// "task" only P_task, "all" everything. It returns the number of trainable
// scalars.
func FreezeFor(m *nn.Model, trainParams string, k int) (int, error) {
	n := 0
	for _, p := range m.Params {
		dom := nn.IsDomainParam(p.Name, k)
		switch trainParams {
		case "all":
			p.Frozen = false
		case "domain":
			p.Frozen = !dom
		case "task":
			p.Frozen = dom
		default:
			return 0, fmt.Errorf("%w, got %q", ErrTrainParams, trainParams)
		}
		if !p.Frozen {
			n += len(p.W)
		}
	}
	return n, nil
}
