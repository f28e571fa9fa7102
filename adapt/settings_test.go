package adapt

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spladapt/spladapt/config"
)

// settingPaths lists every setting of t (config.Config or a section) by
// its config.yaml path.
func settingPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		p := prefix + f.Tag.Get("mapstructure")
		if f.Type.Kind() == reflect.Struct {
			out = append(out, settingPaths(f.Type, p+".")...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// covers reports whether one of the keyed paths is p or a section holding p.
func covers(keyed map[string]bool, p string) bool {
	for k := range keyed {
		if k == p || strings.HasPrefix(p, k+".") {
			return true
		}
	}
	return false
}

// TestEverySettingKeyedOrExcused: every setting of config.Config is in the
// key of some stage, in a plan with every optional stage, or is listed,
// with its reason, in runtimeSettings or unstagedSettings. A new setting
// fails here until it is given to the stages that read it or excused.
func TestEverySettingKeyedOrExcused(t *testing.T) {
	keyed := map[string]bool{}
	dir := t.TempDir()
	for _, base := range []string{"", filepath.Join(dir, "base")} {
		c := config.Default()
		c.Adapt.Base, c.Adapt.FullBaseline, c.Adapt.FullMLM = base, true, true
		c.Adapt.Rerank = filepath.Join(dir, "ce")
		c.Adapt.Source = []string{filepath.Join(dir, "src")}
		p := &Pipeline{Plan: Plan{Config: c, Targets: []string{filepath.Join(dir, "tgt")}}, Runner: &Runner{Dir: dir}}
		for _, s := range p.Stages() {
			m, ok := s.Config.(map[string]any)
			if !ok {
				t.Fatalf("stage %s: key %T, want the map of settings()", s.Name, s.Config)
			}
			for k := range m {
				if settingField(reflect.ValueOf(c), k).IsValid() {
					keyed[k] = true
				}
			}
		}
	}
	excused := func(p string) (string, bool) {
		for _, m := range []map[string]string{runtimeSettings, unstagedSettings} {
			for k, why := range m {
				if k == p || strings.HasPrefix(p, k+".") {
					return why, true
				}
			}
		}
		return "", false
	}
	for _, p := range settingPaths(reflect.TypeOf(config.Config{}), "") {
		why, ex := excused(p)
		switch k := covers(keyed, p); {
		case !k && !ex:
			t.Errorf("setting %s is in no stage's key and not excused: name it in settings() of the stages that read it, or add it with its reason to runtimeSettings or unstagedSettings", p)
		case k && ex:
			t.Errorf("setting %s is keyed but excused (%s): one or the other", p, why)
		}
	}
	for _, m := range []map[string]string{runtimeSettings, unstagedSettings} {
		for k := range m {
			if !settingField(reflect.ValueOf(config.Config{}), k).IsValid() {
				t.Errorf("excused setting %s does not exist", k)
			}
		}
	}
}

// TestSettings: a stage's settings hold exactly the named paths and the
// run-time settings; its key holds only the named paths.
func TestSettings(t *testing.T) {
	c := config.Default()
	c.Threads, c.CacheDir, c.Progress, c.SkipInvalid = 3, "/cache", "off", true
	c.Model.QueryMaxLength = 17
	s, key := settings(c, "model.max_length", "pretrain", "eval.measures")
	want := config.Config{Threads: 3, CacheDir: "/cache", Progress: "off", SkipInvalid: true, Kernels: c.Kernels}
	want.Model.MaxLength, want.Pretrain, want.Eval.Measures = c.Model.MaxLength, c.Pretrain, c.Eval.Measures
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings = %+v\nwant %+v", s, want)
	}
	var names []string
	for k := range key {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"eval.measures", "model.max_length", "pretrain"}; !slices.Equal(names, want) {
		t.Errorf("key names %v, want %v", names, want)
	}
	if _, err := json.Marshal(key); err != nil {
		t.Errorf("key does not marshal: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("settings with an unknown path did not panic")
		}
	}()
	settings(c, "model.no_such_setting")
}

// TestEvalKeyHasQueryLength is the case that started the derived keys: the
// eval stage encodes queries, so model.query_max_length is in its key.
func TestEvalKeyHasQueryLength(t *testing.T) {
	dir := t.TempDir()
	key := func(qlen int) string {
		c := config.Default()
		c.Model.QueryMaxLength = qlen
		p := &Pipeline{Plan: Plan{Config: c, Targets: []string{filepath.Join(dir, "tgt")}}, Runner: &Runner{Dir: dir}}
		for _, s := range p.Stages() {
			if strings.HasPrefix(s.Name, "eval-") {
				b, _ := json.Marshal(s.Config)
				return string(b)
			}
		}
		t.Fatal("no eval stage")
		return ""
	}
	if key(32) == key(64) {
		t.Error("the eval stage's key does not change with model.query_max_length")
	}
}
