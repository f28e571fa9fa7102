package adapt

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/spladapt/spladapt/config"
)

// A stage reads the configuration only through settings: the settings it
// names are copied into an otherwise zero Config, which is all its Run
// sees, and they are its key. A setting a stage uses but does not name is
// zero in its Run (and shows as a failure or a wrong figure in the tests),
// so a stage's key cannot miss a setting it uses; naming a section
// ("model") keys every setting of it, including ones added later.

// runtimeSettings never change a stage's output. Every stage's Run sees
// them; no key holds them.
var runtimeSettings = map[string]string{
	"threads":      "results do not depend on the number of workers (see config.Config.Threads)",
	"progress":     "progress display on stderr",
	"cache_dir":    "where the token caches live; a cache is keyed by its content",
	"kernels":      "the AVX2 and AVX-512 kernels give bit-identical results (nn's kernel tests), so the level changes speed only",
	"skip_invalid": "whether a malformed record stops the run or is reported and skipped; adapt takes it as Pipeline.CorpusOpts",
}

// unstagedSettings are read by no stage of the pipeline.
var unstagedSettings = map[string]string{
	"serve":         "the HTTP server; adapt serves nothing",
	"data.base_url": "dataset downloads; adapt reads collections already on disk",
	// The re-ranker is trained outside adapt ("spladapt train rerank");
	// the rerank-T stages read only rerank.max_length and
	// rerank.score_batch_size.
	"rerank.loss":             "re-ranker training; adapt re-ranks with a trained model (adapt.rerank)",
	"rerank.lr":               "re-ranker training",
	"rerank.weight_decay":     "re-ranker training",
	"rerank.max_grad_norm":    "re-ranker training",
	"rerank.warmup_steps":     "re-ranker training",
	"rerank.steps":            "re-ranker training",
	"rerank.batch_size":       "re-ranker training",
	"rerank.n_neg":            "re-ranker training",
	"rerank.dropout":          "re-ranker training",
	"rerank.eval_every":       "re-ranker training",
	"rerank.checkpoint_every": "re-ranker training",
	"rerank.seed":             "re-ranker training",
	"rerank.dev_depth":        "re-ranker training (dev selection)",
	"rerank.match_types":      "re-ranker training; a trained model records it in rerank.json and every loader honours that",
	"adapt.targets":           "the plan's targets name the per-target stages and are their inputs (Plan.Targets)",
}

// settings returns the part of c at paths ("model" for a section,
// "model.max_length" for one setting, as in config.yaml) plus the
// runtimeSettings, and the stage key: path → value. A path that names no
// setting is a programming error and panics.
func settings(c config.Config, paths ...string) (config.Config, map[string]any) {
	var out config.Config
	src, dst := reflect.ValueOf(c), reflect.ValueOf(&out).Elem()
	key := map[string]any{}
	copySetting := func(p string) reflect.Value {
		sv, dv := settingField(src, p), settingField(dst, p)
		if !sv.IsValid() {
			panic(fmt.Sprintf("adapt: no setting %q", p))
		}
		dv.Set(sv)
		return sv
	}
	for _, p := range paths {
		key[p] = copySetting(p).Interface()
	}
	for p := range runtimeSettings {
		copySetting(p)
	}
	return out, key
}

// settingField is the field of v (a config.Config or a section of it) at
// path, following mapstructure tags; the zero Value when there is none.
func settingField(v reflect.Value, path string) reflect.Value {
	for _, name := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}
		}
		t, found := v.Type(), false
		for i := range t.NumField() {
			if t.Field(i).Tag.Get("mapstructure") == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}
		}
	}
	return v
}
