package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fill sets every field of the struct v points to a value of its own
// (field i: i+1, "s<i>", true), so that a field a conversion forgets is
// left at its zero value.
func fill(t *testing.T, v any) {
	t.Helper()
	s := reflect.ValueOf(v).Elem()
	for i := range s.NumField() {
		f := s.Field(i)
		switch f.Kind() {
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i+1) / 8)
		case reflect.String:
			f.SetString("s" + string(rune('a'+i)))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("field %s: kind %s not filled", s.Type().Field(i).Name, f.Kind())
		}
	}
}

// TestPretrainSettings: every field of section pretrain reaches
// pretrain.Settings under its own name, and Settings has no other field;
// without a pair task both pair settings stay zero (as before they
// existed), so that the settings key of such a run does not change.
func TestPretrainSettings(t *testing.T) {
	var p Pretrain
	fill(t, &p)
	p.PairTask = "nsp"
	off := p
	off.PairTask = "none"
	if s := off.Settings(); s.PairTask != "" || s.PairWeight != 0 {
		t.Errorf("pair_task none: settings %q, %g; want both zero", s.PairTask, s.PairWeight)
	}
	got := reflect.ValueOf(p.Settings())
	want := reflect.ValueOf(p)
	if got.NumField() != want.NumField() {
		t.Fatalf("pretrain.Settings has %d fields, section pretrain %d", got.NumField(), want.NumField())
	}
	for i := range want.NumField() {
		name := want.Type().Field(i).Name
		g := got.FieldByName(name)
		if !g.IsValid() || !reflect.DeepEqual(g.Interface(), want.Field(i).Interface()) {
			t.Errorf("pretrain.%s: %v, want %v", name, g, want.Field(i))
		}
	}
}

// TestSpladeJob: the conversion reads the sections it documents.
func TestSpladeJob(t *testing.T) {
	c := Default()
	c.Splade.QueryReg, c.Splade.LambdaQ, c.Splade.TrainMaxLength = "l1", 0.5, 0
	c.Model.MaxLength, c.Model.QueryMaxLength, c.BM25.K1 = 200, 30, 1.3
	set, err := c.SpladeJob()
	if err != nil {
		t.Fatal(err)
	}
	o := set.Options
	if o.Weights.L1Q != 0.5 || o.Weights.FLOPSQ != 0 || o.DocMaxLen != 200 || o.DevDocMaxLen != 200 || o.QueryMaxLen != 30 ||
		o.Steps != c.Splade.Steps || set.IDFMaxLength != 200 || set.Mining.K1 != 1.3 || set.Mining.Negatives != c.Splade.MineNegatives {
		t.Errorf("SpladeJob: %+v", set)
	}
	c.Splade.QueryReg = "l2"
	if _, err := c.SpladeJob(); err == nil {
		t.Error("query_reg l2 accepted")
	}
}

// TestRerankJob: every field of rerank.TrainOptions comes from the field
// of section rerank of the same name, and the job's other settings from
// the sections RerankJob documents.
func TestRerankJob(t *testing.T) {
	c := Default()
	fill(t, &c.Rerank)
	c.BM25.K1, c.BM25.B, c.Splade.MineNegatives = 1.3, 0.6, 11
	set := c.RerankJob()
	got := reflect.ValueOf(set.Options)
	want := reflect.ValueOf(c.Rerank)
	for i := range got.NumField() {
		name := got.Type().Field(i).Name
		w := want.FieldByName(name)
		if !w.IsValid() || !reflect.DeepEqual(got.Field(i).Interface(), w.Interface()) {
			t.Errorf("rerank.TrainOptions.%s: %v, want section rerank's %v", name, got.Field(i), w)
		}
	}
	if set.MaxLength != c.Rerank.MaxLength || set.ScoreBatchSize != c.Rerank.ScoreBatchSize ||
		set.BM25.K1 != 1.3 || set.BM25.B != 0.6 || set.Mining != c.SpladeMining() || set.Mining.Negatives != 11 {
		t.Errorf("RerankJob: %+v", set)
	}
}

// Without a pair task, the section's JSON (package adapt's stage keys) is
// the one it had before pair_task and pair_weight existed; with one, both
// are in it.
func TestPretrainJSONWithoutPairTask(t *testing.T) {
	p := Default().Pretrain
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "Pair") || !strings.Contains(string(b), `"CopyProb":0`) {
		t.Errorf("pair_task none: %s", b)
	}
	p.PairTask, p.PairWeight = "nsp", 0.5
	if b, _ = json.Marshal(p); !strings.Contains(string(b), `"PairTask":"nsp","PairWeight":0.5`) {
		t.Errorf("pair_task nsp: %s", b)
	}
}
